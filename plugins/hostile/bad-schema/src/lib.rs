//! Hostile test plugin: `describe` declares a config schema that is not a valid JSON
//! Schema (`"type": "objekt"`). Upload must refuse it, saying so.

use loyalty_sdk::prelude::*;

/// Declares a broken config schema.
pub struct BadSchema;

impl Program for BadSchema {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: bad schema", "1.0.0")
            .tier("member", "Member")
            .config(r#"{"type": "objekt"}"#, "{}")
    }
}

export_program!(BadSchema);
