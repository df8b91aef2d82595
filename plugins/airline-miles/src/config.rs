//! The programme's config: every number the merchant can change.

use loyalty_sdk::{Context, PluginError};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::Status;

/// The error code for a config the plugin cannot use (the SDK's own constant is not
/// exported).
pub const INVALID_CONFIG: &str = "invalid-config";

/// The reward id of Cash & Miles, which the award chart may not reuse.
pub const CASH_AND_MILES: &str = "cash-and-miles";

/// The longest expiry the config accepts (20 years), which also keeps the month
/// arithmetic far from overflow.
const MAX_EXPIRY_MONTHS: u32 = 240;

/// The JSON Schema of [`Config`].
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default config as JSON (must equal `Config::default()`; a test checks).
pub const DEFAULT_CONFIG: &str = r#"{
  "currency": "USD",
  "miles_per_usd": { "member": 5, "gold": 7, "platinum": 8, "platinum_pro": 9, "executive_platinum": 11 },
  "thresholds": { "gold": 40000, "platinum": 75000, "platinum_pro": 125000, "executive_platinum": 200000 },
  "expiry_months": 36,
  "welcome_bonus": 500,
  "cents_per_mile_hundredths": 100,
  "cash_and_miles_min_miles": 1500,
  "elite_hotel_multiplier_percent": 150,
  "partners": [
    { "id": "skyhotels", "name": "SkyHotels", "kind": "hotel", "miles_per_usd": 10, "bonus_miles": 0, "qualifying": false },
    { "id": "roadrunner-cars", "name": "Roadrunner Cars", "kind": "car_rental", "miles_per_usd": 3, "bonus_miles": 500, "qualifying": false }
  ],
  "awards": [
    { "id": "economy-domestic", "name": "Economy award (domestic)", "miles": 12500, "fees_minor": 560 },
    { "id": "economy-international", "name": "Economy award (international)", "miles": 30000, "fees_minor": 4500 },
    { "id": "business-international", "name": "Business award (international)", "miles": 57500, "fees_minor": 8500 },
    { "id": "upgrade", "name": "One-cabin upgrade", "miles": 15000, "fees_minor": 0 }
  ]
}"#;

/// The part of the config a flight needs. `on_event` reads it for every purchase,
/// so the partner list and award chart are skipped (`IgnoredAny` checks their JSON
/// syntax without allocating). Every other field is still named, so an unknown or
/// misspelt field is refused here exactly as [`Config`] refuses it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlightConfig {
    /// See [`Config::currency`].
    pub currency: String,
    /// See [`Config::miles_per_usd`].
    pub miles_per_usd: PerStatus,
    /// See [`Config::expiry_months`].
    pub expiry_months: u32,
    thresholds: IgnoredAny,
    welcome_bonus: IgnoredAny,
    cents_per_mile_hundredths: IgnoredAny,
    cash_and_miles_min_miles: IgnoredAny,
    elite_hotel_multiplier_percent: IgnoredAny,
    partners: IgnoredAny,
    awards: IgnoredAny,
}

impl FlightConfig {
    /// Read and check the flight part of the merchant's config.
    pub fn load(ctx: &Context) -> Result<FlightConfig, PluginError> {
        let config: FlightConfig = ctx.config()?;
        check_currency(&config.currency)?;
        check_expiry(config.expiry_months)?;
        Ok(config)
    }
}

/// The part of the config a status decision needs, read by `evaluate_tier` after
/// every event: the thresholds, with the rest skipped as in [`FlightConfig`] (still
/// named, so an unknown field is refused exactly as [`Config`] refuses it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierConfig {
    /// See [`Config::thresholds`].
    pub thresholds: Thresholds,
    currency: IgnoredAny,
    miles_per_usd: IgnoredAny,
    expiry_months: IgnoredAny,
    welcome_bonus: IgnoredAny,
    cents_per_mile_hundredths: IgnoredAny,
    cash_and_miles_min_miles: IgnoredAny,
    elite_hotel_multiplier_percent: IgnoredAny,
    partners: IgnoredAny,
    awards: IgnoredAny,
}

impl TierConfig {
    /// Read and check the thresholds of the merchant's config.
    pub fn load(ctx: &Context) -> Result<TierConfig, PluginError> {
        let config: TierConfig = ctx.config()?;
        check_thresholds(&config.thresholds)?;
        Ok(config)
    }
}

/// Default miles per USD by status.
const DEFAULT_RATES: PerStatus = PerStatus {
    member: 5,
    gold: 7,
    platinum: 8,
    platinum_pro: 9,
    executive_platinum: 11,
};

