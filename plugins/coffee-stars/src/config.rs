//! The merchant's programme config: the standard numbers as defaults, and the checks
//! JSON types alone cannot make (threshold order, positive prices).

use loyalty_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The error code for a config the plugin cannot use (the SDK's code for parse errors).
pub const INVALID_CONFIG: &str = "invalid-config";

/// The default config as JSON text, returned by `describe`; it reads as
/// [`Config::default()`] (a test keeps the two together).
pub const DEFAULT_CONFIG: &str = r#"{
  "stars_per_unit": 1,
  "stored_value_stars_per_unit": 2,
  "green_multiplier_percent": 100,
  "gold_multiplier_percent": 120,
  "reserve_multiplier_percent": 170,
  "gold_threshold": 500,
  "reserve_threshold": 2500,
  "green_expiry_months": 6,
  "welcome_stars": 25,
  "birthday_requires_purchase": true,
  "reward_prices": {
    "customize": 25,
    "brewed-coffee": 100,
    "handcrafted-drink": 200,
    "breakfast-or-lunch": 300,
    "merchandise": 400
  },
  "partner": "skyway",
  "partner_multiplier_percent": 200
}"#;

/// The Coffee Stars programme config. Every field is optional in the merchant's JSON;
/// `config.schema.json` documents each one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Stars per currency unit paid by card, cash, wallet or other.
    pub stars_per_unit: u32,
    /// Stars per currency unit paid with stored value (the card or app balance).
    pub stored_value_stars_per_unit: u32,
    /// Percent of the base rate earned at Green.
    pub green_multiplier_percent: u32,
    /// Percent of the base rate earned at Gold.
    pub gold_multiplier_percent: u32,
    /// Percent of the base rate earned at Reserve.
    pub reserve_multiplier_percent: u32,
    /// Qualifying stars in the rolling 12 months for Gold.
    pub gold_threshold: u32,
    /// Qualifying stars in the rolling 12 months for Reserve.
    pub reserve_threshold: u32,
    /// Months after the earning month at whose end Green stars expire.
    pub green_expiry_months: u16,
    /// Non-qualifying stars credited on joining.
    pub welcome_stars: u32,
    /// Whether the birthday drink needs an earlier purchase.
    pub birthday_requires_purchase: bool,
    /// The price in stars of each catalogue reward.
    pub reward_prices: RewardPrices,
    /// The linked partner's id; empty for none.
    pub partner: String,
    /// Percent of `stars_per_unit` earned on partner spend by linked members.
    pub partner_multiplier_percent: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stars_per_unit: 1,
            stored_value_stars_per_unit: 2,
            green_multiplier_percent: 100,
            gold_multiplier_percent: 120,
            reserve_multiplier_percent: 170,
            gold_threshold: 500,
            reserve_threshold: 2_500,
            green_expiry_months: 6,
            welcome_stars: 25,
            birthday_requires_purchase: true,
            reward_prices: RewardPrices::default(),
            partner: "skyway".to_string(),
            partner_multiplier_percent: 200,
        }
    }
}

/// The price in stars of each reward in the catalogue. A fixed struct rather than a map:
/// the catalogue `describe` lists cannot drift from what redemption accepts, and
/// parsing it on every purchase allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RewardPrices {
    /// An extra shot, a syrup or a dairy alternative.
    pub customize: u32,
    /// A brewed hot or iced coffee or tea.
    pub brewed_coffee: u32,
    /// A handcrafted drink.
    pub handcrafted_drink: u32,
    /// A breakfast sandwich, a salad or a lunch sandwich.
    pub breakfast_or_lunch: u32,
    /// Select merchandise or at-home coffee.
    pub merchandise: u32,
}

impl Default for RewardPrices {
    fn default() -> Self {
        RewardPrices {
            customize: 25,
            brewed_coffee: 100,
            handcrafted_drink: 200,
            breakfast_or_lunch: 300,
            merchandise: 400,
        }
    }
}

impl RewardPrices {
    /// The price of reward `id`, if the catalogue has it.
    pub fn price(&self, id: &str) -> Option<u32> {
        match id {
            "customize" => Some(self.customize),
            "brewed-coffee" => Some(self.brewed_coffee),
            "handcrafted-drink" => Some(self.handcrafted_drink),
            "breakfast-or-lunch" => Some(self.breakfast_or_lunch),
            "merchandise" => Some(self.merchandise),
            _ => None,
        }
    }

    fn all(&self) -> [u32; 5] {
        [
            self.customize,
            self.brewed_coffee,
            self.handcrafted_drink,
            self.breakfast_or_lunch,
            self.merchandise,
        ]
    }
}

