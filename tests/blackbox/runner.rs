//! The local runner (`loyalty run`) on every example and hostile plugin.

use std::process::Command;

use loyalty_tests::{binary, plugin, root, run_hook};
use serde_json::{Value, json};

const NOW: i64 = 1_790_000_000; // 2026-09-21T13:46:40Z

fn purchase(id: &str, minor: i64, currency: &str) -> Value {
    json!({
        "id": id, "occurred_at": NOW, "kind": "purchase",
        "amount": { "minor": minor, "currency": currency },
    })
}

fn credits(out: &Value) -> Vec<i64> {
    out["result"]["ok"]["credits"]
        .as_array()
        .unwrap_or_else(|| panic!("no credits in {out}"))
        .iter()
        .map(|c| c["points"].as_i64().unwrap())
        .collect()
}

#[test]
fn the_readme_sample_flight_earns_4000_miles_at_platinum() {
    let out = Command::new(binary())
        .arg("run")
        .arg(plugin("airline-miles"))
        .arg("on-event")
        .arg("--input")
        .arg(root().join("plugins/samples/airline-flight.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hook"], "on-event");
    assert_eq!(credits(&v).iter().sum::<i64>(), 4_000, "{v}");
    assert!(v["fuel_used"].as_u64().unwrap() > 0);
    assert!(v["time_us"].as_u64().is_some());
}

#[test]
fn describe_lists_each_example_programmes_tiers() {
    for (name, first, last) in [
        ("airline-miles", "member", "executive-platinum"),
        ("coffee-stars", "green", "reserve"),
        ("ride-hailing", "member", "platinum"),
        ("retail-club", "bronze", "gold"),
    ] {
        let run = run_hook(name, "describe", &json!({}), &[]);
        assert_eq!(run.code, 0, "{run:?}");
        let tiers = run.json()["result"]["ok"]["tiers"].clone();
        let ids: Vec<&str> = tiers
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.first(), Some(&first), "{name}: {ids:?}");
        assert_eq!(ids.last(), Some(&last), "{name}: {ids:?}");
    }
}

/// Each hostile plugin, the hook that misbehaves, and the failure kind it must get.
const HOSTILE: &[(&str, &str, &str)] = &[
    ("hostile-infinite-loop", "on-event", "out_of_fuel"),
    ("hostile-memory-bomb", "on-event", "memory_limit"),
    ("hostile-deep-recursion", "on-event", "stack_overflow"),
    ("hostile-trap", "on-event", "trap"),
    ("hostile-trap", "perks", "trap"),
    ("hostile-oversized-output", "on-event", "output_too_large"),
    ("hostile-oversized-output", "perks", "output_too_large"),
    ("hostile-invalid-output", "on-event", "invalid_output"),
    ("hostile-invalid-output", "evaluate-tier", "invalid_output"),
    ("hostile-invalid-output", "perks", "invalid_output"),
    ("hostile-wrong-exports", "describe", "bad_exports"),
    ("hostile-unknown-import", "on-event", "unknown_import"),
];

#[test]
fn every_hostile_plugin_fails_with_its_own_kind_of_error() {
    let input = json!({ "event": purchase("e-1", 1_000, "USD") });
    for (name, hook, kind) in HOSTILE {
        let run = run_hook(name, hook, &input, &[]);
        assert_eq!(run.code, 1, "{name} {hook}: {run:?}");
        let error = run.error();
        assert_eq!(error["kind"], *kind, "{name} {hook}: {error}");
        assert!(run.stdout.is_empty(), "no output on failure: {run:?}");
    }
}

#[test]
fn hook_failures_name_the_plugin_and_the_hook() {
    let input = json!({ "event": purchase("e-1", 1_000, "USD") });
    let run = run_hook("hostile-trap", "on-event", &input, &[]);
    let error = run.error();
    assert_eq!(error["hook"], "on-event");
    assert_eq!(error["plugin"], "hostile-trap.wasm");
    assert!(
        error["panic"]
            .as_str()
            .unwrap()
            .contains("made the plugin panic on purpose"),
        "the guest's panic message is carried: {error}"
    );
}

#[test]
fn load_errors_say_which_export_or_import_is_wrong() {
    let run = run_hook("hostile-wrong-exports", "describe", &json!({}), &[]);
    let error = run.error();
    assert_eq!(error["mistyped"], json!(["describe"]));
    assert_eq!(error["missing"].as_array().unwrap().len(), 6, "{error}");

    let run = run_hook("hostile-unknown-import", "describe", &json!({}), &[]);
    assert_eq!(run.error()["import"], "evil:net/http@1.0.0");
}

