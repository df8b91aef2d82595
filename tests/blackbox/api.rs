//! The HTTP API from outside: every documented route is served, keys work only
//! within their merchant and scope, bad input of every kind gets a precise problem
//! and writes nothing, idempotency keys replay, plugin failures are typed, metrics
//! and the demo are real, and shutdown keeps every acknowledged write.

use std::sync::{Arc, Mutex};

use loyalty_tests::http::{self, Client, OPERATOR, Server};
use serde_json::{Value, json};

use super::common::{T0, enrol, fare};

/// Every (method, path) the OpenAPI document lists.
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            out.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

fn fill(path: &str, merchant: &str, member: &str) -> String {
    path.replace("{merchant}", merchant)
        .replace("{member}", member)
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "x".to_string()
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn call(client: &Client, method: &str, path: &str) -> http::Answer {
    let body = b"{}";
    let (headers, body): (&[(&str, &str)], Option<&[u8]>) = match method {
        "GET" | "DELETE" => (&[], None),
        _ => (&[("content-type", "application/json")], Some(body)),
    };
    client.send(method, path, headers, body)
}

#[test]
fn every_documented_route_is_served_and_refuses_callers_without_a_key() {
    let server = Server::start(&[]);
    let anon = server.client(None);
    let served = anon.get("/openapi.json");
    assert_eq!(served.status, 200);
    let file = std::fs::read_to_string(loyalty_tests::root().join("schemas/openapi.json"))
        .expect("schemas/openapi.json");
    assert_eq!(
        served.json(),
        serde_json::from_str::<Value>(&file).unwrap(),
        "the served document is the one in the repository"
    );
    let doc = served.json();
    let ops = documented(&doc);
    assert!(ops.len() > 40, "{}", ops.len());
    for (method, path) in ops {
        let answer = call(&anon, &method, &fill(&path, "acme", "alice"));
        let public = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/dashboard",
        ]
        .contains(&path.as_str());
        if public {
            assert_eq!(answer.status, 200, "{method} {path}: {answer:?}");
        } else {
            assert_eq!(answer.status, 401, "{method} {path}: {answer:?}");
            assert_eq!(answer.problem(), "unauthorized");
            assert!(answer.header("www-authenticate").is_some());
        }
    }
    let nothing = anon.get("/v1/nothing-here");
    assert_eq!(
        (nothing.status, nothing.problem().as_str()),
        (404, "no-route")
    );
    let wrong = anon.send("PUT", "/healthz", &[], None);
    assert_eq!(
        (wrong.status, wrong.problem().as_str()),
        (405, "method-not-allowed")
    );
}

/// Everything observable about merchant `m`'s member and settings.
fn snapshot(m: &http::Merchant, member: &str) -> Vec<Value> {
    [
        format!("/members/{member}"),
        format!("/members/{member}/ledger"),
        format!("/members/{member}/tiers"),
        "/keys".to_string(),
        "/partners".to_string(),
        "/plugins".to_string(),
        "/config".to_string(),
        "/budget".to_string(),
    ]
    .iter()
    .map(|p| m.client.get(&m.path(p)).expect(200))
    .collect()
}

