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
//! Keys are scoped to the merchant of the path and to the caller's key (by digest of
//! the token), so nobody can replay or block another caller's key. Answers 401, 403,
//! 429 and 5xx are not stored: the caller can fix the cause and retry with the same
//! key. Engine operations have their own ids as well (event ids, adjustment ids,
//! consumption ids); this layer makes every other write safe to retry too.
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
use crate::engine::Engine;
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
}

/// The header.
pub const HEADER: &str = "idempotency-key";

/// Marks an answer that carries a secret shown once (a new key's token), which must
/// not be kept: the layer sends it, but keeps in its place a 409 `key-shown-once`
/// for any retry with the same key, so a retry neither creates a second key nor
/// finds the token in storage, where keys otherwise exist only as digests.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce;

/// Largest stored answer.
const ANSWER_MAX: usize = 4 << 20;

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
    let Some(token) = req.headers().get(header::AUTHORIZATION).cloned() else {
        // Unauthenticated: the handler refuses it; nothing to remember.
        return next.run(req).await;
    };
    let merchant = {
        let path = req.uri().path();
        let mut parts = path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some("merchants"), Some(m)) if !m.is_empty() => m.to_string(),
            // Merchant creation: the operator's own scope (not a valid merchant id).
            _ => "~operator".to_string(),
        }
    };
    let (parts, body) = req.into_parts();
    let limit = api.limits().upload_body.max(api.limits().json_body);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The body is too large",
                format!("the body is over the limit of {limit} bytes"),
            )
            .into_response();
        }
    };
    let scope = hex(&Sha256::digest(token.as_bytes())[..16]);
    let record_key = Key::merchant(&merchant, &[b"http", scope.as_bytes(), idem.as_bytes()]);
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(parts.method.as_str().as_bytes());
        h.update([0]);
        h.update(parts.uri.to_string().as_bytes());
        h.update([0]);
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            h.update(ct.as_bytes());
        }
        h.update([0]);
        h.update(&bytes);
        hex(&h.finalize())
    };
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
        if s.fingerprint != fingerprint {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The idempotency key was used for another request",
                "this idempotency key was used before with a different method, path or body",
            )
            .into_response();
        }
        return replay(s);
    }
    let (response, deferred) =
        Engine::deferring(next.run(Request::from_parts(parts, Body::from(bytes)))).await;
    // What the handler wrote without waiting for the disk: durable before any answer
    // goes out, by the stored answer's own wait or else by this one.
    let settle = async |response: Response| match deferred {
        Some(ticket) => match api.engine().wait(ticket).await {
            Ok(()) => response,
            Err(e) => ApiError::from(e).into_response(),
        },
        None => response,
    };
    let status = response.status();
    let keep = !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS);
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
    // What a retry gets: this answer, or in place of a new key's token a 409 saying so.
    let (kept_status, kept_type, kept_body) = if head.extensions.get::<ShownOnce>().is_some() {
        let problem = ApiError::new(
            StatusCode::CONFLICT,
            "key-shown-once",
            "The key this request created is shown only once",
            "this request was answered before with a new key, whose token is not kept; \
             if it was lost, issue another key and revoke the lost one (its id is in the \
             list of keys)",
        );
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
