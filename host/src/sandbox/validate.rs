//! The rules a plugin's output must follow before the host uses it: sizes, bounds,
//! and references to tiers and perks the programme declared. Each failure names the
//! field at fault.

use super::bindings::loyalty::program::types as wit;

/// Largest number of points one credit may carry (a trillion: far above any real
/// award, low enough that sums of many credits cannot overflow).
pub const MAX_CREDIT_POINTS: i64 = 1_000_000_000_000;
/// Most credits one outcome may carry.
pub const MAX_CREDITS: usize = 64;
/// Most badges, annotations, perks or offers in one answer.
pub const MAX_ITEMS: usize = 64;
/// Longest reason, description or annotation value.
pub const MAX_TEXT: usize = 512;

/// Ids (tiers, perks, badges, codes): 1-64 of a-z, 0-9, '-', '_'.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub(crate) fn text(field: &str, value: &str, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(format!("{field} is {} bytes, over {MAX_TEXT}", value.len()));
    }
    Ok(())
}

pub(crate) fn id(field: &str, value: &str) -> Result<(), String> {
    if valid_id(value) {
        Ok(())
    } else {
        Err(format!(
            "{field} {value:?} must be 1-64 characters of a-z, 0-9, '-' and '_'"
        ))
    }
}

pub(crate) fn count(field: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        Err(format!("{field} has {n} entries, over {max}"))
    } else {
        Ok(())
    }
}

