//! Hostile test plugin: `on-event` recurses without bound. The host's stack cap must
//! stop it with a stack-overflow trap, not crash the host.

use loyalty_sdk::prelude::*;

/// Recurses forever on every event.
pub struct DeepRecursion;

#[inline(never)]
#[allow(unconditional_recursion)]
fn descend(depth: u64, a: u64, b: u64) -> u64 {
    // Scalar arguments live on the wasm stack (not Rust's shadow stack in linear
    // memory), so this exhausts the host's wasm stack cap. The work after the call
    // keeps it from becoming a loop.
    let (x, y) = std::hint::black_box((a.wrapping_add(depth), b ^ depth));
    descend(depth + 1, x, y).wrapping_add(x).wrapping_mul(y | 1)
}

impl Program for DeepRecursion {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: deep recursion", "1.0.0").tier("member", "Member")
    }

    fn on_event(member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        let n = descend(0, member.balance as u64, member.debt as u64);
        Ok(Outcome::new().credit(Credit::new(n as i64, "unreachable")))
    }
}

export_program!(DeepRecursion);
