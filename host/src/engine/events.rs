//! Events: purchases, refunds linked to their purchase, and custom events. Each runs
//! `on-event`, then `evaluate-tier` and `perks`, and the whole outcome is one batch.

use super::error::invalid;
use super::journal::encode_event_entry;
use super::{
    BudgetUsage, Credited, Ctx, Done, Engine, EngineError, Entitlement, EventRecord, EventResult,
    MemberRecord, MerchantSettings, OnExceed, PerksKept, Programme, Refused, TierChange,
    TierResult, check_member_id, check_time, encode, encode_bin, fingerprint, lock,
};
use crate::domain::{Event, Money, Timestamp};
use crate::ledger::Earned;
use crate::sandbox::{Hook, Session};
use crate::stats::Activity;
use crate::storage::{Batch, Key, Space};
use crate::webhooks::{EventKind, announce};

/// An event's idempotency fingerprint: SHA-256 of its journal entry (the member and
/// the event, binary, [`encode_event_entry`]), which the event writes anyway.
pub(super) fn event_print(entry: &[u8]) -> String {
    fingerprint(&[entry])
}

/// The fingerprint event records written before session 18 hold: SHA-256 of the
/// member and the event's JSON. Encoding the event as JSON took about 1.5 % of the
/// server's CPU under load; a retry of such an event still matches it.
fn legacy_event_print(member: &str, event: &Event) -> String {
    fingerprint(&[member.as_bytes(), &encode(event)])
}

/// The idempotency key of an event.
pub(super) fn event_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"event", id.as_bytes()])
}

/// The budget state of one operation: the period's usage, read under the merchant's
/// budget lock (held by the caller until the batch is applied).
pub(super) struct BudgetState {
    pub usage: BudgetUsage,
    pub changed: bool,
}

impl Engine {
    /// The budget state of an operation at `at` for a merchant with a budget: the
    /// period's usage, to be read and written under the merchant's budget lock (the
    /// caller holds it until the batch is applied).
    pub(super) fn budget_state(
        &self,
        settings: &MerchantSettings,
        at: Timestamp,
    ) -> Result<Option<BudgetState>, EngineError> {
        match &settings.budget {
            Some(b) => Ok(Some(BudgetState {
                usage: self.load_usage(&settings.id, &b.period.key(at))?,
                changed: false,
            })),
            None => Ok(None),
        }
    }

    /// Points a refund reversed (taken back, or owed as debt) no longer count as
    /// issued: they come off the usage of the budget period their purchase was in (this
    /// operation's, or an earlier one's, written in `batch`), at the point's worth now,
    /// never below nothing. Called under the merchant's budget lock.
    fn give_back_budget(
        &self,
        settings: &MerchantSettings,
        budget: &mut Option<BudgetState>,
        issued_at: Timestamp,
        points: i64,
        batch: &mut Batch,
    ) -> Result<(), EngineError> {
        let (Some(cfg), Some(pv), Some(state)) =
            (&settings.budget, &settings.point_value, budget.as_mut())
        else {
            return Ok(());
        };
        if points <= 0 {
            return Ok(());
        }
        let value = pv.value_of(points);
        let give_back = |u: &mut BudgetUsage| {
            u.points = u.points.saturating_sub(points).max(0);
            u.value = u.value.saturating_sub(value).max(0);
        };
        let period = cfg.period.key(issued_at);
        if period == state.usage.period {
            give_back(&mut state.usage);
            state.changed = true;
        } else {
            let mut usage = self.load_usage(&settings.id, &period)?;
            if usage.points > 0 || usage.value > 0 {
                give_back(&mut usage);
                put_usage(batch, &settings.id, &usage);
            }
        }
        Ok(())
    }
}

/// Add the budget usage to the batch when the operation changed it.
pub(super) fn put_budget(batch: &mut Batch, merchant: &str, budget: &Option<BudgetState>) {
    if let Some(b) = budget.as_ref().filter(|b| b.changed) {
        put_usage(batch, merchant, &b.usage);
    }
}

/// Add one period's budget usage to the batch.
fn put_usage(batch: &mut Batch, merchant: &str, usage: &BudgetUsage) {
    batch.put(
        Space::Budget,
        Key::merchant(merchant, &[usage.period.as_bytes()]),
        encode(usage),
    );
}

/// The refund being applied to its purchase's record.
pub(super) struct Refund<'a> {
    original: &'a mut EventRecord,
    original_id: String,
    fraction: (i64, i64),
    amount: i64,
}

