//! Example programme: airline miles, in the style of American AAdvantage and Vietnam
//! Airlines Lotusmiles.
//!
//! - **Earning.** Miles per US dollar of fare by status: Member 5, Gold 7, Platinum 8,
//!   Platinum Pro 9, Executive Platinum 11 (a $500 fare at Platinum earns 4,000). Only
//!   line items of category `fare` and `surcharge` earn (carrier surcharges earn, as at
//!   AA; `tax` and `fee` do not); a purchase without line items earns on its total.
//!   Flight miles are qualifying (they count towards status) and expire 36 months
//!   after the month they were earned.
//! - **Status** comes from qualifying points in the calendar year: Gold 40,000;
//!   Platinum 75,000; Platinum Pro 125,000; Executive Platinum 200,000. Status earned
//!   in a year holds through the end of the next year.
//! - **Perks** per status: priority boarding and free checked bags from Gold, lounge
//!   access from Platinum, complimentary upgrades from Platinum Pro, and four
//!   systemwide upgrades a year for Executive Platinum.
//! - **Redemption**: award tickets at fixed prices in miles plus taxes and fees in cash,
//!   and Cash & Miles: pay part of a fare with miles (1 cent each) and the rest in cash.
//! - **Partners**: a hotel (10 miles per USD, 150 % for Platinum and above) and a car
//!   rental (3 miles per USD plus 500 per rental), earned on `partner-purchase` events.
//!   Partner miles do not count for status. A `check-in` at a hotel earns nothing: the
//!   stay earns once, when the hotel reports the bill. An unknown partner earns nothing.
//! - **Joining** gives 500 miles that do not count for status.
//!
//! Every number is in the config (`config.schema.json`); the defaults are these.

mod config;

use config::{CASH_AND_MILES, Config, FlightConfig, Partner, PartnerKind, TierConfig};
use loyalty_sdk::money::group_thousands as thousands;
use loyalty_sdk::prelude::*;

pub use config::CONFIG_SCHEMA;

/// The programme.
pub struct AirlineMiles;

/// Status levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Member.
    Member,
    /// Gold.
    Gold,
    /// Platinum.
    Platinum,
    /// Platinum Pro.
    PlatinumPro,
    /// Executive Platinum.
    ExecutivePlatinum,
}

impl Status {
    /// Every status, lowest first.
    pub const ALL: [Status; 5] = [
        Status::Member,
        Status::Gold,
        Status::Platinum,
        Status::PlatinumPro,
        Status::ExecutivePlatinum,
    ];

    /// The tier id.
    pub fn id(self) -> &'static str {
        match self {
            Status::Member => "member",
            Status::Gold => "gold",
            Status::Platinum => "platinum",
            Status::PlatinumPro => "platinum-pro",
            Status::ExecutivePlatinum => "executive-platinum",
        }
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Member => "Member",
            Status::Gold => "Gold",
            Status::Platinum => "Platinum",
            Status::PlatinumPro => "Platinum Pro",
            Status::ExecutivePlatinum => "Executive Platinum",
        }
    }

    /// The status of a tier id; unknown or empty ids are Member.
    pub fn from_id(id: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| s.id() == id)
            .unwrap_or(Status::Member)
    }

    fn next(self) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s > self)
    }
}

/// Categories of line items that earn miles.
const EARNING_CATEGORIES: [&str; 2] = ["fare", "surcharge"];

fn unsupported_currency(found: &str, expected: &str) -> PluginError {
    PluginError::new(
        "unsupported-currency",
        format!("amounts must be in {expected}, not {found}"),
    )
}

fn expiry(months: u32, now: Timestamp) -> Timestamp {
    time::end_of_month_after(now, months as i32)
}

