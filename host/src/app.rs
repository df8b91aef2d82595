//! Opening a data directory: sled storage, the plugin registry (with its compiled
//! artefact cache), the plugin pool and the engine, wired together. The server and
//! the command line both start here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::Timestamp;
use crate::engine::{Engine, EngineError, MerchantSettings};
use crate::jobs::Jobs;
use crate::pool::PluginPool;
use crate::registry::{Registry, RegistryError, cache_dir};
use crate::sandbox::{Limits, LoadError, Sandbox};
use crate::storage::{SledStorage, Storage, StorageError};
use crate::webhooks::{WebhookError, WebhookOptions, Webhooks};

/// How to open a data directory.
#[derive(Debug, Clone)]
pub struct Options {
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// Limits on every plugin call.
    pub limits: Limits,
    /// Plugin calls (engine operations) running at once.
    pub threads: usize,
    /// Of which for one merchant at most.
    pub per_merchant: usize,
    /// How long an operation may wait for a place before it is refused as busy.
    pub queue_timeout: Duration,
    /// How webhooks are delivered.
    pub webhooks: WebhookOptions,
}

impl Default for Options {
    fn default() -> Options {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            cache_bytes: 256 << 20,
            limits: Limits::default(),
            // Operations are CPU work (guest code, records, reads mostly from the
            // cache); they wait for durability outside the pool. Two per core cover
            // the occasional wait on a member's lock or the disk; more only add
            // contention (the pool's threads ran 10-30 % more CPU per operation at 4
            // per core than at 2 in the HTTP load test). A merchant may use three
            // quarters of them, so another merchant always has room.
            threads: cores * 2,
            per_merchant: (cores * 3 / 2).max(1),
            queue_timeout: Duration::from_secs(5),
            webhooks: WebhookOptions::default(),
        }
    }
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The sandbox could not be set up.
    #[error("{0}")]
    Sandbox(#[from] LoadError),
    /// The registry failed (e.g. a stored version no longer compiles).
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The webhook endpoints could not be loaded.
    #[error("{0}")]
    Webhooks(#[from] WebhookError),
}

/// The opened data directory.
pub struct App {
    /// Where.
    pub dir: PathBuf,
    /// The storage.
    pub storage: Arc<dyn Storage>,
    /// The plugin registry.
    pub registry: Arc<Registry>,
    /// The engine.
    pub engine: Arc<Engine>,
    /// The webhooks (start their delivery worker with [`Webhooks::spawn`]).
    pub webhooks: Arc<Webhooks>,
    /// Background jobs (simulations, imports).
    pub jobs: Arc<Jobs>,
}

impl App {
    /// Open (or create) the data directory `dir`.
    pub fn open(dir: &Path, options: &Options) -> Result<App, OpenError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Backend(format!("{}: {e}", dir.display())))?;
        let storage: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&dir.join("db"), options.cache_bytes)?);
        let sandbox = Sandbox::new(options.limits.clone())?;
        let registry = Arc::new(Registry::open(sandbox, storage.clone(), &cache_dir(dir))?);
        let pool = Arc::new(PluginPool::new(
            options.threads,
            options.per_merchant,
            options.queue_timeout,
        ));
        let engine = Arc::new(Engine::new(storage, registry.clone(), pool));
        // From here on everything goes through the engine's group commit, so that
        // what one layer writes the others read at once.
        let storage = engine.storage().clone();
        let webhooks = Arc::new(Webhooks::new(engine.clone(), options.webhooks.clone())?);
        let jobs = Arc::new(Jobs::open(storage.clone(), crate::api::now)?);
        // Uploads a stopped server was still receiving.
        let _ = std::fs::remove_dir_all(dir.join("spool"));
        Ok(App {
            dir: dir.to_path_buf(),
            storage,
            registry,
            engine,
            webhooks,
            jobs,
        })
    }

    /// Make sure `merchant` exists (created with `settings` if not) and has a
    /// programme: when it has none active, `plugin` is uploaded and activated.
    pub fn ensure_merchant(
        &self,
        settings: MerchantSettings,
        plugin: &[u8],
        now: Timestamp,
    ) -> Result<(), SetupError> {
        let id = settings.id.clone();
        match self.engine.merchant(&id) {
            Ok(_) => {}
            Err(EngineError::UnknownMerchant(_)) => {
                let done = self.engine.create_merchant(settings)?;
                self.engine.durable(done)?;
            }
            Err(e) => return Err(e.into()),
        }
        if self.registry.active(&id).is_none() {
            let v = self.registry.upload(&id, plugin, now)?;
            self.registry.activate(&id, &v.version, now)?;
        }
        Ok(())
    }
}

/// Why setting up a merchant failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The engine refused.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The registry refused the plugin.
    #[error("{0}")]
    Registry(#[from] RegistryError),
}
