//! Simulation: replay a merchant's recorded history (or a supplied history file)
//! through a candidate programme and through the active one, each in scratch state
//! that never touches live data, and compare the outcomes side by side.
//!
//! Each side is a whole engine of its own ([`Engine`] over [`MemoryStorage`]) with
//! one programme, so a replay applies exactly the rules live operations do: ledger
//! lots, expiry, refunds, tiers, perks, redemptions, budget. The two sides run on two
//! threads at once; neither shares anything with the live engine except the history
//! it reads.
//!
//! How history maps to scratch operations:
//! - an enrolment enrols (running `on-enroll`); its referrer, when they are a member
//!   in the scratch state, is credited as live;
//! - an event is posted (`on-event`, `evaluate-tier`, `perks`). A member the replay
//!   has not seen enrol (they joined before the range) is enrolled first, at their
//!   real enrolment time with their profile as the live state has it now (nothing,
//!   for a supplied file);
//! - a committed redemption is quoted by the side's programme and committed; a
//!   cancellation cancels it;
//! - an adjustment is applied as it was.
//!
//! An operation the side's state refuses (a redemption the candidate prices beyond
//! the balance, a refund of a purchase before the range) is counted as refused; one
//! where the programme fails or answers an error is counted as a failure, and the
//! first few are kept with their input.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::engine::{
    Adjustment, BudgetPeriod, Engine, EngineError, EnrolRequest, FixedProgrammes, JournalCursor,
    MemberRecord, MerchantSettings, Programme, QUOTE_TTL_SECS, QuoteAnswer, Recorded,
};
use crate::jobs::Counters;
use crate::pool::PluginPool;
use crate::stats::Flows;
use crate::storage::MemoryStorage;

/// Operations read from the history at a time.
const PAGE: usize = 2048;
/// Failures kept with their input, per side.
const FAILURES_KEPT: usize = 5;
/// Members listed in the comparison.
const DIFFERENCES_KEPT: usize = 20;

/// What a simulation replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// The candidate: an uploaded version of the merchant's programme (it need not be
    /// active).
    pub candidate: String,
    /// Replay recorded history from this time (inclusive; default: the beginning).
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// Up to this time (exclusive; default: now).
    #[serde(default)]
    pub to: Option<Timestamp>,
    /// The candidate's config (default: the merchant's config when the candidate's
    /// schema accepts it, else the candidate's default config).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Replay this uploaded history file instead of the recorded history.
    #[serde(default)]
    pub history: Option<String>,
}

/// Members in one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierCount {
    /// Tier id.
    pub tier: String,
    /// Members in it.
    pub members: u64,
}

/// Points issued in one budget period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PeriodUse {
    /// The period ("2026-11", "2026-q4", "2026": the merchant's budget period, or
    /// months without a budget).
    pub period: String,
    /// Points issued.
    pub points: i64,
    /// Their value in minor units of the programme currency (`None` without a
    /// point value).
    pub value: Option<i64>,
    /// The budget for the period, when there is one.
    pub limit: Option<i64>,
    /// Whether the value went beyond the budget.
    pub over_budget: bool,
}

/// An operation that failed, with its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// Its position in the replay (0-based).
    pub index: u64,
    /// The operation.
    pub operation: Recorded,
    /// What went wrong.
    pub error: String,
}

/// One side's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SideReport {
    /// The programme version.
    pub version: String,
    /// Points issued (credits: earned, bonuses, referrals).
    pub points_issued: i64,
    /// Their value in minor units (`None` without a point value).
    pub value_issued: Option<i64>,
    /// Points spent on redemptions (less cancellations).
    pub points_redeemed: i64,
    /// Points that expired.
    pub points_expired: i64,
    /// Points refunds took back.
    pub points_reversed: i64,
    /// Redemptions committed.
    pub redemptions: u64,
    /// Points members hold at the end (available and pending, less debts).
    pub liability_points: i64,
    /// Their value in minor units (`None` without a point value).
    pub liability_value: Option<i64>,
    /// Members at the end.
    pub members: u64,
    /// Members per tier at the end, in the programme's tier order.
    pub tiers: Vec<TierCount>,
    /// Tier changes (not counting the first tier at enrolment).
    pub tier_changes: u64,
    /// Points issued per budget period.
    pub budget: Vec<PeriodUse>,
    /// Operations the side's state refused (not enough points, nothing to refund).
    pub refused: u64,
    /// Operations where the programme failed or answered an error.
    pub failures: u64,
    /// The first few failures, with their input.
    pub first_failures: Vec<Failure>,
}