#[test]
fn keys_work_only_within_their_merchant_and_scope_and_refusals_change_nothing() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let b = http::merchant(&server, "bravo", "airline-miles");
    enrol(&a, "alice");
    a.client
        .post(&a.path("/members/alice/events"), &fare("f1", 50_000))
        .expect(200);
    a.client
        .post(
            &a.path("/partners"),
            &json!({"id": "hotel", "name": "Hotel"}),
        )
        .expect(201);
    a.client
        .post(&a.path("/partners"), &json!({"id": "cars", "name": "Cars"}))
        .expect(201);
    let partner_key = a
        .client
        .post(
            &a.path("/keys"),
            &json!({"kind": "partner", "partner": "hotel", "label": "hotel till"}),
        )
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let hotel = server.client(Some(&partner_key));
    let before = snapshot(&a, "alice");

    let doc = server.client(None).get("/openapi.json").json();
    let partner_ops = [
        ("POST", "/v1/merchants/{merchant}/members/{member}/events"),
        ("GET", "/v1/merchants/{merchant}/members/{member}/offers"),
        (
            "POST",
            "/v1/merchants/{merchant}/members/{member}/redemptions",
        ),
        (
            "POST",
            "/v1/merchants/{merchant}/redemptions/{redemption}/commit",
        ),
    ];
    for (method, path) in documented(&doc) {
        if !path.starts_with("/v1/merchants/{merchant}") {
            continue;
        }
        let target = fill(&path, "acme", "alice");
        // Merchant B's key on merchant A's paths: unknown there.
        let answer = call(&b.client, &method, &target);
        assert_eq!(answer.status, 401, "B's key on {method} {path}: {answer:?}");
        // The operator manages merchants, not their members.
        let answer = call(&server.client(Some(OPERATOR)), &method, &target);
        let staff = [
            "/v1/merchants/{merchant}",
            "/v1/merchants/{merchant}/keys",
            "/v1/merchants/{merchant}/keys/{key}",
        ];
        if !staff.contains(&path.as_str()) {
            assert_eq!(
                answer.status, 403,
                "operator on {method} {path}: {answer:?}"
            );
        }
        // The partner key: only its own events, offers and redemptions.
        if !partner_ops.contains(&(method.as_str(), path.as_str())) {
            let answer = call(&hotel, &method, &target);
            assert_eq!(answer.status, 403, "partner on {method} {path}: {answer:?}");
            assert_eq!(answer.problem(), "forbidden");
        }
    }
    // Acting for another partner is refused.
    let mut stay = fare("stay-1", 20_000);
    stay["kind"] = json!("partner_purchase");
    stay["partner"] = json!("cars");
    let answer = hotel.post(&a.path("/members/alice/events"), &stay);
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (403, "forbidden")
    );
    let answer = hotel.get(&a.path("/members/alice/offers?partner=cars"));
    assert_eq!(answer.status, 403, "{answer:?}");
    // A partner key does not open another merchant.
    let answer = hotel.get(&b.path("/members/alice/offers"));
    assert_eq!(answer.status, 401, "{answer:?}");
    // B's own key finds no "alice" in B.
    let answer = b.client.get(&b.path("/members/alice"));
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (404, "unknown-member")
    );
    assert_eq!(
        snapshot(&a, "alice"),
        before,
        "refused calls changed nothing"
    );

    // A revoked key stops working at once.
    let keys = a.client.get(&a.path("/keys")).expect(200);
    let hotel_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["partner"] == "hotel")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ok_before = hotel.get(&a.path("/members/alice/offers"));
    assert_eq!(ok_before.status, 200, "{ok_before:?}");
    a.client
        .delete(&a.path(&format!("/keys/{hotel_id}")))
        .expect(200);
    let answer = hotel.get(&a.path("/members/alice/offers"));
    assert_eq!(answer.status, 401, "{answer:?}");
}

