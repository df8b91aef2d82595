//! Redemption: pay for a basket with points (points plus cash), or a fixed-price
//! catalogue reward. A member who owes points cannot redeem.

use loyalty_sdk::money::group_thousands as thousands;
use loyalty_sdk::prelude::*;

use crate::config::Config;

/// The reward id of paying for an amount with points.
pub const PAY_WITH_POINTS: &str = "pay-with-points";

/// The fixed-price rewards: id and name. Prices are in
/// [`RewardPrices`](crate::config::RewardPrices).
pub const CATALOGUE: [(&str, &str); 2] = [
    ("voucher-10", "10.00 voucher"),
    ("tote-bag", "Club tote bag"),
];

/// Price a redemption, or refuse it with one of the codes `outstanding-debt`,
/// `invalid-request`, `unknown-reward`, `insufficient-points`, `below-minimum` or
/// `unsupported-currency`.
pub fn quote(
    member: &Member,
    request: &RedemptionRequest,
    ctx: &Context,
    config: &Config,
) -> RedemptionAnswer {
    if member.debt > 0 {
        return RedemptionAnswer::reject(
            "outstanding-debt",
            format!(
                "{} points are owed from a refund; redeeming resumes once they are earned back",
                thousands(member.debt)
            ),
        );
    }
    match (request.reward.as_deref(), &request.amount) {
        (None | Some(PAY_WITH_POINTS), Some(amount)) => {
            pay_with_points(member, amount, request.points, ctx, config)
        }
        (Some(PAY_WITH_POINTS) | None, None) => RedemptionAnswer::reject(
            "invalid-request",
            "name a reward, or give an amount to pay with points",
        ),
        (Some(reward), Some(_)) => RedemptionAnswer::reject(
            "invalid-request",
            format!("{reward:?} has a fixed price; leave out the amount"),
        ),
        (Some(reward), None) => {
            let found = CATALOGUE.into_iter().find(|(id, _)| *id == reward);
            match (found, config.reward_points.price(reward)) {
                (Some((id, name)), Some(price)) => {
                    RedemptionAnswer::fixed_price(member, id, name, price.into())
                }
                _ => RedemptionAnswer::unknown_reward(reward),
            }
        }
    }
}

