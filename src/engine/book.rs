//! The book: every vertical, seller, buyer and campaign, kept twice — as the admin definitions
//! (the source of truth, in id order, for snapshots and replay) and as a compiled, immutable
//! snapshot with the territory index that auctions read.
//!
//! An admin change edits a copy of the definitions and compiles a whole new snapshot; only when
//! that succeeds do both replace the old ones. Auctions hold an `Arc` of the snapshot they
//! started with, so a change never alters an auction in flight.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::availability::{AdmitMask, AdmitReader, Availability};
use super::caps::CapLimits;
use super::filters::{CompiledFilter, CompiledFilters};
use super::geo::ZipTable;
use super::preping::VerticalRules;
use super::schedule::Schedule;
use super::territory::TerritoryIndex;
use super::types::{BuyerId, CampaignId, CampaignIx, SellerId, VerticalIx};
use crate::protocol::{
    Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, DeliveryMode, ErrorCode, Money, Pricing,
    PutMode, SaleMode, SaleModes, Seller, SellerPut, SetStatus, Status, StatusTarget, Strategy,
    VerticalPut,
};

/// One change to the book, as an admin sent it. Owned, so the journal can record it and
/// replay can re-apply it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminChange {
    VerticalPut(VerticalPut<'static>),
    VerticalRemove { vertical: String },
    SellerPut(SellerPut<'static>),
    SellerRemove { seller_id: SellerId },
    BuyerPut(BuyerPut<'static>),
    BuyerRemove { buyer_id: BuyerId },
    CampaignPut(CampaignPut<'static>),
    CampaignRemove { campaign_id: CampaignId },
    SetStatus(SetStatus),
}

/// Why an admin change was refused: a code of `codes.md` (7xx) and a sentence naming what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub code: ErrorCode,
    pub message: String,
}

impl AdminError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.code.name().unwrap_or("UNKNOWN");
        write!(f, "{name} ({}): {}", self.code.0, self.message)
    }
}

impl std::error::Error for AdminError {}

/// The admin definitions, in id order so that snapshots and digests are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookDefs {
    pub verticals: BTreeMap<String, VerticalPut<'static>>,
    pub sellers: BTreeMap<SellerId, Seller<'static>>,
    pub buyers: BTreeMap<BuyerId, Buyer<'static>>,
    pub campaigns: BTreeMap<CampaignId, Campaign<'static>>,
}

/// Applies `create`/`update`/`upsert` to one map: the existence checks every put shares.
fn put<K: Ord + Copy + std::fmt::Display, V>(
    map: &mut BTreeMap<K, V>,
    what: &str,
    id: K,
    mode: PutMode,
    value: V,
) -> Result<(), AdminError> {
    let exists = map.contains_key(&id);
    match mode {
        PutMode::Create if exists => Err(AdminError::new(
            ErrorCode::ALREADY_EXISTS,
            format!("{what} {id} already exists"),
        )),
        PutMode::Update if !exists => Err(AdminError::new(
            ErrorCode::NOT_FOUND,
            format!("{what} {id} does not exist"),
        )),
        _ => {
            map.insert(id, value);
            Ok(())
        }
    }
}

fn not_found(what: &str, id: impl std::fmt::Display) -> AdminError {
    AdminError::new(ErrorCode::NOT_FOUND, format!("{what} {id} does not exist"))
}

