//! The HTTP API for merchants, partner apps and the host's operator.
//!
//! [`router`] declares every route in one block; handlers live in one file per
//! resource (`merchants`, `plugins`, `members`, `activity`, `hooks`, `system`) and
//! each does the same three steps: who is calling and may they ([`auth`]), the
//! engine or registry call (on the plugin pool or a blocking thread, never on an
//! async worker), the JSON answer. Bodies are checked against the JSON Schemas in
//! `schemas/` before a handler sees them ([`extract`], [`schemas`]); every error is
//! an RFC 9457 problem ([`problem`]). Writes may carry an `Idempotency-Key`
//! ([`idempotency`]). [`openapi`] is the OpenAPI 3.1 description of exactly these
//! routes. `dashboard` serves the merchants' read-only dashboard page, which
//! reads the analytics and simulation jobs through these same routes.
//!
//! Limits (all set in [`Limits`]): JSON bodies up to 64 KiB, plugin uploads up to
//! 4 MiB, data files (imports, histories) up to 1 GiB streamed to disk (the registry's own limit, 2 MiB by default, answers first with the exact
//! size), 30 s per request. Unknown fields in a body are refused, never ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

use crate::app::App;
use crate::domain::Timestamp;
use crate::engine::Engine;
use crate::registry::Registry;
use crate::storage::Storage;

mod activity;
pub mod auth;
mod dashboard;
mod design;
pub mod extract;
mod hooks;
pub mod idempotency;
mod members;
mod merchants;
pub mod metrics;
mod middleware;
pub mod openapi;
mod plugins;
pub mod problem;
pub mod schemas;
mod system;
pub mod types;

pub use problem::{ApiError, FieldError, Problem};

/// The API's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON body, bytes.
    pub json_body: usize,
    /// Largest plugin upload, bytes.
    pub upload_body: usize,
    /// Longest a request may take before it is answered 503 (the operation may
    /// still complete; retry with the same idempotency key or event id).
    pub request_timeout: Duration,
    /// How long a redemption quote can be committed.
    pub quote_ttl: i64,
    /// Largest data file (bulk import, history file), bytes.
    pub data_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            json_body: 64 << 10,
            upload_body: 4 << 20,
            request_timeout: Duration::from_secs(30),
            quote_ttl: crate::engine::QUOTE_TTL_SECS,
            data_body: 1 << 30,
        }
    }
}

/// The API's shared state: handles to the engine, registry and storage, the keys,
/// the compiled schemas and the metrics. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    storage: Arc<dyn Storage>,
    webhooks: Arc<crate::webhooks::Webhooks>,
    jobs: Arc<crate::jobs::Jobs>,
    dir: std::path::PathBuf,
    keys: auth::Keys,
    schemas: schemas::Schemas,
    limits: Limits,
    metrics: metrics::Metrics,
    idempotency: idempotency::InFlight,
    ready: AtomicBool,
}

