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

impl SledStorage {
    /// Open (or create) the database in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStorage, StorageError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Durability is explicit (`flush`), not time-based.
            .flush_every_ms(None)
            .open()
            .map_err(backend)?;
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

    fn scan(
        &self,
        space: Space,
        merchant: &str,
        prefix: &[&[u8]],
    ) -> Result<Vec<(Key, Vec<u8>)>, StorageError> {
        let start = Key::merchant(merchant, prefix);
        self.tree(space)
            .scan_prefix(start.as_bytes())
            .map(|item| {
                item.map(|(k, v)| (Key(k.to_vec()), v.to_vec()))
                    .map_err(backend)
            })
            .collect()
    }

    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.tree(space).iter().keys() {
            let key = item.map_err(backend)?;
            let merchant = key.split(|b| *b == 0).next().unwrap_or_default();
            let merchant = String::from_utf8_lossy(merchant).into_owned();
            if out.last() != Some(&merchant) {
                out.push(merchant);
            }
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
}
