//! The sans-IO wire codec of `protocol-spec/README.md` (version 1): frames, field encodings,
//! every message, error codes.
//!
//! # Code map
//!
//! - [`codes`]: `ErrorCode` and `TraceEventKind`, open-set `u16` newtypes with named constants.
//! - [`error`]: `DecodeError` (what was wrong with received bytes) and `EncodeError`.
//! - [`wire`]: the bounds-checked `Reader` and the `Writer` for the section 2 encodings.
//! - [`types`]: checked strings (`Symbol`, `PostalCode`), `Country`, `Currency`, `Hash32`, the
//!   small enums, `LeadView`, `Contact`, `Consent`.
//! - [`attributes`]: the attribute map, kept as its validated canonical encoding.
//! - [`book`]: the admin definitions: sellers, buyers, campaigns and their parts.
//! - [`message`]: `MessageType`, one struct per message, and `Message`.
//! - [`codec`]: `check_frame`, `decode_frame`, `encode_frame`.
//! - [`tokio_codec`]: the `tokio_util::codec` adapter (the only file that knows about tokio).
//!
//! # Invariants
//!
//! - No I/O, clock, thread or allocation-by-count: every length and count from the wire is
//!   checked against its named maximum before anything is read or reserved, and list capacity
//!   is bounded by the bytes actually present.
//! - Decoding never panics; the decode modules deny indexing, `unwrap`, `expect`, `panic!` and
//!   unchecked arithmetic.
//! - The first failing field decides the error, in the spec's order (prefix, version, type,
//!   flags, body fields in wire order, trailing bytes).
//! - The encoder refuses what a conforming decoder would refuse, so this crate never emits a
//!   frame a peer rejects; checked types (`Symbol`, `PostalCode`, `Country`, `Currency`,
//!   `Attributes`, `SaleModes`) cannot hold an invalid value at all.
//!
//! # JSON
//!
//! Every message and type derives serde, so frames can be rendered as JSON and rebuilt from it
//! (the spec's byte vectors, the journal dump). Field names are the spec's; `Message` is tagged
//! `"type": "PING"`; enums are snake_case names; unions with fields are externally tagged
//! (`{"offer": {...}}`); `Hash32` is lower-case hex; attributes are an object of
//! `{kind: value}` objects in key order. Deserializing validates through the checked types.

pub mod attributes;
pub mod book;
pub mod codec;
pub mod codes;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod tokio_codec;
pub mod types;
pub mod wire;

#[cfg(test)]
pub(crate) mod arbitrary;
#[cfg(test)]
mod tests;

pub use attributes::{Attribute, AttributeValue, Attributes, AttributesBuilder, AttributesIter};
pub use book::{
    Buyer, Campaign, CampaignRole, Caps, DeliveryMode, Effect, Filter, FilterCondition, Floor,
    Pricing, PutMode, RequiredAttribute, SaleModes, Seller, Status, StatusTarget, Strategy,
    TerritoryArea, TerritoryRule, Tier, TraceKey, Window,
};
pub use codec::{
    Frame, Header, LOGIN_VERSION, check_frame, decode_frame, decode_header, default_version,
    encode_frame, encode_frame_with, encode_frame_with_version, is_login,
};
pub use codes::{CodeGroup, ErrorCode, TraceEventKind};
pub use error::{DecodeError, EncodeError};
pub use message::{
    AdminOk, AuctionLost, AuctionWon, Bid, BuyerPut, BuyerRemove, CampaignPut, CampaignRemove,
    Counter, DeliveryAck, DirectPost, Error, Goodbye, GoodbyeAck, Heartbeat, HeartbeatAck, Latency,
    LeadDelivery, Login, LoginAccepted, LoginRejected, Message, MessageType, NoBid, Ping,
    PingOffer, PingOutcome, PingResult, Post, PostOutcome, PostResult, SellerPut, SellerRemove,
    SetStatus, Stats, StatsRequest, Trace, TraceEvent, TraceRequest, VerticalPut, VerticalRemove,
};
pub use tokio_codec::{CodecError, RawFrame, WireCodec};
pub use types::{
    AttributeKind, Consent, Contact, Country, Currency, DeliveryOutcome, Hash32, LeadView, Money,
    PingSaleMode, PostalCode, Receipt, Role, SaleMode, Symbol, TimestampUs,
};