impl Api {
    /// The API over an opened data directory; `operator_key` is the operator's key.
    pub fn new(app: &App, operator_key: Option<&str>, limits: Limits) -> Result<Api, String> {
        let metrics = metrics::Metrics::new(app);
        Ok(Api {
            inner: Arc::new(Inner {
                engine: app.engine.clone(),
                registry: app.registry.clone(),
                storage: app.storage.clone(),
                webhooks: app.webhooks.clone(),
                jobs: app.jobs.clone(),
                dir: app.dir.clone(),
                keys: auth::Keys::new(app.storage.clone(), operator_key),
                schemas: schemas::Schemas::load()?,
                limits,
                metrics,
                idempotency: idempotency::InFlight::default(),
                ready: AtomicBool::new(true),
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// The plugin registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The webhooks.
    pub fn webhooks(&self) -> &Arc<crate::webhooks::Webhooks> {
        &self.inner.webhooks
    }

    /// The background jobs.
    pub fn jobs(&self) -> &Arc<crate::jobs::Jobs> {
        &self.inner.jobs
    }

    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    /// Keys and partners.
    pub fn keys(&self) -> &auth::Keys {
        &self.inner.keys
    }

    /// The compiled request schemas.
    pub fn schemas(&self) -> &schemas::Schemas {
        &self.inner.schemas
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Requests with an idempotency key being processed now.
    pub fn in_flight(&self) -> &idempotency::InFlight {
        &self.inner.idempotency
    }

    /// Whether `/readyz` answers ready (false while shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether ready.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

macro_rules! routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route the router serves: (method, path template).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn routes() -> Router<Api> {
            Router::new()$(.route($path, $method($handler)))*
        }
    };
}

routes! {
    get "/healthz" => system::healthz,
    get "/readyz" => system::readyz,
    get "/metrics" => system::metrics,
    get "/openapi.json" => system::openapi,
    get "/dashboard" => dashboard::dashboard,

    post "/v1/merchants" => merchants::merchants_create,
    get "/v1/merchants" => merchants::merchants_list,
    get "/v1/merchants/{merchant}" => merchants::merchant_get,
    patch "/v1/merchants/{merchant}" => merchants::merchant_update,
    get "/v1/merchants/{merchant}/config" => merchants::config_get,
    put "/v1/merchants/{merchant}/config" => merchants::config_put,
    get "/v1/merchants/{merchant}/budget" => merchants::budget_get,
    put "/v1/merchants/{merchant}/budget" => merchants::budget_put,
    post "/v1/merchants/{merchant}/keys" => merchants::keys_create,
    get "/v1/merchants/{merchant}/keys" => merchants::keys_list,
    delete "/v1/merchants/{merchant}/keys/{key}" => merchants::key_revoke,
    post "/v1/merchants/{merchant}/partners" => merchants::partners_create,
    get "/v1/merchants/{merchant}/partners" => merchants::partners_list,
    get "/v1/merchants/{merchant}/partners/{partner}" => merchants::partner_get,

    post "/v1/merchants/{merchant}/plugins" => plugins::plugins_upload,
    get "/v1/merchants/{merchant}/plugins" => plugins::plugins_list,
    post "/v1/merchants/{merchant}/plugins/rollback" => plugins::plugins_rollback,
    get "/v1/merchants/{merchant}/plugins/{version}" => plugins::plugin_get,
    post "/v1/merchants/{merchant}/plugins/{version}/activate" => plugins::plugin_activate,

    post "/v1/merchants/{merchant}/members" => members::members_enrol,
    get "/v1/merchants/{merchant}/members/{member}" => members::member_get,
    patch "/v1/merchants/{merchant}/members/{member}" => members::member_update,
    delete "/v1/merchants/{merchant}/members/{member}" => members::member_erase,
    post "/v1/merchants/{merchant}/members/{member}/opt-out" => members::member_opt_out,
    post "/v1/merchants/{merchant}/members/{member}/opt-in" => members::member_opt_in,
    get "/v1/merchants/{merchant}/members/{member}/ledger" => members::member_ledger,
    get "/v1/merchants/{merchant}/members/{member}/tiers" => members::member_tiers,
    post "/v1/merchants/{merchant}/members/{member}/adjustments" => members::member_adjust,
    get "/v1/merchants/{merchant}/cards/{code}" => members::card_get,

    post "/v1/merchants/{merchant}/members/{member}/events" => activity::events_post,
    get "/v1/merchants/{merchant}/events/{event}" => activity::event_get,
    get "/v1/merchants/{merchant}/members/{member}/offers" => activity::offers_list,
    post "/v1/merchants/{merchant}/members/{member}/redemptions" => activity::redemptions_quote,
    get "/v1/merchants/{merchant}/redemptions/{redemption}" => activity::redemption_get,
    post "/v1/merchants/{merchant}/redemptions/{redemption}/commit" => activity::redemption_commit,
    post "/v1/merchants/{merchant}/redemptions/{redemption}/cancel" => activity::redemption_cancel,
    post "/v1/merchants/{merchant}/members/{member}/perks/{perk}/consume" => activity::perk_consume,

    post "/v1/merchants/{merchant}/webhooks" => hooks::webhooks_create,
    get "/v1/merchants/{merchant}/webhooks" => hooks::webhooks_list,
    get "/v1/merchants/{merchant}/webhooks/{endpoint}" => hooks::webhook_get,
    delete "/v1/merchants/{merchant}/webhooks/{endpoint}" => hooks::webhook_delete,
    get "/v1/merchants/{merchant}/webhook-deliveries" => hooks::deliveries_list,

    post "/v1/merchants/{merchant}/simulations" => design::simulations_create,
    post "/v1/merchants/{merchant}/histories" => design::histories_upload,
    post "/v1/merchants/{merchant}/imports" => design::imports_create,
    get "/v1/merchants/{merchant}/jobs" => design::jobs_list,
    get "/v1/merchants/{merchant}/jobs/{job}" => design::job_get,
    post "/v1/merchants/{merchant}/jobs/{job}/cancel" => design::job_cancel,
    get "/v1/merchants/{merchant}/analytics" => design::analytics_all,
    get "/v1/merchants/{merchant}/analytics/repeat-customers" => design::analytics_repeat,
    get "/v1/merchants/{merchant}/analytics/lapsed" => design::analytics_lapsed,
    get "/v1/merchants/{merchant}/analytics/nps" => design::analytics_nps,
    get "/v1/merchants/{merchant}/analytics/tiers" => design::analytics_tiers,
    get "/v1/merchants/{merchant}/analytics/points" => design::analytics_points,
    get "/v1/merchants/{merchant}/analytics/budget" => design::analytics_budget,
}

/// The whole API: every route, the problem+json fallbacks, and the middleware
/// (request span and log, metrics, timeout, idempotency keys).
pub fn router(api: Api) -> Router {
    routes()
        .fallback(system::no_route)
        .method_not_allowed_fallback(system::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            middleware::observe,
        ))
        .with_state(api)
}

/// A JSON answer.
pub fn reply<T: serde::Serialize>(
    status: axum::http::StatusCode,
    value: &T,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("answer did not serialise: {e}")).into_response(),
    }
}

/// `reply(200, value)`.
pub fn ok<T: serde::Serialize>(value: &T) -> axum::response::Response {
    reply(axum::http::StatusCode::OK, value)
}

/// `reply(201, value)`.
pub fn created<T: serde::Serialize>(value: &T) -> axum::response::Response {
    reply(axum::http::StatusCode::CREATED, value)
}

/// `answer`, marked as carrying a secret shown once (not kept for `Idempotency-Key`
/// retries, see [`idempotency::ShownOnce`]).
pub fn shown_once(
    secret: idempotency::ShownOnce,
    mut answer: axum::response::Response,
) -> axum::response::Response {
    answer.extensions_mut().insert(secret);
    answer
}

/// `answer`, marked as carrying a member's personal data (not kept for
/// `Idempotency-Key` retries, see [`idempotency::PersonalData`]).
pub fn personal(mut answer: axum::response::Response) -> axum::response::Response {
    answer.extensions_mut().insert(idempotency::PersonalData);
    answer
}

/// How far past the server's clock the time a caller gives an event or an enrolment
/// may be: a till's clock a little fast is fine; an event dated days ahead (a wrong
/// clock, local time sent as UTC, a typo) would expire points at that date for good,
/// and is refused.
pub const CLOCK_SKEW: i64 = 3_600;

/// Refuse a time more than [`CLOCK_SKEW`] after now, naming the field.
pub fn not_ahead(at: i64, pointer: &str) -> Result<(), ApiError> {
    let now = now();
    if at > now.saturating_add(CLOCK_SKEW) {
        return Err(ApiError::invalid(
            pointer,
            format!(
                "{at} is {} s after the server's clock ({now}); at most {CLOCK_SKEW} s ahead is accepted",
                at.saturating_sub(now)
            ),
        ));
    }
    Ok(())
}

/// A page size from a query (`limit`), 1 to `max`, or `default` when there is none;
/// any other value is refused rather than quietly changed.
pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "/query/limit",
            format!("must be 1-{max}, not {n}"),
        )),
    }
}

/// The result type of handlers.
pub type Answer = Result<axum::response::Response, ApiError>;
