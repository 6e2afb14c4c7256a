//! Reading a journal directory from the first segment to the last: every header, batch and
//! record CRC, the LSN sequence and the hash chain, and the decision between a torn tail (cut
//! it, or report it) and corruption (refuse, naming segment, offset and LSN).
//!
//! Recovery and the auditor's `verify` share this code, so they cannot disagree about what a
//! sound journal is.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::format::{
    BATCH_HEADER_LEN, BATCH_MAGIC, BatchView, ChainHash, Damage, GENESIS_HASH, Lsn,
    RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, parse_batch, parse_segment_file_name,
    segment_file_name, utc_day,
};
use crate::limits::{JOURNAL_RECORD_BYTES_MAX, JOURNAL_SEGMENT_BYTES_MAX};

/// The largest segment file a reader accepts: a full segment, or one batch holding a single
/// record of the largest size (which may exceed the segment size on its own).
const SEGMENT_FILE_BYTES_MAX: u64 = SEGMENT_HEADER_LEN as u64
    + BATCH_HEADER_LEN as u64
    + RECORD_HEADER_LEN as u64
    + if JOURNAL_SEGMENT_BYTES_MAX > JOURNAL_RECORD_BYTES_MAX as u64 {
        JOURNAL_SEGMENT_BYTES_MAX
    } else {
        JOURNAL_RECORD_BYTES_MAX as u64
    };

/// The chain's head: the last record's LSN and the hash of the batch that holds it (LSN 0 and
/// the genesis hash for an empty journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub lsn: Lsn,
    pub hash: ChainHash,
}

impl Head {
    pub const GENESIS: Self = Self {
        lsn: 0,
        hash: GENESIS_HASH,
    };
}

impl std::fmt::Display for Head {
    /// `LSN:HASH`, the form `journal head` prints and `--expect-head` reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.lsn, super::format::hex(&self.hash))
    }
}

/// What a torn tail was, and (in recovery) what was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment whose tail is torn.
    pub segment: PathBuf,
    /// Where the last complete batch ends: the segment's length after the cut.
    pub offset: u64,
    /// Bytes after that offset (cut, in recovery).
    pub bytes: u64,
    /// The first LSN that was not recovered (the next one to be written).
    pub first_lost_lsn: Lsn,
    /// What was wrong with the bytes after `offset`.
    pub damage: String,
    /// A last segment file whose header was never completely written (removed, in recovery).
    pub removed_segment: Option<PathBuf>,
}

/// The segment the writer continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailSegment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    /// Bytes of the segment (after any cut).
    pub len: u64,
    /// The UTC day of its first record, if it has one.
    pub first_day: Option<u64>,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    pub segments: u64,
    pub batches: u64,
    pub records: u64,
    pub head: Head,
    pub torn: Option<TornTail>,
    pub tail: Option<TailSegment>,
}

/// What to do with a torn tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornTailMode {
    /// Recovery: truncate the segment to its last complete batch (and remove a last segment
    /// whose header is incomplete), then carry on.
    Cut,
    /// Audit: change nothing, report it.
    Report,
}

/// A segment file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub segment_no: u64,
}

/// The directory's segment files in number order. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let name = entry.file_name();
        if let Some(segment_no) = name.to_str().and_then(parse_segment_file_name) {
            segments.push(SegmentFile {
                path: entry.path(),
                segment_no,
            });
        }
    }
    segments.sort_by_key(|segment| segment.segment_no);
    Ok(segments)
}

