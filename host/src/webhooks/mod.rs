//! Webhooks: merchants register endpoints for kinds of events; the engine writes an
//! outbox row in the same transaction as the change it announces (only for kinds
//! some endpoint of the merchant wants); a delivery worker fans each row out into one
//! delivery per subscribed endpoint, signs it (HMAC-SHA256 over a timestamp and the
//! body, like the big payment platforms), posts it, and retries with exponential
//! backoff until it is delivered or gives up. Deliveries are records in storage with
//! their status, attempts and last error, so they are visible and survive restarts.
//!
//! - [`subscriptions`]: which merchant wants which kinds, in memory, read on the
//!   engine's hot path.
//! - [`endpoints`]: registering, listing and deleting endpoints.
//! - [`deliver`]: the delivery worker and the signature.

mod deliver;
mod endpoints;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use deliver::{SignatureError, sign, verify_signature};
pub use subscriptions::Subscriptions;

use crate::domain::Timestamp;
use crate::engine::{Engine, random_code};
use crate::storage::{Batch, Key, Space, Storage, StorageError};

/// What a webhook announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum EventKind {
    /// A member's tier changed.
    #[serde(rename = "tier.changed")]
    TierChanged,
    /// An event credited points.
    #[serde(rename = "points.earned")]
    PointsEarned,
    /// A member's points expire soon (sent once per lot, by the sweep).
    #[serde(rename = "points.expiring")]
    PointsExpiring,
    /// A redemption was committed.
    #[serde(rename = "redemption.committed")]
    RedemptionCommitted,
    /// A member bought nothing for the lapse period (sent once per lapse, by the
    /// sweep; a new purchase re-arms it).
    #[serde(rename = "member.lapsing")]
    MemberLapsing,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 5] = [
        EventKind::TierChanged,
        EventKind::PointsEarned,
        EventKind::PointsExpiring,
        EventKind::RedemptionCommitted,
        EventKind::MemberLapsing,
    ];

    /// The kind's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::TierChanged => "tier.changed",
            EventKind::PointsEarned => "points.earned",
            EventKind::PointsExpiring => "points.expiring",
            EventKind::RedemptionCommitted => "redemption.committed",
            EventKind::MemberLapsing => "member.lapsing",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// An endpoint to register.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// Where to POST: an `http://` or `https://` URL.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// The kinds of events to send (at least one, no repeats).
    #[schemars(length(min = 1))]
    pub events: Vec<EventKind>,
    /// What it is for, for people.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub description: Option<String>,
}

/// An endpoint as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointView {
    /// Id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// The kinds sent.
    pub events: Vec<EventKind>,
    /// What it is for.
    pub description: Option<String>,
    /// Registered.
    pub created_at: Timestamp,
}

/// An endpoint just registered, with its signing secret (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The secret deliveries are signed with (`loyalty-signature: t=...,v1=...`).
    pub secret: String,
}

/// A merchant's endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointList {
    /// The endpoints.
    pub endpoints: Vec<EndpointView>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; the next attempt is at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    /// Delivery id.
    pub id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The event's id (the `loyalty-webhook-id` header; the same on every attempt,
    /// so receivers can drop repeats).
    pub event: String,
    /// The event's kind.
    pub kind: EventKind,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<u16>,
    /// What went wrong last, if anything.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: Timestamp,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// The body sent (the same on every attempt).
    pub payload: serde_json::Value,
}

/// A merchant's deliveries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryPage {
    /// The deliveries.
    pub deliveries: Vec<Delivery>,
}

/// Why a webhook operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A field of the request is invalid.
    #[error("{pointer}: {message}")]
    Invalid {
        /// JSON pointer.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// No such endpoint.
    #[error("no webhook endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The merchant has as many endpoints as allowed.
    #[error("at most {0} webhook endpoints per merchant")]
    TooMany(usize),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}

impl From<StorageError> for WebhookError {
    fn from(e: StorageError) -> WebhookError {
        WebhookError::Storage(e.to_string())
    }
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// The wait before the second attempt; it doubles after each failure.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_cap: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// `points.expiring` is sent this long before the points expire.
    pub expiring_within: Duration,
    /// `member.lapsing` is sent after this long without a purchase.
    pub lapse_after: Duration,
}

impl Default for WebhookOptions {
    fn default() -> WebhookOptions {
        WebhookOptions {
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(6 * 3600),
            // 30 s doubling, capped at 6 h: about two days of trying.
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            concurrency: 8,
            expiring_within: Duration::from_secs(30 * 86_400),
            lapse_after: Duration::from_secs(90 * 86_400),
        }
    }
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRow {
    pub id: String,
    pub kind: EventKind,
    pub created_at: Timestamp,
    pub data: serde_json::Value,
}

/// Add an outbox row for `kind` to `batch` when `merchant` has an endpoint that
/// wants it. Called by the engine with the batch of the change itself.
pub fn announce(
    subs: &Subscriptions,
    batch: &mut Batch,
    merchant: &str,
    kind: EventKind,
    at: Timestamp,
    data: serde_json::Value,
) {
    if !subs.wants(merchant, kind) {
        return;
    }
    let id = format!(
        "evt_{}",
        random_code(20).unwrap_or_default().to_ascii_lowercase()
    );
    let row = OutboxRow {
        id: id.clone(),
        kind,
        created_at: at,
        data,
    };
    batch.put(
        Space::Outbox,
        Key::merchant(merchant, &[id.as_bytes()]),
        serde_json::to_vec(&row).unwrap_or_default(),
    );
    subs.mark_dirty();
}

/// The webhooks (see the module docs). Share it behind an `Arc`.
pub struct Webhooks {
    storage: Arc<dyn Storage>,
    engine: Arc<Engine>,
    subs: Arc<Subscriptions>,
    options: WebhookOptions,
}

impl Webhooks {
    /// Webhooks over `engine`'s storage; loads the subscriptions the engine reads.
    pub fn new(engine: Arc<Engine>, options: WebhookOptions) -> Result<Webhooks, WebhookError> {
        let storage = engine.storage().clone();
        let subs = engine.subscriptions().clone();
        subs.set_windows(
            options.expiring_within.as_secs() as i64,
            options.lapse_after.as_secs() as i64,
        );
        let w = Webhooks {
            storage,
            engine,
            subs,
            options,
        };
        w.load_subscriptions()?;
        Ok(w)
    }

    /// The options.
    pub fn options(&self) -> &WebhookOptions {
        &self.options
    }
}
