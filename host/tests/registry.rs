//! The plugin registry on a real sled directory with real compiled plugins: upload
//! validation, content-addressed versions, activation and rollback, persistence
//! across restarts, and the compiled-artefact cache.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{NOW, ctx, member, plugin_bytes, purchase};
use loyalty_host::registry::{ArtifactCache, Registry, RegistryError, SourceKind, cache_dir};
use loyalty_host::sandbox::{Failure, Limits, LoadError, Sandbox, Session};
use loyalty_host::storage::{SledStorage, Storage};

fn sandbox() -> Sandbox {
    Sandbox::new(Limits {
        instances: 16,
        ..Limits::default()
    })
    .unwrap()
}

fn open(dir: &std::path::Path) -> Registry {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.join("db"), 8 << 20).unwrap());
    Registry::open(sandbox(), storage, &cache_dir(dir)).unwrap()
}

fn refused(registry: &Registry, name: &str) -> LoadError {
    match registry.upload("acme", &plugin_bytes(name), NOW) {
        Err(RegistryError::Invalid(e)) => e,
        other => panic!("{name} should be refused, got {other:?}"),
    }
}

#[test]
fn uploading_the_same_plugin_twice_gives_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let bytes = plugin_bytes("coffee-stars");
    let first = registry.upload("acme", &bytes, NOW).unwrap();
    let second = registry.upload("acme", &bytes, NOW + 60).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.version.len(), 64, "a SHA-256 in hex");
    assert_eq!(first.source, SourceKind::CoreModule);
    assert_eq!(first.program.tiers[0].id, "green");
    assert_eq!(registry.versions("acme").unwrap(), vec![first]);
    assert!(
        registry.active("acme").is_none(),
        "upload does not activate"
    );
}

#[test]
fn every_kind_of_bad_upload_is_refused_with_its_reason_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    assert!(matches!(
        refused(&registry, "hostile-wrong-exports"),
        LoadError::BadExports { .. }
    ));
    assert_eq!(
        refused(&registry, "hostile-unknown-import"),
        LoadError::UnknownImport {
            name: "evil:net/http@1.0.0".into()
        }
    );
    assert!(matches!(
        refused(&registry, "hostile-bad-schema"),
        LoadError::InvalidDescribe { .. }
    ));
    assert!(matches!(
        refused(&registry, "hostile-describe-panics"),
        LoadError::Describe(Failure::Trap {
            message: Some(_),
            ..
        })
    ));
    assert!(matches!(
        registry.upload("acme", b"not wasm at all", NOW),
        Err(RegistryError::Invalid(LoadError::NotWasm))
    ));
    let huge = vec![0u8; Limits::default().plugin_bytes + 1];
    assert!(matches!(
        registry.upload("acme", &huge, NOW),
        Err(RegistryError::Invalid(LoadError::TooLarge { .. }))
    ));
    assert!(registry.versions("acme").unwrap().is_empty());
    assert!(matches!(
        registry.upload("Not A Merchant", &plugin_bytes("coffee-stars"), NOW),
        Err(RegistryError::InvalidMerchant(_))
    ));
}

#[test]
fn activation_swaps_while_calls_in_flight_keep_their_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let coffee = registry
        .upload("acme", &plugin_bytes("coffee-stars"), NOW)
        .unwrap();
    let trap = registry
        .upload("acme", &plugin_bytes("hostile-trap"), NOW + 1)
        .unwrap();
    registry.activate("acme", &coffee.version, NOW + 2).unwrap();

    let in_flight = registry.active("acme").unwrap();
    registry.activate("acme", &trap.version, NOW + 3).unwrap();

    // The call that started before the swap still runs coffee-stars...
    assert_eq!(in_flight.version, coffee.version);
    assert!(
        in_flight
            .plugin
            .on_event(&mut Session::new(), &member(), &purchase(1_000), &ctx("{}"))
            .is_ok()
    );
    // ...and new calls get the new version.
    let now_active = registry.active("acme").unwrap();
    assert_eq!(now_active.version, trap.version);
    assert!(
        now_active
            .plugin
            .on_event(&mut Session::new(), &member(), &purchase(1_000), &ctx("{}"))
            .is_err()
    );
}

