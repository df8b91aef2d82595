//! The member records written or read lately, in memory (see [`super::commit`]'s
//! module docs): every event reads its member's record, and a sled `get` costs several
//! µs under load.
//!
//! The records are spread over [`SHARDS`] shards, each behind its own lock, so readers
//! on the plugin pool's threads and the committer rarely wait for each other (the
//! group commit's own state lock is not taken for them). Each shard holds two
//! generations: entries go into the young one; when it holds half the shard's share
//! of the budget it becomes the old one and the old one is dropped. A read looks in
//! both, so an entry stays at least until half the budget has been written after it.
//!
//! A read that misses notes its shard's version, reads the storage, and keeps what it
//! read only if the shard has not changed since: any write the committer put in the
//! shard meanwhile (or a generation dropped) may be newer than what it read.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use crate::lock;

/// How many shards the records are spread over.
pub const SHARDS: usize = 32;

/// What a kept entry costs beyond its key and value: the map's slot, the vectors'
/// headers, their allocations' rounding and the map's spare capacity, roughly.
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// A value as kept: `None` when the record was deleted.
type Value = Option<Vec<u8>>;

struct Shard {
    young: HashMap<Vec<u8>, Value>,
    old: HashMap<Vec<u8>, Value>,
    young_bytes: usize,
    /// Changed by every write the committer puts here and every generation dropped.
    version: u64,
}

impl Shard {
    fn get(&self, key: &[u8]) -> Option<&Value> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// Keep `value` at `key`, within `budget` bytes for the shard; returns a dropped
    /// generation, for the caller to free outside the lock.
    fn insert(
        &mut self,
        key: Vec<u8>,
        value: Value,
        budget: usize,
    ) -> Option<HashMap<Vec<u8>, Value>> {
        let size = key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD;
        let mut dropped = None;
        if self.young_bytes + size > budget / 2 {
            dropped = Some(std::mem::replace(
                &mut self.old,
                std::mem::take(&mut self.young),
            ));
            self.young_bytes = 0;
            self.version += 1;
        }
        self.young_bytes += size;
        // The old generation's copy, if any, is older than this one.
        self.old.remove(&key);
        self.young.insert(key, value);
        dropped
    }
}

/// What a look-up found.
pub(crate) enum Look {
    /// The record (or that it was deleted).
    Hit(Value),
    /// Not kept; the shard's version, for [`Recent::keep_read`].
    Miss(u64),
}

/// The recent records (see the module docs).
pub(crate) struct Recent {
    shards: Vec<Mutex<Shard>>,
    /// Each shard's share of the budget.
    shard_budget: usize,
    hasher: RandomState,
}

impl Recent {
    /// At most `budget` bytes of keys and values (with [`ENTRY_OVERHEAD`] each).
    pub(crate) fn new(budget: usize) -> Recent {
        Recent {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        young: HashMap::new(),
                        old: HashMap::new(),
                        young_bytes: 0,
                        version: 0,
                    })
                })
                .collect(),
            shard_budget: budget / SHARDS,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) % SHARDS as u64) as usize]
    }

    /// The record at `key`, if kept.
    pub(crate) fn look(&self, key: &[u8]) -> Look {
        let shard = lock(self.shard(key));
        match shard.get(key) {
            Some(v) => Look::Hit(v.clone()),
            None => Look::Miss(shard.version),
        }
    }

    /// Keep `value`, read from the storage after a look-up found the shard at
    /// `version`, unless the shard changed since (see the module docs). Whether it
    /// was kept.
    pub(crate) fn keep_read(&self, key: &[u8], version: u64, value: &Value) -> bool {
        let mut shard = lock(self.shard(key));
        if shard.version != version || shard.get(key).is_some() {
            return false;
        }
        let dropped = shard.insert(key.to_vec(), value.clone(), self.shard_budget);
        drop(shard);
        drop(dropped);
        true
    }

    /// Keep `value` at `key`, written to the storage (by the committer, before the
    /// write leaves the pending overlay).
    pub(crate) fn put(&self, key: Vec<u8>, value: Value) {
        let mut shard = lock(self.shard(&key));
        shard.version += 1;
        let dropped = shard.insert(key, value, self.shard_budget);
        drop(shard);
        drop(dropped);
    }

    /// How many records are kept (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = lock(s);
                s.young.len() + s.old.len()
            })
            .sum()
    }

    /// Drop every generation of `key`'s shard as a full one would (for tests).
    #[cfg(test)]
    pub(crate) fn evict_shard_of(&self, key: &[u8]) {
        let mut shard = lock(self.shard(key));
        shard.young.clear();
        shard.old.clear();
        shard.young_bytes = 0;
        shard.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_bounded_and_evicted_a_generation_at_a_time() {
        // One shard's share: room for two 100-byte entries a generation.
        let r = Recent::new(SHARDS * 2 * (2 * (100 + ENTRY_OVERHEAD)));
        // Keys that fall in one shard.
        let first = b"k0".to_vec();
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("k{i}").into_bytes())
            .filter(|k| std::ptr::eq(r.shard(k), r.shard(&first)))
            .take(4)
            .collect();
        assert_eq!(keys.len(), 4);
        // Each entry 100 bytes of key and value.
        let v = |k: &Vec<u8>| Some(vec![0; 100 - k.len()]);
        let shard = |r: &Recent| {
            let s = lock(r.shard(&first));
            (s.young.len(), s.old.len())
        };
        r.put(keys[0].clone(), v(&keys[0]));
        r.put(keys[1].clone(), v(&keys[1]));
        assert_eq!(shard(&r), (2, 0));
        // The third starts a generation: the first two are old, still answered.
        r.put(keys[2].clone(), v(&keys[2]));
        assert_eq!(shard(&r), (1, 2));
        assert!(matches!(r.look(&keys[0]), Look::Hit(_)));
        // Written again, an old entry moves to the young generation, once.
        r.put(keys[0].clone(), Some(vec![7; 100 - keys[0].len()]));
        assert!(matches!(r.look(&keys[0]), Look::Hit(Some(v)) if v[0] == 7));
        assert_eq!(shard(&r), (2, 1));
        // The next generation drops the oldest whole.
        r.put(keys[3].clone(), v(&keys[3]));
        assert!(
            matches!(r.look(&keys[1]), Look::Miss(_)),
            "dropped with its generation"
        );
        for k in [&keys[0], &keys[2], &keys[3]] {
            assert!(matches!(r.look(k), Look::Hit(_)));
        }
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_read_is_kept_only_if_its_shard_did_not_change_meanwhile() {
        let r = Recent::new(1 << 20);
        let Look::Miss(version) = r.look(b"a") else {
            panic!("nothing is kept yet")
        };
        // A write to the same shard (here, the same key) in between.
        r.put(b"a".to_vec(), Some(b"new".to_vec()));
        assert!(!r.keep_read(b"a", version, &Some(b"old".to_vec())));
        assert!(matches!(r.look(b"a"), Look::Hit(Some(v)) if v == b"new"));
        // Nothing in between: kept; a deletion is kept as one.
        let Look::Miss(version) = r.look(b"b") else {
            panic!()
        };
        assert!(r.keep_read(b"b", version, &None));
        assert!(matches!(r.look(b"b"), Look::Hit(None)));
    }
}
