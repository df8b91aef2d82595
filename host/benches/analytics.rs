//! The analytics pass at scale: `MEMBERS` members (default 1,000,000) bulk-imported
//! with balances and tiers, then every analytic (`analytics::analytics`, one pass
//! over the member records) and the lapsed-members list, timed `ROUNDS` times
//! (default 3; the median is printed).
//!
//! `plugins/build && cargo bench -p loyalty-host --bench analytics`.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use common::{T0, env, settings};
use loyalty_host::analytics::{self, Period};
use loyalty_host::app::{App, Options};
use loyalty_host::bulk::{self, Format};

fn main() {
    let members = env("MEMBERS", 1_000_000);
    let rounds = env("ROUNDS", 3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugin = std::fs::read(root.join("target/plugins/airline-miles.wasm"))
        .expect("build the plugins first: plugins/build");
    let dir = tempfile::tempdir_in(root.join("target")).unwrap();
    let app = App::open(dir.path(), &Options::default()).unwrap();
    app.ensure_merchant(settings(), &plugin, T0).unwrap();
    let tiers = ["member", "gold", "platinum"];
    let mut jsonl = String::with_capacity(members * 100);
    for i in 0..members {
        jsonl.push_str(&format!(
            "{{\"member\":\"m{i:07}\",\"enrolled_at\":{},\"balance\":{},\"tier\":\"{}\"}}\n",
            T0 - (i as i64 % 1000) * 86_400,
            (i * 37) % 50_000,
            tiers[i % 3]
        ));
    }
    let started = Instant::now();
    let report = bulk::run(
        &app.engine,
        "air",
        Format::Jsonl,
        jsonl.as_bytes(),
        T0,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.imported as usize, members, "{report:?}");
    eprintln!(
        "imported {members} members in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut passes = Vec::new();
    let mut lapsed = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let a = analytics::analytics(&app.engine, "air", Period::all(), T0).unwrap();
        passes.push(t.elapsed().as_secs_f64());
        assert_eq!(a.tiers.members as usize, members);
        let t = Instant::now();
        analytics::lapsed(&app.engine, "air", 90, T0, None, 100).unwrap();
        lapsed.push(t.elapsed().as_secs_f64());
    }
    passes.sort_by(f64::total_cmp);
    lapsed.sort_by(f64::total_cmp);
    let (p, l) = (passes[passes.len() / 2], lapsed[lapsed.len() / 2]);
    println!(
        "every analytic, one pass over {members} members: median {p:.2} s ({:.2} µs per member)",
        p * 1e6 / members as f64
    );
    println!("lapsed members list: median {l:.2} s");
}
