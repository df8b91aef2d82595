//! The HTTP API against hostile and unusual callers: scopes (a partner's refunds),
//! idempotency keys (revoked or invalid keys, personal data, secrets shown once,
//! large data files), path and body edge cases (bytes that are not UTF-8, numbers out
//! of range, repeated members, absurd times and amounts), and refused uploads. Each of
//! these failed before the fix it came with (session 22's review).

use loyalty_tests::http::{self, Server};
use serde_json::{Value, json};

use super::common::{T0, enrol, fare};

fn available(m: &http::Merchant, member: &str) -> i64 {
    m.client
        .get(&m.path(&format!("/members/{member}")))
        .expect(200)["balance"]["available"]
        .as_i64()
        .unwrap()
}

/// A key of partner `partner` (registered here) of merchant `m`.
fn partner_key(m: &http::Merchant, partner: &str) -> String {
    m.client
        .post(
            &m.path("/partners"),
            &json!({"id": partner, "name": partner}),
        )
        .expect(201);
    m.client
        .post(
            &m.path("/keys"),
            &json!({"kind": "partner", "partner": partner}),
        )
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn post_with_key(client: &http::Client, path: &str, idem: &str, body: &Value) -> http::Answer {
    client.send(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("idempotency-key", idem),
        ],
        Some(body.to_string().as_bytes()),
    )
}

/// A partner key may post only its own partner's events, yet it can refund (and so
/// take back the points of) a purchase the merchant itself, or another partner,
/// recorded.
#[test]
fn a_partner_key_cannot_refund_a_purchase_that_is_not_its_partners() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    a.client
        .post(&a.path("/members/alice/events"), &fare("shop-1", 50_000))
        .expect(200);
    let before = available(&a, "alice");
    let hotel = server.client(Some(&partner_key(&a, "hotel")));
    let answer = hotel.post(
        &a.path("/members/alice/events"),
        &json!({
            "id": "hotel-refund-1", "occurred_at": T0 + 120, "kind": "refund",
            "original_event": "shop-1",
            "amount": {"minor": 50_000, "currency": "USD"}
        }),
    );
    assert!(
        answer.status == 403 || answer.status == 404 || answer.status == 422,
        "the hotel's key refunded the merchant's own purchase: {answer:?}"
    );
    assert_eq!(available(&a, "alice"), before, "points were taken back");
    assert_eq!(
        answer.json()["detail"].as_str().map(|d| d.contains("USD")),
        Some(false),
        "the answer tells the partner about the purchase: {answer:?}"
    );

    // The hotel's own purchase is the hotel's to refund, and the merchant's key may
    // refund anything.
    let earned = hotel
        .post(&a.path("/members/alice/events"), &fare("hotel-1", 20_000))
        .expect(200);
    assert!(
        earned["credited"].as_array().is_some_and(|c| !c.is_empty()),
        "{earned}"
    );
    let refund = |id: &str, original: &str, minor: i64| {
        json!({
            "id": id, "occurred_at": T0 + 180, "kind": "refund", "original_event": original,
            "full": false, "amount": {"minor": minor, "currency": "USD"}
        })
    };
    let own = hotel
        .post(
            &a.path("/members/alice/events"),
            &refund("hotel-refund-2", "hotel-1", 10_000),
        )
        .expect(200);
    assert!(own["reversed"].as_i64().unwrap() > 0, "{own}");
    let by_merchant = a
        .client
        .post(
            &a.path("/members/alice/events"),
            &refund("merchant-refund-1", "hotel-1", 10_000),
        )
        .expect(200);
    assert!(
        by_merchant["reversed"].as_i64().unwrap() > 0,
        "{by_merchant}"
    );
}

/// Erasing a member erases its personal data, but an enrolment sent with an
/// `Idempotency-Key` keeps its answer (birthday, attributes, card code) and replays
/// it after the erasure.
#[test]
fn erasure_removes_personal_data_from_stored_idempotent_answers() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let body = json!({
        "member": "erin", "enrolled_at": T0, "birthday": "1990-05-17",
        "attributes": {"email": "erin@example.com"}
    });
    post_with_key(&a.client, &a.path("/members"), "enrol-erin", &body).expect(201);
    a.client.delete(&a.path("/members/erin")).expect(200);
    let erased = a.client.get(&a.path("/members/erin")).expect(200);
    assert_eq!(erased["birthday"], Value::Null, "{erased}");
    let again = post_with_key(&a.client, &a.path("/members"), "enrol-erin", &body);
    assert!(
        !again.body.contains("erin@example.com") && !again.body.contains("1990-05-17"),
        "the erased member's personal data is replayed: {again:?}"
    );
}