impl BookDefs {
    /// Applies one change to the definitions: existence and reference checks only. What the
    /// compiled book checks (territories, filters, schedules, time zones) is checked by
    /// [`Book::compile`] afterwards.
    pub fn apply(&mut self, change: &AdminChange) -> Result<(), AdminError> {
        match change {
            AdminChange::VerticalPut(put_vertical) => {
                let name = put_vertical.vertical.as_str().to_owned();
                let exists = self.verticals.contains_key(&name);
                match put_vertical.mode {
                    PutMode::Create if exists => {
                        return Err(AdminError::new(
                            ErrorCode::ALREADY_EXISTS,
                            format!("vertical {name} already exists"),
                        ));
                    }
                    PutMode::Update if !exists => return Err(not_found("vertical", &name)),
                    _ => {}
                }
                self.verticals.insert(name, put_vertical.clone());
            }
            AdminChange::VerticalRemove { vertical } => {
                if !self.verticals.contains_key(vertical) {
                    return Err(not_found("vertical", vertical));
                }
                if let Some(campaign) = self
                    .campaigns
                    .values()
                    .find(|campaign| campaign.vertical.as_str() == vertical)
                {
                    return Err(AdminError::new(
                        ErrorCode::IN_USE,
                        format!(
                            "vertical {vertical} is used by campaign {}",
                            campaign.campaign_id
                        ),
                    ));
                }
                self.verticals.remove(vertical);
            }
            AdminChange::SellerPut(SellerPut { mode, seller }) => {
                let mut seller = seller.clone();
                if seller.secret.is_none() {
                    // An update without a secret keeps the one the seller has.
                    seller.secret = self
                        .sellers
                        .get(&seller.seller_id)
                        .and_then(|old| old.secret.clone());
                }
                put(&mut self.sellers, "seller", seller.seller_id, *mode, seller)?;
            }
            AdminChange::SellerRemove { seller_id } => {
                self.sellers
                    .remove(seller_id)
                    .ok_or_else(|| not_found("seller", seller_id))?;
            }
            AdminChange::BuyerPut(BuyerPut { mode, buyer }) => {
                let mut buyer = buyer.clone();
                if buyer.secret.is_none() {
                    buyer.secret = self
                        .buyers
                        .get(&buyer.buyer_id)
                        .and_then(|old| old.secret.clone());
                }
                put(&mut self.buyers, "buyer", buyer.buyer_id, *mode, buyer)?;
            }
            AdminChange::BuyerRemove { buyer_id } => {
                if !self.buyers.contains_key(buyer_id) {
                    return Err(not_found("buyer", buyer_id));
                }
                if let Some(campaign) = self
                    .campaigns
                    .values()
                    .find(|campaign| campaign.buyer_id == *buyer_id)
                {
                    return Err(AdminError::new(
                        ErrorCode::IN_USE,
                        format!(
                            "buyer {buyer_id} still has campaign {}",
                            campaign.campaign_id
                        ),
                    ));
                }
                self.buyers.remove(buyer_id);
            }
            AdminChange::CampaignPut(CampaignPut { mode, campaign }) => {
                if !self.buyers.contains_key(&campaign.buyer_id) {
                    return Err(not_found("buyer", campaign.buyer_id));
                }
                if !self.verticals.contains_key(campaign.vertical.as_str()) {
                    return Err(not_found("vertical", campaign.vertical.as_str()));
                }
                put(
                    &mut self.campaigns,
                    "campaign",
                    campaign.campaign_id,
                    *mode,
                    campaign.clone(),
                )?;
            }
            AdminChange::CampaignRemove { campaign_id } => {
                self.campaigns
                    .remove(campaign_id)
                    .ok_or_else(|| not_found("campaign", campaign_id))?;
            }
            AdminChange::SetStatus(SetStatus { target, id, status }) => {
                let slot = match target {
                    StatusTarget::Seller => self.sellers.get_mut(id).map(|s| &mut s.status),
                    StatusTarget::Buyer => self.buyers.get_mut(id).map(|b| &mut b.status),
                    StatusTarget::Campaign => self.campaigns.get_mut(id).map(|c| &mut c.status),
                };
                *slot.ok_or_else(|| not_found(target_name(*target), id))? = *status;
            }
        }
        Ok(())
    }
}

fn target_name(target: StatusTarget) -> &'static str {
    match target {
        StatusTarget::Seller => "seller",
        StatusTarget::Buyer => "buyer",
        StatusTarget::Campaign => "campaign",
    }
}

/// A vertical as auctions use it.
#[derive(Debug)]
pub struct CompiledVertical {
    pub name: Box<str>,
    pub rules: VerticalRules,
    /// The ping tree's strategy per listed tier, sorted by tier; unlisted tiers use highest bid.
    tiers: Vec<(u8, Strategy)>,
}

impl CompiledVertical {
    /// The strategy of one tier of this vertical's ping tree.
    pub fn strategy_of(&self, tier: u8) -> Strategy {
        self.tiers
            .binary_search_by_key(&tier, |&(t, _)| t)
            .map_or(Strategy::HighestBid, |at| self.tiers[at].1)
    }
}

