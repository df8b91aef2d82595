//! A merchant with 1,000,000 members and 10,000,000 ledger lines: disk use per member
//! and per line, the time to read a member (balance, tier, perks) at the 50th and
//! 99th percentile, and the host's peak resident memory, with the sled cache size.
//!
//! Two phases, each its own process so the read phase's memory is its own:
//!
//! ```text
//! PHASE=build cargo bench -p loyalty-host --bench scale   # 5-45 min on 2 cores
//! PHASE=read  cargo bench -p loyalty-host --bench scale
//! ```
//!
//! The dataset is built through the engine itself (enrolment, then purchases; each
//! writes one ledger line), with the airline rules compiled natively so that the
//! build takes minutes rather than hours; reads do not call the programme. Members
//! fly different fares (see [`fare_factor`]), so that some stay at the first tier and
//! hold no perks, and the others reach the tiers that carry them: the build prints how
//! many reached each tier, and the read phase reports reads of members holding perks
//! apart (their perks are a second record, see `Space::Perks`).
//! `MEMBERS`, `LINES` (per member), `READS`, `THREADS`, `SCALE_DIR` and
//! `CACHE_MIB` change the defaults (1,000,000, 10, 200,000, 4,
//! `target/scale-bench`, 256).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{T0, env, settings};
use loyalty_host::domain::Event;
use loyalty_host::engine::native::Native;
use loyalty_host::engine::{Engine, EnrolRequest};

/// How much member `i`'s fares are multiplied by, in tenths: a mix of travellers. Six
/// in ten fly the benchmarks' economy fare and stay at the first tier (nine flights
/// are not enough for Gold), two fly twice as dear, one three and a half times, one six
/// times; with the airline's default rules those reach Gold, Platinum and above, and
/// hold perks.
fn fare_factor(i: usize) -> i64 {
    match i % 10 {
        0..=5 => 10,
        6 | 7 => 20,
        8 => 35,
        _ => 60,
    }
}

/// Member `i`'s flight `id` at `at`: the benchmarks' flight with the fare and surcharge
/// (the parts that earn miles) and the total multiplied by [`fare_factor`].
fn flight(i: usize, id: String, at: i64) -> Event {
    let mut v = loyalty_tests::flight(&id, at);
    let factor = fare_factor(i);
    let scale = |x: &mut serde_json::Value| {
        *x = serde_json::json!(x.as_i64().expect("an amount") * factor / 10);
    };
    for item in v["items"].as_array_mut().expect("items") {
        if item["category"] != "tax" {
            scale(&mut item["amount"]);
        }
    }
    let total: i64 = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["amount"].as_i64().expect("an amount"))
        .sum();
    v["amount"]["minor"] = serde_json::json!(total);
    serde_json::from_value(v).expect("the flight is an event")
}

fn open(dir: &Path, cache_mib: usize) -> Arc<Engine> {
    common::native_engine(
        dir,
        cache_mib as u64,
        4,
        Arc::new(Native::<airline_miles::AirlineMiles>::new("native")),
    )
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn build(dir: &Path, members: usize, lines: usize, threads: usize, cache_mib: usize) {
    let _ = std::fs::remove_dir_all(dir);
    let engine = open(dir, cache_mib);
    engine
        .durable(engine.create_merchant(settings()).unwrap())
        .unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut last = None;
                let mut tiers: BTreeMap<String, usize> = BTreeMap::new();
                for i in (t..members).step_by(threads) {
                    let member = format!("member-{i:07}");
                    let req = EnrolRequest {
                        member: member.clone(),
                        enrolled_at: T0,
                        ..Default::default()
                    };
                    let enrolled = engine.enrol("air", &req).unwrap();
                    let mut tier = enrolled.value.tier.id;
                    last = Some(enrolled.ticket);
                    for j in 1..lines {
                        let e = flight(i, format!("{member}-f{j}"), T0 + j as i64 * 3_600);
                        let done = engine.post_event("air", &member, &e).unwrap();
                        tier = done.value.tier.tier;
                        last = Some(done.ticket);
                    }
                    *tiers.entry(tier).or_default() += 1;
                    if t == 0 && i % 50_000 == 0 {
                        eprintln!("  {i} members in {:.0} s", started.elapsed().as_secs_f64());
                    }
                }
                (last, tiers)
            })
        })
        .collect();
    let mut last = None;
    let mut tiers: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        let (l, t) = w.join().unwrap();
        last = last.max(l);
        for (tier, n) in t {
            *tiers.entry(tier).or_default() += n;
        }
    }
    if let Some(t) = last {
        engine
            .durable(loyalty_host::engine::Done {
                value: (),
                ticket: t,
            })
            .unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let ops = members * lines;
    println!(
        "built {members} members, {} ledger lines in {secs:.0} s ({:.0} operations/s), peak RSS {:.0} MiB",
        members * lines,
        ops as f64 / secs,
        peak_rss_mib()
    );
    let mix: Vec<String> = tiers.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!("members by tier: {}", mix.join(", "));
    std::fs::write(dir.join("built"), format!("{members} {lines}")).unwrap();
}

