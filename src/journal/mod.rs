//! The append-only journal: every engine event, in order, checksummed and hash-chained, written
//! by one group-commit thread, recovered after a crash, read by the auditor's CLI.
//!
//! # Shape
//!
//! [`Journal::open`] recovers a directory (cutting a torn tail, refusing corruption) and starts
//! the writer on it. The engine thread appends each event it polls with
//! [`JournalWriter::append`], which assigns the LSN and queues the event on a bounded channel;
//! the writer thread serializes, batches, writes and syncs, then advances the durability
//! watermark ([`JournalWriter::durable_lsn`], the `on_durable` callback). The daemon releases an
//! output that hands a contact to a buyer once the LSN of its `Delivered` record is durable.
//!
//! The format is `protocol-spec/journal.md`; it is the contract with auditors' own readers.
//!
//! # Code map
//!
//! - [`format`]: the bytes: segment headers, batches, records, CRCs and the hash chain.
//! - [`scan`]: reading a directory in order, torn tail versus corruption.
//! - [`writer`]: the group-commit writer thread and its producer handle.
//! - [`snapshot`]: snapshot files bound to the chain.
//! - [`record`]: what a payload must provide; record types of engine events.
//! - [`error`]: the journal's operating errors, [`JournalError`].

pub mod error;
pub mod format;
pub mod record;
pub mod scan;
pub mod snapshot;
mod syncer;
pub mod writer;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use error::JournalError;
pub use format::{ChainHash, Lsn};
pub use record::JournalRecord;
pub use scan::{Head, TornTail};
pub use writer::{
    DurableCallback, FatalCallback, JournalConfig, JournalWriter, SnapshotTicket, StateEncoder,
    SyncFault, SyncPolicy,
};

use crate::engine::events::Event;

/// What recovery found: the newest usable snapshot, the records after it, and where the writer
/// goes on.
#[derive(Debug)]
pub struct Recovery<P = Event> {
    /// The newest snapshot whose bytes check out and whose chain head matches the journal:
    /// the LSN it covers and its state bytes.
    pub snapshot: Option<(Lsn, Vec<u8>)>,
    /// Every record after the snapshot (or from the start), in LSN order.
    pub events: Vec<(Lsn, P)>,
    /// The LSN the next appended record gets.
    pub next_lsn: Lsn,
    /// The chain's head after recovery.
    pub head: Head,
    /// The torn tail that was cut, if there was one.
    pub truncated: Option<TornTail>,
    /// Snapshots passed over, newest first, and why (damaged, or not on this journal's chain).
    pub snapshots_skipped: Vec<JournalError>,
}

/// What [`Journal::open_replaying`] found, its records having gone to the visitor.
#[derive(Debug)]
pub struct Replayed {
    /// The LSN the next appended record gets.
    pub next_lsn: Lsn,
    /// The chain's head after recovery.
    pub head: Head,
    /// The torn tail that was cut, if there was one.
    pub truncated: Option<TornTail>,
    /// The LSN of the snapshot loaded, if one was.
    pub snapshot_lsn: Option<Lsn>,
    /// Newer snapshots passed over because their bytes did not check out, newest first.
    pub snapshots_skipped: Vec<JournalError>,
}

/// Opening and recovering a journal directory.
#[derive(Debug, Clone, Copy)]
pub struct Journal;

impl Journal {
    /// Recovers `dir` (created if missing) and starts the writer after its last record.
    pub fn open<P: JournalRecord>(
        dir: &Path,
        config: JournalConfig,
    ) -> Result<(JournalWriter<P>, Recovery<P>), JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let (recovery, tail) = recover_with_tail(dir)?;
        let writer = JournalWriter::start(dir, config, recovery.head, tail)?;
        Ok((writer, recovery))
    }

    /// Recovers `dir` (created if missing) like [`Journal::open`], but streams: the newest
    /// snapshot whose bytes check out goes to `load_snapshot`, then each record after it goes
    /// to `visit` as it is decoded, so that replaying a journal of any length takes the memory
    /// of one segment, not of every event. The whole chain is still verified; the snapshot
    /// must sit on it (its head hash is the chain's at its LSN), or the journal is refused
    /// rather than replayed onto a state from elsewhere. A snapshot `load_snapshot` cannot use
    /// is refused too, with its path, so that the operator decides (moving it away replays
    /// from the first record).
    pub fn open_replaying<P: JournalRecord>(
        dir: &Path,
        config: JournalConfig,
        load_snapshot: impl FnOnce(Lsn, Vec<u8>) -> Result<(), String>,
        mut visit: impl FnMut(Lsn, P),
    ) -> Result<(JournalWriter<P>, Replayed), JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        snapshot::remove_temporaries(dir)?;
        let mut skipped = Vec::new();
        let mut chosen = None;
        for (_, path) in snapshot::list_snapshots(dir)? {
            match snapshot::read_snapshot(&path) {
                Ok((header, state)) => {
                    chosen = Some((header, path, state));
                    break;
                }
                Err(error) => skipped.push(error),
            }
        }
        let mut snapshot_at = None;
        if let Some((header, path, state)) = chosen {
            load_snapshot(header.lsn, state).map_err(|problem| JournalError::Snapshot {
                path: path.clone(),
                problem: format!(
                    "it cannot be loaded ({problem}); moving it out of the directory replays \
                     the journal from its first record"
                ),
            })?;
            snapshot_at = Some((header, path));
        }
        let after = snapshot_at.as_ref().map_or(0, |(header, _)| header.lsn);
        let mut bound = snapshot_at.is_none();
        let end = scan::scan(dir, scan::TornTailMode::Cut, |segment, batch| {
            if let Some((header, _)) = &snapshot_at {
                if batch.last_lsn() == header.lsn {
                    bound = batch.hash == header.head_hash;
                }
            }
            for record in batch.records.iter().filter(|r| r.lsn > after) {
                visit(record.lsn, decode_record::<P>(segment, record)?);
            }
            Ok(())
        })?;
        if let (false, Some((header, path))) = (bound, &snapshot_at) {
            return Err(JournalError::Snapshot {
                path: path.clone(),
                problem: format!(
                    "its chain head at LSN {} is not the journal's (the journal ends at LSN {}, \
                     or its batches differ)",
                    header.lsn, end.head.lsn
                ),
            });
        }
        let writer = JournalWriter::start(dir, config, end.head, end.tail)?;
        let replayed = Replayed {
            next_lsn: end.head.lsn + 1,
            head: end.head,
            truncated: end.torn,
            snapshot_lsn: snapshot_at.map(|(header, _)| header.lsn),
            snapshots_skipped: skipped,
        };
        Ok((writer, replayed))
    }

    /// Recovers `dir` without starting a writer: cuts a torn tail, refuses corruption, loads
    /// the newest usable snapshot and decodes the records after it.
    pub fn recover<P: JournalRecord>(dir: &Path) -> Result<Recovery<P>, JournalError> {
        recover_with_tail(dir).map(|(recovery, _)| recovery)
    }
}

