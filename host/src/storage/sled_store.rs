//! The embedded default backend: sled 0.34, every [`Space`] in one tree.
//!
//! Each key is stored behind a one-byte tag naming its space, so that a [`Batch`]
//! across spaces is one `Tree::apply_batch`: atomic, like a transaction over several
//! trees, but without what a sled transaction adds to every write (it reads each key
//! it writes, under the process-wide lock that stops every reader meanwhile). An
//! event's batch is applied with its group-commit round, so this is the write path
//! every durable operation takes.
//!
//! **No sled entry is longer than [`INLINE_MAX`].** sled 0.34 writes any item of its
//! log over a quarter of a segment (128 KiB by default: a long value, or a leaf node
//! of up to 17 entries whose values add up to that) to a file of its own under
//! `blobs/`, and never fsyncs those files: `Db::flush` syncs the log, which only
//! points at them (sled's issue 1077 shows it with a crash simulator). A value that
//! lived in such a file would not survive a power loss that the flush promised it
//! would. So a longer value is stored as chunks of at most `INLINE_MAX` bytes under
//! keys of their own (tagged [`CHUNK_TAG`], outside every space) with a short header
//! at its key, and a group of appended records is split into keys of at most that
//! size ([`Batch::resolve`]). Leaves then stay far below the limit, and everything
//! sled writes is in the log it syncs.
//!
//! A stored value is one of: the value itself; [`ESCAPE`] then the value, when the
//! value begins with `ESCAPE` or [`CHUNKED`]; or a chunked value's header, beginning
//! with `CHUNKED` (see [`Header`]). Databases written before this layout are upgraded
//! when opened ([`SledStorage::open`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{AppendSeq, Batch, Key, Space, Storage, StorageError};

/// [`Storage`] on a sled database in a local directory.
#[derive(Clone)]
pub struct SledStorage {
    db: sled::Db,
    /// Every space's keys, each behind its space's [`tag`].
    data: sled::Tree,
    /// The sequence numbers of appended keys and of chunked values' generations
    /// (shared by clones).
    seq: Arc<AppendSeq>,
    /// Every chunked value's stored key, with its header's generation and chunk
    /// count (its `len` is not kept here: 0); held while a batch is applied, so
    /// batches apply one at a time (as sled applies them anyway).
    chunked: Arc<Mutex<HashMap<Vec<u8>, Header>>>,
}

/// The longest value sled stores in one entry. A leaf of sled's splits past 16
/// entries, so even a full one (17 such values and their keys, which are under 300
/// bytes) is about 75 KiB: well inside the 128 KiB that sled writes inline.
const INLINE_MAX: usize = 4 << 10;

/// The first byte of a stored value that is the value behind this byte (the value
/// begins with `ESCAPE` or [`CHUNKED`]).
const ESCAPE: u8 = 0xfe;

/// The first byte of a chunked value's [`Header`].
const CHUNKED: u8 = 0xff;

/// The tag in front of chunks' keys: `CHUNK_TAG`, the value's stored key, its
/// generation (8 bytes) and the chunk's number (4 bytes), all big-endian.
const CHUNK_TAG: u8 = 0xff;

/// Where the stored layout's version is kept (tag 0 is no space's).
const LAYOUT_KEY: &[u8] = b"\0layout";

/// This layout's version: values over [`INLINE_MAX`] chunked, others escaped.
const LAYOUT: &[u8] = b"2";

/// While a database is being upgraded to this layout: the last stored key done.
const UPGRADED_TO_KEY: &[u8] = b"\0upgraded-to";

/// How many stored entries an upgrade reads per batch.
const UPGRADE_CHUNK: usize = 1_000;

/// What a chunked value's key holds: where its chunks are and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// Unique to this write of the key, so a reader can tell a chunk of the value
    /// it read the header of from one of a value written since.
    generation: u64,
    /// How many chunks.
    chunks: u32,
    /// The value's length in bytes.
    len: u64,
}

impl Header {
    const LEN: usize = 1 + 8 + 4 + 8;

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Header::LEN);
        v.push(CHUNKED);
        v.extend_from_slice(&self.generation.to_be_bytes());
        v.extend_from_slice(&self.chunks.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v
    }

    fn decode(stored: &[u8]) -> Result<Header, StorageError> {
        let broken = || StorageError::Backend("a chunked value's header is cut short".into());
        let (&CHUNKED, rest) = stored.split_first().ok_or_else(broken)? else {
            return Err(broken());
        };
        if rest.len() != Header::LEN - 1 {
            return Err(broken());
        }
        let (generation, rest) = rest.split_at(8);
        let (chunks, len) = rest.split_at(4);
        Ok(Header {
            generation: u64::from_be_bytes(generation.try_into().map_err(|_| broken())?),
            chunks: u32::from_be_bytes(chunks.try_into().map_err(|_| broken())?),
            len: u64::from_be_bytes(len.try_into().map_err(|_| broken())?),
        })
    }
}

