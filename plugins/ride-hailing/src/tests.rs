//! The ride-hailing programme's rules, with concrete numbers.

use super::*;
use loyalty_sdk::testing::{context, event, member, purchase, redeem};
use loyalty_sdk::{LineItem, Money, RedemptionRequest};
use serde_json::Value;

/// Monday 2026-09-21 14:13:20Z, in ISO week 2026-W39.
const NOW: i64 = 1_790_000_000;
const HOUR: i64 = 3_600;

fn ctx_with(now: Timestamp, config: &str) -> Context {
    let mut c = context(now, config);
    c.currency = "SGD".into();
    c
}

fn ctx(now: Timestamp) -> Context {
    ctx_with(now, "{}")
}

fn at(tier: &str) -> Member {
    let mut m = member("m-1");
    m.tier = tier.into();
    m
}

fn item(category: &str, amount: i64) -> LineItem {
    LineItem {
        sku: format!("{category}-1"),
        category: category.into(),
        quantity: 1,
        amount,
    }
}

/// A purchase of one line item in `category`, in SGD.
fn order(category: &str, minor: i64, payment: PaymentMethod, at: Timestamp) -> Event {
    let mut e = purchase("o-1", minor, "SGD", at);
    e.payment = Some(payment);
    e.items = vec![item(category, minor)];
    e
}

fn earn(member: &Member, e: &Event) -> Outcome {
    RideHailing::on_event(member, e, &ctx(e.occurred_at)).unwrap()
}

/// Qualifying points for a ride of `minor` cents paid with `payment` at `tier`.
fn points(tier: &str, payment: PaymentMethod, minor: i64) -> i64 {
    earn(&at(tier), &order("ride", minor, payment, NOW))
        .credits
        .iter()
        .filter(|c| c.qualifying)
        .map(|c| c.points)
        .sum()
}

fn error_code(config: &str) -> String {
    RideHailing::evaluate_tier(&member("m-1"), &ctx_with(NOW, config))
        .unwrap_err()
        .code
}

// Earning.

#[test]
fn a_12_50_wallet_ride_at_gold_earns_56_points() {
    // 12.50 x 4.5 = 56.25, rounded down.
    assert_eq!(points("gold", PaymentMethod::Wallet, 1_250), 56);
    let out = earn(
        &at("gold"),
        &order("ride", 1_250, PaymentMethod::Wallet, NOW),
    );
    assert_eq!(
        out.credits[0].reason,
        "56 points: SGD 12.50 by wallet at Gold"
    );
}

#[test]
fn each_payment_method_and_tier_earns_its_rate() {
    let ten = 1_000;
    assert_eq!(points("member", PaymentMethod::Wallet, ten), 30);
    assert_eq!(points("gold", PaymentMethod::Wallet, ten), 45);
    assert_eq!(points("platinum", PaymentMethod::Wallet, ten), 60);
    assert_eq!(points("member", PaymentMethod::Card, ten), 10);
    assert_eq!(points("gold", PaymentMethod::Card, ten), 15);
    assert_eq!(points("platinum", PaymentMethod::Card, ten), 20);
    assert_eq!(points("gold", PaymentMethod::Cash, ten), 0);
    assert_eq!(
        points("gold", PaymentMethod::StoredValue, ten),
        15,
        "like card"
    );
    assert_eq!(points("gold", PaymentMethod::Other, ten), 15, "like card");
    assert_eq!(
        points("gold", PaymentMethod::Points, ten),
        0,
        "no earn on burn"
    );
    assert_eq!(
        points("", PaymentMethod::Wallet, ten),
        30,
        "no tier yet: member"
    );
}

#[test]
fn card_fractions_round_down_to_whole_points() {
    // 0.99 x 1.5 = 1.485 and 1.33 x 1.5 = 1.995.
    assert_eq!(points("gold", PaymentMethod::Card, 99), 1);
    assert_eq!(points("gold", PaymentMethod::Card, 133), 1);
    assert_eq!(points("member", PaymentMethod::Card, 99), 0);
}

#[test]
fn a_cash_ride_earns_no_credit_at_all_but_counts_for_the_challenge() {
    let out = earn(
        &at("platinum"),
        &order("ride", 5_000, PaymentMethod::Cash, NOW),
    );
    assert!(out.credits.is_empty());
    let mut m = at("platinum");
    m.state = out.state.expect("the ride is counted");
    assert_eq!(m.state_as::<Challenge>().unwrap().rides, 1);
}