impl Engine {
    /// Post `event` for `member`. Idempotent by event id: a retry with the same request
    /// answers the original result; the same id with another request is a conflict.
    pub fn post_event(
        &self,
        merchant: &str,
        member: &str,
        event: &Event,
    ) -> Result<Done<EventResult>, EngineError> {
        check_member_id(member, "/member")?;
        if event.id.is_empty() || event.id.len() > 128 {
            return Err(invalid("/event/id", "must be 1-128 characters"));
        }
        if event.id.starts_with(REFERRAL_PREFIX) {
            return Err(invalid(
                "/event/id",
                format!(
                    "ids beginning {REFERRAL_PREFIX:?} are the engine's own (a referrer's reward)"
                ),
            ));
        }
        check_time(event.occurred_at, "/occurred_at")?;
        check_amounts(event)?;
        let settings = self.merchant(merchant)?;
        let entry = encode_event_entry(member, event);
        let print = event_print(&entry);
        let key = event_key(merchant, &event.id);
        // The event id is the merchant's, not the member's: two members posting one id
        // at once must not both find it unused.
        let _g = self.lock_member_and(merchant, member, "event", &event.id);
        if let Some(done) = self.replay_event(&key, &event.id, &print, || {
            legacy_event_print(member, event)
        })? {
            return Ok(done);
        }
        let programme = self.programme(merchant)?;
        let mut rec = self.load_active(merchant, member)?;
        let mut batch = Batch::new();

        // A refund's purchase: the same member's, not refunded beyond its amount.
        let mut original: Option<(String, EventRecord)> = None;
        if event.kind == "refund" {
            let id = event.original_event.clone().unwrap_or_default();
            match self.event_record(merchant, &id)? {
                Some(orig) => original = Some((id, orig)),
                None => {
                    return Err(EngineError::Refund {
                        original: id,
                        reason: "no such event".into(),
                    });
                }
            }
        }
        let refund = match original.as_mut() {
            Some((id, orig)) => Some(refund_of(orig, id.clone(), member, event)?),
            None => None,
        };

        // With a budget, its period's usage is read and written under the merchant's
        // budget lock, held until the batch is applied.
        let budget_lock = settings.budget.as_ref().map(|_| self.budget_lock(merchant));
        let _budget_guard = budget_lock.as_deref().map(lock);
        let mut budget = self.budget_state(&settings, event.occurred_at)?;

        let config = self.config_text(&settings, &*programme);
        let ctx = Ctx::new(merchant, event.occurred_at, &config, &settings.currency);
        let mut record = self.apply_event(
            &settings,
            &*programme,
            &mut Session::new(),
            &ctx,
            &mut rec,
            event,
            refund,
            &mut budget,
            &mut batch,
        )?;
        if let Some((id, orig)) = &original {
            batch.put(Space::Idempotency, event_key(merchant, id), orig.stored(id));
        }
        put_budget(&mut batch, merchant, &budget);
        record.fingerprint = print;
        let value = record.result.clone();
        self.announce_event(&mut batch, merchant, event, &value);
        batch.put(Space::Idempotency, key, record.stored(&event.id));
        self.record_event(&mut batch, merchant, event.occurred_at, entry);
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done { value, ticket })
    }

    /// The webhook events an event's outcome announces, in its own batch.
    fn announce_event(&self, batch: &mut Batch, merchant: &str, event: &Event, r: &EventResult) {
        let subs = &self.subscriptions;
        let earned: i64 = r.credited.iter().map(|c| c.points).sum();
        if earned > 0 {
            announce(
                subs,
                batch,
                merchant,
                EventKind::PointsEarned,
                event.occurred_at,
                || {
                    serde_json::json!({
                        "member": r.member, "event": r.event, "kind": r.kind,
                        "points": earned, "credits": r.credited, "balance": r.balance,
                    })
                },
            );
        }
        if let Some(from) = &r.tier.changed_from {
            announce(
                subs,
                batch,
                merchant,
                EventKind::TierChanged,
                event.occurred_at,
                || {
                    serde_json::json!({
                        "member": r.member, "event": r.event, "from": from,
                        "to": r.tier.tier, "reason": r.tier.reason,
                    })
                },
            );
        }
    }

    /// A retry's original answer, or a conflict, or `None` for a new event.
    fn replay_event(
        &self,
        key: &Key,
        id: &str,
        print: &str,
        legacy_print: impl FnOnce() -> String,
    ) -> Result<Option<Done<EventResult>>, EngineError> {
        let Some(bytes) = self.storage.get(Space::Idempotency, key)? else {
            return Ok(None);
        };
        let rec = EventRecord::from_stored(&bytes, id)?;
        if rec.fingerprint != print && rec.fingerprint != legacy_print() {
            return Err(EngineError::Conflict {
                scope: "event",
                id: id.to_string(),
            });
        }
        Ok(Some(Done {
            value: rec.result,
            // The original may still be waiting for its flush: so does its retry.
            ticket: self.commit.current(),
        }))
    }

    /// Apply one event to `rec` (loaded and locked by the caller), adding everything
    /// but the member record itself to `batch`. Returns the event's record.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_event(
        &self,
        settings: &MerchantSettings,
        programme: &dyn Programme,
        session: &mut Session,
        ctx: &Ctx<'_>,
        rec: &mut MemberRecord,
        event: &Event,
        refund: Option<Refund<'_>>,
        budget: &mut Option<BudgetState>,
        batch: &mut Batch,
    ) -> Result<EventRecord, EngineError> {
        let at = event.occurred_at;
        rec.account.settle(at);
        let snapshot = Self::snapshot(rec, at);
        let outcome = programme
            .on_event(session, &snapshot, event, ctx)?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::OnEvent,
                error,
            })?;

        // Credits, within the budget.
        let mut credited = Vec::new();
        let mut refused = Vec::new();
        let mut earned = Vec::new();
        let mut qualifying = Vec::new();
        let mut over_budget = false;
        let (mut points, mut qualifying_points) = (0, 0);
        for c in outcome.credits {
            if let Some(reason) = charge_budget(settings, budget, c.points, &mut over_budget) {
                refused.push(Refused {
                    points: c.points,
                    credit_reason: c.reason,
                    reason,
                });
                continue;
            }
            let lot = rec.account.credit(
                c.points,
                at,
                c.expires_at,
                c.pending_until,
                &c.reason,
                Some(&event.id),
            )?;
            earned.push(Earned {
                lot,
                points: c.points,
                reversed: 0,
            });
            qualifying.push(c.qualifying);
            points += c.points;
            if c.qualifying {
                qualifying_points += c.points;
            }
            credited.push(Credited {
                points: c.points,
                reason: c.reason,
                qualifying: c.qualifying,
                expires_at: c.expires_at,
                pending_until: c.pending_until,
            });
        }

        // A refund reverses its purchase's points.
        let mut reversed = 0;
        let mut spend = 0;
        if let Some(r) = refund {
            let before: Vec<i64> = r.original.earned.iter().map(|e| e.reversed).collect();
            reversed = rec.account.reverse(
                &mut r.original.earned,
                r.fraction,
                at,
                &format!("refund of {}", r.original_id),
                &event.id,
            );
            for (i, e) in r.original.earned.iter().enumerate() {
                if r.original.qualifying.get(i).copied().unwrap_or(false) {
                    qualifying_points -= e.reversed - before[i];
                }
            }
            points -= reversed;
            self.give_back_budget(settings, budget, r.original.at, reversed, batch)?;
            r.original.refunded += r.amount;
            // Spend counts purchases in the programme's currency: a refund takes back
            // only what its purchase added.
            if r.original.kind == "purchase" {
                spend = -in_currency(
                    &r.original.amount.as_ref().map(|m| Money {
                        minor: r.amount,
                        currency: m.currency.clone(),
                    }),
                    &settings.currency,
                );
            }
        } else if event.kind == "purchase" {
            spend = in_currency(&event.amount, &settings.currency);
        }
        rec.stats.record(
            at,
            Activity {
                spend,
                purchase: event.kind == "purchase",
                points,
                qualifying: qualifying_points,
            },
        );
        if let Some(score) = event.score.filter(|_| event.kind == "survey") {
            rec.stats.record_survey(at, score.min(10));
        }

        if let Some(state) = outcome.state {
            rec.state = state;
        }
        let new_badges: Vec<String> = outcome
            .badges
            .into_iter()
            .filter(|b| rec.badges.insert(b.clone()))
            .collect();
        rec.annotations.extend(outcome.annotations);

        let tier = self.decide_tier(programme, session, ctx, rec, at, Some(&event.id), batch)?;
        let new_perks = self.refresh_perks(programme, session, ctx, rec, at)?;
        let balance = rec.account.balance(at);
        Ok(EventRecord {
            member: rec.id.clone(),
            kind: event.kind.clone(),
            fingerprint: String::new(),
            at,
            amount: event.amount.clone(),
            earned,
            qualifying,
            refunded: 0,
            partner: event.partner.clone(),
            result: EventResult {
                event: event.id.clone(),
                member: rec.id.clone(),
                kind: event.kind.clone(),
                plugin_version: programme.version().to_string(),
                credited,
                refused,
                reversed,
                over_budget,
                tier,
                new_badges,
                new_perks,
                balance,
            },
        })
    }

    /// Run `evaluate-tier` and record a change.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide_tier(
        &self,
        programme: &dyn Programme,
        session: &mut Session,
        ctx: &Ctx<'_>,
        rec: &mut MemberRecord,
        at: Timestamp,
        event: Option<&str>,
        batch: &mut Batch,
    ) -> Result<TierResult, EngineError> {
        let decision = programme
            .evaluate_tier(session, &Self::snapshot(rec, at), ctx)?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::EvaluateTier,
                error,
            })?;
        let mut changed_from = None;
        if decision.tier != rec.tier {
            let change = TierChange {
                from: rec.tier.clone(),
                to: decision.tier.clone(),
                at,
                reason: decision.reason.clone(),
                event: event.map(str::to_string),
            };
            self.put_tier_change(batch, ctx.merchant, rec, &change);
            changed_from = Some(std::mem::replace(&mut rec.tier, decision.tier.clone()));
            rec.tier_since = at;
        }
        rec.tier_reason = decision.reason.clone();
        rec.tier_progress = decision.progress.clone();
        rec.tier_valid_until = decision.valid_until;
        Ok(TierResult {
            tier: decision.tier,
            changed_from,
            reason: decision.reason,
            progress: decision.progress,
        })
    }

    /// Run `perks`: the member's entitlements become what the hook returns (one per
    /// id and grant; a grant still returned keeps what was consumed, one no longer
    /// returned is withdrawn, expired ones are dropped). Returns the new perk ids.
    pub(super) fn refresh_perks(
        &self,
        programme: &dyn Programme,
        session: &mut Session,
        ctx: &Ctx<'_>,
        rec: &mut MemberRecord,
        at: Timestamp,
    ) -> Result<Vec<String>, EngineError> {
        let perks = programme
            .perks(session, &Self::snapshot(rec, at), ctx)?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::Perks,
                error,
            })?;
        // The answer the held perks were made from, with none of them expired: they
        // stay as they are (and, kept apart, are neither read nor written).
        // (A member with none, answered none, stays as they are without one.)
        let answer = (!perks.is_empty() || rec.perks_kept != PerksKept::Inline)
            .then(|| perks_digest(&perks));
        if let PerksKept::Apart {
            answer: Some(last),
            until,
            ..
        } = rec.perks_kept
            && answer == Some(last)
            && at <= until
        {
            return Ok(Vec::new());
        }
        self.read_perks(ctx.merchant, rec)?;
        // The hook answers the entitlements the member holds now: a grant it still
        // returns keeps its consumption (and takes the programme's current name,
        // quantity and validity), a new one is granted, and one it no longer returns
        // (the member dropped the tier it came with) is withdrawn.
        let mut held = Vec::with_capacity(perks.len());
        let mut new = Vec::new();
        for p in perks {
            if held
                .iter()
                .any(|e: &Entitlement| e.id == p.id && e.grant == p.grant)
            {
                continue;
            }
            match rec
                .perks
                .iter()
                .position(|e| e.id == p.id && e.grant == p.grant)
            {
                Some(i) => {
                    let mut e = rec.perks.swap_remove(i);
                    e.name = p.name;
                    e.quantity = p.quantity;
                    e.valid_until = p.valid_until;
                    held.push(e);
                }
                None => {
                    new.push(p.id.clone());
                    held.push(Entitlement {
                        id: p.id,
                        name: p.name,
                        grant: p.grant,
                        quantity: p.quantity,
                        used: 0,
                        valid_until: p.valid_until,
                        granted_at: at,
                    });
                }
            }
        }
        held.retain(|e| e.valid_until.is_none_or(|v| v >= at));
        rec.perks = held;
        if let PerksKept::Apart { answer: a, .. } = &mut rec.perks_kept {
            *a = answer;
        } else if !rec.perks.is_empty() {
            rec.perks_kept = PerksKept::Apart {
                answer,
                until: i64::MAX,
                read: Some(Vec::new()),
            };
        }
        Ok(new)
    }
}

