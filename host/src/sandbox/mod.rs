//! The sandbox: one wasmtime engine per process, plugins compiled once, a fresh
//! instance for every operation, and fuel, deadline, stack and output limits for every
//! hook call (the memory cap is the instance's).
//!
//! - [`Sandbox`] owns the engine (pooling allocator, fuel, epoch interruption) and the
//!   linker that grants plugins exactly the contract's host functions and nothing else.
//! - [`Sandbox::load`] turns wasm bytes (a component, or a core module built with
//!   wit-bindgen, which it componentizes) into a validated [`CompiledPlugin`].
//! - [`CompiledPlugin`]'s hook methods run one call each in a [`Session`]'s instance
//!   (made afresh for an operation's first call, thrown away with the session) and return
//!   `Result<Called<Result<T, PluginError>>, HookError>`: the outer error is the plugin
//!   failing (trap, fuel, deadline, memory, bad output), the inner one is the plugin
//!   itself saying no.

pub mod bindings;
mod call;
pub mod convert;
mod error;
mod load;
pub mod observe;
mod state;
pub(crate) mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use call::{CallReport, Called, LogLine, Session};
pub use error::{Failure, Hook, HookError, LoadError};
pub use load::{CompiledPlugin, componentize, is_core_module};
pub use observe::HookMetrics;
use state::CallState;
pub use validate::{MAX_CREDIT_POINTS, valid_id};

/// The contract versions this host can run.
pub const SUPPORTED_CONTRACTS: &[&str] = &["1.0.0"];

/// The contract's export interface, at the supported version.
pub const HOOKS_INTERFACE: &str = "loyalty:program/hooks@1.0.0";

/// How often the epoch ticker advances the engine's epoch; deadlines are rounded up
/// to whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How much of each memory slot stays resident between calls (see `engine_config`).
const KEEP_RESIDENT: usize = 1 << 20;

/// Released slots whose reset is batched (see `engine_config`).
const DECOMMIT_BATCH: usize = 16;

/// Limits on plugins. The defaults suit production; every one can be configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instructions (fuel units) per hook call. 10 million is about 5-20 ms of guest
    /// work: far above what a loyalty rule needs (the examples use under 100,000),
    /// far below what would hurt a request.
    pub fuel: u64,
    /// Wall-clock deadline per call, the backstop behind fuel (host functions and
    /// instantiation do not burn fuel).
    pub deadline: Duration,
    /// Linear-memory cap per instance.
    pub memory_bytes: usize,
    /// Wasm stack cap (engine-wide).
    pub stack_bytes: usize,
    /// Cap on the size of one hook's output (strings, lists, state).
    pub output_bytes: usize,
    /// Cap on the plugin-state blob an outcome may set.
    pub state_bytes: usize,
    /// Cap on the size of an uploaded plugin.
    pub plugin_bytes: usize,
    /// Log lines kept per call; further lines are counted and dropped.
    pub log_lines: usize,
    /// Bytes kept per log line.
    pub log_line_bytes: usize,
    /// Instances that can be alive at once (pooling-allocator slots).
    pub instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            deadline: Duration::from_millis(500),
            memory_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            output_bytes: 1 << 20,
            state_bytes: 64 << 10,
            plugin_bytes: 2 << 20,
            log_lines: 32,
            log_line_bytes: 512,
            instances: 256,
        }
    }
}

/// The process's one wasmtime engine, with its linker and limits.
///
/// Cheap to clone (it is a handle); clones share the engine and the epoch ticker.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    ticker_stop: Arc<AtomicBool>,
    metrics: HookMetrics,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Sandbox {
    /// An engine configured from `limits`, with the epoch ticker running.
    pub fn new(limits: Limits) -> Result<Sandbox, LoadError> {
        let engine = Engine::new(&engine_config(&limits)).map_err(|e| LoadError::Engine {
            reason: e.to_string(),
        })?;
        let mut linker = Linker::new(&engine);
        bindings::Program::add_to_linker::<CallState, CallState>(&mut linker, |s| s).map_err(
            |e| LoadError::Engine {
                reason: e.to_string(),
            },
        )?;

        // The ticker holds only a weak handle, so dropping the last Sandbox frees the
        // engine; the flag stops the thread promptly.
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let weak = engine.weak();
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| LoadError::Engine {
                reason: e.to_string(),
            })?;

        Ok(Sandbox {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                ticker_stop,
                metrics: HookMetrics::default(),
            }),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The hook-call metrics.
    pub fn metrics(&self) -> &HookMetrics {
        &self.inner.metrics
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn linker(&self) -> &Linker<CallState> {
        &self.inner.linker
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let slots = limits.instances.max(1);
    // A plugin is one component holding a handful of core instances (the guest
    // module plus wit-component's small shim modules), one memory and a table or two.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 4)
        .total_memories(slots)
        .total_tables(slots * 2)
        .max_memories_per_component(1)
        .max_tables_per_component(2)
        .max_memory_size(limits.memory_bytes)
        // Reset a returning slot by rewriting only the pages the last call dirtied
        // (found with Linux's PAGEMAP_SCAN) instead of madvise + page faults on the
        // next call: this is most of the cost of a fresh instance otherwise.
        .pagemap_scan(Enabled::Auto)
        // A plugin's working set (a 128 KiB shadow stack, see .cargo/config.toml,
        // its data and the SDK's 256 KiB arena) sits in the low 1 MiB; scanning more costs time per call.
        .linear_memory_keep_resident(KEEP_RESIDENT.min(limits.memory_bytes))
        .table_keep_resident(64 << 10)
        // Flush decommits in batches rather than on every instance's release.
        .decommit_batch_size(DECOMMIT_BATCH);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling: wasmtime writes /tmp/perf-<pid>.map, so perf names the guests'
    // compiled functions.
    if std::env::var_os("LOYALTY_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}
