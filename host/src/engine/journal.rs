//! The recorded history: every operation that ran a merchant's programme, as it was
//! asked, in the order of the time it happened ([`Space::Journal`]).
//!
//! Plugins are pure: what a programme decides follows from the member, the request
//! and the config. So the history of requests is enough to replay a merchant's past
//! through another programme (a simulation, see [`crate::simulate`]). Each entry is
//! written in the same batch as the change it caused, so the journal holds exactly
//! the operations that happened: a refused or failed operation writes nothing.
//!
//! Entries are appended ([`Batch::append`]) under `merchant \0 at`, where `at` is the
//! operation's own time (the event's `occurred_at`, the enrolment's `enrolled_at`), so
//! a period of history is one key range. The storage adds a sequence number, so
//! entries of the same second are in the order they were applied, and stores the
//! entries of one second that one group-commit round applied under one key: an
//! entry is not a key of its own, which would cost sled a new key for every event.
//! Within a key the entries are in the order they were queued. One member's
//! operations are queued one after another (under the member's lock), so their
//! entries are in the order they happened, which is what a replay needs.
//!
//! Entries are stored as JSON, except events' entries, which are stored in a binary
//! form (postcard, a third as long; see [`EVENT_ENTRY`]) and read back as the same
//! [`Recorded`].
//!
//! Personal data: an enrolment entry carries the member's birthday and attributes (a
//! programme may give birthday or segment bonuses). Erasing the member removes them
//! from that entry too. Later profile changes are not recorded.

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, decode};
use crate::domain::{
    Attributes, Channel, Event, LineItem, Money, PaymentMethod, RedemptionRequest, Timestamp,
};
use crate::storage::{Batch, Key, Space, appended, appended_value, seq_part};

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

/// The first byte of an event's entry in its binary form. Other entries are JSON
/// (and begin with `{`), as events' entries were before.
const EVENT_ENTRY: u8 = 1;

/// An event's entry as stored: postcard, a third of its JSON's length (the benches'
/// flight: 127 bytes against 430). Events are nearly all of a busy merchant's
/// journal, and an entry is written with every event, so its length is part of what
/// every event costs the storage.
#[derive(Serialize)]
struct EventEntryRef<'a> {
    member: &'a str,
    id: &'a str,
    occurred_at: Timestamp,
    kind: &'a str,
    amount: Option<&'a Money>,
    items: &'a [LineItem],
    channel: Channel,
    payment: Option<PaymentMethod>,
    store: Option<&'a str>,
    partner: Option<&'a str>,
    original_event: Option<&'a str>,
    full: Option<bool>,
    score: Option<u8>,
    referee: Option<&'a str>,
    attributes: &'a Attributes,
}

/// [`EventEntryRef`] read back.
#[derive(Deserialize)]
struct EventEntry {
    member: String,
    id: String,
    occurred_at: Timestamp,
    kind: String,
    amount: Option<Money>,
    items: Vec<LineItem>,
    channel: Channel,
    payment: Option<PaymentMethod>,
    store: Option<String>,
    partner: Option<String>,
    original_event: Option<String>,
    full: Option<bool>,
    score: Option<u8>,
    referee: Option<String>,
    attributes: Attributes,
}

/// `member`'s `event` as a journal entry. The encoding reads back to the same member
/// and event (a test checks every field), so two different requests never share it:
/// an event's idempotency fingerprint is taken of it too.
pub(super) fn encode_event_entry(member: &str, event: &Event) -> Vec<u8> {
    // Every field named, so that a field added to `Event` fails to compile here
    // instead of going unrecorded.
    let Event {
        id,
        occurred_at,
        kind,
        amount,
        items,
        channel,
        payment,
        store,
        partner,
        original_event,
        full,
        score,
        referee,
        attributes,
    } = event;
    let entry = EventEntryRef {
        member,
        id,
        occurred_at: *occurred_at,
        kind,
        amount: amount.as_ref(),
        items,
        channel: *channel,
        payment: *payment,
        store: store.as_deref(),
        partner: partner.as_deref(),
        original_event: original_event.as_deref(),
        full: *full,
        score: *score,
        referee: referee.as_deref(),
        attributes,
    };
    let mut out = vec![EVENT_ENTRY];
    // Plain fields, no skipped or untagged ones: serialising cannot fail.
    out.extend(postcard::to_allocvec(&entry).unwrap_or_default());
    out
}