/// A digest of a `perks` answer (the first 8 bytes of SHA-256 of its binary form).
fn perks_digest(perks: &[crate::domain::Perk]) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(encode_bin(&perks));
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

/// The amount in the programme currency's minor units (0 in another currency).
/// The prefix of the ids of events the engine makes itself: a referrer's reward for
/// member `m` is event `referral:m`. Posted events may not use it.
pub(super) const REFERRAL_PREFIX: &str = "referral:";

/// The largest amount of money an event may carry ([`crate::domain::MAX_MINOR`]), so
/// that a member's spend, summed over any number of purchases, cannot overflow.
const MAX_AMOUNT: i64 = crate::domain::MAX_MINOR;

/// Refuse amounts beyond [`MAX_AMOUNT`] (negative ones the API's schema refuses).
fn check_amounts(event: &Event) -> Result<(), EngineError> {
    let bad = |m: i64| !(0..=MAX_AMOUNT).contains(&m);
    if let Some(m) = event.amount.as_ref().filter(|m| bad(m.minor)) {
        return Err(invalid(
            "/amount/minor",
            format!("must be from 0 to {MAX_AMOUNT}, not {}", m.minor),
        ));
    }
    if let Some((i, item)) = event
        .items
        .iter()
        .enumerate()
        .find(|(_, it)| bad(it.amount))
    {
        return Err(invalid(
            &format!("/items/{i}/amount"),
            format!("must be from 0 to {MAX_AMOUNT}, not {}", item.amount),
        ));
    }
    Ok(())
}

