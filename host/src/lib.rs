//! The loyalty host: runs each merchant's programme plugin in a WebAssembly sandbox and
//! keeps member state.
//!
//! # Layout
//!
//! - [`analytics`]: repeat customers, lapsed members, NPS, tiers, points, liability
//!   and budget, in one pass over the members.
//! - [`api`]: the HTTP API: routes, keys and scopes, schema-checked bodies,
//!   problem+json errors, idempotency keys, OpenAPI, metrics.
//! - [`server`]: `loyalty serve`: the listener, graceful shutdown, the demo merchant.
//! - [`client`]: the command line's HTTP client for simulations and imports on a
//!   running server, with a progress bar.
//! - [`app`]: opening a data directory: storage, registry, pool and engine wired.
//! - [`domain`]: the host's data types for members, events and plugin decisions, in
//!   the JSON shape the runner, the API and storage use. Pure data.
//! - [`sandbox`]: the wasmtime engine, plugin loading and validation, and one fresh
//!   limited instance per hook call, with typed failures.
//! - [`engine`]: applies programmes' decisions to member state: enrolment, events,
//!   refunds, tiers, perks, redemptions, budget; idempotent, atomic, durable (group
//!   commit).
//! - [`import`]: a stream of operations in, durable acknowledgements out.
//! - [`bulk`]: bulk import of members (balances, tiers, attributes) from JSONL or CSV,
//!   row by row, idempotent, in large batches.
//! - [`jobs`]: background jobs (simulations, imports) with progress, cancellation
//!   and a stored record that outlives the process.
//! - [`ledger`]: a member's points as lots, with spending by earliest expiry,
//!   proportional refunds, explicit debt, expiry and adjustments. Pure logic.
//! - [`pool`]: the bounded threads guest code runs on, with a per-merchant share and
//!   turns between merchants.
//! - [`registry`]: merchants' plugin versions (content-addressed, persisted),
//!   activation and rollback, and the on-disk cache of compiled artefacts.
//! - [`simulate`]: replaying history through a candidate programme and the active one
//!   in scratch state, side by side.
//! - [`stats`]: a member's activity in monthly buckets, giving the contract's
//!   calendar-year, rolling-12-month and membership-year totals. Pure logic.
//! - [`storage`]: the one storage interface and its sled implementation.
//! - [`webhooks`]: endpoints, the outbox the engine writes with each change, and
//!   signed deliveries with retries.
//! - [`runner`]: the local runner (`loyalty run`): one hook of one plugin file, JSON in,
//!   JSON out, with fuel and time.

mod allocator;
pub mod analytics;
pub mod api;
pub mod app;
pub mod bulk;
pub mod client;
pub mod domain;
pub mod engine;
pub mod import;
pub mod jobs;
pub mod ledger;
pub mod pool;
pub mod registry;
pub mod runner;
pub mod sandbox;
pub mod server;
pub mod simulate;
pub mod stats;
pub mod storage;
pub mod webhooks;

/// The allocator of every program that links the host (the server, its tests and
/// benchmarks): mimalloc. With glibc's malloc, allocating and freeing took about a
/// sixth of the CPU time of an event (measured with perf on the simulation benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lock `m`, going on with its data if a thread panicked while holding it (the
/// host's mutexes are all taken this way).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
