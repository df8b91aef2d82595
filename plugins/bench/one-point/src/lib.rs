//! Benchmark programme: one point for every event, one tier, no perks, no config.
//!
//! It does as little as a programme can while still changing the ledger, so the engine
//! benchmark (`host/benches/engine.rs`) runs it twice: compiled natively, it is the
//! engine and storage alone; sandboxed, it adds what any plugin costs (a fresh instance
//! for the event, its three hook calls with the member lowered into each, the output
//! lifted and checked) and nothing of a programme's own rules. The difference between
//! the two is the sandbox's floor inside the engine under load.

use loyalty_sdk::prelude::*;

/// One point an event.
pub struct OnePoint;

impl Program for OnePoint {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("One point", "1.0.0").tier("member", "Member")
    }

    fn on_event(_member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        Ok(Outcome::new().credit(Credit::new(1, "one point")))
    }
}

export_program!(OnePoint);

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_sdk::testing;

    #[test]
    fn every_event_earns_one_point() {
        let member = testing::member("m1");
        let event = testing::purchase("e1", 1_000, "EUR", 0);
        let outcome = OnePoint::on_event(&member, &event, &testing::context(0, "{}")).unwrap();
        assert_eq!(outcome.credits.len(), 1);
        assert_eq!(outcome.credits[0].points, 1);
    }
}
