//! The sandbox against real compiled plugins: every hostile plugin fails with its
//! typed error, and well-behaved plugins keep answering while they do.
//!
//! Needs the plugins built: `plugins/build` (the README's test command does it).

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{ctx, member, plugin_bytes, purchase};
use loyalty_host::domain;
use loyalty_host::sandbox::{
    Called, CompiledPlugin, Failure, HookError, Limits, LoadError, Sandbox, Session, componentize,
};

fn sandbox() -> Sandbox {
    Sandbox::new(Limits {
        instances: 32,
        ..Limits::default()
    })
    .expect("sandbox")
}

fn load(sandbox: &Sandbox, name: &str) -> CompiledPlugin {
    sandbox
        .load(name, &plugin_bytes(name))
        .unwrap_or_else(|e| panic!("{name} should load: {e}"))
}

/// `on-event` for a 500.00 purchase by the test member, with the default config.
fn buy(
    plugin: &CompiledPlugin,
    session: &mut Session,
) -> Result<Called<Result<domain::Outcome, domain::PluginError>>, HookError> {
    plugin.on_event(session, &member(), &purchase(50_000), &ctx("{}"))
}

fn on_event_failure(sandbox: &Sandbox, name: &str) -> Failure {
    let plugin = load(sandbox, name);
    match buy(&plugin, &mut Session::new()) {
        Ok(called) => panic!("{name} should fail, answered {:?}", called.value),
        Err(e) => {
            assert_eq!(e.plugin, name);
            assert_eq!(e.hook.name(), "on-event");
            e.failure
        }
    }
}

#[test]
fn every_example_programme_loads_and_describes_itself() {
    let sandbox = sandbox();
    for name in [
        "airline-miles",
        "coffee-stars",
        "ride-hailing",
        "retail-club",
    ] {
        let plugin = load(&sandbox, name);
        let info = plugin.info();
        assert!(info.tiers.len() >= 3, "{name} lists its tiers: {info:?}");
        assert!(info.config_schema.is_object(), "{name} has a config schema");
    }
}

#[test]
fn a_core_module_and_its_component_load_alike() {
    let sandbox = sandbox();
    let core = plugin_bytes("airline-miles");
    let component = componentize(&core).expect("componentize");
    let a = sandbox.load("core", &core).expect("core module loads");
    let b = sandbox
        .load("component", &component)
        .expect("component loads");
    assert_eq!(a.info(), b.info());
}

#[test]
fn the_same_input_gives_the_same_output_every_time() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "airline-miles");
    let first = buy(&plugin, &mut Session::new()).unwrap();
    for _ in 0..20 {
        let again = buy(&plugin, &mut Session::new()).unwrap();
        assert_eq!(again.value, first.value);
        assert_eq!(
            again.report.fuel_used, first.report.fuel_used,
            "fuel is deterministic"
        );
    }
    assert!(first.report.fuel_used > 0);
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    assert_eq!(
        on_event_failure(&sandbox(), "hostile-infinite-loop"),
        Failure::OutOfFuel {
            budget: Limits::default().fuel
        }
    );
}

