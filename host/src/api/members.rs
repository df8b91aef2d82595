//! Members: enrol, read (balance, tier, progress, perks), update attributes, opt out
//! and in, erase; the ledger page by page; tier history; manual adjustments; look-up
//! by card code. Merchant keys only.

use axum::extract::State;

use super::auth::MerchantKey;
use super::extract::{Json, Path, Query};
use super::types::{LedgerQuery, TierHistory};
use super::{Answer, Api, created, now, ok, personal};
use crate::engine::{Adjustment, EnrolRequest, ProfileUpdate};

/// `POST /v1/merchants/{merchant}/members`: enrol (runs `on-enroll`; with a
/// referral code, the referrer's `referral` event runs in the same transaction).
pub async fn members_enrol(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<EnrolRequest>,
) -> Answer {
    super::not_ahead(req.enrolled_at, "/enrolled_at")?;
    let m = merchant.clone();
    let view = api
        .engine()
        .submit(&merchant, move |e| e.enrol(&m, &req))
        .await?;
    Ok(personal(created(&view)))
}

/// `GET /v1/merchants/{merchant}/members/{member}`.
pub async fn member_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let view = api
        .engine()
        .read(&merchant, move |e| e.member(&m, &member, now()))
        .await?;
    Ok(ok(&view))
}

/// `GET /v1/merchants/{merchant}/cards/{code}`: the member holding a card code
/// (any case, dashes optional).
pub async fn card_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, code)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let view = api
        .engine()
        .read(&merchant, move |e| e.member_by_code(&m, &code, now()))
        .await?;
    Ok(ok(&view))
}

/// `PATCH /v1/merchants/{merchant}/members/{member}`: birthday and attributes;
/// fields left out stay, `null` removes.
pub async fn member_update(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
    Json(req): Json<ProfileUpdate>,
) -> Answer {
    let m = merchant.clone();
    let view = api
        .engine()
        .submit(&merchant, move |e| {
            e.update_profile(&m, &member, &req, now())
        })
        .await?;
    Ok(personal(ok(&view)))
}

/// `DELETE /v1/merchants/{merchant}/members/{member}`: erase personal data; the
/// ledger and its totals stay.
pub async fn member_erase(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let view = api
        .engine()
        .submit(&merchant, move |e| e.erase(&m, &member, now()))
        .await?;
    Ok(personal(ok(&view)))
}

async fn opt(api: Api, merchant: String, member: String, out: bool) -> Answer {
    let m = merchant.clone();
    let view = api
        .engine()
        .submit(&merchant, move |e| e.set_opted_out(&m, &member, out, now()))
        .await?;
    Ok(personal(ok(&view)))
}

/// `POST /v1/merchants/{merchant}/members/{member}/opt-out`: stop taking part.
pub async fn member_opt_out(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
) -> Answer {
    opt(api, merchant, member, true).await
}

/// `POST /v1/merchants/{merchant}/members/{member}/opt-in`: take part again.
pub async fn member_opt_in(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
) -> Answer {
    opt(api, merchant, member, false).await
}

/// `GET /v1/merchants/{merchant}/members/{member}/ledger?before=&limit=`: newest
/// first; pass `next_before` for the next page.
pub async fn member_ledger(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
    Query(q): Query<LedgerQuery>,
) -> Answer {
    let limit = super::page_limit(q.limit, 50, 500)?;
    let m = merchant.clone();
    let page = api
        .engine()
        .read(&merchant, move |e| e.ledger(&m, &member, q.before, limit))
        .await?;
    Ok(ok(&page))
}

/// `GET /v1/merchants/{merchant}/members/{member}/tiers`: tier changes.
pub async fn member_tiers(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let changes = api
        .engine()
        .read(&merchant, move |e| e.tier_history(&m, &member))
        .await?;
    Ok(ok(&TierHistory { changes }))
}

/// `POST /v1/merchants/{merchant}/members/{member}/adjustments`: a manual credit or
/// debit with a reason and its author; idempotent by its id.
pub async fn member_adjust(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member)): Path<(String, String)>,
    Json(req): Json<Adjustment>,
) -> Answer {
    let m = merchant.clone();
    let balance = api
        .engine()
        .submit(&merchant, move |e| e.adjust(&m, &member, &req, now()))
        .await?;
    Ok(ok(&balance))
}