fn in_currency(amount: &Option<Money>, currency: &str) -> i64 {
    amount
        .as_ref()
        .filter(|m| m.currency == currency)
        .map_or(0, |m| m.minor)
}

/// Charge `points` to the budget. Returns the reason when they are refused.
pub(super) fn charge_budget(
    settings: &MerchantSettings,
    budget: &mut Option<BudgetState>,
    points: i64,
    over: &mut bool,
) -> Option<String> {
    let (Some(cfg), Some(pv), Some(state)) =
        (&settings.budget, &settings.point_value, budget.as_mut())
    else {
        return None;
    };
    let value = pv.value_of(points);
    let u = &mut state.usage;
    if u.value.saturating_add(value) > cfg.limit.minor {
        match cfg.on_exceed {
            OnExceed::Reject => {
                u.refused_points += points;
                state.changed = true;
                return Some(format!(
                    "the points budget for {} is spent: {} of {} {} issued, these {} points are worth {}",
                    u.period, u.value, cfg.limit.minor, cfg.limit.currency, points, value
                ));
            }
            OnExceed::Report => {
                u.overrun_points += points;
                *over = true;
            }
        }
    }
    u.points = u.points.saturating_add(points);
    u.value = u.value.saturating_add(value);
    state.changed = true;
    None
}

