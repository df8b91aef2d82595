//! Engine tests that need to look inside: durability ordering through a storage spy,
//! and the native programme path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::native::Native;
use super::*;
use crate::domain::Event;
use crate::storage::intercept::{Gate, Intercept};
use crate::storage::{SledStorage, StorageError};

/// Storage that numbers applies, remembers which apply last wrote each member
/// record, and records which applies each flush covered.
struct Spy {
    inner: SledStorage,
    applied: AtomicU64,
    flushed: AtomicU64,
    members: Mutex<HashMap<Key, u64>>,
}

impl Spy {
    /// The apply that last wrote `member`'s record, if any did.
    fn last_write(&self, member: &str) -> Option<u64> {
        let key = Key::merchant("air", &[member.as_bytes()]);
        self.members.lock().unwrap().get(&key).copied()
    }
}

impl Intercept for Spy {
    fn inner(&self) -> &SledStorage {
        &self.inner
    }
    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let mut members = self.members.lock().unwrap();
        let keys: Vec<Key> = batch
            .ops
            .iter()
            .filter(|(space, _, _)| *space == Space::Members)
            .map(|(_, key, _)| key.clone())
            .collect();
        self.inner.apply(batch)?;
        let n = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        for k in keys {
            members.insert(k, n);
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), StorageError> {
        let covered = self.applied.load(Ordering::SeqCst);
        self.inner.flush()?;
        self.flushed.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

const NOW: i64 = 1_790_000_000;

/// An engine over `storage` whose merchant "air" (created at 2026-09-21T13:46:40Z, in
/// USD) runs the airline rules compiled natively; the unit tests of the engine and the
/// bulk import share it.
pub(crate) fn engine(storage: Arc<dyn Storage>) -> Arc<Engine> {
    engine_running(
        storage,
        Arc::new(Native::<airline_miles::AirlineMiles>::new("native")),
    )
}

/// An engine over `storage` whose merchant "air" (as [`engine`]'s) runs `programme`.
fn engine_running(storage: Arc<dyn Storage>, programme: Arc<dyn Programme>) -> Arc<Engine> {
    let programmes = Arc::new(FixedProgrammes::new());
    programmes.set("air", programme);
    let pool = Arc::new(PluginPool::new(8, 8, Duration::from_secs(30)));
    let engine = Arc::new(Engine::new(storage, programmes, pool));
    let settings = MerchantSettings {
        id: "air".into(),
        name: "Air".into(),
        currency: "USD".into(),
        created_at: NOW,
        config: None,
        point_value: None,
        budget: None,
    };
    engine
        .durable(engine.create_merchant(settings).unwrap())
        .unwrap();
    engine
}

fn flight(id: &str, at: i64) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": id, "occurred_at": at, "kind": "purchase",
        "amount": { "minor": 40_000, "currency": "USD" },
        "items": [{ "sku": "JFK-LAX", "category": "fare", "amount": 40_000 }]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_is_acknowledged_only_after_a_flush_that_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    let spy = Arc::new(Spy {
        inner: SledStorage::open(dir.path(), 8 << 20).unwrap(),
        applied: AtomicU64::new(0),
        flushed: AtomicU64::new(0),
        members: Mutex::default(),
    });
    let engine = engine(spy.clone());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (engine, spy) = (engine.clone(), spy.clone());
            tokio::spawn(async move {
                let member = format!("m{i}");
                let req = EnrolRequest {
                    member: member.clone(),
                    enrolled_at: NOW,
                    ..Default::default()
                };
                for j in 0..5 {
                    let (m, req) = (member.clone(), req.clone());
                    engine
                        .submit("air", move |e| {
                            let done = if j == 0 {
                                e.enrol("air", &req).map(|d| Done {
                                    value: (),
                                    ticket: d.ticket,
                                })?
                            } else {
                                let ev = flight(&format!("{m}-f{j}"), NOW + j);
                                e.post_event("air", &m, &ev).map(|d| Done {
                                    value: (),
                                    ticket: d.ticket,
                                })?
                            };
                            Ok(done)
                        })
                        .await
                        .unwrap();
                    // Acknowledged: the member's record was written to storage, and
                    // a flush covered that write.
                    let own = spy.last_write(&member).expect("the member was written");
                    let flushed = spy.flushed.load(Ordering::SeqCst);
                    assert!(
                        flushed >= own,
                        "acknowledged write {own} before a flush covered it (flushed up to {flushed})"
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = engine.flush_stats();
    assert!(stats.flushes > 0);
    assert_eq!(engine.check("air").unwrap().problems, Vec::<String>::new());
}

/// [`engine`] over sled in a temporary directory, with member "ann" enrolled.
fn engine_with_ann() -> (tempfile::TempDir, Arc<Engine>, MemberView) {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 8 << 20).unwrap());
    let engine = engine(storage);
    let req = EnrolRequest {
        member: "ann".into(),
        enrolled_at: NOW,
        ..Default::default()
    };
    let m = engine.durable(engine.enrol("air", &req).unwrap()).unwrap();
    (dir, engine, m)
}

#[test]
fn the_native_programme_goes_through_the_same_engine() {
    let (_dir, engine, m) = engine_with_ann();
    assert_eq!(m.tier.id, "member");
    let r = engine
        .durable(
            engine
                .post_event("air", "ann", &flight("f-1", NOW + 1))
                .unwrap(),
        )
        .unwrap();
    assert!(r.credited.iter().map(|c| c.points).sum::<i64>() > 0);
    assert_eq!(r.plugin_version, "native");
    assert_eq!(engine.check("air").unwrap().problems, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sweep_expires_points_without_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 8 << 20).unwrap());
    let engine = engine(storage);
    // Enrolled long ago: the welcome bonus expired years before today.
    let long_ago = 1_000_000_000;
    let req = EnrolRequest {
        member: "ann".into(),
        enrolled_at: long_ago,
        ..Default::default()
    };
    engine.durable(engine.enrol("air", &req).unwrap()).unwrap();
    let sweeper = engine.spawn_sweeper(Duration::from_millis(20));
    // Wait for two completed sweeps (the first may have started before anything).
    while engine.sweeps_done() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sweeper.abort();
    let page = engine.ledger("air", "ann", None, 5).unwrap();
    assert_eq!(page.lines[0].kind, crate::ledger::LineKind::Expire);
}

#[test]
fn the_journal_keeps_operations_in_time_order_and_erasure_takes_the_profile_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap()));
    let ann = EnrolRequest {
        member: "ann".into(),
        enrolled_at: NOW,
        birthday: Some("1990-05-01".into()),
        attributes: [("segment".to_string(), "vip".to_string())].into(),
        ..Default::default()
    };
    engine.durable(engine.enrol("air", &ann).unwrap()).unwrap();
    engine
        .durable(
            engine
                .post_event("air", "ann", &flight("f-1", NOW + 100))
                .unwrap(),
        )
        .unwrap();
    // Posted later, happened earlier: the journal is in the order things happened.
    let bob = EnrolRequest {
        member: "bob".into(),
        enrolled_at: NOW - 50,
        birthday: Some("1980-01-01".into()),
        ..Default::default()
    };
    engine.durable(engine.enrol("air", &bob).unwrap()).unwrap();
    // A refused operation is not recorded.
    assert!(
        engine
            .post_event("air", "nobody", &flight("f-2", NOW))
            .is_err()
    );

    let (all, more) = engine.journal("air", None, None, None, 100).unwrap();
    assert!(more.is_none());
    let order: Vec<(Option<&str>, i64)> = all.iter().map(|r| (r.member(), r.at())).collect();
    assert_eq!(
        order,
        [
            (Some("bob"), NOW - 50),
            (Some("ann"), NOW),
            (Some("ann"), NOW + 100)
        ]
    );
    assert!(matches!(&all[2], Recorded::Event { event, .. } if event.id == "f-1"));
    let (range, _) = engine
        .journal("air", Some(NOW), Some(NOW + 100), None, 100)
        .unwrap();
    assert_eq!(range.len(), 1);
    assert_eq!(engine.journal_len("air", Some(NOW - 50), None).unwrap(), 3);
    // Paging goes on where the last page stopped.
    let (first, cursor) = engine.journal("air", None, None, None, 2).unwrap();
    let (rest, end) = engine
        .journal("air", None, None, cursor.as_ref(), 2)
        .unwrap();
    assert_eq!((first.len(), rest.len(), end), (2, 1, None));

    engine
        .durable(engine.erase("air", "ann", NOW + 200).unwrap())
        .unwrap();
    let (after, _) = engine.journal("air", None, None, None, 100).unwrap();
    match &after[1] {
        Recorded::Enrol {
            member,
            birthday,
            attributes,
            ..
        } => {
            assert_eq!(member, "ann");
            assert_eq!((birthday, attributes.len()), (&None, 0));
        }
        other => panic!("not ann's enrolment: {other:?}"),
    }
    assert!(
        matches!(
            &after[0],
            Recorded::Enrol {
                birthday: Some(_),
                ..
            }
        ),
        "bob keeps his"
    );
}

