//! Merchants (created by the operator), their programme config and budget, their
//! keys and their partners.

use axum::extract::State;

use super::auth::{MerchantKey, OperatorKey, StaffKey};
use super::extract::{Json, Path};
use super::idempotency::ShownOnce;
use super::types::{
    BudgetSettings, BudgetView, ConfigUpdate, ConfigView, CreateMerchant, KeyKind, KeyList,
    KeyRequest, Merchant, MerchantCreated, MerchantList, MerchantUpdate, Partner, PartnerList,
    PartnerRequest,
};
use super::{Answer, Api, ApiError, created, now, ok, shown_once};
use crate::engine::MerchantSettings;

fn view(api: &Api, s: &MerchantSettings) -> Merchant {
    Merchant::of(s, api.registry().active(&s.id).map(|a| a.version.clone()))
}

/// `POST /v1/merchants` (operator): create a merchant and its first merchant key.
pub async fn merchants_create(
    State(api): State<Api>,
    _: OperatorKey,
    Json(req): Json<CreateMerchant>,
) -> Answer {
    let at = now();
    let settings = MerchantSettings {
        id: req.id.clone(),
        name: req.name,
        currency: req.currency,
        created_at: at,
        config: req.config,
        point_value: req.point_value,
        budget: req.budget,
    };
    let engine = api.engine().clone();
    let merchant = engine
        .submit(&req.id, move |e| e.create_merchant(settings))
        .await?;
    let key = api
        .keys()
        .issue(
            api.engine(),
            &merchant.id,
            KeyKind::Merchant,
            None,
            Some("first key".into()),
            at,
        )
        .await?;
    Ok(shown_once(
        ShownOnce::Key,
        created(&MerchantCreated {
            merchant: view(&api, &merchant),
            key,
        }),
    ))
}

