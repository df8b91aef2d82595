//! A programme's rules compiled natively into the host, behind the same
//! [`Programme`] trait as sandboxed plugins: for plugin developers' tests through the
//! real engine, for simulations, and as the benchmark baseline that shows what the
//! sandbox costs.
//!
//! Inputs go through the same conversions (and checks) as for the sandbox, into the
//! SDK's generated types instead of the host's.

use std::marker::PhantomData;

use loyalty_sdk::bindings::loyalty::program::types as wit;

use super::programme::{Answer, CallError, Ctx, Programme};
use crate::domain;
use crate::sandbox::Session;
use crate::sandbox::convert::conversions;

conversions!();

/// The programme `P` (an SDK [`loyalty_sdk::Program`]) called natively.
pub struct Native<P> {
    version: String,
    info: domain::ProgramInfo,
    _program: PhantomData<fn() -> P>,
}

impl<P: loyalty_sdk::Program> Native<P> {
    /// The programme, named `version` in results.
    pub fn new(version: &str) -> Native<P> {
        let p = P::describe();
        // Native programmes are ours: their schema and default config are JSON.
        let schema = serde_json::from_str(&p.config_schema).unwrap_or_default();
        let default = serde_json::from_str(&p.default_config).unwrap_or_default();
        let info = program_info(p, schema, default);
        Native {
            version: version.to_string(),
            info,
            _program: PhantomData,
        }
    }
}

fn answer<T, U>(r: Result<T, wit::PluginError>, f: impl FnOnce(T) -> U) -> Answer<U> {
    r.map(f).map_err(plugin_error)
}

impl<P: loyalty_sdk::Program> Programme for Native<P> {
    fn version(&self) -> &str {
        &self.version
    }

    fn info(&self) -> &domain::ProgramInfo {
        &self.info
    }

    fn on_enroll(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::Enrolment>, CallError> {
        Ok(answer(P::on_enroll(&member(m)?, &context(ctx)), enrolment))
    }

    fn on_event(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        e: &domain::Event,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::Outcome>, CallError> {
        Ok(answer(
            P::on_event(&member(m)?, &event(e)?, &context(ctx)),
            outcome,
        ))
    }

    fn evaluate_tier(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::TierDecision>, CallError> {
        Ok(answer(
            P::evaluate_tier(&member(m)?, &context(ctx)),
            tier_decision,
        ))
    }

    fn perks(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<domain::Perk>>, CallError> {
        Ok(answer(P::perks(&member(m)?, &context(ctx)), |p| {
            p.into_iter().map(perk).collect()
        }))
    }

    fn offers(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        partner: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<domain::Offer>>, CallError> {
        Ok(answer(
            P::offers(&member(m)?, partner, &context(ctx)),
            |o| o.into_iter().map(offer).collect(),
        ))
    }

    fn quote_redemption(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        r: &domain::RedemptionRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::RedemptionAnswer>, CallError> {
        Ok(answer(
            P::quote_redemption(&member(m)?, &redemption_request(r)?, &context(ctx)),
            redemption_answer,
        ))
    }
}