/// A revoked key "stops working at once", but a retry with an idempotency key it
/// used before is answered (201 with the member) before the key is checked.
#[test]
fn a_revoked_key_gets_no_idempotent_replay() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let issued = a
        .client
        .post(
            &a.path("/keys"),
            &json!({"kind": "merchant", "label": "till"}),
        )
        .expect(201);
    let till = server.client(Some(issued["token"].as_str().unwrap()));
    let body = json!({"member": "dora", "enrolled_at": T0});
    post_with_key(&till, &a.path("/members"), "k1", &body).expect(201);
    a.client
        .delete(&a.path(&format!("/keys/{}", issued["id"].as_str().unwrap())))
        .expect(200);
    assert_eq!(till.get(&a.path("/members/dora")).status, 401);
    let again = post_with_key(&till, &a.path("/members"), "k1", &body);
    assert_eq!(again.status, 401, "a revoked key got an answer: {again:?}");
}

/// Nothing is stored for a caller without a valid key, yet a request with any
/// `Authorization` header and an `Idempotency-Key` to a path that does not exist (or
/// with a method it does not take) has its answer written to storage, durably: a
/// replay proves it.
#[test]
fn unauthenticated_requests_write_no_idempotency_records() {
    let server = Server::start(&[]);
    let anon = server.client(Some("not-a-key"));
    let send = |method: &str, path: &str| {
        anon.send(method, path, &[("idempotency-key", "any-1")], Some(b"x"))
    };
    let first = send("POST", "/v1/merchants/victim/nothing");
    assert_eq!(first.status, 404);
    let again = send("POST", "/v1/merchants/victim/nothing");
    assert_eq!(
        again.header("idempotent-replayed"),
        None,
        "an unauthenticated request's answer was stored: {again:?}"
    );
    let first = send("PUT", "/healthz");
    assert_eq!(first.status, 405);
    let again = send("PUT", "/healthz");
    assert_eq!(again.header("idempotent-replayed"), None, "{again:?}");
}

/// Every error is problem+json; a path segment that is not UTF-8 once decoded gets
/// axum's plain-text 400.
#[test]
fn a_path_segment_that_is_not_utf8_gets_a_problem() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let answer = a.client.get(&a.path("/members/%FF"));
    assert!(answer.status == 400 || answer.status == 404 || answer.status == 422);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{answer:?}"
    );
}

/// Validation problems name each failing field by JSON pointer; an integer out of
/// range for its type, or a whole number written with a fraction, is reported with
/// the empty pointer (the body) and a message that names no field.
#[test]
fn an_out_of_range_number_is_named_by_its_pointer() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    let events = a.path("/members/alice/events");
    let send = |body: &str| {
        a.client.send(
            "POST",
            &events,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    };
    for (body, pointer) in [
        (
            format!(
                r#"{{"id":"e1","occurred_at":{T0},"kind":"purchase","amount":{{"minor":9223372036854775808,"currency":"USD"}}}}"#
            ),
            "/amount/minor",
        ),
        (
            format!(r#"{{"id":"e2","occurred_at":{T0}.0,"kind":"purchase"}}"#),
            "/occurred_at",
        ),
        (
            format!(
                r#"{{"id":"e3","occurred_at":{T0},"kind":"purchase","items":[{{"amount":5,"quantity":4294967296}}]}}"#
            ),
            "/items/0/quantity",
        ),
    ] {
        let answer = send(&body);
        assert_eq!(answer.status, 422, "{answer:?}");
        assert_eq!(
            answer.json()["errors"][0]["pointer"],
            pointer,
            "{body} -> {answer:?}"
        );
    }
}

/// Points are i64 and the API takes any i64: an adjustment of i64::MAX (or i64::MIN)
/// wraps the balance, breaking "balance = sum of the ledger" and "no negative balance
/// except recorded debt".
#[test]
fn a_huge_adjustment_does_not_wrap_the_balance() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "bob");
    enrol(&a, "carl");
    let adjust = |member: &str, id: &str, points: i64| {
        a.client.post(
            &a.path(&format!("/members/{member}/adjustments")),
            &json!({"id": id, "points": points, "reason": "goodwill", "by": "ops"}),
        )
    };
    for (member, id, points) in [("bob", "a1", i64::MAX), ("carl", "a2", i64::MIN)] {
        let answer = adjust(member, id, points);
        if answer.status == 200 {
            let b = answer.json();
            let available = b["available"].as_i64().unwrap();
            let debt = b["debt"].as_i64().unwrap();
            assert!(
                available >= 0 && debt >= 0,
                "{member}: adjustment of {points} answered balance {b}"
            );
            let ledger = a
                .client
                .get(&a.path(&format!("/members/{member}/ledger")))
                .expect(200);
            let sum = ledger["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["points"].as_i64().unwrap() as i128)
                .sum::<i128>();
            let view = a
                .client
                .get(&a.path(&format!("/members/{member}")))
                .expect(200);
            let bal = &view["balance"];
            let held = bal["available"].as_i64().unwrap() as i128
                + bal["pending"].as_i64().unwrap() as i128
                - bal["debt"].as_i64().unwrap() as i128;
            assert_eq!(
                held, sum,
                "{member}: balance {bal} against ledger sum {sum}"
            );
        } else {
            assert_eq!(answer.status, 422, "{answer:?}");
        }
    }
}

