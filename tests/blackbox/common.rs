//! Helpers shared by the black-box modules.

use loyalty_tests::http;
use serde_json::{Value, json};

/// 2026-09-21T13:46:40Z.
pub const T0: i64 = 1_790_000_000;

/// Enrol `member` with merchant `m` at [`T0`] (201 expected).
pub fn enrol(m: &http::Merchant, member: &str) -> Value {
    m.client
        .post(
            &m.path("/members"),
            &json!({"member": member, "enrolled_at": T0}),
        )
        .expect(201)
}

/// A flight of `minor` cents a minute after [`T0`], as one fare line item.
pub fn fare(id: &str, minor: i64) -> Value {
    json!({
        "id": id, "occurred_at": T0 + 60, "kind": "purchase",
        "amount": {"minor": minor, "currency": "USD"},
        "items": [{"sku": "JFK-LAX", "category": "fare", "amount": minor}]
    })
}