/// The output rules over the generated types that the calling module has imported as
/// `wit`: the sandbox's own bindings (here) and the SDK's (natively, in
/// [`crate::engine::native`]), so a programme's answer is held to the same rules
/// whether it ran in the sandbox or natively.
macro_rules! validations {
    () => {
        fn money(field: &str, m: &wit::Money) -> Result<(), String> {
            if m.currency.len() != 3 || !m.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "{field}.currency {:?} is not an ISO 4217 code",
                    m.currency
                ));
            }
            if !(0..=$crate::domain::MAX_MINOR).contains(&m.minor) {
                return Err(format!(
                    "{field}.minor {} is not between 0 and {}",
                    m.minor,
                    $crate::domain::MAX_MINOR
                ));
            }
            Ok(())
        }

        /// A plugin error must carry a code and a message.
        pub fn plugin_error(e: &wit::PluginError) -> Result<(), String> {
            $crate::sandbox::validate::id("error.code", &e.code)?;
            $crate::sandbox::validate::text("error.message", &e.message, true)
        }

        /// Credits, state, badges and annotations.
        pub fn outcome(
            o: &wit::Outcome,
            now: i64,
            limits: &$crate::sandbox::Limits,
        ) -> Result<(), String> {
            $crate::sandbox::validate::count(
                "credits",
                o.credits.len(),
                $crate::sandbox::validate::MAX_CREDITS,
            )?;
            for (i, c) in o.credits.iter().enumerate() {
                if c.points <= 0 || c.points > $crate::sandbox::validate::MAX_CREDIT_POINTS {
                    return Err(format!(
                        "credits[{i}].points is {}, must be between 1 and {}",
                        c.points,
                        $crate::sandbox::validate::MAX_CREDIT_POINTS
                    ));
                }
                $crate::sandbox::validate::text(&format!("credits[{i}].reason"), &c.reason, true)?;
                if let Some(exp) = c.expires_at
                    && exp <= now
                {
                    return Err(format!(
                        "credits[{i}].expires-at {exp} is not after now ({now})"
                    ));
                }
                if let Some(at) = [c.expires_at, c.pending_until]
                    .into_iter()
                    .flatten()
                    .find(|at| *at > $crate::engine::LATEST)
                {
                    return Err(format!(
                        "credits[{i}] has a date after the end of 9999 ({at})"
                    ));
                }
                if let (Some(pending), Some(exp)) = (c.pending_until, c.expires_at)
                    && pending >= exp
                {
                    return Err(format!(
                        "credits[{i}].pending-until {pending} is not before expires-at {exp}"
                    ));
                }
            }
            if let Some(state) = &o.state
                && state.len() > limits.state_bytes
            {
                return Err(format!(
                    "state is {} bytes, over {}",
                    state.len(),
                    limits.state_bytes
                ));
            }
            $crate::sandbox::validate::count(
                "badges",
                o.badges.len(),
                $crate::sandbox::validate::MAX_ITEMS,
            )?;
            for (i, b) in o.badges.iter().enumerate() {
                $crate::sandbox::validate::id(&format!("badges[{i}]"), b)?;
            }
            $crate::sandbox::validate::count(
                "annotations",
                o.annotations.len(),
                $crate::sandbox::validate::MAX_ITEMS,
            )?;
            for (i, a) in o.annotations.iter().enumerate() {
                $crate::sandbox::validate::id(&format!("annotations[{i}].key"), &a.key)?;
                $crate::sandbox::validate::text(
                    &format!("annotations[{i}].value"),
                    &a.value,
                    false,
                )?;
            }
            Ok(())
        }

        /// An enrolment: a known initial tier and a valid outcome.
        pub fn enrolment(
            e: &wit::Enrolment,
            tiers: &std::collections::HashSet<String>,
            now: i64,
            limits: &$crate::sandbox::Limits,
        ) -> Result<(), String> {
            if let Some(t) = &e.initial_tier
                && !tiers.contains(t)
            {
                return Err(format!(
                    "initial-tier {t:?} is not one of the programme's tiers"
                ));
            }
            outcome(&e.outcome, now, limits)
        }

        /// A tier decision naming known tiers.
        pub fn tier_decision(
            t: &wit::TierDecision,
            tiers: &std::collections::HashSet<String>,
        ) -> Result<(), String> {
            if !tiers.contains(&t.tier) {
                return Err(format!(
                    "tier {:?} is not one of the programme's tiers",
                    t.tier
                ));
            }
            $crate::sandbox::validate::text("reason", &t.reason, false)?;
            if let Some(p) = &t.progress {
                if !tiers.contains(&p.next_tier) {
                    return Err(format!(
                        "progress.next-tier {:?} is not one of the programme's tiers",
                        p.next_tier
                    ));
                }
                $crate::sandbox::validate::text("progress.metric", &p.metric, false)?;
                if p.target < 0 {
                    return Err("progress.target is negative".into());
                }
            }
            Ok(())
        }

        /// Perks from the declared catalogue, with grant keys.
        pub fn perks(
            list: &[wit::Perk],
            known: &std::collections::HashSet<String>,
        ) -> Result<(), String> {
            $crate::sandbox::validate::count(
                "perks",
                list.len(),
                $crate::sandbox::validate::MAX_ITEMS,
            )?;
            for (i, p) in list.iter().enumerate() {
                if !known.contains(&p.id) {
                    return Err(format!(
                        "perks[{i}].id {:?} is not in the programme's perk catalogue",
                        p.id
                    ));
                }
                $crate::sandbox::validate::text(&format!("perks[{i}].name"), &p.name, true)?;
                if p.grant.is_empty() || p.grant.len() > 64 {
                    return Err(format!("perks[{i}].grant must be 1-64 bytes"));
                }
            }
            Ok(())
        }

        /// Offers for the partner that was asked about.
        pub fn offers(list: &[wit::Offer], partner: &str) -> Result<(), String> {
            $crate::sandbox::validate::count(
                "offers",
                list.len(),
                $crate::sandbox::validate::MAX_ITEMS,
            )?;
            for (i, o) in list.iter().enumerate() {
                $crate::sandbox::validate::id(&format!("offers[{i}].id"), &o.id)?;
                if o.partner != partner {
                    return Err(format!(
                        "offers[{i}].partner {:?} is not the partner asked about ({partner:?})",
                        o.partner
                    ));
                }
                $crate::sandbox::validate::text(&format!("offers[{i}].title"), &o.title, true)?;
                $crate::sandbox::validate::text(
                    &format!("offers[{i}].description"),
                    &o.description,
                    false,
                )?;
                if let wit::OfferKind::BonusPoints(p) | wit::OfferKind::Reward(p) = o.kind
                    && !(0..=$crate::sandbox::validate::MAX_CREDIT_POINTS).contains(&p)
                {
                    return Err(format!("offers[{i}].kind points {p} out of range"));
                }
                if let wit::OfferKind::DiscountPercent(p) = o.kind
                    && !(1..=100).contains(&p)
                {
                    return Err(format!(
                        "offers[{i}].kind discount-percent {p} is not between 1 and 100"
                    ));
                }
            }
            Ok(())
        }

        /// A quote with non-negative points and cash, or a rejection with a code.
        pub fn redemption_answer(a: &wit::RedemptionAnswer) -> Result<(), String> {
            match a {
                wit::RedemptionAnswer::Accept(q) => {
                    $crate::sandbox::validate::text("quote.reward", &q.reward, true)?;
                    if !(0..=$crate::sandbox::validate::MAX_CREDIT_POINTS).contains(&q.points) {
                        return Err(format!("quote.points {} out of range", q.points));
                    }
                    if let Some(cash) = &q.cash {
                        money("quote.cash", cash)?;
                    }
                    $crate::sandbox::validate::text("quote.description", &q.description, false)
                }
                wit::RedemptionAnswer::Reject(r) => {
                    $crate::sandbox::validate::id("rejection.code", &r.code)?;
                    $crate::sandbox::validate::text("rejection.reason", &r.reason, true)
                }
            }
        }
    };
}
pub(crate) use validations;