/// A member whose outcome differs between the two sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberDifference {
    /// Member id.
    pub member: String,
    /// Points issued to them by the active programme.
    pub active_points: i64,
    /// By the candidate.
    pub candidate_points: i64,
    /// Their tier at the end under the active programme.
    pub active_tier: String,
    /// Under the candidate.
    pub candidate_tier: String,
}

/// A simulation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SimulationReport {
    /// Operations replayed (through each side).
    pub operations: u64,
    /// The first operation's time.
    pub first_at: Option<Timestamp>,
    /// The last operation's time (balances are taken at it).
    pub last_at: Option<Timestamp>,
    /// The programme currency.
    pub currency: String,
    /// The active programme's outcome.
    pub active: SideReport,
    /// The candidate's outcome.
    pub candidate: SideReport,
    /// The members whose outcome differs most (points issued, then tier).
    pub differences: Vec<MemberDifference>,
    /// How long the replay took, in milliseconds.
    pub elapsed_ms: u64,
    /// Operations per second through both sides together.
    pub operations_per_second: f64,
}

/// Where the operations come from.
pub enum Source {
    /// The merchant's recorded history in `[from, to)`.
    Journal {
        /// From (inclusive).
        from: Option<Timestamp>,
        /// To (exclusive).
        to: Option<Timestamp>,
    },
    /// A history file: one [`Recorded`] per line (JSON), in order.
    File(std::path::PathBuf),
}

/// A programme and its config, for one side.
pub struct Contender {
    /// The programme.
    pub programme: Arc<dyn Programme>,
    /// The merchant settings the side runs with (the config among them).
    pub settings: MerchantSettings,
}

/// Why a simulation did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The history could not be read.
    #[error("the history could not be read: {0}")]
    History(String),
    /// The scratch state failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// Replay `source` through `active` and `candidate` for `merchant`, reading live
/// profiles from `live`. Counts progress into `progress` and stops when it is
/// cancelled.
pub fn run(
    live: &Engine,
    merchant: &str,
    source: &Source,
    active: Contender,
    candidate: Contender,
    progress: &Counters,
) -> Result<SimulationReport, SimulationError> {
    let started = Instant::now();
    let total = match source {
        Source::Journal { from, to } => live.journal_len(merchant, *from, *to)?,
        Source::File(path) => count_lines(path)?,
    };
    // Both sides count their operations into `done`.
    progress.total.store(total * 2, Ordering::Relaxed);
    let currency = active.settings.currency.clone();
    let (a, c) = std::thread::scope(|s| {
        let a = s.spawn(|| replay(live, merchant, source, active, progress));
        let c = s.spawn(|| replay(live, merchant, source, candidate, progress));
        (join(a), join(c))
    });
    let (a, c) = (a?, c?);
    let differences = differences(&a.members, &c.members);
    let elapsed = started.elapsed();
    let operations = a.operations;
    Ok(SimulationReport {
        operations,
        first_at: a.first_at,
        last_at: a.last_at,
        currency,
        active: a.report,
        candidate: c.report,
        differences,
        elapsed_ms: elapsed.as_millis() as u64,
        operations_per_second: operations as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

fn join<T>(
    h: std::thread::ScopedJoinHandle<'_, Result<T, SimulationError>>,
) -> Result<T, SimulationError> {
    h.join().unwrap_or_else(|_| {
        Err(SimulationError::History(
            "the replay thread panicked".into(),
        ))
    })
}

fn count_lines(path: &std::path::Path) -> Result<u64, SimulationError> {
    let file = std::fs::File::open(path).map_err(|e| SimulationError::History(e.to_string()))?;
    let mut n = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| SimulationError::History(e.to_string()))?;
        n += u64::from(!line.trim().is_empty());
    }
    Ok(n)
}

/// Reads a source a page at a time.
enum Reader<'a> {
    Journal {
        live: &'a Engine,
        merchant: &'a str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        cursor: Option<JournalCursor>,
        done: bool,
    },
    File {
        lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
        line: u64,
    },
}