#[test]
fn rides_food_and_mart_orders_all_earn() {
    for category in ["ride", "food", "mart"] {
        let out = earn(
            &at("member"),
            &order(category, 2_000, PaymentMethod::Wallet, NOW),
        );
        assert_eq!(out.points(), 60, "{category}");
    }
}

#[test]
fn points_qualify_and_expire_six_months_after_the_month_earned() {
    let out = earn(
        &at("member"),
        &order("food", 1_000, PaymentMethod::Card, NOW),
    );
    assert!(out.credits[0].qualifying);
    // Earned in September 2026: they last until the end of March 2027.
    assert_eq!(
        out.credits[0].expires_at,
        Some(time::timestamp(2027, 4, 1, 0, 0, 0) - 1)
    );
    let one_month = RideHailing::on_event(
        &at("member"),
        &order("food", 1_000, PaymentMethod::Card, NOW),
        &ctx_with(NOW, r#"{"expiry_months": 1}"#),
    )
    .unwrap();
    assert_eq!(
        one_month.credits[0].expires_at,
        Some(time::timestamp(2026, 11, 1, 0, 0, 0) - 1)
    );
}

#[test]
fn an_amount_in_another_currency_is_refused() {
    let mut e = order("ride", 1_000, PaymentMethod::Card, NOW);
    e.amount = Some(Money::new(1_000, "USD"));
    let err = RideHailing::on_event(&at("gold"), &e, &ctx(NOW)).unwrap_err();
    assert_eq!(err.code, "unsupported-currency");
}

#[test]
fn a_programme_in_yen_earns_per_whole_yen() {
    // The programme follows the merchant's currency: JPY has no minor unit.
    let mut c = ctx(NOW);
    c.currency = "JPY".into();
    let mut e = order("ride", 1_000, PaymentMethod::Wallet, NOW);
    e.amount = Some(Money::new(1_000, "JPY"));
    let out = RideHailing::on_event(&at("gold"), &e, &c).unwrap();
    assert_eq!(out.points(), 4_500);
}

#[test]
fn refunds_reviews_and_negative_amounts_credit_nothing() {
    let review = event("r-1", EventKind::Review, NOW);
    assert_eq!(earn(&at("gold"), &review), Outcome::new());
    let negative = order("food", -1_000, PaymentMethod::Wallet, NOW);
    assert!(earn(&at("gold"), &negative).credits.is_empty());
}

#[test]
fn a_broken_config_fails_the_purchase_with_invalid_config() {
    for config in [
        r#"{"rates_hundredths": 5}"#,
        r#"{"expiry_months": 0}"#,
        r#"{"challenge_rides": 0}"#,
        r#"{"challenge_bonus": -1}"#,
        "[1, 2]",
    ] {
        let err = RideHailing::on_event(
            &at("gold"),
            &order("ride", 1_000, PaymentMethod::Card, NOW),
            &ctx_with(NOW, config),
        )
        .unwrap_err();
        assert_eq!(err.code, "invalid-config", "{config}");
    }
}

#[test]
fn the_merchant_can_change_the_earn_rates() {
    let config = r#"{"rates_hundredths": {
        "wallet": {"member": 500, "gold": 700, "platinum": 900},
        "card": {"member": 100, "gold": 150, "platinum": 200},
        "cash": {"member": 50, "gold": 50, "platinum": 50}}}"#;
    let earn_with = |payment| {
        RideHailing::on_event(
            &at("gold"),
            &order("food", 1_000, payment, NOW),
            &ctx_with(NOW, config),
        )
        .unwrap()
        .points()
    };
    assert_eq!(earn_with(PaymentMethod::Wallet), 70);
    assert_eq!(earn_with(PaymentMethod::Cash), 5);
}

// The weekly challenge.

/// Ride at `at`, feeding the returned state back as the host would.
fn ride(member: &mut Member, at: Timestamp) -> Outcome {
    let out = earn(member, &order("ride", 1_000, PaymentMethod::Card, at));
    if let Some(state) = &out.state {
        member.state = state.clone();
    }
    out
}

