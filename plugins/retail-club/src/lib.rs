//! Example programme: a retail club card (a department store and its web shop), with
//! points worth money: one point is one cent.
//!
//! - **Joining.** 200 points on sign-up; someone who joins with a referral code gets
//!   500 more, and the member who referred them gets 500 when the referral completes.
//! - **Cashback by tier.** Bronze 1 %, Silver 2 %, Gold 3 % of every purchase, paid as
//!   points that stay pending for the 30-day return window and count towards tiers.
//! - **Double-points days** from config: purchases inside a promotion's window earn
//!   its multiplier (the highest when promotions overlap).
//! - **Surveys and reviews.** 50 points for answering the NPS survey (once a month;
//!   the score and its promoter / passive / detractor category are always recorded),
//!   25 points a review (up to five a month).
//! - **Tiers** from calendar-year spend (Silver 500.00, Gold 1,500.00), with last year's
//!   tier kept through this year.
//! - **Perks.** A birthday voucher in the birthday month; free shipping for Gold.
//! - **Redemption.** Pay with points (at least 500), or fixed rewards; members with an
//!   outstanding debt (a refund after their points were spent) cannot redeem.

mod config;

use config::Config;
use loyalty_sdk::prelude::*;
use serde::{Deserialize, Serialize};

pub use config::CONFIG_SCHEMA;

/// The programme.
pub struct RetailClub;

/// Tiers, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Bronze.
    Bronze,
    /// Silver.
    Silver,
    /// Gold.
    Gold,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Bronze, Tier::Silver, Tier::Gold];

    /// The tier id.
    pub fn id(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Bronze => "Bronze",
            Tier::Silver => "Silver",
            Tier::Gold => "Gold",
        }
    }

    /// The tier of an id; unknown or empty ids are Bronze.
    pub fn from_id(id: &str) -> Tier {
        Tier::ALL
            .into_iter()
            .find(|t| t.id() == id)
            .unwrap_or(Tier::Bronze)
    }
}

/// What the programme remembers about a member (the plugin state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The month ("2026-09") a survey was last rewarded.
    pub survey_rewarded: Option<String>,
    /// The month reviews are counted for, and how many were rewarded in it.
    pub review_month: Option<String>,
    /// Reviews rewarded in `review_month`.
    pub reviews: u32,
}

/// The NPS category of a 0-10 score.
pub fn nps_category(score: u8) -> &'static str {
    match score {
        9..=10 => "promoter",
        7..=8 => "passive",
        _ => "detractor",
    }
}

fn currency_error(found: &str, expected: &str) -> PluginError {
    PluginError::new(
        "unsupported-currency",
        format!("amounts must be in {expected}, not {found}"),
    )
}

impl RetailClub {
    fn tier_for(spend: i64, config: &Config) -> Tier {
        if spend >= config.gold_spend_minor {
            Tier::Gold
        } else if spend >= config.silver_spend_minor {
            Tier::Silver
        } else {
            Tier::Bronze
        }
    }

    fn purchase(
        member: &Member,
        event: &Event,
        ctx: &Context,
        config: &Config,
    ) -> Result<Outcome, PluginError> {
        let Some(amount) = &event.amount else {
            return Ok(Outcome::new());
        };
        if amount.currency != ctx.currency {
            return Err(currency_error(&amount.currency, &ctx.currency));
        }
        let tier = Tier::from_id(&member.tier);
        let cashback_bp = config.cashback_basis_points.get(tier);
        let promotion = config
            .promotions
            .iter()
            .filter(|p| (p.starts..p.ends).contains(&event.occurred_at))
            .max_by_key(|p| p.multiplier_percent);
        let mut rate = Rate::basis_points(cashback_bp.into());
        if let Some(p) = promotion {
            rate = rate.times(Rate::percent(p.multiplier_percent.into()));
        }
        // Cashback in money, then in points at the point's value.
        let cashback = amount.times(rate, Rounding::Down);
        let points = cashback.minor / config.point_value_minor.max(1);
        let reason = match promotion {
            Some(p) => format!(
                "{points} points: {} cashback at {} during {}",
                cashback.display(),
                tier.name(),
                p.name
            ),
            None => format!(
                "{points} points: {} cashback at {}",
                cashback.display(),
                tier.name()
            ),
        };
        let pending_until = ctx.now + i64::from(config.return_window_days) * 86_400;
        Ok(Outcome::new().credit(
            Credit::new(points, reason)
                .qualifying()
                .pending_until(pending_until),
        ))
    }

