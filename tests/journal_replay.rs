//! Replay equivalence: a long seeded engine workload journaled event by event as the daemon
//! does, recovered from disk and replayed through a fresh engine, rebuilds the same state; a
//! snapshot plus the records after it does too.

mod journal_util;

use journal_util::drive;
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig};
use pingpost::journal::{Journal, JournalConfig, SyncPolicy};

const PINGS: u64 = 4_000;

#[test]
fn replaying_the_recovered_journal_rebuilds_the_engines_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = JournalConfig::new(SyncPolicy::Interval { ms: 2 }, 7);
    config.segment_bytes_max = 1 << 20;
    let (mut writer, recovery) = Journal::open::<Event>(dir.path(), config).expect("open");
    assert!(recovery.events.is_empty());
    let mut journaled = Vec::new();
    let engine = drive(0x000A_0D17, PINGS, |event| {
        journaled.push(event.clone());
        writer.append(event).expect("append");
    });
    let head = writer.flush_and_close().expect("close");
    assert_eq!(head.lsn, journaled.len() as u64);
    let kinds: std::collections::BTreeSet<_> = journaled
        .iter()
        .map(pingpost::journal::JournalRecord::record_type)
        .collect();
    assert!(
        kinds.len() >= 10,
        "a varied workload: record types {kinds:?}"
    );
    assert!(
        std::fs::read_dir(dir.path()).expect("list").count() > 1,
        "several segments"
    );

    let recovery = Journal::recover::<Event>(dir.path()).expect("recover");
    assert_eq!(recovery.head, head);
    let recovered: Vec<Event> = recovery.events.into_iter().map(|(_, e)| e).collect();
    assert_eq!(recovered, journaled);
    let mut replayed = Engine::new(EngineConfig::default());
    for event in &recovered {
        replayed.apply(event);
    }
    assert_eq!(replayed.state_digest(), engine.state_digest());
    assert_eq!(replayed.ledger(), engine.ledger());
    assert!(engine.ledger() != &Default::default(), "sales happened");
}

#[test]
fn a_snapshot_plus_the_records_after_it_gives_the_same_state_as_replay_from_the_start() {
    // The engine's own snapshot encoding is not the journal's business: here the "state" bytes
    // are the events so far, which restore by replay. What the journal must do is give those
    // bytes back and exactly the records after them.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = JournalConfig::new(SyncPolicy::Never, 11);
    let (mut writer, _) = Journal::open::<Event>(dir.path(), config).expect("open");
    let mut journaled = Vec::new();
    let engine = drive(0x5A_95, 1_500, |event| {
        journaled.push(event.clone());
        writer.append(event).expect("append");
        if journaled.len() == 2_000 {
            let state = serde_json::to_vec(&journaled).expect("state");
            let ticket = writer.write_snapshot(2_000, state).expect("snapshot");
            ticket.wait().expect("snapshot written");
        }
    });
    writer.flush_and_close().expect("close");
    assert!(journaled.len() > 2_000, "{}", journaled.len());

    let recovery = Journal::recover::<Event>(dir.path()).expect("recover");
    let (lsn, state) = recovery.snapshot.expect("snapshot");
    assert_eq!(lsn, 2_000);
    assert_eq!(
        state,
        serde_json::to_vec(&journaled[..2_000]).expect("state")
    );
    let rest: Vec<Event> = recovery.events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(rest, journaled[2_000..]);
    assert_eq!(recovery.events.first().map(|(l, _)| *l), Some(2_001));

    let mut restored = Engine::new(EngineConfig::default());
    let prefix: Vec<Event> = serde_json::from_slice(&state).expect("state decodes");
    for event in prefix.iter().chain(&rest) {
        restored.apply(event);
    }
    assert_eq!(restored.state_digest(), engine.state_digest());
}
