//! Hostile test plugin: `on-event` allocates until memory runs out. The host's
//! linear-memory cap must stop it and report a memory-limit failure.

use loyalty_sdk::prelude::*;

/// Allocates one MiB at a time, forever, on every event.
pub struct MemoryBomb;

impl Program for MemoryBomb {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: memory bomb", "1.0.0").tier("member", "Member")
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Reserve a MiB and touch only its ends: memory grows as fast as the
            // allocator can ask, without burning fuel on filling it.
            let mut block = Vec::with_capacity(1 << 20);
            block.push(0xA5_u8);
            hoard.push(std::hint::black_box(block));
        }
    }
}

export_program!(MemoryBomb);
