//! The journal's bytes: segment headers, batches and records, encoded and checked without any
//! I/O. `protocol-spec/journal.md` is the normative description; this file implements it.
//!
//! Every field is a fixed-width little-endian integer. Parsing never trusts a length: each is
//! checked against the bytes actually present and against its named maximum before use, and
//! every way the bytes can be wrong is a [`Damage`] value rather than a panic.

use sha2::{Digest, Sha256};

use crate::limits::{JOURNAL_BATCH_RECORDS_MAX, JOURNAL_RECORD_BYTES_MAX};

/// A log sequence number: records are numbered 1, 2, 3, ... without gaps, across segments.
pub type Lsn = u64;

/// A SHA-256 hash of the chain.
pub type ChainHash = [u8; 32];

/// The chain's value before the first batch: 32 zero bytes.
pub const GENESIS_HASH: ChainHash = [0; 32];

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PINGJRNL";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of a segment header in format version 1.
pub const SEGMENT_HEADER_LEN: usize = 76;
/// [`SEGMENT_HEADER_LEN`] as the header's `header_len` field holds it.
const SEGMENT_HEADER_LEN_U16: u16 = 76;

/// The first four bytes of every batch: `BTCH`.
pub const BATCH_MAGIC: [u8; 4] = *b"BTCH";
/// Bytes of a batch header.
pub const BATCH_HEADER_LEN: usize = 56;
/// Bytes of a batch header that the chain hash covers (magic, count, body length, first LSN).
const BATCH_HASHED_LEN: usize = 20;
/// Bytes of a batch header that its CRC covers (everything before the CRC).
const BATCH_CRC_COVERED_LEN: usize = 52;

/// Bytes of a record header: length, CRC, LSN, type, schema version, timestamp.
pub const RECORD_HEADER_LEN: usize = 28;

/// Microseconds in a UTC day: segments roll when their records' day changes.
pub const US_PER_DAY: u64 = 86_400 * 1_000_000;

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment_no: u64,
    pub first_lsn: Lsn,
    pub salt: u64,
    /// The chain's head before this segment's first batch.
    pub start_hash: ChainHash,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&SEGMENT_HEADER_LEN_U16.to_le_bytes());
        // 12..16: flags, none defined.
        out[16..24].copy_from_slice(&self.segment_no.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_lsn.to_le_bytes());
        out[32..40].copy_from_slice(&self.salt.to_le_bytes());
        out[40..72].copy_from_slice(&self.start_hash);
        let crc = crc32c::crc32c(&out[0..72]);
        out[72..76].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a segment header from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Damage> {
        let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err(Damage::Incomplete);
        };
        if header[0..8] != SEGMENT_MAGIC {
            return Err(Damage::BadMagic);
        }
        if le_u32(header, 72) != crc32c::crc32c(&header[0..72]) {
            return Err(Damage::HeaderCrc);
        }
        let version = le_u16(header, 8);
        if version != FORMAT_VERSION {
            return Err(Damage::Version(version));
        }
        if usize::from(le_u16(header, 10)) != SEGMENT_HEADER_LEN || le_u32(header, 12) != 0 {
            return Err(Damage::Layout(
                "header length or flags not those of version 1",
            ));
        }
        Ok(Self {
            segment_no: le_u64(header, 16),
            first_lsn: le_u64(header, 24),
            salt: le_u64(header, 32),
            start_hash: hash_at(header, 40),
        })
    }
}

/// Why bytes that should be a header, batch or record are not one. Whether this is a torn
/// tail or corruption is decided by what follows (see `scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The bytes end before the structure does.
    Incomplete,
    /// The magic is not there.
    BadMagic,
    /// A header's CRC32C does not match.
    HeaderCrc,
    /// A record's CRC32C does not match (or its length is beyond the maximum); the offset is
    /// the record's, from the batch start, and `index` its place in the batch.
    RecordCrc { record_offset: usize, index: u32 },
    /// A format version this build does not read.
    Version(u16),
    /// A length, count or reserved field that the format does not allow.
    Layout(&'static str),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Incomplete => f.write_str("the bytes end in the middle of it"),
            Self::BadMagic => f.write_str("its magic bytes are wrong"),
            Self::HeaderCrc => f.write_str("its header CRC32C does not match"),
            Self::RecordCrc { record_offset, .. } => write!(
                f,
                "the CRC32C of its record at batch offset {record_offset} does not match"
            ),
            Self::Version(version) => write!(
                f,
                "format version {version}, but this build reads version {FORMAT_VERSION}"
            ),
            Self::Layout(what) => f.write_str(what),
        }
    }
}

