//! A member's activity statistics: monthly buckets that give the contract's windows.
//!
//! The contract promises month-granular windows (see `program.wit`): the calendar year
//! of `now`, the one before it, the rolling 12 months (the month of `now` and the
//! eleven before), and the membership year (since the last enrolment-anniversary
//! month). Keeping one bucket per month for the last 24 months answers all of them
//! exactly; older buckets only feed the lifetime totals, which are kept separately.
//! Pure logic, no I/O.

use serde::{Deserialize, Serialize};

use crate::domain::{Stats, Timestamp, Totals};
use crate::ledger::LineKind;
use loyalty_sdk::time;

/// Months of buckets kept: enough for the previous calendar year in December.
pub const MONTHS_KEPT: i32 = 24;

/// A month as a single number: `year * 12 + month - 1`.
pub fn month_index(ts: Timestamp) -> i32 {
    let d = time::date(ts);
    d.year * 12 + i32::from(d.month) - 1
}

/// Points movements, from the ledger lines (kept for analytics; plugins do not see
/// them). All are magnitudes except `adjusted`, which is signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    /// Points credited (earned, bonuses, imported balances).
    pub issued: i64,
    /// Points spent on redemptions, less cancelled redemptions.
    pub redeemed: i64,
    /// Points that expired.
    pub expired: i64,
    /// Points refunds took back.
    pub reversed: i64,
    /// Manual adjustments (signed).
    pub adjusted: i64,
}

impl Flows {
    /// Add `other`.
    pub fn add(&mut self, other: &Flows) {
        self.issued += other.issued;
        self.redeemed += other.redeemed;
        self.expired += other.expired;
        self.reversed += other.reversed;
        self.adjusted += other.adjusted;
    }

    fn line(&mut self, kind: LineKind, points: i64) {
        match kind {
            LineKind::Earn => self.issued += points,
            LineKind::Redeem => self.redeemed -= points,
            LineKind::CancelRedemption => self.redeemed -= points,
            LineKind::Expire => self.expired -= points,
            LineKind::Refund => self.reversed -= points,
            LineKind::Adjust => self.adjusted += points,
        }
    }
}

/// Survey answers (0-10) in the Net Promoter Score's groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    /// Scores of 9 and 10.
    pub promoters: u32,
    /// Scores of 7 and 8.
    pub passives: u32,
    /// Scores of 0 to 6.
    pub detractors: u32,
}

impl Survey {
    /// Add `other`.
    pub fn add(&mut self, other: &Survey) {
        self.promoters += other.promoters;
        self.passives += other.passives;
        self.detractors += other.detractors;
    }

    fn answer(&mut self, score: u8) {
        match score {
            9.. => self.promoters += 1,
            7 | 8 => self.passives += 1,
            _ => self.detractors += 1,
        }
    }
}

/// One month's activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// [`month_index`] of the month.
    pub month: i32,
    /// Its totals.
    pub totals: Totals,
    /// Its points movements.
    pub flows: Flows,
    /// Its survey answers.
    pub survey: Survey,
}

/// What one event adds to the statistics (signed: refunds subtract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Spend in minor units (negative for a refund).
    pub spend: i64,
    /// Whether the event is a purchase.
    pub purchase: bool,
    /// Points credited (negative when a refund reverses them).
    pub points: i64,
    /// Qualifying points credited (negative when reversed).
    pub qualifying: i64,
}

/// A member's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityStats {
    /// Since enrolment.
    pub lifetime: Totals,
    /// The last [`MONTHS_KEPT`] months, oldest first.
    pub months: Vec<Bucket>,
    /// Last event of any kind.
    pub last_activity: Option<Timestamp>,
    /// Last purchase.
    pub last_purchase: Option<Timestamp>,
    /// Points movements since enrolment.
    pub lifetime_flows: Flows,
    /// Survey answers since enrolment.
    pub lifetime_survey: Survey,
}

fn add(t: &mut Totals, a: &Activity) {
    t.spend += a.spend;
    t.purchases += u32::from(a.purchase);
    t.events += 1;
    t.points_earned += a.points;
    t.qualifying_points += a.qualifying;
}

fn sum<'a>(buckets: impl Iterator<Item = &'a Bucket>) -> Totals {
    let mut t = Totals::default();
    for b in buckets {
        t.spend += b.totals.spend;
        t.purchases += b.totals.purchases;
        t.events += b.totals.events;
        t.points_earned += b.totals.points_earned;
        t.qualifying_points += b.totals.qualifying_points;
    }
    t
}

impl ActivityStats {
    /// Record an event at `at`. Events may arrive out of order; an event older than
    /// the kept months counts only towards the lifetime totals.
    pub fn record(&mut self, at: Timestamp, activity: Activity) {
        add(&mut self.lifetime, &activity);
        self.last_activity = Some(self.last_activity.map_or(at, |l| l.max(at)));
        if activity.purchase {
            self.last_purchase = Some(self.last_purchase.map_or(at, |l| l.max(at)));
        }
        if let Some(b) = self.bucket(at) {
            add(&mut b.totals, &activity);
        }
    }

    /// Record a ledger line of `points` (signed) of `kind` at `at`.
    pub fn record_line(&mut self, at: Timestamp, kind: LineKind, points: i64) {
        self.lifetime_flows.line(kind, points);
        if let Some(b) = self.bucket(at) {
            b.flows.line(kind, points);
        }
    }

    /// Record a survey answer `score` (0-10) at `at`.
    pub fn record_survey(&mut self, at: Timestamp, score: u8) {
        self.lifetime_survey.answer(score);
        if let Some(b) = self.bucket(at) {
            b.survey.answer(score);
        }
    }

