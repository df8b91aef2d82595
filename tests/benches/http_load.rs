//! A load generator against the real server on loopback: durable purchase events with
//! the airline plugin, and, in the same run, a bare axum endpoint as the baseline and
//! the same events for a merchant whose plugin credits one point and does nothing else
//! (the server, the engine, the storage and the sandbox's floor, with no rules).
//!
//! ```text
//! plugins/build && cargo build --release -p loyalty-host && cargo bench -p loyalty-tests --bench http_load
//! ```
//!
//! The real server is the `loyalty serve` binary, started on a fresh data directory
//! (sled, fsync before every answer) with the airline programme active. The members
//! are enrolled over HTTP first. Then, in alternating phases of the same run, keep-alive
//! connections each send one request at a time, as fast as answers come:
//! - **events**: `POST /v1/merchants/air/members/{member}/events` with the merchant's
//!   key, a flight with three line items, for random members;
//! - **bare**: `POST /bare` with the same body on a bare axum server in this process
//!   that parses the JSON and answers a small JSON object: the HTTP stack alone;
//! - **one point**: the events phase's requests for merchant `one`, whose plugin
//!   (`plugins/bench/one-point`) credits one point an event: what any sandboxed
//!   programme costs over HTTP before its own rules. Its members are enrolled too.
//!
//! With `IDEMPOTENCY_KEYS=1` every event request also carries an `Idempotency-Key`
//! header (the server then stores each answer in a second durable write).
//!
//! Prints the median over the rounds of each phase's rate and latency percentiles, the
//! ratio events / bare, and where the server's CPU went in each events phase: CPU time
//! per request by server thread (`plugin-pool` runs the operations, `tokio-rt-worker`
//! is HTTP, `group-commit` writes to sled, `sled-io` is sled's own writing), read from
//! `/proc`, and the load generator's own CPU per request (it shares the cores).
//! `MEMBERS`, `CONNECTIONS`, `SECONDS` (per phase) and `ROUNDS` set the size; the
//! defaults are 20,000, 64, 10 and 3.
//!
//! Events happen when they are posted, as a till's do: an event's `occurred_at` is the
//! second of the run it is posted in (counted from `T0 + 60`). Until session 14 each
//! event happened a second after the one before, and every round went back to `T0 +
//! 60`, so each round's history was written in between the last round's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use loyalty_tests::http::{Server, merchant};
use loyalty_tests::proc::{TICKS_PER_SECOND, process_ticks, thread_ticks};
use loyalty_tests::{env_number as env, flight};
use serde_json::json;

/// When the members joined (2026-09-21).
const T0: i64 = 1_790_000_000;

/// The time an event posted now happened: the seconds since the run started, after
/// `T0 + 60`.
fn now() -> i64 {
    loyalty_tests::posted_at(T0 + 60)
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Conn { send }
    }

    /// POST `body` to `path`, with `Idempotency-Key: {idempotency}` if given; the
    /// status.
    async fn post(
        &mut self,
        path: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: Bytes,
    ) -> u16 {
        let mut req = hyper::Request::post(path)
            .header("host", "loopback")
            .header("content-type", "application/json");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(k) = idempotency {
            req = req.header("idempotency-key", k);
        }
        let req = req.body(Full::new(body)).expect("request");
        self.send.ready().await.expect("connection ready");
        let res = self.send.send_request(req).await.expect("answer");
        let status = res.status().as_u16();
        res.into_body().collect().await.expect("body");
        status
    }
}

/// The bare baseline: axum, one route that parses a JSON body and answers JSON.
async fn bare_server() -> SocketAddr {
    async fn bare(body: axum::body::Bytes) -> axum::response::Response {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let out = json!({"id": v["id"], "ok": true}).to_string();
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(out))
            .expect("response")
    }
    let app = axum::Router::new().route("/bare", axum::routing::post(bare));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
}

/// One request of a phase.
struct Req {
    path: String,
    /// The bearer key.
    key: Option<String>,
    /// The `Idempotency-Key`.
    idempotency: Option<String>,
    body: Bytes,
}

