//! The middleware every request passes: a request id, a tracing span naming the
//! route, merchant and member, a time limit, one log line per request, and the
//! request metrics.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::Api;
use super::problem::{ApiError, ProblemKind};

/// The merchant and member named by a path, if any.
fn path_ids(path: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = path.trim_start_matches('/').split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("v1"), Some("merchants"), Some(m), Some("members"), member) => (Some(m), member),
        (Some("v1"), Some("merchants"), m, _, _) => (m, None),
        _ => (None, None),
    }
}

/// A request id for a request that brought none: 16 lower-case hex digits.
///
/// Ids are a counter passed through a bijective mix (splitmix64's finaliser) from a
/// random start drawn once, so no two requests of one process share an id, ids of
/// different runs do not line up, and a request costs no system call for randomness
/// (drawing 16 random bytes per request was about 1.6 % of the HTTP workers' CPU).
/// They correlate log lines; they are not secrets.
fn fresh_request_id() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
    });
    let mut z = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

/// Observe one request (see the module docs).
pub async fn observe(State(api): State<Api>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(fresh_request_id);
    let path = req.uri().path().to_string();
    let (merchant, member) = path_ids(&path);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        merchant = merchant.unwrap_or_default(),
        member = member.unwrap_or_default(),
        status = tracing::field::Empty,
    );
    let limit = api.limits().request_timeout;
    let answer = tokio::time::timeout(limit, next.run(req))
        .instrument(span.clone())
        .await;
    let mut response = answer.unwrap_or_else(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "The request took too long",
            format!(
                "no answer within {} s; the operation may still complete: retry with the same idempotency key or id",
                limit.as_secs()
            ),
        )
        .into_response()
    });
    let status = response.status();
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    let problem = response.extensions().get::<ProblemKind>().map(|p| p.0);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_us = elapsed.as_micros() as u64,
            problem = problem.unwrap_or_default(),
            "request"
        )
    });
    api.metrics()
        .observe_request(method.as_str(), &route, status.as_u16(), elapsed);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{fresh_request_id, path_ids};

    #[test]
    fn merchant_and_member_are_read_from_the_path() {
        assert_eq!(
            path_ids("/v1/merchants/acme/members/m1/events"),
            (Some("acme"), Some("m1"))
        );
        assert_eq!(path_ids("/v1/merchants/acme/keys"), (Some("acme"), None));
        assert_eq!(path_ids("/healthz"), (None, None));
    }

    #[test]
    fn fresh_request_ids_are_distinct_hex() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| fresh_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| {
            id.len() == 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
    }
}
