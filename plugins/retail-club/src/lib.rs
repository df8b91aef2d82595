//! Example programme: retail-club (being written).

use loyalty_sdk::prelude::*;

/// The programme.
pub struct Plugin;

impl Program for Plugin {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("retail-club", "0.1.0").tier("member", "Member")
    }
}

export_program!(Plugin);
