//! Where guest code runs: a bounded set of threads of its own, never the async workers.
//!
//! A hook call is synchronous CPU work of up to the sandbox deadline, so it must not
//! run on a tokio worker (one slow plugin would stall every request on that worker).
//! [`PluginPool::run`] queues it for the pool's threads, bounded twice:
//! - globally, to `threads` calls at once (more would only queue on the cores);
//! - per merchant, to `per_merchant` calls at once, so one merchant's slow or hostile
//!   plugin can hold at most that share and the others keep answering.
//!
//! Each merchant's calls wait in their own queue, in order; the threads take from the
//! merchants with calls waiting (and room under their share) in turn, so a flood from
//! one merchant does not make another's calls wait behind it.
//!
//! A call that cannot start within `queue_timeout` is refused as [`PoolError::Busy`]
//! and never runs, rather than queueing without bound. A call whose caller stops
//! waiting before it starts (a dropped request) never runs either; once started, a
//! call always runs to its end.
//!
//! Why not tokio's blocking threads: there every call is handed to a parked thread
//! and the thread parks again when it is done, two context switches per call on top
//! of the request's own, and on these machines a context switch costs about 10 µs of
//! CPU. Here a thread that finishes a call takes the next one waiting without
//! sleeping, so under load the pool's threads do not switch at all.

use crate::lock;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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

/// How long an idle pool thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// A queued call's state: it moves once, from queued to started (by a pool thread)
/// or to cancelled (by its caller), never both.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

struct Queued {
    state: Arc<AtomicU8>,
    job: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct Merchant {
    waiting: VecDeque<Queued>,
    running: usize,
    /// Whether the merchant is in the ring of merchants a thread may take from.
    ready: bool,
}

#[derive(Default)]
struct State {
    merchants: HashMap<Arc<str>, Merchant>,
    /// Merchants with calls waiting and room under their share, in turn.
    ring: VecDeque<Arc<str>>,
    /// Threads alive, and of those waiting for work.
    threads: usize,
    idle: usize,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    threads: usize,
    per_merchant: usize,
}

/// The bounded pool (see the module docs). Share it behind an `Arc`; its threads stop
/// when it is dropped (after the calls already queued).
pub struct PluginPool {
    shared: Arc<Shared>,
    queue_timeout: Duration,
}

impl std::fmt::Debug for PluginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPool")
            .field("threads", &self.shared.threads)
            .field("per_merchant", &self.shared.per_merchant)
            .field("queue_timeout", &self.queue_timeout)
            .finish()
    }
}

impl State {
    /// The next call to start, with its merchant: the first merchant in the ring's
    /// oldest call (cancelled calls are dropped on the way). `None` only when the
    /// ring is empty. (A thread asking is not running a call, so there is always a
    /// place under the pool's bound.)
    fn take(&mut self, per_merchant: usize) -> Option<(Arc<str>, Queued)> {
        loop {
            let name = self.ring.pop_front()?;
            let Some(m) = self.merchants.get_mut(&name) else {
                continue;
            };
            let Some(call) = m.waiting.pop_front() else {
                m.ready = false;
                continue;
            };
            if call
                .state
                .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Cancelled: its caller stopped waiting. The merchant keeps its turn
                // for its next call, if any.
                if !m.waiting.is_empty() {
                    self.ring.push_front(name);
                } else {
                    m.ready = false;
                    if m.running == 0 {
                        self.merchants.remove(&name);
                    }
                }
                continue;
            }
            m.running += 1;
            if !m.waiting.is_empty() && m.running < per_merchant {
                self.ring.push_back(name.clone());
            } else {
                m.ready = false;
            }
            return Some((name, call));
        }
    }

    /// Put `name` in the ring if it has calls waiting and room.
    fn maybe_ready(&mut self, name: &Arc<str>, per_merchant: usize) {
        if let Some(m) = self.merchants.get_mut(name)
            && !m.ready
            && !m.waiting.is_empty()
            && m.running < per_merchant
        {
            m.ready = true;
            self.ring.push_back(name.clone());
        }
    }

    /// A call of `name` ended.
    fn finished(&mut self, name: &Arc<str>, per_merchant: usize) {
        let Some(m) = self.merchants.get_mut(name) else {
            return;
        };
        m.running -= 1;
        if m.running == 0 && m.waiting.is_empty() {
            self.merchants.remove(name);
        } else {
            self.maybe_ready(name, per_merchant);
        }
    }
}

