//! Selection: ranking the priced campaigns of one ping through the vertical's ping tree, and
//! choosing between an exclusive and a shared sale.
//!
//! The caller (the engine) has already left out every campaign that cannot take part
//! (territory, filters, schedule, caps, budgets, duplicates, no bid, timeout) and hands
//! [`Selector::select`] the rest as [`Candidate`]s, each with the price it pays per sale mode.
//! Selection is pure: no clock, no I/O, no global state; its only randomness is splitmix64's
//! finalizer over [`SelectionRequest::seed`] and each campaign's id, so the same input gives
//! the same [`Selection`] on every machine, whatever the order of the candidates.
//!
//! # Rules
//!
//! 1. **Eligibility.** A candidate is eligible for a sale mode when the ping allows that mode,
//!    it has a price for it, and that price is at least the floor. A candidate eligible for no
//!    allowed mode is listed in [`Selection::considered`]: [`Exclusion::BelowFloor`] when it has
//!    a price for an allowed mode that does not reach the floor, [`Exclusion::SaleMode`] when it
//!    has no price for any allowed mode. (A live campaign that did not bid is the engine's to
//!    report as `NoBid` or `Timeout`; it should not be passed in.)
//! 2. **Tiers.** The deciding tier is the lowest-numbered tier with at least one eligible
//!    candidate. Its strategy picks the winner(s); every later tier only feeds the runners-up,
//!    after the deciding tier's own, tier by tier in ascending order.
//! 3. **Strategies** order a tier's eligible candidates. "Adjusted price" is
//!    `price * (10_000 + adjust_bps) / 10_000`, compared exactly (as `price * (10_000 +
//!    adjust_bps)`, without rounding), so an adjustment never creates a tie that the prices did
//!    not have. Every order ends with the campaign id, which is unique, so it is total:
//!    - `highest_bid`: adjusted price descending, then `answered_at` ascending, then campaign
//!      id ascending. Each pays its own price (first price).
//!    - `second_price`: ordered as `highest_bid`. A winner pays the next candidate's adjusted
//!      price converted to the winner's scale, `ceil(next.price * (10_000 + next.adjust_bps) /
//!      (10_000 + winner.adjust_bps))`, at least the floor and at most its own price. That is
//!      the price at which it would *tie* the next candidate (the market's meaning of "second
//!      price": the $45 bidder facing a $42 bid pays $42, not $42.01). With no next candidate
//!      in the tier it pays the floor. A winner with `adjust_bps = -10_000` ranks at 0 whatever
//!      it bids, so it pays the floor. For a shared sale every winner pays against the first
//!      runner-up of the deciding tier (the best candidate that could have taken a slot). A
//!      runner-up of a second-price tier is priced the same way against the runner-up after it
//!      in its tier, which is what it would pay had the candidates before it not been there.
//!    - `round_robin`: `last_selected` ascending (least recently won first), then adjusted price
//!      descending, then `answered_at` ascending, then campaign id ascending. Own price.
//!    - `weighted`: a random order by weighted sampling without replacement (probability of
//!      each draw = weight / remaining weight): each candidate's [`weighted_draw`] ascending,
//!      then campaign id. A candidate's draw depends only on the seed, its tier, its campaign
//!      id and its weight, never on which other candidates are present. Integer arithmetic
//!      only, so identical on every machine. Own price.
//!    - `first_to_accept`: `answered_at` ascending, then adjusted price descending, then campaign
//!      id ascending. Own price.
//! 4. **Sale modes.** `exclusive` sells the first of the deciding tier's order; `shared` sells to
//!    the first candidates of that order with distinct buyers, at most `shared_buyers_max` (a
//!    buyer's second campaign is skipped: one buyer never gets the same lead twice). With
//!    `either`, both sales are worked out within the deciding tier as the tier's strategy would
//!    make them, and exclusive is sold only when what the exclusive winner pays is **strictly
//!    greater** than what the shared winners pay in all (equal → shared, as the spec says:
//!    "exclusive only when the best exclusive price beats the sum"). When the deciding tier has
//!    candidates for only one of the modes, that mode is sold. [`Selection::either`] records
//!    both totals for the trace.
//! 5. **Runners-up** are every other candidate eligible for the sold mode, in the order a
//!    cascade should try them, priced for that mode. They never include a winner and, for a
//!    shared sale, never a campaign of a buyer that already won (the cascade re-checks caps
//!    and budgets anyway).
//! 6. **Accounting.** Every candidate ends up in exactly one of `winners`, `runners_up` or
//!    `considered`, except, in a shared sale, the other campaigns of a winning buyer (they did
//!    not lose on price; the buyer already has the lead). A candidate eligible only for the
//!    mode that was not sold (with `either`) is listed in `considered` with the reason
//!    relative to the sold mode: `BelowFloor` if its price for it is below the floor,
//!    `SaleMode` if it has none. `considered` is sorted by campaign id.
//!
//! # Cost
//!
//! [`Selector`] keeps its buffers between calls, so a warm selector does not allocate. The work
//! is one pass over the candidates, a sort of the sold mode's eligible candidates by (tier,
//! strategy order) (for the other mode, with `either`, only its deciding tier), and for weighted
//! tiers one draw per candidate.

use std::cmp::Ordering;

use super::types::{BuyerId, CampaignId, Exclusion};
pub use crate::limits::AUCTION_CANDIDATES_MAX;
use crate::limits::{BASIS_POINTS_MAX, MONEY_MAX, SHARED_BUYERS_MAX};
use crate::protocol::{Money, PingSaleMode, SaleMode, Strategy};

/// One priced campaign that reached selection. Recorded (in `PingOpened`) as the compact
/// array [`super::events::CandidateRecord`]: a large book puts hundreds in one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(
    into = "super::events::CandidateRecord",
    from = "super::events::CandidateRecord"
)]
pub struct Candidate {
    /// The campaign; unique within one selection.
    pub campaign: CampaignId,
    /// The buyer that owns it: a shared sale has at most one campaign per buyer.
    pub buyer: BuyerId,
    /// Its tier in the vertical's ping tree: lower tiers are asked first.
    pub tier: u8,
    /// Its weight for the weighted strategy, 1 or more.
    pub weight: u16,
    /// What it pays for an exclusive sale (its fixed price or live bid); `None` if it does not
    /// buy exclusive or did not bid for it.
    pub exclusive_price: Option<Money>,
    /// The same for a shared sale.
    pub shared_price: Option<Money>,
    /// The exchange's ranking adjustment, -10,000..=10,000 basis points: ranking uses
    /// `price * (10_000 + adjust_bps) / 10_000`; the buyer still pays its own price.
    pub adjust_bps: i16,
    /// When its price became known (a fixed price: the ping's time; a live bid: its arrival),
    /// in microseconds since the Unix epoch; first_to_accept and tie-breaks use it.
    pub answered_at: u64,
    /// A monotonically increasing stamp of when it last won, 0 if never: round robin.
    pub last_selected: u64,
}

/// What the seller asked for, and the seed of this auction's randomness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelectionRequest {
    /// Exclusive, shared or either.
    pub sale_mode: PingSaleMode,
    /// The most buyers of a shared sale, 1..=`SHARED_BUYERS_MAX`; ignored for exclusive.
    pub shared_buyers_max: u8,
    /// The lowest price the seller accepts per campaign, before the exchange's margin.
    pub floor: Money,
    /// Seeds the weighted strategy's draws.
    pub seed: u64,
}

/// One campaign's place in a sale: a winner, or a runner-up the cascade may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Award {
    pub campaign: CampaignId,
    pub buyer: BuyerId,
    /// What the buyer pays if it takes the lead, before the exchange's margin.
    pub price: Money,
    /// The tier it was ranked in.
    pub tier: u8,
}

/// Why no sale could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoSaleReason {
    /// No candidate had a price for a sale mode the ping allows (or there were none).
    NoCandidates,
    /// Some candidates had prices for an allowed mode, but none reached the floor.
    BelowFloor,
}

/// The result of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A sale in this mode to [`Selection::winners`].
    Sale(SaleMode),
    NoSale(NoSaleReason),
}

/// What each sale would have brought when the ping allowed either mode and the deciding tier
/// had candidates for both: exclusive was chosen only if `exclusive_total > shared_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EitherComparison {
    /// What the exclusive winner would pay.
    pub exclusive_total: Money,
    /// What the shared winners would pay in all.
    pub shared_total: Money,
}

/// The outcome of one selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub outcome: Outcome,
    /// One award for an exclusive sale, 1..=`shared_buyers_max` with distinct buyers for a
    /// shared one, in the strategy's order; empty without a sale.
    pub winners: Vec<Award>,
    /// The rest of the candidates eligible for the sold mode, in the order a cascade tries
    /// them, each priced for that mode; empty without a sale.
    pub runners_up: Vec<Award>,
    /// Candidates selection itself left out, with why, sorted by campaign id.
    pub considered: Vec<(CampaignId, Exclusion)>,
    /// Both totals, when the ping allowed either mode and both were possible.
    pub either: Option<EitherComparison>,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            outcome: Outcome::NoSale(NoSaleReason::NoCandidates),
            winners: Vec::new(),
            runners_up: Vec::new(),
            considered: Vec::new(),
            either: None,
        }
    }
}

