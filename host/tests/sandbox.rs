//! The sandbox against real compiled plugins: every hostile plugin fails with its
//! typed error, and well-behaved plugins keep answering while they do.
//!
//! Needs the plugins built: `plugins/build` (the README's test command does it).

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{ctx, member, plugin_bytes, purchase};
use loyalty_host::sandbox::{CompiledPlugin, Failure, Limits, LoadError, Sandbox, componentize};

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

fn on_event_failure(sandbox: &Sandbox, name: &str) -> Failure {
    let plugin = load(sandbox, name);
    match plugin.on_event(&member(), &purchase(50_000), &ctx("{}")) {
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
    let first = plugin
        .on_event(&member(), &purchase(50_000), &ctx("{}"))
        .unwrap();
    for _ in 0..20 {
        let again = plugin
            .on_event(&member(), &purchase(50_000), &ctx("{}"))
            .unwrap();
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
    let err = plugin.perks(&member(), &ctx("{}")).unwrap_err();
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
    let err = plugin.perks(&member(), &ctx("{}")).unwrap_err();
    assert!(
        matches!(err.failure, Failure::OutputTooLarge { .. }),
        "{err}"
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
    let negative = reason(plugin.on_event(&m, &purchase(100), &c).unwrap_err().failure);
    assert!(negative.starts_with("credits[0].points"), "{negative}");
    let tier = reason(plugin.evaluate_tier(&m, &c).unwrap_err().failure);
    assert!(tier.starts_with("tier "), "{tier}");
    let perk = reason(plugin.perks(&m, &c).unwrap_err().failure);
    assert!(perk.starts_with("perks[0].id"), "{perk}");
    let expiry = reason(plugin.on_enroll(&m, &c).unwrap_err().failure);
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
    let expected = good
        .on_event(&member(), &purchase(50_000), &ctx("{}"))
        .unwrap()
        .value;
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
                            .on_event(&member(), &purchase(100), &ctx("{}"))
                            .is_err()
                    );
                }
            })
        })
        .collect();
    let mut answered = 0;
    while attackers.iter().any(|a| !a.is_finished()) || answered < 50 {
        let called = good
            .on_event(&member(), &purchase(50_000), &ctx("{}"))
            .expect("the good plugin keeps answering");
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
