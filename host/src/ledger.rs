//! A member's points ledger: lots, spending, refunds, expiry and debt. Pure logic, no
//! I/O; the engine loads an [`Account`], applies operations, and stores the result in
//! one transaction.
//!
//! Points are held as [`Lot`]s (amount, earned-at, expires-at, pending-until) so that
//! expiry and refunds are exact. Every change writes a [`Line`], and the account keeps
//! this invariant, checked by [`Account::check`]:
//!
//! > the sum of the ledger lines = available points + pending points − debt,
//! > no lot holds a negative amount, and debt is never negative.
//!
//! A balance never goes below zero silently: a refund of points already spent, or a
//! negative adjustment beyond the balance, records an explicit debt that later
//! earnings pay off first. A refund of points that expired takes nothing and owes
//! nothing: the member lost them once, when they expired (see [`Expired`]).

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;

/// Points that share their dates: an expiry bucket. A credit whose expiry and
/// pending-until match a lot that still holds points and has not expired joins that
/// lot, so a member who earns every week under a programme that expires points at
/// month ends holds a lot a month, not one per purchase: the account read and
/// rewritten on every event stays small however long the member stays. Nothing
/// tells apart points of one bucket (they expire, mature and are spent together), so
/// balances, expiry and spending order are what separate lots would give; a refund
/// takes its points back from the bucket they went into (see [`Account::reverse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// Lot number within the account.
    pub id: u64,
    /// Points still in the lot.
    pub remaining: i64,
    /// Points put into the lot, by every credit that joined it.
    pub original: i64,
    /// When its first points were earned.
    pub earned_at: Timestamp,
    /// When the remaining points expire, if they do.
    pub expires_at: Option<Timestamp>,
    /// Until when the points are pending (not spendable).
    pub pending_until: Option<Timestamp>,
}

impl Lot {
    fn is_pending(&self, now: Timestamp) -> bool {
        self.pending_until.is_some_and(|p| p > now)
    }

    fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// Points that expired from a lot and that no refund has accounted for yet. A refund
/// whose purchase's points are no longer in their lot counts them first as these
/// (nothing to take back: they already left with the expiry's line), and only the
/// rest as spent, which becomes debt. Points of one lot cannot be told apart, so when
/// a lot was both spent from and expired, the member gets the benefit of the doubt
/// up to what expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// The lot they expired from.
    pub lot: u64,
    /// The points still to account for.
    pub points: i64,
}

/// The most [`Expired`] entries an account keeps, the latest: a refund of a purchase
/// whose lot expired before the last 16 lots that expired counts its missing points
/// as spent, as it did before expired points were remembered.
pub const MAX_EXPIRED: usize = 16;

/// What a ledger line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Points credited.
    Earn,
    /// Points spent on a redemption.
    Redeem,
    /// A cancelled redemption's points returned.
    CancelRedemption,
    /// A refund's reversal of the points its purchase earned.
    Refund,
    /// Points that expired.
    Expire,
    /// A manual adjustment.
    Adjust,
}

/// One entry of the ledger. `points` is signed: positive adds to the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Line {
    /// Sequence number within the account.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: LineKind,
    /// Signed points.
    pub points: i64,
    /// Why, in words.
    pub reason: String,
    /// The event, redemption or adjustment this line belongs to.
    pub reference: Option<String>,
    /// Who made a manual adjustment.
    pub by: Option<String>,
}

/// Points taken from one lot by a spend, so a cancellation can put them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// The lot.
    pub lot: u64,
    /// Points taken from it.
    pub points: i64,
    /// The lot's expiry, so that points put back after the lot was emptied and dropped
    /// keep it (records from before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The lot's pending-until, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<Timestamp>,
}

/// The points one event earned into one lot, as its event record keeps them, so a
/// refund can reverse exactly those points even after the lot was spent and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earned {
    /// The lot the points went into.
    pub lot: u64,
    /// Points earned.
    pub points: i64,
    /// Points of them already reversed by refunds.
    pub reversed: i64,
}

/// Why an operation was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Not enough available points.
    #[error("{needed} points needed, {available} available")]
    InsufficientPoints {
        /// Points asked for.
        needed: i64,
        /// Points available.
        available: i64,
    },
    /// Amounts must be positive.
    #[error("points must be positive, not {0}")]
    NotPositive(i64),
    /// A manual adjustment needs a reason and who made it.
    #[error("a manual adjustment needs a reason and the name of who made it")]
    AdjustmentUnexplained,
}

