//! What the engine stores, and what its operations answer. Stored in the storage
//! spaces named on each type, in postcard (binary) form.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::domain::{
    Attributes, Money, Quote, RedemptionRequest, State, TierProgress, Timestamp, sha256_from_hex,
};
use crate::ledger::{Account, Balance, Earned, Line, Taken};
use crate::stats::ActivityStats;

/// A merchant ([`crate::storage::Space::Merchants`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MerchantSettings {
    /// Merchant id (a slug).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The programme currency (ISO 4217): stats and budgets are kept in it.
    pub currency: String,
    /// When created.
    pub created_at: Timestamp,
    /// The programme config; `None` means the active plugin's default config.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// What points are worth.
    #[serde(default)]
    pub point_value: Option<PointValue>,
    /// The points budget.
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// `points` points are worth `worth` (e.g. 100 points = 1.00 USD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointValue {
    /// A number of points.
    pub points: i64,
    /// What they are worth, in the programme currency.
    pub worth: Money,
}

impl PointValue {
    /// The value of `points` in minor units, rounded down (at most `i64::MAX`: a
    /// value that large is over any budget, which is at most 10^15).
    pub fn value_of(&self, points: i64) -> i64 {
        if self.points <= 0 {
            return 0;
        }
        let value = i128::from(points) * i128::from(self.worth.minor) / i128::from(self.points);
        i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
    }
}

/// The period a budget covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// A calendar month (UTC).
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar year.
    Year,
}

impl BudgetPeriod {
    /// The period's key for `at`: "2026-11", "2026-q4", "2026".
    pub fn key(self, at: Timestamp) -> String {
        let d = loyalty_sdk::time::date(at);
        match self {
            BudgetPeriod::Month => format!("{:04}-{:02}", d.year, d.month),
            BudgetPeriod::Quarter => format!("{:04}-q{}", d.year, (d.month - 1) / 3 + 1),
            BudgetPeriod::Year => format!("{:04}", d.year),
        }
    }
}

/// What happens to credits beyond the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// Refuse them, with the reason in the event's result.
    Reject,
    /// Credit them and report the overrun.
    Report,
}

/// A points budget: the value of points issued per period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The period.
    pub period: BudgetPeriod,
    /// The most issued points may be worth per period.
    pub limit: Money,
    /// What happens beyond it.
    pub on_exceed: OnExceed,
}

/// Points issued in one budget period ([`crate::storage::Space::Budget`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetUsage {
    /// The period key.
    pub period: String,
    /// Points issued.
    pub points: i64,
    /// Their value in minor units.
    pub value: i64,
    /// Points credited beyond the budget (report mode).
    pub overrun_points: i64,
    /// Points refused because of the budget (reject mode).
    pub refused_points: i64,
}

/// Whether a member takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Earning and redeeming.
    Active,
    /// Left the programme; points are kept, nothing new is posted.
    OptedOut,
    /// Personal attributes erased; the ledger's totals are kept.
    Erased,
}

/// A perk the member holds (from the plugin's `perks`), one per (id, grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    /// Perk id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The plugin's grant key.
    pub grant: String,
    /// Uses granted; `None` is unlimited.
    pub quantity: Option<u32>,
    /// Uses consumed.
    pub used: u32,
    /// Valid until.
    pub valid_until: Option<Timestamp>,
    /// When granted.
    pub granted_at: Timestamp,
}

impl Entitlement {
    /// Uses left (`None`: unlimited).
    pub fn remaining(&self) -> Option<u32> {
        self.quantity.map(|q| q.saturating_sub(self.used))
    }

    /// Whether it can be used at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.valid_until.is_none_or(|v| v >= now) && self.remaining() != Some(0)
    }
}

