//! Points for money spent and for joining: tiered cashback paid as points, promotions,
//! the Coffee Corner multiplier, and the sign-up and referral bonuses.

use std::fmt::Write as _;

use loyalty_sdk::money::group_thousands as thousands;
use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::offers::COFFEE_CORNER;
use crate::status::Tier;

/// The error code for an amount in a currency other than the programme's.
pub const UNSUPPORTED_CURRENCY: &str = "unsupported-currency";
/// The error code for an event the programme cannot make sense of.
pub const INVALID_EVENT: &str = "invalid-event";

const DAY: i64 = 86_400;

/// Bronze, with the sign-up bonus and, for a member who joined with a referral, the
/// referee bonus. Neither counts towards tiers: status is bought, not given.
pub fn on_enroll(member: &Member, config: &Config) -> Enrolment {
    let mut outcome = Outcome::new().credit(Credit::new(
        config.signup_bonus.into(),
        format!(
            "{} points: welcome to the club",
            thousands(config.signup_bonus.into())
        ),
    ));
    if let Some(referrer) = &member.referred_by {
        outcome = outcome.credit(Credit::new(
            config.referee_bonus.into(),
            format!(
                "{} points: joined with the referral of member {referrer}",
                thousands(config.referee_bonus.into())
            ),
        ));
    }
    Enrolment::new().tier(Tier::Bronze.id()).outcome(outcome)
}

/// A store or web-shop purchase: the tier's cashback (times the best promotion at
/// the time of the purchase) as points, pending for the return window, qualifying.
pub fn purchase(
    member: &Member,
    event: &Event,
    ctx: &Context,
    config: &Config,
) -> Result<Outcome, PluginError> {
    let Some(amount) = &event.amount else {
        // Nothing was paid, so there is nothing to pay cashback on.
        return Ok(Outcome::new());
    };
    check_amount(amount, ctx)?;
    let tier = Tier::from_id(&member.tier);
    let cashback_bp = config.cashback_basis_points.get(tier);
    let promotion = config.promotion_at(event.occurred_at);
    let mut rate = Rate::basis_points(cashback_bp.into());
    if let Some(p) = promotion {
        // Composed exactly, so a promotion's points are rounded once, not twice.
        rate = rate.times(Rate::percent(p.multiplier_percent.into()));
    }
    let points = cashback_points(amount, rate, config);
    if points == 0 {
        return Ok(Outcome::new());
    }
    let mut reason = format!(
        "{} points: {}% cashback on {} at {}",
        thousands(points),
        hundredths(cashback_bp),
        amount.display(),
        tier.name()
    );
    if let Some(p) = promotion {
        // Writing to a String cannot fail.
        let _ = write!(reason, ", x{} {}", hundredths(p.multiplier_percent), p.name);
    }
    let pending_until = ctx.now + i64::from(config.return_window_days) * DAY;
    Ok(Outcome::new().credit(
        Credit::new(points, reason)
            .qualifying()
            .pending_until(pending_until),
    ))
}

/// A purchase at a partner: Coffee Corner pays the tier's cashback times its offer's
/// multiplier, available at once (returns are the partner's business) and not
/// qualifying (tiers measure spend in our own stores). Other partners earn nothing.
pub fn partner_purchase(
    member: &Member,
    event: &Event,
    ctx: &Context,
    config: &Config,
) -> Result<Outcome, PluginError> {
    let (Some(COFFEE_CORNER), Some(amount)) = (event.partner.as_deref(), &event.amount) else {
        return Ok(Outcome::new());
    };
    check_amount(amount, ctx)?;
    let tier = Tier::from_id(&member.tier);
    let cashback_bp = config.cashback_basis_points.get(tier);
    let multiplier = config.coffee_corner_multiplier_percent;
    let rate = Rate::basis_points(cashback_bp.into()).times(Rate::percent(multiplier.into()));
    let points = cashback_points(amount, rate, config);
    Ok(Outcome::new().credit(Credit::new(
        points,
        format!(
            "{} points: {}% cashback x{} at Coffee Corner",
            thousands(points),
            hundredths(cashback_bp),
            hundredths(multiplier)
        ),
    )))
}

