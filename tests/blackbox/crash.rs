//! Durable before acknowledged: the host is killed with SIGKILL in the middle of a
//! stream of operations, again and again, and every time it restarts with every
//! acknowledged operation present, no operation half-applied, and every ledger
//! summing to its balance.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loyalty_tests::{binary, plugin};

const T0: i64 = 1_790_000_000;
const MEMBERS: usize = 100;

/// The operations, as lines, with the event id each one records (if any).
fn operations() -> Vec<(String, Option<String>)> {
    let mut ops = Vec::new();
    for j in 0..6_000usize {
        let member = format!("m{}", j % MEMBERS);
        let at = T0 + 60 + j as i64;
        let op = if j % 10 == 9 {
            // A partial refund of a purchase made 100 operations earlier.
            let id = format!("r{j}");
            let line = serde_json::json!({
                "op": "event", "member": format!("m{}", (j - 100) % MEMBERS),
                "event": {
                    "id": id, "occurred_at": at, "kind": "refund",
                    "original_event": format!("p{}", j - 100), "full": false,
                    "amount": { "minor": 5_000, "currency": "USD" }
                }
            });
            (line, Some(id))
        } else if j % 15 == 7 {
            let line = serde_json::json!({
                "op": "adjust", "member": member, "at": at,
                "adjustment": { "id": format!("a{j}"), "points": -40, "reason": "correction", "by": "crash-test" }
            });
            (line, None)
        } else {
            let id = format!("p{j}");
            let fare = 20_000 + (j as i64 % 7) * 1_000;
            let line = serde_json::json!({
                "op": "event", "member": member,
                "event": {
                    "id": id, "occurred_at": at, "kind": "purchase",
                    "amount": { "minor": fare, "currency": "USD" },
                    "items": [{ "sku": "JFK-LAX", "category": "fare", "amount": fare }]
                }
            });
            (line, Some(id))
        };
        ops.push((op.0.to_string(), op.1));
    }
    ops
}

/// Import `lines`; with `kill_after` (acknowledgements, then a pause), SIGKILL the
/// importer once it has acknowledged that many (or when it ends first). Counting
/// acknowledgements instead of time makes every kill land mid-stream however fast the
/// machine is. The acknowledged line numbers, and whether the kill hit a running
/// process.
fn import(
    data: &Path,
    lines: Vec<String>,
    kill_after: Option<(usize, Duration)>,
) -> (Vec<usize>, bool) {
    let mut child = Command::new(binary())
        .args([
            "import",
            "--merchant",
            "air",
            "--concurrency",
            "128",
            "--data",
        ])
        .arg(data)
        .arg("--plugin")
        .arg(plugin("airline-miles"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loyalty import");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for l in lines {
            // A killed importer closes the pipe: stop writing.
            if writeln!(stdin, "{l}").is_err() {
                return;
            }
        }
    });
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("stdout");
    let (reached, wait) = std::sync::mpsc::channel::<()>();
    let target = kill_after.map_or(usize::MAX, |(n, _)| n);
    let reader = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let ack: serde_json::Value = serde_json::from_str(&line).expect("an ack is JSON");
                if ack["ok"] == true {
                    let n = ack["line"].as_u64().expect("line number") as usize;
                    let mut acked = acked.lock().unwrap();
                    acked.push(n);
                    if acked.len() == target {
                        let _ = reached.send(());
                    }
                }
            }
            // The reader's end (the importer ended or was killed) also wakes the waiter.
        })
    };
    let killed = match kill_after {
        Some((_, pause)) => {
            let _ = wait.recv_timeout(Duration::from_secs(120));
            std::thread::sleep(pause);
            // SIGKILL: no chance to flush or clean up.
            let running = child.try_wait().expect("poll").is_none();
            child.kill().expect("kill");
            running
        }
        None => false,
    };
    child.wait().expect("wait");
    writer.join().unwrap();
    reader.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    (acked, killed)
}

