//! The engine state machine: pings, bids, posts, delivery answers and timeouts in; answers,
//! offers, notices and deliveries out; every change of state through [`Engine::apply`].
//!
//! The caller (the daemon's engine thread, a test, a benchmark) drives it:
//! `handle_*(now, ...)` for each input, [`Engine::poll_timeout`] and [`Engine::handle_timeout`]
//! for deadlines, [`Engine::poll_output`] for what to send and [`Engine::poll_event`] for what
//! to journal. Outputs that hand contact data to a buyer come after the event that records
//! the handoff, so a caller that journals every event it has polled before it sends an output
//! keeps invariant 4 (the record is durable before the contact leaves the process).

use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::sync::{Arc, Weak};

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use super::auction::{
    Award, Candidate, Outcome, Selection, SelectionRequest, Selector, weighted_draw,
};
use super::availability::NOT_RANKED;
use super::book::{AdminChange, AdminError, Book, BookDefs, CompiledCampaign, CompiledSeller};
use super::caps::{CapReservation, CapUsage};
use super::chunked_queue::ChunkedQueue;
use super::clock::{LocalTime, ZoneClock};
use super::dedupe::{ContactHistory, PingTokens};
use super::events::{Event, Excluded, LeadId, OfferRecord, PingId, Resolution, code};
use super::filters::LeadAttributes;
use super::geo::ZipTable;
use super::growing_map::GrowingMap;
use super::preping::{check_consent, check_contact, check_view, contact_hashes};
use super::territory::TerritoryMatches;
use super::types::{BuyerId, CampaignId, CampaignIx, Exclusion, SellerId, TimeUs, VerticalIx};
use super::usage::{CampaignRef, Usage};
use crate::limits::{
    AUCTION_RUNNERS_UP_MAX, SHARED_BUYERS_MAX, TRACE_EVENTS_MAX, TRACE_EXCLUSIONS_LISTED_MAX,
};
use crate::protocol::{
    AuctionLost, AuctionWon, CampaignRole, Consent, Contact, DeliveryOutcome, ErrorCode, Hash32,
    LeadDelivery, LeadView, Money, Ping, PingOffer, PingOutcome, PingResult, PingSaleMode,
    PostOutcome, PostResult, Pricing, Receipt, SaleMode, Strategy, Trace, TraceEvent,
    TraceEventKind, TraceKey,
};

mod snapshot;

pub use snapshot::{ENGINE_SNAPSHOT_SCHEMA, EngineImage, EngineSnapshotError};

/// Microseconds in a millisecond.
const US_PER_MS: u64 = 1_000;

/// The engine's settings. Every field has a default that suits a real exchange.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Seeds the weighted strategy; with the auction's id it makes every draw reproducible.
    pub seed: u64,
    /// How long a seller has to post after its `PING_RESULT`.
    pub post_window_ms: u32,
    /// What the exchange keeps for itself out of the seller's deadline: bids are taken until
    /// the deadline less this margin, so the answer still arrives in time.
    pub deadline_margin_ms: u32,
    /// The shortest `timeout_ms` a ping may carry: less leaves no time to ask anyone.
    pub ping_timeout_min_ms: u32,
    /// Evaluate every matched campaign of every auction instead of walking the ping tree only
    /// as far as its winners: each trace then gives every campaign's own reason (never
    /// `EXCLUDED_NOT_REACHED`) and runners-up are ranked when the auction resolves, at a cost
    /// linear in the matched campaigns. The sale is the same either way.
    pub evaluate_every_campaign: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            seed: 0x5eed_8033_1045,
            post_window_ms: crate::limits::POST_WINDOW_MS,
            deadline_margin_ms: crate::limits::DEADLINE_MARGIN_MS,
            ping_timeout_min_ms: crate::limits::PING_TIMEOUT_MIN_MS,
            evaluate_every_campaign: false,
        }
    }
}

/// The caller's handle on a request the engine answers later (a seller's `PING` or `POST`).
/// Opaque to the engine; never journaled, since a request does not outlive its connection.
pub type RequestTag = u64;

/// What the engine asks its caller to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer a seller's `PING`.
    PingAnswer {
        request: RequestTag,
        seller: SellerId,
        result: PingResult<'static>,
    },
    /// Ask a live buyer for a bid.
    Offer {
        buyer: BuyerId,
        offer: PingOffer<'static>,
    },
    /// Tell a live buyer it won.
    Won { buyer: BuyerId, notice: AuctionWon },
    /// Tell a live buyer it did not win, or lost the lead after winning.
    Lost { buyer: BuyerId, notice: AuctionLost },
    /// Hand a lead to the buyer that won it. The `Delivered` event precedes this output.
    Deliver {
        buyer: BuyerId,
        delivery: LeadDelivery<'static>,
    },
    /// Answer a seller's `POST` or `DIRECT_POST`.
    PostAnswer {
        request: RequestTag,
        seller: SellerId,
        result: PostResult<'static>,
    },
}

/// A winner's hold on a lead: its award and the reservations it made on its campaign's caps
/// and its buyer's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    award: Award,
    payout: Money,
    cap: CapReservation,
    budget: CapReservation,
}

/// Where one winner's slot of a posted lead stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SlotState {
    /// Delivered to a live buyer; its answer is due by the deadline.
    Awaiting { delivery_seq: u64, deadline: TimeUs },
    /// Sold.
    Sold { receipt_id: u64 },
    /// The slot's winner did not take it and the cascade found nobody.
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    held: Option<Held>,
    state: SlotState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Live campaigns are bidding until the deadline.
    Bidding,
    /// The seller has a price; winners hold reservations until it posts or the offer expires.
    Offered {
        sale_mode: SaleMode,
        held: Vec<Held>,
        expires_at: TimeUs,
    },
    /// Posted: slots are being delivered and answered.
    Posted {
        lead_id: LeadId,
        sale_mode: SaleMode,
        slots: Vec<Slot>,
    },
    /// Nothing more will happen to this auction.
    Closed,
}

/// The auctions in memory, by ping: millions at full load (the post window and the retention
/// time). A [`GrowingMap`], so that no ping waits while the whole map is rehashed as it grows
/// (tens of milliseconds at a million auctions), and its values boxed, so that the entries it
/// moves are pointers, not whole auctions.
type AuctionMap = GrowingMap<PingId, Box<Auction>, FxBuildHasher>;

/// One ping's auction, from pre-ping to settlement.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Auction {
    seller: SellerId,
    /// The book version the auction started with. Not serialized: a snapshot names the version
    /// beside the auction, and loading it puts that version's compiled book back.
    #[serde(skip, default = "snapshot::book_to_be_restored")]
    book: Arc<Book>,
    /// The lead's anonymized view, shared with the event that opened the auction.
    lead: Arc<LeadView<'static>>,
    hashes: Vec<Hash32>,
    sale_mode: PingSaleMode,
    shared_buyers_max: u8,
    floor: Money,
    bid_deadline: TimeUs,
    /// The priced campaigns, while live campaigns are bidding (fixed prices, then bids as they
    /// come); emptied at resolution, whose event records what came of them.
    candidates: Vec<Candidate>,
    /// Live campaigns asked and not answered yet.
    awaiting: Vec<OfferRecord>,
    /// Every live campaign that bid, for win and loss notices.
    bidders: Vec<(CampaignId, BuyerId)>,
    /// Every (buyer, delivery sequence) this lead was delivered under.
    delivered: Vec<(BuyerId, u64)>,
    /// What happened to the lead, oldest first, for its trace.
    history: Vec<Step>,
    lead_id: LeadId,
    runners_up: VecDeque<Award>,
    /// The ping tree stopped at the winners: `runners_up` are ranked when a cascade first
    /// needs one ([`Event::RunnersUpRanked`]).
    #[serde(default)]
    runners_up_later: bool,
    /// The campaigns that held this lead: the winners, then each one the cascade reserved.
    #[serde(default)]
    awarded: Vec<CampaignId>,
    /// Campaigns left out while bidding (when the auction opened, and refused bids), for a
    /// no-sale's reason; emptied at resolution. The trace keeps every exclusion in `history`.
    excluded: Vec<Excluded>,
    /// Boxed: only a posted auction has it, and inline it would be more than half of every
    /// auction kept in memory (800 bytes an auction instead of 328).
    contact: Option<Box<(Contact<'static>, Consent<'static>)>>,
    direct: bool,
    phase: Phase,
}

/// The lead an auction is deciding on, as the eligibility checks need it.
#[derive(Clone, Copy)]
struct LeadInHand<'a> {
    seller: &'a CompiledSeller,
    /// The sale modes the seller takes.
    sale_mode: PingSaleMode,
    /// The seller's floor for the lead's vertical.
    floor: Money,
    attributes: &'a LeadAttributes<'a>,
    hashes: &'a [Hash32],
    /// Some buyer bought this consumer within the longest look-back kept: only then can a
    /// campaign's look-back exclude it.
    bought_before: bool,
    now: TimeUs,
}

/// One entry of a lead's history: what its trace shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    at: TimeUs,
    kind: TraceEventKind,
    party: u64,
    amount: Money,
    code: u16,
}

impl Step {
    fn new(at: TimeUs, kind: TraceEventKind, party: u64, amount: Money, code: u16) -> Self {
        Self {
            at,
            kind,
            party,
            amount,
            code,
        }
    }
}

/// The `PING` requests waiting for one auction's answer: the ping's own, then its retries in
/// the order they came (none, most often: no allocation then).
#[derive(Debug)]
struct WaitingPings {
    first: RequestTag,
    retries: Vec<RequestTag>,
}

impl WaitingPings {
    fn new(first: RequestTag) -> Self {
        Self {
            first,
            retries: Vec::new(),
        }
    }
}

/// Requests the caller is waiting on, by ping: not state (they die with their connections),
/// so they live beside the state and are never journaled.
#[derive(Debug, Default)]
struct Pending {
    ping_answers: FxHashMap<PingId, WaitingPings>,
    post_answers: FxHashMap<PingId, RequestTag>,
    /// A contact record waiting for its `Posted` event: a `DIRECT_POST`'s until its auction
    /// has winners.
    contacts: FxHashMap<PingId, (Contact<'static>, Consent<'static>)>,
}

/// Running totals of the ledger, from the `SaleCommitted` events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    pub sales: u64,
    pub charged: u128,
    pub paid_out: u128,
}

/// The auction engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// The definitions `book` was compiled from (shared with snapshots being written).
    defs: Arc<BookDefs>,
    book: Arc<Book>,
    /// The definitions of older book versions that auctions in memory still hold, so that a
    /// snapshot can name them; an entry goes when its book's last auction is forgotten.
    retired_defs: Vec<(Weak<Book>, Arc<BookDefs>)>,
    /// A cached local clock per book zone (a cache only: rebuilt with the book).
    clocks: Vec<ZoneClock>,
    /// Cap counters per campaign, budget counters per buyer, and when each campaign last won
    /// (a stamp that increases by one per award, for round robin).
    usage: Usage,
    selection_stamp: u64,
    next_ping_id: PingId,
    next_lead_id: LeadId,
    next_receipt_id: u64,
    delivery_seq: FxHashMap<BuyerId, u64>,
    /// The auctions in memory, by ping. See [`AuctionMap`].
    auctions: AuctionMap,
    /// Deadlines by time: bid deadlines, offer expiries, delivery answers. An index over the
    /// auctions' phases, not state of its own: an entry whose phase has moved on is pruned
    /// when it comes due.
    timers: BTreeSet<(TimeUs, PingId)>,
    /// A delivery's (buyer, sequence) → its ping, to route `DELIVERY_ACK`.
    deliveries: GrowingMap<(BuyerId, u64), PingId, FxBuildHasher>,
    /// A posted lead's id → its ping.
    lead_to_ping: GrowingMap<LeadId, PingId, FxBuildHasher>,
    /// Auctions that ended, oldest first, with when: forgotten `AUCTION_RETENTION_MS` later.
    /// Up to `AUCTIONS_CLOSED_MAX` of them: chunked, so that no push copies the whole queue.
    closed: ChunkedQueue<(TimeUs, PingId)>,
    tokens: PingTokens,
    /// Retries without a token: (seller, fingerprint of lead and consumer) → ping.
    fingerprints: PingTokens,
    contacts: ContactHistory,
    ledger: LedgerTotals,
    pending: Pending,
    outputs: VecDeque<Output>,
    events: VecDeque<Event>,
    /// The book `handle_admin_batch` compiled and its definitions, waiting for its event's
    /// `apply` (a cache).
    compiled: Option<(Book, BookDefs)>,
    /// Reused buffers of the auction path.
    matches: TerritoryMatches,
    selector: Selector,
    /// The last local time computed per book zone, with its instant: an auction asks for the
    /// same zone's time once per campaign, and the answer only depends on the instant.
    zone_times: Vec<Option<(TimeUs, LocalTime)>>,
    /// Per distinct filter of the current book: `stamp << 1 | holds` for the auction whose
    /// `filter_stamp` it was decided in; another stamp means not decided yet (a cache).
    filter_answers: Vec<u64>,
    /// Increases by one per auction opened, so that no answer of an earlier lead is read.
    filter_stamp: u64,
    /// Resolution's candidates with the prices that still fit, primaries and fallbacks.
    primaries: Vec<Candidate>,
    fallbacks: Vec<Candidate>,
    walk: WalkScratch,
    /// The trace steps of the event being applied, and the per-reason counts of the
    /// exclusions past those listed one by one (a cache: emptied for each event).
    history_steps: Vec<Step>,
    exclusion_counts: Vec<(u16, u64)>,
    /// The fingerprint `open` computed for the ping it is opening, so that applying the
    /// opening does not hash the lead again (a cache: replay computes it).
    opening_fingerprint: Option<(PingId, Option<u64>)>,
}

/// How much one more lead of a campaign may cost: the headroom of its caps and of its buyer's
/// budget at one instant (see [`CapCounters::headroom`]), so that every price the auction
/// asks about is a comparison.
#[derive(Debug, Clone, Copy)]
struct Room {
    campaign: Option<Money>,
    /// `None` for a buyer missing from the book.
    budget: Option<Option<Money>>,
}

impl Room {
    /// Whether one more lead at `price` fits the campaign's caps, then its buyer's budget.
    fn fits(&self, price: Money) -> Result<(), Exclusion> {
        if self.campaign.is_none_or(|room| price > room) {
            return Err(Exclusion::Cap);
        }
        match self.budget {
            None => Err(Exclusion::Paused),
            Some(budget) if budget.is_some_and(|room| price <= room) => Ok(()),
            Some(_) => Err(Exclusion::Budget),
        }
    }
}

/// What deciding an auction needs besides its candidates.
struct Decision<'a> {
    book: &'a Book,
    seller: SellerId,
    vertical: Option<VerticalIx>,
    request: SelectionRequest,
    /// Exclusions recorded before resolution (when the auction opened, refused bids): with
    /// the resolution's own, they give a no-sale its reason.
    earlier: &'a [Excluded],
    /// The ping tree's walk stopped at the winners: rank no runners-up now (a cascade ranks
    /// them when it needs one).
    winners_only: bool,
}

