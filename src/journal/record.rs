//! What the journal needs from a payload: serde for the bytes, a record type and a timestamp
//! for the record header. The engine's [`Event`] is the payload the daemon journals; the
//! journal itself is generic, so the event's fields can change without touching it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::events::Event;

/// A value the journal can record: serialized as JSON on the writer thread, read back with
/// serde on recovery.
pub trait JournalRecord: Serialize + DeserializeOwned + Send + 'static {
    /// The schema version written in each record header; a reader refuses newer ones.
    const SCHEMA_VERSION: u16;

    /// The record type written in the header, so that a reader can filter without decoding.
    fn record_type(&self) -> u16;

    /// Microseconds since the Unix epoch: the record header's timestamp, and what segments roll
    /// over at UTC midnight by.
    fn timestamp_us(&self) -> u64;
}

/// The record types of engine events, as `protocol-spec/journal.md` lists them.
pub mod event_type {
    pub const BOOK_CHANGED: u16 = 1;
    pub const PING_REJECTED: u16 = 2;
    pub const PING_OPENED: u16 = 3;
    pub const BID_RECEIVED: u16 = 4;
    pub const AUCTION_RESOLVED: u16 = 5;
    pub const PING_EXPIRED: u16 = 6;
    pub const POSTED: u16 = 7;
    pub const CASCADE_RESERVED: u16 = 8;
    pub const CASCADE_SKIPPED: u16 = 9;
    pub const DELIVERED: u16 = 10;
    pub const SALE_COMMITTED: u16 = 11;
    pub const SALE_FAILED: u16 = 12;
    pub const LEAD_SETTLED: u16 = 13;
    pub const RUNNERS_UP_RANKED: u16 = 14;

    /// The `event` tag of each record type in the JSON payload.
    pub fn name(record_type: u16) -> Option<&'static str> {
        Some(match record_type {
            BOOK_CHANGED => "book_changed",
            PING_REJECTED => "ping_rejected",
            PING_OPENED => "ping_opened",
            BID_RECEIVED => "bid_received",
            AUCTION_RESOLVED => "auction_resolved",
            PING_EXPIRED => "ping_expired",
            POSTED => "posted",
            CASCADE_RESERVED => "cascade_reserved",
            CASCADE_SKIPPED => "cascade_skipped",
            DELIVERED => "delivered",
            SALE_COMMITTED => "sale_committed",
            SALE_FAILED => "sale_failed",
            LEAD_SETTLED => "lead_settled",
            RUNNERS_UP_RANKED => "runners_up_ranked",
            _ => return None,
        })
    }
}

impl JournalRecord for Event {
    /// Version 1: the JSON form of `Event` as of this format's first release.
    const SCHEMA_VERSION: u16 = 1;

    fn record_type(&self) -> u16 {
        use event_type::*;
        match self {
            Self::BookChanged { .. } => BOOK_CHANGED,
            Self::PingRejected { .. } => PING_REJECTED,
            Self::PingOpened { .. } => PING_OPENED,
            Self::BidReceived { .. } => BID_RECEIVED,
            Self::AuctionResolved { .. } => AUCTION_RESOLVED,
            Self::PingExpired { .. } => PING_EXPIRED,
            Self::Posted { .. } => POSTED,
            Self::CascadeReserved { .. } => CASCADE_RESERVED,
            Self::CascadeSkipped { .. } => CASCADE_SKIPPED,
            Self::Delivered { .. } => DELIVERED,
            Self::SaleCommitted { .. } => SALE_COMMITTED,
            Self::SaleFailed { .. } => SALE_FAILED,
            Self::LeadSettled { .. } => LEAD_SETTLED,
            Self::RunnersUpRanked { .. } => RUNNERS_UP_RANKED,
        }
    }

    fn timestamp_us(&self) -> u64 {
        self.at()
    }
}