#[test]
fn bad_input_of_every_kind_gets_a_precise_problem_and_writes_nothing() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    let before = snapshot(&a, "alice");
    let events = a.path("/members/alice/events");
    let json_header: &[(&str, &str)] = &[("content-type", "application/json")];
    let send =
        |body: &[u8], headers: &[(&str, &str)]| a.client.send("POST", &events, headers, Some(body));

    let malformed = send(b"{\"id\": ", json_header);
    assert_eq!(
        (malformed.status, malformed.problem().as_str()),
        (400, "malformed-json")
    );

    let not_utf8 = send(b"{\"id\": \"\xff\xfe\"}", json_header);
    assert_eq!(not_utf8.status, 400, "{not_utf8:?}");

    let deep = "[".repeat(100_000);
    let answer = send(deep.as_bytes(), json_header);
    assert!(answer.status == 400 || answer.status == 413, "{answer:?}");

    let wrong = send(
        br#"{"id": 7, "occurred_at": "yesterday", "kind": "purchase", "colour": "red", "amount": {"minor": 1.5, "currency": "USD"}}"#,
        json_header,
    );
    assert_eq!(
        (wrong.status, wrong.problem().as_str()),
        (422, "validation")
    );
    let mut pointers: Vec<String> = wrong.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect();
    pointers.sort();
    assert_eq!(
        pointers,
        ["/amount/minor", "/colour", "/id", "/occurred_at"],
        "{wrong:?}"
    );

    let huge = format!(
        "{{\"id\": \"big\", \"occurred_at\": {T0}, \"kind\": \"purchase\", \"attributes\": {{\"note\": \"{}\"}}}}",
        "x".repeat(200_000)
    );
    let answer = send(huge.as_bytes(), json_header);
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (413, "body-too-large")
    );

    let answer = send(
        b"id=1",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (415, "unsupported-media-type")
    );
    let answer = send(b"{}", &[]);
    assert_eq!(answer.status, 415, "{answer:?}");

    // The engine's own checks name the field too.
    let answer = a.client.post(
        &events,
        &json!({"id": "s1", "occurred_at": T0, "kind": "survey", "score": 11}),
    );
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.json()["errors"][0]["pointer"], "/score");

    let answer = a
        .client
        .get(&a.path("/members/alice/ledger?limit=ten&colour=red"));
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (422, "validation")
    );

    let answer = a.client.get(&a.path("/members/nobody"));
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (404, "unknown-member")
    );

    let answer = a.client.put(
        &a.path("/config"),
        &json!({"config": {"miles_per_usd": "many"}}),
    );
    assert_eq!(answer.status, 422, "{answer:?}");
    assert!(
        answer.json()["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/config"),
        "{answer:?}"
    );

    for id in ["big", "7", "s1"] {
        let answer = a.client.get(&a.path(&format!("/events/{id}")));
        assert_eq!(
            answer.status, 404,
            "event {id} was not recorded: {answer:?}"
        );
    }
    assert_eq!(snapshot(&a, "alice"), before, "nothing was written");
}

#[test]
fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_request() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let enrol_body = json!({"member": "bob", "enrolled_at": T0}).to_string();
    let post = |key: &str, path: &str, body: &str| {
        a.client.send(
            "POST",
            &a.path(path),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Some(body.as_bytes()),
        )
    };
    let first = post("k-1", "/members", &enrol_body);
    assert_eq!(first.status, 201, "{first:?}");
    let again = post("k-1", "/members", &enrol_body);
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = post(
        "k-1",
        "/members",
        &json!({"member": "carol", "enrolled_at": T0}).to_string(),
    );
    assert_eq!(
        (other.status, other.problem().as_str()),
        (422, "idempotency-key-reused")
    );
    assert_eq!(a.client.get(&a.path("/members/carol")).status, 404);

    // A quote retried with the same key is the same quote, not a second one.
    a.client
        .post(&a.path("/members/bob/events"), &fare("f1", 500_000))
        .expect(200);
    let quote = json!({"amount": {"minor": 10_000, "currency": "USD"}}).to_string();
    let q1 = post("q-1", "/members/bob/redemptions", &quote);
    let q2 = post("q-1", "/members/bob/redemptions", &quote);
    assert_eq!(q1.status, q2.status, "{q1:?} {q2:?}");
    assert_eq!(q1.body, q2.body);

    let bad = a.client.send(
        "POST",
        &a.path("/members"),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", ""),
        ],
        Some(enrol_body.as_bytes()),
    );
    assert_eq!(bad.status, 422, "{bad:?}");
    assert_eq!(bad.json()["errors"][0]["pointer"], "idempotency-key");
}

