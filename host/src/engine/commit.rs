//! Group commit: an operation is acknowledged only once its writes are flushed, and
//! concurrent operations share both the write and the flush, so durability does not
//! serialise throughput.
//!
//! [`GroupCommit`] wraps the storage and is itself a [`Storage`]. An operation hands
//! its batch to [`GroupCommit::submit`], which queues it and returns a [`Ticket`] at
//! once; from that moment every read through the group commit sees the batch (a
//! pending-writes overlay answers `get`, and scans wait until the batch is applied).
//! One committer thread loops: it takes everything queued, applies it to the storage
//! as one atomic batch, flushes once, and declares every ticket it took durable.
//! While it works, new operations queue up and go together into the next round.
//!
//! Why one writer: sled 0.34 costs about 130-150 µs for each atomic batch followed by
//! a flush when many threads write their own small batches, but about 15 µs per
//! operation when the same writes arrive as one batch per flush (measured by
//! `host/examples/storage_ceiling.rs`, see BENCHMARKS.md). Every batch still lands
//! whole or not at all: a round is one atomic batch, so it contains each of its
//! operations entirely.
//!
//! If applying a round fails, the writes it held were acknowledged to nobody, but
//! reads may have seen them through the overlay. The group commit then refuses every
//! later write (fail-stop): the process must be restarted on the state on disk.
//!
//! **Recent member records.** Every event reads its member's record, and a sled `get`
//! (the tree's descent, its page cache, its epoch) costs several µs under load. So the
//! member records written or read lately stay in memory, up to [`RECENT_BYTES`]
//! ([`Recent`], sharded, apart from the state lock): the committer puts a round's
//! member records there once the round is applied and before they leave the overlay,
//! and a record read from the storage joins them unless its shard changed in between.
//! Every write of the process goes through the group commit, so they are never behind
//! the storage; only member records are kept, and only with a committer (an inline
//! group commit reads its storage directly).

use crate::lock;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::recent::{Look, Recent};
use crate::storage::{Batch, Key, Space, Storage, StorageError, Write};

/// Proof that an operation's writes were queued; durable once [`GroupCommit::wait`]
/// returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// Most batches queued before [`GroupCommit::submit`] waits for the committer: bounds
/// the memory pending writes take when the disk falls behind.
const MAX_QUEUED: usize = 16_384;

/// Most batches in one round: bounds the size of one atomic write.
const MAX_ROUND: usize = 4_096;

/// A round of at least this many batches means many operations are in flight...
const GATHER_AFTER: usize = 8;

/// ...and then, when fewer than half as many are queued as the last round took, the
/// committer waits until as many are queued as it took, or this long, before it takes
/// the round. Under load a flush can return so fast that the next round would hold a
/// handful of operations, and every round costs the committer and sled's threads
/// about the same whatever its size (sled's writer threads spent 10-18 µs of CPU an
/// HTTP request with 19 requests a flush); an operation waits this much longer at
/// most. A lone writer's rounds hold one batch, so it never waits. Measured
/// alternated (session 14): with a fixed 200 µs sleep instead, the engine bench's
/// sandboxed rounds took 50-96 events and 50 µs of CPU an event, against 146-158 and
/// 39 µs; over HTTP, 18,302-20,898 against 19,484-22,028 requests/s.
const GATHER: Duration = Duration::from_millis(2);

/// A queued write: the ticket of the batch that made it, and the value (`None`:
/// deleted).
type Pending = (u64, Option<Vec<u8>>);

/// The space whose records the group commit keeps in memory once written or read.
const CACHED: Space = Space::Members;

/// The most memory (keys and values) the recent member records take (see
/// [`Recent`]).
pub const RECENT_BYTES: usize = 32 << 20;

#[derive(Default)]
struct State {
    /// Batches not yet applied, oldest first, with their tickets.
    queue: VecDeque<(u64, Batch)>,
    /// The newest queued value of every key written by a batch not yet applied, with
    /// the ticket of the batch that wrote it (`None`: deleted).
    overlay: HashMap<Space, HashMap<Vec<u8>, Pending>>,
    /// The last ticket issued.
    issued: u64,
    /// Every ticket up to this one is applied to the storage.
    applied: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Why the last flush failed (cleared by the next successful one).
    flush_error: Option<String>,
    /// Why a round failed to apply: from then on every write is refused.
    failed: Option<String>,
    stop: bool,
    /// While the committer gathers a round: how many queued batches it waits for
    /// (0 otherwise). Writers wake it only for the first batch of an empty queue and
    /// when the queue reaches this many.
    wanted: usize,
    /// Async waiters by the ticket they wait for: the committer wakes only those its
    /// flush made durable (or all of them, when a flush or a round fails).
    waiters: BTreeMap<u64, Vec<tokio::sync::oneshot::Sender<()>>>,
}

