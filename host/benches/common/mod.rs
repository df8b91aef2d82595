//! What the engine benchmarks share: sizes from the environment, the merchant, the
//! flight they post, and an engine over a native programme.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loyalty_host::domain::Event;
use loyalty_host::engine::{Engine, EnrolRequest, FixedProgrammes, MerchantSettings, Programme};
use loyalty_host::pool::PluginPool;
use loyalty_host::storage::{SledStorage, Storage};

/// 2026-09-21T13:46:40Z.
pub const T0: i64 = 1_790_000_000;

/// The number in the environment variable `name`, or `default`.
pub use loyalty_tests::env_number as env;

/// Merchant "air", in USD.
pub fn settings() -> MerchantSettings {
    MerchantSettings {
        id: "air".into(),
        name: "Air".into(),
        currency: "USD".into(),
        created_at: T0,
        config: None,
        point_value: None,
        budget: None,
    }
}

/// A flight bought online: fare, carrier surcharge and tax.
pub fn flight(id: String, at: i64) -> Event {
    serde_json::from_value(loyalty_tests::flight(&id, at)).expect("the flight is an event")
}

/// An engine on sled in `dir` (a `cache_mib` page cache) whose merchant "air" runs
/// `programme`, with `threads` operations at once.
pub fn native_engine(
    dir: &Path,
    cache_mib: u64,
    threads: usize,
    programme: Arc<dyn Programme>,
) -> Arc<Engine> {
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&dir.join("db"), cache_mib << 20).unwrap());
    let programmes = Arc::new(FixedProgrammes::new());
    programmes.set("air", programme);
    let pool = Arc::new(PluginPool::new(threads, threads, Duration::from_secs(60)));
    Arc::new(Engine::new(storage, programmes, pool))
}

/// Run `n` operations, each a task spawned by `op(i, engine)`, with `concurrency` in
/// flight; return how many finished a second.
pub async fn drive<F>(engine: &Arc<Engine>, n: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize, &Arc<Engine>) -> tokio::task::JoinHandle<()> + Send + Sync,
{
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let h = op(i, engine);
        handles.push(tokio::spawn(async move {
            h.await.unwrap();
            drop(permit);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Enrol member `m{i}` of "air" at `T0` through the plugin pool, durably, in a task of
/// its own (an operation for [`drive`]).
pub fn enrol(i: usize, e: &Arc<Engine>) -> tokio::task::JoinHandle<()> {
    let e = e.clone();
    tokio::spawn(async move {
        let req = EnrolRequest {
            member: format!("m{i}"),
            enrolled_at: T0,
            ..Default::default()
        };
        e.submit("air", move |e| e.enrol("air", &req))
            .await
            .unwrap();
    })
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