/// A seller as auctions use it.
#[derive(Debug)]
pub struct CompiledSeller {
    pub id: SellerId,
    pub active: bool,
    verticals: FxHashSet<VerticalIx>,
    pub margin_bps: u16,
    pub margin_fixed: Money,
    floors: FxHashMap<VerticalIx, Money>,
    buyers_allowed: FxHashSet<BuyerId>,
    buyers_blocked: FxHashSet<BuyerId>,
    /// The lists as masks over the book's campaigns; `None` for a seller without lists.
    admit_mask: Option<AdmitMask>,
}

impl CompiledSeller {
    pub fn sells(&self, vertical: VerticalIx) -> bool {
        self.verticals.contains(&vertical)
    }

    /// The seller's floor for a vertical: the lowest sale price it accepts (0 if none set).
    pub fn floor(&self, vertical: VerticalIx) -> Money {
        self.floors.get(&vertical).copied().unwrap_or(0)
    }

    /// The seller's allow and block lists over the book's campaigns, word by word.
    pub fn admitted(&self) -> AdmitReader<'_> {
        self.admit_mask
            .as_ref()
            .map_or(AdmitReader::ALL, AdmitMask::reader)
    }

    /// Whether the seller's allow and block lists let this buyer buy its leads.
    pub fn admits(&self, buyer: BuyerId) -> bool {
        // Most sellers list nobody: asked once per campaign of every auction, the empty lists
        // are not hashed into.
        (self.buyers_blocked.is_empty() || !self.buyers_blocked.contains(&buyer))
            && (self.buyers_allowed.is_empty() || self.buyers_allowed.contains(&buyer))
    }

    /// What the seller is paid for a sale at `price`: the price less the exchange's margin
    /// (`margin_bps` of the price, rounded down in the seller's disfavour by at most a cent,
    /// then `margin_fixed`), never below zero.
    pub fn payout(&self, price: Money) -> Money {
        let margin = u128::from(price) * u128::from(self.margin_bps) / 10_000;
        let margin = Money::try_from(margin).unwrap_or(Money::MAX);
        price
            .saturating_sub(margin)
            .saturating_sub(self.margin_fixed)
    }
}

/// A buyer as auctions use it.
#[derive(Debug)]
pub struct CompiledBuyer {
    pub id: BuyerId,
    /// Its position in this snapshot's dense buyer table (buyers in id order).
    pub ix: u32,
    pub active: bool,
    /// Index into [`Book::zones`].
    pub zone: u16,
    pub budget: CapLimits,
    pub delivery: DeliveryMode,
    pub accept_within_ms: u32,
}

/// A campaign as auctions use it.
#[derive(Debug)]
pub struct CompiledCampaign {
    pub id: CampaignId,
    /// Its position in this snapshot's campaign table, in ping tree order (see
    /// [`Book::compile`]).
    pub ix: CampaignIx,
    pub buyer: BuyerId,
    /// Its buyer's position in this snapshot's buyer table.
    pub buyer_ix: u32,
    pub vertical: VerticalIx,
    /// The campaign and its buyer are both active.
    pub active: bool,
    pub role: CampaignRole,
    pub filters: CompiledFilters,
    /// `filters` as indexes into the book's distinct filters ([`Book::predicate`]), in the
    /// same order.
    pub filter_ids: Box<[u32]>,
    pub schedule: Schedule,
    pub caps: CapLimits,
    pub sale_modes: SaleModes,
    pub pricing: Pricing,
    pub tier: u8,
    pub weight: u16,
    /// `duplicate_lookback_s` in microseconds.
    pub lookback_us: u64,
    /// The buyer's zone, copied here so the auction's loop touches one struct.
    pub zone: u16,
    /// The buyer's delivery mode: live campaigns bid; stored ones only have fixed prices.
    pub live: bool,
}

impl CompiledCampaign {
    /// Its price for one sale mode when it is a fixed price: `None` when it bids live or does
    /// not buy `mode`.
    pub fn fixed_price(&self, mode: SaleMode) -> Option<Money> {
        match self.pricing {
            Pricing::Fixed {
                exclusive_price,
                shared_price,
            } if self.sale_modes.contains(mode) => Some(match mode {
                SaleMode::Exclusive => exclusive_price,
                SaleMode::Shared => shared_price,
            }),
            _ => None,
        }
    }

