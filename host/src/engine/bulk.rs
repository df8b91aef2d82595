//! Bulk import of members from another programme: each row becomes a member with the
//! balance, tier and profile the old programme gave them, many rows to one storage
//! batch (and one group-commit round), so a million members are a few hundred writes.
//!
//! No plugin hook runs: an imported member keeps the tier and balance they had, and
//! the programme's hooks see them from their first event on (their perks too are
//! first granted then). Imported balances are not charged to the points budget: the
//! old programme issued them.
//!
//! A row is validated whole before anything of it is written, and rows are
//! independent: a bad row is answered [`RowOutcome::Failed`] with a reason naming the
//! field, and the call's other rows go on. The file formats and the driver that feeds
//! this in chunks are in [`crate::bulk`].
//!
//! Throughput comes from doing per row only what cannot be shared: one batch per
//! call, codes that share a prefix per call (so their writes and checks are local),
//! and existence checked by range reads where the ids allow. With sled, reads cannot
//! run while a batch is written, so what the call reads is what the import waits for.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::members::{
    ALPHABET, CARD_CODE_LEN, MAX_ATTRIBUTES, REFERRAL_CODE_LEN, check_attributes, check_birthday,
    code_key,
};
use super::{
    Engine, EngineError, MemberRecord, MemberStatus, PerksKept, Ticket, TierChange, decode_member,
    encode_bin, fingerprint, lock, valid_member_id,
};
use crate::domain::{Attributes, State, Timestamp};
use crate::ledger::Account;
use crate::stats::ActivityStats;
use crate::storage::{Batch, Space};

/// One member to import (one JSONL object or CSV row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedMember {
    /// The merchant's id for the member.
    pub member: String,
    /// When they joined the old programme.
    pub enrolled_at: Timestamp,
    /// Points they hold (0 or more), credited as one lot.
    #[serde(default)]
    pub balance: i64,
    /// Their tier: one of the active programme's tier ids (default: its first tier).
    #[serde(default)]
    pub tier: Option<String>,
    /// Birthday "YYYY-MM-DD".
    #[serde(default)]
    pub birthday: Option<String>,
    /// Profile attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// When the imported balance expires (`None`: never). Ignored without a balance.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// What importing one row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// The member was created.
    Imported,
    /// The member was imported before from the same row: nothing changed.
    Unchanged,
    /// Refused; nothing of the row was written. The reason names the field.
    Failed(String),
}

/// Most rows one [`Engine::import_members`] call takes: bounds the batch (about four
/// writes a row) and how many member locks the call holds at once.
const MAX_ROWS: usize = 10_000;

/// Largest imported balance: the bound on one plugin credit (a trillion points), far
/// above any real balance and low enough that later credits cannot overflow it.
const MAX_BALANCE: i64 = 1_000_000_000_000;

/// The ledger reason of an imported balance.
const REASON: &str = "imported balance";

/// A row that passed the checks that need nothing stored (its id, not repeated).
struct Prepared<'a> {
    /// The row's index in the call.
    row: usize,
    /// What the member record's `enrol_fingerprint` is set to.
    print: String,
    /// What a valid row's member gets, or why the row is invalid. An invalid row
    /// still has its existence checked: one imported before is `Unchanged` even if
    /// the programme has changed since (a tier it named may be gone).
    valid: Result<Valid<'a>, String>,
    /// A valid row's writes in the call's batch.
    writes: Range<usize>,
}

/// What a valid row's member gets besides the row.
struct Valid<'a> {
    tier: &'a str,
    card: String,
    referral: String,
}

/// The fingerprint of an import row. The "import" part comes first, so it cannot
/// equal an enrolment's (a fingerprint of the request alone): a member enrolled
/// through the API is never taken for an imported one.
fn import_print(row: &ImportedMember) -> String {
    fingerprint(&[b"import", &encode_bin(row)])
}

/// An engine error as a row's reason: the field without the JSON pointer's slash.
fn reason(e: EngineError) -> String {
    match e {
        EngineError::Invalid { pointer, message } => {
            format!("{}: {message}", pointer.trim_start_matches('/'))
        }
        e => e.to_string(),
    }
}

