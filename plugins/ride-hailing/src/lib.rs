//! Example programme: a ride-hailing and delivery super-app, in the style of
//! GrabRewards.
//!
//! - **Earning.** Points per currency unit by payment method and tier: wallet
//!   3 / 4.5 / 6 for Member / Gold / Platinum, card 1 / 1.5 / 2, cash 0; other methods
//!   earn like card, except paying with points, which earns nothing. Rounded down:
//!   SGD 12.50 by wallet at Gold is 56 points (56.25). Rides, food and mart orders all
//!   earn; points qualify for tiers and expire 6 months after the month earned. The
//!   programme works in any currency, but an event must be in the programme's.
//! - **Weekly challenge**, kept in the member's plugin state: 5 purchases with a ride
//!   in one ISO week earn 200 bonus points (not qualifying) once, with the badge
//!   `weekly-challenge-<week>`; the count starts again each week.
//! - **Tiers** from qualifying points in the last 12 months: Gold 1,000, Platinum 3,000.
//! - **Perks.** Gold and Platinum: priority support. Platinum: free delivery while
//!   Platinum, and 10 free rides each month.
//! - **Redemption.** Vouchers at fixed prices (a SGD 3 ride voucher for 300 points, a
//!   SGD 5 food voucher for 500), and paying with points, 100 points to one currency
//!   unit, the rest in cash.
//! - **Partners.** Cinema City doubles the usual points; FuelCo adds 50 bonus points to
//!   each purchase. Partner purchases earn only at listed partners.
//! - **Joining** starts at Member, with an optional welcome bonus (0 by default).
//!
//! Every number is in the config (`config.schema.json`); the defaults are these.

mod challenge;
mod config;
mod redeem;

use challenge::{Challenge, Step};
use config::{Config, EarnConfig, Partner, PartnerPerk};
use loyalty_sdk::money::group_thousands;
use loyalty_sdk::prelude::*;

pub use config::{CONFIG_SCHEMA, DEFAULT_CONFIG};

/// The reward id for paying an amount with points (it has no fixed price).
pub const PAY_WITH_POINTS: &str = "pay-with-points";

/// The line-item category of a ride, the one the weekly challenge counts.
pub const RIDE: &str = "ride";

/// The programme.
pub struct RideHailing;

/// Tiers, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The tier everyone starts in.
    Member,
    /// 1,000 qualifying points in the last 12 months.
    Gold,
    /// 3,000 qualifying points in the last 12 months; the top tier.
    Platinum,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Member, Tier::Gold, Tier::Platinum];

    /// The tier id.
    pub fn id(self) -> &'static str {
        match self {
            Tier::Member => "member",
            Tier::Gold => "gold",
            Tier::Platinum => "platinum",
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Member => "Member",
            Tier::Gold => "Gold",
            Tier::Platinum => "Platinum",
        }
    }

    /// The tier of an id; unknown or empty ids (before the first tier decision) earn
    /// as Member.
    pub fn from_id(id: &str) -> Tier {
        match id {
            "gold" => Tier::Gold,
            "platinum" => Tier::Platinum,
            _ => Tier::Member,
        }
    }
}

/// The error for an amount in a currency other than the programme's.
pub(crate) fn unsupported_currency(found: &str, expected: &str) -> PluginError {
    PluginError::new(
        "unsupported-currency",
        format!("amounts must be in the programme's currency {expected}, not {found}"),
    )
}

fn check_currency(amount: &Money, ctx: &Context) -> Result<(), PluginError> {
    if amount.currency == ctx.currency {
        Ok(())
    } else {
        Err(unsupported_currency(&amount.currency, &ctx.currency))
    }
}

fn expiry(months: u32, now: Timestamp) -> Timestamp {
    // `months` is at most 120 (checked with the config), so the cast is exact.
    time::end_of_month_after(now, months as i32)
}

