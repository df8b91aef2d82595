//! The three tiers, what each one multiplies and whether its stars expire, and the
//! status rule: qualifying stars in the rolling 12 months.

use loyalty_sdk::prelude::*;
use loyalty_sdk::time::Window;

use crate::config::Config;
use crate::thousands;

/// What tier progress is measured in.
const METRIC: &str = "stars in the last 12 months";

/// A Coffee Stars tier, lowest first (the derived order is the tier order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The tier every member starts in.
    Green,
    /// 500 qualifying stars in the rolling 12 months.
    Gold,
    /// 2,500 qualifying stars in the rolling 12 months.
    Reserve,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Green, Tier::Gold, Tier::Reserve];

    /// The tier id.
    pub fn id(self) -> &'static str {
        match self {
            Tier::Green => "green",
            Tier::Gold => "gold",
            Tier::Reserve => "reserve",
        }
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Green => "Green",
            Tier::Gold => "Gold",
            Tier::Reserve => "Reserve",
        }
    }

    /// The member's current tier. A member without a tier yet earns as Green, and so
    /// does one whose tier id this version does not know: the safe, least generous
    /// reading, corrected by the host's next `evaluate-tier`.
    pub fn of(member: &Member) -> Tier {
        match member.tier.as_str() {
            "gold" => Tier::Gold,
            "reserve" => Tier::Reserve,
            _ => Tier::Green,
        }
    }

    /// The multiplier this tier applies to the base earn rate.
    pub fn multiplier(self, config: &Config) -> Rate {
        let percent = match self {
            Tier::Green => config.green_multiplier_percent,
            Tier::Gold => config.gold_multiplier_percent,
            Tier::Reserve => config.reserve_multiplier_percent,
        };
        Rate::percent(percent.into())
    }

    /// When stars earned at this tier at `now` expire: Green stars at the end of the
    /// configured month after the earning month, Gold and Reserve stars never.
    pub fn expiry(self, now: Timestamp, config: &Config) -> Option<Timestamp> {
        match self {
            Tier::Green => Some(green_expiry(now, config)),
            Tier::Gold | Tier::Reserve => None,
        }
    }

    /// The qualifying stars this tier needs (0 for Green).
    fn threshold(self, config: &Config) -> i64 {
        match self {
            Tier::Green => 0,
            Tier::Gold => config.gold_threshold.into(),
            Tier::Reserve => config.reserve_threshold.into(),
        }
    }

    fn next(self) -> Option<Tier> {
        match self {
            Tier::Green => Some(Tier::Gold),
            Tier::Gold => Some(Tier::Reserve),
            Tier::Reserve => None,
        }
    }
}

/// The last second of the month `green_expiry_months` after the month of `now`.
pub fn green_expiry(now: Timestamp, config: &Config) -> Timestamp {
    time::end_of_month_after(now, config.green_expiry_months.into())
}

/// The tier `stars` qualifying stars earn: the highest whose threshold they reach.
pub fn for_stars(stars: i64, config: &Config) -> Tier {
    Tier::ALL
        .into_iter()
        .rev()
        .find(|tier| stars >= tier.threshold(config))
        .unwrap_or(Tier::Green)
}

/// The status rule: the tier the rolling 12 months of qualifying stars earn, with
/// progress to the next tier until the end of the current month (the rolling window
/// moves on a month at a time).
pub fn evaluate(member: &Member, now: Timestamp, config: &Config) -> TierDecision {
    let stars = member.stats.rolling_12_months.qualifying_points;
    let tier = for_stars(stars, config);
    let decision = TierDecision::new(
        tier.id(),
        format!("{} stars in the last 12 months", thousands(stars)),
    );
    match tier.next() {
        Some(next) => decision
            .progress(next.id(), METRIC, stars, next.threshold(config))
            .window_ends(Window::Rolling12Months.ends(now)),
        None => decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{at, member_with_stars};

    fn decide(stars: i64) -> TierDecision {
        evaluate(
            &member_with_stars(stars),
            at(2026, 3, 15),
            &Config::default(),
        )
    }

    #[test]
    fn tiers_are_ordered_lowest_first() {
        let ids: Vec<&str> = Tier::ALL.iter().map(|t| t.id()).collect();
        assert_eq!(ids, ["green", "gold", "reserve"]);
        assert!(Tier::Green < Tier::Gold && Tier::Gold < Tier::Reserve);
    }

    #[test]
    fn a_new_member_with_no_stars_is_green_and_500_stars_from_gold() {
        let decision = decide(0);
        assert_eq!(decision.tier, "green");
        let progress = decision.progress.unwrap();
        assert_eq!(progress.next_tier, "gold");
        assert_eq!((progress.current, progress.target), (0, 500));
        assert_eq!(progress.metric, "stars in the last 12 months");
    }

    #[test]
    fn four_hundred_99_stars_is_still_green() {
        let decision = decide(499);
        assert_eq!(decision.tier, "green");
        assert_eq!(decision.progress.unwrap().current, 499);
    }

    #[test]
    fn exactly_500_stars_is_gold_with_progress_to_reserve() {
        let decision = decide(500);
        assert_eq!(decision.tier, "gold");
        let progress = decision.progress.unwrap();
        assert_eq!(progress.next_tier, "reserve");
        assert_eq!((progress.current, progress.target), (500, 2_500));
        assert_eq!(decision.reason, "500 stars in the last 12 months");
    }

    #[test]
    fn two_thousand_499_stars_is_gold_and_2500_is_reserve_without_progress() {
        assert_eq!(decide(2_499).tier, "gold");
        let decision = decide(2_500);
        assert_eq!(decision.tier, "reserve");
        assert_eq!(decision.progress, None);
        assert_eq!(decision.reason, "2,500 stars in the last 12 months");
    }

    #[test]
    fn progress_window_ends_at_the_last_second_of_the_current_month() {
        let ends = decide(120).progress.unwrap().window_ends;
        assert_eq!(ends, Some(time::timestamp(2026, 3, 31, 23, 59, 59)));
    }

    #[test]
    fn status_counts_only_the_rolling_12_months() {
        let mut m = member_with_stars(100);
        m.stats.lifetime.qualifying_points = 10_000;
        m.stats.calendar_year.qualifying_points = 3_000;
        assert_eq!(
            evaluate(&m, at(2026, 3, 15), &Config::default()).tier,
            "green"
        );
    }

    #[test]
    fn merchants_can_move_the_thresholds() {
        let config = Config {
            gold_threshold: 300,
            reserve_threshold: 1_000,
            ..Config::default()
        };
        assert_eq!(for_stars(299, &config), Tier::Green);
        assert_eq!(for_stars(300, &config), Tier::Gold);
        assert_eq!(for_stars(1_000, &config), Tier::Reserve);
    }

    #[test]
    fn an_unknown_or_missing_tier_earns_as_green() {
        let mut m = member_with_stars(0);
        assert_eq!(Tier::of(&m), Tier::Green);
        m.tier = "platinum".into();
        assert_eq!(Tier::of(&m), Tier::Green);
        m.tier = "reserve".into();
        assert_eq!(Tier::of(&m), Tier::Reserve);
    }
}