/// Run `connections` connections for `seconds`, each sending `request(i)` one at a
/// time. Only 2xx answers count as done; anything else is counted as failed.
async fn phase<F>(addr: SocketAddr, connections: usize, seconds: u64, request: F) -> Figures
where
    F: Fn(u64) -> Req + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (request, next, failed) = (request.clone(), next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Req {
                    path,
                    key,
                    idempotency,
                    body,
                } = request(i);
                let t = Instant::now();
                let status = conn
                    .post(&path, key.as_deref(), idempotency.as_deref(), body)
                    .await;
                if (200..300).contains(&status) {
                    latencies.push(t.elapsed());
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("connection task"));
    }
    let took = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Figures {
        rate: all.len() as f64 / took,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failed: failed.load(Ordering::Relaxed),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let members = env("MEMBERS", 20_000);
    let connections = env("CONNECTIONS", 64);
    let seconds = env("SECONDS", 10) as u64;
    let rounds = env("ROUNDS", 3);
    // With IDEMPOTENCY_KEYS=1 every event carries an `Idempotency-Key`, as a partner
    // app that retries safely sends it: the answer is stored in a second durable write.
    let idempotency_keys = env("IDEMPOTENCY_KEYS", 0) != 0;

    let server = Server::start(&[]);
    let air = merchant(&server, "air", "airline-miles");
    let key = air.key.clone();
    let one = merchant(&server, "one", "bench-one-point");
    let one_key = one.key.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let real = server.addr;
    let bare = runtime.block_on(bare_server());

    for (id, key) in [("air", &key), ("one", &one_key)] {
        eprintln!("enrolling {members} members of {id} over HTTP");
        let enrolled = runtime.block_on(async {
            let started = Instant::now();
            let next = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (next, key) = (next.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::open(real).await;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= members as u64 {
                            break;
                        }
                        let body = json!({"member": format!("m{i}"), "enrolled_at": T0});
                        let status = conn
                            .post(
                                &format!("/v1/merchants/{id}/members"),
                                Some(&key),
                                None,
                                Bytes::from(body.to_string()),
                            )
                            .await;
                        assert_eq!(status, 201, "enrolling m{i}");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("enrol task");
            }
            members as f64 / started.elapsed().as_secs_f64()
        });
        eprintln!("  {enrolled:.0} enrolments/s");
    }

    let mut events = Vec::new();
    let mut ones = Vec::new();
    let mut bares = Vec::new();
    let mut cpu = Vec::new();
    let mut one_cpu = Vec::new();
    for round in 0..rounds {
        let b = runtime.block_on(phase(bare, connections, seconds, move |i| {
            let body = flight(&format!("bare-{round}-{i}"), T0 + 60);
            Req {
                path: "/bare".to_string(),
                key: None,
                idempotency: None,
                body: Bytes::from(body.to_string()),
            }
        }));
        eprintln!("round {round}: bare axum: {b:?}");
        // The airline's phase and the one-point phase, in turn first.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (id, key) = [("air", &key), ("one", &one_key)][which];
            let (e, total) = events_phase(
                &runtime,
                &server,
                Load {
                    connections,
                    seconds,
                    members,
                    idempotency_keys,
                },
                round,
                id,
                key.clone(),
            );
            assert_eq!(e.failed, 0, "every event is accepted");
            if which == 0 {
                events.push(e);
                cpu.push(total);
            } else {
                ones.push(e);
                one_cpu.push(total);
            }
        }
        bares.push(b);
    }
    // Where a request's time went inside the server, from its own metrics.
    let metrics = server.client(None).get("/metrics").body;
    let mean = |name: &str, label: &str| -> Option<(f64, f64)> {
        let total = |suffix: &str| -> Option<f64> {
            metrics
                .lines()
                .filter(|l| l.starts_with(&format!("{name}_{suffix}")) && l.contains(label))
                .map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let (sum, count) = (total("sum")?, total("count")?);
        (count > 0.0).then(|| (sum / count * 1e3, count))
    };
    for (what, name, label) in [
        ("flush", "loyalty_storage_flush_duration_seconds", ""),
        (
            "on-event",
            "loyalty_hook_duration_seconds",
            "hook=\"on-event\"",
        ),
        (
            "evaluate-tier",
            "loyalty_hook_duration_seconds",
            "hook=\"evaluate-tier\"",
        ),
        ("perks", "loyalty_hook_duration_seconds", "hook=\"perks\""),
    ] {
        if let Some((ms, n)) = mean(name, label) {
            eprintln!("server: {what}: {n:.0} in all, mean {ms:.3} ms");
        }
    }
    let m = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    println!(
        "| HTTP, {connections} connections, {members} members, {rounds} rounds of {seconds} s{} | requests/s | p50 | p99 |",
        if idempotency_keys {
            ", events with Idempotency-Key"
        } else {
            ""
        }
    );
    println!("| --- | --- | --- | --- |");
    for (name, v) in [
        ("durable purchase events, airline plugin", &events),
        (
            "durable purchase events, a plugin that credits one point (no rules)",
            &ones,
        ),
        ("bare axum endpoint (parse JSON, answer JSON)", &bares),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms |",
            m(v, |f| f.rate),
            m(v, |f| f.p50_ms),
            m(v, |f| f.p99_ms)
        );
    }
    println!(
        "\nevents / bare = {:.3}; the server's CPU per event request (median of the rounds): {:.0} µs",
        m(&events, |f| f.rate) / m(&bares, |f| f.rate),
        median(cpu)
    );
    println!(
        "one point / bare = {:.3}, the most any sandboxed programme reaches in this server; \
         the server's CPU per one-point request: {:.0} µs",
        m(&ones, |f| f.rate) / m(&bares, |f| f.rate),
        median(one_cpu)
    );
}

