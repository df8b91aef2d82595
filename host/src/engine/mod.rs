//! The programme engine: applies what merchants' programmes decide to member state,
//! exactly once, atomically and durably.
//!
//! Every write operation follows the same steps (DESIGN.md §2):
//! 1. take the member's lock (operations on one member are serialised; on different
//!    members they run in parallel);
//! 2. answer a retry from its idempotency record, or refuse a reused id with a
//!    different request as a conflict;
//! 3. load the member and the merchant's active programme, and call its hooks with a
//!    snapshot of the member (a fresh sandbox instance per hook);
//! 4. apply the whole outcome — ledger lines, lots, balance, stats, tier change, plugin
//!    state, perks, idempotency record — in one storage batch, queued to the group
//!    commit (later reads see it at once);
//! 5. release the lock and wait for the group commit to make the batch durable: one
//!    committer applies everything queued as one atomic write and flushes once, and a
//!    success is only returned once the flush covering it returns.
//!
//! A plugin failure or a refusal anywhere before step 4 writes nothing.
//!
//! The synchronous methods do all of this on the calling thread (guest code included),
//! so async callers run them through [`Engine::submit`], which moves them to the
//! bounded plugin pool and awaits durability without blocking a worker.

mod bulk;
mod check;
mod commit;
mod error;
mod events;
mod journal;
mod members;
pub mod native;
mod outside;
mod programme;
mod recent;
mod records;
mod redemptions;
mod sweep;

use crate::lock;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{MemberSnapshot, Timestamp};
use crate::ledger::Line;
use crate::pool::PluginPool;
use crate::storage::{Batch, Key, Space, Storage, Write, seq_part};

pub use bulk::{ImportedMember, RowOutcome};
pub use check::CheckReport;
pub use commit::{FlushStats, GroupCommit, Ticket};
pub use error::EngineError;
pub use journal::{JournalCursor, Recorded};
pub use members::{
    Adjustment, EnrolRequest, LedgerPage, MemberView, PerkView, ProfileUpdate, TierView,
    normalize_code, random_code,
};
pub use programme::{Answer, CallError, Ctx, FixedProgrammes, Programme, Programmes};
pub use records::*;
pub use redemptions::{Consumed, QuoteAnswer};
pub use sweep::SweepReport;

use error::invalid;

/// Member lock stripes: enough that unrelated members rarely share one.
const STRIPES: usize = 4096;

/// How long a redemption quote can be committed, by default.
pub const QUOTE_TTL_SECS: i64 = 15 * 60;

/// An operation's value and the ticket that makes it durable.
#[derive(Debug)]
pub struct Done<T> {
    /// The result.
    pub value: T,
    /// Durable once the group commit has flushed it.
    pub ticket: Ticket,
}

/// The engine (see the module docs). Share it behind an `Arc`.
pub struct Engine {
    storage: Arc<dyn Storage>,
    programmes: Arc<dyn Programmes>,
    commit: Arc<GroupCommit>,
    pool: Arc<PluginPool>,
    // Std mutexes, one per stripe of members: held for one operation on one member
    // (plugin calls and the batch apply included, never an await or the flush).
    stripes: Vec<Mutex<()>>,
    // A std RwLock: read on every operation, written when a merchant changes.
    merchants: RwLock<HashMap<String, Arc<MerchantSettings>>>,
    // Per-merchant budget locks: held from reading a period's usage to applying the
    // batch that updates it, so concurrent credits cannot both spend the last of it.
    budget_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    // The config text each hook call gets, per merchant and programme version, so it
    // is not serialised again for every call. Cleared when a merchant changes.
    configs: RwLock<HashMap<(String, String), Arc<str>>>,
    sweeps: std::sync::atomic::AtomicU64,
    // Held while an erasure rewrites journal entries: entries of several members share
    // a key, so two erasures must not both rewrite one from the same old value.
    journal_scrub: Mutex<()>,
    // Whether operations are recorded in the journal (not in a simulation's scratch
    // engine, whose history is the one it replays).
    journaling: bool,
    // Which merchants want which webhook events (shared with the webhooks).
    subscriptions: Arc<crate::webhooks::Subscriptions>,
}

/// Whether `batch` adds outbox rows (webhook deliveries).
fn announces(batch: &Batch) -> bool {
    batch
        .ops
        .iter()
        .any(|(space, _, write)| *space == Space::Outbox && *write != Write::Delete)
}

/// SHA-256 of `bytes`, hex.
pub(crate) fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    crate::domain::hex(&h.finalize())
}

