//! Webhooks from outside: a receiver on loopback gets signed deliveries of what
//! happened to members; a failing receiver gets retries until it recovers; a
//! receiver that never answers ends with a failed delivery; deliveries survive the
//! host being killed; the sweep's notices (points expiring, member lapsing) arrive
//! once; nothing crosses merchants.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use loyalty_tests::http::{self, Merchant, Server};
use loyalty_tests::{eventually, wall_clock};
use serde_json::{Value, json};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver on a loopback port: answers the scripted statuses in turn,
/// then 200.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((n, v)) = line.trim_end().split_once(':') {
                        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                g.lock().unwrap().push(Received {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn register(m: &Merchant, url: &str, events: &[&str]) -> (String, String) {
    let e = m
        .client
        .post(&m.path("/webhooks"), &json!({"url": url, "events": events}))
        .expect(201);
    (
        e["id"].as_str().unwrap().to_string(),
        e["secret"].as_str().unwrap().to_string(),
    )
}

fn deliveries(m: &Merchant) -> Vec<Value> {
    m.client.get(&m.path("/webhook-deliveries")).expect(200)["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

fn flight(m: &Merchant, member: &str, id: &str, minor: i64, at: i64) -> Value {
    m.client
        .post(
            &m.path(&format!("/members/{member}/events")),
            &json!({
                "id": id, "occurred_at": at, "kind": "purchase",
                "amount": {"minor": minor, "currency": "USD"},
                "items": [{"category": "fare", "amount": minor}]
            }),
        )
        .expect(200)
}

/// Check `loyalty-signature: t=...,v1=...` independently of the host's code.
fn signature_holds(secret: &str, r: &Received) -> bool {
    let header = r.header("loyalty-signature");
    let t = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap_or_default();
    let v1 = header
        .split(',')
        .find_map(|p| p.strip_prefix("v1="))
        .unwrap_or_default();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1 && (wall_clock() - t.parse::<i64>().unwrap_or(0)).abs() < 300
}

#[test]
fn a_failing_receiver_gets_signed_retries_until_it_recovers() {
    let server = Server::start(&["--webhook-allow-private", "--webhook-retry-ms", "700"]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let quiet = http::merchant(&server, "quiet", "airline-miles");
    let receiver = Receiver::start(&[500, 503]);
    let (endpoint, secret) = register(&a, &receiver.url(), &["points.earned", "tier.changed"]);
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "alice", "enrolled_at": wall_clock()}),
        )
        .expect(201);
    quiet
        .client
        .post(
            &quiet.path("/members"),
            &json!({"member": "alice", "enrolled_at": wall_clock()}),
        )
        .expect(201);
    flight(&quiet, "alice", "q1", 50_000, wall_clock());
    flight(&a, "alice", "f1", 50_000, wall_clock());

    // While failing: pending, with the attempts and the last error visible.
    let pending = eventually("a failed attempt", || {
        deliveries(&a)
            .into_iter()
            .find(|d| d["attempts"].as_u64() >= Some(1) && d["status"] == "pending")
    });
    assert!(
        matches!(pending["last_status"].as_u64(), Some(500 | 503)),
        "{pending}"
    );
    assert!(pending["last_error"].is_string(), "{pending}");
    assert_eq!(pending["endpoint"], endpoint.as_str());

    let done = eventually("the delivery", || {
        deliveries(&a)
            .into_iter()
            .find(|d| d["status"] == "delivered")
    });
    assert_eq!(done["attempts"], 3, "{done}");
    assert_eq!(done["kind"], "points.earned");
    let got = receiver.got();
    assert_eq!(got.len(), 3, "{got:?}");
    let ids: Vec<&str> = got.iter().map(|r| r.header("loyalty-webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0] && i.starts_with("evt_")),
        "{ids:?}"
    );
    for r in &got {
        assert!(signature_holds(&secret, r), "signature of {r:?}");
        assert!(!signature_holds("whsec_wrong", r));
    }
    let body = got[2].json();
    assert_eq!(body["type"], "points.earned");
    assert_eq!(body["merchant"], "acme");
    assert_eq!(body["data"]["member"], "alice");
    assert_eq!(body["data"]["event"], "f1");
    assert_eq!(body["data"]["points"], 2_500);

    // Reaching Gold announces the tier change.
    flight(&a, "alice", "f2", 800_000, wall_clock());
    let tier = eventually("tier.changed", || {
        receiver
            .got()
            .into_iter()
            .find(|r| r.json()["type"] == "tier.changed")
    });
    assert_eq!(tier.json()["data"]["to"], "gold");
    assert!(signature_holds(&secret, &tier));
    // The merchant without endpoints has no deliveries, and sent nothing here.
    assert!(deliveries(&quiet).is_empty());
    assert!(
        receiver
            .got()
            .iter()
            .all(|r| r.json()["merchant"] == "acme")
    );
}

#[test]
fn a_receiver_that_never_answers_ends_failed_and_deleting_stops_deliveries() {
    let server = Server::start(&[
        "--webhook-allow-private",
        "--webhook-retry-ms",
        "100",
        "--webhook-attempts",
        "3",
    ]);
    let a = http::merchant(&server, "acme", "airline-miles");
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (endpoint, _) = register(&a, &format!("http://{closed}/x"), &["points.earned"]);
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "bob", "enrolled_at": wall_clock()}),
        )
        .expect(201);
    flight(&a, "bob", "f1", 10_000, wall_clock());
    let failed = eventually("the delivery to fail", || {
        deliveries(&a).into_iter().find(|d| d["status"] == "failed")
    });
    assert_eq!(failed["attempts"], 3);
    // No answer at all: an error and no status.
    assert!(failed["last_error"].is_string(), "{failed}");
    assert!(failed["last_status"].is_null(), "{failed}");

    let bad = a.client.post(
        &a.path("/webhooks"),
        &json!({"url": "ftp://x", "events": ["points.earned"]}),
    );
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["errors"][0]["pointer"], "/url");
    let bad = a.client.post(
        &a.path("/webhooks"),
        &json!({"url": "http://x", "events": ["points.earned", "points.earned"]}),
    );
    assert_eq!(bad.json()["errors"][0]["pointer"], "/events/1");
    let bad = a.client.post(
        &a.path("/webhooks"),
        &json!({"url": "http://x", "events": ["nope"]}),
    );
    assert_eq!(bad.status, 422);

    a.client
        .delete(&a.path(&format!("/webhooks/{endpoint}")))
        .expect(200);
    assert_eq!(
        a.client
            .get(&a.path(&format!("/webhooks/{endpoint}")))
            .status,
        404
    );
    flight(&a, "bob", "f2", 10_000, wall_clock());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        deliveries(&a).len(),
        1,
        "nothing more after the endpoint is gone"
    );
}

