//! Storage in memory: scratch state that is never written to disk (a simulation's
//! members, ledgers and budgets). The same ordered-map semantics as sled.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use super::{AppendSeq, Batch, Key, Space, Storage, StorageError};

/// One space's keys and values, in key order.
type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

/// [`Storage`] in memory. `flush` does nothing: nothing here outlives the process.
#[derive(Default)]
pub struct MemoryStorage {
    // A std RwLock: held for one map operation, never across a call out.
    spaces: RwLock<HashMap<Space, Tree>>,
    /// The sequence numbers of appended keys.
    seq: AppendSeq,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
        let spaces = self.spaces.read().unwrap_or_else(|e| e.into_inner());
        Ok(spaces
            .get(&space)
            .and_then(|m| m.get(key.as_bytes()))
            .cloned())
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
        let spaces = self.spaces.read().unwrap_or_else(|e| e.into_inner());
        let Some(map) = spaces.get(&space) else {
            return Ok(Vec::new());
        };
        let lower = match (after, reverse) {
            (Some(a), false) => Bound::Excluded(a.as_bytes().to_vec()),
            _ => Bound::Included(start.clone()),
        };
        let upper = match (after, reverse) {
            (Some(a), true) => Bound::Excluded(a.as_bytes().to_vec()),
            _ => Bound::Unbounded,
        };
        let within = |(k, _): &(&Vec<u8>, &Vec<u8>)| k.starts_with(&start);
        let pair = |(k, v): (&Vec<u8>, &Vec<u8>)| (Key(k.clone()), v.clone());
        let range = map.range((lower, upper));
        let out = if reverse {
            range
                .rev()
                .skip_while(|kv| kv.0.as_slice() > start.as_slice() && !within(kv))
                .take_while(within)
                .take(limit)
                .map(pair)
                .collect()
        } else {
            range
                .skip_while(|kv| kv.0.as_slice() < start.as_slice())
                .take_while(within)
                .take(limit)
                .map(pair)
                .collect()
        };
        Ok(out)
    }

    fn visit(
        &self,
        space: Space,
        merchant: &str,
        visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        // A page at a time, so `visit` may write to this storage.
        let mut after: Option<Key> = None;
        loop {
            let page = self.scan_page(space, merchant, &[], after.as_ref(), 1024, false)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            let last = last.clone();
            for (k, v) in &page {
                if !visit(k, v) {
                    return Ok(());
                }
            }
            after = Some(last);
        }
    }

    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
        let spaces = self.spaces.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = Vec::new();
        for k in spaces.get(&space).into_iter().flat_map(|m| m.keys()) {
            let m = k.split(|b| *b == 0).next().unwrap_or_default();
            if out.last().is_none_or(|l| l.as_bytes() != m) {
                out.push(String::from_utf8_lossy(m).into_owned());
            }
        }
        Ok(out)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let mut spaces = self.spaces.write().unwrap_or_else(|e| e.into_inner());
        for (space, key, value) in batch.resolve(&self.seq, usize::MAX) {
            let map = spaces.entry(space).or_default();
            match value {
                Some(v) => map.insert(key.0, v),
                None => map.remove(&key.0),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_match_whole_parts_page_both_ways_and_stay_in_the_merchant() {
        let s = MemoryStorage::new();
        let mut b = Batch::new();
        for (m, parts) in [
            ("a", &[&b"m1"[..], b"1"][..]),
            ("a", &[b"m1", b"2"]),
            ("a", &[b"m1", b"3"]),
            ("a", &[b"m10", b"1"]),
            ("a2", &[b"m1", b"9"]),
        ] {
            b.put(Space::Ledger, Key::merchant(m, parts), parts[1].to_vec());
        }
        s.apply(b).unwrap();
        let values = |page: Vec<(Key, Vec<u8>)>| {
            page.into_iter()
                .map(|(_, v)| String::from_utf8(v).unwrap())
                .collect::<Vec<_>>()
        };
        let all = s.scan(Space::Ledger, "a", &[b"m1"]).unwrap();
        assert_eq!(values(all.clone()), ["1", "2", "3"]);
        let next = s
            .scan_page(Space::Ledger, "a", &[b"m1"], Some(&all[0].0), 1, false)
            .unwrap();
        assert_eq!(values(next), ["2"]);
        let back = s
            .scan_page(Space::Ledger, "a", &[b"m1"], Some(&all[2].0), 5, true)
            .unwrap();
        assert_eq!(values(back), ["2", "1"]);
        let last = s
            .scan_page(Space::Ledger, "a", &[b"m1"], None, 1, true)
            .unwrap();
        assert_eq!(values(last), ["3"]);
        assert_eq!(s.scan(Space::Ledger, "a", &[]).unwrap().len(), 4);
        assert_eq!(s.merchants(Space::Ledger).unwrap(), ["a", "a2"]);
        let mut seen = 0;
        s.visit(Space::Ledger, "a2", &mut |_, _| {
            seen += 1;
            true
        })
        .unwrap();
        assert_eq!(seen, 1);
    }
}
