//! Simulation speed: replaying a history of `EVENTS` operations (default 1,000,000:
//! `MEMBERS` enrolments, the rest flights) through a candidate and the active
//! programme together, both the sandboxed airline plugin (the candidate with lower
//! tier thresholds), against live ingestion of the same kind of events on the same
//! machine in the same run: the sandboxed airline, durable on sled, 256 in flight.
//!
//! `plugins/build && cargo bench -p loyalty-host --bench simulate`. `MEMBERS`
//! (default 50,000), `EVENTS`, `LIVE_EVENTS` (default 40,000) and `ROUNDS` (default
//! 3 for live ingestion; the replay runs once) set the size.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use common::{T0, drive, enrol, env, flight, median, settings};
use loyalty_host::app::{App, Options};
use loyalty_host::engine::Recorded;
use loyalty_host::jobs::Counters;
use loyalty_host::simulate::{self, Contender, Source};

fn main() {
    let members = env("MEMBERS", 50_000);
    let events = env("EVENTS", 1_000_000);
    let live_events = env("LIVE_EVENTS", 40_000);
    let rounds = env("ROUNDS", 3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugin = std::fs::read(root.join("target/plugins/airline-miles.wasm"))
        .expect("build the plugins first: plugins/build");
    let dir = tempfile::tempdir_in(root.join("target")).unwrap();
    let app = App::open(dir.path(), &Options::default()).unwrap();
    app.ensure_merchant(settings(), &plugin, T0).unwrap();

    // The history file: every member enrols, then flights in time order.
    let history = dir.path().join("history.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&history).unwrap());
    for i in 0..members {
        let op = Recorded::Enrol {
            member: format!("m{i}"),
            at: T0,
            birthday: None,
            attributes: Default::default(),
            referred_by: None,
        };
        serde_json::to_writer(&mut out, &op).unwrap();
        out.write_all(b"\n").unwrap();
    }
    for i in 0..events.saturating_sub(members) {
        let op = Recorded::Event {
            member: format!("m{}", (i * 7_919) % members),
            event: flight(format!("h{i}"), T0 + 60 + i as i64),
        };
        serde_json::to_writer(&mut out, &op).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    drop(out);

    // Live ingestion, the baseline.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = app.engine.clone();
    let enrolled = runtime.block_on(drive(&engine, members, 256, enrol));
    eprintln!("live: {members} enrolments at {enrolled:.0}/s");
    let mut live = Vec::new();
    for round in 0..rounds {
        let rate = runtime.block_on(drive(&engine, live_events, 256, move |i, e| {
            let e = e.clone();
            tokio::spawn(async move {
                let member = format!("m{}", (i * 7_919) % members);
                let event = flight(format!("r{round}-e{i}"), T0 + 60 + i as i64);
                e.submit("air", move |e| e.post_event("air", &member, &event))
                    .await
                    .unwrap();
            })
        }));
        eprintln!("live round {round}: {rate:.0} events/s");
        live.push(rate);
    }
    let live = median(live);

    // The replay: active and candidate together, one thread each.
    let active = app.registry.active("air").unwrap();
    let mut candidate_settings = settings();
    candidate_settings.config = Some(serde_json::json!({"thresholds": {
        "gold": 20_000, "platinum": 40_000, "platinum_pro": 60_000, "executive_platinum": 80_000
    }}));
    let counters = Counters::default();
    let started = Instant::now();
    let report = simulate::run(
        &app.engine,
        "air",
        &Source::File(history),
        Contender {
            programme: active.clone(),
            settings: settings(),
        },
        Contender {
            programme: active,
            settings: candidate_settings,
        },
        &counters,
    )
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let pair = report.operations as f64 / secs;
    assert_eq!(report.operations as usize, events.max(members));
    assert_eq!(report.active.failures + report.candidate.failures, 0);
    println!(
        "replay: {} operations through both sides in {secs:.1} s: {pair:.0} operations/s for the pair \
         ({:.0} hook-call sets/s in all)",
        report.operations,
        2.0 * pair
    );
    println!(
        "  active: {} points issued, tiers {:?}; candidate: {} points issued, tiers {:?}",
        report.active.points_issued,
        report
            .active
            .tiers
            .iter()
            .map(|t| (&t.tier, t.members))
            .collect::<Vec<_>>(),
        report.candidate.points_issued,
        report
            .candidate
            .tiers
            .iter()
            .map(|t| (&t.tier, t.members))
            .collect::<Vec<_>>(),
    );
    println!("live ingestion (median of {rounds}): {live:.0} events/s");
    println!("replay pair / live ingestion: {:.2}", pair / live);
}
