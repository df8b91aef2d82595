//! Hostile test plugin: unknown-import.

use loyalty_sdk::prelude::*;

/// The plugin.
pub struct P;

impl Program for P {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("x", "0")
    }
}

export_program!(P);