/// Timestamps are not range-checked: an event at i64::MIN is accepted and credits
/// points expiring in a wrapped-around year, and one at i64::MAX is blamed on the
/// merchant's plugin (424 plugin-failed) rather than refused as the caller's bad
/// input.
#[test]
fn an_absurd_timestamp_is_refused_naming_the_field() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    for (id, at) in [("past", i64::MIN), ("future", i64::MAX)] {
        let mut event = fare(id, 50_000);
        event["occurred_at"] = json!(at);
        let answer = a.client.post(&a.path("/members/alice/events"), &event);
        assert_eq!(answer.status, 422, "occurred_at {at}: {answer:?}");
        assert_eq!(answer.json()["errors"][0]["pointer"], "/occurred_at");
    }
}

/// A data upload that the handler refuses after it was spooled (a CSV sent as a
/// history, a history that is not UTF-8) leaves its spool file behind until the next
/// restart: up to 1 GiB a request.
#[test]
fn a_refused_upload_leaves_no_spool_file() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let upload = |ct: &str, body: &[u8]| {
        a.client.send(
            "POST",
            &a.path("/histories"),
            &[("content-type", ct)],
            Some(body),
        )
    };
    assert_eq!(upload("text/csv", b"member,enrolled_at\nx,1\n").status, 415);
    assert_eq!(upload("application/x-ndjson", b"\xff\xfe\n").status, 422);
    let spool = server.data.join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left behind: {left:?}");
}

/// Data files (imports, histories) may be 1 GiB, and every write accepts an
/// `Idempotency-Key`; with one, an upload over 4 MiB is refused 413.
#[test]
fn an_idempotency_key_does_not_shrink_the_data_file_limit() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let mut csv = String::from("member,enrolled_at\n");
    for i in 0..250_000 {
        csv.push_str(&format!("imp{i:08},{T0}\n"));
    }
    assert!(csv.len() > 4 << 20);
    let answer = a.client.send(
        "POST",
        &a.path("/imports"),
        &[
            ("content-type", "text/csv"),
            ("idempotency-key", "import-1"),
        ],
        Some(csv.as_bytes()),
    );
    assert_eq!(answer.status, 202, "{answer:?}");
}

/// Unknown fields are refused, never ignored, but a repeated field is taken silently
/// (the last one wins), so a body can say two things at once.
#[test]
fn a_repeated_field_is_refused() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    let body = format!(r#"{{"id":"dup-a","id":"dup-b","occurred_at":{T0},"kind":"check_in"}}"#);
    let answer = a.client.send(
        "POST",
        &a.path("/members/alice/events"),
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    );
    assert!(
        answer.status == 400 || answer.status == 422,
        "a body with `id` twice was accepted: {answer:?}"
    );
}

/// A webhook's signing secret is "shown this once", as a key's token is; but under an
/// `Idempotency-Key` the answer holding it is stored and replayed, unlike a key's.
#[test]
fn a_webhook_secret_is_not_replayed() {
    let server = Server::start(&["--webhook-allow-private"]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["points.earned"]});
    let first = post_with_key(&a.client, &a.path("/webhooks"), "hook-1", &body);
    let secret = first.expect(201)["secret"].as_str().unwrap().to_string();
    let again = post_with_key(&a.client, &a.path("/webhooks"), "hook-1", &body);
    assert!(!again.body.contains(&secret), "{again:?}");
}

