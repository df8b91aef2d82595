//! Money and rates without floats.
//!
//! Amounts are integer minor units with an ISO 4217 code ([`Money`]). Earn rates and
//! percentages are exact fractions ([`Rate`]), and every multiplication says how it
//! rounds ([`Rounding`]). Intermediate products use 128-bit integers, so no realistic
//! amount overflows.

use crate::Money;

/// How to round a fractional result to a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards negative infinity (floor). The usual rule for points earned.
    Down,
    /// Towards positive infinity (ceiling). The usual rule for prices in points.
    Up,
    /// To the nearest whole number, halves away from zero.
    HalfUp,
    /// To the nearest whole number, halves to the even neighbour (banker's rounding).
    HalfEven,
}

/// An exact rate: `numerator / denominator`.
///
/// `Rate::whole(8)` is 8 per unit, `Rate::new(9, 2)` is 4.5 per unit,
/// `Rate::percent(5)` is 5 %, `Rate::basis_points(250)` is 2.5 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    numerator: i64,
    denominator: i64,
}

impl Rate {
    /// `numerator / denominator`. Panics if the denominator is not positive, which is
    /// a bug in the plugin, not a runtime condition.
    pub const fn new(numerator: i64, denominator: i64) -> Rate {
        assert!(denominator > 0, "a rate's denominator must be positive");
        Rate {
            numerator,
            denominator,
        }
    }

    /// A whole number per unit.
    pub const fn whole(n: i64) -> Rate {
        Rate::new(n, 1)
    }

    /// `p` percent.
    pub const fn percent(p: i64) -> Rate {
        Rate::new(p, 100)
    }

    /// `bp` basis points (hundredths of a percent).
    pub const fn basis_points(bp: i64) -> Rate {
        Rate::new(bp, 10_000)
    }

    /// A rate given in hundredths, as configs often store "4.5" as 450.
    pub const fn hundredths(h: i64) -> Rate {
        Rate::new(h, 100)
    }

    /// The numerator.
    pub const fn numerator(self) -> i64 {
        self.numerator
    }

    /// The denominator (always positive).
    pub const fn denominator(self) -> i64 {
        self.denominator
    }

    /// `value × self`, rounded as asked. Saturates at the bounds of `i64`.
    pub fn apply(self, value: i64, rounding: Rounding) -> i64 {
        divide(
            i128::from(value) * i128::from(self.numerator),
            i128::from(self.denominator),
            rounding,
        )
    }

    /// The product of two rates (e.g. a base rate times a 200 % promotion).
    pub fn times(self, other: Rate) -> Rate {
        let n = i128::from(self.numerator) * i128::from(other.numerator);
        let d = i128::from(self.denominator) * i128::from(other.denominator);
        let g = gcd(n.unsigned_abs(), d.unsigned_abs()).max(1) as i128;
        Rate {
            numerator: clamp(n / g),
            denominator: clamp(d / g).max(1),
        }
    }
}