#[test]
fn an_infinite_loop_with_unlimited_fuel_hits_the_deadline() {
    let deadline = Duration::from_millis(50);
    let sandbox = Sandbox::new(Limits {
        fuel: u64::MAX,
        deadline,
        instances: 4,
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(
        on_event_failure(&sandbox, "hostile-infinite-loop"),
        Failure::Deadline { limit: deadline }
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    assert_eq!(
        on_event_failure(&sandbox(), "hostile-memory-bomb"),
        Failure::MemoryLimit {
            limit: Limits::default().memory_bytes
        }
    );
}

#[test]
fn deep_recursion_overflows_the_stack_cap() {
    assert_eq!(
        on_event_failure(&sandbox(), "hostile-deep-recursion"),
        Failure::StackOverflow {
            limit: Limits::default().stack_bytes
        }
    );
}

#[test]
fn a_panic_is_a_trap_that_carries_the_guest_message() {
    match on_event_failure(&sandbox(), "hostile-trap") {
        Failure::Trap {
            message: Some(message),
            ..
        } => assert!(
            message.contains("member m-1 made the plugin panic on purpose"),
            "{message}"
        ),
        other => panic!("expected a trap with a message, got {other:?}"),
    }
}

#[test]
fn a_division_by_zero_is_a_trap() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "hostile-trap");
    let err = plugin
        .perks(&mut Session::new(), &member(), &ctx("{}"))
        .unwrap_err();
    assert_eq!(err.hook.name(), "perks");
    assert!(matches!(err.failure, Failure::Trap { .. }), "{err}");
}

#[test]
fn an_oversized_output_is_refused() {
    let sandbox = sandbox();
    let failure = on_event_failure(&sandbox, "hostile-oversized-output");
    assert!(
        matches!(failure, Failure::OutputTooLarge { size, limit } if size > limit),
        "{failure:?}"
    );
    let plugin = load(&sandbox, "hostile-oversized-output");
    let err = plugin
        .perks(&mut Session::new(), &member(), &ctx("{}"))
        .unwrap_err();
    assert!(
        matches!(err.failure, Failure::OutputTooLarge { .. }),
        "{err}"
    );
}

/// An answer whose 30 strings all alias one 4 MiB buffer: copied out string by
/// string it is 120 MiB, many times the output cap and the plugin's memory cap. The
/// host stops copying at the store's hostcall fuel instead (before, it copied all
/// 120 MiB and only then refused it: `size` was 125,829,385).
#[test]
fn an_aliased_output_is_refused_before_it_is_copied_whole() {
    let sandbox = sandbox();
    let failure = on_event_failure(&sandbox, "hostile-aliased-output");
    let limits = sandbox.limits();
    assert!(
        matches!(failure, Failure::OutputTooLarge { size, limit }
            if limit == limits.output_bytes && size > limit && size <= 4 * limits.output_bytes),
        "{failure:?}"
    );
}

#[test]
fn outputs_that_break_the_rules_are_invalid_and_name_the_field() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "hostile-invalid-output");
    let m = member();
    let c = ctx("{}");
    let reason = |f: Failure| match f {
        Failure::InvalidOutput { reason } => reason,
        other => panic!("expected invalid output, got {other:?}"),
    };
    let negative = reason(
        plugin
            .on_event(&mut Session::new(), &m, &purchase(100), &c)
            .unwrap_err()
            .failure,
    );
    assert!(negative.starts_with("credits[0].points"), "{negative}");
    let tier = reason(
        plugin
            .evaluate_tier(&mut Session::new(), &m, &c)
            .unwrap_err()
            .failure,
    );
    assert!(tier.starts_with("tier "), "{tier}");
    let perk = reason(
        plugin
            .perks(&mut Session::new(), &m, &c)
            .unwrap_err()
            .failure,
    );
    assert!(perk.starts_with("perks[0].id"), "{perk}");
    let expiry = reason(
        plugin
            .on_enroll(&mut Session::new(), &m, &c)
            .unwrap_err()
            .failure,
    );
    assert!(expiry.starts_with("credits[0].expires-at"), "{expiry}");
}

#[test]
fn wrong_and_missing_exports_are_named() {
    let err = sandbox()
        .load("wrong", &plugin_bytes("hostile-wrong-exports"))
        .err()
        .expect("must be refused");
    let LoadError::BadExports { missing, mistyped } = err else {
        panic!("expected bad exports, got {err:?}");
    };
    assert_eq!(
        missing,
        [
            "on-enroll",
            "on-event",
            "evaluate-tier",
            "perks",
            "offers",
            "quote-redemption"
        ]
    );
    assert_eq!(mistyped, ["describe"]);
}

#[test]
fn an_unknown_import_is_named() {
    let err = sandbox()
        .load("evil", &plugin_bytes("hostile-unknown-import"))
        .err()
        .expect("must be refused");
    assert_eq!(
        err,
        LoadError::UnknownImport {
            name: "evil:net/http@1.0.0".into()
        }
    );
}

