//! The airline programme's rules, with concrete numbers.

use super::*;
use crate::config::{FlightConfig, TierConfig};
use loyalty_sdk::testing::{context, event, member, purchase, redeem};
use loyalty_sdk::{LineItem, Money};

/// 2026-09-21T13:46:40Z.
const NOW: i64 = 1_790_000_000;

fn at(tier: &str) -> Member {
    let mut m = member("m-1");
    m.tier = tier.to_string();
    m
}

fn flight(fare: i64, tax: i64) -> Event {
    let mut e = purchase("pnr-1", fare + tax, "USD", NOW);
    e.items = vec![
        LineItem {
            sku: "JFK-LAX".into(),
            category: "fare".into(),
            quantity: 1,
            amount: fare,
        },
        LineItem {
            sku: "US-TAX".into(),
            category: "tax".into(),
            quantity: 1,
            amount: tax,
        },
    ];
    e
}

fn miles(tier: &str, e: &Event) -> i64 {
    AirlineMiles::on_event(&at(tier), e, &context(NOW, "{}"))
        .unwrap()
        .points()
}

#[test]
fn a_500_dollar_fare_at_platinum_earns_4000_miles() {
    assert_eq!(miles("platinum", &flight(50_000, 6_240)), 4_000);
}

#[test]
fn each_status_earns_its_rate_per_dollar_of_fare() {
    let f = flight(50_000, 0);
    assert_eq!(miles("member", &f), 2_500);
    assert_eq!(miles("gold", &f), 3_500);
    assert_eq!(miles("platinum", &f), 4_000);
    assert_eq!(miles("platinum-pro", &f), 4_500);
    assert_eq!(miles("executive-platinum", &f), 5_500);
    assert_eq!(miles("", &f), 2_500, "no tier yet earns as a member");
}

#[test]
fn taxes_do_not_earn_but_carrier_surcharges_do() {
    let mut f = flight(10_000, 3_000);
    assert_eq!(miles("member", &f), 500);
    f.items.push(LineItem {
        sku: "YQ".into(),
        category: "surcharge".into(),
        quantity: 1,
        amount: 2_000,
    });
    assert_eq!(miles("member", &f), 600);
}

#[test]
fn fractions_of_a_dollar_round_down() {
    // $123.45 at 7 per USD = 864.15 miles.
    assert_eq!(miles("gold", &flight(12_345, 0)), 864);
}

#[test]
fn a_purchase_without_line_items_earns_on_its_total() {
    let mut p = purchase("p", 20_000, "USD", NOW);
    p.items.clear();
    assert_eq!(miles("member", &p), 1_000);
    // With items, only the earning categories count ("general" does not).
    assert_eq!(miles("member", &purchase("p", 20_000, "USD", NOW)), 0);
}

#[test]
fn flight_miles_qualify_and_expire_36_months_after_the_month_earned() {
    let out = AirlineMiles::on_event(&at("gold"), &flight(10_000, 0), &context(NOW, "{}")).unwrap();
    let credit = &out.credits[0];
    assert!(credit.qualifying);
    // Earned in September 2026: expires at the end of September 2029.
    assert_eq!(
        credit.expires_at,
        Some(time::timestamp(2029, 10, 1, 0, 0, 0) - 1)
    );
}

#[test]
fn a_fare_in_another_currency_is_refused() {
    let e = purchase("p", 20_000, "EUR", NOW);
    let err = AirlineMiles::on_event(&at("gold"), &e, &context(NOW, "{}")).unwrap_err();
    assert_eq!(err.code, "unsupported-currency");
}

