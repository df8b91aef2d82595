//! Example programme: a ride-hailing and delivery super-app, in the style of
//! GrabRewards.
//!
//! - **Earning.** Points per whole currency unit by payment method and tier: wallet
//!   3 / 4.5 / 6 for Member / Gold / Platinum, card 1 / 1.5 / 2, cash 0 (other methods
//!   earn like card). Rides, food and mart orders all earn; points qualify for tiers
//!   and expire six months after the month they were earned.
//! - **Weekly challenge**, kept in the plugin's state: five rides in one ISO week earn
//!   200 bonus points once, with a badge; the count starts again each week.
//! - **Tiers** from qualifying points in the last 12 months: Gold 1,000, Platinum 3,000.
//! - **Perks.** Gold: priority support. Platinum (the top tier): free delivery, and ten
//!   free rides every month.
//! - **Redemption.** Vouchers at fixed prices, and paying part of an order with points
//!   (100 points = 1 currency unit), the rest in cash.
//! - **Partners.** A cinema (double points) and a fuel station (bonus points).

mod config;

use config::{Config, PartnerPerk};
use loyalty_sdk::money::{divide, minor_per_major};
use loyalty_sdk::prelude::*;
use serde::{Deserialize, Serialize};

pub use config::CONFIG_SCHEMA;

/// The programme.
pub struct RideHailing;

/// Tiers, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Member.
    Member,
    /// Gold.
    Gold,
    /// Platinum.
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

    /// The tier of an id; unknown or empty ids are Member.
    pub fn from_id(id: &str) -> Tier {
        Tier::ALL
            .into_iter()
            .find(|t| t.id() == id)
            .unwrap_or(Tier::Member)
    }
}

/// The weekly challenge's progress, kept in the member's plugin state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The ISO week counted ("2026-W39").
    pub week: String,
    /// Rides in that week.
    pub rides: u32,
    /// Whether this week's bonus was paid.
    pub completed: bool,
}

fn is_ride(event: &Event) -> bool {
    event.items.iter().any(|i| i.category == "ride")
}

impl RideHailing {
    fn earn(
        member: &Member,
        event: &Event,
        ctx: &Context,
        config: &Config,
    ) -> Result<Outcome, PluginError> {
        let Some(amount) = &event.amount else {
            return Ok(Outcome::new());
        };
        if amount.currency != ctx.currency {
            return Err(PluginError::new(
                "unsupported-currency",
                format!(
                    "amounts must be in {}, not {}",
                    ctx.currency, amount.currency
                ),
            ));
        }
        let tier = Tier::from_id(&member.tier);
        let rate = config.rate(event.payment, tier);
        let expires = time::end_of_month_after(ctx.now, config.expiry_months as i32);
        let points = amount.earn(Rate::hundredths(rate.into()), Rounding::Down);
        let mut outcome = Outcome::new().credit(
            Credit::new(
                points,
                format!("{points} points: {} at {}", amount.display(), tier.name()),
            )
            .qualifying()
            .expires_at(expires),
        );
        if is_ride(event) {
            let mut challenge: Challenge = member.state_as()?;
            let week = time::week_key(ctx.now);
            if challenge.week != week {
                challenge = Challenge {
                    week,
                    rides: 0,
                    completed: false,
                };
            }
            challenge.rides += 1;
            if challenge.rides >= config.challenge_rides && !challenge.completed {
                challenge.completed = true;
                outcome = outcome
                    .credit(
                        Credit::new(
                            config.challenge_bonus,
                            format!(
                                "Weekly challenge: {} rides in {}",
                                challenge.rides, challenge.week
                            ),
                        )
                        .expires_at(expires),
                    )
                    .badge(format!(
                        "weekly-challenge-{}",
                        challenge.week.to_lowercase()
                    ));
            }
            outcome = outcome.with_state(&challenge);
        }
        Ok(outcome)
    }

    fn pay_with_points(
        member: &Member,
        amount: &Money,
        requested: Option<i64>,
        ctx: &Context,
        config: &Config,
    ) -> RedemptionAnswer {
        if amount.currency != ctx.currency {
            return RedemptionAnswer::reject(
                "unsupported-currency",
                format!(
                    "amounts must be in {}, not {}",
                    ctx.currency, amount.currency
                ),
            );
        }
        if amount.minor <= 0 {
            return RedemptionAnswer::reject("invalid-request", "the amount must be positive");
        }
        let unit = i128::from(minor_per_major(&amount.currency));
        let per_unit = i128::from(config.points_per_currency_unit);
        // Points to cover everything round up; what points cover rounds down.
        let full = divide(i128::from(amount.minor) * per_unit, unit, Rounding::Up);
        let wanted = requested.unwrap_or(member.balance);
        if wanted > member.balance || member.balance <= 0 {
            return RedemptionAnswer::reject(
                "insufficient-points",
                format!(
                    "{wanted} points requested; the balance is {}",
                    member.balance
                ),
            );
        }
        let points = wanted.min(full);
        if points <= 0 {
            return RedemptionAnswer::reject("invalid-request", "no points to use");
        }
        let covered = divide(i128::from(points) * unit, per_unit, Rounding::Down).min(amount.minor);
        let cash = Money::new(amount.minor - covered, amount.currency.as_str());
        let description = format!(
            "{points} points + {} for a {} order",
            cash.display(),
            amount.display()
        );
        RedemptionAnswer::accept(
            "pay-with-points",
            points,
            (cash.minor > 0).then_some(cash),
            description,
        )
    }
}