/// Reads every segment of `dir` in order, checking everything the format lets a reader check,
/// and calls `visit` with each batch that belongs to the chain, in LSN order.
///
/// A damaged batch (or an incomplete header of the last segment) with nothing valid after it
/// anywhere is a torn tail, handled per `mode`. A damaged batch followed by any valid batch, a
/// damaged batch in a segment that is not the last, a CRC-valid batch whose LSN or hash does not
/// continue the chain, a segment header that does not continue it and a missing segment are all
/// corruption: the scan stops with [`JournalError::Corrupt`].
pub fn scan(
    dir: &Path,
    mode: TornTailMode,
    mut visit: impl FnMut(&Path, &BatchView<'_>) -> Result<(), JournalError>,
) -> Result<ScanEnd, JournalError> {
    let segments = list_segments(dir)?;
    let mut end = ScanEnd {
        segments: 0,
        batches: 0,
        records: 0,
        head: Head::GENESIS,
        torn: None,
        tail: None,
    };
    let count = segments.len();
    for (i, segment) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let expected_no = i as u64 + 1;
        if segment.segment_no != expected_no {
            return Err(JournalError::Corrupt {
                segment: dir.join(segment_file_name(expected_no)),
                offset: 0,
                lsn: end.head.lsn + 1,
                problem: format!(
                    "segment {expected_no} is missing (the next file is {})",
                    segment.path.display()
                ),
            });
        }
        let bytes = read_segment(&segment.path)?;
        let header = match SegmentHeader::decode(&bytes) {
            Ok(header) => header,
            Err(damage) if is_last && bytes.len() <= SEGMENT_HEADER_LEN => {
                // The writer makes a header durable before it writes any batch behind it, so
                // a last segment holding no more than a partial header was being created when
                // the process stopped.
                if mode == TornTailMode::Cut {
                    fs::remove_file(&segment.path)
                        .map_err(|e| JournalError::io("remove", &segment.path, e))?;
                    sync_dir(dir)?;
                }
                end.torn = Some(TornTail {
                    segment: segment.path.clone(),
                    offset: 0,
                    bytes: bytes.len() as u64,
                    first_lost_lsn: end.head.lsn + 1,
                    damage: format!("the segment's header is incomplete: {damage}"),
                    removed_segment: Some(segment.path),
                });
                return Ok(end);
            }
            Err(damage) => {
                return Err(JournalError::Corrupt {
                    segment: segment.path,
                    offset: 0,
                    lsn: end.head.lsn + 1,
                    problem: format!("the segment header is damaged: {damage}"),
                });
            }
        };
        let continues = header.segment_no == segment.segment_no
            && header.first_lsn == end.head.lsn + 1
            && header.start_hash == end.head.hash;
        if !continues {
            return Err(JournalError::Corrupt {
                segment: segment.path,
                offset: 0,
                lsn: end.head.lsn + 1,
                problem: format!(
                    "the segment header (number {}, first LSN {}) does not continue the chain \
                     (expected number {}, first LSN {} and the previous segment's head hash)",
                    header.segment_no,
                    header.first_lsn,
                    segment.segment_no,
                    end.head.lsn + 1
                ),
            });
        }
        end.segments += 1;
        let mut offset = SEGMENT_HEADER_LEN;
        let mut first_day = None;
        while offset < bytes.len() {
            let batch = match parse_batch(&bytes, offset, header.salt) {
                Ok(batch) => batch,
                Err(damage) => {
                    let expected_lsn = end.head.lsn + 1;
                    let (at, lsn) = match damage {
                        Damage::RecordCrc {
                            record_offset,
                            index,
                        } => (offset + record_offset, expected_lsn + u64::from(index)),
                        _ => (offset, expected_lsn),
                    };
                    if !is_last {
                        return Err(JournalError::Corrupt {
                            segment: segment.path,
                            offset: at as u64,
                            lsn,
                            problem: format!(
                                "a batch is damaged ({damage}) in a segment that later \
                                 segments follow"
                            ),
                        });
                    }
                    if let Some(valid_at) = valid_batch_after(&bytes, offset + 1, header.salt) {
                        return Err(JournalError::Corrupt {
                            segment: segment.path,
                            offset: at as u64,
                            lsn,
                            problem: format!(
                                "a batch is damaged ({damage}), and a valid batch follows at \
                                 byte {valid_at}: this is not a torn tail, and recovery does \
                                 not cut valid records"
                            ),
                        });
                    }
                    if mode == TornTailMode::Cut {
                        cut(&segment.path, offset as u64)?;
                    }
                    end.torn = Some(TornTail {
                        segment: segment.path.clone(),
                        offset: offset as u64,
                        bytes: (bytes.len() - offset) as u64,
                        first_lost_lsn: expected_lsn,
                        damage: format!(
                            "the batch at byte {at} is incomplete or damaged: {damage}"
                        ),
                        removed_segment: None,
                    });
                    break;
                }
            };
            let expected_lsn = end.head.lsn + 1;
            if batch.first_lsn != expected_lsn {
                return Err(JournalError::Corrupt {
                    segment: segment.path,
                    offset: offset as u64,
                    lsn: expected_lsn,
                    problem: format!(
                        "the batch begins at LSN {}, but the chain expects {expected_lsn}: a \
                         batch was deleted, inserted or moved",
                        batch.first_lsn
                    ),
                });
            }
            if batch.chain_hash(&end.head.hash) != batch.hash {
                return Err(JournalError::Corrupt {
                    segment: segment.path,
                    offset: offset as u64,
                    lsn: expected_lsn,
                    problem: "the batch's hash does not chain to the previous batch: records \
                              were edited, or batches were deleted, inserted or reordered"
                        .to_owned(),
                });
            }
            visit(&segment.path, &batch)?;
            if first_day.is_none() {
                first_day = batch.records.first().map(|r| utc_day(r.timestamp_us));
            }
            end.head = Head {
                lsn: batch.last_lsn(),
                hash: batch.hash,
            };
            end.batches += 1;
            end.records += batch.records.len() as u64;
            offset += batch.len;
        }
        end.tail = Some(TailSegment {
            path: segment.path,
            header,
            len: offset.min(bytes.len()) as u64,
            first_day,
        });
    }
    Ok(end)
}

/// Reads a whole segment, refusing one larger than any segment the writer makes.
fn read_segment(path: &Path) -> Result<Vec<u8>, JournalError> {
    let len = fs::metadata(path)
        .map_err(|e| JournalError::io("read", path, e))?
        .len();
    if len > SEGMENT_FILE_BYTES_MAX {
        return Err(JournalError::Corrupt {
            segment: path.to_path_buf(),
            offset: SEGMENT_FILE_BYTES_MAX,
            lsn: 0,
            problem: format!(
                "the segment is {len} bytes long, more than any segment the writer makes \
                 ({SEGMENT_FILE_BYTES_MAX} bytes)"
            ),
        });
    }
    fs::read(path).map_err(|e| JournalError::io("read", path, e))
}

/// The offset of the first batch at or after `from` whose header and records check out under
/// `salt`, if any. Only such a batch counts as "valid data after the damage": a torn write
/// leaves a prefix of one batch, which never holds a complete valid batch.
fn valid_batch_after(bytes: &[u8], from: usize, salt: u64) -> Option<usize> {
    let last_start = bytes.len().checked_sub(BATCH_HEADER_LEN)?;
    (from..=last_start).find(|&at| {
        bytes[at..at + 4] == BATCH_MAGIC && parse_batch(bytes, at, salt).is_ok_and(|_| true)
    })
}

/// Truncates a torn segment to `len` bytes and makes the new length durable.
fn cut(path: &Path, len: u64) -> Result<(), JournalError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io("open for truncation", path, e))?;
    file.set_len(len)
        .map_err(|e| JournalError::io("truncate the torn tail of", path, e))?;
    file.sync_all()
        .map_err(|e| JournalError::io("sync after truncating", path, e))
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync the directory", dir, e))
}
