//! The journal's writer and recovery on real files: torn tails cut at every byte, bit flips
//! caught and located, each sync policy, rotation by size and by day, snapshots, and a writer
//! that stops for good on its first error.

// Tests: offsets and counts of small files, of known ranges.
#![allow(clippy::cast_possible_truncation)]

mod journal_util;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use journal_util::{MS, Note, T0, copy_dir, note, segments};
use pingpost::journal::format::{BatchView, Lsn};
use pingpost::journal::scan::{TornTailMode, scan};
use pingpost::journal::{
    Journal, JournalConfig, JournalError, JournalRecord, SyncFault, SyncPolicy,
};

fn config(sync: SyncPolicy) -> JournalConfig {
    JournalConfig::new(sync, 0x5A17)
}

/// Writes notes `1..=total` in commits of `per_commit` (each waited for, so batches end there
/// at the latest) and closes the journal.
fn write_notes(dir: &Path, config: JournalConfig, total: u64, per_commit: u64) {
    let (mut writer, recovery) = Journal::open::<Note>(dir, config).expect("open");
    let first = recovery.next_lsn;
    for n in first..first + total {
        let lsn = writer.append(note(n)).expect("append");
        assert_eq!(lsn, n);
        if n % per_commit == 0 {
            writer.wait_durable(lsn).expect("durable");
        }
    }
    writer.flush_and_close().expect("close");
}

/// Every batch of the journal: (segment, offset, length, last LSN).
fn batches(dir: &Path) -> Vec<(std::path::PathBuf, u64, u64, Lsn)> {
    let mut out = Vec::new();
    scan(
        dir,
        TornTailMode::Report,
        |segment, batch: &BatchView<'_>| {
            out.push((
                segment.to_path_buf(),
                batch.offset,
                batch.len as u64,
                batch.last_lsn(),
            ));
            Ok(())
        },
    )
    .expect("sound journal");
    out
}

fn lsns(events: &[(Lsn, Note)]) -> Vec<Lsn> {
    events.iter().map(|(lsn, _)| *lsn).collect()
}

fn truncate(path: &Path, len: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    file.set_len(len).expect("truncate");
}

