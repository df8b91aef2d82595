//! Storage: everything the host persists goes through the [`Storage`] trait.
//!
//! The interface is an ordered key-value store split into named [`Space`]s, with
//! atomic multi-space writes ([`Batch`]) and an explicit durability point
//! ([`Storage::flush`]). That is the shape every candidate backend offers — sled
//! (the embedded default, [`SledStorage`]) and distributed KV or SQL engines alike —
//! so a second backend can be added without touching the layers above.
//!
//! Tenancy is in the interface, not left to callers: every key is built by
//! [`Key::merchant`] and starts with the merchant id and a separator, and every read
//! and scan takes the merchant, so no operation can cross tenants.

mod memory;
mod sled_store;

pub use memory::MemoryStorage;
pub use sled_store::SledStorage;

/// A named keyspace (a tagged key range in sled's one tree, a table, a key prefix in a
/// distributed store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Space {
    /// Merchants: settings, point value and budget.
    Merchants,
    /// Members: profile, tier, points account, statistics, plugin state, perks.
    Members,
    /// Lookup codes: member card codes and referral codes, to member ids.
    Codes,
    /// Ledger lines, in pages per member.
    Ledger,
    /// Idempotency records: processed events (with what they earned) and other
    /// operations, by the caller's id.
    Idempotency,
    /// Redemptions: quotes, commits, cancellations.
    Redemptions,
    /// Tier changes per member.
    TierHistory,
    /// Points issued per merchant and budget period.
    Budget,
    /// Partners of a merchant.
    Partners,
    /// API keys (hashed).
    Keys,
    /// Webhook deliveries waiting to be sent, written with the change they announce.
    Outbox,
    /// Plugin versions: metadata per merchant and version.
    PluginVersions,
    /// Plugin component bytes, by content hash (per merchant).
    PluginBlobs,
    /// The active plugin version per merchant and its activation history.
    PluginActive,
    /// Webhook endpoints, and the markers that keep sweep-time notices from
    /// repeating.
    Webhooks,
    /// Webhook deliveries: one per event and endpoint, with status and attempts.
    Deliveries,
    /// The recorded history: every operation that ran the programme, in the order of
    /// the time it happened, as it was asked (what simulations replay).
    Journal,
    /// Background jobs (simulations, imports): request, progress, outcome.
    Jobs,
}

impl Space {
    /// Every space.
    pub const ALL: [Space; 18] = [
        Space::Merchants,
        Space::Members,
        Space::Codes,
        Space::Ledger,
        Space::Idempotency,
        Space::Redemptions,
        Space::TierHistory,
        Space::Budget,
        Space::Partners,
        Space::Keys,
        Space::Outbox,
        Space::PluginVersions,
        Space::PluginBlobs,
        Space::PluginActive,
        Space::Webhooks,
        Space::Deliveries,
        Space::Journal,
        Space::Jobs,
    ];

    /// The space's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Space::Merchants => "merchants",
            Space::Members => "members",
            Space::Codes => "codes",
            Space::Ledger => "ledger",
            Space::Idempotency => "idempotency",
            Space::Redemptions => "redemptions",
            Space::TierHistory => "tier_history",
            Space::Budget => "budget",
            Space::Partners => "partners",
            Space::Keys => "keys",
            Space::Outbox => "outbox",
            Space::PluginVersions => "plugin_versions",
            Space::PluginBlobs => "plugin_blobs",
            Space::PluginActive => "plugin_active",
            Space::Webhooks => "webhooks",
            Space::Deliveries => "deliveries",
            Space::Journal => "journal",
            Space::Jobs => "jobs",
        }
    }
}

