//! The expiry sweep: applies expiry (and maturing pending points) to every member of
//! a merchant whose points changed by themselves, writing the ledger lines. It also
//! runs on read (see `Engine::member`), so a member never sees expired points.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, MemberRecord, MemberStatus, decode_member};
use crate::domain::Timestamp;
use crate::storage::Space;
use crate::storage::{Batch, Key};
use crate::webhooks::{EventKind, announce};

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Members looked at.
    pub members: u64,
    /// Members whose points changed.
    pub settled: u64,
    /// Webhook notices sent (points expiring soon, members lapsing).
    #[serde(default)]
    pub notices: u64,
}

/// A once-only webhook notice the sweep found.
struct Notice {
    member: String,
    kind: EventKind,
    marker: Vec<u8>,
    data: serde_json::Value,
}

/// `rec`'s notices at `now`: lots expiring within `within` seconds (once per lot,
/// expiry and points put in: a credit that joins a lot already announced announces
/// it again, with its new total), and a lapse after `lapse_after` seconds without a
/// purchase (once per last purchase, so a new purchase re-arms it).
fn sweep_notices(
    rec: &MemberRecord,
    now: Timestamp,
    within: Option<i64>,
    lapse_after: Option<i64>,
) -> Vec<Notice> {
    let mut out = Vec::new();
    if let Some(within) = within {
        for lot in &rec.account.lots {
            let Some(at) = lot.expires_at.filter(|&e| e > now && e <= now + within) else {
                continue;
            };
            if lot.remaining <= 0 {
                continue;
            }
            let mut marker = b"expiring\0".to_vec();
            marker.extend_from_slice(rec.id.as_bytes());
            marker.push(0);
            marker.extend_from_slice(&lot.id.to_be_bytes());
            marker.extend_from_slice(&at.to_be_bytes());
            marker.extend_from_slice(&lot.original.to_be_bytes());
            out.push(Notice {
                member: rec.id.clone(),
                kind: EventKind::PointsExpiring,
                marker,
                data: serde_json::json!({
                    "member": rec.id, "lot": lot.id, "points": lot.remaining, "expires_at": at,
                }),
            });
        }
    }
    if let (Some(after), Some(last)) = (lapse_after, rec.stats.last_purchase)
        && now - last >= after
    {
        let mut marker = b"lapsing\0".to_vec();
        marker.extend_from_slice(rec.id.as_bytes());
        marker.push(0);
        marker.extend_from_slice(&last.to_be_bytes());
        out.push(Notice {
            member: rec.id.clone(),
            kind: EventKind::MemberLapsing,
            marker,
            data: serde_json::json!({
                "member": rec.id, "last_purchase": last, "days_since": (now - last) / 86_400,
            }),
        });
    }
    out
}

impl Engine {
    /// Sweep `merchant`'s members at `now`.
    pub fn sweep(&self, merchant: &str, now: Timestamp) -> Result<SweepReport, EngineError> {
        let mut due = Vec::new();
        let mut notices = Vec::new();
        let mut report = SweepReport::default();
        let mut failed = None;
        let subs = self.subscriptions.clone();
        let expiring = subs.wants(merchant, EventKind::PointsExpiring);
        let lapsing = subs.wants(merchant, EventKind::MemberLapsing);
        let (within, lapse_after) = subs.windows();
        self.storage
            .visit(Space::Members, merchant, &mut |_, bytes| {
                report.members += 1;
                match decode_member(bytes) {
                    Ok(rec) => {
                        if rec.account.next_change().is_some_and(|t| t <= now) {
                            due.push(rec.id.clone());
                        }
                        if rec.status == MemberStatus::Active {
                            notices.extend(sweep_notices(
                                &rec,
                                now,
                                expiring.then_some(within),
                                lapsing.then_some(lapse_after),
                            ));
                        }
                        true
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for id in due {
            if self.settle_member(merchant, &id, now)?.is_some() {
                report.settled += 1;
            }
        }
        for n in notices {
            // The marker makes each notice once-only; it is written with the outbox
            // row, so a crash cannot send it twice or lose it. The member's lock
            // makes checking and writing it one step should two sweeps overlap.
            let _g = self.lock_member(merchant, &n.member);
            let marker = Key::merchant(merchant, &[b"sent", &n.marker]);
            if self.storage.get(Space::Webhooks, &marker)?.is_some() {
                continue;
            }
            let mut batch = Batch::new();
            batch.put(Space::Webhooks, marker, Vec::new());
            announce(&subs, &mut batch, merchant, n.kind, now, || n.data);
            self.apply(batch)?;
            report.notices += 1;
        }
        Ok(report)
    }

    /// Sweep every merchant.
    pub fn sweep_all(&self, now: Timestamp) -> Result<SweepReport, EngineError> {
        let mut total = SweepReport::default();
        for m in self.merchant_ids()? {
            let r = self.sweep(&m, now)?;
            total.members += r.members;
            total.settled += r.settled;
            total.notices += r.notices;
        }
        Ok(total)
    }
}

impl Engine {
    /// Sweep every merchant every `every`, at the wall-clock time, until the returned
    /// task is aborted. Sweeps run on a blocking thread; a failed sweep is logged and
    /// retried at the next tick.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let e = engine.clone();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                match tokio::task::spawn_blocking(move || e.sweep_all(now)).await {
                    Ok(Ok(report)) => {
                        engine
                            .sweeps
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if report.settled > 0 {
                            tracing::info!(
                                members = report.members,
                                settled = report.settled,
                                "expiry sweep"
                            );
                        }
                    }
                    Ok(Err(error)) => tracing::error!(%error, "expiry sweep failed"),
                    Err(error) => tracing::error!(%error, "expiry sweep panicked"),
                }
            }
        })
    }

    /// Sweeps the sweeper has completed.
    pub fn sweeps_done(&self) -> u64 {
        self.sweeps.load(std::sync::atomic::Ordering::Relaxed)
    }
}
