//! The embedded default backend: sled 0.34, one tree per [`Space`].

use std::collections::HashMap;
use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Batch, Key, Space, Storage, StorageError};

/// [`Storage`] on a sled database in a local directory.
#[derive(Clone)]
pub struct SledStorage {
    db: sled::Db,
    trees: HashMap<Space, sled::Tree>,
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

impl SledStorage {
    /// Open (or create) the database in `dir`, with a page cache of `cache_bytes`.
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
        let mut trees = HashMap::new();
        for space in Space::ALL {
            trees.insert(space, db.open_tree(space.name()).map_err(backend)?);
        }
        Ok(SledStorage { db, trees })
    }

    fn tree(&self, space: Space) -> &sled::Tree {
        // Every space's tree is opened in `open`.
        &self.trees[&space]
    }
}

impl Storage for SledStorage {
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .tree(space)
            .get(key.as_bytes())
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
        let start = Key::scan_start(merchant, prefix);
        let tree = self.tree(space);
        let item = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (Key(k.to_vec()), v.to_vec()))
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
        match (after, reverse) {
            (None, false) => {
                for i in tree.range(start.as_slice()..end.as_slice()).take(limit) {
                    out.push(item(i)?);
                }
            }
            (Some(a), false) => {
                let from = std::ops::Bound::Excluded(a.as_bytes());
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
                let to = std::ops::Bound::Excluded(a.as_bytes());
                for i in tree.range::<&[u8], _>((from, to)).rev().take(limit) {
                    out.push(item(i)?);
                }
            }
        }
        // Keys outside the prefix never enter: `after` may lie outside it.
        out.retain(|(k, _)| k.as_bytes().starts_with(&start));
        Ok(out)
    }

    fn visit(
        &self,
        space: Space,
        merchant: &str,
        visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let start = Key::merchant(merchant, &[]);
        for item in self.tree(space).scan_prefix(start.as_bytes()) {
            let (k, v) = item.map_err(backend)?;
            if !visit(&Key(k.to_vec()), &v) {
                break;
            }
        }
        Ok(())
    }

    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
        // Skip from one merchant to the next: "m\0" is followed by "m\x01".
        let tree = self.tree(space);
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some((key, _)) = tree
            .range::<&[u8], _>(from.as_slice()..)
            .next()
            .transpose()
            .map_err(backend)?
        {
            let merchant = key.split(|b| *b == 0).next().unwrap_or_default();
            out.push(String::from_utf8_lossy(merchant).into_owned());
            from = merchant.to_vec();
            from.push(1);
        }
        Ok(out)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut spaces: Vec<Space> = batch.ops.iter().map(|(s, _, _)| *s).collect();
        spaces.sort_by_key(|s| s.name());
        spaces.dedup();
        let trees: Vec<sled::Tree> = spaces.iter().map(|s| self.tree(*s).clone()).collect();
        let result: Result<(), TransactionError<()>> = trees.as_slice().transaction(|txs| {
            for (space, key, value) in &batch.ops {
                let i = spaces.iter().position(|s| s == space).unwrap_or_default();
                match value {
                    Some(v) => {
                        txs[i].insert(key.as_bytes(), v.as_slice())?;
                    }
                    None => {
                        txs[i].remove(key.as_bytes())?;
                    }
                }
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(()) => StorageError::Backend("transaction aborted".into()),
            TransactionError::Storage(e) => backend(e),
        })
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
