//! Ids, dense indexes and the reasons a campaign is left out of an auction.

use crate::protocol::ErrorCode;

/// Microseconds since the Unix epoch, UTC: the engine's only notion of time, always an input.
pub type TimeUs = u64;

/// A seller's id, as in the protocol's `seller_id`.
pub type SellerId = u64;
/// A buyer's id, as in the protocol's `buyer_id`.
pub type BuyerId = u64;
/// A campaign's id, as in the protocol's `campaign_id`.
pub type CampaignId = u64;

/// A campaign's position in one book snapshot's dense campaign table. Indexes are only
/// meaningful within the snapshot that assigned them; state that outlives a snapshot is keyed
/// by [`CampaignId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CampaignIx(pub u32);

/// A vertical's position in one book snapshot's dense vertical table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerticalIx(pub u16);

/// Why a campaign that the territory index returned was left out of an auction. Each maps to
/// a code of `protocol-spec/codes.md` (45x), which a lead's trace shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclusion {
    /// An exclude rule of the campaign's territory matches the lead.
    Territory,
    /// An attribute filter does not hold.
    Filter,
    /// The campaign's schedule is closed at the buyer's local time.
    Schedule,
    /// A lead or spend cap of the campaign is reached (committed + reserved).
    Cap,
    /// The buyer's daily or monthly budget is reached (committed + reserved).
    Budget,
    /// The seller's allow or block list keeps the buyer out.
    Blocked,
    /// The campaign or its buyer is paused.
    Paused,
    /// No price of the campaign reaches the floor.
    BelowFloor,
    /// The buyer bought this consumer within the campaign's look-back window.
    Duplicate,
    /// The live buyer declined.
    NoBid,
    /// The live buyer did not answer before the deadline.
    Timeout,
    /// The campaign does not buy the sale mode the seller asked for.
    SaleMode,
    /// The ping tree had its winners before it reached the campaign (it ranked below them, or
    /// sat in a later tier), so it was never evaluated.
    NotReached,
}

impl Exclusion {
    /// The reason code a trace shows for this exclusion.
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::Territory => ErrorCode::EXCLUDED_TERRITORY,
            Self::Filter => ErrorCode::EXCLUDED_FILTER,
            Self::Schedule => ErrorCode::EXCLUDED_SCHEDULE,
            Self::Cap => ErrorCode::EXCLUDED_CAP,
            Self::Budget => ErrorCode::EXCLUDED_BUDGET,
            Self::Blocked => ErrorCode::EXCLUDED_BLOCKED,
            Self::Paused => ErrorCode::EXCLUDED_PAUSED,
            Self::BelowFloor => ErrorCode::EXCLUDED_BELOW_FLOOR,
            Self::Duplicate => ErrorCode::EXCLUDED_DUPLICATE,
            Self::NoBid => ErrorCode::EXCLUDED_NO_BID,
            Self::Timeout => ErrorCode::EXCLUDED_TIMEOUT,
            Self::SaleMode => ErrorCode::EXCLUDED_SALE_MODE,
            Self::NotReached => ErrorCode::EXCLUDED_NOT_REACHED,
        }
    }
}