/// Member ids: 1-128 printable ASCII characters without spaces or '/'.
pub fn valid_member_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// The earliest time an operation may name: 1970-01-01T00:00:00Z (seconds since the
/// Unix epoch).
pub const EARLIEST: Timestamp = 0;
/// The latest time an operation may name: 9999-12-31T23:59:59Z. Between the two, a
/// programme's date arithmetic (expiry years ahead, tier windows, days of the week)
/// neither overflows nor leaves the calendar.
pub const LATEST: Timestamp = 253_402_300_799;

/// Refuse a time outside [`EARLIEST`]..=[`LATEST`], naming the field.
fn check_time(at: Timestamp, pointer: &str) -> Result<(), EngineError> {
    if (EARLIEST..=LATEST).contains(&at) {
        Ok(())
    } else {
        Err(invalid(
            pointer,
            format!(
                "must be seconds since the Unix epoch from {EARLIEST} (1970-01-01) to \
                 {LATEST} (9999-12-31T23:59:59Z), not {at}"
            ),
        ))
    }
}

fn check_member_id(id: &str, pointer: &str) -> Result<(), EngineError> {
    if valid_member_id(id) {
        Ok(())
    } else {
        Err(invalid(
            pointer,
            "must be 1-128 printable ASCII characters without spaces or '/'",
        ))
    }
}

/// Members and event records, written on every event, are stored in postcard's
/// compact binary form: a third the size of JSON, so the storage engine writes (and
/// rewrites, as it consolidates pages) a third of the bytes. Everything else is JSON.
fn decode_bin<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, EngineError> {
    postcard::from_bytes(bytes)
        .map_err(|e| EngineError::Storage(format!("stored {what} is unreadable: {e}")))
}

fn encode_bin<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our records have no untagged enums or skipped-if fields: serialising cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// The first byte of a member record whose perks are kept apart ([`Space::Perks`]),
/// followed by a [`PerksHeader`] and the record. A record otherwise begins with the
/// length of its id, which is never 0.
const PERKS_APART: u8 = 0;

/// What a member record whose perks are kept apart says of them.
#[derive(Serialize, Deserialize)]
struct PerksHeader {
    answer: Option<u64>,
    until: i64,
}

/// A member record as stored. Perks kept apart are not read: `perks` is empty until
/// [`Engine::read_perks`].
pub(crate) fn decode_member(bytes: &[u8]) -> Result<MemberRecord, EngineError> {
    let unreadable =
        |e: postcard::Error| EngineError::Storage(format!("stored member is unreadable: {e}"));
    let (kept, bytes) = match bytes.split_first() {
        Some((&PERKS_APART, rest)) => {
            let (header, rest) =
                postcard::take_from_bytes::<PerksHeader>(rest).map_err(unreadable)?;
            let kept = PerksKept::Apart {
                answer: header.answer,
                until: header.until,
                read: None,
            };
            (kept, rest)
        }
        _ => (PerksKept::Inline, bytes),
    };
    let (mut rec, trailer) =
        postcard::take_from_bytes::<MemberRecord>(bytes).map_err(unreadable)?;
    rec.perks_kept = kept;
    // Points expired from its lots, when there are any (see `encode_member`).
    if !trailer.is_empty() {
        rec.account.expired = decode_bin(trailer, "member's expired points")?;
    }
    Ok(rec)
}