/// The bonus (non-qualifying) points in an outcome.
fn bonus(out: &Outcome) -> i64 {
    out.credits
        .iter()
        .filter(|c| !c.qualifying)
        .map(|c| c.points)
        .sum()
}

#[test]
fn four_rides_earn_no_bonus_the_fifth_earns_200_and_the_sixth_none() {
    let mut m = at("member");
    for n in 0..4 {
        let out = ride(&mut m, NOW + n * HOUR);
        assert_eq!(bonus(&out), 0, "ride {}", n + 1);
        assert!(out.badges.is_empty());
    }
    let fifth = ride(&mut m, NOW + 4 * HOUR);
    assert_eq!(bonus(&fifth), 200);
    assert_eq!(fifth.points(), 210, "10 for the ride, 200 bonus");
    assert_eq!(fifth.badges, ["weekly-challenge-2026-w39"]);
    let sixth = ride(&mut m, NOW + 5 * HOUR);
    assert_eq!(bonus(&sixth), 0, "no second bonus in the same week");
    assert!(sixth.badges.is_empty());
    assert_eq!(
        m.state_as::<Challenge>().unwrap(),
        Challenge {
            week: "2026-W39".into(),
            rides: 6,
            completed: true
        }
    );
}

#[test]
fn the_challenge_bonus_expires_with_the_ride_points() {
    let mut m = at("member");
    m.state = serde_json::to_vec(&Challenge {
        week: "2026-W39".into(),
        rides: 4,
        completed: false,
    })
    .unwrap();
    let out = ride(&mut m, NOW);
    let bonus = out.credits.iter().find(|c| !c.qualifying).unwrap();
    assert_eq!(bonus.reason, "Weekly challenge: 5 rides in 2026-W39");
    assert_eq!(bonus.expires_at, out.credits[0].expires_at);
}

#[test]
fn a_ride_in_the_next_week_starts_the_count_at_one() {
    let mut m = at("member");
    for n in 0..3 {
        ride(&mut m, NOW + n * HOUR);
    }
    // The last second of Sunday is still W39; Monday midnight starts W40.
    ride(&mut m, time::timestamp(2026, 9, 27, 23, 59, 59));
    assert_eq!(m.state_as::<Challenge>().unwrap().rides, 4);
    let monday = ride(&mut m, time::timestamp(2026, 9, 28, 0, 0, 0));
    assert_eq!(bonus(&monday), 0);
    assert_eq!(
        m.state_as::<Challenge>().unwrap(),
        Challenge {
            week: "2026-W40".into(),
            rides: 1,
            completed: false
        }
    );
}

#[test]
fn a_completed_week_does_not_stop_next_weeks_bonus() {
    let mut m = at("member");
    for n in 0..5 {
        ride(&mut m, NOW + n * HOUR);
    }
    let next_week = time::timestamp(2026, 9, 29, 8, 0, 0);
    let bonuses: i64 = (0..5)
        .map(|n| bonus(&ride(&mut m, next_week + n * HOUR)))
        .sum();
    assert_eq!(bonuses, 200);
}

#[test]
fn food_orders_earn_but_do_not_count_as_rides() {
    let out = earn(
        &at("member"),
        &order("food", 1_000, PaymentMethod::Card, NOW),
    );
    assert_eq!(out.points(), 10);
    assert!(out.state.is_none(), "state unchanged");
}

#[test]
fn a_purchase_with_two_ride_items_counts_once() {
    let mut e = order("ride", 2_000, PaymentMethod::Card, NOW);
    e.items = vec![item("ride", 1_000), item("ride", 800), item("food", 200)];
    let mut m = at("member");
    m.state = earn(&m, &e).state.unwrap();
    assert_eq!(m.state_as::<Challenge>().unwrap().rides, 1);
}

#[test]
fn a_late_ride_from_an_earlier_week_earns_but_leaves_this_weeks_count_alone() {
    let mut m = at("member");
    ride(&mut m, NOW);
    ride(&mut m, NOW + HOUR);
    let late = ride(&mut m, NOW - 7 * 24 * HOUR);
    assert_eq!(late.points(), 10);
    assert!(late.state.is_none());
    assert_eq!(m.state_as::<Challenge>().unwrap().rides, 2);
}