/// Points plus cash for `amount`: the points used are the requested ones, or by
/// default all the amount needs, but never more than it needs; the cash part is the
/// rest. Points that cover the amount are rounded up, so a point worth more than one
/// minor unit may pay a fraction of a point too much rather than leave a cash part
/// smaller than a point.
fn pay_with_points(
    member: &Member,
    amount: &Money,
    requested: Option<i64>,
    ctx: &Context,
    config: &Config,
) -> RedemptionAnswer {
    if amount.currency != ctx.currency {
        return RedemptionAnswer::reject(
            "unsupported-currency",
            format!(
                "amounts must be in {}, not {}",
                ctx.currency, amount.currency
            ),
        );
    }
    if amount.minor <= 0 {
        return RedemptionAnswer::reject(
            "invalid-request",
            format!("the amount must be positive, not {}", amount.display()),
        );
    }
    if let Some(p) = requested
        && p <= 0
    {
        return RedemptionAnswer::reject(
            "invalid-request",
            format!("the points to use must be positive, not {p}"),
        );
    }
    let value = i64::from(config.point_value_minor);
    let needed = amount.minor.div_euclid(value) + i64::from(amount.minor % value != 0);
    let points = requested.map_or(needed, |p| p.min(needed));
    let minimum = i64::from(config.min_redeem_points);
    if points < minimum {
        return RedemptionAnswer::reject(
            "below-minimum",
            format!(
                "paying with points uses at least {} points, not {}",
                thousands(minimum),
                thousands(points)
            ),
        );
    }
    if points > member.balance {
        return RedemptionAnswer::reject(
            "insufficient-points",
            format!(
                "{} points are needed; the balance is {} (use fewer and pay the rest in cash)",
                thousands(points),
                thousands(member.balance)
            ),
        );
    }
    let rest = (amount.minor - points * value).max(0);
    let cash = (rest > 0).then(|| Money::new(rest, amount.currency.as_str()));
    let description = match &cash {
        Some(cash) => format!(
            "{} points + {} for {}",
            thousands(points),
            cash.display(),
            amount.display()
        ),
        None => format!("{} points for {}", thousands(points), amount.display()),
    };
    RedemptionAnswer::accept(PAY_WITH_POINTS, points, cash, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, ctx_with, day, member_at};
    use loyalty_sdk::testing::redeem;

    fn with_balance(balance: i64) -> Member {
        let mut m = member_at("silver");
        m.balance = balance;
        m
    }

    fn ask(m: &Member, request: RedemptionRequest) -> RedemptionAnswer {
        RetailClub::quote_redemption(m, &request, &ctx(day(2026, 9, 21))).unwrap()
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

    fn code(answer: &RedemptionAnswer) -> &str {
        answer.rejection().map_or("accepted", |r| r.code.as_str())
    }

    #[test]
    fn a_49_99_basket_with_1500_points_leaves_34_99_to_pay() {
        let answer = ask(&with_balance(2_000), pay(4_999, Some(1_500)));
        let q = answer.quote().unwrap();
        assert_eq!(q.reward, "pay-with-points");
        assert_eq!(
            (q.points, q.cash.clone()),
            (1_500, Some(Money::new(3_499, "EUR")))
        );
        assert_eq!(q.description, "1,500 points + EUR 34.99 for EUR 49.99");
    }

    #[test]
    fn without_a_number_of_points_all_the_basket_needs_are_used() {
        let answer = ask(&with_balance(2_000), pay(1_200, None));
        let q = answer.quote().unwrap();
        assert_eq!((q.points, q.cash.clone()), (1_200, None));
        assert_eq!(q.description, "1,200 points for EUR 12.00");
    }

    #[test]
    fn asking_for_more_points_than_the_basket_needs_uses_only_what_it_needs() {
        let answer = ask(&with_balance(1_000), pay(800, Some(5_000)));
        assert_eq!(answer.quote().unwrap().points, 800);
    }

    #[test]
    fn paying_with_points_needs_at_least_500_points() {
        let m = with_balance(5_000);
        assert_eq!(code(&ask(&m, pay(4_999, Some(499)))), "below-minimum");
        assert_eq!(ask(&m, pay(4_999, Some(500))).quote().unwrap().points, 500);
        // A 3.00 basket needs only 300 points: too few to pay with points.
        assert_eq!(code(&ask(&m, pay(300, None))), "below-minimum");
    }

    #[test]
    fn a_balance_short_of_the_points_used_is_refused() {
        let m = with_balance(1_499);
        assert_eq!(
            code(&ask(&m, pay(4_999, Some(1_500)))),
            "insufficient-points"
        );
        assert_eq!(code(&ask(&m, pay(4_999, None))), "insufficient-points");
        assert_eq!(
            code(&ask(&with_balance(4_999), pay(4_999, None))),
            "accepted"
        );
    }

    #[test]
    fn points_worth_2_cents_pay_a_basket_rounded_up_to_whole_points() {
        let c = ctx_with(day(2026, 9, 21), r#"{"point_value_minor": 2}"#);
        let answer =
            RetailClub::quote_redemption(&with_balance(5_000), &pay(1_001, None), &c).unwrap();
        assert_eq!(answer.quote().unwrap().points, 501);
        assert_eq!(answer.quote().unwrap().cash, None);
        let part =
            RetailClub::quote_redemption(&with_balance(5_000), &pay(1_001, Some(500)), &c).unwrap();
        assert_eq!(part.quote().unwrap().cash, Some(Money::new(1, "EUR")));
    }

    #[test]
    fn an_amount_in_another_currency_is_refused() {
        let mut request = pay(4_999, None);
        request.amount = Some(Money::new(4_999, "USD"));
        assert_eq!(
            code(&ask(&with_balance(9_000), request)),
            "unsupported-currency"
        );
    }

    #[test]
    fn malformed_requests_are_invalid() {
        let m = with_balance(9_000);
        assert_eq!(code(&ask(&m, pay(0, None))), "invalid-request");
        assert_eq!(code(&ask(&m, pay(4_999, Some(0)))), "invalid-request");
        assert_eq!(code(&ask(&m, pay(4_999, Some(-600)))), "invalid-request");
        let mut empty = pay(0, None);
        empty.amount = None;
        assert_eq!(code(&ask(&m, empty)), "invalid-request");
        let mut both = redeem("tote-bag");
        both.amount = Some(Money::new(4_999, "EUR"));
        assert_eq!(code(&ask(&m, both)), "invalid-request");
        assert_eq!(code(&ask(&m, redeem("pay-with-points"))), "invalid-request");
    }

    #[test]
    fn naming_pay_with_points_with_an_amount_pays_with_points() {
        let mut request = redeem("pay-with-points");
        request.amount = Some(Money::new(1_000, "EUR"));
        assert_eq!(
            ask(&with_balance(1_000), request).quote().unwrap().points,
            1_000
        );
    }

    #[test]
    fn the_10_euro_voucher_costs_1000_points_and_the_tote_bag_1500() {
        let m = with_balance(1_500);
        let voucher = ask(&m, redeem("voucher-10"));
        assert_eq!(voucher.quote().unwrap().points, 1_000);
        assert_eq!(
            voucher.quote().unwrap().description,
            "10.00 voucher: 1,000 points"
        );
        let bag = ask(&m, redeem("tote-bag"));
        assert_eq!(
            (
                bag.quote().unwrap().points,
                bag.quote().unwrap().cash.clone()
            ),
            (1_500, None)
        );
    }

    #[test]
    fn a_tote_bag_with_1499_points_is_refused() {
        assert_eq!(
            code(&ask(&with_balance(1_499), redeem("tote-bag"))),
            "insufficient-points"
        );
    }

    #[test]
    fn a_reward_outside_the_catalogue_is_unknown() {
        assert_eq!(
            code(&ask(&with_balance(1_000_000), redeem("yacht"))),
            "unknown-reward"
        );
    }

    #[test]
    fn reward_prices_come_from_the_config() {
        let c = ctx_with(
            day(2026, 9, 21),
            r#"{"reward_points": {"voucher-10": 900}}"#,
        );
        let answer =
            RetailClub::quote_redemption(&with_balance(900), &redeem("voucher-10"), &c).unwrap();
        assert_eq!(answer.quote().unwrap().points, 900);
    }

    #[test]
    fn a_member_who_owes_points_cannot_redeem_anything() {
        let mut m = with_balance(5_000);
        m.debt = 120;
        assert_eq!(code(&ask(&m, redeem("voucher-10"))), "outstanding-debt");
        assert_eq!(code(&ask(&m, pay(4_999, None))), "outstanding-debt");
        m.debt = 0;
        assert_eq!(code(&ask(&m, redeem("voucher-10"))), "accepted");
    }

    #[test]
    fn a_broken_config_fails_the_quote_with_invalid_config() {
        let c = ctx_with(day(2026, 9, 21), r#"{"min_redeem_points": "five hundred"}"#);
        let err = RetailClub::quote_redemption(&with_balance(5_000), &redeem("voucher-10"), &c)
            .unwrap_err();
        assert_eq!(err.code, "invalid-config");
    }
}
