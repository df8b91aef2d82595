//! Webhooks against a real data directory, the real compiled example programmes and
//! a receiver on loopback: what the engine announces (points earned, tier changed,
//! redemption committed; points expiring and member lapsing from the sweep, once
//! each) arrives signed; a receiver that fails gets retries until it recovers or
//! the delivery gives up; the outbox survives a crash; nothing crosses merchants;
//! one slow endpoint does not hold up the others; bad registrations name the field.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use loyalty_host::app::{App, Options};
use loyalty_host::domain::{Event, Money, RedemptionRequest};
use loyalty_host::engine::{EnrolRequest, EventResult, QuoteAnswer};
use loyalty_host::storage::Space;
use loyalty_host::webhooks::{
    Delivery, DeliveryStatus, EndpointRequest, EventKind, SignatureError, WebhookError,
    WebhookOptions, verify_signature,
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use common::{NOW, merchant_settings, plugin_bytes};
use loyalty_tests::{eventually, wall_clock};

const DAY: i64 = 86_400;

// --- the receiver ---------------------------------------------------------------------

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// At once, with this status.
    Now(u16),
    /// With this status once the test lets it ([`Receiver::release`]).
    Held(u16),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }
}

struct ReceiverState {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    then: Answer,
    gate: tokio::sync::Semaphore,
}

/// A webhook receiver (axum) on 127.0.0.1: answers `script` in turn, then `then`.
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(s): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    s.got.lock().unwrap().push(Received { headers, body });
    let answer = s.script.lock().unwrap().pop_front().unwrap_or(s.then);
    let status = match answer {
        Answer::Now(status) => status,
        Answer::Held(status) => {
            s.gate.acquire().await.unwrap().forget();
            status
        }
    };
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    fn start(rt: &Runtime, script: &[Answer], then: Answer) -> Receiver {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            got: Mutex::new(Vec::new()),
            script: Mutex::new(script.iter().copied().collect()),
            then,
            gate: tokio::sync::Semaphore::new(0),
        });
        let router = Router::new()
            .route("/hooks", post(receive))
            .with_state(state.clone());
        rt.spawn(async move { axum::serve(listener, router).await });
        Receiver { addr, state }
    }

    /// A receiver that answers 200 to everything.
    fn ok(rt: &Runtime) -> Receiver {
        Receiver::start(rt, &[], Answer::Now(200))
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    fn got_kind(&self, kind: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.kind() == kind)
            .collect()
    }

    /// Let `n` held requests answer.
    fn release(&self, n: usize) {
        self.state.gate.add_permits(n);
    }
}

// --- the host -------------------------------------------------------------------------

/// Short waits so retries happen within a test; the receivers are on loopback.
fn fast() -> WebhookOptions {
    WebhookOptions {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        max_attempts: 4,
        timeout: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        allow_private: true,
        ..WebhookOptions::default()
    }
}

/// A data directory opened as the server opens it, with merchants running example
/// programmes, and a runtime for the delivery worker and the receivers.
struct Host {
    app: App,
    rt: Runtime,
}

impl Host {
    fn open(dir: &Path, webhooks: WebhookOptions) -> Host {
        let mut options = Options {
            cache_bytes: 64 << 20,
            threads: 4,
            per_merchant: 4,
            webhooks,
            ..Options::default()
        };
        options.limits.instances = 32;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Host {
            app: App::open(dir, &options).unwrap(),
            rt,
        }
    }

    /// Merchant `id` running `plugin`.
    fn merchant(&self, id: &str, plugin: &str) {
        let settings = merchant_settings(id);
        self.app
            .ensure_merchant(settings, &plugin_bytes(plugin), NOW)
            .unwrap();
    }

    /// Start the delivery worker.
    fn deliver(&self) {
        let _in = self.rt.enter();
        self.app.webhooks.spawn();
    }

