//! Compiled artefacts on disk, keyed by engine configuration and version.
#![allow(unsafe_code)] // Loading a serialized component is `unsafe` in wasmtime; see `load`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime version the host is built with (part of the cache key).
const WASMTIME_VERSION: &str = "48.0.8";

/// A directory of compiled components for one engine configuration.
///
/// The directory name is a fingerprint of the wasmtime version and the engine's
/// compatibility hash (target, compiler settings, tunables), so artefacts compiled by
/// another version or configuration are never even looked at.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine: Engine,
}

impl ArtifactCache {
    /// The cache for `engine` under `root`.
    pub fn new(root: &Path, engine: &Engine) -> std::io::Result<ArtifactCache> {
        let mut h = DefaultHasher::new();
        WASMTIME_VERSION.hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        let dir = root.join(format!("engine-{:016x}", h.finish()));
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache {
            dir,
            engine: engine.clone(),
        })
    }

    /// This engine configuration's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, version: &str) -> PathBuf {
        self.dir.join(format!("{version}.cwasm"))
    }

    /// Write a compiled component (best effort: a failed write only costs a
    /// recompile later, so it is logged, not returned).
    pub fn store(&self, version: &str, component: &Component) {
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                // Write then rename, so a crash never leaves a torn artefact under the name.
                let tmp = self.dir.join(format!("{version}.cwasm.tmp"));
                std::fs::write(&tmp, bytes)
                    .and_then(|_| std::fs::rename(&tmp, self.path(version)))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            tracing::warn!(version, error = %e, "could not cache a compiled plugin");
        }
    }

    /// A cached component, if there is a usable one. An unreadable or incompatible
    /// file is removed so it is recompiled.
    pub fn load(&self, version: &str) -> Option<Component> {
        let path = self.path(version);
        if !path.exists() {
            return None;
        }
        // SAFETY: wasmtime requires that deserialized bytes come from
        // `Component::serialize` of a compatible engine. These files are written only
        // by `store` above, into a directory named for this engine's wasmtime version
        // and configuration, inside the host's own data directory; wasmtime also
        // checks the artefact's header (version, target, settings) and refuses a
        // mismatch. Whoever can write the data directory can change the ledger too,
        // so this trusts nothing the rest of the host does not already trust.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(version, error = %e, "discarding an unusable cached artefact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }
}