/// The key of chunk `n` of the value written as `generation` at the stored key `key`.
fn chunk_key(key: &[u8], generation: u64, n: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len() + 12);
    k.push(CHUNK_TAG);
    k.extend_from_slice(key);
    k.extend_from_slice(&generation.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// A chunk's key as (the value's stored key, generation, number).
fn parse_chunk_key(k: &[u8]) -> Option<(&[u8], u64, u32)> {
    let body = k.strip_prefix(&[CHUNK_TAG])?;
    let (key, tail) = body.split_at_checked(body.len().checked_sub(12)?)?;
    let (generation, n) = tail.split_at(8);
    Some((
        key,
        u64::from_be_bytes(generation.try_into().ok()?),
        u32::from_be_bytes(n.try_into().ok()?),
    ))
}

/// The name of the one tree that holds every space.
const DATA: &str = "data";

/// The byte in front of every key of `space` in the data tree. Stable: it is on disk.
fn tag(space: Space) -> u8 {
    match space {
        Space::Merchants => 1,
        Space::Members => 2,
        Space::Codes => 3,
        Space::Ledger => 4,
        Space::Idempotency => 5,
        Space::Redemptions => 6,
        Space::TierHistory => 7,
        Space::Budget => 8,
        Space::Partners => 9,
        Space::Keys => 10,
        Space::Outbox => 11,
        Space::PluginVersions => 12,
        Space::PluginBlobs => 13,
        Space::PluginActive => 14,
        Space::Webhooks => 15,
        Space::Deliveries => 16,
        Space::Journal => 17,
        Space::Jobs => 18,
        Space::Perks => 19,
    }
}

/// `bytes` behind `space`'s tag: the key as stored.
fn tagged(space: Space, bytes: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bytes.len() + 1);
    k.push(tag(space));
    k.extend_from_slice(bytes);
    k
}

/// A stored key without its tag: the key as the layers above know it.
fn untagged(stored: &[u8]) -> Key {
    Key(stored[1..].to_vec())
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// Wait (up to 5 s) until nobody holds the lock on the database in `dir`. A previous
/// owner's lock (in this process, or one just killed) is released when its last sled
/// thread lets go, which can trail a drop by a moment; sled itself fails at once, with
/// an error that only its text tells apart, so the lock is tried here first.
fn wait_for_lock(dir: &Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
    else {
        return; // A new database: nothing to wait for.
    };
    for _ in 0..250 {
        match file.try_lock() {
            // Released again when `file` is dropped; sled takes it next.
            Ok(()) => return,
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::Error(_)) => return,
        }
    }
}

/// How many entries a migrated tree's copy writes per batch.
const MIGRATE_CHUNK: usize = 10_000;

/// The writes of one batch being turned into sled's, against the index of chunked
/// values (held until the batch is applied).
struct Writes<'a> {
    chunked: std::sync::MutexGuard<'a, HashMap<Vec<u8>, Header>>,
    /// What this batch changes in the index: a new header, or `None` for a key that is
    /// no longer chunked.
    changes: HashMap<Vec<u8>, Option<Header>>,
    seq: &'a AppendSeq,
    batch: sled::Batch,
}

impl Writes<'_> {
    /// Set the stored key `key` to `value` (`None`: remove it), with the chunks of what
    /// it held before removed.
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let before = match self.changes.get(&key) {
            Some(change) => *change,
            None => self.chunked.get(&key).copied(),
        };
        if let Some(old) = before {
            for n in 0..old.chunks {
                self.batch.remove(chunk_key(&key, old.generation, n));
            }
            self.changes.insert(key.clone(), None);
        }
        match value {
            None => self.batch.remove(key),
            Some(v) if v.len() > INLINE_MAX => {
                let header = Header {
                    generation: self.seq.next(),
                    chunks: u32::try_from(v.len().div_ceil(INLINE_MAX))
                        .expect("a value under 16 TiB"),
                    len: v.len() as u64,
                };
                for (n, chunk) in (0..).zip(v.chunks(INLINE_MAX)) {
                    self.batch
                        .insert(chunk_key(&key, header.generation, n), chunk);
                }
                self.batch.insert(key.as_slice(), header.encode());
                self.changes.insert(key, Some(header));
            }
            Some(v) if v.first().is_some_and(|b| *b >= ESCAPE) => {
                let mut escaped = Vec::with_capacity(v.len() + 1);
                escaped.push(ESCAPE);
                escaped.extend_from_slice(&v);
                self.batch.insert(key, escaped);
            }
            Some(v) => self.batch.insert(key, v),
        }
    }

    /// Apply the batch to `tree`; the index follows only if it was applied.
    fn apply(mut self, tree: &sled::Tree) -> Result<(), StorageError> {
        tree.apply_batch(std::mem::take(&mut self.batch))
            .map_err(backend)?;
        for (key, change) in self.changes.drain() {
            match change {
                Some(header) => self.chunked.insert(key, header),
                None => self.chunked.remove(&key),
            };
        }
        Ok(())
    }
}

