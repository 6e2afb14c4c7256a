//! What an auction can tell about the campaigns the territory matched without reading them:
//! per book snapshot, bitsets over the campaigns (campaign `ix` is bit `ix % 64` of word
//! `ix / 64`, as in [`super::territory::TerritoryMatches::included_words`]) of the checks that
//! depend on the book alone — status, the sale modes each buys, and for a seller with allow or
//! block lists the campaigns whose buyer it admits.
//!
//! An auction ANDs them with the territory's words, 64 campaigns at a time: a campaign that
//! fails one of them is excluded with the reason of the first mask it fails, in the order the
//! per-campaign checks have always had (paused, blocked, sale mode), without its compiled
//! definition being read; only the others go on to filters, schedule, caps and pricing.
//!
//! The masks are built with the book and never change: a status or list change is an admin
//! change, which compiles a new book and so new masks. Replay compiles the same book from the
//! same definitions, so it builds the same masks.

use rustc_hash::FxHashSet;

use super::book::CompiledCampaign;
use super::types::{BuyerId, CampaignId, CampaignIx, VerticalIx};
use crate::limits::MONEY_MAX;
use crate::protocol::{CampaignRole, Money, Pricing, SaleMode};

/// The book's masks over its campaigns; see the module documentation.
#[derive(Debug, Default)]
pub struct Availability {
    /// By `CampaignIx`: the campaign's id, so that an exclusion is recorded without reading
    /// the campaign's definition.
    ids: Box<[CampaignId]>,
    /// By word: the masks of its 64 campaigns, side by side (an auction reads all of a
    /// matched word's masks at once).
    masks: Box<[MaskWord]>,
    /// The runs of campaign indexes of one vertical, role and tier, in index order (see
    /// [`TierRun`]).
    runs: Box<[TierRun]>,
    runs_by_vertical: RunsByVertical,
    /// By `CampaignIx`: the fixed price for an exclusive sale, [`NO_FIXED_PRICE`] for a
    /// campaign that bids live or does not buy exclusive; the ping tree's walk ranks by it
    /// (see [`Self::fixed_price`]). Eight bytes a campaign rather than an `Option`'s sixteen:
    /// the walk reads one per campaign it passes, at random places in the array.
    exclusive_price: Box<[Money]>,
    /// The same for a shared sale.
    shared_price: Box<[Money]>,
    /// By `CampaignIx`: the campaign's place among the book's campaigns that buy an exclusive
    /// sale at a fixed price, ordered by vertical, then that price descending, then campaign
    /// id ascending (within a vertical, the order of highest bid, second price and first to
    /// accept, and of round robin's ties); [`NOT_RANKED`] for the others. The ping tree's
    /// walk orders a tier by it: as bits of a bitset for the strategies that order by price
    /// alone, as one integer per campaign for round robin. As campaigns are numbered by
    /// vertical too, a vertical's ranks fall in the same words as its indexes.
    exclusive_rank: Box<[u32]>,
    /// The same for a shared sale.
    shared_rank: Box<[u32]>,
    /// By exclusive rank: the campaign's index (`exclusive_rank` inverted).
    exclusive_by_rank: Box<[CampaignIx]>,
    /// By shared rank: the campaign's index.
    shared_by_rank: Box<[CampaignIx]>,
    /// By `CampaignIx`: the campaign's place in campaign id order (a weighted tier's ties).
    id_rank: Box<[u32]>,
    /// By `CampaignIx`: its weight for the weighted strategy.
    weight: Box<[u16]>,
}

/// The campaigns of one vertical in one tier of its ping tree, primaries or fallbacks: the
/// indexes `start..end`. The book numbers campaigns by vertical, then role (primaries first),
/// then tier, then exclusive fixed price descending, then id
/// ([`super::book::Book::compile`]), so that each such group is one run, a vertical's runs
/// come in the order its ping tree asks them (primary tiers ascending, then fallback tiers
/// ascending), and within a run index order is the order of a tier ordered by exclusive
/// price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierRun {
    pub tier: u8,
    pub fallback: bool,
    pub start: u32,
    pub end: u32,
}