fn flip(path: &Path, at: u64, bit: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= 1 << bit;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_torn_tail_is_cut_at_the_last_complete_batch_for_every_cut_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_notes(dir.path(), config(SyncPolicy::Never), 60, 15);
    let all = batches(dir.path());
    let (segment, offset, len, _) = all.last().cloned().expect("batches");
    let kept_lsn = all.len().checked_sub(2).map_or(0, |i| all[i].3);
    let name = segment.file_name().expect("name").to_owned();
    for cut in offset..offset + len {
        let copy = copy_dir(dir.path());
        truncate(&copy.path().join(&name), cut);
        let (mut writer, recovery) =
            Journal::open::<Note>(copy.path(), config(SyncPolicy::Never)).expect("recovers");
        assert_eq!(recovery.head.lsn, kept_lsn, "cut at {cut}");
        assert_eq!(lsns(&recovery.events), (1..=kept_lsn).collect::<Vec<_>>());
        let torn = recovery.truncated.clone();
        assert_eq!(torn.is_some(), cut > offset, "cut at {cut}");
        if let Some(torn) = torn {
            assert_eq!(torn.offset, offset);
            assert_eq!(torn.bytes, cut - offset);
            assert_eq!(torn.first_lost_lsn, kept_lsn + 1);
        }
        // Appending after the cut continues the chain; recovering again finds the same records
        // and nothing more to cut, however often.
        for n in kept_lsn + 1..=kept_lsn + 3 {
            assert_eq!(writer.append(note(n)).expect("append"), n);
        }
        writer.flush_and_close().expect("close");
        for _ in 0..2 {
            let again = Journal::recover::<Note>(copy.path()).expect("recovers again");
            assert!(again.truncated.is_none());
            assert_eq!(
                again
                    .events
                    .iter()
                    .map(|(_, n)| n.clone())
                    .collect::<Vec<_>>(),
                (1..=kept_lsn + 3).map(note).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn a_bit_flip_in_a_sealed_segment_makes_recovery_refuse_and_say_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut small = config(SyncPolicy::Never);
    small.segment_bytes_max = 2_048;
    write_notes(dir.path(), small, 80, 4);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "several segments: {files:?}");
    let sealed = &files[0];
    let sealed_len = std::fs::metadata(sealed).expect("meta").len();
    let all = batches(dir.path());
    for at in 0..sealed_len {
        let copy = copy_dir(dir.path());
        let path = copy.path().join(sealed.file_name().expect("name"));
        flip(&path, at, (at % 8) as u8);
        match Journal::recover::<Note>(copy.path()) {
            Err(JournalError::Corrupt {
                segment,
                offset,
                lsn,
                ..
            }) => {
                assert_eq!(segment, path, "flip at {at}");
                assert!(offset <= at, "the location is at or before the flip ({at})");
                // The LSN is that of the batch (or record) the flip is in.
                let batch = all
                    .iter()
                    .find(|b| b.0.file_name() == sealed.file_name() && b.1 <= at && at < b.1 + b.2);
                if let Some(&(_, _, _, last)) = batch {
                    assert!(lsn <= last, "flip at {at}: LSN {lsn}");
                }
            }
            other => panic!("flip at {at} in a sealed segment: {other:?}"),
        }
    }
}

#[test]
fn a_bit_flip_followed_by_valid_batches_is_corruption_and_one_in_the_last_batch_is_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_notes(dir.path(), config(SyncPolicy::Never), 40, 10);
    let all = batches(dir.path());
    assert!(all.len() >= 3);
    let (segment, offset, _, _) = all[1].clone();
    let copy = copy_dir(dir.path());
    let path = copy.path().join(segment.file_name().expect("name"));
    flip(&path, offset + 70, 3);
    let error = Journal::recover::<Note>(copy.path()).expect_err("refuses");
    let text = error.to_string();
    assert!(text.contains("journal-00000001.seg"), "{text}");
    assert!(text.contains("a valid batch follows"), "{text}");
    match error {
        JournalError::Corrupt {
            offset: at, lsn, ..
        } => {
            assert!(at >= offset && at <= offset + 70);
            assert!(lsn > all[0].3 && lsn <= all[1].3, "LSN {lsn}");
        }
        other => panic!("{other:?}"),
    }
    // The file was left as it was: recovery never cuts in the middle.
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        std::fs::metadata(&segment).expect("meta").len()
    );

    let (segment, offset, len, _) = all.last().cloned().expect("last");
    let copy = copy_dir(dir.path());
    let path = copy.path().join(segment.file_name().expect("name"));
    flip(&path, offset + len - 1, 0);
    let recovery = Journal::recover::<Note>(copy.path()).expect("a damaged last batch is cut");
    let torn = recovery.truncated.expect("reported");
    assert_eq!(torn.offset, offset);
    assert_eq!(recovery.head.lsn, all[all.len() - 2].3);
}

fn policy_round_trip(sync: SyncPolicy) {
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = config(sync);
    let log = Arc::clone(&seen);
    config.on_durable = Some(Arc::new(move |lsn| log.lock().expect("lock").push(lsn)));
    let (mut writer, recovery) = Journal::open::<Note>(dir.path(), config).expect("open");
    assert_eq!(recovery.next_lsn, 1);
    let mut last = 0;
    for n in 1..=500 {
        last = writer.append(note(n)).expect("append");
        if n % 100 == 0 {
            writer.wait_durable(last).expect("durable");
            assert!(writer.durable_lsn() >= last);
            assert!(writer.written_lsn() >= last);
            if sync == SyncPolicy::Always {
                assert!(writer.synced_lsn() >= last, "always: durable means synced");
            }
        }
    }
    let watermark = writer.durable_watermark();
    let head = writer.flush_and_close().expect("close");
    assert_eq!(head.lsn, last);
    assert_eq!(watermark.load(std::sync::atomic::Ordering::Acquire), last);
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&last));
    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    assert_eq!(
        recovery
            .events
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>(),
        (1..=500).map(note).collect::<Vec<_>>()
    );
    assert_eq!(recovery.head, head);
}

#[test]
fn policy_always_counts_a_record_durable_only_after_its_sync() {
    policy_round_trip(SyncPolicy::Always);
}

#[test]
fn policy_interval_round_trips() {
    policy_round_trip(SyncPolicy::Interval { ms: 5 });
}

#[test]
fn policy_never_round_trips() {
    policy_round_trip(SyncPolicy::Never);
}