fn read(dir: &Path, reads: usize, cache_mib: usize) {
    let built = std::fs::read_to_string(dir.join("built")).expect("run PHASE=build first");
    let mut it = built
        .split_whitespace()
        .map(|n| n.parse::<usize>().unwrap());
    let (members, lines) = (it.next().unwrap(), it.next().unwrap());
    let opened = Instant::now();
    let engine = open(dir, cache_mib);
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;
    let rss_open = peak_rss_mib();
    let now = T0 + 30 * 86_400;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut times = Vec::with_capacity(reads);
    let mut with_perks = Vec::new();
    let mut check = 0i64;
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let member = format!("member-{:07}", x % members as u64);
        let started = Instant::now();
        let m = engine.member("air", &member, now).unwrap();
        let took = started.elapsed();
        times.push(took);
        if !m.perks.is_empty() {
            with_perks.push(took);
        }
        check += m.balance.available + m.perks.len() as i64 + m.tier.id.len() as i64;
    }
    times.sort();
    with_perks.sort();
    let pct = |p: f64| percentile(&times, p);
    let disk = dir_size(&dir.join("db"));
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| members / ledger lines | {members} / {} |",
        members * lines
    );
    println!("| sled cache | {cache_mib} MiB |");
    println!("| open the database | {open_ms:.0} ms |");
    println!(
        "| member read, p50 | {:.1} µs |",
        pct(0.50).as_secs_f64() * 1e6
    );
    println!(
        "| member read, p99 | {:.1} µs |",
        pct(0.99).as_secs_f64() * 1e6
    );
    println!(
        "| member read, p99.9 | {:.1} µs |",
        pct(0.999).as_secs_f64() * 1e6
    );
    if !with_perks.is_empty() {
        println!(
            "| reads of members holding perks ({} of {reads}): p50 / p99 / p99.9 | {:.1} / {:.1} / {:.1} µs |",
            with_perks.len(),
            percentile(&with_perks, 0.50).as_secs_f64() * 1e6,
            percentile(&with_perks, 0.99).as_secs_f64() * 1e6,
            percentile(&with_perks, 0.999).as_secs_f64() * 1e6
        );
    }
    println!(
        "| disk use | {:.2} GiB: {:.0} bytes per member, {:.0} per ledger line (all of it, events' idempotency records included) |",
        disk as f64 / (1u64 << 30) as f64,
        disk as f64 / members as f64,
        disk as f64 / (members * lines) as f64
    );
    println!(
        "| peak resident memory (read phase) | {:.0} MiB ({rss_open:.0} MiB once the database was open) |",
        peak_rss_mib()
    );
    eprintln!("({reads} reads, checksum {check})");
}

/// The `p` quantile of `sorted` (not empty).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("SCALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/scale-bench"));
    let cache_mib = env("CACHE_MIB", 256);
    match std::env::var("PHASE").as_deref() {
        Ok("build") => build(
            &dir,
            env("MEMBERS", 1_000_000),
            env("LINES", 10),
            env("THREADS", 4),
            cache_mib,
        ),
        Ok("read") => read(&dir, env("READS", 200_000), cache_mib),
        _ => {
            eprintln!("set PHASE=build (once) or PHASE=read; see the file's docs");
        }
    }
}