    /// Register an endpoint of `merchant`: its id and secret.
    fn register(&self, merchant: &str, url: &str, events: &[EventKind]) -> (String, String) {
        let created = self
            .rt
            .block_on(self.app.webhooks.create_endpoint(
                merchant,
                &EndpointRequest {
                    url: url.into(),
                    events: events.to_vec(),
                    description: None,
                },
                NOW,
            ))
            .unwrap();
        (created.endpoint.id, created.secret)
    }

    fn enrol(&self, merchant: &str, member: &str, at: i64) {
        let done = self
            .app
            .engine
            .enrol(
                merchant,
                &EnrolRequest {
                    member: member.into(),
                    enrolled_at: at,
                    ..Default::default()
                },
            )
            .unwrap();
        self.app.engine.durable(done).unwrap();
    }

    /// A flight of `fare` cents on the airline programme.
    fn fly(&self, merchant: &str, member: &str, id: &str, fare: i64, at: i64) -> EventResult {
        let event: Event = serde_json::from_value(json!({
            "id": id, "occurred_at": at, "kind": "purchase",
            "amount": { "minor": fare, "currency": "USD" },
            "items": [{ "sku": "JFK-LAX", "category": "fare", "amount": fare }],
            "channel": "online", "payment": "card"
        }))
        .unwrap();
        let done = self
            .app
            .engine
            .post_event(merchant, member, &event)
            .unwrap();
        self.app.engine.durable(done).unwrap()
    }

    fn deliveries(&self, merchant: &str) -> Vec<Delivery> {
        self.app
            .webhooks
            .deliveries(merchant, None, 500)
            .unwrap()
            .deliveries
    }

    fn outbox_rows(&self, merchant: &str) -> usize {
        self.app
            .storage
            .scan(Space::Outbox, merchant, &[])
            .unwrap()
            .len()
    }

    /// Wait until every delivery of `merchant` is finished, and there are `n`.
    fn settled(&self, merchant: &str, n: usize) -> Vec<Delivery> {
        eventually(&format!("{n} finished deliveries of {merchant}"), || {
            let d = self.deliveries(merchant);
            (d.len() == n && d.iter().all(|d| d.status != DeliveryStatus::Pending)).then_some(d)
        })
    }
}

/// The signature holds for `secret` now, and not for another secret.
fn assert_signed(secret: &str, r: &Received) {
    let header = r.header("loyalty-signature");
    let tolerance = Duration::from_secs(300);
    assert_eq!(
        verify_signature(secret, header, &r.body, wall_clock(), tolerance),
        Ok(()),
        "{header}"
    );
    assert_eq!(
        verify_signature("whsec_other", header, &r.body, wall_clock(), tolerance),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = r.body.to_vec();
    tampered.push(b' ');
    assert_eq!(
        verify_signature(secret, header, &tampered, wall_clock(), tolerance),
        Err(SignatureError::Mismatch)
    );
}

// --- what is announced ------------------------------------------------------------------

#[test]
fn a_purchase_that_earns_points_delivers_a_signed_points_earned_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let receiver = Receiver::ok(&h.rt);
    let (endpoint, secret) = h.register("acme", &receiver.url(), &[EventKind::PointsEarned]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    let result = h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    let earned: i64 = result.credited.iter().map(|c| c.points).sum();
    assert!(earned > 0, "{result:?}");

    let got = eventually("the webhook", || {
        receiver.got_kind("points.earned").into_iter().next()
    });
    assert_eq!(got.header("content-type"), "application/json");
    assert_signed(&secret, &got);
    let body = got.json();
    assert_eq!(got.header("loyalty-webhook-id"), body["id"]);
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
    assert_eq!(body["merchant"], "acme");
    assert_eq!(body["created_at"], NOW + 60);
    assert_eq!(body["data"]["member"], "ann");
    assert_eq!(body["data"]["event"], "f-1");
    assert_eq!(body["data"]["points"], earned);
    assert_eq!(
        body["data"]["balance"]["available"],
        result.balance.available
    );

    let d = h.settled("acme", 1).remove(0);
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        (d.attempts, d.last_status, d.last_error),
        (1, Some(200), None)
    );
    assert_eq!(d.endpoint, endpoint);
    assert_eq!(d.kind, EventKind::PointsEarned);
    assert_eq!(d.event, body["id"]);
    assert_eq!(h.outbox_rows("acme"), 0, "the outbox row was fanned out");
}

