//! The host's own types for everything a plugin reads and decides, in the JSON shape the
//! runner, the API and storage use. Pure data: no I/O here.
//!
//! JSON conventions: `snake_case` names; times are whole seconds since the Unix epoch
//! (UTC); money is `{"minor": 50000, "currency": "USD"}`; attributes are JSON objects of
//! strings; dates are `"YYYY-MM-DD"`. Inputs reject unknown fields, and everything that
//! has a natural empty value may be left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Seconds since 1970-01-01T00:00:00Z.
pub type Timestamp = i64;

/// Free key/value pairs.
pub type Attributes = BTreeMap<String, String>;

/// The largest amount of money the host takes, from a caller or a programme, in minor
/// units (10^15: ten trillion in a currency of cents), so that sums over any number
/// of amounts a member's lifetime holds cannot overflow.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An amount in integer minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
}

/// Activity totals over one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Totals {
    /// Purchase spend net of refunds, in the programme currency's minor units.
    pub spend: i64,
    /// Purchase events.
    pub purchases: u32,
    /// Events of any kind.
    pub events: u32,
    /// Points credited.
    pub points_earned: i64,
    /// Points credited as qualifying.
    pub qualifying_points: i64,
}

/// Rolling-window statistics of a member (see the contract for the windows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Stats {
    /// Since enrolment.
    pub lifetime: Totals,
    /// The calendar year of `now`.
    pub calendar_year: Totals,
    /// The calendar year before.
    pub previous_calendar_year: Totals,
    /// The month of `now` and the eleven before.
    pub rolling_12_months: Totals,
    /// Since the last enrolment-anniversary month.
    pub membership_year: Totals,
    /// Last event of any kind.
    pub last_activity: Option<Timestamp>,
    /// Last purchase.
    pub last_purchase: Option<Timestamp>,
}

/// What a plugin sees of a member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemberSnapshot {
    /// Member id.
    pub id: String,
    /// Enrolment time.
    pub enrolled_at: Timestamp,
    /// Current tier id ("" before the first decision).
    pub tier: String,
    /// Since when in that tier.
    pub tier_since: Timestamp,
    /// Available points.
    pub balance: i64,
    /// Pending points.
    pub pending: i64,
    /// Recorded debt.
    pub debt: i64,
    /// Birthday as "YYYY-MM-DD".
    pub birthday: Option<String>,
    /// The referrer's member id.
    pub referred_by: Option<String>,
    /// Profile attributes.
    pub attributes: Attributes,
    /// Activity statistics.
    pub stats: Stats,
    /// The plugin's state blob. In JSON it is shown as the JSON document it holds
    /// (the SDK stores state as JSON); see [`State`].
    pub state: State,
}

/// The plugin-owned state blob, stored verbatim.
///
/// In JSON it is `null` when empty, the JSON value when the bytes are a JSON document,
/// and `{"bytes_hex": "..."}` otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State(pub Vec<u8>);

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_none();
        }
        match serde_json::from_slice::<serde_json::Value>(&self.0) {
            Ok(v) => v.serialize(s),
            Err(_) => {
                let mut m = BTreeMap::new();
                m.insert("bytes_hex", hex(&self.0));
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.is_null() {
            return Ok(State::default());
        }
        if let Some(hex) = v
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("bytes_hex"))
            .and_then(|h| h.as_str())
        {
            return decode_hex(hex)
                .map(State)
                .ok_or_else(|| serde::de::Error::custom("bytes_hex is not valid hexadecimal"));
        }
        serde_json::to_vec(&v)
            .map(State)
            .map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for State {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "State".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Any JSON value: the programme decides what its state holds.
        schemars::json_schema!({
            "description": "The programme's state for the member: null when empty, the JSON document it holds, or {\"bytes_hex\": \"...\"} for binary state."
        })
    }
}

/// Hex digits (lower- or upper-case) back to bytes; `None` unless every character is
/// a hex digit and they pair up. (Not `u8::from_str_radix`, which takes a sign: it
/// would read "+f" as 15.)
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(hex_digit(p[0])? << 4 | hex_digit(p[1])?))
        .collect()
}

