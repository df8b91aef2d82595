//! The ride-hailing programme's rules, with concrete numbers.

use super::*;
use loyalty_sdk::testing::{context, member, purchase, redeem};
use loyalty_sdk::{LineItem, Money};

/// Monday 2026-09-21 13:46:40Z, in ISO week 2026-W39.
const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

fn ctx(now: i64) -> Context {
    let mut c = context(now, "{}");
    c.currency = "SGD".into();
    c
}

fn at(tier: &str) -> Member {
    let mut m = member("m-1");
    m.tier = tier.into();
    m
}

fn order(category: &str, minor: i64, payment: PaymentMethod, at: i64) -> Event {
    let mut e = purchase("o-1", minor, "SGD", at);
    e.payment = Some(payment);
    e.items = vec![LineItem {
        sku: "trip".into(),
        category: category.into(),
        quantity: 1,
        amount: minor,
    }];
    e
}

fn points(tier: &str, payment: PaymentMethod, minor: i64) -> i64 {
    RideHailing::on_event(&at(tier), &order("ride", minor, payment, NOW), &ctx(NOW))
        .unwrap()
        .credits
        .iter()
        .filter(|c| c.qualifying)
        .map(|c| c.points)
        .sum()
}

#[test]
fn a_12_50_wallet_ride_at_gold_earns_56_points() {
    assert_eq!(points("gold", PaymentMethod::Wallet, 1_250), 56);
}

#[test]
fn rates_follow_payment_method_and_tier() {
    let ten = 1_000;
    assert_eq!(points("member", PaymentMethod::Wallet, ten), 30);
    assert_eq!(points("gold", PaymentMethod::Wallet, ten), 45);
    assert_eq!(points("platinum", PaymentMethod::Wallet, ten), 60);
    assert_eq!(points("member", PaymentMethod::Card, ten), 10);
    assert_eq!(points("gold", PaymentMethod::Card, ten), 15);
    assert_eq!(points("platinum", PaymentMethod::Card, ten), 20);
    assert_eq!(
        points("platinum", PaymentMethod::Other, ten),
        20,
        "other methods earn like card"
    );
    assert_eq!(points("platinum", PaymentMethod::Points, ten), 0);
}

#[test]
fn a_cash_ride_earns_no_credit_at_all() {
    let out = RideHailing::on_event(
        &at("platinum"),
        &order("food", 5_000, PaymentMethod::Cash, NOW),
        &ctx(NOW),
    )
    .unwrap();
    assert!(out.credits.is_empty());
}

#[test]
fn points_qualify_and_expire_six_months_after_the_month_earned() {
    let out = RideHailing::on_event(
        &at("member"),
        &order("food", 1_000, PaymentMethod::Card, NOW),
        &ctx(NOW),
    )
    .unwrap();
    assert!(out.credits[0].qualifying);
    assert_eq!(
        out.credits[0].expires_at,
        Some(time::timestamp(2027, 4, 1, 0, 0, 0) - 1)
    );
}

#[test]
fn another_currency_is_refused() {
    let mut e = order("ride", 1_000, PaymentMethod::Card, NOW);
    e.amount = Some(Money::new(1_000, "USD"));
    let err = RideHailing::on_event(&at("gold"), &e, &ctx(NOW)).unwrap_err();
    assert_eq!(err.code, "unsupported-currency");
}

/// Ride `n` times, feeding the returned state back as the host would.
fn ride(member: &mut Member, at: i64) -> Outcome {
    let out = RideHailing::on_event(
        member,
        &order("ride", 1_000, PaymentMethod::Card, at),
        &ctx(at),
    )
    .unwrap();
    if let Some(state) = &out.state {
        member.state = state.clone();
    }
    out
}

fn bonus(out: &Outcome) -> i64 {
    out.credits
        .iter()
        .filter(|c| !c.qualifying)
        .map(|c| c.points)
        .sum()
}

#[test]
fn five_rides_in_a_week_earn_the_challenge_bonus_once() {
    let mut m = at("member");
    for day in 0..4 {
        assert_eq!(
            bonus(&ride(&mut m, NOW + day * 3_600)),
            0,
            "ride {}",
            day + 1
        );
    }
    let fifth = ride(&mut m, NOW + 5 * 3_600);
    assert_eq!(bonus(&fifth), 200);
    assert_eq!(fifth.badges, ["weekly-challenge-2026-w39"]);
    let sixth = ride(&mut m, NOW + 6 * 3_600);
    assert_eq!(bonus(&sixth), 0, "no second bonus in the same week");
    let state: Challenge = m.state_as().unwrap();
    assert_eq!((state.rides, state.completed), (6, true));
}

#[test]
fn the_challenge_starts_again_each_week() {
    let mut m = at("member");
    for i in 0..3 {
        ride(&mut m, NOW + i * 3_600);
    }
    // Sunday night is still W39; Monday starts W40 at one ride.
    ride(&mut m, time::timestamp(2026, 9, 27, 23, 0, 0));
    assert_eq!(m.state_as::<Challenge>().unwrap().rides, 4);
    ride(&mut m, NOW + 7 * DAY);
    let state: Challenge = m.state_as().unwrap();
    assert_eq!(
        (state.week.as_str(), state.rides, state.completed),
        ("2026-W40", 1, false)
    );
}

