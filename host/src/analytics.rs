//! The analytics a programme owner lives by, over the whole history or a period of
//! whole calendar months.
//!
//! How they are computed: in a single pass over the merchant's member records. Each
//! record carries the member's activity in monthly buckets (spend, purchases, survey
//! answers, points issued, redeemed, expired: [`crate::stats`]), kept up to date
//! by every write in the same transaction as the change, so the pass reads one
//! record per member and no ledger or event. Budget use comes from the per-period
//! budget records the engine keeps. `BENCHMARKS.md` has the time of a pass at
//! 1,000,000 members.
//!
//! Definitions (`docs/analytics.md` has them with examples):
//! - **repeat-customer rate**: members who bought more than once in the period /
//!   members who bought in the period; **cohorts**: the share of buyers who bought
//!   exactly X times, for each X.
//! - **lapsed members**: repeat customers (more than one purchase ever) whose last
//!   purchase is more than N days before now.
//! - **NPS**: from survey events' 0-10 scores in the period: promoters 9-10, passives
//!   7-8, detractors 0-6; score = % promoters − % detractors (−100 to 100).
//! - **per tier**: members in the tier now, their spend in the period, and their
//!   **lifetime value** = average spend per member since enrolment (net of refunds).
//! - **points**: issued (credited), redeemed (less cancellations), expired and
//!   reversed by refunds in the period, per month; **outstanding liability** = points
//!   members hold now (available and pending, less debts) and their money value.
//! - **budget use**: the value of points issued per budget period against the budget.
//!
//! A period is whole months `from`..=`to` ("YYYY-MM"). Members keep the last 24
//! months of their own activity in buckets; a month more than 24 months before a
//! member's latest activity counts only in whole-history figures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Money, Timestamp};
use crate::engine::{Budget, BudgetUsage, Engine, EngineError, MemberRecord, MerchantSettings};
use crate::stats::{Flows, Survey};

/// Purchases counts at and above this are one cohort ("50 or more").
pub const COHORT_CAP: u32 = 50;

/// A period of whole months, inclusive; `None` ends are open. Months are
/// [`crate::stats::month_index`] numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// First month.
    pub from: Option<i32>,
    /// Last month.
    pub to: Option<i32>,
}

impl Period {
    /// The whole history.
    pub fn all() -> Period {
        Period::default()
    }

    /// The months of "YYYY-MM" strings (either may be absent).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, (String, String)> {
        let month = |name: &str, s: Option<&str>| -> Result<Option<i32>, (String, String)> {
            let Some(s) = s else { return Ok(None) };
            parse_month(s).map(Some).ok_or_else(|| {
                (
                    format!("/{name}"),
                    format!("must be a month YYYY-MM, got {s:?}"),
                )
            })
        };
        let p = Period {
            from: month("from", from)?,
            to: month("to", to)?,
        };
        if let (Some(f), Some(t)) = (p.from, p.to)
            && f > t
        {
            return Err(("/to".into(), "must not be before from".into()));
        }
        Ok(p)
    }

    fn whole(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    fn contains(&self, month: i32) -> bool {
        self.from.is_none_or(|f| month >= f) && self.to.is_none_or(|t| month <= t)
    }

    fn view(&self) -> PeriodView {
        PeriodView {
            from: self.from.map(month_name),
            to: self.to.map(month_name),
        }
    }
}

/// "YYYY-MM" to a month number.
pub fn parse_month(s: &str) -> Option<i32> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

/// A month number as "YYYY-MM".
pub fn month_name(month: i32) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// The months a figure covers ("YYYY-MM", inclusive; absent: open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PeriodView {
    /// First month.
    pub from: Option<String>,
    /// Last month.
    pub to: Option<String>,
}

/// Buyers who bought exactly `purchases` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cohort {
    /// Purchases in the period (the last cohort is "this many or more").
    pub purchases: u32,
    /// Members.
    pub members: u64,
    /// Their share of the buyers (0-1).
    pub share: f64,
}

/// Repeat customers and purchase cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatCustomers {
    /// The period.
    pub period: PeriodView,
    /// Members who bought at least once.
    pub buyers: u64,
    /// Of them, members who bought more than once.
    pub repeat_buyers: u64,
    /// `repeat_buyers / buyers` (0-1; 0 without buyers).
    pub repeat_rate: f64,
    /// Buyers by number of purchases.
    pub cohorts: Vec<Cohort>,
}

/// Net Promoter Score from survey events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Nps {
    /// The period.
    pub period: PeriodView,
    /// Answers.
    pub responses: u64,
    /// Scores 9-10.
    pub promoters: u64,
    /// Scores 7-8.
    pub passives: u64,
    /// Scores 0-6.
    pub detractors: u64,
    /// % promoters − % detractors (−100 to 100); `None` without answers.
    pub score: Option<f64>,
}