/// Someone the member referred joined: the referrer bonus, naming who.
pub fn referral(referee: &str, config: &Config) -> Outcome {
    Outcome::new().credit(Credit::new(
        config.referrer_bonus.into(),
        format!(
            "{} points: your referral {referee} joined the club",
            thousands(config.referrer_bonus.into())
        ),
    ))
}

/// `amount × rate` in money, rounded down, then in whole points at the point's value
/// (rounded down again: a point is only paid for cashback that covers all of it).
fn cashback_points(amount: &Money, rate: Rate, config: &Config) -> i64 {
    let cashback = amount.times(rate, Rounding::Down);
    cashback.minor.div_euclid(config.point_value_minor.into())
}

fn check_amount(amount: &Money, ctx: &Context) -> Result<(), PluginError> {
    if amount.currency != ctx.currency {
        return Err(PluginError::new(
            UNSUPPORTED_CURRENCY,
            format!(
                "amounts must be in {}, not {}",
                ctx.currency, amount.currency
            ),
        ));
    }
    if amount.minor < 0 {
        return Err(PluginError::new(
            INVALID_EVENT,
            format!(
                "a purchase amount cannot be negative ({}); send a refund",
                amount.display()
            ),
        ));
    }
    Ok(())
}

/// A number of hundredths as a short decimal: 200 is "2", 250 "2.5", 125 "1.25".
pub fn hundredths(n: u32) -> String {
    let (whole, frac) = (n / 100, n % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, ctx_with, day, member_at};
    use loyalty_sdk::ReferralDetails;
    use loyalty_sdk::testing::{event, member, purchase};

    fn now() -> Timestamp {
        day(2026, 9, 21) + 13 * 3_600
    }

    fn earn_at(tier: &str, minor: i64, c: &Context) -> i64 {
        RetailClub::on_event(&member_at(tier), &purchase("p-1", minor, "EUR", c.now), c)
            .unwrap()
            .points()
    }

    fn earn(tier: &str, minor: i64) -> i64 {
        earn_at(tier, minor, &ctx(now()))
    }

    #[test]
    fn a_50_euro_purchase_at_silver_earns_100_points() {
        assert_eq!(earn("silver", 5_000), 100);
    }

    #[test]
    fn bronze_earns_1_percent_and_gold_3_percent() {
        assert_eq!(earn("bronze", 5_000), 50);
        assert_eq!(earn("gold", 5_000), 150);
        assert_eq!(earn("", 5_000), 50, "before the first tier decision");
    }

    #[test]
    fn a_19_99_euro_purchase_at_bronze_earns_19_points() {
        // 1 % of 19.99 is 19.99 cents, rounded down.
        assert_eq!(earn("bronze", 1_999), 19);
    }

    #[test]
    fn a_purchase_under_one_euro_at_bronze_earns_nothing() {
        let out = RetailClub::on_event(
            &member_at("bronze"),
            &purchase("p", 99, "EUR", now()),
            &ctx(now()),
        )
        .unwrap();
        assert!(out.credits.is_empty());
    }

    #[test]
    fn the_reason_names_the_rate_the_amount_and_the_tier() {
        let out = RetailClub::on_event(
            &member_at("silver"),
            &purchase("p", 123_456, "EUR", now()),
            &ctx(now()),
        )
        .unwrap();
        assert_eq!(
            out.credits[0].reason,
            "2,469 points: 2% cashback on EUR 1234.56 at Silver"
        );
    }

    #[test]
    fn purchase_points_are_pending_for_30_days_and_qualify() {
        let out = RetailClub::on_event(
            &member_at("silver"),
            &purchase("p", 5_000, "EUR", now()),
            &ctx(now()),
        )
        .unwrap();
        let c = &out.credits[0];
        assert_eq!(c.pending_until, Some(now() + 30 * DAY));
        assert!(c.qualifying);
        assert_eq!(c.expires_at, None);
    }

    #[test]
    fn the_return_window_comes_from_the_config() {
        let c = ctx_with(now(), r#"{"return_window_days": 14}"#);
        let out = RetailClub::on_event(&member_at("gold"), &purchase("p", 5_000, "EUR", now()), &c)
            .unwrap();
        assert_eq!(out.credits[0].pending_until, Some(now() + 14 * DAY));
    }

    #[test]
    fn a_point_worth_5_cents_makes_a_50_euro_purchase_at_silver_earn_20_points() {
        let c = ctx_with(now(), r#"{"point_value_minor": 5}"#);
        assert_eq!(earn_at("silver", 5_000, &c), 20);
        // 2 % of 49.99 is 99.98 cents: 99 cents, 19 whole points of 5 cents.
        assert_eq!(earn_at("silver", 4_999, &c), 19);
    }

    #[test]
    fn a_purchase_in_another_currency_is_refused() {
        let err = RetailClub::on_event(
            &member_at("gold"),
            &purchase("p", 5_000, "USD", now()),
            &ctx(now()),
        )
        .unwrap_err();
        assert_eq!(err.code, UNSUPPORTED_CURRENCY);
    }

    #[test]
    fn a_negative_purchase_is_an_invalid_event() {
        let err = RetailClub::on_event(
            &member_at("gold"),
            &purchase("p", -5_000, "EUR", now()),
            &ctx(now()),
        )
        .unwrap_err();
        assert_eq!(err.code, INVALID_EVENT);
    }

    #[test]
    fn a_purchase_without_an_amount_earns_nothing() {
        let mut p = purchase("p", 5_000, "EUR", now());
        p.amount = None;
        let out = RetailClub::on_event(&member_at("gold"), &p, &ctx(now())).unwrap();
        assert_eq!(out, Outcome::new());
    }

    fn black_friday(multiplier: u32) -> String {
        format!(
            r#"{{"promotions": [{{"name": "Black Friday", "starts": {}, "ends": {}, "multiplier_percent": {multiplier}}}]}}"#,
            day(2026, 11, 27),
            day(2026, 11, 28)
        )
    }

    #[test]
    fn black_friday_doubles_a_50_euro_purchase_at_silver_to_200_points() {
        let config = black_friday(200);
        let during = ctx_with(day(2026, 11, 27) + 10 * 3_600, &config);
        assert_eq!(earn_at("silver", 5_000, &during), 200);
        let out = RetailClub::on_event(
            &member_at("silver"),
            &purchase("p", 5_000, "EUR", during.now),
            &during,
        )
        .unwrap();
        assert_eq!(
            out.credits[0].reason,
            "200 points: 2% cashback on EUR 50.00 at Silver, x2 Black Friday"
        );
    }

    #[test]
    fn a_promotion_includes_its_first_second_and_excludes_its_end() {
        let config = black_friday(200);
        let first = ctx_with(day(2026, 11, 27), &config);
        let last = ctx_with(day(2026, 11, 28) - 1, &config);
        let end = ctx_with(day(2026, 11, 28), &config);
        let before = ctx_with(day(2026, 11, 27) - 1, &config);
        assert_eq!(earn_at("silver", 5_000, &first), 200);
        assert_eq!(earn_at("silver", 5_000, &last), 200);
        assert_eq!(earn_at("silver", 5_000, &end), 100, "the end is excluded");
        assert_eq!(earn_at("silver", 5_000, &before), 100);
    }

    #[test]
    fn a_promotion_is_rounded_once_on_the_exact_product() {
        // 1 % x 2 of 19.99 is 39.98 cents: 39 points, not 2 x 19 = 38.
        let during = ctx_with(day(2026, 11, 27) + 1, &black_friday(200));
        assert_eq!(earn_at("bronze", 1_999, &during), 39);
        // 1 % x 1.5 of 19.99 is 29.985 cents: 29 points.
        let during = ctx_with(day(2026, 11, 27) + 1, &black_friday(150));
        assert_eq!(earn_at("bronze", 1_999, &during), 29);
    }

    #[test]
    fn overlapping_promotions_take_the_highest_multiplier_not_the_product() {
        let config = format!(
            r#"{{"promotions": [
                {{"name": "Weekend", "starts": {a}, "ends": {b}, "multiplier_percent": 200}},
                {{"name": "Anniversary", "starts": {a}, "ends": {b}, "multiplier_percent": 300}},
                {{"name": "Late", "starts": {a}, "ends": {b}, "multiplier_percent": 150}}
            ]}}"#,
            a = now() - DAY,
            b = now() + DAY
        );
        assert_eq!(earn_at("bronze", 10_000, &ctx_with(now(), &config)), 300);
    }

    #[test]
    fn joining_gives_200_points_that_do_not_qualify_and_starts_at_bronze() {
        let e = RetailClub::on_enroll(&member("m-2"), &ctx(now())).unwrap();
        assert_eq!(e.initial_tier.as_deref(), Some("bronze"));
        assert_eq!(e.outcome.points(), 200);
        assert!(e.outcome.credits.iter().all(|c| !c.qualifying));
    }

    #[test]
    fn joining_with_a_referral_adds_500_points_naming_the_referrer() {
        let mut m = member("m-2");
        m.referred_by = Some("m-1".into());
        let e = RetailClub::on_enroll(&m, &ctx(now())).unwrap();
        assert_eq!(e.outcome.points(), 700);
        assert_eq!(
            e.outcome.credits[1].reason,
            "500 points: joined with the referral of member m-1"
        );
        assert!(!e.outcome.credits[1].qualifying);
    }

    #[test]
    fn the_referrer_gets_500_points_naming_the_referee() {
        let e = event(
            "ref-1",
            EventKind::Referral(ReferralDetails {
                referee: "m-2".into(),
            }),
            now(),
        );
        let out = RetailClub::on_event(&member_at("bronze"), &e, &ctx(now())).unwrap();
        assert_eq!(out.points(), 500);
        assert_eq!(
            out.credits[0].reason,
            "500 points: your referral m-2 joined the club"
        );
    }

    fn partner_spend(partner: &str, minor: i64) -> Event {
        let mut e = event("pp-1", EventKind::PartnerPurchase, now());
        e.partner = Some(partner.into());
        e.amount = Some(Money::new(minor, "EUR"));
        e
    }

    #[test]
    fn coffee_corner_spend_earns_double_cashback_available_at_once() {
        let out = RetailClub::on_event(
            &member_at("silver"),
            &partner_spend("coffee-corner", 1_000),
            &ctx(now()),
        )
        .unwrap();
        // 2 % x 2 of 10.00 is 40 cents.
        assert_eq!(out.points(), 40);
        assert_eq!(out.credits[0].pending_until, None);
        assert!(!out.credits[0].qualifying);
    }

    #[test]
    fn spend_at_other_partners_earns_nothing() {
        let out = RetailClub::on_event(
            &member_at("gold"),
            &partner_spend("cinema-city", 1_000),
            &ctx(now()),
        )
        .unwrap();
        assert!(out.credits.is_empty());
    }

    #[test]
    fn events_without_a_rule_earn_nothing() {
        for kind in [EventKind::CheckIn, EventKind::Share] {
            let out =
                RetailClub::on_event(&member_at("gold"), &event("e", kind, now()), &ctx(now()))
                    .unwrap();
            assert_eq!(out, Outcome::new());
        }
    }

    #[test]
    fn a_broken_config_fails_the_purchase_with_invalid_config() {
        let c = ctx_with(now(), r#"{"cashback_basis_points": {"gold": "3%"}}"#);
        let err = RetailClub::on_event(&member_at("gold"), &purchase("p", 5_000, "EUR", now()), &c)
            .unwrap_err();
        assert_eq!(err.code, "invalid-config");
    }

    #[test]
    fn hundredths_print_as_short_decimals() {
        assert_eq!(hundredths(200), "2");
        assert_eq!(hundredths(250), "2.5");
        assert_eq!(hundredths(125), "1.25");
        assert_eq!(hundredths(5), "0.05");
    }
}
