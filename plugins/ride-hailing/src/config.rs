//! The programme's config: every number the merchant can change, and the checks that
//! keep those numbers from breaking a rule (a zero divisor, a negative credit).

use loyalty_sdk::{Context, PaymentMethod, PluginError};
use serde::Deserialize;

use crate::Tier;

/// The JSON Schema of [`Config`].
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The error code for a config the plugin cannot use.
pub const INVALID_CONFIG: &str = "invalid-config";

/// The default config as JSON (must equal `Config::default()`; a test checks).
pub const DEFAULT_CONFIG: &str = r#"{
  "rates_hundredths": {
    "wallet": { "member": 300, "gold": 450, "platinum": 600 },
    "card": { "member": 100, "gold": 150, "platinum": 200 },
    "cash": { "member": 0, "gold": 0, "platinum": 0 }
  },
  "expiry_months": 6,
  "challenge_rides": 5,
  "challenge_bonus": 200,
  "thresholds": { "gold": 1000, "platinum": 3000 },
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

const DEFAULT_RATES: Rates = Rates {
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
};
const DEFAULT_EXPIRY_MONTHS: u32 = 6;
const DEFAULT_CHALLENGE_RIDES: u32 = 5;
const DEFAULT_CHALLENGE_BONUS: i64 = 200;

/// Longest expiry the schema allows: ten years keeps `expiry_months` far inside `i32`.
const MAX_EXPIRY_MONTHS: u32 = 120;

/// Points per currency unit, in hundredths, for each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Paying from the app's wallet.
    pub wallet: PerTier,
    /// Paying by card (and any other method not listed).
    pub card: PerTier,
    /// Paying cash.
    pub cash: PerTier,
}

impl Rates {
    /// The earn rate (hundredths of a point per currency unit) for a payment method
    /// and tier.
    pub fn get(&self, payment: Option<PaymentMethod>, tier: Tier) -> u32 {
        match payment {
            Some(PaymentMethod::Wallet) => self.wallet.get(tier),
            Some(PaymentMethod::Cash) => self.cash.get(tier),
            // Points spent do not earn points again (no "earn on burn"); the brief's
            // "other methods like card" is kept for every other method.
            Some(PaymentMethod::Points) => 0,
            _ => self.card.get(tier),
        }
    }
}

/// The part of the config a purchase needs. `on_event` runs for every purchase, so
/// it skips the reward catalogue and partner list (no allocations for them). Unknown
/// fields are ignored here; the full [`Config`] (read by every other hook, and checked
/// against the schema when the merchant sets it) refuses them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EarnConfig {
    /// See [`Config::rates_hundredths`].
    pub rates_hundredths: Rates,
    /// See [`Config::expiry_months`].
    pub expiry_months: u32,
    /// See [`Config::challenge_rides`].
    pub challenge_rides: u32,
    /// See [`Config::challenge_bonus`].
    pub challenge_bonus: i64,
}

impl Default for EarnConfig {
    fn default() -> Self {
        EarnConfig {
            rates_hundredths: DEFAULT_RATES,
            expiry_months: DEFAULT_EXPIRY_MONTHS,
            challenge_rides: DEFAULT_CHALLENGE_RIDES,
            challenge_bonus: DEFAULT_CHALLENGE_BONUS,
        }
    }
}

impl EarnConfig {
    /// The earn settings from the call context, checked.
    pub fn from_context(ctx: &Context) -> Result<EarnConfig, PluginError> {
        let config: EarnConfig = ctx.config()?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), PluginError> {
        // Zero months would expire points at the end of the month they were earned,
        // which the host refuses for a ride in that month's last second.
        if !(1..=MAX_EXPIRY_MONTHS).contains(&self.expiry_months) {
            return Err(invalid(format!(
                "expiry_months must be 1 to {MAX_EXPIRY_MONTHS}, not {}",
                self.expiry_months
            )));
        }
        if self.challenge_rides == 0 {
            return Err(invalid("challenge_rides must be at least 1"));
        }
        if self.challenge_bonus < 0 {
            return Err(invalid("challenge_bonus must not be negative"));
        }
        Ok(())
    }
}

/// Tier thresholds in qualifying points over the last 12 months.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Gold.
    pub gold: i64,
    /// Platinum.
    pub platinum: i64,
}

