//! Durable purchase events through the engine (no HTTP), with many members: the
//! airline programme sandboxed and compiled natively, a programme that does nothing
//! but credit one point sandboxed and compiled natively (natively: the engine and
//! storage alone; sandboxed: that plus what any plugin costs, the sandbox's floor),
//! and the storage alone, in the same run: every round runs each once, starting with a
//! different one each round, after a 1 s pause. Prints each one's median rate and the
//! ratios, and for each engine phase the cores the process kept busy, how busy the
//! whole machine was, and the process's CPU time per event (from `/proc`): a rate
//! ratio measured while the cores sit partly idle is not the ratio of what the two
//! setups cost, so both are printed.
//!
//! `cargo bench -p loyalty-host --bench engine` (plugins built first with
//! `plugins/build`). `MEMBERS`, `EVENTS` (per round), `ROUNDS` and `CONCURRENCY` set
//! the size; the defaults are 50,000 members, 40,000 events, 5 rounds, 256 in flight.
//! `THREADS` sets the plugin pool (default: the host's, two per core); the one merchant
//! may use all of it in every setup. `PHASES` (e.g. `3` or `2,3`) runs only those
//! phases (0 sandboxed airline, 1 native airline, 2 one point native, 3 one point
//! sandboxed, 4 the storage alone) and prints no ratios: for profiling one of them.
//!
//! Events happen when they are posted, as a till's do: an event's `occurred_at` is the
//! second of the run it is posted in (counted from `T0 + 60`). Until session 14 each
//! event happened a second after the one before, as if eleven hours of history were
//! posted at once.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_one_point::OnePoint;
use common::{T0, drive, enrol, env, flight, median, settings};
use loyalty_host::app::{App, Options};
use loyalty_host::engine::native::Native;
use loyalty_host::engine::{Engine, GroupCommit};
use loyalty_host::storage::{Batch, Key, SledStorage, Space, Storage, appended};

/// The time an event posted now happened: the seconds since the run started, after
/// `T0 + 60`.
fn now() -> i64 {
    loyalty_tests::posted_at(T0 + 60)
}

/// The host's default options, with `THREADS` (if set) as the plugin pool's size, all
/// of it for the one merchant (as the native setups have it).
fn options() -> Options {
    let mut options = Options::default();
    if let Ok(n) = std::env::var("THREADS") {
        options.threads = n.parse().expect("THREADS is a number");
    }
    options.per_merchant = options.threads;
    options
}

fn native_engine(dir: &Path, programme: Arc<dyn loyalty_host::engine::Programme>) -> Arc<Engine> {
    let options = options();
    let engine = common::native_engine(dir, options.cache_bytes >> 20, options.threads, programme);
    engine
        .durable(engine.create_merchant(settings()).unwrap())
        .unwrap();
    engine
}

/// The pause before each phase (see the round loop).
const SETTLE_MS: u64 = 1_000;

/// CPU time used so far: by this process (user + system, from `/proc/self/stat`), and
/// by the whole machine as (busy, all), from `/proc/stat`; in clock ticks.
#[derive(Clone, Copy)]
struct Cpu {
    process: u64,
    machine_busy: u64,
    machine_all: u64,
}

impl Cpu {
    fn now() -> Cpu {
        let (machine_busy, machine_all) = loyalty_tests::proc::machine_ticks();
        Cpu {
            process: loyalty_tests::proc::process_ticks(),
            machine_busy,
            machine_all,
        }
    }

    /// Since `before`, over `seconds` of wall time and `n` operations: the cores this
    /// process kept busy, the share of the machine's CPU time busy (any process), and
    /// this process's CPU time per operation in µs.
    fn since(self, before: Cpu, seconds: f64, n: usize) -> (f64, f64, f64) {
        let process =
            (self.process - before.process) as f64 / loyalty_tests::proc::TICKS_PER_SECOND;
        let all = (self.machine_all - before.machine_all).max(1) as f64;
        (
            process / seconds,
            (self.machine_busy - before.machine_busy) as f64 / all,
            process * 1e6 / n as f64,
        )
    }
}