    fn survey(
        member: &Member,
        score: u8,
        ctx: &Context,
        config: &Config,
    ) -> Result<Outcome, PluginError> {
        if score > 10 {
            return Err(PluginError::new(
                "invalid-event",
                format!("a survey score is 0-10, not {score}"),
            ));
        }
        let mut memory: Memory = member.state_as()?;
        let month = time::month_key(ctx.now);
        let outcome = Outcome::new()
            .annotate("nps", score.to_string())
            .annotate("nps-category", nps_category(score));
        if memory.survey_rewarded.as_deref() == Some(month.as_str()) {
            // Recorded, but rewarded once a month.
            return Ok(outcome);
        }
        memory.survey_rewarded = Some(month);
        Ok(outcome
            .credit(Credit::new(
                config.survey_points,
                "Thank you for answering our survey",
            ))
            .with_state(&memory))
    }

    fn review(member: &Member, ctx: &Context, config: &Config) -> Result<Outcome, PluginError> {
        let mut memory: Memory = member.state_as()?;
        let month = time::month_key(ctx.now);
        if memory.review_month.as_deref() != Some(month.as_str()) {
            memory.review_month = Some(month);
            memory.reviews = 0;
        }
        if memory.reviews >= config.reviews_per_month {
            return Ok(Outcome::new());
        }
        memory.reviews += 1;
        Ok(Outcome::new()
            .credit(Credit::new(
                config.review_points,
                "Thank you for your review",
            ))
            .with_state(&memory))
    }