#[test]
fn policies_parse_from_their_config_text() {
    assert_eq!("always".parse(), Ok(SyncPolicy::Always));
    assert_eq!("never".parse(), Ok(SyncPolicy::Never));
    assert_eq!("interval=10".parse(), Ok(SyncPolicy::Interval { ms: 10 }));
    assert!("interval=0".parse::<SyncPolicy>().is_err());
    assert!("sometimes".parse::<SyncPolicy>().is_err());
}

#[test]
fn segments_roll_by_size_and_the_chain_runs_across_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut small = config(SyncPolicy::Never);
    small.segment_bytes_max = 4_096;
    write_notes(dir.path(), small.clone(), 300, 10);
    let files = segments(dir.path());
    assert!(files.len() > 3, "{files:?}");
    for (i, file) in files.iter().enumerate() {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name, format!("journal-{:08}.seg", i + 1));
        assert!(std::fs::metadata(file).expect("meta").len() <= 4_096);
    }
    // Reopening continues the last segment and the chain.
    write_notes(dir.path(), small, 50, 10);
    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    assert_eq!(lsns(&recovery.events), (1..=350).collect::<Vec<_>>());
}

#[test]
fn segments_roll_at_utc_midnight_by_the_records_timestamps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut writer, _) =
        Journal::open::<Note>(dir.path(), config(SyncPolicy::Never)).expect("open");
    // T0 is 18:00 UTC: every 3 hours for 2 days crosses two midnights; several records a
    // batch, so batches have to be split at the boundary.
    for n in 1..=16u64 {
        let mut record = note(n);
        record.at = T0 + (n - 1) * 3 * 3_600_000 * MS;
        writer.append(record).expect("append");
    }
    writer.flush_and_close().expect("close");
    let files = segments(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    let mut days_per_segment = std::collections::BTreeMap::new();
    scan(dir.path(), TornTailMode::Report, |segment, batch| {
        for record in &batch.records {
            days_per_segment
                .entry(segment.to_path_buf())
                .or_insert_with(std::collections::BTreeSet::new)
                .insert(record.timestamp_us / 86_400_000_000);
        }
        Ok(())
    })
    .expect("sound");
    assert!(days_per_segment.values().all(|days| days.len() == 1));
    let days: Vec<_> = days_per_segment.values().flatten().collect();
    assert!(days.windows(2).all(|w| w[0] < w[1]), "{days:?}");
}

#[test]
fn recovery_returns_the_newest_snapshot_and_exactly_the_records_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(SyncPolicy::Never);
    config.snapshots_kept = 2;
    let (mut writer, _) = Journal::open::<Note>(dir.path(), config.clone()).expect("open");
    let mut states = Vec::new();
    for round in 1..=4u64 {
        for n in (round - 1) * 25 + 1..=round * 25 {
            writer.append(note(n)).expect("append");
        }
        let state = format!("state after {}", round * 25).into_bytes();
        let ticket = writer
            .write_snapshot(round * 25, state.clone())
            .expect("snapshot");
        ticket.wait().expect("snapshot written");
        states.push(state);
    }
    assert!(matches!(
        writer.write_snapshot(7, Vec::new()),
        Err(JournalError::SnapshotLsn {
            asked: 7,
            last_appended: 100
        })
    ));
    for n in 101..=130 {
        writer.append(note(n)).expect("append");
    }
    writer.flush_and_close().expect("close");
    let snapshot_files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("snapshot-"))
        .collect();
    assert_eq!(
        snapshot_files.len(),
        2,
        "older snapshots removed: {snapshot_files:?}"
    );

    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    assert_eq!(recovery.snapshot, Some((100, states[3].clone())));
    assert_eq!(
        recovery
            .events
            .iter()
            .map(|(_, n)| n.clone())
            .collect::<Vec<_>>(),
        (101..=130).map(note).collect::<Vec<_>>()
    );

    // A damaged newest snapshot is passed over for the older one, and the records follow it.
    let newest = dir.path().join("snapshot-00000000000000000100.snap");
    flip(&newest, 105, 1);
    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    assert_eq!(recovery.snapshot, Some((75, states[2].clone())));
    assert_eq!(lsns(&recovery.events), (76..=130).collect::<Vec<_>>());
    assert_eq!(recovery.snapshots_skipped.len(), 1);
}

/// A payload whose encoding fails at one value: the writer must stop, not skip it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Faulty(u64);

