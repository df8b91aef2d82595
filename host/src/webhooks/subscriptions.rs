//! Which kinds of events each merchant's endpoints want, kept in memory so the
//! engine can skip the outbox entirely for merchants without webhooks.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use super::EventKind;

/// The subscriptions, shared by the engine (reads) and the webhooks (writes).
#[derive(Default)]
pub struct Subscriptions {
    // A std RwLock: read on every engine operation that may announce something,
    // written only when endpoints change; never held across I/O.
    kinds: RwLock<HashMap<String, u8>>,
    wake: tokio::sync::Notify,
    backlog: AtomicI64,
    expiring_within: AtomicI64,
    lapse_after: AtomicI64,
}

impl Subscriptions {
    /// Whether an endpoint of `merchant` wants `kind`.
    pub fn wants(&self, merchant: &str, kind: EventKind) -> bool {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(merchant)
            .is_some_and(|bits| bits & kind.bit() != 0)
    }

    /// Replace what `merchant` wants.
    pub(super) fn set(&self, merchant: &str, kinds: impl IntoIterator<Item = EventKind>) {
        let bits = kinds.into_iter().fold(0u8, |b, k| b | k.bit());
        let mut map = self.kinds.write().unwrap_or_else(|e| e.into_inner());
        if bits == 0 {
            map.remove(merchant);
        } else {
            map.insert(merchant.to_string(), bits);
        }
    }

    /// Something was written to the outbox: wake the delivery worker.
    pub fn mark_dirty(&self) {
        self.wake.notify_one();
    }

    /// Wait until something is written (or a permit from an earlier write).
    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// How long before expiry `points.expiring` is sent, and after how long
    /// without a purchase `member.lapsing` is, in seconds (read by the sweep).
    pub fn windows(&self) -> (i64, i64) {
        (
            self.expiring_within.load(Ordering::Relaxed),
            self.lapse_after.load(Ordering::Relaxed),
        )
    }

    pub(super) fn set_windows(&self, expiring_within: i64, lapse_after: i64) {
        self.expiring_within
            .store(expiring_within, Ordering::Relaxed);
        self.lapse_after.store(lapse_after, Ordering::Relaxed);
    }

    /// Deliveries pending, as the worker last counted them.
    pub fn backlog(&self) -> i64 {
        self.backlog.load(Ordering::Relaxed)
    }

    pub(super) fn set_backlog(&self, n: i64) {
        self.backlog.store(n, Ordering::Relaxed);
    }
}