#[test]
fn a_key_created_under_an_idempotency_key_is_shown_once_and_its_token_is_not_kept() {
    let mut server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let issue = || {
        a.client.send(
            "POST",
            &a.path("/keys"),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "new-key-1"),
            ],
            Some(
                json!({"kind": "merchant", "label": "till"})
                    .to_string()
                    .as_bytes(),
            ),
        )
    };
    let first = issue();
    let token = first.expect(201)["token"].as_str().unwrap().to_string();
    assert!(server.client(Some(&token)).get(&a.path("/keys")).status == 200);
    let keys = a.client.get(&a.path("/keys")).expect(200)["keys"]
        .as_array()
        .unwrap()
        .len();

    // The retry creates no second key and does not see the token again.
    let again = issue();
    assert_eq!(
        (again.status, again.problem().as_str()),
        (409, "key-shown-once")
    );
    assert!(!again.body.contains(&token), "{again:?}");
    assert_eq!(
        a.client.get(&a.path("/keys")).expect(200)["keys"]
            .as_array()
            .unwrap()
            .len(),
        keys
    );

    // Nothing on disk holds the token: keys are kept as digests only.
    let data = server.data.clone();
    server.stop();
    let mut files = vec![data];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds the token",
                path.display()
            );
        }
    }
}

#[test]
fn plugin_uploads_are_refused_with_what_is_wrong_and_failures_name_the_hook() {
    let server = Server::start(&[]);
    let op = server.client(Some(OPERATOR));
    let created = op
        .post(
            "/v1/merchants",
            &json!({"id": "hostile", "name": "Hostile", "currency": "USD"}),
        )
        .expect(201);
    let m = server.client(Some(created["key"]["token"].as_str().unwrap()));
    let upload = |bytes: &[u8]| {
        m.send(
            "POST",
            "/v1/merchants/hostile/plugins",
            &[("content-type", "application/wasm")],
            Some(bytes),
        )
    };
    let answer = upload(b"definitely not wasm");
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (422, "plugin-rejected")
    );
    assert_eq!(answer.json()["code"], "not_wasm");
    let wrong = std::fs::read(loyalty_tests::plugin("hostile-wrong-exports")).unwrap();
    let answer = upload(&wrong);
    assert_eq!(answer.json()["code"], "bad_exports", "{answer:?}");
    let mut big = std::fs::read(loyalty_tests::plugin("airline-miles")).unwrap();
    big.resize(3 << 20, 0);
    let answer = upload(&big);
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.json()["code"], "too_large");

    // With no programme, members cannot join.
    let answer = m.post(
        "/v1/merchants/hostile/members",
        &json!({"member": "x", "enrolled_at": T0}),
    );
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (409, "no-programme")
    );

    // A programme that traps: a 424 naming the hook and the kind, and nothing kept.
    let trap = std::fs::read(loyalty_tests::plugin("hostile-trap")).unwrap();
    let v = upload(&trap).expect(201);
    let version = v["version"].as_str().unwrap();
    m.post(
        &format!("/v1/merchants/hostile/plugins/{version}/activate"),
        &json!({}),
    )
    .expect(200);
    let answer = m.post(
        "/v1/merchants/hostile/members",
        &json!({"member": "x", "enrolled_at": T0}),
    );
    assert_eq!(
        (answer.status, answer.problem().as_str()),
        (424, "plugin-failed")
    );
    let p = answer.json();
    assert_eq!(p["code"], "trap");
    assert_eq!(
        p["plugin_version"]
            .as_str()
            .map(|v| v.contains(&version[..12])),
        Some(true)
    );
    assert!(p["hook"].is_string());
    assert_eq!(m.get("/v1/merchants/hostile/members/x").status, 404);

    let metrics = server.client(None).get("/metrics").body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("loyalty_plugin_failures_total") && l.contains("kind=\"trap\"")),
        "{metrics}"
    );
}

#[test]
fn metrics_count_requests_hook_calls_and_flushes() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    for i in 0..5 {
        a.client
            .post(
                &a.path("/members/alice/events"),
                &fare(&format!("f{i}"), 30_000),
            )
            .expect(200);
    }
    let answer = server.client(None).get("/metrics");
    assert_eq!(answer.status, 200);
    let text = answer.body;
    let value = |prefix: &str, needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} {needle} in {text}"))
    };
    assert_eq!(
        value(
            "loyalty_http_request_duration_seconds_count",
            "route=\"/v1/merchants/{merchant}/members/{member}/events\""
        ),
        5.0
    );
    assert!(value("loyalty_hook_duration_seconds_count", "hook=\"on-event\"") >= 5.0);
    assert!(value("loyalty_hook_fuel_count", "hook=\"on-event\"") >= 5.0);
    assert!(value("loyalty_storage_flush_duration_seconds_count", "") >= 1.0);
}