#[test]
fn entries_of_one_round_share_a_key_and_still_page_and_erase_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::new(SledStorage::open(dir.path(), 8 << 20).unwrap()));
    let engine = engine(gate.clone());
    let enrol = |member: &str| {
        let req = EnrolRequest {
            member: member.into(),
            enrolled_at: NOW,
            birthday: Some("1990-05-01".into()),
            ..Default::default()
        };
        engine.enrol("air", &req).unwrap()
    };
    // The committer stops in the first member's round; the next three are queued
    // behind it and applied as one round.
    gate.set_closed(true);
    let applied = gate.applies();
    let first = enrol("amy");
    gate.wait_for_applies(applied + 1);
    let rest: Vec<_> = ["ben", "cat", "dan"].into_iter().map(enrol).collect();
    gate.set_closed(false);
    engine.durable(first).unwrap();
    for done in rest {
        engine.durable(done).unwrap();
    }
    let keys = gate.inner().scan(Space::Journal, "air", &[]).unwrap();
    let per_key: Vec<usize> = keys
        .iter()
        .map(|(_, v)| crate::storage::appended(v).unwrap().len())
        .collect();
    assert_eq!(per_key, [1, 3], "one key per round");

    let members = |entries: &[Recorded]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e.member().unwrap().to_string())
            .collect()
    };
    // Pages stop inside a key and go on from there.
    let mut seen = Vec::new();
    let mut cursor = None;
    for want in [2, 1, 5] {
        let (page, next) = engine
            .journal("air", None, None, cursor.as_ref(), want)
            .unwrap();
        seen.extend(members(&page));
        cursor = next;
    }
    assert_eq!(seen, ["amy", "ben", "cat", "dan"]);
    assert!(cursor.is_none());
    // A page that ends where a key the last page stopped inside ends.
    let (first, cursor) = engine.journal("air", None, None, None, 2).unwrap();
    let (rest, cursor) = engine
        .journal("air", None, None, cursor.as_ref(), 2)
        .unwrap();
    let (end, cursor) = engine
        .journal("air", None, None, cursor.as_ref(), 2)
        .unwrap();
    assert_eq!(
        (members(&first), members(&rest), end.len(), cursor),
        (
            vec!["amy".into(), "ben".into()],
            vec!["cat".into(), "dan".into()],
            0,
            None
        )
    );
    assert_eq!(engine.journal_len("air", None, None).unwrap(), 4);
    assert_eq!(engine.journal_len("air", Some(NOW + 1), None).unwrap(), 0);
    let (none, _) = engine.journal("air", None, Some(NOW), None, 10).unwrap();
    assert!(none.is_empty());

    // Two erasures of members whose entries share a key, at once: both hold.
    std::thread::scope(|s| {
        for m in ["ben", "dan"] {
            let engine = &engine;
            s.spawn(move || engine.durable(engine.erase("air", m, NOW + 10).unwrap()));
        }
    });
    let (all, _) = engine.journal("air", None, None, None, 10).unwrap();
    assert_eq!(members(&all), ["amy", "ben", "cat", "dan"]);
    let birthdays: Vec<bool> = all
        .iter()
        .map(|e| {
            matches!(
                e,
                Recorded::Enrol {
                    birthday: Some(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(birthdays, [true, false, true, false]);
}

#[test]
fn an_event_recorded_with_the_old_json_fingerprint_still_replays_its_retry() {
    let (_dir, engine, _) = engine_with_ann();
    let event = flight("f-1", NOW + 1);
    let first = engine
        .durable(engine.post_event("air", "ann", &event).unwrap())
        .unwrap();
    // Rewrite the stored record as versions before session 18 wrote it: the
    // fingerprint of the member and the event's JSON.
    let key = events::event_key("air", "f-1");
    let stored = engine
        .storage
        .get(Space::Idempotency, &key)
        .unwrap()
        .unwrap();
    let mut record = EventRecord::from_stored(&stored, "f-1").unwrap();
    let old = fingerprint(&[b"ann", &encode(&event)]);
    assert_ne!(
        record.fingerprint, old,
        "the fingerprint is no longer the JSON's"
    );
    record.fingerprint = old;
    // In the full form, as versions before session 20 stored every record.
    let mut batch = Batch::new();
    batch.put(Space::Idempotency, key, encode_bin(&record));
    engine
        .durable(Done {
            value: (),
            ticket: engine.apply(batch).unwrap(),
        })
        .unwrap();

    // The same request replays the original answer; a different one is a conflict.
    let retry = engine
        .durable(engine.post_event("air", "ann", &event).unwrap())
        .unwrap();
    assert_eq!(retry, first);
    let mut other = event.clone();
    other.amount.as_mut().unwrap().minor += 1;
    assert!(matches!(
        engine.post_event("air", "ann", &other),
        Err(EngineError::Conflict { .. })
    ));
    assert!(matches!(
        engine.post_event("air", "bob", &event),
        Err(EngineError::Conflict { .. })
    ));
}

/// Post `event` for `member` of "air" and wait until it is durable.
fn post(engine: &Engine, member: &str, event: &Event) -> EventResult {
    engine
        .durable(engine.post_event("air", member, event).unwrap())
        .unwrap()
}

fn refund(id: &str, of: &str, at: i64, minor: i64) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": id, "occurred_at": at, "kind": "refund", "original_event": of, "full": false,
        "amount": { "minor": minor, "currency": "USD" }
    }))
    .unwrap()
}

