//! Dates and windows of time, in UTC, without a clock.
//!
//! A plugin never reads the clock: `now` comes in the [`Context`](crate::Context) (the
//! event's time for `on-event`). These helpers turn [`Timestamp`]s (seconds since
//! 1970-01-01T00:00:00Z) into calendar dates and back, and compute the windows loyalty
//! programmes are defined over: the calendar year, the rolling 12 months, the
//! membership year (from the enrolment anniversary), months and ISO weeks.

use crate::{Date, Stats, Timestamp, Totals};

const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Date { year, month, day }
}

/// The timestamp of a UTC date and time of day.
pub fn timestamp(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Timestamp {
    days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3_600
        + i64::from(minute) * 60
        + i64::from(second)
}

/// The UTC calendar date of a timestamp.
pub fn date(ts: Timestamp) -> Date {
    civil_from_days(ts.div_euclid(DAY))
}

/// Midnight UTC at the start of a date.
pub fn start_of_day(date: &Date) -> Timestamp {
    days_from_civil(date.year, date.month, date.day) * DAY
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days in a month.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// The first second of the month `months` after the month containing `ts`
/// (`months` may be negative; 0 is the start of `ts`'s own month).
pub fn start_of_month_offset(ts: Timestamp, months: i32) -> Timestamp {
    let d = date(ts);
    let index = d.year * 12 + i32::from(d.month) - 1 + months;
    timestamp(
        index.div_euclid(12),
        (index.rem_euclid(12) + 1) as u8,
        1,
        0,
        0,
        0,
    )
}

/// The first second of the month containing `ts`.
pub fn start_of_month(ts: Timestamp) -> Timestamp {
    start_of_month_offset(ts, 0)
}

/// The last second of the month containing `ts`.
pub fn end_of_month(ts: Timestamp) -> Timestamp {
    start_of_month_offset(ts, 1) - 1
}

/// The last second of the month `months` after the month containing `ts`: points
/// "expiring six months after the month they were earned" expire at
/// `end_of_month_after(earned_at, 6)`.
pub fn end_of_month_after(ts: Timestamp, months: i32) -> Timestamp {
    start_of_month_offset(ts, months + 1) - 1
}

/// The first second of the calendar year containing `ts`.
pub fn start_of_year(ts: Timestamp) -> Timestamp {
    timestamp(date(ts).year, 1, 1, 0, 0, 0)
}

/// The last second of the calendar year containing `ts`.
pub fn end_of_year(ts: Timestamp) -> Timestamp {
    timestamp(date(ts).year + 1, 1, 1, 0, 0, 0) - 1
}

/// Midnight UTC on the Monday starting the ISO week that contains `ts`.
pub fn start_of_week(ts: Timestamp) -> Timestamp {
    let days = ts.div_euclid(DAY);
    // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
    (days - (days + 3).rem_euclid(7)) * DAY
}

/// A key naming the ISO week containing `ts`, e.g. "2026-W09" (for weekly challenges).
pub fn week_key(ts: Timestamp) -> String {
    // The ISO year is the year of the week's Thursday.
    let thursday = start_of_week(ts) + 3 * DAY;
    let year = date(thursday).year;
    let first_thursday_week = start_of_week(timestamp(year, 1, 4, 0, 0, 0));
    let week = (start_of_week(ts) - first_thursday_week) / (7 * DAY) + 1;
    format!("{year}-W{week:02}")
}

/// A key naming the month containing `ts`, e.g. "2026-03" (for monthly perks).
pub fn month_key(ts: Timestamp) -> String {
    let d = date(ts);
    format!("{:04}-{:02}", d.year, d.month)
}

/// A key naming the year containing `ts`, e.g. "2026".
pub fn year_key(ts: Timestamp) -> String {
    format!("{:04}", date(ts).year)
}

/// Whether `now` falls in the month of `birthday`.
pub fn is_birthday_month(birthday: &Date, now: Timestamp) -> bool {
    date(now).month == birthday.month
}

/// This year's birthday (28 February for 29 February birthdays in common years).
pub fn birthday_in_year(birthday: &Date, year: i32) -> Date {
    let day = birthday.day.min(days_in_month(year, birthday.month));
    Date {
        year,
        month: birthday.month,
        day,
    }
}

/// Whether `now` is within `days_either_side` days of this year's birthday.
pub fn is_near_birthday(birthday: &Date, now: Timestamp, days_either_side: i64) -> bool {
    let year = date(now).year;
    // Check last, this and next year so windows across New Year work.
    (year - 1..=year + 1).any(|y| {
        let b = start_of_day(&birthday_in_year(birthday, y));
        now >= b - days_either_side * DAY && now < b + (days_either_side + 1) * DAY
    })
}

/// A window of time a programme measures activity over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// 1 January to 31 December (UTC) of `now`'s year.
    CalendarYear,
    /// The month containing `now` and the eleven before it.
    Rolling12Months,
    /// From the last enrolment-anniversary month to the month before the next one.
    MembershipYear {
        /// When the member enrolled.
        enrolled_at: Timestamp,
    },
}

impl Window {
    /// The window's first and last second around `now`, inclusive.
    pub fn bounds(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        match *self {
            Window::CalendarYear => (start_of_year(now), end_of_year(now)),
            Window::Rolling12Months => (start_of_month_offset(now, -11), end_of_month(now)),
            Window::MembershipYear { enrolled_at } => {
                let start = anniversary_start(enrolled_at, now);
                (start, start_of_month_offset(start, 12) - 1)
            }
        }
    }

    /// Whether `ts` lies in the window around `now`.
    pub fn contains(&self, ts: Timestamp, now: Timestamp) -> bool {
        let (start, end) = self.bounds(now);
        (start..=end).contains(&ts)
    }

    /// When the window around `now` ends (the last second in it).
    pub fn ends(&self, now: Timestamp) -> Timestamp {
        self.bounds(now).1
    }

    /// The host's activity totals for this window.
    pub fn totals<'a>(&self, stats: &'a Stats) -> &'a Totals {
        match self {
            Window::CalendarYear => &stats.calendar_year,
            Window::Rolling12Months => &stats.rolling_12_months,
            Window::MembershipYear { .. } => &stats.membership_year,
        }
    }
}

