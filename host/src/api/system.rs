//! Liveness, readiness, metrics, the OpenAPI document, and the answers for unknown
//! routes and methods.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::types::Health;
use super::{Api, ApiError, ok, reply};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    ok(&Health {
        status: "ok".into(),
    })
}

/// `GET /readyz`: ready for traffic (not while shutting down).
pub async fn readyz(State(api): State<Api>) -> Response {
    if api.is_ready() {
        ok(&Health {
            status: "ok".into(),
        })
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &Health {
                status: "shutting down".into(),
            },
        )
    }
}

/// `GET /metrics`: Prometheus exposition.
pub async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.metrics().render(),
    )
        .into_response()
}

/// `GET /openapi.json`: the OpenAPI 3.1 document (as kept in the repository).
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

/// Any path no route matches.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(
        "no-route",
        format!("no route {}; see /openapi.json", uri.path()),
    )
}

/// A route that exists, with a method it does not have.
pub async fn wrong_method(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} does not take this method; see /openapi.json",
            uri.path()
        ),
    )
}