impl Selection {
    fn clear(&mut self) {
        self.outcome = Outcome::NoSale(NoSaleReason::NoCandidates);
        self.winners.clear();
        self.runners_up.clear();
        self.considered.clear();
        self.either = None;
    }
}

/// A candidate eligible for one sale mode, reduced to what ranking reads, so that sorting moves
/// 40 bytes per candidate. The rest (buyer, price, adjustment, weight) is read through `ix`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Its price for this mode times `10_000 + adjust_bps`: the adjusted price in 1/10,000
    /// cents, exact. At most `MONEY_MAX * 20_000`, which fits a u64.
    adjusted: u64,
    answered_at: u64,
    last_selected: u64,
    campaign: CampaignId,
    /// Its position in the caller's candidates.
    ix: u32,
    tier: u8,
    /// Its tier's strategy.
    strategy: Strategy,
    /// Its [`weighted_draw`] when the strategy is weighted, else 0.
    draw: u64,
}

impl Entry {
    /// The strategy's order within a tier; every arm ends with the campaign id, so the order is
    /// total and does not depend on the input's order.
    fn rank(&self, other: &Self) -> Ordering {
        let by_adjusted = other.adjusted.cmp(&self.adjusted);
        self.tier
            .cmp(&other.tier)
            .then_with(|| match self.strategy {
                Strategy::HighestBid | Strategy::SecondPrice => {
                    by_adjusted.then(self.answered_at.cmp(&other.answered_at))
                }
                Strategy::RoundRobin => self
                    .last_selected
                    .cmp(&other.last_selected)
                    .then(by_adjusted)
                    .then(self.answered_at.cmp(&other.answered_at)),
                Strategy::FirstToAccept => {
                    self.answered_at.cmp(&other.answered_at).then(by_adjusted)
                }
                Strategy::Weighted => self.draw.cmp(&other.draw),
            })
            .then(self.campaign.cmp(&other.campaign))
    }
}

/// `10_000 + adjust_bps`: the ranking factor in basis points, 0..=20,000.
fn factor(candidate: &Candidate) -> u64 {
    u64::try_from(i64::from(candidate.adjust_bps) + i64::from(BASIS_POINTS_MAX)).unwrap_or(0)
}

/// The candidate's price for `mode`; 0 for none, which no eligible candidate has.
fn price_for(candidate: &Candidate, mode: SaleMode) -> Money {
    match mode {
        SaleMode::Exclusive => candidate.exclusive_price,
        SaleMode::Shared => candidate.shared_price,
    }
    .unwrap_or(0)
}

/// One sale mode's view of the auction: its eligible candidates and how to price them.
#[derive(Clone, Copy)]
struct Market<'a> {
    candidates: &'a [Candidate],
    mode: SaleMode,
    floor: Money,
}

impl Market<'_> {
    fn candidate(&self, entry: &Entry) -> &Candidate {
        &self.candidates[entry.ix as usize]
    }

    /// What `entry` pays when it sells ahead of `next`, the best candidate of its tier that
    /// would have taken its place: its own price, or at second price the price at which it
    /// ties `next` (see the module's rules).
    fn price(&self, entry: &Entry, next: Option<&Entry>) -> Money {
        let candidate = self.candidate(entry);
        let own = price_for(candidate, self.mode);
        if entry.strategy != Strategy::SecondPrice {
            return own;
        }
        let factor = factor(candidate);
        let tie_price = match next {
            Some(next) if factor > 0 => next.adjusted.div_ceil(factor),
            _ => self.floor,
        };
        tie_price.max(self.floor).min(own)
    }

    fn award(&self, entry: &Entry, next: Option<&Entry>) -> Award {
        Award {
            campaign: entry.campaign,
            buyer: self.candidate(entry).buyer,
            price: self.price(entry, next),
            tier: entry.tier,
        }
    }

    /// Splits the ordered `entries` into winners (from the first `deciding_end`, at most
    /// `winners_max`, distinct buyers) and runners-up (the rest; for a shared sale, not of a
    /// winning buyer), as positions in `entries`, stopping once `runners_up_max` runners-up are
    /// found. Only the first `ordered` entries are in order: false when the split needed more.
    #[allow(clippy::too_many_arguments)]
    fn split(
        &self,
        entries: &[Entry],
        deciding_end: usize,
        ordered: usize,
        winners_max: usize,
        runners_up_max: usize,
        winners: &mut Vec<u32>,
        runners_up: &mut Vec<u32>,
    ) -> bool {
        winners.clear();
        runners_up.clear();
        let shared = self.mode == SaleMode::Shared;
        for (position, entry) in (0..).zip(entries) {
            // Once a runner-up is found the winners are final: a runner-up of the deciding
            // tier comes after the winners are full (or is a winning buyer's, which a shared
            // sale skips and an exclusive one only meets after its single winner), and one of
            // a later tier after the deciding tier is done.
            if runners_up.len() >= runners_up_max {
                return true;
            }
            if position as usize >= ordered {
                return false;
            }
            let buyer = self.candidate(entry).buyer;
            let buyer_won = winners
                .iter()
                .any(|&w| self.candidate(&entries[w as usize]).buyer == buyer);
            if (position as usize) < deciding_end && winners.len() < winners_max && !buyer_won {
                winners.push(position);
            } else if !(shared && buyer_won) {
                runners_up.push(position);
            }
        }
        true
    }

    /// What a sale of the ordered deciding tier to at most `winners_max` buyers brings in all.
    /// Only the first `ordered` entries are in order: `None` when the total needed more.
    fn sale_total(&self, tier: &[Entry], ordered: usize, winners_max: usize) -> Option<Money> {
        let mut buyers = [0; SHARED_BUYERS_MAX as usize];
        let mut winners = [0_usize; SHARED_BUYERS_MAX as usize];
        let mut count = 0;
        let mut first_runner_up = None;
        for (position, entry) in tier.iter().enumerate() {
            if position >= ordered {
                return None;
            }
            let buyer = self.candidate(entry).buyer;
            let buyer_won = buyers[..count].contains(&buyer);
            if count < winners_max && !buyer_won {
                buyers[count] = buyer;
                winners[count] = position;
                count += 1;
            } else if !(self.mode == SaleMode::Shared && buyer_won) {
                first_runner_up = Some(entry);
                break;
            }
        }
        Some(
            winners[..count]
                .iter()
                .map(|&w| self.price(&tier[w], first_runner_up))
                .sum(),
        )
    }
}

/// Ranks candidates, keeping its buffers between calls so that a warm selector does not
/// allocate.
#[derive(Debug, Default)]
pub struct Selector {
    selection: Selection,
    /// Candidates eligible for an exclusive sale.
    exclusive: Vec<Entry>,
    /// Candidates eligible for a shared sale.
    shared: Vec<Entry>,
    /// Positions of the winners in the sold mode's entries.
    winners: Vec<u32>,
    /// Positions of the runners-up in the sold mode's entries, in order.
    runners_up: Vec<u32>,
}

impl Selector {
    /// An empty selector; its buffers grow to the largest auction it sees.
    pub fn new() -> Self {
        Self::default()
    }

    /// A selector with room for `candidates` candidates, so that even its first call does not
    /// allocate (as long as the auction fits).
    pub fn with_capacity(candidates: usize) -> Self {
        Self {
            selection: Selection {
                winners: Vec::with_capacity(usize::from(SHARED_BUYERS_MAX)),
                runners_up: Vec::with_capacity(candidates),
                considered: Vec::with_capacity(candidates),
                ..Selection::default()
            },
            exclusive: Vec::with_capacity(candidates),
            shared: Vec::with_capacity(candidates),
            winners: Vec::with_capacity(usize::from(SHARED_BUYERS_MAX)),
            runners_up: Vec::with_capacity(candidates),
        }
    }

    /// Selects the winner(s) and ranks the runners-up of one ping; see the module's rules.
    /// `strategy_of_tier` gives each tier's strategy (the vertical's ping tree; a tier it does
    /// not list uses highest_bid). It is called at most once per tier.
    ///
    /// # Panics
    ///
    /// On the caller's bugs: more than [`AUCTION_CANDIDATES_MAX`] candidates, a weight of 0, an
    /// `adjust_bps` outside -10,000..=10,000, a price above `MONEY_MAX`, or a
    /// `shared_buyers_max` outside 1..=`SHARED_BUYERS_MAX` when shared sales are allowed.
    pub fn select(
        &mut self,
        candidates: &[Candidate],
        strategy_of_tier: impl Fn(u8) -> Strategy,
        request: &SelectionRequest,
    ) -> &Selection {
        self.select_ranked(candidates, strategy_of_tier, request, usize::MAX)
    }