/// Check a refund against its purchase and work out the cumulative fraction refunded.
fn refund_of<'a>(
    original: &'a mut EventRecord,
    original_id: String,
    member: &str,
    event: &Event,
) -> Result<Refund<'a>, EngineError> {
    let fail = |reason: String| EngineError::Refund {
        original: original_id.clone(),
        reason,
    };
    // A refund for a partner (always so from a partner's key) reaches only that
    // partner's purchases; another's answers as if it did not exist.
    if event.partner.is_some() && original.partner != event.partner {
        return Err(fail("no such event".into()));
    }
    if original.member != member {
        return Err(fail("that event belongs to another member".into()));
    }
    if original.kind != "purchase" && original.kind != "partner_purchase" {
        return Err(fail(format!(
            "only purchases can be refunded, that event is a {}",
            original.kind
        )));
    }
    // A purchase nothing was paid for (a free item that earned a bonus, a partner
    // purchase sent without its amount) is refunded whole, once.
    let Some(bought) = original.amount.clone().filter(|m| m.minor > 0) else {
        if event.amount.as_ref().is_some_and(|m| m.minor > 0) {
            return Err(fail(
                "the purchase had no amount: refund it in full, without one".into(),
            ));
        }
        if original.refunded_whole() {
            return Err(fail("the purchase is already fully refunded".into()));
        }
        return Ok(Refund {
            original,
            original_id,
            fraction: (1, 1),
            amount: 0,
        });
    };
    let asked = event.amount.clone().unwrap_or(Money {
        minor: 0,
        currency: String::new(),
    });
    if asked.currency != bought.currency {
        return Err(fail(format!(
            "the purchase was in {}, the refund is in {}",
            bought.currency, asked.currency
        )));
    }
    let left = bought.minor - original.refunded;
    let amount = if event.full.unwrap_or(true) {
        left
    } else {
        asked.minor
    };
    if amount <= 0 && left > 0 {
        return Err(fail(
            "a partial refund needs an amount above 0 (or send it in full)".into(),
        ));
    }
    if left <= 0 {
        return Err(fail("the purchase is already fully refunded".into()));
    }
    if amount > left {
        return Err(fail(format!(
            "refunding {} but only {} of {} is left to refund",
            amount, left, bought.minor
        )));
    }
    let fraction = (original.refunded + amount, bought.minor);
    Ok(Refund {
        original,
        original_id,
        fraction,
        amount,
    })
}