/// A journal entry as stored: an event's binary form or any entry's JSON.
fn decode_entry(bytes: &[u8]) -> Result<Recorded, EngineError> {
    let Some((&EVENT_ENTRY, rest)) = bytes.split_first() else {
        return decode(bytes, "journal entry");
    };
    let e: EventEntry = postcard::from_bytes(rest)
        .map_err(|e| EngineError::Storage(format!("stored journal entry is unreadable: {e}")))?;
    Ok(Recorded::Event {
        member: e.member,
        event: Event {
            id: e.id,
            occurred_at: e.occurred_at,
            kind: e.kind,
            amount: e.amount,
            items: e.items,
            channel: e.channel,
            payment: e.payment,
            store: e.store,
            partner: e.partner,
            original_event: e.original_event,
            full: e.full,
            score: e.score,
            referee: e.referee,
            attributes: e.attributes,
        },
    })
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
pub struct JournalCursor {
    /// The key the last entry read is under.
    key: Key,
    /// How many of that key's entries were read.
    taken: usize,
}

/// A page of the journal being read: how many entries it takes, and where they go.
struct Page<'a> {
    limit: usize,
    taken: usize,
    entry: &'a mut dyn FnMut(&[u8]) -> Result<(), EngineError>,
}

impl Page<'_> {
    /// Take the entries of `value` (under `key`) from the `skip`th on; once the page
    /// is full, where the next page starts.
    fn take(
        &mut self,
        key: &Key,
        value: &[u8],
        skip: usize,
    ) -> Result<Option<JournalCursor>, EngineError> {
        let entries = appended(value)?;
        for (i, e) in entries.iter().enumerate().skip(skip) {
            if self.taken == self.limit {
                return Ok(Some(JournalCursor {
                    key: key.clone(),
                    taken: i,
                }));
            }
            (self.entry)(e)?;
            self.taken += 1;
        }
        Ok((self.taken == self.limit).then(|| JournalCursor {
            key: key.clone(),
            taken: entries.len(),
        }))
    }
}

