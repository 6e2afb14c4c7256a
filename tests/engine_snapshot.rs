//! Engine-state snapshots: the bytes load back into an engine with the same state, the
//! records after a snapshot bring it to the state of replaying everything, and a restored
//! engine carries on exactly as the one it was taken from.

mod journal_util;

use journal_util::{drive, drive_with};
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig};
use pingpost::journal::{Journal, JournalConfig, SyncPolicy};

const PINGS: u64 = 2_400;
const SEED: u64 = 0x5EED_5A95;

/// One snapshot taken during a run: at which step, after how many events, its bytes and the
/// live engine's digest then.
struct Taken {
    step: u64,
    events: usize,
    bytes: Vec<u8>,
    digest: u64,
}

#[test]
fn a_snapshot_loads_back_and_the_records_after_it_rebuild_the_final_state() {
    let mut journaled: Vec<Event> = Vec::new();
    let mut taken: Vec<Taken> = Vec::new();
    let events = std::cell::Cell::new(0usize);
    let engine = drive_with(
        SEED,
        PINGS,
        |event| {
            journaled.push(event);
            events.set(events.get() + 1);
        },
        |step, engine| {
            // Just after the admin changes at steps 225, 675, ...: auctions in flight hold
            // the book version before the change.
            if [0, 230, 700, 1_600, 2_390].contains(&step) {
                taken.push(Taken {
                    step,
                    events: events.get(),
                    bytes: engine.snapshot_state().expect("snapshot"),
                    digest: engine.state_digest(),
                });
            }
        },
    );
    assert_eq!(taken.len(), 5);
    assert!(
        taken.iter().any(|t| {
            let text = String::from_utf8_lossy(&t.bytes);
            text.contains("\"older_books\":[[")
        }),
        "some snapshot carries an older book version that auctions still hold"
    );
    for snapshot in &taken {
        let mut restored =
            Engine::from_snapshot(EngineConfig::default(), &snapshot.bytes).expect("loads");
        assert_eq!(
            restored.state_digest(),
            snapshot.digest,
            "step {}: the loaded state is the live one",
            snapshot.step
        );
        assert!(
            restored.snapshot_state().expect("again") == snapshot.bytes,
            "step {}: the same state gives the same bytes",
            snapshot.step
        );
        for event in &journaled[snapshot.events..] {
            restored.apply(event);
        }
        assert_eq!(
            restored.state_digest(),
            engine.state_digest(),
            "step {}: snapshot + the records after it == the whole run",
            snapshot.step
        );
        assert_eq!(restored.ledger(), engine.ledger());
    }
    let mut replayed = Engine::new(EngineConfig::default());
    for event in &journaled {
        replayed.apply(event);
    }
    assert_eq!(replayed.state_digest(), engine.state_digest());
}

#[test]
fn an_engine_restored_mid_run_carries_on_exactly_like_the_one_it_was_taken_from() {
    let mut straight: Vec<Event> = Vec::new();
    let engine = drive(SEED ^ 1, PINGS, |event| straight.push(event));

    // The same run, but at the first quiet point after step 1,000 (no request waiting for an
    // answer, which a snapshot does not keep) the engine is replaced by one loaded from its
    // snapshot.
    let mut restarted: Vec<Event> = Vec::new();
    let mut restored_at = None;
    let resumed = drive_with(
        SEED ^ 1,
        PINGS,
        |event| restarted.push(event),
        |step, engine| {
            if restored_at.is_none() && step >= 1_000 && engine.requests_waiting() == 0 {
                let bytes = engine.snapshot_state().expect("snapshot");
                *engine = Engine::from_snapshot(EngineConfig::default(), &bytes).expect("loads");
                restored_at = Some(step);
            }
        },
    );
    let step = restored_at.expect("a quiet point came");
    assert!(
        step < PINGS - 200,
        "restored early enough to matter: {step}"
    );
    assert_eq!(straight.len(), restarted.len());
    for (i, (a, b)) in straight.iter().zip(&restarted).enumerate() {
        assert_eq!(a, b, "event {i} differs after restoring at step {step}");
    }
    assert_eq!(resumed.state_digest(), engine.state_digest());
}