impl Config {
    /// The merchant's config from the call context, checked. Every failure is a
    /// [`PluginError`] with code `invalid-config` saying which field is wrong.
    pub fn from_context(ctx: &Context) -> Result<Config, PluginError> {
        // serde's derived struct visitor also reads a JSON array, field by field in
        // declaration order, so `[1, 2]` would set the two earn rates; the schema
        // says object, and so does this check.
        let text = ctx.config.trim_start();
        if !text.is_empty() && !text.starts_with('{') {
            return Err(invalid("the config must be a JSON object"));
        }
        let config: Config = ctx.config()?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), PluginError> {
        if self.gold_threshold == 0 {
            return Err(invalid("gold_threshold must be at least 1"));
        }
        if self.reserve_threshold <= self.gold_threshold {
            return Err(invalid(format!(
                "reserve_threshold ({}) must be above gold_threshold ({})",
                self.reserve_threshold, self.gold_threshold
            )));
        }
        // Zero months would expire stars at the end of the month they were earned in,
        // which the host refuses for a purchase in that month's last second.
        if self.green_expiry_months == 0 {
            return Err(invalid("green_expiry_months must be at least 1"));
        }
        if self.reward_prices.all().contains(&0) {
            return Err(invalid("reward_prices must all be at least 1 star"));
        }
        let valid_id = self.partner.len() <= 64
            && self
                .partner
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(invalid(
                "partner must be empty or 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(
        INVALID_CONFIG,
        format!("invalid programme config: {}", message.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_sdk::testing::context;
    use serde_json::Value;

    const SCHEMA: &str = include_str!("../config.schema.json");

    fn load(json: &str) -> Result<Config, PluginError> {
        Config::from_context(&context(0, json))
    }

    fn error_code(json: &str) -> String {
        load(json).expect_err(json).code
    }

    #[test]
    fn the_default_config_text_reads_as_the_default_config() {
        let parsed: Config = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
        assert_eq!(load(DEFAULT_CONFIG).unwrap(), Config::default());
    }

    #[test]
    fn an_empty_config_holds_the_standard_numbers() {
        let config = load("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.gold_threshold, 500);
        assert_eq!(config.reserve_threshold, 2_500);
        assert_eq!(config.reward_prices.price("handcrafted-drink"), Some(200));
    }

    #[test]
    fn the_schema_is_json_and_lists_every_config_field_with_its_default() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schema parses as JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let fields = defaults.as_object().unwrap();
        for (field, default) in fields {
            let property = properties
                .get(field)
                .unwrap_or_else(|| panic!("schema lacks property {field}"));
            assert!(
                property["description"].is_string(),
                "{field} has a description"
            );
            assert_eq!(&property["default"], default, "schema default of {field}");
        }
        assert_eq!(properties.len(), fields.len(), "schema has no extra fields");

        let prices = &properties["reward_prices"];
        assert_eq!(prices["additionalProperties"], false);
        let price_properties = prices["properties"].as_object().unwrap();
        for (id, default) in defaults["reward_prices"].as_object().unwrap() {
            assert_eq!(&price_properties[id]["default"], default, "price of {id}");
        }
        assert_eq!(price_properties.len(), 5);
    }

    #[test]
    fn a_merchant_can_change_one_reward_price_and_keep_the_others() {
        let config = load(r#"{"reward_prices": {"brewed-coffee": 120}}"#).unwrap();
        assert_eq!(config.reward_prices.price("brewed-coffee"), Some(120));
        assert_eq!(config.reward_prices.price("merchandise"), Some(400));
        assert_eq!(config.gold_threshold, 500);
    }

    #[test]
    fn a_wrongly_typed_or_negative_field_is_an_invalid_config() {
        assert_eq!(error_code(r#"{"gold_threshold": "500"}"#), INVALID_CONFIG);
        assert_eq!(error_code(r#"{"welcome_stars": -25}"#), INVALID_CONFIG);
        assert_eq!(error_code("[1, 2]"), INVALID_CONFIG);
        assert_eq!(error_code("null"), INVALID_CONFIG);
    }

    #[test]
    fn an_unknown_field_or_reward_is_an_invalid_config() {
        assert_eq!(error_code(r#"{"gold_treshold": 400}"#), INVALID_CONFIG);
        assert_eq!(
            error_code(r#"{"reward_prices": {"muffin": 150}}"#),
            INVALID_CONFIG
        );
    }

    #[test]
    fn a_reserve_threshold_not_above_gold_is_an_invalid_config() {
        assert_eq!(
            error_code(r#"{"gold_threshold": 500, "reserve_threshold": 500}"#),
            INVALID_CONFIG
        );
        assert_eq!(error_code(r#"{"gold_threshold": 0}"#), INVALID_CONFIG);
        assert!(load(r#"{"gold_threshold": 500, "reserve_threshold": 501}"#).is_ok());
    }

    #[test]
    fn zero_expiry_months_or_a_free_reward_is_an_invalid_config() {
        assert_eq!(error_code(r#"{"green_expiry_months": 0}"#), INVALID_CONFIG);
        assert_eq!(
            error_code(r#"{"reward_prices": {"customize": 0}}"#),
            INVALID_CONFIG
        );
    }

    #[test]
    fn a_partner_must_be_an_id_or_empty() {
        assert_eq!(error_code(r#"{"partner": "SkyWay"}"#), INVALID_CONFIG);
        assert_eq!(error_code(r#"{"partner": "sky way"}"#), INVALID_CONFIG);
        assert_eq!(load(r#"{"partner": ""}"#).unwrap().partner, "");
        assert_eq!(load(r#"{"partner": "delta"}"#).unwrap().partner, "delta");
    }
}
