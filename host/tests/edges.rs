//! The engine and ledger at their edges: debt beside available points, cancellations
//! after expiry, adjustments and amounts at the limits of `i64`, one event id for two
//! members at once, refunds of purchases with no amount or in another currency, and
//! the engine's own event ids. Each of these failed before the fix it came with
//! (session 22's review).
//!
//! Every test runs the real engine over sled with a small programme written here (so
//! the credits, their expiry and the redemption prices are exactly what each test
//! needs). The programme's answers are what a valid plugin may answer.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{NOW, merchant_settings, refund};
use loyalty_host::domain::{
    Credit, Enrolment, Event, MemberSnapshot, Offer, Outcome, Perk, PluginError, ProgramInfo,
    Quote, RedemptionAnswer, RedemptionRequest, TierDecision, TierInfo,
};
use loyalty_host::engine::{
    Adjustment, Answer, CallError, Ctx, Engine, EngineError, EnrolRequest, FixedProgrammes,
    Programme, QuoteAnswer,
};
use loyalty_host::pool::PluginPool;
use loyalty_host::sandbox::Session;
use loyalty_host::storage::{SledStorage, Storage};

const DAY: i64 = 86_400;

/// A programme driven by the event: `points` attribute (default amount/100),
/// `expires` and `pending` attributes (absolute timestamps), `sleep_ms` to make the
/// hook slow. Refunds earn nothing. Quotes accept `points` of the request.
struct Scripted {
    info: ProgramInfo,
}

impl Scripted {
    fn new() -> Scripted {
        Scripted {
            info: ProgramInfo {
                name: "scripted".into(),
                version: "1.0.0".into(),
                description: "test".into(),
                tiers: vec![TierInfo {
                    id: "basic".into(),
                    name: "Basic".into(),
                }],
                perks: vec![],
                rewards: vec![],
                config_schema: serde_json::json!({}),
                default_config: serde_json::json!({}),
            },
        }
    }
}

fn attr(e: &Event, k: &str) -> Option<i64> {
    e.attributes.get(k).and_then(|v| v.parse().ok())
}

impl Programme for Scripted {
    fn version(&self) -> &str {
        "scripted"
    }
    fn info(&self) -> &ProgramInfo {
        &self.info
    }
    fn on_enroll(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        _: &Ctx<'_>,
    ) -> Result<Answer<Enrolment>, CallError> {
        Ok(Ok(Enrolment::default()))
    }
    fn on_event(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        e: &Event,
        _: &Ctx<'_>,
    ) -> Result<Answer<Outcome>, CallError> {
        if let Some(ms) = attr(e, "sleep_ms") {
            std::thread::sleep(Duration::from_millis(ms as u64));
        }
        let mut outcome = Outcome::default();
        if e.kind != "refund" {
            let points =
                attr(e, "points").unwrap_or_else(|| e.amount.as_ref().map_or(0, |m| m.minor / 100));
            if points > 0 {
                outcome.credits.push(Credit {
                    points,
                    reason: format!("{} {}", e.kind, e.id),
                    expires_at: attr(e, "expires"),
                    pending_until: attr(e, "pending"),
                    qualifying: true,
                });
            }
        }
        Ok(Ok(outcome))
    }
    fn evaluate_tier(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        _: &Ctx<'_>,
    ) -> Result<Answer<TierDecision>, CallError> {
        Ok(Ok(TierDecision {
            tier: "basic".into(),
            reason: "only tier".into(),
            progress: None,
            valid_until: None,
        }))
    }
    fn perks(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        _: &Ctx<'_>,
    ) -> Result<Answer<Vec<Perk>>, CallError> {
        Ok(Ok(vec![]))
    }
    fn offers(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        _: &str,
        _: &Ctx<'_>,
    ) -> Result<Answer<Vec<Offer>>, CallError> {
        Ok(Ok(vec![]))
    }
    fn quote_redemption(
        &self,
        _: &mut Session,
        _: &MemberSnapshot,
        r: &RedemptionRequest,
        _: &Ctx<'_>,
    ) -> Result<Answer<RedemptionAnswer>, CallError> {
        Ok(match r.points {
            Some(p) => Ok(RedemptionAnswer::Accept(Quote {
                reward: "points".into(),
                points: p,
                cash: None,
                description: format!("{p} points"),
            })),
            None => Err(PluginError {
                code: "no-points".into(),
                message: "ask for points".into(),
            }),
        })
    }
}