impl AirlineMiles {
    fn flight(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        let config = FlightConfig::load(ctx)?;
        let now = ctx.now;
        let Some(amount) = &event.amount else {
            return Ok(Outcome::new());
        };
        if amount.currency != config.currency {
            return Err(unsupported_currency(&amount.currency, &config.currency));
        }
        let eligible = if event.items.is_empty() {
            amount.minor
        } else {
            event
                .items
                .iter()
                .filter(|i| EARNING_CATEGORIES.contains(&i.category.as_str()))
                .map(|i| i.amount)
                .sum()
        };
        let status = Status::from_id(&member.tier);
        let rate = config.miles_per_usd.for_status(status);
        let miles = Money::new(eligible, config.currency.as_str())
            .earn(Rate::whole(rate.into()), Rounding::Down);
        if miles <= 0 {
            return Ok(Outcome::new());
        }
        let route = event.attribute("route").unwrap_or("flight");
        let reason = format!(
            "{} miles: {route} at {} ({rate} per USD)",
            thousands(miles),
            status.name()
        );
        Ok(Outcome::new().credit(
            Credit::new(miles, reason)
                .qualifying()
                .expires_at(expiry(config.expiry_months, now)),
        ))
    }

    fn partner_activity(
        member: &Member,
        event: &Event,
        config: &Config,
        now: Timestamp,
    ) -> Result<Outcome, PluginError> {
        let (Some(partner_id), Some(amount)) = (&event.partner, &event.amount) else {
            return Ok(Outcome::new());
        };
        let Some(partner) = config.partner(partner_id) else {
            // Activity at a partner we have no agreement with earns nothing.
            return Ok(Outcome::new());
        };
        if amount.currency != config.currency {
            return Err(unsupported_currency(&amount.currency, &config.currency));
        }
        let status = Status::from_id(&member.tier);
        let mut rate = Rate::whole(partner.miles_per_usd.into());
        if partner.kind == PartnerKind::Hotel && status >= Status::Platinum {
            rate = rate.times(Rate::percent(config.elite_hotel_multiplier_percent.into()));
        }
        let miles = amount.earn(rate, Rounding::Down) + partner.bonus_miles;
        if miles <= 0 {
            return Ok(Outcome::new());
        }
        let mut credit = Credit::new(
            miles,
            format!("{} miles: {}", thousands(miles), partner.name),
        )
        .expires_at(expiry(config.expiry_months, now));
        if partner.qualifying {
            credit = credit.qualifying();
        }
        Ok(Outcome::new().credit(credit))
    }

    fn award(member: &Member, reward: &str, config: &Config) -> RedemptionAnswer {
        let Some(award) = config.awards.iter().find(|a| a.id == reward) else {
            return RedemptionAnswer::reject(
                "unknown-reward",
                format!("no award called {reward:?}"),
            );
        };
        if member.balance < award.miles {
            return RedemptionAnswer::reject(
                "insufficient-points",
                format!(
                    "{} needs {} miles; the balance is {}",
                    award.name,
                    thousands(award.miles),
                    thousands(member.balance)
                ),
            );
        }
        let cash =
            (award.fees_minor > 0).then(|| Money::new(award.fees_minor, config.currency.as_str()));
        let description = match &cash {
            Some(c) => format!(
                "{}: {} miles + {}",
                award.name,
                thousands(award.miles),
                c.display()
            ),
            None => format!("{}: {} miles", award.name, thousands(award.miles)),
        };
        RedemptionAnswer::accept(award.id.as_str(), award.miles, cash, description)
    }

