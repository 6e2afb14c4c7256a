//! The state the engine keeps per campaign and per buyer across book snapshots — cap counters,
//! budget counters, round-robin stamps — held densely by the current snapshot's indexes, so
//! that an auction reads a campaign's state at its `CampaignIx` instead of hashing its id.
//!
//! Ids are the truth: indexes move when the book is rebuilt, so [`Usage::rebook`] moves every
//! entry to its id's new index (once per admin change, which compiles the whole book anyway).
//! State of a campaign or buyer the new book no longer has is kept aside by id, and comes back
//! if the id returns: a campaign removed and re-added keeps its counters, so its caps cannot be
//! overrun by a remove and a put.
//!
//! Beside the counters, each dense entry remembers the headroom it last gave (see
//! [`CapCounters::headroom`]) with the local period keys it was computed for. Headroom only
//! depends on the counters, the limits and those keys, so the memo is exact while all three are
//! unchanged: every mutable access to an entry's counters forgets its memo, a book change (new
//! limits) forgets them all, and a memo with other keys is recomputed. An auction asks for the
//! headroom of each campaign it matched; between two reservations of a campaign, or a rollover
//! of its hour, the answer is one comparison of keys. The memo is a cache, not state: it is
//! not in the digest, and replay, which recomputes on first use, answers the same.

use rustc_hash::FxHashMap;

use super::book::{Book, CompiledCampaign};
use super::caps::{CapCounters, CapLimits};
use super::clock::LocalTime;
use super::types::{BuyerId, CampaignId, CampaignIx};
use crate::protocol::Money;

/// A headroom as last computed for one dense entry, and the period keys it holds for.
#[derive(Debug, Clone, Copy, Default)]
struct Memo {
    /// `false` until computed, and again after any change to the entry's counters.
    known: bool,
    /// The hour, day, week and month keys of the local time it was computed at.
    keys: [u32; 4],
    room: Option<Money>,
}

impl Memo {
    /// The headroom itself, out of line: the memo's miss path.
    #[inline(never)]
    fn compute(
        counters: Option<&CapCounters>,
        limits: &CapLimits,
        local: &LocalTime,
    ) -> Option<Money> {
        match counters {
            Some(counters) => counters.headroom(limits, local),
            None => CapCounters::default().headroom(limits, local),
        }
    }

    #[inline(always)]
    fn keys_of(local: &LocalTime) -> [u32; 4] {
        [
            local.hour_key,
            local.day_key,
            local.week_key,
            local.month_key,
        ]
    }

    /// The memo's headroom if it holds at `local`, else the one computed now (and kept).
    /// Inlined into the auction's loop: a hit is a few loads and compares.
    #[inline(always)]
    fn headroom(
        &mut self,
        counters: Option<&CapCounters>,
        limits: &CapLimits,
        local: &LocalTime,
    ) -> Option<Money> {
        let keys = Self::keys_of(local);
        if self.known && self.keys == keys {
            debug_assert_eq!(
                self.room,
                Self::compute(counters, limits, local),
                "a headroom memo must hold"
            );
            return self.room;
        }
        let room = Self::compute(counters, limits, local);
        *self = Self {
            known: true,
            keys,
            room,
        };
        room
    }
}

/// Per-campaign and per-buyer state; see the module documentation.
#[derive(Debug, Default)]
pub struct Usage {
    /// By the current book's `CampaignIx`; `None` until the campaign's first reservation.
    caps: Vec<Option<CapCounters>>,
    /// By the current book's `CampaignIx`: the stamp of the campaign's last win, 0 for never.
    last_selected: Vec<u64>,
    /// By the current book's buyer index; `None` until the buyer's first reservation.
    budgets: Vec<Option<CapCounters>>,
    /// By the current book's `CampaignIx` and buyer index: the last headroom of `caps` and
    /// `budgets` (a cache; see the module documentation).
    caps_memo: Vec<Memo>,
    budgets_memo: Vec<Memo>,
    /// The book version the vectors are indexed for.
    version: u64,
    /// State of ids the current book does not have.
    aside_caps: FxHashMap<CampaignId, CapCounters>,
    aside_last_selected: FxHashMap<CampaignId, u64>,
    aside_budgets: FxHashMap<BuyerId, CapCounters>,
}

