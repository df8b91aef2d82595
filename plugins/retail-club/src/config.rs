//! The programme's config: every number the merchant can change.

use loyalty_sdk::{OfferKind, Timestamp};
use serde::Deserialize;

use crate::Tier;

/// The JSON Schema of [`Config`].
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default config as JSON (must equal `Config::default()`; a test checks).
pub const DEFAULT_CONFIG: &str = r#"{
  "point_value_minor": 1,
  "signup_bonus": 200,
  "referee_bonus": 500,
  "referrer_bonus": 500,
  "cashback_basis_points": { "bronze": 100, "silver": 200, "gold": 300 },
  "return_window_days": 30,
  "silver_spend_minor": 50000,
  "gold_spend_minor": 150000,
  "survey_points": 50,
  "review_points": 25,
  "reviews_per_month": 5,
  "min_redeem_points": 500,
  "promotions": [],
  "rewards": [
    { "id": "voucher-10", "name": "10.00 voucher", "points": 1000 },
    { "id": "tote-bag", "name": "Club tote bag", "points": 1500 }
  ],
  "partners": [
    { "id": "coffee-corner", "title": "Double points at Coffee Corner", "multiplier_percent": 200, "discount_percent": null },
    { "id": "cinema-city", "title": "10 % off at Cinema City", "multiplier_percent": null, "discount_percent": 10 }
  ]
}"#;

/// Cashback by tier, in basis points (100 = 1 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerTier {
    /// Bronze.
    pub bronze: u32,
    /// Silver.
    pub silver: u32,
    /// Gold.
    pub gold: u32,
}

impl PerTier {
    /// The value for `tier`.
    pub fn get(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Bronze => self.bronze,
            Tier::Silver => self.silver,
            Tier::Gold => self.gold,
        }
    }
}

/// A time-limited promotion (double-points days).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Shown in the credit's reason.
    pub name: String,
    /// First second of the promotion.
    pub starts: Timestamp,
    /// First second after it.
    pub ends: Timestamp,
    /// Earn multiplier in percent (200 = double points).
    pub multiplier_percent: u32,
}

/// A fixed-price reward.
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

/// A partner and its offer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    /// Partner id.
    pub id: String,
    /// Offer title.
    pub title: String,
    /// Earn multiplier at the partner, percent.
    pub multiplier_percent: Option<u32>,
    /// Discount at the partner, percent.
    pub discount_percent: Option<u32>,
}

impl Partner {
    /// What the offer gives (a multiplier wins when both are set).
    pub fn kind(&self) -> OfferKind {
        match (self.multiplier_percent, self.discount_percent) {
            (Some(m), _) => OfferKind::EarnMultiplier(m),
            (None, Some(d)) => OfferKind::DiscountPercent(d),
            (None, None) => OfferKind::EarnMultiplier(100),
        }
    }
}

/// The programme's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What one point is worth, in minor units.
    pub point_value_minor: i64,
    /// Points on joining.
    pub signup_bonus: i64,
    /// Extra points for joining with a referral.
    pub referee_bonus: i64,
    /// Points for the referrer when the referral joins.
    pub referrer_bonus: i64,
    /// Cashback by tier.
    pub cashback_basis_points: PerTier,
    /// Days purchase points stay pending (the return window).
    pub return_window_days: u32,
    /// Calendar-year spend for Silver, minor units.
    pub silver_spend_minor: i64,
    /// Calendar-year spend for Gold, minor units.
    pub gold_spend_minor: i64,
    /// Points for answering the survey (once a month).
    pub survey_points: i64,
    /// Points per review.
    pub review_points: i64,
    /// Rewarded reviews per month.
    pub reviews_per_month: u32,
    /// Fewest points a pay-with-points redemption uses.
    pub min_redeem_points: i64,
    /// Double-points days.
    pub promotions: Vec<Promotion>,
    /// Fixed-price rewards.
    pub rewards: Vec<Reward>,
    /// Partner offers.
    pub partners: Vec<Partner>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            point_value_minor: 1,
            signup_bonus: 200,
            referee_bonus: 500,
            referrer_bonus: 500,
            cashback_basis_points: PerTier {
                bronze: 100,
                silver: 200,
                gold: 300,
            },
            return_window_days: 30,
            silver_spend_minor: 50_000,
            gold_spend_minor: 150_000,
            survey_points: 50,
            review_points: 25,
            reviews_per_month: 5,
            min_redeem_points: 500,
            promotions: Vec::new(),
            rewards: vec![
                Reward {
                    id: "voucher-10".into(),
                    name: "10.00 voucher".into(),
                    points: 1_000,
                },
                Reward {
                    id: "tote-bag".into(),
                    name: "Club tote bag".into(),
                    points: 1_500,
                },
            ],
            partners: vec![
                Partner {
                    id: "coffee-corner".into(),
                    title: "Double points at Coffee Corner".into(),
                    multiplier_percent: Some(200),
                    discount_percent: None,
                },
                Partner {
                    id: "cinema-city".into(),
                    title: "10 % off at Cinema City".into(),
                    multiplier_percent: None,
                    discount_percent: Some(10),
                },
            ],
        }
    }
}