/// An event dated years ahead (a till's wrong clock, a typo) was accepted, and applying
/// it settled the member's account at that date: points still valid today expired for
/// good. The API now refuses times more than an hour past its clock.
#[test]
fn an_event_dated_ahead_of_the_clock_is_refused_and_expires_nothing() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let now = loyalty_tests::wall_clock();
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "alice", "enrolled_at": now - 60}),
        )
        .expect(201);
    let mut flight = fare("f-1", 50_000);
    flight["occurred_at"] = json!(now - 30);
    a.client
        .post(&a.path("/members/alice/events"), &flight)
        .expect(200);
    let before = a.client.get(&a.path("/members/alice")).expect(200)["balance"].clone();
    assert!(before["available"].as_i64().unwrap() > 0, "{before}");
    let ahead = now + 10 * 365 * 86_400;
    let answer = a.client.post(
        &a.path("/members/alice/events"),
        &json!({"id": "c-1", "occurred_at": ahead, "kind": "check_in"}),
    );
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(
        answer.json()["errors"][0]["pointer"],
        "/occurred_at",
        "{answer:?}"
    );
    let enrol = a.client.post(
        &a.path("/members"),
        &json!({"member": "bob", "enrolled_at": ahead}),
    );
    assert_eq!(enrol.status, 422, "{enrol:?}");
    assert_eq!(
        enrol.json()["errors"][0]["pointer"],
        "/enrolled_at",
        "{enrol:?}"
    );
    let after = a.client.get(&a.path("/members/alice")).expect(200)["balance"].clone();
    assert_eq!(after, before, "the refused event changed the balance");
    // A clock a minute fast is fine.
    a.client
        .post(
            &a.path("/members/alice/events"),
            &json!({"id": "c-2", "occurred_at": now + 60, "kind": "check_in"}),
        )
        .expect(200);
}

fn upload_plugin(m: &http::Merchant, plugin: &str) -> String {
    let bytes = std::fs::read(loyalty_tests::plugin(plugin)).unwrap();
    let answer = m.client.send(
        "POST",
        &m.path("/plugins"),
        &[("content-type", "application/wasm")],
        Some(&bytes),
    );
    assert!(answer.status == 200 || answer.status == 201, "{answer:?}");
    answer.json()["version"].as_str().unwrap().to_string()
}

/// Activation refuses a version whose config schema the merchant's config does not
/// satisfy (`config-does-not-fit-version`); rollback activated one without that
/// check, and every call of the programme then failed on the merchant's config.
#[test]
fn rollback_is_refused_like_activation_when_the_config_does_not_fit() {
    let server = Server::start(&[]);
    let m = http::merchant(&server, "rb", "coffee-stars");
    let coffee = upload_plugin(&m, "coffee-stars");
    let airline = upload_plugin(&m, "airline-miles");
    m.client
        .post(&m.path(&format!("/plugins/{airline}/activate")), &json!({}))
        .expect(200);
    // A config for the airline programme (coffee-stars' schema has
    // additionalProperties: false and no such field).
    m.client
        .put(
            &m.path("/config"),
            &json!({"config": {"welcome_bonus": 500}}),
        )
        .expect(200);

    // Activating coffee-stars directly is refused: the config does not fit it.
    let direct = m
        .client
        .post(&m.path(&format!("/plugins/{coffee}/activate")), &json!({}));
    assert_eq!(direct.status, 422, "{direct:?}");
    assert_eq!(
        direct.json()["code"],
        "config-does-not-fit-version",
        "{direct:?}"
    );

    // Rolling back to the same version must be refused the same way.
    let rollback = m.client.post(&m.path("/plugins/rollback"), &json!({}));
    let active = m.client.get(&m.path("/plugins")).json()["active"].clone();
    let enrol = m.client.post(
        &m.path("/members"),
        &json!({"member": "alice", "enrolled_at": 1_790_000_000}),
    );
    assert_eq!(
        (rollback.status, rollback.json()["code"].as_str()),
        (422, Some("config-does-not-fit-version")),
        "rollback put back coffee-stars ({coffee}) with a config its schema refuses: \
         active is now {active}; enrolling a member then answers {} {:?}",
        enrol.status,
        enrol.json()
    );
    assert_eq!(active, json!(airline), "the airline programme still runs");
    assert_eq!(enrol.status, 201, "{enrol:?}");
}