struct H {
    engine: Arc<Engine>,
}

fn open(dir: &Path) -> H {
    let h = reopen(dir);
    h.engine
        .durable(h.engine.create_merchant(merchant_settings("m")).unwrap())
        .unwrap();
    h
}

/// The engine on the data in `dir`, whose merchant exists.
fn reopen(dir: &Path) -> H {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir, 16 << 20).unwrap());
    let programmes = Arc::new(FixedProgrammes::new());
    programmes.set("m", Arc::new(Scripted::new()));
    let pool = Arc::new(PluginPool::new(4, 4, Duration::from_secs(30)));
    H {
        engine: Arc::new(Engine::new(storage, programmes, pool)),
    }
}

impl H {
    fn enrol(&self, id: &str) {
        let req = EnrolRequest {
            member: id.into(),
            enrolled_at: NOW,
            ..Default::default()
        };
        self.engine
            .durable(self.engine.enrol("m", &req).unwrap())
            .unwrap();
    }

    fn post(
        &self,
        member: &str,
        event: serde_json::Value,
    ) -> Result<loyalty_host::engine::EventResult, EngineError> {
        let event: Event = serde_json::from_value(event).unwrap();
        let done = self.engine.post_event("m", member, &event)?;
        self.engine.durable(done)
    }

    /// Quote and commit a redemption of `points`; returns its id.
    fn redeem(&self, member: &str, points: i64, at: i64) -> String {
        let req = RedemptionRequest {
            points: Some(points),
            ..Default::default()
        };
        let q = self
            .engine
            .durable(self.engine.quote("m", member, &req, at, 900).unwrap())
            .unwrap();
        let QuoteAnswer::Quoted(r) = q else {
            panic!("rejected: {q:?}")
        };
        self.engine
            .durable(self.engine.commit_redemption("m", &r.id, at).unwrap())
            .unwrap();
        r.id
    }

    fn cancel(&self, id: &str, at: i64) -> loyalty_host::engine::RedemptionRecord {
        self.engine
            .durable(self.engine.cancel_redemption("m", id, at).unwrap())
            .unwrap()
    }

    fn adjust(
        &self,
        member: &str,
        id: &str,
        points: i64,
    ) -> Result<loyalty_host::ledger::Balance, EngineError> {
        let adj = Adjustment {
            id: id.into(),
            points,
            reason: "goodwill".into(),
            by: "agent".into(),
        };
        let done = self.engine.adjust("m", member, &adj, NOW + 1)?;
        self.engine.durable(done)
    }

    /// Every ledger line's points, summed.
    fn ledger_sum(&self, member: &str) -> i64 {
        let mut sum = 0i64;
        let mut before = None;
        loop {
            let page = self.engine.ledger("m", member, before, 500).unwrap();
            sum = sum.wrapping_add(
                page.lines
                    .iter()
                    .map(|l| l.points)
                    .fold(0i64, i64::wrapping_add),
            );
            match page.next_before {
                Some(b) => before = Some(b),
                None => return sum,
            }
        }
    }
}

fn purchase(id: &str, minor: i64, at: i64, attrs: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": id, "occurred_at": at, "kind": "purchase",
        "amount": { "minor": minor, "currency": "USD" },
        "attributes": attrs,
    })
}

// ---------------------------------------------------------------------------------

/// A refund whose points were spent records debt, but the debt is not paid from the
/// points the member holds: the member is left with available points *and* debt,
/// which the ledger module's own invariant forbids ("debt outstanding while available
/// points exist") and `Engine::check` (`loyalty check`) reports as a problem.
#[test]
fn a_refund_that_creates_debt_pays_it_from_available_points() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    // 100 points expiring in 10 days, then 100 that never expire.
    let exp = (NOW + 10 * DAY).to_string();
    h.post(
        "ann",
        purchase("p1", 10_000, NOW + 1, serde_json::json!({"expires": exp})),
    )
    .unwrap();
    h.post(
        "ann",
        purchase("p2", 10_000, NOW + 2, serde_json::json!({})),
    )
    .unwrap();
    // The redemption takes the points that expire first: all of p1's.
    h.redeem("ann", 100, NOW + 3);
    let r = h
        .post("ann", refund("r1", "p1", 10_000, true, NOW + 4))
        .unwrap();
    assert_eq!(r.reversed, 100);
    let problems = h.engine.check("m").unwrap().problems;
    assert_eq!(
        (r.balance.available, r.balance.debt, problems),
        (0, 0, Vec::<String>::new()),
        "the 100 points of debt should have been paid from the 100 available"
    );
}