/// The value of one hex digit, either case.
fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// `s` as the 32 bytes it spells if it is exactly 64 lower-case hex digits (a SHA-256
/// as [`hex`] writes it), so that writing the bytes back with [`hex`] gives `s` again.
pub(crate) fn sha256_from_hex(s: &str) -> Option<[u8; 32]> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let lower = |c: u8| hex_digit(c).filter(|_| !c.is_ascii_uppercase());
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *byte = lower(pair[0])? << 4 | lower(pair[1])?;
    }
    Some(out)
}

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// Product id.
    #[serde(default)]
    pub sku: String,
    /// Category ("fare", "beverage", "ride", ...).
    #[serde(default)]
    pub category: String,
    /// Units.
    #[serde(default = "one")]
    pub quantity: u32,
    /// Line total in minor units of the event currency.
    pub amount: i64,
}

fn one() -> u32 {
    1
}

/// Where an event happened.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// In a store.
    #[default]
    InStore,
    /// On the web.
    Online,
    /// In the mobile app.
    App,
    /// By phone.
    Phone,
    /// At a partner.
    Partner,
    /// Elsewhere.
    Other,
}

/// How the member paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Card.
    Card,
    /// Cash.
    Cash,
    /// The merchant's wallet.
    Wallet,
    /// Stored value (a gift or app card).
    StoredValue,
    /// Points.
    Points,
    /// Anything else.
    Other,
}

/// An event as partner apps send it.
///
/// `kind` is `purchase`, `refund` (needs `original_event`; `full` defaults to true),
/// `review`, `survey` (needs `score` 0-10), `referral` (needs `referee`), `check_in`,
/// `share`, `partner_purchase` (needs `partner`), or any other name the merchant uses
/// (a custom event, lower-case letters, digits, `-` and `_`, at most 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The caller's id; processing is idempotent on it.
    pub id: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// What happened.
    pub kind: String,
    /// Money involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// Line items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<LineItem>,
    /// Where.
    #[serde(default)]
    pub channel: Channel,
    /// How the member paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentMethod>,
    /// Store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Partner id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// For refunds: the purchase's event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_event: Option<String>,
    /// For refunds: whether the whole purchase is refunded (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<bool>,
    /// For surveys: the 0-10 score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// For referrals: the member who joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referee: Option<String>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

/// Points a plugin credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// Points (positive).
    pub points: i64,
    /// Why.
    pub reason: String,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Pending until.
    pub pending_until: Option<Timestamp>,
    /// Counts towards tiers.
    pub qualifying: bool,
}

/// A plugin's decision about one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Credits.
    pub credits: Vec<Credit>,
    /// New state, if changed.
    pub state: Option<State>,
    /// Badges.
    pub badges: Vec<String>,
    /// Facts recorded on the member.
    pub annotations: Attributes,
}

/// A plugin's decision when a member joins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    /// First tier, if the plugin names one.
    pub initial_tier: Option<String>,
    /// Credits, state, badges, annotations.
    pub outcome: Outcome,
}

/// Progress to the next tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierProgress {
    /// Next tier id.
    pub next_tier: String,
    /// What is measured.
    pub metric: String,
    /// Now.
    pub current: i64,
    /// Needed.
    pub target: i64,
    /// Window close.
    pub window_ends: Option<Timestamp>,
}

/// A tier decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDecision {
    /// Tier id.
    pub tier: String,
    /// Why.
    pub reason: String,
    /// Progress to the next tier.
    pub progress: Option<TierProgress>,
    /// Guaranteed until.
    pub valid_until: Option<Timestamp>,
}

/// An entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perk {
    /// Perk id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Uses; none = unlimited.
    pub quantity: Option<u32>,
    /// Valid until.
    pub valid_until: Option<Timestamp>,
    /// Grant key.
    pub grant: String,
}

