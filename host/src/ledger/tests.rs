//! The ledger's rules with concrete numbers, and the invariant over random sequences.

use super::*;

const DAY: i64 = 86_400;
const T0: i64 = 1_790_000_000;

/// A balance: available, pending, debt.
fn bal(available: i64, pending: i64, debt: i64) -> Balance {
    Balance {
        available,
        pending,
        debt,
    }
}

#[test]
fn spending_takes_the_lots_that_expire_first() {
    let mut a = Account::new();
    a.credit(100, T0, None, None, "never expires", None)
        .unwrap();
    a.credit(50, T0, Some(T0 + 30 * DAY), None, "expires late", None)
        .unwrap();
    a.credit(70, T0, Some(T0 + 10 * DAY), None, "expires soon", None)
        .unwrap();
    let taken = a.spend(100, T0 + DAY, "reward", "r-1").unwrap();
    assert_eq!(
        taken,
        [
            Taken {
                lot: 3,
                points: 70,
                expires_at: Some(T0 + 10 * DAY),
                pending_until: None
            },
            Taken {
                lot: 2,
                points: 30,
                expires_at: Some(T0 + 30 * DAY),
                pending_until: None
            }
        ]
    );
    assert_eq!(a.balance(T0 + DAY).available, 120);
    a.check(T0 + DAY).unwrap();
}

#[test]
fn spending_more_than_available_is_refused_and_changes_nothing() {
    let mut a = Account::new();
    a.credit(100, T0, None, None, "earn", None).unwrap();
    a.credit(500, T0, None, Some(T0 + 30 * DAY), "pending", None)
        .unwrap();
    let before = a.clone();
    assert_eq!(
        a.spend(101, T0, "reward", "r-1"),
        Err(LedgerError::InsufficientPoints {
            needed: 101,
            available: 100
        })
    );
    assert_eq!(a, before);
}

#[test]
fn pending_points_become_available_at_pending_until() {
    let mut a = Account::new();
    a.credit(300, T0, None, Some(T0 + 30 * DAY), "purchase", Some("p-1"))
        .unwrap();
    assert_eq!(a.balance(T0).pending, 300);
    assert_eq!(a.balance(T0 + 30 * DAY - 1).available, 0);
    assert_eq!(a.balance(T0 + 30 * DAY).available, 300);
    assert!(a.spend(300, T0 + 30 * DAY, "reward", "r").is_ok());
}

#[test]
fn expiry_writes_a_line_for_what_expired() {
    let mut a = Account::new();
    a.credit(80, T0, Some(T0 + DAY), None, "earn", None)
        .unwrap();
    a.credit(20, T0, None, None, "earn", None).unwrap();
    assert_eq!(a.settle(T0 + DAY - 1), 0);
    assert_eq!(a.settle(T0 + DAY), 80);
    assert_eq!(a.settle(T0 + DAY), 0, "settling twice expires nothing more");
    let last = a.lines.last().unwrap();
    assert_eq!((last.kind, last.points), (LineKind::Expire, -80));
    assert_eq!(a.balance(T0 + DAY).available, 20);
    a.check(T0 + DAY).unwrap();
}

#[test]
fn a_full_refund_reverses_exactly_what_the_purchase_earned() {
    let mut a = Account::new();
    let mut p1 = earn(&mut a, 400, "p-1");
    earn(&mut a, 100, "p-2");
    assert_eq!(a.reverse(&mut p1, (1, 1), T0, "refund", "rf-1"), 400);
    assert_eq!(a.balance(T0).available, 100);
    assert_eq!(
        a.reverse(&mut p1, (1, 1), T0, "refund again", "rf-2"),
        0,
        "never twice"
    );
    a.check(T0).unwrap();
}

/// Points earned at T0 that expire after a day.
fn earn_expiring(a: &mut Account, points: i64, event: &str) -> Vec<Earned> {
    let lot = a
        .credit(points, T0, Some(T0 + DAY), None, "purchase", Some(event))
        .unwrap();
    vec![Earned {
        lot,
        points,
        reversed: 0,
    }]
}

#[test]
fn a_refund_of_points_that_expired_takes_nothing_and_owes_nothing() {
    let mut a = Account::new();
    let mut p1 = earn_expiring(&mut a, 300, "p-1");
    a.credit(50, T0, None, None, "purchase", Some("p-2"))
        .unwrap();
    assert_eq!(a.settle(T0 + DAY), 300);
    a.compact();
    // The member lost the 300 once, when they expired; the refund does not take them
    // again, from the 50 they still hold or as debt.
    assert_eq!(
        a.reverse(&mut p1, (1, 1), T0 + 2 * DAY, "refund", "rf-1"),
        0
    );
    assert_eq!(a.balance(T0 + 2 * DAY), bal(50, 0, 0));
    assert_eq!(p1[0].reversed, 300, "accounted for: never reversed again");
    assert!(a.expired.is_empty());
    a.check(T0 + 2 * DAY).unwrap();
}

