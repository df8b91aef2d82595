//! Prometheus metrics at `/metrics` (OpenMetrics text): request latency by route,
//! method and status; hook duration and fuel by hook; plugin failures by hook and
//! kind; the webhook outbox backlog; storage flushes and their latency.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::App;
use crate::sandbox::Hook;

type RequestLabels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 6.5 s.
    Histogram::new(exponential_buckets(5e-5, 2.0, 18))
}

/// The metrics registry and the handles the API records into.
pub struct Metrics {
    registry: Registry,
    backlog: Gauge<i64, AtomicI64>,
    webhooks: std::sync::Arc<crate::webhooks::Webhooks>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Metrics over `app`'s sandbox, engine and webhooks.
    pub fn new(app: &App) -> Metrics {
        let mut registry = Registry::with_prefix("loyalty");
        let requests: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            requests.clone(),
        );
        let hooks = app.registry.sandbox().metrics().clone();
        for hook in Hook::ALL {
            let sub = registry.sub_registry_with_label(("hook".into(), hook.name().into()));
            sub.register(
                "hook_duration_seconds",
                "Plugin hook call time, instantiation included for an operation's first call",
                hooks.duration[hook as usize].clone(),
            );
            sub.register(
                "hook_fuel",
                "Fuel (instructions) used per plugin hook call",
                hooks.fuel[hook as usize].clone(),
            );
        }
        registry.register(
            "plugin_failures",
            "Failed plugin hook calls by hook and kind",
            hooks.failures.clone(),
        );
        registry.register(
            "storage_flush_duration_seconds",
            "Storage flush (group commit) latency",
            app.engine.flush_latency(),
        );
        let backlog = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "webhook_outbox_backlog",
            "Webhook deliveries pending (not yet delivered or given up)",
            backlog.clone(),
        );
        Metrics {
            registry,
            requests,
            backlog,
            webhooks: app.webhooks.clone(),
        }
    }

    /// Record one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .observe(took.as_secs_f64());
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.backlog.set(self.webhooks.backlog());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