/// A member record's encoding: the record, then the points expired from its lots
/// when there are any (after it, so a record written before they were kept reads as
/// one without them).
fn encode_member(rec: &MemberRecord, bytes: &mut Vec<u8>) {
    bytes.extend(encode_bin(rec));
    if !rec.account.expired.is_empty() {
        bytes.extend(encode_bin(&rec.account.expired));
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, EngineError> {
    serde_json::from_slice(bytes)
        .map_err(|e| EngineError::Storage(format!("stored {what} is unreadable: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our records contain no maps with non-string keys: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Engine {
    /// An engine over `storage`, calling the programmes `programmes` gives, running
    /// guest code (in [`Engine::submit`]) on `pool`.
    pub fn new(
        storage: Arc<dyn Storage>,
        programmes: Arc<dyn Programmes>,
        pool: Arc<PluginPool>,
    ) -> Engine {
        // Everything reads and writes through the group commit, so a write is visible
        // to the next operation as soon as it is queued.
        Engine::with_commit(Arc::new(GroupCommit::start(storage)), programmes, pool)
    }

    /// An engine like [`Engine::new`] whose writes are applied at once on the
    /// calling thread, without a committer thread or flushes (see
    /// [`GroupCommit::inline`]): for scratch state in memory, such as a simulation's.
    pub fn inline(
        storage: Arc<dyn Storage>,
        programmes: Arc<dyn Programmes>,
        pool: Arc<PluginPool>,
    ) -> Engine {
        Engine::with_commit(Arc::new(GroupCommit::inline(storage)), programmes, pool)
    }

    fn with_commit(
        commit: Arc<GroupCommit>,
        programmes: Arc<dyn Programmes>,
        pool: Arc<PluginPool>,
    ) -> Engine {
        Engine {
            storage: commit.clone(),
            commit,
            programmes,
            pool,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            merchants: RwLock::new(HashMap::new()),
            budget_locks: Mutex::new(HashMap::new()),
            configs: RwLock::new(HashMap::new()),
            sweeps: std::sync::atomic::AtomicU64::new(0),
            journal_scrub: Mutex::new(()),
            journaling: true,
            subscriptions: Arc::default(),
        }
    }

    /// Stop recording operations in the journal (for scratch engines that replay
    /// history which is recorded already).
    pub fn without_journal(mut self) -> Engine {
        self.journaling = false;
        self
    }

    /// Which merchants want which webhook events.
    pub fn subscriptions(&self) -> &Arc<crate::webhooks::Subscriptions> {
        &self.subscriptions
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Flush counters of the group commit.
    pub fn flush_stats(&self) -> FlushStats {
        self.commit.stats()
    }

    /// Block until `done` is durable and return its value.
    pub fn durable<T>(&self, done: Done<T>) -> Result<T, EngineError> {
        self.commit.wait(done.ticket)?;
        Ok(done.value)
    }

    /// Run `op` for `merchant` on the plugin pool (never on an async worker) and
    /// return its value once durable (inside [`Engine::deferring`]: once queued).
    pub async fn submit<T, F>(self: &Arc<Self>, merchant: &str, op: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<Done<T>, EngineError> + Send + 'static,
    {
        let engine = self.clone();
        let done = self.pool.run(merchant, move || op(&engine)).await??;
        self.durable_async(done.ticket).await?;
        Ok(done.value)
    }

    // --- merchants ----------------------------------------------------------------

    /// Create a merchant.
    pub fn create_merchant(
        &self,
        settings: MerchantSettings,
    ) -> Result<Done<MerchantSettings>, EngineError> {
        if !crate::sandbox::valid_id(&settings.id) {
            return Err(invalid(
                "/id",
                "must be 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        check_currency(&settings.currency, "/currency")?;
        check_settings(&settings)?;
        let key = Key::merchant(&settings.id, &[]);
        let _g = lock(&self.stripes[0]);
        if self.storage.get(Space::Merchants, &key)?.is_some() {
            return Err(EngineError::MerchantExists(settings.id));
        }
        let mut b = Batch::new();
        b.put(Space::Merchants, key, encode(&settings));
        let ticket = self.apply(b)?;
        self.cache_merchant(settings.clone());
        Ok(Done {
            value: settings,
            ticket,
        })
    }

    /// Change a merchant's settings (`change` edits a copy; the id and currency stay).
    /// A new programme config must satisfy the active programme's config schema.
    pub fn update_merchant(
        &self,
        merchant: &str,
        change: impl FnOnce(&mut MerchantSettings),
    ) -> Result<Done<MerchantSettings>, EngineError> {
        let _g = lock(&self.stripes[0]);
        let old = self.merchant(merchant)?;
        let mut s = (*old).clone();
        change(&mut s);
        s.id = merchant.to_string();
        s.currency = old.currency.clone();
        check_settings(&s)?;
        if let Some(config) = s
            .config
            .as_ref()
            .filter(|c| Some(*c) != old.config.as_ref())
        {
            let programme = self.programme(merchant)?;
            check_config(&programme.info().config_schema, config)?;
        }
        let mut b = Batch::new();
        b.put(Space::Merchants, Key::merchant(merchant, &[]), encode(&s));
        let ticket = self.apply(b)?;
        self.cache_merchant(s.clone());
        Ok(Done { value: s, ticket })
    }

    /// A merchant's settings.
    pub fn merchant(&self, merchant: &str) -> Result<Arc<MerchantSettings>, EngineError> {
        if let Some(s) = self
            .merchants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(merchant)
        {
            return Ok(s.clone());
        }
        let bytes = self
            .storage
            .get(Space::Merchants, &Key::merchant(merchant, &[]))?
            .ok_or_else(|| EngineError::UnknownMerchant(merchant.to_string()))?;
        let s: MerchantSettings = decode(&bytes, "merchant")?;
        Ok(self.cache_merchant(s))
    }

    /// Every merchant's id.
    pub fn merchant_ids(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.storage.merchants(Space::Merchants)?)
    }

    fn cache_merchant(&self, s: MerchantSettings) -> Arc<MerchantSettings> {
        self.configs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(m, _), _| *m != s.id);
        let s = Arc::new(s);
        self.merchants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(s.id.clone(), s.clone());
        s
    }

    /// Points issued in `merchant`'s budget period containing `at`.
    pub fn budget_usage(&self, merchant: &str, at: Timestamp) -> Result<BudgetUsage, EngineError> {
        let s = self.merchant(merchant)?;
        let period = s
            .budget
            .as_ref()
            .map_or(BudgetPeriod::Month, |b| b.period)
            .key(at);
        self.load_usage(merchant, &period)
    }

    /// Points issued in each of `merchant`'s budget periods so far, oldest first.
    pub fn budget_history(&self, merchant: &str) -> Result<Vec<BudgetUsage>, EngineError> {
        self.storage
            .scan(Space::Budget, merchant, &[])?
            .iter()
            .map(|(_, v)| decode(v, "budget usage"))
            .collect()
    }

    /// The active programme's tiers as (id, name), in its order (none without one).
    pub fn tier_catalogue(&self, merchant: &str) -> Vec<(String, String)> {
        self.programmes.active(merchant).map_or_else(Vec::new, |p| {
            p.info()
                .tiers
                .iter()
                .map(|t| (t.id.clone(), t.name.clone()))
                .collect()
        })
    }

    fn load_usage(&self, merchant: &str, period: &str) -> Result<BudgetUsage, EngineError> {
        match self.storage.get(
            Space::Budget,
            &Key::merchant(merchant, &[period.as_bytes()]),
        )? {
            Some(b) => decode(&b, "budget usage"),
            None => Ok(BudgetUsage {
                period: period.to_string(),
                ..BudgetUsage::default()
            }),
        }
    }

    fn budget_lock(&self, merchant: &str) -> Arc<Mutex<()>> {
        lock(&self.budget_locks)
            .entry(merchant.to_string())
            .or_default()
            .clone()
    }

    // --- shared steps ---------------------------------------------------------------

    /// The config the programme gets: the merchant's, or the programme's default.
    fn config_text(&self, settings: &MerchantSettings, programme: &dyn Programme) -> Arc<str> {
        let key = (settings.id.clone(), programme.version().to_string());
        if let Some(c) = self
            .configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return c.clone();
        }
        let text: Arc<str> = match &settings.config {
            Some(c) => c.to_string().into(),
            None => programme.info().default_config.to_string().into(),
        };
        self.configs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, text.clone());
        text
    }

    fn programme(&self, merchant: &str) -> Result<Arc<dyn Programme>, EngineError> {
        self.programmes
            .active(merchant)
            .ok_or_else(|| EngineError::NoProgramme(merchant.to_string()))
    }

    /// The stripe of `key`: a member (merchant, member), or an operation id (merchant,
    /// scope, id).
    fn stripe(&self, key: impl Hash) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    fn lock_member(&self, merchant: &str, member: &str) -> MutexGuard<'_, ()> {
        lock(&self.stripes[self.stripe((merchant, member))])
    }

    /// Lock a member and an operation id of the merchant (an event's, an adjustment's,
    /// a consumption's, named by `scope`), in stripe order: the id's idempotency
    /// record is the merchant's, so posts of one id for two members are serialised.
    fn lock_member_and(
        &self,
        merchant: &str,
        member: &str,
        scope: &str,
        id: &str,
    ) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        self.lock_stripes(
            self.stripe((merchant, member)),
            self.stripe((merchant, scope, id)),
        )
    }

    /// Lock stripes `i` and `j` in order (one lock when they are the same).
    fn lock_stripes(&self, i: usize, j: usize) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        if i == j {
            return (lock(&self.stripes[i]), None);
        }
        let (lo, hi) = (i.min(j), i.max(j));
        let first = lock(&self.stripes[lo]);
        (first, Some(lock(&self.stripes[hi])))
    }

    /// Lock two members in stripe order (one lock when they share a stripe).
    fn lock_two(
        &self,
        merchant: &str,
        a: &str,
        b: &str,
    ) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        self.lock_stripes(self.stripe((merchant, a)), self.stripe((merchant, b)))
    }

    fn member_key(merchant: &str, member: &str) -> Key {
        Key::merchant(merchant, &[member.as_bytes()])
    }

    fn find_member(
        &self,
        merchant: &str,
        member: &str,
    ) -> Result<Option<MemberRecord>, EngineError> {
        match self
            .storage
            .get(Space::Members, &Self::member_key(merchant, member))?
        {
            Some(b) => Ok(Some(decode_member(&b)?)),
            None => Ok(None),
        }
    }

    /// Call `visit` with every member record of `merchant`, in id order, without
    /// holding them all in memory; `visit` returns false to stop. Perks kept apart
    /// ([`Space::Perks`]) are not read: such a record's `perks` is empty.
    pub fn visit_members(
        &self,
        merchant: &str,
        visit: &mut dyn FnMut(MemberRecord) -> bool,
    ) -> Result<(), EngineError> {
        let mut failed = None;
        self.storage.visit(
            Space::Members,
            merchant,
            &mut |_, bytes| match decode_member(bytes) {
                Ok(rec) => visit(rec),
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        failed.map_or(Ok(()), Err)
    }

    fn load_member(&self, merchant: &str, member: &str) -> Result<MemberRecord, EngineError> {
        self.find_member(merchant, member)?
            .ok_or_else(|| EngineError::UnknownMember(member.to_string()))
    }

    fn load_active(&self, merchant: &str, member: &str) -> Result<MemberRecord, EngineError> {
        let rec = self.load_member(merchant, member)?;
        if rec.status != MemberStatus::Active {
            return Err(EngineError::MemberInactive {
                member: rec.id,
                status: rec.status,
            });
        }
        Ok(rec)
    }

    /// Add `rec` to the batch: its new ledger lines go to the page being filled, full
    /// pages are stored apart, empty lots are dropped.
    fn put_member(&self, b: &mut Batch, merchant: &str, rec: &mut MemberRecord) {
        let lines: Vec<Line> = std::mem::take(&mut rec.account.lines);
        for line in lines {
            rec.stats.record_line(line.at, line.kind, line.points);
            rec.ledger_page.push(line);
            if rec.ledger_page.len() >= LEDGER_PAGE {
                rec.ledger_pages += 1;
                b.put(
                    Space::Ledger,
                    Key::merchant(merchant, &[rec.id.as_bytes(), &seq_part(rec.ledger_pages)]),
                    encode_bin(&rec.ledger_page),
                );
                rec.ledger_page.clear();
            }
        }
        rec.account.compact();
        let key = Self::member_key(merchant, &rec.id);
        // Perks a member holds are kept apart and written when they change; a member
        // who holds none has them (none) in the record.
        let perks = std::mem::take(&mut rec.perks);
        let kept = match std::mem::take(&mut rec.perks_kept) {
            // Not read, so not changed: the stored ones stand.
            kept @ PerksKept::Apart { read: None, .. } => {
                debug_assert!(perks.is_empty(), "perks set on a record read without them");
                kept
            }
            kept if perks.is_empty() => {
                if kept != PerksKept::Inline {
                    b.delete(Space::Perks, key.clone());
                }
                PerksKept::Inline
            }
            kept => {
                let (answer, read) = match kept {
                    PerksKept::Apart { answer, read, .. } => (answer, read),
                    PerksKept::Inline => (None, None),
                };
                let encoded = encode_bin(&perks);
                if read.as_ref() != Some(&encoded) {
                    b.put(Space::Perks, key.clone(), encoded.clone());
                }
                PerksKept::Apart {
                    answer,
                    until: perks
                        .iter()
                        .filter_map(|e| e.valid_until)
                        .min()
                        .unwrap_or(i64::MAX),
                    read: Some(encoded),
                }
            }
        };
        let mut record = Vec::new();
        if let PerksKept::Apart { answer, until, .. } = &kept {
            record.push(PERKS_APART);
            record.extend(encode_bin(&PerksHeader {
                answer: *answer,
                until: *until,
            }));
        }
        encode_member(rec, &mut record);
        b.put(Space::Members, key, record);
        rec.perks = perks;
        rec.perks_kept = kept;
    }

    /// Read the member's perks if they are kept apart and were not read yet.
    fn read_perks(&self, merchant: &str, rec: &mut MemberRecord) -> Result<(), EngineError> {
        if let PerksKept::Apart {
            read: read @ None, ..
        } = &mut rec.perks_kept
        {
            let stored = self
                .storage
                .get(Space::Perks, &Self::member_key(merchant, &rec.id))?
                .unwrap_or_default();
            rec.perks = if stored.is_empty() {
                Vec::new()
            } else {
                decode_bin(&stored, "perks")?
            };
            *read = Some(stored);
        }
        Ok(())
    }

    fn put_tier_change(
        &self,
        b: &mut Batch,
        merchant: &str,
        rec: &mut MemberRecord,
        change: &TierChange,
    ) {
        rec.tier_changes += 1;
        b.put(
            Space::TierHistory,
            Key::merchant(merchant, &[rec.id.as_bytes(), &seq_part(rec.tier_changes)]),
            encode(change),
        );
    }

    fn apply(&self, batch: Batch) -> Result<Ticket, EngineError> {
        let announces = announces(&batch);
        let ticket = self.commit.submit(batch)?;
        self.announced(announces);
        Ok(ticket)
    }

    /// [`Engine::apply`] unless the group commit's queue is full: then the batch
    /// comes back, unwritten.
    fn try_apply(&self, batch: Batch) -> Result<Result<Ticket, Batch>, EngineError> {
        let announces = announces(&batch);
        let queued = self.commit.try_submit(batch)?;
        if queued.is_ok() {
            self.announced(announces);
        }
        Ok(queued)
    }

    /// After a batch with outbox rows (`announces`) was queued: wake the webhook
    /// worker then, not when the row was added to the batch, so it finds the row (it
    /// waits for the flush itself).
    fn announced(&self, announces: bool) {
        if announces {
            self.subscriptions.mark_dirty();
        }
    }

    /// What the plugin sees of `rec` at `now`.
    fn snapshot(rec: &MemberRecord, now: Timestamp) -> MemberSnapshot {
        let b = rec.account.balance(now);
        MemberSnapshot {
            id: rec.id.clone(),
            enrolled_at: rec.enrolled_at,
            tier: rec.tier.clone(),
            tier_since: rec.tier_since,
            balance: b.available,
            pending: b.pending,
            debt: b.debt,
            birthday: rec.birthday.clone(),
            referred_by: rec.referred_by.clone(),
            attributes: rec.attributes.clone(),
            stats: rec.stats.snapshot(now, rec.enrolled_at),
            state: rec.state.clone(),
        }
    }
}

/// `config` against the programme's config schema; the error names the first field
/// at fault.
pub fn check_config(
    schema: &serde_json::Value,
    config: &serde_json::Value,
) -> Result<(), EngineError> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        invalid(
            "/config",
            format!("the programme's config schema is unusable: {e}"),
        )
    })?;
    match validator.iter_errors(config).next() {
        Some(error) => Err(invalid(
            &format!("/config{}", error.instance_path()),
            error.to_string(),
        )),
        None => Ok(()),
    }
}

pub(crate) fn check_currency(c: &str, pointer: &str) -> Result<(), EngineError> {
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(invalid(
            pointer,
            "must be an ISO 4217 code: three upper-case letters",
        ))
    }
}