    fn pay_with_points(
        member: &Member,
        request: &RedemptionRequest,
        amount: &Money,
        ctx: &Context,
        config: &Config,
    ) -> RedemptionAnswer {
        if amount.currency != ctx.currency {
            let e = currency_error(&amount.currency, &ctx.currency);
            return RedemptionAnswer::reject(e.code, e.message);
        }
        if amount.minor <= 0 {
            return RedemptionAnswer::reject("invalid-request", "the amount must be positive");
        }
        let value = config.point_value_minor.max(1);
        // Points to pay everything round up; the cash part is what they do not cover.
        let full = (amount.minor + value - 1) / value;
        let wanted = request.points.unwrap_or(full.min(member.balance));
        if wanted > member.balance {
            return RedemptionAnswer::reject(
                "insufficient-points",
                format!(
                    "{wanted} points requested; the balance is {}",
                    member.balance
                ),
            );
        }
        let points = wanted.min(full);
        if points < config.min_redeem_points {
            return RedemptionAnswer::reject(
                "below-minimum",
                format!(
                    "paying with points uses at least {} points",
                    config.min_redeem_points
                ),
            );
        }
        let cash = Money::new(
            (amount.minor - points * value).max(0),
            amount.currency.as_str(),
        );
        let description = format!(
            "{points} points + {} for {}",
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

impl Program for RetailClub {
    fn describe() -> ProgramInfo {
        let config = Config::default();
        let mut info = ProgramInfo::new("Retail club", env!("CARGO_PKG_VERSION"))
            .description("Tiered cashback in points, referrals, surveys with NPS, double-points days, birthday voucher")
            .perk("birthday-voucher", "Birthday voucher", "A voucher in your birthday month")
            .perk("free-shipping", "Free shipping", "Free shipping on every web order, Gold")
            .config(CONFIG_SCHEMA, config::DEFAULT_CONFIG);
        for tier in Tier::ALL {
            info = info.tier(tier.id(), tier.name());
        }
        for r in &config.rewards {
            info = info.reward(r.id.as_str(), r.name.as_str(), Some(r.points));
        }
        info.reward("pay-with-points", "Pay with points", None)
    }

    fn on_enroll(member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let config: Config = ctx.config()?;
        let mut enrolment = Enrolment::new()
            .tier(Tier::Bronze.id())
            .credit(Credit::new(config.signup_bonus, "Welcome to the club"));
        if let Some(referrer) = &member.referred_by {
            enrolment = enrolment.credit(Credit::new(
                config.referee_bonus,
                format!("Referred by member {referrer}"),
            ));
        }
        Ok(enrolment)
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        let config: Config = ctx.config()?;
        match &event.kind {
            EventKind::Purchase => Self::purchase(member, event, ctx, &config),
            EventKind::Referral(r) => Ok(Outcome::new().credit(Credit::new(
                config.referrer_bonus,
                format!("Your referral {} joined", r.referee),
            ))),
            EventKind::Survey(score) => Self::survey(member, *score, ctx, &config),
            EventKind::Review => Self::review(member, ctx, &config),
            _ => Ok(Outcome::new()),
        }
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        let config: Config = ctx.config()?;
        let year = time::date(ctx.now).year;
        let spend = member.stats.calendar_year.spend;
        let earned = Self::tier_for(spend, &config);
        let kept = Self::tier_for(member.stats.previous_calendar_year.spend, &config);
        let tier = earned.max(kept);
        let reason = if earned >= kept {
            format!(
                "{} spent in {year}",
                Money::new(spend, ctx.currency.as_str()).display()
            )
        } else {
            format!("tier earned in {}", year - 1)
        };
        let decision = TierDecision::new(tier.id(), reason);
        let next = match tier {
            Tier::Bronze => Some((Tier::Silver, config.silver_spend_minor)),
            Tier::Silver => Some((Tier::Gold, config.gold_spend_minor)),
            Tier::Gold => None,
        };
        Ok(match next {
            Some((next, target)) => decision
                .progress(next.id(), format!("spend in {year}"), spend, target)
                .window_ends(time::end_of_year(ctx.now)),
            None => decision,
        })
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let mut perks = Vec::new();
        if let Some(birthday) = &member.birthday
            && time::is_birthday_month(birthday, ctx.now)
        {
            perks.push(
                Perk::new(
                    "birthday-voucher",
                    "Birthday voucher",
                    time::year_key(ctx.now),
                )
                .quantity(1)
                .valid_until(time::end_of_month(ctx.now)),
            );
        }
        if Tier::from_id(&member.tier) == Tier::Gold {
            perks.push(Perk::new("free-shipping", "Free shipping", "gold"));
        }
        Ok(perks)
    }

    fn offers(_member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config: Config = ctx.config()?;
        Ok(config
            .partners
            .iter()
            .filter(|p| p.id == partner)
            .map(|p| {
                Offer::new(
                    format!("{}-offer", p.id),
                    p.id.as_str(),
                    p.title.as_str(),
                    p.kind(),
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
        if member.debt > 0 {
            return Ok(RedemptionAnswer::reject(
                "outstanding-debt",
                format!(
                    "{} points are owed from a refund; earn them back first",
                    member.debt
                ),
            ));
        }
        if let Some(reward) = &request.reward {
            return Ok(match config.rewards.iter().find(|r| &r.id == reward) {
                Some(r) => RedemptionAnswer::fixed_price(member, &r.id, &r.name, r.points),
                None => RedemptionAnswer::unknown_reward(reward),
            });
        }
        Ok(match &request.amount {
            Some(amount) => Self::pay_with_points(member, request, amount, ctx, &config),
            None => RedemptionAnswer::reject(
                "invalid-request",
                "name a reward, or give an amount to pay with points",
            ),
        })
    }
}

export_program!(RetailClub);

#[cfg(test)]
mod tests;