#[test]
fn a_broken_config_is_an_invalid_config_error() {
    let err = AirlineMiles::on_event(
        &at("gold"),
        &flight(100, 0),
        &context(NOW, r#"{"miles_per_usd": 5}"#),
    )
    .unwrap_err();
    assert_eq!(err.code, "invalid-config");
}

#[test]
fn the_merchant_can_change_the_earn_rates() {
    let config = r#"{"miles_per_usd": {"member": 1, "gold": 2, "platinum": 3, "platinum_pro": 4, "executive_platinum": 20}}"#;
    let out = AirlineMiles::on_event(
        &at("executive-platinum"),
        &flight(10_000, 0),
        &context(NOW, config),
    )
    .unwrap();
    assert_eq!(out.points(), 2_000);
}

#[test]
fn refunds_and_other_events_earn_nothing() {
    let refund = event(
        "r-1",
        EventKind::Refund(loyalty_sdk::RefundDetails {
            original_event: "pnr-1".into(),
            full: true,
        }),
        NOW,
    );
    assert_eq!(miles("gold", &refund), 0);
    assert_eq!(miles("gold", &event("c", EventKind::CheckIn, NOW)), 0);
}

fn tier(this_year: i64, last_year: i64) -> TierDecision {
    let mut m = member("m-1");
    m.stats.calendar_year.qualifying_points = this_year;
    m.stats.previous_calendar_year.qualifying_points = last_year;
    AirlineMiles::evaluate_tier(&m, &context(NOW, "{}")).unwrap()
}

#[test]
fn status_comes_from_calendar_year_qualifying_points() {
    assert_eq!(tier(39_999, 0).tier, "member");
    assert_eq!(tier(40_000, 0).tier, "gold");
    assert_eq!(tier(74_999, 0).tier, "gold");
    assert_eq!(tier(75_000, 0).tier, "platinum");
    assert_eq!(tier(125_000, 0).tier, "platinum-pro");
    assert_eq!(tier(199_999, 0).tier, "platinum-pro");
    assert_eq!(tier(200_000, 0).tier, "executive-platinum");
}

#[test]
fn status_earned_this_year_holds_through_next_year() {
    let d = tier(41_200, 0);
    assert_eq!(
        d.valid_until,
        Some(time::timestamp(2028, 1, 1, 0, 0, 0) - 1)
    );
    assert_eq!(d.reason, "41,200 qualifying points in 2026");
}

#[test]
fn last_years_status_is_kept_through_this_year() {
    let d = tier(10_000, 80_000);
    assert_eq!(d.tier, "platinum");
    assert_eq!(
        d.valid_until,
        Some(time::timestamp(2027, 1, 1, 0, 0, 0) - 1)
    );
    // Progress is towards the tier above the one held, on this year's points.
    let p = d.progress.unwrap();
    assert_eq!(
        (p.next_tier.as_str(), p.current, p.target),
        ("platinum-pro", 10_000, 125_000)
    );
}

#[test]
fn progress_shows_the_distance_to_the_next_status_until_the_year_ends() {
    let p = tier(41_200, 0).progress.unwrap();
    assert_eq!(p.next_tier, "platinum");
    assert_eq!((p.current, p.target), (41_200, 75_000));
    assert_eq!(
        p.window_ends,
        Some(time::timestamp(2027, 1, 1, 0, 0, 0) - 1)
    );
    assert!(tier(250_000, 0).progress.is_none(), "nothing above the top");
}

fn perk_ids(tier: &str) -> Vec<(String, Option<u32>)> {
    AirlineMiles::perks(&at(tier), &context(NOW, "{}"))
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.quantity))
        .collect()
}

#[test]
fn each_status_has_its_perks() {
    assert!(perk_ids("member").is_empty());
    let ids = |t| {
        perk_ids(t)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("gold"), ["priority-boarding", "checked-bag"]);
    assert_eq!(
        ids("platinum"),
        ["priority-boarding", "checked-bag", "lounge"]
    );
    assert_eq!(
        ids("platinum-pro"),
        ["priority-boarding", "checked-bag", "lounge", "upgrade"]
    );
    assert_eq!(
        perk_ids("executive-platinum").last(),
        Some(&("systemwide-upgrade".to_string(), Some(4)))
    );
}

#[test]
fn unlimited_perks_are_granted_once_per_status_and_last_while_it_does() {
    let gold = AirlineMiles::perks(&at("gold"), &context(NOW, "{}")).unwrap();
    assert!(
        gold.iter()
            .all(|p| p.grant == "gold" && p.quantity.is_none() && p.valid_until.is_none())
    );
    assert_eq!(gold[1].name, "1 free checked bag per flight");
    let platinum = AirlineMiles::perks(&at("platinum"), &context(NOW, "{}")).unwrap();
    assert_eq!(
        (platinum[1].name.as_str(), platinum[1].grant.as_str()),
        ("2 free checked bags per flight", "platinum")
    );
}

#[test]
fn executive_platinum_gets_four_systemwide_upgrades_each_calendar_year() {
    let perks = AirlineMiles::perks(&at("executive-platinum"), &context(NOW, "{}")).unwrap();
    let swu = perks.iter().find(|p| p.id == "systemwide-upgrade").unwrap();
    assert_eq!(swu.quantity, Some(4));
    assert_eq!(swu.grant, "2026");
    assert_eq!(
        swu.valid_until,
        Some(time::timestamp(2027, 1, 1, 0, 0, 0) - 1)
    );
    let next_year = AirlineMiles::perks(
        &at("executive-platinum"),
        &context(NOW + 365 * 86_400, "{}"),
    )
    .unwrap();
    assert_eq!(next_year.last().unwrap().grant, "2027");
}