    /// The bucket of `at`'s month (made when missing; months that have left every
    /// window are dropped), or `None` when that month is older than every window.
    fn bucket(&mut self, at: Timestamp) -> Option<&mut Bucket> {
        let month = month_index(at);
        let newest = self.months.last().map_or(month, |b| b.month.max(month));
        if month <= newest - MONTHS_KEPT {
            return None;
        }
        self.months.retain(|b| b.month > newest - MONTHS_KEPT);
        let i = match self.months.binary_search_by_key(&month, |b| b.month) {
            Ok(i) => i,
            Err(i) => {
                self.months.insert(
                    i,
                    Bucket {
                        month,
                        ..Bucket::default()
                    },
                );
                i
            }
        };
        Some(&mut self.months[i])
    }

    /// The contract's view at `now` for a member who enrolled at `enrolled_at`.
    pub fn snapshot(&self, now: Timestamp, enrolled_at: Timestamp) -> Stats {
        let this_month = month_index(now);
        let year = time::date(now).year;
        let in_year =
            |y: i32| move |b: &&Bucket| b.month.div_euclid(12) == y && b.month <= this_month;
        let anniversary = month_index(time::anniversary_start(enrolled_at, now));
        Stats {
            lifetime: self.lifetime.clone(),
            calendar_year: sum(self.months.iter().filter(in_year(year))),
            previous_calendar_year: sum(self.months.iter().filter(in_year(year - 1))),
            rolling_12_months: sum(self
                .months
                .iter()
                .filter(|b| b.month > this_month - 12 && b.month <= this_month)),
            membership_year: sum(self
                .months
                .iter()
                .filter(|b| b.month >= anniversary && b.month <= this_month)),
            last_activity: self.last_activity,
            last_purchase: self.last_purchase,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_sdk::time::timestamp;

    fn purchase(spend: i64, points: i64) -> Activity {
        Activity {
            spend,
            purchase: true,
            points,
            qualifying: points,
        }
    }

    #[test]
    fn windows_follow_the_contracts_month_granular_definitions() {
        let mut s = ActivityStats::default();
        s.record(timestamp(2025, 3, 10, 0, 0, 0), purchase(10_000, 100));
        s.record(timestamp(2025, 11, 5, 0, 0, 0), purchase(20_000, 200));
        s.record(timestamp(2026, 2, 1, 0, 0, 0), purchase(40_000, 400));
        s.record(timestamp(2026, 9, 21, 0, 0, 0), purchase(80_000, 800));
        let now = timestamp(2026, 9, 30, 12, 0, 0);
        let joined = timestamp(2024, 6, 15, 0, 0, 0);
        let v = s.snapshot(now, joined);
        assert_eq!(v.lifetime.points_earned, 1_500);
        assert_eq!(v.calendar_year.spend, 120_000);
        assert_eq!(v.previous_calendar_year.qualifying_points, 300);
        // October 2025 to September 2026.
        assert_eq!(v.rolling_12_months.points_earned, 1_400);
        // Since June 2026 (the second anniversary month).
        assert_eq!(v.membership_year.purchases, 1);
        assert_eq!(v.last_purchase, Some(timestamp(2026, 9, 21, 0, 0, 0)));
    }

    #[test]
    fn refunds_subtract_and_events_out_of_order_land_in_their_month() {
        let mut s = ActivityStats::default();
        s.record(timestamp(2026, 5, 2, 0, 0, 0), purchase(50_000, 500));
        s.record(timestamp(2026, 4, 2, 0, 0, 0), purchase(10_000, 100));
        s.record(
            timestamp(2026, 5, 20, 0, 0, 0),
            Activity {
                spend: -20_000,
                purchase: false,
                points: -200,
                qualifying: -200,
            },
        );
        let v = s.snapshot(timestamp(2026, 5, 31, 0, 0, 0), 0);
        assert_eq!(v.calendar_year.spend, 40_000);
        assert_eq!(v.calendar_year.qualifying_points, 400);
        assert_eq!(v.calendar_year.purchases, 2);
        assert_eq!(v.calendar_year.events, 3);
        assert_eq!(
            s.months.iter().map(|b| b.month).collect::<Vec<_>>(),
            [
                month_index(timestamp(2026, 4, 1, 0, 0, 0)),
                month_index(timestamp(2026, 5, 1, 0, 0, 0))
            ]
        );
    }

    #[test]
    fn only_24_months_are_kept_but_lifetime_keeps_everything() {
        let mut s = ActivityStats::default();
        for m in 0..40 {
            s.record(
                timestamp(2023 + m / 12, (m % 12) as u8 + 1, 1, 0, 0, 0),
                purchase(100, 1),
            );
        }
        assert_eq!(s.months.len(), MONTHS_KEPT as usize);
        assert_eq!(s.lifetime.purchases, 40);
        // An event older than every window counts for lifetime only.
        s.record(timestamp(2020, 1, 1, 0, 0, 0), purchase(100, 1));
        assert_eq!(s.months.len(), MONTHS_KEPT as usize);
        assert_eq!(s.lifetime.purchases, 41);
    }

    #[test]
    fn a_window_does_not_count_months_after_now() {
        let mut s = ActivityStats::default();
        s.record(timestamp(2026, 12, 1, 0, 0, 0), purchase(100, 1));
        let v = s.snapshot(timestamp(2026, 11, 1, 0, 0, 0), 0);
        assert_eq!(v.calendar_year.purchases, 0);
        assert_eq!(v.rolling_12_months.purchases, 0);
    }
}