/// The tier `row` gets, or why it cannot be imported (the member id is checked
/// already).
fn check_row<'a>(
    row: &'a ImportedMember,
    tiers: &'a [crate::domain::TierInfo],
    now: Timestamp,
) -> Result<&'a str, String> {
    if row.balance < 0 {
        return Err(format!(
            "balance: must not be negative, not {}",
            row.balance
        ));
    }
    if row.balance > MAX_BALANCE {
        return Err(format!("balance: at most {MAX_BALANCE}"));
    }
    if row.enrolled_at < super::EARLIEST {
        return Err(format!(
            "enrolled_at: {} is before {} (1970-01-01)",
            row.enrolled_at,
            super::EARLIEST
        ));
    }
    if row.enrolled_at > now {
        return Err(format!(
            "enrolled_at: {} is after the import ({now})",
            row.enrolled_at
        ));
    }
    if let Some(e) = row.expires_at.filter(|e| row.balance > 0 && *e <= now) {
        return Err(format!(
            "expires_at: {e} is not after the import ({now}): the balance would expire at once"
        ));
    }
    check_birthday(row.birthday.as_ref(), "/birthday").map_err(reason)?;
    if row.attributes.len() > MAX_ATTRIBUTES {
        return Err(format!("attributes: at most {MAX_ATTRIBUTES}"));
    }
    check_attributes(row.attributes.iter().map(|(k, v)| (k, Some(v)))).map_err(reason)?;
    match &row.tier {
        Some(t) if tiers.iter().any(|i| i.id == *t) => Ok(t),
        Some(t) => Err(format!(
            "tier: {t:?} is not a tier of the programme ({})",
            tiers
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(tiers.first().map_or("", |t| t.id.as_str())),
    }
}

impl Engine {
    /// Import members into `merchant` (at most 10,000 rows a call): one outcome per
    /// row, in order, and the ticket that makes the imported ones durable.
    ///
    /// Each valid row creates its member directly (no hooks run): its balance as one
    /// lot credited at `now` (the import: the ledger does not pretend the points were
    /// earned here before) with an `Earn` line "imported balance", expiring at
    /// `expires_at`; its tier (default the programme's first) with a tier-history
    /// entry "imported"; card and referral codes as at enrolment, except that the
    /// codes of one call share their first three characters (so that writing and
    /// checking them is cheap). Every imported row of the call goes into one storage
    /// batch.
    ///
    /// Idempotent: a row whose member was imported before from the same row is
    /// `Unchanged`; a member that exists otherwise (enrolled, or imported from a
    /// different row) fails the row, as does a member id the call already had.
    pub fn import_members(
        &self,
        merchant: &str,
        rows: &[ImportedMember],
        now: Timestamp,
    ) -> Result<(Vec<RowOutcome>, Ticket), EngineError> {
        if rows.len() > MAX_ROWS {
            return Err(super::invalid(
                "/rows",
                format!("at most {MAX_ROWS} rows per call, not {}", rows.len()),
            ));
        }
        self.merchant(merchant)?;
        let programme = self.programme(merchant)?;
        let tiers = &programme.info().tiers;

        // 1. Each row on its own, without locks or reads: the id, repeats, the
        //    fields, codes, and the writes that would create the member. (While this
        //    runs, the group commit can be writing the previous call's batch.)
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; rows.len()];
        let mut prepared = Vec::with_capacity(rows.len());
        let mut seen: HashSet<&str> = HashSet::with_capacity(rows.len());
        let mut codes = Codes::new(rows.len())?;
        for (i, row) in rows.iter().enumerate() {
            if !valid_member_id(&row.member) {
                outcomes[i] = Some(RowOutcome::Failed(
                    "member: must be 1-128 printable ASCII characters without spaces or '/'".into(),
                ));
                continue;
            }
            if !seen.insert(&row.member) {
                outcomes[i] = Some(RowOutcome::Failed(format!(
                    "member: {:?} is in this import already, in an earlier row",
                    row.member
                )));
                continue;
            }
            let valid = match check_row(row, tiers, now) {
                Ok(tier) => Ok(Valid {
                    tier,
                    card: codes.draw(Kind::Card)?,
                    referral: codes.draw(Kind::Referral)?,
                }),
                Err(why) => Err(why),
            };
            prepared.push(Prepared {
                row: i,
                print: import_print(row),
                valid,
                writes: 0..0,
            });
        }
        let mut batch = self.import_batch(merchant, rows, &mut prepared, now)?;

        // 2. Codes other members hold: one range read per kind (see `Codes`). A row
        //    whose code is taken draws another, and the batch is written again (rare:
        //    the part of the index a call's prefix names usually holds no code).
        if prepared.iter().any(|p| p.valid.is_ok()) {
            let [cards, referrals] = codes.load_stored(self, merchant)?;
            let mut redrawn = false;
            for v in prepared.iter_mut().filter_map(|p| p.valid.as_mut().ok()) {
                if cards.contains(&v.card) {
                    v.card = codes.draw(Kind::Card)?;
                    redrawn = true;
                }
                if referrals.contains(&v.referral) {
                    v.referral = codes.draw(Kind::Referral)?;
                    redrawn = true;
                }
            }
            if redrawn {
                batch = self.import_batch(merchant, rows, &mut prepared, now)?;
            }
        }

        // 3. Under the members' locks: who exists already, then the batch of those
        //    who do not. A concurrent enrolment of the same id checks for the member
        //    under the same lock, so exactly one of the two creates them.
        //
        //    Why all the stripes at once, and why that cannot deadlock: a row's
        //    member must not appear between our check and our write becoming
        //    visible (the batch is queued whole, at the end), so every row's stripe
        //    is held until then. They are taken in ascending stripe order, and the
        //    engine's other operations hold either one stripe or two taken in
        //    ascending order (`lock_two`), and take none while holding a budget or
        //    merchant lock, so there is no cycle. Everything costly (validation,
        //    codes, encoding) was done above, so live traffic on these members waits
        //    only for the existence reads (which first let writes queued before them
        //    be applied) and the queueing.
        let mut stripes: Vec<usize> = prepared
            .iter()
            .map(|p| self.stripe((merchant, &rows[p.row].member)))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _guards: Vec<_> = stripes.iter().map(|&s| lock(&self.stripes[s])).collect();
        let mut existing =
            self.existing_members(merchant, prepared.iter().map(|p| &*rows[p.row].member))?;
        let mut dropped: Vec<Range<usize>> = Vec::new();
        for p in prepared {
            let row = &rows[p.row];
            outcomes[p.row] = Some(match (existing.remove(row.member.as_str()), p.valid) {
                (Some(print), valid) => {
                    if valid.is_ok() {
                        dropped.push(p.writes);
                    }
                    if print == p.print {
                        RowOutcome::Unchanged
                    } else {
                        RowOutcome::Failed(format!(
                            "member: {:?} already exists (enrolled, or imported from a different row)",
                            row.member
                        ))
                    }
                }
                (None, Ok(_)) => RowOutcome::Imported,
                (None, Err(why)) => RowOutcome::Failed(why),
            });
        }
        if !dropped.is_empty() {
            // Ranges are in row order, so one pass removes them.
            let mut next = dropped.iter().peekable();
            let mut i = 0;
            batch.ops.retain(|_| {
                while next.peek().is_some_and(|r| r.end <= i) {
                    next.next();
                }
                let keep = !next.peek().is_some_and(|r| r.contains(&i));
                i += 1;
                keep
            });
        }
        let ticket = if batch.is_empty() {
            self.commit.current()
        } else {
            self.apply(batch)?
        };
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| RowOutcome::Failed("not processed".into())))
            .collect();
        Ok((outcomes, ticket))
    }

    /// The enrolment fingerprints of those of `members` who exist. The ids are read
    /// in order, by range reads where they are near each other in the member index
    /// (a file exported in id order, a re-run), and one by one where stored members
    /// lie between them. Few reads matter more than their own cost suggests: sled
    /// lets no read run while it writes a batch, so these reads happen while the
    /// group commit waits for this call's batch, and every read there is time the
    /// whole import waits.
    ///
    /// Sees everything queued before it is called (the range reads wait until it
    /// is applied).
    fn existing_members<'m>(
        &self,
        merchant: &str,
        members: impl Iterator<Item = &'m str>,
    ) -> Result<HashMap<&'m str, String>, EngineError> {
        const PAGE: usize = 256;
        let mut ids: Vec<&str> = members.collect();
        ids.sort_unstable();
        let mut found = HashMap::new();
        let print = |bytes: &[u8]| -> Result<String, EngineError> {
            Ok(decode_member(bytes)?.enrol_fingerprint)
        };
        let Some((first, rest)) = ids.split_first() else {
            return Ok(found);
        };
        if let Some(b) = self
            .storage
            .get(Space::Members, &Self::member_key(merchant, first))?
        {
            found.insert(*first, print(&b)?);
        }
        let id_start = merchant.len() + 1;
        let mut after = Self::member_key(merchant, first);
        let mut next = 0; // rest[..next] are decided
        'ranges: while next < rest.len() {
            let page =
                self.storage
                    .scan_page(Space::Members, merchant, &[], Some(&after), PAGE, false)?;
            let complete = page.len() < PAGE;
            // Stored members read that are not ours: when they are most of a page,
            // ours are spread thin among them (a file not in id order), and reading
            // ours one by one is cheaper.
            let mut others = 0;
            for (key, value) in page {
                let stored = key.as_bytes().get(id_start..).unwrap_or_default();
                // Ours below the stored id do not exist: nothing lies between.
                while rest.get(next).is_some_and(|id| id.as_bytes() < stored) {
                    next += 1;
                }
                match rest.get(next) {
                    None => break 'ranges,
                    Some(id) if id.as_bytes() == stored => {
                        found.insert(*id, print(&value)?);
                        next += 1;
                    }
                    Some(_) => {
                        others += 1;
                        if others > PAGE / 2 {
                            break 'ranges;
                        }
                    }
                }
                after = key;
            }
            if complete {
                // The merchant's last member was read: the rest of ours do not exist.
                next = rest.len();
            }
        }
        for id in &rest[next..] {
            if let Some(b) = self
                .storage
                .get(Space::Members, &Self::member_key(merchant, id))?
            {
                found.insert(*id, print(&b)?);
            }
        }
        Ok(found)
    }

    /// The writes that create the members of `prepared`'s valid rows, each row's
    /// range noted in its `writes`.
    fn import_batch(
        &self,
        merchant: &str,
        rows: &[ImportedMember],
        prepared: &mut [Prepared<'_>],
        now: Timestamp,
    ) -> Result<Batch, EngineError> {
        let mut b = Batch::new();
        b.ops.reserve(prepared.len() * 4);
        for p in prepared.iter_mut() {
            if let Ok(v) = &p.valid {
                let start = b.ops.len();
                self.put_imported(&mut b, merchant, &rows[p.row], v, &p.print, now)?;
                p.writes = start..b.ops.len();
            }
        }
        Ok(b)
    }

    /// Add the writes that create `row`'s member to `b`.
    fn put_imported(
        &self,
        b: &mut Batch,
        merchant: &str,
        row: &ImportedMember,
        valid: &Valid<'_>,
        print: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut account = Account::new();
        if row.balance > 0 {
            account.credit(row.balance, now, row.expires_at, None, REASON, None)?;
        }
        let mut rec = MemberRecord {
            id: row.member.clone(),
            enrolled_at: row.enrolled_at,
            status: MemberStatus::Active,
            birthday: row.birthday.clone(),
            attributes: row.attributes.clone(),
            card_code: Some(valid.card.clone()),
            referral_code: Some(valid.referral.clone()),
            referred_by: None,
            enrol_fingerprint: print.to_string(),
            tier: valid.tier.to_string(),
            tier_since: now,
            tier_reason: "imported".into(),
            tier_progress: None,
            tier_valid_until: None,
            tier_changes: 0,
            account,
            stats: ActivityStats::default(),
            state: State::default(),
            badges: Default::default(),
            annotations: Default::default(),
            perks: Vec::new(),
            ledger_page: Vec::new(),
            ledger_pages: 0,
            perks_kept: PerksKept::Inline,
        };
        let change = TierChange {
            from: String::new(),
            to: valid.tier.to_string(),
            at: now,
            reason: "imported".into(),
            event: None,
        };
        self.put_tier_change(b, merchant, &mut rec, &change);
        for (kind, code) in [(Kind::Card, &valid.card), (Kind::Referral, &valid.referral)] {
            b.put(
                Space::Codes,
                code_key(merchant, kind.name(), code),
                rec.id.clone().into_bytes(),
            );
        }
        self.put_member(b, merchant, &mut rec);
        Ok(())
    }
}

