//! Example programme: coffee-stars (being written).

use loyalty_sdk::prelude::*;

/// The programme.
pub struct Plugin;

impl Program for Plugin {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("coffee-stars", "0.1.0").tier("member", "Member")
    }
}

export_program!(Plugin);