/// What an offer gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum OfferKind {
    /// Earn multiplied by this percent.
    EarnMultiplier(u32),
    /// Fixed bonus points.
    BonusPoints(i64),
    /// A reward for this many points.
    Reward(i64),
    /// A discount percent.
    DiscountPercent(u32),
}

/// A partner offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Offer {
    /// Offer id.
    pub id: String,
    /// Partner id.
    pub partner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// What it gives.
    pub kind: OfferKind,
    /// Valid until.
    pub valid_until: Option<Timestamp>,
}

/// A redemption request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedemptionRequest {
    /// Catalogue reward.
    pub reward: Option<String>,
    /// Money to pay with points.
    pub amount: Option<Money>,
    /// Points the member wants to use.
    pub points: Option<i64>,
    /// Asking partner.
    pub partner: Option<String>,
    /// Anything else.
    pub attributes: Attributes,
}

/// An accepted redemption's price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quote {
    /// Reward id.
    pub reward: String,
    /// Points.
    pub points: i64,
    /// Cash part.
    pub cash: Option<Money>,
    /// Description.
    pub description: String,
}

/// A refused redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rejection {
    /// Stable code.
    pub code: String,
    /// Reason.
    pub reason: String,
}

/// The plugin's answer to a redemption request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum RedemptionAnswer {
    /// Accepted at this price.
    Accept(Quote),
    /// Refused.
    Reject(Rejection),
}

/// A tier in the programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A perk in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PerkInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// A reward in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RewardInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Fixed price in points.
    pub points: Option<i64>,
}

/// What a programme is, from `describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramInfo {
    /// Name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Tiers, lowest first.
    pub tiers: Vec<TierInfo>,
    /// Perks.
    pub perks: Vec<PerkInfo>,
    /// Rewards.
    pub rewards: Vec<RewardInfo>,
    /// The config's JSON Schema.
    pub config_schema: serde_json::Value,
    /// The default config.
    pub default_config: serde_json::Value,
}

/// A failure the plugin reported itself (bad config, unexpected input).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema,
)]
#[error("{code}: {message}")]
pub struct PluginError {
    /// Stable code.
    pub code: String,
    /// Message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_state_is_shown_as_json_and_binary_state_as_hex() {
        let json_state = State(br#"{"rides":3}"#.to_vec());
        assert_eq!(
            serde_json::to_value(&json_state).unwrap(),
            serde_json::json!({"rides": 3})
        );
        let binary = State(vec![0xff, 0x00, 0x10]);
        let v = serde_json::to_value(&binary).unwrap();
        assert_eq!(v, serde_json::json!({"bytes_hex": "ff0010"}));
        assert_eq!(serde_json::from_value::<State>(v).unwrap(), binary);
        assert_eq!(
            serde_json::from_value::<State>(serde_json::Value::Null).unwrap(),
            State::default()
        );
    }

    #[test]
    fn events_refuse_unknown_fields() {
        let e = serde_json::from_value::<Event>(serde_json::json!({
            "id": "e", "occurred_at": 1, "kind": "purchase", "colour": "red"
        }));
        assert!(e.is_err());
    }
}

/// `bytes` as lowercase hexadecimal (digests, ids, signatures).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }

    #[test]
    fn hex_reads_back_digits_only() {
        use super::{decode_hex, sha256_from_hex};
        assert_eq!(decode_hex("000fA5ff"), Some(vec![0x00, 0x0f, 0xa5, 0xff]));
        assert_eq!(decode_hex(""), Some(vec![]));
        // A sign is not a digit, though `u8::from_str_radix` would take "+f".
        assert_eq!(decode_hex("+f"), None);
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
        let digest: Vec<u8> = (0..32).map(|i| i * 7 + 3).collect();
        let text = super::hex(&digest);
        assert_eq!(sha256_from_hex(&text).map(Vec::from), Some(digest));
        assert_eq!(
            sha256_from_hex(&text.to_uppercase()),
            None,
            "lower case only"
        );
        assert_eq!(sha256_from_hex(&text[..62]), None);
        assert_eq!(sha256_from_hex(&format!("+{}", &text[1..])), None);
    }
}