/// A member ([`crate::storage::Space::Members`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Member id (the merchant's).
    pub id: String,
    /// Enrolment time.
    pub enrolled_at: Timestamp,
    /// Status.
    pub status: MemberStatus,
    /// Birthday "YYYY-MM-DD".
    pub birthday: Option<String>,
    /// Profile attributes (segment, anything the merchant sends).
    pub attributes: Attributes,
    /// The digital card code.
    pub card_code: Option<String>,
    /// The code others enrol with to be referred by this member.
    pub referral_code: Option<String>,
    /// Who referred this member.
    pub referred_by: Option<String>,
    /// A fingerprint of the enrolment request, for idempotent retries.
    pub enrol_fingerprint: String,
    /// Tier id.
    pub tier: String,
    /// In it since.
    pub tier_since: Timestamp,
    /// Why.
    pub tier_reason: String,
    /// Progress to the next tier.
    pub tier_progress: Option<TierProgress>,
    /// Guaranteed until.
    pub tier_valid_until: Option<Timestamp>,
    /// Tier changes recorded ([`crate::storage::Space::TierHistory`]).
    pub tier_changes: u64,
    /// Points.
    pub account: Account,
    /// Activity statistics.
    pub stats: ActivityStats,
    /// The plugin's state blob (stored as raw bytes).
    #[serde(with = "raw_state")]
    pub state: State,
    /// Badges earned.
    pub badges: BTreeSet<String>,
    /// Facts the plugin recorded.
    pub annotations: Attributes,
    /// Perks held.
    pub perks: Vec<Entitlement>,
    /// The newest ledger lines (the page being filled).
    pub ledger_page: Vec<Line>,
    /// Full ledger pages stored ([`crate::storage::Space::Ledger`]).
    pub ledger_pages: u64,
    /// Where `perks` are kept. Not part of the stored record: a header in front of it
    /// says whether they are kept apart.
    #[serde(skip)]
    pub(crate) perks_kept: PerksKept,
}

/// Where a member record's perks are kept. A member who holds perks has them under
/// [`crate::storage::Space::Perks`]: an event rewrites the member record, and the
/// airline's perks (stable while the tier is) were a large part of it. An event whose
/// `perks` answer is the one the held perks were made from, with none of them expired,
/// neither reads nor writes them. A member who holds none (and every record written
/// before this) has them in the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum PerksKept {
    /// In the record.
    #[default]
    Inline,
    /// Apart.
    Apart {
        /// A digest of the `perks` answer the held perks were made from (`None`: not
        /// known, the next answer is merged in full).
        answer: Option<u64>,
        /// The earliest `valid_until` of the held perks (`i64::MAX`: none expires).
        until: i64,
        /// The stored perks record as read (`None`: not read, and `perks` is empty).
        read: Option<Vec<u8>>,
    },
}

/// Ledger lines per stored page. The page being filled is part of the member record,
/// which every event reads and rewrites (and the storage rewrites again as it
/// consolidates and cleans its log), so it is kept short: with 32 lines a page (78
/// bytes a line for the airline) a busy member's record carried 1.2 KB of lines on
/// average. A page of 8 costs a new key every 8 lines. Pages already stored, and a
/// page being filled that is longer, are read as they are.
pub const LEDGER_PAGE: usize = 8;

/// A processed event ([`crate::storage::Space::Idempotency`], scope "event").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The member.
    pub member: String,
    /// Event kind.
    pub kind: String,
    /// SHA-256 of the request (member and event), to tell a retry from a conflict:
    /// of the event's journal entry since session 18, of the member and the event's
    /// JSON before (a retry matches either).
    pub fingerprint: String,
    /// When it happened.
    pub at: Timestamp,
    /// Its amount, for purchases (refunds are proportional to it).
    pub amount: Option<Money>,
    /// Points it earned, per lot.
    pub earned: Vec<Earned>,
    /// Whether each of `earned` counted towards tiers.
    pub qualifying: Vec<bool>,
    /// For purchases: the amount refunded so far.
    pub refunded: i64,
    /// The answer given (and given again to a retry).
    pub result: EventResult,
    /// The partner the event was posted for (a partner key's events always name their
    /// partner), so that only that partner's key can refund it. Kept after the compact
    /// form's fields, and only when there is one; records stored without it (full form,
    /// or compact from before it was kept) read back as `None`.
    #[serde(skip)]
    pub partner: Option<String>,
}

/// The first byte of an event record in its compact stored form ([`EventRecord::stored`],
/// since session 20). The full form begins with the length of the member id, which is
/// never 0.
const EVENT_COMPACT: u8 = 0;