/// One tier's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierFigures {
    /// Tier id.
    pub tier: String,
    /// Tier name (from the active programme).
    pub name: String,
    /// Members in the tier now.
    pub members: u64,
    /// Their spend in the period (minor units, net of refunds).
    pub spend: i64,
    /// Their spend since enrolment.
    pub lifetime_spend: i64,
    /// Customer lifetime value: `lifetime_spend / members` (minor units).
    pub lifetime_value: f64,
}

/// Members, spend and lifetime value per tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierAnalytics {
    /// The period (of `spend`).
    pub period: PeriodView,
    /// The programme currency.
    pub currency: String,
    /// Members in all.
    pub members: u64,
    /// Per tier, in the programme's order (tiers no longer in the programme last).
    pub tiers: Vec<TierFigures>,
}

/// Points moved in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MonthPoints {
    /// "YYYY-MM".
    pub month: String,
    /// Issued.
    pub issued: i64,
    /// Redeemed.
    pub redeemed: i64,
    /// Expired.
    pub expired: i64,
}

/// Points issued, redeemed, expired, and the outstanding liability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointsAnalytics {
    /// The period.
    pub period: PeriodView,
    /// Points issued (credited) in the period.
    pub issued: i64,
    /// Points redeemed (less cancellations).
    pub redeemed: i64,
    /// Points expired.
    pub expired: i64,
    /// Points refunds took back.
    pub reversed: i64,
    /// Manual adjustments (signed).
    pub adjusted: i64,
    /// Per month, oldest first.
    pub months: Vec<MonthPoints>,
    /// Points members hold now: available and pending, less debts.
    pub outstanding: i64,
    /// Their value, when the merchant has set what points are worth.
    pub liability: Option<Money>,
}

/// Budget use per period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetAnalytics {
    /// The budget, when set.
    pub budget: Option<Budget>,
    /// Per budget period, oldest first.
    pub periods: Vec<BudgetUsage>,
}

/// A repeat customer who stopped buying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LapsedMember {
    /// Member id.
    pub member: String,
    /// Purchases ever.
    pub purchases: u32,
    /// Their last purchase.
    pub last_purchase: Timestamp,
    /// Spend since enrolment (minor units).
    pub lifetime_spend: i64,
    /// Tier now.
    pub tier: String,
}

/// Lapsed members, for a win-back campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LapsedMembers {
    /// Days without a purchase.
    pub days: u32,
    /// Last purchase before this time.
    pub before: Timestamp,
    /// Lapsed members in all.
    pub total: u64,
    /// A page of them, by member id.
    pub members: Vec<LapsedMember>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next_after: Option<String>,
}

/// Everything at once (what the dashboard shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Analytics {
    /// Repeat customers and cohorts.
    pub repeat_customers: RepeatCustomers,
    /// NPS.
    pub nps: Nps,
    /// Per tier.
    pub tiers: TierAnalytics,
    /// Points and liability.
    pub points: PointsAnalytics,
    /// Budget use.
    pub budget: BudgetAnalytics,
}

#[derive(Default)]
struct TierAcc {
    members: u64,
    spend: i64,
    lifetime_spend: i64,
}

/// What one pass over the members gathers.
#[derive(Default)]
struct Pass {
    members: u64,
    cohorts: BTreeMap<u32, u64>,
    survey: Survey,
    tiers: BTreeMap<String, TierAcc>,
    flows: Flows,
    months: BTreeMap<i32, Flows>,
    outstanding: i64,
}

