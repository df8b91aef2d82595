//! Conversions between the host's domain types and the contract's generated types.
//!
//! Inputs are checked on the way in (an [`InputError`] names the JSON pointer of the
//! field at fault); outputs are converted after the sandbox has validated them.
//!
//! The same conversions serve two sets of generated types: the host's (wasmtime's
//! `bindgen!`, for calls into the sandbox) and the SDK's (wit-bindgen, for calling a
//! programme's rules natively, see [`crate::engine::native`]). Both are generated from
//! the one WIT file and have the same shape, so the functions are written once, in
//! [`conversions!`], and expanded where a module has named its types `wit`.

#[cfg(test)]
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

pub(crate) fn bad(pointer: &str, message: impl Into<String>) -> InputError {
    InputError {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// The longest custom event kind name.
pub const MAX_KIND_LEN: usize = 64;

/// Whether `name` is a valid custom event kind.
pub fn valid_kind_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KIND_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The conversion functions between `crate::domain` and the generated types that the
/// calling module has imported as `wit` (see the module docs).
macro_rules! conversions {
    () => {
        fn attributes(a: &$crate::domain::Attributes) -> Vec<wit::Attribute> {
            a.iter()
                .map(|(k, v)| wit::Attribute {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        }

        fn money(m: &$crate::domain::Money, pointer: &str) -> Result<wit::Money, $crate::sandbox::convert::InputError> {
            let c = m.currency.as_bytes();
            if c.len() != 3 || !c.iter().all(u8::is_ascii_uppercase) {
                return Err($crate::sandbox::convert::bad(
                    &format!("{pointer}/currency"),
                    "must be an ISO 4217 code: three upper-case letters",
                ));
            }
            Ok(wit::Money {
                minor: m.minor,
                currency: m.currency.clone(),
            })
        }

        fn totals(t: &$crate::domain::Totals) -> wit::Totals {
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
            if !(1..=12).contains(&month) || day == 0 || day > ::loyalty_sdk::time::days_in_month(year, month)
            {
                return None;
            }
            Some(wit::Date { year, month, day })
        }

        /// The member snapshot as the contract carries it.
        pub fn member(m: &$crate::domain::MemberSnapshot) -> Result<wit::Member, $crate::sandbox::convert::InputError> {
            let birthday = match &m.birthday {
                None => None,
                Some(b) => Some(
                    parse_date(b).ok_or_else(|| $crate::sandbox::convert::bad("/member/birthday", "must be a date YYYY-MM-DD"))?,
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

        fn channel(c: $crate::domain::Channel) -> wit::Channel {
            match c {
                $crate::domain::Channel::InStore => wit::Channel::InStore,
                $crate::domain::Channel::Online => wit::Channel::Online,
                $crate::domain::Channel::App => wit::Channel::App,
                $crate::domain::Channel::Phone => wit::Channel::Phone,
                $crate::domain::Channel::Partner => wit::Channel::Partner,
                $crate::domain::Channel::Other => wit::Channel::Other,
            }
        }

        fn payment(p: $crate::domain::PaymentMethod) -> wit::PaymentMethod {
            match p {
                $crate::domain::PaymentMethod::Card => wit::PaymentMethod::Card,
                $crate::domain::PaymentMethod::Cash => wit::PaymentMethod::Cash,
                $crate::domain::PaymentMethod::Wallet => wit::PaymentMethod::Wallet,
                $crate::domain::PaymentMethod::StoredValue => wit::PaymentMethod::StoredValue,
                $crate::domain::PaymentMethod::Points => wit::PaymentMethod::Points,
                $crate::domain::PaymentMethod::Other => wit::PaymentMethod::Other,
            }
        }

        fn event_kind(e: &$crate::domain::Event) -> Result<wit::EventKind, $crate::sandbox::convert::InputError> {
            let require = |v: &Option<String>, field: &str| {
                v.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                    $crate::sandbox::convert::bad(
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
                    Some(_) => return Err($crate::sandbox::convert::bad("/event/score", "must be between 0 and 10")),
                    None => return Err($crate::sandbox::convert::bad("/event/score", "required for a survey event")),
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
                other if $crate::sandbox::convert::valid_kind_name(other) => wit::EventKind::Custom(other.to_string()),
                _ => {
                    return Err($crate::sandbox::convert::bad(
                        "/event/kind",
                        "must be a known kind or a custom name of lower-case letters, digits, '-' and '_' (at most 64)",
                    ));
                }
            })
        }

        /// The event as the contract carries it.
        pub fn event(e: &$crate::domain::Event) -> Result<wit::Event, $crate::sandbox::convert::InputError> {
            if e.id.is_empty() {
                return Err($crate::sandbox::convert::bad("/event/id", "must not be empty"));
            }
            let kind = event_kind(e)?;
            let amount = match &e.amount {
                Some(m) => Some(money(m, "/event/amount")?),
                None => None,
            };
            if matches!(kind, wit::EventKind::Purchase | wit::EventKind::Refund(_)) && amount.is_none() {
                return Err($crate::sandbox::convert::bad(
                    "/event/amount",
                    format!("required for a {} event", e.kind),
                ));
            }
            if let Some(m) = &amount
                && m.minor < 0
            {
                return Err($crate::sandbox::convert::bad("/event/amount/minor", "must not be negative"));
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
            r: &$crate::domain::RedemptionRequest,
        ) -> Result<wit::RedemptionRequest, $crate::sandbox::convert::InputError> {
            if let Some(p) = r.points
                && p < 0
            {
                return Err($crate::sandbox::convert::bad("/request/points", "must not be negative"));
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

        fn state(bytes: Vec<u8>) -> $crate::domain::State {
            $crate::domain::State(bytes)
        }

        /// A credit in domain form.
        pub fn credit(c: wit::Credit) -> $crate::domain::Credit {
            $crate::domain::Credit {
                points: c.points,
                reason: c.reason,
                expires_at: c.expires_at,
                pending_until: c.pending_until,
                qualifying: c.qualifying,
            }
        }

        /// An outcome in domain form.
        pub fn outcome(o: wit::Outcome) -> $crate::domain::Outcome {
            $crate::domain::Outcome {
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
        pub fn enrolment(e: wit::Enrolment) -> $crate::domain::Enrolment {
            $crate::domain::Enrolment {
                initial_tier: e.initial_tier,
                outcome: outcome(e.outcome),
            }
        }

        /// A tier decision in domain form.
        pub fn tier_decision(t: wit::TierDecision) -> $crate::domain::TierDecision {
            $crate::domain::TierDecision {
                tier: t.tier,
                reason: t.reason,
                progress: t.progress.map(|p| $crate::domain::TierProgress {
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
        pub fn perk(p: wit::Perk) -> $crate::domain::Perk {
            $crate::domain::Perk {
                id: p.id,
                name: p.name,
                quantity: p.quantity,
                valid_until: p.valid_until,
                grant: p.grant,
            }
        }

        /// An offer in domain form.
        pub fn offer(o: wit::Offer) -> $crate::domain::Offer {
            $crate::domain::Offer {
                id: o.id,
                partner: o.partner,
                title: o.title,
                description: o.description,
                kind: match o.kind {
                    wit::OfferKind::EarnMultiplier(p) => $crate::domain::OfferKind::EarnMultiplier(p),
                    wit::OfferKind::BonusPoints(p) => $crate::domain::OfferKind::BonusPoints(p),
                    wit::OfferKind::Reward(p) => $crate::domain::OfferKind::Reward(p),
                    wit::OfferKind::DiscountPercent(p) => $crate::domain::OfferKind::DiscountPercent(p),
                },
                valid_until: o.valid_until,
            }
        }

        /// A redemption answer in domain form.
        pub fn redemption_answer(a: wit::RedemptionAnswer) -> $crate::domain::RedemptionAnswer {
            match a {
                wit::RedemptionAnswer::Accept(q) => $crate::domain::RedemptionAnswer::Accept($crate::domain::Quote {
                    reward: q.reward,
                    points: q.points,
                    cash: q.cash.map(|m| $crate::domain::Money {
                        minor: m.minor,
                        currency: m.currency,
                    }),
                    description: q.description,
                }),
                wit::RedemptionAnswer::Reject(r) => $crate::domain::RedemptionAnswer::Reject($crate::domain::Rejection {
                    code: r.code,
                    reason: r.reason,
                }),
            }
        }

        /// The engine's call context as the contract carries it.
        pub fn context(ctx: &$crate::engine::Ctx<'_>) -> wit::Context {
            wit::Context {
                merchant: ctx.merchant.to_string(),
                now: ctx.now,
                config: ctx.config.to_string(),
                currency: ctx.currency.to_string(),
            }
        }

        /// `describe`'s answer in domain form, with its config schema and default
        /// config already parsed (and checked) by the caller.
        pub fn program_info(
            p: wit::ProgramInfo,
            config_schema: serde_json::Value,
            default_config: serde_json::Value,
        ) -> $crate::domain::ProgramInfo {
            $crate::domain::ProgramInfo {
                name: p.name,
                version: p.version,
                description: p.description,
                tiers: p
                    .tiers
                    .into_iter()
                    .map(|t| $crate::domain::TierInfo {
                        id: t.id,
                        name: t.name,
                    })
                    .collect(),
                perks: p
                    .perks
                    .into_iter()
                    .map(|x| $crate::domain::PerkInfo {
                        id: x.id,
                        name: x.name,
                        description: x.description,
                    })
                    .collect(),
                rewards: p
                    .rewards
                    .into_iter()
                    .map(|r| $crate::domain::RewardInfo {
                        id: r.id,
                        name: r.name,
                        points: r.points,
                    })
                    .collect(),
                config_schema,
                default_config,
            }
        }

        /// A plugin error in domain form.
        pub fn plugin_error(e: wit::PluginError) -> $crate::domain::PluginError {
            $crate::domain::PluginError {
                code: e.code,
                message: e.message,
            }
        }
    };
}
pub(crate) use conversions;

conversions!();

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
