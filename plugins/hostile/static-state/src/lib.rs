//! Hostile test plugin: counts its calls in a static, which the contract forbids
//! (a plugin must be a pure function of its arguments). Every hook reports the count it
//! saw, so tests can show what survives from one call to the next: the calls of one
//! operation share an instance; nothing survives from one operation to another.

use std::sync::atomic::{AtomicU32, Ordering};

use loyalty_sdk::prelude::*;

/// Calls this instance has answered, this one included.
static CALLS: AtomicU32 = AtomicU32::new(0);

fn count() -> u32 {
    let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    loyalty_sdk::log::info(&format!("call {n}"));
    n
}

/// Reports its call count from every hook.
pub struct StaticState;

impl Program for StaticState {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: static state", "1.0.0")
            .tier("member", "Member")
            .perk("counted", "Counted", "The call count in the grant")
    }

    fn on_enroll(_member: &Member, _ctx: &Context) -> Result<Enrolment, PluginError> {
        Ok(Enrolment::new().outcome(Outcome::new().annotate("call", count().to_string())))
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        Ok(Outcome::new().annotate("call", count().to_string()))
    }

    fn evaluate_tier(_member: &Member, _ctx: &Context) -> Result<TierDecision, PluginError> {
        Ok(TierDecision::new("member", format!("call {}", count())))
    }

    fn perks(_member: &Member, _ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        Ok(vec![Perk::new(
            "counted",
            "Counted",
            format!("call-{}", count()),
        )])
    }
}

export_program!(StaticState);
