//! The partner offer: members who link their account at the configured partner
//! (SkyWay, an airline, by default) earn stars on purchases there.

use loyalty_sdk::prelude::*;

use crate::config::Config;

/// The offer's id.
pub const LINKED_EARN: &str = "linked-earn";

/// Whether the member linked their account at `partner`: the merchant sets the
/// profile attribute `<partner>-linked` to `true` when the partner confirms the link.
pub fn is_linked(member: &Member, partner: &str) -> bool {
    member
        .attributes
        .iter()
        .any(|a| a.value == "true" && a.key.strip_suffix("-linked") == Some(partner))
}

/// The offers `member` sees at `partner`: the earn offer at the configured partner
/// (shown to unlinked members too, as the reason to link), nothing elsewhere.
pub fn offers(member: &Member, partner: &str, config: &Config) -> Vec<Offer> {
    if partner.is_empty() || partner != config.partner {
        return Vec::new();
    }
    let percent = config.partner_multiplier_percent;
    let description = if is_linked(member, partner) {
        format!(
            "Your {partner} account is linked: {partner} purchases earn {percent}% of the standard star rate."
        )
    } else {
        format!(
            "Link your {partner} account to earn {percent}% of the standard star rate on {partner} purchases."
        )
    };
    vec![
        Offer::new(
            LINKED_EARN,
            partner,
            format!("{percent}% stars with {partner}"),
            OfferKind::EarnMultiplier(percent),
        )
        .description(description),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoffeeStars;
    use crate::tests::{at, ctx, member_at};
    use loyalty_sdk::testing::context;

    fn linked() -> Member {
        let mut m = member_at("green");
        m.attributes.push(Attribute {
            key: "skyway-linked".into(),
            value: "true".into(),
        });
        m
    }

    #[test]
    fn skyway_offers_double_stars() {
        let offers = CoffeeStars::offers(&linked(), "skyway", &ctx(at(2026, 3, 15))).unwrap();
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].id, LINKED_EARN);
        assert_eq!(offers[0].partner, "skyway");
        assert_eq!(offers[0].kind, OfferKind::EarnMultiplier(200));
    }

    #[test]
    fn unlinked_members_see_the_offer_as_an_invitation_to_link() {
        let offers =
            CoffeeStars::offers(&member_at("green"), "skyway", &ctx(at(2026, 3, 15))).unwrap();
        assert_eq!(offers[0].kind, OfferKind::EarnMultiplier(200));
        assert!(
            offers[0]
                .description
                .starts_with("Link your skyway account")
        );
    }

    #[test]
    fn an_unknown_partner_has_no_offers() {
        let offers = CoffeeStars::offers(&linked(), "cinema-city", &ctx(at(2026, 3, 15))).unwrap();
        assert!(offers.is_empty());
        let offers = CoffeeStars::offers(&linked(), "", &ctx(at(2026, 3, 15))).unwrap();
        assert!(offers.is_empty());
    }

    #[test]
    fn the_merchant_names_the_partner_and_its_multiplier() {
        let ctx = context(
            at(2026, 3, 15),
            r#"{"partner": "delta", "partner_multiplier_percent": 150}"#,
        );
        assert!(
            CoffeeStars::offers(&linked(), "skyway", &ctx)
                .unwrap()
                .is_empty()
        );
        let offers = CoffeeStars::offers(&member_at("gold"), "delta", &ctx).unwrap();
        assert_eq!(offers[0].kind, OfferKind::EarnMultiplier(150));
    }

    #[test]
    fn only_a_true_link_attribute_for_that_partner_counts() {
        let mut m = member_at("green");
        m.attributes.push(Attribute {
            key: "skyway-linked".into(),
            value: "false".into(),
        });
        m.attributes.push(Attribute {
            key: "delta-linked".into(),
            value: "true".into(),
        });
        assert!(!is_linked(&m, "skyway"));
        assert!(is_linked(&m, "delta"));
    }
}
