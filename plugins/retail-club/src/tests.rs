//! Helpers the rule tests share, and the tests of `describe`.

use super::*;
use loyalty_sdk::testing::{context, member};

/// Midnight UTC on a date.
pub(crate) fn day(year: i32, month: u8, day: u8) -> Timestamp {
    time::timestamp(year, month, day, 0, 0, 0)
}

/// A context at `now` with `config`, in the club's currency, EUR.
pub(crate) fn ctx_with(now: Timestamp, config: &str) -> Context {
    let mut c = context(now, config);
    c.currency = "EUR".into();
    c
}

/// A context at `now` with the default config, in EUR.
pub(crate) fn ctx(now: Timestamp) -> Context {
    ctx_with(now, "{}")
}

/// A member at `tier`.
pub(crate) fn member_at(tier: &str) -> Member {
    let mut m = member("m-1");
    m.tier = tier.into();
    m
}

#[test]
fn describe_lists_the_tiers_lowest_first() {
    let ids: Vec<String> = RetailClub::describe()
        .tiers
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["bronze", "silver", "gold"]);
}

#[test]
fn describe_lists_every_perk_the_programme_grants() {
    let info = RetailClub::describe();
    let listed: Vec<&str> = info.perks.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(listed, ["birthday-voucher", "free-shipping"]);
    let mut gold = member_at("gold");
    gold.birthday = Some(loyalty_sdk::Date {
        year: 1990,
        month: 9,
        day: 1,
    });
    for perk in RetailClub::perks(&gold, &ctx(day(2026, 9, 1))).unwrap() {
        assert!(
            listed.contains(&perk.id.as_str()),
            "{} is not listed",
            perk.id
        );
    }
}

#[test]
fn describe_lists_the_reward_catalogue_with_its_prices() {
    let rewards: Vec<(String, Option<i64>)> = RetailClub::describe()
        .rewards
        .into_iter()
        .map(|r| (r.id, r.points))
        .collect();
    assert_eq!(
        rewards,
        [
            ("voucher-10".to_string(), Some(1_000)),
            ("tote-bag".to_string(), Some(1_500)),
            ("pay-with-points".to_string(), None),
        ]
    );
}

#[test]
fn describe_returns_the_schema_and_the_default_config() {
    let info = RetailClub::describe();
    assert_eq!(info.name, "Retail club");
    assert_eq!(info.config_schema, CONFIG_SCHEMA);
    let default: Config = serde_json::from_str(&info.default_config).unwrap();
    assert_eq!(default, Config::default());
}
