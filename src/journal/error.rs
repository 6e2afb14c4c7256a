//! The journal's operating errors: each names the file, and where it matters the byte offset
//! and the LSN, in a sentence an operator can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::Lsn;

/// What went wrong in the journal. Cloneable, so the writer's fatal error can be handed to
/// every caller that asks after it stopped.
#[derive(Debug, Clone)]
pub enum JournalError {
    /// A file operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// The journal's bytes are damaged or were changed in a place recovery must not cut: a bad
    /// record or batch with valid data after it, a broken hash chain, a gap in the LSNs.
    Corrupt {
        segment: PathBuf,
        offset: u64,
        /// The LSN the chain expected at that place.
        lsn: Lsn,
        problem: String,
    },
    /// A record's bytes are sound but its payload does not decode as an event of this build.
    Payload {
        segment: PathBuf,
        offset: u64,
        lsn: Lsn,
        problem: String,
    },
    /// The writer could not serialize an event.
    Encode { lsn: Lsn, problem: String },
    /// An event's encoding is larger than `JOURNAL_RECORD_BYTES_MAX`.
    RecordTooLarge { lsn: Lsn, bytes: u64 },
    /// A snapshot was asked for at an LSN other than the last one appended.
    SnapshotLsn { asked: Lsn, last_appended: Lsn },
    /// A snapshot file is damaged or does not belong to this journal's chain.
    Snapshot { path: PathBuf, problem: String },
    /// The writer thread has stopped (after a fatal error, or after close).
    Closed,
}

impl JournalError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Self::Corrupt {
                segment,
                offset,
                lsn,
                problem,
            } => write!(
                f,
                "the journal is corrupt in {} at byte {offset} (LSN {lsn}): {problem}",
                segment.display()
            ),
            Self::Payload {
                segment,
                offset,
                lsn,
                problem,
            } => write!(
                f,
                "the record with LSN {lsn} in {} at byte {offset} does not decode: {problem}",
                segment.display()
            ),
            Self::Encode { lsn, problem } => {
                write!(f, "the event for LSN {lsn} cannot be encoded: {problem}")
            }
            Self::RecordTooLarge { lsn, bytes } => write!(
                f,
                "the event for LSN {lsn} encodes to {bytes} bytes, more than the journal's \
                 record maximum of {} bytes",
                crate::limits::JOURNAL_RECORD_BYTES_MAX
            ),
            Self::SnapshotLsn {
                asked,
                last_appended,
            } => write!(
                f,
                "a snapshot must cover every record appended: asked for LSN {asked}, but the \
                 last appended is {last_appended}"
            ),
            Self::Snapshot { path, problem } => {
                write!(
                    f,
                    "the snapshot {} is not usable: {problem}",
                    path.display()
                )
            }
            Self::Closed => f.write_str("the journal writer has stopped"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
