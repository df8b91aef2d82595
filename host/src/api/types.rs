//! The API's own request and response bodies: where the engine's types are not the
//! shape a partner app or merchant should see, or where a list needs a wrapper.
//! Each has a JSON Schema in `schemas/` (see [`super::schemas`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Quote, RedemptionRequest, Timestamp};
use crate::engine::{
    Budget, BudgetUsage, MerchantSettings, PointValue, RedemptionRecord, RedemptionStatus,
    TierChange,
};
use crate::ledger::Balance;
use crate::registry::{Activation, VersionInfo};

/// A new merchant (operator key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    /// The merchant's id: 1-64 characters of a-z, 0-9, '-' and '_'.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub id: String,
    /// Display name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// The programme currency (ISO 4217), fixed for the merchant's life.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// The programme config; checked against the programme's schema once one is
    /// active.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// What points are worth.
    #[serde(default)]
    pub point_value: Option<PointValue>,
    /// The points budget.
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// A merchant as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Merchant {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Programme currency.
    pub currency: String,
    /// Created.
    pub created_at: Timestamp,
    /// The active plugin version, if any.
    pub active_version: Option<String>,
    /// What points are worth.
    pub point_value: Option<PointValue>,
    /// The points budget.
    pub budget: Option<Budget>,
}

impl Merchant {
    /// The view of `s` with `active_version`.
    pub fn of(s: &MerchantSettings, active_version: Option<String>) -> Merchant {
        Merchant {
            id: s.id.clone(),
            name: s.name.clone(),
            currency: s.currency.clone(),
            created_at: s.created_at,
            active_version,
            point_value: s.point_value.clone(),
            budget: s.budget.clone(),
        }
    }
}

/// A merchant just created, with its first merchant key (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MerchantCreated {
    /// The merchant.
    pub merchant: Merchant,
    /// Its first merchant key.
    pub key: IssuedKey,
}

/// Every merchant (operator key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MerchantList {
    /// The merchants.
    pub merchants: Vec<Merchant>,
}

/// A change of a merchant's own details.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantUpdate {
    /// New display name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
}

/// A new programme config.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// The config; it must satisfy the active programme's config schema. `null`
    /// returns to the programme's default config.
    pub config: Option<serde_json::Value>,
}

/// The programme config in force.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConfigView {
    /// The config the programme runs with (the merchant's, or the programme's
    /// default when the merchant set none).
    pub config: serde_json::Value,
    /// Whether the merchant set it (false: the programme's default).
    pub custom: bool,
    /// The active plugin version.
    pub version: Option<String>,
    /// The active programme's config schema.
    pub schema: serde_json::Value,
}

/// What points are worth and the budget; `null` removes either.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    /// What points are worth.
    pub point_value: Option<PointValue>,
    /// The budget.
    pub budget: Option<Budget>,
}

/// The budget and its use in the current period.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BudgetView {
    /// What points are worth.
    pub point_value: Option<PointValue>,
    /// The budget.
    pub budget: Option<Budget>,
    /// Use in the period containing now.
    pub usage: BudgetUsage,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Everything within the merchant.
    Merchant,
    /// One partner of the merchant: its events, offers and redemptions.
    Partner,
}

/// A key to issue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// Merchant or partner key.
    pub kind: KeyKind,
    /// For a partner key: the partner (it must exist).
    #[serde(default)]
    pub partner: Option<String>,
    /// What the key is for, for people.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub label: Option<String>,
}

/// A key as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyView {
    /// The key's id (the part of the token after `lk_` and before the next `_`).
    pub id: String,
    /// Merchant or partner key.
    pub kind: KeyKind,
    /// For a partner key: the partner.
    pub partner: Option<String>,
    /// What it is for.
    pub label: Option<String>,
    /// Issued.
    pub created_at: Timestamp,
    /// Revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A key just issued: the token is shown this once and stored only hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssuedKey {
    /// The key.
    #[serde(flatten)]
    pub key: KeyView,
    /// The bearer token.
    pub token: String,
}