impl serde::Serialize for Faulty {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(serde::ser::Error::custom("value 3 cannot be encoded"));
        }
        serializer.serialize_u64(self.0)
    }
}

impl JournalRecord for Faulty {
    const SCHEMA_VERSION: u16 = 1;
    fn record_type(&self) -> u16 {
        1
    }
    fn timestamp_us(&self) -> u64 {
        T0
    }
}

#[test]
fn the_writer_stops_for_good_at_its_first_error_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fatal = Arc::new(Mutex::new(None));
    let mut config = config(SyncPolicy::Always);
    let slot = Arc::clone(&fatal);
    config.on_fatal = Some(Arc::new(move |error: &JournalError| {
        *slot.lock().expect("lock") = Some(error.to_string());
    }));
    let (mut writer, _) = Journal::open::<Faulty>(dir.path(), config).expect("open");
    writer.append(Faulty(1)).expect("append");
    writer.wait_durable(1).expect("durable");
    for n in 2..=5 {
        let _ = writer.append(Faulty(n));
    }
    let error = writer.wait_durable(5).expect_err("the writer stopped");
    assert!(
        matches!(error, JournalError::Encode { lsn: 3, .. }),
        "{error:?}"
    );
    assert!(writer.fatal().is_some());
    assert!(writer.durable_lsn() < 3);
    assert!(writer.append(Faulty(6)).is_err());
    assert!(
        fatal
            .lock()
            .expect("lock")
            .as_deref()
            .is_some_and(|text| text.contains("LSN 3"))
    );
    assert!(writer.flush_and_close().is_err());
}

#[test]
fn a_failed_sync_stops_the_writer_for_good_and_is_never_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The third sync fails as an EIO from the disk would; any later one would succeed.
    let syncs = Arc::new(AtomicU64::new(0));
    let mut config = config(SyncPolicy::Always);
    let counter = Arc::clone(&syncs);
    config.sync_fault = Some(SyncFault::new(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        Ok(())
    }));
    let fatal = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&fatal);
    config.on_fatal = Some(Arc::new(move |error: &JournalError| {
        *slot.lock().expect("lock") = Some(error.to_string());
    }));
    let (mut writer, _) = Journal::open::<Note>(dir.path(), config).expect("open");
    for n in 1..=2 {
        writer.append(note(n)).expect("append");
        writer.wait_durable(n).expect("durable");
    }
    writer.append(note(3)).expect("append");
    let error = writer
        .wait_durable(3)
        .expect_err("the sync of record 3 failed");
    assert!(matches!(error, JournalError::Io { .. }), "{error:?}");
    assert_eq!(writer.durable_lsn(), 2, "record 3 is not durable");
    assert!(
        writer.append(note(4)).is_err(),
        "a stopped writer takes nothing"
    );
    assert!(
        writer.flush_and_close().is_err(),
        "closing does not sync again"
    );
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        3,
        "the failed sync was retried"
    );
    let said = fatal
        .lock()
        .expect("lock")
        .clone()
        .expect("the daemon was told");
    assert!(said.contains("sync"), "{said}");

    // Recovery reads what reached the file: everything durable, whole batches only.
    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    let recovered = lsns(&recovery.events);
    assert!(recovered.starts_with(&[1, 2]), "{recovered:?}");
    assert!(recovered.len() <= 3, "{recovered:?}");
}

