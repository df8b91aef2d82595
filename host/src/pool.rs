//! Where guest code runs: a bounded set of blocking threads, never the async workers.
//!
//! A hook call is synchronous CPU work of up to the sandbox deadline, so it must not
//! run on a tokio worker (one slow plugin would stall every request on that worker).
//! [`PluginPool::run`] moves it to tokio's blocking threads, bounded twice:
//! - globally, to `threads` calls at once (more would only queue on the cores);
//! - per merchant, to `per_merchant` calls at once, so one merchant's slow or hostile
//!   plugin can hold at most that share and the others keep answering.
//!
//! A call that cannot start within `queue_timeout` is refused as [`PoolError::Busy`]
//! rather than queueing without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a call did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The merchant's share (or the whole pool) stayed full for `waited`.
    #[error("merchant {merchant}'s plugin calls are at capacity (waited {}ms)", waited.as_millis())]
    Busy {
        /// The merchant.
        merchant: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// The job panicked on its thread (a host bug; guest failures are values).
    #[error("a plugin call panicked in the host")]
    Panicked,
}

/// The bounded pool (see the module docs). Share it behind an `Arc`.
#[derive(Debug)]
pub struct PluginPool {
    global: Arc<Semaphore>,
    per_merchant: usize,
    queue_timeout: Duration,
    // A std Mutex: held only to look up or insert a semaphore, never across awaits.
    merchants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl PluginPool {
    /// A pool running at most `threads` calls at once, at most `per_merchant` of them
    /// for one merchant, refusing calls that wait longer than `queue_timeout`.
    pub fn new(threads: usize, per_merchant: usize, queue_timeout: Duration) -> PluginPool {
        let threads = threads.max(1);
        PluginPool {
            global: Arc::new(Semaphore::new(threads)),
            per_merchant: per_merchant.clamp(1, threads),
            queue_timeout,
            merchants: Mutex::new(HashMap::new()),
        }
    }

    /// Calls that may run at once.
    pub fn threads(&self) -> usize {
        self.global.available_permits()
    }

    fn merchant(&self, merchant: &str) -> Arc<Semaphore> {
        let mut map = self.merchants.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(merchant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_merchant)))
            .clone()
    }

    async fn permit(
        &self,
        semaphore: Arc<Semaphore>,
        merchant: &str,
        started: Instant,
    ) -> Result<OwnedSemaphorePermit, PoolError> {
        let left = self.queue_timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphores are never closed; a timeout is the only real outcome.
            _ => Err(PoolError::Busy {
                merchant: merchant.to_string(),
                waited: started.elapsed(),
            }),
        }
    }

    /// Run `job` (a hook call) for `merchant` on a blocking thread.
    pub async fn run<T, F>(&self, merchant: &str, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let started = Instant::now();
        // The merchant's share first, so a flood from one merchant queues on its own
        // semaphore and does not occupy places in the global queue.
        let mine = self
            .permit(self.merchant(merchant), merchant, started)
            .await?;
        let global = self.permit(self.global.clone(), merchant, started).await?;
        // The job runs inside the caller's span (the request's), so what the guest
        // call logs carries the request's merchant, member and request id.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permits = (mine, global);
            let _entered = span.enter();
            job()
        })
        .await
        .map_err(|_| PoolError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn slow(done: Arc<AtomicUsize>) -> impl FnOnce() -> usize + Send + 'static {
        move || {
            std::thread::sleep(Duration::from_millis(150));
            done.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_merchants_slow_calls_leave_room_for_another() {
        let pool = Arc::new(PluginPool::new(4, 2, Duration::from_secs(30)));
        let done = Arc::new(AtomicUsize::new(0));
        let flood: Vec<_> = (0..6)
            .map(|_| {
                let (pool, done) = (pool.clone(), done.clone());
                tokio::spawn(async move { pool.run("slowco", slow(done)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = pool.run("quickco", || 42).await.unwrap();
        // quickco answered while slowco's calls were still running two at a time.
        assert_eq!(answer, 42);
        assert!(done.load(Ordering::SeqCst) < 6);
        for f in flood {
            f.await.unwrap().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merchant_at_capacity_is_told_it_is_busy() {
        let pool = Arc::new(PluginPool::new(4, 1, Duration::from_millis(30)));
        let done = Arc::new(AtomicUsize::new(0));
        let first = {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move { pool.run("slowco", slow(done)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = pool.run("slowco", || 0).await;
        assert!(matches!(second, Err(PoolError::Busy { .. })), "{second:?}");
        assert_eq!(first.await.unwrap().unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn guest_work_never_blocks_the_async_worker() {
        let pool = Arc::new(PluginPool::new(2, 2, Duration::from_secs(30)));
        let done = Arc::new(AtomicUsize::new(0));
        let busy = {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move { pool.run("slowco", slow(done)).await })
        };
        // With one async worker, this timer only fires if the worker is free.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(done.load(Ordering::SeqCst), 0, "the timer fired first");
        busy.await.unwrap().unwrap();
    }
}
