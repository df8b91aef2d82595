//! Each hook's time inside the engine: the airline programme (sandboxed, or with
//! `NATIVE=1` compiled natively) behind a wrapper that times every call, 2,000
//! members, then three rounds of `N` purchase events (default 20,000) posted on one
//! thread through `Engine::post_event` (sled in a temporary directory). Then the
//! last member snapshot the engine passed to `perks` is replayed 10,000 times per
//! hook in a tight loop, with the merchant's config or with `CONFIG` instead (for
//! example `CONFIG='{}'`, the plugin's built-in defaults), to separate what the
//! engine's surroundings add from what the call itself costs.
//!
//! `plugins/build && cargo run --release -p loyalty-host --example engine_hooks`

// The engine benchmarks' merchant, flight and engine over a fixed programme.
#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{T0, env, flight, settings};
use loyalty_host::app::{App, Options};
use loyalty_host::domain::*;
use loyalty_host::engine::native::Native;
use loyalty_host::engine::{Answer, CallError, Ctx, EnrolRequest, Programme};
use loyalty_host::sandbox::Session;

/// The programme, with the time and number of calls of each hook.
struct Timed {
    inner: Arc<dyn Programme>,
    ns: [AtomicU64; 4],
    n: [AtomicU64; 4],
    last: std::sync::Mutex<Option<(MemberSnapshot, String, Timestamp)>>,
}

impl Timed {
    fn time<T>(&self, i: usize, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.ns[i].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.n[i].fetch_add(1, Ordering::Relaxed);
        r
    }
    fn report(&self) {
        for (i, name) in ["on-enroll", "on-event", "evaluate-tier", "perks"]
            .iter()
            .enumerate()
        {
            let n = self.n[i].swap(0, Ordering::Relaxed);
            let ns = self.ns[i].swap(0, Ordering::Relaxed);
            if n > 0 {
                eprintln!(
                    "  {name}: {n} calls, mean {:.2} µs",
                    ns as f64 / n as f64 / 1e3
                );
            }
        }
    }
}

impl Programme for Timed {
    fn version(&self) -> &str {
        self.inner.version()
    }
    fn info(&self) -> &ProgramInfo {
        self.inner.info()
    }
    fn on_enroll(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Enrolment>, CallError> {
        self.time(0, || self.inner.on_enroll(s, m, ctx))
    }
    fn on_event(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        e: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Outcome>, CallError> {
        self.time(1, || self.inner.on_event(s, m, e, ctx))
    }
    fn evaluate_tier(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<TierDecision>, CallError> {
        self.time(2, || self.inner.evaluate_tier(s, m, ctx))
    }
    fn perks(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Perk>>, CallError> {
        *self.last.lock().unwrap() = Some((m.clone(), ctx.config.to_string(), ctx.now));
        self.time(3, || self.inner.perks(s, m, ctx))
    }
    fn offers(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        p: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Offer>>, CallError> {
        self.inner.offers(s, m, p, ctx)
    }
    fn quote_redemption(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        r: &RedemptionRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<RedemptionAnswer>, CallError> {
        self.inner.quote_redemption(s, m, r, ctx)
    }
}

/// Mean µs per call of `f` over 10,000 calls.
fn per_call(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..10_000 {
        f();
    }
    t.elapsed().as_secs_f64() * 1e2
}

/// An event's three calls, in one session when `shared`, otherwise each in its own.
fn event_calls(p: &dyn Programme, shared: bool, m: &MemberSnapshot, e: &Event, ctx: &Ctx<'_>) {
    let mut s = Session::new();
    black_box(p.on_event(&mut s, m, e, ctx).unwrap().unwrap());
    if !shared {
        s = Session::new();
    }
    black_box(p.evaluate_tier(&mut s, m, ctx).unwrap().unwrap());
    if !shared {
        s = Session::new();
    }
    black_box(p.perks(&mut s, m, ctx).unwrap().unwrap());
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir_in(root.join("target")).unwrap();
    let inner: Arc<dyn Programme> = if std::env::var("NATIVE").is_ok() {
        Arc::new(Native::<airline_miles::AirlineMiles>::new("native"))
    } else {
        // The active version of the registry's sandboxed airline plugin.
        let plugin = std::fs::read(root.join("target/plugins/airline-miles.wasm"))
            .expect("build the plugins first: plugins/build");
        let app = App::open(&dir.path().join("app"), &Options::default()).unwrap();
        app.ensure_merchant(settings(), &plugin, T0).unwrap();
        app.registry.active("air").unwrap()
    };
    let timed = Arc::new(Timed {
        inner,
        ns: Default::default(),
        n: Default::default(),
        last: Default::default(),
    });
    let engine = common::native_engine(dir.path(), 256, 4, timed.clone());
    engine.create_merchant(settings()).unwrap();
    let members = 2000;
    for i in 0..members {
        let req = EnrolRequest {
            member: format!("m{i}"),
            enrolled_at: T0,
            ..Default::default()
        };
        engine.enrol("air", &req).unwrap();
    }
    timed.report();
    let n = env("N", 20_000);
    for round in 0..3 {
        let started = Instant::now();
        for i in 0..n {
            let member = format!("m{}", (i * 7_919) % members);
            let event = flight(format!("r{round}e{i}"), T0 + 30 + i as i64);
            engine.post_event("air", &member, &event).unwrap();
        }
        eprintln!(
            "round {round}: {:.1} µs per event",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        timed.report();
    }
    let (snap, config, now) = timed.last.lock().unwrap().clone().unwrap();
    eprintln!(
        "tight loops: the last snapshot (member {} bytes as JSON), config {} bytes",
        serde_json::to_string(&snap).unwrap().len(),
        config.len()
    );
    let config = std::env::var("CONFIG").unwrap_or(config);
    let ctx = Ctx::new("air", now, &config, "USD");
    let event = flight("x".into(), now);
    let p = &timed.inner;
    for _ in 0..3 {
        eprintln!(
            "perks {:.2} µs; evaluate-tier {:.2} µs; on-event {:.2} µs",
            per_call(|| drop(black_box(
                p.perks(&mut Session::new(), &snap, &ctx).unwrap().unwrap()
            ))),
            per_call(|| drop(black_box(
                p.evaluate_tier(&mut Session::new(), &snap, &ctx)
                    .unwrap()
                    .unwrap()
            ))),
            per_call(|| drop(black_box(
                p.on_event(&mut Session::new(), &snap, &event, &ctx)
                    .unwrap()
                    .unwrap()
            ))),
        );
        eprintln!(
            "an event's three calls, each in its own session {:.2} µs; in one session {:.2} µs",
            per_call(|| event_calls(&**p, false, &snap, &event, &ctx)),
            per_call(|| event_calls(&**p, true, &snap, &event, &ctx)),
        );
    }
}
