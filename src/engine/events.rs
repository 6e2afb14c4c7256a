//! Every change of the engine's state, as a value. [`super::machine::Engine::apply`] is the only
//! code that mutates state, and it reads nothing but the event and the state: replaying the
//! same events rebuilds the same state. The journal records exactly these.
//!
//! Events carry decisions, not the inputs to decisions: an auction's result names its winners
//! and their prices, so replay never re-runs selection, reads a clock or draws a random number.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::auction::{Award, Candidate};
use super::book::AdminChange;
use super::types::{BuyerId, CampaignId, Exclusion, SellerId, TimeUs};
use crate::protocol::{
    Consent, Contact, ErrorCode, Hash32, LeadView, Money, PingSaleMode, SaleMode,
};

/// The exchange's id for a ping; the auction of a ping has the same id.
pub type PingId = u64;
/// The exchange's id for a posted lead.
pub type LeadId = u64;

/// A campaign left out of an auction, and why: what a lead's trace lists. Recorded as the
/// two-element array `[campaign, reason]`: a large book leaves hundreds out of one auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    into = "(CampaignId, ExclusionCode)",
    from = "(CampaignId, ExclusionCode)"
)]
pub struct Excluded {
    pub campaign: CampaignId,
    pub reason: ExclusionCode,
}

impl From<Excluded> for (CampaignId, ExclusionCode) {
    fn from(excluded: Excluded) -> Self {
        (excluded.campaign, excluded.reason)
    }
}

impl From<(CampaignId, ExclusionCode)> for Excluded {
    fn from((campaign, reason): (CampaignId, ExclusionCode)) -> Self {
        Self { campaign, reason }
    }
}

/// A [`Candidate`] as the journal records it: the array `[campaign, buyer, tier, weight,
/// exclusive_price, shared_price, adjust_bps, answered_at, last_selected]` (prices `null` when
/// the campaign has none for that sale mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRecord(
    pub CampaignId,
    pub BuyerId,
    pub u8,
    pub u16,
    pub Option<Money>,
    pub Option<Money>,
    pub i16,
    pub TimeUs,
    pub u64,
);

impl From<Candidate> for CandidateRecord {
    fn from(c: Candidate) -> Self {
        Self(
            c.campaign,
            c.buyer,
            c.tier,
            c.weight,
            c.exclusive_price,
            c.shared_price,
            c.adjust_bps,
            c.answered_at,
            c.last_selected,
        )
    }
}

impl From<CandidateRecord> for Candidate {
    fn from(r: CandidateRecord) -> Self {
        Self {
            campaign: r.0,
            buyer: r.1,
            tier: r.2,
            weight: r.3,
            exclusive_price: r.4,
            shared_price: r.5,
            adjust_bps: r.6,
            answered_at: r.7,
            last_selected: r.8,
        }
    }
}

/// [`Exclusion`] as its `u16` code, so that events stay readable to an independent reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionCode(pub u16);

impl From<Exclusion> for ExclusionCode {
    fn from(exclusion: Exclusion) -> Self {
        Self(exclusion.code().0)
    }
}

/// A live campaign asked for a bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferRecord {
    pub campaign: CampaignId,
    pub buyer: BuyerId,
    pub sale_mode: SaleMode,
    pub price_floor: Money,
}

/// How an auction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Winners were found; each holds a reservation of a cap unit and its price until the
    /// seller posts or the offer expires.
    Offer {
        sale_mode: SaleMode,
        winners: Vec<Award>,
        /// The ranked rest, then the fallback campaigns: whom the cascade asks next.
        runners_up: Vec<Award>,
        /// The seller's payout for each winner, in `winners`' order.
        payouts: Vec<Money>,
        expires_at: TimeUs,
        /// The ping tree stopped at its winners, so `runners_up` is empty: a cascade that needs
        /// a runner-up ranks them first ([`Event::RunnersUpRanked`]).
        #[serde(default, skip_serializing_if = "is_false")]
        runners_up_later: bool,
    },
    /// No buyer: the reason code the seller gets.
    NoSale { reason: u16 },
}