fn check(data: &Path, expected: &HashSet<String>) {
    let ids = data.join("expected-events.txt");
    let mut list: Vec<&String> = expected.iter().collect();
    list.sort();
    std::fs::write(
        &ids,
        list.iter().map(|s| format!("{s}\n")).collect::<String>(),
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check", "--merchant", "air", "--data"])
        .arg(data)
        .arg("--expect-events")
        .arg(&ids)
        .output()
        .expect("run loyalty check");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the check failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_operation_and_half_applies_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let enrolments: Vec<String> = (0..MEMBERS)
        .map(|i| {
            serde_json::json!({ "op": "enrol", "request": { "member": format!("m{i}"), "enrolled_at": T0 } })
                .to_string()
        })
        .collect();
    let (acked, _) = import(&data, enrolments, None);
    assert_eq!(acked.len(), MEMBERS, "every member enrolled");

    let ops = operations();
    let mut expected: HashSet<String> = HashSet::new();
    let mut killed_mid_stream = 0;
    let rounds = 6;
    for round in 0..rounds {
        // Each round resends the rest of the stream (retries of what was already
        // applied are answered from the idempotency records) and is killed after a
        // different delay.
        let from = round * ops.len() / (rounds + 1);
        let lines: Vec<String> = ops[from..].iter().map(|(l, _)| l.clone()).collect();
        let sent = lines.len();
        // Killed after a different number of acknowledgements each round, and a
        // different pause after it, so the kill lands at different points of the
        // pipeline (applying, flushing, answering).
        let kill = (100 + 97 * round, Duration::from_millis(3 * round as u64));
        let (acked, killed) = import(&data, lines, Some(kill));
        for n in &acked {
            if let Some(id) = &ops[from + n - 1].1 {
                expected.insert(id.clone());
            }
        }
        if killed && !acked.is_empty() && acked.len() < sent {
            killed_mid_stream += 1;
        }
        check(&data, &expected);
    }
    assert!(
        killed_mid_stream >= 2,
        "only {killed_mid_stream} rounds were killed while operations were being acknowledged"
    );
    // Finally the whole stream runs to the end: everything is applied exactly once.
    let (acked, _) = import(&data, ops.iter().map(|(l, _)| l.clone()).collect(), None);
    for n in &acked {
        if let Some(id) = &ops[n - 1].1 {
            expected.insert(id.clone());
        }
    }
    let purchases = ops
        .iter()
        .filter(|(_, id)| id.as_deref().is_some_and(|i| i.starts_with('p')))
        .count();
    assert!(
        expected.iter().filter(|i| i.starts_with('p')).count() == purchases,
        "every purchase is recorded in the end"
    );
    check(&data, &expected);
}

/// One event a client posted under an `Idempotency-Key` and the answer it got.
struct Answered {
    key: String,
    path: String,
    body: String,
    id: String,
    answer: loyalty_tests::http::Answer,
}

/// Over HTTP, with an `Idempotency-Key` on every request as a partner app that
/// retries safely sends one: the server is killed with SIGKILL while eight clients
/// post events, three times over. After the restarts every event that was answered
/// 200 is there, and a retry with its key gets the stored answer back, byte for byte
/// and marked replayed: the operation and the answer the server remembers for it
/// were both durable before the client heard anything.
#[test]
fn answers_given_under_an_idempotency_key_survive_sigkill() {
    use loyalty_tests::http::{self, Server};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let air = http::merchant(&server, "air", "airline-miles");
    for m in 0..20 {
        air.client
            .post(
                &air.path("/members"),
                &serde_json::json!({"member": format!("m{m}"), "enrolled_at": T0}),
            )
            .expect(201);
    }
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
    for round in 0..3 {
        if round > 0 {
            server = Server::start_on(&data, &[]);
        }
        let target = answered.lock().unwrap().len() + 300 + 50 * round;
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let client = server.client(Some(&air.key));
                let answered = answered.clone();
                std::thread::spawn(move || {
                    for i in 0.. {
                        let id = format!("e-{round}-{c}-{i}");
                        let key = format!("k-{round}-{c}-{i}");
                        let path =
                            format!("/v1/merchants/air/members/m{}/events", (c * 7 + i) % 20);
                        let at = T0 + 60 + (round * 100_000 + i) as i64;
                        let body = loyalty_tests::flight(&id, at).to_string();
                        let sent = client.try_send(
                            "POST",
                            &path,
                            &[
                                ("content-type", "application/json"),
                                ("idempotency-key", &key),
                            ],
                            Some(body.as_bytes()),
                        );
                        match sent {
                            Ok(answer) if answer.status == 200 => {
                                answered.lock().unwrap().push(Answered {
                                    key,
                                    path,
                                    body,
                                    id,
                                    answer,
                                });
                            }
                            // The server is gone: stop.
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        loyalty_tests::eventually("events answered", || {
            (answered.lock().unwrap().len() >= target).then_some(())
        });
        // SIGKILL: no chance to flush or clean up.
        server.kill();
        for c in clients {
            c.join().unwrap();
        }
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());

    let server = Server::start_on(&data, &[]);
    let client = server.client(Some(&air.key));
    for a in &answered {
        let again = client.send(
            "POST",
            &a.path,
            &[
                ("content-type", "application/json"),
                ("idempotency-key", &a.key),
            ],
            Some(a.body.as_bytes()),
        );
        assert_eq!(
            (again.status, again.header("idempotent-replayed")),
            (200, Some("true")),
            "the answer to {} (key {}) was not kept: {again:?}",
            a.id,
            a.key
        );
        assert_eq!(again.body, a.answer.body, "event {}", a.id);
        client
            .get(&format!("/v1/merchants/air/events/{}", a.id))
            .expect(200);
    }
}
