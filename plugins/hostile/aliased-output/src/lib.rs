//! Hostile test plugin: `on-event` answers 30 badges that all point at one 4 MiB
//! buffer. The guest holds 4 MiB; the canonical ABI copies each badge out on its own,
//! so a host that copied the whole answer before judging its size would allocate
//! 120 MiB, far over both the output cap and the plugin's memory cap.

// Aliasing strings on purpose is the point of this plugin (and the only unsafe code
// in any plugin of this repository).
#![allow(unsafe_code)]

use loyalty_sdk::prelude::*;

/// Answers with aliased strings.
pub struct AliasedOutput;

/// Badges in the answer.
pub const COPIES: usize = 30;
/// Bytes of the one buffer they share.
pub const BYTES: usize = 4 << 20;

impl Program for AliasedOutput {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: aliased output", "1.0.0").tier("member", "Member")
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        let mut big = std::mem::ManuallyDrop::new("x".repeat(BYTES));
        let ptr = big.as_mut_ptr();
        let mut outcome = Outcome::new();
        for _ in 0..COPIES {
            // SAFETY: not safe, deliberately: the strings alias one buffer, and the
            // answer is lowered to the host and the instance thrown away without
            // them ever being dropped as separate strings (the SDK's bump allocator
            // ignores frees anyway). Never run natively.
            outcome
                .badges
                .push(unsafe { String::from_raw_parts(ptr, BYTES, BYTES) });
        }
        Ok(outcome)
    }
}

export_program!(AliasedOutput);
