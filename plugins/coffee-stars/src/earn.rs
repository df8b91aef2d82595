//! Earning stars: the welcome bonus, purchases at the coffee shop, and purchases at
//! the linked partner.

use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::offers::is_linked;
use crate::tier::{Tier, green_expiry};

/// The error code for an amount in a currency other than the programme's.
pub const UNSUPPORTED_CURRENCY: &str = "unsupported-currency";

/// A member joined: Green, with the welcome stars, which do not count towards status
/// and expire like Green stars.
pub fn on_enroll(ctx: &Context) -> Result<Enrolment, PluginError> {
    let config = Config::from_context(ctx)?;
    let welcome = Credit::new(i64::from(config.welcome_stars), "Welcome stars")
        .expires_at(green_expiry(ctx.now, &config));
    Ok(Enrolment::new().tier(Tier::Green.id()).credit(welcome))
}

/// Stars for one event: purchases and linked-partner purchases earn, everything else
/// (refunds included: the host reverses a refunded purchase's stars itself) earns none.
pub fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
    let config = Config::from_context(ctx)?;
    match event.kind {
        EventKind::Purchase => purchase(member, event, ctx, &config),
        EventKind::PartnerPurchase => partner_purchase(member, event, ctx, &config),
        _ => Ok(Outcome::new()),
    }
}

/// The base rate by payment method times the tier multiplier, applied to the exact
/// amount and rounded down once, so cents count towards the last star: $9.99 by card
/// at Gold is 9.99 x 1.2 = 11.988, 11 stars.
fn purchase(
    member: &Member,
    event: &Event,
    ctx: &Context,
    config: &Config,
) -> Result<Outcome, PluginError> {
    let Some(amount) = spend(event, ctx)? else {
        return Ok(Outcome::new());
    };
    let (base, what) = match event.payment {
        Some(PaymentMethod::StoredValue) => {
            (config.stored_value_stars_per_unit, "Stored-value purchase")
        }
        // Stars spent on a purchase do not earn stars again.
        Some(PaymentMethod::Points) => return Ok(Outcome::new()),
        _ => (config.stars_per_unit, "Purchase"),
    };
    let tier = Tier::of(member);
    let rate = Rate::whole(base.into()).times(tier.multiplier(config));
    let stars = amount.earn(rate, Rounding::Down);
    if stars <= 0 {
        return Ok(Outcome::new());
    }
    let mut credit = Credit::new(stars, format!("{what} at {}", tier.name())).qualifying();
    if let Some(at) = tier.expiry(ctx.now, config) {
        credit = credit.expires_at(at);
    }
    Ok(Outcome::new().credit(credit))
}

/// Linked members earn `partner_multiplier_percent` of the base rate on partner spend.
/// Partner stars buy rewards, not status, and expire by the member's tier as usual.
fn partner_purchase(
    member: &Member,
    event: &Event,
    ctx: &Context,
    config: &Config,
) -> Result<Outcome, PluginError> {
    let partner = config.partner.as_str();
    if partner.is_empty()
        || event.partner.as_deref() != Some(partner)
        || !is_linked(member, partner)
    {
        return Ok(Outcome::new());
    }
    let Some(amount) = spend(event, ctx)? else {
        return Ok(Outcome::new());
    };
    let rate = Rate::whole(config.stars_per_unit.into())
        .times(Rate::percent(config.partner_multiplier_percent.into()));
    let stars = amount.earn(rate, Rounding::Down);
    if stars <= 0 {
        return Ok(Outcome::new());
    }
    let mut credit = Credit::new(stars, format!("Purchase at {partner}, linked account"));
    if let Some(at) = Tier::of(member).expiry(ctx.now, config) {
        credit = credit.expires_at(at);
    }
    Ok(Outcome::new().credit(credit))
}

