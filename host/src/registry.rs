//! The plugin registry: merchants' programme versions, persisted, compiled once.
//!
//! - Upload validates a plugin (through [`Sandbox::load`]: wasm, contract version,
//!   exports, imports, size, compilation, `describe`) and also checks that its config
//!   schema is a valid JSON Schema that accepts its own default config. A version is
//!   immutable and content-addressed: its id is the SHA-256 of the uploaded bytes, so
//!   uploading the same plugin twice gives the same version.
//! - A merchant activates one version; rolling back activates the one active before.
//!   Activation swaps an `Arc`: calls in flight hold the version they started with.
//! - Versions, their uploaded bytes and the activation history live in [`Storage`];
//!   compiled artefacts are cached on disk in a directory named for the engine's
//!   configuration and wasmtime version, so a restart does not recompile and an
//!   artefact from another engine is never loaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{ProgramInfo, Timestamp};
use crate::sandbox::{CompiledPlugin, LoadError, Sandbox, is_core_module, valid_id};
use crate::storage::{Batch, Key, Space, Storage, StorageError};

mod cache;

pub use cache::ArtifactCache;

/// One uploaded version of a merchant's programme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionInfo {
    /// The version id: SHA-256 of the uploaded bytes, hex.
    pub version: String,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
    /// Size of the upload in bytes.
    pub size: usize,
    /// Whether the upload was a component or a core module the host componentized.
    pub source: SourceKind,
    /// What `describe` returned.
    pub program: ProgramInfo,
}

/// What was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A WebAssembly component.
    Component,
    /// A core module built with wit-bindgen, componentized at upload.
    CoreModule,
}

/// One entry of a merchant's activation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Activation {
    /// The version activated.
    pub version: String,
    /// When.
    pub at: Timestamp,
}

