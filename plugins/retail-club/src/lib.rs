//! Example programme: a retail club card (a department store and its web shop) whose
//! points are worth money: one point is one cent.
//!
//! - **Joining.** Bronze, with 200 points; a member who joins with a referral gets
//!   500 more, and the member who referred them gets 500 when the referral completes.
//!   None of these count towards tiers.
//! - **Cashback by tier.** Bronze 1 %, Silver 2 %, Gold 3 % of every purchase, rounded
//!   down to the cent and paid as points (EUR 50.00 at Silver is 100 points, EUR 19.99
//!   at Bronze 19). Purchase points stay pending for the 30-day return window.
//! - **Promotions** from config (Black Friday double points): a purchase made in
//!   `[starts, ends)` earns the cashback times the promotion's multiplier, rounded
//!   once; when promotions overlap the highest multiplier wins.
//! - **Surveys and reviews.** 50 points for answering the NPS survey, once per
//!   calendar month; the score and its promoter / passive / detractor category are
//!   recorded on every answer. 25 points a review, up to five a month.
//! - **Tiers** from spend in the calendar year: Silver from 500.00, Gold from
//!   1,500.00; a tier earned in one year is kept through the next.
//! - **Perks.** A birthday voucher in the birthday month; free shipping at Gold.
//! - **Redemption.** Pay for a basket with points (at least 500, the rest in cash), or
//!   the 10.00 voucher (1,000 points) or the tote bag (1,500). A member who owes
//!   points after a refund cannot redeem.
//! - **Partners.** Double cashback at Coffee Corner; 10 % off at Cinema City.
//!
//! Every number is a default of [`Config`]; merchants change them in the programme
//! config (`config.schema.json`).
//!
//! # Layout
//!
//! `config` (the config and its checks), `status` (tiers and the status rule), `earn`
//! (joining, purchases, promotions, partner spend, referrals), `engagement` (survey
//! and reviews, with the plugin state), `perks`, `redeem` (pay with points and the
//! catalogue), `offers`. Each hook reads the config once and hands it on.

mod config;
mod earn;
mod engagement;
mod offers;
mod perks;
mod redeem;
mod status;

use loyalty_sdk::prelude::*;

pub use config::{CONFIG_SCHEMA, Config, DEFAULT_CONFIG, PerTier, Promotion, RewardPrices};
pub use earn::{INVALID_EVENT, UNSUPPORTED_CURRENCY};
pub use engagement::{Memory, nps_category};
pub use status::Tier;

/// The retail club programme.
pub struct RetailClub;

impl Program for RetailClub {
    fn describe() -> ProgramInfo {
        let mut info = ProgramInfo::new("Retail club", env!("CARGO_PKG_VERSION")).description(
            "Points worth a cent each: 1-3 % cashback by tier (Bronze, Silver, Gold by \
             calendar-year spend), double-points promotions, referral, survey and review \
             bonuses, a birthday voucher, and paying for baskets with points.",
        );
        for tier in Tier::ALL {
            info = info.tier(tier.id(), tier.name());
        }
        for (id, name, description) in perks::CATALOGUE {
            info = info.perk(id, name, description);
        }
        let prices = RewardPrices::default();
        for (id, name) in redeem::CATALOGUE {
            info = info.reward(id, name, prices.price(id).map(i64::from));
        }
        info.reward(redeem::PAY_WITH_POINTS, "Pay with points", None)
            .config(CONFIG_SCHEMA, DEFAULT_CONFIG)
    }

    fn on_enroll(member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(earn::on_enroll(member, &config))
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        let config = Config::from_context(ctx)?;
        match &event.kind {
            EventKind::Purchase => earn::purchase(member, event, ctx, &config),
            EventKind::PartnerPurchase => earn::partner_purchase(member, event, ctx, &config),
            EventKind::Referral(r) => Ok(earn::referral(&r.referee, &config)),
            EventKind::Survey(score) => engagement::survey(member, *score, ctx.now, &config),
            EventKind::Review => engagement::review(member, ctx.now, &config),
            // The host reverses a refunded purchase's points itself.
            EventKind::Refund(_) | EventKind::CheckIn | EventKind::Share | EventKind::Custom(_) => {
                Ok(Outcome::new())
            }
        }
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(status::evaluate(member, ctx, &config))
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        Ok(perks::perks(member, ctx.now))
    }

    fn offers(_member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config = Config::from_context(ctx)?;
        Ok(offers::offers(partner, &config))
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

export_program!(RetailClub);

#[cfg(test)]
mod tests;