/// Characters all codes of one kind share in one import call (see [`Codes`]).
const PREFIX: usize = 3;

/// A kind of member code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Card,
    Referral,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Card => "card",
            Kind::Referral => "referral",
        }
    }

    fn len(self) -> usize {
        match self {
            Kind::Card => CARD_CODE_LEN,
            Kind::Referral => REFERRAL_CODE_LEN,
        }
    }
}

/// Card and referral codes for one import call.
///
/// Codes are random as at enrolment, except that all codes of one kind in one call
/// share their first three characters (drawn at random per call, one of 32,768).
/// That is what makes a large import fast: the call's few thousand codes land in one
/// small part of the code index, so writing them touches a few pages instead of a
/// few thousand, and the codes already stored there (usually none) are found with
/// one short range read instead of a read per code. (On the benchmark's million
/// members, fully random codes, each checked with a read, made the import about a
/// third slower.)
///
/// What it costs: a card code keeps 45 random bits, so someone who knows one member's
/// card and guesses at codes with the same first three characters hits another
/// member once in about 8.6 billion guesses (4,096 members in 2^45 codes), against
/// once in about a trillion for any code at a million members. Referral codes
/// (8 characters, meant to be shared) keep 25 random bits; collisions are checked
/// like every code's.
///
/// Random bytes are fetched once for the whole call, not per code.
struct Codes {
    random: Vec<u8>,
    used: usize,
    /// Per kind (card, referral): the first characters of this call's codes.
    prefixes: [[u8; PREFIX]; 2],
    /// Per kind: codes drawn by this call, and (once loaded) those stored.
    taken: [HashSet<String>; 2],
}