    /// As [`select`](Self::select), keeping only the first `runners_up_max` runners-up: the
    /// same winners, prices, `considered` and `either`, and `runners_up` truncated to its first
    /// `runners_up_max`, each priced as `select` prices it. Only as much of the order as that
    /// needs is worked out: a partial selection of the best entries, then a sort of those, so
    /// an auction of n candidates costs O(n + k log k) instead of O(n log n).
    ///
    /// # Panics
    ///
    /// As [`select`](Self::select).
    pub fn select_ranked(
        &mut self,
        candidates: &[Candidate],
        strategy_of_tier: impl Fn(u8) -> Strategy,
        request: &SelectionRequest,
        runners_up_max: usize,
    ) -> &Selection {
        assert!(
            candidates.len() <= AUCTION_CANDIDATES_MAX,
            "too many candidates"
        );
        let (allow_exclusive, allow_shared) = match request.sale_mode {
            PingSaleMode::Exclusive => (true, false),
            PingSaleMode::Shared => (false, true),
            PingSaleMode::Either => (true, true),
        };
        if allow_shared {
            assert!(
                (1..=SHARED_BUYERS_MAX).contains(&request.shared_buyers_max),
                "shared_buyers_max out of range"
            );
        }
        let floor = request.floor;
        self.selection.clear();
        self.exclusive.clear();
        self.shared.clear();

        // Eligibility per mode; the ineligible are accounted for at once.
        let mut strategies: [Option<Strategy>; 256] = [None; 256];
        let mut any_below_floor = false;
        for (ix, candidate) in (0..).zip(candidates) {
            assert!(candidate.weight >= 1, "a campaign's weight is at least 1");
            assert!(
                candidate.adjust_bps.unsigned_abs() <= BASIS_POINTS_MAX,
                "adjust_bps out of range"
            );
            assert!(
                candidate.exclusive_price.unwrap_or(0) <= MONEY_MAX
                    && candidate.shared_price.unwrap_or(0) <= MONEY_MAX,
                "price above MONEY_MAX"
            );
            let exclusive = candidate.exclusive_price.filter(|_| allow_exclusive);
            let shared = candidate.shared_price.filter(|_| allow_shared);
            let exclusive_ok = exclusive.is_some_and(|price| price >= floor);
            let shared_ok = shared.is_some_and(|price| price >= floor);
            if !exclusive_ok && !shared_ok {
                let reason = if exclusive.is_some() || shared.is_some() {
                    any_below_floor = true;
                    Exclusion::BelowFloor
                } else {
                    Exclusion::SaleMode
                };
                self.selection.considered.push((candidate.campaign, reason));
                continue;
            }
            let strategy = *strategies[usize::from(candidate.tier)]
                .get_or_insert_with(|| strategy_of_tier(candidate.tier));
            let factor = factor(candidate);
            let draw = if strategy == Strategy::Weighted {
                weighted_draw(
                    request.seed,
                    candidate.tier,
                    candidate.campaign,
                    candidate.weight,
                )
            } else {
                0
            };
            let entry = |price: Money| Entry {
                adjusted: price * factor,
                answered_at: candidate.answered_at,
                last_selected: candidate.last_selected,
                campaign: candidate.campaign,
                ix,
                tier: candidate.tier,
                strategy,
                draw,
            };
            if let Some(price) = exclusive.filter(|_| exclusive_ok) {
                self.exclusive.push(entry(price));
            }
            if let Some(price) = shared.filter(|_| shared_ok) {
                self.shared.push(entry(price));
            }
        }

        let Some(deciding) = self
            .exclusive
            .iter()
            .chain(&self.shared)
            .map(|e| e.tier)
            .min()
        else {
            self.selection.outcome = Outcome::NoSale(if any_below_floor {
                NoSaleReason::BelowFloor
            } else {
                NoSaleReason::NoCandidates
            });
            self.selection
                .considered
                .sort_unstable_by_key(|&(campaign, _)| campaign);
            return &self.selection;
        };

        // First order only as many entries as the winners, the runners-up kept, the one after
        // them (a second-price runner-up pays against it) and a shared sale's skipped campaigns
        // of winning buyers usually take; when that falls short, order them all. Either way the
        // order of what is used is the same: it is total, and a weighted tier's first draws do
        // not depend on how many follow.
        let mut need = if runners_up_max == usize::MAX {
            usize::MAX
        } else {
            runners_up_max.saturating_add(2 * usize::from(SHARED_BUYERS_MAX) + 1)
        };
        let mode = loop {
            if let Some(mode) = self.rank(candidates, request, deciding, need, runners_up_max) {
                break mode;
            }
            need = usize::MAX;
        };

        // Candidates eligible only for the mode not sold (with `either`), with the reason
        // relative to the sold mode.
        let unsold = match mode {
            SaleMode::Exclusive => &self.shared,
            SaleMode::Shared => &self.exclusive,
        };
        for entry in unsold {
            let candidate = &candidates[entry.ix as usize];
            let price = match mode {
                SaleMode::Exclusive => candidate.exclusive_price,
                SaleMode::Shared => candidate.shared_price,
            };
            let reason = match price {
                Some(price) if price >= floor => continue,
                Some(_) => Exclusion::BelowFloor,
                None => Exclusion::SaleMode,
            };
            self.selection.considered.push((entry.campaign, reason));
        }
        self.selection.outcome = Outcome::Sale(mode);
        self.selection
            .considered
            .sort_unstable_by_key(|&(campaign, _)| campaign);
        &self.selection
    }

    /// Chooses the sale mode and fills the winners and the first `runners_up_max` runners-up,
    /// ordering at most the first `need` entries of each mode. `None` (with nothing filled)
    /// when that prefix was too short to decide.
    fn rank(
        &mut self,
        candidates: &[Candidate],
        request: &SelectionRequest,
        deciding: u8,
        need: usize,
        runners_up_max: usize,
    ) -> Option<SaleMode> {
        let floor = request.floor;
        let market = |mode| Market {
            candidates,
            mode,
            floor,
        };
        let shared_max = usize::from(request.shared_buyers_max);
        let in_deciding = |entries: &[Entry]| entries.iter().filter(|e| e.tier == deciding).count();
        let exclusive_end = in_deciding(&self.exclusive);
        let shared_end = in_deciding(&self.shared);
        let mut exclusive_ordered = 0;
        let mut shared_ordered = 0;
        let mode = match (exclusive_end > 0, shared_end > 0) {
            (true, false) => SaleMode::Exclusive,
            (false, true) => SaleMode::Shared,
            _ => {
                // The deciding tier of both modes, as far as their totals need.
                for (entries, ordered) in [
                    (&mut self.exclusive, &mut exclusive_ordered),
                    (&mut self.shared, &mut shared_ordered),
                ] {
                    *ordered = order_prefix(entries, 0, need, true);
                }
                let exclusive_total = market(SaleMode::Exclusive).sale_total(
                    &self.exclusive[..exclusive_end],
                    exclusive_ordered,
                    1,
                )?;
                let shared_total = market(SaleMode::Shared).sale_total(
                    &self.shared[..shared_end],
                    shared_ordered,
                    shared_max,
                )?;
                self.selection.either = Some(EitherComparison {
                    exclusive_total,
                    shared_total,
                });
                if exclusive_total > shared_total {
                    SaleMode::Exclusive
                } else {
                    SaleMode::Shared
                }
            }
        };
        let (sold, sold_end, sold_ordered, winners_max) = match mode {
            SaleMode::Exclusive => (&mut self.exclusive, exclusive_end, exclusive_ordered, 1),
            SaleMode::Shared => (&mut self.shared, shared_end, shared_ordered, shared_max),
        };
        let ordered = order_prefix(sold, sold_ordered, need, false);
        let sold = &*sold;

        // Prices: the winners against the deciding tier's first runner-up; each runner-up
        // against the next runner-up in its tier (so one more is ranked than is kept).
        let market = market(mode);
        let complete = market.split(
            sold,
            sold_end,
            ordered,
            winners_max,
            runners_up_max.saturating_add(1),
            &mut self.winners,
            &mut self.runners_up,
        );
        if !complete {
            self.selection.either = None;
            return None;
        }
        let at = |position: &u32| &sold[*position as usize];
        let first_runner_up = self
            .runners_up
            .first()
            .map(at)
            .filter(|r| r.tier == deciding);
        for winner in self.winners.iter().map(at) {
            self.selection
                .winners
                .push(market.award(winner, first_runner_up));
        }
        for (i, runner_up) in self
            .runners_up
            .iter()
            .take(runners_up_max)
            .map(at)
            .enumerate()
        {
            let next = self
                .runners_up
                .get(i + 1)
                .map(at)
                .filter(|n| n.tier == runner_up.tier);
            self.selection
                .runners_up
                .push(market.award(runner_up, next));
        }
        Some(mode)
    }
}

