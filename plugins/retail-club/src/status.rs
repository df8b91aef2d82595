//! Tiers and the status rule: spend in the calendar year, with last year's tier kept
//! through this year.

use loyalty_sdk::prelude::*;

use crate::config::Config;

/// Tiers, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Every member; 1 % cashback.
    Bronze,
    /// From 500.00 spent in a calendar year; 2 % cashback.
    Silver,
    /// From 1,500.00 spent in a calendar year; 3 % cashback and free shipping.
    Gold,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Bronze, Tier::Silver, Tier::Gold];

    /// The tier id.
    pub fn id(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Bronze => "Bronze",
            Tier::Silver => "Silver",
            Tier::Gold => "Gold",
        }
    }

    /// The tier of an id; unknown or empty ids (a member before the first tier
    /// decision) are Bronze.
    pub fn from_id(id: &str) -> Tier {
        match id {
            "silver" => Tier::Silver,
            "gold" => Tier::Gold,
            _ => Tier::Bronze,
        }
    }

    /// The tier `spend` (minor units, one calendar year) earns.
    pub fn for_spend(spend: i64, config: &Config) -> Tier {
        if spend >= config.gold_spend_minor {
            Tier::Gold
        } else if spend >= config.silver_spend_minor {
            Tier::Silver
        } else {
            Tier::Bronze
        }
    }

    /// The next tier up and the spend it needs; none at Gold.
    fn next(self, config: &Config) -> Option<(Tier, i64)> {
        match self {
            Tier::Bronze => Some((Tier::Silver, config.silver_spend_minor)),
            Tier::Silver => Some((Tier::Gold, config.gold_spend_minor)),
            Tier::Gold => None,
        }
    }
}

/// The member's tier at `ctx.now`: the higher of what this calendar year's spend
/// earns and what last year's earned, as retail clubs keep a tier for the year after
/// it was earned. A tier earned this year is guaranteed to the end of next year; one
/// kept from last year to the end of this year.
pub fn evaluate(member: &Member, ctx: &Context, config: &Config) -> TierDecision {
    let year = time::date(ctx.now).year;
    let spend = member.stats.calendar_year.spend;
    let earned = Tier::for_spend(spend, config);
    let kept = Tier::for_spend(member.stats.previous_calendar_year.spend, config);
    let tier = earned.max(kept);
    let spent = Money::new(spend, ctx.currency.as_str()).display();

    let mut decision = if earned >= kept {
        TierDecision::new(tier.id(), format!("{spent} spent in {year}"))
    } else {
        TierDecision::new(
            tier.id(),
            format!(
                "{} earned in {}, kept through {year} ({spent} spent in {year})",
                tier.name(),
                year - 1
            ),
        )
    };
    if tier > Tier::Bronze {
        let end_of_this_year = time::end_of_year(ctx.now);
        decision = decision.valid_until(if earned == tier {
            time::end_of_year(end_of_this_year + 1)
        } else {
            end_of_this_year
        });
    }
    match tier.next(config) {
        Some((next, target)) => decision
            .progress(next.id(), format!("spend in {year}"), spend, target)
            .window_ends(time::end_of_year(ctx.now)),
        None => decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, ctx_with, day};
    use loyalty_sdk::testing::member;

    fn decide(this_year: i64, last_year: i64) -> TierDecision {
        let mut m = member("m-1");
        m.stats.calendar_year.spend = this_year;
        m.stats.previous_calendar_year.spend = last_year;
        RetailClub::evaluate_tier(&m, &ctx(day(2026, 9, 21))).unwrap()
    }

    #[test]
    fn silver_starts_at_exactly_500_euros_spent_in_the_year() {
        assert_eq!(decide(49_999, 0).tier, "bronze");
        assert_eq!(decide(50_000, 0).tier, "silver");
    }

    #[test]
    fn gold_starts_at_exactly_1500_euros_spent_in_the_year() {
        assert_eq!(decide(149_999, 0).tier, "silver");
        assert_eq!(decide(150_000, 0).tier, "gold");
    }

    #[test]
    fn last_years_gold_is_kept_through_this_year() {
        let d = decide(10_000, 160_000);
        assert_eq!(d.tier, "gold");
        assert_eq!(
            d.reason,
            "Gold earned in 2025, kept through 2026 (EUR 100.00 spent in 2026)"
        );
        assert_eq!(d.valid_until, Some(day(2027, 1, 1) - 1));
        assert_eq!(decide(10_000, 60_000).tier, "silver");
    }

    #[test]
    fn a_tier_earned_this_year_holds_to_the_end_of_next_year() {
        let d = decide(60_000, 0);
        assert_eq!(d.reason, "EUR 600.00 spent in 2026");
        assert_eq!(d.valid_until, Some(day(2028, 1, 1) - 1));
        assert_eq!(
            decide(60_000, 60_000).valid_until,
            Some(day(2028, 1, 1) - 1)
        );
        assert_eq!(decide(0, 0).valid_until, None);
    }

    #[test]
    fn progress_is_spend_this_year_towards_the_next_tier() {
        let p = decide(60_000, 0).progress.unwrap();
        assert_eq!(
            (p.next_tier.as_str(), p.metric.as_str(), p.current, p.target),
            ("gold", "spend in 2026", 60_000, 150_000)
        );
        assert_eq!(p.window_ends, Some(day(2027, 1, 1) - 1));
        let kept = decide(20_000, 70_000).progress.unwrap();
        assert_eq!((kept.next_tier.as_str(), kept.current), ("gold", 20_000));
        assert!(decide(150_000, 0).progress.is_none(), "gold is the top");
    }

    #[test]
    fn thresholds_come_from_the_config() {
        let mut m = member("m-1");
        m.stats.calendar_year.spend = 30_000;
        let c = ctx_with(day(2026, 9, 21), r#"{"silver_spend_minor": 30000}"#);
        assert_eq!(RetailClub::evaluate_tier(&m, &c).unwrap().tier, "silver");
    }

    #[test]
    fn unknown_tier_ids_are_bronze() {
        assert_eq!(Tier::from_id(""), Tier::Bronze);
        assert_eq!(Tier::from_id("platinum"), Tier::Bronze);
        assert_eq!(Tier::from_id("gold"), Tier::Gold);
    }
}