/// Default months before miles expire.
const DEFAULT_EXPIRY_MONTHS: u32 = 36;

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig {
            currency: "USD".into(),
            miles_per_usd: DEFAULT_RATES,
            expiry_months: DEFAULT_EXPIRY_MONTHS,
            thresholds: IgnoredAny,
            welcome_bonus: IgnoredAny,
            cents_per_mile_hundredths: IgnoredAny,
            cash_and_miles_min_miles: IgnoredAny,
            elite_hotel_multiplier_percent: IgnoredAny,
            partners: IgnoredAny,
            awards: IgnoredAny,
        }
    }
}

/// The programme's config.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The currency fares must be in.
    pub currency: String,
    /// Miles per USD of fare by status.
    pub miles_per_usd: PerStatus,
    /// Qualifying points for each status.
    pub thresholds: Thresholds,
    /// Months after the month earned that miles expire.
    pub expiry_months: u32,
    /// Miles for joining (not qualifying).
    pub welcome_bonus: i64,
    /// What a mile is worth in Cash & Miles, in hundredths of a cent.
    pub cents_per_mile_hundredths: u32,
    /// The fewest miles a Cash & Miles payment uses.
    pub cash_and_miles_min_miles: i64,
    /// Hotel earn multiplier for Platinum and above, in percent.
    pub elite_hotel_multiplier_percent: u32,
    /// Partners.
    pub partners: Vec<Partner>,
    /// The award chart.
    pub awards: Vec<Award>,
}

/// Miles per USD for each status.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerStatus {
    /// Member.
    pub member: u32,
    /// Gold.
    pub gold: u32,
    /// Platinum.
    pub platinum: u32,
    /// Platinum Pro.
    pub platinum_pro: u32,
    /// Executive Platinum.
    pub executive_platinum: u32,
}

impl PerStatus {
    /// The rate for `status`.
    pub fn for_status(&self, status: Status) -> u32 {
        match status {
            Status::Member => self.member,
            Status::Gold => self.gold,
            Status::Platinum => self.platinum,
            Status::PlatinumPro => self.platinum_pro,
            Status::ExecutivePlatinum => self.executive_platinum,
        }
    }
}

/// Qualifying points for each status above Member.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Gold.
    pub gold: i64,
    /// Platinum.
    pub platinum: i64,
    /// Platinum Pro.
    pub platinum_pro: i64,
    /// Executive Platinum.
    pub executive_platinum: i64,
}

impl Thresholds {
    /// Points needed for `status` (0 for Member).
    pub fn for_status(&self, status: Status) -> i64 {
        match status {
            Status::Member => 0,
            Status::Gold => self.gold,
            Status::Platinum => self.platinum,
            Status::PlatinumPro => self.platinum_pro,
            Status::ExecutivePlatinum => self.executive_platinum,
        }
    }

    /// The highest status `points` reach.
    pub fn status_for(&self, points: i64) -> Status {
        Status::ALL
            .into_iter()
            .rev()
            .find(|s| points >= self.for_status(*s))
            .unwrap_or(Status::Member)
    }
}

/// The default qualifying points for each status.
impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            gold: 40_000,
            platinum: 75_000,
            platinum_pro: 125_000,
            executive_platinum: 200_000,
        }
    }
}

/// What kind of partner.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// A hotel chain.
    Hotel,
    /// A car-rental company.
    CarRental,
}

/// A partner that earns miles.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    /// Partner id (as partner apps send it).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Hotel or car rental.
    pub kind: PartnerKind,
    /// Miles per USD spent.
    pub miles_per_usd: u32,
    /// Bonus miles per stay or rental.
    pub bonus_miles: i64,
    /// Whether partner miles count towards status.
    pub qualifying: bool,
}

/// An award in the chart.
#[cfg_attr(test, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Award {
    /// Reward id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Price in miles.
    pub miles: i64,
    /// Taxes and fees paid in cash, in minor units.
    pub fees_minor: i64,
}

impl Config {
    /// Read and check the merchant's config.
    pub fn load(ctx: &Context) -> Result<Config, PluginError> {
        let config: Config = ctx.config()?;
        config.check()?;
        Ok(config)
    }