/// The masks of one word of 64 campaigns: a campaign's bit is set in each that holds for it.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct MaskWord {
    /// The campaign and its buyer are active.
    active: u64,
    /// The campaign buys exclusive sales.
    exclusive: u64,
    /// The campaign buys shared sales.
    shared: u64,
    /// The campaign bids live (its price comes from its buyer, per ping).
    live: u64,
}

/// One word's masks as one ping reads them ([`Availability::word_masks`]).
#[derive(Debug, Clone, Copy)]
pub struct WordMasks {
    /// The campaign and its buyer are active.
    pub active: u64,
    /// The campaign buys one of the sale modes the ping takes.
    pub sells: u64,
    /// The campaign bids live.
    pub live: u64,
}

/// By `VerticalIx`: the range (start, end) of the book's tier runs that are its campaigns'.
type RunsByVertical = Box<[(u32, u32)]>;

/// The rank of a campaign that has no fixed price for a sale mode (it bids live or does not
/// buy that mode).
pub const NOT_RANKED: u32 = u32::MAX;

/// The stored price of a campaign without a fixed price for a sale mode: above every price
/// (prices are at most [`MONEY_MAX`]), so it is never taken for one.
const NO_FIXED_PRICE: Money = Money::MAX;
const _: () = assert!(NO_FIXED_PRICE > MONEY_MAX);

/// Each campaign's place when those with a price are ordered by vertical, then price
/// descending, then id ascending ([`NOT_RANKED`] for those without one), and the campaigns by
/// place.
fn ranks(
    verticals: &[VerticalIx],
    ids: &[CampaignId],
    prices: &[Option<Money>],
) -> (Box<[u32]>, Box<[CampaignIx]>) {
    let mut order: Vec<u32> = (0..prices.len())
        .filter(|&at| prices[at].is_some())
        // A book holds fewer than 2^32 campaigns (`CampaignIx` is a u32).
        .map(|at| u32::try_from(at).expect("fewer than 2^32 campaigns"))
        .collect();
    order.sort_unstable_by_key(|&at| {
        let at = at as usize;
        (verticals[at], std::cmp::Reverse(prices[at]), ids[at])
    });
    let mut ranks = vec![NOT_RANKED; prices.len()];
    for (rank, &at) in (0u32..).zip(&order) {
        ranks[at as usize] = rank;
    }
    let by_rank = order.into_iter().map(CampaignIx).collect();
    (ranks.into_boxed_slice(), by_rank)
}

/// The runs of `campaigns` (in index order) by vertical, role and tier, and each vertical's
/// range of them.
fn tier_runs(campaigns: &[CompiledCampaign]) -> (Box<[TierRun]>, RunsByVertical) {
    let mut runs: Vec<TierRun> = Vec::new();
    let mut by_vertical: Vec<(u32, u32)> = Vec::new();
    for (at, campaign) in (0u32..).zip(campaigns) {
        let fallback = campaign.role == CampaignRole::Fallback;
        let vertical = usize::from(campaign.vertical.0);
        match runs.last_mut() {
            Some(run)
                if run.tier == campaign.tier
                    && run.fallback == fallback
                    && by_vertical.len() == vertical + 1 =>
            {
                run.end = at + 1;
            }
            _ => {
                let next = u32::try_from(runs.len()).expect("fewer runs than campaigns");
                runs.push(TierRun {
                    tier: campaign.tier,
                    fallback,
                    start: at,
                    end: at + 1,
                });
                if by_vertical.len() <= vertical {
                    by_vertical.resize(vertical + 1, (next, next));
                }
                by_vertical[vertical].1 = next + 1;
            }
        }
    }
    debug_assert!(
        runs.windows(2)
            .all(|pair| pair[0].end == pair[1].start && pair[0].start < pair[0].end),
        "the runs cover the campaigns"
    );
    (runs.into_boxed_slice(), by_vertical.into_boxed_slice())
}

