//! Constructors and builder methods for the contract's types, so plugins read as rules
//! rather than struct literals.

use crate::{Attribute, Credit, Member, Money};
use crate::{
    Enrolment, Offer, OfferKind, Outcome, Perk, PerkInfo, PluginError, ProgramInfo, Quote,
    RedemptionAnswer, Rejection, RewardInfo, TierDecision, TierInfo, TierProgress, Timestamp,
};

impl Credit {
    /// `points` for `reason`, available now, never expiring, not qualifying.
    pub fn new(points: i64, reason: impl Into<String>) -> Credit {
        Credit {
            points,
            reason: reason.into(),
            expires_at: None,
            pending_until: None,
            qualifying: false,
        }
    }

    /// The points expire at `at`.
    pub fn expires_at(mut self, at: Timestamp) -> Credit {
        self.expires_at = Some(at);
        self
    }

    /// The points are pending until `until` (a return window).
    pub fn pending_until(mut self, until: Timestamp) -> Credit {
        self.pending_until = Some(until);
        self
    }

    /// The points count towards tier qualification.
    pub fn qualifying(mut self) -> Credit {
        self.qualifying = true;
        self
    }
}

impl Outcome {
    /// Nothing credited, state unchanged.
    pub fn new() -> Outcome {
        Outcome {
            credits: Vec::new(),
            state: None,
            badges: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Add a credit (credits of zero points are dropped).
    pub fn credit(mut self, credit: Credit) -> Outcome {
        if credit.points != 0 {
            self.credits.push(credit);
        }
        self
    }

    /// Award a badge.
    pub fn badge(mut self, badge: impl Into<String>) -> Outcome {
        self.badges.push(badge.into());
        self
    }

    /// Record a fact on the member.
    pub fn annotate(mut self, key: impl Into<String>, value: impl Into<String>) -> Outcome {
        self.annotations.push(Attribute {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Total points credited.
    pub fn points(&self) -> i64 {
        self.credits.iter().map(|c| c.points).sum()
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome::new()
    }
}

impl Enrolment {
    /// The first tier `describe` lists, no credits.
    pub fn new() -> Enrolment {
        Enrolment {
            initial_tier: None,
            outcome: Outcome::new(),
        }
    }

    /// Start in `tier`.
    pub fn tier(mut self, tier: impl Into<String>) -> Enrolment {
        self.initial_tier = Some(tier.into());
        self
    }

    /// Credit points on joining.
    pub fn credit(mut self, credit: Credit) -> Enrolment {
        self.outcome = self.outcome.credit(credit);
        self
    }

    /// Use `outcome` for credits, state, badges and annotations.
    pub fn outcome(mut self, outcome: Outcome) -> Enrolment {
        self.outcome = outcome;
        self
    }
}

impl Default for Enrolment {
    fn default() -> Self {
        Enrolment::new()
    }
}

impl TierDecision {
    /// The member holds `tier`, because `reason`.
    pub fn new(tier: impl Into<String>, reason: impl Into<String>) -> TierDecision {
        TierDecision {
            tier: tier.into(),
            reason: reason.into(),
            progress: None,
            valid_until: None,
        }
    }

    /// Progress towards `next_tier`: `current` of `target` measured as `metric`.
    pub fn progress(
        mut self,
        next_tier: impl Into<String>,
        metric: impl Into<String>,
        current: i64,
        target: i64,
    ) -> TierDecision {
        self.progress = Some(TierProgress {
            next_tier: next_tier.into(),
            metric: metric.into(),
            current,
            target,
            window_ends: None,
        });
        self
    }

    /// The measuring window for the progress closes at `at`.
    pub fn window_ends(mut self, at: Timestamp) -> TierDecision {
        if let Some(p) = self.progress.as_mut() {
            p.window_ends = Some(at);
        }
        self
    }

    /// The tier is guaranteed until `at`.
    pub fn valid_until(mut self, at: Timestamp) -> TierDecision {
        self.valid_until = Some(at);
        self
    }
}

impl Perk {
    /// An unlimited entitlement `id` for grant period `grant` (see the contract: one
    /// entitlement is created per id and grant).
    pub fn new(id: impl Into<String>, name: impl Into<String>, grant: impl Into<String>) -> Perk {
        Perk {
            id: id.into(),
            name: name.into(),
            quantity: None,
            valid_until: None,
            grant: grant.into(),
        }
    }

    /// Limited to `n` uses.
    pub fn quantity(mut self, n: u32) -> Perk {
        self.quantity = Some(n);
        self
    }

    /// Valid until `at`.
    pub fn valid_until(mut self, at: Timestamp) -> Perk {
        self.valid_until = Some(at);
        self
    }
}

impl Offer {
    /// An offer `id` at `partner`.
    pub fn new(
        id: impl Into<String>,
        partner: impl Into<String>,
        title: impl Into<String>,
        kind: OfferKind,
    ) -> Offer {
        Offer {
            id: id.into(),
            partner: partner.into(),
            title: title.into(),
            description: String::new(),
            kind,
            valid_until: None,
        }
    }

    /// Conditions and details.
    pub fn description(mut self, text: impl Into<String>) -> Offer {
        self.description = text.into();
        self
    }

    /// Valid until `at`.
    pub fn valid_until(mut self, at: Timestamp) -> Offer {
        self.valid_until = Some(at);
        self
    }
}

impl RedemptionAnswer {
    /// Accept: the reward costs `points` (plus `cash`, for points-plus-cash).
    pub fn accept(
        reward: impl Into<String>,
        points: i64,
        cash: Option<Money>,
        description: impl Into<String>,
    ) -> RedemptionAnswer {
        RedemptionAnswer::Accept(Quote {
            reward: reward.into(),
            points,
            cash,
            description: description.into(),
        })
    }

    /// Refuse, with a stable `code` and a human `reason`.
    pub fn reject(code: impl Into<String>, reason: impl Into<String>) -> RedemptionAnswer {
        RedemptionAnswer::Reject(Rejection {
            code: code.into(),
            reason: reason.into(),
        })
    }

    /// A catalogue reward at a fixed price in points: accepted when the member's
    /// balance covers it, else refused as `insufficient-points` (a balance exactly
    /// equal to the price is enough).
    pub fn fixed_price(member: &Member, reward: &str, name: &str, points: i64) -> RedemptionAnswer {
        if member.balance < points {
            return RedemptionAnswer::reject(
                "insufficient-points",
                format!(
                    "{name} needs {} points; the balance is {}",
                    crate::money::group_thousands(points),
                    crate::money::group_thousands(member.balance)
                ),
            );
        }
        RedemptionAnswer::accept(
            reward,
            points,
            None,
            format!("{name}: {} points", crate::money::group_thousands(points)),
        )
    }

    /// Refuse a reward the catalogue does not have, as `unknown-reward`.
    pub fn unknown_reward(reward: &str) -> RedemptionAnswer {
        RedemptionAnswer::reject(
            "unknown-reward",
            format!("{reward:?} is not in the reward catalogue"),
        )
    }

    /// The quote, if accepted.
    pub fn quote(&self) -> Option<&Quote> {
        match self {
            RedemptionAnswer::Accept(q) => Some(q),
            RedemptionAnswer::Reject(_) => None,
        }
    }

    /// The rejection, if refused.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            RedemptionAnswer::Accept(_) => None,
            RedemptionAnswer::Reject(r) => Some(r),
        }
    }
}

impl PluginError {
    /// A plugin failure with a stable `code` and a human `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> PluginError {
        PluginError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl ProgramInfo {
    /// A programme called `name`, plugin version `version`, with no tiers, perks or
    /// rewards yet and an empty config (`{}` accepted, schema allowing any object).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> ProgramInfo {
        ProgramInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            tiers: Vec::new(),
            perks: Vec::new(),
            rewards: Vec::new(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            default_config: "{}".to_string(),
        }
    }

    /// Describe the programme for the merchant.
    pub fn description(mut self, text: impl Into<String>) -> ProgramInfo {
        self.description = text.into();
        self
    }

    /// Add a tier (call lowest first).
    pub fn tier(mut self, id: impl Into<String>, name: impl Into<String>) -> ProgramInfo {
        self.tiers.push(TierInfo {
            id: id.into(),
            name: name.into(),
        });
        self
    }

    /// Add a perk to the catalogue.
    pub fn perk(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> ProgramInfo {
        self.perks.push(PerkInfo {
            id: id.into(),
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Add a reward to the catalogue (`points` when it has a fixed price).
    pub fn reward(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        points: Option<i64>,
    ) -> ProgramInfo {
        self.rewards.push(RewardInfo {
            id: id.into(),
            name: name.into(),
            points,
        });
        self
    }

    /// The JSON Schema of the config and the default config, both as JSON text.
    pub fn config(
        mut self,
        schema: impl Into<String>,
        default_config: impl Into<String>,
    ) -> ProgramInfo {
        self.config_schema = schema.into();
        self.default_config = default_config.into();
        self
    }

    /// The position of `tier` in the tier list (0 = lowest), if it is one.
    pub fn tier_rank(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.id == tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::member;

    #[test]
    fn a_fixed_price_needs_the_whole_price_in_the_balance() {
        let mut m = member("m");
        m.balance = 1_500;
        let q = RedemptionAnswer::fixed_price(&m, "tote", "Tote bag", 1_500);
        assert_eq!(
            q.quote().map(|q| (q.points, q.cash.clone())),
            Some((1_500, None))
        );
        assert_eq!(q.quote().unwrap().description, "Tote bag: 1,500 points");
        let no = RedemptionAnswer::fixed_price(&m, "tote", "Tote bag", 1_501);
        assert_eq!(no.rejection().unwrap().code, "insufficient-points");
        assert_eq!(
            RedemptionAnswer::unknown_reward("x")
                .rejection()
                .unwrap()
                .code,
            "unknown-reward"
        );
    }
}
