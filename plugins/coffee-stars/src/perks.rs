//! Entitlements: a birthday drink for members who have bought before, free refills
//! from Gold up, and a pastry a month at Reserve.

use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::tier::Tier;

/// The birthday drink perk id.
pub const BIRTHDAY_DRINK: &str = "birthday-drink";
/// The free refill perk id.
pub const FREE_REFILL: &str = "free-refill";
/// The monthly pastry perk id.
pub const FREE_PASTRY: &str = "free-pastry";

/// Every perk the programme can grant: id, name, description (for `describe`).
pub const CATALOGUE: [(&str, &str, &str); 3] = [
    (
        BIRTHDAY_DRINK,
        "Birthday drink",
        "One free drink in your birthday month, once you have made a purchase",
    ),
    (
        FREE_REFILL,
        "Free refills",
        "Free refills of brewed coffee or tea during the same visit, at Gold and Reserve",
    ),
    (
        FREE_PASTRY,
        "Monthly pastry",
        "One free pastry each calendar month at Reserve",
    ),
];

/// The perks `member` holds at `now`.
pub fn perks(member: &Member, now: Timestamp, config: &Config) -> Vec<Perk> {
    let mut perks = Vec::new();
    let bought_before = member.stats.lifetime.purchases >= 1;
    if let Some(birthday) = &member.birthday
        && time::is_birthday_month(birthday, now)
        && (bought_before || !config.birthday_requires_purchase)
    {
        // Granted per year, so the host gives one drink per birthday month however
        // often this hook is asked during it.
        perks.push(
            Perk::new(BIRTHDAY_DRINK, "Birthday drink", time::year_key(now))
                .quantity(1)
                .valid_until(time::end_of_month(now)),
        );
    }
    let tier = Tier::of(member);
    if tier >= Tier::Gold {
        // Unlimited while the member holds Gold or Reserve; one fixed grant so moving
        // between the two does not open a second entitlement.
        perks.push(Perk::new(FREE_REFILL, "Free refills", "gold"));
    }
    if tier == Tier::Reserve {
        perks.push(
            Perk::new(FREE_PASTRY, "Monthly pastry", time::month_key(now))
                .quantity(1)
                .valid_until(time::end_of_month(now)),
        );
    }
    perks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoffeeStars;
    use crate::tests::{at, ctx, member_at};
    use loyalty_sdk::testing::context;

    fn born_in_march(purchases: u32) -> Member {
        let mut m = member_at("green");
        m.birthday = Some(Date {
            year: 1990,
            month: 3,
            day: 28,
        });
        m.stats.lifetime.purchases = purchases;
        m
    }

    fn ids(perks: &[Perk]) -> Vec<&str> {
        perks.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn a_member_who_has_bought_gets_one_birthday_drink_in_the_birthday_month() {
        let perks = CoffeeStars::perks(&born_in_march(1), &ctx(at(2026, 3, 2))).unwrap();
        assert_eq!(perks.len(), 1);
        let drink = &perks[0];
        assert_eq!(drink.id, BIRTHDAY_DRINK);
        assert_eq!(drink.quantity, Some(1));
        assert_eq!(drink.grant, "2026");
        assert_eq!(
            drink.valid_until,
            Some(time::timestamp(2026, 3, 31, 23, 59, 59))
        );
    }

    #[test]
    fn there_is_no_birthday_drink_outside_the_birthday_month() {
        let perks = CoffeeStars::perks(&born_in_march(5), &ctx(at(2026, 4, 1))).unwrap();
        assert!(perks.is_empty(), "{perks:?}");
        let perks = CoffeeStars::perks(&born_in_march(5), &ctx(at(2026, 2, 28))).unwrap();
        assert!(perks.is_empty(), "{perks:?}");
    }

    #[test]
    fn a_member_who_never_bought_gets_no_birthday_drink_unless_the_merchant_says_so() {
        let march = at(2026, 3, 10);
        assert!(
            CoffeeStars::perks(&born_in_march(0), &ctx(march))
                .unwrap()
                .is_empty()
        );
        let generous = context(march, r#"{"birthday_requires_purchase": false}"#);
        let perks = CoffeeStars::perks(&born_in_march(0), &generous).unwrap();
        assert_eq!(ids(&perks), [BIRTHDAY_DRINK]);
    }

    #[test]
    fn a_member_without_a_birthday_gets_no_birthday_drink() {
        let mut m = born_in_march(3);
        m.birthday = None;
        assert!(
            CoffeeStars::perks(&m, &ctx(at(2026, 3, 10)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn green_members_hold_no_tier_perks() {
        let perks = CoffeeStars::perks(&member_at("green"), &ctx(at(2026, 3, 10))).unwrap();
        assert!(perks.is_empty());
    }

    #[test]
    fn gold_members_get_unlimited_free_refills_and_no_pastry() {
        let perks = CoffeeStars::perks(&member_at("gold"), &ctx(at(2026, 3, 10))).unwrap();
        assert_eq!(ids(&perks), [FREE_REFILL]);
        assert_eq!(perks[0].quantity, None);
        assert_eq!(perks[0].valid_until, None);
        assert_eq!(perks[0].grant, "gold");
    }

    #[test]
    fn reserve_members_get_refills_and_one_pastry_this_month() {
        let perks = CoffeeStars::perks(&member_at("reserve"), &ctx(at(2026, 3, 10))).unwrap();
        assert_eq!(ids(&perks), [FREE_REFILL, FREE_PASTRY]);
        let pastry = &perks[1];
        assert_eq!(pastry.quantity, Some(1));
        assert_eq!(pastry.grant, "2026-03");
        assert_eq!(
            pastry.valid_until,
            Some(time::timestamp(2026, 3, 31, 23, 59, 59))
        );
    }

    #[test]
    fn a_reserve_member_in_the_birthday_month_holds_all_three_perks() {
        let mut m = born_in_march(10);
        m.tier = "reserve".into();
        let perks = CoffeeStars::perks(&m, &ctx(at(2026, 3, 31))).unwrap();
        assert_eq!(ids(&perks), [BIRTHDAY_DRINK, FREE_REFILL, FREE_PASTRY]);
    }
}