#[test]
fn a_tier_change_delivers_tier_changed() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let receiver = Receiver::ok(&h.rt);
    let (_, secret) = h.register("acme", &receiver.url(), &[EventKind::TierChanged]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    let first = h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    assert_eq!(first.tier.changed_from, None, "{:?}", first.tier);
    let second = h.fly("acme", "ann", "f-2", 800_000, NOW + 120);
    let from = second
        .tier
        .changed_from
        .clone()
        .expect("a long fare wins status");

    let got = eventually("tier.changed", || {
        receiver.got_kind("tier.changed").into_iter().next()
    });
    assert_signed(&secret, &got);
    let data = &got.json()["data"];
    assert_eq!(data["member"], "ann");
    assert_eq!(data["event"], "f-2");
    assert_eq!(data["from"], from.as_str());
    assert_eq!(data["to"], second.tier.tier.as_str());
    assert_eq!(data["reason"], second.tier.reason.as_str());
    // Only what the endpoint asked for: points were earned twice, announced never.
    let d = h.settled("acme", 1);
    assert_eq!(d[0].kind, EventKind::TierChanged);
    assert!(receiver.got_kind("points.earned").is_empty());
}

#[test]
fn a_committed_redemption_delivers_redemption_committed() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let receiver = Receiver::ok(&h.rt);
    let (_, secret) = h.register("acme", &receiver.url(), &[EventKind::RedemptionCommitted]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    let balance = h
        .fly("acme", "ann", "f-1", 200_000, NOW + 60)
        .balance
        .available;
    let engine = &h.app.engine;
    let request = RedemptionRequest {
        reward: Some("cash-and-miles".into()),
        amount: Some(Money {
            minor: 10_000,
            currency: "USD".into(),
        }),
        points: Some(balance.min(5_000)),
        ..Default::default()
    };
    let quote = engine
        .quote("acme", "ann", &request, NOW + 120, 900)
        .unwrap();
    let QuoteAnswer::Quoted(quote) = engine.durable(quote).unwrap() else {
        panic!("the quote was rejected");
    };
    // Quoting announces nothing; committing does, once (a retried commit does not).
    for at in [NOW + 130, NOW + 140] {
        let done = engine.commit_redemption("acme", &quote.id, at).unwrap();
        engine.durable(done).unwrap();
    }

    let d = h.settled("acme", 1);
    assert_eq!(d[0].kind, EventKind::RedemptionCommitted);
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_signed(&secret, &got[0]);
    let data = &got[0].json()["data"];
    assert_eq!(data["redemption"], quote.id.as_str());
    assert_eq!(data["member"], "ann");
    assert_eq!(data["points"], quote.quote.points);
    assert_eq!(
        data["cash"]["minor"],
        quote.quote.cash.as_ref().unwrap().minor
    );
}