    /// Where it sits in the book's numbering: its vertical, then primaries before fallbacks,
    /// then its tier, then its exclusive fixed price descending (campaigns without one after
    /// the others), then its id.
    fn tree_order(
        &self,
    ) -> (
        VerticalIx,
        bool,
        u8,
        std::cmp::Reverse<Option<Money>>,
        CampaignId,
    ) {
        (
            self.vertical,
            self.role == CampaignRole::Fallback,
            self.tier,
            std::cmp::Reverse(self.fixed_price(SaleMode::Exclusive)),
            self.id,
        )
    }
}

/// One compiled, immutable version of the book.
#[derive(Debug)]
pub struct Book {
    pub version: u64,
    verticals: Vec<CompiledVertical>,
    vertical_by_name: FxHashMap<Box<str>, VerticalIx>,
    sellers: FxHashMap<SellerId, CompiledSeller>,
    /// In id order; state kept per buyer (budgets) is indexed alike.
    buyers: Vec<CompiledBuyer>,
    buyer_by_id: FxHashMap<BuyerId, u32>,
    campaigns: Vec<CompiledCampaign>,
    campaign_by_id: FxHashMap<CampaignId, CampaignIx>,
    /// Every distinct IANA time zone of the book's buyers.
    pub zones: Vec<Box<str>>,
    pub territory: TerritoryIndex,
    /// Bitsets over `campaigns` of what the book alone decides (status, sale modes).
    pub availability: Availability,
    /// Every distinct filter of the book's campaigns, once: what `filter_ids` index.
    predicates: Vec<CompiledFilter>,
}

impl Book {
    /// An empty book (version 0), the state before any admin change.
    pub fn empty() -> Self {
        Self::compile(&BookDefs::default(), 0).unwrap_or_else(|error| {
            unreachable!("an empty book always compiles: {error}");
        })
    }

    /// Compiles definitions into a snapshot. Refuses, with the first problem found, a
    /// definition that cannot work: an unknown time zone, a bad territory, filter or schedule,
    /// `bid_min` above `bid_max`, a campaign of a live-bid kind for a stored buyer.
    pub fn compile(defs: &BookDefs, version: u64) -> Result<Self, AdminError> {
        let mut verticals = Vec::with_capacity(defs.verticals.len());
        let mut vertical_by_name = FxHashMap::default();
        for (name, definition) in &defs.verticals {
            let ix = VerticalIx(u16::try_from(verticals.len()).map_err(|_| {
                AdminError::new(ErrorCode::INVALID_DEFINITION, "more than 65,535 verticals")
            })?);
            let rules = VerticalRules::compile(&definition.required).map_err(|error| {
                AdminError::new(error.code, format!("vertical {name}: {}", error.message))
            })?;
            let mut tiers: Vec<(u8, Strategy)> = definition
                .tiers
                .iter()
                .map(|tier| (tier.tier, tier.strategy))
                .collect();
            tiers.sort_unstable_by_key(|&(tier, _)| tier);
            if tiers.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(AdminError::new(
                    ErrorCode::INVALID_DEFINITION,
                    format!("vertical {name} lists a tier twice"),
                ));
            }
            verticals.push(CompiledVertical {
                name: name.as_str().into(),
                rules,
                tiers,
            });
            vertical_by_name.insert(Box::<str>::from(name.as_str()), ix);
        }

        let mut sellers = FxHashMap::default();
        for seller in defs.sellers.values() {
            let mut floors = FxHashMap::default();
            for floor in &seller.floors {
                if let Some(&ix) = vertical_by_name.get(floor.vertical.as_str()) {
                    floors.insert(ix, floor.price);
                }
            }
            sellers.insert(
                seller.seller_id,
                CompiledSeller {
                    id: seller.seller_id,
                    active: seller.status == Status::Active,
                    verticals: seller
                        .verticals
                        .iter()
                        .filter_map(|name| vertical_by_name.get(name.as_str()).copied())
                        .collect(),
                    margin_bps: seller.margin_bps,
                    margin_fixed: seller.margin_fixed,
                    floors,
                    buyers_allowed: seller.buyers_allowed.iter().copied().collect(),
                    buyers_blocked: seller.buyers_blocked.iter().copied().collect(),
                    // Built once the campaigns are compiled, below.
                    admit_mask: None,
                },
            );
        }

