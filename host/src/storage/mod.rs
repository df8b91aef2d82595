//! Storage: everything the host persists goes through the [`Storage`] trait.
//!
//! The interface is an ordered key-value store split into named [`Space`]s, with
//! atomic multi-space writes ([`Batch`]) and an explicit durability point
//! ([`Storage::flush`]). That is the shape every candidate backend offers — sled
//! (the embedded default, [`SledStorage`]) and distributed KV or SQL engines alike —
//! so a second backend can be added without touching the layers above. Logs (the
//! journal) use [`Batch::append`], which leaves the key's sequence number to the
//! backend, so a backend may store the records one apply appends to a group under one
//! key (sled does: a new key costs sled far more than a longer value).
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
    /// Members: profile, tier, points account, statistics, plugin state, and the perks
    /// of members who hold none (see [`Space::Perks`]).
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
    /// The perks a member holds, per member, apart from the member record so that an
    /// event that leaves them as they were does not write them again.
    Perks,
}

impl Space {
    /// Every space.
    pub const ALL: [Space; 19] = [
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
        Space::Perks,
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
            Space::Perks => "perks",
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

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// Set the key to this value.
    Put(Vec<u8>),
    /// Remove the key.
    Delete,
    /// Add this record under the key as a group (see [`Batch::append`]).
    Append(Vec<u8>),
}

/// A set of writes applied atomically across spaces.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub(crate) ops: Vec<(Space, Key, Write)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Set `key` in `space` to `value`.
    pub fn put(&mut self, space: Space, key: Key, value: Vec<u8>) -> &mut Batch {
        self.ops.push((space, key, Write::Put(value)));
        self
    }

    /// Remove `key` from `space`.
    pub fn delete(&mut self, space: Space, key: Key) -> &mut Batch {
        self.ops.push((space, key, Write::Delete));
        self
    }

    /// Add `record` to `space` under `group`, as a log appends: the storage gives it
    /// a key of its own, `group \0 seq`, where `seq` (8 bytes, big-endian, read back
    /// with [`seq_of`]) is larger than any it gave before, so records sort in the
    /// order they were applied.
    ///
    /// Records appended to one group by one [`Storage::apply`] may share a key: the
    /// value is then all of them, in order (a round of the group commit is one apply,
    /// so a busy log costs a key per round, or per few KiB of it in sled, instead of
    /// one per record). Read values
    /// of appended keys with [`appended`]. They are read by scans, not by key: the
    /// group commit's overlay of pending writes does not hold them.
    pub fn append(&mut self, space: Space, group: Key, record: Vec<u8>) -> &mut Batch {
        self.ops.push((space, group, Write::Append(record)));
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The batch as plain writes (`None` removes the key), for a backend to apply:
    /// puts and deletes in order, then each group's appended records as one value
    /// under a new key from `seq`; or as several, in order, each a new key, where one
    /// value would be longer than `max_value` bytes (a record longer than that on its
    /// own is one value).
    pub(crate) fn resolve(
        self,
        seq: &AppendSeq,
        max_value: usize,
    ) -> Vec<(Space, Key, Option<Vec<u8>>)> {
        let mut writes = Vec::with_capacity(self.ops.len());
        // Groups in the order of their first record; a handful per batch. Each holds
        // its values in order, the last one still being filled.
        let mut groups: Vec<(Space, Key, Vec<Vec<u8>>)> = Vec::new();
        for (space, key, write) in self.ops {
            match write {
                Write::Put(v) => writes.push((space, key, Some(v))),
                Write::Delete => writes.push((space, key, None)),
                Write::Append(record) => {
                    let found = groups.iter().position(|(s, k, _)| *s == space && *k == key);
                    let at = match found {
                        Some(i) => i,
                        None => {
                            groups.push((space, key, vec![vec![APPENDED]]));
                            groups.len() - 1
                        }
                    };
                    let values = &mut groups[at].2;
                    let last = values.last().map_or(0, Vec::len);
                    if last > 1 && last + RECORD_HEAD + record.len() > max_value {
                        values.push(vec![APPENDED]);
                    }
                    if let Some(value) = values.last_mut() {
                        push_record(value, &record);
                    }
                }
            }
        }
        for (space, group, values) in groups {
            for value in values {
                let mut key = group.clone();
                key.0.push(0);
                key.0.extend_from_slice(&seq_part(seq.next()));
                writes.push((space, key, Some(value)));
            }
        }
        writes
    }
}

/// The bytes in front of each appended record: its length (a `u32`, big-endian).
const RECORD_HEAD: usize = 4;

/// The first byte of a value that holds appended records. (A value without it is one
/// record written before appends were grouped: a JSON journal entry.)
const APPENDED: u8 = 0;

fn push_record(value: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).expect("a record under 4 GiB");
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(record);
}