fn quote(balance: i64, request: RedemptionRequest) -> RedemptionAnswer {
    let mut m = at("gold");
    m.balance = balance;
    AirlineMiles::quote_redemption(&m, &request, &context(NOW, "{}")).unwrap()
}

#[test]
fn an_award_costs_its_miles_plus_taxes_in_cash() {
    let q = quote(40_000, redeem("economy-international"));
    let q = q.quote().unwrap();
    assert_eq!(q.points, 30_000);
    assert_eq!(q.cash, Some(Money::new(4_500, "USD")));
    assert_eq!(
        q.description,
        "Economy award (international): 30,000 miles + USD 45.00"
    );
    let upgrade = quote(15_000, redeem("upgrade"));
    assert_eq!(upgrade.quote().unwrap().cash, None);
}

#[test]
fn awards_are_refused_without_enough_miles_or_when_unknown() {
    assert_eq!(
        quote(29_999, redeem("economy-international"))
            .rejection()
            .unwrap()
            .code,
        "insufficient-points"
    );
    assert_eq!(
        quote(1_000_000, redeem("first-class-to-mars"))
            .rejection()
            .unwrap()
            .code,
        "unknown-reward"
    );
    let nothing = RedemptionRequest {
        reward: None,
        amount: None,
        points: None,
        partner: None,
        attributes: vec![],
    };
    assert_eq!(
        quote(1_000, nothing).rejection().unwrap().code,
        "invalid-request"
    );
}

fn cash_and_miles(fare: i64, points: Option<i64>) -> RedemptionRequest {
    RedemptionRequest {
        reward: None,
        amount: Some(Money::new(fare, "USD")),
        points,
        partner: None,
        attributes: vec![],
    }
}

#[test]
fn cash_and_miles_pays_part_in_miles_and_the_rest_in_cash() {
    let a = quote(52_000, cash_and_miles(45_000, Some(30_000)));
    let q = a.quote().unwrap();
    assert_eq!((q.reward.as_str(), q.points), ("cash-and-miles", 30_000));
    assert_eq!(q.cash, Some(Money::new(15_000, "USD")));
}

#[test]
fn cash_and_miles_never_uses_more_miles_than_the_fare_needs() {
    // A $120.50 fare is 12,050 miles at a cent each: all miles, no cash.
    let a = quote(52_000, cash_and_miles(12_050, None));
    let q = a.quote().unwrap();
    assert_eq!(q.points, 12_050);
    assert_eq!(q.cash, None);
}

#[test]
fn cash_and_miles_rounds_in_the_airlines_favour() {
    // At 1.5 cents a mile a $100.01 fare needs 6,668 miles (6,667.33 rounded up);
    // 1,500 miles cover $22.50, leaving $77.51 in cash.
    let config = r#"{"cents_per_mile_hundredths": 150}"#;
    let mut m = at("gold");
    m.balance = 100_000;
    let full =
        AirlineMiles::quote_redemption(&m, &cash_and_miles(10_001, None), &context(NOW, config))
            .unwrap();
    assert_eq!(full.quote().unwrap().points, 6_668);
    let part = AirlineMiles::quote_redemption(
        &m,
        &cash_and_miles(10_001, Some(1_500)),
        &context(NOW, config),
    )
    .unwrap();
    assert_eq!(part.quote().unwrap().cash, Some(Money::new(7_751, "USD")));
}

#[test]
fn cash_and_miles_has_a_minimum_and_needs_the_miles() {
    assert_eq!(
        quote(52_000, cash_and_miles(45_000, Some(1_000)))
            .rejection()
            .unwrap()
            .code,
        "below-minimum"
    );
    // A $10.00 fare needs only 1,000 miles: too small for Cash & Miles.
    assert_eq!(
        quote(52_000, cash_and_miles(1_000, None))
            .rejection()
            .unwrap()
            .code,
        "below-minimum"
    );
    // 1,500 miles exactly is enough.
    assert_eq!(
        quote(52_000, cash_and_miles(45_000, Some(1_500)))
            .quote()
            .unwrap()
            .cash,
        Some(Money::new(43_500, "USD"))
    );
    // Without a requested amount, a balance under the minimum is the member's shortfall.
    assert_eq!(
        quote(500, cash_and_miles(45_000, None))
            .rejection()
            .unwrap()
            .code,
        "insufficient-points"
    );
    assert_eq!(
        quote(10_000, cash_and_miles(45_000, Some(20_000)))
            .rejection()
            .unwrap()
            .code,
        "insufficient-points"
    );
    let mut eur = cash_and_miles(45_000, None);
    eur.amount = Some(Money::new(45_000, "EUR"));
    assert_eq!(
        quote(52_000, eur).rejection().unwrap().code,
        "unsupported-currency"
    );
}