impl Codes {
    fn new(rows: usize) -> Result<Codes, EngineError> {
        let mut codes = Codes {
            random: Vec::new(),
            used: 0,
            prefixes: [[0; PREFIX]; 2],
            taken: [HashSet::with_capacity(rows), HashSet::with_capacity(rows)],
        };
        codes.refill(2 * PREFIX + rows * (CARD_CODE_LEN + REFERRAL_CODE_LEN))?;
        for k in 0..codes.prefixes.len() {
            for i in 0..PREFIX {
                codes.prefixes[k][i] = codes.char()?;
            }
        }
        Ok(codes)
    }

    fn refill(&mut self, n: usize) -> Result<(), EngineError> {
        self.random.resize(n.max(64), 0);
        self.used = 0;
        #[cfg(test)]
        if let Some(seed) = tests::SEED.get() {
            // Repeatable codes, so a test can make a call draw codes already stored.
            let mut x: u64 = seed | 1;
            for b in &mut self.random {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            tests::SEED.set(Some(x));
            return Ok(());
        }
        getrandom::fill(&mut self.random)
            .map_err(|e| EngineError::Storage(format!("no randomness: {e}")))
    }

    /// A random character of the code alphabet (5 random bits).
    fn char(&mut self) -> Result<u8, EngineError> {
        if self.used == self.random.len() {
            // Only after redraws, which need more than was fetched.
            self.refill(1024)?;
        }
        self.used += 1;
        Ok(ALPHABET[usize::from(self.random[self.used - 1] & 31)])
    }

    /// A code of `kind` no other row of the call has (nor, once loaded, a member).
    fn draw(&mut self, kind: Kind) -> Result<String, EngineError> {
        let k = kind as usize;
        loop {
            let mut code = Vec::with_capacity(kind.len());
            code.extend_from_slice(&self.prefixes[k]);
            for _ in PREFIX..kind.len() {
                code.push(self.char()?);
            }
            // The alphabet is ASCII.
            let code = String::from_utf8(code).unwrap_or_default();
            if self.taken[k].insert(code.clone()) {
                return Ok(code);
            }
        }
    }

    /// The stored codes (card, referral) that start with this call's prefixes; from
    /// now on `draw` avoids them too.
    fn load_stored(
        &mut self,
        engine: &Engine,
        merchant: &str,
    ) -> Result<[HashSet<String>; 2], EngineError> {
        // A range read cannot stop at the prefix's end, only after so many codes: the
        // first page is small, as a prefix is usually new (it then holds no code,
        // and the page only codes after it); pages grow when it is not.
        const FIRST_PAGE: usize = 32;
        const MAX_PAGE: usize = 1024;
        let mut stored = [HashSet::new(), HashSet::new()];
        for kind in [Kind::Card, Kind::Referral] {
            let k = kind as usize;
            let prefix = String::from_utf8_lossy(&self.prefixes[k]).into_owned();
            let start = code_key(merchant, kind.name(), &prefix);
            let mut after = start.clone();
            let mut page_size = FIRST_PAGE;
            loop {
                let page = engine.storage.scan_page(
                    Space::Codes,
                    merchant,
                    &[kind.name().as_bytes()],
                    Some(&after),
                    page_size,
                    false,
                )?;
                let full = page.len() == page_size;
                page_size = (page_size * 4).min(MAX_PAGE);
                let mut past = false;
                for (key, _) in &page {
                    if !key.as_bytes().starts_with(start.as_bytes()) {
                        past = true;
                        break;
                    }
                    let code = String::from_utf8_lossy(key.last_part()).into_owned();
                    self.taken[k].insert(code.clone());
                    stored[k].insert(code);
                }
                match page.into_iter().last() {
                    Some((key, _)) if full && !past => after = key,
                    _ => break,
                }
            }
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::EnrolRequest;
    use crate::ledger::LineKind;
    use crate::storage::SledStorage;

    const NOW: i64 = 1_790_000_000;

    thread_local! {
        /// When set, import codes on this thread are drawn from it, not at random.
        pub(super) static SEED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }

    fn engine(dir: &std::path::Path) -> Arc<Engine> {
        crate::engine::tests::engine(Arc::new(SledStorage::open(dir, 8 << 20).unwrap()))
    }

    fn row(member: &str, balance: i64) -> ImportedMember {
        ImportedMember {
            member: member.into(),
            enrolled_at: NOW - 86_400 * 365,
            balance,
            tier: None,
            birthday: None,
            attributes: Attributes::new(),
            expires_at: None,
        }
    }

    fn import(engine: &Engine, rows: &[ImportedMember]) -> Vec<RowOutcome> {
        let (outcomes, ticket) = engine.import_members("air", rows, NOW).unwrap();
        engine.commit.wait(ticket).unwrap();
        outcomes
    }

    fn failed(o: &RowOutcome, field: &str) -> bool {
        matches!(o, RowOutcome::Failed(r) if r.starts_with(&format!("{field}:")))
    }

    #[test]
    fn an_imported_member_keeps_their_balance_tier_and_profile() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let mut ann = row("ann", 12_500);
        ann.tier = Some("gold".into());
        ann.birthday = Some("1990-02-28".into());
        ann.attributes.insert("segment".into(), "frequent".into());
        ann.expires_at = Some(NOW + 86_400 * 30);
        assert_eq!(
            import(&engine, &[ann.clone(), row("bob", 0)]),
            [RowOutcome::Imported, RowOutcome::Imported]
        );

        let m = engine.member("air", "ann", NOW).unwrap();
        assert_eq!(m.balance.available, 12_500);
        assert_eq!(
            (m.tier.id.as_str(), m.tier.reason.as_str()),
            ("gold", "imported")
        );
        assert_eq!(m.birthday.as_deref(), Some("1990-02-28"));
        assert_eq!(m.attributes, ann.attributes);
        assert_eq!(m.enrolled_at, ann.enrolled_at);
        assert!(m.card_code.is_some() && m.referral_code.is_some());
        let card = m.card_code.unwrap();
        assert_eq!(engine.member_by_code("air", &card, NOW).unwrap().id, "ann");
        let lines = engine.ledger("air", "ann", None, 10).unwrap().lines;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (
                lines[0].kind,
                lines[0].points,
                lines[0].at,
                lines[0].reason.as_str()
            ),
            (LineKind::Earn, 12_500, NOW, REASON)
        );
        let history = engine.tier_history("air", "ann").unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0].to.as_str(), history[0].reason.as_str()),
            ("gold", "imported")
        );

        // No balance: no lot and no line; the programme's first tier.
        let bob = engine.member("air", "bob", NOW).unwrap();
        assert_eq!(bob.balance.available, 0);
        assert_eq!(bob.tier.id, "member");
        assert!(
            engine
                .ledger("air", "bob", None, 10)
                .unwrap()
                .lines
                .is_empty()
        );

        // The balance expires when the old programme said.
        let later = engine.member("air", "ann", NOW + 86_400 * 31).unwrap();
        assert_eq!(later.balance.available, 0);
        assert_eq!(engine.check("air").unwrap().problems, Vec::<String>::new());
    }

    #[test]
    fn bad_rows_fail_alone_with_the_field_named() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let mut unknown_tier = row("c", 1);
        unknown_tier.tier = Some("diamond".into());
        let mut bad_birthday = row("d", 1);
        bad_birthday.birthday = Some("1990-02-30".into());
        let mut future = row("e", 1);
        future.enrolled_at = NOW + 1;
        let mut expired = row("f", 1);
        expired.expires_at = Some(NOW);
        let mut long_attribute = row("g", 1);
        long_attribute
            .attributes
            .insert("note".into(), "x".repeat(1025));
        let rows = [
            row("a", 5),
            row("has space", 1),
            row("b", -1),
            unknown_tier,
            bad_birthday,
            future,
            expired,
            long_attribute,
            row("a", 7),
            row("h", 9),
        ];
        let outcomes = import(&engine, &rows);
        assert_eq!(outcomes[0], RowOutcome::Imported);
        for (i, field) in [
            (1, "member"),
            (2, "balance"),
            (3, "tier"),
            (4, "birthday"),
            (5, "enrolled_at"),
            (6, "expires_at"),
            (7, "attributes/note"),
            (8, "member"),
        ] {
            assert!(failed(&outcomes[i], field), "row {i}: {:?}", outcomes[i]);
        }
        assert_eq!(outcomes[9], RowOutcome::Imported);
        // The first "a" stands; nothing of the bad rows was written.
        assert_eq!(engine.member("air", "a", NOW).unwrap().balance.available, 5);
        for id in ["b", "c", "d", "e", "f", "g"] {
            assert!(engine.member("air", id, NOW).is_err(), "{id} exists");
        }
        assert_eq!(engine.check("air").unwrap().members, 2);
    }

    #[test]
    fn importing_again_changes_nothing_and_a_different_row_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let rows = [row("a", 5), row("b", 6)];
        import(&engine, &rows);
        let before = engine.member("air", "a", NOW).unwrap();
        let flushes = engine.flush_stats().operations;
        let mut changed = row("b", 60);
        changed.tier = Some("gold".into());
        assert_eq!(
            import(&engine, &[row("a", 5), changed]),
            [
                RowOutcome::Unchanged,
                RowOutcome::Failed(
                    "member: \"b\" already exists (enrolled, or imported from a different row)"
                        .into()
                )
            ]
        );
        assert_eq!(
            engine.flush_stats().operations,
            flushes,
            "something was written"
        );
        assert_eq!(engine.member("air", "a", NOW).unwrap(), before);
        assert_eq!(engine.member("air", "b", NOW).unwrap().balance.available, 6);
    }

    #[test]
    fn an_enrolled_member_is_never_taken_for_an_imported_one() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let req = EnrolRequest {
            member: "ann".into(),
            enrolled_at: NOW - 10,
            ..Default::default()
        };
        engine.durable(engine.enrol("air", &req).unwrap()).unwrap();
        let mut same = row("ann", 0);
        same.enrolled_at = NOW - 10;
        assert!(failed(&import(&engine, &[same])[0], "member"));
        // And an imported member cannot be enrolled over.
        import(&engine, &[row("bob", 3)]);
        let req = EnrolRequest {
            member: "bob".into(),
            enrolled_at: NOW - 86_400 * 365,
            ..Default::default()
        };
        assert!(matches!(
            engine.enrol("air", &req),
            Err(EngineError::MemberExists(_))
        ));
    }

    #[test]
    fn an_import_racing_enrolments_of_the_same_members_creates_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let ids: Vec<String> = (0..2_000).map(|i| format!("m{i}")).collect();
        let rows: Vec<ImportedMember> = ids.iter().map(|id| row(id, 100)).collect();
        let enrolments = {
            let (engine, ids) = (engine.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut won = Vec::new();
                for id in ids.iter().rev() {
                    let req = EnrolRequest {
                        member: id.clone(),
                        enrolled_at: NOW,
                        ..Default::default()
                    };
                    if engine.enrol("air", &req).is_ok() {
                        won.push(id.clone());
                    }
                }
                won
            })
        };
        let mut imported = Vec::new();
        for (chunk, ids) in rows.chunks(100).zip(ids.chunks(100)) {
            for (o, id) in import(&engine, chunk).into_iter().zip(ids) {
                if o == RowOutcome::Imported {
                    imported.push(id.clone());
                }
            }
        }
        let enrolled = enrolments.join().unwrap();
        assert_eq!(imported.len() + enrolled.len(), ids.len());
        for id in &imported {
            let m = engine.member("air", id, NOW).unwrap();
            assert_eq!(m.tier.reason, "imported", "{id} was overwritten");
        }
        for id in &enrolled {
            let m = engine.member("air", id, NOW).unwrap();
            assert_eq!(m.tier.reason, "enrolled", "{id} was overwritten");
        }
        let report = engine.check("air").unwrap();
        assert_eq!(report.members, ids.len() as u64);
        assert_eq!(report.problems, Vec::<String>::new());
    }

    #[test]
    fn a_drawn_code_a_member_already_holds_is_drawn_again() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let first: Vec<ImportedMember> = (0..300).map(|i| row(&format!("a{i}"), 1)).collect();
        SEED.set(Some(7));
        import(&engine, &first);
        // The same draws again: every code is taken, by the first call's members.
        let second: Vec<ImportedMember> = (0..300).map(|i| row(&format!("b{i}"), 1)).collect();
        SEED.set(Some(7));
        let outcomes = import(&engine, &second);
        SEED.set(None);
        assert!(outcomes.iter().all(|o| *o == RowOutcome::Imported));
        let mut cards = HashSet::new();
        let mut referrals = HashSet::new();
        for r in first.iter().chain(&second) {
            let m = engine.member("air", &r.member, NOW).unwrap();
            let card = m.card_code.unwrap();
            assert_eq!(
                engine.member_by_code("air", &card, NOW).unwrap().id,
                r.member
            );
            assert!(cards.insert(card));
            assert!(referrals.insert(m.referral_code.unwrap()));
        }
        assert_eq!(engine.check("air").unwrap().problems, Vec::<String>::new());
    }

    #[test]
    fn stored_codes_are_found_by_their_prefix_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let mut b = Batch::new();
        for code in (0..2_500)
            .map(|i| format!("ABC{i:09}"))
            .chain(["ABB000000000".into(), "ABD000000000".into()])
        {
            b.put(Space::Codes, code_key("air", "card", &code), b"x".to_vec());
        }
        b.put(
            Space::Codes,
            code_key("air", "referral", "ABC00000"),
            b"x".to_vec(),
        );
        engine.commit.wait(engine.apply(b).unwrap()).unwrap();
        let mut codes = Codes::new(10).unwrap();
        codes.prefixes = [*b"ABC", *b"ABC"];
        let [cards, referrals] = codes.load_stored(&engine, "air").unwrap();
        assert_eq!(cards.len(), 2_500);
        assert!(cards.iter().all(|c| c.starts_with("ABC")));
        assert_eq!(referrals.into_iter().collect::<Vec<_>>(), ["ABC00000"]);
        let drawn = codes.draw(Kind::Card).unwrap();
        assert!(drawn.starts_with("ABC") && !cards.contains(&drawn));
    }

    #[test]
    fn existing_members_are_found_by_ranges_and_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let stored: Vec<ImportedMember> = (0..2_400)
            .step_by(2)
            .map(|i| row(&format!("m{i:04}"), 0))
            .collect();
        for chunk in stored.chunks(500) {
            import(&engine, chunk);
        }
        let exists = |i: usize| i.is_multiple_of(2) && i < 2_400;
        for ids in [
            // Dense and in order, as in a re-run: a few pages of ranges.
            (0..1_500).collect::<Vec<usize>>(),
            // Every third, past the last stored member and before the first.
            (0..3_000).step_by(3).collect(),
            // Far apart: too many others between them, so one by one.
            vec![1, 600, 1_201, 2_398, 2_399, 5_000],
            vec![7],
            vec![],
        ] {
            let names: Vec<String> = ids.iter().map(|i| format!("m{i:04}")).collect();
            let found = engine
                .existing_members("air", names.iter().map(String::as_str).rev())
                .unwrap();
            let expected: Vec<&str> = ids
                .iter()
                .zip(&names)
                .filter(|(i, _)| exists(**i))
                .map(|(_, n)| n.as_str())
                .collect();
            let mut got: Vec<&str> = found.keys().copied().collect();
            got.sort_unstable();
            assert_eq!(got, expected, "{ids:?}");
            assert!(found.values().all(|p| p.len() == 64));
        }
    }

    #[test]
    fn too_many_rows_in_one_call_are_refused_before_anything() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let rows = vec![row("a", 1); MAX_ROWS + 1];
        assert!(matches!(
            engine.import_members("air", &rows, NOW),
            Err(EngineError::Invalid { .. })
        ));
    }
}