/// The first second of the membership year containing `now`: the start of the most
/// recent enrolment-anniversary month at or before `now`.
pub fn anniversary_start(enrolled_at: Timestamp, now: Timestamp) -> Timestamp {
    let joined = date(enrolled_at);
    let today = date(now);
    let months_since =
        (today.year - joined.year) * 12 + i32::from(today.month) - i32::from(joined.month);
    let whole_years = months_since.max(0) / 12;
    start_of_month_offset(enrolled_at, whole_years * 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_across_four_centuries() {
        for days in (-200_000..200_000).step_by(97) {
            let d = civil_from_days(days);
            assert_eq!(days_from_civil(d.year, d.month, d.day), days);
        }
        assert_eq!(timestamp(2026, 11, 23, 0, 0, 0), 1_795_392_000);
        assert_eq!(
            date(1_795_392_000),
            Date {
                year: 2026,
                month: 11,
                day: 23
            }
        );
    }

    #[test]
    fn month_arithmetic_crosses_years() {
        let mid_nov = timestamp(2026, 11, 15, 12, 0, 0);
        assert_eq!(start_of_month(mid_nov), timestamp(2026, 11, 1, 0, 0, 0));
        assert_eq!(end_of_month(mid_nov), timestamp(2026, 12, 1, 0, 0, 0) - 1);
        assert_eq!(
            end_of_month_after(mid_nov, 6),
            timestamp(2027, 6, 1, 0, 0, 0) - 1
        );
        assert_eq!(
            start_of_month_offset(mid_nov, -11),
            timestamp(2025, 12, 1, 0, 0, 0)
        );
        assert_eq!(end_of_month(timestamp(2028, 2, 3, 0, 0, 0)) % DAY, DAY - 1);
        assert_eq!(date(end_of_month(timestamp(2028, 2, 3, 0, 0, 0))).day, 29);
    }

    #[test]
    fn windows_have_the_documented_bounds() {
        let now = timestamp(2026, 3, 10, 8, 0, 0);
        assert_eq!(
            Window::CalendarYear.bounds(now),
            (
                timestamp(2026, 1, 1, 0, 0, 0),
                timestamp(2027, 1, 1, 0, 0, 0) - 1
            )
        );
        assert_eq!(
            Window::Rolling12Months.bounds(now),
            (
                timestamp(2025, 4, 1, 0, 0, 0),
                timestamp(2026, 4, 1, 0, 0, 0) - 1
            )
        );
        let joined = timestamp(2024, 7, 20, 0, 0, 0);
        let w = Window::MembershipYear {
            enrolled_at: joined,
        };
        assert_eq!(
            w.bounds(now),
            (
                timestamp(2025, 7, 1, 0, 0, 0),
                timestamp(2026, 7, 1, 0, 0, 0) - 1
            )
        );
        assert!(w.contains(timestamp(2025, 7, 1, 0, 0, 0), now));
        assert!(!w.contains(timestamp(2025, 6, 30, 23, 59, 59), now));
        // Before the first anniversary, the membership year starts at enrolment month.
        assert_eq!(
            anniversary_start(joined, timestamp(2024, 9, 1, 0, 0, 0)),
            timestamp(2024, 7, 1, 0, 0, 0)
        );
    }

    #[test]
    fn iso_weeks_start_on_monday_and_name_the_iso_year() {
        // 2026-03-12 is a Thursday; its week starts Monday 2026-03-09.
        assert_eq!(
            start_of_week(timestamp(2026, 3, 12, 18, 0, 0)),
            timestamp(2026, 3, 9, 0, 0, 0)
        );
        assert_eq!(week_key(timestamp(2026, 3, 12, 18, 0, 0)), "2026-W11");
        // 2027-01-01 is a Friday, in ISO week 2026-W53.
        assert_eq!(week_key(timestamp(2027, 1, 1, 0, 0, 0)), "2026-W53");
        // 2024-12-30 is a Monday in 2025-W01.
        assert_eq!(week_key(timestamp(2024, 12, 30, 0, 0, 0)), "2025-W01");
    }

    #[test]
    fn birthdays_handle_leap_days_and_new_year() {
        let leap = Date {
            year: 2000,
            month: 2,
            day: 29,
        };
        assert_eq!(birthday_in_year(&leap, 2027).day, 28);
        assert!(is_birthday_month(&leap, timestamp(2027, 2, 1, 0, 0, 0)));
        let new_year = Date {
            year: 1990,
            month: 1,
            day: 2,
        };
        assert!(is_near_birthday(
            &new_year,
            timestamp(2026, 12, 30, 10, 0, 0),
            3
        ));
        assert!(!is_near_birthday(
            &new_year,
            timestamp(2026, 12, 25, 10, 0, 0),
            3
        ));
        assert!(is_near_birthday(
            &new_year,
            timestamp(2027, 1, 2, 23, 59, 59),
            0
        ));
        assert!(!is_near_birthday(
            &new_year,
            timestamp(2027, 1, 3, 0, 0, 0),
            0
        ));
    }

    #[test]
    fn month_and_year_keys_are_zero_padded() {
        assert_eq!(month_key(timestamp(2026, 3, 1, 0, 0, 0)), "2026-03");
        assert_eq!(year_key(timestamp(2026, 3, 1, 0, 0, 0)), "2026");
    }
}
