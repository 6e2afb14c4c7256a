//! The group-commit writer: one OS thread owns the open segment. The engine thread hands it
//! records through a bounded channel (backpressure, not unbounded memory); the writer drains
//! whatever is queued, serializes it into one batch, writes it with one call and syncs per
//! policy, then publishes the durability watermark. The `fdatasync` itself runs on the sync
//! thread ([`super::syncer`]): under `always` the writer only asks for it and goes on with the
//! next batch, and the sync thread publishes the watermark when the device has the bytes.
//!
//! A failed write or sync is never retried: after a failed `fdatasync` the kernel may have
//! dropped the dirty pages, so a retry that succeeds would claim durability for bytes that are
//! gone. The writer records the error as fatal, stops, and the daemon exits; recovery then
//! reads what actually reached the disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use sha2::{Digest, Sha256};

use super::error::JournalError;
use super::format::{
    BatchBuilder, Lsn, PushError, SEGMENT_HEADER_LEN, SegmentHeader, segment_file_name, utc_day,
};
use super::record::JournalRecord;
use super::scan::{Head, TailSegment, sync_dir};
use super::snapshot::write_snapshot_file;
use super::syncer::Syncer;
use crate::engine::events::Event;
use crate::limits::{
    JOURNAL_BATCH_BYTES_MAX, JOURNAL_BATCH_RECORDS_MAX, JOURNAL_QUEUE_LEN,
    JOURNAL_SEGMENT_BYTES_MAX, JOURNAL_SNAPSHOTS_KEPT,
};

/// When the writer calls `fdatasync`, and so what [`JournalWriter::durable_lsn`] promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Sync after every batch; a record is durable (counted in `durable_lsn`) only once the
    /// `fdatasync` of its batch has returned. Survives power loss.
    Always,
    /// Sync at most every `ms` milliseconds (and at least that often while records are
    /// unsynced). A record counts as durable once it is written to the operating system: that
    /// survives a crash of the process, and a power loss loses at most the last interval.
    Interval { ms: u32 },
    /// Never sync, except when a segment is sealed, at a snapshot and at close. A record counts
    /// as durable once written to the operating system: it survives a crash of the process,
    /// not of the machine.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;

    /// `always`, `never` or `interval=<ms>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => text
                .strip_prefix("interval=")
                .and_then(|ms| ms.parse::<u32>().ok())
                .filter(|&ms| ms > 0)
                .map(|ms| Self::Interval { ms })
                .ok_or_else(|| {
                    format!(
                        "unknown sync policy {text:?}: use always, never or interval=<ms> with \
                         ms at least 1"
                    )
                }),
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    /// The form [`SyncPolicy::from_str`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval { ms } => write!(f, "interval={ms}"),
            Self::Never => f.write_str("never"),
        }
    }
}

/// Called with the new durability watermark after it advances: on the writer thread, or under
/// `always` on the sync thread (one thread per policy, so calls never overlap).
pub type DurableCallback = Arc<dyn Fn(Lsn) + Send + Sync>;
/// Called once, with the error that stopped the journal: on the writer thread, or on the sync
/// thread for a failed sync.
pub type FatalCallback = Arc<dyn Fn(&JournalError) + Send + Sync>;

/// Fault injection for the journal's syncs: called on the sync thread before each
/// `fdatasync` of a segment with the segment's path; an error it returns stands for that
/// sync's failure, exactly as an `EIO` from the disk would (the sync itself is then not made).
/// Crash and failure tests set it to prove what the daemon does when the disk fails; the daemon
/// never does.
#[derive(Clone)]
pub struct SyncFault(Arc<SyncCheck>);

/// What a [`SyncFault`] calls: `Err` fails the sync of the segment at the path.
type SyncCheck = dyn Fn(&Path) -> std::io::Result<()> + Send + Sync;

impl SyncFault {
    pub fn new(check: impl Fn(&Path) -> std::io::Result<()> + Send + Sync + 'static) -> Self {
        Self(Arc::new(check))
    }

    pub(crate) fn check(&self, path: &Path) -> std::io::Result<()> {
        (self.0)(path)
    }
}

impl std::fmt::Debug for SyncFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncFault")
    }
}

