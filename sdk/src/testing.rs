//! Builders for native tests of a plugin's rules: a blank member, a context, events.
//!
//! ```
//! use loyalty_sdk::testing::{context, member, purchase};
//! use loyalty_sdk::time::timestamp;
//!
//! let now = timestamp(2026, 5, 1, 12, 0, 0);
//! let ctx = context(now, r#"{"rate": 5}"#);
//! let mut m = member("m-1");
//! m.tier = "gold".into();
//! m.stats.calendar_year.qualifying_points = 41_000;
//! let flight = purchase("pnr-1", 50_000, "USD", now);
//! assert_eq!(flight.amount.as_ref().unwrap().minor, 50_000);
//! # let _ = (ctx, m);
//! ```

use crate::{
    Channel, Context, Event, EventKind, LineItem, Member, Money, PaymentMethod, RedemptionRequest,
    Stats, Timestamp, Totals,
};

/// The currency test contexts use.
pub const CURRENCY: &str = "USD";

/// All-zero totals.
pub fn totals() -> Totals {
    Totals {
        spend: 0,
        purchases: 0,
        events: 0,
        points_earned: 0,
        qualifying_points: 0,
    }
}

/// Statistics of a member who has done nothing yet.
pub fn stats() -> Stats {
    Stats {
        lifetime: totals(),
        calendar_year: totals(),
        previous_calendar_year: totals(),
        rolling_12_months: totals(),
        membership_year: totals(),
        last_activity: None,
        last_purchase: None,
    }
}

/// A member `id` who enrolled at time 0, with no tier, points, attributes or state.
pub fn member(id: &str) -> Member {
    Member {
        id: id.to_string(),
        enrolled_at: 0,
        tier: String::new(),
        tier_since: 0,
        balance: 0,
        pending: 0,
        debt: 0,
        birthday: None,
        referred_by: None,
        attributes: Vec::new(),
        stats: stats(),
        state: Vec::new(),
    }
}

/// A context for merchant "test-merchant" at `now`, with `config` JSON and USD.
pub fn context(now: Timestamp, config: &str) -> Context {
    Context {
        merchant: "test-merchant".to_string(),
        now,
        config: config.to_string(),
        currency: CURRENCY.to_string(),
    }
}

/// An event `id` of `kind` at `at`, in store, with no amount.
pub fn event(id: &str, kind: EventKind, at: Timestamp) -> Event {
    Event {
        id: id.to_string(),
        occurred_at: at,
        kind,
        amount: None,
        items: Vec::new(),
        channel: Channel::InStore,
        payment: None,
        store: None,
        partner: None,
        attributes: Vec::new(),
    }
}

/// A card purchase `id` of `minor` units of `currency` at `at`, as one line item.
pub fn purchase(id: &str, minor: i64, currency: &str, at: Timestamp) -> Event {
    let mut e = event(id, EventKind::Purchase, at);
    e.amount = Some(Money::new(minor, currency));
    e.payment = Some(PaymentMethod::Card);
    e.items = vec![LineItem {
        sku: "item".to_string(),
        category: "general".to_string(),
        quantity: 1,
        amount: minor,
    }];
    e
}

/// A request to redeem catalogue reward `reward`.
pub fn redeem(reward: &str) -> RedemptionRequest {
    RedemptionRequest {
        reward: Some(reward.to_string()),
        amount: None,
        points: None,
        partner: None,
        attributes: Vec::new(),
    }
}
