//! What the engine benchmarks share: sizes from the environment, the merchant, the
//! flight they post, and an engine over a native programme.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loyalty_host::domain::Event;
use loyalty_host::engine::{Engine, FixedProgrammes, MerchantSettings, Programme};
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