fn paid_by(payment: Option<PaymentMethod>) -> &'static str {
    match payment {
        Some(PaymentMethod::Wallet) => "wallet",
        Some(PaymentMethod::Card) => "card",
        Some(PaymentMethod::Cash) => "cash",
        Some(PaymentMethod::StoredValue) => "stored value",
        Some(PaymentMethod::Points) => "points",
        Some(PaymentMethod::Other) | None => "other",
    }
}

impl RideHailing {
    /// The hot path: a ride, food or mart order. Reads only the earn settings.
    fn purchase(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        let config = EarnConfig::from_context(ctx)?;
        let expires = expiry(config.expiry_months, ctx.now);
        let mut outcome = Outcome::new();
        if let Some(amount) = &event.amount {
            check_currency(amount, ctx)?;
            let tier = Tier::from_id(&member.tier);
            let rate = config.rates_hundredths.get(event.payment, tier);
            let points = amount.earn(Rate::hundredths(rate.into()), Rounding::Down);
            // Cash earns nothing and a negative amount is not a purchase: no credit.
            if points > 0 {
                let reason = format!(
                    "{} points: {} by {} at {}",
                    group_thousands(points),
                    amount.display(),
                    paid_by(event.payment),
                    tier.name()
                );
                outcome =
                    outcome.credit(Credit::new(points, reason).qualifying().expires_at(expires));
            }
        }
        // A purchase counts once however many rides it holds, and a cash ride counts:
        // the challenge is about riding, not paying.
        if event.items.iter().any(|i| i.category == RIDE) {
            let mut challenge: Challenge = member.state_as()?;
            match challenge.ride(time::week_key(ctx.now), config.challenge_rides) {
                Step::Past => {}
                Step::Counted => outcome = outcome.with_state(&challenge),
                Step::Completed => {
                    let reason = format!(
                        "Weekly challenge: {} rides in {}",
                        challenge.rides, challenge.week
                    );
                    outcome = outcome
                        .credit(Credit::new(config.challenge_bonus, reason).expires_at(expires))
                        .badge(challenge.badge())
                        .with_state(&challenge);
                }
            }
        }
        Ok(outcome)
    }

    /// A purchase at a partner: the usual earn, with the partner's offer applied.
    fn partner_purchase(
        member: &Member,
        event: &Event,
        ctx: &Context,
    ) -> Result<Outcome, PluginError> {
        let config = Config::from_context(ctx)?;
        let partner = event.partner.as_deref().and_then(|id| config.partner(id));
        let (Some(partner), Some(amount)) = (partner, &event.amount) else {
            return Ok(Outcome::new());
        };
        check_currency(amount, ctx)?;
        let tier = Tier::from_id(&member.tier);
        let expires = expiry(config.expiry_months, ctx.now);
        let mut rate = Rate::hundredths(config.rates_hundredths.get(event.payment, tier).into());
        if let PartnerPerk::Multiplier(percent) = partner.perk {
            rate = rate.times(Rate::percent(percent.into()));
        }
        let points = amount.earn(rate, Rounding::Down);
        let mut outcome = Outcome::new();
        if points > 0 {
            let reason = format!(
                "{} points: {} at {}",
                group_thousands(points),
                amount.display(),
                partner.title
            );
            outcome = outcome.credit(Credit::new(points, reason).qualifying().expires_at(expires));
        }
        if let PartnerPerk::Bonus(bonus) = partner.perk {
            // Like the weekly challenge, a fixed bonus is a gift, not spend: it does
            // not count towards status.
            outcome =
                outcome.credit(Credit::new(bonus, partner.title.as_str()).expires_at(expires));
        }
        Ok(outcome)
    }

    fn offer(partner: &Partner) -> Offer {
        let (kind, description) = match partner.perk {
            PartnerPerk::Multiplier(percent) => (
                OfferKind::EarnMultiplier(percent),
                format!("{percent}% of your usual points on every purchase"),
            ),
            PartnerPerk::Bonus(points) => (
                OfferKind::BonusPoints(points),
                format!(
                    "{} bonus points on every purchase, on top of your usual points",
                    group_thousands(points)
                ),
            ),
        };
        Offer::new(
            format!("{}-offer", partner.id),
            partner.id.as_str(),
            partner.title.as_str(),
            kind,
        )
        .description(description)
    }
}