/// The load of an events phase.
#[derive(Clone, Copy)]
struct Load {
    connections: usize,
    seconds: u64,
    members: usize,
    idempotency_keys: bool,
}

/// One events phase for merchant `id` (key `key`): flights for its members. Prints its
/// figures and where the server's CPU went; returns the figures and the server's CPU
/// per request in µs.
fn events_phase(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    load: Load,
    round: usize,
    id: &'static str,
    key: String,
) -> (Figures, f64) {
    let Load {
        connections,
        seconds,
        members,
        idempotency_keys,
    } = load;
    let before = server.pid().map(thread_ticks).unwrap_or_default();
    let generator_before = process_ticks();
    let e = runtime.block_on(phase(server.addr, connections, seconds, move |i| {
        // Spread over the members (a prime stride visits them all).
        let member = (i * 7_919) % members as u64;
        let event = format!("r{round}-e{i}");
        let body = flight(&event, now());
        Req {
            path: format!("/v1/merchants/{id}/members/m{member}/events"),
            key: Some(key.clone()),
            idempotency: idempotency_keys.then(|| format!("k-{event}")),
            body: Bytes::from(body.to_string()),
        }
    }));
    eprintln!("round {round}: events ({id}): {e:?}");
    // Where the server's CPU went, per request, by thread. Threads that ended during
    // the phase are not counted (the server's threads live as long as it).
    let after = server.pid().map(thread_ticks).unwrap_or_default();
    let requests = e.rate * seconds as f64;
    // The load generator shares the cores: what it spends is not the server's.
    let us_per_request = |ticks: u64| ticks as f64 * 1e6 / TICKS_PER_SECOND / requests;
    let generator = us_per_request(process_ticks().saturating_sub(generator_before));
    eprintln!("round {round}: load generator CPU per {id} event request: {generator:.0} µs");
    let mut split: Vec<(String, f64)> = after
        .iter()
        .map(|(name, t)| {
            let used = t.saturating_sub(before.get(name).copied().unwrap_or(0));
            (name.clone(), us_per_request(used))
        })
        .filter(|(_, us)| *us >= 0.5)
        .collect();
    split.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = split.iter().map(|(_, us)| us).sum();
    let parts: Vec<String> = split.iter().map(|(n, us)| format!("{n} {us:.0}")).collect();
    eprintln!(
        "round {round}: server CPU per {id} event request: {total:.0} µs ({})",
        parts.join(", ")
    );
    (e, total)
}
