//! Perks: a birthday voucher in the birthday month, and free shipping at Gold.

use loyalty_sdk::prelude::*;

use crate::status::Tier;

/// The birthday voucher's perk id.
pub const BIRTHDAY_VOUCHER: &str = "birthday-voucher";
/// The free-shipping perk id.
pub const FREE_SHIPPING: &str = "free-shipping";

/// Every perk the programme grants: id, name, description.
pub const CATALOGUE: [(&str, &str, &str); 2] = [
    (
        BIRTHDAY_VOUCHER,
        "Birthday voucher",
        "One voucher in the member's birthday month, valid to the end of that month",
    ),
    (
        FREE_SHIPPING,
        "Free shipping",
        "Free shipping on every web-shop order while the member is Gold",
    ),
];

/// The perks a member holds at `now`. The birthday voucher's grant is the year, so
/// the host creates one voucher a year and a used one stays used.
pub fn perks(member: &Member, now: Timestamp) -> Vec<Perk> {
    let mut perks = Vec::new();
    if let Some(birthday) = &member.birthday
        && time::is_birthday_month(birthday, now)
    {
        perks.push(
            Perk::new(BIRTHDAY_VOUCHER, CATALOGUE[0].1, time::year_key(now))
                .quantity(1)
                .valid_until(time::end_of_month(now)),
        );
    }
    if Tier::from_id(&member.tier) == Tier::Gold {
        perks.push(Perk::new(FREE_SHIPPING, CATALOGUE[1].1, Tier::Gold.id()));
    }
    perks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, day, member_at};
    use loyalty_sdk::Date;

    fn born(m: &mut Member, month: u8, day: u8) {
        m.birthday = Some(Date {
            year: 1990,
            month,
            day,
        });
    }

    fn held(m: &Member, now: Timestamp) -> Vec<Perk> {
        RetailClub::perks(m, &ctx(now)).unwrap()
    }

    #[test]
    fn a_birthday_in_september_gives_one_voucher_for_2026_valid_to_30_september() {
        let mut m = member_at("silver");
        born(&mut m, 9, 30);
        let perks = held(&m, day(2026, 9, 2));
        assert_eq!(
            perks,
            [Perk::new("birthday-voucher", "Birthday voucher", "2026")
                .quantity(1)
                .valid_until(day(2026, 10, 1) - 1)]
        );
    }

    #[test]
    fn there_is_no_voucher_outside_the_birthday_month_or_without_a_birthday() {
        let mut m = member_at("silver");
        assert!(held(&m, day(2026, 9, 2)).is_empty());
        born(&mut m, 10, 1);
        assert!(held(&m, day(2026, 9, 30) + 86_399).is_empty());
        assert_eq!(held(&m, day(2026, 10, 1)).len(), 1);
    }

    #[test]
    fn gold_members_get_unlimited_free_shipping_as_well() {
        let mut m = member_at("gold");
        born(&mut m, 9, 21);
        let perks = held(&m, day(2026, 9, 21));
        let ids: Vec<&str> = perks.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["birthday-voucher", "free-shipping"]);
        let shipping = &perks[1];
        assert_eq!(
            (
                shipping.quantity,
                shipping.valid_until,
                shipping.grant.as_str()
            ),
            (None, None, "gold")
        );
    }

    #[test]
    fn silver_members_get_no_free_shipping() {
        assert!(held(&member_at("silver"), day(2026, 9, 21)).is_empty());
    }
}