/// One record inside a parsed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Offset of the record from the start of the segment file.
    pub offset: u64,
    pub lsn: Lsn,
    pub record_type: u16,
    pub schema_version: u16,
    pub timestamp_us: u64,
    pub payload: &'a [u8],
}

/// A batch whose header and record CRCs hold. Whether it belongs in the chain (its first LSN
/// and hash) is the caller's check: [`BatchView::chain_hash`] computes what the hash should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView<'a> {
    /// Offset of the batch from the start of the segment file.
    pub offset: u64,
    /// Bytes of the whole batch, header included.
    pub len: usize,
    pub first_lsn: Lsn,
    pub hash: ChainHash,
    pub records: Vec<RecordView<'a>>,
    /// The header's first 20 bytes and the body: what the hash covers after the previous hash.
    hashed_header: &'a [u8],
    body: &'a [u8],
}

impl BatchView<'_> {
    /// The LSN of the batch's last record.
    pub fn last_lsn(&self) -> Lsn {
        self.first_lsn + self.records.len() as u64 - 1
    }

    /// What this batch's hash must be if `prev` is the chain's head before it.
    pub fn chain_hash(&self, prev: &ChainHash) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(self.hashed_header);
        hasher.update(self.body);
        hasher.finalize().into()
    }
}

/// Parses the batch that starts at `segment[offset..]`, checking its header CRC (salted with
/// the segment's salt), its layout and every record's CRC and LSN (contiguous from the header's
/// first LSN). It does not check the chain.
pub fn parse_batch(segment: &[u8], offset: usize, salt: u64) -> Result<BatchView<'_>, Damage> {
    let rest = segment.get(offset..).unwrap_or_default();
    let Some(header) = rest.get(..BATCH_HEADER_LEN) else {
        return Err(Damage::Incomplete);
    };
    if header[0..4] != BATCH_MAGIC {
        return Err(Damage::BadMagic);
    }
    if le_u32(header, BATCH_CRC_COVERED_LEN) != batch_header_crc(salt, header) {
        return Err(Damage::HeaderCrc);
    }
    let count = le_u32(header, 4);
    let body_len = le_u32(header, 8) as usize;
    let first_lsn = le_u64(header, 12);
    if count == 0 || count > JOURNAL_BATCH_RECORDS_MAX {
        return Err(Damage::Layout("its record count is 0 or above the maximum"));
    }
    if first_lsn == 0 {
        return Err(Damage::Layout("its first LSN is 0"));
    }
    let Some(body) = rest.get(BATCH_HEADER_LEN..BATCH_HEADER_LEN + body_len) else {
        return Err(Damage::Incomplete);
    };
    let mut records = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    while at < body.len() {
        let Some(record_header) = body.get(at..at + RECORD_HEADER_LEN) else {
            return Err(Damage::Layout(
                "its records do not fill its body exactly (a record header is cut)",
            ));
        };
        let payload_len = le_u32(record_header, 0);
        if payload_len > JOURNAL_RECORD_BYTES_MAX {
            return Err(Damage::RecordCrc {
                record_offset: BATCH_HEADER_LEN + at,
                index: u32::try_from(records.len()).unwrap_or(u32::MAX),
            });
        }
        let end = at + RECORD_HEADER_LEN + payload_len as usize;
        let Some(payload) = body.get(at + RECORD_HEADER_LEN..end) else {
            return Err(Damage::Layout(
                "its records do not fill its body exactly (a payload runs past the body)",
            ));
        };
        if le_u32(record_header, 4) != record_crc(record_header, payload) {
            return Err(Damage::RecordCrc {
                record_offset: BATCH_HEADER_LEN + at,
                index: u32::try_from(records.len()).unwrap_or(u32::MAX),
            });
        }
        let lsn = le_u64(record_header, 8);
        if lsn != first_lsn + records.len() as u64 {
            return Err(Damage::Layout(
                "a record's LSN does not follow the batch's first LSN",
            ));
        }
        records.push(RecordView {
            offset: (offset + BATCH_HEADER_LEN + at) as u64,
            lsn,
            record_type: le_u16(record_header, 16),
            schema_version: le_u16(record_header, 18),
            timestamp_us: le_u64(record_header, 20),
            payload,
        });
        at = end;
    }
    if records.len() != count as usize {
        return Err(Damage::Layout(
            "its record count differs from the records in its body",
        ));
    }
    Ok(BatchView {
        offset: offset as u64,
        len: BATCH_HEADER_LEN + body_len,
        first_lsn,
        hash: hash_at(header, 20),
        records,
        hashed_header: &header[..BATCH_HASHED_LEN],
        body,
    })
}