impl Availability {
    /// The masks of `campaigns`, which are in `CampaignIx` order.
    pub fn build(campaigns: &[CompiledCampaign]) -> Self {
        let words = campaigns.len().div_ceil(64);
        let fixed = |mode: SaleMode| -> Box<[Option<Money>]> {
            campaigns
                .iter()
                .map(|campaign| campaign.fixed_price(mode))
                .collect()
        };
        let (runs, runs_by_vertical) = tier_runs(campaigns);
        let ids: Box<[CampaignId]> = campaigns.iter().map(|campaign| campaign.id).collect();
        let exclusive_price = fixed(SaleMode::Exclusive);
        let shared_price = fixed(SaleMode::Shared);
        let verticals: Vec<VerticalIx> = campaigns.iter().map(|c| c.vertical).collect();
        let (exclusive_rank, exclusive_by_rank) = ranks(&verticals, &ids, &exclusive_price);
        let (shared_rank, shared_by_rank) = ranks(&verticals, &ids, &shared_price);
        let packed = |prices: Box<[Option<Money>]>| -> Box<[Money]> {
            prices
                .iter()
                .map(|price| {
                    debug_assert!(price.is_none_or(|price| price <= MONEY_MAX));
                    price.unwrap_or(NO_FIXED_PRICE)
                })
                .collect()
        };
        let one_vertical = vec![VerticalIx(0); campaigns.len()];
        let everyone = vec![Some(0); campaigns.len()];
        let mut availability = Self {
            exclusive_rank,
            shared_rank,
            exclusive_by_rank,
            shared_by_rank,
            id_rank: ranks(&one_vertical, &ids, &everyone).0,
            ids,
            masks: vec![MaskWord::default(); words].into_boxed_slice(),
            runs,
            runs_by_vertical,
            exclusive_price: packed(exclusive_price),
            shared_price: packed(shared_price),
            weight: campaigns.iter().map(|campaign| campaign.weight).collect(),
        };
        for (at, campaign) in campaigns.iter().enumerate() {
            debug_assert_eq!(campaign.ix.0 as usize, at, "campaigns in index order");
            let (word, bit) = (at / 64, 1u64 << (at % 64));
            let masks = &mut availability.masks[word];
            let set = |mask: &mut u64, on: bool| {
                if on {
                    *mask |= bit;
                }
            };
            set(&mut masks.active, campaign.active);
            set(
                &mut masks.exclusive,
                campaign.sale_modes.contains(SaleMode::Exclusive),
            );
            set(
                &mut masks.shared,
                campaign.sale_modes.contains(SaleMode::Shared),
            );
            set(
                &mut masks.live,
                matches!(campaign.pricing, Pricing::LiveBid { .. }),
            );
        }
        availability
    }

    /// The runs of a vertical's campaigns by role and tier, in the order its ping tree asks
    /// them (see [`TierRun`]); none for a vertical without campaigns.
    pub fn tier_runs(&self, vertical: VerticalIx) -> &[TierRun] {
        self.runs_by_vertical
            .get(usize::from(vertical.0))
            .map_or(&[], |&(start, end)| {
                &self.runs[start as usize..end as usize]
            })
    }

    /// The campaign's weight for the weighted strategy.
    #[inline]
    pub fn weight(&self, ix: CampaignIx) -> u16 {
        self.weight[ix.0 as usize]
    }

    /// The campaign's fixed price for `mode`: `None` when it bids live or does not buy `mode`.
    #[inline]
    pub fn fixed_price(&self, ix: CampaignIx, mode: SaleMode) -> Option<Money> {
        let price = match mode {
            SaleMode::Exclusive => self.exclusive_price[ix.0 as usize],
            SaleMode::Shared => self.shared_price[ix.0 as usize],
        };
        (price != NO_FIXED_PRICE).then_some(price)
    }

    /// The campaign's rank for `mode` (see `exclusive_rank`): lower ranks first.
    #[inline]
    pub fn price_rank(&self, ix: CampaignIx, mode: SaleMode) -> u32 {
        match mode {
            SaleMode::Exclusive => self.exclusive_rank[ix.0 as usize],
            SaleMode::Shared => self.shared_rank[ix.0 as usize],
        }
    }

    /// The campaign of rank `rank` for `mode` (below the number of ranked campaigns).
    #[inline]
    pub fn by_rank(&self, rank: u32, mode: SaleMode) -> CampaignIx {
        match mode {
            SaleMode::Exclusive => self.exclusive_by_rank[rank as usize],
            SaleMode::Shared => self.shared_by_rank[rank as usize],
        }
    }

    /// The campaign's place in campaign id order.
    #[inline]
    pub fn id_rank(&self, ix: CampaignIx) -> u32 {
        self.id_rank[ix.0 as usize]
    }

