//! Redemption: vouchers at fixed prices, and paying part or all of an order with
//! points.

use loyalty_sdk::money::{divide, group_thousands, minor_per_major};
use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::{PAY_WITH_POINTS, unsupported_currency};

/// Price `request` for `member`, or say why not.
pub fn quote(
    member: &Member,
    request: &RedemptionRequest,
    ctx: &Context,
    config: &Config,
) -> RedemptionAnswer {
    match (request.reward.as_deref(), &request.amount) {
        (None | Some(PAY_WITH_POINTS), Some(amount)) => {
            pay_with_points(member, amount, request.points, ctx, config)
        }
        (None | Some(PAY_WITH_POINTS), None) => RedemptionAnswer::reject(
            "invalid-request",
            "name a reward, or give an amount to pay with points",
        ),
        // A voucher has its own price; an amount beside it is a request for two things.
        (Some(_), Some(_)) => RedemptionAnswer::reject(
            "invalid-request",
            "a voucher has a fixed price: leave out the amount",
        ),
        (Some(id), None) => match config.rewards.iter().find(|r| r.id == id) {
            Some(r) => RedemptionAnswer::fixed_price(member, &r.id, &r.name, r.points),
            None => RedemptionAnswer::unknown_reward(id),
        },
    }
}

/// Pay `amount` with points, `config.points_per_currency_unit` points to one unit.
///
/// With `requested` points the member pays the rest in cash; without, the balance
/// pays as much as it can. The price of the whole amount rounds up (a fraction of a
/// point costs a point) and what points cover rounds down (a fraction of a cent is
/// paid in cash), so the merchant never gives more than the points are worth, and
/// the member is charged only the points the covered part needs.
fn pay_with_points(
    member: &Member,
    amount: &Money,
    requested: Option<i64>,
    ctx: &Context,
    config: &Config,
) -> RedemptionAnswer {
    if amount.currency != ctx.currency {
        let e = unsupported_currency(&amount.currency, &ctx.currency);
        return RedemptionAnswer::reject(e.code, e.message);
    }
    if amount.minor <= 0 {
        return RedemptionAnswer::reject("invalid-request", "the amount must be positive");
    }
    if let Some(points) = requested
        && points <= 0
    {
        return RedemptionAnswer::reject(
            "invalid-request",
            format!("{points} points: give a positive number, or none to use the balance"),
        );
    }
    let wanted = requested.unwrap_or(member.balance);
    if wanted > member.balance || member.balance <= 0 {
        return RedemptionAnswer::reject(
            "insufficient-points",
            format!(
                "{} points asked for; the balance is {}",
                group_thousands(wanted),
                group_thousands(member.balance)
            ),
        );
    }
    let unit = i128::from(minor_per_major(&amount.currency));
    let per_unit = i128::from(config.points_per_currency_unit);
    let full_price = divide(i128::from(amount.minor) * per_unit, unit, Rounding::Up);
    let (points, covered) = if wanted >= full_price {
        (full_price, amount.minor)
    } else {
        let covered = divide(i128::from(wanted) * unit, per_unit, Rounding::Down);
        let points = divide(i128::from(covered) * per_unit, unit, Rounding::Up);
        (points, covered)
    };
    if covered <= 0 {
        return RedemptionAnswer::reject(
            "invalid-request",
            format!(
                "{wanted} points do not cover the smallest amount of {}",
                amount.currency
            ),
        );
    }
    let cash = Money::new(amount.minor - covered, amount.currency.as_str());
    let description = if cash.minor > 0 {
        format!(
            "{} points + {} for {}",
            group_thousands(points),
            cash.display(),
            amount.display()
        )
    } else {
        format!(
            "{} points for {}",
            group_thousands(points),
            amount.display()
        )
    };
    RedemptionAnswer::accept(
        PAY_WITH_POINTS,
        points,
        (cash.minor > 0).then_some(cash),
        description,
    )
}