#[test]
fn the_sweep_announces_expiring_points_and_a_lapsing_member_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let receiver = Receiver::ok(&h.rt);
    h.register(
        "acme",
        &receiver.url(),
        &[EventKind::PointsExpiring, EventKind::MemberLapsing],
    );
    h.deliver();
    h.enrol("acme", "ann", NOW);
    let flight = h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    let expires = flight.credited[0].expires_at.expect("airline miles expire");
    let engine = &h.app.engine;

    // Ten days before the miles expire (default window: 30 days), and long after
    // the last purchase (default lapse: 90 days).
    let first = engine.sweep("acme", expires - 10 * DAY).unwrap();
    assert!(first.notices >= 2, "{first:?}");
    // Sweeping again, or a few days later, finds nothing new.
    assert_eq!(engine.sweep("acme", expires - 10 * DAY).unwrap().notices, 0);
    assert_eq!(engine.sweep("acme", expires - 5 * DAY).unwrap().notices, 0);

    let d = h.settled("acme", first.notices as usize);
    assert!(d.iter().all(|d| d.status == DeliveryStatus::Delivered));
    let lapsing = receiver.got_kind("member.lapsing");
    assert_eq!(lapsing.len(), 1);
    assert_eq!(lapsing[0].json()["data"]["member"], "ann");
    assert_eq!(lapsing[0].json()["data"]["last_purchase"], NOW + 60);
    let expiring = receiver.got_kind("points.expiring");
    assert_eq!(expiring.len() as u64, first.notices - 1);
    assert!(
        expiring
            .iter()
            .any(|r| r.json()["data"]["expires_at"] == expires),
        "{expiring:?}"
    );
    let points: i64 = expiring
        .iter()
        .map(|r| r.json()["data"]["points"].as_i64().unwrap())
        .sum();
    assert!(points >= flight.credited[0].points, "{points}");

    // A new purchase re-arms the lapse notice: 91 days of nothing after it, one more.
    let back = expires - 4 * DAY;
    h.fly("acme", "ann", "f-2", 10_000, back);
    let later = engine.sweep("acme", back + 91 * DAY).unwrap();
    assert_eq!(later.notices, 1, "{later:?}");
    h.settled("acme", first.notices as usize + 1);
    let lapsing = receiver.got_kind("member.lapsing");
    assert_eq!(lapsing.len(), 2);
    assert_eq!(lapsing[1].json()["data"]["last_purchase"], back);
}

#[test]
fn a_merchant_without_endpoints_writes_no_outbox_rows() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    h.merchant("quiet", "airline-miles");
    let receiver = Receiver::ok(&h.rt);
    h.register(
        "acme",
        &receiver.url(),
        &[EventKind::PointsEarned, EventKind::TierChanged],
    );
    assert!(h.app.webhooks.wanted("acme", EventKind::PointsEarned));
    assert!(!h.app.webhooks.wanted("acme", EventKind::MemberLapsing));
    assert!(!h.app.webhooks.wanted("quiet", EventKind::PointsEarned));
    // No worker yet: what the engine wrote stays in the outbox to be counted.
    for m in ["acme", "quiet"] {
        h.enrol(m, "ann", NOW);
        h.fly(m, "ann", "f-1", 50_000, NOW + 60);
        h.fly(m, "ann", "f-2", 800_000, NOW + 120);
        h.app.engine.sweep(m, NOW + 400 * DAY).unwrap();
    }
    assert_eq!(h.outbox_rows("quiet"), 0);
    assert_eq!(h.outbox_rows("acme"), 3, "two earnings and a tier change");
    assert!(
        !h.app
            .storage
            .merchants(Space::Outbox)
            .unwrap()
            .contains(&"quiet".to_string())
    );

    h.deliver();
    h.settled("acme", 3);
    assert!(h.deliveries("quiet").is_empty());
    assert_eq!(h.outbox_rows("acme"), 0);
    assert!(
        receiver
            .got()
            .iter()
            .all(|r| r.json()["merchant"] == "acme")
    );
}

// --- retries ----------------------------------------------------------------------------

#[test]
fn a_receiver_that_fails_twice_then_recovers_ends_delivered_after_three_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    // 500, 503, then 200 — the third answer held until the test has looked.
    let receiver = Receiver::start(
        &h.rt,
        &[Answer::Now(500), Answer::Now(503), Answer::Held(200)],
        Answer::Now(200),
    );
    let (_, secret) = h.register("acme", &receiver.url(), &[EventKind::PointsEarned]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    h.fly("acme", "ann", "f-1", 50_000, NOW + 60);

    // While the third attempt waits, the delivery shows the second one's failure.
    eventually("the third attempt", || {
        (receiver.got().len() == 3).then_some(())
    });
    let d = h.deliveries("acme").remove(0);
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.last_status, Some(503));
    assert!(d.last_error.is_some());
    assert!(d.next_attempt_at.is_some());
    assert!(h.app.webhooks.backlog() >= 1);

    receiver.release(1);
    let d = h.settled("acme", 1).remove(0);
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        (d.attempts, d.last_status, d.last_error),
        (3, Some(200), None)
    );
    assert!(d.delivered_at.is_some());
    // The same event every time, signed every time.
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.header("loyalty-webhook-id"), d.event);
        assert_eq!(r.json(), d.payload);
        assert_signed(&secret, r);
    }
    eventually("an empty backlog", || {
        (h.app.webhooks.backlog() == 0).then_some(())
    });
}

