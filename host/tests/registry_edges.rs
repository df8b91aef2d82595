//! The registry and the output rules at their edges: activations racing each other,
//! and a natively compiled programme held to the same output rules as the sandbox.
//! Each of these failed before the fix it came with (session 22's review).

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{NOW, merchant_settings, plugin_bytes};
use loyalty_host::domain::Event;
use loyalty_host::engine::native::Native;
use loyalty_host::engine::{Engine, EnrolRequest, FixedProgrammes};
use loyalty_host::pool::PluginPool;
use loyalty_host::registry::{Registry, cache_dir};
use loyalty_host::sandbox::{Limits, Sandbox};
use loyalty_host::storage::{SledStorage, Storage};

fn open_registry(dir: &Path) -> Registry {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.join("db"), 8 << 20).unwrap());
    let sandbox = Sandbox::new(Limits {
        instances: 16,
        ..Limits::default()
    })
    .unwrap();
    Registry::open(sandbox, storage, &cache_dir(dir)).unwrap()
}

/// Two activations at the same time: each reads the activation history, appends its
/// version and writes the record back, with no lock, so one entry is lost, and the
/// in-memory active version can differ from the one a restart will load.
#[test]
fn concurrent_activations_keep_every_entry_and_what_a_restart_loads() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(open_registry(dir.path()));
    let a = registry
        .upload("acme", &plugin_bytes("coffee-stars"), NOW)
        .unwrap()
        .version;
    let b = registry
        .upload("acme", &plugin_bytes("airline-miles"), NOW)
        .unwrap()
        .version;
    let rounds = 20;
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|v| {
                let (registry, barrier) = (registry.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    registry.activate("acme", &v, NOW + round).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    let history = registry.history("acme").unwrap();
    let live = registry.active("acme").unwrap().version.clone();
    let persisted = history.last().unwrap().version.clone();
    drop(registry);
    let reopened = open_registry(dir.path());
    let after_restart = reopened.active("acme").unwrap().version.clone();
    assert_eq!(
        (history.len(), live.clone()),
        (2 * rounds as usize, after_restart.clone()),
        "every successful activation is in the history, and the version running now \
         is the one a restart runs (persisted last: {persisted})"
    );
}

/// A programme that breaks the contract's rules: a tier it never declared, a credit
/// that expires before it is earned.
struct Rulebreaker;

impl loyalty_sdk::Program for Rulebreaker {
    fn describe() -> loyalty_sdk::ProgramInfo {
        loyalty_sdk::ProgramInfo::new("rulebreaker", "1.0.0").tier("member", "Member")
    }

    fn on_event(
        _member: &loyalty_sdk::Member,
        _event: &loyalty_sdk::Event,
        ctx: &loyalty_sdk::Context,
    ) -> Result<loyalty_sdk::Outcome, loyalty_sdk::PluginError> {
        Ok(loyalty_sdk::Outcome::new()
            .credit(loyalty_sdk::Credit::new(100, "already expired").expires_at(ctx.now - 86_400)))
    }

    fn evaluate_tier(
        _member: &loyalty_sdk::Member,
        _ctx: &loyalty_sdk::Context,
    ) -> Result<loyalty_sdk::TierDecision, loyalty_sdk::PluginError> {
        Ok(loyalty_sdk::TierDecision::new(
            "diamond",
            "not a tier of this programme",
        ))
    }
}

/// The native path (documented for plugin developers' tests through the real engine,
/// and simulations) runs the same rules without the output checks the sandbox makes:
/// a rule the host refuses in production passes natively.
#[test]
fn native_programmes_are_held_to_the_sandboxs_output_rules() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 8 << 20).unwrap());
    let programmes = Arc::new(FixedProgrammes::new());
    programmes.set("acme", Arc::new(Native::<Rulebreaker>::new("native")));
    let pool = Arc::new(PluginPool::new(2, 2, Duration::from_secs(30)));
    let engine = Arc::new(Engine::new(storage, programmes, pool));
    engine
        .durable(engine.create_merchant(merchant_settings("acme")).unwrap())
        .unwrap();
    engine
        .durable(
            engine
                .enrol(
                    "acme",
                    &EnrolRequest {
                        member: "m-1".into(),
                        enrolled_at: NOW,
                        ..Default::default()
                    },
                )
                .unwrap(),
        )
        .unwrap();
    let event: Event = serde_json::from_value(serde_json::json!({
        "id": "e-1", "occurred_at": NOW + 60, "kind": "purchase",
        "amount": { "minor": 1000, "currency": "USD" }
    }))
    .unwrap();
    let result = engine.post_event("acme", "m-1", &event).map(|d| d.value);
    let error = result.as_ref().map(|_| ()).unwrap_err().to_string();
    assert!(
        error.contains("invalid output") && error.contains("expires-at"),
        "the sandbox refuses this outcome (an expiry before now, an undeclared tier) \
         as invalid output; natively: {result:#?}"
    );
    let member = engine.member("acme", "m-1", NOW + 60).unwrap();
    assert_eq!(
        (member.balance.available, member.tier.id.as_str()),
        (0, "member"),
        "the refused outcome changed nothing"
    );
}

