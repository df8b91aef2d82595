//! The reward catalogue and redemption: fixed star prices, stars only, no cash.

use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::thousands;

/// Every reward in the catalogue, cheapest first: id and name. Prices are in
/// [`RewardPrices`](crate::config::RewardPrices).
pub const CATALOGUE: [(&str, &str); 5] = [
    ("customize", "Customize your drink"),
    ("brewed-coffee", "Brewed coffee or tea"),
    ("handcrafted-drink", "Handcrafted drink"),
    ("breakfast-or-lunch", "Breakfast or lunch"),
    ("merchandise", "Select merchandise"),
];

/// Price a catalogue reward, or refuse: `invalid-request` when no reward is named,
/// `unknown-reward` when it is not in the catalogue, `insufficient-points` when the
/// member's available stars are below the price.
pub fn quote(member: &Member, request: &RedemptionRequest, config: &Config) -> RedemptionAnswer {
    let Some(reward) = request.reward.as_deref() else {
        return RedemptionAnswer::reject("invalid-request", "name a reward from the catalogue");
    };
    let found = CATALOGUE.into_iter().find(|(id, _)| *id == reward);
    let (Some((id, name)), Some(price)) = (found, config.reward_prices.price(reward)) else {
        return RedemptionAnswer::reject(
            "unknown-reward",
            format!("{reward:?} is not in the reward catalogue"),
        );
    };
    let price = i64::from(price);
    if member.balance < price {
        return RedemptionAnswer::reject(
            "insufficient-points",
            format!(
                "{name} costs {} stars; {} available",
                thousands(price),
                thousands(member.balance)
            ),
        );
    }
    RedemptionAnswer::accept(
        id,
        price,
        None,
        format!("{name}: {} stars", thousands(price)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoffeeStars;
    use crate::tests::{at, ctx, member_at};
    use loyalty_sdk::testing::{context, redeem};

    fn with_balance(balance: i64) -> Member {
        let mut m = member_at("green");
        m.balance = balance;
        m
    }

    fn answer(balance: i64, request: &RedemptionRequest) -> RedemptionAnswer {
        CoffeeStars::quote_redemption(&with_balance(balance), request, &ctx(at(2026, 3, 15)))
            .unwrap()
    }

    fn rejection_code(balance: i64, request: &RedemptionRequest) -> String {
        answer(balance, request)
            .rejection()
            .expect("rejected")
            .code
            .clone()
    }

    #[test]
    fn each_reward_costs_its_catalogue_price_in_stars_and_no_cash() {
        for (reward, price) in [
            ("customize", 25),
            ("brewed-coffee", 100),
            ("handcrafted-drink", 200),
            ("breakfast-or-lunch", 300),
            ("merchandise", 400),
        ] {
            let a = answer(1_000, &redeem(reward));
            let quote = a.quote().unwrap_or_else(|| panic!("{reward}: {a:?}"));
            assert_eq!(quote.reward, reward);
            assert_eq!(quote.points, price, "{reward}");
            assert_eq!(quote.cash, None);
        }
    }

    #[test]
    fn exactly_200_stars_buy_a_handcrafted_drink_and_199_do_not() {
        assert_eq!(
            answer(200, &redeem("handcrafted-drink"))
                .quote()
                .unwrap()
                .points,
            200
        );
        assert_eq!(
            rejection_code(199, &redeem("handcrafted-drink")),
            "insufficient-points"
        );
    }

    #[test]
    fn an_unknown_reward_is_rejected() {
        assert_eq!(
            rejection_code(10_000, &redeem("free-car")),
            "unknown-reward"
        );
    }

    #[test]
    fn a_request_naming_no_reward_is_invalid() {
        let mut request = redeem("customize");
        request.reward = None;
        assert_eq!(rejection_code(10_000, &request), "invalid-request");
    }

    #[test]
    fn the_merchants_price_is_the_one_quoted() {
        let ctx = context(
            at(2026, 3, 15),
            r#"{"reward_prices": {"brewed-coffee": 150}}"#,
        );
        let member = with_balance(149);
        let a = CoffeeStars::quote_redemption(&member, &redeem("brewed-coffee"), &ctx).unwrap();
        assert_eq!(a.rejection().unwrap().code, "insufficient-points");
        let a = CoffeeStars::quote_redemption(&with_balance(150), &redeem("brewed-coffee"), &ctx)
            .unwrap();
        assert_eq!(a.quote().unwrap().points, 150);
    }

    #[test]
    fn a_broken_config_fails_the_quote_with_invalid_config() {
        let err = CoffeeStars::quote_redemption(
            &with_balance(500),
            &redeem("customize"),
            &context(0, r#"{"reward_prices": {"customize": 0}}"#),
        )
        .unwrap_err();
        assert_eq!(err.code, "invalid-config");
    }
}
