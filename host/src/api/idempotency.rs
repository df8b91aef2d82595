//! `Idempotency-Key` on writes (POST, PUT, PATCH, DELETE), as the IETF draft
//! describes it: the first request with a key is processed and its answer stored
//! (durably, before it is sent); a retry with the same key and the same request gets
//! the stored answer again, with `Idempotent-Replayed: true`; the same key with a
//! different request is refused (422); a retry while the first is still running is
//! refused (409).
//!
//! An answer that carries a new key's token ([`ShownOnce`]) is sent but not kept: a
//! retry gets a 409 `key-shown-once` instead, so the token is never stored.
//!
//! An answer that carries a member's personal data ([`PersonalData`]) is not kept
//! either: a retry runs the request again, so no copy outlives the member's erasure.
//!
//! Only requests with a valid key are remembered: the key is checked before the body
//! is read or anything replayed, so a revoked key gets no stored answer and a caller
//! without a key stores nothing. Data files (bulk imports, history files) are not read
//! whole: the handler streams them to disk as usual, and the layer hashes them on the
//! way.
//!
//! Keys are scoped to the merchant of the path and to the caller's key (by digest of
//! the token), so nobody can replay or block another caller's key. Answers 401, 403,
//! 424 (the programme failed), 429 and 5xx are not stored: the cause can be fixed and
//! the request retried with the same key. Engine operations have their own ids as
//! well (event ids, adjustment ids, consumption ids); this layer makes every other
//! write safe to retry too.
//!
//! The answer is stored after the operation, in a second write: if the host dies
//! between the two, a retry runs the operation again, which the engine answers from
//! its own idempotency record for events, adjustments, consumptions, commits and
//! cancellations, and with a 409 for an enrolment that already happened. The handler
//! runs inside [`Engine::deferring`](crate::engine::Engine::deferring): its writes
//! are queued without waiting for the disk, and the answer is sent once the stored
//! answer, written after them, is durable, which makes them durable too. So the two
//! writes share one wait for a flush, usually the same one.

use crate::domain::hex;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Api;
use super::problem::{ApiError, PROBLEM_JSON};
use crate::engine::{Engine, Ticket};
use crate::storage::{Batch, Key, Space};

/// Idempotency keys whose first request is still running.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<Vec<u8>>>);

struct Claim<'a> {
    set: &'a InFlight,
    key: Vec<u8>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl InFlight {
    fn claim(&self, key: &[u8]) -> Option<Claim<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(key.to_vec()).then(|| Claim {
            set: self,
            key: key.to_vec(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    fingerprint: String,
    status: u16,
    content_type: Option<String>,
    body: String,
    at: i64,
    /// The answer carried personal data ([`PersonalData`]) and was not kept: a retry
    /// runs the request again.
    #[serde(default)]
    rerun: bool,
}

/// The header.
pub const HEADER: &str = "idempotency-key";

/// Marks an answer that carries a secret shown once (a new key's token, a webhook
/// endpoint's signing secret), which must not be kept: the layer sends it, but keeps
/// in its place a 409 `key-shown-once` for any retry with the same key, so a retry
/// neither creates a second one nor finds the secret in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownOnce {
    /// A key's token (keys otherwise exist only as digests).
    Key,
    /// A webhook endpoint's signing secret.
    WebhookSecret,
}

/// Largest stored answer.
const ANSWER_MAX: usize = 4 << 20;

/// Marks an answer that carries a member's personal data (a member's view: birthday,
/// attributes, codes). Such an answer is sent but not kept: the layer keeps only the
/// request's fingerprint, and a retry with the same key and request runs the request
/// again, which the engine answers from its own state (an enrolment that happened is
/// answered with the member, a profile update sets the same values), marked
/// `Idempotent-Replayed: true` like any retry's answer. So no copy of a member's
/// personal data outlives its erasure in a stored answer.
#[derive(Debug, Clone, Copy)]
pub struct PersonalData;

/// The request's fingerprint before its body: method, URI and content type.
fn head_hash(parts: &axum::http::request::Parts) -> Sha256 {
    let mut h = Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update([0]);
    h.update(parts.uri.to_string().as_bytes());
    h.update([0]);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        h.update(ct.as_bytes());
    }
    h.update([0]);
    h
}

/// A request body as the layer holds it: read whole (JSON and wasm bodies, at most a
/// few MiB) with the request's fingerprint, or still streaming (data files, up to
/// 1 GiB) with the hash of the request's head, to which the body is added as it is
/// read.
enum Incoming {
    Whole {
        bytes: axum::body::Bytes,
        fingerprint: String,
    },
    Streaming(Body, Sha256),
}

/// A body that adds what passes through it to a hash, and says when it has all passed.
struct Hashing {
    inner: Body,
    seen: std::sync::Arc<Mutex<(Sha256, bool)>>,
}

impl http_body::Body for Hashing {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    crate::lock(&self.seen).0.update(data);
                }
            }
            std::task::Poll::Ready(None) => crate::lock(&self.seen).1 = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Read the rest of `body` into `hash`, at most `limit` bytes.
