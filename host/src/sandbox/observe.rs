//! What the sandbox counts about hook calls, as Prometheus metric families: call
//! duration and fuel per hook, and failures per hook and kind. The families are
//! shared handles; the API registers them with its metrics registry.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::Hook;

/// Labels: `[("hook", ...)]` or `[("hook", ...), ("kind", ...)]`.
pub type Labels = Vec<(&'static str, &'static str)>;

fn duration_histogram() -> Histogram {
    // 1 µs to about 65 ms: a call in an operation's live instance takes a few µs, a
    // fresh instance and call about 10 µs, the deadline is ms.
    Histogram::new(exponential_buckets(1e-6, 2.0, 17))
}

fn fuel_histogram() -> Histogram {
    // 1,000 instructions up to the default budget of 10 million and beyond.
    Histogram::new(exponential_buckets(1_000.0, 4.0, 10))
}

/// The hook-call metrics. Durations and fuel are one histogram per hook (indexed
/// like [`Hook::ALL`]), so recording a call touches no lock and allocates nothing.
#[derive(Clone)]
pub struct HookMetrics {
    /// Seconds per call, instantiation included.
    pub duration: [Histogram; 7],
    /// Fuel used per call.
    pub fuel: [Histogram; 7],
    /// Failed calls by hook and kind (`out_of_fuel`, `trap`, ...).
    pub failures: Family<Labels, Counter>,
}

impl Default for HookMetrics {
    fn default() -> HookMetrics {
        HookMetrics {
            duration: std::array::from_fn(|_| duration_histogram()),
            fuel: std::array::from_fn(|_| fuel_histogram()),
            failures: Family::default(),
        }
    }
}

impl HookMetrics {
    /// Record one finished call of `hook`.
    pub fn record(&self, hook: Hook, seconds: f64, fuel: u64) {
        let i = hook as usize;
        self.duration[i].observe(seconds);
        self.fuel[i].observe(fuel as f64);
    }
}