/// `numerator / denominator` with the given rounding; `denominator` must be positive.
pub fn divide(numerator: i128, denominator: i128, rounding: Rounding) -> i64 {
    debug_assert!(denominator > 0);
    let q = numerator.div_euclid(denominator); // floor, since denominator > 0
    let r = numerator.rem_euclid(denominator); // 0 <= r < denominator
    let rounded = match rounding {
        Rounding::Down => q,
        Rounding::Up => q + i128::from(r != 0),
        Rounding::HalfUp => {
            // Halves away from zero: compare 2r with d, with the tie broken by sign.
            let twice = 2 * r;
            if twice > denominator || (twice == denominator && numerator >= 0) {
                q + 1
            } else {
                q
            }
        }
        Rounding::HalfEven => {
            let twice = 2 * r;
            if twice > denominator || (twice == denominator && q % 2 != 0) {
                q + 1
            } else {
                q
            }
        }
    };
    clamp(rounded)
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The number of minor-unit digits of an ISO 4217 currency (2 for USD, 0 for JPY,
/// 3 for KWD). Unknown codes are taken to have 2.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// How many minor units make one major unit of the currency (100 for USD, 1 for JPY).
pub fn minor_per_major(currency: &str) -> i64 {
    10_i64.pow(minor_digits(currency))
}

/// A whole number with thousands separated by commas, for text people read:
/// `4000` is "4,000", `-1234567` is "-1,234,567".
pub fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Money {
    /// An amount in minor units of `currency`.
    pub fn new(minor: i64, currency: impl Into<String>) -> Money {
        Money {
            minor,
            currency: currency.into(),
        }
    }

    /// Whole major units in the amount, rounded as asked ($12.50 is 12 down, 13 up).
    pub fn major_units(&self, rounding: Rounding) -> i64 {
        divide(
            i128::from(self.minor),
            i128::from(minor_per_major(&self.currency)),
            rounding,
        )
    }

    /// Points earned at `rate` points per major unit: $500.00 at `Rate::whole(8)` is
    /// 4,000. The fraction is taken of the exact amount, not of whole units
    /// ($12.50 at 3 per dollar is 37 rounded down); use [`Money::major_units`] first
    /// for programmes that only count whole units.
    pub fn earn(&self, rate: Rate, rounding: Rounding) -> i64 {
        let n = i128::from(self.minor) * i128::from(rate.numerator());
        let d = i128::from(rate.denominator()) * i128::from(minor_per_major(&self.currency));
        divide(n, d, rounding)
    }

    /// The amount times `rate`, in minor units of the same currency (5 % cashback of
    /// $19.99 is 99.95 cents: 99 `Down`, 100 `HalfUp`).
    pub fn times(&self, rate: Rate, rounding: Rounding) -> Money {
        Money::new(rate.apply(self.minor, rounding), self.currency.clone())
    }

    /// The sum of two amounts, or `None` if the currencies differ or it overflows.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.minor.checked_add(other.minor)?,
            self.currency.clone(),
        ))
    }

    /// The difference of two amounts, or `None` if the currencies differ or it overflows.
    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.minor.checked_sub(other.minor)?,
            self.currency.clone(),
        ))
    }

    /// Formats as "USD 12.50" (for reasons and descriptions shown to people).
    pub fn display(&self) -> String {
        let digits = minor_digits(&self.currency);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            return format!("{} {sign}{abs}", self.currency);
        }
        let unit = 10_u64.pow(digits);
        format!(
            "{} {sign}{}.{:0width$}",
            self.currency,
            abs / unit,
            abs % unit,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_dollar_fare_at_8_miles_per_dollar_earns_4000() {
        assert_eq!(
            Money::new(50_000, "USD").earn(Rate::whole(8), Rounding::Down),
            4_000
        );
    }

    #[test]
    fn fractional_rates_round_as_asked() {
        let fare = Money::new(1_250, "USD"); // $12.50
        assert_eq!(fare.earn(Rate::new(9, 2), Rounding::Down), 56); // 56.25
        assert_eq!(fare.earn(Rate::new(9, 2), Rounding::Up), 57);
        assert_eq!(fare.earn(Rate::whole(3), Rounding::HalfUp), 38); // 37.5
        assert_eq!(fare.earn(Rate::whole(3), Rounding::HalfEven), 38); // 37.5 -> even 38
        assert_eq!(
            Money::new(1_150, "USD").earn(Rate::whole(3), Rounding::HalfEven),
            34
        ); // 34.5 -> 34
    }

    #[test]
    fn currencies_without_minor_units_earn_per_whole_unit() {
        assert_eq!(
            Money::new(1_000, "JPY").earn(Rate::new(1, 100), Rounding::Down),
            10
        );
        assert_eq!(
            Money::new(1_000, "KWD").earn(Rate::whole(1), Rounding::Down),
            1
        );
    }

    #[test]
    fn cashback_percentages_round_explicitly() {
        let basket = Money::new(1_999, "EUR");
        assert_eq!(basket.times(Rate::percent(5), Rounding::Down).minor, 99);
        assert_eq!(basket.times(Rate::percent(5), Rounding::HalfUp).minor, 100);
        assert_eq!(
            basket
                .times(Rate::basis_points(250), Rounding::HalfEven)
                .minor,
            50
        ); // 49.975
    }

    #[test]
    fn negative_amounts_round_towards_the_named_direction() {
        assert_eq!(divide(-7, 2, Rounding::Down), -4);
        assert_eq!(divide(-7, 2, Rounding::Up), -3);
        assert_eq!(divide(-7, 2, Rounding::HalfUp), -4); // away from zero
        assert_eq!(divide(-5, 2, Rounding::HalfEven), -2);
    }

    #[test]
    fn huge_products_do_not_overflow() {
        let big = Money::new(i64::MAX, "USD");
        assert_eq!(
            big.earn(Rate::whole(11), Rounding::Down),
            (i128::from(i64::MAX) * 11 / 100) as i64
        );
        assert_eq!(
            Rate::whole(i64::MAX).apply(i64::MAX, Rounding::Down),
            i64::MAX
        );
    }

    #[test]
    fn rates_multiply_exactly() {
        let doubled = Rate::new(9, 2).times(Rate::percent(200));
        assert_eq!((doubled.numerator(), doubled.denominator()), (9, 1));
    }

    #[test]
    fn money_displays_with_its_minor_digits() {
        assert_eq!(Money::new(4_500, "USD").display(), "USD 45.00");
        assert_eq!(Money::new(-5, "USD").display(), "USD -0.05");
        assert_eq!(Money::new(1_200, "JPY").display(), "JPY 1200");
        assert_eq!(Money::new(1_234, "KWD").display(), "KWD 1.234");
    }

    #[test]
    fn thousands_are_grouped_with_commas() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(4_000), "4,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-1_500), "-1,500");
        assert_eq!(group_thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        assert!(
            Money::new(1, "USD")
                .checked_add(&Money::new(1, "EUR"))
                .is_none()
        );
        assert_eq!(
            Money::new(1, "USD")
                .checked_add(&Money::new(2, "USD"))
                .unwrap()
                .minor,
            3
        );
    }
}