fn partner_stay(partner: &str, spend: i64) -> Event {
    let mut e = event("stay-1", EventKind::PartnerPurchase, NOW);
    e.partner = Some(partner.into());
    e.amount = Some(Money::new(spend, "USD"));
    e
}

#[test]
fn a_hotel_stay_earns_10_miles_per_dollar_and_15_for_platinum() {
    assert_eq!(miles("gold", &partner_stay("skyhotels", 30_000)), 3_000);
    assert_eq!(miles("platinum", &partner_stay("skyhotels", 30_000)), 4_500);
    let out = AirlineMiles::on_event(
        &at("gold"),
        &partner_stay("skyhotels", 30_000),
        &context(NOW, "{}"),
    )
    .unwrap();
    assert!(
        !out.credits[0].qualifying,
        "partner miles do not count for status by default"
    );
}

#[test]
fn nothing_spent_at_a_hotel_earns_nothing_and_a_hotel_check_in_earns_nothing() {
    assert_eq!(miles("platinum", &partner_stay("skyhotels", 0)), 0);
    let mut check_in = event("ci-1", EventKind::CheckIn, NOW);
    check_in.partner = Some("skyhotels".into());
    assert_eq!(miles("platinum", &check_in), 0);
}

#[test]
fn partner_spend_in_another_currency_is_refused() {
    let mut e = partner_stay("skyhotels", 30_000);
    e.amount = Some(Money::new(30_000, "VND"));
    let err = AirlineMiles::on_event(&at("gold"), &e, &context(NOW, "{}")).unwrap_err();
    assert_eq!(err.code, "unsupported-currency");
}

#[test]
fn a_car_rental_earns_3_per_dollar_plus_500() {
    assert_eq!(
        miles("member", &partner_stay("roadrunner-cars", 20_000)),
        1_100
    );
    assert_eq!(miles("member", &partner_stay("unknown-partner", 20_000)), 0);
}

#[test]
fn offers_depend_on_the_partner_and_status() {
    let offers =
        |tier, partner| AirlineMiles::offers(&at(tier), partner, &context(NOW, "{}")).unwrap();
    assert_eq!(
        offers("gold", "skyhotels")[0].kind,
        OfferKind::EarnMultiplier(100)
    );
    assert_eq!(
        offers("platinum", "skyhotels")[0].kind,
        OfferKind::EarnMultiplier(150)
    );
    assert_eq!(
        offers("platinum", "skyhotels")[0].title,
        "15 miles per USD at SkyHotels"
    );
    assert_eq!(
        offers("member", "roadrunner-cars")[0].kind,
        OfferKind::BonusPoints(500)
    );
    assert!(offers("member", "nobody").is_empty());
}

