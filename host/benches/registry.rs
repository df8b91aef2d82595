//! Registry figures: upload-to-active time for each example plugin (validate,
//! componentize, compile, describe, persist with flush, activate), and start-up time
//! of a registry holding 100 active plugin versions already in the artefact cache.
//!
//! `cargo bench -p loyalty-host --bench registry` (plugins built first with
//! `plugins/build`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use loyalty_host::registry::{Registry, cache_dir};
use loyalty_host::sandbox::{Limits, Sandbox};
use loyalty_host::storage::{SledStorage, Storage};

const NOW: i64 = 1_790_000_000;

fn plugin(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/plugins/{name}.wasm"));
    std::fs::read(path).expect("build the plugins first: plugins/build")
}

/// The same module with a custom section naming `n`: a distinct version.
fn variant(module: &[u8], n: usize) -> Vec<u8> {
    let name = b"loyalty-bench";
    let payload = n.to_le_bytes();
    let mut out = module.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn open(dir: &Path) -> Registry {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.join("db"), 64 << 20).unwrap());
    let sandbox = Sandbox::new(Limits::default()).unwrap();
    Registry::open(sandbox, storage, &cache_dir(dir)).unwrap()
}

fn upload_to_active(c: &mut Criterion) {
    let mut group = c.benchmark_group("upload to active");
    group.sample_size(20);
    for name in [
        "airline-miles",
        "coffee-stars",
        "ride-hailing",
        "retail-club",
    ] {
        let bytes = plugin(name);
        let dir = tempfile::tempdir().unwrap();
        let registry = open(dir.path());
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    variant(&bytes, n)
                },
                |upload| {
                    let v = registry.upload("acme", &upload, NOW).unwrap();
                    registry.activate("acme", &v.version, NOW).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn startup_with_100_cached_versions(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = open(dir.path());
        let bytes = plugin("airline-miles");
        for n in 0..100 {
            let merchant = format!("merchant-{n:03}");
            let v = registry
                .upload(&merchant, &variant(&bytes, n), NOW)
                .unwrap();
            registry.activate(&merchant, &v.version, NOW).unwrap();
        }
    }
    let mut group = c.benchmark_group("start-up");
    group.sample_size(10);
    group.bench_function("100 active versions, cached", |b| {
        b.iter(|| {
            let registry = open(dir.path());
            assert!(registry.active("merchant-099").is_some());
            assert_eq!(
                registry
                    .stats()
                    .compiled
                    .load(std::sync::atomic::Ordering::Relaxed),
                0,
                "nothing is recompiled"
            );
        })
    });
    group.finish();
}

criterion_group!(benches, upload_to_active, startup_with_100_cached_versions);
criterion_main!(benches);