/// A refund reversed its purchase's points even when they had expired: as debt, or
/// from points the member earned since, so the member lost them twice (session 22's
/// note). Now the points that expired from the purchase's lot count first as gone
/// already; what was kept of them survives a restart with the member's record.
#[test]
fn a_refund_after_the_points_expired_does_not_take_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let exp = NOW + DAY;
    {
        let h = open(dir.path());
        for m in ["ann", "bob"] {
            h.enrol(m);
            let attrs = serde_json::json!({"expires": exp.to_string()});
            h.post(m, purchase(&format!("{m}-p1"), 10_000, NOW + 1, attrs))
                .unwrap();
            h.post(
                m,
                purchase(&format!("{m}-p2"), 5_000, NOW + 2, serde_json::json!({})),
            )
            .unwrap();
        }
        // Ann's record is read after the expiry, so what expired is stored before the
        // refund; Bob's expires as the refund reads it.
        let ann = h.engine.member("m", "ann", exp + 1).unwrap().balance;
        assert_eq!((ann.available, ann.debt), (50, 0));
    }
    let h = reopen(dir.path());
    for m in ["ann", "bob"] {
        let r = h
            .post(
                m,
                refund(
                    &format!("{m}-r1"),
                    &format!("{m}-p1"),
                    10_000,
                    true,
                    exp + 2,
                ),
            )
            .unwrap();
        assert_eq!(
            (r.reversed, r.balance.available, r.balance.debt),
            (0, 50, 0),
            "{m}: the 100 points expired; the refund takes nothing more"
        );
        assert_eq!(h.ledger_sum(m), 50, "{m}");
        // A second refund of the same purchase finds nothing left to reverse.
        let again = h.post(
            m,
            refund(&format!("{m}-r2"), &format!("{m}-p1"), 1, false, exp + 3),
        );
        assert!(again.is_err(), "{m}: refunded in full already: {again:?}");
    }
    assert_eq!(h.engine.check("m").unwrap().problems, Vec::<String>::new());
}

/// Cancelling a committed redemption puts the points back "into the lots they came
/// from (keeping their expiry)". But when the lot they came from is no longer stored
/// (it was emptied: by this redemption, or by expiry), the points come back as a lot
/// that never expires. Points that expired are resurrected for good, and the result
/// depends on whether anyone read the member (or the sweep ran) in between.
#[test]
fn cancelling_a_redemption_after_its_points_expired_does_not_resurrect_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let exp = NOW + DAY;
    for m in ["ann", "bob"] {
        h.enrol(m);
        h.post(
            m,
            purchase(
                &format!("{m}-p1"),
                10_000,
                NOW + 1,
                serde_json::json!({"expires": exp.to_string()}),
            ),
        )
        .unwrap();
    }
    // Both redeem 60 of their 100 points, which expire tomorrow.
    let ann_r = h.redeem("ann", 60, NOW + 10);
    let bob_r = h.redeem("bob", 60, NOW + 10);
    let later = exp + DAY;
    // Bob's member page is read after the expiry (his other 40 expire); Ann's is not.
    assert_eq!(
        h.engine
            .member("m", "bob", later)
            .unwrap()
            .balance
            .available,
        0
    );
    // Both redemptions are cancelled after the points' expiry.
    h.cancel(&ann_r, later);
    h.cancel(&bob_r, later);
    let ann = h.engine.member("m", "ann", later).unwrap().balance;
    let bob = h.engine.member("m", "bob", later).unwrap().balance;
    let bob_in_a_year = h
        .engine
        .member("m", "bob", later + 365 * DAY)
        .unwrap()
        .balance;
    assert_eq!(
        (ann.available, bob.available, bob_in_a_year.available),
        (0, 0, 0),
        "the same operations give Ann 0 and Bob 60 points that never expire"
    );
}