fn check_settings(s: &MerchantSettings) -> Result<(), EngineError> {
    if s.name.trim().is_empty() || s.name.len() > 200 {
        return Err(invalid("/name", "must be 1-200 characters"));
    }
    if let Some(pv) = &s.point_value {
        if pv.points <= 0 {
            return Err(invalid("/point_value/points", "must be positive"));
        }
        if !(0..=crate::domain::MAX_MINOR).contains(&pv.worth.minor) {
            return Err(invalid(
                "/point_value/worth/minor",
                format!("must be from 0 to {}", crate::domain::MAX_MINOR),
            ));
        }
        if pv.worth.currency != s.currency {
            return Err(invalid(
                "/point_value/worth/currency",
                format!("must be the programme currency {}", s.currency),
            ));
        }
    }
    if let Some(b) = &s.budget {
        if s.point_value.is_none() {
            return Err(invalid(
                "/budget",
                "a budget needs point_value: what points are worth",
            ));
        }
        if !(0..=crate::domain::MAX_MINOR).contains(&b.limit.minor) {
            return Err(invalid(
                "/budget/limit/minor",
                format!("must be from 0 to {}", crate::domain::MAX_MINOR),
            ));
        }
        if b.limit.currency != s.currency {
            return Err(invalid(
                "/budget/limit/currency",
                format!("must be the programme currency {}", s.currency),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