#[test]
fn a_pending_delivery_survives_the_host_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first attempt fails; the retry is due 3 s later, after the kill.
    let receiver = Receiver::start(&[500]);
    let args = ["--webhook-allow-private", "--webhook-retry-ms", "3000"];
    let mut server = Server::start_on(&data, &args);
    let a = http::merchant(&server, "acme", "airline-miles");
    register(&a, &receiver.url(), &["points.earned"]);
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "cy", "enrolled_at": wall_clock()}),
        )
        .expect(201);
    flight(&a, "cy", "f1", 10_000, wall_clock());
    eventually("the first attempt", || {
        (!receiver.got().is_empty()).then_some(())
    });
    // The receiver has the request before the host records the failed attempt: wait
    // until the record is queued, then for an acknowledged write, which is durable
    // only when everything queued before it is.
    eventually("the first attempt recorded", || {
        deliveries(&a)
            .into_iter()
            .find(|d| d["attempts"] == 1 && d["status"] == "pending")
    });
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "dee", "enrolled_at": wall_clock()}),
        )
        .expect(201);
    server.kill();

    let server = Server::start_on(&data, &args);
    let a = Merchant {
        client: server.client(Some(&a.key)),
        ..a
    };
    let done = eventually("the delivery after the restart", || {
        deliveries(&a)
            .into_iter()
            .find(|d| d["status"] == "delivered")
    });
    assert_eq!(done["attempts"], 2, "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("loyalty-webhook-id"),
        got[1].header("loyalty-webhook-id")
    );
}

#[test]
fn the_sweep_announces_expiring_points_and_lapsing_members_once() {
    let server = Server::start(&[
        "--webhook-allow-private",
        "--sweep-every",
        "1",
        "--webhook-retry-ms",
        "200",
        "--webhook-expiring-days",
        "60",
        "--webhook-lapse-days",
        "90",
    ]);
    let a = http::merchant(&server, "acme", "airline-miles");
    let receiver = Receiver::start(&[]);
    let (_, secret) = register(&a, &receiver.url(), &["points.expiring", "member.lapsing"]);
    // A flight about 35 months ago: its miles expire at the end of the 36th month
    // after it, within the next 60 days; and nothing was bought since.
    let long_ago = wall_clock() - 35 * 30 * 86_400 - 20 * 86_400;
    a.client
        .post(
            &a.path("/members"),
            &json!({"member": "dee", "enrolled_at": long_ago}),
        )
        .expect(201);
    flight(&a, "dee", "old", 10_000, long_ago);
    eventually("both kinds of notice", || {
        let got = receiver.got();
        let has = |k: &str| got.iter().any(|r| r.json()["type"] == k);
        (has("points.expiring") && has("member.lapsing")).then_some(())
    });
    // A few more sweeps: nothing is sent twice.
    std::thread::sleep(Duration::from_secs(3));
    let got = receiver.got();
    let mut seen: Vec<String> = got.iter().map(|r| r.json()["data"].to_string()).collect();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "a notice was sent twice: {got:?}");
    let lapsing: Vec<Value> = got
        .iter()
        .map(Received::json)
        .filter(|b| b["type"] == "member.lapsing")
        .collect();
    assert_eq!(lapsing.len(), 1, "{got:?}");
    assert_eq!(lapsing[0]["data"]["member"], "dee");
    let expiring: i64 = got
        .iter()
        .map(Received::json)
        .filter(|b| b["type"] == "points.expiring")
        .map(|b| b["data"]["points"].as_i64().unwrap())
        .sum();
    // The 500-mile flight, and the sign-up bonus if the programme lets it expire.
    assert!(expiring == 500 || expiring == 1_000, "{got:?}");
    for r in &got {
        assert!(signature_holds(&secret, r));
    }
}