#[test]
fn food_orders_earn_but_do_not_count_as_rides() {
    let mut m = at("member");
    let out = RideHailing::on_event(
        &m,
        &order("food", 1_000, PaymentMethod::Card, NOW),
        &ctx(NOW),
    )
    .unwrap();
    assert_eq!(out.points(), 10);
    assert!(out.state.is_none(), "state unchanged");
    m.state = b"{}garbage".to_vec();
    let err = RideHailing::on_event(
        &m,
        &order("ride", 1_000, PaymentMethod::Card, NOW),
        &ctx(NOW),
    )
    .unwrap_err();
    assert_eq!(err.code, "invalid-state");
}

fn tier(points: i64) -> TierDecision {
    let mut m = member("m-1");
    m.stats.rolling_12_months.qualifying_points = points;
    RideHailing::evaluate_tier(&m, &ctx(NOW)).unwrap()
}

#[test]
fn tiers_come_from_points_in_the_last_12_months() {
    assert_eq!(tier(999).tier, "member");
    assert_eq!(tier(1_000).tier, "gold");
    assert_eq!(tier(2_999).tier, "gold");
    assert_eq!(tier(3_000).tier, "platinum");
    let p = tier(1_200).progress.unwrap();
    assert_eq!(
        (p.next_tier.as_str(), p.current, p.target),
        ("platinum", 1_200, 3_000)
    );
    assert_eq!(
        p.window_ends,
        Some(time::timestamp(2026, 10, 1, 0, 0, 0) - 1)
    );
    assert!(tier(5_000).progress.is_none());
}

#[test]
fn platinum_gets_free_delivery_and_ten_free_rides_a_month() {
    let perks = RideHailing::perks(&at("platinum"), &ctx(NOW)).unwrap();
    let ride = perks.iter().find(|p| p.id == "free-ride").unwrap();
    assert_eq!(ride.quantity, Some(10));
    assert_eq!(ride.grant, "2026-09");
    assert_eq!(
        ride.valid_until,
        Some(time::timestamp(2026, 10, 1, 0, 0, 0) - 1)
    );
    let delivery = perks.iter().find(|p| p.id == "free-delivery").unwrap();
    assert_eq!(delivery.quantity, None, "unlimited");
    let gold: Vec<_> = RideHailing::perks(&at("gold"), &ctx(NOW))
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(gold, ["priority-support"]);
    assert!(
        RideHailing::perks(&at("member"), &ctx(NOW))
            .unwrap()
            .is_empty()
    );
}

fn quote(balance: i64, request: RedemptionRequest) -> RedemptionAnswer {
    let mut m = at("gold");
    m.balance = balance;
    RideHailing::quote_redemption(&m, &request, &ctx(NOW)).unwrap()
}

fn pay(minor: i64, points: Option<i64>) -> RedemptionRequest {
    RedemptionRequest {
        reward: None,
        amount: Some(Money::new(minor, "SGD")),
        points,
        partner: None,
        attributes: vec![],
    }
}

#[test]
fn vouchers_have_fixed_prices() {
    assert_eq!(
        quote(300, redeem("ride-voucher-3")).quote().unwrap().points,
        300
    );
    assert_eq!(
        quote(299, redeem("ride-voucher-3"))
            .rejection()
            .unwrap()
            .code,
        "insufficient-points"
    );
    assert_eq!(
        quote(9_999, redeem("free-car")).rejection().unwrap().code,
        "unknown-reward"
    );
}

#[test]
fn paying_with_points_covers_part_of_an_order() {
    // SGD 12.50 with 800 points (SGD 8.00): SGD 4.50 in cash.
    let a = quote(1_000, pay(1_250, Some(800)));
    let q = a.quote().unwrap();
    assert_eq!(q.points, 800);
    assert_eq!(q.cash, Some(Money::new(450, "SGD")));
    // Without a number, the balance is used, up to what the order needs.
    let all = quote(5_000, pay(1_250, None));
    assert_eq!(
        (
            all.quote().unwrap().points,
            all.quote().unwrap().cash.clone()
        ),
        (1_250, None)
    );
    assert_eq!(
        quote(100, pay(1_250, Some(800))).rejection().unwrap().code,
        "insufficient-points"
    );
    assert_eq!(
        quote(0, pay(1_250, None)).rejection().unwrap().code,
        "insufficient-points"
    );
}

#[test]
fn partners_have_their_offers() {
    let offers = |p| RideHailing::offers(&at("member"), p, &ctx(NOW)).unwrap();
    assert_eq!(
        offers("cinema-city")[0].kind,
        OfferKind::EarnMultiplier(200)
    );
    assert_eq!(offers("fuel-co")[0].kind, OfferKind::BonusPoints(50));
    assert!(offers("nobody").is_empty());
}

#[test]
fn joining_starts_at_member_with_no_bonus_by_default() {
    let e = RideHailing::on_enroll(&member("m"), &ctx(NOW)).unwrap();
    assert_eq!(e.initial_tier.as_deref(), Some("member"));
    assert!(e.outcome.credits.is_empty());
    let mut c = ctx(NOW);
    c.config = r#"{"welcome_bonus": 100}"#.into();
    assert_eq!(
        RideHailing::on_enroll(&member("m"), &c)
            .unwrap()
            .outcome
            .points(),
        100
    );
}

#[test]
fn the_default_config_text_is_the_default_config_and_the_schema_lists_it() {
    let parsed: Config = serde_json::from_str(config::DEFAULT_CONFIG).unwrap();
    assert_eq!(parsed, Config::default());
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let defaults: serde_json::Value = serde_json::from_str(config::DEFAULT_CONFIG).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in defaults.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "schema lacks {key}");
    }
    assert_eq!(props.len(), defaults.as_object().unwrap().len());
}