    fn cash_and_miles(
        member: &Member,
        fare: &Money,
        requested: Option<i64>,
        config: &Config,
    ) -> RedemptionAnswer {
        if fare.currency != config.currency {
            let e = unsupported_currency(&fare.currency, &config.currency);
            return RedemptionAnswer::reject(e.code, e.message);
        }
        if fare.minor <= 0 {
            return RedemptionAnswer::reject("invalid-request", "the fare must be positive");
        }
        // A mile is worth `cents_per_mile_hundredths` hundredths of a cent. Miles to
        // cover the whole fare round up, so miles never pay for more than the fare.
        let per_mile = Rate::new(config.cents_per_mile_hundredths.into(), 100);
        let full = loyalty_sdk::money::divide(
            i128::from(fare.minor) * i128::from(per_mile.denominator()),
            i128::from(per_mile.numerator()),
            Rounding::Up,
        );
        let minimum = config.cash_and_miles_min_miles;
        let insufficient = |wanted: i64| {
            RedemptionAnswer::reject(
                "insufficient-points",
                format!(
                    "{} miles needed; the balance is {}",
                    thousands(wanted),
                    thousands(member.balance)
                ),
            )
        };
        let wanted = match requested {
            Some(points) if points > member.balance => return insufficient(points),
            Some(points) => points,
            // Asking for no particular amount means "as many as I have": a balance
            // under the minimum is the member's shortfall, not a small request.
            None if member.balance < minimum && full >= minimum => return insufficient(minimum),
            None => member.balance,
        };
        let miles = wanted.min(full);
        if miles < minimum {
            return RedemptionAnswer::reject(
                "below-minimum",
                format!("Cash & Miles uses at least {} miles", thousands(minimum)),
            );
        }
        // What the miles cover rounds down, so the cash part rounds up.
        let covered = per_mile.apply(miles, Rounding::Down).min(fare.minor);
        let cash = Money::new(fare.minor - covered, fare.currency.as_str());
        let description = format!(
            "Cash & Miles for a {} fare: {} miles + {}",
            fare.display(),
            thousands(miles),
            cash.display()
        );
        let cash = (cash.minor > 0).then_some(cash);
        RedemptionAnswer::accept(CASH_AND_MILES, miles, cash, description)
    }

    fn offer(partner: &Partner, status: Status, config: &Config) -> Offer {
        match partner.kind {
            PartnerKind::Hotel => {
                let elite = status >= Status::Platinum;
                let percent = if elite {
                    config.elite_hotel_multiplier_percent
                } else {
                    100
                };
                let per_usd = Rate::whole(partner.miles_per_usd.into())
                    .times(Rate::percent(percent.into()))
                    .apply(1, Rounding::Down);
                Offer::new(
                    format!("{}-stay", partner.id),
                    partner.id.as_str(),
                    format!("{per_usd} miles per USD at {}", partner.name),
                    OfferKind::EarnMultiplier(percent),
                )
                .description(if elite {
                    format!(
                        "Platinum and above earn {percent} % of the usual {} miles per USD",
                        partner.miles_per_usd
                    )
                } else {
                    format!("Earn {} miles per USD on room rates", partner.miles_per_usd)
                })
            }
            PartnerKind::CarRental => Offer::new(
                format!("{}-rental", partner.id),
                partner.id.as_str(),
                format!(
                    "{} bonus miles per rental at {}",
                    thousands(partner.bonus_miles),
                    partner.name
                ),
                OfferKind::BonusPoints(partner.bonus_miles),
            )
            .description(format!("Plus {} miles per USD", partner.miles_per_usd)),
        }
    }
}

impl Program for AirlineMiles {
    fn describe() -> ProgramInfo {
        let config = Config::default();
        let mut info = ProgramInfo::new("Airline miles", env!("CARGO_PKG_VERSION"))
            .description("Miles per USD of fare by status, calendar-year status, award and Cash & Miles redemption, hotel and car partners")
            .perk("priority-boarding", "Priority boarding", "Board early, Gold and above")
            .perk("checked-bag", "Free checked bags", "Free checked bags on every flight, Gold and above")
            .perk("lounge", "Lounge access", "Admirals-style lounges, Platinum and above")
            .perk("upgrade", "Complimentary upgrades", "Upgrades on domestic flights, Platinum Pro and above")
            .perk("systemwide-upgrade", "Systemwide upgrades", "Four a year for Executive Platinum")
            .config(CONFIG_SCHEMA, config::DEFAULT_CONFIG);
        for status in Status::ALL {
            info = info.tier(status.id(), status.name());
        }
        for award in &config.awards {
            info = info.reward(award.id.as_str(), award.name.as_str(), Some(award.miles));
        }
        info.reward(CASH_AND_MILES, "Cash & Miles", None)
    }