/// One member's points: lots, debt, and the ledger lines that explain them.
///
/// The ledger itself is stored apart from the account (it only grows); `lines` holds
/// the lines written since the account was loaded, for the caller to store, and
/// `total` the sum of every line ever written, so the invariant can be checked
/// without reading the whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Lots that still hold points, in creation order.
    pub lots: Vec<Lot>,
    /// Points owed.
    pub debt: i64,
    /// Lines written since the account was loaded (not stored with it).
    #[serde(skip)]
    pub lines: Vec<Line>,
    /// The sum of every ledger line.
    pub total: i64,
    next_lot: u64,
    next_seq: u64,
    /// Points expired from lots, for refunds (oldest first, at most [`MAX_EXPIRED`]).
    /// Not in the account's own encoding: the engine stores them after the member
    /// record, so records written before they existed read as they are.
    #[serde(skip)]
    pub expired: Vec<Expired>,
}

/// Balances at one moment.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Balance {
    /// Points spendable now.
    pub available: i64,
    /// Points earned but pending.
    pub pending: i64,
    /// Points owed.
    pub debt: i64,
}

impl Account {
    /// An empty account.
    pub fn new() -> Account {
        Account::default()
    }

    fn line(
        &mut self,
        at: Timestamp,
        kind: LineKind,
        points: i64,
        reason: &str,
        reference: Option<&str>,
        by: Option<&str>,
    ) {
        self.next_seq += 1;
        self.total += points;
        self.lines.push(Line {
            seq: self.next_seq,
            at,
            kind,
            points,
            reason: reason.to_string(),
            reference: reference.map(str::to_string),
            by: by.map(str::to_string),
        });
    }

    /// Balances at `now` (call [`Account::settle`] first so expiry and pending
    /// releases up to `now` are applied).
    pub fn balance(&self, now: Timestamp) -> Balance {
        let mut b = Balance {
            debt: self.debt,
            ..Balance::default()
        };
        for lot in &self.lots {
            if lot.is_pending(now) {
                b.pending += lot.remaining;
            } else {
                b.available += lot.remaining;
            }
        }
        b
    }

    /// Pay debt from lots that are available at `now`, earliest expiry first. The net
    /// balance does not change, so no line is written.
    fn repay_debt(&mut self, now: Timestamp) {
        if self.debt == 0 {
            return;
        }
        let (_, left) = self.take(self.debt, now);
        self.debt = left;
    }

    /// Take up to `points` from the lots spendable at `now`, in spending order.
    /// Returns what came from which lot and the part that could not be taken.
    fn take(&mut self, points: i64, now: Timestamp) -> (Vec<Taken>, i64) {
        let mut left = points;
        let mut taken = Vec::new();
        for i in self.spend_order(now) {
            if left == 0 {
                break;
            }
            let lot = &mut self.lots[i];
            let n = lot.remaining.min(left);
            lot.remaining -= n;
            left -= n;
            taken.push(Taken {
                lot: lot.id,
                points: n,
                expires_at: lot.expires_at,
                pending_until: lot.pending_until,
            });
        }
        (taken, left)
    }

    /// Add `points` to the live lot with the same dates, or else to a new lot, and
    /// return the lot's id.
    fn push_lot(
        &mut self,
        points: i64,
        at: Timestamp,
        expires_at: Option<Timestamp>,
        pending_until: Option<Timestamp>,
    ) -> u64 {
        // Newest first: a programme's buckets are mostly filled in date order.
        if let Some(lot) = self.lots.iter_mut().rev().find(|l| {
            l.expires_at == expires_at
                && l.pending_until == pending_until
                && l.remaining > 0
                && !l.is_expired(at)
        }) {
            lot.remaining += points;
            lot.original += points;
            return lot.id;
        }
        self.next_lot += 1;
        self.lots.push(Lot {
            id: self.next_lot,
            remaining: points,
            original: points,
            earned_at: at,
            expires_at,
            pending_until,
        });
        self.next_lot
    }

