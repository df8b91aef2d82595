//! Partner offers: double points at Coffee Corner, a discount at Cinema City.

use loyalty_sdk::prelude::*;

use crate::config::Config;
use crate::earn::hundredths;

/// The Coffee Corner partner id.
pub const COFFEE_CORNER: &str = "coffee-corner";
/// The Cinema City partner id.
pub const CINEMA_CITY: &str = "cinema-city";

/// The offers a member sees at `partner`: none at partners the club has no
/// agreement with, or whose offer the config withdraws.
pub fn offers(partner: &str, config: &Config) -> Vec<Offer> {
    match partner {
        COFFEE_CORNER if config.coffee_corner_multiplier_percent > 100 => {
            let times = hundredths(config.coffee_corner_multiplier_percent);
            vec![
                Offer::new(
                    "coffee-corner-multiplier",
                    COFFEE_CORNER,
                    format!("x{times} points at Coffee Corner"),
                    OfferKind::EarnMultiplier(config.coffee_corner_multiplier_percent),
                )
                .description(format!(
                    "Your club cashback, multiplied by {times}, on everything you buy at \
                     Coffee Corner; points are available at once"
                )),
            ]
        }
        CINEMA_CITY if config.cinema_city_discount_percent > 0 => {
            let percent = config.cinema_city_discount_percent;
            vec![
                Offer::new(
                    "cinema-city-discount",
                    CINEMA_CITY,
                    format!("{percent}% off at Cinema City"),
                    OfferKind::DiscountPercent(percent),
                )
                .description(format!(
                    "{percent}% off tickets at Cinema City when you show your club card"
                )),
            ]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, ctx_with, day, member_at};

    fn at_partner(partner: &str, c: &Context) -> Vec<Offer> {
        RetailClub::offers(&member_at("bronze"), partner, c).unwrap()
    }

    #[test]
    fn coffee_corner_offers_double_points() {
        let offers = at_partner("coffee-corner", &ctx(day(2026, 9, 21)));
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].kind, OfferKind::EarnMultiplier(200));
        assert_eq!(offers[0].partner, "coffee-corner");
        assert_eq!(offers[0].title, "x2 points at Coffee Corner");
    }

    #[test]
    fn cinema_city_offers_10_percent_off() {
        let offers = at_partner("cinema-city", &ctx(day(2026, 9, 21)));
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].kind, OfferKind::DiscountPercent(10));
        assert_eq!(offers[0].title, "10% off at Cinema City");
    }

    #[test]
    fn an_unknown_partner_has_no_offers() {
        assert!(at_partner("burger-barn", &ctx(day(2026, 9, 21))).is_empty());
        assert!(at_partner("", &ctx(day(2026, 9, 21))).is_empty());
    }

    #[test]
    fn the_config_can_change_or_withdraw_an_offer() {
        let c = ctx_with(
            day(2026, 9, 21),
            r#"{"coffee_corner_multiplier_percent": 150, "cinema_city_discount_percent": 0}"#,
        );
        assert_eq!(
            at_partner("coffee-corner", &c)[0].kind,
            OfferKind::EarnMultiplier(150)
        );
        assert!(at_partner("cinema-city", &c).is_empty());
    }
}