    fn on_enroll(_member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let config = Config::load(ctx)?;
        let mut enrolment = Enrolment::new().tier(Status::Member.id());
        if config.welcome_bonus > 0 {
            // A welcome bonus is not flown: it does not count towards status.
            enrolment = enrolment.credit(
                Credit::new(config.welcome_bonus, "Welcome bonus")
                    .expires_at(expiry(config.expiry_months, ctx.now)),
            );
        }
        Ok(enrolment)
    }

    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        match event.kind {
            // The hot path: a flight reads only the config it needs.
            EventKind::Purchase => Self::flight(member, event, ctx),
            EventKind::PartnerPurchase => {
                let config = Config::load(ctx)?;
                Self::partner_activity(member, event, &config, ctx.now)
            }
            // Refunds are reversed by the host; other events earn nothing here.
            _ => Ok(Outcome::new()),
        }
    }

    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        // Run after every event: reads only the thresholds.
        let config = TierConfig::load(ctx)?;
        let year = time::date(ctx.now).year;
        let this_year = member.stats.calendar_year.qualifying_points;
        let last_year = member.stats.previous_calendar_year.qualifying_points;
        let earned = config.thresholds.status_for(this_year);
        let kept = config.thresholds.status_for(last_year);
        let end_of_this_year = time::end_of_year(ctx.now);
        let end_of_next_year = time::timestamp(year + 2, 1, 1, 0, 0, 0) - 1;
        let mut decision = if earned >= kept {
            let d = TierDecision::new(
                earned.id(),
                format!("{} qualifying points in {year}", thousands(this_year)),
            );
            if earned > Status::Member {
                d.valid_until(end_of_next_year)
            } else {
                d
            }
        } else {
            TierDecision::new(
                kept.id(),
                format!(
                    "status earned in {} with {} qualifying points",
                    year - 1,
                    thousands(last_year)
                ),
            )
            .valid_until(end_of_this_year)
        };
        let held = earned.max(kept);
        if let Some(next) = held.next() {
            decision = decision
                .progress(
                    next.id(),
                    format!("qualifying points in {year}"),
                    this_year,
                    config.thresholds.for_status(next),
                )
                .window_ends(end_of_this_year);
        }
        Ok(decision)
    }

    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let status = Status::from_id(&member.tier);
        if status == Status::Member {
            return Ok(Vec::new());
        }
        // Unlimited perks last while the status does, so the grant is the tier: a
        // member who moves up gets the new tier's version (two bags, not one) once.
        let tier = status.id();
        let bags = match status {
            Status::Gold => 1,
            Status::Platinum => 2,
            _ => 3,
        };
        let mut perks = vec![
            Perk::new("priority-boarding", "Priority boarding", tier),
            Perk::new(
                "checked-bag",
                format!(
                    "{bags} free checked bag{} per flight",
                    if bags > 1 { "s" } else { "" }
                ),
                tier,
            ),
        ];
        if status >= Status::Platinum {
            perks.push(Perk::new("lounge", "Lounge access", tier));
        }
        if status >= Status::PlatinumPro {
            perks.push(Perk::new(
                "upgrade",
                "Complimentary upgrades on domestic flights",
                tier,
            ));
        }
        if status == Status::ExecutivePlatinum {
            // Certificates are counted: a new allowance of four each calendar year,
            // used up within it.
            perks.push(
                Perk::new(
                    "systemwide-upgrade",
                    "Systemwide upgrade",
                    time::year_key(ctx.now),
                )
                .quantity(4)
                .valid_until(time::end_of_year(ctx.now)),
            );
        }
        Ok(perks)
    }

    fn offers(member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let config = Config::load(ctx)?;
        let status = Status::from_id(&member.tier);
        Ok(config
            .partner(partner)
            .map(|p| vec![Self::offer(p, status, &config)])
            .unwrap_or_default())
    }

    fn quote_redemption(
        member: &Member,
        request: &RedemptionRequest,
        ctx: &Context,
    ) -> Result<RedemptionAnswer, PluginError> {
        let config = Config::load(ctx)?;
        Ok(match (&request.reward, &request.amount) {
            (Some(reward), _) if reward != CASH_AND_MILES => Self::award(member, reward, &config),
            (_, Some(fare)) => Self::cash_and_miles(member, fare, request.points, &config),
            _ => RedemptionAnswer::reject(
                "invalid-request",
                "name an award, or give a fare amount for Cash & Miles",
            ),
        })
    }
}

export_program!(AirlineMiles);

#[cfg(test)]
mod tests;
