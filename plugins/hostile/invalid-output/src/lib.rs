//! Hostile test plugin: well-typed answers that break the contract's rules — a
//! negative credit, a tier and a perk the programme never declared, an expiry in the
//! past. The host must refuse each as invalid output, naming the field.

use loyalty_sdk::prelude::*;

/// Answers with rule-breaking values.
pub struct InvalidOutput;

impl Program for InvalidOutput {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: invalid output", "1.0.0")
            .tier("member", "Member")
            .perk("real-perk", "A real perk", "declared")
    }

    fn on_enroll(_member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        Ok(Enrolment::new().credit(Credit::new(10, "welcome").expires_at(ctx.now - 1)))
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        let mut outcome = Outcome::new();
        outcome
            .credits
            .push(Credit::new(-500, "a debit in disguise"));
        Ok(outcome)
    }

    fn evaluate_tier(_member: &Member, _ctx: &Context) -> Result<TierDecision, PluginError> {
        Ok(TierDecision::new("diamond", "not a tier of this programme"))
    }

    fn perks(_member: &Member, _ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        Ok(vec![Perk::new("free-car", "A car", "once")])
    }
}

export_program!(InvalidOutput);
