//! The delivery worker and the signature.
//!
//! One tokio task loops: it fans outbox rows out into one delivery per subscribed
//! endpoint (deleting the rows in the same batch, so a crash never loses or doubles
//! a delivery), then starts the attempts that are due, oldest first, at most
//! `concurrency` at once and `per_endpoint` at once to one endpoint, and waits until
//! the engine writes outbox rows, an attempt ends, or `poll` passes (retries come
//! due by time alone). It never waits for a round of attempts to finish, so one
//! slow endpoint holds only its own slots. Attempts are tasks of a `JoinSet` the
//! loop owns: aborting the worker aborts them, and the loop knows which deliveries
//! are in flight so it never starts one twice.
//!
//! Deliveries are stored under the merchant as `d/<id>` (the record) and, while
//! pending, `p/<id>` (the index the worker scans: the next attempt's time in
//! milliseconds, then the endpoint id), so finished deliveries cost the worker
//! nothing.
//!
//! The signature header is `loyalty-signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 with the endpoint's secret over `"<t>.<body>"`, so a
//! receiver can check both who sent it and that it is recent ([`verify_signature`]).

use crate::domain::hex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use super::address::{Resolver, refused_url};
use super::endpoints::EndpointRecord;
use super::{Delivery, DeliveryStatus, OutboxRow, WebhookError, Webhooks, new_id};
use crate::storage::{Batch, Key, Space};

/// The webhook client's connector: HTTP, through the resolver that keeps only public
/// addresses unless the operator allows private ones.
type Connector = HttpConnector<Resolver>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    // Every `v1` is checked (a sender rotating secrets may send two); the MAC
    // comparison is constant-time (`verify_slice`).
    for s in sigs {
        let Some(bytes) = crate::domain::decode_hex(s) else {
            continue;
        };
        if mac(secret, t, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

pub(super) fn record_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"d", id.as_bytes()])
}

fn pending_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"p", id.as_bytes()])
}

/// The pending index's value: when the next attempt is due, and to which endpoint.
fn pending_value(at_ms: i64, endpoint: &str) -> Vec<u8> {
    let mut v = at_ms.to_be_bytes().to_vec();
    v.extend_from_slice(endpoint.as_bytes());
    v
}

/// Outbox rows fanned out in one batch: enough to keep flushes few when many
/// events arrive at once, few enough that one batch stays small.
const FAN_OUT_ROWS: usize = 128;

/// The wait after the `attempts`-th failure: `base` doubled `attempts - 1` times,
/// at most `cap`, plus up to 20% jitter (`r` of `u16::MAX`).
fn backoff(base: Duration, cap: Duration, attempts: u32, r: u16) -> Duration {
    let base = base.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let capped = exp.min(cap.as_millis() as u64);
    let jitter = capped / 5 * u64::from(r) / u64::from(u16::MAX);
    Duration::from_millis(capped + jitter)
}

/// One due attempt.
struct Due {
    merchant: String,
    delivery: Delivery,
}

/// Which deliveries are being attempted, so none is started twice and no endpoint
/// gets more than its share. Owned by the worker loop alone: no lock.
#[derive(Default)]
struct InFlight {
    tasks: HashMap<tokio::task::Id, (String, (String, String))>,
    ids: HashSet<String>,
    per_endpoint: HashMap<(String, String), usize>,
}

impl InFlight {
    fn start(&mut self, task: tokio::task::Id, id: String, endpoint: (String, String)) {
        self.ids.insert(id.clone());
        *self.per_endpoint.entry(endpoint.clone()).or_default() += 1;
        self.tasks.insert(task, (id, endpoint));
    }

    fn end(&mut self, task: tokio::task::Id) {
        if let Some((id, endpoint)) = self.tasks.remove(&task) {
            self.ids.remove(&id);
            if let Some(n) = self.per_endpoint.get_mut(&endpoint) {
                *n -= 1;
                if *n == 0 {
                    self.per_endpoint.remove(&endpoint);
                }
            }
        }
    }
}