#[test]
fn a_receiver_that_is_down_ends_failed_after_the_last_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    h.register(
        "acme",
        &format!("http://{closed}/hooks"),
        &[EventKind::PointsEarned],
    );
    h.deliver();
    h.enrol("acme", "ann", NOW);
    h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    let d = h.settled("acme", 1).remove(0);
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, fast().max_attempts);
    assert_eq!(d.last_status, None, "no answer at all");
    assert!(d.last_error.is_some());
    assert_eq!(d.next_attempt_at, None);
}

#[test]
fn an_https_endpoint_is_accepted_but_its_deliveries_fail_at_once_in_this_build() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    h.register(
        "acme",
        "https://127.0.0.1:9/hooks",
        &[EventKind::PointsEarned],
    );
    h.deliver();
    h.enrol("acme", "ann", NOW);
    h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    let d = h.settled("acme", 1).remove(0);
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!((d.attempts, d.last_status), (1, None));
    assert!(d.last_error.is_some());
}

/// By default an endpoint must be a public address: a merchant could otherwise make
/// the host post to services on its own network (a database's HTTP port, the cloud
/// metadata service at 169.254.169.254).
#[test]
fn by_default_endpoints_on_private_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let strict = WebhookOptions {
        allow_private: false,
        ..fast()
    };
    let h = Host::open(dir.path(), strict);
    h.merchant("acme", "airline-miles");
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost:9/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hooks",
        "http://[::1]:9/hooks",
        "http://[::ffff:192.168.1.1]/hooks",
    ] {
        let refused = h.rt.block_on(h.app.webhooks.create_endpoint(
            "acme",
            &EndpointRequest {
                url: url.into(),
                events: vec![EventKind::PointsEarned],
                description: None,
            },
            NOW,
        ));
        match refused {
            Err(WebhookError::Invalid { pointer, message }) => {
                assert_eq!(pointer, "/url", "{url}");
                assert!(
                    message.contains("--webhook-allow-private"),
                    "{url}: {message}"
                );
            }
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
    assert!(h.app.webhooks.endpoints("acme").unwrap().is_empty());
}

/// An endpoint registered while private addresses were allowed gets nothing once they
/// are not: its delivery fails at once, and the receiver hears nothing.
#[test]
fn a_private_endpoint_gets_no_delivery_once_private_addresses_are_not_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = Receiver::ok(&rt);
    {
        let h = Host::open(&data, fast());
        h.merchant("acme", "airline-miles");
        h.register("acme", &receiver.url(), &[EventKind::PointsEarned]);
    }
    let strict = WebhookOptions {
        allow_private: false,
        ..fast()
    };
    let h = Host::open(&data, strict);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    let d = h.settled("acme", 1).remove(0);
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 1));
    let error = d.last_error.unwrap_or_default();
    assert!(error.contains("private address"), "{error}");
    assert!(receiver.got().is_empty());
}

// --- durability, isolation, fairness ------------------------------------------------------