/// Every change of the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Admin changes were applied, in order, as one step; the book is now at `version`. A
    /// batch (loading a whole book) compiles the book once, not once per change.
    BookChanged {
        at: TimeUs,
        version: u64,
        changes: Vec<AdminChange>,
    },
    /// A ping failed pre-ping; no buyer saw it.
    PingRejected {
        at: TimeUs,
        seller: SellerId,
        client_token: u64,
        reason: u16,
    },
    /// A ping passed pre-ping and its auction opened: fixed prices are known, live campaigns
    /// were asked for bids until `bid_deadline`.
    PingOpened {
        at: TimeUs,
        ping_id: PingId,
        seller: SellerId,
        client_token: u64,
        /// Shared with the auction that applying this event opens (serialized as the view
        /// itself).
        lead: Arc<LeadView<'static>>,
        phone_hash: Option<Hash32>,
        email_hash: Option<Hash32>,
        sale_mode: PingSaleMode,
        shared_buyers_max: u8,
        floor: Money,
        bid_deadline: TimeUs,
        /// Campaigns with a price already (fixed price).
        candidates: Vec<Candidate>,
        /// Live campaigns asked for a bid.
        offers: Vec<OfferRecord>,
        excluded: Vec<Excluded>,
        /// The ping came as a `DIRECT_POST`: the contact record follows at once.
        direct: bool,
        /// How many campaigns the territory matched that the ping tree never evaluated, because
        /// it had its winners first (`EXCLUDED_NOT_REACHED`); they are in neither `candidates`
        /// nor `excluded`.
        #[serde(default, skip_serializing_if = "is_zero")]
        not_reached: u32,
    },
    /// A live campaign answered an offer in time: a bid, or none with a reason.
    BidReceived {
        at: TimeUs,
        ping_id: PingId,
        campaign: CampaignId,
        price: Option<Money>,
        reason: u16,
    },
    /// The auction ended.
    AuctionResolved {
        at: TimeUs,
        ping_id: PingId,
        resolution: Resolution,
        /// Campaigns left out at resolution (late caps, no answer, below floor).
        excluded: Vec<Excluded>,
    },
    /// The offer expired before the seller posted: reservations are released.
    PingExpired { at: TimeUs, ping_id: PingId },
    /// A cascade needed a runner-up of an auction whose ping tree stopped at its winners
    /// (`runners_up_later`): every matched campaign but those that held the lead was evaluated
    /// now and ranked for the sale mode sold, primaries first, then fallbacks.
    RunnersUpRanked {
        at: TimeUs,
        ping_id: PingId,
        runners_up: Vec<Award>,
        /// The campaigns left out, with why.
        excluded: Vec<Excluded>,
    },
    /// The seller posted the contact record; the lead exists.
    Posted {
        at: TimeUs,
        ping_id: PingId,
        lead_id: LeadId,
        contact: Contact<'static>,
        consent: Consent<'static>,
    },
    /// A runner-up or fallback takes a winner's place and reserves its cap unit and price.
    CascadeReserved {
        at: TimeUs,
        ping_id: PingId,
        award: Award,
        payout: Money,
    },
    /// A runner-up was passed over by the cascade.
    CascadeSkipped {
        at: TimeUs,
        ping_id: PingId,
        campaign: CampaignId,
        reason: ExclusionCode,
    },
    /// The lead, contact record included, is handed to a buyer under its next sequence number.
    /// The journal makes this durable before the bytes leave the process.
    Delivered {
        at: TimeUs,
        ping_id: PingId,
        lead_id: LeadId,
        campaign: CampaignId,
        buyer: BuyerId,
        delivery_seq: u64,
        /// When a live buyer must have answered; `None` for stored deliveries, which are final.
        ack_deadline: Option<TimeUs>,
    },
    /// The buyer took the lead: its reservation is committed and the sale is in the ledger.
    SaleCommitted {
        at: TimeUs,
        ping_id: PingId,
        lead_id: LeadId,
        campaign: CampaignId,
        buyer: BuyerId,
        seller: SellerId,
        receipt_id: u64,
        price: Money,
        payout: Money,
    },
    /// A winner did not take the lead (rejected, too slow, already had the consumer): its
    /// reservation is released.
    SaleFailed {
        at: TimeUs,
        ping_id: PingId,
        campaign: CampaignId,
        reason: u16,
    },
    /// Every slot of the lead is settled; the seller has its answer.
    LeadSettled {
        at: TimeUs,
        ping_id: PingId,
        sold: bool,
        reason: u16,
    },
}

impl Event {
    /// When the event happened, by the clock the engine was given.
    pub fn at(&self) -> TimeUs {
        match self {
            Self::BookChanged { at, .. }
            | Self::PingRejected { at, .. }
            | Self::PingOpened { at, .. }
            | Self::BidReceived { at, .. }
            | Self::AuctionResolved { at, .. }
            | Self::PingExpired { at, .. }
            | Self::RunnersUpRanked { at, .. }
            | Self::Posted { at, .. }
            | Self::CascadeReserved { at, .. }
            | Self::CascadeSkipped { at, .. }
            | Self::Delivered { at, .. }
            | Self::SaleCommitted { at, .. }
            | Self::SaleFailed { at, .. }
            | Self::LeadSettled { at, .. } => *at,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The code of a reason, for events that name one.
pub(crate) fn code(code: ErrorCode) -> u16 {
    code.0
}