/// Manual adjustments are not bounded, unlike plugin credits and imported balances
/// (both at most a trillion points "so that sums cannot overflow"): an adjustment near
/// i64::MAX wraps the balance and the ledger total around to a negative number.
#[test]
fn a_huge_adjustment_is_refused_instead_of_overflowing_the_balance() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    h.adjust("ann", "a1", 100).unwrap();
    let second = h.adjust("ann", "a2", i64::MAX);
    let b = h.engine.member("m", "ann", NOW + 2).unwrap().balance;
    assert!(
        second.is_err(),
        "accepted: the balance is now {b:?} and the ledger sums to {}",
        h.ledger_sum("ann")
    );
}

/// The most negative adjustment: `-points` overflows in `Account::adjust`.
#[test]
fn the_most_negative_adjustment_is_refused_instead_of_corrupting_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    h.adjust("ann", "a1", 100).unwrap();
    let r = h.adjust("ann", "a2", i64::MIN);
    let b = h.engine.member("m", "ann", NOW + 2).unwrap().balance;
    let problems = h.engine.check("m").unwrap().problems;
    assert!(
        r.is_err(),
        "accepted: balance {b:?}, ledger sum {}, check: {problems:?}",
        h.ledger_sum("ann")
    );
}

/// An event id is merchant-wide (a second member reusing it is a conflict), but the
/// idempotency check runs under the *member's* lock only: the same event id posted for
/// two members at the same time is applied to both, and the event record of the first
/// is overwritten by the second's.
#[test]
fn one_event_id_posted_for_two_members_at_once_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = Arc::new(open(dir.path()));
    h.enrol("ann");
    h.enrol("bob");
    let event = purchase(
        "shared-id",
        10_000,
        NOW + 1,
        serde_json::json!({"sleep_ms": "300"}),
    );
    let threads: Vec<_> = ["ann", "bob"]
        .into_iter()
        .map(|m| {
            let (h, event) = (h.clone(), event.clone());
            std::thread::spawn(move || h.post(m, event).is_ok())
        })
        .collect();
    let ok: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ann = h
        .engine
        .member("m", "ann", NOW + 2)
        .unwrap()
        .balance
        .available;
    let bob = h
        .engine
        .member("m", "bob", NOW + 2)
        .unwrap()
        .balance
        .available;
    let problems = h.engine.check("m").unwrap().problems;
    assert_eq!(
        ok.iter().filter(|o| **o).count(),
        1,
        "both accepted: ann {ann}, bob {bob} points; check: {problems:?}"
    );
}

/// A purchase of 0 (a free item that still earns a bonus) cannot be refunded: the
/// "already fully refunded" check runs before the case meant for it (`bought.minor ==
/// 0` reverses everything), so its points can never be reversed, and the error says
/// something untrue.
#[test]
fn a_zero_amount_purchase_can_be_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    h.post(
        "ann",
        purchase("p0", 0, NOW + 1, serde_json::json!({"points": "50"})),
    )
    .unwrap();
    let r = h.post("ann", refund("r0", "p0", 0, true, NOW + 2));
    assert_eq!(r.map(|r| r.reversed).map_err(|e| e.to_string()), Ok(50));
}

/// Spend is "purchase spend net of refunds, in the programme currency's minor units":
/// a purchase in another currency adds 0, but its refund subtracts its amount as if
/// it were in the programme currency, so the member's spend goes negative.
#[test]
fn refunding_a_purchase_in_another_currency_does_not_subtract_from_spend() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    h.post(
        "ann",
        serde_json::json!({
            "id": "eur-1", "occurred_at": NOW + 1, "kind": "purchase",
            "amount": { "minor": 50_000, "currency": "EUR" }, "attributes": {"points": "10"}
        }),
    )
    .unwrap();
    h.post(
        "ann",
        serde_json::json!({
            "id": "eur-r", "occurred_at": NOW + 2, "kind": "refund", "original_event": "eur-1",
            "amount": { "minor": 50_000, "currency": "EUR" }
        }),
    )
    .unwrap();
    let stats = h.engine.member("m", "ann", NOW + 3).unwrap().stats;
    assert_eq!(stats.lifetime.spend, 0, "{:?}", stats.lifetime);
}