/// An event record as [`EventRecord::stored`] writes it, after [`EVENT_COMPACT`]: the
/// fingerprint, and the plugin version when it is a content hash (as every uploaded
/// plugin's is), as their 32 bytes rather than 64 hex digits, and the member, the kind
/// and the event id once (the event id is the record's key) rather than again in the
/// answer.
#[derive(Serialize)]
struct CompactRef<'a> {
    fingerprint: [u8; 32],
    member: &'a str,
    kind: &'a str,
    at: Timestamp,
    amount: &'a Option<Money>,
    earned: &'a [Earned],
    qualifying: &'a [bool],
    refunded: i64,
    /// The plugin version when it is a SHA-256 in lower-case hex; `plugin_version`
    /// is then empty.
    version_hash: Option<[u8; 32]>,
    plugin_version: &'a str,
    credited: &'a [Credited],
    refused: &'a [Refused],
    reversed: i64,
    over_budget: bool,
    tier: &'a TierResult,
    new_badges: &'a [String],
    new_perks: &'a [String],
    balance: &'a Balance,
}

/// [`CompactRef`], read back (the same fields in the same order).
#[derive(Deserialize)]
struct Compact {
    fingerprint: [u8; 32],
    member: String,
    kind: String,
    at: Timestamp,
    amount: Option<Money>,
    earned: Vec<Earned>,
    qualifying: Vec<bool>,
    refunded: i64,
    version_hash: Option<[u8; 32]>,
    plugin_version: String,
    credited: Vec<Credited>,
    refused: Vec<Refused>,
    reversed: i64,
    over_budget: bool,
    tier: TierResult,
    new_badges: Vec<String>,
    new_perks: Vec<String>,
    balance: Balance,
}

impl EventRecord {
    /// Whether every point the event earned has been reversed by refunds.
    pub(crate) fn refunded_whole(&self) -> bool {
        self.earned.iter().all(|e| e.reversed >= e.points)
    }

    /// The record as stored under the idempotency key of event `id`: compact when its
    /// answer names this member, kind and event and its fingerprint is a SHA-256 in
    /// lower-case hex (as every record the engine makes), in full otherwise.
    pub(crate) fn stored(&self, id: &str) -> Vec<u8> {
        let r = &self.result;
        let Some(fingerprint) = sha256_from_hex(&self.fingerprint)
            .filter(|_| r.event == id && r.member == self.member && r.kind == self.kind)
        else {
            return super::encode_bin(self);
        };
        let version_hash = sha256_from_hex(&r.plugin_version);
        let compact = CompactRef {
            fingerprint,
            member: &self.member,
            kind: &self.kind,
            at: self.at,
            amount: &self.amount,
            earned: &self.earned,
            qualifying: &self.qualifying,
            refunded: self.refunded,
            version_hash,
            plugin_version: match version_hash {
                Some(_) => "",
                None => &r.plugin_version,
            },
            credited: &r.credited,
            refused: &r.refused,
            reversed: r.reversed,
            over_budget: r.over_budget,
            tier: &r.tier,
            new_badges: &r.new_badges,
            new_perks: &r.new_perks,
            balance: &r.balance,
        };
        // The marker and the record in one buffer, sized for a typical record.
        let mut out = Vec::with_capacity(256);
        out.push(EVENT_COMPACT);
        // Serialising our records cannot fail (see `encode_bin`).
        let out = postcard::to_extend(&compact, out).unwrap_or_default();
        match &self.partner {
            Some(partner) => postcard::to_extend(partner, out).unwrap_or_default(),
            None => out,
        }
    }