async fn hash_all(mut hash: Sha256, body: Body, limit: usize) -> Result<String, Response> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::unreadable_body(e.to_string()).into_response())?;
        if let Some(data) = frame.data_ref() {
            read += data.len();
            if read > limit {
                return Err(ApiError::body_too_large(limit).into_response());
            }
            hash.update(data);
        }
    }
    Ok(hex(&hash.finalize()))
}

/// `response`, once what the handler wrote without waiting for the disk (`deferred`)
/// is durable.
async fn settled(api: &Api, deferred: Option<Ticket>, response: Response) -> Response {
    match deferred {
        Some(ticket) => match api.engine().wait(ticket).await {
            Ok(()) => response,
            Err(e) => ApiError::from(e).into_response(),
        },
        None => response,
    }
}

/// Run the request with the handler's writes deferred, and answer once they are
/// durable.
async fn run_durably(api: &Api, next: Next, req: Request) -> Response {
    let (response, deferred) = Engine::deferring(next.run(req)).await;
    settled(api, deferred, response).await
}

/// The middleware (see the module docs).
pub async fn layer(State(api): State<Api>, req: Request, next: Next) -> Response {
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(idem) = req.headers().get(HEADER).filter(|_| writes).cloned() else {
        return next.run(req).await;
    };
    let idem = match idem.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_string(),
        _ => {
            return ApiError::invalid(
                HEADER,
                "must be 1-255 visible ASCII characters (a UUID is a good choice)",
            )
            .into_response();
        }
    };
    let path_merchant = super::auth::path_merchant(req.uri().path()).map(Cow::into_owned);
    // Only a valid key's requests are remembered, and checked before anything is read
    // or replayed: a caller without one (no key, an unknown or revoked key, a key of
    // another merchant) goes to the handler, which refuses it, and nothing is stored.
    // The handler's extractors take the caller found here rather than look again.
    let (Some(token), Ok(caller)) = (
        req.headers().get(header::AUTHORIZATION).cloned(),
        api.keys().caller(req.headers(), path_merchant.as_deref()),
    ) else {
        return next.run(req).await;
    };
    let mut req = req;
    req.extensions_mut().insert(caller);
    // Merchant creation and the like: the operator's own scope (not a valid merchant id).
    let merchant = path_merchant.unwrap_or_else(|| "~operator".to_string());
    let (parts, body) = req.into_parts();
    let mut hash = head_hash(&parts);
    let incoming = if super::extract::data_format(&parts.headers).is_some() {
        Incoming::Streaming(body, hash)
    } else {
        let limit = api.limits().upload_body.max(api.limits().json_body);
        match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => {
                hash.update(&bytes);
                let fingerprint = hex(&hash.finalize());
                Incoming::Whole { bytes, fingerprint }
            }
            Err(_) => return ApiError::body_too_large(limit).into_response(),
        }
    };
    let scope = hex(&Sha256::digest(token.as_bytes())[..16]);
    let record_key = Key::merchant(&merchant, &[b"http", scope.as_bytes(), idem.as_bytes()]);
    let Some(_claim) = api.in_flight().claim(record_key.as_bytes()) else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-use",
            "A request with this idempotency key is still running",
            "retry once the first request with this key has been answered",
        )
        .into_response();
    };
    // A point read, on this worker as the key check's is: the pending writes'
    // overlay or sled's cache answers it in microseconds, less than handing it to
    // another thread and back would cost. While the committer applies a round it
    // waits for sled's process-wide lock (1-3 ms, see BENCHMARKS.md, "Where the
    // engine waits under load"); measured with that, this is still faster than the
    // hop (session 9: 5,173-5,198 against 3,975-4,537 requests/s).
    let stored = match api.storage().get(Space::Idempotency, &record_key) {
        Ok(v) => v,
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    };
    if let Some(bytes) = stored {
        let Ok(s) = serde_json::from_slice::<Stored>(&bytes) else {
            return ApiError::internal("corrupt idempotency record").into_response();
        };
        let (fingerprint, whole) = match incoming {
            Incoming::Whole { bytes, fingerprint } => (fingerprint, Some(bytes)),
            Incoming::Streaming(body, hash) => {
                match hash_all(hash, body, api.limits().data_body).await {
                    Ok(f) => (f, None),
                    Err(answer) => return answer,
                }
            }
        };
        if s.fingerprint != fingerprint {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The idempotency key was used for another request",
                "this idempotency key was used before with a different method, path or body",
            )
            .into_response();
        }
        return match (s.rerun, whole) {
            (true, Some(b)) => {
                let mut answer =
                    run_durably(&api, next, Request::from_parts(parts, Body::from(b))).await;
                answer
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                answer
            }
            _ => replay(s),
        };
    }
    let (body, seen) = match incoming {
        Incoming::Whole { bytes, fingerprint } => (Body::from(bytes), Err(fingerprint)),
        Incoming::Streaming(body, hash) => {
            let seen = std::sync::Arc::new(Mutex::new((hash, false)));
            let body = Body::new(Hashing {
                inner: body,
                seen: seen.clone(),
            });
            (body, Ok(seen))
        }
    };
    let streamed = seen.is_ok();
    let (response, deferred) = Engine::deferring(next.run(Request::from_parts(parts, body))).await;
    // What the handler wrote without waiting for the disk: durable before any answer
    // goes out, by the stored answer's own wait or else by this one.
    let settle = async |response: Response| settled(&api, deferred, response).await;
    // A streamed body's fingerprint is known once the handler has read all of it; a
    // handler that refused it unread changed nothing, and its answer is not kept.
    let fingerprint = match seen {
        Err(whole) => Some(whole),
        Ok(seen) => {
            let (hash, done) = std::mem::take(&mut *crate::lock(&seen));
            done.then(|| hex(&hash.finalize()))
        }
    };
    let Some(fingerprint) = fingerprint else {
        return settle(response).await;
    };
    let status = response.status();
    let keep = !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS
        // The programme failed (a deadline under load, a trap the merchant may fix by
        // rolling back): nothing was written, and a retry should run it again.
        || status == StatusCode::FAILED_DEPENDENCY);
    if !keep {
        return settle(response).await;
    }
    let (mut head, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, ANSWER_MAX).await {
        Ok(body) => String::from_utf8(body.to_vec()).map_err(|_| "answer is not text"),
        Err(_) => Err("answer too large to remember"),
    };
    let text = match text {
        Ok(text) => text,
        Err(why) => return settle(ApiError::internal(why).into_response()).await,
    };
    // What a retry gets: this answer; in place of a new key's token a 409 saying so;
    // in place of a member's personal data, the request run again.
    let rerun = !streamed && head.extensions.get::<PersonalData>().is_some();
    let (kept_status, kept_type, kept_body) = if rerun {
        (status, None, String::new())
    } else if let Some(secret) = head.extensions.get::<ShownOnce>() {
        let problem = match secret {
            ShownOnce::Key => ApiError::new(
                StatusCode::CONFLICT,
                "key-shown-once",
                "The key this request created is shown only once",
                "this request was answered before with a new key, whose token is not kept; \
                 if it was lost, issue another key and revoke the lost one (its id is in the \
                 list of keys)",
            ),
            ShownOnce::WebhookSecret => ApiError::new(
                StatusCode::CONFLICT,
                "key-shown-once",
                "The signing secret this request created is shown only once",
                "this request was answered before with a new webhook endpoint, whose signing \
                 secret is not kept; if it was lost, delete the endpoint (its id is in the \
                 list of webhooks) and register it again",
            ),
        };
        (
            problem.status(),
            Some(PROBLEM_JSON.to_string()),
            serde_json::to_string(&problem.problem()).unwrap_or_default(),
        )
    } else {
        let content_type = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, content_type, text.clone())
    };
    let record = Stored {
        fingerprint,
        status: kept_status.as_u16(),
        content_type: kept_type,
        body: kept_body,
        at: super::now(),
        rerun,
    };
    let mut batch = Batch::new();
    batch.put(
        Space::Idempotency,
        record_key,
        serde_json::to_vec(&record).unwrap_or_default(),
    );
    // Issued after every ticket the handler left unwaited, so durable after them.
    if let Err(e) = api.engine().write(batch).await {
        return ApiError::from(e).into_response();
    }
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(text))
}

fn replay(s: Stored) -> Response {
    let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    let mut response = (status, s.body).into_response();
    if let Some(ct) = s.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