/// `Account::balance` counts lots that expired but were not settled yet, and a positive
/// adjustment (like a cancellation) answers that balance without settling first: the
/// answer shows points that expired as available.
#[test]
fn an_adjustment_answers_a_balance_without_expired_points() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    let exp = NOW + 2;
    h.post(
        "ann",
        purchase(
            "p1",
            10_000,
            NOW + 1,
            serde_json::json!({"expires": exp.to_string()}),
        ),
    )
    .unwrap();
    let adj = Adjustment {
        id: "a1".into(),
        points: 10,
        reason: "goodwill".into(),
        by: "agent".into(),
    };
    let answered = h
        .engine
        .durable(h.engine.adjust("m", "ann", &adj, NOW + DAY).unwrap())
        .unwrap();
    let read = h.engine.member("m", "ann", NOW + DAY).unwrap().balance;
    assert_eq!(
        answered, read,
        "the adjustment answered {answered:?}, the member read gives {read:?}"
    );
}

/// The referrer's `referral` event gets the id "referral:<new member>": a posted event
/// with such an id would have its record overwritten by the referral (so its purchase
/// could no longer be refunded, and its retry became a conflict). Those ids are the
/// engine's own now, and a posted event may not take one.
#[test]
fn a_posted_event_cannot_take_the_id_of_a_referral() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    let refused = h.post(
        "ann",
        purchase("referral:bob", 10_000, NOW + 1, serde_json::json!({})),
    );
    assert!(
        matches!(&refused, Err(EngineError::Invalid { pointer, .. }) if pointer == "/event/id"),
        "{refused:?}"
    );
    h.post(
        "ann",
        purchase("p1", 10_000, NOW + 1, serde_json::json!({})),
    )
    .unwrap();
    let code = h.engine.member("m", "ann", NOW + 1).unwrap().referral_code;
    let req = EnrolRequest {
        member: "bob".into(),
        enrolled_at: NOW + 2,
        referral_code: code,
        ..Default::default()
    };
    h.engine
        .durable(h.engine.enrol("m", &req).unwrap())
        .unwrap();
    let refunded = h
        .post("ann", refund("r1", "p1", 10_000, true, NOW + 3))
        .map(|r| r.reversed);
    assert_eq!(refunded.map_err(|e| e.to_string()), Ok(100));
    assert_eq!(h.engine.check("m").unwrap().problems, Vec::<String>::new());
}

/// Purchase amounts are only checked to be non-negative, and the member's spend is
/// summed without a bound: two purchases of 5e18 cents wrap the lifetime spend
/// around to a negative number (which tier rules read).
#[test]
fn huge_purchase_amounts_do_not_wrap_the_members_spend() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    let big = 5_000_000_000_000_000_000i64;
    let first = h.post(
        "ann",
        purchase("p1", big, NOW + 1, serde_json::json!({"points": "1"})),
    );
    let second = h.post(
        "ann",
        purchase("p2", big, NOW + 2, serde_json::json!({"points": "1"})),
    );
    let stats = h.engine.member("m", "ann", NOW + 3).unwrap().stats;
    assert!(
        first.is_err() || second.is_err() || stats.lifetime.spend > 0,
        "both accepted, and the lifetime spend is {}",
        stats.lifetime.spend
    );
}

/// A partial refund of 0 was accepted and reversed nothing, leaving an event record of
/// a refund that did nothing; it is refused, naming why.
#[test]
fn a_partial_refund_of_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    h.post(
        "ann",
        purchase("p1", 10_000, NOW + 1, serde_json::json!({})),
    )
    .unwrap();
    let r = h.post("ann", refund("r1", "p1", 0, false, NOW + 2));
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("above 0")),
        "{r:?}"
    );
    let full = h
        .post("ann", refund("r2", "p1", 10_000, true, NOW + 3))
        .unwrap();
    assert_eq!(full.reversed, 100);
}

/// Enrolling with the referral code of a member who opted out answered that the
/// referrer was inactive: the new member learnt something about another member. The
/// code now answers as unknown.
#[test]
fn an_opted_out_referrers_code_answers_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    h.enrol("ann");
    let code = h.engine.member("m", "ann", NOW + 1).unwrap().referral_code;
    h.engine
        .durable(h.engine.set_opted_out("m", "ann", true, NOW + 1).unwrap())
        .unwrap();
    let req = EnrolRequest {
        member: "bob".into(),
        enrolled_at: NOW + 2,
        referral_code: code,
        ..Default::default()
    };
    let answer = h.engine.enrol("m", &req).map(|d| d.value.id);
    assert!(
        matches!(
            &answer,
            Err(EngineError::UnknownCode {
                kind: "referral",
                ..
            })
        ),
        "{answer:?}"
    );
}