/// What evaluating an auction's matched campaigns found.
#[derive(Debug, Default)]
struct Priced {
    /// Campaigns with a price (fixed), as `PingOpened` records them.
    candidates: Vec<Candidate>,
    /// Live campaigns to ask for a bid.
    offers: Vec<OfferRecord>,
    excluded: Vec<Excluded>,
    /// Campaigns none of whose prices fit their caps or budget.
    late_excluded: Vec<Excluded>,
    /// The candidates with the prices that fit, primaries and fallbacks.
    primaries: Vec<Candidate>,
    fallbacks: Vec<Candidate>,
}

impl Priced {
    fn clear(&mut self) {
        self.candidates.clear();
        self.offers.clear();
        self.excluded.clear();
        self.late_excluded.clear();
        self.primaries.clear();
        self.fallbacks.clear();
    }
}

/// What the ping tree's walk learned of one campaign: the prices it can buy at (those that
/// fit its room; none when it was excluded) and its buyer, under the walk's stamp.
#[derive(Debug, Clone, Copy, Default)]
struct WalkMemo {
    stamp: u64,
    exclusive_price: Option<Money>,
    shared_price: Option<Money>,
    buyer: BuyerId,
}

impl WalkMemo {
    /// Whether the campaign can be sold this mode at the floor.
    fn buys(&self, mode: SaleMode, floor: Money) -> bool {
        match mode {
            SaleMode::Exclusive => self.exclusive_price,
            SaleMode::Shared => self.shared_price,
        }
        .is_some_and(|price| price >= floor)
    }
}

/// Which order the ping tree's walk takes one tier in, and how many winners it looks for.
#[derive(Debug, Clone, Copy)]
struct TierOrder {
    tier: u8,
    strategy: Strategy,
    mode: SaleMode,
    /// 1 for an exclusive sale, `shared_buyers_max` for a shared one.
    winners_max: usize,
}

/// The winners one tier's walk has found for one sale mode, in order.
struct TierWinners {
    mode: SaleMode,
    /// 1 for an exclusive sale, `shared_buyers_max` for a shared one.
    max: usize,
    buyers: [BuyerId; SHARED_BUYERS_MAX as usize],
    count: usize,
}

impl TierWinners {
    fn new(mode: SaleMode, max: usize) -> Self {
        Self {
            mode,
            max,
            buyers: [0; SHARED_BUYERS_MAX as usize],
            count: 0,
        }
    }

    /// Takes the next campaign in the tier's order that can buy, of `buyer`: a winner while
    /// places are left and its buyer has none, else the runner-up that prices the winners
    /// (second price). Whether the walk goes on: not after that runner-up. A shared sale
    /// passes over a winning buyer's other campaigns.
    fn take(&mut self, buyer: BuyerId) -> bool {
        let buyer_won = self.buyers[..self.count].contains(&buyer);
        if self.count < self.max && !buyer_won {
            self.buyers[self.count] = buyer;
            self.count += 1;
            true
        } else {
            self.mode == SaleMode::Shared && buyer_won
        }
    }

    fn found(&self) -> bool {
        self.count > 0
    }
}

/// The ping tree walk's reused buffers (a cache: nothing in them outlives one auction).
#[derive(Debug, Default)]
struct WalkScratch {
    /// Increases by one per walk, so that no memo of an earlier walk is read.
    stamp: u64,
    /// How many campaigns this walk has evaluated.
    evaluated: u32,
    /// By `CampaignIx` of the current book.
    memo: Vec<WalkMemo>,
    /// The matched campaigns the book's masks let through: (word, bits).
    words: Vec<(u32, u64)>,
    /// About how many campaigns the book's masks kept out of recent walks (the next one sizes
    /// its list of exclusions by it).
    book_exclusions_hint: usize,
    /// Those of one tier and group.
    members: Vec<(u32, u64)>,
    /// One tier's campaigns for one sale mode, best first, each as one integer (see
    /// [`Engine::walk_tier`]).
    ranked: BinaryHeap<u128>,
    /// One tier's campaigns for one sale mode as a bitset over their price ranks
    /// ([`super::availability::Availability::price_rank`]); all zeros between tiers.
    by_rank: Vec<u64>,
}

/// Room a lead's history keeps after its opening's steps, for what a sale usually adds: the
/// resolution (winner chosen and reserved, a few late exclusions), the post, the delivery and
/// the commit. A longer history grows.
const HISTORY_STEPS_RESERVED_AFTER_OPENING: usize = 12;

/// Room the walk makes up front for the campaigns it evaluates (its exclusions and candidates
/// move into the event, so each auction allocates them anew): most walks evaluate fewer, and a
/// longer one grows the list.
const WALK_EXCLUSIONS_RESERVED: usize = 16;

/// Calls `f` with each campaign of bitset words `(word index, bits)`, in order: what
/// [`super::territory::CampaignsInWords`] yields, as a loop the compiler inlines whole into the
/// walk (the iterator cost the walk about 1.3k instructions an auction more).
#[inline(always)]
fn for_each_campaign(words: &[(u32, u64)], mut f: impl FnMut(CampaignIx)) {
    for &(word, bits) in words {
        let mut rest = bits;
        while rest != 0 {
            f(CampaignIx(word * 64 + rest.trailing_zeros()));
            rest &= rest - 1;
        }
    }
}

/// The first of the book's checks a matched campaign fails, from its bit in the masks of the
/// active campaigns and of those the seller admits (else it is the sale mode).
fn book_exclusion(bit: u64, active: u64, admits: u64) -> Exclusion {
    if active & bit == 0 {
        Exclusion::Paused
    } else if admits & bit == 0 {
        Exclusion::Blocked
    } else {
        Exclusion::SaleMode
    }
}

fn ms_until(now: TimeUs, deadline: TimeUs) -> u32 {
    u32::try_from(deadline.saturating_sub(now) / US_PER_MS).unwrap_or(u32::MAX)
}

/// A campaign with its prices, as selection ranks it.
fn priced(
    campaign: &CompiledCampaign,
    exclusive_price: Option<Money>,
    shared_price: Option<Money>,
    answered_at: TimeUs,
    last_selected: u64,
) -> Candidate {
    Candidate {
        campaign: campaign.id,
        buyer: campaign.buyer,
        tier: campaign.tier,
        weight: campaign.weight,
        exclusive_price,
        shared_price,
        adjust_bps: match campaign.pricing {
            Pricing::LiveBid { adjust_bps, .. } => adjust_bps,
            Pricing::Fixed { .. } => 0,
        },
        answered_at,
        last_selected,
    }
}

fn allows(request: PingSaleMode, mode: SaleMode) -> bool {
    matches!(
        (request, mode),
        (PingSaleMode::Either, _)
            | (PingSaleMode::Exclusive, SaleMode::Exclusive)
            | (PingSaleMode::Shared, SaleMode::Shared)
    )
}

impl Engine {
    /// An engine with an empty book.
    pub fn new(config: EngineConfig) -> Self {
        let seed = config.seed;
        Self {
            config,
            defs: Arc::new(BookDefs::default()),
            book: Arc::new(Book::empty()),
            retired_defs: Vec::new(),
            clocks: Vec::new(),
            usage: Usage::default(),
            selection_stamp: 0,
            next_ping_id: 0,
            next_lead_id: 0,
            next_receipt_id: 0,
            delivery_seq: FxHashMap::default(),
            auctions: GrowingMap::with_hasher(FxBuildHasher),
            timers: BTreeSet::new(),
            deliveries: GrowingMap::with_hasher(FxBuildHasher),
            closed: ChunkedQueue::new(),
            lead_to_ping: GrowingMap::with_hasher(FxBuildHasher),
            // Sellers choose tokens and contact hashes: keyed hashing keeps one seller from
            // crafting keys that collide. The key comes from the seed, so replay agrees.
            tokens: PingTokens::new(seed.rotate_left(17) ^ 0x70_6b_74_6f_6b_65_6e),
            fingerprints: PingTokens::new(seed.rotate_left(23) ^ 0x66_69_6e_67_65_72),
            contacts: ContactHistory::new(seed.rotate_left(31) ^ 0x63_6f_6e_74_61_63_74),
            ledger: LedgerTotals::default(),
            pending: Pending::default(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            compiled: None,
            matches: TerritoryMatches::default(),
            selector: Selector::default(),
            zone_times: Vec::new(),
            filter_answers: Vec::new(),
            filter_stamp: 0,
            primaries: Vec::new(),
            fallbacks: Vec::new(),
            walk: WalkScratch::default(),
            history_steps: Vec::new(),
            exclusion_counts: Vec::new(),
            opening_fingerprint: None,
        }
    }

    /// The current book snapshot.
    pub fn book(&self) -> &Arc<Book> {
        &self.book
    }

    /// The admin definitions of the current book.
    pub fn definitions(&self) -> &BookDefs {
        &self.defs
    }

    pub fn ledger(&self) -> &LedgerTotals {
        &self.ledger
    }

    /// A campaign's cap counters as of `now` in its buyer's time zone (committed and reserved
    /// per period), for stats, traces and tests. `None` for an unknown campaign.
    pub fn campaign_usage(&mut self, campaign: CampaignId, now: TimeUs) -> Option<CapUsage> {
        let book = Arc::clone(&self.book);
        let compiled = book.campaign_by_id(campaign)?;
        let local = self.local_time(compiled.zone, now);
        Some(
            self.usage
                .caps(&book, &book, CampaignRef::Compiled(compiled))
                .map(|counters| counters.usage(&local))
                .unwrap_or_default(),
        )
    }

    /// A buyer's budget counters as of `now` in its time zone. `None` for an unknown buyer.
    pub fn budget_usage(&mut self, buyer: BuyerId, now: TimeUs) -> Option<CapUsage> {
        let book = Arc::clone(&self.book);
        let zone = book.buyer(buyer)?.zone;
        let local = self.local_time(zone, now);
        let ids = CampaignRef::Ids { campaign: 0, buyer };
        Some(
            self.usage
                .budget(&book, &book, ids)
                .map(|counters| counters.usage(&local))
                .unwrap_or_default(),
        )
    }

    /// Requests waiting for their answer: pings whose bids are out, posts whose delivery is
    /// out. They are not state (they die with their connections), so no snapshot keeps them.
    pub fn requests_waiting(&self) -> usize {
        self.pending.ping_answers.len() + self.pending.post_answers.len()
    }

    /// Auctions held in memory (in flight, or ended within `AUCTION_RETENTION_MS`).
    pub fn auctions_in_memory(&self) -> usize {
        self.auctions.len()
    }

    /// The next output to send, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next event to journal, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline the engine waits for, if any: call [`Engine::handle_timeout`]
    /// when the clock reaches it.
    pub fn poll_timeout(&self) -> Option<TimeUs> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Records an event, then applies it: the only way state changes.
    fn emit(&mut self, event: Event) {
        self.apply(&event);
        self.events.push_back(event);
    }

    fn local_time(&mut self, zone: u16, now: TimeUs) -> LocalTime {
        let zone = usize::from(zone);
        if let Some(Some((at, local))) = self.zone_times.get(zone) {
            if *at == now {
                return *local;
            }
        }
        let local = self.clocks[zone].local(now);
        if let Some(slot) = self.zone_times.get_mut(zone) {
            *slot = Some((now, local));
        }
        local
    }

    /// A digest of the whole state (not of caches or of requests waiting for answers), so
    /// that a test or a recovery can check that replaying the journal rebuilt the very state
    /// the engine had. Maps are hashed in key order, so the digest does not depend on the
    /// order in which a hash map happens to hold its entries.
    pub fn state_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};