/// `GET /v1/merchants` (operator): every merchant.
pub async fn merchants_list(State(api): State<Api>, _: OperatorKey) -> Answer {
    let engine = api.engine().clone();
    let merchants = tokio::task::spawn_blocking(move || {
        engine
            .merchant_ids()?
            .iter()
            .map(|id| engine.merchant(id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(ok(&MerchantList {
        merchants: merchants.iter().map(|s| view(&api, s)).collect(),
    }))
}

/// `GET /v1/merchants/{merchant}` (operator or merchant).
pub async fn merchant_get(
    State(api): State<Api>,
    _: StaffKey,
    Path(merchant): Path<String>,
) -> Answer {
    let s = api.engine().merchant(&merchant)?;
    Ok(ok(&view(&api, &s)))
}

/// `PATCH /v1/merchants/{merchant}`: rename.
pub async fn merchant_update(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<MerchantUpdate>,
) -> Answer {
    let m = merchant.clone();
    let s = api
        .engine()
        .submit(&merchant, move |e| {
            e.update_merchant(&m, move |s| s.name = req.name)
        })
        .await?;
    Ok(ok(&view(&api, &s)))
}

fn config_view(api: &Api, s: &MerchantSettings) -> ConfigView {
    let active = api.registry().active(&s.id);
    let info = active.as_ref().map(|a| a.plugin.info());
    ConfigView {
        config: s
            .config
            .clone()
            .or_else(|| info.map(|i| i.default_config.clone()))
            .unwrap_or(serde_json::Value::Null),
        custom: s.config.is_some(),
        version: active.as_ref().map(|a| a.version.clone()),
        schema: info.map_or(serde_json::Value::Null, |i| i.config_schema.clone()),
    }
}

/// `GET /v1/merchants/{merchant}/config`.
pub async fn config_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    let s = api.engine().merchant(&merchant)?;
    Ok(ok(&config_view(&api, &s)))
}

/// `PUT /v1/merchants/{merchant}/config`: checked against the active programme's
/// config schema, with no activation meanwhile (one that had checked the old config
/// against its version could otherwise activate it beside the new config).
pub async fn config_put(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<ConfigUpdate>,
) -> Answer {
    let m = merchant.clone();
    let registry = api.registry().clone();
    let s = api
        .engine()
        .submit(&merchant, move |e| {
            registry.holding_activations(|| e.update_merchant(&m, move |s| s.config = req.config))
        })
        .await?;
    Ok(ok(&config_view(&api, &s)))
}

fn budget_view(api: &Api, s: &MerchantSettings) -> Result<BudgetView, ApiError> {
    Ok(BudgetView {
        point_value: s.point_value.clone(),
        budget: s.budget.clone(),
        usage: api.engine().budget_usage(&s.id, now())?,
    })
}

/// `GET /v1/merchants/{merchant}/budget`: settings and use this period.
pub async fn budget_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    let s = api.engine().merchant(&merchant)?;
    Ok(ok(&budget_view(&api, &s)?))
}

/// `PUT /v1/merchants/{merchant}/budget`: what points are worth and the budget.
pub async fn budget_put(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<BudgetSettings>,
) -> Answer {
    let m = merchant.clone();
    let s = api
        .engine()
        .submit(&merchant, move |e| {
            e.update_merchant(&m, move |s| {
                s.point_value = req.point_value;
                s.budget = req.budget;
            })
        })
        .await?;
    Ok(ok(&budget_view(&api, &s)?))
}

/// `POST /v1/merchants/{merchant}/keys` (operator or merchant): issue a key; the
/// token is in this answer only.
pub async fn keys_create(
    State(api): State<Api>,
    _: StaffKey,
    Path(merchant): Path<String>,
    Json(req): Json<KeyRequest>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let partner = match (req.kind, req.partner) {
        (KeyKind::Merchant, None) => None,
        (KeyKind::Merchant, Some(_)) => {
            return Err(ApiError::invalid(
                "/partner",
                "a merchant key has no partner",
            ));
        }
        (KeyKind::Partner, None) => {
            return Err(ApiError::invalid(
                "/partner",
                "a partner key needs a partner",
            ));
        }
        (KeyKind::Partner, Some(p)) => {
            api.keys().partner(&merchant, &p)?;
            Some(p)
        }
    };
    let key = api
        .keys()
        .issue(api.engine(), &merchant, req.kind, partner, req.label, now())
        .await?;
    Ok(shown_once(ShownOnce::Key, created(&key)))
}

/// `GET /v1/merchants/{merchant}/keys` (operator or merchant).
pub async fn keys_list(
    State(api): State<Api>,
    _: StaffKey,
    Path(merchant): Path<String>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    Ok(ok(&KeyList {
        keys: api.keys().list(&merchant)?,
    }))
}

/// `DELETE /v1/merchants/{merchant}/keys/{key}` (operator or merchant): revoke.
pub async fn key_revoke(
    State(api): State<Api>,
    _: StaffKey,
    Path((merchant, key)): Path<(String, String)>,
) -> Answer {
    let view = api
        .keys()
        .revoke(api.engine(), &merchant, &key, now())
        .await?;
    Ok(ok(&view))
}

/// `POST /v1/merchants/{merchant}/partners`: register a partner.
pub async fn partners_create(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<PartnerRequest>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let partner = Partner {
        id: req.id,
        name: req.name,
        created_at: now(),
    };
    let (p, new) = api
        .keys()
        .add_partner(api.engine(), &merchant, partner)
        .await?;
    Ok(if new { created(&p) } else { ok(&p) })
}

/// `GET /v1/merchants/{merchant}/partners`.
pub async fn partners_list(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    Ok(ok(&PartnerList {
        partners: api.keys().partners(&merchant)?,
    }))
}

/// `GET /v1/merchants/{merchant}/partners/{partner}`.
pub async fn partner_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, partner)): Path<(String, String)>,
) -> Answer {
    Ok(ok(&api.keys().partner(&merchant, &partner)?))
}