#[test]
fn a_partial_refund_after_expiry_accounts_for_its_share_only() {
    let mut a = Account::new();
    let mut p1 = earn_expiring(&mut a, 300, "p-1");
    a.settle(T0 + DAY);
    assert_eq!(a.reverse(&mut p1, (1, 3), T0 + DAY, "refund", "rf-1"), 0);
    assert_eq!(
        a.expired,
        [Expired {
            lot: 1,
            points: 200
        }]
    );
    assert_eq!(a.reverse(&mut p1, (1, 1), T0 + DAY, "refund", "rf-2"), 0);
    assert_eq!(a.balance(T0 + DAY), bal(0, 0, 0));
    a.check(T0 + DAY).unwrap();
}

#[test]
fn a_lot_spent_from_and_then_expired_owes_only_beyond_what_expired() {
    let mut a = Account::new();
    // Two purchases share a bucket (same expiry): 200 + 100.
    let mut p1 = earn_expiring(&mut a, 200, "p-1");
    let p2 = earn_expiring(&mut a, 100, "p-2");
    assert_eq!(p1[0].lot, p2[0].lot);
    a.spend(250, T0, "reward", "r-1").unwrap();
    // 50 of the bucket expire.
    assert_eq!(a.settle(T0 + DAY), 50);
    a.compact();
    // Refunding the first purchase: its 200 are gone from the bucket; 50 of them
    // count as expired, the other 150 as spent: debt.
    assert_eq!(a.reverse(&mut p1, (1, 1), T0 + DAY, "refund", "rf-1"), 150);
    assert_eq!(a.balance(T0 + DAY), bal(0, 0, 150));
    let last = a.lines.last().unwrap();
    assert_eq!((last.kind, last.points), (LineKind::Refund, -150));
    a.check(T0 + DAY).unwrap();
}

#[test]
fn an_account_remembers_the_latest_lots_that_expired_only() {
    let mut a = Account::new();
    for i in 0..(MAX_EXPIRED as i64 + 4) {
        a.credit(10, T0, Some(T0 + 1 + i), None, "purchase", None)
            .unwrap();
    }
    a.settle(T0 + DAY);
    assert_eq!(a.expired.len(), MAX_EXPIRED);
    assert_eq!(
        a.expired[0].lot, 5,
        "the four that expired first are forgotten"
    );
    // A refund of points of a forgotten lot counts them as spent, as before.
    let mut old = vec![Earned {
        lot: 1,
        points: 10,
        reversed: 0,
    }];
    assert_eq!(a.reverse(&mut old, (1, 1), T0 + DAY, "refund", "rf"), 10);
    assert_eq!(a.balance(T0 + DAY).debt, 10);
    a.check(T0 + DAY).unwrap();
}

#[test]
fn partial_refunds_reverse_proportionally_and_cumulatively() {
    let mut a = Account::new();
    let mut p1 = earn(&mut a, 999, "p-1");
    // A third refunded: 333 points back; then two thirds in total: 333 more.
    assert_eq!(a.reverse(&mut p1, (1, 3), T0, "refund", "rf-1"), 333);
    assert_eq!(a.reverse(&mut p1, (2, 3), T0, "refund", "rf-2"), 333);
    assert_eq!(a.reverse(&mut p1, (3, 3), T0, "refund", "rf-3"), 333);
    assert_eq!(a.balance(T0).available, 0);
    a.check(T0).unwrap();
}

#[test]
fn a_refund_after_the_points_were_spent_records_a_debt_that_earnings_pay_off() {
    let mut a = Account::new();
    let mut p1 = earn(&mut a, 500, "p-1");
    a.spend(400, T0, "reward", "r-1").unwrap();
    // The spent part of the lot is gone from the account; the record still knows.
    a.compact();
    assert_eq!(a.reverse(&mut p1, (1, 1), T0 + DAY, "refund", "rf-1"), 500);
    assert_eq!(a.balance(T0 + DAY), bal(0, 0, 400));
    a.check(T0 + DAY).unwrap();
    a.credit(250, T0 + 2 * DAY, None, None, "purchase", Some("p-2"))
        .unwrap();
    assert_eq!(a.balance(T0 + 2 * DAY), bal(0, 0, 150));
    a.credit(200, T0 + 3 * DAY, None, None, "purchase", Some("p-3"))
        .unwrap();
    assert_eq!(a.balance(T0 + 3 * DAY), bal(50, 0, 0));
    a.check(T0 + 3 * DAY).unwrap();
}

