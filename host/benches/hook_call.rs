//! A fresh sandboxed instance plus one realistic hook call, against the same plugin
//! code called natively, in the same run; then an event's three hook calls, in one
//! session (as the engine makes them) and in a fresh instance each.
//!
//! `cargo bench -p loyalty-host --bench hook_call` (plugins built first with
//! `plugins/build`). The hook is the airline programme's `on-event` for a purchase of
//! three line items (fare, carrier surcharge, tax) by a Platinum member.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use loyalty_host::domain;
use loyalty_host::sandbox::bindings::loyalty::program::types as wit;
use loyalty_host::sandbox::{Limits, Sandbox, Session, convert};
use loyalty_sdk::Program;

const NOW: i64 = 1_790_000_000;

fn member_json() -> serde_json::Value {
    serde_json::json!({
        "id": "m-1001", "enrolled_at": 1_735_689_600, "tier": "platinum", "balance": 52_000,
        "stats": { "calendar_year": { "qualifying_points": 81_200, "purchases": 14 } }
    })
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bytes = std::fs::read(root.join("target/plugins/airline-miles.wasm"))
        .expect("build the plugins first: plugins/build");
    let sandbox = Sandbox::new(Limits::default()).unwrap();
    let plugin = sandbox.load("airline-miles", &bytes).unwrap();

    let member: domain::MemberSnapshot = serde_json::from_value(member_json()).unwrap();
    let event: domain::Event =
        serde_json::from_value(loyalty_tests::flight("pnr-7KQ2XD", NOW)).unwrap();
    let wit_member = convert::member(&member).unwrap();
    let wit_event = convert::event(&event).unwrap();
    let wit_ctx = wit::Context {
        merchant: "acme".into(),
        now: NOW,
        config: "{}".into(),
        currency: "USD".into(),
    };

    // The same values as the SDK's types, for the native call.
    let sdk_member = sdk_member(&wit_member);
    let sdk_event = sdk_event(&wit_event);
    let sdk_ctx = loyalty_sdk::testing::context(NOW, "{}");

    let native = airline_miles::AirlineMiles::on_event(&sdk_member, &sdk_event, &sdk_ctx).unwrap();
    let sandboxed = plugin
        .on_event(&mut Session::new(), &wit_member, &wit_event, &wit_ctx)
        .unwrap();
    assert_eq!(
        native.points(),
        sandboxed
            .value
            .as_ref()
            .unwrap()
            .credits
            .iter()
            .map(|c| c.points)
            .sum::<i64>(),
        "native and sandboxed agree"
    );

    let mut group = c.benchmark_group("airline on-event");
    group.bench_function("native", |b| {
        b.iter(|| {
            airline_miles::AirlineMiles::on_event(
                black_box(&sdk_member),
                black_box(&sdk_event),
                black_box(&sdk_ctx),
            )
        })
    });
    group.bench_function("sandboxed (fresh instance + call)", |b| {
        b.iter(|| {
            plugin.on_event(
                &mut Session::new(),
                black_box(&wit_member),
                black_box(&wit_event),
                black_box(&wit_ctx),
            )
        })
    });
    // What the engine passes when the merchant keeps the defaults: the programme's
    // whole default config, which the guest parses in its fresh instance.
    let full_ctx = wit::Context {
        config: plugin.info().default_config.to_string(),
        ..wit_ctx.clone()
    };
    let sdk_full_ctx = loyalty_sdk::testing::context(NOW, &full_ctx.config);
    group.bench_function("native, whole default config", |b| {
        b.iter(|| {
            airline_miles::AirlineMiles::on_event(
                black_box(&sdk_member),
                black_box(&sdk_event),
                black_box(&sdk_full_ctx),
            )
        })
    });
    group.bench_function("sandboxed, whole default config", |b| {
        b.iter(|| {
            plugin.on_event(
                &mut Session::new(),
                black_box(&wit_member),
                black_box(&wit_event),
                black_box(&full_ctx),
            )
        })
    });
    // The same call while another thread of this process computes on the other core,
    // as the engine's other pool threads and its committer do: resetting an instance's
    // memory changes page tables, and the kernel must then interrupt every core that
    // runs this process to flush its TLB.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let neighbour = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut v = vec![0u64; 1 << 16];
            let n = v.len();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                v[i % n] = v[(i * 7) % n].wrapping_add(i as u64);
                i = i.wrapping_add(1);
            }
            black_box(v);
        })
    };
    group.bench_function(
        "sandboxed, whole default config, busy neighbour thread",
        |b| {
            b.iter(|| {
                plugin.on_event(
                    &mut Session::new(),
                    black_box(&wit_member),
                    black_box(&wit_event),
                    black_box(&full_ctx),
                )
            })
        },
    );
    group.bench_function("native, whole default config, busy neighbour thread", |b| {
        b.iter(|| {
            airline_miles::AirlineMiles::on_event(
                black_box(&sdk_member),
                black_box(&sdk_event),
                black_box(&sdk_full_ctx),
            )
        })
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    neighbour.join().unwrap();
    group.finish();

    // What the engine calls for one event, with the whole default config: `on-event`,
    // `evaluate-tier`, `perks`. The engine runs them in one session (one fresh
    // instance); the alternative is a fresh instance for each.
    let mut group = c.benchmark_group("airline event's three hooks");
    group.bench_function("native", |b| {
        b.iter(|| {
            use airline_miles::AirlineMiles as A;
            let (m, ctx) = (black_box(&sdk_member), black_box(&sdk_full_ctx));
            black_box(A::on_event(m, black_box(&sdk_event), ctx).unwrap());
            black_box(A::evaluate_tier(m, ctx).unwrap());
            black_box(A::perks(m, ctx).unwrap());
        })
    });
    for (name, shared) in [
        ("sandboxed, one session (the engine)", true),
        ("sandboxed, a fresh instance for each hook", false),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let (m, ctx) = (black_box(&wit_member), black_box(&full_ctx));
                let mut s = Session::new();
                black_box(
                    plugin
                        .on_event(&mut s, m, black_box(&wit_event), ctx)
                        .unwrap(),
                );
                if !shared {
                    s = Session::new();
                }
                black_box(plugin.evaluate_tier(&mut s, m, ctx).unwrap());
                if !shared {
                    s = Session::new();
                }
                black_box(plugin.perks(&mut s, m, ctx).unwrap());
            })
        });
    }
    group.finish();
}

fn sdk_member(m: &wit::Member) -> loyalty_sdk::Member {
    let mut s = loyalty_sdk::testing::member(&m.id);
    s.enrolled_at = m.enrolled_at;
    s.tier = m.tier.clone();
    s.balance = m.balance;
    s.stats.calendar_year.qualifying_points = m.stats.calendar_year.qualifying_points;
    s.stats.calendar_year.purchases = m.stats.calendar_year.purchases;
    s
}

fn sdk_event(e: &wit::Event) -> loyalty_sdk::Event {
    let mut s = loyalty_sdk::testing::purchase(&e.id, 61_240, "USD", e.occurred_at);
    s.items = e
        .items
        .iter()
        .map(|i| loyalty_sdk::LineItem {
            sku: i.sku.clone(),
            category: i.category.clone(),
            quantity: i.quantity,
            amount: i.amount,
        })
        .collect();
    s.channel = loyalty_sdk::Channel::Online;
    s.attributes = e
        .attributes
        .iter()
        .map(|a| loyalty_sdk::Attribute {
            key: a.key.clone(),
            value: a.value.clone(),
        })
        .collect();
    s
}

criterion_group!(benches, bench);
criterion_main!(benches);