#[test]
fn without_fuel_limits_the_deadline_stops_an_infinite_loop() {
    let input = json!({ "event": purchase("e-1", 1_000, "USD") });
    let run = run_hook(
        "hostile-infinite-loop",
        "on-event",
        &input,
        &["--fuel", &u64::MAX.to_string(), "--deadline-ms", "50"],
    );
    assert_eq!(run.error()["kind"], "deadline", "{run:?}");
}

#[test]
fn plain_errors_are_one_line_naming_the_hook_and_cause() {
    for (name, hook, _) in HOSTILE {
        let out = Command::new(binary())
            .arg("run")
            .arg(plugin(name))
            .arg(hook)
            .args(["--event", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(purchase("e-1", 1_000, "USD").to_string().as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
    }
}

#[test]
fn malformed_input_is_refused_with_the_field_that_is_wrong() {
    let survey = json!({ "event": {
        "id": "s-1", "occurred_at": NOW, "kind": "survey", "score": 11
    }});
    let run = run_hook("retail-club", "on-event", &survey, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.error()["kind"], "invalid_input");
    assert_eq!(run.error()["pointer"], "/event/score");

    let bad_currency = json!({ "event": purchase("e-1", 100, "usd") });
    let run = run_hook("retail-club", "on-event", &bad_currency, &[]);
    assert_eq!(run.error()["pointer"], "/event/amount/currency");

    let no_event = json!({});
    let run = run_hook("retail-club", "on-event", &no_event, &[]);
    assert_eq!(run.error()["pointer"], "/event");
}

/// The runner handed the plugin a config its own schema refuses, and any currency,
/// where the server refuses both before the plugin sees them (session 22's note): a
/// developer's local run passed where the deployed programme would never run.
#[test]
fn a_config_or_currency_the_server_would_refuse_is_refused_by_the_runner() {
    let event = json!({ "event": purchase("e-1", 100, "USD") });
    let mut bad_config = event.clone();
    bad_config["config"] = json!({ "stars_per_unit": "two" });
    let run = run_hook("coffee-stars", "on-event", &bad_config, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.error()["kind"], "invalid_input");
    assert_eq!(run.error()["pointer"], "/config/stars_per_unit", "{run:?}");

    let mut bad_currency = event.clone();
    bad_currency["currency"] = json!("dollars");
    let run = run_hook("coffee-stars", "on-event", &bad_currency, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.error()["pointer"], "/currency", "{run:?}");

    // A config the schema takes runs.
    let mut good = event;
    good["config"] = json!({ "stars_per_unit": 2 });
    let run = run_hook("coffee-stars", "on-event", &good, &[]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn unknown_hooks_and_unreadable_input_exit_with_usage_errors() {
    let run = run_hook("airline-miles", "on-purchase", &json!({}), &[]);
    assert_eq!(run.code, 2, "{run:?}");
    let out = Command::new(binary())
        .arg("run")
        .arg(plugin("airline-miles"))
        .arg("on-event")
        .args(["--input", "/no/such/file.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let run = run_hook(
        "airline-miles",
        "on-event",
        &json!({ "event": purchase("e", 1, "USD"), "surprise": true }),
        &[],
    );
    assert_eq!(run.code, 2, "unknown input fields are refused: {run:?}");
}

#[test]
fn coffee_stars_earns_double_with_stored_value_and_more_at_gold() {
    let mut event = purchase("order-1", 1_000, "USD");
    event["payment"] = json!("stored_value");
    let gold = json!({ "id": "m-1", "tier": "gold" });
    let run = run_hook(
        "coffee-stars",
        "on-event",
        &json!({ "member": gold, "event": event }),
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // $10.00 x 2 stars (stored value) x 120 % (gold) = 24 stars.
    assert_eq!(credits(&run.json()), [24]);

    let green = json!({ "id": "m-2", "tier": "green" });
    let mut card = purchase("order-2", 745, "USD");
    card["payment"] = json!("card");
    let run = run_hook(
        "coffee-stars",
        "on-event",
        &json!({ "member": green, "event": card }),
        &[],
    );
    let out = run.json();
    assert_eq!(credits(&out), [7]);
    // Green stars expire at the end of the sixth month after the month earned:
    // earned 2026-09-21, expiring 2027-03-31T23:59:59Z.
    assert_eq!(
        out["result"]["ok"]["credits"][0]["expires_at"],
        1_806_537_599
    );
}

#[test]
fn coffee_stars_rewards_have_fixed_prices() {
    let member = json!({ "id": "m-1", "tier": "green", "balance": 150 });
    let run = run_hook(
        "coffee-stars",
        "quote-redemption",
        &json!({ "member": member, "request": { "reward": "brewed-coffee" } }),
        &[],
    );
    assert_eq!(run.json()["result"]["ok"]["decision"], "accept", "{run:?}");
    assert_eq!(run.json()["result"]["ok"]["points"], 100);

    let run = run_hook(
        "coffee-stars",
        "quote-redemption",
        &json!({ "member": member, "request": { "reward": "handcrafted-drink" } }),
        &[],
    );
    assert_eq!(run.json()["result"]["ok"]["decision"], "reject");
    assert_eq!(run.json()["result"]["ok"]["code"], "insufficient-points");
}

#[test]
fn ride_hailing_carries_the_weekly_challenge_in_plugin_state() {
    let ride = |id: &str, at: i64| {
        json!({
            "id": id, "occurred_at": at, "kind": "purchase",
            "amount": { "minor": 1_250, "currency": "SGD" }, "payment": "wallet",
            "items": [{ "sku": "trip", "category": "ride", "amount": 1_250 }]
        })
    };
    let mut state = Value::Null;
    let mut bonus_at = None;
    for n in 1..=6 {
        let input = json!({
            "member": { "id": "rider", "tier": "gold", "state": state },
            "event": ride(&format!("ride-{n}"), NOW + n * 600),
            "currency": "SGD",
        });
        let run = run_hook("ride-hailing", "on-event", &input, &[]);
        assert_eq!(run.code, 0, "{run:?}");
        let out = run.json();
        let credits = credits(&out);
        // SGD 12.50 by wallet at Gold: 56 points a ride.
        assert_eq!(credits[0], 56);
        if credits.len() == 2 {
            assert_eq!(credits[1], 200);
            bonus_at = Some(n);
        }
        state = out["result"]["ok"]["state"].clone();
    }
    assert_eq!(
        bonus_at,
        Some(5),
        "the fifth ride of the week completes the challenge"
    );
    assert_eq!(state["rides"], 6);
}

#[test]
fn ride_hailing_platinum_members_get_ten_free_rides_a_month() {
    let input =
        json!({ "member": { "id": "rider", "tier": "platinum" }, "now": NOW, "currency": "SGD" });
    let run = run_hook("ride-hailing", "perks", &input, &[]);
    let perks = run.json()["result"]["ok"].clone();
    let ride = perks
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "free-ride")
        .expect("a free-ride perk");
    assert_eq!(ride["quantity"], 10);
    assert_eq!(ride["grant"], "2026-09");
}

#[test]
fn retail_club_records_the_nps_score_and_refuses_redemption_in_debt() {
    let survey = json!({
        "member": { "id": "shopper", "tier": "silver" },
        "event": { "id": "s-1", "occurred_at": NOW, "kind": "survey", "score": 9 },
        "currency": "EUR",
    });
    let run = run_hook("retail-club", "on-event", &survey, &[]);
    let out = run.json();
    assert_eq!(credits(&out), [50]);
    assert_eq!(out["result"]["ok"]["annotations"]["nps"], "9");
    assert_eq!(
        out["result"]["ok"]["annotations"]["nps-category"],
        "promoter"
    );

    let in_debt = json!({
        "member": { "id": "shopper", "balance": 5_000, "debt": 120 },
        "request": { "reward": "voucher-10" },
        "currency": "EUR",
    });
    let run = run_hook("retail-club", "quote-redemption", &in_debt, &[]);
    assert_eq!(run.json()["result"]["ok"]["code"], "outstanding-debt");
}

#[test]
fn airline_cash_and_miles_quotes_points_plus_money() {
    let input = json!({
        "member": { "id": "flyer", "tier": "gold", "balance": 52_000 },
        "request": { "amount": { "minor": 45_000, "currency": "USD" }, "points": 30_000 },
    });
    let run = run_hook("airline-miles", "quote-redemption", &input, &[]);
    let quote = run.json()["result"]["ok"].clone();
    assert_eq!(quote["decision"], "accept", "{run:?}");
    assert_eq!(quote["points"], 30_000);
    assert_eq!(quote["cash"], json!({ "minor": 15_000, "currency": "USD" }));
}