#[test]
fn the_merchant_sets_the_challenge_size_and_bonus() {
    let config = r#"{"challenge_rides": 2, "challenge_bonus": 75}"#;
    let mut m = at("member");
    let mut bonuses = Vec::new();
    for n in 0..3 {
        let out = RideHailing::on_event(
            &m,
            &order("ride", 1_000, PaymentMethod::Card, NOW + n * HOUR),
            &ctx_with(NOW, config),
        )
        .unwrap();
        bonuses.push(bonus(&out));
        m.state = out.state.unwrap();
    }
    assert_eq!(bonuses, [0, 75, 0]);
}

#[test]
fn a_corrupt_state_is_an_invalid_state_error() {
    let mut m = at("member");
    m.state = b"{}garbage".to_vec();
    let err = RideHailing::on_event(
        &m,
        &order("ride", 1_000, PaymentMethod::Card, NOW),
        &ctx(NOW),
    )
    .unwrap_err();
    assert_eq!(err.code, "invalid-state");
}

// Tiers.

fn tier_with(points: i64, config: &str) -> TierDecision {
    let mut m = member("m-1");
    m.stats.rolling_12_months.qualifying_points = points;
    RideHailing::evaluate_tier(&m, &ctx_with(NOW, config)).unwrap()
}

fn tier(points: i64) -> TierDecision {
    tier_with(points, "{}")
}

#[test]
fn gold_starts_at_1000_and_platinum_at_3000_points_in_12_months() {
    assert_eq!(tier(0).tier, "member");
    assert_eq!(tier(999).tier, "member");
    assert_eq!(tier(1_000).tier, "gold");
    assert_eq!(tier(2_999).tier, "gold");
    assert_eq!(tier(3_000).tier, "platinum");
    assert_eq!(tier(1_200).reason, "1,200 points in the last 12 months");
}

#[test]
fn progress_names_the_next_tier_and_when_the_window_closes() {
    let p = tier(1_200).progress.unwrap();
    assert_eq!(
        (p.next_tier.as_str(), p.metric.as_str(), p.current, p.target),
        ("platinum", "points in the last 12 months", 1_200, 3_000)
    );
    assert_eq!(
        p.window_ends,
        Some(time::timestamp(2026, 10, 1, 0, 0, 0) - 1)
    );
    let p = tier(10).progress.unwrap();
    assert_eq!((p.next_tier.as_str(), p.target), ("gold", 1_000));
    assert!(tier(5_000).progress.is_none(), "platinum is the top");
}

#[test]
fn the_merchant_sets_the_thresholds() {
    let config = r#"{"thresholds": {"gold": 500, "platinum": 800}}"#;
    assert_eq!(tier_with(499, config).tier, "member");
    assert_eq!(tier_with(500, config).tier, "gold");
    assert_eq!(tier_with(800, config).tier, "platinum");
}

// Perks.

fn perks(tier: &str, config: &str) -> Vec<Perk> {
    RideHailing::perks(&at(tier), &ctx_with(NOW, config)).unwrap()
}

fn ids(perks: &[Perk]) -> Vec<&str> {
    perks.iter().map(|p| p.id.as_str()).collect()
}

#[test]
fn platinum_gets_free_delivery_and_ten_free_rides_a_month() {
    let perks = perks("platinum", "{}");
    assert_eq!(
        ids(&perks),
        ["priority-support", "free-delivery", "free-ride"]
    );
    let delivery = &perks[1];
    assert_eq!(
        (
            delivery.quantity,
            delivery.valid_until,
            delivery.grant.as_str()
        ),
        (None, None, "platinum"),
        "unlimited while platinum"
    );
    let rides = &perks[2];
    assert_eq!(rides.quantity, Some(10));
    assert_eq!(rides.grant, "2026-09");
    assert_eq!(
        rides.valid_until,
        Some(time::timestamp(2026, 10, 1, 0, 0, 0) - 1)
    );
}

#[test]
fn gold_gets_priority_support_and_members_get_nothing() {
    let gold = perks("gold", "{}");
    assert_eq!(ids(&gold), ["priority-support"]);
    assert_eq!((gold[0].quantity, gold[0].grant.as_str()), (None, "gold"));
    assert!(perks("member", "{}").is_empty());
    assert!(perks("", "{}").is_empty());
}

