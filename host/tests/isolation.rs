//! Hostile plugins of several merchants run concurrently through the registry and the
//! pool; a well-behaved merchant keeps getting correct answers the whole time, and
//! every hostile call fails with its typed error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NOW, ctx, member, plugin_bytes, purchase};
use loyalty_host::pool::PluginPool;
use loyalty_host::registry::{Registry, cache_dir};
use loyalty_host::sandbox::{Failure, Limits, Sandbox, Session};
use loyalty_host::storage::{SledStorage, Storage};

const HOSTILE: &[(&str, &str)] = &[
    ("loop-co", "hostile-infinite-loop"),
    ("bomb-co", "hostile-memory-bomb"),
    ("deep-co", "hostile-deep-recursion"),
    ("trap-co", "hostile-trap"),
    ("huge-co", "hostile-oversized-output"),
    ("liar-co", "hostile-invalid-output"),
];

fn expected(name: &str, f: &Failure) -> bool {
    match name {
        "hostile-infinite-loop" => matches!(f, Failure::OutOfFuel { .. }),
        "hostile-memory-bomb" => matches!(f, Failure::MemoryLimit { .. }),
        "hostile-deep-recursion" => matches!(f, Failure::StackOverflow { .. }),
        "hostile-trap" => matches!(f, Failure::Trap { .. }),
        "hostile-oversized-output" => matches!(f, Failure::OutputTooLarge { .. }),
        "hostile-invalid-output" => matches!(f, Failure::InvalidOutput { .. }),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_merchants_cannot_disturb_a_well_behaved_one() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&dir.path().join("db"), 8 << 20).unwrap());
    let sandbox = Sandbox::new(Limits {
        instances: 32,
        ..Limits::default()
    })
    .unwrap();
    let registry = Arc::new(Registry::open(sandbox, storage, &cache_dir(dir.path())).unwrap());
    for (merchant, plugin) in HOSTILE.iter().chain(&[("good-co", "coffee-stars")]) {
        let v = registry
            .upload(merchant, &plugin_bytes(plugin), NOW)
            .unwrap();
        registry.activate(merchant, &v.version, NOW).unwrap();
    }
    let pool = Arc::new(PluginPool::new(4, 2, Duration::from_secs(60)));

    let good = registry.active("good-co").unwrap();
    let reference = good
        .plugin
        .on_event(&mut Session::new(), &member(), &purchase(1_000), &ctx("{}"))
        .unwrap()
        .value;

    let mut attacks = Vec::new();
    for round in 0..3 {
        for (merchant, name) in HOSTILE {
            let (registry, pool) = (registry.clone(), pool.clone());
            attacks.push(tokio::spawn(async move {
                let active = registry.active(merchant).unwrap();
                let result = pool
                    .run(merchant, move || {
                        active.plugin.on_event(
                            &mut Session::new(),
                            &member(),
                            &purchase(1_000 + round),
                            &ctx("{}"),
                        )
                    })
                    .await
                    .expect("the pool ran it");
                let err = result.expect_err("a hostile plugin fails");
                assert!(expected(name, &err.failure), "{name}: {err}");
                assert!(err.plugin.contains(merchant), "names the merchant: {err}");
            }));
        }
    }

    let mut answered = 0;
    while attacks.iter().any(|a| !a.is_finished()) || answered < 20 {
        let active = registry.active("good-co").unwrap();
        let called = pool
            .run("good-co", move || {
                active
                    .plugin
                    .on_event(&mut Session::new(), &member(), &purchase(1_000), &ctx("{}"))
            })
            .await
            .expect("good-co is never refused")
            .expect("good-co's plugin answers");
        assert_eq!(called.value, reference);
        answered += 1;
    }
    for a in attacks {
        a.await.unwrap();
    }
}
