//! The merchant's programme config: the standard numbers as defaults, and the checks
//! JSON types alone cannot make (threshold order, promotion windows, a point's value).

use loyalty_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::status::Tier;

/// The error code for a config the plugin cannot use (the SDK's code for parse errors).
pub const INVALID_CONFIG: &str = "invalid-config";

/// The JSON Schema of [`Config`], returned by `describe`.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default config as JSON text, returned by `describe`; it reads as
/// [`Config::default()`] (a test keeps the two together).
pub const DEFAULT_CONFIG: &str = r#"{
  "point_value_minor": 1,
  "signup_bonus": 200,
  "referee_bonus": 500,
  "referrer_bonus": 500,
  "cashback_basis_points": { "bronze": 100, "silver": 200, "gold": 300 },
  "return_window_days": 30,
  "promotions": [],
  "survey_points": 50,
  "review_points": 25,
  "reviews_per_month": 5,
  "silver_spend_minor": 50000,
  "gold_spend_minor": 150000,
  "min_redeem_points": 500,
  "reward_points": { "voucher-10": 1000, "tote-bag": 1500 },
  "coffee_corner_multiplier_percent": 200,
  "cinema_city_discount_percent": 10
}"#;

/// The retail club's config. Every field is optional in the merchant's JSON;
/// `config.schema.json` documents each one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What one point is worth, in minor units of the programme currency.
    pub point_value_minor: u32,
    /// Points on joining (not qualifying).
    pub signup_bonus: u32,
    /// Extra points on joining with a referral (not qualifying).
    pub referee_bonus: u32,
    /// Points for the referrer when someone they referred joins.
    pub referrer_bonus: u32,
    /// Cashback on purchases by tier, in basis points (100 = 1 %).
    pub cashback_basis_points: PerTier,
    /// Days purchase points stay pending (the return window).
    pub return_window_days: u32,
    /// Time-limited multiplied-points periods (double-points days).
    pub promotions: Vec<Promotion>,
    /// Points for answering the survey, at most once per calendar month.
    pub survey_points: u32,
    /// Points per review.
    pub review_points: u32,
    /// Reviews rewarded per calendar month.
    pub reviews_per_month: u32,
    /// Calendar-year spend for Silver, in minor units.
    pub silver_spend_minor: i64,
    /// Calendar-year spend for Gold, in minor units.
    pub gold_spend_minor: i64,
    /// The fewest points a pay-with-points redemption may use.
    pub min_redeem_points: u32,
    /// Prices of the catalogue rewards, in points.
    pub reward_points: RewardPrices,
    /// Earn multiplier at Coffee Corner in percent (200 = double points; 100 = no offer).
    pub coffee_corner_multiplier_percent: u32,
    /// Discount at Cinema City in percent (0 = no offer).
    pub cinema_city_discount_percent: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            point_value_minor: 1,
            signup_bonus: 200,
            referee_bonus: 500,
            referrer_bonus: 500,
            cashback_basis_points: PerTier::default(),
            return_window_days: 30,
            promotions: Vec::new(),
            survey_points: 50,
            review_points: 25,
            reviews_per_month: 5,
            silver_spend_minor: 50_000,
            gold_spend_minor: 150_000,
            min_redeem_points: 500,
            reward_points: RewardPrices::default(),
            coffee_corner_multiplier_percent: 200,
            cinema_city_discount_percent: 10,
        }
    }
}

/// A value per tier. Fields left out keep their defaults, so a merchant can change
/// Gold's rate alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerTier {
    /// Bronze.
    pub bronze: u32,
    /// Silver.
    pub silver: u32,
    /// Gold.
    pub gold: u32,
}

impl Default for PerTier {
    fn default() -> Self {
        PerTier {
            bronze: 100,
            silver: 200,
            gold: 300,
        }
    }
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

/// A time-limited promotion: purchases in `[starts, ends)` earn `multiplier_percent`
/// of the tier's cashback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Shown in the credit's reason ("Black Friday").
    pub name: String,
    /// The first second of the promotion (seconds since the epoch, UTC).
    pub starts: Timestamp,
    /// The first second after it.
    pub ends: Timestamp,
    /// The multiplier in percent (200 = double points).
    pub multiplier_percent: u32,
}