impl State {
    /// Whether a wait for `ticket` is over: `Ok` once it is durable, an error once a
    /// round or the last flush failed, `None` while it is still to come.
    fn settled(&self, ticket: Ticket) -> Option<Result<(), StorageError>> {
        if self.durable >= ticket.0 {
            return Some(Ok(()));
        }
        let e = self.failed.as_ref().or(self.flush_error.as_ref())?;
        Some(Err(StorageError::Backend(format!("flush failed: {e}"))))
    }

    /// Take the waiters for tickets up to `durable` (all of them with `u64::MAX`).
    fn waiters_up_to(&mut self, durable: u64) -> Vec<tokio::sync::oneshot::Sender<()>> {
        let later = match durable.checked_add(1) {
            Some(next) => self.waiters.split_off(&next),
            None => BTreeMap::new(),
        };
        std::mem::replace(&mut self.waiters, later)
            .into_values()
            .flatten()
            .collect()
    }
}

/// Wake `waiters` (outside the state lock); one whose future was dropped is skipped.
fn wake(waiters: Vec<tokio::sync::oneshot::Sender<()>>) {
    for w in waiters {
        let _ = w.send(());
    }
}

struct Shared {
    storage: Arc<dyn Storage>,
    /// Member records written or read lately (see the module docs).
    recent: Recent,
    // A std Mutex + Condvars: held for a few instructions, never across a storage
    // write or flush.
    state: Mutex<State>,
    /// The committer waits here for work.
    work: Condvar,
    /// Waiters for `applied` or `durable` (and writers waiting for queue space).
    progress: Condvar,
    flushes: AtomicU64,
    rounds: AtomicU64,
    flush_nanos: AtomicU64,
    latency: Histogram,
    /// The longest the committer gathers a round (see [`GATHER`]).
    gather: Duration,
}

fn flush_histogram() -> Histogram {
    // 100 µs to about 3 s: a sled flush on these disks is a few ms.
    Histogram::new(exponential_buckets(1e-4, 2.0, 15))
}

/// The group-commit storage (see the module docs).
pub struct GroupCommit {
    shared: Arc<Shared>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// Apply each batch at once on the submitting thread (see [`GroupCommit::inline`]).
    inline: bool,
}

/// Flush counters, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Flushes done.
    pub flushes: u64,
    /// Operations made durable.
    pub operations: u64,
    /// Time spent flushing.
    pub flush_time: Duration,
}

impl GroupCommit {
    /// Wrap `storage` and start the committer thread.
    pub fn start(storage: Arc<dyn Storage>) -> GroupCommit {
        GroupCommit::start_gathering(storage, GATHER)
    }