impl Reader<'_> {
    fn next_page(&mut self) -> Result<Option<Vec<Recorded>>, SimulationError> {
        match self {
            Reader::Journal {
                live,
                merchant,
                from,
                to,
                cursor,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                let (page, next) = live.journal(merchant, *from, *to, cursor.as_ref(), PAGE)?;
                *done = next.is_none();
                *cursor = next;
                Ok(Some(page).filter(|p| !p.is_empty() || !*done))
            }
            Reader::File { lines, line } => {
                let mut page = Vec::with_capacity(PAGE);
                for text in lines.by_ref() {
                    *line += 1;
                    let text = text.map_err(|e| SimulationError::History(e.to_string()))?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let op = serde_json::from_str(&text)
                        .map_err(|e| SimulationError::History(format!("line {}: {e}", *line)))?;
                    page.push(op);
                    if page.len() == PAGE {
                        break;
                    }
                }
                Ok(Some(page).filter(|p| !p.is_empty()))
            }
        }
    }
}

/// One side's result.
struct Side {
    report: SideReport,
    operations: u64,
    first_at: Option<Timestamp>,
    last_at: Option<Timestamp>,
    /// Per member: points issued and tier at the end.
    members: HashMap<String, (i64, String)>,
}

/// Replays operations into one side's scratch engine.
struct Replayer<'a> {
    live: &'a Engine,
    scratch: Engine,
    merchant: &'a str,
    // Live redemption ids to this side's.
    redemptions: HashMap<String, String>,
    index: u64,
    redeemed: u64,
    refused: u64,
    failures: u64,
    first_failures: Vec<Failure>,
}

fn replay(
    live: &Engine,
    merchant: &str,
    source: &Source,
    side: Contender,
    progress: &Counters,
) -> Result<Side, SimulationError> {
    let programmes = Arc::new(FixedProgrammes::new());
    programmes.set(merchant, side.programme.clone());
    // Guest code runs on this thread; the pool is never used.
    let pool = Arc::new(PluginPool::new(1, 1, Duration::from_secs(1)));
    let scratch =
        Engine::inline(Arc::new(MemoryStorage::new()), programmes, pool).without_journal();
    scratch.create_merchant(side.settings.clone())?;
    let mut reader = match source {
        Source::Journal { from, to } => Reader::Journal {
            live,
            merchant,
            from: *from,
            to: *to,
            cursor: None,
            done: false,
        },
        Source::File(path) => Reader::File {
            lines: std::io::BufReader::new(
                std::fs::File::open(path).map_err(|e| SimulationError::History(e.to_string()))?,
            )
            .lines(),
            line: 0,
        },
    };
    let mut r = Replayer {
        live,
        scratch,
        merchant,
        redemptions: HashMap::new(),
        index: 0,
        redeemed: 0,
        refused: 0,
        failures: 0,
        first_failures: Vec::new(),
    };
    let (mut first_at, mut last_at) = (None, None);
    while let Some(page) = reader.next_page()? {
        if progress.cancel.load(Ordering::Relaxed) {
            return Err(SimulationError::Cancelled);
        }
        for op in &page {
            first_at = first_at.or(Some(op.at()));
            last_at = Some(last_at.map_or(op.at(), |l: Timestamp| l.max(op.at())));
            r.apply(op)?;
            r.index += 1;
        }
        progress
            .done
            .fetch_add(page.len() as u64, Ordering::Relaxed);
    }
    let operations = r.index;
    let (report, members) = r.report(&side, last_at.unwrap_or_default())?;
    Ok(Side {
        report,
        operations,
        first_at,
        last_at,
        members,
    })
}

/// How an operation's error counts.
enum Outcome {
    Done,
    Refused,
    Failed(String),
}

fn classify(e: EngineError) -> Result<Outcome, SimulationError> {
    Ok(match e {
        EngineError::Plugin(_) | EngineError::PluginRefused { .. } => {
            Outcome::Failed(e.to_string())
        }
        EngineError::Storage(_) | EngineError::Busy(_) => return Err(e.into()),
        _ => Outcome::Refused,
    })
}

