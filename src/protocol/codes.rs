//! Error and reason codes (`protocol-spec/codes.md`) and trace event kinds, as open-set newtypes.
//!
//! Both are open sets on the wire (README section 2): a receiver must accept a number it does not
//! know, so they are `u16` newtypes with named constants, not closed Rust enums. An unknown code
//! is still classified by its hundreds group.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt;

use serde::{Deserialize, Serialize};

/// A reason or error code from `codes.md`. Unknown numbers are valid values: see [`group`](Self::group).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

/// The hundreds group of a code (README section 8), which tells a receiver what to do with a
/// code it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeGroup {
    /// Code 0: "none", where a field allows it.
    None,
    /// 1xx: the frame or a field is malformed.
    Protocol,
    /// 2xx: login, heartbeat, shutdown.
    Session,
    /// 3xx: the lead was rejected before any buyer saw it.
    PrePing,
    /// 4xx: the auction found no buyer.
    NoSale,
    /// 5xx: post.
    Post,
    /// 6xx: buyer answers and notices.
    Buyer,
    /// 7xx: admin.
    Admin,
    /// 9xx: overload or internal fault.
    Server,
    /// 1..=99, 8xx and 1000 and above: no group is defined for these numbers.
    Unassigned,
}

/// Defines the associated constants and the name table from one list, so the two cannot drift.
macro_rules! codes {
    ($type:ident { $($(#[$doc:meta])* $name:ident = $value:literal,)* }) => {
        impl $type {
            $($(#[$doc])* pub const $name: Self = Self($value);)*

            /// The name `codes.md` gives this number, or `None` for a number this build does not know.
            pub const fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes!(ErrorCode {
    /// "none", where a field allows it (e.g. `DELIVERY_ACK.reason` when accepted).
    NONE = 0,
    /// `frame_length` above the frame limit. Fatal.
    FRAME_TOO_LARGE = 100,
    /// `frame_length` below 12, the header's size. Fatal.
    FRAME_TOO_SHORT = 101,
    /// The header's message type is not defined in this version.
    UNKNOWN_MESSAGE_TYPE = 102,
    /// The header's version is not one the receiver speaks, or not the session's.
    UNSUPPORTED_VERSION = 103,
    /// A flag bit is set that this version does not define.
    BAD_FLAGS = 104,
    /// A field runs past the end of the frame.
    TRUNCATED = 105,
    /// Bytes remain after the message's last field.
    TRAILING_BYTES = 106,
    /// A string is not valid UTF-8.
    INVALID_UTF8 = 107,
    /// A string's length is above its field's maximum.
    STRING_TOO_LONG = 108,
    /// An enum field holds a value this version does not define.
    UNKNOWN_ENUM_VALUE = 109,
    /// A list's count is above its field's maximum.
    LIST_TOO_LONG = 110,
    /// A value outside its field's domain.
    INVALID_FIELD = 111,
    /// Two attributes share a key.
    DUPLICATE_ATTRIBUTE = 112,
    /// A money value above `MONEY_MAX`.
    MONEY_OUT_OF_RANGE = 113,
    /// Attribute keys are not in ascending byte order.
    ATTRIBUTES_UNSORTED = 114,
    /// The session already has `in_flight_max` unanswered requests.
    TOO_MANY_IN_FLIGHT = 115,
    /// A frame other than `LOGIN` arrived before login. Fatal.
    NOT_LOGGED_IN = 116,
    /// The session's role may not send this message.
    ROLE_FORBIDDEN = 117,
    /// A response that answers no outstanding request, or a message not valid in this state.
    UNEXPECTED_MESSAGE = 119,
    /// Unknown principal, wrong secret or wrong role.
    BAD_CREDENTIALS = 200,
    /// The seller, buyer or admin is paused.
    PRINCIPAL_PAUSED = 201,
    /// No protocol version in both sides' ranges.
    NO_COMMON_VERSION = 203,
    /// No `LOGIN` within the login timeout.
    LOGIN_TIMEOUT = 204,
    /// The server is at its connection limit.
    TOO_MANY_CONNECTIONS = 205,
    /// A second `LOGIN` on a logged-in session.
    ALREADY_LOGGED_IN = 206,
    /// The server is stopping; reconnect later.
    SERVER_SHUTTING_DOWN = 207,
    /// Nothing was received for `HEARTBEAT_MISSES_MAX` intervals.
    HEARTBEAT_TIMEOUT = 208,
    /// The peer did not read its frames and its send queue filled up.
    SLOW_CONSUMER = 209,
    /// The same buyer logged in on another connection.
    SESSION_REPLACED = 210,
    /// The exchange has no such vertical.
    UNKNOWN_VERTICAL = 300,
    /// The postal code is not a known code of that country.
    UNKNOWN_POSTAL_CODE = 301,
    /// The vertical requires an attribute the lead lacks.
    MISSING_REQUIRED_ATTRIBUTE = 302,
    /// A required attribute has the wrong kind.
    ATTRIBUTE_KIND_MISMATCH = 303,
    /// The same consumer or lead was pinged within the look-back window.
    DUPLICATE_LEAD = 304,
    /// The seller may not sell this vertical.
    VERTICAL_NOT_ALLOWED = 305,
    /// The seller is paused.
    SELLER_PAUSED = 306,
    /// The ping's `timeout_ms` is below what the exchange needs to answer.
    DEADLINE_TOO_SHORT = 307,
    /// An attribute's key names contact data.
    PII_IN_PING = 309,
    /// No active campaign buys this vertical in this territory with these attributes.
    NO_MATCHING_CAMPAIGN = 400,
    /// Campaigns matched, but no price reached the floor.
    NO_BID_AT_FLOOR = 401,
    /// Every matching campaign is at a lead or spend cap.
    CAPS_REACHED = 402,
    /// Every matching buyer is at its budget.
    BUDGETS_EXHAUSTED = 403,
    /// Every matching campaign is closed at this hour.
    OUTSIDE_SCHEDULE = 404,
    /// Live buyers were asked, none answered before the deadline.
    NO_ANSWER_IN_TIME = 405,
    /// Unsold after the ping tree, runners-up and fallbacks.
    HELD_BACK = 406,
    /// An exclude rule of the campaign's territory matches the lead (trace).
    EXCLUDED_TERRITORY = 450,
    /// An attribute filter of the campaign does not hold (trace).
    EXCLUDED_FILTER = 451,
    /// The campaign is closed at the buyer's local time (trace).
    EXCLUDED_SCHEDULE = 452,
    /// A lead or spend cap of the campaign is reached (trace).
    EXCLUDED_CAP = 453,
    /// The buyer's budget is reached (trace).
    EXCLUDED_BUDGET = 454,
    /// The seller's allow or block list keeps the buyer out (trace).
    EXCLUDED_BLOCKED = 455,
    /// The campaign or its buyer is paused (trace).
    EXCLUDED_PAUSED = 456,
    /// No price of the campaign reaches the floor (trace).
    EXCLUDED_BELOW_FLOOR = 457,
    /// The buyer had this consumer within its look-back, or holds this lead already (trace).
    EXCLUDED_DUPLICATE = 458,
    /// The live buyer declined (trace).
    EXCLUDED_NO_BID = 459,
    /// The live buyer did not answer in time (trace).
    EXCLUDED_TIMEOUT = 460,
    /// The campaign does not buy the sale mode asked for (trace).
    EXCLUDED_SALE_MODE = 461,
    /// The ping tree found its winners before it reached the campaign, which ranked below
    /// them; it was not evaluated (trace).
    EXCLUDED_NOT_REACHED = 462,
    /// No ping with that id for this seller.
    UNKNOWN_PING = 500,
    /// The offer expired before the post arrived.
    PING_EXPIRED = 501,
    /// That ping was posted already.
    ALREADY_POSTED = 502,
    /// The contact record is unusable.
    INVALID_CONTACT = 503,
    /// No consent certificate or consent time.
    MISSING_CONSENT = 504,
    /// Every buyer in line rejected the lead or did not answer.
    CASCADE_EXHAUSTED = 505,
    /// The buyer does not want this lead (`NO_BID`).
    NOT_INTERESTED = 600,
    /// The buyer cannot take more leads now (`NO_BID`).
    OVER_CAPACITY = 601,
    /// The buyer's own hours are closed (`NO_BID`).
    OUTSIDE_HOURS = 602,
    /// The exchange answered for a live buyer that has no session: the offer was not sent
    /// (recorded as the campaign's `NO_BID`).
    BUYER_NOT_CONNECTED = 603,
    /// The exchange answered for a live buyer whose recent answers took longer than the
    /// offer's time: the offer was not sent (recorded as the campaign's `NO_BID`).
    BUYER_TOO_SLOW = 604,
    /// Another bid won (`AUCTION_LOST`).
    OUTBID = 610,
    /// The bid arrived after `bid_within_ms` (`AUCTION_LOST`).
    BID_TOO_LATE = 611,
    /// The bid was below the floor or outside the campaign's bid range (`AUCTION_LOST`).
    BID_OUT_OF_RANGE = 612,
    /// The seller did not post the lead in time (`AUCTION_LOST`).
    LEAD_NOT_POSTED = 613,
    /// The campaign or buyer hit a cap or budget before the post (`AUCTION_LOST`).
    CAP_REACHED_AT_POST = 614,
    /// The buyer already has this consumer (`DELIVERY_ACK`).
    REJECT_DUPLICATE = 620,
    /// The contact data does not work (`DELIVERY_ACK`).
    REJECT_INVALID_CONTACT = 621,
    /// The consumer is outside the buyer's area (`DELIVERY_ACK`).
    REJECT_OUT_OF_AREA = 622,
    /// Any other reason (`DELIVERY_ACK`).
    REJECT_OTHER = 623,
    /// The buyer did not answer the delivery in time (`TRACE`).
    ACCEPT_TIMEOUT = 624,
    /// No such vertical, seller, buyer or campaign.
    NOT_FOUND = 700,
    /// Create for an id that exists.
    ALREADY_EXISTS = 701,
    /// The definition breaks a rule; the message says which.
    INVALID_DEFINITION = 702,
    /// The thing is still referenced.
    IN_USE = 703,
    /// Not an IANA time zone name the exchange knows.
    UNKNOWN_TIME_ZONE = 704,
    /// A radius rule's center is not a postal code with known coordinates.
    UNKNOWN_RADIUS_CENTER = 705,
    /// A fault in the exchange; the request was not processed.
    INTERNAL_ERROR = 900,
    /// The exchange is shedding load; retry with backoff.
    OVERLOADED = 901,
    /// The journal cannot record; the exchange accepts no new work.
    JOURNAL_UNAVAILABLE = 902,
});

impl ErrorCode {
    /// The hundreds group, which decides how a receiver treats a code it does not know.
    pub const fn group(&self) -> CodeGroup {
        match self.0 {
            0 => CodeGroup::None,
            100..=199 => CodeGroup::Protocol,
            200..=299 => CodeGroup::Session,
            300..=399 => CodeGroup::PrePing,
            400..=499 => CodeGroup::NoSale,
            500..=599 => CodeGroup::Post,
            600..=699 => CodeGroup::Buyer,
            700..=799 => CodeGroup::Admin,
            900..=999 => CodeGroup::Server,
            _ => CodeGroup::Unassigned,
        }
    }

    /// Whether the connection is closed after an `ERROR` with this code: the framing faults
    /// (100, 101), after which the next frame cannot be found, and `NOT_LOGGED_IN` (116).
    pub const fn is_fatal(&self) -> bool {
        matches!(self.0, 100 | 101 | 116)
    }
}

impl fmt::Display for ErrorCode {
    /// `TRUNCATED (105)`, or `code 1234` for a number this build does not know.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "code {}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ErrorCode({} {name})", self.0),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(value: u16) -> Self {
        Self(value)
    }
}

/// The `kind` of a `TRACE` event (`codes.md`, "Trace event kinds"). An open set like the codes:
/// a later daemon may report kinds this build does not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceEventKind(pub u16);

codes!(TraceEventKind {
    /// The seller's ping arrived (`party_id`: seller).
    PINGED = 1,
    /// Rejected before any buyer saw it (`code`).
    PRE_PING_REJECTED = 2,
    /// Offered to a campaign (`party_id`: campaign, `amount`: floor).
    OFFERED = 3,
    /// A campaign bid (`amount`).
    BID = 4,
    /// A campaign declined (`code`).
    NO_BID = 5,
    /// A campaign won (`amount`: its price).
    WINNER_CHOSEN = 6,
    /// The auction found no buyer (`code`).
    NO_SALE = 7,
    /// A cap unit and the price were reserved for a campaign.
    RESERVED = 8,
    /// The seller posted the contact record.
    POSTED = 9,
    /// The lead was handed to a buyer (`party_id`: campaign).
    DELIVERED = 10,
    /// The buyer accepted the delivery.
    ACCEPTED = 11,
    /// The buyer rejected the delivery (`code`).
    REJECTED = 12,
    /// A reservation was released (`code`: why).
    RELEASED = 13,
    /// A reservation became a sale (`amount`).
    COMMITTED = 14,
    /// The sale is final (`amount`: the seller's payout).
    SOLD = 15,
    /// A campaign was left out of the auction (`party_id`: campaign, `code`: 45x).
    EXCLUDED = 16,
});

impl fmt::Display for TraceEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "kind {}", self.0),
        }
    }
}

impl fmt::Debug for TraceEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "TraceEventKind({} {name})", self.0),
            None => write!(f, "TraceEventKind({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_groups_and_fatality() {
        assert_eq!(ErrorCode::FRAME_TOO_LARGE.name(), Some("FRAME_TOO_LARGE"));
        assert_eq!(ErrorCode(105).to_string(), "TRUNCATED (105)");
        assert_eq!(ErrorCode(118).name(), None);
        assert_eq!(ErrorCode(118).group(), CodeGroup::Protocol);
        assert_eq!(ErrorCode(950).group(), CodeGroup::Server);
        assert_eq!(ErrorCode(850).group(), CodeGroup::Unassigned);
        assert_eq!(ErrorCode(0).group(), CodeGroup::None);
        let fatal: Vec<u16> = (0..=1000).filter(|&c| ErrorCode(c).is_fatal()).collect();
        assert_eq!(fatal, [100, 101, 116]);
        assert_eq!(TraceEventKind::SOLD.name(), Some("SOLD"));
        assert_eq!(TraceEventKind(99).to_string(), "kind 99");
    }
}
