//! What partner apps do: post events (purchase, refund, custom), read a partner's
//! offers, quote, commit and cancel redemptions, consume perks. Partner keys may post
//! their own partner's events, read their own offers, and quote and commit their own
//! redemptions; merchant keys may do all of it.

use axum::extract::State;
use axum::http::StatusCode;

use super::auth::{MerchantKey, PartnerScope};
use super::extract::{Json, Path, Query};
use super::types::{Consumption, OfferList, OffersQuery, Redemption};
use super::{Answer, Api, ApiError, created, now, ok};
use crate::domain::{Event, RedemptionRequest};
use crate::engine::QuoteAnswer;

/// A partner key's own partner in a field that names one: filled in when left out,
/// refused when it names another.
fn own_partner(
    scope: &Option<String>,
    field: &mut Option<String>,
    pointer: &str,
) -> Result<(), ApiError> {
    if let Some(partner) = scope {
        match field {
            None => *field = Some(partner.to_string()),
            Some(p) if p == partner => {}
            Some(p) => {
                return Err(ApiError::forbidden(format!(
                    "a key of partner {partner} cannot act for partner {p} ({pointer})"
                )));
            }
        }
    }
    Ok(())
}

/// `POST /v1/merchants/{merchant}/members/{member}/events`: runs `on-event`,
/// `evaluate-tier` and `perks` and writes the outcome in one transaction;
/// idempotent by the event's id.
pub async fn events_post(
    State(api): State<Api>,
    PartnerScope(partner): PartnerScope,
    Path((merchant, member)): Path<(String, String)>,
    Json(mut event): Json<Event>,
) -> Answer {
    own_partner(&partner, &mut event.partner, "/partner")?;
    super::not_ahead(event.occurred_at, "/occurred_at")?;
    let m = merchant.clone();
    let result = api
        .engine()
        .submit(&merchant, move |e| e.post_event(&m, &member, &event))
        .await
        .map_err(|e| ApiError::from(e).rebase("/event"))?;
    Ok(ok(&result))
}

/// `GET /v1/merchants/{merchant}/events/{event}`: a processed event's outcome
/// (reconciliation).
pub async fn event_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, event)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let id = event.clone();
    let record = api
        .engine()
        .read(&merchant, move |e| e.event_record(&m, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown-event", format!("no event {event:?}")))?;
    Ok(ok(&record.result))
}

/// `GET /v1/merchants/{merchant}/members/{member}/offers?partner=`: the partner's
/// offers for the member, as the programme computes them now.
pub async fn offers_list(
    State(api): State<Api>,
    PartnerScope(partner): PartnerScope,
    Path((merchant, member)): Path<(String, String)>,
    Query(mut q): Query<OffersQuery>,
) -> Answer {
    own_partner(&partner, &mut q.partner, "partner")?;
    let partner = q
        .partner
        .ok_or_else(|| ApiError::invalid("partner", "name the partner whose offers to list"))?;
    let (m, p) = (merchant.clone(), partner.clone());
    let offers = api
        .engine()
        .read(&merchant, move |e| e.offers(&m, &member, &p, now()))
        .await?;
    Ok(ok(&OfferList { partner, offers }))
}

/// `POST /v1/merchants/{merchant}/members/{member}/redemptions`: ask the programme
/// to price a redemption (points only, or points plus cash). An accepted quote is
/// stored and can be committed until `expires_at`; a refusal is a 422 with the
/// programme's code and reason.
pub async fn redemptions_quote(
    State(api): State<Api>,
    PartnerScope(partner): PartnerScope,
    Path((merchant, member)): Path<(String, String)>,
    Json(mut req): Json<RedemptionRequest>,
) -> Answer {
    own_partner(&partner, &mut req.partner, "/partner")?;
    let m = merchant.clone();
    let ttl = api.limits().quote_ttl;
    let answer = api
        .engine()
        .submit(&merchant, move |e| e.quote(&m, &member, &req, now(), ttl))
        .await
        .map_err(|e| ApiError::from(e).rebase("/request"))?;
    match answer {
        QuoteAnswer::Quoted(record) => Ok(created(&Redemption::from(*record))),
        QuoteAnswer::Rejected(r) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "redemption-rejected",
            "The programme refused the redemption",
            r.reason,
        )
        .with_code(r.code)),
    }
}

/// The redemption, if the caller may act on it: a partner key only on its own.
async fn visible(
    api: &Api,
    scope: &Option<String>,
    merchant: &str,
    id: &str,
) -> Result<(), ApiError> {
    if let Some(partner) = scope {
        let (m, i) = (merchant.to_string(), id.to_string());
        let r = api
            .engine()
            .read(merchant, move |e| e.redemption(&m, &i))
            .await?;
        if r.partner.as_deref() != Some(partner) {
            // Not "forbidden": another partner's redemption is none of its business.
            return Err(ApiError::not_found(
                "unknown-redemption",
                format!("no redemption {id:?}"),
            ));
        }
    }
    Ok(())
}

/// `GET /v1/merchants/{merchant}/redemptions/{redemption}` (merchant key).
pub async fn redemption_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, id)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let r = api
        .engine()
        .read(&merchant, move |e| e.redemption(&m, &id))
        .await?;
    Ok(ok(&Redemption::from(r)))
}

/// `POST /v1/merchants/{merchant}/redemptions/{redemption}/commit`: deduct the
/// points; idempotent.
pub async fn redemption_commit(
    State(api): State<Api>,
    PartnerScope(partner): PartnerScope,
    Path((merchant, id)): Path<(String, String)>,
) -> Answer {
    visible(&api, &partner, &merchant, &id).await?;
    let m = merchant.clone();
    let r = api
        .engine()
        .submit(&merchant, move |e| e.commit_redemption(&m, &id, now()))
        .await?;
    Ok(ok(&Redemption::from(r)))
}

/// `POST /v1/merchants/{merchant}/redemptions/{redemption}/cancel` (merchant key):
/// return a committed redemption's points, or drop a quote; idempotent.
pub async fn redemption_cancel(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, id)): Path<(String, String)>,
) -> Answer {
    let m = merchant.clone();
    let r = api
        .engine()
        .submit(&merchant, move |e| e.cancel_redemption(&m, &id, now()))
        .await?;
    Ok(ok(&Redemption::from(r)))
}

/// `POST /v1/merchants/{merchant}/members/{member}/perks/{perk}/consume`: use one of
/// a perk's uses; idempotent by the consumption's id.
pub async fn perk_consume(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, member, perk)): Path<(String, String, String)>,
    Json(req): Json<Consumption>,
) -> Answer {
    let m = merchant.clone();
    let consumed = api
        .engine()
        .submit(&merchant, move |e| {
            e.consume_perk(&m, &member, &perk, req.grant.as_deref(), &req.id, now())
        })
        .await?;
    Ok(ok(&consumed))
}