/// A programme that failed (424) had its answer stored for the Idempotency-Key, so the
/// retry got the failure again even after the merchant rolled the programme back.
/// Nothing was written, so a retry runs again: here it succeeds once a working
/// programme is back.
#[test]
fn a_programme_failure_is_not_kept_for_an_idempotency_key() {
    let server = Server::start(&[]);
    let m = http::merchant(&server, "acme", "airline-miles");
    let trap = upload_plugin(&m, "hostile-trap");
    m.client
        .post(&m.path(&format!("/plugins/{trap}/activate")), &json!({}))
        .expect(200);
    let body = json!({"member": "x", "enrolled_at": T0});
    let first = post_with_key(&m.client, &m.path("/members"), "enrol-x", &body);
    assert_eq!(first.status, 424, "{first:?}");
    m.client
        .post(&m.path("/plugins/rollback"), &json!({}))
        .expect(200);
    let again = post_with_key(&m.client, &m.path("/members"), "enrol-x", &body);
    assert_eq!(again.status, 201, "{again:?}");
}

/// A page size out of range was quietly changed (`limit=0` gave 1 line, `limit=100000`
/// gave 500); it is refused, naming the parameter and the range.
#[test]
fn a_page_size_out_of_range_is_refused() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    enrol(&a, "alice");
    for limit in ["0", "501"] {
        let answer = a
            .client
            .get(&a.path(&format!("/members/alice/ledger?limit={limit}")));
        assert_eq!(answer.status, 422, "{answer:?}");
        assert_eq!(
            answer.json()["errors"][0]["pointer"],
            "/query/limit",
            "{answer:?}"
        );
    }
    a.client
        .get(&a.path("/members/alice/ledger?limit=500"))
        .expect(200);
    let deliveries = a.client.get(&a.path("/webhook-deliveries?limit=0"));
    assert_eq!(deliveries.status, 422, "{deliveries:?}");
}

/// A merchant could register a webhook endpoint on the host's own network (the cloud
/// metadata service, a database's HTTP port) and have the host post to it. By default
/// such an endpoint is refused, naming the field and the operator's flag; with the
/// flag it is taken.
#[test]
fn a_webhook_on_a_private_address_is_refused_unless_the_operator_allows_it() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9/hook",
    ] {
        let body = json!({"url": url, "events": ["points.earned"]});
        let refused = a.client.post(&a.path("/webhooks"), &body);
        assert_eq!(refused.status, 422, "{url}: {refused:?}");
        let problem = refused.json();
        assert_eq!(problem["errors"][0]["pointer"], "/url", "{problem}");
        assert!(
            problem.to_string().contains("--webhook-allow-private"),
            "{problem}"
        );
    }
    let listed = a.client.get(&a.path("/webhooks"));
    assert_eq!(
        listed.expect(200)["endpoints"].as_array().map(Vec::len),
        Some(0)
    );

    let open = Server::start(&["--webhook-allow-private"]);
    let b = http::merchant(&open, "acme", "airline-miles");
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["points.earned"]});
    b.client.post(&b.path("/webhooks"), &body).expect(201);
}

/// The key check read the path's merchant as written, and the handlers read it
/// percent-decoded (session 22's note): `/v1/merchants/%61cme` was refused to acme's
/// key and would have been acme's for the handler. Both read it decoded now: it is
/// acme's, for acme's key only.
#[test]
fn a_percent_encoded_merchant_in_the_path_is_the_same_merchant_for_the_key_check() {
    let server = Server::start(&[]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let b = http::merchant(&server, "beta", "airline-miles");
    enrol(&a, "ann");
    let encoded = "/v1/merchants/%61cme/members/ann";
    let own = a.client.get(encoded);
    assert_eq!(own.expect(200)["id"], "ann");
    // Another merchant's key is refused as it is on the plain path.
    let other = b.client.get(encoded);
    let plain = b.client.get("/v1/merchants/acme/members/ann");
    assert!(matches!(plain.status, 401 | 403), "{plain:?}");
    assert_eq!((other.status, other.body), (plain.status, plain.body));
    // Not UTF-8 once decoded: no merchant, refused before any handler.
    let broken = a.client.get("/v1/merchants/%FF/members/ann");
    assert!(matches!(broken.status, 400 | 401 | 403), "{broken:?}");
}