impl Engine {
    /// Add `entry` (already encoded) at time `at` to `batch`.
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
        batch.append(
            Space::Journal,
            Key::merchant(merchant, &[&at_part(at)]),
            entry,
        );
    }

    /// Add `entry` to `batch`.
    pub(super) fn record(&self, batch: &mut Batch, merchant: &str, entry: &Recorded) {
        self.record_raw(batch, merchant, entry.at(), super::encode(entry));
    }

    /// An event's entry at `at`, in its binary form ([`encode_event_entry`]).
    pub(super) fn record_event(
        &self,
        batch: &mut Batch,
        merchant: &str,
        at: Timestamp,
        entry: Vec<u8>,
    ) {
        if !self.journaling {
            return;
        }
        self.record_raw(batch, merchant, at, entry);
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
        let mut entries = Vec::new();
        let next = self.journal_page(merchant, from, to, cursor, limit, &mut |entry| {
            entries.push(decode_entry(entry)?);
            Ok(())
        })?;
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
            let next =
                self.journal_page(merchant, from, to, cursor.as_ref(), 65_536, &mut |_| {
                    n += 1;
                    Ok(())
                })?;
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(n),
            }
        }
    }

    /// Call `entry` with up to `limit` raw entries of one page of
    /// [`Engine::journal`], in order; return where the page stopped (`None` at the
    /// end of the range).
    fn journal_page(
        &self,
        merchant: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        cursor: Option<&JournalCursor>,
        limit: usize,
        entry: &mut dyn FnMut(&[u8]) -> Result<(), EngineError>,
    ) -> Result<Option<JournalCursor>, EngineError> {
        let mut page = Page {
            limit: limit.max(1),
            taken: 0,
            entry,
        };
        let mut after = match (cursor, from) {
            (Some(c), _) => {
                // The rest of the key the last page stopped in (its entries never
                // change order or number; an erasure only rewrites one in place).
                if let Some(value) = self.storage.get(Space::Journal, &c.key)?
                    && let Some(next) = page.take(&c.key, &value, c.taken)?
                {
                    return Ok(Some(next));
                }
                Some(c.key.clone())
            }
            // Sequence numbers start above 0, so (from, 0) comes before every key at
            // `from`.
            (None, Some(from)) => Some(Key::merchant(merchant, &[&at_part(from), &seq_part(0)])),
            (None, None) => None,
        };
        loop {
            // Keys hold one entry or many: ask for as many keys as entries are wanted.
            let want = page.limit - page.taken;
            let keys = self.storage.scan_page(
                Space::Journal,
                merchant,
                &[],
                after.as_ref(),
                want,
                false,
            )?;
            let last_page = keys.len() < want;
            for (key, value) in keys {
                if to.is_some_and(|to| at_of(&key) >= to) {
                    return Ok(None);
                }
                if let Some(next) = page.take(&key, &value, 0)? {
                    return Ok(Some(next));
                }
                after = Some(key);
            }
            if last_page {
                return Ok(None);
            }
        }
    }

    /// The rewrites that take `member`'s personal data out of their enrolment entry
    /// (at `enrolled_at`), added to `batch`. The caller holds `journal_scrub` until
    /// the batch is queued.
    pub(super) fn scrub_journal(
        &self,
        batch: &mut Batch,
        merchant: &str,
        member: &str,
        enrolled_at: Timestamp,
    ) -> Result<(), EngineError> {
        for (key, value) in self
            .storage
            .scan(Space::Journal, merchant, &[&at_part(enrolled_at)])?
        {
            let mut entries: Vec<Vec<u8>> =
                appended(&value)?.into_iter().map(<[u8]>::to_vec).collect();
            let mut changed = false;
            for bytes in &mut entries {
                let entry = decode_entry(bytes)?;
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
                    *bytes = super::encode(&scrubbed);
                    changed = true;
                }
            }
            if changed {
                let value = appended_value(entries.iter().map(Vec::as_slice));
                batch.put(Space::Journal, key, value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_field() -> Event {
        Event {
            id: "e-1".into(),
            occurred_at: -5,
            kind: "refund".into(),
            amount: Some(Money {
                minor: 12_345,
                currency: "EUR".into(),
            }),
            items: vec![LineItem {
                sku: "JFK-LAX".into(),
                category: "fare".into(),
                quantity: 2,
                amount: 10_000,
            }],
            channel: Channel::Partner,
            payment: Some(PaymentMethod::StoredValue),
            store: Some("ams".into()),
            partner: Some("hotel".into()),
            original_event: Some("e-0".into()),
            full: Some(false),
            score: Some(9),
            referee: Some("m-2".into()),
            attributes: [("cabin".to_string(), "J".to_string())].into(),
        }
    }

    #[test]
    fn an_event_entry_reads_back_as_it_was_posted() {
        for event in [
            every_field(),
            // Only what an event must have; every other field left to its default.
            serde_json::from_value(serde_json::json!({
                "id": "e-2", "occurred_at": 1_790_000_000, "kind": "checkin"
            }))
            .unwrap(),
        ] {
            let bytes = encode_event_entry("m-1", &event);
            let json = super::super::encode(&Recorded::Event {
                member: "m-1".into(),
                event: event.clone(),
            });
            assert!(
                bytes.len() < json.len(),
                "{} >= {}",
                bytes.len(),
                json.len()
            );
            assert_eq!(
                decode_entry(&bytes).unwrap(),
                Recorded::Event {
                    member: "m-1".into(),
                    event,
                }
            );
        }
    }

    #[test]
    fn entries_stored_as_json_still_read() {
        let event = Recorded::Event {
            member: "m-1".into(),
            event: every_field(),
        };
        let enrol = Recorded::Enrol {
            member: "m-1".into(),
            at: 7,
            birthday: Some("1990-02-03".into()),
            attributes: Attributes::new(),
            referred_by: None,
        };
        for entry in [event, enrol] {
            let json = super::super::encode(&entry);
            assert_eq!(decode_entry(&json).unwrap(), entry);
        }
        let broken = [EVENT_ENTRY, 0xff, 0xff];
        assert!(matches!(
            decode_entry(&broken),
            Err(EngineError::Storage(m)) if m.contains("journal entry")
        ));
    }
}