impl SledStorage {
    /// Open (or create) the database in `dir`, with a page cache of `cache_bytes`.
    ///
    /// A database written by an earlier version is brought to this layout first:
    /// - with one tree per space, each old tree is copied into the data tree, the copy
    ///   flushed, and only then the old tree dropped, so a crash part way leaves it to
    ///   be copied again;
    /// - with values stored as they are, every value over [`INLINE_MAX`] is chunked and
    ///   every value that begins as a stored value's marker is escaped, a thousand
    ///   entries a batch, each batch recording how far it got, so a crash part way
    ///   goes on from there. A leaf that held long values can go on resting on a
    ///   blob file (one of before, or one sled writes while the upgrade replaces
    ///   those values) until sled next rewrites that leaf: the exposure such data had
    ///   before the upgrade, not a new one.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStorage, StorageError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Durability is explicit (`flush`, shared by concurrent writers through
            // group commit), not time-based.
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput);
        wait_for_lock(dir);
        crate::allocator::keep_freed_memory();
        let db = config.open().map_err(backend)?;
        let data = db.open_tree(DATA).map_err(backend)?;
        let storage = SledStorage {
            db,
            data,
            seq: Arc::new(AppendSeq::new()),
            chunked: Arc::new(Mutex::new(HashMap::new())),
        };
        storage.index_chunks()?;
        storage.migrate()?;
        storage.upgrade()?;
        Ok(storage)
    }

    /// Read the index of chunked values from their chunks' keys.
    fn index_chunks(&self) -> Result<(), StorageError> {
        let mut chunked = self.chunked.lock().unwrap_or_else(|e| e.into_inner());
        for item in self.data.range(&[CHUNK_TAG][..]..) {
            let (k, _) = item.map_err(backend)?;
            let Some((key, generation, n)) = parse_chunk_key(&k) else {
                continue;
            };
            let header = chunked.entry(key.to_vec()).or_insert(Header {
                generation,
                chunks: 0,
                len: 0,
            });
            header.chunks = header.chunks.max(n + 1);
        }
        Ok(())
    }

    /// A new set of writes (taking the index's lock).
    fn writes(&self) -> Writes<'_> {
        Writes {
            chunked: self.chunked.lock().unwrap_or_else(|e| e.into_inner()),
            changes: HashMap::new(),
            seq: &self.seq,
            batch: sled::Batch::default(),
        }
    }

    /// Move the trees of the one-tree-per-space layout into the data tree (as they
    /// were stored: [`SledStorage::upgrade`] runs next).
    fn migrate(&self) -> Result<(), StorageError> {
        let names = self.db.tree_names();
        for space in Space::ALL {
            if !names.iter().any(|n| n.as_ref() == space.name().as_bytes()) {
                continue;
            }
            let old = self.db.open_tree(space.name()).map_err(backend)?;
            // Once per database, and it can take a while on a big one: say why.
            tracing::info!(
                space = space.name(),
                "moving a space of the old layout into the one tree"
            );
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in old.iter() {
                let (k, v) = item.map_err(backend)?;
                batch.insert(tagged(space, &k), v);
                n += 1;
                if n == MIGRATE_CHUNK {
                    self.data
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(backend)?;
                    n = 0;
                }
            }
            self.data.apply_batch(batch).map_err(backend)?;
            self.db.flush().map_err(backend)?;
            drop(old);
            self.db.drop_tree(space.name()).map_err(backend)?;
        }
        Ok(())
    }

    /// Bring values stored as they were (before this layout) to this layout, unless
    /// the layout's version says they are.
    fn upgrade(&self) -> Result<(), StorageError> {
        if self.data.get(LAYOUT_KEY).map_err(backend)?.is_some() {
            return Ok(());
        }
        // The spaces' entries lie between tag 1 and the chunks' tag.
        let mut from = match self.data.get(UPGRADED_TO_KEY).map_err(backend)? {
            Some(done) => std::ops::Bound::Excluded(done.to_vec()),
            None => std::ops::Bound::Included(vec![1]),
        };
        if !self.data.is_empty() {
            tracing::info!("upgrading the stored values to the chunked layout");
        }
        loop {
            let mut writes = self.writes();
            let mut last = None;
            let range = (from.clone(), std::ops::Bound::Excluded(vec![CHUNK_TAG]));
            for item in self.data.range::<Vec<u8>, _>(range).take(UPGRADE_CHUNK) {
                let (k, v) = item.map_err(backend)?;
                if v.len() > INLINE_MAX || v.first().is_some_and(|b| *b >= ESCAPE) {
                    writes.write(k.to_vec(), Some(v.to_vec()));
                }
                last = Some(k.to_vec());
            }
            match last {
                Some(k) => {
                    writes.batch.insert(UPGRADED_TO_KEY, k.as_slice());
                    writes.apply(&self.data)?;
                    from = std::ops::Bound::Excluded(k);
                }
                None => {
                    writes.batch.insert(LAYOUT_KEY, LAYOUT);
                    writes.batch.remove(UPGRADED_TO_KEY);
                    writes.apply(&self.data)?;
                    return self.flush();
                }
            }
        }
    }

    /// The value stored at the stored key `key`, as `stored` holds it; `None` when it
    /// is chunked and was rewritten while its chunks were being read (read it again).
    fn value(&self, key: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match stored.first() {
            Some(&ESCAPE) => Ok(Some(stored[1..].to_vec())),
            Some(&CHUNKED) => {
                let header = Header::decode(stored)?;
                let len = usize::try_from(header.len).map_err(backend)?;
                let mut value = Vec::with_capacity(len);
                for n in 0..header.chunks {
                    let chunk_key = chunk_key(key, header.generation, n);
                    match self.data.get(chunk_key).map_err(backend)? {
                        Some(chunk) => value.extend_from_slice(&chunk),
                        None => return Ok(None),
                    }
                }
                if value.len() != len {
                    return Err(StorageError::Backend(format!(
                        "a chunked value of {len} bytes reads back as {}",
                        value.len()
                    )));
                }
                Ok(Some(value))
            }
            _ => Ok(Some(stored.to_vec())),
        }
    }

    /// The value at the stored key `key`.
    fn get_stored(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let mut torn: Option<sled::IVec> = None;
        loop {
            let Some(stored) = self.data.get(key).map_err(backend)? else {
                return Ok(None);
            };
            if let Some(value) = self.value(key, &stored)? {
                return Ok(Some(value));
            }
            // A chunk was missing. If the header is still the one read before, no
            // write came between: the chunk is lost, not replaced.
            if torn.as_ref() == Some(&stored) {
                return Err(StorageError::Backend(format!(
                    "a chunk of the value at {key:?} is missing"
                )));
            }
            torn = Some(stored);
        }
    }

    /// A scanned entry as the layers above see it; `None` if it was removed since.
    fn entry(
        &self,
        stored_key: &[u8],
        stored: &[u8],
    ) -> Result<Option<(Key, Vec<u8>)>, StorageError> {
        let value = match self.value(stored_key, stored)? {
            Some(v) => Some(v),
            None => self.get_stored(stored_key)?,
        };
        Ok(value.map(|v| (untagged(stored_key), v)))
    }
}