/// The records of a value written by [`Batch::append`], in the order they were
/// appended. A value that does not start as appended values do is one record.
pub fn appended(value: &[u8]) -> Result<Vec<&[u8]>, StorageError> {
    let Some((&APPENDED, mut rest)) = value.split_first() else {
        return Ok(vec![value]);
    };
    let mut records = Vec::new();
    while !rest.is_empty() {
        let broken = || StorageError::Backend("an appended value is cut short".into());
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(broken)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(broken());
        }
        records.push(&tail[..len]);
        rest = &tail[len..];
    }
    Ok(records)
}

/// A value holding `records` as [`appended`] reads them: for rewriting a group's
/// records in place (with [`Batch::put`] of the same key).
pub fn appended_value<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut value = vec![APPENDED];
    for r in records {
        push_record(&mut value, r);
    }
    value
}

/// Where the sequence numbers of appended keys come from: the time the storage was
/// opened in nanoseconds, then one more for each key. So they grow across restarts
/// too (unless a process gives out a billion keys a second, or the clock goes back).
#[derive(Debug)]
pub(crate) struct AppendSeq(std::sync::atomic::AtomicU64);

impl AppendSeq {
    /// A sequence starting now.
    pub(crate) fn new() -> AppendSeq {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        AppendSeq(std::sync::atomic::AtomicU64::new(now.max(1)))
    }

    fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for AppendSeq {
    fn default() -> AppendSeq {
        AppendSeq::new()
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

    /// Storage whose applies are counted, and wait while the gate is closed: a test
    /// holds the group commit's committer in one round while it queues the next.
    pub(crate) struct Gate {
        inner: SledStorage,
        closed: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
        applies: std::sync::atomic::AtomicU64,
    }

    impl Gate {
        /// A gate, open, over `inner`.
        pub(crate) fn new(inner: SledStorage) -> Gate {
            Gate {
                inner,
                closed: std::sync::Mutex::new(false),
                opened: std::sync::Condvar::new(),
                applies: std::sync::atomic::AtomicU64::new(0),
            }
        }

        /// Close (`true`) or open the gate.
        pub(crate) fn set_closed(&self, closed: bool) {
            *self.closed.lock().unwrap() = closed;
            self.opened.notify_all();
        }

        /// How many applies have begun.
        pub(crate) fn applies(&self) -> u64 {
            self.applies.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Wait until `n` applies have begun.
        pub(crate) fn wait_for_applies(&self, n: u64) {
            while self.applies() < n {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    impl Intercept for Gate {
        fn inner(&self) -> &SledStorage {
            &self.inner
        }
        fn apply(&self, batch: Batch) -> Result<(), StorageError> {
            self.applies
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut closed = self.closed.lock().unwrap();
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
            drop(closed);
            self.inner.apply(batch)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends of one apply share a key per group, in order; a later apply's come
    /// after them; puts and deletes in the same batch are applied as usual.
    fn appends_group_per_apply(s: &dyn Storage) {
        let group = |at: &[u8]| Key::merchant("m", &[at]);
        let mut b = Batch::new();
        b.append(Space::Journal, group(b"t1"), b"one".to_vec());
        b.append(Space::Journal, group(b"t2"), b"other".to_vec());
        b.put(Space::Members, Key::merchant("m", &[b"x"]), b"x".to_vec());
        b.append(Space::Journal, group(b"t1"), b"two".to_vec());
        b.append(Space::Journal, group(b"t1"), Vec::new());
        s.apply(b).unwrap();
        let mut b = Batch::new();
        b.append(Space::Journal, group(b"t1"), b"three".to_vec());
        b.append(
            Space::Journal,
            Key::merchant("n", &[b"t1"]),
            b"theirs".to_vec(),
        );
        s.apply(b).unwrap();

        let t1 = s.scan(Space::Journal, "m", &[b"t1"]).unwrap();
        assert_eq!(t1.len(), 2, "one key per apply");
        assert!(seq_of(&t1[0].0) < seq_of(&t1[1].0));
        assert_eq!(t1[0].0.as_bytes().len(), group(b"t1").as_bytes().len() + 9);
        let records: Vec<Vec<&[u8]>> = t1.iter().map(|(_, v)| appended(v).unwrap()).collect();
        assert_eq!(
            records,
            [vec![&b"one"[..], b"two", b""], vec![&b"three"[..]]]
        );
        let t2 = s.scan(Space::Journal, "m", &[b"t2"]).unwrap();
        assert_eq!(appended(&t2[0].1).unwrap(), [b"other"]);
        assert_eq!(s.scan(Space::Journal, "n", &[]).unwrap().len(), 1);
        assert_eq!(
            s.get(Space::Members, &Key::merchant("m", &[b"x"])).unwrap(),
            Some(b"x".to_vec())
        );
        // Rewritten in place, read back the same way.
        let mut b = Batch::new();
        b.put(
            Space::Journal,
            t1[0].0.clone(),
            appended_value([&b"uno"[..], b"dos"]),
        );
        s.apply(b).unwrap();
        let v = s.get(Space::Journal, &t1[0].0).unwrap().unwrap();
        assert_eq!(appended(&v).unwrap(), [&b"uno"[..], b"dos"]);
    }

    #[test]
    fn appends_share_a_key_per_group_and_apply_in_sled_and_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        appends_group_per_apply(&SledStorage::open(dir.path(), 1 << 20).unwrap());
        appends_group_per_apply(&MemoryStorage::new());
    }

    #[test]
    fn a_group_longer_than_a_value_may_be_is_split_into_keys_in_order() {
        let group = Key::merchant("m", &[b"t"]);
        let mut b = Batch::new();
        let records: Vec<Vec<u8>> = [10, 10, 10, 40, 3, 0, 10]
            .iter()
            .enumerate()
            .map(|(i, len)| vec![i as u8; *len])
            .collect();
        for r in &records {
            b.append(Space::Journal, group.clone(), r.clone());
        }
        b.put(Space::Members, Key::merchant("m", &[b"x"]), vec![1]);
        let writes = b.resolve(&AppendSeq::new(), 30);
        assert_eq!(writes[0].0, Space::Members, "puts first");
        let values: Vec<&Vec<u8>> = writes[1..]
            .iter()
            .map(|(_, _, v)| v.as_ref().unwrap())
            .collect();
        // 1 + (4 + 10) * 2 = 29 bytes fit; the third record starts a new value; a
        // record longer than 30 on its own is a value of its own.
        let split: Vec<Vec<&[u8]>> = values.iter().map(|v| appended(v).unwrap()).collect();
        assert_eq!(
            split,
            [
                vec![&records[0][..], &records[1]],
                vec![&records[2][..]],
                vec![&records[3][..]],
                vec![&records[4][..], &records[5], &records[6]],
            ]
        );
        assert!(
            values
                .iter()
                .all(|v| v.len() <= 30 || v.len() == 1 + 4 + 40)
        );
        let seqs: Vec<u64> = writes[1..].iter().map(|(_, k, _)| seq_of(k)).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    #[test]
    fn a_value_from_before_appends_is_one_record_and_a_cut_value_is_an_error() {
        let old = br#"{"op":"cancel","id":"r1","at":5}"#;
        assert_eq!(appended(old).unwrap(), [&old[..]]);
        assert_eq!(appended(b"").unwrap(), [b""]);
        let whole = appended_value([&b"abc"[..], b"de"]);
        assert_eq!(appended(&whole).unwrap(), [&b"abc"[..], b"de"]);
        for cut in 1..whole.len() {
            // Cut between records, it reads as the records before the cut.
            let boundary = cut == 1 || cut == 8;
            assert_eq!(appended(&whole[..cut]).is_ok(), boundary, "cut at {cut}");
        }
    }
}