/// The active version and its compiled plugin. Calls hold an `Arc` of this for their
/// whole duration, so an activation never changes a call midway.
pub struct ActivePlugin {
    /// The version id.
    pub version: String,
    /// The compiled, pre-linked plugin.
    pub plugin: CompiledPlugin,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The merchant id is not a valid id.
    #[error("invalid merchant id {0:?}")]
    InvalidMerchant(String),
    /// The plugin was refused.
    #[error("{0}")]
    Invalid(#[from] LoadError),
    /// No such version for this merchant.
    #[error("merchant {merchant} has no plugin version {version}")]
    UnknownVersion {
        /// The merchant.
        merchant: String,
        /// The version asked for.
        version: String,
    },
    /// Nothing earlier to roll back to.
    #[error("merchant {0} has no earlier active version to roll back to")]
    NothingToRollBack(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// The registry (see the module docs). Cheap to share behind an `Arc`.
pub struct Registry {
    sandbox: Sandbox,
    storage: Arc<dyn Storage>,
    cache: ArtifactCache,
    // A std RwLock: held only to clone or replace an Arc, never across I/O or awaits.
    active: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    // Compiled versions that are not active (for activation and simulation); the
    // mutex serialises compiles of the same version.
    compiled: Mutex<HashMap<(String, String), CompiledPlugin>>,
    // Serialises activations and rollbacks (rare): each reads the activation history,
    // appends to it, makes it durable and swaps the live version, and two at once
    // would lose an entry or swap in a different order than they were written.
    activating: Mutex<()>,
    // Uploads in progress, by merchant and version: a second upload of the same bytes
    // waits for the first and finds its version, instead of compiling and storing
    // them again (and both answering "created").
    uploading: Mutex<HashMap<(String, String), UploadSlot>>,
    stats: Stats,
}

/// The lock one upload of one version holds (see `Registry::uploading`).
type UploadSlot = Arc<Mutex<()>>;

/// How the registry got its compiled plugins since it opened.
#[derive(Debug, Default)]
pub struct Stats {
    /// Components compiled from wasm (at upload, or when no usable cache entry existed).
    pub compiled: AtomicU64,
    /// Components loaded from the on-disk artefact cache.
    pub from_cache: AtomicU64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ActiveRecord {
    history: Vec<Activation>,
}

fn version_key(merchant: &str, version: &str) -> Key {
    Key::merchant(merchant, &[version.as_bytes()])
}

fn check_merchant(merchant: &str) -> Result<(), RegistryError> {
    if valid_id(merchant) {
        Ok(())
    } else {
        Err(RegistryError::InvalidMerchant(merchant.to_string()))
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StorageError::Backend(format!("corrupt registry record: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data structs always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The version id of uploaded bytes.
pub fn version_id(bytes: &[u8]) -> String {
    crate::domain::hex(&Sha256::digest(bytes))
}

/// Check the programme's config schema is a JSON Schema that accepts its default.
fn check_config_schema(info: &ProgramInfo) -> Result<(), LoadError> {
    let invalid = |reason: String| LoadError::InvalidDescribe { reason };
    let validator = jsonschema::validator_for(&info.config_schema)
        .map_err(|e| invalid(format!("config-schema is not a valid JSON Schema: {e}")))?;
    if let Some(error) = validator.iter_errors(&info.default_config).next() {
        return Err(invalid(format!(
            "default-config does not satisfy config-schema at {:?}: {error}",
            error.instance_path().to_string()
        )));
    }
    Ok(())
}

impl Registry {
    /// Open the registry on `storage`, caching compiled artefacts under `cache_dir`,
    /// and load every merchant's active version.
    pub fn open(
        sandbox: Sandbox,
        storage: Arc<dyn Storage>,
        cache_dir: &Path,
    ) -> Result<Registry, RegistryError> {
        let cache = ArtifactCache::new(cache_dir, sandbox.engine())
            .map_err(|e| StorageError::Backend(format!("compiled-artefact cache: {e}")))?;
        let registry = Registry {
            sandbox,
            storage,
            cache,
            active: RwLock::new(HashMap::new()),
            compiled: Mutex::new(HashMap::new()),
            activating: Mutex::new(()),
            uploading: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        };
        let mut active = HashMap::new();
        for merchant in registry.storage.merchants(Space::PluginActive)? {
            let record = registry.active_record(&merchant)?;
            if let Some(last) = record.history.last() {
                let plugin = registry.compile(&merchant, &last.version)?;
                active.insert(
                    merchant.clone(),
                    Arc::new(ActivePlugin {
                        version: last.version.clone(),
                        plugin,
                    }),
                );
            }
        }
        *registry.active.write().unwrap_or_else(|e| e.into_inner()) = active;
        Ok(registry)
    }

    /// The sandbox plugins run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Compile and cache counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The compiled-artefact cache.
    pub fn cache(&self) -> &ArtifactCache {
        &self.cache
    }

    /// Validate and store a new version (or return the existing one for the same
    /// bytes). Does not activate it.
    pub fn upload(
        &self,
        merchant: &str,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<VersionInfo, RegistryError> {
        self.upload_new(merchant, bytes, now).map(|(info, _)| info)
    }

    /// [`Registry::upload`], and whether this call stored the version (false: it
    /// existed, or a concurrent upload of the same bytes stored it).
    pub fn upload_new(
        &self,
        merchant: &str,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(VersionInfo, bool), RegistryError> {
        check_merchant(merchant)?;
        let version = version_id(bytes);
        let key = (merchant.to_string(), version.clone());
        let slot = crate::lock(&self.uploading)
            .entry(key.clone())
            .or_default()
            .clone();
        let result = {
            let _one = crate::lock(&slot);
            match self.version(merchant, &version) {
                Ok(Some(existing)) => Ok((existing, false)),
                Ok(None) => self
                    .store_new(merchant, bytes, version, now)
                    .map(|info| (info, true)),
                Err(e) => Err(e),
            }
        };
        let mut uploading = crate::lock(&self.uploading);
        // The map's and this call's: nobody else waits on this slot.
        if Arc::strong_count(&slot) == 2 {
            uploading.remove(&key);
        }
        result
    }

    fn store_new(
        &self,
        merchant: &str,
        bytes: &[u8],
        version: String,
        now: Timestamp,
    ) -> Result<VersionInfo, RegistryError> {
        let label = format!("merchant {merchant}, version {}", &version[..12]);
        let source = if is_core_module(bytes) {
            SourceKind::CoreModule
        } else {
            SourceKind::Component
        };
        // The sandbox checks the size first, then wasm, componentizes a core module,
        // compiles and describes: the upload is stored as uploaded.
        let plugin = self.sandbox.load(&label, bytes)?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        check_config_schema(plugin.info())?;
        let info = VersionInfo {
            version: version.clone(),
            uploaded_at: now,
            size: bytes.len(),
            source,
            program: plugin.info().clone(),
        };
        self.cache.store(&version, plugin.component());
        let mut batch = Batch::new();
        batch
            .put(
                Space::PluginBlobs,
                version_key(merchant, &version),
                bytes.to_vec(),
            )
            .put(
                Space::PluginVersions,
                version_key(merchant, &version),
                encode(&info),
            );
        self.storage.apply(batch)?;
        self.storage.flush()?;
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((merchant.to_string(), version), plugin);
        tracing::info!(merchant, version = %info.version, program = %info.program.name, "plugin version uploaded");
        Ok(info)
    }

    /// One version's metadata.
    pub fn version(
        &self,
        merchant: &str,
        version: &str,
    ) -> Result<Option<VersionInfo>, RegistryError> {
        check_merchant(merchant)?;
        match self
            .storage
            .get(Space::PluginVersions, &version_key(merchant, version))?
        {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every version of a merchant, oldest upload first.
    pub fn versions(&self, merchant: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        check_merchant(merchant)?;
        let mut out: Vec<VersionInfo> = self
            .storage
            .scan(Space::PluginVersions, merchant, &[])?
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| (a.uploaded_at, &a.version).cmp(&(b.uploaded_at, &b.version)));
        Ok(out)
    }

    /// The activation history of a merchant, oldest first.
    pub fn history(&self, merchant: &str) -> Result<Vec<Activation>, RegistryError> {
        check_merchant(merchant)?;
        Ok(self.active_record(merchant)?.history)
    }

    fn active_record(&self, merchant: &str) -> Result<ActiveRecord, RegistryError> {
        Ok(
            match self
                .storage
                .get(Space::PluginActive, &Key::merchant(merchant, &[]))?
            {
                Some(bytes) => decode(&bytes)?,
                None => ActiveRecord::default(),
            },
        )
    }

    /// The compiled plugin for a stored version: from memory, the on-disk cache, or
    /// compiled from the stored component bytes (and then cached).
    pub fn compile(&self, merchant: &str, version: &str) -> Result<CompiledPlugin, RegistryError> {
        check_merchant(merchant)?;
        let key = (merchant.to_string(), version.to_string());
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = compiled.get(&key) {
            return Ok(p.clone());
        }
        let label = format!(
            "merchant {merchant}, version {}",
            &version[..version.len().min(12)]
        );
        let plugin = match self.cache.load(version) {
            Some(component) => {
                self.stats.from_cache.fetch_add(1, Ordering::Relaxed);
                self.sandbox.from_component(&label, component)?
            }
            None => {
                let bytes = self
                    .storage
                    .get(Space::PluginBlobs, &version_key(merchant, version))?
                    .ok_or_else(|| RegistryError::UnknownVersion {
                        merchant: merchant.to_string(),
                        version: version.to_string(),
                    })?;
                let plugin = self.sandbox.load(&label, &bytes)?;
                self.stats.compiled.fetch_add(1, Ordering::Relaxed);
                self.cache.store(version, plugin.component());
                plugin
            }
        };
        compiled.insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Make `version` the merchant's active programme. Calls in flight finish on the
    /// version they started with.
    pub fn activate(
        &self,
        merchant: &str,
        version: &str,
        now: Timestamp,
    ) -> Result<VersionInfo, RegistryError> {
        self.activate_with(merchant, version, now, |_| Ok(()))
    }

    /// [`Registry::activate`], once `check` accepts the version (the caller's own
    /// conditions, such as the merchant's config fitting its schema), with no other
    /// activation between the check and the swap.
    pub fn activate_with<E: From<RegistryError>>(
        &self,
        merchant: &str,
        version: &str,
        now: Timestamp,
        check: impl FnOnce(&VersionInfo) -> Result<(), E>,
    ) -> Result<VersionInfo, E> {
        let _one = self.activating.lock().unwrap_or_else(|e| e.into_inner());
        self.activate_locked(merchant, version, now, check)
    }

    fn activate_locked<E: From<RegistryError>>(
        &self,
        merchant: &str,
        version: &str,
        now: Timestamp,
        check: impl FnOnce(&VersionInfo) -> Result<(), E>,
    ) -> Result<VersionInfo, E> {
        let info =
            self.version(merchant, version)?
                .ok_or_else(|| RegistryError::UnknownVersion {
                    merchant: merchant.to_string(),
                    version: version.to_string(),
                })?;
        check(&info)?;
        let plugin = self.compile(merchant, version)?;
        let mut record = self.active_record(merchant)?;
        record.history.push(Activation {
            version: version.to_string(),
            at: now,
        });
        let mut batch = Batch::new();
        batch.put(
            Space::PluginActive,
            Key::merchant(merchant, &[]),
            encode(&record),
        );
        // Durable before the swap: a restart never forgets an activation it reported.
        self.storage.apply(batch).map_err(RegistryError::from)?;
        self.storage.flush().map_err(RegistryError::from)?;
        self.active
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                merchant.to_string(),
                Arc::new(ActivePlugin {
                    version: version.to_string(),
                    plugin,
                }),
            );
        tracing::info!(merchant, version, "plugin version activated");
        Ok(info)
    }

    /// Activate the version that was active before the current one.
    pub fn rollback(&self, merchant: &str, now: Timestamp) -> Result<VersionInfo, RegistryError> {
        self.rollback_with(merchant, now, |_| Ok(()))
    }

    /// [`Registry::rollback`], once `check` accepts the version it would go back to
    /// (as [`Registry::activate_with`]).
    pub fn rollback_with<E: From<RegistryError>>(
        &self,
        merchant: &str,
        now: Timestamp,
        check: impl FnOnce(&VersionInfo) -> Result<(), E>,
    ) -> Result<VersionInfo, E> {
        check_merchant(merchant)?;
        let _one = self.activating.lock().unwrap_or_else(|e| e.into_inner());
        let record = self.active_record(merchant)?;
        let current = record.history.last().map(|a| a.version.clone());
        let previous = record
            .history
            .iter()
            .rev()
            .map(|a| &a.version)
            .find(|v| Some(*v) != current.as_ref())
            .cloned()
            .ok_or_else(|| RegistryError::NothingToRollBack(merchant.to_string()))?;
        self.activate_locked(merchant, &previous, now, check)
    }

    /// Run `f` with no activation or rollback in progress or starting meanwhile: for a
    /// change that must be checked against the active version and stay valid for it,
    /// such as a merchant's new config (an activation checks the config it finds
    /// against the version it activates, under the same lock).
    pub fn holding_activations<R>(&self, f: impl FnOnce() -> R) -> R {
        let _one = self.activating.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// The merchant's active programme, if any.
    pub fn active(&self, merchant: &str) -> Option<Arc<ActivePlugin>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(merchant)
            .cloned()
    }
}

/// Where a data directory keeps its compiled artefacts.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("compiled")
}
