//! The embedded default backend: sled 0.34, every [`Space`] in one tree.
//!
//! Each key is stored behind a one-byte tag naming its space, so that a [`Batch`]
//! across spaces is one `Tree::apply_batch`: atomic, like a transaction over several
//! trees, but without what a sled transaction adds to every write (it reads each key
//! it writes, under the process-wide lock that stops every reader meanwhile). An
//! event's batch is applied with its group-commit round, so this is the write path
//! every durable operation takes.

use std::path::Path;

use std::sync::Arc;

use super::{AppendSeq, Batch, Key, Space, Storage, StorageError};

/// [`Storage`] on a sled database in a local directory.
#[derive(Clone)]
pub struct SledStorage {
    db: sled::Db,
    /// Every space's keys, each behind its space's [`tag`].
    data: sled::Tree,
    /// The sequence numbers of appended keys (shared by clones).
    seq: Arc<AppendSeq>,
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

impl SledStorage {
    /// Open (or create) the database in `dir`, with a page cache of `cache_bytes`.
    ///
    /// A database written by an earlier version, with one tree per space, is moved
    /// into the data tree first: each old tree is copied, the copy flushed, and only
    /// then the old tree dropped, so a crash part way leaves it to be copied again.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStorage, StorageError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Durability is explicit (`flush`, shared by concurrent writers through
            // group commit), not time-based.
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput);
        wait_for_lock(dir);
        let db = config.open().map_err(backend)?;
        let data = db.open_tree(DATA).map_err(backend)?;
        let storage = SledStorage {
            db,
            data,
            seq: Arc::new(AppendSeq::new()),
        };
        storage.migrate()?;
        Ok(storage)
    }

    /// Move the trees of the one-tree-per-space layout into the data tree.
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
}

impl Storage for SledStorage {
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .data
            .get(tagged(space, key.as_bytes()))
            .map_err(backend)?
            .map(|v| v.to_vec()))
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
        let item = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (untagged(&k), v.to_vec()))
                .map_err(backend)
        };
        let mut out = Vec::new();
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
                    out.push(item(i)?);
                }
            }
            (Some(a), false) => {
                let from = std::ops::Bound::Excluded(a.as_slice());
                let to = std::ops::Bound::Excluded(end.as_slice());
                for i in tree.range::<&[u8], _>((from, to)).take(limit) {
                    out.push(item(i)?);
                }
            }
            (None, true) => {
                for i in tree
                    .range(start.as_slice()..end.as_slice())
                    .rev()
                    .take(limit)
                {
                    out.push(item(i)?);
                }
            }
            (Some(a), true) => {
                let from = std::ops::Bound::Included(start.as_slice());
                let to = std::ops::Bound::Excluded(a.as_slice());
                for i in tree.range::<&[u8], _>((from, to)).rev().take(limit) {
                    out.push(item(i)?);
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
            if !visit(&untagged(&k), &v) {
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
        let mut writes = sled::Batch::default();
        for (space, key, value) in batch.resolve(&self.seq) {
            let key = tagged(space, key.as_bytes());
            match value {
                Some(v) => writes.insert(key, v),
                None => writes.remove(key),
            }
        }
        self.data.apply_batch(writes).map_err(backend)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