/// How the journal writes. [`JournalConfig::new`] gives the limits of `src/limits.rs`.
#[derive(Clone)]
pub struct JournalConfig {
    pub sync: SyncPolicy,
    /// Seeds each segment's random salt. The daemon draws it from the operating system
    /// ([`super::os_salt_seed`]); tests pass a constant, so their files are reproducible.
    pub salt_seed: u64,
    /// Bytes after which a segment is sealed and the next begun.
    pub segment_bytes_max: u64,
    /// Records the producer may queue before `append` blocks.
    pub queue_len: usize,
    /// Snapshots kept in the directory.
    pub snapshots_kept: usize,
    pub on_durable: Option<DurableCallback>,
    pub on_fatal: Option<FatalCallback>,
    /// Fault injection for failure tests (see [`SyncFault`]); `None` in the daemon.
    pub sync_fault: Option<SyncFault>,
}

impl JournalConfig {
    pub fn new(sync: SyncPolicy, salt_seed: u64) -> Self {
        Self {
            sync,
            salt_seed,
            segment_bytes_max: JOURNAL_SEGMENT_BYTES_MAX,
            queue_len: JOURNAL_QUEUE_LEN,
            snapshots_kept: JOURNAL_SNAPSHOTS_KEPT,
            on_durable: None,
            on_fatal: None,
            sync_fault: None,
        }
    }
}

impl std::fmt::Debug for JournalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalConfig")
            .field("sync", &self.sync)
            .field("segment_bytes_max", &self.segment_bytes_max)
            .field("queue_len", &self.queue_len)
            .field("snapshots_kept", &self.snapshots_kept)
            .field("on_durable", &self.on_durable.is_some())
            .field("on_fatal", &self.on_fatal.is_some())
            .field("sync_fault", &self.sync_fault.is_some())
            .finish_non_exhaustive()
    }
}

/// What the writer thread and its producer share: the watermarks and the fatal error.
#[derive(Debug, Default)]
struct Shared {
    /// Highest LSN handed to the operating system.
    written: AtomicU64,
    /// Highest LSN whose batch has been synced.
    synced: AtomicU64,
    /// Highest LSN the policy counts as durable (an `Arc` so the daemon can watch it alone).
    durable: Arc<AtomicU64>,
    fatal: OnceLock<JournalError>,
    stopped: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Shared {
    fn notify(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }
}

enum Msg<P> {
    Record(Lsn, P),
    Snapshot {
        lsn: Lsn,
        state: StateEncoder,
        reply: Sender<Result<PathBuf, JournalError>>,
    },
}

/// Makes a snapshot's state bytes, on the snapshot thread (see
/// [`JournalWriter::write_snapshot_with`]); an error is the snapshot's, not the journal's.
pub type StateEncoder = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

/// A snapshot being written in the background; [`SnapshotTicket::wait`] gives its path.
#[derive(Debug)]
pub struct SnapshotTicket {
    reply: Receiver<Result<PathBuf, JournalError>>,
}

impl SnapshotTicket {
    /// Blocks until the snapshot file is in place and its directory synced.
    pub fn wait(self) -> Result<PathBuf, JournalError> {
        self.reply.recv().unwrap_or(Err(JournalError::Closed))
    }

    /// The outcome if the snapshot is finished, without waiting.
    pub fn try_wait(&self) -> Option<Result<PathBuf, JournalError>> {
        match self.reply.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(crossbeam_channel::TryRecvError::Empty) => None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => Some(Err(JournalError::Closed)),
        }
    }
}

/// The producer's handle: the one place records enter the journal. LSNs are assigned here, on
/// the caller's thread, so the caller knows a record's LSN the moment it appends it.
pub struct JournalWriter<P: JournalRecord = Event> {
    sender: Option<Sender<Msg<P>>>,
    next_lsn: Lsn,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<Head, JournalError>>>,
}

impl<P: JournalRecord> std::fmt::Debug for JournalWriter<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("next_lsn", &self.next_lsn)
            .field("durable_lsn", &self.durable_lsn())
            .finish_non_exhaustive()
    }
}

