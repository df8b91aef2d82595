//! Hostile test plugin: `on-event` panics with a message the host must report, and
//! `perks` divides by zero in a way the compiler cannot see coming.

use loyalty_sdk::prelude::*;

/// Panics on every event.
pub struct Trap;

impl Program for Trap {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: trap", "1.0.0").tier("member", "Member")
    }

    fn on_event(member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        panic!("member {} made the plugin panic on purpose", member.id);
    }

    fn perks(member: &Member, _ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        // The balance is 0 for a new member: an integer division by zero traps.
        let per = 100 / member.balance;
        Ok(vec![Perk::new("p", "p", per.to_string())])
    }
}

export_program!(Trap);