impl Program for RideHailing {
    fn describe() -> ProgramInfo {
        let config = Config::default();
        let mut info = ProgramInfo::new("Ride-hailing rewards", env!("CARGO_PKG_VERSION"))
            .description(
                "Points on rides, food and mart orders by payment method and tier, a weekly \
                 ride challenge, free delivery and free rides for Platinum",
            )
            .perk(
                "priority-support",
                "Priority support",
                "Faster help from support, for Gold and Platinum",
            )
            .perk(
                "free-delivery",
                "Free delivery",
                "No delivery fee on food and mart orders while Platinum",
            )
            .perk(
                "free-ride",
                "Free ride",
                "A monthly allowance of free rides for Platinum (10 by default)",
            )
            .config(CONFIG_SCHEMA, DEFAULT_CONFIG);
        for tier in Tier::ALL {
            info = info.tier(tier.id(), tier.name());
        }
        for reward in &config.rewards {
            info = info.reward(
                reward.id.as_str(),
                reward.name.as_str(),
                Some(reward.points),
            );
        }
        info.reward(PAY_WITH_POINTS, "Pay with points", None)
    }

    fn on_enroll(_member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let config = Config::from_context(ctx)?;
        // A zero-point credit is dropped by the builder: no welcome bonus by default.
        Ok(Enrolment::new().tier(Tier::Member.id()).credit(
            Credit::new(config.welcome_bonus, "Welcome bonus")
                .expires_at(expiry(config.expiry_months, ctx.now)),
        ))
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        match event.kind {
            EventKind::Purchase => Self::purchase(member, event, ctx),
            EventKind::PartnerPurchase => Self::partner_purchase(member, event, ctx),
            // Refunds are reversed by the host; the challenge keeps its count, as a
            // refunded ride was still a ride taken.
            _ => Ok(Outcome::new()),
        }
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        const METRIC: &str = "points in the last 12 months";
        let config = Config::from_context(ctx)?;
        let points = member.stats.rolling_12_months.qualifying_points;
        let thresholds = &config.thresholds;
        let tier = if points >= thresholds.platinum {
            Tier::Platinum
        } else if points >= thresholds.gold {
            Tier::Gold
        } else {
            Tier::Member
        };
        let decision =
            TierDecision::new(tier.id(), format!("{} {METRIC}", group_thousands(points)));
        let next = match tier {
            Tier::Member => (Tier::Gold, thresholds.gold),
            Tier::Gold => (Tier::Platinum, thresholds.platinum),
            Tier::Platinum => return Ok(decision),
        };
        Ok(decision
            .progress(next.0.id(), METRIC, points, next.1)
            .window_ends(time::Window::Rolling12Months.ends(ctx.now)))
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let config = Config::from_context(ctx)?;
        let tier = Tier::from_id(&member.tier);
        let mut perks = Vec::new();
        if tier >= Tier::Gold {
            // One grant for as long as the member holds Gold or better.
            perks.push(Perk::new("priority-support", "Priority support", "gold"));
        }
        if tier == Tier::Platinum {
            perks.push(Perk::new("free-delivery", "Free delivery", "platinum"));
            if config.free_rides_per_month > 0 {
                perks.push(
                    Perk::new("free-ride", "Free ride", time::month_key(ctx.now))
                        .quantity(config.free_rides_per_month)
                        .valid_until(time::end_of_month(ctx.now)),
                );
            }
        }
        Ok(perks)
    }

    fn offers(_member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(config
            .partner(partner)
            .map(Self::offer)
            .into_iter()
            .collect())
    }

    fn quote_redemption(
        member: &Member,
        request: &RedemptionRequest,
        ctx: &Context,
    ) -> Result<RedemptionAnswer, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(redeem::quote(member, request, ctx, &config))
    }
}

export_program!(RideHailing);

#[cfg(test)]
mod tests;
