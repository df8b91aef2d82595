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
//! - [`endpoints`]: registering, listing and deleting endpoints; listing deliveries.
//! - [`deliver`]: the delivery worker and the signature.
//!
//! # Storage
//!
//! Everything is keyed by merchant (`merchant \0 ...`), like the rest of the host:
//!
//! | space | key parts | value |
//! | --- | --- | --- |
//! | `Outbox` | `evt_<id>` | an event not yet fanned out (JSON) |
//! | `Webhooks` | `endpoint`, `wh_<id>` | an endpoint and its secret (JSON) |
//! | `Webhooks` | `sent`, `expiring\0<member>\0<lot><expiry>` or `lapsing\0<member>\0<last purchase>` | empty: the sweep sent that notice |
//! | `Deliveries` | `d`, `dlv_<id>` | a delivery with its status and attempts (JSON) |
//! | `Deliveries` | `p`, `dlv_<id>` | while pending: the next attempt's time (ms, 8 bytes big-endian), then the endpoint id |
//!
//! Event and delivery ids start with the time they were made (see `new_id`), so
//! the outbox is fanned out in the order things happened and deliveries list newest
//! first by key, page by page.

pub mod address;
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
use crate::engine::Engine;
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
    /// Deliveries in flight at once to one endpoint, so a slow endpoint holds only
    /// part of `concurrency` and the others' deliveries keep going.
    pub per_endpoint: usize,
    /// How often the worker looks for retries that came due (new outbox rows wake
    /// it at once).
    pub poll: Duration,
    /// `points.expiring` is sent this long before the points expire.
    pub expiring_within: Duration,
    /// `member.lapsing` is sent after this long without a purchase.
    pub lapse_after: Duration,
    /// Whether endpoints may be on loopback, private or link-local addresses (see
    /// [`address`]); off by default.
    pub allow_private: bool,
}

impl Default for WebhookOptions {
    fn default() -> WebhookOptions {
        WebhookOptions {
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(6 * 3600),
            // 30 s doubling, capped at 6 h: 12 attempts span about 15 hours, long
            // enough to ride out a receiver's bad night.
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            concurrency: 8,
            per_endpoint: 4,
            poll: Duration::from_secs(1),
            expiring_within: Duration::from_secs(30 * 86_400),
            lapse_after: Duration::from_secs(90 * 86_400),
            allow_private: false,
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

/// A new id: `prefix`, then the time in milliseconds as 10 Crockford base-32
/// characters (so ids sort by when they were made), then 10 random ones (50 bits,
/// so ids made in the same millisecond do not collide).
pub(crate) fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 10];
    if getrandom::fill(&mut random).is_err() {
        // No randomness (never seen on the platforms we run on): a process-wide
        // counter still keeps this process's ids apart.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (i, b) in random.iter_mut().enumerate() {
            *b = (n >> ((i % 8) * 5)) as u8;
        }
    }
    let mut id = String::with_capacity(prefix.len() + 20);
    id.push_str(prefix);
    for i in (0..10).rev() {
        id.push(ALPHABET[((ms >> (i * 5)) & 31) as usize] as char);
    }
    id.extend(random.iter().map(|b| ALPHABET[usize::from(b & 31)] as char));
    id
}

/// Add an outbox row for `kind` to `batch` when `merchant` has an endpoint that
/// wants it. Called by the engine with the batch of the change itself, so the row
/// exists exactly when the change does; the engine wakes the delivery worker once
/// the batch is applied. `data` builds the payload, only when it is wanted.
pub fn announce(
    subs: &Subscriptions,
    batch: &mut Batch,
    merchant: &str,
    kind: EventKind,
    at: Timestamp,
    data: impl FnOnce() -> serde_json::Value,
) {
    if !subs.wants(merchant, kind) {
        return;
    }
    let row = OutboxRow {
        id: new_id("evt_"),
        kind,
        created_at: at,
        data: data(),
    };
    batch.put(
        Space::Outbox,
        Key::merchant(merchant, &[row.id.as_bytes()]),
        // A struct of strings, numbers and a JSON value: serialising cannot fail.
        serde_json::to_vec(&row).unwrap_or_default(),
    );
}

/// The webhooks (see the module docs). Share it behind an `Arc`.
pub struct Webhooks {
    storage: Arc<dyn Storage>,
    // Writes go through the engine's group commit, so they share its flushes and
    // are durable when they return.
    engine: Arc<Engine>,
    subs: Arc<Subscriptions>,
    options: WebhookOptions,
    // An async mutex around counting a merchant's endpoints and adding one, so two
    // concurrent registrations cannot both pass the limit. Held across the durable
    // write (an await), which a std mutex must not be; registrations are rare.
    registering: tokio::sync::Mutex<()>,
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
            registering: tokio::sync::Mutex::new(()),
        };
        w.load_subscriptions()?;
        Ok(w)
    }

    /// The options.
    pub fn options(&self) -> &WebhookOptions {
        &self.options
    }

    /// Whether an endpoint of `merchant` wants `kind` (in memory: what the engine
    /// checks before writing an outbox row).
    pub fn wanted(&self, merchant: &str, kind: EventKind) -> bool {
        self.subs.wants(merchant, kind)
    }
}