fn recover_with_tail<P: JournalRecord>(
    dir: &Path,
) -> Result<(Recovery<P>, Option<scan::TailSegment>), JournalError> {
    snapshot::remove_temporaries(dir)?;
    let mut skipped = Vec::new();
    // Snapshot candidates by header; the chain's hash at each candidate's LSN is noted during
    // the scan, so that one pass both verifies and binds them.
    let mut candidates: Vec<(snapshot::SnapshotHeader, PathBuf)> = Vec::new();
    for (_, path) in snapshot::list_snapshots(dir)? {
        match snapshot::read_snapshot_header(&path) {
            Ok(header) => candidates.push((header, path)),
            Err(error) => skipped.push(error),
        }
    }
    let mut chain_at: BTreeMap<Lsn, Option<ChainHash>> =
        candidates.iter().map(|(h, _)| (h.lsn, None)).collect();
    // Decode records after the oldest candidate: whichever snapshot is chosen, its successors
    // are among them.
    let decode_after = candidates.iter().map(|(h, _)| h.lsn).min().unwrap_or(0);
    let mut events: Vec<(Lsn, P)> = Vec::new();
    let end = scan::scan(dir, scan::TornTailMode::Cut, |segment, batch| {
        if let Some(slot) = chain_at.get_mut(&batch.last_lsn()) {
            *slot = Some(batch.hash);
        }
        for record in batch.records.iter().filter(|r| r.lsn > decode_after) {
            events.push((record.lsn, decode_record::<P>(segment, record)?));
        }
        Ok(())
    })?;

    let mut chosen = None;
    for (header, path) in candidates {
        if chosen.is_some() {
            break;
        }
        if chain_at.get(&header.lsn).copied().flatten() != Some(header.head_hash) {
            skipped.push(JournalError::Snapshot {
                path,
                problem: format!(
                    "its chain head at LSN {} is not the journal's (the journal ends at LSN \
                     {}, or its batches differ)",
                    header.lsn, end.head.lsn
                ),
            });
            continue;
        }
        match snapshot::read_snapshot(&path) {
            Ok((header, state)) => chosen = Some((header.lsn, state)),
            Err(error) => skipped.push(error),
        }
    }
    if let Some((lsn, _)) = &chosen {
        let keep_from = events.partition_point(|(record_lsn, _)| record_lsn <= lsn);
        events.drain(..keep_from);
    }
    let recovery = Recovery {
        snapshot: chosen,
        events,
        next_lsn: end.head.lsn + 1,
        head: end.head,
        truncated: end.torn,
        snapshots_skipped: skipped,
    };
    Ok((recovery, end.tail))
}

/// Decodes one record's payload, checking its schema version and record type.
pub fn decode_record<P: JournalRecord>(
    segment: &Path,
    record: &format::RecordView<'_>,
) -> Result<P, JournalError> {
    let bad = |problem: String| JournalError::Payload {
        segment: segment.to_path_buf(),
        offset: record.offset,
        lsn: record.lsn,
        problem,
    };
    if record.schema_version > P::SCHEMA_VERSION {
        return Err(bad(format!(
            "schema version {} is newer than this build's {}",
            record.schema_version,
            P::SCHEMA_VERSION
        )));
    }
    let value: P = serde_json::from_slice(record.payload).map_err(|e| bad(e.to_string()))?;
    if value.record_type() != record.record_type {
        return Err(bad(format!(
            "the header says record type {}, the payload is type {}",
            record.record_type,
            value.record_type()
        )));
    }
    Ok(value)
}

/// A salt seed from the operating system's random source, for [`JournalConfig::salt_seed`].
pub fn os_salt_seed() -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