#[test]
fn an_outbox_row_written_before_a_crash_is_delivered_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = Receiver::ok(&rt);
    let (secret, event) = {
        // No delivery worker: the process "dies" with the row in the outbox.
        let h = Host::open(&data, fast());
        h.merchant("acme", "airline-miles");
        let (_, secret) = h.register("acme", &receiver.url(), &[EventKind::PointsEarned]);
        h.enrol("acme", "ann", NOW);
        h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
        assert_eq!(h.outbox_rows("acme"), 1);
        (secret, "f-1")
    };
    let h = Host::open(&data, fast());
    assert!(
        h.app.webhooks.wanted("acme", EventKind::PointsEarned),
        "subscriptions are loaded at open"
    );
    h.deliver();
    let d = h.settled("acme", 1).remove(0);
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    let got = receiver.got();
    assert_eq!(got.len(), 1, "delivered once");
    assert_signed(&secret, &got[0]);
    assert_eq!(got[0].json()["data"]["event"], event);
    assert_eq!(h.outbox_rows("acme"), 0);
}

#[test]
fn a_pending_retry_survives_reopening_and_keeps_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = Receiver::start(&rt, &[Answer::Now(500)], Answer::Now(200));
    // The retry is due long after this host is gone.
    let slow_retry = WebhookOptions {
        retry_base: Duration::from_secs(3600),
        retry_cap: Duration::from_secs(3600),
        ..fast()
    };
    let event = {
        let h = Host::open(&data, slow_retry);
        h.merchant("acme", "airline-miles");
        h.register("acme", &receiver.url(), &[EventKind::PointsEarned]);
        h.deliver();
        h.enrol("acme", "ann", NOW);
        h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
        eventually("the failed first attempt", || {
            h.deliveries("acme")
                .into_iter()
                .find(|d| d.attempts == 1)
                .map(|d| d.event)
        })
    };
    // Reopened with short waits: the stored next attempt time (an hour away) still
    // holds, so nothing is sent...
    let h = Host::open(&data, fast());
    h.deliver();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.got().len(), 1);
    let d = h.deliveries("acme").remove(0);
    assert_eq!(
        (d.status, d.attempts, d.event.as_str()),
        (DeliveryStatus::Pending, 1, event.as_str())
    );
    assert_eq!(d.last_status, Some(500));
}

#[test]
fn deliveries_of_one_merchant_never_go_to_another_merchants_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("a", "airline-miles");
    h.merchant("b", "coffee-stars");
    let (ra, rb) = (Receiver::ok(&h.rt), Receiver::ok(&h.rt));
    let (ea, _) = h.register("a", &ra.url(), &[EventKind::PointsEarned]);
    let (eb, _) = h.register("b", &rb.url(), &[EventKind::PointsEarned]);
    h.deliver();
    h.enrol("a", "ann", NOW);
    h.fly("a", "ann", "f-1", 50_000, NOW + 60);
    h.settled("a", 1);
    assert!(rb.got().is_empty());
    assert!(h.deliveries("b").is_empty());

    // b's endpoint, b's programme: a coffee purchase.
    h.enrol("b", "ann", NOW);
    let event: Event = serde_json::from_value(json!({
        "id": "c-1", "occurred_at": NOW + 60, "kind": "purchase",
        "amount": { "minor": 2_000, "currency": "USD" },
        "items": [{ "sku": "latte", "category": "drink", "amount": 2_000 }]
    }))
    .unwrap();
    let r = h.app.engine.post_event("b", "ann", &event).unwrap();
    let r = h.app.engine.durable(r).unwrap();
    assert!(
        r.credited.iter().map(|c| c.points).sum::<i64>() > 0,
        "{r:?}"
    );
    h.settled("b", 1);
    assert_eq!(rb.got().len(), 1);
    assert_eq!(rb.got()[0].json()["merchant"], "b");
    assert_eq!(ra.got().len(), 1);
    assert!(ra.got().iter().all(|r| r.json()["merchant"] == "a"));
    assert!(h.deliveries("a").iter().all(|d| d.endpoint == ea));
    assert!(h.deliveries("b").iter().all(|d| d.endpoint == eb));

    // Neither can see or delete the other's endpoint.
    assert_eq!(
        h.app.webhooks.endpoint("b", &ea),
        Err(WebhookError::UnknownEndpoint(ea.clone()))
    );
    let deleted = h.rt.block_on(h.app.webhooks.delete_endpoint("b", &ea));
    assert_eq!(deleted, Err(WebhookError::UnknownEndpoint(ea.clone())));
    assert_eq!(h.app.webhooks.endpoints("a").unwrap()[0].id, ea);
    assert!(
        h.app
            .webhooks
            .deliveries("b", Some(&ea), 100)
            .unwrap()
            .deliveries
            .is_empty()
    );
}