#[test]
fn joining_gives_a_non_qualifying_welcome_bonus_at_member() {
    let e = AirlineMiles::on_enroll(&member("m-1"), &context(NOW, "{}")).unwrap();
    assert_eq!(e.initial_tier.as_deref(), Some("member"));
    assert_eq!(e.outcome.points(), 500);
    assert!(!e.outcome.credits[0].qualifying);
    let none =
        AirlineMiles::on_enroll(&member("m-1"), &context(NOW, r#"{"welcome_bonus": 0}"#)).unwrap();
    assert_eq!(none.outcome.points(), 0);
}

#[test]
fn the_default_config_text_is_the_default_config() {
    let parsed: Config = serde_json::from_str(config::DEFAULT_CONFIG).unwrap();
    assert_eq!(parsed, Config::default());
    // Field for field, so the text cannot leave out something the default fills in.
    let text: serde_json::Value = serde_json::from_str(config::DEFAULT_CONFIG).unwrap();
    assert_eq!(serde_json::to_value(Config::default()).unwrap(), text);
    assert_eq!(
        serde_json::from_str::<FlightConfig>(config::DEFAULT_CONFIG).unwrap(),
        FlightConfig::default()
    );
    assert_eq!(
        serde_json::from_str::<TierConfig>(config::DEFAULT_CONFIG).unwrap(),
        TierConfig::default()
    );
}

#[test]
fn the_schema_lists_every_config_field() {
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    let mut listed: Vec<_> = schema["properties"].as_object().unwrap().keys().collect();
    let config = serde_json::to_value(Config::default()).unwrap();
    let mut fields: Vec<_> = config.as_object().unwrap().keys().collect();
    listed.sort();
    fields.sort();
    assert_eq!(listed, fields);
    for (key, property) in schema["properties"].as_object().unwrap() {
        assert!(
            property["description"].is_string(),
            "{key} has no description"
        );
    }
}

#[test]
fn the_flight_and_tier_configs_know_every_field_and_refuse_unknown_ones() {
    let defaults: serde_json::Value = serde_json::from_str(config::DEFAULT_CONFIG).unwrap();
    for (key, value) in defaults.as_object().unwrap() {
        let one = serde_json::json!({ key: value }).to_string();
        assert!(
            serde_json::from_str::<FlightConfig>(&one).is_ok(),
            "flight config refuses {key}"
        );
        assert!(
            serde_json::from_str::<TierConfig>(&one).is_ok(),
            "tier config refuses {key}"
        );
    }
    let typo = context(NOW, r#"{"expiry_month": 12}"#);
    let err = AirlineMiles::on_event(&at("gold"), &flight(100, 0), &typo).unwrap_err();
    assert_eq!(err.code, "invalid-config");
    let err = AirlineMiles::evaluate_tier(&at("gold"), &typo).unwrap_err();
    assert_eq!(err.code, "invalid-config");
    let falling = context(
        NOW,
        r#"{"thresholds": {"gold": 9, "platinum": 8, "platinum_pro": 10, "executive_platinum": 11}}"#,
    );
    let err = AirlineMiles::evaluate_tier(&at("gold"), &falling).unwrap_err();
    assert_eq!(err.code, "invalid-config");
}

fn config_error(config: &str) -> String {
    AirlineMiles::quote_redemption(&at("gold"), &redeem("upgrade"), &context(NOW, config))
        .unwrap_err()
        .code
}

#[test]
fn configs_the_rules_cannot_use_are_refused() {
    assert_eq!(
        config_error(r#"{"cents_per_mile_hundredths": 0}"#),
        "invalid-config"
    );
    assert_eq!(
        config_error(
            r#"{"thresholds": {"gold": 40000, "platinum": 40000, "platinum_pro": 125000, "executive_platinum": 200000}}"#
        ),
        "invalid-config"
    );
    assert_eq!(config_error(r#"{"expiry_months": 0}"#), "invalid-config");
    assert_eq!(config_error(r#"{"currency": "usd"}"#), "invalid-config");
    assert_eq!(
        config_error(
            r#"{"awards": [{"id": "a", "name": "A", "miles": 1, "fees_minor": 0}, {"id": "a", "name": "B", "miles": 2, "fees_minor": 0}]}"#
        ),
        "invalid-config"
    );
    assert_eq!(
        config_error(
            r#"{"awards": [{"id": "cash-and-miles", "name": "A", "miles": 1, "fees_minor": 0}]}"#
        ),
        "invalid-config"
    );
    let flight_err = AirlineMiles::on_event(
        &at("gold"),
        &flight(100, 0),
        &context(NOW, r#"{"expiry_months": 100000}"#),
    )
    .unwrap_err();
    assert_eq!(flight_err.code, "invalid-config");
}

#[test]
fn describe_lists_tiers_perks_and_the_award_chart() {
    let info = AirlineMiles::describe();
    let tiers: Vec<_> = info.tiers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        tiers,
        [
            "member",
            "gold",
            "platinum",
            "platinum-pro",
            "executive-platinum"
        ]
    );
    let perks: Vec<_> = info.perks.iter().map(|p| p.id.as_str()).collect();
    for tier in ["gold", "platinum", "platinum-pro", "executive-platinum"] {
        for perk in AirlineMiles::perks(&at(tier), &context(NOW, "{}")).unwrap() {
            assert!(
                perks.contains(&perk.id.as_str()),
                "{} not described",
                perk.id
            );
        }
    }
    assert!(info.rewards.iter().any(|r| r.id == "cash-and-miles"));
    assert!(
        info.rewards
            .iter()
            .any(|r| r.id == "economy-international" && r.points == Some(30_000))
    );
}
