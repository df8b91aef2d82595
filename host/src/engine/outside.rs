//! What the layers above the engine need from it besides operations: reads that run
//! on the plugin pool like operations do, and durable writes of their own records
//! (the API's idempotency records, keys, partners) through the same group commit.

use std::sync::Arc;

use super::{Engine, EngineError};
use crate::storage::Batch;

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

    /// Apply `batch` atomically and return once it is durable. For records the
    /// engine does not interpret; callers key them by merchant like everything else.
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
        self.commit.wait_async(ticket).await?;
        Ok(())
    }
}
