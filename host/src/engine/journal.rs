//! The recorded history: every operation that ran a merchant's programme, as it was
//! asked, in the order of the time it happened ([`Space::Journal`]).
//!
//! Plugins are pure: what a programme decides follows from the member, the request
//! and the config. So the history of requests is enough to replay a merchant's past
//! through another programme (a simulation, see [`crate::simulate`]). Each entry is
//! written in the same batch as the change it caused, so the journal holds exactly
//! the operations that happened: a refused or failed operation writes nothing.
//!
//! Keys are `merchant \0 at \0 seq`: `at` is the operation's own time (the event's
//! `occurred_at`, the enrolment's `enrolled_at`), so a period of history is one key
//! range; `seq` orders operations of the same second as they arrived.
//!
//! Personal data: an enrolment entry carries the member's birthday and attributes (a
//! programme may give birthday or segment bonuses). Erasing the member removes them
//! from that entry too. Later profile changes are not recorded.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, decode};
use crate::domain::{Attributes, Event, RedemptionRequest, Timestamp};
use crate::storage::{Batch, Key, Space, seq_part};

/// One recorded operation, as it was asked. The JSON form (tagged by `op`) is also
/// the format of an event file given to a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Recorded {
    /// A member joined.
    Enrol {
        /// The member.
        member: String,
        /// When.
        at: Timestamp,
        /// Birthday "YYYY-MM-DD".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birthday: Option<String>,
        /// Profile attributes at enrolment.
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
        /// The member whose referral code they joined with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referred_by: Option<String>,
    },
    /// An event: purchase, refund, or a custom kind.
    Event {
        /// The member.
        member: String,
        /// The event as posted.
        event: Event,
    },
    /// A redemption committed (quoted and committed at `at`).
    Redemption {
        /// The member.
        member: String,
        /// The redemption id.
        id: String,
        /// What was asked.
        request: RedemptionRequest,
        /// When it was committed.
        at: Timestamp,
    },
    /// A committed redemption cancelled (its points returned).
    Cancel {
        /// The redemption id.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// A manual adjustment.
    Adjust {
        /// The member.
        member: String,
        /// The adjustment id.
        id: String,
        /// Signed points.
        points: i64,
        /// Why.
        reason: String,
        /// Who made it.
        by: String,
        /// When.
        at: Timestamp,
    },
}

impl Recorded {
    /// When the operation happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Recorded::Enrol { at, .. }
            | Recorded::Redemption { at, .. }
            | Recorded::Cancel { at, .. }
            | Recorded::Adjust { at, .. } => *at,
            Recorded::Event { event, .. } => event.occurred_at,
        }
    }

    /// The member it concerns (a cancellation names its redemption instead).
    pub fn member(&self) -> Option<&str> {
        match self {
            Recorded::Enrol { member, .. }
            | Recorded::Event { member, .. }
            | Recorded::Redemption { member, .. }
            | Recorded::Adjust { member, .. } => Some(member),
            Recorded::Cancel { .. } => None,
        }
    }
}

/// A time as a key part that sorts in time order (negative times included).
fn at_part(at: Timestamp) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time a journal key was written at.
fn at_of(key: &Key) -> Timestamp {
    let b = key.suffix(17);
    let mut at = [0u8; 8];
    at.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(at) ^ (1 << 63)) as i64
}

/// Where a read of the journal stopped: pass it back to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalCursor(Key);

impl Engine {
    /// Add `entry` (already JSON) at time `at` to `batch`.
    pub(super) fn record_raw(
        &self,
        batch: &mut Batch,
        merchant: &str,
        at: Timestamp,
        entry: Vec<u8>,
    ) {
        if !self.journaling {
            return;
        }
        let seq = self.journal_seq.fetch_add(1, Ordering::Relaxed);
        batch.put(
            Space::Journal,
            Key::merchant(merchant, &[&at_part(at), &seq_part(seq)]),
            entry,
        );
    }