validations!();

/// The approximate size in bytes of a hook's output: strings and lists by length,
/// scalars by width. Used to enforce the output cap.
pub trait OutputSize {
    /// Bytes.
    fn output_size(&self) -> usize;
}

impl OutputSize for String {
    fn output_size(&self) -> usize {
        self.len() + 8
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> usize {
        8 + self.iter().map(OutputSize::output_size).sum::<usize>()
    }
}

impl<T: OutputSize> OutputSize for Option<T> {
    fn output_size(&self) -> usize {
        1 + self.as_ref().map_or(0, OutputSize::output_size)
    }
}

macro_rules! scalar_size {
    ($($t:ty),*) => {$(
        impl OutputSize for $t {
            fn output_size(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
    )*};
}
scalar_size!(u8, u32, i64, bool);

macro_rules! record_size {
    ($t:ty { $($f:ident),* }) => {
        impl OutputSize for $t {
            fn output_size(&self) -> usize {
                0 $(+ self.$f.output_size())*
            }
        }
    };
}

record_size!(wit::Money { minor, currency });
record_size!(wit::Attribute { key, value });
record_size!(wit::Credit {
    points,
    reason,
    expires_at,
    pending_until,
    qualifying
});
record_size!(wit::Outcome {
    credits,
    state,
    badges,
    annotations
});
record_size!(wit::Enrolment {
    initial_tier,
    outcome
});
record_size!(wit::TierProgress {
    next_tier,
    metric,
    current,
    target,
    window_ends
});
record_size!(wit::TierDecision {
    tier,
    reason,
    progress,
    valid_until
});
record_size!(wit::Perk {
    id,
    name,
    quantity,
    valid_until,
    grant
});
record_size!(wit::Offer {
    id,
    partner,
    title,
    description,
    kind,
    valid_until
});
record_size!(wit::Quote {
    reward,
    points,
    cash,
    description
});
record_size!(wit::Rejection { code, reason });
record_size!(wit::PluginError { code, message });
record_size!(wit::TierInfo { id, name });
record_size!(wit::PerkInfo {
    id,
    name,
    description
});
record_size!(wit::RewardInfo { id, name, points });
record_size!(wit::ProgramInfo {
    name,
    version,
    description,
    tiers,
    perks,
    rewards,
    config_schema,
    default_config
});

impl OutputSize for wit::OfferKind {
    fn output_size(&self) -> usize {
        9
    }
}

impl OutputSize for wit::RedemptionAnswer {
    fn output_size(&self) -> usize {
        1 + match self {
            wit::RedemptionAnswer::Accept(q) => q.output_size(),
            wit::RedemptionAnswer::Reject(r) => r.output_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Limits;

    fn credit(points: i64) -> wit::Credit {
        wit::Credit {
            points,
            reason: "r".into(),
            expires_at: None,
            pending_until: None,
            qualifying: false,
        }
    }

    fn outcome(credits: Vec<wit::Credit>) -> wit::Outcome {
        wit::Outcome {
            credits,
            state: None,
            badges: vec![],
            annotations: vec![],
        }
    }

    #[test]
    fn credits_must_be_positive_and_bounded() {
        let l = Limits::default();
        assert!(super::outcome(&outcome(vec![credit(1)]), 0, &l).is_ok());
        assert!(super::outcome(&outcome(vec![credit(0)]), 0, &l).is_err());
        assert!(super::outcome(&outcome(vec![credit(-5)]), 0, &l).is_err());
        assert!(super::outcome(&outcome(vec![credit(MAX_CREDIT_POINTS + 1)]), 0, &l).is_err());
        assert!(super::outcome(&outcome(vec![credit(1); MAX_CREDITS + 1]), 0, &l).is_err());
    }

    #[test]
    fn expiry_must_be_in_the_future_and_after_pending() {
        let l = Limits::default();
        let mut c = credit(10);
        c.expires_at = Some(100);
        assert!(super::outcome(&outcome(vec![c.clone()]), 99, &l).is_ok());
        assert!(super::outcome(&outcome(vec![c.clone()]), 100, &l).is_err());
        c.pending_until = Some(100);
        assert!(super::outcome(&outcome(vec![c.clone()]), 0, &l).is_err());
        c.expires_at = Some(crate::engine::LATEST);
        c.pending_until = Some(crate::engine::LATEST - 1);
        assert!(super::outcome(&outcome(vec![c.clone()]), 0, &l).is_ok());
        c.pending_until = Some(i64::MAX);
        c.expires_at = None;
        assert!(
            super::outcome(&outcome(vec![c]), 0, &l).is_err(),
            "pending for ever"
        );
    }

    #[test]
    fn state_over_the_cap_is_refused() {
        let l = Limits {
            state_bytes: 4,
            ..Limits::default()
        };
        let mut o = outcome(vec![]);
        o.state = Some(vec![0; 4]);
        assert!(super::outcome(&o, 0, &l).is_ok());
        o.state = Some(vec![0; 5]);
        assert!(super::outcome(&o, 0, &l).is_err());
    }

    #[test]
    fn discounts_are_at_most_a_hundred_percent_and_cash_is_bounded() {
        let offer = |kind| wit::Offer {
            id: "o".into(),
            partner: "p".into(),
            title: "t".into(),
            description: String::new(),
            kind,
            valid_until: None,
        };
        assert!(super::offers(&[offer(wit::OfferKind::DiscountPercent(100))], "p").is_ok());
        assert!(super::offers(&[offer(wit::OfferKind::DiscountPercent(101))], "p").is_err());
        assert!(super::offers(&[offer(wit::OfferKind::DiscountPercent(0))], "p").is_err());
        let quote = |minor| {
            wit::RedemptionAnswer::Accept(wit::Quote {
                reward: "r".into(),
                points: 10,
                cash: Some(wit::Money {
                    minor,
                    currency: "USD".into(),
                }),
                description: String::new(),
            })
        };
        assert!(super::redemption_answer(&quote(crate::domain::MAX_MINOR)).is_ok());
        assert!(super::redemption_answer(&quote(crate::domain::MAX_MINOR + 1)).is_err());
        assert!(super::redemption_answer(&quote(-1)).is_err());
    }

    #[test]
    fn ids_are_short_lower_case_slugs() {
        assert!(valid_id("executive-platinum"));
        assert!(valid_id("tier_2"));
        assert!(!valid_id(""));
        assert!(!valid_id("Gold"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
    }

    #[test]
    fn output_size_counts_strings_and_lists() {
        let small = outcome(vec![credit(1)]);
        let mut big = small.clone();
        big.state = Some(vec![0; 10_000]);
        assert!(big.output_size() >= small.output_size() + 10_000);
    }
}
