//! The delivery worker and the signature.
//!
//! One tokio task: it waits until the outbox has rows (woken by the engine, or every
//! second), waits until what it reads is durable, fans each row out into one
//! delivery per subscribed endpoint (deleting the row in the same batch, so a crash
//! never loses or doubles one), then makes every due attempt, at most
//! `concurrency` at once. Deliveries are stored under the merchant as
//! `d/<id>` (the record) and, while pending, `p/<id>` (the index the worker scans,
//! holding the next attempt's time in milliseconds), so finished deliveries cost the
//! worker nothing.
//!
//! The signature header is `loyalty-signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 with the endpoint's secret over `"<t>.<body>"`, so a
//! receiver can check both who sent it and that it is recent ([`verify_signature`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use super::endpoints::EndpointRecord;
use super::{Delivery, DeliveryStatus, OutboxRow, WebhookError, Webhooks};
use crate::engine::random_code;
use crate::storage::{Batch, Key, Space};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `loyalty-signature` header value for `body` sent at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex(&mac(secret, t, body).finalize().into_bytes())
    )
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=<seconds>,v1=<hex>`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("signature timestamp outside the tolerance")]
    Stale,
    /// No `v1` signature matches.
    #[error("signature does not match")]
    Mismatch,
}

/// Check a `loyalty-signature` header against `body` (constant-time comparison).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    for s in sigs {
        let Some(bytes) = (0..s.len() / 2)
            .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            continue;
        };
        if mac(secret, t, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

fn record_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"d", id.as_bytes()])
}

fn pending_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"p", id.as_bytes()])
}

/// One due attempt.
struct Due {
    merchant: String,
    delivery: Delivery,
}

impl Webhooks {
    /// Start the delivery worker.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let w = self.clone();
        tokio::spawn(async move { w.run().await })
    }

    /// Deliveries pending, as the worker last counted them.
    pub fn backlog(&self) -> i64 {
        self.subs.backlog()
    }

    async fn run(self: Arc<Self>) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.options.concurrency.max(1)));
        loop {
            if let Err(error) = self.fan_out().await {
                tracing::error!(%error, "webhook fan-out failed");
            }
            let due = match self.due().await {
                Ok(d) => d,
                Err(error) => {
                    tracing::error!(%error, "reading webhook deliveries failed");
                    Vec::new()
                }
            };
            let mut tasks = Vec::new();
            for d in due {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (w, client) = (self.clone(), client.clone());
                tasks.push(tokio::spawn(async move {
                    w.attempt(&client, d).await;
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            // Wake on new outbox rows, or at the latest after a second (retries
            // come due by time alone).
            let _ = tokio::time::timeout(Duration::from_secs(1), self.subs.woken()).await;
        }
    }

    /// Move outbox rows into deliveries, one batch per row.
    async fn fan_out(&self) -> Result<(), WebhookError> {
        // Rows visible now may not be flushed yet: announce only what is durable.
        self.engine
            .settle()
            .await
            .map_err(|e| WebhookError::Storage(e.to_string()))?;
        let storage = self.storage.clone();
        let rows = tokio::task::spawn_blocking(move || -> Result<_, WebhookError> {
            let mut out = Vec::new();
            for m in storage.merchants(Space::Outbox)? {
                for (k, v) in storage.scan(Space::Outbox, &m, &[])? {
                    out.push((m.clone(), k, v));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| WebhookError::Storage(e.to_string()))??;
        for (merchant, key, bytes) in rows {
            let mut batch = Batch::new();
            batch.delete(Space::Outbox, key);
            if let Ok(row) = serde_json::from_slice::<OutboxRow>(&bytes) {
                for e in self.records(&merchant)? {
                    if !e.view.events.contains(&row.kind) {
                        continue;
                    }
                    let id = format!(
                        "dlv_{}",
                        random_code(20)
                            .map_err(|e| WebhookError::Storage(e.to_string()))?
                            .to_ascii_lowercase()
                    );
                    let d = Delivery {
                        id: id.clone(),
                        endpoint: e.view.id.clone(),
                        event: row.id.clone(),
                        kind: row.kind,
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        last_status: None,
                        last_error: None,
                        created_at: row.created_at,
                        next_attempt_at: Some(row.created_at),
                        delivered_at: None,
                        payload: serde_json::json!({
                            "id": row.id,
                            "type": row.kind.name(),
                            "created_at": row.created_at,
                            "merchant": merchant,
                            "data": row.data,
                        }),
                    };
                    batch.put(
                        Space::Deliveries,
                        record_key(&merchant, &id),
                        serde_json::to_vec(&d).unwrap_or_default(),
                    );
                    batch.put(
                        Space::Deliveries,
                        pending_key(&merchant, &id),
                        0i64.to_be_bytes().to_vec(),
                    );
                }
            }
            self.engine
                .write(batch)
                .await
                .map_err(|e| WebhookError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    /// Pending deliveries whose next attempt is due.
    async fn due(&self) -> Result<Vec<Due>, WebhookError> {
        let storage = self.storage.clone();
        let subs = self.subs.clone();
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let mut due = Vec::new();
            let mut pending = 0;
            for m in storage.merchants(Space::Deliveries)? {
                for (k, v) in storage.scan(Space::Deliveries, &m, &[b"p"])? {
                    pending += 1;
                    let at = v
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, i64::from_be_bytes);
                    if at > now {
                        continue;
                    }
                    let id = String::from_utf8_lossy(k.last_part()).into_owned();
                    if let Some(bytes) = storage.get(Space::Deliveries, &record_key(&m, &id))?
                        && let Ok(delivery) = serde_json::from_slice::<Delivery>(&bytes)
                    {
                        due.push(Due {
                            merchant: m.clone(),
                            delivery,
                        });
                    }
                }
            }
            subs.set_backlog(pending);
            Ok(due)
        })
        .await
        .map_err(|e| WebhookError::Storage(e.to_string()))?
    }

    /// Make one attempt and record its outcome.
    async fn attempt(&self, client: &Client<HttpConnector, Full<Bytes>>, due: Due) {
        let Due {
            merchant,
            mut delivery,
        } = due;
        let endpoint: Option<EndpointRecord> = self.record(&merchant, &delivery.endpoint).ok();
        let outcome = match &endpoint {
            None => Err((None, "the endpoint was deleted".to_string(), true)),
            Some(e) => self.post(client, e, &delivery).await,
        };
        let now = now_ms();
        delivery.attempts += 1;
        let mut batch = Batch::new();
        match outcome {
            Ok(status) => {
                delivery.status = DeliveryStatus::Delivered;
                delivery.last_status = Some(status);
                delivery.last_error = None;
                delivery.next_attempt_at = None;
                delivery.delivered_at = Some(now / 1000);
                batch.delete(Space::Deliveries, pending_key(&merchant, &delivery.id));
            }
            Err((status, error, final_)) => {
                delivery.last_status = status;
                delivery.last_error = Some(error);
                if final_ || delivery.attempts >= self.options.max_attempts {
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at = None;
                    batch.delete(Space::Deliveries, pending_key(&merchant, &delivery.id));
                } else {
                    let next = now + self.backoff(delivery.attempts).as_millis() as i64;
                    delivery.next_attempt_at = Some(next / 1000);
                    batch.put(
                        Space::Deliveries,
                        pending_key(&merchant, &delivery.id),
                        next.to_be_bytes().to_vec(),
                    );
                }
            }
        }
        tracing::info!(
            merchant,
            endpoint = %delivery.endpoint,
            event = %delivery.event,
            kind = delivery.kind.name(),
            attempt = delivery.attempts,
            status = ?delivery.status,
            last_status = ?delivery.last_status,
            error = delivery.last_error.as_deref().unwrap_or_default(),
            "webhook attempt"
        );
        batch.put(
            Space::Deliveries,
            record_key(&merchant, &delivery.id),
            serde_json::to_vec(&delivery).unwrap_or_default(),
        );
        if let Err(error) = self.engine.write(batch).await {
            tracing::error!(%error, "recording a webhook attempt failed");
        }
    }

    /// The wait after the `attempts`-th failure: doubling from the base, capped,
    /// with up to 20% random jitter so retries of many deliveries spread out.
    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.options.retry_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
        let capped = exp.min(self.options.retry_cap.as_millis() as u64);
        let mut r = [0u8; 2];
        let _ = getrandom::fill(&mut r);
        let jitter = capped / 5 * u64::from(u16::from_le_bytes(r)) / u64::from(u16::MAX);
        Duration::from_millis(capped + jitter)
    }

    /// POST the delivery: `Ok(status)` on 2xx; otherwise the status (if any), the
    /// error, and whether it is final.
    async fn post(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        endpoint: &EndpointRecord,
        delivery: &Delivery,
    ) -> Result<u16, (Option<u16>, String, bool)> {
        let url = &endpoint.view.url;
        if url.starts_with("https://") {
            return Err((
                None,
                "https endpoints are not supported by this build yet (no TLS client)".into(),
                true,
            ));
        }
        let body = serde_json::to_vec(&delivery.payload).unwrap_or_default();
        let t = now_ms() / 1000;
        let request = hyper::Request::post(url.as_str())
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("loyalty-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header("loyalty-webhook-id", delivery.event.as_str())
            .header("loyalty-event-type", delivery.kind.name())
            .header("loyalty-signature", sign(&endpoint.secret, t, &body))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| (None, format!("cannot build the request: {e}"), true))?;
        match tokio::time::timeout(self.options.timeout, client.request(request)).await {
            Err(_) => Err((
                None,
                format!("no answer within {} s", self.options.timeout.as_secs()),
                false,
            )),
            Ok(Err(e)) => Err((None, format!("request failed: {e}"), false)),
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    Ok(status.as_u16())
                } else {
                    Err((
                        Some(status.as_u16()),
                        format!("the endpoint answered {status}"),
                        false,
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::EventKind;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_old_timestamp_does_not() {
        let header = sign("whsec_x", 1_000, b"{\"a\":1}");
        let tol = Duration::from_secs(300);
        assert_eq!(
            verify_signature("whsec_x", &header, b"{\"a\":1}", 1_010, tol),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_x", &header, b"{\"a\":2}", 1_010, tol),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_y", &header, b"{\"a\":1}", 1_010, tol),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_x", &header, b"{\"a\":1}", 2_000, tol),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("whsec_x", "v1=00", b"", 0, tol),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn every_kind_has_its_wire_name() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