/// A config put while a version is being activated: the activation has checked the
/// old config against its version, the put checks the new config against the version
/// still active, and each change is valid alone; together the merchant ran a version
/// its config does not fit (session 22's note). The put now waits for the activation
/// and is checked against the version it activated.
#[test]
fn a_config_put_during_an_activation_is_checked_against_the_version_activated() {
    use loyalty_host::app::{App, Options};
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(dir.path(), &Options::default()).unwrap();
    let engine = app.engine.clone();
    engine
        .durable(engine.create_merchant(merchant_settings("acme")).unwrap())
        .unwrap();
    let coffee = app
        .registry
        .upload("acme", &plugin_bytes("coffee-stars"), NOW)
        .unwrap()
        .version;
    let airline = app
        .registry
        .upload("acme", &plugin_bytes("airline-miles"), NOW)
        .unwrap()
        .version;
    app.registry.activate("acme", &coffee, NOW).unwrap();
    // Valid for the coffee shop's schema only.
    let coffee_config = serde_json::json!({ "stars_per_unit": 2 });

    let checked = Arc::new(Barrier::new(2));
    let activation = {
        let (registry, engine, checked) = (app.registry.clone(), engine.clone(), checked.clone());
        let airline = airline.clone();
        std::thread::spawn(move || {
            registry
                .activate_with("acme", &airline, NOW + 1, |info| {
                    // The activation's own check: the config it finds (none) fits.
                    let settings = engine.merchant("acme").unwrap();
                    if let Some(c) = &settings.config {
                        loyalty_host::engine::check_config(&info.program.config_schema, c).unwrap();
                    }
                    checked.wait();
                    std::thread::sleep(Duration::from_millis(300));
                    Ok::<_, loyalty_host::registry::RegistryError>(())
                })
                .unwrap()
        })
    };
    checked.wait();
    // What `PUT .../config` does.
    let put = app.registry.holding_activations(|| {
        engine.update_merchant("acme", |s| s.config = Some(coffee_config.clone()))
    });
    activation.join().unwrap();
    assert_eq!(app.registry.active("acme").unwrap().version, airline);
    assert!(
        put.is_err(),
        "the coffee shop's config was accepted beside the airline's programme"
    );
    assert_eq!(engine.merchant("acme").unwrap().config, None);
}

/// Two uploads of the same bytes at once: each found no version, each compiled and
/// stored it, and both answered "created" (201), the second overwriting the first's
/// upload time (session 22's note). The second now waits for the first and finds it.
#[test]
fn concurrent_uploads_of_the_same_bytes_store_one_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(open_registry(dir.path()));
    let bytes = Arc::new(plugin_bytes("coffee-stars"));
    let barrier = Arc::new(Barrier::new(2));
    let uploads: Vec<_> = (0..2)
        .map(|i| {
            let (registry, bytes, barrier) = (registry.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                registry.upload_new("acme", &bytes, NOW + i).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = uploads.into_iter().map(|h| h.join().unwrap()).collect();
    let created: Vec<bool> = results.iter().map(|(_, new)| *new).collect();
    assert_eq!(created.iter().filter(|n| **n).count(), 1, "{created:?}");
    assert_eq!(results[0].0, results[1].0, "both answer the one version");
    assert_eq!(
        registry
            .stats()
            .compiled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(registry.versions("acme").unwrap().len(), 1);
}