#[test]
fn event_records_are_stored_compact_and_read_back_whole() {
    let (_dir, engine, _) = engine_with_ann();
    let stored = |id: &str| {
        engine
            .storage
            .get(Space::Idempotency, &events::event_key("air", id))
            .unwrap()
            .unwrap()
    };
    let first = post(&engine, "ann", &flight("f-1", NOW + 1));
    let bytes = stored("f-1");
    assert_eq!(bytes[0], 0, "compact form");
    let record = EventRecord::from_stored(&bytes, "f-1").unwrap();
    assert_eq!(record.result, first);
    assert_eq!(
        (record.member.as_str(), record.kind.as_str()),
        ("ann", "purchase")
    );
    assert_eq!(record.stored("f-1"), bytes);
    // The raw fingerprint and the answer's member, kind and id, each written once.
    let full = encode_bin(&record);
    assert!(
        bytes.len() + 40 < full.len(),
        "{} against {}",
        bytes.len(),
        full.len()
    );
    // An uploaded plugin's version, a content hash, is kept as its 32 bytes too.
    let mut hashed = record.clone();
    hashed.result.plugin_version = crate::domain::hex(&[7; 32]);
    let hashed_bytes = hashed.stored("f-1");
    assert_eq!(
        EventRecord::from_stored(&hashed_bytes, "f-1").unwrap(),
        hashed
    );
    assert!(hashed_bytes.len() + 70 < encode_bin(&hashed).len());
    // Under a key that is not the answer's event, the record keeps its full form.
    assert_eq!(record.stored("f-2"), full);
    assert_eq!(EventRecord::from_stored(&full, "f-2").unwrap(), record);

    // A purchase stored in the full form, as before session 20: its retry replays and
    // a partial refund reads it, and stores it back compact with the amount refunded.
    let second = post(&engine, "ann", &flight("f-3", NOW + 2));
    let old = EventRecord::from_stored(&stored("f-3"), "f-3").unwrap();
    let mut batch = Batch::new();
    batch.put(
        Space::Idempotency,
        events::event_key("air", "f-3"),
        encode_bin(&old),
    );
    engine
        .durable(Done {
            value: (),
            ticket: engine.apply(batch).unwrap(),
        })
        .unwrap();
    assert_ne!(stored("f-3")[0], 0, "full form");
    let retry = post(&engine, "ann", &flight("f-3", NOW + 2));
    assert_eq!(retry, second);
    let r = post(&engine, "ann", &refund("r-1", "f-3", NOW + 3, 30_620));
    assert!(r.reversed > 0);
    let after = stored("f-3");
    assert_eq!(after[0], 0, "written back compact");
    let purchase = EventRecord::from_stored(&after, "f-3").unwrap();
    assert_eq!(purchase.refunded, 30_620);
    assert_eq!(purchase.result, second);
    // The consistency check reads every event record, either form, by its key.
    let report = engine.check("air").unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.events, 3);
}