/// Where one campaign's or buyer's state lives.
enum Slot<K> {
    Dense(usize),
    Aside(K),
}

/// The counters in `slot` of one store (campaigns' caps or buyers' budgets), if any.
fn counters<'a, K: Eq + std::hash::Hash>(
    dense: &'a [Option<CapCounters>],
    aside: &'a FxHashMap<K, CapCounters>,
    slot: Slot<K>,
) -> Option<&'a CapCounters> {
    match slot {
        Slot::Dense(ix) => dense.get(ix).and_then(Option::as_ref),
        Slot::Aside(id) => aside.get(&id),
    }
}

/// The counters in `slot` of one store, created empty on first use when `create`. The caller
/// may change them, so their memoized headroom no longer holds.
fn counters_mut<'a, K: Eq + std::hash::Hash>(
    dense: &'a mut [Option<CapCounters>],
    memo: &mut [Memo],
    aside: &'a mut FxHashMap<K, CapCounters>,
    slot: Slot<K>,
    create: bool,
) -> Option<&'a mut CapCounters> {
    if let Slot::Dense(ix) = slot {
        if let Some(memo) = memo.get_mut(ix) {
            memo.known = false;
        }
    }
    match slot {
        Slot::Dense(ix) if create => dense
            .get_mut(ix)
            .map(|entry| entry.get_or_insert_with(CapCounters::default)),
        Slot::Dense(ix) => dense.get_mut(ix).and_then(Option::as_mut),
        Slot::Aside(id) if create => Some(aside.entry(id).or_default()),
        Slot::Aside(id) => aside.get_mut(&id),
    }
}

impl Usage {
    /// Re-indexes every entry for `book`, the new current book: what `old` (the previous
    /// current book) held at index i belongs to the id at i.
    pub fn rebook(&mut self, old: &Book, book: &Book) {
        for (campaign, caps) in old.campaigns().iter().zip(self.caps.drain(..)) {
            if let Some(caps) = caps {
                self.aside_caps.insert(campaign.id, caps);
            }
        }
        for (campaign, stamp) in old.campaigns().iter().zip(self.last_selected.drain(..)) {
            if stamp != 0 {
                self.aside_last_selected.insert(campaign.id, stamp);
            }
        }
        for (buyer, budget) in old.buyers().iter().zip(self.budgets.drain(..)) {
            if let Some(budget) = budget {
                self.aside_budgets.insert(buyer.id, budget);
            }
        }
        self.caps = book
            .campaigns()
            .iter()
            .map(|campaign| self.aside_caps.remove(&campaign.id))
            .collect();
        self.last_selected = book
            .campaigns()
            .iter()
            .map(|campaign| self.aside_last_selected.remove(&campaign.id).unwrap_or(0))
            .collect();
        self.budgets = book
            .buyers()
            .iter()
            .map(|buyer| self.aside_budgets.remove(&buyer.id))
            .collect();
        // New limits: every memo is forgotten.
        self.caps_memo = vec![Memo::default(); self.caps.len()];
        self.budgets_memo = vec![Memo::default(); self.budgets.len()];
        self.version = book.version;
    }

    /// The headroom of a campaign's caps at `local` (see [`CapCounters::headroom`]), from its
    /// memo when `book` is the current book and the memo holds.
    #[inline]
    pub fn campaign_headroom(
        &mut self,
        current: &Book,
        book: &Book,
        campaign: &CompiledCampaign,
        local: &LocalTime,
    ) -> Option<Money> {
        if book.version == self.version {
            let ix = campaign.ix.0 as usize;
            if let (Some(memo), Some(counters)) = (self.caps_memo.get_mut(ix), self.caps.get(ix)) {
                return memo.headroom(counters.as_ref(), &campaign.caps, local);
            }
        }
        match self.caps(current, book, CampaignRef::Compiled(campaign)) {
            Some(counters) => counters.headroom(&campaign.caps, local),
            None => CapCounters::default().headroom(&campaign.caps, local),
        }
    }