    /// An event record stored by [`EventRecord::stored`] (either form) under the
    /// idempotency key of event `id`.
    pub(crate) fn from_stored(bytes: &[u8], id: &str) -> Result<EventRecord, super::EngineError> {
        let Some((&EVENT_COMPACT, rest)) = bytes.split_first() else {
            return super::decode_bin(bytes, "event");
        };
        let unreadable = |e: postcard::Error| {
            super::EngineError::Storage(format!("stored event is unreadable: {e}"))
        };
        let (c, rest): (Compact, _) = postcard::take_from_bytes(rest).map_err(unreadable)?;
        let partner = match rest {
            [] => None,
            rest => Some(super::decode_bin::<String>(rest, "event")?),
        };
        Ok(EventRecord {
            partner,
            fingerprint: crate::domain::hex(&c.fingerprint),
            at: c.at,
            amount: c.amount,
            earned: c.earned,
            qualifying: c.qualifying,
            refunded: c.refunded,
            result: EventResult {
                event: id.to_string(),
                member: c.member.clone(),
                kind: c.kind.clone(),
                plugin_version: match c.version_hash {
                    Some(hash) => crate::domain::hex(&hash),
                    None => c.plugin_version,
                },
                credited: c.credited,
                refused: c.refused,
                reversed: c.reversed,
                over_budget: c.over_budget,
                tier: c.tier,
                new_badges: c.new_badges,
                new_perks: c.new_perks,
                balance: c.balance,
            },
            member: c.member,
            kind: c.kind,
        })
    }
}

/// A credit as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credited {
    /// Points.
    pub points: i64,
    /// Why.
    pub reason: String,
    /// Counts towards tiers.
    pub qualifying: bool,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Pending until.
    pub pending_until: Option<Timestamp>,
}

/// A credit the budget refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refused {
    /// Points.
    pub points: i64,
    /// The plugin's reason for the credit.
    pub credit_reason: String,
    /// Why it was refused.
    pub reason: String,
}

/// A member's tier after an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierResult {
    /// Tier id.
    pub tier: String,
    /// The tier before, when it changed.
    pub changed_from: Option<String>,
    /// Why.
    pub reason: String,
    /// Progress to the next tier.
    pub progress: Option<TierProgress>,
}

/// What posting an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventResult {
    /// The event id.
    pub event: String,
    /// The member.
    pub member: String,
    /// The event kind.
    pub kind: String,
    /// The plugin version that decided.
    pub plugin_version: String,
    /// Points credited.
    pub credited: Vec<Credited>,
    /// Credits refused by the budget.
    pub refused: Vec<Refused>,
    /// Points a refund reversed.
    pub reversed: i64,
    /// Whether issued points went over the budget (report mode).
    pub over_budget: bool,
    /// The tier after the event.
    pub tier: TierResult,
    /// Badges earned by this event.
    pub new_badges: Vec<String>,
    /// Perks granted by this event (ids).
    pub new_perks: Vec<String>,
    /// Balances after the event.
    pub balance: Balance,
}

/// A tier change ([`crate::storage::Space::TierHistory`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierChange {
    /// From ("" at enrolment).
    pub from: String,
    /// To.
    pub to: String,
    /// When.
    pub at: Timestamp,
    /// Why (the plugin's reason).
    pub reason: String,
    /// The event that caused it, if any.
    pub event: Option<String>,
}

/// Where a redemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// Priced, not committed.
    Quoted,
    /// Points deducted.
    Committed,
    /// Cancelled (points returned if it was committed).
    Cancelled,
}

/// A redemption ([`crate::storage::Space::Redemptions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionRecord {
    /// Redemption id.
    pub id: String,
    /// The member.
    pub member: String,
    /// The partner asking, if any.
    pub partner: Option<String>,
    /// Status.
    pub status: RedemptionStatus,
    /// What was asked.
    pub request: RedemptionRequest,
    /// The plugin's price.
    pub quote: Quote,
    /// The plugin version that quoted.
    pub plugin_version: String,
    /// When quoted.
    pub quoted_at: Timestamp,
    /// The quote must be committed before this.
    pub expires_at: Timestamp,
    /// When committed.
    pub committed_at: Option<Timestamp>,
    /// When cancelled.
    pub cancelled_at: Option<Timestamp>,
    /// Points taken from which lots (returned on cancellation).
    pub taken: Vec<Taken>,
    /// Balances after the last change.
    pub balance: Option<Balance>,
}

/// A finished non-event operation, kept for idempotent retries
/// ([`crate::storage::Space::Idempotency`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// SHA-256 of the request.
    pub fingerprint: String,
    /// The answer given.
    pub result: serde_json::Value,
}

/// The plugin state as raw bytes in storage (its JSON form is for people).
mod raw_state {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::State;

    pub fn serialize<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&state.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        Vec::<u8>::deserialize(d).map(State)
    }
}