/// What a point is worth and the budget's limit were unbounded: a point worth 10^18
/// made an issued credit's value wrap (the budget check then passed whatever it
/// was). Both are bounded at 10^15 minor units, and a value beyond `i64` saturates.
#[test]
fn budget_values_are_bounded_and_do_not_wrap() {
    use loyalty_host::domain::Money;
    use loyalty_host::engine::{Budget, BudgetPeriod, OnExceed, PointValue};
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let usd = |minor| Money {
        minor,
        currency: "USD".into(),
    };
    let worth = |minor| PointValue {
        points: 1,
        worth: usd(minor),
    };
    let refused = h.engine.update_merchant("m", |s| {
        s.point_value = Some(worth(1_000_000_000_000_000_000));
    });
    assert!(
        matches!(&refused, Err(EngineError::Invalid { pointer, .. }) if pointer == "/point_value/worth/minor"),
        "{refused:?}"
    );
    let done = h
        .engine
        .update_merchant("m", |s| {
            s.point_value = Some(worth(loyalty_host::domain::MAX_MINOR));
            s.budget = Some(Budget {
                period: BudgetPeriod::Month,
                limit: usd(loyalty_host::domain::MAX_MINOR),
                on_exceed: OnExceed::Reject,
            });
        })
        .unwrap();
    h.engine.durable(done).unwrap();
    assert_eq!(
        worth(loyalty_host::domain::MAX_MINOR).value_of(1_000_000),
        i64::MAX
    );
    h.enrol("ann");
    // 20,000 points worth 10^15 each: far over the limit, refused rather than wrapped.
    let over = h
        .post(
            "ann",
            purchase(
                "p1",
                10_000,
                NOW + 1,
                serde_json::json!({"points": "20000"}),
            ),
        )
        .unwrap();
    assert_eq!(over.credited.len(), 0, "{over:?}");
    assert_eq!(over.refused.len(), 1, "{over:?}");
}

/// Points a refund took back still counted against the budget of the period they
/// were issued in, so a merchant in reject mode could not issue them again (session
/// 22's note). Now they come off that period's usage, whichever period the refund
/// falls in.
#[test]
fn a_refund_gives_its_points_back_to_the_budget_of_their_period() {
    use loyalty_host::domain::Money;
    use loyalty_host::engine::{Budget, BudgetPeriod, OnExceed, PointValue};
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    let usd = |minor| Money {
        minor,
        currency: "USD".into(),
    };
    let done = h
        .engine
        .update_merchant("m", |s| {
            s.point_value = Some(PointValue {
                points: 1,
                worth: usd(2),
            });
            s.budget = Some(Budget {
                period: BudgetPeriod::Month,
                limit: usd(200),
                on_exceed: OnExceed::Reject,
            });
        })
        .unwrap();
    h.engine.durable(done).unwrap();
    h.enrol("ann");
    let points = |n: i64| serde_json::json!({ "points": n.to_string() });
    let p1 = h
        .post("ann", purchase("p1", 1, NOW + 1, points(100)))
        .unwrap();
    assert_eq!(p1.credited.len(), 1);
    let full = h
        .post("ann", purchase("p2", 1, NOW + 2, points(40)))
        .unwrap();
    assert_eq!(
        (full.credited.len(), full.refused.len()),
        (0, 1),
        "the budget is spent"
    );
    // Refunded in the same month: its 100 points (200 in value) are no longer issued.
    h.post("ann", refund("r1", "p1", 1, true, NOW + 3)).unwrap();
    let usage = h.engine.budget_usage("m", NOW + 3).unwrap();
    assert_eq!((usage.points, usage.value), (0, 0));
    let again = h
        .post("ann", purchase("p3", 1, NOW + 4, points(60)))
        .unwrap();
    assert_eq!(again.credited.len(), 1, "{again:?}");
    // Refunded two months later: its month's usage falls, the refund's month's does
    // not (nothing was issued then).
    let later = NOW + 62 * DAY;
    h.post("ann", refund("r3", "p3", 1, true, later)).unwrap();
    let then = h.engine.budget_usage("m", NOW + 4).unwrap();
    let now = h.engine.budget_usage("m", later).unwrap();
    assert_ne!(then.period, now.period);
    assert_eq!((then.points, then.value), (0, 0));
    assert_eq!((now.points, now.value), (0, 0));
}
