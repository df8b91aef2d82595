//! Members: enrolment (with `on-enroll` and referrals), the member view, profile
//! changes, card and referral codes, opt-out and erasure, the ledger and tier history,
//! and manual adjustments.

use serde::{Deserialize, Deserializer, Serialize};

use super::error::invalid;
use super::events::{BudgetState, REFERRAL_PREFIX, event_key, event_print, put_budget};
use super::journal::encode_event_entry;
use super::{
    Ctx, Done, Engine, EngineError, Entitlement, EventRecord, MemberRecord, MemberStatus,
    MerchantSettings, OperationRecord, PerksKept, Programme, Recorded, TierChange, check_member_id,
    check_time, decode, decode_bin, encode, fingerprint, lock,
};
use crate::domain::{Attributes, Event, State, Stats, TierProgress, Timestamp};
use crate::ledger::{Account, Balance, Line};
use crate::sandbox::MAX_CREDIT_POINTS;
use crate::sandbox::convert::parse_date;
use crate::sandbox::{Hook, Session};
use crate::stats::ActivityStats;
use crate::storage::{Batch, Key, Space};

/// A member joining.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The merchant's id for the member.
    pub member: String,
    /// When they joined.
    pub enrolled_at: Timestamp,
    /// Birthday "YYYY-MM-DD".
    #[serde(default)]
    pub birthday: Option<String>,
    /// Profile attributes (segment, anything the merchant sends).
    #[serde(default)]
    pub attributes: Attributes,
    /// Another member's referral code.
    #[serde(default)]
    pub referral_code: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A change of profile: fields left out stay; `null` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// New birthday, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    pub birthday: Option<Option<String>>,
    /// Attributes to set, or `null` to remove.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, Option<String>>,
}

/// A member's tier as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TierView {
    /// Tier id.
    pub id: String,
    /// Tier name (from the programme's catalogue).
    pub name: String,
    /// Since when.
    pub since: Timestamp,
    /// Why.
    pub reason: String,
    /// Progress to the next tier.
    pub progress: Option<TierProgress>,
    /// Guaranteed until.
    pub valid_until: Option<Timestamp>,
}

/// A held perk as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PerkView {
    /// Perk id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Grant key.
    pub grant: String,
    /// Uses left (`None`: unlimited).
    pub remaining: Option<u32>,
    /// Uses consumed.
    pub used: u32,
    /// Valid until.
    pub valid_until: Option<Timestamp>,
}

/// A member as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberView {
    /// Member id.
    pub id: String,
    /// Status.
    pub status: MemberStatus,
    /// Enrolment time.
    pub enrolled_at: Timestamp,
    /// Digital card code.
    pub card_code: Option<String>,
    /// Referral code.
    pub referral_code: Option<String>,
    /// Referrer.
    pub referred_by: Option<String>,
    /// Birthday.
    pub birthday: Option<String>,
    /// Attributes.
    pub attributes: Attributes,
    /// Tier.
    pub tier: TierView,
    /// Balances.
    pub balance: Balance,
    /// Usable perks.
    pub perks: Vec<PerkView>,
    /// Badges.
    pub badges: Vec<String>,
    /// Facts the programme recorded.
    pub annotations: Attributes,
    /// Activity statistics.
    pub stats: Stats,
    /// The programme's state for the member.
    pub state: State,
}

/// A page of a member's ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerPage {
    /// The lines.
    pub lines: Vec<Line>,
    /// Pass as `before` for the next (older) page; `None` at the end.
    pub next_before: Option<u64>,
}

/// A manual adjustment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// The caller's id for it; retries with the same id are answered once.
    pub id: String,
    /// Signed points.
    pub points: i64,
    /// Why (required).
    pub reason: String,
    /// Who made it (required).
    pub by: String,
}