/// A reward at a fixed price.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
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
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartnerPerk {
    /// The usual earn rate multiplied by this many percent (200 = double points).
    Multiplier(u32),
    /// Bonus points per partner purchase, on top of the usual earn.
    Bonus(i64),
}

/// A partner and its offer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
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
// Serialised in tests only, to check the schema and default text name every field.
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Earn rates in hundredths of a point per currency unit, by payment method and tier.
    pub rates_hundredths: Rates,
    /// Months after the month earned that points expire.
    pub expiry_months: u32,
    /// Rides in one ISO week that complete the weekly challenge.
    pub challenge_rides: u32,
    /// Bonus points for completing the weekly challenge.
    pub challenge_bonus: i64,
    /// Tier thresholds.
    pub thresholds: Thresholds,
    /// Free rides a month for Platinum.
    pub free_rides_per_month: u32,
    /// Points for joining.
    pub welcome_bonus: i64,
    /// Points worth one currency unit when paying with points.
    pub points_per_currency_unit: u32,
    /// Fixed-price rewards.
    pub rewards: Vec<Reward>,
    /// Partners and their offers.
    pub partners: Vec<Partner>,
}

impl Default for Config {
    fn default() -> Self {
        let earn = EarnConfig::default();
        Config {
            rates_hundredths: earn.rates_hundredths,
            expiry_months: earn.expiry_months,
            challenge_rides: earn.challenge_rides,
            challenge_bonus: earn.challenge_bonus,
            thresholds: Thresholds {
                gold: 1_000,
                platinum: 3_000,
            },
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

impl Config {
    /// The merchant's config from the call context, checked. Every failure is a
    /// [`PluginError`] with code `invalid-config` saying which field is wrong.
    pub fn from_context(ctx: &Context) -> Result<Config, PluginError> {
        let config: Config = ctx.config()?;
        config.check()?;
        Ok(config)
    }

    /// The earn settings, as [`EarnConfig`] reads them.
    pub fn earn(&self) -> EarnConfig {
        EarnConfig {
            rates_hundredths: self.rates_hundredths,
            expiry_months: self.expiry_months,
            challenge_rides: self.challenge_rides,
            challenge_bonus: self.challenge_bonus,
        }
    }

    /// A partner by id.
    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    fn check(&self) -> Result<(), PluginError> {
        self.earn().check()?;
        let Thresholds { gold, platinum } = self.thresholds;
        if gold < 1 || platinum <= gold {
            return Err(invalid(format!(
                "thresholds must satisfy 1 <= gold < platinum, not gold {gold}, platinum {platinum}"
            )));
        }
        if self.welcome_bonus < 0 {
            return Err(invalid("welcome_bonus must not be negative"));
        }
        // The divisor when pricing an amount in points.
        if self.points_per_currency_unit == 0 {
            return Err(invalid("points_per_currency_unit must be at least 1"));
        }
        for (i, r) in self.rewards.iter().enumerate() {
            if !valid_id(&r.id, 64) || r.id == crate::PAY_WITH_POINTS {
                return Err(invalid(format!(
                    "rewards[{i}].id {:?} must be 1-64 of a-z, 0-9, '-', '_' and not {:?}",
                    r.id,
                    crate::PAY_WITH_POINTS
                )));
            }
            if r.points < 1 || r.name.is_empty() {
                return Err(invalid(format!(
                    "rewards[{i}] needs a name and a price of at least 1 point"
                )));
            }
        }
        for (i, p) in self.partners.iter().enumerate() {
            // The offer id is "<partner>-offer", which must itself fit in 64.
            if !valid_id(&p.id, 58) || p.title.is_empty() {
                return Err(invalid(format!(
                    "partners[{i}] needs a title and an id of 1-58 of a-z, 0-9, '-', '_'"
                )));
            }
            let sound = match p.perk {
                PartnerPerk::Multiplier(percent) => percent >= 100,
                PartnerPerk::Bonus(points) => points >= 1,
            };
            if !sound {
                return Err(invalid(format!(
                    "partners[{i}].perk must be a multiplier of at least 100 or a bonus of at least 1"
                )));
            }
        }
        Ok(())
    }
}

fn valid_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(
        INVALID_CONFIG,
        format!("invalid programme config: {}", message.into()),
    )
}
