//! The loyalty host: runs each merchant's programme plugin in a WebAssembly sandbox and
//! keeps member state.
//!
//! # Layout
//!
//! - [`api`]: the HTTP API: routes, keys and scopes, schema-checked bodies,
//!   problem+json errors, idempotency keys, OpenAPI, metrics.
//! - [`server`]: `loyalty serve`: the listener, graceful shutdown, the demo merchant.
//! - [`app`]: opening a data directory: storage, registry, pool and engine wired.
//! - [`domain`]: the host's data types for members, events and plugin decisions, in
//!   the JSON shape the runner, the API and storage use. Pure data.
//! - [`sandbox`]: the wasmtime engine, plugin loading and validation, and one fresh
//!   limited instance per hook call, with typed failures.
//! - [`engine`]: applies programmes' decisions to member state: enrolment, events,
//!   refunds, tiers, perks, redemptions, budget; idempotent, atomic, durable (group
//!   commit).
//! - [`import`]: a stream of operations in, durable acknowledgements out.
//! - [`ledger`]: a member's points as lots, with spending by earliest expiry,
//!   proportional refunds, explicit debt, expiry and adjustments. Pure logic.
//! - [`pool`]: the bounded blocking threads guest code runs on, with a per-merchant
//!   concurrency bound.
//! - [`registry`]: merchants' plugin versions (content-addressed, persisted),
//!   activation and rollback, and the on-disk cache of compiled artefacts.
//! - [`stats`]: a member's activity in monthly buckets, giving the contract's
//!   calendar-year, rolling-12-month and membership-year totals. Pure logic.
//! - [`storage`]: the one storage interface and its sled implementation.
//! - [`webhooks`]: endpoints, the outbox the engine writes with each change, and
//!   signed deliveries with retries.
//! - [`runner`]: the local runner (`loyalty run`): one hook of one plugin file, JSON in,
//!   JSON out, with fuel and time.

pub mod api;
pub mod app;
pub mod domain;
pub mod engine;
pub mod import;
pub mod ledger;
pub mod pool;
pub mod registry;
pub mod runner;
pub mod sandbox;
pub mod server;
pub mod stats;
pub mod storage;
pub mod webhooks;