/// Builds batches in one reused buffer: records are encoded in place behind a reserved header,
/// which [`BatchBuilder::seal`] fills once the batch is complete.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: u32,
    first_lsn: Lsn,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self {
            buf: vec![0; BATCH_HEADER_LEN],
            count: 0,
            first_lsn: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of the batch so far, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the records so far.
    pub fn body_len(&self) -> usize {
        self.buf.len() - BATCH_HEADER_LEN
    }

    /// Appends one record whose payload `write_payload` writes into the buffer. The LSN must
    /// follow the previous record's. On an error from `write_payload` the batch is unchanged.
    pub fn push<E>(
        &mut self,
        lsn: Lsn,
        record_type: u16,
        schema_version: u16,
        timestamp_us: u64,
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        assert!(
            self.count == 0 || lsn == self.first_lsn + u64::from(self.count),
            "journal LSNs must be contiguous"
        );
        let start = self.buf.len();
        self.buf.resize(start + RECORD_HEADER_LEN, 0);
        if let Err(error) = write_payload(&mut self.buf) {
            self.buf.truncate(start);
            return Err(PushError::Payload(error));
        }
        let payload_len = self.buf.len() - start - RECORD_HEADER_LEN;
        let Some(payload_len) = u32::try_from(payload_len)
            .ok()
            .filter(|&len| len <= JOURNAL_RECORD_BYTES_MAX)
        else {
            self.buf.truncate(start);
            return Err(PushError::TooLarge(payload_len as u64));
        };
        let header = &mut self.buf[start..start + RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&payload_len.to_le_bytes());
        header[8..16].copy_from_slice(&lsn.to_le_bytes());
        header[16..18].copy_from_slice(&record_type.to_le_bytes());
        header[18..20].copy_from_slice(&schema_version.to_le_bytes());
        header[20..28].copy_from_slice(&timestamp_us.to_le_bytes());
        let (head, payload) = self.buf[start..].split_at(RECORD_HEADER_LEN);
        let crc = record_crc(head, payload);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        if self.count == 0 {
            self.first_lsn = lsn;
        }
        self.count += 1;
        Ok(())
    }

    /// Fills the header, chaining to `prev` and salting the header CRC with the segment's
    /// `salt`, and returns the batch's bytes and its hash. Call [`BatchBuilder::clear`] after
    /// the bytes are written.
    pub fn seal(&mut self, prev: &ChainHash, salt: u64) -> (&[u8], ChainHash) {
        assert!(self.count > 0, "an empty batch is never written");
        let body_len = u32::try_from(self.body_len()).unwrap_or(u32::MAX);
        let header = &mut self.buf[..BATCH_HEADER_LEN];
        header[0..4].copy_from_slice(&BATCH_MAGIC);
        header[4..8].copy_from_slice(&self.count.to_le_bytes());
        header[8..12].copy_from_slice(&body_len.to_le_bytes());
        header[12..20].copy_from_slice(&self.first_lsn.to_le_bytes());
        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(&self.buf[..BATCH_HASHED_LEN]);
        hasher.update(&self.buf[BATCH_HEADER_LEN..]);
        let hash: ChainHash = hasher.finalize().into();
        self.buf[20..52].copy_from_slice(&hash);
        let crc = batch_header_crc(salt, &self.buf[..BATCH_HEADER_LEN]);
        self.buf[52..56].copy_from_slice(&crc.to_le_bytes());
        (&self.buf, hash)
    }

    pub fn clear(&mut self) {
        self.buf.truncate(BATCH_HEADER_LEN);
        self.count = 0;
        self.first_lsn = 0;
    }
}

/// Why a record could not join a batch.
#[derive(Debug)]
pub enum PushError<E> {
    /// The payload could not be written (serialization failed).
    Payload(E),
    /// The payload is larger than `JOURNAL_RECORD_BYTES_MAX`.
    TooLarge(u64),
}

/// CRC32C of a batch header: the segment's salt (8 bytes, little-endian), then the header's
/// bytes before the CRC field.
fn batch_header_crc(salt: u64, header: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&salt.to_le_bytes());
    crc32c::crc32c_append(crc, &header[..BATCH_CRC_COVERED_LEN])
}