    /// The headroom of a campaign's buyer's budget (`limits`, the buyer's in `book`) at
    /// `local`, from its memo when `book` is the current book and the memo holds.
    #[inline]
    pub fn budget_headroom(
        &mut self,
        current: &Book,
        book: &Book,
        campaign: &CompiledCampaign,
        limits: &CapLimits,
        local: &LocalTime,
    ) -> Option<Money> {
        if book.version == self.version {
            let ix = campaign.buyer_ix as usize;
            if let (Some(memo), Some(counters)) =
                (self.budgets_memo.get_mut(ix), self.budgets.get(ix))
            {
                return memo.headroom(counters.as_ref(), limits, local);
            }
        }
        match self.budget(current, book, CampaignRef::Compiled(campaign)) {
            Some(counters) => counters.headroom(limits, local),
            None => CapCounters::default().headroom(limits, local),
        }
    }

    /// Where `campaign` (of `book`, the current book or an older one an auction holds) keeps
    /// its state in the current book `current`.
    fn campaign_slot(
        &self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
    ) -> Slot<CampaignId> {
        match campaign {
            CampaignRef::Compiled(compiled) if book.version == self.version => {
                Slot::Dense(compiled.ix.0 as usize)
            }
            _ => {
                let id = campaign.id();
                match current.campaign_by_id(id) {
                    Some(compiled) => Slot::Dense(compiled.ix.0 as usize),
                    None => Slot::Aside(id),
                }
            }
        }
    }

    fn buyer_slot(&self, current: &Book, book: &Book, campaign: CampaignRef<'_>) -> Slot<BuyerId> {
        match campaign {
            CampaignRef::Compiled(compiled) if book.version == self.version => {
                Slot::Dense(compiled.buyer_ix as usize)
            }
            _ => {
                let id = campaign.buyer();
                match current.buyer(id) {
                    Some(buyer) => Slot::Dense(buyer.ix as usize),
                    None => Slot::Aside(id),
                }
            }
        }
    }

    /// A campaign's cap counters, if it ever reserved.
    pub fn caps(
        &self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
    ) -> Option<&CapCounters> {
        let slot = self.campaign_slot(current, book, campaign);
        counters(&self.caps, &self.aside_caps, slot)
    }

    /// A campaign's cap counters, created empty on first use when `create`.
    pub fn caps_mut(
        &mut self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
        create: bool,
    ) -> Option<&mut CapCounters> {
        let slot = self.campaign_slot(current, book, campaign);
        counters_mut(
            &mut self.caps,
            &mut self.caps_memo,
            &mut self.aside_caps,
            slot,
            create,
        )
    }

    /// The budget counters of a campaign's buyer, if it ever reserved.
    pub fn budget(
        &self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
    ) -> Option<&CapCounters> {
        let slot = self.buyer_slot(current, book, campaign);
        counters(&self.budgets, &self.aside_budgets, slot)
    }

    /// The budget counters of a campaign's buyer, created empty on first use when `create`.
    pub fn budget_mut(
        &mut self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
        create: bool,
    ) -> Option<&mut CapCounters> {
        let slot = self.buyer_slot(current, book, campaign);
        counters_mut(
            &mut self.budgets,
            &mut self.budgets_memo,
            &mut self.aside_budgets,
            slot,
            create,
        )
    }

    /// The stamp of the last win of the current book's campaign at `ix` (the book the usage
    /// is indexed for); 0 if it never won. The ping tree's walk reads it per campaign.
    #[inline]
    pub fn last_selected_at(&self, ix: CampaignIx) -> u64 {
        self.last_selected.get(ix.0 as usize).copied().unwrap_or(0)
    }

