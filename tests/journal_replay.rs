//! Replay equivalence: a long seeded engine workload journaled event by event as the daemon
//! does, recovered from disk and replayed through a fresh engine, rebuilds the same state.
//! Snapshots plus the records after them: `tests/engine_snapshot.rs`.

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
