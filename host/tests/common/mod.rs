//! Helpers shared by the host's integration tests.
#![allow(dead_code)]

use loyalty_host::domain;
use loyalty_host::sandbox::bindings::loyalty::program::types as wit;
use loyalty_host::sandbox::convert;

/// A compiled plugin's bytes (`LOYALTY_PLUGIN_DIR` overrides `target/plugins`).
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = loyalty_tests::plugin(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 2026-09-21T13:46:40Z.
pub const NOW: i64 = 1_790_000_000;

/// Merchant `id` ("`id` inc."), in USD, created at [`NOW`], with no config, point
/// value or budget.
pub fn merchant_settings(id: &str) -> loyalty_host::engine::MerchantSettings {
    loyalty_host::engine::MerchantSettings {
        id: id.into(),
        name: format!("{id} inc."),
        currency: "USD".into(),
        created_at: NOW,
        config: None,
        point_value: None,
        budget: None,
    }
}

/// A refund event of `minor` of purchase `of` (in full, or partial), at `at`.
pub fn refund(id: &str, of: &str, minor: i64, full: bool, at: i64) -> serde_json::Value {
    serde_json::json!({
        "id": id, "occurred_at": at, "kind": "refund", "original_event": of, "full": full,
        "amount": { "minor": minor, "currency": "USD" }
    })
}

/// A member with nothing yet.
pub fn member() -> wit::Member {
    convert::member(&domain::MemberSnapshot {
        id: "m-1".into(),
        ..Default::default()
    })
    .unwrap()
}

/// A context for merchant "acme" at NOW in USD.
pub fn ctx(config: &str) -> wit::Context {
    wit::Context {
        merchant: "acme".into(),
        now: NOW,
        config: config.into(),
        currency: "USD".into(),
    }
}

/// A card purchase of `minor` cents of airfare, at NOW.
pub fn purchase(minor: i64) -> wit::Event {
    let e: domain::Event = serde_json::from_value(serde_json::json!({
        "id": "e-1", "occurred_at": NOW, "kind": "purchase",
        "amount": { "minor": minor, "currency": "USD" },
        "items": [{ "sku": "JFK-LAX", "category": "fare", "amount": minor }],
        "channel": "online", "payment": "card"
    }))
    .unwrap();
    convert::event(&e).unwrap()
}