    /// Add `entry` to `batch`.
    pub(super) fn record(&self, batch: &mut Batch, merchant: &str, entry: &Recorded) {
        self.record_raw(batch, merchant, entry.at(), super::encode(entry));
    }

    /// An event's entry, built around the event's JSON (already made for its
    /// fingerprint) instead of serialising it again.
    pub(super) fn record_event(
        &self,
        batch: &mut Batch,
        merchant: &str,
        member: &str,
        event: &Event,
        event_json: &[u8],
    ) {
        if !self.journaling {
            return;
        }
        let member = super::encode(&member);
        let mut entry = Vec::with_capacity(event_json.len() + member.len() + 32);
        entry.extend_from_slice(br#"{"op":"event","member":"#);
        entry.extend_from_slice(&member);
        entry.extend_from_slice(br#","event":"#);
        entry.extend_from_slice(event_json);
        entry.push(b'}');
        self.record_raw(batch, merchant, event.occurred_at, entry);
    }

    /// Up to `limit` entries of `merchant`'s history at or after `from` and before
    /// `to`, after `cursor` when given, in order; with the cursor to go on from
    /// (`None` at the end of the range).
    pub fn journal(
        &self,
        merchant: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        cursor: Option<&JournalCursor>,
        limit: usize,
    ) -> Result<(Vec<Recorded>, Option<JournalCursor>), EngineError> {
        let (page, next) = self.journal_page(merchant, from, to, cursor, limit)?;
        let entries = page
            .iter()
            .map(|(_, bytes)| decode(bytes, "journal entry"))
            .collect::<Result<_, _>>()?;
        Ok((entries, next))
    }

    /// How many entries `merchant`'s history has at or after `from` and before `to`.
    pub fn journal_len(
        &self,
        merchant: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<u64, EngineError> {
        let mut n = 0;
        let mut cursor = None;
        loop {
            let (page, next) = self.journal_page(merchant, from, to, cursor.as_ref(), 8192)?;
            n += page.len() as u64;
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(n),
            }
        }
    }

    /// The raw entries of one page of [`Engine::journal`].
    #[allow(clippy::type_complexity)]
    fn journal_page(
        &self,
        merchant: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        cursor: Option<&JournalCursor>,
        limit: usize,
    ) -> Result<(Vec<(Key, Vec<u8>)>, Option<JournalCursor>), EngineError> {
        let start;
        let after = match (cursor, from) {
            (Some(c), _) => Some(&c.0),
            (None, Some(from)) => {
                // Sequence numbers start above 0, so (from, 0) comes before every
                // entry at `from`.
                start = Key::merchant(merchant, &[&at_part(from), &seq_part(0)]);
                Some(&start)
            }
            (None, None) => None,
        };
        let mut page =
            self.storage
                .scan_page(Space::Journal, merchant, &[], after, limit, false)?;
        let full = page.len() == limit;
        if let Some(end) = to.and_then(|to| page.iter().position(|(k, _)| at_of(k) >= to)) {
            page.truncate(end);
            return Ok((page, None));
        }
        let next = page
            .last()
            .filter(|_| full)
            .map(|(k, _)| JournalCursor(k.clone()));
        Ok((page, next))
    }

    /// The rewrites that take `member`'s personal data out of their enrolment entry
    /// (at `enrolled_at`), added to `batch`.
    pub(super) fn scrub_journal(
        &self,
        batch: &mut Batch,
        merchant: &str,
        member: &str,
        enrolled_at: Timestamp,
    ) -> Result<(), EngineError> {
        for (key, bytes) in self
            .storage
            .scan(Space::Journal, merchant, &[&at_part(enrolled_at)])?
        {
            let entry: Recorded = decode(&bytes, "journal entry")?;
            if let Recorded::Enrol {
                member: m,
                at,
                referred_by,
                ..
            } = entry
                && m == member
            {
                let scrubbed = Recorded::Enrol {
                    member: m,
                    at,
                    birthday: None,
                    attributes: Attributes::new(),
                    referred_by,
                };
                batch.put(Space::Journal, key, super::encode(&scrubbed));
            }
        }
        Ok(())
    }
}