#[test]
fn a_cancelled_redemption_returns_its_points_to_their_lots() {
    let mut a = Account::new();
    a.credit(100, T0, Some(T0 + 10 * DAY), None, "earn", None)
        .unwrap();
    let taken = a.spend(60, T0, "reward", "r-1").unwrap();
    a.cancel_spend(&taken, T0 + DAY, "cancelled", "r-1");
    assert_eq!(a.balance(T0 + DAY).available, 100);
    // They keep their expiry.
    assert_eq!(a.settle(T0 + 10 * DAY), 100);
    a.check(T0 + 10 * DAY).unwrap();
}

#[test]
fn adjustments_need_a_reason_and_an_author_and_can_create_debt() {
    let mut a = Account::new();
    assert_eq!(
        a.adjust(50, T0, "", "ops", "adj-1"),
        Err(LedgerError::AdjustmentUnexplained)
    );
    assert_eq!(
        a.adjust(50, T0, "goodwill", " ", "adj-1"),
        Err(LedgerError::AdjustmentUnexplained)
    );
    a.adjust(50, T0, "goodwill", "alice@acme", "adj-1").unwrap();
    a.adjust(-80, T0, "fraud clawback", "bob@acme", "adj-2")
        .unwrap();
    assert_eq!(a.balance(T0), bal(0, 0, 30));
    let line = a.lines.last().unwrap();
    assert_eq!(
        (line.kind, line.points, line.by.as_deref()),
        (LineKind::Adjust, -80, Some("bob@acme"))
    );
    a.check(T0).unwrap();
}

#[test]
fn pending_points_pay_off_debt_when_they_mature() {
    let mut a = Account::new();
    a.adjust(-100, T0, "clawback", "ops", "adj-1").unwrap();
    a.credit(300, T0, None, Some(T0 + DAY), "purchase", Some("p-1"))
        .unwrap();
    assert_eq!(a.balance(T0), bal(0, 300, 100));
    a.settle(T0 + DAY);
    assert_eq!(a.balance(T0 + DAY), bal(200, 0, 0));
    a.check(T0 + DAY).unwrap();
}

#[test]
fn credits_with_the_same_dates_share_a_lot() {
    let mut a = Account::new();
    let month_end = T0 + 20 * DAY;
    let p1 = a
        .credit(300, T0, Some(month_end), None, "flight", Some("p-1"))
        .unwrap();
    let p2 = a
        .credit(200, T0 + DAY, Some(month_end), None, "flight", Some("p-2"))
        .unwrap();
    assert_eq!(p1, p2, "the same expiry bucket");
    // Another expiry, or the same expiry still pending, is another bucket.
    let later = a
        .credit(
            50,
            T0 + DAY,
            Some(month_end + 30 * DAY),
            None,
            "flight",
            Some("p-3"),
        )
        .unwrap();
    let pending = a
        .credit(
            70,
            T0 + DAY,
            Some(month_end),
            Some(T0 + 5 * DAY),
            "flight",
            Some("p-4"),
        )
        .unwrap();
    assert_eq!(a.lots.len(), 3);
    assert_ne!(later, p1);
    assert_ne!(pending, p1);
    assert_eq!((a.lots[0].remaining, a.lots[0].original), (500, 500));
    assert_eq!(a.lots[0].earned_at, T0, "when its first points were earned");
    a.check(T0 + DAY).unwrap();

    // Spending takes the bucket that expires first; a refund of the first flight then
    // takes its points back from what the bucket still holds.
    a.spend(350, T0 + 2 * DAY, "reward", "r-1").unwrap();
    let mut earned = vec![Earned {
        lot: p1,
        points: 300,
        reversed: 0,
    }];
    assert_eq!(
        a.reverse(&mut earned, (1, 1), T0 + 2 * DAY, "refund", "rf-1"),
        300
    );
    assert_eq!(
        a.balance(T0 + 2 * DAY),
        bal(0, 70, 100),
        "150 of the bucket's 500 were left: the other 150 are owed, and the 50 points \
         available pay that much of it at once"
    );
    a.settle(T0 + 2 * DAY);
    assert_eq!(a.balance(T0 + 2 * DAY), bal(0, 70, 100));
    a.check(T0 + 2 * DAY).unwrap();

    // An emptied bucket is not filled again: the next credit opens a new lot.
    a.compact();
    let before = a.lots.len();
    let fresh = a
        .credit(
            400,
            T0 + 3 * DAY,
            Some(month_end + 30 * DAY),
            None,
            "flight",
            Some("p-5"),
        )
        .unwrap();
    assert!(fresh > pending, "a new lot");
    assert_eq!(a.lots.len(), before + 1);
    assert_eq!(
        a.balance(T0 + 3 * DAY).debt,
        0,
        "the new points paid the debt"
    );
    a.check(T0 + 3 * DAY).unwrap();
}