#[test]
fn no_free_rides_are_granted_when_the_allowance_is_zero() {
    let p = perks("platinum", r#"{"free_rides_per_month": 0}"#);
    assert_eq!(ids(&p), ["priority-support", "free-delivery"]);
    let p = perks("platinum", r#"{"free_rides_per_month": 3}"#);
    assert_eq!(p[2].quantity, Some(3));
}

// Redemption.

fn quote_with(balance: i64, request: RedemptionRequest, config: &str) -> RedemptionAnswer {
    let mut m = at("gold");
    m.balance = balance;
    RideHailing::quote_redemption(&m, &request, &ctx_with(NOW, config)).unwrap()
}

fn quote(balance: i64, request: RedemptionRequest) -> RedemptionAnswer {
    quote_with(balance, request, "{}")
}

fn rejected(answer: RedemptionAnswer) -> String {
    answer.rejection().expect("a rejection").code.clone()
}

/// Pay SGD `minor` cents, with `points` or (none) the balance.
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
fn a_ride_voucher_costs_300_points_and_a_food_voucher_500() {
    let ride = quote(300, redeem("ride-voucher-3"));
    let q = ride.quote().unwrap();
    assert_eq!(
        (q.reward.as_str(), q.points, &q.cash),
        ("ride-voucher-3", 300, &None)
    );
    assert_eq!(
        quote(500, redeem("food-voucher-5")).quote().unwrap().points,
        500
    );
}

#[test]
fn a_voucher_needs_its_whole_price_in_the_balance() {
    assert_eq!(
        rejected(quote(299, redeem("ride-voucher-3"))),
        "insufficient-points"
    );
    assert_eq!(
        rejected(quote(499, redeem("food-voucher-5"))),
        "insufficient-points"
    );
}

#[test]
fn an_unknown_reward_is_refused() {
    assert_eq!(rejected(quote(9_999, redeem("free-car"))), "unknown-reward");
}

#[test]
fn paying_with_800_points_leaves_4_50_of_a_12_50_ride_in_cash() {
    let a = quote(1_000, pay(1_250, Some(800)));
    let q = a.quote().unwrap();
    assert_eq!(q.reward, PAY_WITH_POINTS);
    assert_eq!(q.points, 800);
    assert_eq!(q.cash, Some(Money::new(450, "SGD")));
    assert_eq!(q.description, "800 points + SGD 4.50 for SGD 12.50");
}

#[test]
fn without_a_number_the_balance_pays_as_much_as_it_can() {
    let whole = quote(5_000, pay(1_250, None));
    let q = whole.quote().unwrap();
    assert_eq!(
        (q.points, &q.cash),
        (1_250, &None),
        "only what the ride needs"
    );
    let part = quote(600, pay(1_250, None));
    let q = part.quote().unwrap();
    assert_eq!((q.points, &q.cash), (600, &Some(Money::new(650, "SGD"))));
    // Asking for more than the ride needs is capped at the ride's price.
    assert_eq!(
        quote(5_000, pay(1_250, Some(2_000)))
            .quote()
            .unwrap()
            .points,
        1_250
    );
}

#[test]
fn pay_with_points_can_be_named_as_a_reward() {
    let mut request = pay(1_250, Some(800));
    request.reward = Some(PAY_WITH_POINTS.into());
    assert_eq!(quote(1_000, request).quote().unwrap().points, 800);
}

#[test]
fn the_points_price_rounds_up_and_the_cash_covered_rounds_down() {
    // 150 points to the dollar: one cent costs 1.5 points, so 2.
    let config = r#"{"points_per_currency_unit": 150}"#;
    assert_eq!(
        quote_with(10, pay(1, None), config).quote().unwrap().points,
        2
    );
    // 100 points cover 66 cents (66.67 down), which cost 99 points (99 exactly).
    let part = quote_with(1_000, pay(1_000, Some(100)), config);
    let q = part.quote().unwrap();
    assert_eq!((q.points, &q.cash), (99, &Some(Money::new(934, "SGD"))));
    // One point covers nothing.
    assert_eq!(
        rejected(quote_with(10, pay(1_000, Some(1)), config)),
        "invalid-request"
    );
}

#[test]
fn paying_in_yen_prices_whole_yen() {
    let mut m = at("gold");
    m.balance = 200_000;
    let mut c = ctx(NOW);
    c.currency = "JPY".into();
    let mut request = pay(0, None);
    request.amount = Some(Money::new(1_000, "JPY"));
    let a = RideHailing::quote_redemption(&m, &request, &c).unwrap();
    assert_eq!(a.quote().unwrap().points, 100_000);
}

#[test]
fn paying_with_more_points_than_the_balance_is_refused() {
    assert_eq!(
        rejected(quote(100, pay(1_250, Some(800)))),
        "insufficient-points"
    );
    assert_eq!(rejected(quote(0, pay(1_250, None))), "insufficient-points");
}

#[test]
fn malformed_redemptions_are_invalid_requests() {
    let nothing = RedemptionRequest {
        reward: None,
        amount: None,
        points: None,
        partner: None,
        attributes: vec![],
    };
    assert_eq!(rejected(quote(1_000, nothing)), "invalid-request");
    assert_eq!(rejected(quote(1_000, pay(0, None))), "invalid-request");
    assert_eq!(rejected(quote(1_000, pay(-500, None))), "invalid-request");
    assert_eq!(
        rejected(quote(1_000, pay(1_250, Some(0)))),
        "invalid-request"
    );
    assert_eq!(
        rejected(quote(1_000, pay(1_250, Some(-5)))),
        "invalid-request"
    );
    let mut both = pay(1_250, None);
    both.reward = Some("ride-voucher-3".into());
    assert_eq!(rejected(quote(1_000, both)), "invalid-request");
}

#[test]
fn paying_in_another_currency_is_refused() {
    let mut request = pay(1_250, None);
    request.amount = Some(Money::new(1_250, "USD"));
    assert_eq!(rejected(quote(5_000, request)), "unsupported-currency");
}

// Partners.

fn offers(partner: &str) -> Vec<Offer> {
    RideHailing::offers(&at("member"), partner, &ctx(NOW)).unwrap()
}

#[test]
fn cinema_city_doubles_points_and_fuel_co_adds_bonus_points() {
    let cinema = offers("cinema-city");
    assert_eq!(cinema.len(), 1);
    assert_eq!(
        (
            cinema[0].id.as_str(),
            cinema[0].partner.as_str(),
            &cinema[0].kind
        ),
        (
            "cinema-city-offer",
            "cinema-city",
            &OfferKind::EarnMultiplier(200)
        )
    );
    assert_eq!(offers("fuel-co")[0].kind, OfferKind::BonusPoints(50));
}

#[test]
fn an_unknown_partner_has_no_offers() {
    assert!(offers("nobody").is_empty());
}

fn at_partner(tier: &str, partner: &str, minor: i64, payment: PaymentMethod) -> Outcome {
    let mut e = event("p-1", EventKind::PartnerPurchase, NOW);
    e.partner = Some(partner.into());
    e.amount = Some(Money::new(minor, "SGD"));
    e.payment = Some(payment);
    RideHailing::on_event(&at(tier), &e, &ctx(NOW)).unwrap()
}

#[test]
fn a_20_dollar_cinema_ticket_by_wallet_at_gold_earns_180_points() {
    // 20 x 4.5 x 200 %.
    let out = at_partner("gold", "cinema-city", 2_000, PaymentMethod::Wallet);
    assert_eq!(out.points(), 180);
    assert!(out.credits[0].qualifying);
}

#[test]
fn a_50_dollar_fill_up_by_card_earns_50_points_and_a_50_point_bonus() {
    let out = at_partner("member", "fuel-co", 5_000, PaymentMethod::Card);
    assert_eq!(out.points(), 100);
    assert_eq!(bonus(&out), 50, "the bonus does not qualify");
}

#[test]
fn purchases_at_unlisted_partners_earn_nothing() {
    assert!(
        at_partner("gold", "nobody", 5_000, PaymentMethod::Wallet)
            .credits
            .is_empty()
    );
}

// Joining.

#[test]
fn joining_starts_at_member_with_no_bonus_by_default() {
    let e = RideHailing::on_enroll(&member("m"), &ctx(NOW)).unwrap();
    assert_eq!(e.initial_tier.as_deref(), Some("member"));
    assert!(e.outcome.credits.is_empty());
}

#[test]
fn a_configured_welcome_bonus_is_credited_on_joining() {
    let e =
        RideHailing::on_enroll(&member("m"), &ctx_with(NOW, r#"{"welcome_bonus": 100}"#)).unwrap();
    assert_eq!(e.outcome.points(), 100);
    assert!(!e.outcome.credits[0].qualifying);
}

// Config and describe.

#[test]
fn the_default_config_text_is_the_default_config() {
    let parsed: Config = serde_json::from_str(DEFAULT_CONFIG).unwrap();
    assert_eq!(parsed, Config::default());
    let earn: EarnConfig = serde_json::from_str(DEFAULT_CONFIG).unwrap();
    assert_eq!(earn, EarnConfig::default());
    assert_eq!(Config::default().earn(), EarnConfig::default());
    // Every field is spelled out in the text, not left to `#[serde(default)]`.
    let text: Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
    assert_eq!(text, serde_json::to_value(Config::default()).unwrap());
}

#[test]
fn the_schema_describes_every_config_field_with_its_default() {
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    let props = schema["properties"].as_object().unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let fields = defaults.as_object().unwrap();
    for (field, value) in fields {
        let prop = props
            .get(field)
            .unwrap_or_else(|| panic!("schema lacks {field}"));
        assert!(
            prop["description"].is_string(),
            "{field} has no description"
        );
        assert_eq!(&prop["default"], value, "{field}'s default");
    }
    assert_eq!(props.len(), fields.len());
}

#[test]
fn a_config_that_cannot_be_used_is_an_invalid_config_error() {
    for config in [
        r#"{"welcome_bonus": "ten"}"#,
        r#"{"welcom_bonus": 10}"#,
        r#"{"points_per_currency_unit": 0}"#,
        r#"{"thresholds": {"gold": 3000, "platinum": 3000}}"#,
        r#"{"thresholds": {"gold": 0, "platinum": 3000}}"#,
        r#"{"welcome_bonus": -10}"#,
        r#"{"expiry_months": 121}"#,
        r#"{"rewards": [{"id": "pay-with-points", "name": "x", "points": 1}]}"#,
        r#"{"rewards": [{"id": "Free Ride", "name": "x", "points": 1}]}"#,
        r#"{"rewards": [{"id": "free", "name": "x", "points": 0}]}"#,
        r#"{"partners": [{"id": "p", "title": "t", "perk": {"multiplier": 50}}]}"#,
        r#"{"partners": [{"id": "p", "title": "t", "perk": {"bonus": 0}}]}"#,
        r#"{"partners": [{"id": "p", "title": "", "perk": {"bonus": 5}}]}"#,
    ] {
        assert_eq!(error_code(config), "invalid-config", "{config}");
    }
}

#[test]
fn every_hook_reports_a_broken_config() {
    let c = ctx_with(NOW, r#"{"points_per_currency_unit": 0}"#);
    let m = at("platinum");
    assert_eq!(
        RideHailing::on_enroll(&m, &c).unwrap_err().code,
        "invalid-config"
    );
    assert_eq!(
        RideHailing::perks(&m, &c).unwrap_err().code,
        "invalid-config"
    );
    assert_eq!(
        RideHailing::offers(&m, "fuel-co", &c).unwrap_err().code,
        "invalid-config"
    );
    assert_eq!(
        RideHailing::quote_redemption(&m, &pay(1_000, None), &c)
            .unwrap_err()
            .code,
        "invalid-config"
    );
}

#[test]
fn describe_lists_tiers_lowest_first_every_perk_and_the_catalogue() {
    let info = RideHailing::describe();
    let tiers: Vec<_> = info.tiers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(tiers, ["member", "gold", "platinum"]);
    let rewards: Vec<_> = info
        .rewards
        .iter()
        .map(|r| (r.id.as_str(), r.points))
        .collect();
    assert_eq!(
        rewards,
        [
            ("ride-voucher-3", Some(300)),
            ("food-voucher-5", Some(500)),
            (PAY_WITH_POINTS, None)
        ]
    );
    assert_eq!(info.config_schema, CONFIG_SCHEMA);
    assert_eq!(info.default_config, DEFAULT_CONFIG);
    let declared: Vec<_> = info.perks.iter().map(|p| p.id.as_str()).collect();
    for perk in perks("platinum", "{}").iter().chain(&perks("gold", "{}")) {
        assert!(
            declared.contains(&perk.id.as_str()),
            "{} undeclared",
            perk.id
        );
    }
    assert_eq!(declared.len(), 3);
}