impl<P: JournalRecord> JournalWriter<P> {
    /// Starts the writer thread on the segment recovery left open.
    pub(crate) fn start(
        dir: &Path,
        config: JournalConfig,
        head: Head,
        tail: Option<TailSegment>,
    ) -> Result<Self, JournalError> {
        let segment = match tail {
            Some(tail) => OpenSegment::reopen(tail)?,
            None => OpenSegment::create(dir, 1, config.salt_seed, head)?,
        };
        let shared = Arc::new(Shared::default());
        for watermark in [&shared.written, &shared.synced, &*shared.durable] {
            watermark.store(head.lsn, Ordering::Release);
        }
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_len.max(1));
        let syncer = start_syncer(dir, &config, &shared, head.lsn)?;
        let writer = Writer {
            dir: dir.to_path_buf(),
            receiver,
            shared: Arc::clone(&shared),
            segment,
            head,
            batch: BatchBuilder::new(),
            batch_day: None,
            unsynced: false,
            last_sync: Instant::now(),
            snapshot_thread: None,
            syncer,
            config,
        };
        let thread = std::thread::Builder::new()
            .name("journal-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| JournalError::io("start the writer thread for", dir, e))?;
        Ok(Self {
            sender: Some(sender),
            next_lsn: head.lsn + 1,
            shared,
            thread: Some(thread),
        })
    }

    /// Queues one record and returns its LSN. Blocks while the queue is full (backpressure).
    /// Fails only once the writer has stopped, with the error that stopped it.
    pub fn append(&mut self, record: P) -> Result<Lsn, JournalError> {
        let lsn = self.next_lsn;
        let sender = self.sender.as_ref().ok_or(JournalError::Closed)?;
        if self.shared.stopped.load(Ordering::Acquire)
            || sender.send(Msg::Record(lsn, record)).is_err()
        {
            return Err(self.stopped_error());
        }
        self.next_lsn += 1;
        Ok(lsn)
    }

    /// Queues records in order; returns the LSN of the last one (or of the last appended
    /// before, if `records` is empty).
    pub fn append_batch(
        &mut self,
        records: impl IntoIterator<Item = P>,
    ) -> Result<Lsn, JournalError> {
        for record in records {
            self.append(record)?;
        }
        Ok(self.next_lsn - 1)
    }

    /// The LSN the next appended record gets.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// The highest LSN the sync policy counts as durable (see [`SyncPolicy`]).
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The durability watermark itself, for a thread that only needs to read it.
    pub fn durable_watermark(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.durable)
    }

    /// The highest LSN written to the operating system.
    pub fn written_lsn(&self) -> Lsn {
        self.shared.written.load(Ordering::Acquire)
    }

    /// The highest LSN whose batch `fdatasync` has made durable on the device.
    pub fn synced_lsn(&self) -> Lsn {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Blocks until `lsn` is durable, or fails with the error that stopped the writer.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), JournalError> {
        let mut guard = self
            .shared
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.durable_lsn() >= lsn {
                return Ok(());
            }
            if self.shared.stopped.load(Ordering::Acquire) {
                return Err(self.stopped_error());
            }
            guard = self
                .shared
                .changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The error that stopped the writer, if one did.
    pub fn fatal(&self) -> Option<JournalError> {
        self.shared.fatal.get().cloned()
    }

    /// Writes `state` as a snapshot of the engine after record `lsn`, which must be the last
    /// record appended. The writer closes its batch there, syncs it (whatever the policy: a
    /// snapshot never covers records that are not on disk) and writes the file on a thread of
    /// its own, so commits go on meanwhile.
    pub fn write_snapshot(
        &mut self,
        lsn: Lsn,
        state: Vec<u8>,
    ) -> Result<SnapshotTicket, JournalError> {
        self.write_snapshot_with(lsn, Box::new(move || Ok(state)))
    }

    /// [`JournalWriter::write_snapshot`] with the state's bytes made by `encode` on the
    /// snapshot thread: a caller that can copy its state quickly hands over the copy, and the
    /// slow part (serializing it) happens off its thread.
    pub fn write_snapshot_with(
        &mut self,
        lsn: Lsn,
        state: StateEncoder,
    ) -> Result<SnapshotTicket, JournalError> {
        let last_appended = self.next_lsn - 1;
        if lsn != last_appended || lsn == 0 {
            return Err(JournalError::SnapshotLsn {
                asked: lsn,
                last_appended,
            });
        }
        let (reply, ticket) = crossbeam_channel::bounded(1);
        let sender = self.sender.as_ref().ok_or(JournalError::Closed)?;
        if self.shared.stopped.load(Ordering::Acquire)
            || sender.send(Msg::Snapshot { lsn, state, reply }).is_err()
        {
            return Err(self.stopped_error());
        }
        Ok(SnapshotTicket { reply: ticket })
    }

    /// Writes and syncs everything queued (whatever the policy), stops the writer and returns
    /// the chain's head, or the error that stopped the writer.
    pub fn flush_and_close(mut self) -> Result<Head, JournalError> {
        self.close()
    }

    fn close(&mut self) -> Result<Head, JournalError> {
        self.sender = None;
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Err(JournalError::Closed)),
            None => Err(JournalError::Closed),
        }
    }

    fn stopped_error(&self) -> JournalError {
        self.fatal().unwrap_or(JournalError::Closed)
    }
}

