//! A merchant's programme plugins: upload (raw wasm), list, activate, roll back.

use axum::extract::State;

use super::auth::MerchantKey;
use super::extract::{Path, Wasm};
use super::types::PluginList;
use super::{Answer, Api, ApiError, created, now, ok};
use crate::engine::check_config;
use crate::registry::VersionInfo;

/// Run a registry call on a blocking thread (uploads compile; everything touches
/// storage).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `POST /v1/merchants/{merchant}/plugins`: upload a component or a core module
/// (`Content-Type: application/wasm`). Creates an immutable version named by the
/// SHA-256 of the bytes (uploading the same bytes again answers 200 with it); does
/// not activate it.
pub async fn plugins_upload(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Wasm(bytes): Wasm,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let registry = api.registry().clone();
    let m = merchant.clone();
    let (info, new) = blocking(move || Ok(registry.upload_new(&m, &bytes, now())?)).await?;
    Ok(if new { created(&info) } else { ok(&info) })
}

/// `GET /v1/merchants/{merchant}/plugins`: versions, the active one, activations.
pub async fn plugins_list(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    let registry = api.registry().clone();
    let list = blocking(move || {
        Ok(PluginList {
            active: registry.active(&merchant).map(|a| a.version.clone()),
            versions: registry.versions(&merchant)?,
            history: registry.history(&merchant)?,
        })
    })
    .await?;
    Ok(ok(&list))
}

/// `GET /v1/merchants/{merchant}/plugins/{version}`.
pub async fn plugin_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, version)): Path<(String, String)>,
) -> Answer {
    let info = known_version(&api, &merchant, &version).await?;
    Ok(ok(&info))
}

async fn known_version(api: &Api, merchant: &str, version: &str) -> Result<VersionInfo, ApiError> {
    let registry = api.registry().clone();
    let (m, v) = (merchant.to_string(), version.to_string());
    blocking(move || {
        registry.version(&m, &v)?.ok_or_else(|| {
            ApiError::not_found(
                "unknown-version",
                format!("merchant {m} has no plugin version {v}"),
            )
        })
    })
    .await
}

/// The merchant's config must suit the version about to run it.
fn config_fits(api: &Api, merchant: &str, info: &VersionInfo) -> Result<(), ApiError> {
    let settings = api.engine().merchant(merchant)?;
    if let Some(config) = &settings.config {
        check_config(&info.program.config_schema, config)
            .map_err(|e| ApiError::from(e).with_code("config-does-not-fit-version"))?;
    }
    Ok(())
}

/// `POST /v1/merchants/{merchant}/plugins/{version}/activate`: make it the running
/// programme. Calls in flight finish on the version they started with. Refused when
/// the merchant's config does not satisfy the version's config schema.
pub async fn plugin_activate(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, version)): Path<(String, String)>,
) -> Answer {
    let info = blocking(move || {
        api.registry()
            .activate_with(&merchant, &version, now(), |info| {
                config_fits(&api, &merchant, info)
            })
    })
    .await?;
    Ok(ok(&info))
}

/// `POST /v1/merchants/{merchant}/plugins/rollback`: activate the version that was
/// active before the current one. Refused, like an activation, when the merchant's
/// config does not satisfy that version's config schema.
pub async fn plugins_rollback(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    let info = blocking(move || {
        api.registry()
            .rollback_with(&merchant, now(), |info| config_fits(&api, &merchant, info))
    })
    .await?;
    Ok(ok(&info))
}