    /// The rules JSON Schema cannot say (ascending thresholds, unique ids) and the
    /// ones a bad value would turn into a panic (a mile worth nothing divides by zero).
    fn check(&self) -> Result<(), PluginError> {
        check_currency(&self.currency)?;
        check_expiry(self.expiry_months)?;
        check_thresholds(&self.thresholds)?;
        if self.welcome_bonus < 0 || self.cash_and_miles_min_miles < 0 {
            return Err(invalid(
                "welcome_bonus and cash_and_miles_min_miles must not be negative",
            ));
        }
        if self.cents_per_mile_hundredths == 0 {
            return Err(invalid("cents_per_mile_hundredths must be at least 1"));
        }
        if self.elite_hotel_multiplier_percent < 100 {
            return Err(invalid(
                "elite_hotel_multiplier_percent must be at least 100",
            ));
        }
        for (i, p) in self.partners.iter().enumerate() {
            check_id(&p.id)?;
            if p.bonus_miles < 0 {
                return Err(invalid(format!(
                    "partners[{i}].bonus_miles must not be negative"
                )));
            }
            if self.partners[..i].iter().any(|q| q.id == p.id) {
                return Err(invalid(format!("partner {:?} is listed twice", p.id)));
            }
        }
        for (i, a) in self.awards.iter().enumerate() {
            check_id(&a.id)?;
            if a.id == CASH_AND_MILES {
                return Err(invalid(format!("award id {CASH_AND_MILES:?} is reserved")));
            }
            if a.miles < 1 || a.fees_minor < 0 {
                return Err(invalid(format!(
                    "awards[{i}] must cost at least 1 mile and fees must not be negative"
                )));
            }
            if self.awards[..i].iter().any(|b| b.id == a.id) {
                return Err(invalid(format!("award {:?} is listed twice", a.id)));
            }
        }
        Ok(())
    }

    /// The partner with this id.
    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }
}

impl Default for Config {
    fn default() -> Self {
        let award = |id: &str, name: &str, miles, fees_minor| Award {
            id: id.into(),
            name: name.into(),
            miles,
            fees_minor,
        };
        Config {
            currency: "USD".into(),
            miles_per_usd: DEFAULT_RATES,
            thresholds: Thresholds::default(),
            expiry_months: DEFAULT_EXPIRY_MONTHS,
            welcome_bonus: 500,
            cents_per_mile_hundredths: 100,
            cash_and_miles_min_miles: 1_500,
            elite_hotel_multiplier_percent: 150,
            partners: vec![
                Partner {
                    id: "skyhotels".into(),
                    name: "SkyHotels".into(),
                    kind: PartnerKind::Hotel,
                    miles_per_usd: 10,
                    bonus_miles: 0,
                    qualifying: false,
                },
                Partner {
                    id: "roadrunner-cars".into(),
                    name: "Roadrunner Cars".into(),
                    kind: PartnerKind::CarRental,
                    miles_per_usd: 3,
                    bonus_miles: 500,
                    qualifying: false,
                },
            ],
            awards: vec![
                award("economy-domestic", "Economy award (domestic)", 12_500, 560),
                award(
                    "economy-international",
                    "Economy award (international)",
                    30_000,
                    4_500,
                ),
                award(
                    "business-international",
                    "Business award (international)",
                    57_500,
                    8_500,
                ),
                award("upgrade", "One-cabin upgrade", 15_000, 0),
            ],
        }
    }
}

fn check_currency(currency: &str) -> Result<(), PluginError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "currency {currency:?} is not an ISO 4217 code"
        )))
    }
}

/// Thresholds start at 1 or more and rise with each status.
fn check_thresholds(t: &Thresholds) -> Result<(), PluginError> {
    let rising = [t.gold, t.platinum, t.platinum_pro, t.executive_platinum]
        .windows(2)
        .all(|w| w[0] < w[1]);
    if t.gold < 1 || !rising {
        return Err(invalid(
            "thresholds must start at 1 or more and rise with each status",
        ));
    }
    Ok(())
}

fn check_expiry(months: u32) -> Result<(), PluginError> {
    // Zero would expire miles at the end of the month they were earned in, which the
    // host refuses for a flight in that month's last second.
    if (1..=MAX_EXPIRY_MONTHS).contains(&months) {
        Ok(())
    } else {
        Err(invalid(format!(
            "expiry_months must be 1 to {MAX_EXPIRY_MONTHS}"
        )))
    }
}

fn check_id(id: &str) -> Result<(), PluginError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "id {id:?} must be 1-64 characters of a-z, 0-9, '-' and '_'"
        )))
    }
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(
        INVALID_CONFIG,
        format!("invalid programme config: {}", message.into()),
    )
}
