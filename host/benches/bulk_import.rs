//! Bulk import of members: `MEMBERS` members (default 1,000,000) generated as a file
//! in memory, imported through `bulk::run` into a fresh sled directory (under
//! `target/`, on disk) with the airline programme's tiers, timed from the first byte
//! read to the last chunk durable. Prints members/s and the time per run, and the
//! median when there are several.
//!
//! `cargo bench -p loyalty-host --bench bulk_import`. `MEMBERS` sets the size,
//! `RUNS` the number of runs (default 1), `FORMAT` the file format (`jsonl`, the
//! default, or `csv`), `CACHE_MB` sled's page cache (default: the host's default).
//! `SHUFFLE=1` numbers the members in a scrambled order instead of the file's.
//! `CHECK=1` runs the consistency check afterwards (slow).
//!
//! The generated file is what a typical export looks like: rows in member-id order,
//! every row with a balance and a tier, half with a birthday, two attributes each, a
//! third with an expiry.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use common::{T0, env, settings};
use loyalty_host::app::Options;
use loyalty_host::bulk::{self, Format};
use loyalty_host::engine::native::Native;

const TIERS: [&str; 5] = [
    "member",
    "gold",
    "platinum",
    "platinum-pro",
    "executive-platinum",
];

/// Row `i` of `members`'s fields: (member, enrolled_at, balance, tier, birthday,
/// expires_at, segment).
#[allow(clippy::type_complexity)]
fn fields(
    i: usize,
    members: usize,
) -> (
    String,
    i64,
    i64,
    &'static str,
    Option<String>,
    Option<i64>,
    &'static str,
) {
    let day = 86_400;
    let birthday = i
        .is_multiple_of(2)
        .then(|| format!("{:04}-{:02}-{:02}", 1950 + i % 50, 1 + i % 12, 1 + i % 28));
    (
        format!("M{:08}", member_number(i, members)),
        T0 - (i % 3_650) as i64 * day,
        ((i * 7_919) % 50_000) as i64,
        TIERS[i % 10 / 2],
        birthday,
        i.is_multiple_of(3).then_some(T0 + 365 * day),
        ["retail", "business", "student"][i % 3],
    )
}

/// The member number of row `i`: `i`, or with `SHUFFLE=1` a scrambled one (a
/// bijection unless `MEMBERS` is a multiple of the prime 7,919).
fn member_number(i: usize, members: usize) -> usize {
    if std::env::var("SHUFFLE").is_ok_and(|s| s == "1") {
        (i * 7_919) % members
    } else {
        i
    }
}

fn jsonl(members: usize) -> Vec<u8> {
    let mut out = String::with_capacity(members * 200);
    for i in 0..members {
        let (member, enrolled_at, balance, tier, birthday, expires_at, segment) =
            fields(i, members);
        let mut row = serde_json::json!({
            "member": member,
            "enrolled_at": enrolled_at,
            "balance": balance,
            "tier": tier,
            "attributes": { "segment": segment, "source": "legacy" },
        });
        if let Some(b) = birthday {
            row["birthday"] = b.into();
        }
        if let Some(e) = expires_at {
            row["expires_at"] = e.into();
        }
        out.push_str(&row.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn csv(members: usize) -> Vec<u8> {
    let mut out = String::with_capacity(members * 120);
    out.push_str("member,enrolled_at,balance,tier,birthday,expires_at,attr.segment,attr.source\n");
    for i in 0..members {
        let (member, enrolled_at, balance, tier, birthday, expires_at, segment) =
            fields(i, members);
        out.push_str(&format!(
            "{member},{enrolled_at},{balance},{tier},{},{},{segment},legacy\n",
            birthday.unwrap_or_default(),
            expires_at.map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    out.into_bytes()
}

fn main() {
    let members = env("MEMBERS", 1_000_000);
    let runs = env("RUNS", 1).max(1);
    let format = match std::env::var("FORMAT").as_deref() {
        Ok("csv") => Format::Csv,
        Ok("jsonl") | Err(_) => Format::Jsonl,
        Ok(other) => panic!("FORMAT is jsonl or csv, not {other:?}"),
    };
    let file = match format {
        Format::Jsonl => jsonl(members),
        Format::Csv => csv(members),
    };
    eprintln!(
        "importing {members} members ({format:?}, {} MB) {runs} time(s), each into a fresh database",
        file.len() >> 20
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options::default();
    if let Ok(mb) = std::env::var("CACHE_MB") {
        options.cache_bytes = mb.parse::<u64>().expect("CACHE_MB is a number") << 20;
    }
    let mut rates = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir_in(root.join("target")).unwrap();
        let engine = common::native_engine(
            dir.path(),
            options.cache_bytes >> 20,
            options.threads,
            Arc::new(Native::<airline_miles::AirlineMiles>::new("native")),
        );
        engine
            .durable(engine.create_merchant(settings()).unwrap())
            .unwrap();
        let started = Instant::now();
        let mut next_report = members as u64 / 10;
        let report = bulk::run(
            &engine,
            "air",
            format,
            &file[..],
            T0,
            &mut |p| {
                if p.rows >= next_report {
                    eprintln!(
                        "    {} rows, {:.1} s",
                        p.rows,
                        started.elapsed().as_secs_f64()
                    );
                    next_report += members as u64 / 10;
                }
            },
            &AtomicBool::new(false),
        )
        .unwrap();
        let took = started.elapsed().as_secs_f64();
        assert_eq!(
            (report.imported, report.failed),
            (members as u64, 0),
            "{:?}",
            report.errors
        );
        let rate = members as f64 / took;
        let flushes = engine.flush_stats();
        eprintln!(
            "  run {run}: {members} members in {took:.1} s: {rate:.0} members/s ({} flushes, {:.1} s flushing)",
            flushes.flushes,
            flushes.flush_time.as_secs_f64()
        );
        if std::env::var("CHECK").is_ok_and(|c| c == "1") {
            let check = engine.check("air").unwrap();
            assert_eq!(check.problems, Vec::<String>::new());
            assert_eq!(check.members, members as u64);
            eprintln!(
                "  consistent: {} members, {} ledger lines",
                check.members, check.lines
            );
        }
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[rates.len() / 2];
    println!(
        "bulk import ({format:?}): median {median:.0} members/s over {runs} run(s) of {members} ({:.1} s each)",
        members as f64 / median
    );
}
