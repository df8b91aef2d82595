//! What the layers above the engine need from it besides operations: reads that run
//! on the plugin pool like operations do, and durable writes of their own records
//! (the API's idempotency records, keys, partners) through the same group commit.

use std::cell::Cell;
use std::sync::Arc;

use super::{Engine, EngineError, Ticket};
use crate::storage::Batch;

tokio::task_local! {
    /// Inside [`Engine::deferring`]: the newest ticket whose wait was left to it.
    static DEFERRED: Cell<Option<Ticket>>;
}

impl Engine {
    /// Run the read `op` for `merchant` on the plugin pool (a read may call the
    /// programme, or settle expiry, and must not run on an async worker).
    pub async fn read<T, F>(self: &Arc<Self>, merchant: &str, op: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = self.clone();
        self.pool.run(merchant, move || op(&engine)).await?
    }

    /// The storage flush latency histogram (a shared handle, for metrics).
    pub fn flush_latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.commit.latency()
    }

    /// Return once everything applied so far is durable.
    pub async fn settle(&self) -> Result<(), EngineError> {
        self.commit.wait_async(self.commit.current()).await?;
        Ok(())
    }

    /// Apply `batch` atomically and return once it is durable (inside
    /// [`Engine::deferring`]: once queued). For records the engine does not
    /// interpret; callers key them by merchant like everything else.
    pub async fn write(self: &Arc<Self>, batch: Batch) -> Result<(), EngineError> {
        // Queued from this task when the queue has room (it only takes the group
        // commit's lock); when the disk has fallen behind and the queue is full, the
        // wait for room happens on a blocking thread.
        let ticket = match self.try_apply(batch)? {
            Ok(ticket) => ticket,
            Err(batch) => {
                let engine = self.clone();
                tokio::task::spawn_blocking(move || engine.apply(batch))
                    .await
                    .map_err(|e| EngineError::Storage(format!("write task failed: {e}")))??
            }
        };
        self.durable_async(ticket).await
    }

    /// Run `f`, in which [`Engine::submit`] and [`Engine::write`] return as soon as
    /// their writes are queued (visible to every later read) instead of once they are
    /// durable, and return its output with the newest ticket they did not wait for.
    ///
    /// The caller must not answer anyone as if those writes were done until that
    /// ticket is durable: it either waits for it ([`Engine::wait`]), or makes a write
    /// of its own afterwards and waits for that one, since tickets become durable in
    /// the order they were issued. The API's idempotency layer does the second: the
    /// answer it stores is such a later write, so an operation and its stored answer
    /// share one wait for the disk instead of waiting for two flushes one after the
    /// other.
    pub async fn deferring<F: Future>(f: F) -> (F::Output, Option<Ticket>) {
        DEFERRED
            .scope(Cell::new(None), async move {
                let out = f.await;
                (out, DEFERRED.with(Cell::get))
            })
            .await
    }

    /// Return once `ticket` is durable.
    pub async fn wait(&self, ticket: Ticket) -> Result<(), EngineError> {
        self.commit.wait_async(ticket).await?;
        Ok(())
    }

    /// Return once `ticket` is durable, or at once inside [`Engine::deferring`],
    /// which then answers for it.
    pub(super) async fn durable_async(&self, ticket: Ticket) -> Result<(), EngineError> {
        let deferred = DEFERRED
            .try_with(|d| d.set(Some(d.get().map_or(ticket, |t| t.max(ticket)))))
            .is_ok();
        if !deferred {
            self.commit.wait_async(ticket).await?;
        }
        Ok(())
    }
}