#[test]
fn a_slow_endpoint_does_not_hold_up_another_endpoints_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(
        dir.path(),
        WebhookOptions {
            concurrency: 2,
            per_endpoint: 1,
            ..fast()
        },
    );
    h.merchant("acme", "airline-miles");
    let slow = Receiver::start(&h.rt, &[], Answer::Held(200));
    let quick = Receiver::ok(&h.rt);
    let (slow_id, _) = h.register("acme", &slow.url(), &[EventKind::PointsEarned]);
    let (quick_id, _) = h.register("acme", &quick.url(), &[EventKind::PointsEarned]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    for i in 0..3 {
        h.fly("acme", "ann", &format!("f-{i}"), 50_000, NOW + 60 + i);
    }
    // Every delivery to the quick endpoint arrives while the slow one holds its
    // first request (and only that one: one at a time per endpoint).
    eventually("the quick endpoint's deliveries", || {
        let page = h
            .app
            .webhooks
            .deliveries("acme", Some(&quick_id), 100)
            .unwrap();
        (page.deliveries.len() == 3
            && page
                .deliveries
                .iter()
                .all(|d| d.status == DeliveryStatus::Delivered))
        .then_some(())
    });
    assert_eq!(quick.got().len(), 3);
    assert_eq!(slow.got().len(), 1);
    eventually("the slow endpoint's backlog", || {
        (h.app.webhooks.backlog() == 3).then_some(())
    });

    slow.release(3);
    let all = h.settled("acme", 6);
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
    assert_eq!(all.iter().filter(|d| d.endpoint == slow_id).count(), 3);
    assert_eq!(slow.got().len(), 3);
}

#[test]
fn deliveries_are_listed_newest_first_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let (r1, r2) = (Receiver::ok(&h.rt), Receiver::ok(&h.rt));
    let (e1, _) = h.register("acme", &r1.url(), &[EventKind::PointsEarned]);
    h.register("acme", &r2.url(), &[EventKind::PointsEarned]);
    h.deliver();
    h.enrol("acme", "ann", NOW);
    for i in 0..5 {
        h.fly("acme", "ann", &format!("f-{i}"), 50_000, NOW + 60 + i);
        // One event at a time, so the order of fan-out is the order of events.
        h.settled("acme", 2 * (i as usize + 1));
    }
    let webhooks = &h.app.webhooks;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = webhooks
            .deliveries_after("acme", Some(&e1), after.as_deref(), 2)
            .unwrap()
            .deliveries;
        seen.extend(page.iter().map(|d| d.payload["data"]["event"].clone()));
        match page.last() {
            Some(last) if page.len() == 2 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, ["f-4", "f-3", "f-2", "f-1", "f-0"].map(Value::from));
    assert_eq!(
        webhooks
            .deliveries("acme", None, 3)
            .unwrap()
            .deliveries
            .len(),
        3
    );
    assert_eq!(
        webhooks
            .deliveries("acme", None, 500)
            .unwrap()
            .deliveries
            .len(),
        10
    );
}

// --- endpoints --------------------------------------------------------------------------