    /// How many campaigns the book has.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the book has no campaign.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the campaign at `ix`.
    #[inline]
    pub fn id(&self, ix: CampaignIx) -> CampaignId {
        self.ids[ix.0 as usize]
    }

    /// What the masks say of one word's campaigns for a ping that takes exclusive and/or
    /// shared sales: one read of the word's masks.
    #[inline]
    pub fn word_masks(&self, word: u32, exclusive: bool, shared: bool) -> WordMasks {
        let masks = &self.masks[word as usize];
        WordMasks {
            active: masks.active,
            sells: (if exclusive { masks.exclusive } else { 0 })
                | (if shared { masks.shared } else { 0 }),
            live: masks.live,
        }
    }

    /// Heap bytes of the masks, for the book's memory report.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[CampaignId]>(&self.ids)
            + std::mem::size_of_val::<[MaskWord]>(&self.masks)
            + std::mem::size_of_val::<[TierRun]>(&self.runs)
            + std::mem::size_of_val::<[(u32, u32)]>(&self.runs_by_vertical)
            + 2 * std::mem::size_of_val::<[Money]>(&self.exclusive_price)
            + 3 * std::mem::size_of_val::<[u32]>(&self.id_rank)
            + std::mem::size_of_val::<[CampaignIx]>(&self.exclusive_by_rank)
            + std::mem::size_of_val::<[CampaignIx]>(&self.shared_by_rank)
            + std::mem::size_of_val::<[u16]>(&self.weight)
    }
}

/// A seller's allow and block lists as masks over the book's campaigns: which campaigns'
/// buyers it admits. Sparse (only words that hold a listed buyer's campaign), so a list of
/// at most `SELLER_BUYER_LIST_MAX` buyers costs at most a word per campaign of theirs.
#[derive(Debug, Default)]
pub struct AdmitMask {
    /// Campaigns of blocked buyers: (word, bits), ascending, non-zero.
    blocked: Box<[(u32, u64)]>,
    /// Campaigns of allowed buyers, likewise; `None` when the allow list is empty (all are).
    allowed: Option<Box<[(u32, u64)]>>,
}

impl AdmitMask {
    /// The mask of a seller's lists (`allowed` empty: every buyer not blocked is admitted).
    pub fn build(
        campaigns: &[CompiledCampaign],
        allowed: &FxHashSet<BuyerId>,
        blocked: &FxHashSet<BuyerId>,
    ) -> Self {
        let of = |buyers: &FxHashSet<BuyerId>| -> Box<[(u32, u64)]> {
            let mut words: Vec<(u32, u64)> = Vec::new();
            for campaign in campaigns.iter().filter(|c| buyers.contains(&c.buyer)) {
                let (word, bit) = (campaign.ix.0 / 64, 1u64 << (campaign.ix.0 % 64));
                match words.last_mut() {
                    Some((last, bits)) if *last == word => *bits |= bit,
                    _ => words.push((word, bit)),
                }
            }
            words.into_boxed_slice()
        };
        Self {
            blocked: of(blocked),
            allowed: (!allowed.is_empty()).then(|| of(allowed)),
        }
    }

    /// A reader for one auction, whose words come in ascending order.
    pub fn reader(&self) -> AdmitReader<'_> {
        AdmitReader {
            blocked: &self.blocked,
            allowed: self.allowed.as_deref(),
        }
    }
}

/// Reads an [`AdmitMask`] word by word in ascending order, each list from where the last word
/// left it.
#[derive(Debug, Clone, Copy)]
pub struct AdmitReader<'a> {
    blocked: &'a [(u32, u64)],
    allowed: Option<&'a [(u32, u64)]>,
}

