//! How fast sled can take an event's writes durably, written two ways.
//!
//! ```text
//! cargo run --release -p loyalty-host --example storage_ceiling [operations]
//! ```
//!
//! Each operation is what a purchase event writes: a member record rewritten (one of
//! 50,000, 366 bytes) and a new event record (329 bytes), in one atomic batch, made
//! durable before it counts. Eight writer threads keep 256 operations in flight.
//!
//! - "own batches": every operation applies its own atomic batch, then its thread
//!   flushes (concurrent flushes share work inside sled). This was the engine's write
//!   path before the group commit had a single writer.
//! - "group commit": operations are queued to [`GroupCommit`], whose one committer
//!   applies everything queued as one atomic batch per round and flushes once.

use std::sync::Arc;
use std::time::Instant;

use loyalty_host::engine::GroupCommit;
use loyalty_host::storage::{Batch, Key, SledStorage, Space, Storage};

const MEMBERS: u64 = 50_000;
const THREADS: u64 = 8;
const WINDOW: u64 = 32;

fn batch(op: u64, run: &str) -> Batch {
    let member = (op * 7_919) % MEMBERS;
    let mut b = Batch::new();
    b.put(
        Space::Members,
        Key::merchant("air", &[format!("m{member}").as_bytes()]),
        vec![7; 366],
    );
    b.put(
        Space::Idempotency,
        Key::merchant("air", &[b"event", format!("{run}-{op}").as_bytes()]),
        vec![9; 329],
    );
    b
}

fn open() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir_in(".").expect("a scratch directory here");
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(dir.path(), 256 << 20).expect("open sled"));
    for m in 0..MEMBERS {
        let mut b = Batch::new();
        b.put(
            Space::Members,
            Key::merchant("air", &[format!("m{m}").as_bytes()]),
            vec![7; 366],
        );
        storage.apply(b).expect("preload");
    }
    storage.flush().expect("flush");
    (dir, storage)
}

/// Run `per_window` on THREADS threads, each over its share of `ops`; operations/s.
fn drive(ops: u64, per_window: impl Fn(u64, u64) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let per_window = &per_window;
            s.spawn(move || {
                let mut op = t * WINDOW;
                while op < ops {
                    per_window(op, (op + WINDOW).min(ops));
                    op += THREADS * WINDOW;
                }
            });
        }
    });
    ops as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let ops: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a number of operations"))
        .unwrap_or(200_000);
    let (_dir, storage) = open();
    let own = drive(ops, |from, to| {
        for op in from..to {
            storage.apply(batch(op, "own")).expect("apply");
        }
        storage.flush().expect("flush");
    });
    let (_dir2, storage2) = open();
    let commit = GroupCommit::start(storage2);
    let group = drive(ops, |from, to| {
        let mut last = None;
        for op in from..to {
            last = Some(commit.submit(batch(op, "group")).expect("submit"));
        }
        if let Some(t) = last {
            commit.wait(t).expect("durable");
        }
    });
    println!("| write path ({ops} operations, 2 writes each, durable) | operations/s |");
    println!("| --- | --- |");
    println!("| own batches, shared flushes | {own:.0} |");
    println!(
        "| group commit, one batch per round ({:.0} operations per round) | {group:.0} |",
        ops as f64 / commit.rounds().max(1) as f64
    );
    println!("\ngroup commit / own batches = {:.1}", group / own);
}
