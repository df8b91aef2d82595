//! The retail club's rules, with concrete numbers.

use super::*;
use loyalty_sdk::testing::{context, event, member, purchase, redeem};
use loyalty_sdk::{Date, Money, ReferralDetails};

/// 2026-09-21T13:46:40Z.
const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

fn ctx_with(now: i64, config: &str) -> Context {
    let mut c = context(now, config);
    c.currency = "EUR".into();
    c
}

fn ctx(now: i64) -> Context {
    ctx_with(now, "{}")
}

fn at(tier: &str) -> Member {
    let mut m = member("m-1");
    m.tier = tier.into();
    m
}

fn points(tier: &str, minor: i64, c: &Context) -> i64 {
    RetailClub::on_event(&at(tier), &purchase("p-1", minor, "EUR", c.now), c)
        .unwrap()
        .points()
}

#[test]
fn cashback_is_one_two_or_three_percent_by_tier() {
    assert_eq!(points("bronze", 5_000, &ctx(NOW)), 50);
    assert_eq!(points("silver", 5_000, &ctx(NOW)), 100);
    assert_eq!(points("gold", 5_000, &ctx(NOW)), 150);
    // EUR 19.99 at 1 % is 19.99 cents: 19 points.
    assert_eq!(points("bronze", 1_999, &ctx(NOW)), 19);
}

#[test]
fn purchase_points_are_pending_for_the_return_window_and_qualify() {
    let out =
        RetailClub::on_event(&at("silver"), &purchase("p", 5_000, "EUR", NOW), &ctx(NOW)).unwrap();
    let c = &out.credits[0];
    assert_eq!(c.pending_until, Some(NOW + 30 * DAY));
    assert!(c.qualifying);
    assert_eq!(c.expires_at, None);
}

#[test]
fn another_currency_is_refused() {
    let err = RetailClub::on_event(&at("gold"), &purchase("p", 5_000, "USD", NOW), &ctx(NOW))
        .unwrap_err();
    assert_eq!(err.code, "unsupported-currency");
}

fn black_friday(multiplier: u32) -> String {
    format!(
        r#"{{"promotions": [{{"name": "Black Friday", "starts": {}, "ends": {}, "multiplier_percent": {multiplier}}}]}}"#,
        NOW - DAY,
        NOW + DAY
    )
}

#[test]
fn double_points_days_double_the_cashback_inside_their_window_only() {
    let config = black_friday(200);
    assert_eq!(points("silver", 5_000, &ctx_with(NOW, &config)), 200);
    assert_eq!(
        points("silver", 5_000, &ctx_with(NOW + DAY - 1, &config)),
        200
    );
    assert_eq!(
        points("silver", 5_000, &ctx_with(NOW + DAY, &config)),
        100,
        "the end is excluded"
    );
    assert_eq!(
        points("silver", 5_000, &ctx_with(NOW - DAY - 1, &config)),
        100
    );
}

#[test]
fn overlapping_promotions_take_the_highest_multiplier() {
    let config = format!(
        r#"{{"promotions": [
            {{"name": "Weekend", "starts": {a}, "ends": {b}, "multiplier_percent": 200}},
            {{"name": "Anniversary", "starts": {a}, "ends": {b}, "multiplier_percent": 300}}
        ]}}"#,
        a = NOW - DAY,
        b = NOW + DAY
    );
    assert_eq!(points("bronze", 10_000, &ctx_with(NOW, &config)), 300);
}

#[test]
fn joining_gives_the_signup_bonus_and_a_referral_bonus_when_referred() {
    let plain = RetailClub::on_enroll(&member("m-2"), &ctx(NOW)).unwrap();
    assert_eq!(plain.outcome.points(), 200);
    assert_eq!(plain.initial_tier.as_deref(), Some("bronze"));
    let mut referred = member("m-2");
    referred.referred_by = Some("m-1".into());
    assert_eq!(
        RetailClub::on_enroll(&referred, &ctx(NOW))
            .unwrap()
            .outcome
            .points(),
        700
    );
}

#[test]
fn the_referrer_is_rewarded_when_the_referral_joins() {
    let e = event(
        "ref-1",
        EventKind::Referral(ReferralDetails {
            referee: "m-2".into(),
        }),
        NOW,
    );
    let out = RetailClub::on_event(&at("bronze"), &e, &ctx(NOW)).unwrap();
    assert_eq!(out.points(), 500);
    assert!(out.credits[0].reason.contains("m-2"));
}

fn survey(m: &mut Member, score: u8, at: i64) -> Result<Outcome, PluginError> {
    let out = RetailClub::on_event(m, &event("s", EventKind::Survey(score), at), &ctx(at))?;
    if let Some(state) = &out.state {
        m.state = state.clone();
    }
    Ok(out)
}

fn annotation<'a>(out: &'a Outcome, key: &str) -> Option<&'a str> {
    out.annotations
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

#[test]
fn a_survey_is_rewarded_once_a_month_and_its_score_always_recorded() {
    let mut m = at("bronze");
    let first = survey(&mut m, 9, NOW).unwrap();
    assert_eq!(first.points(), 50);
    assert_eq!(annotation(&first, "nps"), Some("9"));
    assert_eq!(annotation(&first, "nps-category"), Some("promoter"));
    let again = survey(&mut m, 6, NOW + DAY).unwrap();
    assert_eq!(again.points(), 0, "once a month");
    assert_eq!(annotation(&again, "nps-category"), Some("detractor"));
    let next_month = survey(&mut m, 7, NOW + 15 * DAY).unwrap();
    assert_eq!(next_month.points(), 50);
    assert_eq!(annotation(&next_month, "nps-category"), Some("passive"));
}