    /// [`GroupCommit::start`] with `gather` instead of [`GATHER`].
    fn start_gathering(storage: Arc<dyn Storage>, gather: Duration) -> GroupCommit {
        let gc = GroupCommit::new(storage, false, gather);
        let s = gc.shared.clone();
        let committer = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || commit_loop(&s))
            .expect("spawn the group-commit thread");
        *lock(&gc.committer) = Some(committer);
        gc
    }

    /// Wrap `storage` without a committer: [`GroupCommit::submit`] applies each
    /// batch to the storage itself, on the calling thread, and the batch is durable
    /// when it returns (as durable as the storage's `apply` makes it; nothing is
    /// flushed). For storage where a flush costs nothing and handing every batch to
    /// another thread would cost more than applying it: the scratch engines of a
    /// simulation, over [`crate::storage::MemoryStorage`].
    pub fn inline(storage: Arc<dyn Storage>) -> GroupCommit {
        GroupCommit::new(storage, true, GATHER)
    }

    fn new(storage: Arc<dyn Storage>, inline: bool, gather: Duration) -> GroupCommit {
        let shared = Arc::new(Shared {
            storage,
            recent: Recent::new(RECENT_BYTES),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            flushes: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            flush_nanos: AtomicU64::new(0),
            latency: flush_histogram(),
            gather,
        });
        GroupCommit {
            shared,
            committer: Mutex::new(None),
            inline,
        }
    }

    /// Queue `batch`: reads through the group commit see it from now on, and it is
    /// durable when [`GroupCommit::wait`] returns for the ticket.
    pub fn submit(&self, batch: Batch) -> Result<Ticket, StorageError> {
        let mut st = lock(&self.shared.state);
        while !self.room(&st)? {
            st = wait(&self.shared.progress, st);
        }
        self.enqueue(st, batch)
    }

    /// [`GroupCommit::submit`] unless the queue is full (the disk has fallen behind),
    /// in which case the batch comes back instead of the call waiting for room: for
    /// callers that must not block, such as async workers.
    pub fn try_submit(&self, batch: Batch) -> Result<Result<Ticket, Batch>, StorageError> {
        let st = lock(&self.shared.state);
        if !self.room(&st)? {
            return Ok(Err(batch));
        }
        self.enqueue(st, batch).map(Ok)
    }

    /// Whether a batch may be queued now; an error once a round has failed (every
    /// write is refused from then on).
    fn room(&self, st: &State) -> Result<bool, StorageError> {
        if let Some(e) = &st.failed {
            return Err(refused(e));
        }
        Ok(self.inline || st.queue.len() < MAX_QUEUED || st.stop)
    }

    /// Queue `batch` (inline: apply it), holding the state lock `st`.
    fn enqueue(&self, mut st: MutexGuard<'_, State>, batch: Batch) -> Result<Ticket, StorageError> {
        if self.inline {
            // Applied under the state lock, so batches land in ticket order.
            if let Err(e) = self.shared.storage.apply(batch) {
                st.failed = Some(e.to_string());
                return Err(e);
            }
            st.issued += 1;
            (st.applied, st.durable) = (st.issued, st.issued);
            return Ok(Ticket(st.issued));
        }
        st.issued += 1;
        let ticket = st.issued;
        for (space, key, write) in &batch.ops {
            let value = match write {
                Write::Put(v) => Some(v.clone()),
                Write::Delete => None,
                // Appended records get their keys when applied, and are read by scans,
                // which wait for that.
                Write::Append(_) => continue,
            };
            st.overlay
                .entry(*space)
                .or_default()
                .insert(key.as_bytes().to_vec(), (ticket, value));
        }
        st.queue.push_back((ticket, batch));
        // The committer waits for work only on an empty queue, or while it gathers a
        // round: otherwise it looks at the queue before it waits, and a wake-up would
        // be a system call for nothing.
        let wake = st.queue.len() == 1 || st.queue.len() == st.wanted;
        drop(st);
        if wake {
            self.shared.work.notify_one();
        }
        Ok(Ticket(ticket))
    }

    /// A ticket for an operation that wrote nothing but read what earlier operations
    /// wrote (an idempotent retry): durable when everything queued so far is.
    pub fn current(&self) -> Ticket {
        Ticket(lock(&self.shared.state).issued)
    }

    /// Block until `ticket` is durable.
    pub fn wait(&self, ticket: Ticket) -> Result<(), StorageError> {
        let mut st = lock(&self.shared.state);
        loop {
            if let Some(done) = st.settled(ticket) {
                return done;
            }
            st = wait(&self.shared.progress, st);
        }
    }

    /// Wait (asynchronously) until `ticket` is durable. The waiter is woken once,
    /// when the flush that covers its ticket returns (or one fails), not by every
    /// round's flush as with one signal for all.
    pub async fn wait_async(&self, ticket: Ticket) -> Result<(), StorageError> {
        loop {
            let woken = {
                let mut st = lock(&self.shared.state);
                if let Some(done) = st.settled(ticket) {
                    return done;
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                st.waiters.entry(ticket.0).or_default().push(tx);
                rx
            };
            // Woken: the state says why (a closed channel cannot happen while
            // `self` is borrowed, and would only mean looking again).
            let _ = woken.await;
        }
    }

    /// Block until everything queued before this call is applied to the storage (so
    /// that a scan of the storage sees it).
    fn wait_applied(&self) -> Result<(), StorageError> {
        let mut st = lock(&self.shared.state);
        let target = st.issued;
        loop {
            if st.applied >= target {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(refused(e));
            }
            st = wait(&self.shared.progress, st);
        }
    }

    /// The flush latency histogram (a shared handle, for the metrics registry).
    pub fn latency(&self) -> Histogram {
        self.shared.latency.clone()
    }

    /// Flush counters so far.
    pub fn stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            operations: lock(&self.shared.state).durable,
            flush_time: Duration::from_nanos(self.shared.flush_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Rounds applied so far (each one atomic write to the storage).
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }
}