/// Credit `points` for purchase `event` at T0 and return what its record keeps.
fn earn(a: &mut Account, points: i64, event: &str) -> Vec<Earned> {
    let lot = a
        .credit(points, T0, None, None, "purchase", Some(event))
        .unwrap();
    vec![Earned {
        lot,
        points,
        reversed: 0,
    }]
}

/// A small deterministic generator (xorshift64*), so a failing sequence can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn the_ledger_invariant_holds_over_random_sequences() {
    for seed in 1..=2_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut a = Account::new();
        let mut now = T0;
        let mut events: Vec<Vec<Earned>> = Vec::new();
        let mut spends: Vec<(String, Vec<Taken>)> = Vec::new();
        for step in 0..60 {
            now += rng.below(5 * DAY as u64) as i64;
            let op = rng.below(7);
            let label = format!("seed {seed} step {step} op {op}");
            match op {
                // Purchase: earn, sometimes expiring, sometimes pending.
                0 | 1 => {
                    let points = 1 + rng.below(1_000) as i64;
                    // Either a date of its own, or a month's end that later credits
                    // share (they join its lot).
                    let expires = match rng.below(4) {
                        0 => Some(now + (1 + rng.below(60)) as i64 * DAY),
                        1 => Some((now / (30 * DAY) + 1 + rng.below(2) as i64) * 30 * DAY),
                        _ => None,
                    };
                    let pending =
                        (rng.below(3) == 0).then(|| now + (1 + rng.below(30)) as i64 * DAY);
                    let pending = match (pending, expires) {
                        (Some(p), Some(e)) if p >= e => None,
                        (p, _) => p,
                    };
                    let id = format!("p-{step}");
                    let lot = a
                        .credit(points, now, expires, pending, "purchase", Some(&id))
                        .unwrap();
                    events.push(vec![Earned {
                        lot,
                        points,
                        reversed: 0,
                    }]);
                }
                // Refund, full or partial, of an earlier purchase.
                2 if !events.is_empty() => {
                    let i = rng.below(events.len() as u64) as usize;
                    let den = 1 + rng.below(4) as i64;
                    let num = 1 + rng.below(den as u64) as i64;
                    a.reverse(&mut events[i], (num, den), now, "refund", "rf");
                }
                // Redeem what is available, or be refused without a change.
                3 => {
                    let want = 1 + rng.below(800) as i64;
                    let before = a.clone();
                    match a.spend(want, now, "reward", "r") {
                        Ok(taken) => spends.push((format!("r-{step}"), taken)),
                        Err(LedgerError::InsufficientPoints { .. }) => {
                            // Refused: only the expiry settled at `now` may differ.
                            let mut settled = before;
                            settled.settle(now);
                            assert_eq!(a, settled, "{label}: a refused spend changed something");
                        }
                        Err(e) => panic!("{label}: {e}"),
                    }
                }
                // Cancel an earlier redemption.
                4 if !spends.is_empty() => {
                    let (id, taken) = spends.swap_remove(rng.below(spends.len() as u64) as usize);
                    a.cancel_spend(&taken, now, "cancelled", &id);
                }
                // Expiry sweep.
                5 => {
                    a.settle(now);
                }
                // Manual adjustment either way.
                _ => {
                    let points = rng.below(600) as i64 - 300;
                    if points != 0 {
                        a.adjust(points, now, "adjustment", "ops", "adj").unwrap();
                    }
                }
            }
            a.settle(now);
            if rng.below(4) == 0 {
                a.compact();
            }
            if let Err(broken) = a.check(now) {
                panic!("{label}: {broken}");
            }
            let lines: i64 = a.lines.iter().map(|l| l.points).sum();
            assert_eq!(lines, a.total, "{label}: the lines do not sum to the total");
            let b = a.balance(now);
            assert!(
                b.available >= 0 && b.pending >= 0 && b.debt >= 0,
                "{label}: {b:?}"
            );
        }
    }
}

/// A pending lot whose time has come kept naming that moment as its next change, so
/// every read of the member took its lock and settled again, and every sweep came
/// back to it. Settling marks it matured once.
#[test]
fn a_matured_pending_lot_is_settled_once() {
    let mut a = Account::new();
    a.credit(
        80,
        T0,
        Some(T0 + 30 * DAY),
        Some(T0 + DAY),
        "flight",
        Some("p-1"),
    )
    .unwrap();
    assert_eq!(a.next_change(), Some(T0 + DAY));
    assert_eq!(a.balance(T0), bal(0, 80, 0));
    let later = T0 + 2 * DAY;
    a.settle(later);
    assert_eq!(a.balance(later), bal(80, 0, 0));
    assert_eq!(
        a.next_change(),
        Some(T0 + 30 * DAY),
        "only the expiry is ahead"
    );
    let settled = a.clone();
    a.settle(later);
    assert_eq!(a, settled, "settling again changes nothing");
    a.check(later).unwrap();
}
