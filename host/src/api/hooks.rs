//! Webhook endpoints and their deliveries (merchant keys).

use axum::extract::State;
use axum::http::StatusCode;

use super::auth::MerchantKey;
use super::extract::{Json, Path, Query};
use super::idempotency::ShownOnce;
use super::types::DeliveriesQuery;
use super::{Answer, Api, ApiError, created, now, ok, page_limit, shown_once};
use crate::webhooks::{EndpointList, EndpointRequest, WebhookError};

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        let detail = e.to_string();
        match e {
            WebhookError::Invalid { pointer, message } => ApiError::invalid(pointer, message),
            WebhookError::UnknownEndpoint(_) => ApiError::not_found("unknown-endpoint", detail),
            WebhookError::TooMany(_) => ApiError::new(
                StatusCode::CONFLICT,
                "too-many-endpoints",
                "Too many webhook endpoints",
                detail,
            ),
            WebhookError::Storage(s) => ApiError::internal(s),
        }
    }
}

/// `POST /v1/merchants/{merchant}/webhooks`: register an endpoint; the answer holds
/// its signing secret, shown this once.
pub async fn webhooks_create(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<EndpointRequest>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let e = api
        .webhooks()
        .create_endpoint(&merchant, &req, now())
        .await?;
    Ok(shown_once(ShownOnce::WebhookSecret, created(&e)))
}

/// `GET /v1/merchants/{merchant}/webhooks`.
pub async fn webhooks_list(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    Ok(ok(&EndpointList {
        endpoints: api.webhooks().endpoints(&merchant)?,
    }))
}

/// `GET /v1/merchants/{merchant}/webhooks/{endpoint}`.
pub async fn webhook_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, endpoint)): Path<(String, String)>,
) -> Answer {
    Ok(ok(&api.webhooks().endpoint(&merchant, &endpoint)?))
}

/// `DELETE /v1/merchants/{merchant}/webhooks/{endpoint}`: nothing more is sent to it.
pub async fn webhook_delete(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, endpoint)): Path<(String, String)>,
) -> Answer {
    Ok(ok(&api
        .webhooks()
        .delete_endpoint(&merchant, &endpoint)
        .await?))
}

/// `GET /v1/merchants/{merchant}/webhook-deliveries?endpoint=&limit=`: newest first,
/// with status, attempts and the last error.
pub async fn deliveries_list(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Answer {
    let limit = page_limit(q.limit, 100, 500)?;
    let w = api.webhooks().clone();
    let page =
        tokio::task::spawn_blocking(move || w.deliveries(&merchant, q.endpoint.as_deref(), limit))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(ok(&page))
}