/// Selects with a fresh [`Selector`]: the same result, allocating its buffers each call.
pub fn select(
    candidates: &[Candidate],
    strategy_of_tier: impl Fn(u8) -> Strategy,
    request: &SelectionRequest,
) -> Selection {
    Selector::new()
        .select(candidates, strategy_of_tier, request)
        .clone()
}

/// Moves the entries of `tier` to the front, returning how many there are.
fn move_tier_first(entries: &mut [Entry], tier: u8) -> usize {
    let mut end = 0;
    for i in 0..entries.len() {
        if entries[i].tier == tier {
            entries.swap(i, end);
            end += 1;
        }
    }
    end
}

/// Orders the first `need` entries of `entries` (all of them for `usize::MAX`): tiers
/// ascending, each by its strategy ([`Entry::rank`], then the draws of weighted tiers). The
/// first `start` are already in order and end a tier (or `need` was reached); with
/// `first_tier_only`, only one more tier is ordered. Returns how many are now in order; the rest
/// are left in no particular order. A tier that is only partly needed costs a partial selection
/// (O(n)) and a sort of the part; a weighted one its O(n) tree and a draw per needed entry.
fn order_prefix(entries: &mut [Entry], start: usize, need: usize, first_tier_only: bool) -> usize {
    let mut start = start;
    while start < entries.len() && start < need {
        let rest = &mut entries[start..];
        let Some(tier) = rest.iter().map(|e| e.tier).min() else {
            break;
        };
        let end = move_tier_first(rest, tier);
        let segment = &mut rest[..end];
        let wanted = need - start;
        if wanted < end {
            segment.select_nth_unstable_by(wanted, Entry::rank);
            segment[..wanted].sort_unstable_by(Entry::rank);
        } else {
            segment.sort_unstable_by(Entry::rank);
        }
        start += end.min(wanted);
        if first_tier_only {
            break;
        }
    }
    start.min(entries.len())
}

/// The weighted strategy's draw of one campaign in tier `tier` of an auction seeded `seed`: a
/// tier orders its campaigns by draw ascending (then campaign id), which is weighted sampling
/// without replacement (Efraimidis and Spirakis 2006: each campaign's exponential variate
/// divided by its weight; the smallest is drawn first with probability weight / total weight,
/// and so on down the order). A campaign's draw depends on nothing but its own id, weight, tier
/// and the seed, so the order of any set of campaigns is the order of their draws: the ping
/// tree's walk draws only the campaigns it reaches, and evaluating every campaign gives the
/// same order. Integer arithmetic only, so identical on every machine: the uniform variate is
/// `u = x / 2^64` with `x = mix64(mix64(seed + tier) ^ campaign) | 1`, its exponential variate
/// `-log2 u` in 32-bit fixed point (a base 2 logarithm scales every draw alike, so the order is
/// the same as with natural logarithms) from a 1,024-step table with linear interpolation, and
/// the draw that shifted left 16 and divided by the weight.
///
/// # Panics
///
/// On a weight of 0 (a caller's bug: weights are 1 or more).
pub fn weighted_draw(seed: u64, tier: u8, campaign: CampaignId, weight: u16) -> u64 {
    assert!(weight > 0, "weights are 1 or more");
    let x = mix64(mix64(seed.wrapping_add(u64::from(tier))) ^ campaign) | 1;
    // -log2(x / 2^64) = 64 - log2(x), with log2(x) = its integer part + log2 of the mantissa.
    let whole = u64::from(63 - x.leading_zeros());
    let fraction = (x << x.leading_zeros()) << 1;
    #[allow(clippy::cast_possible_truncation)] // the top 10 bits
    let step = (fraction >> 54) as usize;
    let between = (fraction >> 22) & 0xFFFF_FFFF;
    let (low, high) = (LOG2_STEPS[step], LOG2_STEPS[step + 1]);
    let log2_q32 = (whole << 32) + low + (((high - low) * between) >> 32);
    let exponential_q32 = (64 << 32) - log2_q32;
    (exponential_q32 << 16) / u64::from(weight)
}

/// `log2(1 + i / 1024)` in 32-bit fixed point for i in 0..=1024, worked out at compile time by
/// the integer square-and-halve method (each squaring of the mantissa gives the next bit).
const LOG2_STEPS: [u64; 1025] = {
    let mut table = [0u64; 1025];
    let mut i = 0;
    while i <= 1024 {
        // The mantissa 1 + i / 1024 in fixed point with 62 fraction bits.
        let mut y: u128 = (1 << 62) + ((i as u128) << 52);
        let mut bits = 0u64;
        let mut bit = 0;
        while bit < 32 {
            y = (y * y) >> 62;
            bits <<= 1;
            if y >= 2 << 62 {
                y >>= 1;
                bits |= 1;
            }
            bit += 1;
        }
        table[i] = if i == 1024 { 1 << 32 } else { bits };
        i += 1;
    }
    table
};