    /// Indices of lots spendable at `now`, in spending order: earliest expiry first
    /// (lots that never expire last), then oldest.
    fn spend_order(&self, now: Timestamp) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.lots.len())
            .filter(|&i| {
                let l = &self.lots[i];
                l.remaining > 0 && !l.is_pending(now) && !l.is_expired(now)
            })
            .collect();
        idx.sort_by_key(|&i| {
            let l = &self.lots[i];
            (l.expires_at.unwrap_or(Timestamp::MAX), l.earned_at, l.id)
        });
        idx
    }

    /// Credit `points` earned at `at`. Available points pay off any debt first.
    #[allow(clippy::too_many_arguments)]
    pub fn credit(
        &mut self,
        points: i64,
        at: Timestamp,
        expires_at: Option<Timestamp>,
        pending_until: Option<Timestamp>,
        reason: &str,
        event: Option<&str>,
    ) -> Result<u64, LedgerError> {
        if points <= 0 {
            return Err(LedgerError::NotPositive(points));
        }
        let id = self.push_lot(points, at, expires_at, pending_until);
        self.line(at, LineKind::Earn, points, reason, event, None);
        self.repay_debt(at);
        Ok(id)
    }

    /// Spend `points` available at `at`, taking the lots that expire first.
    pub fn spend(
        &mut self,
        points: i64,
        at: Timestamp,
        reason: &str,
        reference: &str,
    ) -> Result<Vec<Taken>, LedgerError> {
        if points <= 0 {
            return Err(LedgerError::NotPositive(points));
        }
        // Expired points are not spendable: apply expiry up to now first.
        self.settle(at);
        let available = self.balance(at).available;
        if available < points {
            return Err(LedgerError::InsufficientPoints {
                needed: points,
                available,
            });
        }
        let (taken, _) = self.take(points, at);
        self.line(at, LineKind::Redeem, -points, reason, Some(reference), None);
        Ok(taken)
    }

    /// Put back the points a cancelled redemption took, into the lots they came from,
    /// keeping their dates: points whose lot has expired meanwhile come back and expire
    /// at once, each lot with its own line, so what the member holds afterwards is the
    /// same whether or not the expiry had been applied before the cancellation.
    pub fn cancel_spend(&mut self, taken: &[Taken], at: Timestamp, reason: &str, reference: &str) {
        let mut total = 0;
        for t in taken {
            if let Some(lot) = self.lots.iter_mut().find(|l| l.id == t.lot) {
                lot.remaining += t.points;
            } else {
                // The lot was emptied and dropped: restore its points with its dates.
                self.push_lot(t.points, at, t.expires_at, t.pending_until);
            }
            total += t.points;
        }
        if total > 0 {
            self.line(
                at,
                LineKind::CancelRedemption,
                total,
                reason,
                Some(reference),
                None,
            );
        }
        // Expires what came back into expired lots, then repays debt.
        self.settle(at);
    }

    /// Reverse the points an event earned (`earned`, from its record) so that in
    /// total `fraction` (numerator, denominator) of them is reversed: a full refund is
    /// (1, 1); a second partial refund passes the cumulative fraction refunded so far.
    /// Points still in their lots come back out of them (from what the lot still
    /// holds, whichever credit of its bucket put them there); points no longer there
    /// count first as expired from that lot ([`Expired`]: nothing is taken or owed
    /// for them) and the rest as spent, which becomes debt. Updates `earned` and
    /// returns the points reversed now (taken back or owed).
    pub fn reverse(
        &mut self,
        earned: &mut [Earned],
        fraction: (i64, i64),
        at: Timestamp,
        reason: &str,
        reference: &str,
    ) -> i64 {
        let (num, den) = fraction;
        if den <= 0 || num <= 0 {
            return 0;
        }
        let num = num.min(den);
        let mut reversed_now = 0;
        let mut debt_added = 0;
        for e in earned.iter_mut() {
            // Cumulative target, rounded down: a member never loses more than the
            // refunded share of what they earned.
            let target = (i128::from(e.points) * i128::from(num) / i128::from(den)) as i64;
            let due = target - e.reversed;
            if due <= 0 {
                continue;
            }
            let from_lot = match self.lots.iter_mut().find(|l| l.id == e.lot) {
                Some(lot) => {
                    let n = lot.remaining.min(due);
                    lot.remaining -= n;
                    n
                }
                None => 0,
            };
            let expired = match self.expired.iter_mut().find(|x| x.lot == e.lot) {
                Some(x) => {
                    let n = x.points.min(due - from_lot);
                    x.points -= n;
                    n
                }
                None => 0,
            };
            e.reversed += due;
            debt_added += due - from_lot - expired;
            reversed_now += due - expired;
        }
        self.expired.retain(|x| x.points > 0);
        if reversed_now > 0 {
            self.debt += debt_added;
            self.line(
                at,
                LineKind::Refund,
                -reversed_now,
                reason,
                Some(reference),
                None,
            );
            // Debt is never held beside available points: they pay it at once.
            self.repay_debt(at);
        }
        reversed_now
    }

    /// A manual adjustment: `points` positive adds a lot that never expires, negative
    /// takes from the available lots and records any shortfall as debt.
    pub fn adjust(
        &mut self,
        points: i64,
        at: Timestamp,
        reason: &str,
        by: &str,
        reference: &str,
    ) -> Result<(), LedgerError> {
        if reason.trim().is_empty() || by.trim().is_empty() {
            return Err(LedgerError::AdjustmentUnexplained);
        }
        if points == 0 {
            return Err(LedgerError::NotPositive(0));
        }
        // Expired points are neither available nor takeable: apply expiry up to now.
        self.settle(at);
        if points > 0 {
            self.push_lot(points, at, None, None);
            self.line(
                at,
                LineKind::Adjust,
                points,
                reason,
                Some(reference),
                Some(by),
            );
            self.repay_debt(at);
        } else {
            let (_, left) = self.take(-points, at);
            self.debt += left;
            self.line(
                at,
                LineKind::Adjust,
                points,
                reason,
                Some(reference),
                Some(by),
            );
        }
        Ok(())
    }

    /// Apply time up to `now`: expire what has expired (a line per lot), mark pending
    /// lots whose time has come as matured (their pending-until cleared, so that
    /// [`Account::next_change`] no longer names a moment already past, and a read or
    /// the sweep does not come back to them), and let points now available pay off
    /// debt. Like expiry, maturing is applied once: an operation dated earlier that
    /// comes later sees them matured. Idempotent for the same `now`.
    pub fn settle(&mut self, now: Timestamp) -> i64 {
        for lot in self
            .lots
            .iter_mut()
            .filter(|l| l.pending_until.is_some_and(|p| p <= now))
        {
            lot.pending_until = None;
        }
        let mut expired_lines = Vec::new();
        for lot in self
            .lots
            .iter_mut()
            .filter(|l| l.remaining > 0 && l.is_expired(now))
        {
            expired_lines.push((lot.expires_at.unwrap_or(now), lot.remaining, lot.id));
            lot.remaining = 0;
        }
        let mut total = 0;
        for (at, points, id) in expired_lines {
            total += points;
            self.expired.push(Expired { lot: id, points });
            self.line(
                at,
                LineKind::Expire,
                -points,
                "points expired",
                Some(&format!("lot-{id}")),
                None,
            );
        }
        let over = self.expired.len().saturating_sub(MAX_EXPIRED);
        self.expired.drain(..over);
        self.repay_debt(now);
        total
    }

    /// Drop empty lots to keep the account small (refunds find their points through
    /// the event's [`Earned`] record, not the lot).
    pub fn compact(&mut self) {
        self.lots.retain(|l| l.remaining > 0);
    }

    /// The earliest moment after which something changes by itself: a lot expires or
    /// a pending lot matures. The expiry sweep skips accounts whose moment is later.
    pub fn next_change(&self) -> Option<Timestamp> {
        self.lots
            .iter()
            .filter(|l| l.remaining > 0)
            .flat_map(|l| [l.expires_at, l.pending_until])
            .flatten()
            .min()
    }

    /// The invariant (see the module docs), as an error naming what broke.
    pub fn check(&self, now: Timestamp) -> Result<(), String> {
        let sum = self.total;
        let b = self.balance(now);
        if sum != b.available + b.pending - b.debt {
            return Err(format!(
                "ledger sums to {sum} but available {} + pending {} - debt {} = {}",
                b.available,
                b.pending,
                b.debt,
                b.available + b.pending - b.debt
            ));
        }
        if self.debt < 0 {
            return Err(format!("debt is negative: {}", self.debt));
        }
        if let Some(l) = self
            .lots
            .iter()
            .find(|l| l.remaining < 0 || l.remaining > l.original)
        {
            return Err(format!(
                "lot {} holds {} of {}",
                l.id, l.remaining, l.original
            ));
        }
        if self.debt > 0
            && self
                .lots
                .iter()
                .any(|l| l.remaining > 0 && !l.is_pending(now) && !l.is_expired(now))
        {
            return Err("debt outstanding while available points exist".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