#[test]
fn replaying_loads_the_newest_sound_snapshot_on_the_chain_and_hands_over_the_records_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut writer, _) =
        Journal::open::<Note>(dir.path(), config(SyncPolicy::Never)).expect("open");
    for n in 1..=50 {
        writer.append(note(n)).expect("append");
    }
    writer.flush_and_close().expect("close");

    let mut seen = Vec::new();
    let (mut writer, replayed) = Journal::open_replaying::<Note>(
        dir.path(),
        config(SyncPolicy::Never),
        |_, _| panic!("no snapshot yet"),
        |lsn, record| seen.push((lsn, record.n)),
    )
    .expect("replay");
    assert_eq!(seen, (1..=50).map(|n| (n, n)).collect::<Vec<_>>());
    assert_eq!(replayed.next_lsn, 51);
    assert!(replayed.truncated.is_none());
    assert_eq!(replayed.snapshot_lsn, None);
    // Appending goes on after the last record; two snapshots, then more records.
    assert_eq!(writer.append(note(51)).expect("append"), 51);
    for (lsn, state) in [(51, b"older".to_vec()), (52, b"newer".to_vec())] {
        if lsn == 52 {
            writer.append(note(52)).expect("append");
        }
        writer
            .write_snapshot(lsn, state)
            .expect("snapshot")
            .wait()
            .expect("written");
    }
    for n in 53..=60 {
        writer.append(note(n)).expect("append");
    }
    writer.flush_and_close().expect("close");

    // The newest snapshot is loaded and only the records after it are visited.
    let replay = |dir: &std::path::Path| {
        let mut loaded = None;
        let mut seen = Vec::new();
        let result = Journal::open_replaying::<Note>(
            dir,
            config(SyncPolicy::Never),
            |lsn, state| {
                loaded = Some((lsn, state));
                Ok(())
            },
            |lsn, _| seen.push(lsn),
        );
        result.map(|(writer, replayed)| {
            writer.flush_and_close().expect("close");
            (loaded, seen, replayed)
        })
    };
    let (loaded, seen, replayed) = replay(dir.path()).expect("replay");
    assert_eq!(loaded, Some((52, b"newer".to_vec())));
    assert_eq!(seen, (53..=60).collect::<Vec<_>>());
    assert_eq!(replayed.snapshot_lsn, Some(52));
    assert!(replayed.snapshots_skipped.is_empty());

    // A damaged newest snapshot is passed over, and said; the older one is loaded.
    let newest = dir
        .path()
        .join(pingpost::journal::snapshot::snapshot_file_name(52));
    let mut bytes = std::fs::read(&newest).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&newest, &bytes).expect("write");
    let (loaded, seen, replayed) = replay(dir.path()).expect("replay");
    assert_eq!(loaded, Some((51, b"older".to_vec())));
    assert_eq!(seen, (52..=60).collect::<Vec<_>>());
    assert_eq!(replayed.snapshots_skipped.len(), 1);

    // A snapshot the reader cannot use is refused with its path, not skipped in silence.
    let refused = Journal::open_replaying::<Note>(
        dir.path(),
        config(SyncPolicy::Never),
        |_, _| Err("state schema 9 is not this build's 1".to_owned()),
        |_, _| {},
    );
    let Err(JournalError::Snapshot { path, problem }) = refused else {
        panic!("{refused:?}");
    };
    assert!(path.ends_with(pingpost::journal::snapshot::snapshot_file_name(51)));
    assert!(problem.contains("state schema 9"), "{problem}");

    // A snapshot from another journal (its chain head differs) is refused.
    let other = tempfile::tempdir().expect("temp dir");
    let (mut writer, _) =
        Journal::open::<Note>(other.path(), config(SyncPolicy::Never)).expect("open");
    for n in 1..=60 {
        writer.append(note(n + 1_000)).expect("append");
    }
    writer.flush_and_close().expect("close");
    std::fs::copy(
        dir.path()
            .join(pingpost::journal::snapshot::snapshot_file_name(51)),
        other
            .path()
            .join(pingpost::journal::snapshot::snapshot_file_name(51)),
    )
    .expect("copy");
    let Err(JournalError::Snapshot { problem, .. }) = replay(other.path()) else {
        panic!("a foreign snapshot must be refused");
    };
    assert!(problem.contains("chain head at LSN 51"), "{problem}");
}

#[test]
fn a_snapshot_whose_state_cannot_be_made_fails_alone_and_the_journal_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut writer, _) =
        Journal::open::<Note>(dir.path(), config(SyncPolicy::Never)).expect("open");
    for n in 1..=3 {
        writer.append(note(n)).expect("append");
    }
    let failed = writer
        .write_snapshot_with(
            3,
            Box::new(|| Err("the state could not be copied".to_owned())),
        )
        .expect("handed over")
        .wait()
        .expect_err("the encoder failed");
    assert!(
        failed.to_string().contains("the state could not be copied"),
        "{failed}"
    );
    assert!(
        writer.fatal().is_none(),
        "a failed snapshot is not the journal's failure"
    );
    assert_eq!(writer.append(note(4)).expect("append"), 4);
    writer.flush_and_close().expect("close");
    let recovery = Journal::recover::<Note>(dir.path()).expect("recover");
    assert!(recovery.snapshot.is_none());
    assert_eq!(recovery.events.len(), 4);
}