#[test]
fn rollback_returns_to_the_previous_version_and_any_version_can_be_reactivated() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let a = registry
        .upload("acme", &plugin_bytes("coffee-stars"), NOW)
        .unwrap();
    let b = registry
        .upload("acme", &plugin_bytes("hostile-trap"), NOW)
        .unwrap();
    assert!(matches!(
        registry.rollback("acme", NOW),
        Err(RegistryError::NothingToRollBack(_))
    ));
    registry.activate("acme", &a.version, NOW + 1).unwrap();
    registry.activate("acme", &b.version, NOW + 2).unwrap();
    assert_eq!(
        registry.rollback("acme", NOW + 3).unwrap().version,
        a.version
    );
    assert_eq!(registry.active("acme").unwrap().version, a.version);
    let history: Vec<_> = registry
        .history("acme")
        .unwrap()
        .into_iter()
        .map(|h| h.version)
        .collect();
    assert_eq!(
        history,
        [a.version.clone(), b.version.clone(), a.version.clone()]
    );
    assert!(matches!(
        registry.activate("acme", "0000", NOW),
        Err(RegistryError::UnknownVersion { .. })
    ));
}

#[test]
fn merchants_do_not_see_each_others_versions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let v = registry
        .upload("acme", &plugin_bytes("coffee-stars"), NOW)
        .unwrap();
    assert!(registry.versions("globex").unwrap().is_empty());
    assert!(matches!(
        registry.activate("globex", &v.version, NOW),
        Err(RegistryError::UnknownVersion { .. })
    ));
}

#[test]
fn a_restart_keeps_every_version_and_the_active_one_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let version = {
        let registry = open(dir.path());
        let v = registry
            .upload("acme", &plugin_bytes("coffee-stars"), NOW)
            .unwrap();
        registry
            .upload("acme", &plugin_bytes("hostile-trap"), NOW)
            .unwrap();
        registry.activate("acme", &v.version, NOW).unwrap();
        v.version
    };
    let registry = open(dir.path());
    assert_eq!(registry.versions("acme").unwrap().len(), 2);
    let active = registry.active("acme").expect("active after restart");
    assert_eq!(active.version, version);
    assert!(
        active
            .plugin
            .on_event(&mut Session::new(), &member(), &purchase(1_000), &ctx("{}"))
            .is_ok()
    );
    assert_eq!(registry.stats().compiled.load(Ordering::Relaxed), 0);
    assert_eq!(registry.stats().from_cache.load(Ordering::Relaxed), 1);
}

#[test]
fn a_corrupt_cached_artefact_is_discarded_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let version = {
        let registry = open(dir.path());
        let v = registry
            .upload("acme", &plugin_bytes("coffee-stars"), NOW)
            .unwrap();
        registry.activate("acme", &v.version, NOW).unwrap();
        let path = registry.cache().dir().join(format!("{}.cwasm", v.version));
        std::fs::write(&path, b"garbage that is not a compiled component").unwrap();
        v.version
    };
    let registry = open(dir.path());
    assert_eq!(registry.active("acme").unwrap().version, version);
    assert_eq!(registry.stats().from_cache.load(Ordering::Relaxed), 0);
    assert_eq!(registry.stats().compiled.load(Ordering::Relaxed), 1);
}

#[test]
fn another_engine_configuration_uses_another_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Sandbox::new(Limits {
        instances: 2,
        ..Limits::default()
    })
    .unwrap();
    let same = Sandbox::new(Limits {
        instances: 2,
        ..Limits::default()
    })
    .unwrap();
    // An engine that compiles differently (no fuel metering, no epoch checks): its
    // artefacts must never be loaded by ours.
    let other = wasmtime::Engine::new(wasmtime::Config::new().wasm_component_model(true)).unwrap();
    let cache_ours = ArtifactCache::new(dir.path(), ours.engine()).unwrap();
    let cache_same = ArtifactCache::new(dir.path(), same.engine()).unwrap();
    let cache_other = ArtifactCache::new(dir.path(), &other).unwrap();
    assert_eq!(cache_ours.dir(), cache_same.dir());
    assert_ne!(cache_ours.dir(), cache_other.dir());

    // Even a foreign artefact copied under our name is refused by the header check.
    let component = wasmtime::component::Component::new(
        &other,
        loyalty_host::sandbox::componentize(&plugin_bytes("coffee-stars")).unwrap(),
    )
    .unwrap();
    cache_other.store("v1", &component);
    std::fs::copy(
        cache_other.dir().join("v1.cwasm"),
        cache_ours.dir().join("v1.cwasm"),
    )
    .unwrap();
    assert!(cache_ours.load("v1").is_none());
    assert!(
        !cache_ours.dir().join("v1.cwasm").exists(),
        "it was discarded"
    );
}
