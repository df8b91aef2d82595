//! Hostile test plugin: `on-event` returns a state blob of 8 MiB and `perks` returns
//! 2,000 perks with kilobyte names — far over the host's output cap, though within its
//! memory cap and fuel budget.

use loyalty_sdk::prelude::*;

/// Answers with far too much data.
pub struct OversizedOutput;

impl Program for OversizedOutput {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: oversized output", "1.0.0").tier("member", "Member")
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        let mut outcome = Outcome::new().credit(Credit::new(1, "bait"));
        outcome.state = Some(vec![b'x'; 8 << 20]);
        Ok(outcome)
    }

    fn perks(_member: &Member, _ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let name = "x".repeat(1_000);
        Ok((0..2_000)
            .map(|i| Perk::new("perk", name.clone(), i.to_string()))
            .collect())
    }
}

export_program!(OversizedOutput);