impl Replayer<'_> {
    fn apply(&mut self, op: &Recorded) -> Result<(), SimulationError> {
        let outcome = match self.run(op) {
            Ok(()) => Outcome::Done,
            Err(e) => classify(e)?,
        };
        match outcome {
            Outcome::Done => {}
            Outcome::Refused => self.refused += 1,
            Outcome::Failed(error) => {
                self.failures += 1;
                if self.first_failures.len() < FAILURES_KEPT {
                    self.first_failures.push(Failure {
                        index: self.index,
                        operation: op.clone(),
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, op: &Recorded) -> Result<(), EngineError> {
        let (s, m) = (&self.scratch, self.merchant);
        match op {
            Recorded::Enrol {
                member,
                at,
                birthday,
                attributes,
                referred_by,
            } => {
                let referral_code = match referred_by {
                    Some(r) => s.member(m, r, *at).ok().and_then(|v| v.referral_code),
                    None => None,
                };
                let req = EnrolRequest {
                    member: member.clone(),
                    enrolled_at: *at,
                    birthday: birthday.clone(),
                    attributes: attributes.clone(),
                    referral_code,
                };
                s.enrol(m, &req)?;
            }
            Recorded::Event { member, event } => match s.post_event(m, member, event) {
                Err(EngineError::UnknownMember(_)) => {
                    self.enrol_from_live(member, event.occurred_at)?;
                    self.scratch.post_event(m, member, event)?;
                }
                other => {
                    other?;
                }
            },
            Recorded::Redemption {
                member,
                id,
                request,
                at,
            } => {
                let quoted = match s.quote(m, member, request, *at, QUOTE_TTL_SECS) {
                    Err(EngineError::UnknownMember(_)) => {
                        self.enrol_from_live(member, *at)?;
                        self.scratch
                            .quote(m, member, request, *at, QUOTE_TTL_SECS)?
                    }
                    other => other?,
                };
                match quoted.value {
                    QuoteAnswer::Quoted(q) => {
                        let committed = self.scratch.commit_redemption(m, &q.id, *at)?;
                        self.redemptions.insert(id.clone(), committed.value.id);
                        self.redeemed += 1;
                    }
                    QuoteAnswer::Rejected(r) => {
                        return Err(EngineError::Invalid {
                            pointer: String::new(),
                            message: format!("the programme declined the redemption: {r:?}"),
                        });
                    }
                }
            }
            Recorded::Cancel { id, at } => {
                let Some(ours) = self.redemptions.get(id) else {
                    return Err(EngineError::UnknownRedemption(id.clone()));
                };
                s.cancel_redemption(m, ours, *at)?;
                self.redeemed = self.redeemed.saturating_sub(1);
            }
            Recorded::Adjust {
                member,
                id,
                points,
                reason,
                by,
                at,
            } => {
                let adj = Adjustment {
                    id: id.clone(),
                    points: *points,
                    reason: reason.clone(),
                    by: by.clone(),
                };
                s.adjust(m, member, &adj, *at)?;
            }
        }
        Ok(())
    }

    /// Enrol a member who joined before the replayed range: at their real enrolment
    /// time (or `at`) with their live profile, when the live state knows them.
    fn enrol_from_live(&self, member: &str, at: Timestamp) -> Result<(), EngineError> {
        let known = self.live.member(self.merchant, member, at).ok();
        let req = EnrolRequest {
            member: member.to_string(),
            enrolled_at: known.as_ref().map_or(at, |v| v.enrolled_at.min(at)),
            birthday: known.as_ref().and_then(|v| v.birthday.clone()),
            attributes: known.map(|v| v.attributes).unwrap_or_default(),
            referral_code: None,
        };
        self.scratch.enrol(self.merchant, &req)?;
        Ok(())
    }

    /// The side's report at `end`, and each member's points issued and tier.
    #[allow(clippy::type_complexity)]
    fn report(
        &self,
        side: &Contender,
        end: Timestamp,
    ) -> Result<(SideReport, HashMap<String, (i64, String)>), EngineError> {
        let settings = &side.settings;
        let value = |points: i64| settings.point_value.as_ref().map(|pv| pv.value_of(points));
        let mut flows = Flows::default();
        let mut liability = 0;
        let mut tiers: BTreeMap<String, u64> = BTreeMap::new();
        let mut tier_changes = 0;
        let mut months: BTreeMap<i32, i64> = BTreeMap::new();
        let mut members = HashMap::new();
        self.scratch
            .visit_members(self.merchant, &mut |rec: MemberRecord| {
                flows.add(&rec.stats.lifetime_flows);
                let b = rec.account.balance(end);
                liability += b.available + b.pending - b.debt;
                *tiers.entry(rec.tier.clone()).or_default() += 1;
                tier_changes += rec.tier_changes.saturating_sub(1);
                for bucket in &rec.stats.months {
                    *months.entry(bucket.month).or_default() += bucket.flows.issued;
                }
                members.insert(rec.id, (rec.stats.lifetime_flows.issued, rec.tier));
                true
            })?;
        let order = side.programme.info().tiers.iter().map(|t| t.id.clone());
        let mut tier_list: Vec<TierCount> = order
            .filter_map(|t| {
                tiers
                    .remove(&t)
                    .map(|members| TierCount { tier: t, members })
            })
            .collect();
        tier_list.extend(
            tiers
                .into_iter()
                .map(|(tier, members)| TierCount { tier, members }),
        );
        Ok((
            SideReport {
                version: side.programme.version().to_string(),
                points_issued: flows.issued,
                value_issued: value(flows.issued),
                points_redeemed: flows.redeemed,
                points_expired: flows.expired,
                points_reversed: flows.reversed,
                redemptions: self.redeemed,
                liability_points: liability,
                liability_value: value(liability),
                members: members.len() as u64,
                tiers: tier_list,
                tier_changes,
                budget: periods(settings, &months),
                refused: self.refused,
                failures: self.failures,
                first_failures: self.first_failures.clone(),
            },
            members,
        ))
    }
}

/// Points issued per month, gathered into the merchant's budget periods.
pub fn periods(settings: &MerchantSettings, months: &BTreeMap<i32, i64>) -> Vec<PeriodUse> {
    let period = settings
        .budget
        .as_ref()
        .map_or(BudgetPeriod::Month, |b| b.period);
    let mut out: Vec<PeriodUse> = Vec::new();
    for (&month, &points) in months {
        let at = loyalty_sdk::time::timestamp(
            month.div_euclid(12),
            (month.rem_euclid(12) + 1) as u8,
            1,
            0,
            0,
            0,
        );
        let key = period.key(at);
        match out.last_mut() {
            Some(last) if last.period == key => last.points += points,
            _ => out.push(PeriodUse {
                period: key,
                points,
                value: None,
                limit: settings.budget.as_ref().map(|b| b.limit.minor),
                over_budget: false,
            }),
        }
    }
    for p in &mut out {
        p.value = settings
            .point_value
            .as_ref()
            .map(|pv| pv.value_of(p.points));
        p.over_budget = matches!((p.value, p.limit), (Some(v), Some(l)) if v > l);
    }
    out
}

/// The members whose points issued differ most between the sides (then those whose
/// tier differs), at most [`DIFFERENCES_KEPT`].
fn differences(
    active: &HashMap<String, (i64, String)>,
    candidate: &HashMap<String, (i64, String)>,
) -> Vec<MemberDifference> {
    let none = (0, String::new());
    let mut all: Vec<MemberDifference> = active
        .keys()
        .chain(candidate.keys().filter(|k| !active.contains_key(*k)))
        .filter_map(|id| {
            let a = active.get(id).unwrap_or(&none);
            let c = candidate.get(id).unwrap_or(&none);
            (a != c).then(|| MemberDifference {
                member: id.clone(),
                active_points: a.0,
                candidate_points: c.0,
                active_tier: a.1.clone(),
                candidate_tier: c.1.clone(),
            })
        })
        .collect();
    let key = |d: &MemberDifference| {
        (
            std::cmp::Reverse((d.candidate_points - d.active_points).unsigned_abs()),
            d.active_tier == d.candidate_tier,
            d.member.clone(),
        )
    };
    if all.len() > DIFFERENCES_KEPT {
        all.select_nth_unstable_by_key(DIFFERENCES_KEPT, key);
        all.truncate(DIFFERENCES_KEPT);
    }
    all.sort_by_key(key);
    all
}