/// A key inside one merchant's part of a space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
    /// Where a scan of `merchant`'s keys under the whole parts `prefix` starts (every
    /// such key begins with it): `merchant \0` with no parts, else the prefix's key
    /// and one more separator, so that "m1" does not match "m10".
    pub fn scan_start(merchant: &str, prefix: &[&[u8]]) -> Vec<u8> {
        let mut start = Key::merchant(merchant, prefix).0;
        if !prefix.is_empty() {
            start.push(0);
        }
        start
    }

    /// The key `parts` of `merchant`: `merchant \0 part \0 part ...`. Merchant ids
    /// never contain NUL (they are validated slugs), so prefixes cannot collide.
    pub fn merchant(merchant: &str, parts: &[&[u8]]) -> Key {
        let mut k = Vec::with_capacity(
            merchant.len() + 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>(),
        );
        k.extend_from_slice(merchant.as_bytes());
        k.push(0);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(0);
            }
            k.extend_from_slice(p);
        }
        Key(k)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's last part (after the last separator). Only meaningful when the last
    /// part contains no NUL byte (ids and big-endian numbers below 2^56 qualify only
    /// if they have no zero byte, so numbers are read with [`Key::suffix`] instead).
    pub fn last_part(&self) -> &[u8] {
        match self.0.iter().rposition(|b| *b == 0) {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The last `n` bytes (a fixed-width part such as a big-endian sequence number).
    pub fn suffix(&self, n: usize) -> &[u8] {
        &self.0[self.0.len().saturating_sub(n)..]
    }
}

/// A big-endian, fixed-width key part for numbers, so keys sort numerically.
pub fn seq_part(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Read a number written with [`seq_part`] from the end of `key`.
pub fn seq_of(key: &Key) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(key.suffix(8));
    u64::from_be_bytes(b)
}

/// Why storage failed. The message is for operators' logs, not for API clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend reported an I/O or corruption error.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// A set of writes applied atomically across spaces.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub(crate) ops: Vec<(Space, Key, Option<Vec<u8>>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Set `key` in `space` to `value`.
    pub fn put(&mut self, space: Space, key: Key, value: Vec<u8>) -> &mut Batch {
        self.ops.push((space, key, Some(value)));
        self
    }

    /// Remove `key` from `space`.
    pub fn delete(&mut self, space: Space, key: Key) -> &mut Batch {
        self.ops.push((space, key, None));
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The storage interface (see the module docs).
pub trait Storage: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError>;

    /// Every key and value of `merchant` in `space` under the key parts `prefix`
    /// (whole parts: prefix `["m1"]` does not match `"m10"`), in key order.
    fn scan(
        &self,
        space: Space,
        merchant: &str,
        prefix: &[&[u8]],
    ) -> Result<Vec<(Key, Vec<u8>)>, StorageError> {
        self.scan_page(space, merchant, prefix, None, usize::MAX, false)
    }

    /// Up to `limit` keys and values under `prefix` (as [`Storage::scan`]) that come
    /// after the key `after` (or from the start), in key order, or in reverse order
    /// (before `after`) when `reverse`. This is what cursor pagination is built on.
    fn scan_page(
        &self,
        space: Space,
        merchant: &str,
        prefix: &[&[u8]],
        after: Option<&Key>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Key, Vec<u8>)>, StorageError>;

    /// Call `visit` with every key and value of `merchant` in `space`, in key order,
    /// without holding them all in memory; `visit` returns false to stop.
    fn visit(
        &self,
        space: Space,
        merchant: &str,
        visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
    ) -> Result<(), StorageError>;

    /// The merchants that have any key in `space` (without reading all their keys).
    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError>;

    /// Apply `batch` atomically: all of it or none of it.
    fn apply(&self, batch: Batch) -> Result<(), StorageError>;

    /// Make everything applied so far durable (survive a crash or power loss).
    fn flush(&self) -> Result<(), StorageError>;
}

/// For tests: storage whose reads go to a [`SledStorage`] and whose writes a test can
/// intercept (to count them, or make them fail).
#[cfg(test)]
pub(crate) mod intercept {
    use super::{Batch, Key, SledStorage, Space, Storage, StorageError};

    /// A test's storage: reads go to [`Intercept::inner`]; `apply` and `flush` too
    /// unless the test overrides them.
    pub(crate) trait Intercept: Send + Sync + 'static {
        /// The storage underneath.
        fn inner(&self) -> &SledStorage;

        /// Apply a batch (by default, to the storage underneath).
        fn apply(&self, batch: Batch) -> Result<(), StorageError> {
            self.inner().apply(batch)
        }

        /// Flush (by default, the storage underneath).
        fn flush(&self) -> Result<(), StorageError> {
            self.inner().flush()
        }
    }

    impl<T: Intercept> Storage for T {
        fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner().get(space, key)
        }

        fn scan_page(
            &self,
            space: Space,
            merchant: &str,
            prefix: &[&[u8]],
            after: Option<&Key>,
            limit: usize,
            reverse: bool,
        ) -> Result<Vec<(Key, Vec<u8>)>, StorageError> {
            self.inner()
                .scan_page(space, merchant, prefix, after, limit, reverse)
        }

        fn visit(
            &self,
            space: Space,
            merchant: &str,
            visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
        ) -> Result<(), StorageError> {
            self.inner().visit(space, merchant, visit)
        }

        fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
            self.inner().merchants(space)
        }

        fn apply(&self, batch: Batch) -> Result<(), StorageError> {
            Intercept::apply(self, batch)
        }

        fn flush(&self) -> Result<(), StorageError> {
            Intercept::flush(self)
        }
    }
}
