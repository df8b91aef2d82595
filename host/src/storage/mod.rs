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

mod sled_store;

pub use sled_store::SledStorage;

/// A named keyspace (a sled tree, a table, a key prefix in a distributed store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Space {
    /// Plugin versions: metadata per merchant and version.
    PluginVersions,
    /// Plugin component bytes, by content hash (per merchant).
    PluginBlobs,
    /// The active plugin version per merchant and its activation history.
    PluginActive,
}

impl Space {
    /// Every space.
    pub const ALL: [Space; 3] = [
        Space::PluginVersions,
        Space::PluginBlobs,
        Space::PluginActive,
    ];

    /// The space's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Space::PluginVersions => "plugin_versions",
            Space::PluginBlobs => "plugin_blobs",
            Space::PluginActive => "plugin_active",
        }
    }
}

/// A key inside one merchant's part of a space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
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

    /// Every key and value of `merchant` in `space` whose key starts with `prefix`
    /// (after the merchant part), in key order.
    fn scan(
        &self,
        space: Space,
        merchant: &str,
        prefix: &[&[u8]],
    ) -> Result<Vec<(Key, Vec<u8>)>, StorageError>;

    /// The merchants that have any key in `space`.
    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError>;

    /// Apply `batch` atomically: all of it or none of it.
    fn apply(&self, batch: Batch) -> Result<(), StorageError>;

    /// Make everything applied so far durable (survive a crash or power loss).
    fn flush(&self) -> Result<(), StorageError>;
}