        fn sorted<'a, K: Ord + Copy + 'a, V: 'a>(
            map: impl IntoIterator<Item = (&'a K, &'a V)>,
        ) -> Vec<(K, &'a V)> {
            let mut entries: Vec<(K, &V)> = map.into_iter().map(|(k, v)| (*k, v)).collect();
            entries.sort_unstable_by_key(|&(k, _)| k);
            entries
        }

        // SipHash with fixed keys: the same state gives the same digest in every process.
        let mut hasher = std::hash::DefaultHasher::new();
        let text = |value: &dyn std::fmt::Debug| format!("{value:?}");
        text(&self.defs).hash(&mut hasher);
        self.book.version.hash(&mut hasher);
        text(&self.usage.all_caps(&self.book)).hash(&mut hasher);
        text(&self.usage.all_budgets(&self.book)).hash(&mut hasher);
        self.usage.all_last_selected(&self.book).hash(&mut hasher);
        (
            self.selection_stamp,
            self.next_ping_id,
            self.next_lead_id,
            self.next_receipt_id,
        )
            .hash(&mut hasher);
        sorted(&self.delivery_seq).hash(&mut hasher);
        for (ping_id, auction) in sorted(self.auctions.iter()) {
            ping_id.hash(&mut hasher);
            auction.book.version.hash(&mut hasher);
            text(&(
                auction.seller,
                &auction.lead,
                &auction.hashes,
                auction.sale_mode,
                auction.shared_buyers_max,
                auction.floor,
                auction.bid_deadline,
            ))
            .hash(&mut hasher);
            text(&(
                &auction.candidates,
                &auction.awaiting,
                &auction.bidders,
                &auction.delivered,
                &auction.history,
                auction.lead_id,
                &auction.runners_up,
                &auction.excluded,
                &auction.contact,
                auction.direct,
                &auction.phase,
            ))
            .hash(&mut hasher);
            (auction.runners_up_later, &auction.awarded).hash(&mut hasher);
        }
        // `timers` is left out: it is an index over the auctions' deadlines, which are hashed
        // above; `handle_timeout` prunes entries that no longer match a phase.
        sorted(self.deliveries.iter()).hash(&mut hasher);
        sorted(self.lead_to_ping.iter()).hash(&mut hasher);
        // As a `VecDeque` hashes: its length, then its items in order.
        self.closed.len().hash(&mut hasher);
        self.closed
            .iter()
            .for_each(|closed| closed.hash(&mut hasher));
        self.tokens.digest_into(&mut hasher);
        self.fingerprints.digest_into(&mut hasher);
        self.contacts.digest_into(&mut hasher);
        text(&self.ledger).hash(&mut hasher);
        hasher.finish()
    }

    // -----------------------------------------------------------------------------------------
    // Admin

    /// Applies an admin change: the book is rebuilt and swapped in whole; auctions in flight
    /// keep the snapshot they started with. Returns the new book version.
    pub fn handle_admin(&mut self, now: TimeUs, change: AdminChange) -> Result<u64, AdminError> {
        self.handle_admin_batch(now, vec![change])
    }

    /// Applies several admin changes as one step: all of them or none (the first refusal is
    /// returned and nothing changes), with one compilation of the book. Loading a book of
    /// many campaigns goes through here; one change at a time would compile the book once per
    /// campaign.
    pub fn handle_admin_batch(
        &mut self,
        now: TimeUs,
        changes: Vec<AdminChange>,
    ) -> Result<u64, AdminError> {
        let mut defs = BookDefs::clone(&self.defs);
        for change in &changes {
            defs.apply(change)?;
        }
        let version = self.book.version + 1;
        // Compiled here to refuse a bad change before it is journaled, and kept so that
        // `apply` installs it instead of compiling the same definitions again.
        let book = Book::compile(&defs, version)?;
        self.compiled = Some((book, defs));
        self.emit(Event::BookChanged {
            at: now,
            version,
            changes,
        });
        Ok(version)
    }

    // -----------------------------------------------------------------------------------------
    // Seller: ping

    /// A seller's `PING`. The answer comes as [`Output::PingAnswer`] with `request`, at once
    /// when no live buyer must be asked, else when the bids are in or the deadline passes.
    pub fn handle_ping(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller: SellerId,
        ping: &Ping<'_>,
    ) {
        self.open(now, request, seller, ping, None);
    }

    /// A seller's `DIRECT_POST`: a ping whose contact record is posted as soon as the auction
    /// has winners. The answer comes as [`Output::PostAnswer`].
    pub fn handle_direct_post(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller: SellerId,
        ping: &Ping<'_>,
        contact: &Contact<'_>,
        consent: &Consent<'_>,
    ) {
        let reject = check_contact(contact)
            .and_then(|()| check_consent(consent, now))
            .err();
        if let Some(reason) = reject {
            self.outputs
                .push_back(refusal(request, seller, 0, reason, true));
            return;
        }
        self.open(
            now,
            request,
            seller,
            ping,
            Some((contact.clone().into_owned(), consent.clone().into_owned())),
        );
    }

    fn reject_ping(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller: SellerId,
        ping: &Ping<'_>,
        reason: ErrorCode,
        direct: bool,
    ) {
        self.emit(Event::PingRejected {
            at: now,
            seller,
            client_token: ping.client_token,
            reason: code(reason),
        });
        self.outputs
            .push_back(refusal(request, seller, 0, reason, direct));
    }

    fn open(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller_id: SellerId,
        ping: &Ping<'_>,
        direct: Option<(Contact<'static>, Consent<'static>)>,
    ) {
        let is_direct = direct.is_some();
        let book = Arc::clone(&self.book);

        // A retried ping gets the first one's answer, not a second auction.
        if ping.client_token != 0 {
            if let Some(ping_id) = self.tokens.lookup(seller_id, ping.client_token, now) {
                self.answer_retry(now, request, seller_id, ping_id, is_direct);
                return;
            }
        }
        // Without a token, the same seller sending the same lead of the same consumer is a
        // retry too (checked before the duplicate check, which would refuse it).
        let lead_fingerprint = fingerprint(&ping.lead, ping.phone_hash, ping.email_hash);
        if let Some(fingerprint) = lead_fingerprint {
            if let Some(ping_id) = self.fingerprints.lookup(seller_id, fingerprint, now) {
                self.answer_retry(now, request, seller_id, ping_id, is_direct);
                return;
            }
        }

        // Pre-ping: the seller, the vertical, the lead's format, duplicates.
        let Some(seller) = book.seller(seller_id) else {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::UNKNOWN_PING,
                is_direct,
            );
        };
        if !seller.active {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::SELLER_PAUSED,
                is_direct,
            );
        }
        let Some(vertical) = book.vertical_ix(ping.lead.vertical.as_str()) else {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::UNKNOWN_VERTICAL,
                is_direct,
            );
        };
        if !seller.sells(vertical) {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::VERTICAL_NOT_ALLOWED,
                is_direct,
            );
        }
        if ping.timeout_ms < self.config.ping_timeout_min_ms {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::DEADLINE_TOO_SHORT,
                is_direct,
            );
        }
        let zips = ZipTable::us();
        let postal = match check_view(&book.vertical(vertical).rules, &ping.lead, |zip| {
            zips.get(zip).is_some()
        }) {
            Ok(postal) => postal,
            Err(reason) => {
                return self.reject_ping(now, request, seller_id, ping, reason, is_direct);
            }
        };
        // The consumer's hashes, phone first, on the stack: at most two.
        let mut hash_slots = [Hash32([0; 32]); 2];
        let mut hash_count = 0;
        for hash in ping.phone_hash.iter().chain(&ping.email_hash) {
            hash_slots[hash_count] = *hash;
            hash_count += 1;
        }
        let hashes = &hash_slots[..hash_count];
        if self.contacts.seen_within_window(hashes, now) {
            return self.reject_ping(
                now,
                request,
                seller_id,
                ping,
                ErrorCode::DUPLICATE_LEAD,
                is_direct,
            );
        }

        // The campaigns whose territory matches: never a scan of the book.
        let mut matches = std::mem::take(&mut self.matches);
        book.territory
            .lookup(vertical, ping.lead.country, postal.as_str(), &mut matches);
        let floor = seller.floor(vertical);
        let bid_deadline = now
            + u64::from(
                ping.timeout_ms
                    .saturating_sub(self.config.deadline_margin_ms),
            ) * US_PER_MS;
        let ping_id = self.next_ping_id + 1;
        let selection = selection_request(
            self.config.seed,
            ping_id,
            ping.sale_mode,
            ping.shared_buyers_max,
            floor,
        );
        // The lead's attributes, decoded once for every candidate's filters, and a new stamp
        // for the answers of the book's distinct filters (0 is never a stamp, so the answers
        // a new book's filters start with are not read).
        let attributes = LeadAttributes::new(&ping.lead.attributes);
        self.filter_stamp += 1;
        if self.filter_answers.len() < book.predicate_count() {
            self.filter_answers.resize(book.predicate_count(), 0);
        }
        let lead = LeadInHand {
            seller,
            sale_mode: ping.sale_mode,
            floor,
            attributes: &attributes,
            hashes,
            bought_before: self.contacts.any_purchase(hashes),
            now,
        };
        // What resolution sees if no live campaign is asked, so that it resolves in this call
        // against the very state checked here: each fixed price that still fits, split into
        // primaries and fallbacks, and the campaigns none of whose prices fit.
        let mut priced = Priced {
            primaries: std::mem::take(&mut self.primaries),
            fallbacks: std::mem::take(&mut self.fallbacks),
            ..Priced::default()
        };
        priced.clear();
        // The ping tree's walk evaluates campaigns in rank order and stops at the winners; when
        // it cannot decide (a live campaign must be asked, or nobody buys), every matched
        // campaign is evaluated.
        let walked = if self.config.evaluate_every_campaign {
            None
        } else {
            self.walk_ping_tree(&book, vertical, &matches, &lead, &selection, &mut priced)
        };
        if walked.is_none() {
            priced.clear();
            self.evaluate_matched(&book, &matches, &lead, &mut priced);
        }
        self.matches = matches;
        let Priced {
            candidates,
            offers,
            excluded,
            late_excluded,
            primaries,
            fallbacks,
        } = priced;

        // With nobody to ask, the auction is decided now: before its opening is recorded,
        // which changes no cap, budget or round-robin stamp that the decision reads.
        let decided = offers.is_empty().then(|| {
            let decision = Decision {
                book: &book,
                seller: seller_id,
                vertical: Some(vertical),
                request: selection,
                earlier: &excluded,
                winners_only: walked.is_some(),
            };
            self.decide(now, &decision, &primaries, &fallbacks, late_excluded)
        });
        self.primaries = primaries;
        self.fallbacks = fallbacks;
        let offered = (!offers.is_empty()).then(|| offers.clone());
        self.opening_fingerprint = Some((ping_id, lead_fingerprint));
        self.emit(Event::PingOpened {
            at: now,
            ping_id,
            seller: seller_id,
            client_token: ping.client_token,
            lead: Arc::new(ping.lead.clone().into_owned()),
            phone_hash: ping.phone_hash,
            email_hash: ping.email_hash,
            sale_mode: ping.sale_mode,
            shared_buyers_max: ping.shared_buyers_max,
            floor,
            bid_deadline,
            candidates,
            offers,
            excluded,
            direct: is_direct,
            not_reached: walked.unwrap_or(0),
        });
        if let Some(contact) = direct {
            self.pending.contacts.insert(ping_id, contact);
            self.pending.post_answers.insert(ping_id, request);
        } else {
            self.pending
                .ping_answers
                .insert(ping_id, WaitingPings::new(request));
        }

        let Some(offers) = offered else {
            if let Some((resolution, excluded)) = decided {
                self.conclude(now, ping_id, resolution, excluded, is_direct);
            }
            return;
        };
        let bid_within_ms = ms_until(now, bid_deadline);
        let lead = ping.lead.clone().into_owned();
        for offer in offers {
            self.outputs.push_back(Output::Offer {
                buyer: offer.buyer,
                offer: PingOffer {
                    auction_id: ping_id,
                    campaign_id: offer.campaign,
                    lead: lead.clone(),
                    sale_mode: offer.sale_mode,
                    price_floor: offer.price_floor,
                    bid_within_ms,
                },
            });
        }
    }

    /// Evaluates every campaign the territory matched, in index order: each gets its
    /// price(s), its offer (a live campaign) or its exclusion.
    fn evaluate_matched(
        &mut self,
        book: &Book,
        matches: &TerritoryMatches,
        lead: &LeadInHand<'_>,
        out: &mut Priced,
    ) {
        // Sized once: every matched campaign lands in one of these.
        let included = matches.included_count();
        out.excluded.reserve(matches.excluded.len() + included);
        out.candidates.reserve(included);
        out.excluded
            .extend(matches.excluded.iter().map(|&ix| Excluded {
                campaign: book.campaign(ix).id,
                reason: Exclusion::Territory.into(),
            }));
        // The checks the book alone decides, 64 campaigns at a time: a campaign failing one is
        // excluded for the first it fails (paused, blocked, sale mode) without its definition
        // being read; the others go on to the checks that need the lead and the counters.
        let availability = &book.availability;
        let mut admitted = lead.seller.admitted();
        let takes_exclusive = allows(lead.sale_mode, SaleMode::Exclusive);
        let takes_shared = allows(lead.sale_mode, SaleMode::Shared);
        for &(word, bits) in &matches.included_words {
            let masks = availability.word_masks(word, takes_exclusive, takes_shared);
            let admits = admitted.word(word);
            let available = bits & masks.active & admits & masks.sells;
            let mut rest = bits;
            while rest != 0 {
                let bit = rest & rest.wrapping_neg();
                rest ^= bit;
                let ix = CampaignIx(word * 64 + bit.trailing_zeros());
                if available & bit == 0 {
                    let exclusion = book_exclusion(bit, masks.active, admits);
                    debug_assert_eq!(
                        Self::book_checks(book.campaign(ix), lead),
                        Err(exclusion),
                        "the masks agree with the definition"
                    );
                    out.excluded.push(Excluded {
                        campaign: availability.id(ix),
                        reason: exclusion.into(),
                    });
                    continue;
                }
                self.evaluate_one(book, book.campaign(ix), lead, out);
            }
        }
    }

    /// Evaluates one matched campaign that passed [`Self::book_checks`]: a fixed-price one
    /// becomes a candidate (and a primary or fallback with the prices that fit its room), a
    /// live one an offer, the others an exclusion.
    fn evaluate_one(
        &mut self,
        book: &Book,
        campaign: &CompiledCampaign,
        lead: &LeadInHand<'_>,
        out: &mut Priced,
    ) {
        debug_assert_eq!(Self::book_checks(campaign, lead), Ok(()));
        let floor = lead.floor;
        let room = match self.eligibility(book, campaign, lead) {
            Ok(room) => room,
            Err(exclusion) => {
                out.excluded.push(Excluded {
                    campaign: campaign.id,
                    reason: exclusion.into(),
                });
                return;
            }
        };
        let sale_mode = lead.sale_mode;
        match campaign.pricing {
            Pricing::Fixed { .. } => {
                let exclusive = campaign
                    .fixed_price(SaleMode::Exclusive)
                    .filter(|_| allows(sale_mode, SaleMode::Exclusive));
                let shared = campaign
                    .fixed_price(SaleMode::Shared)
                    .filter(|_| allows(sale_mode, SaleMode::Shared));
                let candidate = self.candidate(book, campaign, exclusive, shared, lead.now);
                out.candidates.push(candidate);
                if let Some(refused) = sort_priced(
                    campaign,
                    candidate,
                    &room,
                    &mut out.primaries,
                    &mut out.fallbacks,
                ) {
                    out.late_excluded.push(refused);
                }
            }
            Pricing::LiveBid {
                bid_min, bid_max, ..
            } => {
                if bid_max < floor {
                    out.excluded.push(Excluded {
                        campaign: campaign.id,
                        reason: Exclusion::BelowFloor.into(),
                    });
                    return;
                }
                // A live campaign is asked for one sale mode: exclusive when both the seller
                // and the campaign take it, else shared.
                let sale_mode = if allows(sale_mode, SaleMode::Exclusive)
                    && campaign.sale_modes.contains(SaleMode::Exclusive)
                {
                    SaleMode::Exclusive
                } else {
                    SaleMode::Shared
                };
                out.offers.push(OfferRecord {
                    campaign: campaign.id,
                    buyer: campaign.buyer,
                    sale_mode,
                    price_floor: bid_min.max(floor),
                });
            }
        }
    }

    /// The ping tree's walk (see `ARCHITECTURE.md`, "The ping tree's walk"): evaluates the
    /// matched campaigns in rank order, tier by tier, primaries before fallbacks, and stops
    /// once the deciding tier's winners and the runner-up that prices them are known. Returns
    /// how many matched campaigns it never evaluated, or `None` when it cannot decide alone: a
    /// live campaign must be asked for a bid, or no tier has a campaign that can buy (the
    /// caller then evaluates every matched campaign, so that a no-sale lists every reason).
    ///
    /// Why the result is the one evaluating everything would give: a tier passed over had no
    /// campaign that can buy at the floor (each was evaluated); in the deciding tier the
    /// walk takes each sale mode's campaigns in the strategy's order, so the candidates it
    /// hands selection hold that order's first entries up to the runner-up after the
    /// winners, and selection reads no further. That holds for weighted tiers too, since each
    /// campaign's draw is its own ([`weighted_draw`]).
    fn walk_ping_tree(
        &mut self,
        book: &Book,
        vertical: VerticalIx,
        matches: &TerritoryMatches,
        lead: &LeadInHand<'_>,
        request: &SelectionRequest,
        out: &mut Priced,
    ) -> Option<u32> {
        let availability = &book.availability;
        let mut admitted = lead.seller.admitted();
        let takes_exclusive = allows(lead.sale_mode, SaleMode::Exclusive);
        let takes_shared = allows(lead.sale_mode, SaleMode::Shared);
        let mut words = std::mem::take(&mut self.walk.words);
        words.clear();
        // The book's own exclusions are listed as evaluating everything lists them, in one pass
        // with the masks: they give them without reading a campaign. The list moves into the
        // event, so it is sized once where it can be: for the territory's vetoes, as many book
        // exclusions as the last walk had, and the evaluations' own.
        out.excluded.reserve(
            matches.excluded.len() + self.walk.book_exclusions_hint + WALK_EXCLUSIONS_RESERVED,
        );
        out.excluded
            .extend(matches.excluded.iter().map(|&ix| Excluded {
                campaign: availability.id(ix),
                reason: Exclusion::Territory.into(),
            }));
        // Three tight passes over the matched words rather than one that does everything: what
        // each word has available, then the exclusions of the words that keep some out, then
        // the available words alone.
        words.resize(matches.included_words.len(), (0, 0));
        let mut live = 0;
        for (slot, &(word, bits)) in words.iter_mut().zip(&matches.included_words) {
            let masks = availability.word_masks(word, takes_exclusive, takes_shared);
            let available = bits & masks.active & admitted.word(word) & masks.sells;
            live |= available & masks.live;
            *slot = (word, available);
        }
        if live != 0 {
            // A live campaign must be asked: the caller evaluates everything.
            self.walk.words = words;
            return None;
        }
        let mut admitted = lead.seller.admitted();
        for (&(word, available), &(_, bits)) in words.iter().zip(&matches.included_words) {
            let mut rest = bits & !available;
            if rest == 0 {
                continue;
            }
            let active = availability
                .word_masks(word, takes_exclusive, takes_shared)
                .active;
            let admits = admitted.word(word);
            while rest != 0 {
                let bit = rest & rest.wrapping_neg();
                rest ^= bit;
                let ix = CampaignIx(word * 64 + bit.trailing_zeros());
                out.excluded.push(Excluded {
                    campaign: availability.id(ix),
                    reason: book_exclusion(bit, active, admits).into(),
                });
            }
        }
        words.retain(|&(_, available)| available != 0);
        // The hint follows the largest recent count down slowly, so that a walk with more
        // exclusions than the last one rarely grows the list.
        let book_exclusions = out.excluded.len() - matches.excluded.len();
        self.walk.book_exclusions_hint =
            book_exclusions.max(self.walk.book_exclusions_hint * 7 / 8);
        out.candidates.reserve(WALK_EXCLUSIONS_RESERVED);

        self.walk.stamp += 1;
        if self.walk.memo.len() < availability.len() {
            self.walk
                .memo
                .resize(availability.len(), WalkMemo::default());
        }
        let mut members = std::mem::take(&mut self.walk.members);
        self.walk.evaluated = 0;
        let mut decided = false;
        // The vertical's runs come in the tree's order: primary tiers ascending, then fallback
        // tiers ascending. `words` is ascending too, so each run's words start at or after
        // where the last run's started.
        let mut from = 0;
        for run in availability.tier_runs(vertical) {
            let (first, last) = (run.start / 64, (run.end - 1) / 64);
            while words.get(from).is_some_and(|&(word, _)| word < first) {
                from += 1;
            }
            members.clear();
            for &(word, available) in words[from..].iter().take_while(|&&(word, _)| word <= last) {
                let mut bits = available;
                if word == first {
                    bits &= u64::MAX << (run.start % 64);
                }
                if word == last {
                    bits &= u64::MAX >> (63 - (run.end - 1) % 64);
                }
                if bits != 0 {
                    members.push((word, bits));
                }
            }
            if members.is_empty() {
                continue;
            }
            let strategy = book.vertical(vertical).strategy_of(run.tier);
            let mut found = false;
            for (mode, taken) in [
                (SaleMode::Exclusive, takes_exclusive),
                (SaleMode::Shared, takes_shared),
            ] {
                if taken {
                    let winners_max = match mode {
                        SaleMode::Exclusive => 1,
                        SaleMode::Shared => usize::from(request.shared_buyers_max),
                    };
                    let order = TierOrder {
                        tier: run.tier,
                        strategy,
                        mode,
                        winners_max,
                    };
                    found |= self.walk_tier(book, &members, order, lead, request, out);
                }
            }
            if found {
                decided = true;
                break;
            }
        }
        let not_reached = decided.then(|| {
            let available: u32 = words.iter().map(|&(_, bits)| bits.count_ones()).sum();
            available - self.walk.evaluated
        });
        self.walk.words = words;
        self.walk.members = members;
        not_reached
    }

    /// Walks one tier's campaigns for one sale mode in the strategy's order until
    /// `winners_max` winners of distinct buyers and the runner-up after them are found. With
    /// fixed prices, all answered at the ping's time, that order is price descending then
    /// campaign id, after least recently selected first for round robin; a weighted tier's is
    /// each campaign's own draw ([`weighted_draw`]), which does not depend on the others.
    /// Whether a winner was found.
    fn walk_tier(
        &mut self,
        book: &Book,
        members: &[(u32, u64)],
        order: TierOrder,
        lead: &LeadInHand<'_>,
        request: &SelectionRequest,
        out: &mut Priced,
    ) -> bool {
        let TierOrder {
            tier,
            strategy,
            mode,
            winners_max,
        } = order;
        let floor = request.floor;
        let availability = &book.availability;
        let mut winners = TierWinners::new(mode, winners_max);
        let by_price = !matches!(strategy, Strategy::RoundRobin | Strategy::Weighted);
        if by_price && mode == SaleMode::Exclusive {
            // Ordered by exclusive price alone: the tier's run is numbered in that order
            // (`TierRun`), so its campaigns are asked as they come. Every campaign after one
            // below the floor, or without a fixed exclusive price, is so too.
            let mut last_rank = None;
            'campaigns: for &(word, bits) in members {
                let mut rest = bits;
                while rest != 0 {
                    let ix = CampaignIx(word * 64 + rest.trailing_zeros());
                    rest &= rest - 1;
                    if availability.fixed_price(ix, mode).is_none_or(|p| p < floor) {
                        break 'campaigns;
                    }
                    debug_assert!(
                        last_rank < Some(availability.price_rank(ix, mode)),
                        "a run is in exclusive price order"
                    );
                    last_rank = Some(availability.price_rank(ix, mode));
                    let memo = self.walk_evaluate(book, ix, lead, out);
                    if memo.buys(mode, floor) && !winners.take(memo.buyer) {
                        break 'campaigns;
                    }
                }
            }
            return winners.found();
        }
        if by_price {
            // Ordered by shared price alone: set each campaign's rank in a bitset, then read
            // the ranks back in order. Every campaign after one below the floor is below it
            // too.
            let mut by_rank = std::mem::take(&mut self.walk.by_rank);
            let words = availability.len().div_ceil(64);
            if by_rank.len() < words {
                by_rank.resize(words, 0);
            }
            let (mut low, mut high) = (usize::MAX, 0);
            for_each_campaign(members, |ix| {
                let rank = availability.price_rank(ix, mode);
                if rank != NOT_RANKED {
                    let at = (rank / 64) as usize;
                    by_rank[at] |= 1 << (rank % 64);
                    low = low.min(at);
                    high = high.max(at);
                }
            });
            let mut done = false;
            // Empty when no member has a fixed price for the mode (`low` is then above `high`).
            let touched = by_rank.get_mut(low..=high).unwrap_or_default();
            for (word, at) in touched.iter_mut().zip(low..) {
                let mut rest = std::mem::take(word);
                while rest != 0 && !done {
                    #[allow(clippy::cast_possible_truncation)] // a rank, below 2^32
                    let rank = (at * 64) as u32 + rest.trailing_zeros();
                    rest &= rest - 1;
                    let ix = availability.by_rank(rank, mode);
                    if availability.fixed_price(ix, mode).is_none_or(|p| p < floor) {
                        done = true;
                        break;
                    }
                    let memo = self.walk_evaluate(book, ix, lead, out);
                    done = memo.buys(mode, floor) && !winners.take(memo.buyer);
                }
            }
            self.walk.by_rank = by_rank;
            return winners.found();
        }

        let mut ranked = std::mem::take(&mut self.walk.ranked).into_vec();
        ranked.clear();
        // Best first in a max-heap of one integer per campaign: the strategy's own key (least
        // recently selected for round robin, the lowest draw for weighted), then the book's
        // rank (price descending, then id; id alone for weighted), then the index.
        for_each_campaign(members, |ix| {
            let rank = availability.price_rank(ix, mode);
            if rank == NOT_RANKED {
                return;
            }
            let (first, then) = if strategy == Strategy::RoundRobin {
                debug_assert!(
                    std::ptr::eq(book, &*self.book),
                    "walks use the current book"
                );
                (u64::MAX - self.usage.last_selected_at(ix), rank)
            } else {
                if availability.fixed_price(ix, mode).is_none_or(|p| p < floor) {
                    return;
                }
                let id = availability.id(ix);
                let draw = weighted_draw(request.seed, tier, id, availability.weight(ix));
                (u64::MAX - draw, availability.id_rank(ix))
            };
            ranked.push(
                (u128::from(first) << 64) | (u128::from(u32::MAX - then) << 32) | u128::from(ix.0),
            );
        });
        let mut ranked = BinaryHeap::from(ranked);
        while let Some(key) = ranked.pop() {
            #[allow(clippy::cast_possible_truncation)] // the low 32 bits hold the index
            let ix = CampaignIx(key as u32);
            if availability.fixed_price(ix, mode).is_none_or(|p| p < floor) {
                continue;
            }
            let memo = self.walk_evaluate(book, ix, lead, out);
            if memo.buys(mode, floor) && !winners.take(memo.buyer) {
                break;
            }
        }
        self.walk.ranked = ranked;
        winners.found()
    }

    /// Evaluates a campaign once per walk ([`Self::evaluate_one`]), and what it can buy at.
    fn walk_evaluate(
        &mut self,
        book: &Book,
        ix: CampaignIx,
        lead: &LeadInHand<'_>,
        out: &mut Priced,
    ) -> WalkMemo {
        let stamp = self.walk.stamp;
        let memo = self.walk.memo[ix.0 as usize];
        if memo.stamp == stamp {
            return memo;
        }
        let campaign = book.campaign(ix);
        let (primaries, fallbacks) = (out.primaries.len(), out.fallbacks.len());
        self.evaluate_one(book, campaign, lead, out);
        self.walk.evaluated += 1;
        let kept = if out.primaries.len() > primaries {
            out.primaries.last()
        } else if out.fallbacks.len() > fallbacks {
            out.fallbacks.last()
        } else {
            None
        };
        let memo = WalkMemo {
            stamp,
            exclusive_price: kept.and_then(|c| c.exclusive_price),
            shared_price: kept.and_then(|c| c.shared_price),
            buyer: campaign.buyer,
        };
        self.walk.memo[ix.0 as usize] = memo;
        memo
    }

    /// The checks of a matched campaign that the book alone decides, in their order: status,
    /// the seller's lists, the sale mode. The auction reads them from the book's masks
    /// ([`super::availability`]); this is their definition, which debug builds check the
    /// masks against.
    fn book_checks(campaign: &CompiledCampaign, lead: &LeadInHand<'_>) -> Result<(), Exclusion> {
        if !campaign.active {
            return Err(Exclusion::Paused);
        }
        if !lead.seller.admits(campaign.buyer) {
            return Err(Exclusion::Blocked);
        }
        let sale_mode = lead.sale_mode;
        let sells_mode = (allows(sale_mode, SaleMode::Exclusive)
            && campaign.sale_modes.contains(SaleMode::Exclusive))
            || (allows(sale_mode, SaleMode::Shared)
                && campaign.sale_modes.contains(SaleMode::Shared));
        if !sells_mode {
            return Err(Exclusion::SaleMode);
        }
        Ok(())
    }

    /// Whether a campaign that passed [`Self::book_checks`] may take part, or why not (the
    /// checks that need the lead and the counters, in order: filters, schedule, caps and
    /// budget, look-back); if it may, what one more lead of it may cost.
    fn eligibility(
        &mut self,
        book: &Book,
        campaign: &CompiledCampaign,
        lead: &LeadInHand<'_>,
    ) -> Result<Room, Exclusion> {
        let LeadInHand {
            attributes,
            hashes,
            bought_before,
            now,
            ..
        } = *lead;
        let holds = self.filters_hold(book, campaign, attributes);
        debug_assert_eq!(holds, campaign.filters.matches_lead(attributes));
        if !holds {
            return Err(Exclusion::Filter);
        }
        let local = self.local_time(campaign.zone, now);
        if !campaign.schedule.is_open(&local) {
            return Err(Exclusion::Schedule);
        }
        let room = self.room(book, campaign, &local);
        room.fits(0)?;
        debug_assert!(
            bought_before
                || !self
                    .contacts
                    .bought_within(campaign.buyer, hashes, campaign.lookback_us, now)
        );
        if campaign.lookback_us != 0
            && bought_before
            && self
                .contacts
                .bought_within(campaign.buyer, hashes, campaign.lookback_us, now)
        {
            return Err(Exclusion::Duplicate);
        }
        Ok(room)
    }

    /// Whether every filter of a campaign of `book` holds for the lead of the current
    /// auction: each distinct filter of the book is decided once per auction, and
    /// remembered under the auction's stamp (see `filter_answers`).
    fn filters_hold(
        &mut self,
        book: &Book,
        campaign: &CompiledCampaign,
        attributes: &LeadAttributes<'_>,
    ) -> bool {
        let stamp = self.filter_stamp << 1;
        for &id in &campaign.filter_ids {
            let answer = &mut self.filter_answers[id as usize];
            let holds = if *answer & !1 == stamp {
                *answer & 1 == 1
            } else {
                let holds = book.predicate(id).holds_for(attributes);
                *answer = stamp | u64::from(holds);
                holds
            };
            if !holds {
                return false;
            }
        }
        true
    }

    /// The headroom of a campaign's caps and its buyer's budget at `local`.
    fn room(&mut self, book: &Book, campaign: &CompiledCampaign, local: &LocalTime) -> Room {
        let current: &Book = &self.book;
        let campaign_room = self.usage.campaign_headroom(current, book, campaign, local);
        // A compiled campaign's buyer is always in its book.
        let buyer = book.buyer_at(campaign.buyer_ix);
        let budget =
            Some(
                self.usage
                    .budget_headroom(current, book, campaign, &buyer.budget, local),
            );
        Room {
            campaign: campaign_room,
            budget,
        }
    }

    /// Whether one more lead at `price` fits the campaign's caps and its buyer's budget.
    fn room_for(
        &mut self,
        book: &Book,
        campaign: &CompiledCampaign,
        price: Money,
        local: &LocalTime,
    ) -> Result<(), Exclusion> {
        self.room(book, campaign, local).fits(price)
    }

    fn candidate(
        &self,
        book: &Book,
        campaign: &CompiledCampaign,
        exclusive_price: Option<Money>,
        shared_price: Option<Money>,
        answered_at: TimeUs,
    ) -> Candidate {
        // `book` is the auction's: an older version when a cascade ranks runners-up.
        let last_selected =
            self.usage
                .last_selected(&self.book, book, CampaignRef::Compiled(campaign));
        priced(
            campaign,
            exclusive_price,
            shared_price,
            answered_at,
            last_selected,
        )
    }

    fn answer_retry(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller: SellerId,
        ping_id: PingId,
        direct: bool,
    ) {
        let Some(auction) = self.auctions.get(&ping_id) else {
            self.outputs.push_back(refusal(
                request,
                seller,
                ping_id,
                ErrorCode::DUPLICATE_LEAD,
                direct,
            ));
            return;
        };
        match (&auction.phase, direct) {
            (Phase::Bidding, false) => {
                self.pending
                    .ping_answers
                    .entry(ping_id)
                    .and_modify(|waiting| waiting.retries.push(request))
                    .or_insert_with(|| WaitingPings::new(request));
            }
            (Phase::Offered { .. }, false) => {
                let result = self.offer_result(ping_id, now);
                self.outputs.push_back(Output::PingAnswer {
                    request,
                    seller,
                    result,
                });
            }
            // A retried DIRECT_POST still in flight takes the first one's place as the request
            // to answer; one that finished gets a duplicate answer.
            (Phase::Bidding | Phase::Offered { .. } | Phase::Posted { .. }, true) => {
                self.pending.post_answers.insert(ping_id, request);
            }
            _ => self.outputs.push_back(refusal(
                request,
                seller,
                ping_id,
                ErrorCode::DUPLICATE_LEAD,
                direct,
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Buyer: bids

    /// A live buyer's `BID` (or `NO_BID` with `price` None and a reason). Bids for auctions
    /// that are over, or from campaigns that were not asked, are answered with a loss notice.
    pub fn handle_bid(
        &mut self,
        now: TimeUs,
        buyer: BuyerId,
        ping_id: PingId,
        campaign: CampaignId,
        price: Option<Money>,
        reason: ErrorCode,
    ) {
        let asked = self.auctions.get(&ping_id).and_then(|auction| {
            (auction.phase == Phase::Bidding && now <= auction.bid_deadline)
                .then(|| {
                    auction
                        .awaiting
                        .iter()
                        .find(|offer| offer.campaign == campaign && offer.buyer == buyer)
                })
                .flatten()
                .copied()
        });
        let Some(offer) = asked else {
            if price.is_some() {
                self.outputs.push_back(Output::Lost {
                    buyer,
                    notice: AuctionLost {
                        auction_id: ping_id,
                        campaign_id: campaign,
                        reason: ErrorCode::BID_TOO_LATE,
                    },
                });
            }
            return;
        };
        let price = price.filter(|&price| {
            let in_range = self.auctions.get(&ping_id).is_some_and(|auction| {
                auction
                    .book
                    .campaign_by_id(campaign)
                    .is_some_and(|c| match c.pricing {
                        Pricing::LiveBid {
                            bid_min, bid_max, ..
                        } => (bid_min..=bid_max).contains(&price),
                        Pricing::Fixed { .. } => false,
                    })
            });
            in_range && price >= offer.price_floor
        });
        self.emit(Event::BidReceived {
            at: now,
            ping_id,
            campaign,
            price,
            reason: code(reason),
        });
        if self
            .auctions
            .get(&ping_id)
            .is_some_and(|auction| auction.awaiting.is_empty())
        {
            self.resolve(now, ping_id);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Resolution

    /// Ends the bidding of an auction that asked live campaigns: caps re-checked per price,
    /// selection, reservations, the seller's answer, notices.
    fn resolve(&mut self, now: TimeUs, ping_id: PingId) {
        let Some(auction) = self.auctions.get(&ping_id) else {
            return;
        };
        let book = Arc::clone(&auction.book);
        let mut excluded: Vec<Excluded> = auction
            .awaiting
            .iter()
            .map(|offer| Excluded {
                campaign: offer.campaign,
                reason: Exclusion::Timeout.into(),
            })
            .collect();
        // Caps may have filled since the auction opened: each price must still fit the
        // campaign's caps and its buyer's budget, or selection does not see it.
        let mut primaries = std::mem::take(&mut self.primaries);
        let mut fallbacks = std::mem::take(&mut self.fallbacks);
        primaries.clear();
        fallbacks.clear();
        let candidates = std::mem::take(&mut auction_mut(&mut self.auctions, ping_id).candidates);
        for &candidate in &candidates {
            let Some(campaign) = book.campaign_by_id(candidate.campaign) else {
                continue;
            };
            let local = self.local_time(campaign.zone, now);
            let room = self.room(&book, campaign, &local);
            if let Some(refused) =
                sort_priced(campaign, candidate, &room, &mut primaries, &mut fallbacks)
            {
                excluded.push(refused);
            }
        }
        let auction = auction_mut(&mut self.auctions, ping_id);
        auction.candidates = candidates;
        let earlier = std::mem::take(&mut auction.excluded);
        let decision = Decision {
            book: &book,
            seller: auction.seller,
            vertical: book.vertical_ix(auction.lead.vertical.as_str()),
            request: selection_request(
                self.config.seed,
                ping_id,
                auction.sale_mode,
                auction.shared_buyers_max,
                auction.floor,
            ),
            earlier: &earlier,
            winners_only: false,
        };
        let direct = auction.direct;
        let (resolution, excluded) = self.decide(now, &decision, &primaries, &fallbacks, excluded);
        auction_mut(&mut self.auctions, ping_id).excluded = earlier;
        self.primaries = primaries;
        self.fallbacks = fallbacks;
        self.conclude(now, ping_id, resolution, excluded, direct);
    }

    /// Selection over the priced candidates (primaries, then fallbacks behind them), and the
    /// resolution it gives. `excluded` holds the exclusions found at resolution so far; the
    /// ones selection adds follow them.
    fn decide(
        &mut self,
        now: TimeUs,
        decision: &Decision<'_>,
        primaries: &[Candidate],
        fallbacks: &[Candidate],
        mut excluded: Vec<Excluded>,
    ) -> (Resolution, Vec<Excluded>) {
        let book = decision.book;
        let strategy = |tier: u8| {
            decision
                .vertical
                .map_or(crate::protocol::Strategy::HighestBid, |ix| {
                    book.vertical(ix).strategy_of(tier)
                })
        };
        let request = &decision.request;
        let considered =
            |selection: &Selection, excluded: &mut Vec<Excluded>| {
                excluded.extend(selection.considered.iter().map(|&(campaign, exclusion)| {
                    Excluded {
                        campaign,
                        reason: exclusion.into(),
                    }
                }));
            };
        let runners_up_max = if decision.winners_only {
            0
        } else {
            AUCTION_RUNNERS_UP_MAX
        };
        let selection = self
            .selector
            .select_ranked(primaries, strategy, request, runners_up_max);
        considered(selection, &mut excluded);
        let primary_outcome = selection.outcome;
        let (mut winners, mut runners_up) = match primary_outcome {
            Outcome::Sale(_) => (selection.winners.clone(), selection.runners_up.clone()),
            Outcome::NoSale(_) => (Vec::new(), Vec::new()),
        };
        let fallback = self
            .selector
            .select_ranked(fallbacks, strategy, request, runners_up_max);
        considered(fallback, &mut excluded);
        let sale = match (primary_outcome, fallback.outcome) {
            (Outcome::Sale(sale_mode), fallback_outcome) => {
                // Fallbacks queue behind the ranked runners-up, for the cascade.
                if fallback_outcome == Outcome::Sale(sale_mode) {
                    runners_up.reserve(fallback.winners.len() + fallback.runners_up.len());
                    runners_up.extend_from_slice(&fallback.winners);
                    runners_up.extend_from_slice(&fallback.runners_up);
                }
                Some(sale_mode)
            }
            (_, Outcome::Sale(sale_mode)) => {
                winners.clone_from(&fallback.winners);
                runners_up.clone_from(&fallback.runners_up);
                Some(sale_mode)
            }
            _ => None,
        };
        let seller = book.seller(decision.seller);
        let resolution = match sale {
            Some(sale_mode) => Resolution::Offer {
                sale_mode,
                payouts: winners
                    .iter()
                    .map(|award| seller.map_or(0, |seller| seller.payout(award.price)))
                    .collect(),
                winners,
                runners_up,
                expires_at: now + u64::from(self.config.post_window_ms) * US_PER_MS,
                runners_up_later: decision.winners_only,
            },
            None => Resolution::NoSale {
                reason: no_sale_reason(decision.earlier, &excluded).0,
            },
        };
        (resolution, excluded)
    }

    /// Records a resolution, then tells the bidders and answers the seller (or, for a direct
    /// post, delivers).
    fn conclude(
        &mut self,
        now: TimeUs,
        ping_id: PingId,
        resolution: Resolution,
        excluded: Vec<Excluded>,
        direct: bool,
    ) {
        // The notices read only who bid, which the event does not change.
        self.notify_resolution(ping_id, &resolution);
        let refused = match resolution {
            Resolution::Offer { .. } => None,
            Resolution::NoSale { reason } => Some(reason),
        };
        self.emit(Event::AuctionResolved {
            at: now,
            ping_id,
            resolution,
            excluded,
        });
        match refused {
            None if direct => self.post_contact(now, ping_id),
            None => {
                let result = self.offer_result(ping_id, now);
                self.answer_ping(ping_id, result);
            }
            Some(reason) => {
                if direct {
                    self.answer_post(ping_id, unsold(ping_id, 0, ErrorCode(reason)));
                } else {
                    self.answer_ping(ping_id, no_sale(ping_id, ErrorCode(reason)));
                }
            }
        }
    }

    fn notify_resolution(&mut self, ping_id: PingId, resolution: &Resolution) {
        let Some(auction) = self.auctions.get(&ping_id) else {
            return;
        };
        // A bidder's price and sale mode if it won; a no-sale has no winners.
        let won = |campaign: CampaignId| match resolution {
            Resolution::Offer {
                winners, sale_mode, ..
            } => winners
                .iter()
                .find(|award| award.campaign == campaign)
                .map(|award| (award.price, *sale_mode)),
            Resolution::NoSale { .. } => None,
        };
        for &(campaign, buyer) in &auction.bidders {
            let notice = match won(campaign) {
                Some((price, sale_mode)) => Output::Won {
                    buyer,
                    notice: AuctionWon {
                        auction_id: ping_id,
                        campaign_id: campaign,
                        price,
                        sale_mode,
                    },
                },
                None => Output::Lost {
                    buyer,
                    notice: AuctionLost {
                        auction_id: ping_id,
                        campaign_id: campaign,
                        reason: ErrorCode::OUTBID,
                    },
                },
            };
            self.outputs.push_back(notice);
        }
    }

    fn offer_result(&self, ping_id: PingId, now: TimeUs) -> PingResult<'static> {
        match self.auctions.get(&ping_id).map(|auction| &auction.phase) {
            Some(Phase::Offered {
                sale_mode,
                held,
                expires_at,
            }) => PingResult {
                ping_id,
                outcome: PingOutcome::Offer {
                    sale_mode: *sale_mode,
                    payouts: held
                        .iter()
                        .map(|held| held.payout)
                        .collect::<Vec<_>>()
                        .into(),
                    post_within_ms: ms_until(now, *expires_at),
                },
            },
            _ => no_sale(ping_id, ErrorCode::PING_EXPIRED),
        }
    }

    fn answer_ping(&mut self, ping_id: PingId, result: PingResult<'static>) {
        let seller = auction_seller(&self.auctions, ping_id);
        let Some(WaitingPings { first, retries }) = self.pending.ping_answers.remove(&ping_id)
        else {
            return;
        };
        // In the order the requests came, each but the last gets a copy of the answer and the
        // last the answer itself.
        let last = retries.last().copied().unwrap_or(first);
        for request in std::iter::once(first)
            .chain(retries.iter().copied())
            .take(retries.len())
        {
            self.outputs.push_back(Output::PingAnswer {
                request,
                seller,
                result: result.clone(),
            });
        }
        self.outputs.push_back(Output::PingAnswer {
            request: last,
            seller,
            result,
        });
    }

    fn answer_post(&mut self, ping_id: PingId, result: PostResult<'static>) {
        let seller = auction_seller(&self.auctions, ping_id);
        if let Some(request) = self.pending.post_answers.remove(&ping_id) {
            self.outputs.push_back(Output::PostAnswer {
                request,
                seller,
                result,
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Seller: post

    /// A seller's `POST` of a pinged lead. The answer comes as [`Output::PostAnswer`] once every
    /// winner's slot is settled (at once for stored buyers).
    pub fn handle_post(
        &mut self,
        now: TimeUs,
        request: RequestTag,
        seller: SellerId,
        ping_id: PingId,
        contact: &Contact<'_>,
        consent: &Consent<'_>,
    ) {
        let refuse = |engine: &mut Self, reason: ErrorCode| {
            engine.outputs.push_back(Output::PostAnswer {
                request,
                seller,
                result: unsold(ping_id, 0, reason),
            });
        };
        let Some(auction) = self.auctions.get(&ping_id).filter(|a| a.seller == seller) else {
            return refuse(self, ErrorCode::UNKNOWN_PING);
        };
        match &auction.phase {
            Phase::Offered { expires_at, .. } if now <= *expires_at => {}
            Phase::Offered { .. } | Phase::Bidding => return refuse(self, ErrorCode::PING_EXPIRED),
            Phase::Posted { .. } | Phase::Closed if auction.contact.is_some() => {
                return refuse(self, ErrorCode::ALREADY_POSTED);
            }
            Phase::Posted { .. } | Phase::Closed => return refuse(self, ErrorCode::PING_EXPIRED),
        }
        if let Err(reason) = check_contact(contact).and_then(|()| check_consent(consent, now)) {
            return refuse(self, reason);
        }
        self.pending.contacts.insert(
            ping_id,
            (contact.clone().into_owned(), consent.clone().into_owned()),
        );
        self.pending.post_answers.insert(ping_id, request);
        self.post_contact(now, ping_id);
    }

    /// Records the post and delivers the lead to each winner.
    fn post_contact(&mut self, now: TimeUs, ping_id: PingId) {
        let Some((contact, consent)) = self.pending.contacts.remove(&ping_id) else {
            return;
        };
        let lead_id = self.next_lead_id + 1;
        self.emit(Event::Posted {
            at: now,
            ping_id,
            lead_id,
            contact,
            consent,
        });
        let slots = match self.auctions.get(&ping_id).map(|auction| &auction.phase) {
            Some(Phase::Posted { slots, .. }) => slots.len(),
            _ => 0,
        };
        for slot in 0..slots {
            self.deliver_slot(now, ping_id, slot);
        }
        self.settle_if_done(now, ping_id);
    }

    /// Delivers the lead to the winner holding `slot`, or cascades if that winner may not have
    /// it (it bought the consumer within its look-back).
    fn deliver_slot(&mut self, now: TimeUs, ping_id: PingId, slot: usize) {
        loop {
            let Some(auction) = self.auctions.get(&ping_id) else {
                return;
            };
            let Phase::Posted { lead_id, slots, .. } = &auction.phase else {
                return;
            };
            let lead_id = *lead_id;
            let Some(held) = slots.get(slot).and_then(|slot| slot.held.clone()) else {
                return;
            };
            let campaign = auction.book.campaign_by_id(held.award.campaign);
            let lookback = campaign.map_or(0, |c| c.lookback_us);
            if lookback != 0
                && self
                    .contacts
                    .bought_within(held.award.buyer, &auction.hashes, lookback, now)
            {
                self.emit(Event::SaleFailed {
                    at: now,
                    ping_id,
                    campaign: held.award.campaign,
                    reason: Exclusion::Duplicate.code().0,
                });
                if !self.cascade(now, ping_id) {
                    return;
                }
                continue;
            }
            let buyer = auction.book.buyer(held.award.buyer);
            let live = buyer.is_some_and(|b| b.delivery == crate::protocol::DeliveryMode::Live);
            let accept_within_ms = buyer.map_or(0, |b| b.accept_within_ms);
            let delivery_seq = self
                .delivery_seq
                .get(&held.award.buyer)
                .copied()
                .unwrap_or(0)
                + 1;
            let ack_deadline = live.then(|| now + u64::from(accept_within_ms) * US_PER_MS);
            self.emit(Event::Delivered {
                at: now,
                ping_id,
                lead_id,
                campaign: held.award.campaign,
                buyer: held.award.buyer,
                delivery_seq,
                ack_deadline,
            });
            self.outputs.push_back(Output::Deliver {
                buyer: held.award.buyer,
                delivery: self.lead_delivery(ping_id, &held, delivery_seq, now, accept_within_ms),
            });
            if !live {
                // A stored delivery is final: the buyer takes it when it next connects.
                self.commit_slot(now, ping_id, slot);
            }
            return;
        }
    }

    /// The `LEAD_DELIVERY` of a delivery whose `Delivered` event this engine has applied,
    /// rebuilt from the auction in memory (`None` once the auction is forgotten): for a reader
    /// that resumes from a snapshot and meets deliveries of leads posted before it.
    pub fn delivery_record(
        &self,
        ping_id: PingId,
        campaign: CampaignId,
        delivery_seq: u64,
        delivered_at: TimeUs,
        accept_within_ms: u32,
    ) -> Option<LeadDelivery<'static>> {
        let auction = self.auctions.get(&ping_id)?;
        let Phase::Posted { slots, .. } = &auction.phase else {
            return None;
        };
        let held = slots
            .iter()
            .filter_map(|slot| slot.held.as_ref())
            .find(|held| held.award.campaign == campaign)?;
        auction.contact.as_ref()?;
        Some(self.lead_delivery(ping_id, held, delivery_seq, delivered_at, accept_within_ms))
    }

    fn lead_delivery(
        &self,
        ping_id: PingId,
        held: &Held,
        delivery_seq: u64,
        now: TimeUs,
        accept_within_ms: u32,
    ) -> LeadDelivery<'static> {
        let Some(auction) = self.auctions.get(&ping_id) else {
            unreachable!("delivering auction {ping_id}, which is not in memory")
        };
        let (lead_id, sale_mode) = match &auction.phase {
            Phase::Posted {
                lead_id, sale_mode, ..
            } => (*lead_id, *sale_mode),
            _ => (0, SaleMode::Exclusive),
        };
        let (contact, consent) = auction
            .contact
            .as_deref()
            .cloned()
            .unwrap_or_else(|| unreachable!("a posted auction has its contact record"));
        LeadDelivery {
            delivery_seq,
            lead_id,
            auction_id: ping_id,
            campaign_id: held.award.campaign,
            price: held.award.price,
            sale_mode,
            lead: LeadView::clone(&auction.lead),
            contact,
            consent,
            delivered_at: now,
            accept_within_ms,
        }
    }

    fn commit_slot(&mut self, now: TimeUs, ping_id: PingId, slot: usize) {
        let Some(auction) = self.auctions.get(&ping_id) else {
            return;
        };
        let Phase::Posted { lead_id, slots, .. } = &auction.phase else {
            return;
        };
        let Some(held) = slots.get(slot).and_then(|slot| slot.held.clone()) else {
            return;
        };
        let receipt_id = self.next_receipt_id + 1;
        self.emit(Event::SaleCommitted {
            at: now,
            ping_id,
            lead_id: *lead_id,
            campaign: held.award.campaign,
            buyer: held.award.buyer,
            seller: auction.seller,
            receipt_id,
            price: held.award.price,
            payout: held.payout,
        });
    }

    /// Puts the next eligible runner-up into the empty slot. Returns whether one was found.
    /// Each runner-up tried leaves the queue through its event (`CascadeReserved` or
    /// `CascadeSkipped`), so that replay walks the queue the same way.
    fn cascade(&mut self, now: TimeUs, ping_id: PingId) -> bool {
        loop {
            let Some(auction) = self.auctions.get(&ping_id) else {
                return false;
            };
            let Some(&award) = auction.runners_up.front() else {
                if auction.runners_up_later && self.rank_runners_up(now, ping_id) {
                    continue;
                }
                return false;
            };
            let book = Arc::clone(&auction.book);
            let taken = match &auction.phase {
                Phase::Posted { slots, .. } => slots.iter().any(|slot| {
                    slot.held
                        .as_ref()
                        .is_some_and(|held| held.award.buyer == award.buyer)
                }),
                _ => false,
            };
            let hashes = auction.hashes.clone();
            let seller = auction.seller;
            let campaign = book.campaign_by_id(award.campaign);
            let verdict = match campaign {
                None => Err(Exclusion::Paused),
                // One buyer never holds two slots of one lead.
                Some(_) if taken => Err(Exclusion::Duplicate),
                Some(campaign) if !campaign.active => Err(Exclusion::Paused),
                Some(campaign)
                    if campaign.lookback_us != 0
                        && self.contacts.bought_within(
                            award.buyer,
                            &hashes,
                            campaign.lookback_us,
                            now,
                        ) =>
                {
                    Err(Exclusion::Duplicate)
                }
                Some(campaign) => {
                    let local = self.local_time(campaign.zone, now);
                    self.room_for(&book, campaign, award.price, &local)
                }
            };
            if let Err(exclusion) = verdict {
                self.emit(Event::CascadeSkipped {
                    at: now,
                    ping_id,
                    campaign: award.campaign,
                    reason: exclusion.into(),
                });
                continue;
            }
            let payout = book.seller(seller).map_or(0, |s| s.payout(award.price));
            self.emit(Event::CascadeReserved {
                at: now,
                ping_id,
                award,
                payout,
            });
            return true;
        }
    }

    /// Ranks the runners-up of an auction whose ping tree stopped at its winners, when its
    /// cascade first needs one: every campaign the territory matched is evaluated now, against
    /// the state now, except the campaigns that held the lead (and for a shared sale their
    /// buyers' other campaigns), and ranked by the ping tree for the sale mode sold, primaries
    /// first, then fallbacks, at most `AUCTION_RUNNERS_UP_MAX` of each.
    /// Whether it ranked them (only a posted lead's cascade does).
    fn rank_runners_up(&mut self, now: TimeUs, ping_id: PingId) -> bool {
        let Some(auction) = self.auctions.get(&ping_id) else {
            return false;
        };
        let Phase::Posted { sale_mode, .. } = auction.phase else {
            return false;
        };
        let book = Arc::clone(&auction.book);
        let lead = auction.lead.clone();
        let hashes = auction.hashes.clone();
        let awarded = auction.awarded.clone();
        let (seller_id, floor) = (auction.seller, auction.floor);
        let zips = ZipTable::us();
        let mut runners_up = Vec::new();
        let mut excluded = Vec::new();
        let vertical = book.vertical_ix(lead.vertical.as_str());
        let opened = vertical
            .zip(book.seller(seller_id))
            .and_then(|(vertical, seller)| {
                let rules = &book.vertical(vertical).rules;
                check_view(rules, &lead, |zip| zips.get(zip).is_some())
                    .ok()
                    .map(|postal| (vertical, seller, postal))
            });
        if let Some((vertical, seller, postal)) = opened {
            let mut matches = std::mem::take(&mut self.matches);
            book.territory
                .lookup(vertical, lead.country, postal.as_str(), &mut matches);
            let attributes = LeadAttributes::new(&lead.attributes);
            self.filter_stamp += 1;
            if self.filter_answers.len() < book.predicate_count() {
                self.filter_answers.resize(book.predicate_count(), 0);
            }
            let in_hand = LeadInHand {
                seller,
                sale_mode: match sale_mode {
                    SaleMode::Exclusive => PingSaleMode::Exclusive,
                    SaleMode::Shared => PingSaleMode::Shared,
                },
                floor,
                attributes: &attributes,
                hashes: &hashes,
                bought_before: self.contacts.any_purchase(&hashes),
                now,
            };
            let mut priced = Priced::default();
            self.evaluate_matched(&book, &matches, &in_hand, &mut priced);
            self.matches = matches;
            let awarded_buyers: Vec<BuyerId> = awarded
                .iter()
                .filter_map(|&campaign| book.campaign_by_id(campaign).map(|c| c.buyer))
                .collect();
            // Ranked as an exclusive sale of the sold mode's price: the ping tree's whole
            // order, one buyer's campaigns included (a cascade skips a buyer holding a slot).
            let in_line = |candidate: &Candidate| {
                let held = awarded.contains(&candidate.campaign);
                let buyer_holds = awarded_buyers.contains(&candidate.buyer);
                !(held || (sale_mode == SaleMode::Shared && buyer_holds))
            };
            let request =
                selection_request(self.config.seed, ping_id, PingSaleMode::Exclusive, 1, floor);
            let strategy = |tier: u8| book.vertical(vertical).strategy_of(tier);
            excluded = priced.excluded;
            excluded.append(&mut priced.late_excluded);
            for group in [&priced.primaries, &priced.fallbacks] {
                let line: Vec<Candidate> = group
                    .iter()
                    .filter(|candidate| in_line(candidate))
                    .map(|candidate| Candidate {
                        exclusive_price: match sale_mode {
                            SaleMode::Exclusive => candidate.exclusive_price,
                            SaleMode::Shared => candidate.shared_price,
                        },
                        shared_price: None,
                        ..*candidate
                    })
                    .collect();
                let selection =
                    self.selector
                        .select_ranked(&line, strategy, &request, AUCTION_RUNNERS_UP_MAX);
                runners_up.extend_from_slice(&selection.winners);
                runners_up.extend_from_slice(&selection.runners_up);
                excluded.extend(selection.considered.iter().map(|&(campaign, exclusion)| {
                    Excluded {
                        campaign,
                        reason: exclusion.into(),
                    }
                }));
            }
        }
        self.emit(Event::RunnersUpRanked {
            at: now,
            ping_id,
            runners_up,
            excluded,
        });
        true
    }

    /// Answers the seller once no slot is awaiting a buyer's answer.
    fn settle_if_done(&mut self, now: TimeUs, ping_id: PingId) {
        let Some(auction) = self.auctions.get(&ping_id) else {
            return;
        };
        let Phase::Posted {
            lead_id,
            sale_mode,
            slots,
        } = &auction.phase
        else {
            return;
        };
        if slots.iter().any(|slot| {
            matches!(slot.state, SlotState::Awaiting { .. })
                || (slot.held.is_some() && slot.state == SlotState::Empty)
        }) {
            return;
        }
        let receipts: Vec<Receipt> = slots
            .iter()
            .filter_map(|slot| match (&slot.state, &slot.held) {
                (SlotState::Sold { receipt_id }, Some(held)) => Some(Receipt {
                    receipt_id: *receipt_id,
                    payout: held.payout,
                }),
                _ => None,
            })
            .collect();
        let lead_id = *lead_id;
        let sale_mode = *sale_mode;
        let sold = !receipts.is_empty();
        let reason = if sold {
            0
        } else {
            ErrorCode::CASCADE_EXHAUSTED.0
        };
        self.emit(Event::LeadSettled {
            at: now,
            ping_id,
            sold,
            reason,
        });
        let result = if sold {
            PostResult {
                ping_id,
                lead_id,
                outcome: PostOutcome::Sold {
                    sale_mode,
                    payout_total: receipts.iter().map(|r| r.payout).sum(),
                    receipts: receipts.into(),
                },
            }
        } else {
            unsold(ping_id, lead_id, ErrorCode::CASCADE_EXHAUSTED)
        };
        self.answer_post(ping_id, result);
    }

    // -----------------------------------------------------------------------------------------
    // Buyer: delivery answers

    /// A live buyer's `DELIVERY_ACK`. Unknown or already settled deliveries are ignored (a
    /// buyer re-acknowledging after a reconnect is normal).
    pub fn handle_delivery_ack(
        &mut self,
        now: TimeUs,
        buyer: BuyerId,
        delivery_seq: u64,
        outcome: DeliveryOutcome,
        reason: ErrorCode,
    ) {
        let Some(&ping_id) = self.deliveries.get(&(buyer, delivery_seq)) else {
            return;
        };
        let Some(slot) = self.awaiting_slot(ping_id, buyer, delivery_seq) else {
            return;
        };
        match outcome {
            DeliveryOutcome::Accept => self.commit_slot(now, ping_id, slot),
            DeliveryOutcome::Reject => self.fail_slot(now, ping_id, slot, reason),
        }
        self.settle_if_done(now, ping_id);
    }

    fn awaiting_slot(&self, ping_id: PingId, buyer: BuyerId, seq: u64) -> Option<usize> {
        let Phase::Posted { slots, .. } = &self.auctions.get(&ping_id)?.phase else {
            return None;
        };
        slots.iter().position(|slot| {
            slot.held.as_ref().is_some_and(|held| held.award.buyer == buyer)
                && matches!(slot.state, SlotState::Awaiting { delivery_seq, .. } if delivery_seq == seq)
        })
    }

    fn fail_slot(&mut self, now: TimeUs, ping_id: PingId, slot: usize, reason: ErrorCode) {
        let Some(campaign) = self
            .auctions
            .get(&ping_id)
            .and_then(|auction| match &auction.phase {
                Phase::Posted { slots, .. } => {
                    slots.get(slot)?.held.as_ref().map(|h| h.award.campaign)
                }
                _ => None,
            })
        else {
            return;
        };
        self.emit(Event::SaleFailed {
            at: now,
            ping_id,
            campaign,
            reason: reason.0,
        });
        if self.cascade(now, ping_id) {
            self.deliver_slot(now, ping_id, slot);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Time

    /// Handles every deadline at or before `now`: bidding ends, offers expire, deliveries go
    /// unanswered.
    pub fn handle_timeout(&mut self, now: TimeUs) {
        while let Some(&(at, ping_id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, ping_id));
            let Some(auction) = self.auctions.get(&ping_id) else {
                continue;
            };
            match &auction.phase {
                Phase::Bidding if auction.bid_deadline <= now => self.resolve(now, ping_id),
                Phase::Offered {
                    expires_at, held, ..
                } if *expires_at <= now => {
                    let lost: Vec<(BuyerId, CampaignId)> = held
                        .iter()
                        .filter(|held| auction.bidders.iter().any(|b| b.0 == held.award.campaign))
                        .map(|held| (held.award.buyer, held.award.campaign))
                        .collect();
                    self.emit(Event::PingExpired { at: now, ping_id });
                    for (buyer, campaign) in lost {
                        self.outputs.push_back(Output::Lost {
                            buyer,
                            notice: AuctionLost {
                                auction_id: ping_id,
                                campaign_id: campaign,
                                reason: ErrorCode::LEAD_NOT_POSTED,
                            },
                        });
                    }
                }
                Phase::Posted { slots, .. } => {
                    let overdue: Vec<usize> = slots
                        .iter()
                        .enumerate()
                        .filter(|(_, slot)| matches!(slot.state, SlotState::Awaiting { deadline, .. } if deadline <= now))
                        .map(|(at, _)| at)
                        .collect();
                    for slot in overdue {
                        self.fail_slot(now, ping_id, slot, ErrorCode::ACCEPT_TIMEOUT);
                    }
                    self.settle_if_done(now, ping_id);
                }
                _ => {}
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Apply: the only mutation

    /// Applies one event to the state. The live engine calls it for every event it emits;
    /// recovery calls it for every event of the journal, in order.
    pub fn apply(&mut self, event: &Event) {
        self.apply_state(event);
        self.record_history(event);
    }

    /// Appends what an event means for a lead to that lead's history (its trace).
    fn record_history(&mut self, event: &Event) {
        use TraceEventKind as Kind;
        let at = event.at();
        let mut steps = std::mem::take(&mut self.history_steps);
        let mut counts = std::mem::take(&mut self.exclusion_counts);
        steps.clear();
        let ping_id = match event {
            Event::PingOpened {
                ping_id,
                seller,
                offers,
                excluded,
                not_reached,
                ..
            } => {
                steps.push(Step::new(at, Kind::PINGED, *seller, 0, 0));
                exclusion_steps(at, excluded, &mut steps, &mut counts);
                if *not_reached > 0 {
                    let code = Exclusion::NotReached.code().0;
                    let count = u64::from(*not_reached);
                    steps.push(Step::new(at, Kind::EXCLUDED, 0, count, code));
                }
                steps.extend(
                    offers
                        .iter()
                        .map(|o| Step::new(at, Kind::OFFERED, o.campaign, o.price_floor, 0)),
                );
                *ping_id
            }
            Event::BidReceived {
                ping_id,
                campaign,
                price,
                reason,
                ..
            } => {
                match price {
                    Some(price) => steps.push(Step::new(at, Kind::BID, *campaign, *price, 0)),
                    None => {
                        // The buyer's own reason, then the exclusion every left-out campaign has.
                        steps.push(Step::new(at, Kind::NO_BID, *campaign, 0, *reason));
                        let code = Exclusion::NoBid.code().0;
                        steps.push(Step::new(at, Kind::EXCLUDED, *campaign, 0, code));
                    }
                }
                *ping_id
            }
            Event::AuctionResolved {
                ping_id,
                resolution,
                excluded,
                ..
            } => {
                exclusion_steps(at, excluded, &mut steps, &mut counts);
                match resolution {
                    Resolution::Offer { winners, .. } => {
                        for award in winners {
                            steps.push(Step::new(
                                at,
                                Kind::WINNER_CHOSEN,
                                award.campaign,
                                award.price,
                                0,
                            ));
                            steps.push(Step::new(
                                at,
                                Kind::RESERVED,
                                award.campaign,
                                award.price,
                                0,
                            ));
                        }
                    }
                    Resolution::NoSale { reason } => {
                        steps.push(Step::new(at, Kind::NO_SALE, 0, 0, *reason));
                    }
                }
                *ping_id
            }
            Event::PingExpired { ping_id, .. } => {
                steps.push(Step::new(
                    at,
                    Kind::RELEASED,
                    0,
                    0,
                    ErrorCode::PING_EXPIRED.0,
                ));
                *ping_id
            }
            Event::Posted {
                ping_id, lead_id, ..
            } => {
                steps.push(Step::new(at, Kind::POSTED, *lead_id, 0, 0));
                *ping_id
            }
            Event::CascadeReserved { ping_id, award, .. } => {
                steps.push(Step::new(
                    at,
                    Kind::RESERVED,
                    award.campaign,
                    award.price,
                    0,
                ));
                *ping_id
            }
            Event::RunnersUpRanked {
                ping_id, excluded, ..
            } => {
                exclusion_steps(at, excluded, &mut steps, &mut counts);
                *ping_id
            }
            Event::CascadeSkipped {
                ping_id,
                campaign,
                reason,
                ..
            } => {
                steps.push(Step::new(at, Kind::EXCLUDED, *campaign, 0, reason.0));
                *ping_id
            }
            Event::Delivered {
                ping_id, campaign, ..
            } => {
                steps.push(Step::new(at, Kind::DELIVERED, *campaign, 0, 0));
                *ping_id
            }
            Event::SaleCommitted {
                ping_id,
                campaign,
                price,
                payout,
                ..
            } => {
                steps.push(Step::new(at, Kind::COMMITTED, *campaign, *price, 0));
                steps.push(Step::new(at, Kind::SOLD, *campaign, *payout, 0));
                *ping_id
            }
            Event::SaleFailed {
                ping_id,
                campaign,
                reason,
                ..
            } => {
                steps.push(Step::new(at, Kind::REJECTED, *campaign, 0, *reason));
                steps.push(Step::new(at, Kind::RELEASED, *campaign, 0, *reason));
                *ping_id
            }
            Event::LeadSettled {
                ping_id,
                sold,
                reason,
                ..
            } => {
                if !sold {
                    steps.push(Step::new(at, Kind::NO_SALE, 0, 0, *reason));
                }
                *ping_id
            }
            Event::BookChanged { .. } | Event::PingRejected { .. } => 0,
        };
        if !steps.is_empty() {
            if let Some(auction) = self.auctions.get_mut(&ping_id) {
                if auction.history.is_empty() {
                    // The opening: sized once for it and what usually follows, so that
                    // the steps of a sale are not copied as the history grows.
                    auction.history.reserve_exact(
                        (steps.len() + HISTORY_STEPS_RESERVED_AFTER_OPENING).min(TRACE_EVENTS_MAX),
                    );
                }
                let room = TRACE_EVENTS_MAX.saturating_sub(auction.history.len());
                auction.history.extend(steps.drain(..).take(room));
            }
        }
        self.history_steps = steps;
        self.exclusion_counts = counts;
    }

    /// The history of a ping or a posted lead still in memory (see `AUCTION_RETENTION_MS`;
    /// the journal holds every lead's whole history). `None` if unknown or forgotten.
    pub fn trace(&self, key: TraceKey, id: u64) -> Option<Trace<'static>> {
        let ping_id = match key {
            TraceKey::Ping => id,
            TraceKey::Lead => *self.lead_to_ping.get(&id)?,
        };
        let auction = self.auctions.get(&ping_id)?;
        Some(Trace {
            ping_id,
            lead_id: auction.lead_id,
            events: auction
                .history
                .iter()
                .map(|step| {
                    let name = ErrorCode(step.code)
                        .name()
                        .filter(|_| step.code != 0)
                        .unwrap_or("");
                    if step.kind == TraceEventKind::EXCLUDED && step.party == 0 {
                        // A summary of exclusions past the ones listed one by one.
                        return TraceEvent {
                            at: step.at,
                            kind: step.kind,
                            party_id: 0,
                            amount: 0,
                            code: ErrorCode(step.code),
                            detail: std::borrow::Cow::Owned(format!(
                                "{} more campaigns left out, {name}; the journal's trace lists each",
                                step.amount
                            )),
                        };
                    }
                    TraceEvent {
                        at: step.at,
                        kind: step.kind,
                        party_id: step.party,
                        amount: step.amount,
                        code: ErrorCode(step.code),
                        detail: std::borrow::Cow::Borrowed(name),
                    }
                })
                .collect(),
        })
    }

    /// Makes `book` (compiled from `defs`) the current book: zone clocks, usage moved to its
    /// indexes, and the previous book's definitions kept while auctions still hold it.
    fn install_book(&mut self, book: Book, defs: Arc<BookDefs>) {
        self.clocks = book
            .zones
            .iter()
            .map(|zone| {
                ZoneClock::new(zone).unwrap_or_else(|_| panic!("compiled zone {zone} must load"))
            })
            .collect();
        self.zone_times = vec![None; self.clocks.len()];
        self.usage.rebook(&self.book, &book);
        let old_book = std::mem::replace(&mut self.book, Arc::new(book));
        let old_defs = std::mem::replace(&mut self.defs, defs);
        self.retired_defs
            .retain(|(book, _)| book.strong_count() > 0);
        if Arc::strong_count(&old_book) > 1 {
            self.retired_defs
                .push((Arc::downgrade(&old_book), old_defs));
        }
    }

    fn apply_state(&mut self, event: &Event) {
        match event {
            Event::BookChanged {
                version, changes, ..
            } => {
                // The live engine compiled this very book before emitting the event; replay
                // compiles it here.
                let (book, defs) = match self.compiled.take() {
                    Some((book, defs)) if book.version == *version => (book, defs),
                    _ => {
                        let mut defs = BookDefs::clone(&self.defs);
                        for change in changes {
                            defs.apply(change).unwrap_or_else(|error| {
                                panic!("journaled admin change must apply: {error}")
                            });
                        }
                        let book = Book::compile(&defs, *version)
                            .unwrap_or_else(|error| panic!("journaled book must compile: {error}"));
                        (book, defs)
                    }
                };
                self.install_book(book, Arc::new(defs));
            }
            Event::PingRejected { .. } => {}
            Event::PingOpened {
                at,
                ping_id,
                seller,
                client_token,
                lead,
                phone_hash,
                email_hash,
                sale_mode,
                shared_buyers_max,
                floor,
                bid_deadline,
                candidates,
                offers,
                excluded,
                direct,
                not_reached: _,
            } => {
                self.forget_closed(*at);
                self.next_ping_id = self.next_ping_id.max(*ping_id);
                if *client_token != 0 {
                    self.tokens.insert(*seller, *client_token, *ping_id, *at);
                }
                let lead_fingerprint = match self.opening_fingerprint.take() {
                    Some((opened, lead_fingerprint)) if opened == *ping_id => lead_fingerprint,
                    _ => fingerprint(lead, *phone_hash, *email_hash),
                };
                if let Some(fingerprint) = lead_fingerprint {
                    self.fingerprints
                        .insert(*seller, fingerprint, *ping_id, *at);
                }
                let hashes: Vec<Hash32> = phone_hash.iter().chain(email_hash).copied().collect();
                self.contacts.record_ping(&hashes, *at);
                self.auctions.insert(
                    *ping_id,
                    Box::new(Auction {
                        seller: *seller,
                        book: Arc::clone(&self.book),
                        lead: Arc::clone(lead),
                        hashes,
                        sale_mode: *sale_mode,
                        shared_buyers_max: *shared_buyers_max,
                        floor: *floor,
                        bid_deadline: *bid_deadline,
                        // Only an auction that waits for bids needs them: one without live
                        // campaigns is resolved by the next event.
                        candidates: if offers.is_empty() {
                            Vec::new()
                        } else {
                            candidates.clone()
                        },
                        awaiting: offers.clone(),
                        bidders: Vec::new(),
                        delivered: Vec::new(),
                        // Sized by `record_history`, which writes the opening's steps.
                        history: Vec::new(),
                        lead_id: 0,
                        runners_up: VecDeque::new(),
                        runners_up_later: false,
                        awarded: Vec::new(),
                        excluded: if offers.is_empty() {
                            Vec::new()
                        } else {
                            excluded.clone()
                        },
                        contact: None,
                        direct: *direct,
                        phase: Phase::Bidding,
                    }),
                );
                if !offers.is_empty() {
                    self.timers.insert((*bid_deadline, *ping_id));
                }
            }
            Event::BidReceived {
                at,
                ping_id,
                campaign,
                price,
                reason: _,
            } => {
                let Some(auction) = self.auctions.get_mut(ping_id) else {
                    return;
                };
                let book = Arc::clone(&auction.book);
                let Some(position) = auction
                    .awaiting
                    .iter()
                    .position(|o| o.campaign == *campaign)
                else {
                    return;
                };
                let offer = auction.awaiting.swap_remove(position);
                match price {
                    Some(price) => {
                        let Some(compiled) = book.campaign_by_id(*campaign) else {
                            return;
                        };
                        let last_selected = self.usage.last_selected(
                            &self.book,
                            &book,
                            CampaignRef::Compiled(compiled),
                        );
                        let auction = auction_mut(&mut self.auctions, *ping_id);
                        auction.bidders.push((*campaign, offer.buyer));
                        let (exclusive_price, shared_price) = match offer.sale_mode {
                            SaleMode::Exclusive => (Some(*price), None),
                            SaleMode::Shared => (None, Some(*price)),
                        };
                        auction.candidates.push(priced(
                            compiled,
                            exclusive_price,
                            shared_price,
                            *at,
                            last_selected,
                        ));
                    }
                    None => auction.excluded.push(Excluded {
                        campaign: *campaign,
                        reason: Exclusion::NoBid.into(),
                    }),
                }
            }
            Event::AuctionResolved {
                at,
                ping_id,
                resolution,
                excluded: _,
            } => {
                self.timers.remove(&(
                    self.auctions.get(ping_id).map_or(0, |a| a.bid_deadline),
                    *ping_id,
                ));
                let Some(mut auction) = self.auctions.remove(ping_id) else {
                    return;
                };
                auction.candidates = Vec::new();
                auction.excluded = Vec::new();
                auction.awaiting.clear();
                match resolution {
                    Resolution::Offer {
                        sale_mode,
                        winners,
                        runners_up,
                        payouts,
                        expires_at,
                        runners_up_later,
                    } => {
                        let mut held = Vec::with_capacity(winners.len());
                        for (award, payout) in winners.iter().zip(payouts) {
                            held.push(self.reserve(&auction.book, *award, *payout, *at));
                        }
                        auction.runners_up = runners_up.iter().copied().collect();
                        auction.runners_up_later = *runners_up_later;
                        auction.awarded = winners.iter().map(|award| award.campaign).collect();
                        auction.phase = Phase::Offered {
                            sale_mode: *sale_mode,
                            held,
                            expires_at: *expires_at,
                        };
                        self.timers.insert((*expires_at, *ping_id));
                    }
                    Resolution::NoSale { .. } => {
                        auction.phase = Phase::Closed;
                        self.closed.push_back((*at, *ping_id));
                    }
                }
                self.auctions.insert(*ping_id, auction);
            }
            Event::PingExpired { at, ping_id } => {
                let Some(mut auction) = self.auctions.remove(ping_id) else {
                    return;
                };
                self.closed.push_back((*at, *ping_id));
                auction.runners_up = VecDeque::new();
                auction.runners_up_later = false;
                if let Phase::Offered { held, .. } =
                    std::mem::replace(&mut auction.phase, Phase::Closed)
                {
                    for held in &held {
                        self.release(held);
                    }
                }
                self.auctions.insert(*ping_id, auction);
            }
            Event::Posted {
                ping_id,
                lead_id,
                contact,
                consent,
                ..
            } => {
                self.next_lead_id = self.next_lead_id.max(*lead_id);
                let Some(auction) = self.auctions.get_mut(ping_id) else {
                    return;
                };
                auction.lead_id = *lead_id;
                self.lead_to_ping.insert(*lead_id, *ping_id);
                if let Phase::Offered { expires_at, .. } = auction.phase {
                    self.timers.remove(&(expires_at, *ping_id));
                }
                // The consumer is now known by its real contact data: duplicate checks and
                // purchase records use these hashes too.
                let (phone, email) = contact_hashes(contact);
                for hash in [phone, email] {
                    if !auction.hashes.contains(&hash) {
                        auction.hashes.push(hash);
                    }
                }
                auction.contact = Some(Box::new((contact.clone(), consent.clone())));
                if let Phase::Offered {
                    sale_mode, held, ..
                } = std::mem::replace(&mut auction.phase, Phase::Closed)
                {
                    auction.phase = Phase::Posted {
                        lead_id: *lead_id,
                        sale_mode,
                        slots: held
                            .into_iter()
                            .map(|held| Slot {
                                held: Some(held),
                                state: SlotState::Empty,
                            })
                            .collect(),
                    };
                }
            }
            Event::CascadeReserved {
                at,
                ping_id,
                award,
                payout,
            } => {
                let Some(auction) = self.auctions.get_mut(ping_id) else {
                    return;
                };
                let front = auction.runners_up.pop_front();
                assert_eq!(
                    front.map(|a| a.campaign),
                    Some(award.campaign),
                    "cascade out of order"
                );
                auction.awarded.push(award.campaign);
                let book = Arc::clone(&auction.book);
                let held = self.reserve(&book, *award, *payout, *at);
                if let Some(Phase::Posted { slots, .. }) =
                    self.auctions.get_mut(ping_id).map(|a| &mut a.phase)
                {
                    if let Some(slot) = slots.iter_mut().find(|slot| slot.held.is_none()) {
                        slot.held = Some(held);
                        slot.state = SlotState::Empty;
                    }
                }
            }
            Event::RunnersUpRanked {
                ping_id,
                runners_up,
                ..
            } => {
                if let Some(auction) = self.auctions.get_mut(ping_id) {
                    auction.runners_up = runners_up.iter().copied().collect();
                    auction.runners_up_later = false;
                }
            }
            Event::CascadeSkipped {
                ping_id, campaign, ..
            } => {
                if let Some(auction) = self.auctions.get_mut(ping_id) {
                    let front = auction.runners_up.pop_front();
                    assert_eq!(
                        front.map(|a| a.campaign),
                        Some(*campaign),
                        "cascade out of order"
                    );
                }
            }
            Event::Delivered {
                ping_id,
                campaign,
                buyer,
                delivery_seq,
                ack_deadline,
                ..
            } => {
                self.delivery_seq.insert(*buyer, *delivery_seq);
                self.deliveries.insert((*buyer, *delivery_seq), *ping_id);
                if let Some(auction) = self.auctions.get_mut(ping_id) {
                    auction.delivered.push((*buyer, *delivery_seq));
                }
                if let Some(Phase::Posted { slots, .. }) =
                    self.auctions.get_mut(ping_id).map(|a| &mut a.phase)
                {
                    if let Some(slot) = slots.iter_mut().find(|slot| {
                        slot.held
                            .as_ref()
                            .is_some_and(|h| h.award.campaign == *campaign)
                            && slot.state == SlotState::Empty
                    }) {
                        slot.state = SlotState::Awaiting {
                            delivery_seq: *delivery_seq,
                            deadline: ack_deadline.unwrap_or(0),
                        };
                    }
                }
                if let Some(deadline) = ack_deadline {
                    self.timers.insert((*deadline, *ping_id));
                }
            }
            Event::SaleCommitted {
                at,
                ping_id,
                campaign,
                buyer,
                receipt_id,
                price,
                payout,
                ..
            } => {
                self.next_receipt_id = self.next_receipt_id.max(*receipt_id);
                self.ledger.sales += 1;
                self.ledger.charged += u128::from(*price);
                self.ledger.paid_out += u128::from(*payout);
                let mut hashes = Vec::new();
                let mut committed = None;
                if let Some(auction) = self.auctions.get_mut(ping_id) {
                    hashes.clone_from(&auction.hashes);
                    if let Phase::Posted { slots, .. } = &mut auction.phase {
                        if let Some(slot) = slots.iter_mut().find(|slot| {
                            slot.held
                                .as_ref()
                                .is_some_and(|h| h.award.campaign == *campaign)
                                && !matches!(slot.state, SlotState::Sold { .. })
                        }) {
                            slot.state = SlotState::Sold {
                                receipt_id: *receipt_id,
                            };
                            committed = slot.held.clone();
                        }
                    }
                }
                if let Some(held) = committed {
                    self.commit(&held);
                }
                self.contacts.record_purchase(*buyer, &hashes, *at);
            }
            Event::SaleFailed {
                ping_id, campaign, ..
            } => {
                let mut released = None;
                if let Some(Phase::Posted { slots, .. }) =
                    self.auctions.get_mut(ping_id).map(|a| &mut a.phase)
                {
                    if let Some(slot) = slots.iter_mut().find(|slot| {
                        slot.held
                            .as_ref()
                            .is_some_and(|h| h.award.campaign == *campaign)
                            && !matches!(slot.state, SlotState::Sold { .. })
                    }) {
                        released = slot.held.take();
                        slot.state = SlotState::Empty;
                    }
                }
                if let Some(held) = released {
                    self.release(&held);
                }
            }
            Event::LeadSettled { at, ping_id, .. } => {
                self.closed.push_back((*at, *ping_id));
                if let Some(auction) = self.auctions.get_mut(ping_id) {
                    if let Phase::Posted { slots, .. } = &mut auction.phase {
                        slots.retain(|slot| matches!(slot.state, SlotState::Sold { .. }));
                    }
                    // Nobody is next in line any more; free it for the retention time.
                    auction.runners_up = VecDeque::new();
                    auction.runners_up_later = false;
                }
            }
        }
    }

    /// Forgets auctions that ended more than `AUCTION_RETENTION_MS` before `now`, and expires
    /// old retry tokens and contact history, so that memory stays bounded however long the
    /// daemon runs. Called from `apply` with an event's time, so replay forgets the same
    /// auctions at the same points.
    fn forget_closed(&mut self, now: TimeUs) {
        let retention_us = u64::from(crate::limits::AUCTION_RETENTION_MS) * US_PER_MS;
        let cutoff = now.saturating_sub(retention_us);
        while let Some(&(closed_at, ping_id)) = self.closed.front() {
            if closed_at >= cutoff && self.closed.len() <= crate::limits::AUCTIONS_CLOSED_MAX {
                break;
            }
            self.closed.pop_front();
            if let Some(auction) = self.auctions.remove(&ping_id) {
                for key in &auction.delivered {
                    self.deliveries.remove(key);
                }
                self.lead_to_ping.remove(&auction.lead_id);
            }
        }
        self.tokens.expire(now);
        self.fingerprints.expire(now);
        self.contacts.expire(now);
    }

    /// Reserves a cap unit and the price on the campaign and the buyer's budget. Called only
    /// by `apply`, for an award the deciding code checked against the same state.
    fn reserve(&mut self, book: &Book, award: Award, payout: Money, at: TimeUs) -> Held {
        let campaign = book
            .campaign_by_id(award.campaign)
            .unwrap_or_else(|| panic!("award for unknown campaign {}", award.campaign));
        let zone = campaign.zone;
        let caps_limits = campaign.caps;
        let budget_limits = book
            .buyer(award.buyer)
            .map(|b| b.budget)
            .unwrap_or_default();
        let local = self.local_time(zone, at);
        let current = Arc::clone(&self.book);
        let of = CampaignRef::Compiled(campaign);
        let cap = self
            .usage
            .caps_mut(&current, book, of, true)
            .unwrap_or_else(|| unreachable!("created on first use"))
            .reserve(&caps_limits, &local, award.price)
            .unwrap_or_else(|error| {
                panic!("reservation checked before the event must fit: {error:?}")
            });
        let budget = self
            .usage
            .budget_mut(&current, book, of, true)
            .unwrap_or_else(|| unreachable!("created on first use"))
            .reserve(&budget_limits, &local, award.price)
            .unwrap_or_else(|error| panic!("budget checked before the event must fit: {error:?}"));
        self.selection_stamp += 1;
        self.usage
            .set_last_selected(&current, book, of, self.selection_stamp);
        Held {
            award,
            payout,
            cap,
            budget,
        }
    }

    fn commit(&mut self, held: &Held) {
        self.settle(held, true);
    }

    fn release(&mut self, held: &Held) {
        self.settle(held, false);
    }

    /// Commits or releases a held reservation, by its campaign's and buyer's ids (the current
    /// book may have moved them, or no longer have them).
    fn settle(&mut self, held: &Held, commit: bool) {
        let current = Arc::clone(&self.book);
        let ids = CampaignRef::Ids {
            campaign: held.award.campaign,
            buyer: held.award.buyer,
        };
        if let Some(counters) = self.usage.caps_mut(&current, &current, ids, false) {
            if commit {
                counters.commit(&held.cap);
            } else {
                counters.release(&held.cap);
            }
        }
        if let Some(counters) = self.usage.budget_mut(&current, &current, ids, false) {
            if commit {
                counters.commit(&held.budget);
            } else {
                counters.release(&held.budget);
            }
        }
    }
}

/// A lead's fingerprint for retries without a client token: its view and its consumer's contact
/// hashes, as one number. Only a ping that names its consumer (a phone or email hash) has one:
/// two consumers in one postal code with the same highlights are different leads. FxHash is
/// deterministic across processes, so replay computes the same fingerprints; a seller that
/// crafts colliding fingerprints only confuses its own retries.
fn fingerprint(lead: &LeadView<'_>, phone: Option<Hash32>, email: Option<Hash32>) -> Option<u64> {
    use std::hash::{Hash, Hasher};

    if phone.is_none() && email.is_none() {
        return None;
    }
    let mut hasher = rustc_hash::FxHasher::default();
    lead.vertical.as_str().hash(&mut hasher);
    lead.country.as_str().hash(&mut hasher);
    lead.postal_code.as_str().hash(&mut hasher);
    lead.attributes.as_wire_bytes().hash(&mut hasher);
    phone.map(|h| h.0).hash(&mut hasher);
    email.map(|h| h.0).hash(&mut hasher);
    Some(hasher.finish())
}

fn auction_seller(auctions: &AuctionMap, ping_id: PingId) -> SellerId {
    auctions.get(&ping_id).map_or(0, |auction| auction.seller)
}

/// The reason a no-sale answer gives: the most telling exclusion, of those recorded before
/// resolution (`earlier`) and at it (`late`).
fn no_sale_reason(earlier: &[Excluded], late: &[Excluded]) -> ErrorCode {
    let all = || earlier.iter().chain(late).map(|e| e.reason.0);
    let empty = earlier.is_empty() && late.is_empty();
    let any = |exclusion: Exclusion| all().any(|c| c == exclusion.code().0);
    let only = |exclusion: Exclusion| !empty && all().all(|c| c == exclusion.code().0);
    if empty {
        ErrorCode::NO_MATCHING_CAMPAIGN
    } else if any(Exclusion::BelowFloor) {
        ErrorCode::NO_BID_AT_FLOOR
    } else if only(Exclusion::Timeout) {
        ErrorCode::NO_ANSWER_IN_TIME
    } else if any(Exclusion::Cap) {
        ErrorCode::CAPS_REACHED
    } else if any(Exclusion::Budget) {
        ErrorCode::BUDGETS_EXHAUSTED
    } else if only(Exclusion::Schedule) {
        ErrorCode::OUTSIDE_SCHEDULE
    } else {
        ErrorCode::NO_MATCHING_CAMPAIGN
    }
}

/// The auction a caller just found in the map.
fn auction_mut(auctions: &mut AuctionMap, ping_id: PingId) -> &mut Auction {
    auctions
        .get_mut(&ping_id)
        .unwrap_or_else(|| unreachable!("auction {ping_id} was just read"))
}

/// The selection request of one auction; the seed mixes the engine's seed with the ping id.
fn selection_request(
    seed: u64,
    ping_id: PingId,
    sale_mode: PingSaleMode,
    shared_buyers_max: u8,
    floor: Money,
) -> SelectionRequest {
    SelectionRequest {
        sale_mode,
        shared_buyers_max,
        floor,
        seed: seed ^ ping_id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    }
}

/// Keeps the prices of a candidate that still fit `room`: into `fallbacks` or `primaries` if
/// any does, else the exclusion of the last price refused (none if it had no price at all).
fn sort_priced(
    campaign: &CompiledCampaign,
    mut candidate: Candidate,
    room: &Room,
    primaries: &mut Vec<Candidate>,
    fallbacks: &mut Vec<Candidate>,
) -> Option<Excluded> {
    let mut refused = None;
    for price in [&mut candidate.exclusive_price, &mut candidate.shared_price] {
        if let Some(amount) = *price {
            if let Err(exclusion) = room.fits(amount) {
                refused = Some(exclusion);
                *price = None;
            }
        }
    }
    if candidate.exclusive_price.is_none() && candidate.shared_price.is_none() {
        return refused.map(|exclusion| Excluded {
            campaign: candidate.campaign,
            reason: exclusion.into(),
        });
    }
    if campaign.role == CampaignRole::Fallback {
        fallbacks.push(candidate);
    } else {
        primaries.push(candidate);
    }
    None
}

/// The answer that refuses a ping (`PING_RESULT` no sale) or a direct post (`POST_RESULT`
/// unsold) with a reason.
fn refusal(
    request: RequestTag,
    seller: SellerId,
    ping_id: PingId,
    reason: ErrorCode,
    direct: bool,
) -> Output {
    if direct {
        Output::PostAnswer {
            request,
            seller,
            result: unsold(ping_id, 0, reason),
        }
    } else {
        Output::PingAnswer {
            request,
            seller,
            result: no_sale(ping_id, reason),
        }
    }
}

fn no_sale(ping_id: PingId, reason: ErrorCode) -> PingResult<'static> {
    PingResult {
        ping_id,
        outcome: PingOutcome::NoSale { reason },
    }
}

fn unsold(ping_id: PingId, lead_id: LeadId, reason: ErrorCode) -> PostResult<'static> {
    PostResult {
        ping_id,
        lead_id,
        outcome: PostOutcome::Unsold { reason },
    }
}

/// The history steps for a list of exclusions: the first `TRACE_EXCLUSIONS_LISTED_MAX` one by
/// one, the rest as one summary step per reason (campaign 0, the count in `amount`). A large
/// book leaves hundreds of campaigns out of each auction; keeping every one in memory for the
/// retention time would cost more than the auction itself. The events, and so the journal's
/// trace, keep every one.
fn exclusion_steps(
    at: TimeUs,
    excluded: &[Excluded],
    steps: &mut Vec<Step>,
    counts: &mut Vec<(u16, u64)>,
) {
    let (listed, rest) = excluded.split_at(excluded.len().min(TRACE_EXCLUSIONS_LISTED_MAX));
    steps.extend(
        listed
            .iter()
            .map(|e| Step::new(at, TraceEventKind::EXCLUDED, e.campaign, 0, e.reason.0)),
    );
    counts.clear();
    for e in rest {
        match counts.iter_mut().find(|(code, _)| *code == e.reason.0) {
            Some((_, count)) => *count += 1,
            None => counts.push((e.reason.0, 1)),
        }
    }
    counts.sort_unstable();
    steps.extend(
        counts
            .iter()
            .map(|&(code, count)| Step::new(at, TraceEventKind::EXCLUDED, 0, count, code)),
    );
}
