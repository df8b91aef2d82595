//! Coffee Stars: a coffee chain's stars programme in the style of Starbucks Rewards.
//!
//! - **Earning.** 1 star per $1 paid by card, cash, wallet or other; 2 per $1 paid with
//!   stored value (the card or app balance); none when paying with stars. The tier
//!   multiplies that: Green 100 %, Gold 120 %, Reserve 170 %. The exact amount times
//!   the combined rate is rounded down once: $10.00 with stored value at Gold is 24
//!   stars, $7.45 by card at Green is 7, $9.99 by card at Gold is 11 (11.988).
//!   Purchase stars qualify for status. Green stars expire at the end of the sixth
//!   month after the month they were earned (15 March: 30 September, 23:59:59 UTC);
//!   Gold and Reserve stars do not expire.
//! - **Status.** Qualifying stars in the rolling 12 months: Gold from 500, Reserve from
//!   2,500.
//! - **Rewards.** Customize 25 stars, brewed coffee 100, handcrafted drink 200,
//!   breakfast or lunch 300, merchandise 400; stars only, never cash.
//! - **Perks.** A birthday drink in the birthday month for members who have bought
//!   before; free refills at Gold and Reserve; a free pastry each month at Reserve.
//! - **Joining.** Green, with 25 welcome stars that do not qualify and expire like
//!   Green stars.
//! - **Partner.** Members who link their SkyWay (airline) account earn 200 % of the
//!   base rate (2 stars per $1) on SkyWay purchases; those stars do not qualify.
//!
//! Every number is a default of [`Config`]; merchants change them in the programme
//! config (`config.schema.json`).
//!
//! # Layout
//!
//! `config` (the config and its checks), `tier` (tiers and the status rule), `earn`
//! (welcome, purchase and partner stars), `perks`, `rewards` (catalogue and quotes),
//! `offers` (the partner offer). Each hook below reads the config once and hands it on.

mod config;
mod earn;
mod offers;
mod perks;
mod rewards;
mod tier;

use loyalty_sdk::prelude::*;

pub use config::{Config, DEFAULT_CONFIG, RewardPrices};
pub use earn::UNSUPPORTED_CURRENCY;
pub use tier::Tier;

/// The Coffee Stars programme.
pub struct CoffeeStars;

impl Program for CoffeeStars {
    fn describe() -> ProgramInfo {
        let mut info = ProgramInfo::new("Coffee Stars", env!("CARGO_PKG_VERSION")).description(
            "Stars per dollar, doubled with stored value and multiplied by tier \
             (Green, Gold, Reserve); rewards from 25 stars, a birthday drink, and stars \
             with a linked airline partner.",
        );
        for tier in Tier::ALL {
            info = info.tier(tier.id(), tier.name());
        }
        for (id, name, description) in perks::CATALOGUE {
            info = info.perk(id, name, description);
        }
        let prices = RewardPrices::default();
        for (id, name) in rewards::CATALOGUE {
            info = info.reward(id, name, prices.price(id).map(i64::from));
        }
        info.config(include_str!("../config.schema.json"), DEFAULT_CONFIG)
    }

    fn on_enroll(_member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        earn::on_enroll(ctx)
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        earn::on_event(member, event, ctx)
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(tier::evaluate(member, ctx.now, &config))
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(perks::perks(member, ctx.now, &config))
    }

    fn offers(member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(offers::offers(member, partner, &config))
    }

    fn quote_redemption(
        member: &Member,
        request: &RedemptionRequest,
        ctx: &Context,
    ) -> Result<RedemptionAnswer, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(rewards::quote(member, request, &config))
    }
}

export_program!(CoffeeStars);

pub(crate) use loyalty_sdk::money::group_thousands as thousands;

/// Helpers the rule tests share.
#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_sdk::testing::{context, member};

    /// 09:30 UTC on a date.
    pub fn at(year: i32, month: u8, day: u8) -> Timestamp {
        time::timestamp(year, month, day, 9, 30, 0)
    }

    /// A context at `now` with the default config.
    pub fn ctx(now: Timestamp) -> Context {
        context(now, "{}")
    }

    /// A member holding `tier` ("" for none yet).
    pub fn member_at(tier: &str) -> Member {
        let mut m = member("m-1");
        m.tier = tier.to_string();
        m
    }

    /// A member with `stars` qualifying stars in the rolling 12 months.
    pub fn member_with_stars(stars: i64) -> Member {
        let mut m = member_at("green");
        m.stats.rolling_12_months.qualifying_points = stars;
        m
    }

    #[test]
    fn describe_lists_green_gold_and_reserve_lowest_first() {
        let ids: Vec<String> = CoffeeStars::describe()
            .tiers
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["green", "gold", "reserve"]);
    }

    #[test]
    fn describe_lists_every_perk_the_programme_grants() {
        let info = CoffeeStars::describe();
        let mut everyone = member_at("reserve");
        everyone.birthday = Some(Date {
            year: 1990,
            month: 3,
            day: 1,
        });
        everyone.stats.lifetime.purchases = 1;
        let granted = CoffeeStars::perks(&everyone, &ctx(at(2026, 3, 15))).unwrap();
        assert_eq!(granted.len(), 3);
        for perk in granted {
            assert!(
                info.perks.iter().any(|p| p.id == perk.id),
                "{} is not described",
                perk.id
            );
        }
        assert_eq!(info.perks.len(), 3);
    }

    #[test]
    fn describe_lists_the_reward_catalogue_with_default_prices() {
        let rewards: Vec<(String, Option<i64>)> = CoffeeStars::describe()
            .rewards
            .into_iter()
            .map(|r| (r.id, r.points))
            .collect();
        let expected = [
            ("customize", 25),
            ("brewed-coffee", 100),
            ("handcrafted-drink", 200),
            ("breakfast-or-lunch", 300),
            ("merchandise", 400),
        ]
        .map(|(id, points)| (id.to_string(), Some(points)));
        assert_eq!(rewards, expected);
    }

    #[test]
    fn describe_returns_the_schema_file_and_the_default_config() {
        let info = CoffeeStars::describe();
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(schema["title"], "Coffee Stars programme config");
        let defaults: Config = serde_json::from_str(&info.default_config).unwrap();
        assert_eq!(defaults, Config::default());
    }

    #[test]
    fn every_hook_refuses_a_broken_config_with_invalid_config() {
        let bad = context(at(2026, 3, 15), r#"{"reserve_threshold": 100}"#);
        let m = member_at("gold");
        let codes = [
            CoffeeStars::on_enroll(&m, &bad).map(drop).unwrap_err().code,
            CoffeeStars::evaluate_tier(&m, &bad)
                .map(drop)
                .unwrap_err()
                .code,
            CoffeeStars::perks(&m, &bad).map(drop).unwrap_err().code,
            CoffeeStars::offers(&m, "skyway", &bad)
                .map(drop)
                .unwrap_err()
                .code,
        ];
        assert!(codes.iter().all(|c| c == "invalid-config"), "{codes:?}");
    }

    #[test]
    fn large_numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2_500), "2,500");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-12_000), "-12,000");
    }
}
