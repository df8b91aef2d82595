//! Hostile test plugin: `on-event` never returns. The host's fuel budget (and, as a
//! backstop, its epoch deadline) must stop it.

use loyalty_sdk::prelude::*;

/// Loops forever on every event.
pub struct InfiniteLoop;

impl Program for InfiniteLoop {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: infinite loop", "1.0.0").tier("member", "Member")
    }

    fn on_event(member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        // `black_box` keeps the optimiser from proving anything about the loop.
        let mut x = member.balance;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

export_program!(InfiniteLoop);