/// A pool thread: take calls while there are any, wait for more, exit when idle for
/// [`IDLE_EXIT`] or when the pool is dropped.
fn work(shared: &Shared) {
    let mut st = lock(&shared.state);
    loop {
        if let Some((name, call)) = st.take(shared.per_merchant) {
            drop(st);
            (call.job)();
            st = lock(&shared.state);
            st.finished(&name, shared.per_merchant);
            continue;
        }
        if st.stop {
            break;
        }
        st.idle += 1;
        let (guard, waited) = shared
            .work
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if waited.timed_out() && st.ring.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

/// Cancels its call if the caller stops waiting before the call started.
struct Waiting(Arc<AtomicU8>);

impl Waiting {
    fn cancel(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl PluginPool {
    /// A pool running at most `threads` calls at once, at most `per_merchant` of them
    /// for one merchant, refusing calls that wait longer than `queue_timeout`.
    pub fn new(threads: usize, per_merchant: usize, queue_timeout: Duration) -> PluginPool {
        let threads = threads.max(1);
        PluginPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                threads,
                per_merchant: per_merchant.clamp(1, threads),
            }),
            queue_timeout,
        }
    }

    /// Calls that may run at once.
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Queue `job` for `merchant`, waking or starting a thread for it if none is free.
    fn queue(&self, merchant: &str, job: Box<dyn FnOnce() + Send>) -> Arc<AtomicU8> {
        let state = Arc::new(AtomicU8::new(QUEUED));
        let shared = &self.shared;
        let mut st = lock(&shared.state);
        let name: Arc<str> = match st.merchants.get_key_value(merchant) {
            Some((k, _)) => k.clone(),
            None => merchant.into(),
        };
        st.merchants
            .entry(name.clone())
            .or_default()
            .waiting
            .push_back(Queued {
                state: state.clone(),
                job,
            });
        st.maybe_ready(&name, shared.per_merchant);
        // A free thread wakes for it; if none waits, start one (up to `threads`).
        // Threads busy with other calls take it when they finish theirs.
        if st.idle > 0 {
            drop(st);
            shared.work.notify_one();
        } else if st.threads < shared.threads {
            st.threads += 1;
            drop(st);
            let pool = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("plugin-pool".into())
                .spawn(move || work(&pool));
            if spawned.is_err() {
                lock(&shared.state).threads -= 1;
            }
        }
        state
    }

    /// Run `job` (a hook call) for `merchant` on a pool thread.
    pub async fn run<T, F>(&self, merchant: &str, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let started = Instant::now();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // The job runs inside the caller's span (the request's), so what the guest
        // call logs carries the request's merchant, member and request id.
        let span = tracing::Span::current();
        let call = Box::new(move || {
            let _entered = span.enter();
            let answer = std::panic::catch_unwind(AssertUnwindSafe(job));
            let _ = tx.send(answer.map_err(|_| PoolError::Panicked));
        });
        let waiting = Waiting(self.queue(merchant, call));
        let answer = match tokio::time::timeout(self.queue_timeout, &mut rx).await {
            Ok(answer) => answer,
            // Not started in time: refused, and it never runs.
            Err(_) if waiting.cancel() => {
                return Err(PoolError::Busy {
                    merchant: merchant.to_string(),
                    waited: started.elapsed(),
                });
            }
            // Started just now: it runs to its end, so wait for it.
            Err(_) => rx.await,
        };
        answer.unwrap_or(Err(PoolError::Panicked))
    }
}

impl Drop for PluginPool {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_all();
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

    /// A call that records `name` in `order` when it runs.
    fn mark(order: &Arc<Mutex<Vec<String>>>, name: &str) -> impl FnOnce() + Send + 'static {
        let (order, name) = (order.clone(), name.to_string());
        move || order.lock().unwrap().push(name)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_calls_run_at_once_than_the_pool_and_the_share_allow() {
        for (threads, per_merchant, merchants, bound) in [(3, 3, 1, 3), (4, 2, 1, 2), (4, 2, 3, 4)]
        {
            let pool = Arc::new(PluginPool::new(
                threads,
                per_merchant,
                Duration::from_secs(30),
            ));
            let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let calls: Vec<_> = (0..24)
                .map(|i| {
                    let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
                    tokio::spawn(async move {
                        let merchant = format!("m{}", i % merchants);
                        pool.run(&merchant, move || {
                            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(10));
                            now.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                    })
                })
                .collect();
            for c in calls {
                c.await.unwrap().unwrap();
            }
            let most = most.load(Ordering::SeqCst);
            assert!(most <= bound, "{most} calls ran at once (bound {bound})");
            assert!(most > 1, "calls ran one at a time");
        }
    }

    /// Queue a call of `merchant` that sleeps `ms` and then records `name`; return once
    /// it has started (so it holds a thread and a place in its merchant's share).
    async fn hold(
        pool: &PluginPool,
        merchant: &str,
        order: &Arc<Mutex<Vec<String>>>,
        name: &str,
        ms: u64,
    ) {
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, call) = (started.clone(), mark(order, name));
        pool.queue(
            merchant,
            Box::new(move || {
                flag.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
                call()
            }),
        );
        while !started.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Wait until `order` holds `n` names.
    async fn until_done(order: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
        for _ in 0..10_000 {
            if order.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        order.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merchants_take_turns_instead_of_queueing_behind_a_flood() {
        let pool = PluginPool::new(1, 1, Duration::from_secs(30));
        let order = Arc::new(Mutex::new(Vec::new()));
        hold(&pool, "flood", &order, "flood-0", 50).await;
        // Queued in this order while flood-0 holds the one thread.
        for name in ["flood-1", "flood-2", "flood-3", "other-1"] {
            let merchant = name.split('-').next().unwrap();
            pool.queue(merchant, Box::new(mark(&order, name)));
        }
        assert_eq!(
            until_done(&order, 5).await,
            ["flood-0", "other-1", "flood-1", "flood-2", "flood-3"],
            "the other merchant's call came next; the flood's kept their order"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_refused_as_busy_or_given_up_by_its_caller_never_runs() {
        let pool = Arc::new(PluginPool::new(1, 1, Duration::from_millis(40)));
        let order = Arc::new(Mutex::new(Vec::new()));
        hold(&pool, "acme", &order, "blocker", 200).await;
        // Refused after waiting 40 ms.
        let refused = pool.run("acme", mark(&order, "refused")).await;
        assert!(
            matches!(refused, Err(PoolError::Busy { .. })),
            "{refused:?}"
        );
        // Given up by its caller (a dropped request) while queued.
        let dropped = {
            let (pool, call) = (pool.clone(), mark(&order, "dropped"));
            tokio::spawn(async move { pool.run("acme", call).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        dropped.abort();
        until_done(&order, 1).await;
        pool.run("acme", mark(&order, "after")).await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["blocker", "after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_call_is_reported_and_the_pool_goes_on() {
        let pool = PluginPool::new(1, 1, Duration::from_secs(30));
        let panicked = pool.run("acme", || -> u32 { panic!("a host bug") }).await;
        assert_eq!(panicked, Err(PoolError::Panicked));
        assert_eq!(pool.run("acme", || 7).await, Ok(7));
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
