//! A programme's rules compiled natively into the host, behind the same
//! [`Programme`] trait as sandboxed plugins: for plugin developers' tests through the
//! real engine, for simulations, and as the benchmark baseline that shows what the
//! sandbox costs.
//!
//! Inputs go through the same conversions (and checks) as for the sandbox, into the
//! SDK's generated types instead of the host's, and answers through the same output
//! rules ([`crate::sandbox::validate`]): an answer the sandbox would refuse as invalid
//! output (an undeclared tier, a credit already expired) is refused natively too, so a
//! developer's native tests fail where the deployed plugin would.

use std::collections::HashSet;
use std::marker::PhantomData;

use loyalty_sdk::bindings::loyalty::program::types as wit;

use super::programme::{Answer, CallError, Ctx, Programme};
use crate::domain;
use crate::sandbox::convert::conversions;
use crate::sandbox::{Failure, Hook, HookError, Limits, Session};

conversions!();

/// The output rules, over the SDK's types.
mod rules {
    use loyalty_sdk::bindings::loyalty::program::types as wit;

    crate::sandbox::validate::validations!();
}

/// The programme `P` (an SDK [`loyalty_sdk::Program`]) called natively.
pub struct Native<P> {
    version: String,
    info: domain::ProgramInfo,
    tiers: HashSet<String>,
    perks: HashSet<String>,
    limits: Limits,
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
            tiers: info.tiers.iter().map(|t| t.id.clone()).collect(),
            perks: info.perks.iter().map(|p| p.id.clone()).collect(),
            info,
            limits: Limits::default(),
            _program: PhantomData,
        }
    }

    /// The programme's answer to `hook`, held to the output rules (`check` for an
    /// answer, the plugin-error rules for a refusal) and converted with `f`.
    fn answer<T, U>(
        &self,
        hook: Hook,
        r: Result<T, wit::PluginError>,
        check: impl FnOnce(&T) -> Result<(), String>,
        f: impl FnOnce(T) -> U,
    ) -> Result<Answer<U>, CallError> {
        let invalid = |reason| {
            CallError::Hook(HookError {
                plugin: self.version.clone(),
                hook,
                failure: Failure::InvalidOutput { reason },
            })
        };
        match r {
            Ok(v) => {
                check(&v).map_err(invalid)?;
                Ok(Ok(f(v)))
            }
            Err(e) => {
                rules::plugin_error(&e).map_err(invalid)?;
                Ok(Err(plugin_error(e)))
            }
        }
    }
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
        self.answer(
            Hook::OnEnroll,
            P::on_enroll(&member(m)?, &context(ctx)),
            |e| rules::enrolment(e, &self.tiers, ctx.now, &self.limits),
            enrolment,
        )
    }

    fn on_event(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        e: &domain::Event,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::Outcome>, CallError> {
        self.answer(
            Hook::OnEvent,
            P::on_event(&member(m)?, &event(e)?, &context(ctx)),
            |o| rules::outcome(o, ctx.now, &self.limits),
            outcome,
        )
    }

    fn evaluate_tier(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::TierDecision>, CallError> {
        self.answer(
            Hook::EvaluateTier,
            P::evaluate_tier(&member(m)?, &context(ctx)),
            |t| rules::tier_decision(t, &self.tiers),
            tier_decision,
        )
    }

    fn perks(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<domain::Perk>>, CallError> {
        self.answer(
            Hook::Perks,
            P::perks(&member(m)?, &context(ctx)),
            |p| rules::perks(p, &self.perks),
            |p| p.into_iter().map(perk).collect(),
        )
    }

    fn offers(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        partner: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<domain::Offer>>, CallError> {
        self.answer(
            Hook::Offers,
            P::offers(&member(m)?, partner, &context(ctx)),
            |o| rules::offers(o, partner),
            |o| o.into_iter().map(offer).collect(),
        )
    }

    fn quote_redemption(
        &self,
        _: &mut Session,
        m: &domain::MemberSnapshot,
        r: &domain::RedemptionRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<domain::RedemptionAnswer>, CallError> {
        self.answer(
            Hook::QuoteRedemption,
            P::quote_redemption(&member(m)?, &redemption_request(r)?, &context(ctx)),
            rules::redemption_answer,
            redemption_answer,
        )
    }
}
