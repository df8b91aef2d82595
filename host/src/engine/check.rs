//! The consistency check of a merchant's stored state, for operators and the crash
//! test: every member's ledger sums to their balance and to the account's total, no
//! balance is negative except as recorded debt, and every event's record and its
//! ledger lines agree (an event is either entirely there or not at all).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, EventRecord, MemberRecord, decode_bin, decode_member};
use crate::ledger::{Line, LineKind};
use crate::storage::Space;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Members checked.
    pub members: u64,
    /// Ledger lines read.
    pub lines: u64,
    /// Event records read.
    pub events: u64,
    /// What is wrong (empty when consistent).
    pub problems: Vec<String>,
}

impl Engine {
    /// Check `merchant`'s stored state (see the module docs).
    pub fn check(&self, merchant: &str) -> Result<CheckReport, EngineError> {
        let mut report = CheckReport::default();
        let mut failed = None;
        // Earn lines per (member, event), to compare with the event records.
        let mut earned: HashMap<(String, String), i64> = HashMap::new();
        // Members are checked one at a time as they are read: a merchant's members
        // need not fit in memory.
        self.storage.visit(Space::Members, merchant, &mut |_, v| {
            let result = decode_member(v)
                .and_then(|m| self.check_member(merchant, &m, &mut report, &mut earned));
            if let Err(e) = result {
                failed = Some(e);
            }
            failed.is_none()
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.storage
            .visit(Space::Idempotency, merchant, &mut |k, v| {
                // merchant \0 "event" \0 the event id
                let mut parts = k.as_bytes().splitn(3, |b| *b == 0).skip(1);
                let is_event = parts.next().is_some_and(|scope| scope == b"event");
                if is_event {
                    let id = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    match EventRecord::from_stored(v, &id) {
                        Ok(e) => {
                            report.events += 1;
                            let credited: i64 = e.result.credited.iter().map(|c| c.points).sum();
                            let lines = earned
                                .remove(&(e.member.clone(), e.result.event.clone()))
                                .unwrap_or(0);
                            if credited != lines {
                                report.problems.push(format!(
                                    "event {}: credited {credited} but member {}'s ledger has {lines}",
                                    e.result.event, e.member
                                ));
                            }
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                failed.is_none()
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for ((member, reference), points) in earned {
            if !reference.starts_with("enrol:") {
                report.problems.push(format!(
                    "member {member}: {points} points earned by {reference}, which has no event record"
                ));
            }
        }
        Ok(report)
    }

    /// One member's part of [`Engine::check`].
    fn check_member(
        &self,
        merchant: &str,
        m: &MemberRecord,
        report: &mut CheckReport,
        earned: &mut HashMap<(String, String), i64>,
    ) -> Result<(), EngineError> {
        report.members += 1;
        let mut lines: Vec<Line> = Vec::new();
        for (_, page) in self
            .storage
            .scan(Space::Ledger, merchant, &[m.id.as_bytes()])?
        {
            lines.extend(decode_bin::<Vec<Line>>(&page, "ledger page")?);
        }
        lines.extend(m.ledger_page.iter().cloned());
        report.lines += lines.len() as u64;
        let sum: i64 = lines.iter().map(|l| l.points).sum();
        let b = m.account.balance(i64::MIN);
        let net = b.available + b.pending - b.debt;
        if sum != m.account.total || sum != net {
            report.problems.push(format!(
                "member {}: ledger sums to {sum}, account total {}, balance {net}",
                m.id, m.account.total
            ));
        }
        if let Err(broken) = m.account.check(i64::MIN) {
            report.problems.push(format!("member {}: {broken}", m.id));
        }
        for (i, l) in lines.iter().enumerate() {
            if l.seq != i as u64 + 1 {
                report.problems.push(format!(
                    "member {}: ledger line {} is numbered {}",
                    m.id,
                    i + 1,
                    l.seq
                ));
                break;
            }
        }
        for l in lines.iter().filter(|l| l.kind == LineKind::Earn) {
            if let Some(r) = &l.reference {
                *earned.entry((m.id.clone(), r.clone())).or_default() += l.points;
            }
        }
        Ok(())
    }
}