impl Program for RideHailing {
    fn describe() -> ProgramInfo {
        let config = Config::default();
        let mut info = ProgramInfo::new("Ride-hailing rewards", env!("CARGO_PKG_VERSION"))
            .description("Points by payment method and tier, a weekly ride challenge, free rides for Platinum")
            .perk("priority-support", "Priority support", "Faster help, Gold and above")
            .perk("free-delivery", "Free delivery", "No delivery fee on food and mart orders, Platinum")
            .perk("free-ride", "Free ride", "Ten free rides a month, Platinum")
            .config(CONFIG_SCHEMA, config::DEFAULT_CONFIG);
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
        info.reward("pay-with-points", "Pay with points", None)
    }

    fn on_enroll(_member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let config: Config = ctx.config()?;
        let expires = time::end_of_month_after(ctx.now, config.expiry_months as i32);
        Ok(Enrolment::new()
            .tier(Tier::Member.id())
            .credit(Credit::new(config.welcome_bonus, "Welcome bonus").expires_at(expires)))
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        match event.kind {
            EventKind::Purchase => {
                let config: Config = ctx.config()?;
                Self::earn(member, event, ctx, &config)
            }
            _ => Ok(Outcome::new()),
        }
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        let config: Config = ctx.config()?;
        let points = member.stats.rolling_12_months.qualifying_points;
        let tier = if points >= config.thresholds.platinum {
            Tier::Platinum
        } else if points >= config.thresholds.gold {
            Tier::Gold
        } else {
            Tier::Member
        };
        let decision =
            TierDecision::new(tier.id(), format!("{points} points in the last 12 months"));
        let next = match tier {
            Tier::Member => Some((Tier::Gold, config.thresholds.gold)),
            Tier::Gold => Some((Tier::Platinum, config.thresholds.platinum)),
            Tier::Platinum => None,
        };
        Ok(match next {
            Some((next, target)) => decision
                .progress(next.id(), "points in the last 12 months", points, target)
                .window_ends(time::Window::Rolling12Months.ends(ctx.now)),
            None => decision,
        })
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let config: Config = ctx.config()?;
        Ok(match Tier::from_id(&member.tier) {
            Tier::Member => Vec::new(),
            Tier::Gold => vec![Perk::new("priority-support", "Priority support", "gold")],
            Tier::Platinum => vec![
                Perk::new("priority-support", "Priority support", "gold"),
                Perk::new("free-delivery", "Free delivery", "platinum"),
                Perk::new("free-ride", "Free ride", time::month_key(ctx.now))
                    .quantity(config.free_rides_per_month)
                    .valid_until(time::end_of_month(ctx.now)),
            ],
        })
    }

    fn offers(_member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config: Config = ctx.config()?;
        Ok(config
            .partners
            .iter()
            .filter(|p| p.id == partner)
            .map(|p| {
                let kind = match p.perk {
                    PartnerPerk::Multiplier(percent) => OfferKind::EarnMultiplier(percent),
                    PartnerPerk::Bonus(points) => OfferKind::BonusPoints(points),
                };
                Offer::new(
                    format!("{}-offer", p.id),
                    p.id.as_str(),
                    p.title.as_str(),
                    kind,
                )
            })
            .collect())
    }

    fn quote_redemption(
        member: &Member,
        request: &RedemptionRequest,
        ctx: &Context,
    ) -> Result<RedemptionAnswer, PluginError> {
        let config: Config = ctx.config()?;
        if let Some(reward) = &request.reward {
            return Ok(match config.rewards.iter().find(|r| &r.id == reward) {
                Some(r) => RedemptionAnswer::fixed_price(member, &r.id, &r.name, r.points),
                None => RedemptionAnswer::unknown_reward(reward),
            });
        }
        Ok(match &request.amount {
            Some(amount) => Self::pay_with_points(member, amount, request.points, ctx, &config),
            None => RedemptionAnswer::reject(
                "invalid-request",
                "name a reward, or give an amount to pay with points",
            ),
        })
    }
}

export_program!(RideHailing);

#[cfg(test)]
mod tests;