        let mut zones: Vec<Box<str>> = Vec::new();
        let mut buyers = Vec::with_capacity(defs.buyers.len());
        let mut buyer_by_id = FxHashMap::default();
        for buyer in defs.buyers.values() {
            super::clock::ZoneClock::new(&buyer.time_zone).map_err(|_| {
                AdminError::new(
                    ErrorCode::UNKNOWN_TIME_ZONE,
                    format!(
                        "buyer {}: {:?} is not an IANA time zone name",
                        buyer.buyer_id, buyer.time_zone
                    ),
                )
            })?;
            let zone = match zones.iter().position(|zone| **zone == *buyer.time_zone) {
                Some(at) => at,
                None => {
                    zones.push(buyer.time_zone.as_ref().into());
                    zones.len() - 1
                }
            };
            let ix = u32::try_from(buyers.len()).map_err(|_| {
                AdminError::new(ErrorCode::INVALID_DEFINITION, "more than 2^32 buyers")
            })?;
            buyer_by_id.insert(buyer.buyer_id, ix);
            buyers.push(CompiledBuyer {
                id: buyer.buyer_id,
                ix,
                active: buyer.status == Status::Active,
                zone: u16::try_from(zone).map_err(|_| {
                    AdminError::new(ErrorCode::INVALID_DEFINITION, "too many time zones")
                })?,
                budget: CapLimits::budget(buyer.budget_day, buyer.budget_month),
                delivery: buyer.delivery,
                accept_within_ms: buyer.accept_within_ms,
            });
        }

        let mut campaigns = Vec::with_capacity(defs.campaigns.len());
        let mut campaign_by_id = FxHashMap::default();
        let mut predicates: Vec<CompiledFilter> = Vec::new();
        let mut predicate_ids: FxHashMap<CompiledFilter, u32> = FxHashMap::default();
        for campaign in defs.campaigns.values() {
            let id = campaign.campaign_id;
            let invalid = |message: String| {
                AdminError::new(
                    ErrorCode::INVALID_DEFINITION,
                    format!("campaign {id}: {message}"),
                )
            };
            let buyer = buyer_by_id
                .get(&campaign.buyer_id)
                .and_then(|&ix| buyers.get(ix as usize))
                .ok_or_else(|| not_found("buyer", campaign.buyer_id))?;
            let vertical = *vertical_by_name
                .get(campaign.vertical.as_str())
                .ok_or_else(|| not_found("vertical", campaign.vertical.as_str()))?;
            let live = buyer.delivery == DeliveryMode::Live;
            match campaign.pricing {
                Pricing::LiveBid {
                    bid_min, bid_max, ..
                } => {
                    if bid_min > bid_max {
                        return Err(invalid(format!(
                            "bid_min {bid_min} is above bid_max {bid_max}"
                        )));
                    }
                    if !live {
                        return Err(invalid(format!(
                            "live bidding needs a live buyer, and buyer {} takes stored deliveries",
                            buyer.id
                        )));
                    }
                    if campaign.role == CampaignRole::Fallback {
                        return Err(invalid(
                            "a fallback campaign buys at a fixed price, not by live bid".into(),
                        ));
                    }
                }
                Pricing::Fixed { .. } => {}
            }
            let filters = CompiledFilters::compile(&campaign.filters)
                .map_err(|error| invalid(error.message))?;
            let schedule =
                Schedule::compile(&campaign.schedule).map_err(|error| invalid(error.message))?;
            let mut filter_ids = Vec::with_capacity(filters.predicates().len());
            for filter in filters.predicates() {
                let next = u32::try_from(predicates.len()).map_err(|_| {
                    AdminError::new(ErrorCode::INVALID_DEFINITION, "more than 2^32 filters")
                })?;
                let id = *predicate_ids.entry(filter.clone()).or_insert_with(|| {
                    predicates.push(filter.clone());
                    next
                });
                filter_ids.push(id);
            }
            let ix = CampaignIx(u32::try_from(campaigns.len()).map_err(|_| {
                AdminError::new(ErrorCode::INVALID_DEFINITION, "more than 2^32 campaigns")
            })?);
            campaigns.push(CompiledCampaign {
                id,
                ix,
                buyer: campaign.buyer_id,
                buyer_ix: buyer.ix,
                vertical,
                active: campaign.status == Status::Active && buyer.active,
                role: campaign.role,
                filters,
                filter_ids: filter_ids.into_boxed_slice(),
                schedule,
                caps: CapLimits::from_caps(&campaign.caps),
                sale_modes: campaign.sale_modes,
                pricing: campaign.pricing,
                tier: campaign.tier,
                weight: campaign.weight.max(1),
                lookback_us: u64::from(campaign.duplicate_lookback_s).saturating_mul(1_000_000),
                zone: buyer.zone,
                live,
            });
        }
        // Numbered in ping tree order (`CompiledCampaign::tree_order`): the campaigns one
        // auction can match (those of its vertical) sit in a run of neighbouring bitset words,
        // which the territory index reads out and the auction walks 64 at a time; each tier of
        // the primaries, then of the fallbacks, is one run of indexes within it, in the order a
        // tier ordered by exclusive price asks them. Auctions list campaigns in this order.
        campaigns.sort_unstable_by_key(CompiledCampaign::tree_order);
        for (at, campaign) in (0u32..).zip(campaigns.iter_mut()) {
            campaign.ix = CampaignIx(at);
            campaign_by_id.insert(campaign.id, campaign.ix);
        }

