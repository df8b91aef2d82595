//! Hostile test plugin: `describe` panics. Upload must refuse it as a failed
//! `describe`, carrying the panic message.

use loyalty_sdk::prelude::*;

/// Cannot describe itself.
pub struct DescribePanics;

impl Program for DescribePanics {
    fn describe() -> ProgramInfo {
        panic!("describe is not implemented yet");
    }
}

export_program!(DescribePanics);