/// Grants two perks valid for 1,000 s after enrolment: an unlimited one and one of two
/// uses.
struct Perky;

impl loyalty_sdk::Program for Perky {
    fn describe() -> loyalty_sdk::ProgramInfo {
        loyalty_sdk::ProgramInfo::new("Perky", "1.0.0")
            .tier("member", "Member")
            .perk("lounge", "Lounge", "Always")
            .perk("drink", "Drink", "Two a member")
    }

    fn on_event(
        _member: &loyalty_sdk::Member,
        _event: &loyalty_sdk::Event,
        _ctx: &loyalty_sdk::Context,
    ) -> Result<loyalty_sdk::Outcome, loyalty_sdk::PluginError> {
        Ok(loyalty_sdk::Outcome::new().credit(loyalty_sdk::Credit::new(1, "one point")))
    }

    fn perks(
        member: &loyalty_sdk::Member,
        _ctx: &loyalty_sdk::Context,
    ) -> Result<Vec<loyalty_sdk::Perk>, loyalty_sdk::PluginError> {
        let until = member.enrolled_at + 1_000;
        Ok(vec![
            loyalty_sdk::Perk::new("lounge", "Lounge", "always").valid_until(until),
            loyalty_sdk::Perk::new("drink", "Drink", "welcome")
                .quantity(2)
                .valid_until(until),
        ])
    }
}

