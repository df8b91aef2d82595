//! Designing with evidence, over HTTP: analytics with hand-counted expectations, and
//! simulations whose two sides are checked against live runs of the same programmes
//! on the same operations (so every compared number comes from the real engine, not
//! from this file).

use loyalty_tests::http::{self, Merchant, Server};
use loyalty_tests::{eventually, wall_clock};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn purchase(id: &str, at: i64, minor: i64) -> Value {
    json!({
        "id": id, "occurred_at": at, "kind": "purchase",
        "amount": {"minor": minor, "currency": "USD"},
        "payment": "card",
        "items": [{"sku": "food-1", "category": "food", "amount": minor}]
    })
}

fn survey(id: &str, at: i64, score: u8) -> Value {
    json!({"id": id, "occurred_at": at, "kind": "survey", "score": score})
}

/// The month ("YYYY-MM") of a timestamp.
fn month(ts: i64) -> String {
    let days = ts.div_euclid(DAY) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

/// The same history for any merchant: six members; m0-m3 buy twice, m4 once, m5
/// never; four survey answers (10, 9, 7, 3); m1's first purchase is refunded.
/// m0 bought last 40 days ago, everyone else within the last 10 days.
fn play(m: &Merchant, now: i64) -> (i64, i64) {
    let first = now - 45 * DAY;
    let second = now - 10 * DAY;
    for i in 0..6 {
        m.client
            .post(
                &m.path("/members"),
                &json!({"member": format!("m{i}"), "enrolled_at": first - DAY}),
            )
            .expect(201);
    }
    let post = |member: &str, event: Value| {
        m.client
            .post(&m.path(&format!("/members/{member}/events")), &event)
            .expect(200)
    };
    for i in 0..5 {
        post(
            &format!("m{i}"),
            purchase(&format!("p{i}a"), first + i * 60, 2_000 + i * 1_000),
        );
    }
    post("m0", purchase("p0b", now - 40 * DAY, 1_500));
    for i in 1..4 {
        post(
            &format!("m{i}"),
            purchase(&format!("p{i}b"), second + i * 60, 4_000),
        );
    }
    for (i, score) in [10, 9, 7, 3].into_iter().enumerate() {
        post(
            &format!("m{i}"),
            survey(&format!("s{i}"), second + 3_600 + i as i64, score),
        );
    }
    post(
        "m1",
        json!({"id": "r1", "occurred_at": second + 7_200, "kind": "refund",
               "original_event": "p1a", "amount": {"minor": 3_000, "currency": "USD"}}),
    );
    (first, second)
}

fn wait_done(m: &Merchant, job: &Value) -> Value {
    let id = job["id"].as_str().expect("job id").to_string();
    eventually("the job to end", || {
        let j = m.client.get(&m.path(&format!("/jobs/{id}"))).expect(200);
        let status = j["status"].as_str().unwrap_or_default().to_string();
        (status != "queued" && status != "running").then_some(j)
    })
}

#[test]
fn analytics_count_repeat_customers_lapsed_members_nps_tiers_and_points() {
    let server = Server::start(&[]);
    let shop = http::merchant(&server, "shop", "retail-club");
    let now = wall_clock();
    let (first, second) = play(&shop, now);
    let all = shop.client.get(&shop.path("/analytics")).expect(200);

    let repeat = &all["repeat_customers"];
    assert_eq!(repeat["buyers"], 5);
    assert_eq!(repeat["repeat_buyers"], 4);
    assert_eq!(repeat["repeat_rate"], 0.8);
    assert_eq!(
        repeat["cohorts"],
        json!([{"purchases": 1, "members": 1, "share": 0.2},
               {"purchases": 2, "members": 4, "share": 0.8}])
    );
    let nps = &all["nps"];
    assert_eq!(
        (&nps["promoters"], &nps["passives"], &nps["detractors"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(nps["score"], 25.0);

    // Every member is somewhere; spend per tier adds up to what was bought less the
    // refund.
    let tiers = all["tiers"]["tiers"].as_array().unwrap();
    let members: u64 = tiers.iter().map(|t| t["members"].as_u64().unwrap()).sum();
    assert_eq!(members, 6);
    let spend: i64 = tiers
        .iter()
        .map(|t| t["lifetime_spend"].as_i64().unwrap())
        .sum();
    let bought = (2_000 + 3_000 + 4_000 + 5_000 + 6_000) + 1_500 + 3 * 4_000;
    assert_eq!(spend, bought - 3_000);
    for t in tiers.iter().filter(|t| t["members"].as_u64() > Some(0)) {
        let clv = t["lifetime_spend"].as_f64().unwrap() / t["members"].as_f64().unwrap();
        assert_eq!(t["lifetime_value"].as_f64().unwrap(), clv);
    }

    // Points: issued per month add up; what members hold is issued less reversed.
    let points = &all["points"];
    let per_month: i64 = points["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["issued"].as_i64().unwrap())
        .sum();
    assert_eq!(per_month, points["issued"].as_i64().unwrap());
    assert!(points["issued"].as_i64().unwrap() > 0);
    assert!(points["reversed"].as_i64().unwrap() > 0, "{points}");
    assert_eq!(
        points["outstanding"].as_i64().unwrap(),
        points["issued"].as_i64().unwrap()
            - points["reversed"].as_i64().unwrap()
            - points["redeemed"].as_i64().unwrap()
            - points["expired"].as_i64().unwrap()
            + points["adjusted"].as_i64().unwrap()
    );

    // A period: only the second round of purchases' month.
    let later = shop
        .client
        .get(&shop.path(&format!(
            "/analytics/repeat-customers?from={m}&to={m}",
            m = month(second)
        )))
        .expect(200);
    if month(first) != month(second) && month(now - 40 * DAY) != month(second) {
        assert_eq!(later["buyers"], 3, "{later}");
        assert_eq!(later["repeat_buyers"], 0, "{later}");
    }

    // Lapsed: repeat customers without a purchase for 30 days: m0 only.
    let lapsed = shop
        .client
        .get(&shop.path("/analytics/lapsed?days=30"))
        .expect(200);
    assert_eq!(lapsed["total"], 1);
    assert_eq!(lapsed["members"][0]["member"], "m0");
    assert_eq!(lapsed["members"][0]["purchases"], 2);
    let none = shop
        .client
        .get(&shop.path("/analytics/lapsed?days=60"))
        .expect(200);
    assert_eq!(none["total"], 0);

    // Bad periods and parameters are the caller's error, named.
    let bad = shop.client.get(&shop.path("/analytics/nps?from=2026-13"));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("/query/from"), "{}", bad.body);
    let bad = shop
        .client
        .get(&shop.path("/analytics/nps?from=2026-05&to=2026-04"));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        shop.client.get(&shop.path("/analytics?colour=red")).status,
        422
    );
}

#[test]
fn a_simulation_replays_history_and_each_side_matches_a_live_run_of_its_programme() {
    let server = Server::start(&[]);
    let shop = http::merchant(&server, "shop", "retail-club");
    // The candidate, run live on the same operations by a twin merchant.
    let twin = http::merchant(&server, "twin", "coffee-stars");
    let now = wall_clock();
    play(&shop, now);
    play(&twin, now);
    let bytes = std::fs::read(loyalty_tests::plugin("coffee-stars")).unwrap();
    let candidate = shop
        .client
        .send(
            "POST",
            &shop.path("/plugins"),
            &[("content-type", "application/wasm")],
            Some(&bytes),
        )
        .expect(201)["version"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused requests name the field.
    let bad = shop
        .client
        .post(&shop.path("/simulations"), &json!({"candidate": "nope"}));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("/candidate"), "{}", bad.body);
    let bad = shop.client.post(
        &shop.path("/simulations"),
        &json!({"candidate": candidate, "from": 10, "to": 5}),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    let bad = shop.client.post(
        &shop.path("/simulations"),
        &json!({"candidate": candidate, "config": {"welcome_stars": "many"}}),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("/config"), "{}", bad.body);

    let started = shop
        .client
        .post(&shop.path("/simulations"), &json!({"candidate": candidate}))
        .expect(202);
    assert_eq!(started["kind"], "simulation");
    let job = wait_done(&shop, &started);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["progress"]["percent"], 100.0, "{job}");
    let report = &job["result"];
    // 6 enrolments, 9 purchases, 4 surveys, 1 refund.
    assert_eq!(report["operations"], 20, "{report}");

    for (side, live) in [("active", &shop), ("candidate", &twin)] {
        let r = &report[side];
        let a = live.client.get(&live.path("/analytics")).expect(200);
        let p = &a["points"];
        assert_eq!(r["points_issued"], p["issued"], "{side}: {r} vs {p}");
        assert_eq!(r["points_redeemed"], p["redeemed"], "{side}");
        assert_eq!(r["points_reversed"], p["reversed"], "{side}");
        assert_eq!(r["liability_points"], p["outstanding"], "{side}");
        assert_eq!(r["members"], 6);
        assert_eq!(r["failures"], 0, "{side}: {r}");
        let live_tiers: Vec<Value> = a["tiers"]["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["members"].as_u64() > Some(0))
            .map(|t| json!({"tier": t["tier"], "members": t["members"]}))
            .collect();
        assert_eq!(r["tiers"], json!(live_tiers), "{side}");
    }
    assert_ne!(
        report["active"]["points_issued"],
        report["candidate"]["points_issued"]
    );
    // The members whose outcome differs most, biggest difference first.
    let diffs = report["differences"].as_array().unwrap();
    assert!(!diffs.is_empty());
    let gap = |d: &Value| {
        (d["candidate_points"].as_i64().unwrap() - d["active_points"].as_i64().unwrap()).abs()
    };
    assert!(diffs.windows(2).all(|w| gap(&w[0]) >= gap(&w[1])));

    // The live state is untouched by the replay.
    let after = shop.client.get(&shop.path("/members/m0")).expect(200);
    assert!(after["tier"]["id"].as_str().is_some());
    let jobs = shop.client.get(&shop.path("/jobs")).expect(200);
    assert_eq!(jobs["jobs"][0]["id"], started["id"]);

    // The command line does the same, following the job with a progress bar.
    let cli = std::process::Command::new(loyalty_tests::binary())
        .args([
            "simulate",
            "--server",
            &format!("http://{}", server.addr),
            "--merchant",
            "shop",
            "--candidate",
            &candidate,
        ])
        .env("LOYALTY_KEY", &shop.key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(cli.status.success(), "{stderr}");
    assert!(
        stderr.contains("100.0%") && stderr.contains("done"),
        "{stderr}"
    );
    let printed: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        printed["active"]["points_issued"],
        report["active"]["points_issued"]
    );
    assert_eq!(
        printed["candidate"]["points_issued"],
        report["candidate"]["points_issued"]
    );

    // Another merchant cannot see the job.
    let theirs = twin.client.get(&format!(
        "/v1/merchants/shop/jobs/{}",
        started["id"].as_str().unwrap()
    ));
    assert_eq!(theirs.status, 401, "{}", theirs.body);
}

#[test]
fn a_history_file_is_checked_line_by_line_and_can_be_simulated() {
    let server = Server::start(&[]);
    let shop = http::merchant(&server, "shop", "retail-club");
    let now = wall_clock();
    let lines = [
        json!({"op": "enrol", "member": "ann", "at": now - 5 * DAY}),
        json!({"op": "event", "member": "ann", "event": purchase("f1", now - 4 * DAY, 10_000)}),
        json!({"op": "event", "member": "bob", "event": purchase("f2", now - 3 * DAY, 5_000)}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let upload = |body: &str| {
        shop.client.send(
            "POST",
            &shop.path("/histories"),
            &[("content-type", "application/x-ndjson")],
            Some(body.as_bytes()),
        )
    };
    let broken = upload(&format!(
        "{text}{{\"op\":\"event\",\"member\":1}}\nnot json\n"
    ));
    assert_eq!(broken.status, 422, "{}", broken.body);
    assert!(broken.body.contains("/lines/4"), "{}", broken.body);
    assert!(broken.body.contains("/lines/5"), "{}", broken.body);
    for wrong in ["text/csv", "application/xml"] {
        let wrong_type = shop.client.send(
            "POST",
            &shop.path("/histories"),
            &[("content-type", wrong)],
            Some(text.as_bytes()),
        );
        assert_eq!(wrong_type.status, 415, "{wrong}: {}", wrong_type.body);
    }

    let file = upload(&text).expect(201);
    assert_eq!(file["operations"], 3);
    let version = shop.client.get(&shop.path("/plugins")).expect(200)["active"].clone();
    let job = shop
        .client
        .post(
            &shop.path("/simulations"),
            &json!({"candidate": version, "history": file["id"]}),
        )
        .expect(202);
    let job = wait_done(&shop, &job);
    assert_eq!(job["status"], "done", "{job}");
    let r = &job["result"];
    assert_eq!(r["operations"], 3);
    // Bob was never enrolled in the file: the replay enrols him at his first event.
    assert_eq!(r["active"]["members"], 2);
    // The same programme on both sides: the same outcome, no differences.
    assert_eq!(
        r["active"]["points_issued"],
        r["candidate"]["points_issued"]
    );
    assert_eq!(r["differences"], json!([]));
    assert!(r["active"]["points_issued"].as_i64().unwrap() > 0);
}