fn main() {
    let members = env("MEMBERS", 50_000);
    let events = env("EVENTS", 40_000);
    let rounds = env("ROUNDS", 5);
    let concurrency = env("CONCURRENCY", 256);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugin = |name: &str| {
        std::fs::read(root.join(format!("target/plugins/{name}.wasm")))
            .expect("build the plugins first: plugins/build")
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir_in(root.join("target")).unwrap())
        .collect();
    let sandboxed = |dir: &Path, name: &str| {
        let app = App::open(dir, &options()).unwrap();
        app.ensure_merchant(settings(), &plugin(name), T0).unwrap();
        app.engine.clone()
    };
    // The setups' places in this list are the indices the summary below reads.
    let setups: Vec<(&str, Arc<Engine>)> = vec![
        (
            "sandboxed airline",
            sandboxed(dirs[0].path(), "airline-miles"),
        ),
        (
            "native airline",
            native_engine(
                dirs[1].path(),
                Arc::new(Native::<airline_miles::AirlineMiles>::new("native")),
            ),
        ),
        (
            "one point, native (engine + storage only)",
            native_engine(dirs[2].path(), Arc::new(Native::<OnePoint>::new("one"))),
        ),
        (
            "one point, sandboxed (engine + storage + the sandbox's floor)",
            sandboxed(dirs[3].path(), "bench-one-point"),
        ),
    ];
    let storage_phase = setups.len();
    let only: Option<Vec<usize>> = std::env::var("PHASES").ok().map(|s| {
        s.split(',')
            .map(|k| k.trim().parse().expect("PHASES: phase numbers, e.g. 2,3"))
            .collect()
    });
    let runs = |k: usize| only.as_ref().is_none_or(|o| o.contains(&k));
    // The setups whose phases run.
    let chosen: Vec<_> = setups
        .iter()
        .enumerate()
        .filter(|(k, _)| runs(*k))
        .map(|(_, s)| s)
        .collect();
    eprintln!(
        "enrolling {members} members in each of {} engines",
        setups.len()
    );
    for (name, engine) in &chosen {
        let rate = runtime.block_on(drive(engine, members, concurrency, enrol));
        eprintln!("  {name}: {rate:.0} enrolments/s");
    }

    // The cost of one operation on one thread, before durability (no waiting for
    // flushes): where the time goes when the rates are low.
    for (name, engine) in &chosen {
        let n = 5_000;
        let started = Instant::now();
        for i in 0..n {
            let member = format!("m{}", (i * 7_919) % members);
            let event = flight(format!("warm-e{i}"), T0 + 30);
            engine.post_event("air", &member, &event).unwrap();
        }
        eprintln!(
            "  {name}: {:.1} µs per event on one thread, before its flush",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }

    // The storage ceiling: the same writes an event makes (its member record rewritten,
    // its event record added), through the same group commit, with no engine at all.
    let sandboxed = &setups[0].1;
    let member_bytes = sandboxed
        .storage()
        .get(Space::Members, &Key::merchant("air", &[b"m0"]))
        .unwrap()
        .map_or(1_000, |v| v.len());
    let event_bytes = sandboxed
        .storage()
        .get(
            Space::Idempotency,
            &Key::merchant("air", &[b"event", b"warm-e0"]),
        )
        .unwrap()
        .map_or(300, |v| v.len());
    let journal_bytes = sandboxed
        .storage()
        .scan_page(Space::Journal, "air", &[], None, 1, true)
        .unwrap()
        .first()
        .and_then(|(_, v)| Some(appended(v).ok()?.last()?.len()))
        .unwrap_or(400);
    eprintln!(
        "records: member {member_bytes} bytes, event {event_bytes} bytes, journal entry {journal_bytes} bytes"
    );
    let ceiling_dir = tempfile::tempdir_in(root.join("target")).unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(ceiling_dir.path(), Options::default().cache_bytes).unwrap());
    let commit = Arc::new(GroupCommit::start(storage.clone()));
    for i in 0..members {
        let mut b = Batch::new();
        b.put(
            Space::Members,
            Key::merchant("air", &[format!("m{i}").as_bytes()]),
            vec![7; member_bytes],
        );
        storage.apply(b).unwrap();
    }

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); setups.len() + 1];
    // Per engine setup and counted round: (cores busy in this process, CPU µs per event).
    // The storage alone's too, last.
    let mut cpu: Vec<Vec<(f64, f64)>> = vec![Vec::new(); setups.len() + 1];
    // Round 0 warms up (sled settles after the enrolments) and is not counted.
    for round in 0..=rounds {
        // Each round starts with a different phase, so that no setup always follows
        // the same one (and pays for its sled's background work), and each phase starts
        // after a pause that lets the last one's background flushing settle.
        let counted = round > 0;
        let label = if counted {
            format!("round {round}")
        } else {
            "warm-up".to_string()
        };
        let phases = setups.len() + 1;
        for k in (0..phases)
            .map(|j| (j + round) % phases)
            .filter(|&k| runs(k))
        {
            std::thread::sleep(Duration::from_millis(SETTLE_MS));
            if k == storage_phase {
                let cpu_before = Cpu::now();
                let rate = storage_round(
                    &runtime,
                    &commit,
                    round,
                    events,
                    concurrency,
                    members,
                    (member_bytes, event_bytes, journal_bytes),
                );
                let (cores, machine, per_write) =
                    Cpu::now().since(cpu_before, events as f64 / rate, events);
                eprintln!(
                    "{label}: storage alone: {rate:.0} writes/s ({cores:.2} cores busy in this \
                     process, the machine {:.0} % busy; {per_write:.0} µs of CPU per write)",
                    machine * 100.0
                );
                if counted {
                    rates[k].push(rate);
                    cpu[k].push((cores, per_write));
                }
                continue;
            }
            let (name, engine) = &setups[k];
            let before = engine.flush_stats();
            let cpu_before = Cpu::now();
            let rate = runtime.block_on(drive(engine, events, concurrency, |i, e| {
                let e = e.clone();
                tokio::spawn(async move {
                    let member = format!("m{}", (i * 7_919) % members);
                    let event = flight(format!("r{round}-e{i}"), now());
                    e.submit("air", move |e| e.post_event("air", &member, &event))
                        .await
                        .unwrap();
                })
            }));
            let after = engine.flush_stats();
            let (cores, machine, per_event) =
                Cpu::now().since(cpu_before, events as f64 / rate, events);
            let flushes = after.flushes - before.flushes;
            eprintln!(
                "{label}: {name}: {rate:.0} events/s ({} events per flush, {:.2} ms per flush; \
                 {cores:.2} cores busy in this process, the machine {:.0} % busy; \
                 {per_event:.0} µs of CPU per event)",
                events as u64 / flushes.max(1),
                (after.flush_time - before.flush_time).as_secs_f64() * 1e3 / flushes.max(1) as f64,
                machine * 100.0
            );
            if counted {
                rates[k].push(rate);
                cpu[k].push((cores, per_event));
            }
        }
    }
    if only.is_some() {
        return;
    }
    println!(
        "| engine, durable purchase events | median events/s | cores busy in the process | CPU per event |"
    );
    println!("| --- | --- | --- | --- |");
    // The sandboxed / native ratio of each round (its two phases ran minutes apart at
    // most, on the same sled growth).
    let paired: Vec<f64> = rates[0].iter().zip(&rates[1]).map(|(s, n)| s / n).collect();
    let paired_text: Vec<String> = paired.iter().map(|r| format!("{r:.2}")).collect();
    let medians: Vec<f64> = rates.into_iter().map(median).collect();
    // Each setup's median over the rounds of one part of its CPU figures.
    let cpu_median = |part: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        cpu.iter()
            .map(|v| median(v.iter().map(part).collect()))
            .collect()
    };
    let (cores, per_event) = (cpu_median(|c| c.0), cpu_median(|c| c.1));
    for (i, (name, _)) in setups.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2} | {:.0} µs |",
            medians[i], cores[i], per_event[i]
        );
    }
    println!(
        "| storage alone (an event's writes: {member_bytes} + {event_bytes} + {journal_bytes} bytes, group commit, no engine) | {:.0} | {:.2} | {:.0} µs |",
        medians[storage_phase], cores[storage_phase], per_event[storage_phase]
    );
    println!(
        "\nsandboxed / native = {:.2} (the plugin costs {:.0} % of the native rate); native / engine-only = {:.2}; engine-only / storage alone = {:.2}",
        medians[0] / medians[1],
        (1.0 - medians[0] / medians[1]) * 100.0,
        medians[1] / medians[2],
        medians[2] / medians[storage_phase]
    );
    println!(
        "sandboxed / native round by round: {} (median {:.2})",
        paired_text.join(", "),
        median(paired)
    );
    println!(
        "CPU per event, native / sandboxed = {:.2}: the rate ratio a run would measure if both were bound by CPU alone (the sandbox adds {:.0} µs of CPU an event)",
        per_event[1] / per_event[0],
        per_event[0] - per_event[1]
    );
    // The floor: what sandboxing adds to a programme with no rules of its own, and the
    // best ratio any sandboxed programme could reach against the airline's native cost
    // if its own rules cost nothing more in wasm than natively.
    let floor = per_event[3] - per_event[2];
    println!(
        "the sandbox's floor: one point sandboxed / native = {:.2} by the rates ({:.0} against {:.0} events/s); it adds {floor:.0} µs of CPU an event ({:.0} against {:.0} µs). \
         With the airline's native {:.0} µs an event, that floor alone allows a ratio of at most {:.2} in CPU",
        medians[3] / medians[2],
        medians[3],
        medians[2],
        per_event[3],
        per_event[2],
        per_event[1],
        per_event[1] / (per_event[1] + floor)
    );
    // Where a sandboxed airline event's CPU goes, part by part, against what 50,000
    // events a second leaves each event on this machine's cores.
    let cores_here = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    println!(
        "CPU an event, by part (medians): the storage's writes {:.0} µs, the engine's own work {:.0} µs \
         (one point native less the storage), the sandbox's floor {floor:.0} µs, the airline's rules natively {:.0} µs \
         (native airline less one point native), the airline's rules' extra in the sandbox {:.0} µs; \
         50,000 events/s on {cores_here:.0} cores leaves {:.0} µs an event with every core busy",
        per_event[storage_phase],
        per_event[2] - per_event[storage_phase],
        per_event[1] - per_event[2],
        per_event[0] - per_event[1] - floor,
        cores_here * 1e6 / 50_000.0
    );
}