impl Storage for SledStorage {
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_stored(&tagged(space, key.as_bytes()))
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
        let start = tagged(space, &Key::scan_start(merchant, prefix));
        let mut out = Vec::new();
        let mut push = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(backend)?;
            if let Some(entry) = self.entry(&k, &v)? {
                out.push(entry);
            }
            Ok::<_, StorageError>(())
        };
        // The prefix's end: every key under it is below `start` with its last byte
        // incremented (no prefix here ends in 0xff: merchants are slugs and parts are
        // followed by a NUL separator).
        let mut end = start.clone();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let after = after.map(|a| tagged(space, a.as_bytes()));
        let tree = &self.data;
        match (after, reverse) {
            (None, false) => {
                for i in tree.range(start.as_slice()..end.as_slice()).take(limit) {
                    push(i)?;
                }
            }
            (Some(a), false) => {
                let from = std::ops::Bound::Excluded(a.as_slice());
                let to = std::ops::Bound::Excluded(end.as_slice());
                for i in tree.range::<&[u8], _>((from, to)).take(limit) {
                    push(i)?;
                }
            }
            (None, true) => {
                for i in tree
                    .range(start.as_slice()..end.as_slice())
                    .rev()
                    .take(limit)
                {
                    push(i)?;
                }
            }
            (Some(a), true) => {
                let from = std::ops::Bound::Included(start.as_slice());
                let to = std::ops::Bound::Excluded(a.as_slice());
                for i in tree.range::<&[u8], _>((from, to)).rev().take(limit) {
                    push(i)?;
                }
            }
        }
        // Keys outside the prefix never enter: `after` may lie outside it.
        out.retain(|(k, _)| k.as_bytes().starts_with(&start[1..]));
        Ok(out)
    }

    fn visit(
        &self,
        space: Space,
        merchant: &str,
        visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let start = tagged(space, Key::merchant(merchant, &[]).as_bytes());
        for item in self.data.scan_prefix(start) {
            let (k, v) = item.map_err(backend)?;
            let go_on = match v.first() {
                Some(&ESCAPE | &CHUNKED) => match self.entry(&k, &v)? {
                    Some((key, value)) => visit(&key, &value),
                    None => true,
                },
                _ => visit(&untagged(&k), &v),
            };
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
        // Skip from one merchant to the next: "m\0" is followed by "m\x01".
        let end = [tag(space) + 1];
        let mut out = Vec::new();
        let mut from: Vec<u8> = vec![tag(space)];
        while let Some((key, _)) = self
            .data
            .range::<&[u8], _>(from.as_slice()..&end[..])
            .next()
            .transpose()
            .map_err(backend)?
        {
            let merchant = key[1..].split(|b| *b == 0).next().unwrap_or_default();
            out.push(String::from_utf8_lossy(merchant).into_owned());
            from = tagged(space, merchant);
            from.push(1);
        }
        Ok(out)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        // A later write of the same key wins, as it would have in the batch's order.
        let mut writes = self.writes();
        for (space, key, value) in batch.resolve(&self.seq, INLINE_MAX) {
            writes.write(tagged(space, key.as_bytes()), value);
        }
        writes.apply(&self.data)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that do not repeat in any short stretch, as a plugin's would not.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// How many chunk entries the tree holds.
    fn chunk_entries(s: &SledStorage) -> usize {
        s.data.range(&[CHUNK_TAG][..]..).count()
    }

    /// Everything of `merchant` in `space`, read three ways, must agree.
    fn read_all(s: &SledStorage, space: Space, merchant: &str) -> Vec<(Key, Vec<u8>)> {
        let scanned = s.scan(space, merchant, &[]).unwrap();
        let mut visited = Vec::new();
        s.visit(space, merchant, &mut |k, v| {
            visited.push((k.clone(), v.to_vec()));
            true
        })
        .unwrap();
        assert_eq!(scanned, visited);
        for (k, v) in &scanned {
            assert_eq!(s.get(space, k).unwrap().as_ref(), Some(v));
        }
        let newest_first = s
            .scan_page(space, merchant, &[], None, usize::MAX, true)
            .unwrap();
        assert_eq!(newest_first.into_iter().rev().collect::<Vec<_>>(), scanned);
        scanned
    }

    #[test]
    fn nothing_is_written_outside_the_log_that_a_flush_syncs() {
        // sled writes a log item over 128 KiB to a file under blobs/ that it never
        // syncs. A plugin (up to 2 MiB), a round's journal, and leaves of values of a
        // few KiB each would all be such items if they went to sled as they are.
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let plugin = noise(2 << 20, 1);
        let mut b = Batch::new();
        b.put(
            Space::PluginBlobs,
            Key::merchant("m", &[b"v1"]),
            plugin.clone(),
        );
        s.apply(b).unwrap();
        let mut written = Vec::new();
        for round in 0..40u64 {
            let mut b = Batch::new();
            for i in 0..300u64 {
                b.append(
                    Space::Journal,
                    Key::merchant("m", &[b"t"]),
                    noise(430, round * 1_000 + i),
                );
            }
            for i in 0..50u64 {
                let n = round * 50 + i;
                let key = Key::merchant("m", &[format!("member{n:05}").as_bytes()]);
                // Some just under the limit, some just over, some far over.
                let len = [INLINE_MAX, INLINE_MAX + 1, 3 * INLINE_MAX + 7, 5_000][i as usize % 4];
                let value = noise(len, n);
                b.put(Space::Members, key.clone(), value.clone());
                written.push((key, value));
            }
            s.apply(b).unwrap();
        }
        s.flush().unwrap();
        let blobs: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(
            blobs.is_empty(),
            "sled wrote {} blob files: {blobs:?}",
            blobs.len()
        );
        assert_eq!(
            s.get(Space::PluginBlobs, &Key::merchant("m", &[b"v1"]))
                .unwrap(),
            Some(plugin.clone())
        );
        assert_eq!(read_all(&s, Space::Members, "m"), written);
        let journal = read_all(&s, Space::Journal, "m");
        let records: Vec<Vec<u8>> = journal
            .iter()
            .flat_map(|(_, v)| super::super::appended(v).unwrap())
            .map(<[u8]>::to_vec)
            .collect();
        let expected: Vec<Vec<u8>> = (0..40u64)
            .flat_map(|round| (0..300u64).map(move |i| noise(430, round * 1_000 + i)))
            .collect();
        assert_eq!(records, expected, "every record, in order");
        assert!(journal.iter().all(|(_, v)| v.len() <= INLINE_MAX));
        drop(s);
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            s.get(Space::PluginBlobs, &Key::merchant("m", &[b"v1"]))
                .unwrap(),
            Some(plugin)
        );
        assert_eq!(read_all(&s, Space::Members, "m"), written);
    }

    #[test]
    fn a_chunked_value_rewritten_or_removed_leaves_no_chunks_behind() {
        let dir = tempfile::tempdir().unwrap();
        let k = Key::merchant("m", &[b"k"]);
        let put = |s: &SledStorage, values: &[Option<Vec<u8>>]| {
            let mut b = Batch::new();
            for v in values {
                match v {
                    Some(v) => b.put(Space::Jobs, k.clone(), v.clone()),
                    None => b.delete(Space::Jobs, k.clone()),
                };
            }
            s.apply(b).unwrap();
        };
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        // (the batch's writes of the key, what it reads back as, chunks in the tree)
        type Step<'a> = (&'a [Option<Vec<u8>>], Option<Vec<u8>>, usize);
        let steps: [Step<'_>; 7] = [
            (
                &[Some(noise(3 * INLINE_MAX, 1))],
                Some(noise(3 * INLINE_MAX, 1)),
                3,
            ),
            (
                &[Some(noise(5 * INLINE_MAX - 1, 2))],
                Some(noise(5 * INLINE_MAX - 1, 2)),
                5,
            ),
            (&[Some(vec![7])], Some(vec![7]), 0),
            (
                &[Some(noise(2 * INLINE_MAX, 3))],
                Some(noise(2 * INLINE_MAX, 3)),
                2,
            ),
            (&[None], None, 0),
            // The same key twice in one batch: the second write wins, the first's
            // chunks are not left behind.
            (
                &[
                    Some(noise(4 * INLINE_MAX, 4)),
                    Some(noise(INLINE_MAX + 1, 5)),
                ],
                Some(noise(INLINE_MAX + 1, 5)),
                2,
            ),
            (&[Some(noise(6 * INLINE_MAX, 6)), None], None, 0),
        ];
        let mut s = Some(s);
        for (i, (writes, expected, chunks)) in steps.iter().enumerate() {
            let store = s.as_ref().unwrap();
            put(store, writes);
            assert_eq!(&store.get(Space::Jobs, &k).unwrap(), expected, "step {i}");
            assert_eq!(chunk_entries(store), *chunks, "step {i}");
            if i == 1 || i == 3 {
                // The index of chunked values is rebuilt when the database is opened:
                // the next rewrite still finds the chunks to remove.
                store.flush().unwrap();
                drop(s.take());
                s = Some(SledStorage::open(dir.path(), 1 << 20).unwrap());
            }
        }
    }

    #[test]
    fn values_that_begin_as_the_layouts_markers_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let header_like = Header {
            generation: 1,
            chunks: 1,
            len: 3,
        }
        .encode();
        let values: Vec<Vec<u8>> = vec![
            vec![],
            vec![ESCAPE],
            vec![CHUNKED],
            vec![ESCAPE, ESCAPE, 1],
            header_like.clone(),
            vec![0, ESCAPE],
            {
                let mut v = vec![CHUNKED];
                v.extend(noise(INLINE_MAX, 9));
                v
            },
        ];
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let mut b = Batch::new();
        let mut written = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let key = Key::merchant("m", &[format!("k{i}").as_bytes()]);
            b.put(Space::Outbox, key.clone(), v.clone());
            written.push((key, v.clone()));
        }
        s.apply(b).unwrap();
        assert_eq!(read_all(&s, Space::Outbox, "m"), written);
        s.flush().unwrap();
        drop(s);
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(read_all(&s, Space::Outbox, "m"), written);
        assert_eq!(
            chunk_entries(&s),
            2,
            "only the last value is over the limit: two chunks"
        );
    }

    #[test]
    fn a_reader_sees_a_chunked_value_whole_while_it_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let k = Key::merchant("m", &[b"k"]);
        // Value i is i+1 chunks of the byte i: a torn read mixes bytes or lengths.
        let value = |i: u8| vec![i; (usize::from(i % 7) + 1) * INLINE_MAX + 1];
        let mut b = Batch::new();
        b.put(Space::Jobs, k.clone(), value(0));
        s.apply(b).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 1..=200u8 {
                    let mut b = Batch::new();
                    b.put(Space::Jobs, k.clone(), value(i));
                    s.apply(b).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let v = s.get(Space::Jobs, &k).unwrap().unwrap();
                assert_eq!(v, value(v[0]), "read {reads}");
                let scanned = s.scan(Space::Jobs, "m", &[]).unwrap();
                assert_eq!(scanned[0].1, value(scanned[0].1[0]));
                reads += 1;
            }
        });
        assert_eq!(s.get(Space::Jobs, &k).unwrap(), Some(value(200)));
        assert_eq!(chunk_entries(&s), 200 % 7 + 2);
    }

    #[test]
    fn a_database_of_the_layout_before_is_upgraded_and_an_interrupted_upgrade_goes_on() {
        let big = noise(300 << 10, 3);
        let stored_before: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (tagged(Space::PluginBlobs, b"m\0v1"), big.clone()),
            (tagged(Space::Members, b"m\0a"), vec![ESCAPE, 1]),
            (tagged(Space::Members, b"m\0b"), vec![CHUNKED]),
            (tagged(Space::Members, b"m\0c"), b"plain".to_vec()),
        ];
        let read_back = |s: &SledStorage| {
            assert_eq!(
                s.get(Space::PluginBlobs, &Key::merchant("m", &[b"v1"]))
                    .unwrap(),
                Some(big.clone())
            );
            let members: Vec<Vec<u8>> = read_all(s, Space::Members, "m")
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            assert_eq!(members, [vec![ESCAPE, 1], vec![CHUNKED], b"plain".to_vec()]);
        };

        // Written by the version before: every value as it is, no layout recorded.
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let data = db.open_tree(DATA).unwrap();
            for (k, v) in &stored_before {
                data.insert(k, v.as_slice()).unwrap();
            }
            db.flush().unwrap();
        }
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        read_back(&s);
        assert_eq!(s.data.get(LAYOUT_KEY).unwrap().as_deref(), Some(LAYOUT));
        assert_eq!(chunk_entries(&s), (300usize << 10).div_ceil(INLINE_MAX));
        drop(s);
        // Opened again, nothing is upgraded twice.
        read_back(&SledStorage::open(dir.path(), 1 << 20).unwrap());

        // Stopped part way: the first two members were upgraded (a's value escaped)
        // and recorded as done, the rest was not. What was done is not done again.
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let data = db.open_tree(DATA).unwrap();
            for (k, v) in &stored_before {
                data.insert(k, v.as_slice()).unwrap();
            }
            data.insert(tagged(Space::Members, b"m\0a"), vec![ESCAPE, ESCAPE, 1])
                .unwrap();
            data.insert(tagged(Space::Members, b"m\0b"), vec![ESCAPE, CHUNKED])
                .unwrap();
            data.insert(UPGRADED_TO_KEY, tagged(Space::Members, b"m\0b"))
                .unwrap();
            db.flush().unwrap();
        }
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        // The plugin sorts after the members (its tag is higher): upgraded now.
        read_back(&s);
        assert_eq!(s.data.get(UPGRADED_TO_KEY).unwrap(), None);
    }

    #[test]
    fn keys_are_confined_to_their_merchant() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let mut b = Batch::new();
        b.put(
            Space::PluginVersions,
            Key::merchant("acme", &[b"v1"]),
            b"a".to_vec(),
        );
        b.put(
            Space::PluginVersions,
            Key::merchant("acme2", &[b"v1"]),
            b"b".to_vec(),
        );
        b.put(
            Space::PluginActive,
            Key::merchant("acme", &[]),
            b"v1".to_vec(),
        );
        s.apply(b).unwrap();
        let acme = s.scan(Space::PluginVersions, "acme", &[]).unwrap();
        assert_eq!(acme.len(), 1, "acme2's key is not acme's: {acme:?}");
        assert_eq!(acme[0].1, b"a");
        assert_eq!(
            s.merchants(Space::PluginVersions).unwrap(),
            ["acme", "acme2"]
        );
    }

    #[test]
    fn a_batch_survives_reopening_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
            let mut b = Batch::new();
            b.put(
                Space::PluginBlobs,
                Key::merchant("m", &[b"h"]),
                vec![1, 2, 3],
            );
            b.put(Space::PluginActive, Key::merchant("m", &[]), b"h".to_vec());
            s.apply(b).unwrap();
            s.flush().unwrap();
        }
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            s.get(Space::PluginBlobs, &Key::merchant("m", &[b"h"]))
                .unwrap(),
            Some(vec![1, 2, 3])
        );
        let mut b = Batch::new();
        b.delete(Space::PluginBlobs, Key::merchant("m", &[b"h"]));
        s.apply(b).unwrap();
        assert_eq!(
            s.get(Space::PluginBlobs, &Key::merchant("m", &[b"h"]))
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_database_with_one_tree_per_space_is_moved_into_the_data_tree() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout before: a sled tree per space, named after it.
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let members = db.open_tree(Space::Members.name()).unwrap();
            for i in 0..(MIGRATE_CHUNK + 5) {
                members
                    .insert(
                        Key::merchant("m", &[format!("p{i:05}").as_bytes()]).0,
                        vec![1],
                    )
                    .unwrap();
            }
            db.open_tree(Space::Keys.name())
                .unwrap()
                .insert(Key::merchant("m", &[b"k"]).0, b"digest".to_vec())
                .unwrap();
            db.flush().unwrap();
        }
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            s.scan(Space::Members, "m", &[]).unwrap().len(),
            MIGRATE_CHUNK + 5
        );
        assert_eq!(
            s.get(Space::Keys, &Key::merchant("m", &[b"k"])).unwrap(),
            Some(b"digest".to_vec())
        );
        // Nothing crossed into another space, and the old trees are gone.
        assert!(s.scan(Space::Codes, "m", &[]).unwrap().is_empty());
        assert_eq!(s.merchants(Space::Members).unwrap(), ["m"]);
        assert!(s.merchants(Space::Ledger).unwrap().is_empty());
        let names = s.db.tree_names();
        assert!(
            !names
                .iter()
                .any(|n| n.as_ref() == b"members" || n.as_ref() == b"keys"),
            "{names:?}"
        );
        drop(s);
        // Opening again finds nothing left to move and loses nothing.
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            s.scan(Space::Members, "m", &[]).unwrap().len(),
            MIGRATE_CHUNK + 5
        );
    }

    #[test]
    fn spaces_do_not_see_each_others_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let mut b = Batch::new();
        for space in Space::ALL {
            b.put(
                space,
                Key::merchant("m", &[b"x"]),
                space.name().as_bytes().to_vec(),
            );
        }
        s.apply(b).unwrap();
        for space in Space::ALL {
            let all = s.scan(space, "m", &[]).unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(
                s.get(space, &Key::merchant("m", &[b"x"])).unwrap().unwrap(),
                space.name().as_bytes()
            );
            let mut seen = 0;
            s.visit(space, "m", &mut |_, v| {
                assert_eq!(v, space.name().as_bytes());
                seen += 1;
                true
            })
            .unwrap();
            assert_eq!(seen, 1);
            assert_eq!(s.merchants(space).unwrap(), ["m"]);
        }
        // Every tag is distinct.
        let mut tags: Vec<u8> = Space::ALL.iter().map(|s| tag(*s)).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), Space::ALL.len());
    }

    #[test]
    fn a_later_write_of_the_same_key_in_one_batch_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let k = Key::merchant("m", &[b"a"]);
        let mut b = Batch::new();
        b.put(Space::Members, k.clone(), vec![1]);
        b.delete(Space::Members, k.clone());
        b.put(Space::Members, k.clone(), vec![2]);
        b.put(Space::Codes, k.clone(), vec![3]);
        b.delete(Space::Codes, k.clone());
        s.apply(b).unwrap();
        assert_eq!(s.get(Space::Members, &k).unwrap(), Some(vec![2]));
        assert_eq!(s.get(Space::Codes, &k).unwrap(), None);
    }

    #[test]
    fn pages_follow_whole_key_parts_in_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path(), 1 << 20).unwrap();
        let mut b = Batch::new();
        for seq in 1..=5u64 {
            b.put(
                Space::Ledger,
                Key::merchant("m", &[b"m1", &super::super::seq_part(seq)]),
                vec![seq as u8],
            );
        }
        b.put(Space::Ledger, Key::merchant("m", &[b"m10", b"x"]), vec![99]);
        s.apply(b).unwrap();
        let all = s.scan(Space::Ledger, "m", &[b"m1"]).unwrap();
        assert_eq!(all.len(), 5, "m10's line is not m1's");
        let first = s
            .scan_page(Space::Ledger, "m", &[b"m1"], None, 2, false)
            .unwrap();
        assert_eq!(first.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(), [1, 2]);
        let next = s
            .scan_page(Space::Ledger, "m", &[b"m1"], Some(&first[1].0), 10, false)
            .unwrap();
        assert_eq!(
            next.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let newest = s
            .scan_page(Space::Ledger, "m", &[b"m1"], None, 2, true)
            .unwrap();
        assert_eq!(newest.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(), [5, 4]);
        let older = s
            .scan_page(Space::Ledger, "m", &[b"m1"], Some(&newest[1].0), 10, true)
            .unwrap();
        assert_eq!(
            older.iter().map(|(_, v)| v[0]).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        assert_eq!(super::super::seq_of(&newest[0].0), 5);
    }
}