/// splitmix64's finalizer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    use super::*;
    use crate::protocol::Strategy;

    const FLOOR: Money = 1_000;
    /// The ping's time in the tests: fixed prices are known at once.
    const PINGED_AT: u64 = 1_700_000_000_000_000;

    /// A campaign of its own buyer (`buyer = campaign + 100`) in tier 0 that buys exclusive at
    /// `price`.
    fn exclusive(campaign: CampaignId, price: Money) -> Candidate {
        Candidate {
            campaign,
            buyer: campaign + 100,
            tier: 0,
            weight: 1,
            exclusive_price: Some(price),
            shared_price: None,
            adjust_bps: 0,
            answered_at: PINGED_AT,
            last_selected: 0,
        }
    }

    /// The same, buying shared only.
    fn shared(campaign: CampaignId, price: Money) -> Candidate {
        Candidate {
            exclusive_price: None,
            shared_price: Some(price),
            ..exclusive(campaign, 0)
        }
    }

    fn in_tier(tier: u8, candidate: Candidate) -> Candidate {
        Candidate { tier, ..candidate }
    }

    fn request(sale_mode: PingSaleMode, shared_buyers_max: u8) -> SelectionRequest {
        SelectionRequest {
            sale_mode,
            shared_buyers_max,
            floor: FLOOR,
            seed: 7,
        }
    }

    fn exclusive_ping() -> SelectionRequest {
        request(PingSaleMode::Exclusive, 0)
    }

    fn every_tier(strategy: Strategy) -> impl Fn(u8) -> Strategy {
        move |_| strategy
    }

    /// (campaign, price) of each award, in order.
    fn paid(awards: &[Award]) -> Vec<(CampaignId, Money)> {
        awards.iter().map(|a| (a.campaign, a.price)).collect()
    }

    fn campaigns(awards: &[Award]) -> Vec<CampaignId> {
        awards.iter().map(|a| a.campaign).collect()
    }

    /// The seed's solar lead in ZIP 80331, pinged to six matching campaigns: three bid $38, $42
    /// and $45, three do not (the engine reports those as no bid and does not pass them in).
    fn solar_bids() -> Vec<Candidate> {
        vec![
            exclusive(1, 3_800),
            exclusive(2, 4_200),
            exclusive(3, 4_500),
        ]
    }

    #[test]
    fn worked_example_highest_bid_sells_to_the_45_dollar_bid_at_its_price() {
        let selection = select(
            &solar_bids(),
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Exclusive));
        assert_eq!(paid(&selection.winners), [(3, 4_500)]);
        assert_eq!(paid(&selection.runners_up), [(2, 4_200), (1, 3_800)]);
        assert!(selection.considered.is_empty());
        assert_eq!(selection.either, None);
    }

    #[test]
    fn worked_example_second_price_pays_the_next_bid_exactly() {
        let selection = select(
            &solar_bids(),
            every_tier(Strategy::SecondPrice),
            &exclusive_ping(),
        );
        assert_eq!(paid(&selection.winners), [(3, 4_200)]);
        // Should the cascade reach them, each pays what the one after it bid; the last one
        // pays the floor.
        assert_eq!(paid(&selection.runners_up), [(2, 3_800), (1, FLOOR)]);
    }

    #[test]
    fn second_price_alone_pays_the_floor_and_never_more_than_its_bid() {
        let selection = select(
            &[exclusive(1, 5_000)],
            every_tier(Strategy::SecondPrice),
            &exclusive_ping(),
        );
        assert_eq!(paid(&selection.winners), [(1, FLOOR)]);

        // A boosted winner can rank above a higher bid; it still never pays more than its own.
        let boosted = Candidate {
            adjust_bps: 5_000,
            ..exclusive(1, 4_000)
        };
        let selection = select(
            &[boosted, exclusive(2, 4_500)],
            every_tier(Strategy::SecondPrice),
            &exclusive_ping(),
        );
        // 4,500 on the winner's scale is 4,500 / 1.5 = 3,000.
        assert_eq!(paid(&selection.winners), [(1, 3_000)]);
    }

    #[test]
    fn second_price_converts_the_next_bid_to_the_winners_scale_rounding_up() {
        let winner = Candidate {
            adjust_bps: 1_000,
            ..exclusive(1, 4_000)
        }; // ranks at 4,400
        let next = exclusive(2, 4_200);
        let selection = select(
            &[next, winner],
            every_tier(Strategy::SecondPrice),
            &exclusive_ping(),
        );
        // 4,200 / 1.1 = 3,818.18...: the smallest cent amount that ties is 3,819.
        assert_eq!(paid(&selection.winners), [(1, 3_819)]);

        // Never below the floor, even when the next bid converts to less.
        let request = SelectionRequest {
            floor: 4_100,
            ..exclusive_ping()
        };
        let winner = Candidate {
            adjust_bps: 10_000,
            ..exclusive(1, 4_200)
        }; // ranks at 8,400
        let selection = select(
            &[winner, exclusive(2, 4_100)],
            every_tier(Strategy::SecondPrice),
            &request,
        );
        assert_eq!(paid(&selection.winners), [(1, 4_100)]);
    }

    #[test]
    fn adjustments_change_the_ranking_but_not_the_price_paid() {
        // 4,200 with +10 % ranks at 4,620, above 4,500; -50 % on 4,500 ranks it at 2,250,
        // below 3,800.
        let candidates = [
            exclusive(1, 3_800),
            Candidate {
                adjust_bps: 1_000,
                ..exclusive(2, 4_200)
            },
            Candidate {
                adjust_bps: -5_000,
                ..exclusive(3, 4_500)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(paid(&selection.winners), [(2, 4_200)]);
        assert_eq!(paid(&selection.runners_up), [(1, 3_800), (3, 4_500)]);
    }

    #[test]
    fn an_adjustment_too_small_to_show_in_cents_still_breaks_the_tie() {
        // 4,500 +1 bp ranks at 4,500.45: ranking is exact, not rounded to a cent.
        let candidates = [
            exclusive(1, 4_500),
            Candidate {
                adjust_bps: 1,
                ..exclusive(2, 4_500)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(campaigns(&selection.winners), [2]);
    }

    #[test]
    fn equal_prices_go_to_the_first_to_answer_then_the_lowest_campaign_id() {
        let candidates = [
            Candidate {
                answered_at: PINGED_AT + 30,
                ..exclusive(1, 4_000)
            },
            Candidate {
                answered_at: PINGED_AT + 20,
                ..exclusive(3, 4_000)
            },
            Candidate {
                answered_at: PINGED_AT + 20,
                ..exclusive(2, 4_000)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(campaigns(&selection.winners), [2]);
        assert_eq!(campaigns(&selection.runners_up), [3, 1]);
    }

    #[test]
    fn a_tier_all_below_the_floor_falls_through_to_the_next() {
        let candidates = [
            exclusive(1, 900),
            exclusive(2, 500),
            in_tier(1, exclusive(3, 2_000)),
            in_tier(1, exclusive(4, 3_000)),
            in_tier(2, exclusive(5, 9_000)),
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Exclusive));
        assert_eq!(paid(&selection.winners), [(4, 3_000)]);
        assert_eq!(selection.winners[0].tier, 1);
        // Tier 2's higher price comes after tier 1's runner-up: tiers are asked in order.
        assert_eq!(paid(&selection.runners_up), [(3, 2_000), (5, 9_000)]);
        assert_eq!(
            selection.considered,
            [(1, Exclusion::BelowFloor), (2, Exclusion::BelowFloor)]
        );
    }

    #[test]
    fn each_tier_ranks_its_runners_up_by_its_own_strategy() {
        let candidates = [
            exclusive(1, 5_000),
            in_tier(
                1,
                Candidate {
                    answered_at: PINGED_AT + 9,
                    ..exclusive(2, 8_000)
                },
            ),
            in_tier(
                1,
                Candidate {
                    answered_at: PINGED_AT + 3,
                    ..exclusive(3, 2_000)
                },
            ),
        ];
        let tree = |tier: u8| {
            if tier == 0 {
                Strategy::HighestBid
            } else {
                Strategy::FirstToAccept
            }
        };
        let selection = select(&candidates, tree, &exclusive_ping());
        assert_eq!(campaigns(&selection.winners), [1]);
        assert_eq!(campaigns(&selection.runners_up), [3, 2]);
    }

    #[test]
    fn no_sale_says_why() {
        let none = select(&[], every_tier(Strategy::HighestBid), &exclusive_ping());
        assert_eq!(none.outcome, Outcome::NoSale(NoSaleReason::NoCandidates));
        assert!(none.winners.is_empty() && none.runners_up.is_empty());

        let low = select(
            &[exclusive(1, 999), shared(2, 5_000)],
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(low.outcome, Outcome::NoSale(NoSaleReason::BelowFloor));
        assert_eq!(
            low.considered,
            [(1, Exclusion::BelowFloor), (2, Exclusion::SaleMode)]
        );

        let wrong_mode = select(
            &[shared(2, 5_000)],
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(
            wrong_mode.outcome,
            Outcome::NoSale(NoSaleReason::NoCandidates)
        );
        assert_eq!(wrong_mode.considered, [(2, Exclusion::SaleMode)]);
    }

    #[test]
    fn a_price_equal_to_the_floor_is_eligible() {
        let selection = select(
            &[exclusive(1, FLOOR)],
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(paid(&selection.winners), [(1, FLOOR)]);
    }

    #[test]
    fn round_robin_picks_the_least_recently_selected_and_rotates() {
        let mut candidates = vec![
            exclusive(3, 2_000),
            exclusive(1, 2_000),
            exclusive(2, 2_000),
        ];
        let mut selector = Selector::new();
        let mut won = Vec::new();
        for stamp in 1..=7 {
            let winner = selector
                .select(
                    &candidates,
                    every_tier(Strategy::RoundRobin),
                    &exclusive_ping(),
                )
                .winners[0];
            won.push(winner.campaign);
            // The engine stamps the winner; the next auction sees it.
            candidates
                .iter_mut()
                .find(|c| c.campaign == winner.campaign)
                .unwrap()
                .last_selected = stamp;
        }
        assert_eq!(won, [1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn round_robin_ignores_price_except_to_break_ties() {
        let candidates = [
            Candidate {
                last_selected: 5,
                ..exclusive(1, 9_000)
            },
            Candidate {
                last_selected: 2,
                ..exclusive(2, 2_000)
            },
            Candidate {
                last_selected: 0,
                ..exclusive(3, 1_500)
            },
            Candidate {
                last_selected: 0,
                ..exclusive(4, 1_600)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::RoundRobin),
            &exclusive_ping(),
        );
        // Never selected first (the better price first among them), then by age; own prices.
        assert_eq!(paid(&selection.winners), [(4, 1_600)]);
        assert_eq!(
            paid(&selection.runners_up),
            [(3, 1_500), (2, 2_000), (1, 9_000)]
        );
    }

    #[test]
    fn first_to_accept_picks_the_earliest_answer_at_its_price() {
        let candidates = [
            Candidate {
                answered_at: PINGED_AT + 4_000,
                ..exclusive(1, 9_000)
            },
            Candidate {
                answered_at: PINGED_AT + 1_200,
                ..exclusive(2, 1_500)
            },
            Candidate {
                answered_at: PINGED_AT + 2_500,
                ..exclusive(3, 4_000)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::FirstToAccept),
            &exclusive_ping(),
        );
        assert_eq!(paid(&selection.winners), [(2, 1_500)]);
        assert_eq!(paid(&selection.runners_up), [(3, 4_000), (1, 9_000)]);
    }

    fn weighted_candidates() -> Vec<Candidate> {
        vec![
            Candidate {
                weight: 1,
                ..exclusive(1, 2_000)
            },
            Candidate {
                weight: 2,
                ..exclusive(2, 2_000)
            },
            Candidate {
                weight: 7,
                ..exclusive(3, 2_000)
            },
        ]
    }

    #[test]
    fn weighted_is_the_same_for_the_same_seed_and_varies_with_it() {
        let candidates = weighted_candidates();
        let mut orders = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let request = SelectionRequest {
                seed,
                ..exclusive_ping()
            };
            let first = select(&candidates, every_tier(Strategy::Weighted), &request);
            let mut reversed = candidates.clone();
            reversed.reverse();
            let second = select(&reversed, every_tier(Strategy::Weighted), &request);
            assert_eq!(first, second);
            let mut order = campaigns(&first.winners);
            order.extend(campaigns(&first.runners_up));
            orders.insert(order);
        }
        // All 3! orders occur over 200 seeds.
        assert_eq!(orders.len(), 6);
    }

    #[test]
    fn weighted_orders_follow_the_weights() {
        // Weights 1, 2 and 7: campaign 3 wins 70 % of the time; the runners-up are drawn from
        // what remains, so 3 then 2 then 1 comes out 0.7 * 2/3 of the time, and so on.
        let candidates = weighted_candidates();
        let mut selector = Selector::new();
        let mut wins = [0_u32; 3];
        let mut orders = std::collections::BTreeMap::<Vec<CampaignId>, u32>::new();
        let seeds = 10_000;
        for seed in 0..seeds {
            let request = SelectionRequest {
                seed,
                ..exclusive_ping()
            };
            let selection = selector.select(&candidates, every_tier(Strategy::Weighted), &request);
            wins[usize::try_from(selection.winners[0].campaign - 1).unwrap()] += 1;
            let mut order = campaigns(&selection.winners);
            order.extend(campaigns(&selection.runners_up));
            *orders.entry(order).or_default() += 1;
        }
        // Expected 1,000 / 2,000 / 7,000; the standard deviations are under 50.
        for (wins, expected) in wins.iter().zip([1_000, 2_000, 7_000]) {
            assert!(
                wins.abs_diff(expected) < 250,
                "{wins} wins where {expected} were expected"
            );
        }
        let expected = [
            (vec![3, 2, 1], 0.7 * 2.0 / 3.0),
            (vec![3, 1, 2], 0.7 / 3.0),
            (vec![2, 3, 1], 0.2 * 7.0 / 8.0),
            (vec![2, 1, 3], 0.2 / 8.0),
            (vec![1, 3, 2], 0.1 * 7.0 / 9.0),
            (vec![1, 2, 3], 0.1 * 2.0 / 9.0),
        ];
        for (order, probability) in expected {
            let seen = f64::from(orders.get(&order).copied().unwrap_or(0)) / 10_000.0;
            assert!(
                (seen - probability).abs() < 0.02,
                "order {order:?}: seen {seen}, expected {probability}"
            );
        }
    }

    #[test]
    fn weighted_output_is_pinned_for_a_given_seed() {
        // A change here changes every weighted auction's outcome: the draws are part of the
        // replayable behaviour, so they must not move by accident.
        let candidates: Vec<Candidate> = (1..=6)
            .map(|c| Candidate {
                weight: u16::try_from(c).unwrap(),
                ..exclusive(c, 2_000)
            })
            .collect();
        let request = SelectionRequest {
            seed: 0x5eed,
            ..exclusive_ping()
        };
        let selection = select(&candidates, every_tier(Strategy::Weighted), &request);
        let mut order = campaigns(&selection.winners);
        order.extend(campaigns(&selection.runners_up));
        assert_eq!(order, PINNED_WEIGHTED_ORDER);
    }
    const PINNED_WEIGHTED_ORDER: [CampaignId; 6] = [6, 2, 4, 1, 3, 5];

    /// A campaign buying both modes.
    fn both(campaign: CampaignId, exclusive_price: Money, shared_price: Money) -> Candidate {
        Candidate {
            shared_price: Some(shared_price),
            ..exclusive(campaign, exclusive_price)
        }
    }

    #[test]
    fn either_sells_shared_when_the_shared_sum_is_higher() {
        let candidates = [both(1, 9_000, 3_500), shared(2, 3_500), shared(3, 3_500)];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Either, 3),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(
            paid(&selection.winners),
            [(1, 3_500), (2, 3_500), (3, 3_500)]
        );
        assert_eq!(
            selection.either,
            Some(EitherComparison {
                exclusive_total: 9_000,
                shared_total: 10_500
            })
        );
    }

    #[test]
    fn either_sells_exclusive_only_when_it_strictly_beats_the_shared_sum() {
        let mut candidates = [
            both(1, 12_000, 3_500),
            shared(2, 3_500),
            shared(3, 3_500),
            exclusive(4, 8_000),
        ];
        let either = request(PingSaleMode::Either, 3);
        let selection = select(&candidates, every_tier(Strategy::HighestBid), &either);
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Exclusive));
        assert_eq!(paid(&selection.winners), [(1, 12_000)]);
        // Runners-up are priced for exclusive; shared-only campaigns do not buy it.
        assert_eq!(paid(&selection.runners_up), [(4, 8_000)]);
        assert_eq!(
            selection.considered,
            [(2, Exclusion::SaleMode), (3, Exclusion::SaleMode)]
        );

        // A tie goes to shared.
        candidates[0].exclusive_price = Some(10_500);
        let selection = select(&candidates, every_tier(Strategy::HighestBid), &either);
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(campaigns(&selection.winners), [1, 2, 3]);
        assert_eq!(selection.considered, [(4, Exclusion::SaleMode)]);
    }

    #[test]
    fn either_compares_what_the_strategy_would_charge() {
        // At second price the exclusive sale brings 8,000 (the next exclusive bid) and the
        // shared one 3 x 3,000 (the first shared loser): shared wins although 12,000 > 10,500.
        let candidates = [
            both(1, 12_000, 3_500),
            both(2, 8_000, 3_500),
            shared(3, 3_500),
            shared(4, 3_000),
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::SecondPrice),
            &request(PingSaleMode::Either, 3),
        );
        assert_eq!(
            selection.either,
            Some(EitherComparison {
                exclusive_total: 8_000,
                shared_total: 9_000
            })
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(
            paid(&selection.winners),
            [(1, 3_000), (2, 3_000), (3, 3_000)]
        );
        assert_eq!(paid(&selection.runners_up), [(4, FLOOR)]);
    }

    #[test]
    fn either_with_one_mode_in_the_deciding_tier_sells_that_mode() {
        // Tier 0 has only a shared buyer: it decides, although tier 1 offers more exclusive.
        let candidates = [shared(1, 2_000), in_tier(1, exclusive(2, 50_000))];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Either, 2),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(paid(&selection.winners), [(1, 2_000)]);
        assert!(selection.runners_up.is_empty());
        assert_eq!(selection.either, None);
        assert_eq!(selection.considered, [(2, Exclusion::SaleMode)]);
    }

    #[test]
    fn either_reports_a_price_below_the_floor_for_the_sold_mode() {
        let candidates = [shared(1, 4_000), shared(2, 4_000), both(3, 5_000, 500)];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Either, 2),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(selection.considered, [(3, Exclusion::BelowFloor)]);
    }

    #[test]
    fn shared_sells_to_at_most_n_buyers_in_strategy_order() {
        let candidates: Vec<Candidate> = (1..=5).map(|c| shared(c, 1_000 + 100 * c)).collect();
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Shared, 3),
        );
        assert_eq!(selection.outcome, Outcome::Sale(SaleMode::Shared));
        assert_eq!(
            paid(&selection.winners),
            [(5, 1_500), (4, 1_400), (3, 1_300)]
        );
        assert_eq!(paid(&selection.runners_up), [(2, 1_200), (1, 1_100)]);

        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Shared, 8),
        );
        assert_eq!(selection.winners.len(), 5);
        assert!(selection.runners_up.is_empty());
    }

    #[test]
    fn shared_sells_to_one_campaign_per_buyer() {
        let same_buyer = |c| Candidate {
            buyer: 7,
            ..shared(c, 0)
        };
        let candidates = [
            Candidate {
                shared_price: Some(5_000),
                ..same_buyer(1)
            },
            Candidate {
                shared_price: Some(4_800),
                ..same_buyer(2)
            },
            shared(3, 3_000),
            in_tier(
                1,
                Candidate {
                    shared_price: Some(9_000),
                    ..same_buyer(4)
                },
            ),
            in_tier(1, shared(5, 2_000)),
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &request(PingSaleMode::Shared, 3),
        );
        assert_eq!(paid(&selection.winners), [(1, 5_000), (3, 3_000)]);
        // Buyer 7's other campaigns are neither winners nor runners-up.
        assert_eq!(paid(&selection.runners_up), [(5, 2_000)]);
    }

    #[test]
    fn exclusive_runners_up_may_include_the_winners_other_campaigns() {
        let candidates = [
            Candidate {
                buyer: 7,
                ..exclusive(1, 5_000)
            },
            Candidate {
                buyer: 7,
                ..exclusive(2, 4_000)
            },
        ];
        let selection = select(
            &candidates,
            every_tier(Strategy::HighestBid),
            &exclusive_ping(),
        );
        assert_eq!(campaigns(&selection.winners), [1]);
        assert_eq!(campaigns(&selection.runners_up), [2]);
    }

    #[test]
    fn a_warm_selector_gives_what_a_fresh_one_gives() {
        let mut selector = Selector::with_capacity(8);
        let big: Vec<Candidate> = (1..=40)
            .map(|c| both(c, 1_000 + 37 * c % 900, 1_000 + 53 * c % 700))
            .collect();
        let either = request(PingSaleMode::Either, 3);
        for candidates in [&big[..], &solar_bids()[..], &big[..5], &[][..]] {
            let warm = selector
                .select(candidates, every_tier(Strategy::SecondPrice), &either)
                .clone();
            assert_eq!(
                warm,
                select(candidates, every_tier(Strategy::SecondPrice), &either)
            );
        }
    }

    #[test]
    fn a_warm_selector_does_not_allocate() {
        // Buffers only ever grow by pushing past their capacity, so a second call that moves
        // no buffer and grows no capacity allocated nothing.
        let candidates: Vec<Candidate> = (1..=60)
            .map(|c| {
                in_tier(
                    (c % 3) as u8,
                    both(c, 1_000 + 37 * c % 900, 1_000 + 53 * c % 700),
                )
            })
            .collect();
        let tree = |tier: u8| {
            [
                Strategy::Weighted,
                Strategy::SecondPrice,
                Strategy::RoundRobin,
            ][usize::from(tier)]
        };
        let mut selector = Selector::new();
        let either = request(PingSaleMode::Either, 3);
        selector.select(&candidates, tree, &either);
        let buffers = |s: &Selector| {
            [
                (
                    s.selection.winners.as_ptr() as usize,
                    s.selection.winners.capacity(),
                ),
                (
                    s.selection.runners_up.as_ptr() as usize,
                    s.selection.runners_up.capacity(),
                ),
                (
                    s.selection.considered.as_ptr() as usize,
                    s.selection.considered.capacity(),
                ),
                (s.exclusive.as_ptr() as usize, s.exclusive.capacity()),
                (s.shared.as_ptr() as usize, s.shared.capacity()),
                (s.winners.as_ptr() as usize, s.winners.capacity()),
                (s.runners_up.as_ptr() as usize, s.runners_up.capacity()),
            ]
        };
        let warm = buffers(&selector);
        for seed in 0..50 {
            for sale_mode in [
                PingSaleMode::Exclusive,
                PingSaleMode::Shared,
                PingSaleMode::Either,
            ] {
                let request = SelectionRequest {
                    seed,
                    sale_mode,
                    shared_buyers_max: if sale_mode == PingSaleMode::Exclusive {
                        0
                    } else {
                        3
                    },
                    ..either
                };
                selector.select(&candidates, tree, &request);
                selector.select(
                    &candidates[..usize::try_from(seed).unwrap()],
                    tree,
                    &request,
                );
            }
        }
        assert_eq!(buffers(&selector), warm);
    }

    #[test]
    fn mix64_is_splitmix64s_finalizer() {
        // The first outputs of splitmix64 from state 0 (Vigna's reference splitmix64.c) are
        // the finalizer of its first two states.
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        assert_eq!(mix64(GAMMA), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(GAMMA.wrapping_mul(2)), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn a_draw_is_the_exponential_variate_over_the_weight() {
        // The table against floating point, and each draw against -log2(u) / weight computed
        // in floating point: linear interpolation between steps of 1/1024 is off by at most
        // (1/1024)^2 / (8 ln 2), under 2e-7.
        for (i, &step) in LOG2_STEPS.iter().enumerate() {
            let exact = (1.0 + i as f64 / 1024.0).log2() * 2_f64.powi(32);
            assert!(
                (step as f64 - exact).abs() <= 2.0,
                "step {i}: {step} vs {exact}"
            );
        }
        for campaign in 0..2_000_u64 {
            let weight = u16::try_from(campaign % 9 + 1).unwrap();
            let x = mix64(mix64(77_u64.wrapping_add(2)) ^ campaign) | 1;
            let exponential = -(x as f64 / 2_f64.powi(64)).log2();
            let expected = exponential * 2_f64.powi(48) / f64::from(weight);
            let draw = weighted_draw(77, 2, campaign, weight) as f64;
            assert!(
                (draw - expected).abs() <= 2_f64.powi(48) * 2e-7 / f64::from(weight) + 2.0,
                "campaign {campaign}: {draw} vs {expected}"
            );
        }
    }

    #[test]
    fn a_draw_does_not_depend_on_the_other_candidates() {
        // What lets the ping tree's walk draw only the campaigns it reaches: leaving candidates
        // out keeps the order of the rest.
        let all: Vec<Candidate> = (1..=12)
            .map(|c| Candidate {
                weight: u16::try_from(c % 4 + 1).unwrap(),
                ..exclusive(c, 2_000)
            })
            .collect();
        let order = |candidates: &[Candidate]| {
            let selection = select(
                candidates,
                every_tier(Strategy::Weighted),
                &exclusive_ping(),
            );
            let mut order = campaigns(&selection.winners);
            order.extend(campaigns(&selection.runners_up));
            order
        };
        let whole = order(&all);
        let odd: Vec<Candidate> = all
            .iter()
            .copied()
            .filter(|c| c.campaign % 2 == 1)
            .collect();
        let expected: Vec<CampaignId> = whole.iter().copied().filter(|c| c % 2 == 1).collect();
        assert_eq!(order(&odd), expected);
    }

    fn any_strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
        prop_oneof![
            Just(Strategy::HighestBid),
            Just(Strategy::SecondPrice),
            Just(Strategy::RoundRobin),
            Just(Strategy::Weighted),
            Just(Strategy::FirstToAccept),
        ]
    }

    fn any_price() -> impl proptest::strategy::Strategy<Value = Option<Money>> {
        // Few distinct values, so that ties and prices at the floor are common.
        prop_oneof![
            1 => Just(None),
            3 => (0..12_u64).prop_map(|p| Some(p * 500)),
        ]
    }

    /// Up to 40 candidates with unique campaign ids, few buyers (so buyers have several
    /// campaigns), four tiers, and collisions in every tie-break field.
    fn any_candidates() -> impl proptest::strategy::Strategy<Value = Vec<Candidate>> {
        proptest::collection::vec(
            (
                1..8_u64,
                0..4_u8,
                1..5_u16,
                any_price(),
                any_price(),
                prop_oneof![
                    Just(0_i16),
                    Just(-10_000),
                    Just(10_000),
                    -10_000..=10_000_i16
                ],
                0..4_u64,
                0..4_u64,
            ),
            0..40,
        )
        .prop_map(|rows| {
            (1..)
                .zip(rows)
                .map(|(campaign, row)| {
                    let (buyer, tier, weight, exclusive_price, shared_price, adjust_bps, at, last) =
                        row;
                    Candidate {
                        campaign: campaign * 11,
                        buyer,
                        tier,
                        weight,
                        exclusive_price,
                        shared_price,
                        adjust_bps,
                        answered_at: PINGED_AT + at,
                        last_selected: last,
                    }
                })
                .collect()
        })
    }

    fn any_request() -> impl proptest::strategy::Strategy<Value = SelectionRequest> {
        (
            prop_oneof![
                Just((PingSaleMode::Exclusive, 0)),
                (1..=SHARED_BUYERS_MAX).prop_map(|n| (PingSaleMode::Shared, n)),
                (1..=SHARED_BUYERS_MAX).prop_map(|n| (PingSaleMode::Either, n)),
            ],
            (0..8_u64).prop_map(|f| f * 500),
            any::<u64>(),
        )
            .prop_map(
                |((sale_mode, shared_buyers_max), floor, seed)| SelectionRequest {
                    sale_mode,
                    shared_buyers_max,
                    floor,
                    seed,
                },
            )
    }

    fn price_for(candidate: &Candidate, mode: SaleMode) -> Option<Money> {
        match mode {
            SaleMode::Exclusive => candidate.exclusive_price,
            SaleMode::Shared => candidate.shared_price,
        }
    }

    proptest! {
        #[test]
        fn selection_keeps_its_promises(
            candidates in any_candidates(),
            tree in proptest::array::uniform4(any_strategy()),
            request in any_request(),
        ) {
            let strategy_of_tier = |tier: u8| tree[usize::from(tier)];
            let selection = select(&candidates, strategy_of_tier, &request);
            let by_id = |id: CampaignId| candidates.iter().find(|c| c.campaign == id).unwrap();

            match selection.outcome {
                Outcome::NoSale(reason) => {
                    prop_assert!(selection.winners.is_empty() && selection.runners_up.is_empty());
                    prop_assert_eq!(selection.considered.len(), candidates.len());
                    let below = selection.considered.iter().any(|&(_, e)| e == Exclusion::BelowFloor);
                    prop_assert_eq!(reason == NoSaleReason::BelowFloor, below);
                }
                Outcome::Sale(mode) => {
                    let allowed = match request.sale_mode {
                        PingSaleMode::Exclusive => mode == SaleMode::Exclusive,
                        PingSaleMode::Shared => mode == SaleMode::Shared,
                        PingSaleMode::Either => true,
                    };
                    prop_assert!(allowed);
                    let most = match mode {
                        SaleMode::Exclusive => 1,
                        SaleMode::Shared => usize::from(request.shared_buyers_max),
                    };
                    prop_assert!((1..=most).contains(&selection.winners.len()));

                    // Every award is eligible for the sold mode and priced between the floor
                    // and the campaign's own price.
                    for award in selection.winners.iter().chain(&selection.runners_up) {
                        let candidate = by_id(award.campaign);
                        let own = price_for(candidate, mode);
                        prop_assert!(own.is_some_and(|own| own >= request.floor));
                        prop_assert!(award.price >= request.floor);
                        prop_assert!(Some(award.price) <= own);
                        prop_assert_eq!(award.buyer, candidate.buyer);
                        prop_assert_eq!(award.tier, candidate.tier);
                    }

                    // Winners have distinct buyers and come from the lowest tier with any
                    // eligible candidate; runners-up follow in tier order.
                    let deciding = candidates
                        .iter()
                        .filter(|c| !selection.considered.iter().any(|&(id, _)| id == c.campaign))
                        .map(|c| c.tier)
                        .min();
                    for (i, winner) in selection.winners.iter().enumerate() {
                        prop_assert_eq!(Some(winner.tier), deciding);
                        prop_assert!(selection.winners[..i].iter().all(|w| w.buyer != winner.buyer));
                    }
                    prop_assert!(selection.runners_up.windows(2).all(|w| w[0].tier <= w[1].tier));
                    prop_assert!(selection.runners_up.iter().all(|r| Some(r.tier) >= deciding));
                    if mode == SaleMode::Shared {
                        for runner_up in &selection.runners_up {
                            prop_assert!(selection.winners.iter().all(|w| w.buyer != runner_up.buyer));
                        }
                    }

                    // Every candidate is accounted for once; only a winning buyer's other
                    // campaigns in a shared sale are missing.
                    for candidate in &candidates {
                        let places = selection.winners.iter().chain(&selection.runners_up)
                            .filter(|a| a.campaign == candidate.campaign).count()
                            + selection.considered.iter()
                                .filter(|&&(id, _)| id == candidate.campaign).count();
                        let buyer_won = selection.winners.iter().any(|w| w.buyer == candidate.buyer);
                        if mode == SaleMode::Shared && buyer_won && places == 0 {
                            continue;
                        }
                        prop_assert_eq!(places, 1, "campaign {}", candidate.campaign);
                    }

                    // With either, the totals compared are what the sale brings, and the choice
                    // follows them.
                    if let Some(either) = selection.either {
                        let total: Money = selection.winners.iter().map(|w| w.price).sum();
                        match mode {
                            SaleMode::Exclusive => {
                                prop_assert!(either.exclusive_total > either.shared_total);
                                prop_assert_eq!(total, either.exclusive_total);
                            }
                            SaleMode::Shared => {
                                prop_assert!(either.exclusive_total <= either.shared_total);
                                prop_assert_eq!(total, either.shared_total);
                            }
                        }
                    }

                    // First price strategies charge the campaign's own price.
                    for award in selection.winners.iter().chain(&selection.runners_up) {
                        if tree[usize::from(award.tier)] != Strategy::SecondPrice {
                            prop_assert_eq!(Some(award.price), price_for(by_id(award.campaign), mode));
                        }
                    }
                }
            }
            for &(id, exclusion) in &selection.considered {
                prop_assert!(matches!(exclusion, Exclusion::BelowFloor | Exclusion::SaleMode));
                prop_assert!(!selection.winners.iter().chain(&selection.runners_up).any(|a| a.campaign == id));
            }
            prop_assert!(selection.considered.windows(2).all(|w| w[0].0 < w[1].0));
        }

        #[test]
        fn selection_is_deterministic_and_ignores_input_order(
            (candidates, shuffled) in any_candidates()
                .prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
            tree in proptest::array::uniform4(any_strategy()),
            request in any_request(),
        ) {
            let strategy_of_tier = |tier: u8| tree[usize::from(tier)];
            let first = select(&candidates, strategy_of_tier, &request);
            prop_assert_eq!(&first, &select(&candidates, strategy_of_tier, &request));
            prop_assert_eq!(&first, &select(&shuffled, strategy_of_tier, &request));
            let mut selector = Selector::new();
            selector.select(&shuffled, strategy_of_tier, &SelectionRequest { seed: request.seed ^ 1, ..request });
            prop_assert_eq!(&first, selector.select(&candidates, strategy_of_tier, &request));
        }

        #[test]
        fn ranking_only_the_first_runners_up_gives_the_same_selection_cut_short(
            candidates in any_candidates(),
            tree in proptest::array::uniform4(any_strategy()),
            request in any_request(),
            runners_up_max in 0..6_usize,
        ) {
            let strategy_of_tier = |tier: u8| tree[usize::from(tier)];
            let mut full = select(&candidates, strategy_of_tier, &request);
            full.runners_up.truncate(runners_up_max);
            let mut selector = Selector::new();
            let ranked = selector.select_ranked(&candidates, strategy_of_tier, &request, runners_up_max);
            prop_assert_eq!(&full, ranked);
        }

        #[test]
        fn highest_bid_winners_outrank_every_runner_up_of_their_tier(
            candidates in any_candidates(),
            request in any_request(),
        ) {
            let selection = select(&candidates, |_| Strategy::HighestBid, &request);
            let Outcome::Sale(mode) = selection.outcome else { return Ok(()) };
            let adjusted = |award: &Award| {
                let c = candidates.iter().find(|c| c.campaign == award.campaign).unwrap();
                u128::from(price_for(c, mode).unwrap()) * u128::try_from(10_000 + i32::from(c.adjust_bps)).unwrap()
            };
            let worst_winner = selection.winners.iter().map(adjusted).min().unwrap();
            for runner_up in selection.runners_up.iter().filter(|r| r.tier == selection.winners[0].tier) {
                prop_assert!(adjusted(runner_up) <= worst_winner);
            }
        }
    }

    /// Nanoseconds this thread has run on a CPU (Linux), so that a measurement on a busy
    /// machine does not count the time other processes had the core.
    fn thread_cpu_ns() -> Option<u64> {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        schedstat.split_whitespace().next()?.parse().ok()
    }

    /// Prints the cost of `select` (not a test of it: tests never assert a wall-clock time).
    /// Run: `cargo test --release --lib engine::auction::tests::measure_select -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run it in release mode"]
    fn measure_select() {
        use std::hint::black_box;
        use std::time::Instant;

        for count in [50_u64, 500] {
            let mut rng = crate::bookgen::SplitMix64::new(42);
            let candidates: Vec<Candidate> = (1..=count)
                .map(|campaign| {
                    let price = |rng: &mut crate::bookgen::SplitMix64| {
                        (rng.next_u64() % 4 == 0).then_some(800 + rng.next_u64() % 9_000)
                    };
                    Candidate {
                        campaign,
                        buyer: 1 + rng.next_u64() % (count / 2),
                        tier: (rng.next_u64() % 3) as u8,
                        weight: 1 + (rng.next_u64() % 10) as u16,
                        exclusive_price: price(&mut rng).or(Some(3_000)),
                        shared_price: price(&mut rng),
                        adjust_bps: (rng.next_u64() % 2_001) as i16 - 1_000,
                        answered_at: PINGED_AT + rng.next_u64() % 50_000,
                        last_selected: rng.next_u64() % 1_000,
                    }
                })
                .collect();
            type Tree = fn(u8) -> Strategy;
            let trees: [(&str, Tree); 3] = [
                ("highest_bid", |_| Strategy::HighestBid),
                ("weighted", |_| Strategy::Weighted),
                ("mixed tiers", |tier| match tier {
                    0 => Strategy::SecondPrice,
                    1 => Strategy::Weighted,
                    _ => Strategy::RoundRobin,
                }),
            ];
            for (name, tree) in trees {
                for (mode, n) in [(PingSaleMode::Exclusive, 0), (PingSaleMode::Either, 3)] {
                    let mut selector = Selector::with_capacity(candidates.len());
                    let iterations = 5_000_000 / count;
                    let started = Instant::now();
                    let cpu_started = thread_cpu_ns();
                    for seed in 0..iterations {
                        let request = SelectionRequest {
                            sale_mode: mode,
                            shared_buyers_max: n,
                            floor: 1_000,
                            seed,
                        };
                        black_box(selector.select(black_box(&candidates), tree, &request));
                    }
                    let wall_ns = started.elapsed().as_nanos() / u128::from(iterations);
                    let cpu_ns = thread_cpu_ns()
                        .zip(cpu_started)
                        .map(|(end, start)| (end - start) / iterations);
                    println!(
                        "{count} candidates, {name}, {mode:?}: {cpu_ns:?} ns on CPU, {wall_ns} ns wall, per select"
                    );
                }
            }
        }
    }
}