impl Pass {
    fn add(&mut self, rec: &MemberRecord, period: &Period, now: Timestamp) {
        self.members += 1;
        let s = &rec.stats;
        let tier = self.tiers.entry(rec.tier.clone()).or_default();
        tier.members += 1;
        tier.lifetime_spend += s.lifetime.spend;
        let purchases = if period.whole() {
            tier.spend += s.lifetime.spend;
            self.survey.add(&s.lifetime_survey);
            self.flows.add(&s.lifetime_flows);
            s.lifetime.purchases
        } else {
            let mut purchases = 0;
            for b in s.months.iter().filter(|b| period.contains(b.month)) {
                tier.spend += b.totals.spend;
                purchases += b.totals.purchases;
                self.survey.add(&b.survey);
                self.flows.add(&b.flows);
            }
            purchases
        };
        for b in s.months.iter().filter(|b| period.contains(b.month)) {
            self.months.entry(b.month).or_default().add(&b.flows);
        }
        if purchases > 0 {
            *self.cohorts.entry(purchases.min(COHORT_CAP)).or_default() += 1;
        }
        let b = rec.account.balance(now);
        self.outstanding += b.available + b.pending - b.debt;
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Every figure for `merchant` over `period`, in one pass over its members.
pub fn analytics(
    engine: &Engine,
    merchant: &str,
    period: Period,
    now: Timestamp,
) -> Result<Analytics, EngineError> {
    let settings = engine.merchant(merchant)?;
    let mut pass = Pass::default();
    engine.visit_members(merchant, &mut |rec| {
        pass.add(&rec, &period, now);
        true
    })?;
    let tier_names = engine.tier_catalogue(merchant);
    Ok(Analytics {
        repeat_customers: repeat(&pass, &period),
        nps: nps(&pass, &period),
        tiers: tiers(&pass, &period, &settings, &tier_names),
        points: points(&pass, &period, &settings),
        budget: budget(engine, merchant, &settings)?,
    })
}

fn repeat(pass: &Pass, period: &Period) -> RepeatCustomers {
    let buyers: u64 = pass.cohorts.values().sum();
    let once = pass.cohorts.get(&1).copied().unwrap_or(0);
    RepeatCustomers {
        period: period.view(),
        buyers,
        repeat_buyers: buyers - once,
        repeat_rate: share(buyers - once, buyers),
        cohorts: pass
            .cohorts
            .iter()
            .map(|(&purchases, &members)| Cohort {
                purchases,
                members,
                share: share(members, buyers),
            })
            .collect(),
    }
}

fn nps(pass: &Pass, period: &Period) -> Nps {
    let s = pass.survey;
    let (p, n, d) = (
        u64::from(s.promoters),
        u64::from(s.passives),
        u64::from(s.detractors),
    );
    let responses = p + n + d;
    Nps {
        period: period.view(),
        responses,
        promoters: p,
        passives: n,
        detractors: d,
        score: (responses > 0).then(|| {
            let pct = |x: u64| x as f64 * 100.0 / responses as f64;
            ((pct(p) - pct(d)) * 10.0).round() / 10.0
        }),
    }
}

fn tiers(
    pass: &Pass,
    period: &Period,
    settings: &MerchantSettings,
    catalogue: &[(String, String)],
) -> TierAnalytics {
    let mut left: BTreeMap<&str, &TierAcc> =
        pass.tiers.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let figures = |tier: &str, name: &str, acc: Option<&TierAcc>| {
        let (members, spend, lifetime_spend) =
            acc.map_or((0, 0, 0), |a| (a.members, a.spend, a.lifetime_spend));
        TierFigures {
            tier: tier.to_string(),
            name: name.to_string(),
            members,
            spend,
            lifetime_spend,
            lifetime_value: if members == 0 {
                0.0
            } else {
                lifetime_spend as f64 / members as f64
            },
        }
    };
    let mut out: Vec<TierFigures> = catalogue
        .iter()
        .map(|(id, name)| figures(id, name, left.remove(id.as_str())))
        .collect();
    out.extend(left.into_iter().map(|(id, acc)| figures(id, id, Some(acc))));
    TierAnalytics {
        period: period.view(),
        currency: settings.currency.clone(),
        members: pass.members,
        tiers: out,
    }
}

fn points(pass: &Pass, period: &Period, settings: &MerchantSettings) -> PointsAnalytics {
    PointsAnalytics {
        period: period.view(),
        issued: pass.flows.issued,
        redeemed: pass.flows.redeemed,
        expired: pass.flows.expired,
        reversed: pass.flows.reversed,
        adjusted: pass.flows.adjusted,
        months: pass
            .months
            .iter()
            .map(|(&m, f)| MonthPoints {
                month: month_name(m),
                issued: f.issued,
                redeemed: f.redeemed,
                expired: f.expired,
            })
            .collect(),
        outstanding: pass.outstanding,
        liability: settings.point_value.as_ref().map(|pv| Money {
            minor: pv.value_of(pass.outstanding),
            currency: settings.currency.clone(),
        }),
    }
}

fn budget(
    engine: &Engine,
    merchant: &str,
    settings: &MerchantSettings,
) -> Result<BudgetAnalytics, EngineError> {
    Ok(BudgetAnalytics {
        budget: settings.budget.clone(),
        periods: engine.budget_history(merchant)?,
    })
}

/// Repeat customers whose last purchase is more than `days` days before `now`: up
/// to `limit` of them after the member id `after`, in member id order.
pub fn lapsed(
    engine: &Engine,
    merchant: &str,
    days: u32,
    now: Timestamp,
    after: Option<&str>,
    limit: usize,
) -> Result<LapsedMembers, EngineError> {
    engine.merchant(merchant)?;
    let before = now - i64::from(days) * 86_400;
    let mut total = 0;
    let mut members = Vec::new();
    let mut more = false;
    engine.visit_members(merchant, &mut |rec| {
        let s = &rec.stats;
        let lapsed = s.lifetime.purchases > 1 && s.last_purchase.is_some_and(|t| t < before);
        if lapsed {
            total += 1;
            if after.is_none_or(|a| rec.id.as_str() > a) {
                if members.len() < limit {
                    members.push(LapsedMember {
                        purchases: s.lifetime.purchases,
                        last_purchase: s.last_purchase.unwrap_or_default(),
                        lifetime_spend: s.lifetime.spend,
                        tier: rec.tier.clone(),
                        member: rec.id,
                    });
                } else {
                    more = true;
                }
            }
        }
        true
    })?;
    let next_after = more
        .then(|| members.last().map(|m: &LapsedMember| m.member.clone()))
        .flatten();
    Ok(LapsedMembers {
        days,
        before,
        total,
        members,
        next_after,
    })
}
