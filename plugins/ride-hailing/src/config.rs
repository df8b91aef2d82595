//! The programme's config: every number the merchant can change.

use loyalty_sdk::PaymentMethod;
use serde::Deserialize;

use crate::Tier;

/// The JSON Schema of [`Config`].
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default config as JSON (must equal `Config::default()`; a test checks).
pub const DEFAULT_CONFIG: &str = r#"{
  "rates_hundredths": {
    "wallet": { "member": 300, "gold": 450, "platinum": 600 },
    "card": { "member": 100, "gold": 150, "platinum": 200 },
    "cash": { "member": 0, "gold": 0, "platinum": 0 }
  },
  "thresholds": { "gold": 1000, "platinum": 3000 },
  "expiry_months": 6,
  "challenge_rides": 5,
  "challenge_bonus": 200,
  "free_rides_per_month": 10,
  "welcome_bonus": 0,
  "points_per_currency_unit": 100,
  "rewards": [
    { "id": "ride-voucher-3", "name": "3 off a ride", "points": 300 },
    { "id": "food-voucher-5", "name": "5 off a food order", "points": 500 }
  ],
  "partners": [
    { "id": "cinema-city", "title": "Double points at Cinema City", "perk": { "multiplier": 200 } },
    { "id": "fuel-co", "title": "50 bonus points per fill-up at FuelCo", "perk": { "bonus": 50 } }
  ]
}"#;

/// Points per currency unit, in hundredths, for each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerTier {
    /// Member.
    pub member: u32,
    /// Gold.
    pub gold: u32,
    /// Platinum.
    pub platinum: u32,
}

impl PerTier {
    fn get(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Member => self.member,
            Tier::Gold => self.gold,
            Tier::Platinum => self.platinum,
        }
    }
}

/// Earn rates by payment method.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Paying from the app's wallet.
    pub wallet: PerTier,
    /// Paying by card (and any other method not listed).
    pub card: PerTier,
    /// Paying cash.
    pub cash: PerTier,
}

/// Tier thresholds in qualifying points over the last 12 months.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Gold.
    pub gold: i64,
    /// Platinum.
    pub platinum: i64,
}

/// A reward at a fixed price.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    /// Reward id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Price in points.
    pub points: i64,
}

/// What a partner offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartnerPerk {
    /// Earn multiplied by this percent.
    Multiplier(u32),
    /// Bonus points.
    Bonus(i64),
}

/// A partner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    /// Partner id.
    pub id: String,
    /// Offer title.
    pub title: String,
    /// What it gives.
    pub perk: PartnerPerk,
}

/// The programme's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Earn rates in hundredths of a point per currency unit.
    pub rates_hundredths: Rates,
    /// Tier thresholds.
    pub thresholds: Thresholds,
    /// Months after the month earned that points expire.
    pub expiry_months: u32,
    /// Rides in one week that complete the challenge.
    pub challenge_rides: u32,
    /// Bonus points for completing the challenge.
    pub challenge_bonus: i64,
    /// Free rides a month for Platinum.
    pub free_rides_per_month: u32,
    /// Points for joining.
    pub welcome_bonus: i64,
    /// Points worth one currency unit when paying with points.
    pub points_per_currency_unit: u32,
    /// Fixed-price rewards.
    pub rewards: Vec<Reward>,
    /// Partners.
    pub partners: Vec<Partner>,
}

impl Config {
    /// The earn rate (hundredths of a point per unit) for a payment method and tier.
    pub fn rate(&self, payment: Option<PaymentMethod>, tier: Tier) -> u32 {
        let rates = &self.rates_hundredths;
        match payment {
            Some(PaymentMethod::Wallet) => rates.wallet.get(tier),
            Some(PaymentMethod::Cash) => rates.cash.get(tier),
            // Paying with points earns nothing; anything else earns like a card.
            Some(PaymentMethod::Points) => 0,
            _ => rates.card.get(tier),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rates_hundredths: Rates {
                wallet: PerTier {
                    member: 300,
                    gold: 450,
                    platinum: 600,
                },
                card: PerTier {
                    member: 100,
                    gold: 150,
                    platinum: 200,
                },
                cash: PerTier {
                    member: 0,
                    gold: 0,
                    platinum: 0,
                },
            },
            thresholds: Thresholds {
                gold: 1_000,
                platinum: 3_000,
            },
            expiry_months: 6,
            challenge_rides: 5,
            challenge_bonus: 200,
            free_rides_per_month: 10,
            welcome_bonus: 0,
            points_per_currency_unit: 100,
            rewards: vec![
                Reward {
                    id: "ride-voucher-3".into(),
                    name: "3 off a ride".into(),
                    points: 300,
                },
                Reward {
                    id: "food-voucher-5".into(),
                    name: "5 off a food order".into(),
                    points: 500,
                },
            ],
            partners: vec![
                Partner {
                    id: "cinema-city".into(),
                    title: "Double points at Cinema City".into(),
                    perk: PartnerPerk::Multiplier(200),
                },
                Partner {
                    id: "fuel-co".into(),
                    title: "50 bonus points per fill-up at FuelCo".into(),
                    perk: PartnerPerk::Bonus(50),
                },
            ],
        }
    }
}