#[test]
fn shutdown_finishes_requests_in_flight_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    for i in 0..8 {
        enrol(&a, &format!("m{i}"));
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for t in 0..8 {
        let client = a.client.clone();
        let acked = acked.clone();
        let path = a.path(&format!("/members/m{t}/events"));
        threads.push(std::thread::spawn(move || {
            for i in 0..200 {
                let id = format!("t{t}-{i}");
                let answer = std::panic::catch_unwind(|| client.post(&path, &fare(&id, 10_000)));
                match answer {
                    Ok(a) if a.status == 200 => acked.lock().unwrap().push((t, id)),
                    _ => break,
                }
            }
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = server.stop().expect("exit status");
    assert!(status.success(), "clean exit: {status:?}");
    for t in threads {
        let _ = t.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let server = Server::start_on(&data, &[]);
    let client = server.client(Some(&a.key));
    for (_, id) in &acked {
        let answer = client.get(&a.path(&format!("/events/{id}")));
        assert_eq!(
            answer.status, 200,
            "acknowledged event {id} survived: {answer:?}"
        );
    }
}

#[test]
fn the_demo_prints_keys_and_a_curl_that_works() {
    let server = Server::start(&["--demo"]);
    let banner = &server.banner;
    let key_after = |label: &str| -> String {
        banner
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {label} in {banner}"))
            .to_string()
    };
    let merchant_key = key_after("merchant key:");
    let partner_key = key_after("partner key (hotel):");
    // Replay the printed curl commands: URL, key and body as printed.
    let lines: Vec<&str> = banner.lines().collect();
    let mut replayed = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("curl -s ") else {
            continue;
        };
        let url = rest
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap();
        let path = &url[url.find("/v1/").unwrap()..];
        let client = server.client(Some(&merchant_key));
        let body_line = lines[i..]
            .iter()
            .take(3)
            .find_map(|l| l.trim().strip_prefix("-d '"))
            .map(|b| b.trim_end_matches("' && echo").to_string());
        let answer = if rest.starts_with("-X POST") {
            let body: Value = serde_json::from_str(body_line.as_deref().unwrap()).unwrap();
            client.post(path, &body)
        } else {
            client.get(path)
        };
        assert!(answer.status < 300, "{line}: {answer:?}");
        replayed += 1;
    }
    assert_eq!(replayed, 3, "{banner}");
    let member = server
        .client(Some(&merchant_key))
        .get("/v1/merchants/demo/members/alice")
        .expect(200);
    assert!(
        member["balance"]["available"].as_i64().unwrap() > 0,
        "{member}"
    );
    // The partner key is the hotel's: it may read the hotel's offers.
    let offers = server
        .client(Some(&partner_key))
        .get("/v1/merchants/demo/members/alice/offers")
        .expect(200);
    assert_eq!(offers["partner"], "hotel");
}

#[test]
fn the_cache_size_is_a_flag_and_a_bad_value_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A small cache serves, and the data outlives a restart with another size.
    let mut server = Server::start_on(&data, &["--cache-mib", "4"]);
    let m = http::merchant(&server, "air", "airline-miles");
    enrol(&m, "ann");
    m.client
        .post(&m.path("/members/ann/events"), &fare("f-1", 40_000))
        .expect(200);
    server.stop();
    let server = Server::start_on(&data, &["--cache-mib", "64"]);
    let ann = server
        .client(Some(&m.key))
        .get("/v1/merchants/air/members/ann")
        .expect(200);
    assert!(ann["balance"]["available"].as_i64().unwrap() > 0, "{ann}");

    let refused = std::process::Command::new(loyalty_tests::binary())
        .args(["serve", "--cache-mib", "lots"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--cache-mib"), "{stderr}");
}