#[test]
fn bytes_that_are_not_wasm_are_refused_as_such() {
    let sandbox = sandbox();
    assert_eq!(
        sandbox.load("text", b"hello, world").err(),
        Some(LoadError::NotWasm)
    );
    let mut truncated = plugin_bytes("airline-miles");
    truncated.truncate(truncated.len() / 2);
    let err = sandbox.load("truncated", &truncated).err().unwrap();
    assert!(
        matches!(
            err,
            LoadError::Componentize { .. } | LoadError::Compile { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_plugin_over_the_size_limit_is_refused_before_parsing() {
    let sandbox = Sandbox::new(Limits {
        plugin_bytes: 1_000,
        instances: 2,
        ..Limits::default()
    })
    .unwrap();
    let bytes = plugin_bytes("airline-miles");
    assert_eq!(
        sandbox.load("big", &bytes).err(),
        Some(LoadError::TooLarge {
            size: bytes.len(),
            limit: 1_000
        })
    );
}

#[test]
fn a_plugin_error_is_an_answer_not_a_failure() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "airline-miles");
    let called = plugin
        .on_event(
            &mut Session::new(),
            &member(),
            &purchase(100),
            &ctx(r#"{"miles_per_usd": "lots"}"#),
        )
        .expect("the call itself succeeds");
    let err = called.value.expect_err("the plugin refuses the config");
    assert_eq!(err.code, "invalid-config");
}

#[test]
fn hostile_plugins_do_not_disturb_a_well_behaved_one() {
    let sandbox = sandbox();
    let good = Arc::new(load(&sandbox, "airline-miles"));
    let expected = buy(&good, &mut Session::new()).unwrap().value;
    let hostile: Vec<_> = [
        "hostile-infinite-loop",
        "hostile-memory-bomb",
        "hostile-deep-recursion",
        "hostile-trap",
        "hostile-oversized-output",
    ]
    .into_iter()
    .map(|name| load(&sandbox, name))
    .collect();

    let attackers: Vec<_> = hostile
        .into_iter()
        .map(|plugin| {
            thread::spawn(move || {
                for _ in 0..3 {
                    assert!(
                        plugin
                            .on_event(&mut Session::new(), &member(), &purchase(100), &ctx("{}"))
                            .is_err()
                    );
                }
            })
        })
        .collect();
    let mut answered = 0;
    while attackers.iter().any(|a| !a.is_finished()) || answered < 50 {
        let called = buy(&good, &mut Session::new()).expect("the good plugin keeps answering");
        assert_eq!(called.value, expected);
        answered += 1;
    }
    for a in attackers {
        a.join().expect("each hostile call failed cleanly");
    }
}

/// Regression: wit-component 0.254 panicked (slice out of range) componentizing a
/// truncated core module; a hostile upload must get an error, not crash the host.
#[test]
fn truncated_or_corrupted_modules_are_errors_not_panics() {
    let sandbox = sandbox();
    let bytes = plugin_bytes("airline-miles");
    for cut in [
        8,
        9,
        64,
        1_000,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        assert!(sandbox.load("cut", &bytes[..cut]).is_err(), "cut at {cut}");
    }
    // Flip bytes at spread-out positions (deterministic): load answers, never panics.
    let mut answered = 0;
    for i in 0..150 {
        let mut corrupt = bytes.clone();
        let at = 8 + (i * 7_919) % (corrupt.len() - 8);
        corrupt[at] ^= 0x5a;
        let _ = sandbox.load("flipped", &corrupt);
        answered += 1;
    }
    assert_eq!(answered, 150);
}

/// What `hostile-static-state` answered: its static call counter, as each hook reports it.
fn calls_seen(plugin: &CompiledPlugin, session: &mut Session) -> [String; 3] {
    let event = plugin
        .on_event(session, &member(), &purchase(100), &ctx("{}"))
        .unwrap();
    let tier = plugin
        .evaluate_tier(session, &member(), &ctx("{}"))
        .unwrap();
    let perks = plugin.perks(session, &member(), &ctx("{}")).unwrap();
    // Each call reports its own log line only.
    for (report, n) in [(&event.report, 1), (&tier.report, 2), (&perks.report, 3)] {
        assert_eq!(report.logs.len(), 1, "{report:?}");
        assert_eq!(report.logs[0].message, format!("call {n}"), "{report:?}");
    }
    [
        event.value.unwrap().annotations["call"].clone(),
        tier.value.unwrap().reason,
        perks.value.unwrap()[0].grant.clone(),
    ]
}

#[test]
fn an_operations_calls_share_one_instance_and_nothing_outlives_its_session() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "hostile-static-state");
    let mut session = Session::new();
    // One session: one instance, so the static counts on from call to call.
    assert_eq!(calls_seen(&plugin, &mut session), ["1", "call 2", "call-3"]);
    // A new session starts from a fresh instance: nothing of the last one is left.
    assert_eq!(
        calls_seen(&plugin, &mut Session::new()),
        ["1", "call 2", "call-3"]
    );
    // Calls in sessions of their own each see a fresh instance.
    for _ in 0..3 {
        let tier = plugin
            .evaluate_tier(&mut Session::new(), &member(), &ctx("{}"))
            .unwrap();
        assert_eq!(tier.value.unwrap().reason, "call 1");
    }
    // The first session kept its instance.
    let tier = plugin
        .evaluate_tier(&mut session, &member(), &ctx("{}"))
        .unwrap();
    assert_eq!(tier.value.unwrap().reason, "call 4");
}

#[test]
fn a_session_on_another_plugin_starts_a_fresh_instance() {
    let sandbox = sandbox();
    let one = load(&sandbox, "hostile-static-state");
    let other = load(&sandbox, "hostile-static-state");
    let mut session = Session::new();
    let reason = |p: &CompiledPlugin, s: &mut Session| {
        p.evaluate_tier(s, &member(), &ctx("{}"))
            .unwrap()
            .value
            .unwrap()
            .reason
    };
    assert_eq!(reason(&one, &mut session), "call 1");
    assert_eq!(reason(&one, &mut session), "call 2");
    // The same code loaded again is another plugin: its own instance.
    assert_eq!(reason(&other, &mut session), "call 1");
    // A clone is the same plugin.
    assert_eq!(reason(&other.clone(), &mut session), "call 2");
}

#[test]
fn every_call_in_a_session_gets_the_whole_fuel_budget() {
    let sandbox = sandbox();
    let plugin = load(&sandbox, "airline-miles");
    let used = buy(&plugin, &mut Session::new()).unwrap().report.fuel_used;
    // A budget that `describe` fits in (at load), and more calls in one session than
    // it could pay for together: they all succeed only if each gets it afresh.
    let mut budget = used * 3 / 2;
    let plugin = loop {
        let tight = Sandbox::new(Limits {
            fuel: budget,
            ..Limits::default()
        })
        .unwrap();
        match tight.load("airline-miles", &plugin_bytes("airline-miles")) {
            Ok(p) => break p,
            Err(LoadError::Describe(Failure::OutOfFuel { .. })) => budget *= 2,
            Err(e) => panic!("airline-miles should load: {e}"),
        }
    };
    let mut session = Session::new();
    for _ in 0..budget / used + 2 {
        let called = buy(&plugin, &mut session).unwrap();
        assert!(called.value.is_ok());
        // Never more than a fresh instance (which also pays for first-call set-up).
        assert!(
            called.report.fuel_used <= used,
            "{} > {used}",
            called.report.fuel_used
        );
    }
}

#[test]
fn a_failed_call_leaves_the_session_to_start_afresh() {
    let sandbox = sandbox();
    for (name, failure) in [
        ("hostile-memory-bomb", "memory_limit"),
        ("hostile-trap", "trap"),
    ] {
        let plugin = load(&sandbox, name);
        let mut session = Session::new();
        let err = plugin
            .on_event(&mut session, &member(), &purchase(100), &ctx("{}"))
            .unwrap_err();
        assert_eq!(err.failure.kind(), failure, "{name}: {err}");
        // The failed instance is gone; the next call gets a working one (a trapped
        // instance could not be entered again), with all of its memory.
        let tier = plugin
            .evaluate_tier(&mut session, &member(), &ctx("{}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tier.value.unwrap().tier, "member", "{name}");
    }
}