// Crockford's base32: no I, L, O or U, so codes read aloud and typed survive.
pub(super) const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A random code of `len` characters of Crockford base32 (5 random bits each).
pub fn random_code(len: usize) -> Result<String, EngineError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| EngineError::Storage(format!("no randomness: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect())
}

/// A code as typed (any case, dashes, spaces, O for 0, I or L for 1) in stored form.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// Card codes: 12 characters (60 random bits), shown as XXXX-XXXX-XXXX.
pub(super) const CARD_CODE_LEN: usize = 12;
/// Referral codes: 8 characters (40 random bits), meant to be shared.
pub(super) const REFERRAL_CODE_LEN: usize = 8;

fn show_card(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

pub(super) fn code_key(merchant: &str, kind: &str, code: &str) -> Key {
    Key::merchant(merchant, &[kind.as_bytes(), code.as_bytes()])
}

pub(super) const MAX_ATTRIBUTES: usize = 64;

pub(super) fn check_attributes<'a>(
    pairs: impl Iterator<Item = (&'a String, Option<&'a String>)>,
) -> Result<(), EngineError> {
    for (k, v) in pairs {
        if k.is_empty() || k.len() > 64 {
            return Err(invalid(
                &format!("/attributes/{k}"),
                "names are 1-64 characters",
            ));
        }
        if v.is_some_and(|v| v.len() > 1024) {
            return Err(invalid(
                &format!("/attributes/{k}"),
                "values are at most 1024 characters",
            ));
        }
    }
    Ok(())
}

fn not_erased(rec: &MemberRecord) -> Result<(), EngineError> {
    if rec.status == MemberStatus::Erased {
        return Err(EngineError::MemberInactive {
            member: rec.id.clone(),
            status: rec.status,
        });
    }
    Ok(())
}

pub(super) fn check_birthday(b: Option<&String>, pointer: &str) -> Result<(), EngineError> {
    match b {
        Some(b) if parse_date(b).is_none() => Err(invalid(pointer, "must be a date YYYY-MM-DD")),
        _ => Ok(()),
    }
}

impl Engine {
    fn fresh_code(&self, merchant: &str, kind: &str, len: usize) -> Result<String, EngineError> {
        loop {
            let code = random_code(len)?;
            if self
                .storage
                .get(Space::Codes, &code_key(merchant, kind, &code))?
                .is_none()
            {
                return Ok(code);
            }
        }
    }

    /// Enrol a member: `on-enroll` decides the signup bonus and first tier; with a
    /// referral code the referrer gets a `referral` event in the same transaction.
    /// Idempotent: enrolling again with the same request answers the member.
    pub fn enrol(
        &self,
        merchant: &str,
        req: &EnrolRequest,
    ) -> Result<Done<MemberView>, EngineError> {
        check_member_id(&req.member, "/member")?;
        check_time(req.enrolled_at, "/enrolled_at")?;
        check_birthday(req.birthday.as_ref(), "/birthday")?;
        if req.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(
                "/attributes",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            ));
        }
        check_attributes(req.attributes.iter().map(|(k, v)| (k, Some(v))))?;
        let settings = self.merchant(merchant)?;
        let print = fingerprint(&[&encode(req)]);
        let referrer = match &req.referral_code {
            Some(code) => {
                let code = normalize_code(code);
                let unknown = || EngineError::UnknownCode {
                    kind: "referral",
                    code: code.clone(),
                };
                let id = self
                    .storage
                    .get(Space::Codes, &code_key(merchant, "referral", &code))?
                    .ok_or_else(unknown)?;
                Some(String::from_utf8(id).map_err(|_| unknown())?)
            }
            None => None,
        };
        let _locks = match &referrer {
            Some(r) => self.lock_two(merchant, &req.member, r),
            None => (self.lock_member(merchant, &req.member), None),
        };
        if let Some(mut existing) = self.find_member(merchant, &req.member)? {
            if existing.enrol_fingerprint == print {
                let value = self.view(merchant, &mut existing, req.enrolled_at)?;
                return Ok(Done {
                    value,
                    ticket: self.commit.current(),
                });
            }
            return Err(EngineError::MemberExists(req.member.clone()));
        }
        let mut referrer = match referrer {
            Some(r) if r == req.member => None,
            // A referrer who opted out (an erased one has no code) answers like an
            // unknown code: the new member learns nothing about another member.
            Some(r) => match self.load_active(merchant, &r) {
                Err(EngineError::MemberInactive { .. }) => {
                    return Err(EngineError::UnknownCode {
                        kind: "referral",
                        code: req
                            .referral_code
                            .as_deref()
                            .map(normalize_code)
                            .unwrap_or_default(),
                    });
                }
                other => Some(other?),
            },
            None => None,
        };
        let programme = self.programme(merchant)?;
        let at = req.enrolled_at;
        let card = self.fresh_code(merchant, "card", CARD_CODE_LEN)?;
        let referral = self.fresh_code(merchant, "referral", REFERRAL_CODE_LEN)?;
        let mut rec = MemberRecord {
            id: req.member.clone(),
            enrolled_at: at,
            status: MemberStatus::Active,
            birthday: req.birthday.clone(),
            attributes: req.attributes.clone(),
            card_code: Some(card.clone()),
            referral_code: Some(referral.clone()),
            referred_by: referrer.as_ref().map(|r| r.id.clone()),
            enrol_fingerprint: print,
            tier: String::new(),
            tier_since: at,
            tier_reason: String::new(),
            tier_progress: None,
            tier_valid_until: None,
            tier_changes: 0,
            account: Account::new(),
            stats: ActivityStats::default(),
            state: State::default(),
            badges: Default::default(),
            annotations: Default::default(),
            perks: Vec::new(),
            ledger_page: Vec::new(),
            ledger_pages: 0,
            perks_kept: PerksKept::Inline,
        };

        let budget_lock = settings.budget.as_ref().map(|_| self.budget_lock(merchant));
        let _budget_guard = budget_lock.as_deref().map(lock);
        let mut budget = self.budget_state(&settings, at)?;
        let config = self.config_text(&settings, &*programme);
        let ctx = Ctx::new(merchant, at, &config, &settings.currency);
        let mut batch = Batch::new();
        self.run_enrol(
            &settings,
            &*programme,
            &mut Session::new(),
            &ctx,
            &mut rec,
            &mut budget,
            &mut batch,
        )?;

        if let Some(r) = referrer.as_mut() {
            let event = Event {
                id: format!("{REFERRAL_PREFIX}{}", rec.id),
                occurred_at: at,
                kind: "referral".into(),
                amount: None,
                items: Vec::new(),
                channel: Default::default(),
                payment: None,
                store: None,
                partner: None,
                original_event: None,
                full: None,
                score: None,
                referee: Some(rec.id.clone()),
                attributes: Default::default(),
            };
            // The referrer's event is an operation on another member: its own instance.
            let mut record = self.apply_event(
                &settings,
                &*programme,
                &mut Session::new(),
                &ctx,
                r,
                &event,
                None,
                &mut budget,
                &mut batch,
            )?;
            record.fingerprint = event_print(&encode_event_entry(&r.id, &event));
            batch.put(
                Space::Idempotency,
                event_key(merchant, &event.id),
                record.stored(&event.id),
            );
            self.put_member(&mut batch, merchant, r);
        }
        put_budget(&mut batch, merchant, &budget);
        self.record(
            &mut batch,
            merchant,
            &Recorded::Enrol {
                member: rec.id.clone(),
                at,
                birthday: req.birthday.clone(),
                attributes: req.attributes.clone(),
                referred_by: rec.referred_by.clone(),
            },
        );
        batch.put(
            Space::Codes,
            code_key(merchant, "card", &card),
            rec.id.clone().into_bytes(),
        );
        batch.put(
            Space::Codes,
            code_key(merchant, "referral", &referral),
            rec.id.clone().into_bytes(),
        );
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done {
            value: self.view(merchant, &mut rec, at)?,
            ticket,
        })
    }

    /// `on-enroll`: credits, first tier, state; then perks.
    #[allow(clippy::too_many_arguments)]
    fn run_enrol(
        &self,
        settings: &MerchantSettings,
        programme: &dyn Programme,
        session: &mut Session,
        ctx: &Ctx<'_>,
        rec: &mut MemberRecord,
        budget: &mut Option<BudgetState>,
        batch: &mut Batch,
    ) -> Result<(), EngineError> {
        let at = ctx.now;
        let enrolment = programme
            .on_enroll(session, &Self::snapshot(rec, at), ctx)?
            .map_err(|error| EngineError::PluginRefused {
                hook: Hook::OnEnroll,
                error,
            })?;
        let reference = format!("enrol:{}", rec.id);
        for c in enrolment.outcome.credits {
            let mut over = false;
            if super::events::charge_budget(settings, budget, c.points, &mut over).is_some() {
                continue;
            }
            rec.account.credit(
                c.points,
                at,
                c.expires_at,
                c.pending_until,
                &c.reason,
                Some(&reference),
            )?;
        }
        if let Some(state) = enrolment.outcome.state {
            rec.state = state;
        }
        rec.badges.extend(enrolment.outcome.badges);
        rec.annotations.extend(enrolment.outcome.annotations);
        let first = enrolment
            .initial_tier
            .or_else(|| programme.info().tiers.first().map(|t| t.id.clone()))
            .unwrap_or_default();
        let change = TierChange {
            from: String::new(),
            to: first.clone(),
            at,
            reason: "enrolled".into(),
            event: None,
        };
        self.put_tier_change(batch, ctx.merchant, rec, &change);
        rec.tier = first;
        rec.tier_reason = "enrolled".into();
        self.refresh_perks(programme, session, ctx, rec, at)?;
        Ok(())
    }

    /// The member as shown at `now`. When points expired or matured since the last
    /// write, the expiry is written (with its ledger lines) first.
    pub fn member(
        &self,
        merchant: &str,
        member: &str,
        now: Timestamp,
    ) -> Result<MemberView, EngineError> {
        let rec = self.load_member(merchant, member)?;
        let mut rec = if rec.account.next_change().is_some_and(|t| t <= now) {
            self.settle_member(merchant, member, now)?.unwrap_or(rec)
        } else {
            rec
        };
        self.view(merchant, &mut rec, now)
    }

    /// The member holding card code `code`.
    pub fn member_by_code(
        &self,
        merchant: &str,
        code: &str,
        now: Timestamp,
    ) -> Result<MemberView, EngineError> {
        let code = normalize_code(code);
        let id = self
            .storage
            .get(Space::Codes, &code_key(merchant, "card", &code))?
            .ok_or_else(|| EngineError::UnknownCode {
                kind: "card",
                code: code.clone(),
            })?;
        self.member(merchant, &String::from_utf8_lossy(&id), now)
    }

    /// Apply expiry and maturing up to `now` to one member and write it (the ledger
    /// lines for what expired included). `None` when nothing changed.
    pub(super) fn settle_member(
        &self,
        merchant: &str,
        member: &str,
        now: Timestamp,
    ) -> Result<Option<MemberRecord>, EngineError> {
        let _g = self.lock_member(merchant, member);
        let mut rec = self.load_member(merchant, member)?;
        let before = rec.account.clone();
        rec.account.settle(now);
        if rec.account == before {
            return Ok(None);
        }
        let mut batch = Batch::new();
        self.put_member(&mut batch, merchant, &mut rec);
        self.apply(batch)?;
        Ok(Some(rec))
    }

    /// The member as the API shows them (their perks read, if kept apart).
    fn view(
        &self,
        merchant: &str,
        rec: &mut MemberRecord,
        now: Timestamp,
    ) -> Result<MemberView, EngineError> {
        self.read_perks(merchant, rec)?;
        let name = self
            .programmes
            .active(merchant)
            .and_then(|p| {
                p.info()
                    .tiers
                    .iter()
                    .find(|t| t.id == rec.tier)
                    .map(|t| t.name.clone())
            })
            .unwrap_or_else(|| rec.tier.clone());
        let perks = rec
            .perks
            .iter()
            .filter(|e| e.usable(now))
            .map(|e: &Entitlement| PerkView {
                id: e.id.clone(),
                name: e.name.clone(),
                grant: e.grant.clone(),
                remaining: e.remaining(),
                used: e.used,
                valid_until: e.valid_until,
            })
            .collect();
        Ok(MemberView {
            id: rec.id.clone(),
            status: rec.status,
            enrolled_at: rec.enrolled_at,
            card_code: rec.card_code.as_deref().map(show_card),
            referral_code: rec.referral_code.clone(),
            referred_by: rec.referred_by.clone(),
            birthday: rec.birthday.clone(),
            attributes: rec.attributes.clone(),
            tier: TierView {
                id: rec.tier.clone(),
                name,
                since: rec.tier_since,
                reason: rec.tier_reason.clone(),
                progress: rec.tier_progress.clone(),
                valid_until: rec.tier_valid_until,
            },
            balance: rec.account.balance(now),
            perks,
            badges: rec.badges.iter().cloned().collect(),
            annotations: rec.annotations.clone(),
            stats: rec.stats.snapshot(now, rec.enrolled_at),
            state: rec.state.clone(),
        })
    }

    /// Lock `member`, load them, let `change` edit the record (and add to the batch),
    /// then write it and answer the member as shown at `now`. An erased member can
    /// only be erased again.
    fn change_member(
        &self,
        merchant: &str,
        member: &str,
        now: Timestamp,
        change: impl FnOnce(&mut MemberRecord, &mut Batch) -> Result<(), EngineError>,
    ) -> Result<Done<MemberView>, EngineError> {
        let _g = self.lock_member(merchant, member);
        let mut rec = self.load_member(merchant, member)?;
        let mut batch = Batch::new();
        change(&mut rec, &mut batch)?;
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done {
            value: self.view(merchant, &mut rec, now)?,
            ticket,
        })
    }

    /// Change a member's profile.
    pub fn update_profile(
        &self,
        merchant: &str,
        member: &str,
        update: &ProfileUpdate,
        now: Timestamp,
    ) -> Result<Done<MemberView>, EngineError> {
        if let Some(b) = &update.birthday {
            check_birthday(b.as_ref(), "/birthday")?;
        }
        check_attributes(update.attributes.iter().map(|(k, v)| (k, v.as_ref())))?;
        self.change_member(merchant, member, now, |rec, _| {
            not_erased(rec)?;
            if let Some(b) = &update.birthday {
                rec.birthday = b.clone();
            }
            for (k, v) in &update.attributes {
                match v {
                    Some(v) => rec.attributes.insert(k.clone(), v.clone()),
                    None => rec.attributes.remove(k),
                };
            }
            if rec.attributes.len() > MAX_ATTRIBUTES {
                return Err(invalid(
                    "/attributes",
                    format!("at most {MAX_ATTRIBUTES} attributes"),
                ));
            }
            Ok(())
        })
    }

    /// The member leaves the programme (`opted_out: true`) or comes back. Points are
    /// kept; an opted-out member cannot earn or redeem.
    pub fn set_opted_out(
        &self,
        merchant: &str,
        member: &str,
        opted_out: bool,
        now: Timestamp,
    ) -> Result<Done<MemberView>, EngineError> {
        self.change_member(merchant, member, now, |rec, _| {
            not_erased(rec)?;
            rec.status = if opted_out {
                MemberStatus::OptedOut
            } else {
                MemberStatus::Active
            };
            Ok(())
        })
    }

    /// Erase the member's personal data: birthday, attributes, the programme's
    /// annotations, card and referral codes. The ledger, its totals and statistics
    /// stay, under the member id. Idempotent; an erased member stays erased.
    pub fn erase(
        &self,
        merchant: &str,
        member: &str,
        now: Timestamp,
    ) -> Result<Done<MemberView>, EngineError> {
        let _scrub = lock(&self.journal_scrub);
        self.change_member(merchant, member, now, |rec, batch| {
            self.scrub_journal(batch, merchant, member, rec.enrolled_at)?;
            if let Some(c) = rec.card_code.take() {
                batch.delete(Space::Codes, code_key(merchant, "card", &c));
            }
            if let Some(c) = rec.referral_code.take() {
                batch.delete(Space::Codes, code_key(merchant, "referral", &c));
            }
            rec.birthday = None;
            rec.attributes.clear();
            rec.annotations.clear();
            rec.status = MemberStatus::Erased;
            Ok(())
        })
    }

    /// A page of the member's ledger, newest first: lines with a sequence number below
    /// `before` (all when `None`), at most `limit`.
    pub fn ledger(
        &self,
        merchant: &str,
        member: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<LedgerPage, EngineError> {
        let limit = limit.clamp(1, 500);
        let rec = self.load_member(merchant, member)?;
        let below = |l: &&Line| before.is_none_or(|b| l.seq < b);
        let mut lines: Vec<Line> = rec
            .ledger_page
            .iter()
            .rev()
            .filter(below)
            .cloned()
            .collect();
        let mut after: Option<Key> = None;
        while lines.len() <= limit {
            let page = self.storage.scan_page(
                Space::Ledger,
                merchant,
                &[member.as_bytes()],
                after.as_ref(),
                1,
                true,
            )?;
            let Some((key, bytes)) = page.into_iter().next() else {
                break;
            };
            let stored: Vec<Line> = decode_bin(&bytes, "ledger page")?;
            lines.extend(stored.iter().rev().filter(below).cloned());
            after = Some(key);
        }
        let more = lines.len() > limit;
        lines.truncate(limit);
        let next_before = if more {
            lines.last().map(|l| l.seq)
        } else {
            None
        };
        Ok(LedgerPage { lines, next_before })
    }

    /// The member's tier changes, oldest first.
    pub fn tier_history(
        &self,
        merchant: &str,
        member: &str,
    ) -> Result<Vec<TierChange>, EngineError> {
        self.load_member(merchant, member)?;
        self.storage
            .scan(Space::TierHistory, merchant, &[member.as_bytes()])?
            .iter()
            .map(|(_, v)| decode(v, "tier change"))
            .collect()
    }

    /// A manual adjustment, with its reason and author. Idempotent by `adj.id`.
    pub fn adjust(
        &self,
        merchant: &str,
        member: &str,
        adj: &Adjustment,
        now: Timestamp,
    ) -> Result<Done<Balance>, EngineError> {
        if adj.id.is_empty() || adj.id.len() > 128 {
            return Err(invalid("/id", "must be 1-128 characters"));
        }
        if adj.reason.trim().is_empty() {
            return Err(invalid("/reason", "an adjustment needs a reason"));
        }
        if adj.by.trim().is_empty() {
            return Err(invalid(
                "/by",
                "an adjustment needs the name of who made it",
            ));
        }
        if adj.points == 0 || adj.points.unsigned_abs() > MAX_CREDIT_POINTS.unsigned_abs() {
            return Err(invalid(
                "/points",
                format!("must not be 0, and at most {MAX_CREDIT_POINTS} either way"),
            ));
        }
        let print = fingerprint(&[member.as_bytes(), &encode(adj)]);
        let key = Key::merchant(merchant, &[b"adjustment", adj.id.as_bytes()]);
        let _g = self.lock_member_and(merchant, member, "adjustment", &adj.id);
        if let Some(done) = self.replay_operation(&key, "adjustment", &adj.id, &print)? {
            return Ok(done);
        }
        let mut rec = self.load_member(merchant, member)?;
        rec.account.adjust(
            adj.points,
            now,
            &adj.reason,
            &adj.by,
            &format!("adjustment:{}", adj.id),
        )?;
        let balance = rec.account.balance(now);
        let mut batch = Batch::new();
        self.record(
            &mut batch,
            merchant,
            &Recorded::Adjust {
                member: member.to_string(),
                id: adj.id.clone(),
                points: adj.points,
                reason: adj.reason.clone(),
                by: adj.by.clone(),
                at: now,
            },
        );
        batch.put(
            Space::Idempotency,
            key,
            encode(&OperationRecord {
                fingerprint: print,
                result: serde_json::to_value(balance).unwrap_or_default(),
            }),
        );
        self.put_member(&mut batch, merchant, &mut rec);
        let ticket = self.apply(batch)?;
        Ok(Done {
            value: balance,
            ticket,
        })
    }

    /// A retried operation's original answer, a conflict, or `None` when new.
    pub(super) fn replay_operation<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
        scope: &'static str,
        id: &str,
        print: &str,
    ) -> Result<Option<Done<T>>, EngineError> {
        let Some(bytes) = self.storage.get(Space::Idempotency, key)? else {
            return Ok(None);
        };
        let rec: OperationRecord = decode(&bytes, scope)?;
        if rec.fingerprint != print {
            return Err(EngineError::Conflict {
                scope,
                id: id.to_string(),
            });
        }
        let value = serde_json::from_value(rec.result)
            .map_err(|e| EngineError::Storage(format!("stored {scope} is unreadable: {e}")))?;
        Ok(Some(Done {
            value,
            ticket: self.commit.current(),
        }))
    }

    /// The event record of `event` (for refunds and audits).
    pub fn event_record(
        &self,
        merchant: &str,
        event: &str,
    ) -> Result<Option<EventRecord>, EngineError> {
        match self
            .storage
            .get(Space::Idempotency, &event_key(merchant, event))?
        {
            Some(b) => Ok(Some(EventRecord::from_stored(&b, event)?)),
            None => Ok(None),
        }
    }
}

/// A random id: 26 characters of Crockford base32 (130 bits).
pub(super) fn random_id() -> Result<String, EngineError> {
    Ok(random_code(26)?.to_ascii_lowercase())
}
