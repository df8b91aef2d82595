//! The API's one error type and its RFC 9457 `application/problem+json` body.
//!
//! Every failure a handler can meet converts into an [`ApiError`] with `?`; its
//! [`IntoResponse`] picks the status and writes a problem document whose `type` is a
//! stable URI (listed in `docs/problems.md`). A 500 hides what went wrong from the
//! caller and logs it instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::EngineError;
use crate::pool::PoolError;
use crate::registry::RegistryError;
use crate::sandbox::LoadError;

/// Where the problem types are documented; `type` is this plus `#` and the slug.
pub const PROBLEM_BASE: &str =
    "https://github.com/loyalty-engine/loyalty/blob/main/docs/problems.md";

/// One failing field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// JSON pointer of the field in the request body ("" for the body itself), or
    /// the name of a query parameter or header.
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// For validation problems: each failing field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For plugin problems: the hook that refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// For plugin problems: the plugin version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_version: Option<String>,
    /// A machine-readable cause: the plugin's own error code, the kind of plugin
    /// failure (`out_of_fuel`, `trap`, ...), or the kind of upload rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// An error answered as problem+json. Boxed: handlers return it often and it should
/// cost one pointer on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError {
    inner: Box<Detail>,
}

#[derive(Debug, Clone)]
struct Detail {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    hook: Option<String>,
    plugin_version: Option<String>,
    code: Option<String>,
    retry_after: Option<u64>,
    /// For 500s: the cause, logged and never shown.
    hidden: Option<String>,
}

impl ApiError {
    /// A problem of kind `slug`.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            inner: Box::new(Detail {
                status,
                slug,
                title,
                detail: detail.into(),
                errors: Vec::new(),
                hook: None,
                plugin_version: None,
                code: None,
                retry_after: None,
                hidden: None,
            }),
        }
    }

    /// A request that fails validation: each field and what is wrong with it.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", pointer_label(&one.pointer), one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request is invalid",
            detail,
        );
        e.inner.errors = errors;
        e
    }

    /// One invalid field.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }])
    }

    /// Something that is not there.
    pub fn not_found(slug: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, slug, "Not found", detail)
    }

    /// A body over its limit of `limit` bytes.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The body is too large",
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    /// A body the transport failed to deliver.
    pub fn unreadable_body(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The body could not be read",
            detail,
        )
    }

    /// The caller is not authenticated.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    /// The caller's key does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed with this key",
            detail,
        )
    }

    /// A failure of the host itself: the caller sees only that it happened.
    pub fn internal(cause: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the failure is logged. Nothing was changed unless a retry with the same idempotency key says otherwise",
        );
        e.inner.hidden = Some(cause.into());
        e
    }

    /// With a `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> ApiError {
        self.inner.code = Some(code.into());
        self
    }

    /// Pointers under `prefix` made relative to it: the engine names fields as in
    /// its own inputs (`/event/score`), while the HTTP body is the event itself.
    pub fn rebase(mut self, prefix: &str) -> ApiError {
        let mut changed = false;
        for e in &mut self.inner.errors {
            if let Some(rest) = e.pointer.strip_prefix(prefix)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                e.pointer = rest.to_string();
                changed = true;
            }
        }
        if changed && let [one] = self.inner.errors.as_slice() {
            self.inner.detail = format!("{}: {}", pointer_label(&one.pointer), one.message);
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The problem's slug (the `type` URI's fragment).
    pub fn slug(&self) -> &'static str {
        self.inner.slug
    }

    /// The failing fields.
    pub fn errors(&self) -> &[FieldError] {
        &self.inner.errors
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}#{}", self.inner.slug),
            title: self.inner.title.to_string(),
            status: self.inner.status.as_u16(),
            detail: self.inner.detail.clone(),
            errors: self.inner.errors.clone(),
            hook: self.inner.hook.clone(),
            plugin_version: self.inner.plugin_version.clone(),
            code: self.inner.code.clone(),
        }
    }
}

fn pointer_label(pointer: &str) -> &str {
    if pointer.is_empty() { "body" } else { pointer }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.inner.status.as_u16(),
            self.inner.slug,
            self.inner.detail
        )
    }
}

/// The media type of a problem (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.inner.hidden {
            tracing::error!(%cause, "internal error");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.inner.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.inner.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"loyalty\""),
            );
        }
        if let Some(s) = self.inner.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // Handlers and middleware read the kind back for metrics and logs.
        response
            .extensions_mut()
            .insert(ProblemKind(self.inner.slug));
        response
    }
}