/// The event's positive amount in the programme currency; `None` when there is
/// nothing to earn on, an error when the currency is not the programme's (stars per
/// dollar on an amount in yen would be off by a factor of a hundred).
fn spend<'e>(event: &'e Event, ctx: &Context) -> Result<Option<&'e Money>, PluginError> {
    let Some(amount) = &event.amount else {
        return Ok(None);
    };
    if amount.currency != ctx.currency {
        return Err(PluginError::new(
            UNSUPPORTED_CURRENCY,
            format!(
                "the event is in {}, the programme earns in {}",
                amount.currency, ctx.currency
            ),
        ));
    }
    Ok((amount.minor > 0).then_some(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoffeeStars;
    use crate::config::INVALID_CONFIG;
    use crate::tests::{at, ctx, member_at};
    use loyalty_sdk::testing::{context, event, purchase};

    const MARCH_15: (i32, u8, u8) = (2026, 3, 15);

    fn now() -> Timestamp {
        at(MARCH_15.0, MARCH_15.1, MARCH_15.2)
    }

    fn paid(minor: i64, method: PaymentMethod) -> Event {
        let mut e = purchase("order-1", minor, "USD", now());
        e.payment = Some(method);
        e
    }

    fn stars(tier: &str, e: &Event) -> i64 {
        CoffeeStars::on_event(&member_at(tier), e, &ctx(now()))
            .unwrap()
            .points()
    }

    fn only_credit(tier: &str, e: &Event) -> Credit {
        let mut outcome = CoffeeStars::on_event(&member_at(tier), e, &ctx(now())).unwrap();
        assert_eq!(outcome.credits.len(), 1, "{outcome:?}");
        outcome.credits.remove(0)
    }

    #[test]
    fn ten_dollars_with_stored_value_at_gold_earns_24_stars() {
        assert_eq!(stars("gold", &paid(1_000, PaymentMethod::StoredValue)), 24);
    }

    #[test]
    fn seven_dollars_45_by_card_at_green_earns_7_stars() {
        assert_eq!(stars("green", &paid(745, PaymentMethod::Card)), 7);
    }

    #[test]
    fn nine_dollars_99_by_card_at_gold_earns_11_stars_from_the_exact_product() {
        // 9.99 x 1 x 1.2 = 11.988: one rounding, down, on the exact amount.
        assert_eq!(stars("gold", &paid(999, PaymentMethod::Card)), 11);
    }

    #[test]
    fn reserve_earns_170_percent() {
        assert_eq!(stars("reserve", &paid(1_000, PaymentMethod::Card)), 17);
        assert_eq!(
            stars("reserve", &paid(1_000, PaymentMethod::StoredValue)),
            34
        );
        // 3.33 x 2 x 1.7 = 11.322
        assert_eq!(stars("reserve", &paid(333, PaymentMethod::StoredValue)), 11);
    }

    #[test]
    fn cash_wallet_other_and_unknown_payment_earn_the_base_rate() {
        for method in [
            PaymentMethod::Cash,
            PaymentMethod::Wallet,
            PaymentMethod::Other,
        ] {
            assert_eq!(stars("green", &paid(1_250, method)), 12, "{method:?}");
        }
        let mut unknown = paid(1_250, PaymentMethod::Card);
        unknown.payment = None;
        assert_eq!(stars("green", &unknown), 12);
    }

    #[test]
    fn a_purchase_paid_with_stars_earns_no_stars() {
        assert_eq!(stars("gold", &paid(1_000, PaymentMethod::Points)), 0);
    }

    #[test]
    fn ninety_nine_cents_at_green_earns_nothing_and_credits_nothing() {
        let outcome = CoffeeStars::on_event(
            &member_at("green"),
            &paid(99, PaymentMethod::Card),
            &ctx(now()),
        )
        .unwrap();
        assert!(outcome.credits.is_empty(), "{outcome:?}");
    }

    #[test]
    fn purchase_stars_are_qualifying() {
        assert!(only_credit("green", &paid(500, PaymentMethod::Card)).qualifying);
        assert!(only_credit("reserve", &paid(500, PaymentMethod::Card)).qualifying);
    }

    #[test]
    fn green_stars_earned_on_15_march_2026_expire_at_the_last_second_of_30_september() {
        let credit = only_credit("green", &paid(500, PaymentMethod::Card));
        assert_eq!(
            credit.expires_at,
            Some(time::timestamp(2026, 9, 30, 23, 59, 59))
        );
    }

    #[test]
    fn gold_and_reserve_stars_do_not_expire() {
        assert_eq!(
            only_credit("gold", &paid(500, PaymentMethod::Card)).expires_at,
            None
        );
        assert_eq!(
            only_credit("reserve", &paid(500, PaymentMethod::Card)).expires_at,
            None
        );
    }

    #[test]
    fn a_member_without_a_tier_yet_earns_and_expires_as_green() {
        let credit = only_credit("", &paid(1_000, PaymentMethod::StoredValue));
        assert_eq!(credit.points, 20);
        assert!(credit.expires_at.is_some());
    }

    #[test]
    fn merchants_can_change_rates_and_multipliers() {
        let config = r#"{"stored_value_stars_per_unit": 3, "gold_multiplier_percent": 150}"#;
        let out = CoffeeStars::on_event(
            &member_at("gold"),
            &paid(1_000, PaymentMethod::StoredValue),
            &context(now(), config),
        )
        .unwrap();
        assert_eq!(out.points(), 45);
    }

    #[test]
    fn a_purchase_in_euros_in_a_dollar_programme_is_an_unsupported_currency() {
        let mut e = paid(1_000, PaymentMethod::Card);
        e.amount = Some(Money::new(1_000, "EUR"));
        let err = CoffeeStars::on_event(&member_at("green"), &e, &ctx(now())).unwrap_err();
        assert_eq!(err.code, UNSUPPORTED_CURRENCY);
    }

    #[test]
    fn a_purchase_without_an_amount_or_of_zero_earns_nothing() {
        let mut e = paid(0, PaymentMethod::Card);
        assert_eq!(stars("gold", &e), 0);
        e.amount = None;
        assert_eq!(stars("gold", &e), 0);
    }

    #[test]
    fn reviews_and_refunds_earn_nothing() {
        let review = event("r-1", EventKind::Review, now());
        assert_eq!(stars("gold", &review), 0);
        let mut refund = paid(1_000, PaymentMethod::Card);
        refund.kind = EventKind::Refund(loyalty_sdk::RefundDetails {
            original_event: "order-1".into(),
            full: true,
        });
        assert_eq!(stars("gold", &refund), 0);
    }

    #[test]
    fn a_broken_config_fails_the_event_with_invalid_config() {
        let err = CoffeeStars::on_event(
            &member_at("green"),
            &paid(1_000, PaymentMethod::Card),
            &context(now(), r#"{"stars_per_unit": "one"}"#),
        )
        .unwrap_err();
        assert_eq!(err.code, INVALID_CONFIG);
    }

    #[test]
    fn joining_gives_green_and_25_welcome_stars_that_do_not_qualify_and_expire_in_september() {
        let enrolment = CoffeeStars::on_enroll(&member_at(""), &ctx(now())).unwrap();
        assert_eq!(enrolment.initial_tier.as_deref(), Some("green"));
        let credits = &enrolment.outcome.credits;
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].points, 25);
        assert!(!credits[0].qualifying);
        assert_eq!(
            credits[0].expires_at,
            Some(time::timestamp(2026, 9, 30, 23, 59, 59))
        );
    }

    #[test]
    fn a_merchant_can_turn_the_welcome_stars_off() {
        let enrolment =
            CoffeeStars::on_enroll(&member_at(""), &context(now(), r#"{"welcome_stars": 0}"#))
                .unwrap();
        assert!(enrolment.outcome.credits.is_empty());
    }

    fn skyway(minor: i64) -> Event {
        let mut e = event("pnr-1", EventKind::PartnerPurchase, now());
        e.partner = Some("skyway".into());
        e.amount = Some(Money::new(minor, "USD"));
        e
    }

    fn linked(tier: &str) -> Member {
        let mut m = member_at(tier);
        m.attributes.push(loyalty_sdk::Attribute {
            key: "skyway-linked".into(),
            value: "true".into(),
        });
        m
    }

    #[test]
    fn a_linked_member_earns_200_stars_on_a_100_dollar_skyway_fare_that_do_not_qualify() {
        let out = CoffeeStars::on_event(&linked("gold"), &skyway(10_000), &ctx(now())).unwrap();
        assert_eq!(out.points(), 200);
        assert!(!out.credits[0].qualifying);
        assert_eq!(out.credits[0].expires_at, None);
    }

    #[test]
    fn linked_green_members_partner_stars_expire_like_green_stars() {
        let out = CoffeeStars::on_event(&linked("green"), &skyway(10_050), &ctx(now())).unwrap();
        assert_eq!(out.points(), 201);
        assert_eq!(
            out.credits[0].expires_at,
            Some(time::timestamp(2026, 9, 30, 23, 59, 59))
        );
    }

    #[test]
    fn an_unlinked_member_or_an_unknown_partner_earns_nothing() {
        assert_eq!(stars("gold", &skyway(10_000)), 0);
        let mut other = skyway(10_000);
        other.partner = Some("cinema-city".into());
        let out = CoffeeStars::on_event(&linked("gold"), &other, &ctx(now())).unwrap();
        assert!(out.credits.is_empty());
    }

    #[test]
    fn no_partner_configured_means_no_partner_stars() {
        let out = CoffeeStars::on_event(
            &linked("gold"),
            &skyway(10_000),
            &context(now(), r#"{"partner": ""}"#),
        )
        .unwrap();
        assert!(out.credits.is_empty());
    }
}