impl<P: JournalRecord> Drop for JournalWriter<P> {
    /// Dropping the writer closes it as [`JournalWriter::flush_and_close`] does; an error is
    /// still reported through `fatal` and `on_fatal`.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.close();
        }
    }
}

/// The segment being appended to.
#[derive(Debug)]
struct OpenSegment {
    path: PathBuf,
    /// Shared with the sync thread, which syncs it while this thread writes.
    file: Arc<File>,
    header: SegmentHeader,
    len: u64,
    first_day: Option<u64>,
}

impl OpenSegment {
    fn reopen(tail: TailSegment) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&tail.path)
            .map_err(|e| JournalError::io("open for appending", &tail.path, e))?;
        Ok(Self {
            path: tail.path,
            file: Arc::new(file),
            header: tail.header,
            len: tail.len,
            first_day: tail.first_day,
        })
    }

    /// Creates segment `segment_no` continuing the chain at `head`, and makes its header and
    /// its directory entry durable before any batch is written behind it.
    fn create(
        dir: &Path,
        segment_no: u64,
        salt_seed: u64,
        head: Head,
    ) -> Result<Self, JournalError> {
        let header = SegmentHeader {
            segment_no,
            first_lsn: head.lsn + 1,
            salt: segment_salt(salt_seed, segment_no),
            start_hash: head.hash,
        };
        let path = dir.join(segment_file_name(segment_no));
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| JournalError::io("create", &path, e))?;
        file.write_all(&header.encode())
            .map_err(|e| JournalError::io("write the header of", &path, e))?;
        file.sync_data()
            .map_err(|e| JournalError::io("sync", &path, e))?;
        sync_dir(dir)?;
        Ok(Self {
            path,
            file: Arc::new(file),
            header,
            len: SEGMENT_HEADER_LEN as u64,
            first_day: None,
        })
    }

    fn has_batches(&self) -> bool {
        self.len > SEGMENT_HEADER_LEN as u64
    }
}

/// A segment's salt: the first eight bytes of SHA-256 over the seed and the segment number, so
/// that each segment of one journal has its own.
fn segment_salt(salt_seed: u64, segment_no: u64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(salt_seed.to_le_bytes());
    hasher.update(segment_no.to_le_bytes());
    let digest = hasher.finalize();
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(salt)
}

/// The writer thread's state.
struct Writer<P> {
    dir: PathBuf,
    config: JournalConfig,
    receiver: Receiver<Msg<P>>,
    shared: Arc<Shared>,
    segment: OpenSegment,
    /// The chain's head as written.
    head: Head,
    batch: BatchBuilder,
    /// The UTC day of the open batch's first record.
    batch_day: Option<u64>,
    /// Whether batches were written since the last sync.
    unsynced: bool,
    last_sync: Instant,
    snapshot_thread: Option<JoinHandle<()>>,
    /// Makes written batches durable beside this thread (see [`super::syncer`]).
    syncer: Syncer,
}

impl<P: JournalRecord> Writer<P> {
    fn run(mut self) -> Result<Head, JournalError> {
        let result = self.run_until_closed();
        if let Some(thread) = self.snapshot_thread.take() {
            let _ = thread.join();
        }
        match result {
            Ok(()) => {
                self.shared.stopped.store(true, Ordering::Release);
                self.shared.notify();
                Ok(self.head)
            }
            Err(error) => {
                // A failed sync was reported by the sync thread already: the first error is
                // the one that counts.
                let error = self.syncer.failed().unwrap_or(error);
                stop_for_good(&self.shared, self.config.on_fatal.as_ref(), &error);
                Err(error)
            }
        }
    }