/// One round of the storage ceiling: `events` operations, each writing an event's three
/// records (`sizes`: the member record rewritten, the event's idempotency record and
/// its journal entry added) through `commit` and waiting for the flush; returns
/// writes/s.
fn storage_round(
    runtime: &tokio::runtime::Runtime,
    commit: &Arc<GroupCommit>,
    round: usize,
    events: usize,
    concurrency: usize,
    members: usize,
    sizes: (usize, usize, usize),
) -> f64 {
    let (member_bytes, event_bytes, journal_bytes) = sizes;
    runtime.block_on(async {
        let started = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut handles = Vec::with_capacity(events);
        for i in 0..events {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let commit = commit.clone();
            handles.push(tokio::spawn(async move {
                // Queued from the task itself: with 256 in flight the queue never
                // fills, so `submit` only takes the group commit's lock and returns.
                let ticket = {
                    let mut b = Batch::new();
                    let member = format!("m{}", (i * 7_919) % members);
                    b.put(
                        Space::Members,
                        Key::merchant("air", &[member.as_bytes()]),
                        vec![7; member_bytes],
                    );
                    let id = format!("r{round}-e{i}");
                    b.put(
                        Space::Idempotency,
                        Key::merchant("air", &[b"event", id.as_bytes()]),
                        vec![9; event_bytes],
                    );
                    // Journal entries are appended under the time the event happened.
                    let at = (now() as u64 ^ (1 << 63)).to_be_bytes();
                    b.append(
                        Space::Journal,
                        Key::merchant("air", &[&at]),
                        vec![5; journal_bytes],
                    );
                    commit.submit(b).unwrap()
                };
                commit.wait_async(ticket).await.unwrap();
                drop(permit);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        events as f64 / started.elapsed().as_secs_f64()
    })
}
