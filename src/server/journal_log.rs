//! The journal as the exchange thread sees it: `append` hands an event to the journal's writer
//! thread, `durable_lsn` is the writer's watermark, and every advance of it wakes the exchange
//! thread so that outputs waiting for durability leave at once; `snapshot` hands the daemon's
//! state to the writer, which writes the file on a thread of its own.

use std::path::Path;

use crossbeam_channel::Sender;

use super::exchange::EventLog;
use super::outbox::OutboxBuilder;
use super::snapshot::DaemonImage;
use crate::engine::events::Event;
use crate::engine::types::BuyerId;
use crate::journal::scan::{TornTailMode, scan};
use crate::journal::{
    Journal, JournalConfig, JournalError, JournalWriter, SnapshotTicket, SyncFault, SyncPolicy,
    TornTail, decode_record, os_salt_seed,
};
use crate::protocol::LeadDelivery;

/// An opened journal; its records went to the visitor given to [`open`].
pub struct Opened {
    pub log: Box<dyn EventLog>,
    /// How many records were replayed (after the snapshot, if one was loaded).
    pub records: u64,
    /// The LSN of the snapshot loaded, if one was.
    pub snapshot_lsn: Option<u64>,
    /// Newer snapshots passed over because their bytes did not check out.
    pub snapshots_skipped: Vec<String>,
    /// The sequence number of the last recovered record (0 when empty).
    pub last_lsn: u64,
    /// The torn tail recovery cut, if any: said at start, never silent.
    pub truncated: Option<TornTail>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("records", &self.records)
            .field("snapshot_lsn", &self.snapshot_lsn)
            .field("last_lsn", &self.last_lsn)
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// The journal's writer behind the exchange thread's interface.
struct WriterLog {
    /// `None` once closed.
    writer: Option<JournalWriter<Event>>,
    /// The snapshot being written, whose outcome is said when the next one starts or at close.
    snapshot: Option<(u64, SnapshotTicket)>,
}

impl WriterLog {
    /// Waits for the snapshot in progress, if any, and says on stderr if it failed: a failed
    /// snapshot loses nothing (the journal has every record), so the daemon carries on.
    fn settle_snapshot(&mut self) {
        if let Some((lsn, ticket)) = self.snapshot.take() {
            if let Err(error) = ticket.wait() {
                report_snapshot_failure(lsn, &error);
            }
        }
    }
}

fn report_snapshot_failure(lsn: u64, error: &JournalError) {
    eprintln!(
        "pingpost: the snapshot at LSN {lsn} was not written ({error}); the journal has every \
         record, and the next snapshot will try again"
    );
}

impl EventLog for WriterLog {
    fn append(&mut self, event: Event) -> Result<u64, String> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| "the journal is closed".to_owned())?;
        writer.append(event).map_err(|error| error.to_string())
    }

    fn durable_lsn(&self) -> u64 {
        self.writer.as_ref().map_or(0, JournalWriter::durable_lsn)
    }

    fn fatal(&self) -> Option<String> {
        self.writer
            .as_ref()
            .and_then(JournalWriter::fatal)
            .map(|error| error.to_string())
    }

    fn snapshot(&mut self, lsn: u64, state: DaemonImage) -> Result<bool, String> {
        // One at a time: while the previous one is still being written, this one is skipped
        // (the exchange thread never waits for a snapshot).
        if let Some((previous, ticket)) = &self.snapshot {
            match ticket.try_wait() {
                None => return Ok(false),
                Some(Err(error)) => report_snapshot_failure(*previous, &error),
                Some(Ok(_)) => {}
            }
            self.snapshot = None;
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| "the journal is closed".to_owned())?;
        match writer.write_snapshot_with(lsn, Box::new(move || state.encode())) {
            Ok(ticket) => self.snapshot = Some((lsn, ticket)),
            Err(error) => report_snapshot_failure(lsn, &error),
        }
        Ok(true)
    }

    fn close(&mut self) -> Result<(), String> {
        self.settle_snapshot();
        match self.writer.take() {
            Some(writer) => writer
                .flush_and_close()
                .map(|_| ())
                .map_err(|error| error.to_string()),
            None => Ok(()),
        }
    }
}

/// Opens (or creates) the journal in `dir`, hands the newest sound snapshot's state to
/// `load_snapshot` and every record after it to `visit` in order, and starts its writer.
/// `wake` hears every advance of the durable watermark.
pub fn open(
    dir: &Path,
    sync: SyncPolicy,
    sync_fault: Option<SyncFault>,
    wake: Sender<u64>,
    load_snapshot: impl FnOnce(u64, Vec<u8>) -> Result<(), String>,
    mut visit: impl FnMut(&Event),
) -> Result<Opened, String> {
    let salt_seed = os_salt_seed().map_err(|error| format!("no OS randomness: {error}"))?;
    let mut config = JournalConfig::new(sync, salt_seed);
    config.sync_fault = sync_fault;
    config.on_durable = Some(std::sync::Arc::new(move |lsn| {
        // A full channel already holds a wake-up; the exchange reads the watermark itself.
        let _ = wake.try_send(lsn);
    }));
    let mut records = 0;
    let (writer, replayed) =
        Journal::open_replaying::<Event>(dir, config, load_snapshot, |_, event| {
            records += 1;
            visit(&event);
        })
        .map_err(|e| e.to_string())?;
    Ok(Opened {
        log: Box::new(WriterLog {
            writer: Some(writer),
            snapshot: None,
        }),
        records,
        snapshot_lsn: replayed.snapshot_lsn,
        snapshots_skipped: replayed
            .snapshots_skipped
            .iter()
            .map(ToString::to_string)
            .collect(),
        last_lsn: replayed.next_lsn.saturating_sub(1),
        truncated: replayed.truncated,
    })
}

/// Reads one buyer's deliveries with sequence numbers `after + 1 ..= through` back from the
/// journal, oldest first: the ones the outbox no longer holds in memory. It reads the whole
/// journal once (a buyer away for more than `OUTBOX_STORED_PER_BUYER_MAX` leads is rare), and
/// runs on a blocking thread, never on the exchange thread.
pub fn read_deliveries(
    dir: &Path,
    buyer: BuyerId,
    after: u64,
    through: u64,
) -> Result<Vec<LeadDelivery<'static>>, String> {
    let mut builder = OutboxBuilder::for_buyer(buyer);
    scan(dir, TornTailMode::Report, |segment, batch| {
        for record in &batch.records {
            let event: Event = decode_record(segment, record)?;
            builder.observe(&event);
        }
        Ok(())
    })
    .map_err(|error| error.to_string())?;
    Ok(builder.finish().take_range(buyer, after, through))
}