    /// The stamp of the campaign's last win; 0 if it never won.
    pub fn last_selected(&self, current: &Book, book: &Book, campaign: CampaignRef<'_>) -> u64 {
        match self.campaign_slot(current, book, campaign) {
            Slot::Dense(ix) => self.last_selected.get(ix).copied().unwrap_or(0),
            Slot::Aside(id) => self.aside_last_selected.get(&id).copied().unwrap_or(0),
        }
    }

    pub fn set_last_selected(
        &mut self,
        current: &Book,
        book: &Book,
        campaign: CampaignRef<'_>,
        stamp: u64,
    ) {
        match self.campaign_slot(current, book, campaign) {
            Slot::Dense(ix) => self.last_selected[ix] = stamp,
            Slot::Aside(id) => {
                self.aside_last_selected.insert(id, stamp);
            }
        }
    }

    /// The usage a snapshot lists, by id (as [`Usage::all_caps`], [`Usage::all_budgets`] and
    /// [`Usage::all_last_selected`] give it), indexed for `book`, the current book.
    pub fn restore(
        book: &Book,
        caps: Vec<(CampaignId, CapCounters)>,
        budgets: Vec<(BuyerId, CapCounters)>,
        last_selected: Vec<(CampaignId, u64)>,
    ) -> Self {
        let mut usage = Self {
            aside_caps: caps.into_iter().collect(),
            aside_budgets: budgets.into_iter().collect(),
            aside_last_selected: last_selected.into_iter().collect(),
            ..Self::default()
        };
        // Everything starts aside, as if the previous book had none of it; moving to `book`
        // takes each id it has to its index.
        usage.rebook(&Book::empty(), book);
        usage
    }

    /// Every campaign's cap counters, in id order: what a hash map keyed by id would hold.
    pub fn all_caps(&self, current: &Book) -> Vec<(CampaignId, &CapCounters)> {
        let mut all: Vec<(CampaignId, &CapCounters)> = current
            .campaigns()
            .iter()
            .zip(&self.caps)
            .filter_map(|(campaign, caps)| Some((campaign.id, caps.as_ref()?)))
            .chain(self.aside_caps.iter().map(|(&id, caps)| (id, caps)))
            .collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all
    }

    /// Every buyer's budget counters, in id order.
    pub fn all_budgets(&self, current: &Book) -> Vec<(BuyerId, &CapCounters)> {
        let mut all: Vec<(BuyerId, &CapCounters)> = current
            .buyers()
            .iter()
            .zip(&self.budgets)
            .filter_map(|(buyer, budget)| Some((buyer.id, budget.as_ref()?)))
            .chain(self.aside_budgets.iter().map(|(&id, budget)| (id, budget)))
            .collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all
    }

    /// Every campaign's last-win stamp (campaigns that won), in id order.
    pub fn all_last_selected(&self, current: &Book) -> Vec<(CampaignId, u64)> {
        let mut all: Vec<(CampaignId, u64)> = current
            .campaigns()
            .iter()
            .zip(&self.last_selected)
            .filter(|(_, stamp)| **stamp != 0)
            .map(|(campaign, &stamp)| (campaign.id, stamp))
            .chain(
                self.aside_last_selected
                    .iter()
                    .map(|(&id, &stamp)| (id, stamp)),
            )
            .collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all
    }
}

/// A campaign as the caller knows it: compiled (of some snapshot), or only by its ids (an
/// award, whose campaign the current book may no longer have).
#[derive(Debug, Clone, Copy)]
pub enum CampaignRef<'a> {
    Compiled(&'a CompiledCampaign),
    Ids {
        campaign: CampaignId,
        buyer: BuyerId,
    },
}

impl CampaignRef<'_> {
    fn id(&self) -> CampaignId {
        match self {
            Self::Compiled(compiled) => compiled.id,
            Self::Ids { campaign, .. } => *campaign,
        }
    }

    fn buyer(&self) -> BuyerId {
        match self {
            Self::Compiled(compiled) => compiled.buyer,
            Self::Ids { buyer, .. } => *buyer,
        }
    }
}
