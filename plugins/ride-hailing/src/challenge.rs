//! The weekly ride challenge: its progress lives in the member's plugin state, so the
//! rule is a pure step from (state, ride time) to (new state, bonus or not).

use serde::{Deserialize, Serialize};

/// The weekly challenge's progress, kept in the member's plugin state as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// Missing fields read as their defaults, so a field added later does not turn every
// stored state into an `invalid-state` error.
#[serde(default)]
pub struct Challenge {
    /// The ISO week counted, as `time::week_key` names it ("2026-W39").
    pub week: String,
    /// Purchases with a ride in that week.
    pub rides: u32,
    /// Whether that week's bonus was paid.
    pub completed: bool,
}

/// What one ride did to the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The ride counted; the state changed.
    Counted,
    /// The ride counted and completed the challenge: pay the bonus once.
    Completed,
    /// The ride belongs to a week before the one being counted (an event that arrived
    /// late): it earns its points but leaves this week's count alone.
    Past,
}

impl Challenge {
    /// Count a ride in ISO week `week`, which completes the challenge at `target` rides.
    pub fn ride(&mut self, week: String, target: u32) -> Step {
        // Week keys are "YYYY-Www" with a zero-padded week, so for four-digit years
        // their string order is their time order.
        if week < self.week {
            return Step::Past;
        }
        if week != self.week {
            *self = Challenge {
                week,
                rides: 0,
                completed: false,
            };
        }
        self.rides = self.rides.saturating_add(1);
        if self.rides >= target && !self.completed {
            self.completed = true;
            Step::Completed
        } else {
            Step::Counted
        }
    }

    /// The badge for completing this week's challenge, e.g. "weekly-challenge-2026-w39".
    /// Badges are ids, which the host allows only in lower case, so the key's "W" is
    /// lowered.
    pub fn badge(&self) -> String {
        format!("weekly-challenge-{}", self.week.to_ascii_lowercase())
    }
}