        for seller in sellers.values_mut() {
            if !seller.buyers_allowed.is_empty() || !seller.buyers_blocked.is_empty() {
                seller.admit_mask = Some(AdmitMask::build(
                    &campaigns,
                    &seller.buyers_allowed,
                    &seller.buyers_blocked,
                ));
            }
        }
        let availability = Availability::build(&campaigns);

        let territory = TerritoryIndex::build(
            // In id order, so that the first invalid rule reported is that of the lowest id.
            defs.campaigns.values().map(|campaign| {
                let compiled = &campaigns[campaign_by_id[&campaign.campaign_id].0 as usize];
                (
                    compiled.ix,
                    compiled.vertical,
                    campaign.territory.as_slice(),
                )
            }),
            ZipTable::us(),
        )
        .map_err(|error| {
            let id = campaigns
                .get(error.campaign.0 as usize)
                .map_or(0, |campaign| campaign.id);
            AdminError::new(error.code, format!("campaign {id}: {}", error.message))
        })?;

        Ok(Self {
            version,
            verticals,
            vertical_by_name,
            sellers,
            buyers,
            buyer_by_id,
            campaigns,
            campaign_by_id,
            zones,
            territory,
            availability,
            predicates,
        })
    }

    /// The book's distinct filter `id` (see [`CompiledCampaign::filter_ids`]).
    pub fn predicate(&self, id: u32) -> &CompiledFilter {
        &self.predicates[id as usize]
    }

    /// How many distinct filters the book's campaigns have.
    pub fn predicate_count(&self) -> usize {
        self.predicates.len()
    }

    pub fn vertical_ix(&self, name: &str) -> Option<VerticalIx> {
        self.vertical_by_name.get(name).copied()
    }

    pub fn vertical(&self, ix: VerticalIx) -> &CompiledVertical {
        &self.verticals[usize::from(ix.0)]
    }

    pub fn seller(&self, id: SellerId) -> Option<&CompiledSeller> {
        self.sellers.get(&id)
    }

    pub fn buyer(&self, id: BuyerId) -> Option<&CompiledBuyer> {
        self.buyer_by_id
            .get(&id)
            .map(|&ix| &self.buyers[ix as usize])
    }

    /// The buyer at a position of this snapshot's buyer table (see [`CompiledBuyer::ix`]).
    pub fn buyer_at(&self, ix: u32) -> &CompiledBuyer {
        &self.buyers[ix as usize]
    }

    /// Every buyer, in id order (position = [`CompiledBuyer::ix`]).
    pub fn buyers(&self) -> &[CompiledBuyer] {
        &self.buyers
    }

    /// Every campaign, in ping tree order (position = [`CompiledCampaign::ix`]; see
    /// [`Book::compile`]).
    pub fn campaigns(&self) -> &[CompiledCampaign] {
        &self.campaigns
    }

    pub fn campaign(&self, ix: CampaignIx) -> &CompiledCampaign {
        &self.campaigns[ix.0 as usize]
    }

    pub fn campaign_by_id(&self, id: CampaignId) -> Option<&CompiledCampaign> {
        self.campaign_by_id.get(&id).map(|&ix| self.campaign(ix))
    }

    pub fn campaign_count(&self) -> usize {
        self.campaigns.len()
    }
}
