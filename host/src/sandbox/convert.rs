//! Conversions between the host's domain types and the contract's generated types.
//!
//! Inputs are checked on the way in (an [`InputError`] names the JSON pointer of the
//! field at fault); outputs are converted after the sandbox has validated them.

use crate::domain;
use crate::sandbox::bindings::loyalty::program::types as wit;

/// An input the contract cannot carry, with the JSON pointer of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct InputError {
    /// JSON pointer of the failing field, e.g. `/event/score`.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn bad(pointer: &str, message: impl Into<String>) -> InputError {
    InputError {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// The longest custom event kind name.
pub const MAX_KIND_LEN: usize = 64;

fn attributes(a: &domain::Attributes) -> Vec<wit::Attribute> {
    a.iter()
        .map(|(k, v)| wit::Attribute {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn money(m: &domain::Money, pointer: &str) -> Result<wit::Money, InputError> {
    let c = m.currency.as_bytes();
    if c.len() != 3 || !c.iter().all(u8::is_ascii_uppercase) {
        return Err(bad(
            &format!("{pointer}/currency"),
            "must be an ISO 4217 code: three upper-case letters",
        ));
    }
    Ok(wit::Money {
        minor: m.minor,
        currency: m.currency.clone(),
    })
}

fn totals(t: &domain::Totals) -> wit::Totals {
    wit::Totals {
        spend: t.spend,
        purchases: t.purchases,
        events: t.events,
        points_earned: t.points_earned,
        qualifying_points: t.qualifying_points,
    }
}

/// Parse "YYYY-MM-DD" into a contract date.
pub fn parse_date(s: &str) -> Option<wit::Date> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    let month: u8 = m.parse().ok()?;
    let day: u8 = d.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > loyalty_sdk::time::days_in_month(year, month)
    {
        return None;
    }
    Some(wit::Date { year, month, day })
}

/// The member snapshot as the contract carries it.
pub fn member(m: &domain::MemberSnapshot) -> Result<wit::Member, InputError> {
    let birthday = match &m.birthday {
        None => None,
        Some(b) => Some(
            parse_date(b).ok_or_else(|| bad("/member/birthday", "must be a date YYYY-MM-DD"))?,
        ),
    };
    let s = &m.stats;
    Ok(wit::Member {
        id: m.id.clone(),
        enrolled_at: m.enrolled_at,
        tier: m.tier.clone(),
        tier_since: m.tier_since,
        balance: m.balance,
        pending: m.pending,
        debt: m.debt,
        birthday,
        referred_by: m.referred_by.clone(),
        attributes: attributes(&m.attributes),
        stats: wit::Stats {
            lifetime: totals(&s.lifetime),
            calendar_year: totals(&s.calendar_year),
            previous_calendar_year: totals(&s.previous_calendar_year),
            rolling_12_months: totals(&s.rolling_12_months),
            membership_year: totals(&s.membership_year),
            last_activity: s.last_activity,
            last_purchase: s.last_purchase,
        },
        state: m.state.0.clone(),
    })
}

fn channel(c: domain::Channel) -> wit::Channel {
    match c {
        domain::Channel::InStore => wit::Channel::InStore,
        domain::Channel::Online => wit::Channel::Online,
        domain::Channel::App => wit::Channel::App,
        domain::Channel::Phone => wit::Channel::Phone,
        domain::Channel::Partner => wit::Channel::Partner,
        domain::Channel::Other => wit::Channel::Other,
    }
}

fn payment(p: domain::PaymentMethod) -> wit::PaymentMethod {
    match p {
        domain::PaymentMethod::Card => wit::PaymentMethod::Card,
        domain::PaymentMethod::Cash => wit::PaymentMethod::Cash,
        domain::PaymentMethod::Wallet => wit::PaymentMethod::Wallet,
        domain::PaymentMethod::StoredValue => wit::PaymentMethod::StoredValue,
        domain::PaymentMethod::Points => wit::PaymentMethod::Points,
        domain::PaymentMethod::Other => wit::PaymentMethod::Other,
    }
}

/// Whether `name` is a valid custom event kind.
pub fn valid_kind_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KIND_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn event_kind(e: &domain::Event) -> Result<wit::EventKind, InputError> {
    let require = |v: &Option<String>, field: &str| {
        v.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
            bad(
                &format!("/event/{field}"),
                format!("required for a {} event", e.kind),
            )
        })
    };
    Ok(match e.kind.as_str() {
        "purchase" => wit::EventKind::Purchase,
        "refund" => wit::EventKind::Refund(wit::RefundDetails {
            original_event: require(&e.original_event, "original_event")?,
            full: e.full.unwrap_or(true),
        }),
        "review" => wit::EventKind::Review,
        "survey" => match e.score {
            Some(score @ 0..=10) => wit::EventKind::Survey(score),
            Some(_) => return Err(bad("/event/score", "must be between 0 and 10")),
            None => return Err(bad("/event/score", "required for a survey event")),
        },
        "referral" => wit::EventKind::Referral(wit::ReferralDetails {
            referee: require(&e.referee, "referee")?,
        }),
        "check_in" => wit::EventKind::CheckIn,
        "share" => wit::EventKind::Share,
        "partner_purchase" => {
            require(&e.partner, "partner")?;
            wit::EventKind::PartnerPurchase
        }
        other if valid_kind_name(other) => wit::EventKind::Custom(other.to_string()),
        _ => {
            return Err(bad(
                "/event/kind",
                "must be a known kind or a custom name of lower-case letters, digits, '-' and '_' (at most 64)",
            ));
        }
    })
}

/// The event as the contract carries it.
pub fn event(e: &domain::Event) -> Result<wit::Event, InputError> {
    if e.id.is_empty() {
        return Err(bad("/event/id", "must not be empty"));
    }
    let kind = event_kind(e)?;
    let amount = match &e.amount {
        Some(m) => Some(money(m, "/event/amount")?),
        None => None,
    };
    if matches!(kind, wit::EventKind::Purchase | wit::EventKind::Refund(_)) && amount.is_none() {
        return Err(bad(
            "/event/amount",
            format!("required for a {} event", e.kind),
        ));
    }
    if let Some(m) = &amount
        && m.minor < 0
    {
        return Err(bad("/event/amount/minor", "must not be negative"));
    }
    Ok(wit::Event {
        id: e.id.clone(),
        occurred_at: e.occurred_at,
        kind,
        amount,
        items: e
            .items
            .iter()
            .map(|i| wit::LineItem {
                sku: i.sku.clone(),
                category: i.category.clone(),
                quantity: i.quantity,
                amount: i.amount,
            })
            .collect(),
        channel: channel(e.channel),
        payment: e.payment.map(payment),
        store: e.store.clone(),
        partner: e.partner.clone(),
        attributes: attributes(&e.attributes),
    })
}

/// The redemption request as the contract carries it.
pub fn redemption_request(
    r: &domain::RedemptionRequest,
) -> Result<wit::RedemptionRequest, InputError> {
    if let Some(p) = r.points
        && p < 0
    {
        return Err(bad("/request/points", "must not be negative"));
    }
    Ok(wit::RedemptionRequest {
        reward: r.reward.clone(),
        amount: match &r.amount {
            Some(m) => Some(money(m, "/request/amount")?),
            None => None,
        },
        points: r.points,
        partner: r.partner.clone(),
        attributes: attributes(&r.attributes),
    })
}

// Outputs: contract types to domain types (after validation).

fn state(bytes: Vec<u8>) -> domain::State {
    domain::State(bytes)
}

/// A credit in domain form.
pub fn credit(c: wit::Credit) -> domain::Credit {
    domain::Credit {
        points: c.points,
        reason: c.reason,
        expires_at: c.expires_at,
        pending_until: c.pending_until,
        qualifying: c.qualifying,
    }
}

/// An outcome in domain form.
pub fn outcome(o: wit::Outcome) -> domain::Outcome {
    domain::Outcome {
        credits: o.credits.into_iter().map(credit).collect(),
        state: o.state.map(state),
        badges: o.badges,
        annotations: o
            .annotations
            .into_iter()
            .map(|a| (a.key, a.value))
            .collect(),
    }
}

/// An enrolment in domain form.
pub fn enrolment(e: wit::Enrolment) -> domain::Enrolment {
    domain::Enrolment {
        initial_tier: e.initial_tier,
        outcome: outcome(e.outcome),
    }
}

/// A tier decision in domain form.
pub fn tier_decision(t: wit::TierDecision) -> domain::TierDecision {
    domain::TierDecision {
        tier: t.tier,
        reason: t.reason,
        progress: t.progress.map(|p| domain::TierProgress {
            next_tier: p.next_tier,
            metric: p.metric,
            current: p.current,
            target: p.target,
            window_ends: p.window_ends,
        }),
        valid_until: t.valid_until,
    }
}

/// A perk in domain form.
pub fn perk(p: wit::Perk) -> domain::Perk {
    domain::Perk {
        id: p.id,
        name: p.name,
        quantity: p.quantity,
        valid_until: p.valid_until,
        grant: p.grant,
    }
}

/// An offer in domain form.
pub fn offer(o: wit::Offer) -> domain::Offer {
    domain::Offer {
        id: o.id,
        partner: o.partner,
        title: o.title,
        description: o.description,
        kind: match o.kind {
            wit::OfferKind::EarnMultiplier(p) => domain::OfferKind::EarnMultiplier(p),
            wit::OfferKind::BonusPoints(p) => domain::OfferKind::BonusPoints(p),
            wit::OfferKind::Reward(p) => domain::OfferKind::Reward(p),
            wit::OfferKind::DiscountPercent(p) => domain::OfferKind::DiscountPercent(p),
        },
        valid_until: o.valid_until,
    }
}

/// A redemption answer in domain form.
pub fn redemption_answer(a: wit::RedemptionAnswer) -> domain::RedemptionAnswer {
    match a {
        wit::RedemptionAnswer::Accept(q) => domain::RedemptionAnswer::Accept(domain::Quote {
            reward: q.reward,
            points: q.points,
            cash: q.cash.map(|m| domain::Money {
                minor: m.minor,
                currency: m.currency,
            }),
            description: q.description,
        }),
        wit::RedemptionAnswer::Reject(r) => domain::RedemptionAnswer::Reject(domain::Rejection {
            code: r.code,
            reason: r.reason,
        }),
    }
}

/// A plugin error in domain form.
pub fn plugin_error(e: wit::PluginError) -> domain::PluginError {
    domain::PluginError {
        code: e.code,
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> domain::Event {
        serde_json::from_value(serde_json::json!({
            "id": "e-1", "occurred_at": 0, "kind": kind,
            "amount": { "minor": 100, "currency": "USD" }
        }))
        .unwrap()
    }

    #[test]
    fn known_kinds_map_to_the_contracts_variants_and_others_are_custom() {
        assert_eq!(
            super::event(&event("purchase")).unwrap().kind,
            wit::EventKind::Purchase
        );
        assert_eq!(
            super::event(&event("check_in")).unwrap().kind,
            wit::EventKind::CheckIn
        );
        assert_eq!(
            super::event(&event("app-download")).unwrap().kind,
            wit::EventKind::Custom("app-download".into())
        );
    }

    #[test]
    fn kind_specific_fields_are_required_and_named() {
        assert_eq!(
            super::event(&event("survey")).unwrap_err().pointer,
            "/event/score"
        );
        assert_eq!(
            super::event(&event("refund")).unwrap_err().pointer,
            "/event/original_event"
        );
        assert_eq!(
            super::event(&event("referral")).unwrap_err().pointer,
            "/event/referee"
        );
        assert_eq!(
            super::event(&event("partner_purchase"))
                .unwrap_err()
                .pointer,
            "/event/partner"
        );
        assert_eq!(
            super::event(&event("Not A Kind")).unwrap_err().pointer,
            "/event/kind"
        );
        let mut survey = event("survey");
        survey.score = Some(11);
        assert_eq!(super::event(&survey).unwrap_err().pointer, "/event/score");
        survey.score = Some(10);
        assert_eq!(
            super::event(&survey).unwrap().kind,
            wit::EventKind::Survey(10)
        );
    }

    #[test]
    fn purchases_need_a_non_negative_amount_in_an_iso_currency() {
        let mut e = event("purchase");
        e.amount = None;
        assert_eq!(super::event(&e).unwrap_err().pointer, "/event/amount");
        e.amount = Some(domain::Money {
            minor: -1,
            currency: "USD".into(),
        });
        assert_eq!(super::event(&e).unwrap_err().pointer, "/event/amount/minor");
        e.amount = Some(domain::Money {
            minor: 1,
            currency: "US".into(),
        });
        assert_eq!(
            super::event(&e).unwrap_err().pointer,
            "/event/amount/currency"
        );
    }

    #[test]
    fn birthdays_must_be_real_dates() {
        assert_eq!(parse_date("2000-02-29").map(|d| d.day), Some(29));
        assert!(parse_date("2001-02-29").is_none());
        assert!(parse_date("2001-13-01").is_none());
        assert!(parse_date("01-01-2001").is_none());
        let m = domain::MemberSnapshot {
            birthday: Some("1990-04-31".into()),
            ..Default::default()
        };
        assert_eq!(member(&m).unwrap_err().pointer, "/member/birthday");
    }
}