impl Webhooks {
    /// Start the delivery worker (on the current tokio runtime). It runs until the
    /// handle is aborted, which also aborts the attempts in flight; what they did
    /// not record is attempted again after a restart (receivers see the same
    /// `loyalty-webhook-id` and can drop the repeat).
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let w = self.clone();
        tokio::spawn(async move { w.run().await })
    }

    /// Deliveries pending (not yet delivered or given up), as the worker last
    /// counted them.
    pub fn backlog(&self) -> i64 {
        self.subs.backlog()
    }

    async fn run(self: Arc<Self>) {
        let mut connector =
            HttpConnector::new_with_resolver(Resolver::new(self.options.allow_private));
        connector.enforce_http(true);
        let client: Client<Connector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let mut attempts = tokio::task::JoinSet::new();
        let mut flight = InFlight::default();
        let concurrency = self.options.concurrency.max(1);
        loop {
            let more = match self.fan_out().await {
                Ok(more) => more,
                Err(error) => {
                    tracing::error!(%error, "webhook fan-out failed");
                    false
                }
            };
            let free = concurrency.saturating_sub(flight.ids.len());
            let due = match self.due(&flight, free).await {
                Ok(d) => d,
                Err(error) => {
                    tracing::error!(%error, "reading webhook deliveries failed");
                    Vec::new()
                }
            };
            for d in due {
                let (id, endpoint) = (
                    d.delivery.id.clone(),
                    (d.merchant.clone(), d.delivery.endpoint.clone()),
                );
                let (w, client) = (self.clone(), client.clone());
                let task = attempts.spawn(async move { w.attempt(&client, d).await });
                flight.start(task.id(), id, endpoint);
            }
            if more {
                // The outbox had more rows than one batch: go on at once.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = self.subs.woken() => {}
                Some(ended) = attempts.join_next_with_id() => {
                    match ended {
                        Ok((task, ())) => flight.end(task),
                        Err(e) => {
                            tracing::error!(error = %e, "a webhook attempt panicked");
                            flight.end(e.id());
                        }
                    }
                }
                () = tokio::time::sleep(self.options.poll) => {}
            }
            // Collect every other attempt that ended meanwhile.
            while let Some(ended) = attempts.try_join_next_with_id() {
                match ended {
                    Ok((task, ())) => flight.end(task),
                    Err(e) => flight.end(e.id()),
                }
            }
        }
    }

    /// Move outbox rows into deliveries: per merchant, up to [`FAN_OUT_ROWS`] rows
    /// in one batch that deletes them and writes their deliveries. True when a
    /// merchant had more rows than that.
    async fn fan_out(&self) -> Result<bool, WebhookError> {
        let storage = self.storage.clone();
        let rows = tokio::task::spawn_blocking(move || -> Result<_, WebhookError> {
            let mut out = Vec::new();
            for m in storage.merchants(Space::Outbox)? {
                let rows = storage.scan_page(Space::Outbox, &m, &[], None, FAN_OUT_ROWS, false)?;
                out.push((m, rows));
            }
            Ok(out)
        })
        .await
        .map_err(|e| WebhookError::Storage(e.to_string()))??;
        if rows.is_empty() {
            return Ok(false);
        }
        // Rows visible now may not be flushed yet; announcing only what is durable
        // keeps a receiver from hearing of a change a crash then undoes. (The batch
        // below would also wait for them, since flushes cover everything applied
        // before; this says so plainly.)
        self.engine
            .settle()
            .await
            .map_err(|e| WebhookError::Storage(e.to_string()))?;
        let mut more = false;
        for (merchant, rows) in rows {
            more |= rows.len() >= FAN_OUT_ROWS;
            let endpoints = self.records(&merchant)?;
            let mut batch = Batch::new();
            for (key, bytes) in rows {
                batch.delete(Space::Outbox, key);
                let row = match serde_json::from_slice::<OutboxRow>(&bytes) {
                    Ok(row) => row,
                    Err(error) => {
                        // Unreadable rows are dropped (and said so), not retried forever.
                        tracing::error!(merchant, %error, "unreadable webhook outbox row dropped");
                        continue;
                    }
                };
                for e in endpoints
                    .iter()
                    .filter(|e| e.view.events.contains(&row.kind))
                {
                    let d = Delivery {
                        id: new_id("dlv_"),
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
                        record_key(&merchant, &d.id),
                        serde_json::to_vec(&d).unwrap_or_default(),
                    );
                    batch.put(
                        Space::Deliveries,
                        pending_key(&merchant, &d.id),
                        pending_value(0, &d.endpoint),
                    );
                }
            }
            self.engine
                .write(batch)
                .await
                .map_err(|e| WebhookError::Storage(e.to_string()))?;
        }
        Ok(more)
    }

    /// Up to `free` pending deliveries whose next attempt is due and that are not
    /// in flight, oldest first, within each endpoint's share; counts the backlog.
    async fn due(&self, flight: &InFlight, free: usize) -> Result<Vec<Due>, WebhookError> {
        let storage = self.storage.clone();
        let subs = self.subs.clone();
        let busy = flight.ids.clone();
        let mut per_endpoint = flight.per_endpoint.clone();
        let share = self.options.per_endpoint.max(1);
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let mut candidates = Vec::new();
            let mut pending = 0;
            for m in storage.merchants(Space::Deliveries)? {
                for (k, v) in storage.scan(Space::Deliveries, &m, &[b"p"])? {
                    pending += 1;
                    let at = v
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, i64::from_be_bytes);
                    let id = String::from_utf8_lossy(k.last_part()).into_owned();
                    if at <= now && !busy.contains(&id) {
                        let endpoint = String::from_utf8_lossy(v.get(8..).unwrap_or_default());
                        candidates.push((at, m.clone(), id, endpoint.into_owned()));
                    }
                }
            }
            subs.set_backlog(pending);
            candidates.sort();
            let mut due = Vec::new();
            for (_, m, id, endpoint) in candidates {
                if due.len() >= free {
                    break;
                }
                // Records from before the index held the endpoint have an empty
                // one; they share one slot count, which is merely conservative.
                let n = per_endpoint.entry((m.clone(), endpoint)).or_default();
                if *n >= share {
                    continue;
                }
                if let Some(bytes) = storage.get(Space::Deliveries, &record_key(&m, &id))?
                    && let Ok(delivery) = serde_json::from_slice::<Delivery>(&bytes)
                {
                    *n += 1;
                    due.push(Due {
                        merchant: m,
                        delivery,
                    });
                }
            }
            Ok(due)
        })
        .await
        .map_err(|e| WebhookError::Storage(e.to_string()))?
    }

    /// Make one attempt and record its outcome.
    async fn attempt(&self, client: &Client<Connector, Full<Bytes>>, due: Due) {
        let Due {
            merchant,
            mut delivery,
        } = due;
        let outcome = match self.record(&merchant, &delivery.endpoint) {
            Ok(e) => self.post(client, &e, &delivery).await,
            Err(WebhookError::UnknownEndpoint(_)) => {
                Err((None, "the endpoint was deleted".to_string(), true))
            }
            // Storage trouble is ours, not the receiver's: try again later.
            Err(e) => Err((None, format!("reading the endpoint failed: {e}"), false)),
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
                        pending_value(next, &delivery.endpoint),
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
            // The delivery still looks due; holding this slot for a while keeps a
            // failing disk from turning into a tight loop of repeated posts.
            tokio::time::sleep(self.options.retry_base).await;
        }
    }

    /// The wait after the `attempts`-th failure: doubling from the base, capped,
    /// with up to 20% random jitter so retries of many deliveries spread out.
    fn backoff(&self, attempts: u32) -> Duration {
        let mut r = [0u8; 2];
        // Without randomness the jitter is merely zero.
        let _ = getrandom::fill(&mut r);
        backoff(
            self.options.retry_base,
            self.options.retry_cap,
            attempts,
            u16::from_le_bytes(r),
        )
    }

    /// POST the delivery: `Ok(status)` on 2xx; otherwise the status (if any), the
    /// error, and whether it is final.
    async fn post(
        &self,
        client: &Client<Connector, Full<Bytes>>,
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
        // An address written in the URL is not resolved, so the resolver does not see
        // it: it is checked here (an endpoint registered while the operator allowed
        // private addresses gets nothing once they are not).
        if !self.options.allow_private
            && let Some(why) = refused_url(url)
        {
            return Err((
                None,
                format!("not delivered to a private address: {why}"),
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
                format!("no answer within {:?}", self.options.timeout),
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
    fn a_signature_with_stray_characters_is_refused() {
        let header = sign("whsec_x", 1_000, b"{}");
        let tol = Duration::from_secs(300);
        for bad in [format!("{header}0"), header.replace("v1=", "v1=+")] {
            assert_eq!(
                verify_signature("whsec_x", &bad, b"{}", 1_000, tol),
                Err(SignatureError::Mismatch),
                "{bad}"
            );
        }
        let upper = header.replace("v1=", "V1=");
        assert_eq!(
            verify_signature("whsec_x", &upper, b"{}", 1_000, tol),
            Err(SignatureError::Malformed)
        );
        let rotated = format!("{header},v1={}", "ab".repeat(32));
        assert_eq!(
            verify_signature("whsec_x", &rotated, b"{}", 1_000, tol),
            Ok(())
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_a_fifth_of_jitter() {
        let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(base, cap, 1, 0), Duration::from_secs(30));
        assert_eq!(backoff(base, cap, 2, 0), Duration::from_secs(60));
        assert_eq!(backoff(base, cap, 4, 0), Duration::from_secs(240));
        assert_eq!(backoff(base, cap, 12, 0), cap);
        assert_eq!(backoff(base, cap, 40, 0), cap);
        assert_eq!(backoff(base, cap, 1, u16::MAX), Duration::from_secs(36));
    }

    #[test]
    fn ids_sort_by_when_they_were_made() {
        let a = new_id("dlv_");
        std::thread::sleep(Duration::from_millis(2));
        let b = new_id("dlv_");
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 24);
        assert!(
            a[4..]
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn every_kind_has_its_wire_name() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