impl AdmitReader<'_> {
    /// Everyone admitted: the reader of a seller without lists.
    pub const ALL: AdmitReader<'static> = AdmitReader {
        blocked: &[],
        allowed: None,
    };

    /// Word `word` of the admitted campaigns. Words must be asked in ascending order.
    #[inline]
    pub fn word(&mut self, word: u32) -> u64 {
        fn bits(list: &mut &[(u32, u64)], word: u32) -> u64 {
            // Words are asked in ascending order, and lists are sparse: the list's next word
            // is most often at or after the one asked, or right after it. Only a jump (the
            // first word of an auction's vertical) searches.
            match list {
                [(first, _), ..] if *first >= word => {}
                [_, (second, _), ..] if *second >= word => *list = &list[1..],
                _ => {
                    let skip = list.partition_point(|&(w, _)| w < word);
                    *list = &list[skip..];
                }
            }
            match list.first() {
                Some(&(w, bits)) if w == word => bits,
                _ => 0,
            }
        }
        let blocked = if self.blocked.is_empty() {
            0
        } else {
            bits(&mut self.blocked, word)
        };
        let allowed = match &mut self.allowed {
            None => u64::MAX,
            Some(list) => bits(list, word),
        };
        allowed & !blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(blocked: &[(u32, u64)], allowed: Option<&[(u32, u64)]>) -> AdmitMask {
        AdmitMask {
            blocked: blocked.into(),
            allowed: allowed.map(Into::into),
        }
    }

    #[test]
    fn ranks_order_by_price_descending_then_id_and_skip_the_unpriced() {
        let ids = [40, 10, 30, 20, 50, 5];
        let prices = [Some(45), Some(38), None, Some(45), Some(42), Some(99)];
        let one = [VerticalIx(0); 6];
        // 99 (id 5), 45 (id 20), 45 (id 40), 42 (id 50), 38 (id 10); id 30 has no price.
        let (rank, by_rank) = ranks(&one, &ids, &prices);
        assert_eq!(&*rank, [2, 4, NOT_RANKED, 1, 3, 0]);
        assert_eq!(&*by_rank, [5, 3, 0, 4, 1].map(CampaignIx));
        // Vertical first: the $99 campaign of vertical 1 ranks after all of vertical 0.
        let two = [0, 0, 0, 0, 0, 1].map(VerticalIx);
        assert_eq!(&*ranks(&two, &ids, &prices).0, [1, 3, NOT_RANKED, 0, 2, 4]);
        assert!(ranks(&[], &[], &[]).0.is_empty());
    }

    #[test]
    fn a_seller_without_lists_admits_everyone() {
        let mut reader = AdmitReader::ALL;
        assert_eq!(reader.word(0), u64::MAX);
        assert_eq!(reader.word(7), u64::MAX);
    }

    #[test]
    fn blocked_campaigns_are_cleared_and_only_allowed_ones_kept() {
        let only_blocked = mask(&[(1, 0b0110), (5, 1 << 63)], None);
        let mut reader = only_blocked.reader();
        assert_eq!(reader.word(0), u64::MAX);
        assert_eq!(reader.word(1), !0b0110);
        // Word 3 lies between two listed words; word 5 after skipping.
        assert_eq!(reader.word(3), u64::MAX);
        assert_eq!(reader.word(5), !(1 << 63));
        assert_eq!(reader.word(6), u64::MAX);

        let both = mask(&[(2, 0b1)], Some(&[(0, 0b1000), (2, 0b11)]));
        let mut reader = both.reader();
        assert_eq!(reader.word(0), 0b1000);
        assert_eq!(reader.word(1), 0);
        // Allowed and blocked: blocked wins, as in `CompiledSeller::admits`.
        assert_eq!(reader.word(2), 0b10);
        assert_eq!(reader.word(9), 0);
    }

    #[test]
    fn a_reader_jumps_over_listed_words_it_is_not_asked() {
        // Asked word 1, then word 9 past three listed words, then one past the list's end.
        let blocked = mask(&[(1, 0b1), (2, 0b1), (3, 0b1), (4, 0b1), (9, 0b10)], None);
        let mut reader = blocked.reader();
        assert_eq!(reader.word(1), !0b1);
        assert_eq!(reader.word(9), !0b10);
        assert_eq!(reader.word(12), u64::MAX);
        // Each word in turn, as an auction over neighbouring words asks them.
        let mut reader = blocked.reader();
        for word in 0..10 {
            let listed = [(1, 0b1), (2, 0b1), (3, 0b1), (4, 0b1), (9, 0b10)]
                .iter()
                .find(|&&(w, _)| w == word)
                .map_or(0, |&(_, bits)| bits);
            assert_eq!(reader.word(word), !listed, "word {word}");
        }
    }
}