#[test]
fn a_survey_score_above_ten_is_an_invalid_event() {
    let mut m = at("bronze");
    assert_eq!(survey(&mut m, 11, NOW).unwrap_err().code, "invalid-event");
}

#[test]
fn nps_categories_follow_the_standard_bands() {
    assert_eq!(nps_category(0), "detractor");
    assert_eq!(nps_category(6), "detractor");
    assert_eq!(nps_category(7), "passive");
    assert_eq!(nps_category(8), "passive");
    assert_eq!(nps_category(9), "promoter");
    assert_eq!(nps_category(10), "promoter");
}

#[test]
fn five_reviews_a_month_are_rewarded() {
    let mut m = at("bronze");
    let mut total = 0;
    for i in 0..7 {
        let out = RetailClub::on_event(&m, &event("r", EventKind::Review, NOW + i), &ctx(NOW + i))
            .unwrap();
        if let Some(s) = &out.state {
            m.state = s.clone();
        }
        total += out.points();
    }
    assert_eq!(total, 5 * 25);
}

fn tier(this_year: i64, last_year: i64) -> TierDecision {
    let mut m = member("m-1");
    m.stats.calendar_year.spend = this_year;
    m.stats.previous_calendar_year.spend = last_year;
    RetailClub::evaluate_tier(&m, &ctx(NOW)).unwrap()
}

#[test]
fn tiers_come_from_calendar_year_spend_and_last_years_tier_is_kept() {
    assert_eq!(tier(49_999, 0).tier, "bronze");
    assert_eq!(tier(50_000, 0).tier, "silver");
    assert_eq!(tier(150_000, 0).tier, "gold");
    assert_eq!(tier(10_000, 160_000).tier, "gold");
    let p = tier(60_000, 0).progress.unwrap();
    assert_eq!(
        (p.next_tier.as_str(), p.current, p.target),
        ("gold", 60_000, 150_000)
    );
    assert!(tier(200_000, 0).progress.is_none());
}

#[test]
fn a_birthday_voucher_in_the_birthday_month_and_free_shipping_for_gold() {
    let mut m = at("gold");
    m.birthday = Some(Date {
        year: 1990,
        month: 9,
        day: 30,
    });
    let perks = RetailClub::perks(&m, &ctx(NOW)).unwrap();
    let ids: Vec<_> = perks.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["birthday-voucher", "free-shipping"]);
    assert_eq!(perks[0].grant, "2026");
    assert_eq!(perks[0].quantity, Some(1));
    m.birthday = Some(Date {
        year: 1990,
        month: 10,
        day: 1,
    });
    let ids: Vec<_> = RetailClub::perks(&m, &ctx(NOW))
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["free-shipping"]);
}

fn quote(m: &Member, request: RedemptionRequest) -> RedemptionAnswer {
    RetailClub::quote_redemption(m, &request, &ctx(NOW)).unwrap()
}

fn pay(minor: i64, points: Option<i64>) -> RedemptionRequest {
    RedemptionRequest {
        reward: None,
        amount: Some(Money::new(minor, "EUR")),
        points,
        partner: None,
        attributes: vec![],
    }
}

#[test]
fn paying_with_points_uses_them_as_cents() {
    let mut m = at("silver");
    m.balance = 2_000;
    let a = quote(&m, pay(4_999, Some(1_500)));
    let q = a.quote().unwrap();
    assert_eq!(
        (q.points, q.cash.clone()),
        (1_500, Some(Money::new(3_499, "EUR")))
    );
    let all = quote(&m, pay(1_200, None));
    assert_eq!(
        (
            all.quote().unwrap().points,
            all.quote().unwrap().cash.clone()
        ),
        (1_200, None)
    );
    assert_eq!(
        quote(&m, pay(4_999, Some(400))).rejection().unwrap().code,
        "below-minimum"
    );
    assert_eq!(
        quote(&m, pay(4_999, Some(2_500))).rejection().unwrap().code,
        "insufficient-points"
    );
}

#[test]
fn a_member_in_debt_cannot_redeem() {
    let mut m = at("silver");
    m.balance = 5_000;
    m.debt = 120;
    assert_eq!(
        quote(&m, redeem("voucher-10")).rejection().unwrap().code,
        "outstanding-debt"
    );
    m.debt = 0;
    assert_eq!(
        quote(&m, redeem("voucher-10")).quote().unwrap().points,
        1_000
    );
    assert_eq!(
        quote(&m, redeem("yacht")).rejection().unwrap().code,
        "unknown-reward"
    );
}

#[test]
fn partners_have_their_offers() {
    let offers = |p| RetailClub::offers(&at("bronze"), p, &ctx(NOW)).unwrap();
    assert_eq!(
        offers("coffee-corner")[0].kind,
        OfferKind::EarnMultiplier(200)
    );
    assert_eq!(
        offers("cinema-city")[0].kind,
        OfferKind::DiscountPercent(10)
    );
    assert!(offers("nobody").is_empty());
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