#[test]
fn snapshot_bytes_that_are_not_a_state_are_refused_with_the_reason() {
    let engine = drive(SEED ^ 2, 300, |_| {});
    let bytes = engine.snapshot_state().expect("snapshot");
    let cut = Engine::from_snapshot(EngineConfig::default(), &bytes[..bytes.len() / 2])
        .expect_err("half a state");
    assert!(cut.to_string().starts_with("engine snapshot: "), "{cut}");

    let text = String::from_utf8(bytes).expect("JSON");
    let newer = text.replacen("\"schema\":1", "\"schema\":99", 1);
    let error = Engine::from_snapshot(EngineConfig::default(), newer.as_bytes())
        .expect_err("another schema");
    assert!(error.to_string().contains("state schema 99"), "{error}");

    let mut engine = Engine::new(EngineConfig::default());
    engine
        .handle_admin_batch(
            journal_util::T0,
            pingpost::bookgen::generate(&pingpost::bookgen::BookSpec::new(1, 5)),
        )
        .expect("book");
    let waiting = engine.snapshot_state().expect_err("events not yet polled");
    assert!(
        waiting.to_string().contains("wait to be polled"),
        "{waiting}"
    );
}

#[test]
fn recovery_loads_the_engine_snapshot_and_replays_only_the_records_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = JournalConfig::new(SyncPolicy::Never, 11);
    config.segment_bytes_max = 1 << 20;
    let (writer, _) = Journal::open::<Event>(dir.path(), config).expect("open");
    let writer = std::cell::RefCell::new(writer);
    let appended = std::cell::Cell::new(0u64);
    let mut snapshot_lsn = 0;
    let engine = drive_with(
        SEED ^ 3,
        1_500,
        |event| {
            writer.borrow_mut().append(event).expect("append");
            appended.set(appended.get() + 1);
        },
        |step, engine| {
            if step == 900 {
                let state = engine.snapshot_state().expect("state");
                snapshot_lsn = appended.get();
                let ticket = writer
                    .borrow_mut()
                    .write_snapshot(snapshot_lsn, state)
                    .expect("snapshot");
                ticket.wait().expect("snapshot written");
            }
        },
    );
    writer.into_inner().flush_and_close().expect("close");

    let recovery = Journal::recover::<Event>(dir.path()).expect("recover");
    let (lsn, state) = recovery.snapshot.expect("a snapshot");
    assert_eq!(lsn, snapshot_lsn);
    assert_eq!(
        recovery.events.first().map(|(lsn, _)| *lsn),
        Some(snapshot_lsn + 1)
    );
    let mut restored = Engine::from_snapshot(EngineConfig::default(), &state).expect("loads");
    for (_, event) in &recovery.events {
        restored.apply(event);
    }
    assert_eq!(restored.state_digest(), engine.state_digest());
}

#[test]
fn the_daemons_outbox_resumed_from_a_snapshot_equals_the_one_rebuilt_from_every_record() {
    use pingpost::server::outbox::{Outbox, OutboxBuilder};
    use pingpost::server::snapshot;

    // Large enough that no delivery leaves memory, so that every one is compared.
    const STORED_MAX: usize = 100_000;
    let image = |outbox: &Outbox| serde_json::to_string(&outbox.image()).expect("image");
    let journal = std::cell::RefCell::new(Vec::new());
    let mut taken: Option<(usize, Vec<u8>)> = None;
    drive_with(
        SEED ^ 4,
        1_800,
        |event| journal.borrow_mut().push(event),
        |step, engine| {
            if step == 700 {
                // The outbox the exchange holds at this point is the one its events built.
                let journal = journal.borrow();
                let mut outbox = OutboxBuilder::new(STORED_MAX);
                for event in journal.iter() {
                    outbox.observe(event);
                }
                let bytes = snapshot::encode(engine, &outbox.finish(), 0).expect("encode");
                taken = Some((journal.len(), bytes));
            }
        },
    );
    let journaled: Vec<Event> = journal.into_inner();
    let (at, bytes) = taken.expect("snapshot taken");

    // Recovery from the first record.
    let mut from_start = OutboxBuilder::new(STORED_MAX);
    for event in &journaled {
        from_start.observe(event);
    }
    // Recovery from the snapshot: deliveries of leads pinged before it come from the engine.
    let restored = snapshot::decode(&bytes, EngineConfig::default(), STORED_MAX).expect("decode");
    let mut engine = restored.engine;
    let mut resumed = OutboxBuilder::resume(restored.outbox);
    let mut delivered_of_older_pings = 0;
    let first_ping_after = journaled[at..].iter().find_map(|event| match event {
        Event::PingOpened { ping_id, .. } => Some(*ping_id),
        _ => None,
    });
    for event in &journaled[at..] {
        engine.apply(event);
        if let Event::Delivered { ping_id, .. } = event {
            if first_ping_after.is_some_and(|first| *ping_id < first) {
                delivered_of_older_pings += 1;
            }
        }
        resumed.observe_resumed(event, &engine);
    }
    assert!(
        delivered_of_older_pings > 0,
        "the run delivers leads pinged before the snapshot after it"
    );
    let (from_start, resumed) = (from_start.finish(), resumed.finish());
    assert!(from_start.waiting() > 0, "deliveries wait at the end");
    assert_eq!(image(&resumed), image(&from_start));
}
