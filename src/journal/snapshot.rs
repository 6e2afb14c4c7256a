//! Snapshot files: opaque state bytes under a header that binds them to the journal's chain
//! (the LSN they cover and the chain's head hash there), written to a temporary file, synced,
//! renamed into place and the directory synced, so a crash leaves the old snapshot or the new
//! one, never half of one.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::JournalError;
use super::format::{ChainHash, FORMAT_VERSION, Lsn, hash_at, le_u16, le_u32, le_u64};
use super::scan::sync_dir;
use crate::limits::JOURNAL_SNAPSHOT_BYTES_MAX;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PINGSNAP";
/// Bytes of a snapshot header.
pub const SNAPSHOT_HEADER_LEN: usize = 100;
/// [`SNAPSHOT_HEADER_LEN`] as the header's `header_len` field holds it.
const SNAPSHOT_HEADER_LEN_U16: u16 = 100;

/// What a snapshot header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The last LSN whose effect the state includes.
    pub lsn: Lsn,
    /// The chain's head hash at `lsn` (the hash of the batch that ends there).
    pub head_hash: ChainHash,
    pub state_len: u64,
    pub state_sha256: ChainHash,
}

impl SnapshotHeader {
    fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut out = [0u8; SNAPSHOT_HEADER_LEN];
        out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&SNAPSHOT_HEADER_LEN_U16.to_le_bytes());
        out[16..24].copy_from_slice(&self.lsn.to_le_bytes());
        out[24..56].copy_from_slice(&self.head_hash);
        out[56..64].copy_from_slice(&self.state_len.to_le_bytes());
        out[64..96].copy_from_slice(&self.state_sha256);
        let crc = crc32c::crc32c(&out[0..96]);
        out[96..100].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let Some(header) = bytes.get(..SNAPSHOT_HEADER_LEN) else {
            return Err("the file is shorter than a snapshot header");
        };
        if header[0..8] != SNAPSHOT_MAGIC {
            return Err("its magic bytes are wrong");
        }
        if le_u32(header, 96) != crc32c::crc32c(&header[0..96]) {
            return Err("its header CRC32C does not match");
        }
        if le_u16(header, 8) != FORMAT_VERSION
            || usize::from(le_u16(header, 10)) != SNAPSHOT_HEADER_LEN
            || le_u32(header, 12) != 0
        {
            return Err("its version, header length or flags are not those of version 1");
        }
        let state_len = le_u64(header, 56);
        if state_len > JOURNAL_SNAPSHOT_BYTES_MAX {
            return Err("its state length is beyond the snapshot maximum");
        }
        Ok(Self {
            lsn: le_u64(header, 16),
            head_hash: hash_at(header, 24),
            state_len,
            state_sha256: hash_at(header, 64),
        })
    }
}

/// A snapshot's file name: `snapshot-` and its LSN in twenty digits, so names sort by LSN.
pub fn snapshot_file_name(lsn: Lsn) -> String {
    format!("snapshot-{lsn:020}.snap")
}

fn parse_snapshot_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshot files of `dir`, newest (highest LSN) first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut snapshots = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        if let Some(lsn) = entry
            .file_name()
            .to_str()
            .and_then(parse_snapshot_file_name)
        {
            snapshots.push((lsn, entry.path()));
        }
    }
    snapshots.sort_by_key(|snapshot| std::cmp::Reverse(snapshot.0));
    Ok(snapshots)
}

/// Removes temporary files a crash left behind mid-snapshot.
pub fn remove_temporaries(dir: &Path) -> Result<(), JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let is_temporary = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("snapshot-") && name.ends_with(".tmp"));
        if is_temporary {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| JournalError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// Reads a snapshot's header only.
pub fn read_snapshot_header(path: &Path) -> Result<SnapshotHeader, JournalError> {
    let mut file = fs::File::open(path).map_err(|e| JournalError::io("open", path, e))?;
    let mut bytes = [0u8; SNAPSHOT_HEADER_LEN];
    let mut read = 0;
    while read < SNAPSHOT_HEADER_LEN {
        match file.read(&mut bytes[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(JournalError::io("read", path, e)),
        }
    }
    SnapshotHeader::decode(&bytes[..read]).map_err(|problem| JournalError::Snapshot {
        path: path.to_path_buf(),
        problem: problem.to_owned(),
    })
}

/// Reads a whole snapshot, checking its header CRC, its length and its SHA-256.
pub fn read_snapshot(path: &Path) -> Result<(SnapshotHeader, Vec<u8>), JournalError> {
    let header = read_snapshot_header(path)?;
    let bad = |problem: String| JournalError::Snapshot {
        path: path.to_path_buf(),
        problem,
    };
    let file_len = fs::metadata(path)
        .map_err(|e| JournalError::io("read", path, e))?
        .len();
    if file_len != SNAPSHOT_HEADER_LEN as u64 + header.state_len {
        return Err(bad(format!(
            "the file is {file_len} bytes, but its header announces {} bytes of state",
            header.state_len
        )));
    }
    let mut bytes = fs::read(path).map_err(|e| JournalError::io("read", path, e))?;
    let state = bytes.split_off(SNAPSHOT_HEADER_LEN.min(bytes.len()));
    if <[u8; 32]>::from(Sha256::digest(&state)) != header.state_sha256 {
        return Err(bad(
            "its state's SHA-256 does not match its header".to_owned()
        ));
    }
    Ok((header, state))
}

/// Writes a snapshot: a temporary file, synced, renamed into place, the directory synced; then
/// removes the oldest snapshots beyond `keep`.
pub fn write_snapshot_file(
    dir: &Path,
    lsn: Lsn,
    head_hash: ChainHash,
    state: &[u8],
    keep: usize,
) -> Result<PathBuf, JournalError> {
    let header = SnapshotHeader {
        lsn,
        head_hash,
        state_len: state.len() as u64,
        state_sha256: Sha256::digest(state).into(),
    };
    let path = dir.join(snapshot_file_name(lsn));
    let temporary = dir.join(format!("{}.tmp", snapshot_file_name(lsn)));
    let mut file =
        fs::File::create(&temporary).map_err(|e| JournalError::io("create", &temporary, e))?;
    file.write_all(&header.encode())
        .and_then(|()| file.write_all(state))
        .map_err(|e| JournalError::io("write", &temporary, e))?;
    file.sync_all()
        .map_err(|e| JournalError::io("sync", &temporary, e))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(|e| JournalError::io("rename", &temporary, e))?;
    sync_dir(dir)?;
    let snapshots = list_snapshots(dir)?;
    if snapshots.len() > keep {
        for (_, old) in &snapshots[keep..] {
            fs::remove_file(old).map_err(|e| JournalError::io("remove", old, e))?;
        }
        sync_dir(dir)?;
    }
    Ok(path)
}