fn refused(why: &str) -> StorageError {
    StorageError::Backend(format!(
        "writes are refused since a write to storage failed ({why}); restart the host"
    ))
}

impl Storage for GroupCommit {
    fn get(&self, space: Space, key: &Key) -> Result<Option<Vec<u8>>, StorageError> {
        {
            let st = lock(&self.shared.state);
            if let Some((_, value)) = st.overlay.get(&space).and_then(|m| m.get(key.as_bytes())) {
                return Ok(value.clone());
            }
        }
        let version = if space == CACHED && !self.inline {
            match self.shared.recent.look(key.as_bytes()) {
                Look::Hit(value) => return Ok(value),
                Look::Miss(version) => Some(version),
            }
        } else {
            None
        };
        // Not pending: the storage has the newest value. (A write queued after the
        // check is newer than this read, as if the read had come first.)
        let value = self.shared.storage.get(space, key)?;
        if let Some(version) = version {
            self.shared
                .recent
                .keep_read(key.as_bytes(), version, &value);
        }
        Ok(value)
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
        self.wait_applied()?;
        self.shared
            .storage
            .scan_page(space, merchant, prefix, after, limit, reverse)
    }

    fn visit(
        &self,
        space: Space,
        merchant: &str,
        visit: &mut dyn FnMut(&Key, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        self.wait_applied()?;
        self.shared.storage.visit(space, merchant, visit)
    }

    fn merchants(&self, space: Space) -> Result<Vec<String>, StorageError> {
        self.wait_applied()?;
        self.shared.storage.merchants(space)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        self.submit(batch).map(|_| ())
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.wait(self.current())
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // The committer applies and flushes what is queued before it stops.
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_one();
        if let Some(h) = lock(&self.committer).take() {
            let _ = h.join();
        }
    }
}

fn wait<'a, T>(c: &Condvar, g: std::sync::MutexGuard<'a, T>) -> std::sync::MutexGuard<'a, T> {
    c.wait(g).unwrap_or_else(|e| e.into_inner())
}