/// The price in points of each catalogue reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardPrices {
    /// The 10.00 voucher.
    #[serde(rename = "voucher-10")]
    pub voucher_10: u32,
    /// The club tote bag.
    #[serde(rename = "tote-bag")]
    pub tote_bag: u32,
}

impl Default for RewardPrices {
    fn default() -> Self {
        RewardPrices {
            voucher_10: 1_000,
            tote_bag: 1_500,
        }
    }
}

impl RewardPrices {
    /// The price of catalogue reward `id`, if the catalogue has it.
    pub fn price(&self, id: &str) -> Option<u32> {
        match id {
            "voucher-10" => Some(self.voucher_10),
            "tote-bag" => Some(self.tote_bag),
            _ => None,
        }
    }
}

impl Config {
    /// The merchant's config from the call's context, parsed and checked; errors have
    /// the code `invalid-config`.
    pub fn from_context(ctx: &Context) -> Result<Config, PluginError> {
        let config: Config = ctx.config()?;
        config.check()?;
        Ok(config)
    }

    /// The checks the schema cannot express (or that a host might not run).
    pub fn check(&self) -> Result<(), PluginError> {
        if self.point_value_minor == 0 {
            return Err(invalid("point_value_minor must be at least 1"));
        }
        let bp = self.cashback_basis_points;
        if [bp.bronze, bp.silver, bp.gold].iter().any(|&b| b > 10_000) {
            return Err(invalid(
                "cashback_basis_points must be at most 10000 (100 %)",
            ));
        }
        if self.return_window_days > 365 {
            return Err(invalid("return_window_days must be at most 365"));
        }
        if self.silver_spend_minor < 1 || self.gold_spend_minor <= self.silver_spend_minor {
            return Err(invalid(
                "spend thresholds must satisfy 1 <= silver_spend_minor < gold_spend_minor",
            ));
        }
        if self.reward_points.voucher_10 == 0 || self.reward_points.tote_bag == 0 {
            return Err(invalid("reward_points must be at least 1"));
        }
        if self.coffee_corner_multiplier_percent < 100 {
            return Err(invalid(
                "coffee_corner_multiplier_percent must be at least 100",
            ));
        }
        if self.cinema_city_discount_percent > 100 {
            return Err(invalid("cinema_city_discount_percent must be at most 100"));
        }
        for p in &self.promotions {
            if p.starts >= p.ends {
                return Err(invalid(&format!(
                    "promotion {:?} must start before it ends",
                    p.name
                )));
            }
            if p.multiplier_percent < 100 {
                return Err(invalid(&format!(
                    "promotion {:?}: multiplier_percent must be at least 100",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// The promotion in force at `at`: the one with the highest multiplier when
    /// several overlap (stacking them would let two campaigns compound by accident).
    pub fn promotion_at(&self, at: Timestamp) -> Option<&Promotion> {
        self.promotions
            .iter()
            .filter(|p| (p.starts..p.ends).contains(&at))
            .max_by_key(|p| p.multiplier_percent)
    }
}

fn invalid(message: &str) -> PluginError {
    PluginError::new(
        INVALID_CONFIG,
        format!("invalid programme config: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{ctx_with, day};

    fn error(config: &str) -> PluginError {
        Config::from_context(&ctx_with(day(2026, 9, 21), config)).unwrap_err()
    }

    #[test]
    fn the_default_config_text_reads_as_the_default_config() {
        let parsed: Config = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
        assert_eq!(parsed.check(), Ok(()));
    }

    #[test]
    fn an_empty_config_gives_the_standard_numbers() {
        let c = Config::from_context(&ctx_with(0, "")).unwrap();
        assert_eq!(c.cashback_basis_points.get(Tier::Silver), 200);
        assert_eq!(c.silver_spend_minor, 50_000);
    }

    #[test]
    fn the_schema_is_json_and_lists_every_config_field() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().unwrap();
        let fields = serde_json::to_value(Config::default()).unwrap();
        let fields = fields.as_object().unwrap();
        for key in fields.keys() {
            assert!(properties.contains_key(key), "the schema lacks {key}");
            assert!(
                properties[key]["description"].is_string(),
                "{key} has no description"
            );
        }
        assert_eq!(
            properties.len(),
            fields.len(),
            "the schema has extra fields"
        );
        for (nested, keys) in [
            ("cashback_basis_points", &["bronze", "silver", "gold"][..]),
            ("reward_points", &["voucher-10", "tote-bag"][..]),
            (
                "promotions",
                &["name", "starts", "ends", "multiplier_percent"][..],
            ),
        ] {
            let node = &properties[nested];
            let props = node["properties"]
                .as_object()
                .or_else(|| node["items"]["properties"].as_object())
                .unwrap();
            let mut listed: Vec<&str> = props.keys().map(String::as_str).collect();
            listed.sort_unstable();
            let mut expected = keys.to_vec();
            expected.sort_unstable();
            assert_eq!(listed, expected, "{nested}");
        }
    }

    #[test]
    fn one_tiers_rate_can_change_alone() {
        let c = Config::from_context(&ctx_with(0, r#"{"cashback_basis_points": {"gold": 450}}"#))
            .unwrap();
        assert_eq!(
            (c.cashback_basis_points.bronze, c.cashback_basis_points.gold),
            (100, 450)
        );
    }

    #[test]
    fn a_wrong_type_or_an_unknown_field_is_an_invalid_config() {
        assert_eq!(error(r#"{"signup_bonus": "lots"}"#).code, INVALID_CONFIG);
        assert_eq!(error(r#"{"signup_bonus": -5}"#).code, INVALID_CONFIG);
        let unknown = error(r#"{"cashback_percent": 2}"#);
        assert_eq!(unknown.code, INVALID_CONFIG);
        assert!(unknown.message.contains("cashback_percent"), "{unknown:?}");
        assert_eq!(error("[]").code, INVALID_CONFIG);
    }

    #[test]
    fn gold_must_need_more_spend_than_silver() {
        let e = error(r#"{"silver_spend_minor": 150000, "gold_spend_minor": 150000}"#);
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.message.contains("gold_spend_minor"), "{e:?}");
        assert_eq!(error(r#"{"silver_spend_minor": 0}"#).code, INVALID_CONFIG);
    }

    #[test]
    fn a_point_must_be_worth_something() {
        assert_eq!(error(r#"{"point_value_minor": 0}"#).code, INVALID_CONFIG);
    }

    #[test]
    fn a_promotion_must_end_after_it_starts_and_not_reduce_points() {
        let backwards = r#"{"promotions": [{"name": "Oops", "starts": 10, "ends": 10, "multiplier_percent": 200}]}"#;
        let e = error(backwards);
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.message.contains("Oops"), "{e:?}");
        let halving = r#"{"promotions": [{"name": "Half", "starts": 0, "ends": 10, "multiplier_percent": 50}]}"#;
        assert_eq!(error(halving).code, INVALID_CONFIG);
        let nameless = r#"{"promotions": [{"starts": 0, "ends": 10, "multiplier_percent": 200}]}"#;
        assert_eq!(error(nameless).code, INVALID_CONFIG);
    }

    #[test]
    fn out_of_range_rates_are_refused() {
        assert_eq!(
            error(r#"{"cashback_basis_points": {"gold": 10001}}"#).code,
            INVALID_CONFIG
        );
        assert_eq!(error(r#"{"return_window_days": 366}"#).code, INVALID_CONFIG);
        assert_eq!(
            error(r#"{"cinema_city_discount_percent": 101}"#).code,
            INVALID_CONFIG
        );
        assert_eq!(
            error(r#"{"coffee_corner_multiplier_percent": 99}"#).code,
            INVALID_CONFIG
        );
        assert_eq!(
            error(r#"{"reward_points": {"tote-bag": 0}}"#).code,
            INVALID_CONFIG
        );
    }
}