/// CRC32C of a record: its length field, then everything after the CRC field (LSN, type,
/// schema version, timestamp, payload).
fn record_crc(header: &[u8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[0..4]);
    let crc = crc32c::crc32c_append(crc, &header[8..RECORD_HEADER_LEN]);
    crc32c::crc32c_append(crc, payload)
}

/// The UTC day (days since the Unix epoch) of a timestamp.
pub fn utc_day(timestamp_us: u64) -> u64 {
    timestamp_us / US_PER_DAY
}

/// A segment's file name: `journal-` and its number in at least eight digits.
pub fn segment_file_name(segment_no: u64) -> String {
    format!("journal-{segment_no:08}.seg")
}

/// The number in a segment's file name, if `name` is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("journal-")?.strip_suffix(".seg")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Lower-case hex of a hash, as the CLI prints heads.
pub fn hex(hash: &ChainHash) -> String {
    use std::fmt::Write as _;
    hash.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A hash from 64 hex digits.
pub fn parse_hex_hash(text: &str) -> Option<ChainHash> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub(crate) fn le_u16(bytes: &[u8], at: usize) -> u16 {
    let mut out = [0u8; 2];
    out.copy_from_slice(&bytes[at..at + 2]);
    u16::from_le_bytes(out)
}

pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(out)
}

pub(crate) fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(out)
}

pub(crate) fn hash_at(bytes: &[u8], at: usize) -> ChainHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[at..at + 32]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(Lsn, &[u8])]) -> (Vec<u8>, ChainHash) {
        let mut builder = BatchBuilder::new();
        for &(lsn, payload) in records {
            builder
                .push(lsn, 7, 1, 1_000 + lsn, |buf| {
                    buf.extend_from_slice(payload);
                    Ok::<(), ()>(())
                })
                .expect("push");
        }
        let (bytes, hash) = builder.seal(&GENESIS_HASH, 42);
        (bytes.to_vec(), hash)
    }

    #[test]
    fn a_sealed_batch_parses_back_with_its_hash() {
        let (bytes, hash) = batch(&[(1, b"{\"a\":1}"), (2, b"{}")]);
        let view = parse_batch(&bytes, 0, 42).expect("valid batch");
        assert_eq!(view.first_lsn, 1);
        assert_eq!(view.last_lsn(), 2);
        assert_eq!(view.hash, hash);
        assert_eq!(view.chain_hash(&GENESIS_HASH), hash);
        assert_eq!(view.records[0].payload, b"{\"a\":1}");
        assert_eq!(view.records[1].timestamp_us, 1_002);
        assert_eq!(view.len, bytes.len());
    }

    #[test]
    fn a_wrong_salt_fails_the_header_crc() {
        let (bytes, _) = batch(&[(1, b"{}")]);
        assert_eq!(parse_batch(&bytes, 0, 43), Err(Damage::HeaderCrc));
    }

    #[test]
    fn every_bit_flip_is_caught_by_a_crc_or_the_layout() {
        let (bytes, hash) = batch(&[(5, b"{\"x\":\"hello\"}"), (6, b"[1,2,3]")]);
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                match parse_batch(&flipped, 0, 42) {
                    Err(_) => {}
                    // The hash field is not under the header CRC's cover alone: a flip there
                    // parses, and the chain check catches it.
                    Ok(view) => assert_ne!(view.chain_hash(&GENESIS_HASH), view.hash, "{at}"),
                }
                let _ = hash;
            }
        }
    }

    #[test]
    fn segment_headers_round_trip_and_catch_flips() {
        let header = SegmentHeader {
            segment_no: 3,
            first_lsn: 1_001,
            salt: 0xABCD,
            start_hash: [9; 32],
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for at in 0..bytes.len() {
            let mut flipped = bytes;
            flipped[at] ^= 0x10;
            assert!(SegmentHeader::decode(&flipped).is_err(), "{at}");
        }
        assert_eq!(SegmentHeader::decode(&bytes[..10]), Err(Damage::Incomplete));
    }

    #[test]
    fn segment_names_parse() {
        assert_eq!(segment_file_name(1), "journal-00000001.seg");
        assert_eq!(parse_segment_file_name("journal-00000001.seg"), Some(1));
        assert_eq!(
            parse_segment_file_name("journal-1234567890.seg"),
            Some(1_234_567_890)
        );
        assert_eq!(parse_segment_file_name("journal-1.seg"), None);
        assert_eq!(parse_segment_file_name("journal-00000001.seg.tmp"), None);
    }
}