fn commit_loop(s: &Shared) {
    // How many batches the last round took.
    let mut previous = 0usize;
    loop {
        // Take a round: everything queued (up to MAX_ROUND batches), or wait for some.
        let (taken, last) = {
            let mut st = lock(&s.state);
            loop {
                if !st.queue.is_empty() {
                    break;
                }
                if st.durable < st.issued && st.failed.is_none() {
                    // Applied but not durable (the last flush failed): flush again.
                    break;
                }
                if st.stop {
                    return;
                }
                st = wait(&s.work, st);
            }
            if previous >= GATHER_AFTER && st.queue.len() < previous / 2 && !st.stop {
                // Wait until as many are queued as the last round took, or the
                // gathering time has passed.
                let deadline = Instant::now() + s.gather;
                st.wanted = previous;
                while st.queue.len() < previous && !st.stop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    st = s
                        .work
                        .wait_timeout(st, left)
                        .map_or_else(|e| e.into_inner().0, |(g, _)| g);
                }
                st.wanted = 0;
            }
            let n = st.queue.len().min(MAX_ROUND);
            previous = n;
            let taken: Vec<(u64, Batch)> = st.queue.drain(..n).collect();
            let last = taken.last().map_or(st.applied, |(ticket, _)| *ticket);
            (taken, last)
        };
        // Writers waiting for queue space may go on.
        s.progress.notify_all();
        // Merged outside the lock, so reads and new writes are not held up meanwhile.
        let mut round = Batch::new();
        // The round's member records, for the recent records once it is applied.
        let mut members = Vec::new();
        for (_, batch) in taken {
            for (space, key, write) in &batch.ops {
                match write {
                    Write::Put(v) if *space == CACHED => {
                        members.push((key.as_bytes().to_vec(), Some(v.clone())));
                    }
                    Write::Delete if *space == CACHED => {
                        members.push((key.as_bytes().to_vec(), None))
                    }
                    _ => {}
                }
            }
            round.ops.extend(batch.ops);
        }
        if !round.is_empty() {
            let result = s.storage.apply(round);
            s.rounds.fetch_add(1, Ordering::Relaxed);
            if result.is_ok() {
                // In order, so a record written twice in the round ends as written
                // last; before they leave the overlay, so no read falls in between.
                for (key, value) in members {
                    s.recent.put(key, value);
                }
            }
            let mut st = lock(&s.state);
            match result {
                Ok(()) => {
                    st.applied = last;
                    // What this round wrote is now in the storage, unless a later
                    // batch has written the key again since.
                    for writes in st.overlay.values_mut() {
                        writes.retain(|_, (ticket, _)| *ticket > last);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "applying a group of writes failed; refusing writes from now on");
                    st.failed = Some(e.to_string());
                    st.queue.clear();
                    st.overlay.clear();
                }
            }
            drop(st);
            s.progress.notify_all();
        }
        let target = {
            let mut st = lock(&s.state);
            if st.failed.is_some() {
                let waiters = st.waiters_up_to(u64::MAX);
                drop(st);
                // Wake async waiters so they see the failure.
                wake(waiters);
                // Nothing more can become durable; wait to be stopped.
                let mut st = lock(&s.state);
                while !st.stop {
                    st = wait(&s.work, st);
                }
                return;
            }
            st.applied
        };
        let started = Instant::now();
        let result = s.storage.flush();
        let took = started.elapsed();
        s.flush_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        s.latency.observe(took.as_secs_f64());
        s.flushes.fetch_add(1, Ordering::Relaxed);
        let failed = result.is_err();
        let mut st = lock(&s.state);
        let done = match result {
            Ok(()) => {
                st.durable = target;
                st.flush_error = None;
                st.waiters_up_to(target)
            }
            Err(e) => {
                tracing::error!(error = %e, "storage flush failed");
                st.flush_error = Some(e.to_string());
                // Every waiter sees the failure.
                st.waiters_up_to(u64::MAX)
            }
        };
        drop(st);
        s.progress.notify_all();
        wake(done);
        if failed {
            // Do not spin on a failing disk.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SledStorage;
    use crate::storage::intercept::{Gate, Intercept};

    fn key(i: u64) -> Key {
        Key::merchant("m", &[format!("k{i}").as_bytes()])
    }

    /// A group commit with its committer over sled, and the sled storage under it (to
    /// change behind the group commit's back, which nothing in the host does).
    fn started() -> (tempfile::TempDir, Arc<dyn Storage>, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = GroupCommit::start(storage.clone());
        (dir, storage, gc)
    }

    fn put_value(gc: &GroupCommit, space: Space, i: u64, value: &[u8]) {
        let mut b = Batch::new();
        b.put(space, key(i), value.to_vec());
        gc.wait(gc.submit(b).unwrap()).unwrap();
    }

    fn remove_underneath(storage: &Arc<dyn Storage>, space: Space, i: u64) {
        let mut b = Batch::new();
        b.delete(space, key(i));
        storage.apply(b).unwrap();
    }

    #[test]
    fn member_records_written_are_read_from_memory_and_nothing_else_is() {
        let (_dir, storage, gc) = started();
        put_value(&gc, Space::Members, 1, b"member");
        put_value(&gc, Space::Codes, 1, b"code");
        // Both are applied; only the member record stays in memory, so taking both
        // away underneath shows which one the group commit still answers.
        remove_underneath(&storage, Space::Members, 1);
        remove_underneath(&storage, Space::Codes, 1);
        assert_eq!(
            gc.get(Space::Members, &key(1)).unwrap(),
            Some(b"member".to_vec())
        );
        assert_eq!(gc.get(Space::Codes, &key(1)).unwrap(), None);
        // A deletion is remembered as one.
        let mut b = Batch::new();
        b.delete(Space::Members, key(1));
        gc.wait(gc.submit(b).unwrap()).unwrap();
        assert_eq!(gc.get(Space::Members, &key(1)).unwrap(), None);
    }

    #[test]
    fn a_member_record_read_is_kept_and_replaced_by_the_next_write() {
        let (_dir, storage, gc) = started();
        let mut b = Batch::new();
        b.put(Space::Members, key(2), b"on disk".to_vec());
        storage.apply(b).unwrap();
        assert_eq!(
            gc.get(Space::Members, &key(2)).unwrap(),
            Some(b"on disk".to_vec())
        );
        // Kept: answered after it is gone underneath.
        remove_underneath(&storage, Space::Members, 2);
        assert_eq!(
            gc.get(Space::Members, &key(2)).unwrap(),
            Some(b"on disk".to_vec())
        );
        // A write replaces it, while queued (the overlay) and once applied (memory).
        put_value(&gc, Space::Members, 2, b"newer");
        assert_eq!(
            gc.get(Space::Members, &key(2)).unwrap(),
            Some(b"newer".to_vec())
        );
        remove_underneath(&storage, Space::Members, 2);
        assert_eq!(
            gc.get(Space::Members, &key(2)).unwrap(),
            Some(b"newer".to_vec())
        );
    }

    #[test]
    fn an_inline_group_commit_keeps_nothing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = GroupCommit::inline(storage.clone());
        put_value(&gc, Space::Members, 3, b"member");
        assert_eq!(
            gc.get(Space::Members, &key(3)).unwrap(),
            Some(b"member".to_vec())
        );
        remove_underneath(&storage, Space::Members, 3);
        assert_eq!(gc.get(Space::Members, &key(3)).unwrap(), None);
    }

    #[test]
    fn a_member_record_evicted_is_read_from_the_storage_again() {
        let (_dir, storage, gc) = started();
        put_value(&gc, Space::Members, 5, b"five");
        gc.shared.recent.evict_shard_of(key(5).as_bytes());
        remove_underneath(&storage, Space::Members, 5);
        assert_eq!(gc.get(Space::Members, &key(5)).unwrap(), None);
    }

    #[test]
    fn try_submit_hands_the_batch_back_when_the_queue_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        // No committer: nothing leaves the queue.
        let gc = GroupCommit::new(storage, false, GATHER);
        for i in 0..MAX_QUEUED as u64 {
            let mut b = Batch::new();
            b.put(Space::Members, key(i), vec![1]);
            assert!(gc.try_submit(b).unwrap().is_ok(), "room for batch {i}");
        }
        let mut b = Batch::new();
        b.put(Space::Members, key(u64::MAX), vec![2]);
        let back = gc.try_submit(b).unwrap().expect_err("the queue is full");
        assert_eq!(back.ops.len(), 1, "the batch comes back whole");
        // Nothing of it was queued: reads do not see it.
        assert_eq!(gc.get(Space::Members, &key(u64::MAX)).unwrap(), None);
        assert_eq!(gc.get(Space::Members, &key(7)).unwrap(), Some(vec![1]));
    }

    fn put(gc: &GroupCommit, i: u64) -> Ticket {
        let mut b = Batch::new();
        b.put(Space::Members, key(i), vec![1]);
        gc.submit(b).unwrap()
    }

    /// Wait until the committer gathers a round (for 16 batches).
    fn gathering(gc: &GroupCommit) {
        while lock(&gc.shared.state).wanted != 16 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Wait for `ticket` on another thread, failing after a minute (so a committer
    /// that sleeps out a gathering time of ten minutes fails the test).
    fn durable_within_a_minute(gc: &Arc<GroupCommit>, ticket: Ticket) {
        let (tx, rx) = std::sync::mpsc::channel();
        let gc = gc.clone();
        std::thread::spawn(move || tx.send(gc.wait(ticket)));
        let waited = rx.recv_timeout(Duration::from_secs(60));
        assert!(matches!(waited, Ok(Ok(()))), "not durable: {waited:?}");
    }

    /// A group commit gathering for at most `gather` over a gate, after a round of
    /// 16 batches: a first batch holds the committer in its apply while 16 more are
    /// queued, which then make one round.
    fn after_a_round_of_16(gather: Duration) -> (tempfile::TempDir, Arc<Gate>, Arc<GroupCommit>) {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(Gate::new(SledStorage::open(dir.path(), 1 << 20).unwrap()));
        gate.set_closed(true);
        let gc = Arc::new(GroupCommit::start_gathering(gate.clone(), gather));
        put(&gc, 0);
        gate.wait_for_applies(1);
        let sixteen: Vec<Ticket> = (1..=16).map(|i| put(&gc, i)).collect();
        gate.set_closed(false);
        durable_within_a_minute(&gc, *sixteen.last().unwrap());
        assert_eq!(gate.applies(), 2);
        (dir, gate, gc)
    }

    #[test]
    fn under_load_a_round_is_gathered_until_as_many_are_queued_as_the_last_took() {
        let (_dir, gate, gc) = after_a_round_of_16(Duration::from_secs(600));
        // Now one queued is fewer than half of 16: the committer waits for 16, and
        // takes them as one round as soon as the 16th is queued, long before its
        // ten minutes are up.
        put(&gc, 17);
        gathering(&gc);
        let next: Vec<Ticket> = (18..=32).map(|i| put(&gc, i)).collect();
        durable_within_a_minute(&gc, *next.last().unwrap());
        assert_eq!(gate.applies(), 3, "one round of 16");
    }

    #[test]
    fn a_gathered_round_goes_when_its_time_is_up() {
        let (_dir, gate, gc) = after_a_round_of_16(Duration::from_millis(20));
        // Two where 16 are awaited (however soon the committer looks, fewer than
        // half are queued): they go, as one round, when the gathering time is up.
        put(&gc, 17);
        let last = put(&gc, 18);
        durable_within_a_minute(&gc, last);
        assert_eq!(gate.applies(), 3);
    }

    #[test]
    fn concurrent_operations_share_rounds_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = Arc::new(GroupCommit::start(storage.clone()));
        let threads: Vec<_> = (0..16u64)
            .map(|t| {
                let gc = gc.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let mut b = Batch::new();
                        b.put(Space::Members, key(t * 1000 + i), vec![t as u8]);
                        let ticket = gc.submit(b).unwrap();
                        gc.wait(ticket).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = gc.stats();
        assert_eq!(stats.operations, 800);
        assert!(
            stats.flushes < 800 && gc.rounds() < 800,
            "800 operations took {} flushes in {} rounds",
            stats.flushes,
            gc.rounds()
        );
        // Everything reached the storage underneath.
        for t in 0..16 {
            assert_eq!(
                storage.get(Space::Members, &key(t * 1000 + 49)).unwrap(),
                Some(vec![t as u8])
            );
        }
    }

    #[test]
    fn a_queued_write_is_read_back_before_it_is_applied_and_scans_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = GroupCommit::start(storage);
        for i in 0..200u64 {
            let mut b = Batch::new();
            b.put(Space::Members, key(i % 7), i.to_be_bytes().to_vec());
            if i % 3 == 0 {
                b.delete(Space::Members, key(100 + i));
            } else {
                b.put(Space::Members, key(100 + i), vec![1]);
            }
            gc.submit(b).unwrap();
            // Reads see the newest queued value at once.
            assert_eq!(
                gc.get(Space::Members, &key(i % 7)).unwrap(),
                Some(i.to_be_bytes().to_vec())
            );
            assert_eq!(
                gc.get(Space::Members, &key(100 + i)).unwrap().is_some(),
                i % 3 != 0
            );
        }
        let all = gc.scan(Space::Members, "m", &[]).unwrap();
        assert_eq!(all.len(), 7 + 200 - 67);
        gc.flush().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_waiters_are_woken_by_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = Arc::new(GroupCommit::start(storage));
        let waits: Vec<_> = (0..64)
            .map(|i| {
                let gc = gc.clone();
                tokio::spawn(async move {
                    let mut b = Batch::new();
                    b.put(Space::Members, key(i), vec![1]);
                    let t = gc.submit(b).unwrap();
                    gc.wait_async(t).await
                })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(gc.stats().operations, 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_waiters_hear_of_a_failed_round_and_of_a_failed_flush() {
        let dir = tempfile::tempdir().unwrap();
        let gc = Arc::new(GroupCommit::start(Arc::new(Broken(
            SledStorage::open(dir.path(), 1 << 20).unwrap(),
        ))));
        let waits: Vec<_> = (0..16)
            .map(|i| {
                let gc = gc.clone();
                tokio::spawn(async move {
                    let mut b = Batch::new();
                    b.put(Space::Members, key(i), vec![1]);
                    let t = gc.submit(b).ok()?;
                    Some(gc.wait_async(t).await)
                })
            })
            .collect();
        for w in waits {
            // Queued before the failure: told it failed; after it: refused at once.
            if let Some(r) = w.await.unwrap() {
                assert!(r.unwrap_err().to_string().contains("disk on fire"));
            }
        }

        let flaky = Arc::new(FlakyFlush {
            inner: SledStorage::open(&dir.path().join("flaky"), 1 << 20).unwrap(),
            failures: AtomicU64::new(1),
        });
        let gc = GroupCommit::start(flaky.clone());
        let mut b = Batch::new();
        b.put(Space::Members, key(1), vec![1]);
        let t = gc.submit(b.clone()).unwrap();
        let err = gc.wait_async(t).await.unwrap_err().to_string();
        assert!(err.contains("flush failed"), "{err}");
        // Until a flush succeeds, waiters are told of the failure at once; the
        // committer flushes again (after a pause), and then the write is durable.
        let mut tries = 0;
        while let Err(e) = gc.wait_async(t).await {
            assert!(e.to_string().contains("disk full"), "{e}");
            tries += 1;
            assert!(tries < 500, "the committer never flushed again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(flaky.failures.load(Ordering::Relaxed), 0);
        let t2 = gc.submit(b).unwrap();
        gc.wait_async(t2).await.unwrap();
    }

    /// Storage whose first `failures` flushes fail.
    struct FlakyFlush {
        inner: SledStorage,
        failures: AtomicU64,
    }

    impl Intercept for FlakyFlush {
        fn inner(&self) -> &SledStorage {
            &self.inner
        }
        fn flush(&self) -> Result<(), StorageError> {
            let left = self.failures.load(Ordering::Relaxed);
            if left > 0 {
                self.failures.store(left - 1, Ordering::Relaxed);
                return Err(StorageError::Backend("disk full".into()));
            }
            self.inner.flush()
        }
    }

    #[test]
    fn inline_applies_on_the_calling_thread_and_refuses_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = GroupCommit::inline(storage.clone());
        let mut b = Batch::new();
        b.put(Space::Members, key(1), vec![7]);
        let t = gc.submit(b).unwrap();
        // In the storage underneath already, and durable without waiting.
        assert_eq!(storage.get(Space::Members, &key(1)).unwrap(), Some(vec![7]));
        gc.wait(t).unwrap();
        assert_eq!(gc.scan(Space::Members, "m", &[]).unwrap().len(), 1);

        let broken = GroupCommit::inline(Arc::new(Broken(
            SledStorage::open(&dir.path().join("broken"), 1 << 20).unwrap(),
        )));
        let mut b = Batch::new();
        b.put(Space::Members, key(1), vec![1]);
        let err = broken.submit(b.clone()).unwrap_err().to_string();
        assert!(err.contains("disk on fire"), "{err}");
        assert_eq!(broken.get(Space::Members, &key(1)).unwrap(), None);
        assert!(
            broken
                .submit(b)
                .unwrap_err()
                .to_string()
                .contains("refused")
        );
    }

    /// Storage whose writes fail.
    struct Broken(SledStorage);

    impl Intercept for Broken {
        fn inner(&self) -> &SledStorage {
            &self.0
        }
        fn apply(&self, _: Batch) -> Result<(), StorageError> {
            Err(StorageError::Backend("disk on fire".into()))
        }
    }

    #[test]
    fn a_failed_write_is_never_acknowledged_and_later_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let gc = GroupCommit::start(Arc::new(Broken(
            SledStorage::open(dir.path(), 1 << 20).unwrap(),
        )));
        let mut b = Batch::new();
        b.put(Space::Members, key(1), vec![1]);
        let t = gc.submit(b.clone()).unwrap();
        let err = gc.wait(t).unwrap_err().to_string();
        assert!(err.contains("disk on fire"), "{err}");
        // The lost write is no longer visible, and nothing more is taken.
        assert_eq!(gc.get(Space::Members, &key(1)).unwrap(), None);
        assert!(gc.submit(b).is_err());
    }
}
