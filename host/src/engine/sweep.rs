//! The expiry sweep: applies expiry (and maturing pending points) to every member of
//! a merchant whose points changed by themselves, writing the ledger lines. It also
//! runs on read (see `Engine::member`), so a member never sees expired points.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, MemberRecord, decode_bin};
use crate::domain::Timestamp;
use crate::storage::Space;

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Members looked at.
    pub members: u64,
    /// Members whose points changed.
    pub settled: u64,
}

impl Engine {
    /// Sweep `merchant`'s members at `now`.
    pub fn sweep(&self, merchant: &str, now: Timestamp) -> Result<SweepReport, EngineError> {
        let mut due = Vec::new();
        let mut report = SweepReport::default();
        let mut failed = None;
        self.storage
            .visit(Space::Members, merchant, &mut |_, bytes| {
                report.members += 1;
                match decode_bin::<MemberRecord>(bytes, "member") {
                    Ok(rec) => {
                        if rec.account.next_change().is_some_and(|t| t <= now) {
                            due.push(rec.id);
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
        Ok(report)
    }

    /// Sweep every merchant.
    pub fn sweep_all(&self, now: Timestamp) -> Result<SweepReport, EngineError> {
        let mut total = SweepReport::default();
        for m in self.merchant_ids()? {
            let r = self.sweep(&m, now)?;
            total.members += r.members;
            total.settled += r.settled;
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
