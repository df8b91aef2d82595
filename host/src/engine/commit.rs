//! Group commit: an operation is acknowledged only once its writes are flushed, and
//! concurrent operations share flushes, so durability does not serialise throughput.
//!
//! Writers apply their batch, then take a ticket (a sequence number taken *after* the
//! apply). One flusher thread loops: it reads the highest ticket issued, flushes the
//! storage once, and declares every ticket up to that one durable. While a flush runs,
//! new operations pile up and are covered together by the next one.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::storage::{Storage, StorageError};

/// Proof that an operation's writes were applied; durable once [`GroupCommit::wait`]
/// returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Default)]
struct Progress {
    durable: u64,
    error: Option<String>,
    stop: bool,
}

struct Shared {
    storage: Arc<dyn Storage>,
    issued: AtomicU64,
    // A std Mutex + Condvars: held for a few instructions, never across the flush.
    progress: Mutex<Progress>,
    work: Condvar,
    done: Condvar,
    durable_tx: tokio::sync::watch::Sender<u64>,
    flushes: AtomicU64,
    flush_nanos: AtomicU64,
    latency: Histogram,
}

fn flush_histogram() -> Histogram {
    // 100 µs to about 3 s: a sled flush on these disks is a few ms.
    Histogram::new(exponential_buckets(1e-4, 2.0, 15))
}

/// The group-commit handle (see the module docs).
pub struct GroupCommit {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
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
    /// Start the flusher thread for `storage`.
    pub fn start(storage: Arc<dyn Storage>) -> GroupCommit {
        let (durable_tx, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            storage,
            issued: AtomicU64::new(0),
            progress: Mutex::new(Progress::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            durable_tx,
            flushes: AtomicU64::new(0),
            flush_nanos: AtomicU64::new(0),
            latency: flush_histogram(),
        });
        let s = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || flush_loop(&s))
            .expect("spawn the group-commit thread");
        GroupCommit {
            shared,
            flusher: Mutex::new(Some(flusher)),
        }
    }

    /// Record that a batch was applied; the ticket becomes durable at the next flush.
    pub fn applied(&self) -> Ticket {
        let t = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        // Take the lock to notify, so the flusher cannot miss the wake-up between
        // checking for work and waiting.
        let _p = lock(&self.shared.progress);
        self.shared.work.notify_one();
        Ticket(t)
    }

    /// A ticket for an operation that wrote nothing but read what earlier operations
    /// applied (an idempotent retry): durable when everything applied so far is.
    pub fn current(&self) -> Ticket {
        let t = self.shared.issued.load(Ordering::SeqCst);
        let _p = lock(&self.shared.progress);
        self.shared.work.notify_one();
        Ticket(t)
    }

    /// Block until `ticket` is durable.
    pub fn wait(&self, ticket: Ticket) -> Result<(), StorageError> {
        let mut p = lock(&self.shared.progress);
        loop {
            if p.durable >= ticket.0 {
                return Ok(());
            }
            if let Some(e) = &p.error {
                return Err(StorageError::Backend(format!("flush failed: {e}")));
            }
            p = self.shared.done.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Wait (asynchronously) until `ticket` is durable.
    pub async fn wait_async(&self, ticket: Ticket) -> Result<(), StorageError> {
        let mut rx = self.shared.durable_tx.subscribe();
        if *rx.borrow() >= ticket.0 {
            return Ok(());
        }
        let shared = self.shared.clone();
        let result = rx
            .wait_for(|d| *d >= ticket.0 || lock(&shared.progress).error.is_some())
            .await
            .map(|d| *d);
        match result {
            Ok(d) if d >= ticket.0 => Ok(()),
            _ => Err(StorageError::Backend(format!(
                "flush failed: {}",
                lock(&self.shared.progress)
                    .error
                    .clone()
                    .unwrap_or_else(|| "the flusher stopped".into())
            ))),
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
            operations: lock(&self.shared.progress).durable,
            flush_time: Duration::from_nanos(self.shared.flush_nanos.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.progress).stop = true;
        self.shared.work.notify_one();
        if let Some(h) = lock(&self.flusher).take() {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn flush_loop(s: &Shared) {
    loop {
        let target = {
            let mut p = lock(&s.progress);
            loop {
                let issued = s.issued.load(Ordering::SeqCst);
                if issued > p.durable {
                    break issued;
                }
                if p.stop {
                    return;
                }
                p = s.work.wait(p).unwrap_or_else(|e| e.into_inner());
            }
        };
        // Every ticket up to `target` was taken after its batch was applied, so this
        // flush covers all of them.
        let started = Instant::now();
        let result = s.storage.flush();
        let took = started.elapsed();
        s.flush_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        s.latency.observe(took.as_secs_f64());
        s.flushes.fetch_add(1, Ordering::Relaxed);
        let failed = result.is_err();
        let mut p = lock(&s.progress);
        match result {
            Ok(()) => {
                p.durable = target;
                p.error = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "storage flush failed");
                p.error = Some(e.to_string());
            }
        }
        s.done.notify_all();
        drop(p);
        s.durable_tx.send_replace(target);
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

    #[test]
    fn concurrent_operations_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = Arc::new(GroupCommit::start(storage));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let gc = gc.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let t = gc.applied();
                        gc.wait(t).unwrap();
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
            stats.flushes < 800,
            "800 operations took {} flushes",
            stats.flushes
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_waiters_are_woken_by_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let gc = Arc::new(GroupCommit::start(storage));
        let waits: Vec<_> = (0..64)
            .map(|_| {
                let gc = gc.clone();
                tokio::spawn(async move {
                    let t = gc.applied();
                    gc.wait_async(t).await
                })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(gc.stats().operations, 64);
    }
}