/// Storage that counts the perks records each apply writes or deletes.
struct PerksSpy {
    inner: SledStorage,
    perks_writes: AtomicU64,
}

impl Intercept for PerksSpy {
    fn inner(&self) -> &SledStorage {
        &self.inner
    }
    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let n = batch
            .ops
            .iter()
            .filter(|(space, _, _)| *space == Space::Perks)
            .count();
        self.perks_writes.fetch_add(n as u64, Ordering::SeqCst);
        self.inner.apply(batch)
    }
}

#[test]
fn held_perks_are_kept_apart_and_written_only_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let spy = Arc::new(PerksSpy {
        inner: SledStorage::open(dir.path(), 8 << 20).unwrap(),
        perks_writes: AtomicU64::new(0),
    });
    let engine = engine_running(spy.clone(), Arc::new(Native::<Perky>::new("perky")));
    let writes = || spy.perks_writes.load(Ordering::SeqCst);
    let perks_record = |member: &str| {
        spy.inner
            .get(Space::Perks, &Engine::member_key("air", member))
            .unwrap()
    };
    let record = |member: &str| {
        spy.inner
            .get(Space::Members, &Engine::member_key("air", member))
            .unwrap()
            .unwrap()
    };
    let held = |member: &str, now: i64| -> Vec<(String, Option<u32>)> {
        engine
            .member("air", member, now)
            .unwrap()
            .perks
            .into_iter()
            .map(|p| (p.id, p.remaining))
            .collect()
    };

    let req = EnrolRequest {
        member: "m1".into(),
        enrolled_at: NOW,
        ..Default::default()
    };
    engine.durable(engine.enrol("air", &req).unwrap()).unwrap();
    // Enrolment grants the perks: kept apart, the record marked.
    assert_eq!(writes(), 1);
    assert_eq!(record("m1")[0], PERKS_APART);
    assert!(perks_record("m1").is_some());
    let both = vec![("lounge".to_string(), None), ("drink".to_string(), Some(2))];
    assert_eq!(held("m1", NOW + 1), both);

    // Events that leave them as they were rewrite the record, not the perks.
    for i in 0..3 {
        let done = engine
            .post_event("air", "m1", &flight(&format!("e{i}"), NOW + 10 + i))
            .unwrap();
        engine.durable(done).unwrap();
    }
    assert_eq!(writes(), 1);
    assert_eq!(held("m1", NOW + 20), both);
    assert_eq!(
        engine
            .member("air", "m1", NOW + 20)
            .unwrap()
            .balance
            .available,
        3
    );

    // Consuming one changes them: written again.
    let done = engine
        .consume_perk("air", "m1", "drink", None, "c1", NOW + 30)
        .unwrap();
    engine.durable(done).unwrap();
    assert_eq!(writes(), 2);
    assert_eq!(
        held("m1", NOW + 31),
        vec![("lounge".to_string(), None), ("drink".to_string(), Some(1))]
    );

    // Once they have expired, an event drops them: the perks record is deleted and
    // the record holds its (no) perks itself again.
    let done = engine
        .post_event("air", "m1", &flight("late", NOW + 2_000))
        .unwrap();
    engine.durable(done).unwrap();
    assert_eq!(writes(), 3);
    assert_ne!(record("m1")[0], PERKS_APART);
    assert!(perks_record("m1").is_none());
    assert!(held("m1", NOW + 2_001).is_empty());

    // A record written before perks were kept apart (perks inline) still reads, and
    // its next write moves them out.
    let mut old = decode_member(&record("m1")).unwrap();
    old.perks = vec![Entitlement {
        id: "lounge".into(),
        name: "Lounge".into(),
        grant: "always".into(),
        quantity: None,
        used: 0,
        valid_until: None,
        granted_at: NOW,
    }];
    let mut b = Batch::new();
    b.put(
        Space::Members,
        Engine::member_key("air", "m1"),
        encode_bin(&old),
    );
    // Through the group commit, as every write of the host: it keeps recent member
    // records in memory.
    engine.storage().apply(b).unwrap();
    assert_eq!(held("m1", NOW + 2_002), vec![("lounge".to_string(), None)]);
    let mut rec = engine.load_member("air", "m1").unwrap();
    assert_eq!(rec.perks_kept, PerksKept::Inline);
    let mut b = Batch::new();
    engine.put_member(&mut b, "air", &mut rec);
    engine.storage().apply(b).unwrap();
    engine.storage().flush().unwrap();
    assert_eq!(record("m1")[0], PERKS_APART);
    assert_eq!(held("m1", NOW + 2_003), vec![("lounge".to_string(), None)]);
}