    fn run_until_closed(&mut self) -> Result<(), JournalError> {
        loop {
            let first = match self.sync_deadline() {
                Some(deadline) => match self.receiver.recv_deadline(deadline) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync()?;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.receiver.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
            };
            self.handle(first)?;
            // Group commit: everything already queued joins this commit, up to one batch.
            while self.batch.count() < JOURNAL_BATCH_RECORDS_MAX
                && self.batch.body_len() < JOURNAL_BATCH_BYTES_MAX as usize
            {
                match self.receiver.try_recv() {
                    Ok(msg) => self.handle(msg)?,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit()?;
        }
        // Closing: whatever the policy, everything is written and synced.
        self.write_batch()?;
        self.sync()
    }

    /// When an `interval` policy owes a sync.
    fn sync_deadline(&self) -> Option<Instant> {
        match self.config.sync {
            SyncPolicy::Interval { ms } if self.unsynced => {
                Some(self.last_sync + Duration::from_millis(u64::from(ms)))
            }
            _ => None,
        }
    }

    fn handle(&mut self, msg: Msg<P>) -> Result<(), JournalError> {
        match msg {
            Msg::Record(lsn, record) => self.push(lsn, &record),
            Msg::Snapshot { lsn, state, reply } => self.snapshot(lsn, state, reply),
        }
    }

    fn push(&mut self, lsn: Lsn, record: &P) -> Result<(), JournalError> {
        let timestamp_us = record.timestamp_us();
        let day = utc_day(timestamp_us);
        // A batch holds records of one UTC day, so that a segment can.
        if self.batch_day.is_some_and(|batch_day| day > batch_day) {
            self.write_batch()?;
        }
        let pushed = self.batch.push(
            lsn,
            record.record_type(),
            P::SCHEMA_VERSION,
            timestamp_us,
            |buf| serde_json::to_writer(buf, record),
        );
        match pushed {
            Ok(()) => {
                self.batch_day.get_or_insert(day);
                Ok(())
            }
            Err(PushError::Payload(error)) => Err(JournalError::Encode {
                lsn,
                problem: error.to_string(),
            }),
            Err(PushError::TooLarge(bytes)) => Err(JournalError::RecordTooLarge { lsn, bytes }),
        }
    }

    /// Writes the open batch, after rolling the segment if it is full or of an earlier day.
    fn write_batch(&mut self) -> Result<(), JournalError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let full = self.segment.len + self.batch.len() as u64 > self.config.segment_bytes_max;
        let new_day = matches!(
            (self.segment.first_day, self.batch_day),
            (Some(segment_day), Some(batch_day)) if batch_day > segment_day
        );
        if self.segment.has_batches() && (full || new_day) {
            self.rotate()?;
        }
        let (bytes, hash) = self.batch.seal(&self.head.hash, self.segment.header.salt);
        let written = bytes.len() as u64;
        if let Err(error) = (&*self.segment.file).write_all(bytes) {
            return Err(JournalError::io("write", &self.segment.path, error));
        }
        self.segment.len += written;
        if self.segment.first_day.is_none() {
            self.segment.first_day = self.batch_day;
        }
        self.head = Head {
            lsn: self.batch_last_lsn(),
            hash,
        };
        self.batch.clear();
        self.batch_day = None;
        self.unsynced = true;
        self.shared.written.store(self.head.lsn, Ordering::Release);
        Ok(())
    }

    fn batch_last_lsn(&self) -> Lsn {
        // The head before the batch plus the batch's records: LSNs are contiguous.
        self.head.lsn + u64::from(self.batch.count())
    }

    /// Writes the open batch and syncs per policy, then publishes the watermarks.
    fn commit(&mut self) -> Result<(), JournalError> {
        self.write_batch()?;
        match self.config.sync {
            // The sync thread makes it durable and publishes; meanwhile this thread goes on
            // with the next batch.
            SyncPolicy::Always => {
                self.syncer
                    .request(&self.segment.file, &self.segment.path, self.head.lsn)
            }
            SyncPolicy::Interval { ms } => {
                if self.last_sync.elapsed() >= Duration::from_millis(u64::from(ms)) {
                    self.sync()
                } else {
                    self.publish();
                    Ok(())
                }
            }
            SyncPolicy::Never => {
                self.publish();
                Ok(())
            }
        }
    }

    /// Makes everything written durable and waits for it, whatever the policy.
    fn sync(&mut self) -> Result<(), JournalError> {
        self.syncer
            .sync(&self.segment.file, &self.segment.path, self.head.lsn)?;
        if self.unsynced {
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
        // Under `always` the sync thread publishes each sync itself.
        if self.config.sync != SyncPolicy::Always {
            self.publish();
        }
        Ok(())
    }

    /// Advances the durability watermark to what the policy promises, wakes waiters and tells
    /// the daemon.
    fn publish(&self) {
        publish(
            &self.shared,
            self.config.sync,
            self.config.on_durable.as_ref(),
        );
    }

    /// Seals the current segment (synced, whatever the policy) and starts the next.
    fn rotate(&mut self) -> Result<(), JournalError> {
        self.sync()?;
        let next = OpenSegment::create(
            &self.dir,
            self.segment.header.segment_no + 1,
            self.config.salt_seed,
            self.head,
        )?;
        self.segment = next;
        Ok(())
    }

    fn snapshot(
        &mut self,
        lsn: Lsn,
        state: StateEncoder,
        reply: Sender<Result<PathBuf, JournalError>>,
    ) -> Result<(), JournalError> {
        // The producer checked that `lsn` is its last append, and records arrive in order, so
        // the open batch ends exactly at `lsn`: close it there and make it durable.
        self.write_batch()?;
        self.sync()?;
        assert_eq!(
            self.head.lsn, lsn,
            "a snapshot's LSN is the last one appended"
        );
        if let Some(previous) = self.snapshot_thread.take() {
            let _ = previous.join();
        }
        let dir = self.dir.clone();
        let hash = self.head.hash;
        let keep = self.config.snapshots_kept.max(1);
        let thread = std::thread::Builder::new()
            .name("journal-snapshot".to_owned())
            .spawn(move || {
                let written = state()
                    .map_err(|problem| JournalError::Snapshot {
                        path: dir.join(super::snapshot::snapshot_file_name(lsn)),
                        problem: format!("its state could not be made: {problem}"),
                    })
                    .and_then(|state| write_snapshot_file(&dir, lsn, hash, &state, keep));
                let _ = reply.send(written);
            })
            .map_err(|e| JournalError::io("start the snapshot thread for", &self.dir, e))?;
        self.snapshot_thread = Some(thread);
        Ok(())
    }
}

/// Advances the durability watermark to what `policy` promises, wakes waiters and tells the
/// daemon. Called by the writer thread, and under `always` by the sync thread alone.
fn publish(shared: &Shared, policy: SyncPolicy, on_durable: Option<&DurableCallback>) {
    let durable = match policy {
        SyncPolicy::Always => shared.synced.load(Ordering::Acquire),
        SyncPolicy::Interval { .. } | SyncPolicy::Never => shared.written.load(Ordering::Acquire),
    };
    let before = shared.durable.fetch_max(durable, Ordering::AcqRel);
    if durable > before {
        shared.notify();
        if let Some(on_durable) = on_durable {
            on_durable(durable);
        }
    }
}

/// Records the error that stops the journal: the daemon hears of it first (to begin shutting
/// down), then waiters wake. Only the first error is reported.
fn stop_for_good(shared: &Shared, on_fatal: Option<&FatalCallback>, error: &JournalError) {
    if shared.fatal.set(error.clone()).is_ok() {
        if let Some(on_fatal) = on_fatal {
            on_fatal(error);
        }
    }
    shared.stopped.store(true, Ordering::Release);
    shared.notify();
}

/// Starts the sync thread; each sync it makes advances `synced` (and under `always` the
/// durability watermark), and a failed one stops the journal.
fn start_syncer(
    dir: &Path,
    config: &JournalConfig,
    shared: &Arc<Shared>,
    synced: Lsn,
) -> Result<Syncer, JournalError> {
    let shared = Arc::clone(shared);
    let policy = config.sync;
    let on_durable = config.on_durable.clone();
    let on_fatal = config.on_fatal.clone();
    Syncer::start(
        synced,
        config.sync_fault.clone(),
        Box::new(move |outcome| match outcome {
            Ok(lsn) => {
                shared.synced.fetch_max(lsn, Ordering::AcqRel);
                if policy == SyncPolicy::Always {
                    publish(&shared, policy, on_durable.as_ref());
                }
            }
            Err(error) => stop_for_good(&shared, on_fatal.as_ref(), error),
        }),
    )
    .map_err(|e| JournalError::io("start the sync thread for", dir, e))
}