/// The kind of problem a response carries (a response extension).
#[derive(Debug, Clone, Copy)]
pub struct ProblemKind(pub &'static str);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use StatusCode as S;
        let detail = e.to_string();
        match e {
            EngineError::Invalid { pointer, message } => ApiError::invalid(pointer, message),
            EngineError::UnknownMerchant(_) => ApiError::not_found("unknown-merchant", detail),
            EngineError::UnknownMember(_) => ApiError::not_found("unknown-member", detail),
            EngineError::UnknownCode { .. } => ApiError::not_found("unknown-code", detail),
            EngineError::UnknownRedemption(_) => ApiError::not_found("unknown-redemption", detail),
            EngineError::NoSuchPerk(_) => ApiError::not_found("no-such-perk", detail),
            EngineError::MerchantExists(_) => {
                ApiError::new(S::CONFLICT, "merchant-exists", "Merchant exists", detail)
            }
            EngineError::MemberExists(_) => {
                ApiError::new(S::CONFLICT, "member-exists", "Member exists", detail)
            }
            EngineError::NoProgramme(_) => ApiError::new(
                S::CONFLICT,
                "no-programme",
                "The merchant has no active programme",
                detail,
            ),
            EngineError::MemberInactive { .. } => ApiError::new(
                S::CONFLICT,
                "member-inactive",
                "The member cannot take part",
                detail,
            ),
            EngineError::Conflict { .. } => ApiError::new(
                S::CONFLICT,
                "id-reused",
                "The id was used before with a different request",
                detail,
            ),
            EngineError::Refund { .. } => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "refund-mismatch",
                "The refund does not fit its purchase",
                detail,
            ),
            EngineError::RedemptionState { .. } => ApiError::new(
                S::CONFLICT,
                "redemption-state",
                "The redemption is not in a state that allows this",
                detail,
            ),
            EngineError::QuoteExpired(_) => {
                ApiError::new(S::CONFLICT, "quote-expired", "The quote expired", detail)
            }
            EngineError::InsufficientPoints { .. } => ApiError::new(
                S::CONFLICT,
                "insufficient-points",
                "Not enough points",
                detail,
            ),
            EngineError::PluginRefused { hook, error } => {
                let mut e = ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "plugin-refused",
                    "The programme refused the request",
                    detail,
                );
                e.inner.hook = Some(hook.name().to_string());
                e.inner.code = Some(error.code);
                e
            }
            EngineError::Plugin(h) => {
                // The merchant's programme failed on this input: 424 (a dependency
                // of the request failed), not a 5xx of the host's.
                let mut e = ApiError::new(
                    S::FAILED_DEPENDENCY,
                    "plugin-failed",
                    "The programme failed",
                    detail,
                );
                e.inner.hook = Some(h.hook.name().to_string());
                e.inner.plugin_version = Some(h.plugin.clone());
                e.inner.code = Some(h.failure.kind().to_string());
                e
            }
            EngineError::Busy(PoolError::Busy { .. }) => {
                let mut e = ApiError::new(
                    S::TOO_MANY_REQUESTS,
                    "busy",
                    "The merchant's programme is at capacity",
                    detail,
                );
                e.inner.retry_after = Some(1);
                e
            }
            EngineError::Busy(p) => ApiError::internal(p.to_string()),
            EngineError::Storage(s) => ApiError::internal(s),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        use StatusCode as S;
        let detail = e.to_string();
        match e {
            RegistryError::InvalidMerchant(_) => ApiError::invalid("merchant", detail),
            RegistryError::Invalid(LoadError::Engine { reason }) => ApiError::internal(reason),
            RegistryError::Invalid(load) => {
                let status = match load {
                    LoadError::TooLarge { .. } => S::PAYLOAD_TOO_LARGE,
                    _ => S::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, "plugin-rejected", "The plugin was rejected", detail)
                    .with_code(load.kind())
            }
            RegistryError::UnknownVersion { .. } => ApiError::not_found("unknown-version", detail),
            RegistryError::NothingToRollBack(_) => ApiError::new(
                S::CONFLICT,
                "nothing-to-roll-back",
                "There is no earlier version to roll back to",
                detail,
            ),
            RegistryError::Storage(s) => ApiError::internal(s.to_string()),
        }
    }
}