/// A merchant's keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    /// The keys, revoked ones included.
    pub keys: Vec<KeyView>,
}

/// A partner to register.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRequest {
    /// The partner's id: 1-64 characters of a-z, 0-9, '-' and '_'.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub id: String,
    /// Display name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
}

/// A partner of a merchant (a hotel, a car-rental firm, a coalition member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Partner {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Registered.
    pub created_at: Timestamp,
}

/// A merchant's partners.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PartnerList {
    /// The partners.
    pub partners: Vec<Partner>,
}

/// A merchant's plugin versions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PluginList {
    /// The active version.
    pub active: Option<String>,
    /// Every uploaded version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Activations, oldest first.
    pub history: Vec<Activation>,
}

/// A member's tier changes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TierHistory {
    /// The changes, oldest first.
    pub changes: Vec<TierChange>,
}

/// A perk consumption.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consumption {
    /// The caller's id for it; a retry with the same id is answered once.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Which grant of the perk, when the member holds several.
    #[serde(default)]
    pub grant: Option<String>,
}

/// A partner's offers for a member.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OfferList {
    /// The partner.
    pub partner: String,
    /// The offers.
    pub offers: Vec<crate::domain::Offer>,
}

/// A redemption: quoted, committed or cancelled.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Redemption {
    /// Id: commit or cancel with it.
    pub id: String,
    /// The member.
    pub member: String,
    /// The partner that asked, if one did.
    pub partner: Option<String>,
    /// Status.
    pub status: RedemptionStatus,
    /// What was asked.
    pub request: RedemptionRequest,
    /// The programme's price: points and an optional cash part.
    pub quote: Quote,
    /// The plugin version that priced it.
    pub plugin_version: String,
    /// Quoted.
    pub quoted_at: Timestamp,
    /// The quote can be committed until then.
    pub expires_at: Timestamp,
    /// Committed.
    pub committed_at: Option<Timestamp>,
    /// Cancelled.
    pub cancelled_at: Option<Timestamp>,
    /// The member's balance after the commit or cancellation.
    pub balance: Option<Balance>,
}

impl From<RedemptionRecord> for Redemption {
    fn from(r: RedemptionRecord) -> Redemption {
        Redemption {
            id: r.id,
            member: r.member,
            partner: r.partner,
            status: r.status,
            request: r.request,
            quote: r.quote,
            plugin_version: r.plugin_version,
            quoted_at: r.quoted_at,
            expires_at: r.expires_at,
            committed_at: r.committed_at,
            cancelled_at: r.cancelled_at,
            balance: r.balance,
        }
    }
}

/// Liveness and readiness.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// "ok", or what is not ready.
    pub status: String,
}

/// Query of a ledger page.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// Lines older than this sequence number (the previous page's `next_before`).
    pub before: Option<u64>,
    /// Lines per page, 1-500 (default 50).
    pub limit: Option<usize>,
}

/// Query of a member's offers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffersQuery {
    /// The partner (a partner key may ask only for its own).
    pub partner: Option<String>,
}

/// Query of webhook deliveries.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only this endpoint's.
    pub endpoint: Option<String>,
    /// At most this many, 1-500 (default 100).
    pub limit: Option<usize>,
}

/// The period of analytics: whole months, inclusive.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// First month, "YYYY-MM" (default: the beginning).
    pub from: Option<String>,
    /// Last month, "YYYY-MM" (default: now).
    pub to: Option<String>,
}

/// Query of lapsed members.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LapsedQuery {
    /// Days without a purchase (default 90).
    pub days: Option<u32>,
    /// Members after this id (the previous page's `next_after`).
    pub after: Option<String>,
    /// Members per page, 1-1000 (default 100).
    pub limit: Option<usize>,
}

/// An uploaded history file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryFile {
    /// Its id (the SHA-256 of its bytes): pass it as a simulation's `history`.
    pub id: String,
    /// Operations in it.
    pub operations: u64,
    /// The first operation's time.
    pub first_at: Option<crate::domain::Timestamp>,
    /// The last operation's time.
    pub last_at: Option<crate::domain::Timestamp>,
}