#[test]
fn invalid_endpoint_requests_name_the_field_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let create = |req: EndpointRequest| {
        h.rt.block_on(h.app.webhooks.create_endpoint("acme", &req, NOW))
    };
    let request = |url: &str, events: &[EventKind]| EndpointRequest {
        url: url.into(),
        events: events.to_vec(),
        description: None,
    };
    let pointer = |r: Result<_, WebhookError>| match r {
        Err(WebhookError::Invalid { pointer, .. }) => pointer,
        other => panic!("not refused as invalid: {other:?}"),
    };
    let earned = [EventKind::PointsEarned];
    assert_eq!(
        pointer(create(request("ftp://x.example/", &earned))),
        "/url"
    );
    assert_eq!(pointer(create(request("http://", &earned))), "/url");
    assert_eq!(pointer(create(request("http://a b/", &earned))), "/url");
    let long = format!("http://x.example/{}", "a".repeat(2048));
    assert_eq!(pointer(create(request(&long, &earned))), "/url");
    assert_eq!(
        pointer(create(request("http://x.example/", &[]))),
        "/events"
    );
    assert_eq!(
        pointer(create(request(
            "http://x.example/",
            &[
                EventKind::TierChanged,
                EventKind::PointsEarned,
                EventKind::TierChanged
            ]
        ))),
        "/events/2"
    );
    let mut described = request("http://x.example/", &earned);
    described.description = Some("d".repeat(201));
    assert_eq!(pointer(create(described)), "/description");
    // The wire format: kinds by their dotted names; unknown fields refused.
    let parsed: EndpointRequest = serde_json::from_value(json!({
        "url": "http://x.example/", "events": ["member.lapsing", "points.expiring"]
    }))
    .unwrap();
    assert_eq!(
        parsed.events,
        [EventKind::MemberLapsing, EventKind::PointsExpiring]
    );
    assert!(
        serde_json::from_value::<EndpointRequest>(json!({
            "url": "http://x.example/", "events": ["points.earned"], "secret": "mine"
        }))
        .is_err()
    );
    assert!(
        serde_json::from_value::<EndpointRequest>(json!({
            "url": "http://x.example/", "events": ["points.spent"]
        }))
        .is_err()
    );
    assert!(
        h.app.webhooks.endpoints("acme").unwrap().is_empty(),
        "nothing was stored"
    );
}

#[test]
fn endpoints_are_listed_without_secrets_limited_per_merchant_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let h = Host::open(dir.path(), fast());
    h.merchant("acme", "airline-miles");
    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..16 {
        let (id, secret) = h.register(
            "acme",
            &format!("http://x.example/{i}"),
            &[EventKind::MemberLapsing],
        );
        assert!(id.starts_with("wh_") && id.len() == 19, "{id}");
        assert!(
            secret.starts_with("whsec_") && secret.len() >= 38,
            "{secret}"
        );
        ids.push(id);
        secrets.push(secret);
    }
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), 16, "every secret is its own");
    let seventeenth = h.rt.block_on(h.app.webhooks.create_endpoint(
        "acme",
        &EndpointRequest {
            url: "http://x.example/17".into(),
            events: vec![EventKind::PointsEarned],
            description: None,
        },
        NOW,
    ));
    assert!(matches!(seventeenth, Err(WebhookError::TooMany(16))));
    let listed = h.app.webhooks.endpoints("acme").unwrap();
    assert_eq!(listed.len(), 16);
    assert!(!serde_json::to_string(&listed).unwrap().contains("whsec_"));
    assert_eq!(h.app.webhooks.endpoint("acme", &ids[3]).unwrap().id, ids[3]);

    // Deleting every endpoint that wants a kind stops announcing it.
    assert!(h.app.webhooks.wanted("acme", EventKind::MemberLapsing));
    for id in &ids {
        h.rt.block_on(h.app.webhooks.delete_endpoint("acme", id))
            .unwrap();
    }
    assert!(!h.app.webhooks.wanted("acme", EventKind::MemberLapsing));
    assert_eq!(
        h.app.webhooks.endpoint("acme", &ids[0]),
        Err(WebhookError::UnknownEndpoint(ids[0].clone()))
    );
    h.enrol("acme", "ann", NOW);
    h.fly("acme", "ann", "f-1", 50_000, NOW + 60);
    h.app.engine.sweep("acme", NOW + 400 * DAY).unwrap();
    assert_eq!(h.outbox_rows("acme"), 0);
}
