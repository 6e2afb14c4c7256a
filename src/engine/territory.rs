//! The territory index: from (vertical, country, postal code) to the campaigns whose territory
//! matches, without scanning the book.
//!
//! A lead matches a campaign when at least one of the campaign's include rules matches and no
//! exclude rule does (spec section 7, `territory_rule`). [`TerritoryIndex::lookup`] returns both
//! the campaigns that match and those an exclude rule took out, which an auction's trace reports
//! as excluded by territory (450).
//!
//! # Structure
//!
//! The index is built once per book snapshot and never changes: a rule change builds a new one,
//! which the engine swaps in whole (auctions in flight keep theirs through an `Arc`). Rules are
//! grouped by *market*, a (vertical, country) pair, so a lead only ever sees its own vertical's
//! and country's rules (`DE`/`80331` is Munich and never meets a US rule). Within a market:
//!
//! - **postal** and **prefix** rules: hash maps from the code, packed into a `u128` (a postal
//!   code is at most 16 bytes, none of them 0, so zero padding is unambiguous), to posting
//!   lists. The market remembers which prefix lengths its rules use, and a lookup probes one key
//!   per such length (ZIP3 rules alone: one probe).
//! - **region** rules (US states): posting lists by the lead's state from the ZIP table.
//! - **country** rules: one posting list.
//! - **radius** rules: a grid of 0.5° cells. Each cell that holds a ZIP centroid lists, inline,
//!   the circles that may reach it; a lookup tests the exact distance from the lead's centroid
//!   for the circles of its one cell (a squared chord on the unit sphere, no trigonometry per
//!   candidate).
//!
//! A posting list is a run of campaign indexes in one arena per market: includes, then excludes.
//! When its includes are many for the market's size (a nationwide or statewide list; see
//! `DENSE_POSTINGS_WORDS_PER_INCLUDE`), they are kept instead as a bitset over the market's
//! words, which a lookup ORs in whole.
//!
//! A lookup marks hits in two bitsets in the caller's [`TerritoryMatches`] (one for include
//! hits, one for exclude hits) and then reads out, and clears, only its market's words: the
//! book numbers campaigns by vertical first, so those are one short run. That gives sorted,
//! de-duplicated answers as (word, bits) pairs in time proportional to the hits plus the
//! market's words, with no sort and no allocation once the buffer has grown to the book's size.
//!
//! # Costs
//!
//! From `cargo bench --bench territory` (release, on a shared 2-core VM): a generated book of
//! ZIP lists, ZIP3s, states, 10–100-mile radii, nationwide campaigns and some excludes, over 8
//! verticals, numbered by vertical as the book numbers them. At 10k campaigns a lookup returns
//! about 92 campaigns in about 310 ns (p50, warm) or 1.0 µs (a different lead each time); the
//! index holds 13.0 MiB and builds in about 75 ms. At 100k campaigns: 57 MiB, about 0.75 s to
//! build, 1.1 µs warm or 2.7 µs with a different lead each time, for about 920 campaigns. The dense posting lists took the
//! 100k lookup from 5.9 to 3.4 µs warm with the campaigns of a vertical spread over the whole
//! book (one sitting); at 1k and 10k the two forms were within this machine's noise.
//!
//! # Postal codes
//!
//! - A lead code that is not a valid `postal_code` (1 to 16 bytes of `A`–`Z`, `0`–`9`, space,
//!   `-`) matches nothing. The pre-ping check rejects such leads first.
//! - US codes are five digits (the caller turns ZIP+4 into the five-digit ZIP). A US lead code
//!   of another shape matches nothing; US postal rules must be five digits and US prefixes one
//!   to five digits, or the build fails with `INVALID_DEFINITION`, since they could never match.
//! - A five-digit US code that is not in the ZIP table matches postal, prefix and country rules
//!   (they are rules about the code's text, and the table ages while new ZIPs appear) but no
//!   region or radius rule, which need the table's state and centroid. The pre-ping check
//!   rejects unknown ZIPs anyway; this only decides what the index says if asked.
//! - The 306 military ZIPs without a centroid in the data match no radius rule, and are refused
//!   as radius centers (`UNKNOWN_RADIUS_CENTER`).
//! - Codes of other countries match postal rules exactly and prefix rules byte-wise. Region and
//!   radius rules need data the exchange has only for the US; for other countries they fail the
//!   build with `INVALID_DEFINITION`.

use std::fmt;

use rustc_hash::FxHashMap;

use crate::engine::geo::{self, ZipRow, ZipTable};
use crate::engine::types::{CampaignIx, VerticalIx};
use crate::limits::POSTAL_CODE_LEN_MAX;
pub use crate::limits::TERRITORY_RADIUS_MILES_MAX;
use crate::protocol::wire::is_postal_code;
use crate::protocol::{Country, Effect, ErrorCode, TerritoryArea, TerritoryRule};

/// Side of a radius grid cell in degrees; at US latitudes about 35 × 26 miles, close to the
/// metro radii buyers use. Measured with 3,000 random circles of 10–100 miles around real ZIPs,
/// a lookup at every ZIP: 0.5° gives 40 candidates for 23 matches per lookup and 67k cell
/// entries; 0.25° gives 34 candidates but 196k entries (3× the memory); 1° gives 54 candidates
/// for 25k entries. 0.5° is the knee.
const CELL_DEG: f64 = 0.5;
/// [`CELL_DEG`] in the ZIP table's fixed point (1e-4 degrees).
const CELL_E4: i32 = 5_000;
/// Rows and columns of the grid: 180° / 0.5° and 360° / 0.5°.
const CELL_ROWS: i32 = 360;
const CELL_COLS: i32 = 720;
/// Widens each circle's bounding box by about 0.7 miles so that rounding in the box's
/// trigonometry can never leave out a cell the circle reaches; the exact distance test decides.
const CELL_MARGIN_DEG: f64 = 0.01;

/// The one country with region and centroid data.
const US: Country = Country::from_checked(*b"US");

/// Marks an exclude rule in a radius entry's campaign field (campaign indexes stay below 2^31).
const EXCLUDE_BIT: u32 = 1 << 31;

/// Why a campaign's territory cannot be indexed; the admin answer carries `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerritoryError {
    pub campaign: CampaignIx,
    /// `INVALID_DEFINITION` (702) or `UNKNOWN_RADIUS_CENTER` (705).
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for TerritoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "campaign #{}: {}: {}",
            self.campaign.0, self.code, self.message
        )
    }
}

impl std::error::Error for TerritoryError {}

/// The answer of [`TerritoryIndex::lookup`], kept by the caller and reused across lookups so
/// that a lookup allocates nothing once the buffer has grown.
#[derive(Debug, Clone, Default)]
pub struct TerritoryMatches {
    /// Campaigns matched by an include rule and by an exclude rule (excluded by territory);
    /// ascending, no duplicates.
    pub excluded: Vec<CampaignIx>,
    /// The campaigns matched by an include rule and by no exclude rule, as bitset words:
    /// (word index, bits), word `w` bit `b` being campaign `64 * w + b`; ascending, only
    /// non-zero words. An auction ANDs these with the book's availability bitsets 64
    /// campaigns at a time; [`Self::included`] lists them one by one.
    pub included_words: Vec<(u32, u64)>,
    /// Scratch: campaigns an include rule matched.
    hits: HitSet,
    /// Scratch: campaigns an exclude rule matched.
    vetoes: HitSet,
}

impl TerritoryMatches {
    /// An empty buffer; it grows on first use. [`TerritoryIndex::new_matches`] gives one that
    /// never needs to.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no campaign matched, included or excluded.
    pub fn is_empty(&self) -> bool {
        self.included_words.is_empty() && self.excluded.is_empty()
    }

    /// The campaigns matched by an include rule and by no exclude rule, ascending.
    pub fn included(&self) -> CampaignsInWords<'_> {
        CampaignsInWords::new(&self.included_words)
    }

    /// How many campaigns [`Self::included`] lists.
    pub fn included_count(&self) -> usize {
        self.included_words
            .iter()
            .map(|&(_, bits)| bits.count_ones() as usize)
            .sum()
    }
}

/// The campaigns of bitset words `(word index, bits)` (campaign `64 * word + bit`), in the
/// words' order and ascending within each.
#[derive(Debug, Clone)]
pub struct CampaignsInWords<'a> {
    words: std::slice::Iter<'a, (u32, u64)>,
    word: u32,
    rest: u64,
}

impl<'a> CampaignsInWords<'a> {
    /// The campaigns of `words`, which hold no duplicate word.
    pub fn new(words: &'a [(u32, u64)]) -> Self {
        Self {
            words: words.iter(),
            word: 0,
            rest: 0,
        }
    }
}

impl Iterator for CampaignsInWords<'_> {
    type Item = CampaignIx;

    #[inline]
    fn next(&mut self) -> Option<CampaignIx> {
        while self.rest == 0 {
            let &(word, bits) = self.words.next()?;
            (self.word, self.rest) = (word, bits);
        }
        let ix = CampaignIx(self.word * 64 + self.rest.trailing_zeros());
        self.rest &= self.rest - 1;
        Some(ix)
    }
}

/// A set of campaign indexes as a bitset. It is all zeros between lookups: a lookup sets bits
/// only within its market's words ([`Market::words`]) and reading out clears those.
#[derive(Debug, Clone, Default)]
struct HitSet {
    words: Vec<u64>,
}

impl HitSet {
    /// Grows to hold indexes below `slots`; never shrinks, so a buffer fits every snapshot it
    /// has seen.
    fn fit(&mut self, slots: usize) {
        let words = slots.div_ceil(64);
        if self.words.len() < words {
            self.words.resize(words, 0);
        }
    }

    #[inline(always)]
    fn insert(&mut self, campaign: u32) {
        self.words[(campaign >> 6) as usize] |= 1 << (campaign & 63);
    }
}

/// Appends the campaigns of the bits of `word_ix`'s word `bits` to `out`, in order.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // `word_ix * 64` < campaign slots, a u32.
fn push_bits(mut bits: u64, word_ix: usize, out: &mut Vec<CampaignIx>) {
    let base = (word_ix * 64) as u32;
    while bits != 0 {
        out.push(CampaignIx(base + bits.trailing_zeros()));
        bits &= bits - 1;
    }
}

/// A posting list whose includes number at least one per this many of its market's bitset
/// words keeps them as a bitset over those words ([`Postings::dense`]): a lookup then ORs
/// `words` words into its hits (one short loop over two slices, which the compiler may
/// vectorize) instead of setting `includes` bits one by one (about six instructions each). A
/// nationwide or statewide list at 10k campaigns holds 60 to 190 campaigns over 42 words.
/// Three is about where the two cost the same by that count of instructions (an estimate, not a
/// sweep); it keeps a dense list at most 6× the bytes of its sparse form.
const DENSE_POSTINGS_WORDS_PER_INCLUDE: usize = 3;

/// [`Postings::dense`] of a list whose includes are sparse.
const SPARSE: u32 = u32::MAX;

/// A posting list: `includes` campaign indexes from `start` in the market's arena, then
/// `excludes` more; or, when `dense` is not [`SPARSE`], the includes as the market's bitset
/// words from `dense` in its dense arena and only the `excludes` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Postings {
    start: u32,
    includes: u32,
    excludes: u32,
    dense: u32,
}

impl Default for Postings {
    fn default() -> Self {
        Self {
            start: 0,
            includes: 0,
            excludes: 0,
            dense: SPARSE,
        }
    }
}

/// One radius rule as a cell lists it: the center on the unit sphere, the squared chord of its
/// radius, and the campaign with [`EXCLUDE_BIT`] for an exclude rule. 40 bytes, stored inline
/// so that a cell's candidates are one sequential read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RadiusEntry {
    center: [f64; 3],
    chord2_max: f64,
    campaign: u32,
}

/// Every rule of one (vertical, country).
#[derive(Debug, Default)]
struct Market {
    /// The bitset words (campaign index / 64) its campaigns fall in: a lookup reads out only
    /// these. The book numbers campaigns by vertical first, so a market's are close together.
    words: std::ops::Range<usize>,
    /// The posting lists' campaign indexes.
    arena: Vec<u32>,
    /// Dense posting lists' includes: `words.len()` bitset words each.
    dense: Vec<u64>,
    country: Postings,
    exact: FxHashMap<u128, Postings>,
    prefix: FxHashMap<u128, Postings>,
    /// Bit `n` is set when a prefix rule of `n` bytes exists.
    prefix_lens: u32,
    /// By state index of the ZIP table; empty when the market has no region rule.
    regions: Vec<Postings>,
    /// Grid cell → `(start, len)` in `radius`.
    cells: FxHashMap<u32, (u32, u32)>,
    radius: Vec<RadiusEntry>,
}

impl Market {
    #[inline(always)]
    fn mark(&self, postings: Postings, hits: &mut HitSet, vetoes: &mut HitSet) -> bool {
        let start = postings.start as usize;
        let middle = if postings.dense == SPARSE {
            let middle = start + postings.includes as usize;
            for &campaign in &self.arena[start..middle] {
                hits.insert(campaign);
            }
            middle
        } else {
            let dense = postings.dense as usize;
            let block = &self.dense[dense..dense + self.words.len()];
            for (hit, &bits) in hits.words[self.words.clone()].iter_mut().zip(block) {
                *hit |= bits;
            }
            start
        };
        let end = middle + postings.excludes as usize;
        for &campaign in &self.arena[middle..end] {
            vetoes.insert(campaign);
        }
        postings.excludes != 0
    }

    fn memory_bytes(&self) -> usize {
        self.arena.capacity() * size_of::<u32>()
            + self.dense.capacity() * size_of::<u64>()
            + map_bytes(&self.exact)
            + map_bytes(&self.prefix)
            + self.regions.capacity() * size_of::<Postings>()
            + map_bytes(&self.cells)
            + self.radius.capacity() * size_of::<RadiusEntry>()
    }
}

/// Heap bytes of a hashbrown map: buckets (capacity × 8/7, a power of two) of one entry and one
/// control byte each.
fn map_bytes<K, V>(map: &FxHashMap<K, V>) -> usize {
    if map.capacity() == 0 {
        return 0;
    }
    let buckets = (map.capacity() * 8 / 7).next_power_of_two();
    buckets * (size_of::<(K, V)>() + 1)
}

/// Counts that describe an index's size, for operators and benches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TerritoryStats {
    /// (vertical, country) pairs with at least one rule.
    pub markets: usize,
    /// Campaign indexes in all posting lists.
    pub postings: usize,
    /// Posting lists whose includes are a bitset over their market's words.
    pub dense_lists: usize,
    /// Distinct exact codes and distinct prefixes.
    pub exact_keys: usize,
    pub prefix_keys: usize,
    /// Radius rules, and their entries in grid cells.
    pub radius_rules: usize,
    pub radius_cell_entries: usize,
}

/// The territory index of one book snapshot. Immutable; see the module documentation.
#[derive(Debug)]
pub struct TerritoryIndex {
    markets: FxHashMap<(VerticalIx, Country), Market>,
    zips: ZipTable,
    /// One more than the highest campaign index: the size of a lookup's bitsets.
    campaign_slots: u32,
    /// Campaigns with at least one exclude rule: the most `excluded` can hold.
    exclude_campaigns: u32,
    radius_rules: usize,
}

/// A validated rule: what it targets, in the form the index stores.
enum Target {
    Country,
    Exact(u128),
    /// Packed prefix and its length in bytes (1..=16).
    Prefix(u128, usize),
    /// State index in the ZIP table.
    Region(u8),
    /// Center row of the ZIP table, its unit vector, and the radius in miles.
    Radius(ZipRow, [f64; 3], u16),
}

/// Index-building scratch of one market: every (key, effect, campaign) triple, sorted and
/// grouped into posting lists at the end.
#[derive(Default)]
struct MarketBuilder {
    /// The lowest and one past the highest campaign index of its rules.
    campaigns: Option<(u32, u32)>,
    country: Vec<(bool, u32)>,
    exact: Vec<(u128, bool, u32)>,
    prefix: Vec<(u128, bool, u32)>,
    prefix_lens: u32,
    regions: Vec<(u8, bool, u32)>,
    /// Center row, its unit vector, the radius in miles, exclude, campaign.
    radius: Vec<(ZipRow, [f64; 3], u16, bool, u32)>,
}

/// Packs a postal code of at most 16 bytes into a `u128`, first byte highest, zero padded.
/// Valid codes hold no zero byte, so different codes pack differently, and the prefix of `n`
/// bytes is the packed code with all but its top `n` bytes cleared.
#[inline(always)]
fn pack(code: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let len = code.len().min(16);
    bytes[..len].copy_from_slice(&code[..len]);
    u128::from_be_bytes(bytes)
}

/// The mask that keeps the top `len` bytes of a packed code (`len` in 1..=16).
#[inline(always)]
fn prefix_mask(len: u32) -> u128 {
    u128::MAX << (128 - 8 * len.clamp(1, 16))
}

fn is_valid_code(code: &[u8]) -> bool {
    !code.is_empty() && code.len() <= POSTAL_CODE_LEN_MAX && is_postal_code(code)
}

fn is_digits(code: &[u8], lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&code.len()) && code.iter().all(u8::is_ascii_digit)
}

/// The grid cell of a ZIP centroid (fixed point, so a centroid on a cell edge has one cell).
#[inline(always)]
fn cell_of(row: &ZipRow) -> u32 {
    let cell_row = ((row.lat_e4 + 900_000) / CELL_E4).clamp(0, CELL_ROWS - 1);
    let cell_col = ((row.lon_e4 + 1_800_000) / CELL_E4).rem_euclid(CELL_COLS);
    // Both are in range, so the cell number is below 360 × 720.
    (cell_row * CELL_COLS + cell_col) as u32
}

/// Every grid cell a circle of `miles` around (`lat`, `lon`) may reach: the cells of the
/// circle's latitude-longitude bounding box, widened by [`CELL_MARGIN_DEG`], wrapping at the
/// antimeridian and taking every longitude when the circle reaches a pole.
#[allow(clippy::cast_possible_truncation)] // f64 → i32 casts saturate and are clamped.
fn cells_of_circle(lat: f64, lon: f64, miles: f64, mut visit: impl FnMut(u32)) {
    let angle = miles / geo::EARTH_RADIUS_MILES + CELL_MARGIN_DEG.to_radians();
    let angle_deg = angle.to_degrees();
    let (lat_lo, lat_hi) = (lat - angle_deg, lat + angle_deg);
    // The widest longitude a spherical cap reaches, asin(sin a / cos φ), exists when the cap
    // does not hold a pole.
    let cos_lat = lat.to_radians().cos();
    let lon_half_deg = if lat_lo <= -90.0 || lat_hi >= 90.0 || angle.sin() >= cos_lat {
        None
    } else {
        Some((angle.sin() / cos_lat).asin().to_degrees() + CELL_MARGIN_DEG)
    };
    let row_lo = (((lat_lo.max(-90.0) + 90.0) / CELL_DEG).floor() as i32).clamp(0, CELL_ROWS - 1);
    let row_hi = (((lat_hi.min(90.0) + 90.0) / CELL_DEG).floor() as i32).clamp(0, CELL_ROWS - 1);
    let (col_lo, col_hi) = match lon_half_deg {
        Some(half) if 2.0 * half < 360.0 - 2.0 * CELL_DEG => (
            ((lon - half + 180.0) / CELL_DEG).floor() as i32,
            ((lon + half + 180.0) / CELL_DEG).floor() as i32,
        ),
        _ => (0, CELL_COLS - 1),
    };
    for cell_row in row_lo..=row_hi {
        for col in col_lo..=col_hi {
            visit((cell_row * CELL_COLS + col.rem_euclid(CELL_COLS)) as u32);
        }
    }
}

/// An offset or count of the index as `u32`. The index holds one posting per rule and one
/// radius entry per rule and cell it reaches; a book that came near 2^32 of them would have
/// run out of memory long before, so reaching this bound is a defect, not an input.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("the territory index outgrew u32 offsets")
}

/// Where a market's posting lists go while it is built: the arena of campaign indexes, the
/// arena of dense bitset blocks, and the market's words that a block covers.
struct PostingsArenas {
    words: std::ops::Range<usize>,
    arena: Vec<u32>,
    dense: Vec<u64>,
}

impl PostingsArenas {
    /// Sorts and de-duplicates `(key, exclude, campaign)` triples and appends them as one
    /// posting list per key (includes first, since `false < true`); includes that are many
    /// for the market's words ([`DENSE_POSTINGS_WORDS_PER_INCLUDE`]) become a dense block.
    fn group<K: Copy + Eq + Ord>(
        &mut self,
        mut entries: Vec<(K, bool, u32)>,
        mut emit: impl FnMut(K, Postings),
    ) {
        entries.sort_unstable();
        entries.dedup();
        let mut rest = entries.as_slice();
        while let Some(&(key, _, _)) = rest.first() {
            let len = rest.iter().take_while(|entry| entry.0 == key).count();
            let (run, tail) = rest.split_at(len);
            let includes = run.iter().take_while(|entry| !entry.1).count();
            let (included, excluded) = run.split_at(includes);
            let mut postings = Postings {
                start: to_u32(self.arena.len()),
                includes: to_u32(includes),
                excludes: to_u32(len - includes),
                dense: SPARSE,
            };
            if includes * DENSE_POSTINGS_WORDS_PER_INCLUDE >= self.words.len() {
                postings.dense = to_u32(self.dense.len());
                let block_start = self.dense.len();
                self.dense.resize(block_start + self.words.len(), 0);
                let block = &mut self.dense[block_start..];
                for &(_, _, campaign) in included {
                    block[campaign as usize / 64 - self.words.start] |= 1 << (campaign % 64);
                }
            } else {
                self.arena.extend(included.iter().map(|entry| entry.2));
            }
            self.arena.extend(excluded.iter().map(|entry| entry.2));
            emit(key, postings);
            rest = tail;
        }
    }
}

impl MarketBuilder {
    fn finish(self, occupied: &[u64]) -> Market {
        let (low, high) = self.campaigns.unwrap_or((0, 0));
        let mut market = Market {
            words: (low as usize / 64)..(high as usize).div_ceil(64),
            prefix_lens: self.prefix_lens,
            ..Market::default()
        };
        let country = self
            .country
            .into_iter()
            .map(|(exclude, c)| ((), exclude, c));
        let mut arenas = PostingsArenas {
            words: market.words.clone(),
            arena: Vec::new(),
            dense: Vec::new(),
        };
        arenas.group(country.collect(), |(), postings| {
            market.country = postings;
        });
        market.exact.reserve(self.exact.len().min(1 << 16));
        arenas.group(self.exact, |key, postings| {
            market.exact.insert(key, postings);
        });
        arenas.group(self.prefix, |key, postings| {
            market.prefix.insert(key, postings);
        });
        arenas.group(self.regions, |state, postings| {
            let ix = usize::from(state);
            if market.regions.len() <= ix {
                market.regions.resize(ix + 1, Postings::default());
            }
            market.regions[ix] = postings;
        });
        market.arena = arenas.arena;
        market.dense = arenas.dense;

        // Radius rules: (cell, entry) pairs for the cells that hold a ZIP centroid (no lead can
        // fall anywhere else), grouped by cell with the entries copied inline.
        let entries: Vec<RadiusEntry> = self
            .radius
            .iter()
            .map(|&(_, center, miles, exclude, campaign)| RadiusEntry {
                center,
                chord2_max: geo::chord2_for_miles(f64::from(miles)),
                campaign: campaign | if exclude { EXCLUDE_BIT } else { 0 },
            })
            .collect();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (entry_ix, &(center, _, miles, _, _)) in self.radius.iter().enumerate() {
            cells_of_circle(center.lat(), center.lon(), f64::from(miles), |cell| {
                if occupied[(cell >> 6) as usize] & (1 << (cell & 63)) != 0 {
                    pairs.push((cell, to_u32(entry_ix)));
                }
            });
        }
        pairs.sort_unstable();
        pairs.dedup();
        market.radius.reserve_exact(pairs.len());
        let mut rest = pairs.as_slice();
        while let Some(&(cell, _)) = rest.first() {
            let len = rest.iter().take_while(|pair| pair.0 == cell).count();
            let (run, tail) = rest.split_at(len);
            let start = to_u32(market.radius.len());
            market
                .radius
                .extend(run.iter().map(|&(_, entry_ix)| entries[entry_ix as usize]));
            market.cells.insert(cell, (start, to_u32(len)));
            rest = tail;
        }
        market.exact.shrink_to_fit();
        market.prefix.shrink_to_fit();
        market.cells.shrink_to_fit();
        market.arena.shrink_to_fit();
        market.dense.shrink_to_fit();
        market
    }
}

/// Checks one rule and turns it into what the index stores.
fn compile_rule(
    campaign: CampaignIx,
    rule_ix: usize,
    area: &TerritoryArea<'_>,
    zips: &ZipTable,
) -> Result<(Country, Target), TerritoryError> {
    let invalid = |message: String| TerritoryError {
        campaign,
        code: ErrorCode::INVALID_DEFINITION,
        message: format!("territory rule {rule_ix}: {message}"),
    };
    let no_data = |country: &Country, kind: &str| {
        invalid(format!(
            "{kind} rules need geographic data, which the exchange has only for US, not {country}"
        ))
    };
    Ok(match area {
        TerritoryArea::Country { country } => (*country, Target::Country),
        TerritoryArea::Postal {
            country,
            postal_code,
        } => {
            let code = postal_code.as_bytes();
            if !is_valid_code(code) {
                return Err(invalid(format!("{postal_code:?} is not a postal code")));
            }
            if *country == US && !is_digits(code, 5..=5) {
                return Err(invalid(format!(
                    "US postal code {postal_code:?} is not a five-digit ZIP"
                )));
            }
            (*country, Target::Exact(pack(code)))
        }
        TerritoryArea::Prefix { country, prefix } => {
            let code = prefix.as_bytes();
            if !is_valid_code(code) {
                return Err(invalid(format!("{prefix:?} is not a postal code prefix")));
            }
            if *country == US && !is_digits(code, 1..=5) {
                return Err(invalid(format!(
                    "US prefix {prefix:?} is not 1 to 5 digits of a ZIP"
                )));
            }
            // The length is at most 16 (checked above).
            (*country, Target::Prefix(pack(code), code.len()))
        }
        TerritoryArea::Region { country, region } => {
            if *country != US {
                return Err(no_data(country, "region"));
            }
            let state = zips.state_ix(region).ok_or_else(|| {
                invalid(format!(
                    "{region:?} is not a US state or territory code (such as CO or PR)"
                ))
            })?;
            (*country, Target::Region(state))
        }
        TerritoryArea::Radius {
            country,
            center,
            radius_miles,
        } => {
            if *country != US {
                return Err(no_data(country, "radius"));
            }
            if !(1..=TERRITORY_RADIUS_MILES_MAX).contains(radius_miles) {
                return Err(invalid(format!(
                    "radius_miles {radius_miles} is not in 1..={TERRITORY_RADIUS_MILES_MAX}"
                )));
            }
            let row_ix = zips
                .row_ix(center.as_bytes())
                .filter(|&ix| zips.rows()[ix].has_centroid())
                .ok_or_else(|| TerritoryError {
                    campaign,
                    code: ErrorCode::UNKNOWN_RADIUS_CENTER,
                    message: format!(
                        "territory rule {rule_ix}: radius center {center:?} is not a US ZIP \
                         with known coordinates"
                    ),
                })?;
            let unit = zips.units()[row_ix];
            (
                *country,
                Target::Radius(zips.rows()[row_ix], unit, *radius_miles),
            )
        }
    })
}

impl TerritoryIndex {
    /// Builds the index of a snapshot's campaigns: each with its dense index, vertical and
    /// territory. Fails on the first rule that cannot be indexed, naming its campaign. A
    /// campaign without include rules matches nothing and is left out.
    pub fn build<'a>(
        campaigns: impl IntoIterator<Item = (CampaignIx, VerticalIx, &'a [TerritoryRule<'a>])>,
        zips: &ZipTable,
    ) -> Result<TerritoryIndex, TerritoryError> {
        let mut builders: FxHashMap<(VerticalIx, Country), MarketBuilder> = FxHashMap::default();
        let mut campaign_slots = 0u32;
        let mut exclude_campaigns = 0u32;
        let mut radius_rules = 0usize;
        let mut compiled: Vec<(Effect, Country, Target)> = Vec::new();
        let mut include_countries: Vec<Country> = Vec::new();

        for (campaign, vertical, rules) in campaigns {
            // Campaign indexes are dense per snapshot; the top bit is the radius entries' flag.
            assert!(
                campaign.0 < EXCLUDE_BIT,
                "campaign index {} is not dense",
                campaign.0
            );
            compiled.clear();
            include_countries.clear();
            for (rule_ix, rule) in rules.iter().enumerate() {
                let (country, target) = compile_rule(campaign, rule_ix, &rule.rule, zips)?;
                if rule.effect == Effect::Include && !include_countries.contains(&country) {
                    include_countries.push(country);
                }
                compiled.push((rule.effect, country, target));
            }
            if include_countries.is_empty() {
                continue;
            }
            campaign_slots = campaign_slots.max(campaign.0 + 1);
            let mut has_exclude = false;
            for (effect, country, target) in compiled.drain(..) {
                // An exclude rule only matters where the campaign also includes something.
                if !include_countries.contains(&country) {
                    continue;
                }
                let exclude = effect == Effect::Exclude;
                has_exclude |= exclude;
                let market = builders.entry((vertical, country)).or_default();
                let c = campaign.0;
                market.campaigns = Some(match market.campaigns {
                    None => (c, c + 1),
                    Some((low, high)) => (low.min(c), high.max(c + 1)),
                });
                match target {
                    Target::Country => market.country.push((exclude, c)),
                    Target::Exact(key) => market.exact.push((key, exclude, c)),
                    Target::Prefix(key, len) => {
                        market.prefix_lens |= 1 << len;
                        market.prefix.push((key, exclude, c));
                    }
                    Target::Region(state) => market.regions.push((state, exclude, c)),
                    Target::Radius(center, unit, miles) => {
                        radius_rules += 1;
                        market.radius.push((center, unit, miles, exclude, c));
                    }
                }
            }
            exclude_campaigns += u32::from(has_exclude);
        }

        // The grid cells that hold at least one ZIP centroid: the only places a lead can be.
        let mut occupied = vec![0u64; (CELL_ROWS * CELL_COLS) as usize / 64 + 1];
        for row in zips.rows().iter().filter(|row| row.has_centroid()) {
            let cell = cell_of(row);
            occupied[(cell >> 6) as usize] |= 1 << (cell & 63);
        }
        let markets = builders
            .into_iter()
            .map(|(key, builder)| (key, builder.finish(&occupied)))
            .collect();
        Ok(TerritoryIndex {
            markets,
            zips: zips.clone(),
            campaign_slots,
            exclude_campaigns,
            radius_rules,
        })
    }

    /// Fills `out` with the campaigns of `vertical` whose territory matches a lead in `country`
    /// with `postal_code` (US: the five-digit ZIP). Clears `out` first. Allocates only if `out`
    /// is smaller than this index needs ([`TerritoryIndex::new_matches`] never is).
    pub fn lookup(
        &self,
        vertical: VerticalIx,
        country: Country,
        postal_code: &str,
        out: &mut TerritoryMatches,
    ) {
        out.excluded.clear();
        out.included_words.clear();
        let Some(market) = self.markets.get(&(vertical, country)) else {
            return;
        };
        let code = postal_code.as_bytes();
        if !is_valid_code(code) {
            return;
        }
        let us = country == US;
        if us && !is_digits(code, 5..=5) {
            return;
        }
        let slots = self.campaign_slots as usize;
        out.hits.fit(slots);
        out.vetoes.fit(slots);
        let (hits, vetoes) = (&mut out.hits, &mut out.vetoes);
        let mut vetoed = market.mark(market.country, hits, vetoes);

        let key = pack(code);
        if let Some(&postings) = market.exact.get(&key) {
            vetoed |= market.mark(postings, hits, vetoes);
        }
        // Prefix lengths up to the code's own (at most 16, so the shift cannot overflow).
        let mut lens = market.prefix_lens & ((2u32 << code.len()) - 1);
        while lens != 0 {
            let len = lens.trailing_zeros();
            lens &= lens - 1;
            if let Some(&postings) = market.prefix.get(&(key & prefix_mask(len))) {
                vetoed |= market.mark(postings, hits, vetoes);
            }
        }

        if us && (!market.regions.is_empty() || !market.cells.is_empty()) {
            if let Some(row_ix) = self.zips.row_ix(code) {
                let row = &self.zips.rows()[row_ix];
                if let Some(&postings) = market.regions.get(usize::from(row.state_ix)) {
                    vetoed |= market.mark(postings, hits, vetoes);
                }
                if row.has_centroid() {
                    if let Some(&(start, len)) = market.cells.get(&cell_of(row)) {
                        let point = self.zips.units()[row_ix];
                        let candidates = &market.radius[start as usize..(start + len) as usize];
                        for entry in candidates {
                            if geo::chord2(&point, &entry.center) <= entry.chord2_max {
                                if entry.campaign & EXCLUDE_BIT == 0 {
                                    hits.insert(entry.campaign);
                                } else {
                                    vetoes.insert(entry.campaign & !EXCLUDE_BIT);
                                    vetoed = true;
                                }
                            }
                        }
                    }
                }
            }
        }

        // Read the hits out in order, clearing them; a hit that is also vetoed goes to
        // `excluded`.
        let words = market.words.clone();
        let hit_words = &mut hits.words[words.clone()];
        if vetoed {
            let veto_words = &mut vetoes.words[words.clone()];
            for ((hit, veto), word_ix) in hit_words.iter_mut().zip(veto_words).zip(words) {
                let bits = std::mem::take(hit);
                let vetoed_bits = std::mem::take(veto);
                let included = bits & !vetoed_bits;
                if included != 0 {
                    // Below the campaign slots, a u32.
                    #[allow(clippy::cast_possible_truncation)]
                    out.included_words.push((word_ix as u32, included));
                }
                push_bits(bits & vetoed_bits, word_ix, &mut out.excluded);
            }
        } else {
            for (hit, word_ix) in hit_words.iter_mut().zip(words) {
                let bits = std::mem::take(hit);
                if bits != 0 {
                    // Below the campaign slots, a u32.
                    #[allow(clippy::cast_possible_truncation)]
                    out.included_words.push((word_ix as u32, bits));
                }
            }
        }
    }

    /// A buffer that `lookup` on this index never needs to grow.
    pub fn new_matches(&self) -> TerritoryMatches {
        let mut matches = TerritoryMatches {
            included_words: Vec::with_capacity((self.campaign_slots as usize).div_ceil(64)),
            excluded: Vec::with_capacity(self.exclude_campaigns as usize),
            ..TerritoryMatches::default()
        };
        matches.hits.fit(self.campaign_slots as usize);
        matches.vetoes.fit(self.campaign_slots as usize);
        matches
    }

    /// One more than the highest campaign index the index holds (0 when empty).
    pub fn campaign_slots(&self) -> u32 {
        self.campaign_slots
    }

    /// True when no campaign can match any lead.
    pub fn is_empty(&self) -> bool {
        self.markets.is_empty()
    }

    /// An estimate of the heap bytes the index holds (the shared ZIP table not counted).
    pub fn memory_bytes(&self) -> usize {
        map_bytes(&self.markets)
            + self
                .markets
                .values()
                .map(Market::memory_bytes)
                .sum::<usize>()
    }

    /// Counts that describe the index's size.
    pub fn stats(&self) -> TerritoryStats {
        let mut stats = TerritoryStats {
            markets: self.markets.len(),
            radius_rules: self.radius_rules,
            ..TerritoryStats::default()
        };
        for market in self.markets.values() {
            let dense_lists = market.dense.len() / market.words.len().max(1);
            let dense_postings: usize = market.dense.iter().map(|w| w.count_ones() as usize).sum();
            stats.postings += market.arena.len() + dense_postings;
            stats.dense_lists += dense_lists;
            stats.exact_keys += market.exact.len();
            stats.prefix_keys += market.prefix.len();
            stats.radius_cell_entries += market.radius.len();
        }
        stats
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::engine::geo::distance_miles;
    use crate::protocol::PostalCode;
    use proptest::prelude::*;
    use std::borrow::Cow;

    fn country(code: &str) -> Country {
        Country::new(code).unwrap()
    }

    fn code(text: &str) -> PostalCode<'static> {
        PostalCode::new(text.to_string()).unwrap()
    }

    fn postal(c: &str, text: &str) -> TerritoryArea<'static> {
        TerritoryArea::Postal {
            country: country(c),
            postal_code: code(text),
        }
    }

    fn prefix(c: &str, text: &str) -> TerritoryArea<'static> {
        TerritoryArea::Prefix {
            country: country(c),
            prefix: code(text),
        }
    }

    fn region(c: &str, text: &str) -> TerritoryArea<'static> {
        TerritoryArea::Region {
            country: country(c),
            region: Cow::Owned(text.to_string()),
        }
    }

    fn radius(c: &str, center: &str, miles: u16) -> TerritoryArea<'static> {
        TerritoryArea::Radius {
            country: country(c),
            center: code(center),
            radius_miles: miles,
        }
    }

    fn whole(c: &str) -> TerritoryArea<'static> {
        TerritoryArea::Country {
            country: country(c),
        }
    }

    fn inc(rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
        TerritoryRule {
            effect: Effect::Include,
            rule,
        }
    }

    fn exc(rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
        TerritoryRule {
            effect: Effect::Exclude,
            rule,
        }
    }

    type Book = [(u32, u16, Vec<TerritoryRule<'static>>)];

    fn try_build(book: &Book) -> Result<TerritoryIndex, TerritoryError> {
        TerritoryIndex::build(
            book.iter()
                .map(|(c, v, rules)| (CampaignIx(*c), VerticalIx(*v), rules.as_slice())),
            ZipTable::us(),
        )
    }

    fn build(book: &Book) -> TerritoryIndex {
        try_build(book).unwrap()
    }

    /// (included, excluded) for a lead of vertical 0.
    fn find(index: &TerritoryIndex, c: &str, text: &str) -> (Vec<u32>, Vec<u32>) {
        find_in(index, 0, c, text)
    }

    fn find_in(index: &TerritoryIndex, v: u16, c: &str, text: &str) -> (Vec<u32>, Vec<u32>) {
        let mut out = TerritoryMatches::new();
        index.lookup(VerticalIx(v), country(c), text, &mut out);
        let ids = |list: &[CampaignIx]| list.iter().map(|c| c.0).collect();
        // The words hold the campaigns the listing gives, in the same order.
        let from_words: Vec<u32> = out
            .included_words
            .iter()
            .flat_map(|&(word, bits)| {
                (0..64)
                    .filter(move |b| bits >> b & 1 == 1)
                    .map(move |b| word * 64 + b)
            })
            .collect();
        let included: Vec<u32> = out.included().map(|c| c.0).collect();
        assert_eq!(from_words, included);
        assert_eq!(out.included_count(), included.len());
        (included, ids(&out.excluded))
    }

    fn included(index: &TerritoryIndex, c: &str, text: &str) -> Vec<u32> {
        find(index, c, text).0
    }

    fn miles(a: &str, b: &str) -> f64 {
        let zips = ZipTable::us();
        let (a, b) = (zips.get(a).unwrap(), zips.get(b).unwrap());
        distance_miles(a.lat, a.lon, b.lat, b.lon)
    }

    #[test]
    fn exact_and_prefix() {
        let index = build(&[
            (0, 0, vec![inc(prefix("US", "803"))]),
            (1, 0, vec![inc(postal("US", "80331"))]),
            (2, 0, vec![inc(prefix("US", "8033"))]),
            (3, 0, vec![inc(prefix("US", "80331"))]),
        ]);
        assert_eq!(included(&index, "US", "80331"), [0, 1, 2, 3]);
        assert_eq!(included(&index, "US", "80302"), [0]);
        assert_eq!(included(&index, "US", "80330"), [0, 2]);
        assert_eq!(included(&index, "US", "81331"), [] as [u32; 0]);
        assert_eq!(included(&index, "US", "08033"), [] as [u32; 0]);
        // Only five-digit US codes are US codes.
        assert_eq!(included(&index, "US", "803"), [] as [u32; 0]);
        assert_eq!(included(&index, "US", "80331-1234"), [] as [u32; 0]);
        assert_eq!(included(&index, "US", "8033"), [] as [u32; 0]);
    }

    #[test]
    fn region_rules() {
        let index = build(&[
            (0, 0, vec![inc(region("US", "CO"))]),
            (1, 0, vec![inc(region("US", "WY")), inc(region("US", "CO"))]),
            (2, 0, vec![inc(region("US", "PR"))]),
        ]);
        assert_eq!(included(&index, "US", "80202"), [0, 1]);
        assert_eq!(included(&index, "US", "82001"), [1]);
        assert_eq!(included(&index, "US", "00601"), [2]);
        assert_eq!(included(&index, "US", "10001"), [] as [u32; 0]);
        for zip in ZipTable::us().zips_in_state("CO") {
            assert_eq!(included(&index, "US", zip.0.as_str()), [0, 1]);
        }
        for bad in ["XX", "co", "", "COL"] {
            let error = try_build(&[(7, 0, vec![inc(region("US", bad))])]).unwrap_err();
            assert_eq!(error.campaign, CampaignIx(7));
            assert_eq!(error.code, ErrorCode::INVALID_DEFINITION);
            assert!(error.message.contains("not a US state"), "{error}");
        }
    }

    #[test]
    fn radius_center_and_edges() {
        let zips = ZipTable::us();
        // The center itself, with the smallest radius.
        let index = build(&[(0, 0, vec![inc(radius("US", "80202", 1))])]);
        assert_eq!(included(&index, "US", "80202"), [0]);
        assert!(miles("80202", "80302") > 1.0);
        assert_eq!(included(&index, "US", "80302"), [] as [u32; 0]);

        // Every Colorado ZIP against a radius just above and just below its computed distance
        // from Denver (skipping ZIPs within 0.01 mile of a whole number, too close to call).
        let mut checked = 0;
        for (zip, _) in zips.zips_in_state("CO") {
            let distance = miles("80202", zip.as_str());
            if !(1.0..=450.0).contains(&distance) || (distance - distance.round()).abs() < 0.01 {
                continue;
            }
            let above = distance.ceil() as u16;
            let below = distance.floor() as u16;
            let index = build(&[
                (0, 0, vec![inc(radius("US", "80202", above))]),
                (1, 0, vec![inc(radius("US", "80202", below))]),
            ]);
            assert_eq!(
                included(&index, "US", zip.as_str()),
                [0],
                "{zip} at {distance}"
            );
            checked += 1;
        }
        assert!(checked > 600, "{checked}");
    }

    #[test]
    fn radius_across_a_state_line_and_the_antimeridian() {
        // Cheyenne, WY to Fort Collins, CO: about 40 miles.
        let distance = miles("82001", "80521");
        assert!(distance < 50.0, "{distance}");
        let index = build(&[(0, 0, vec![inc(radius("US", "82001", 50))])]);
        assert_eq!(included(&index, "US", "80521"), [0]);
        assert_eq!(included(&index, "US", "82001"), [0]);
        assert_eq!(included(&index, "US", "80202"), [] as [u32; 0]);

        // Adak, AK (176.6° W) to Shemya (178.9° E): about 193 miles across the antimeridian.
        let distance = miles("99546", "96507");
        assert!((190.0..200.0).contains(&distance), "{distance}");
        let index = build(&[
            (0, 0, vec![inc(radius("US", "99546", 200))]),
            (1, 0, vec![inc(radius("US", "96507", 200))]),
            (2, 0, vec![inc(radius("US", "99546", 190))]),
        ]);
        assert_eq!(included(&index, "US", "96507"), [0, 1]);
        assert_eq!(included(&index, "US", "99546"), [0, 1, 2]);

        // A circle around the South Pole station takes every longitude.
        let index = build(&[(0, 0, vec![inc(radius("US", "96598", 500))])]);
        assert_eq!(included(&index, "US", "96598"), [0]);
    }

    #[test]
    fn radius_errors() {
        let check = |rule, code: ErrorCode, needle: &str| {
            let error =
                try_build(&[(3, 0, vec![inc(postal("US", "80202")), inc(rule)])]).unwrap_err();
            assert_eq!(error.campaign, CampaignIx(3));
            assert_eq!(error.code, code, "{error}");
            assert!(error.message.contains(needle), "{error}");
            assert!(error.message.starts_with("territory rule 1:"), "{error}");
        };
        check(
            radius("US", "80202", 0),
            ErrorCode::INVALID_DEFINITION,
            "radius_miles 0",
        );
        check(
            radius("US", "80202", 501),
            ErrorCode::INVALID_DEFINITION,
            "1..=500",
        );
        check(
            radius("US", "00000", 10),
            ErrorCode::UNKNOWN_RADIUS_CENTER,
            "\"00000\"",
        );
        check(
            radius("US", "8020", 10),
            ErrorCode::UNKNOWN_RADIUS_CENTER,
            "known",
        );
        // A military ZIP whose data has no centroid.
        check(
            radius("US", "09002", 10),
            ErrorCode::UNKNOWN_RADIUS_CENTER,
            "09002",
        );
        check(
            radius("DE", "80331", 10),
            ErrorCode::INVALID_DEFINITION,
            "only for US, not DE",
        );
        check(
            region("DE", "BY"),
            ErrorCode::INVALID_DEFINITION,
            "only for US, not DE",
        );
        check(
            postal("US", "8020"),
            ErrorCode::INVALID_DEFINITION,
            "five-digit",
        );
        check(
            postal("US", "80202-1234"),
            ErrorCode::INVALID_DEFINITION,
            "five-digit",
        );
        check(
            prefix("US", "802021"),
            ErrorCode::INVALID_DEFINITION,
            "1 to 5 digits",
        );
        check(
            prefix("US", "80A"),
            ErrorCode::INVALID_DEFINITION,
            "1 to 5 digits",
        );
        assert!(try_build(&[(0, 0, vec![inc(radius("US", "80202", 500))])]).is_ok());
    }

    #[test]
    fn exclude_beats_include() {
        let index = build(&[
            (
                0,
                0,
                vec![inc(region("US", "CO")), exc(postal("US", "80202"))],
            ),
            // Its exclude matches Denver, but no include does: in neither list.
            (
                1,
                0,
                vec![inc(postal("US", "10001")), exc(region("US", "CO"))],
            ),
            (
                2,
                0,
                vec![
                    inc(radius("US", "80202", 30)),
                    exc(radius("US", "80302", 5)),
                ],
            ),
            (
                3,
                0,
                vec![inc(region("US", "CO")), exc(prefix("US", "803"))],
            ),
            (4, 0, vec![exc(region("US", "CO"))]),
        ]);
        assert_eq!(find(&index, "US", "80202"), (vec![2, 3], vec![0]));
        assert_eq!(find(&index, "US", "80203"), (vec![0, 2, 3], vec![]));
        assert_eq!(find(&index, "US", "80302"), (vec![0], vec![2, 3]));
        assert_eq!(find(&index, "US", "10001"), (vec![1], vec![]));
    }

    #[test]
    fn dense_and_sparse_lists_in_one_market() {
        // 640 campaigns over 10 words: the nationwide list (every tenth campaign, 64 of them)
        // and Colorado's (3 campaigns: fewer than one per three words) fall on each side of
        // the dense threshold, each with excludes.
        let mut book: Vec<(u32, u16, Vec<TerritoryRule<'static>>)> = (0..640)
            .map(|c| {
                let rules = if c % 10 == 0 {
                    vec![inc(whole("US")), exc(postal("US", "80202"))]
                } else {
                    vec![inc(postal("US", "10001"))]
                };
                (c, 0, rules)
            })
            .collect();
        for c in [3, 257, 639] {
            book[c as usize].2 = vec![inc(region("US", "CO")), exc(prefix("US", "803"))];
        }
        let index = build(&book);
        assert_eq!(index.stats().dense_lists, 2, "nationwide and 10001");
        let nationwide: Vec<u32> = (0..640).step_by(10).collect();
        let with_colorado = {
            let mut all = nationwide.clone();
            all.extend([3, 257, 639]);
            all.sort_unstable();
            all
        };
        assert_eq!(find(&index, "US", "80203"), (with_colorado, vec![]));
        assert_eq!(
            find(&index, "US", "80202"),
            (vec![3, 257, 639], nationwide.clone())
        );
        assert_eq!(find(&index, "US", "80302"), (nationwide, vec![3, 257, 639]));
        let outside_colorado: Vec<u32> = (0..640).filter(|c| ![3, 257, 639].contains(c)).collect();
        assert_eq!(included(&index, "US", "10001"), outside_colorado);
    }

    #[test]
    fn foreign_codes_stay_in_their_country() {
        let index = build(&[
            (0, 0, vec![inc(postal("DE", "80331"))]),
            (1, 0, vec![inc(postal("US", "80331"))]),
            (2, 0, vec![inc(prefix("DE", "80"))]),
            (3, 0, vec![inc(prefix("US", "80"))]),
            (
                4,
                0,
                vec![inc(prefix("GB", "SW1A")), exc(postal("GB", "SW1A 2AA"))],
            ),
            (5, 0, vec![inc(postal("GB", "SW1A 1AA"))]),
        ]);
        assert_eq!(included(&index, "DE", "80331"), [0, 2]);
        assert_eq!(included(&index, "US", "80331"), [1, 3]);
        assert_eq!(included(&index, "DE", "8033"), [2]);
        assert_eq!(included(&index, "DE", "80331 "), [2]);
        assert_eq!(find(&index, "GB", "SW1A 1AA"), (vec![4, 5], vec![]));
        assert_eq!(find(&index, "GB", "SW1A 2AA"), (vec![], vec![4]));
        assert_eq!(included(&index, "GB", "SW1"), [] as [u32; 0]);
        assert_eq!(included(&index, "FR", "80331"), [] as [u32; 0]);
    }

    #[test]
    fn country_rules() {
        let index = build(&[
            (0, 0, vec![inc(whole("US"))]),
            (1, 0, vec![inc(whole("DE"))]),
            (2, 0, vec![inc(whole("US")), exc(region("US", "CO"))]),
        ]);
        assert_eq!(included(&index, "US", "10001"), [0, 2]);
        assert_eq!(find(&index, "US", "80202"), (vec![0], vec![2]));
        assert_eq!(included(&index, "DE", "80331"), [1]);
        assert_eq!(included(&index, "DE", "A"), [1]);
        // Not postal codes at all.
        assert_eq!(included(&index, "DE", ""), [] as [u32; 0]);
        assert_eq!(included(&index, "DE", "80331a"), [] as [u32; 0]);
        assert_eq!(included(&index, "US", "8033"), [] as [u32; 0]);
    }

    #[test]
    fn unknown_us_zip_matches_only_text_rules() {
        let zips = ZipTable::us();
        let unknown = "80099";
        assert!(zips.get(unknown).is_none());
        let index = build(&[
            (0, 0, vec![inc(prefix("US", "800"))]),
            (1, 0, vec![inc(postal("US", unknown))]),
            (2, 0, vec![inc(whole("US"))]),
            (3, 0, vec![inc(region("US", "CO"))]),
            (4, 0, vec![inc(radius("US", "80002", 100))]),
        ]);
        assert_eq!(included(&index, "US", unknown), [0, 1, 2]);
        assert_eq!(included(&index, "US", "80002"), [0, 2, 3, 4]);
        // A military ZIP without a centroid: no radius rule reaches it, its region does.
        let index = build(&[
            (0, 0, vec![inc(region("US", "AE"))]),
            (1, 0, vec![inc(radius("US", "09001", 500))]),
        ]);
        assert_eq!(included(&index, "US", "09002"), [0]);
    }

    #[test]
    fn verticals_are_separate() {
        let index = build(&[
            (0, 0, vec![inc(whole("US"))]),
            (1, 1, vec![inc(region("US", "CO"))]),
            (2, 1, vec![inc(prefix("US", "802"))]),
        ]);
        assert_eq!(find_in(&index, 0, "US", "80202").0, [0]);
        assert_eq!(find_in(&index, 1, "US", "80202").0, [1, 2]);
        assert_eq!(find_in(&index, 2, "US", "80202").0, [] as [u32; 0]);
    }

    #[test]
    fn campaigns_without_includes_are_left_out() {
        let index = build(&[(0, 0, vec![exc(whole("US"))]), (1, 0, vec![])]);
        assert!(index.is_empty());
        assert_eq!(index.campaign_slots(), 0);
        assert_eq!(find(&index, "US", "80202"), (vec![], vec![]));
        let empty = build(&[]);
        assert!(empty.is_empty());
        assert_eq!(empty.memory_bytes(), 0);
    }

    #[test]
    fn malformed_lookups_match_nothing_and_never_panic() {
        let index = build(&[
            (0, 0, vec![inc(whole("US")), inc(prefix("US", "8"))]),
            (1, 0, vec![inc(whole("DE")), inc(prefix("DE", "8"))]),
            (2, 0, vec![inc(radius("US", "80202", 100))]),
        ]);
        let long = "8".repeat(17);
        let longest = "8".repeat(16);
        for bad in [
            "",
            "8033",
            "80331x",
            "ABCDE",
            "8\u{0}331",
            "\u{0}",
            "８0331",
            "80331\n",
            &long,
        ] {
            assert_eq!(find(&index, "US", bad), (vec![], vec![]), "{bad:?}");
            if bad.len() > 16 || !bad.is_ascii() || bad.contains(['\0', '\n', 'x']) {
                assert_eq!(find(&index, "DE", bad), (vec![], vec![]), "{bad:?}");
            }
        }
        assert_eq!(included(&index, "DE", &longest), [1]);
    }

    #[test]
    fn lookups_reuse_the_buffer_without_allocating() {
        let book: Vec<_> = (0..300)
            .map(|c| {
                let rules = match c % 3 {
                    0 => vec![inc(region("US", "CO")), exc(prefix("US", "803"))],
                    1 => vec![inc(radius("US", "80202", 20 + c as u16 % 50))],
                    _ => vec![inc(whole("US"))],
                };
                (c, 0, rules)
            })
            .collect();
        let index = build(&book);
        let mut out = index.new_matches();
        let pointers = (out.included_words.as_ptr(), out.excluded.as_ptr());
        let capacities = (out.included_words.capacity(), out.excluded.capacity());
        for (zip, _) in ZipTable::us().zips_in_state("CO") {
            index.lookup(VerticalIx(0), country("US"), zip.as_str(), &mut out);
            assert!(out.included_count() >= 100);
        }
        assert_eq!(
            (out.included_words.as_ptr(), out.excluded.as_ptr()),
            pointers
        );
        assert_eq!(
            (out.included_words.capacity(), out.excluded.capacity()),
            capacities
        );
        index.lookup(VerticalIx(0), country("US"), "80302", &mut out);
        assert_eq!(out.excluded.len(), 100);

        // The same buffer then serves a smaller and a larger index correctly.
        let small = build(&[(0, 0, vec![inc(postal("US", "80302"))])]);
        small.lookup(VerticalIx(0), country("US"), "80302", &mut out);
        assert_eq!(out.included().collect::<Vec<_>>(), [CampaignIx(0)]);
        assert!(out.excluded.is_empty());
        let large = build(&[(70_000, 0, vec![inc(postal("US", "80302"))])]);
        large.lookup(VerticalIx(0), country("US"), "80302", &mut out);
        assert_eq!(out.included().collect::<Vec<_>>(), [CampaignIx(70_000)]);
    }

    #[test]
    fn cells_cover_the_antimeridian_and_poles() {
        let mut cells = Vec::new();
        cells_of_circle(52.0, 179.9, 50.0, |cell| cells.push(cell));
        let cols: Vec<i32> = cells.iter().map(|&cell| cell as i32 % CELL_COLS).collect();
        assert!(cols.contains(&0) && cols.contains(&(CELL_COLS - 1)));
        cells.clear();
        cells_of_circle(-89.9, 0.0, 10.0, |cell| cells.push(cell));
        assert_eq!(cells.len(), CELL_COLS as usize);
    }

    #[test]
    fn index_can_be_shared_across_threads() {
        // The engine swaps the index in whole behind an `Arc`; auctions in flight keep theirs.
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<TerritoryIndex>();
        shareable::<TerritoryMatches>();
    }

    #[test]
    fn memory_and_stats() {
        let index = build(&[
            (
                0,
                0,
                vec![inc(region("US", "CO")), inc(postal("US", "10001"))],
            ),
            (
                1,
                0,
                vec![inc(radius("US", "80202", 100)), inc(prefix("US", "803"))],
            ),
        ]);
        let stats = index.stats();
        assert_eq!(stats.markets, 1);
        assert_eq!(stats.exact_keys, 1);
        assert_eq!(stats.prefix_keys, 1);
        assert_eq!(stats.radius_rules, 1);
        assert!(stats.radius_cell_entries > 10, "{stats:?}");
        assert!(index.memory_bytes() > stats.radius_cell_entries * size_of::<RadiusEntry>());
    }

    /// The reference: every rule of every campaign, straight from the spec's definition.
    fn reference(book: &Book, v: u16, c: Country, text: &str) -> (Vec<u32>, Vec<u32>) {
        let zips = ZipTable::us();
        let us = c == US;
        let lead = zips.get(text);
        let matches = |area: &TerritoryArea<'_>| match area {
            TerritoryArea::Country { country } => *country == c,
            TerritoryArea::Postal {
                country,
                postal_code,
            } => *country == c && postal_code.as_str() == text,
            TerritoryArea::Prefix { country, prefix } => {
                *country == c && text.starts_with(prefix.as_str())
            }
            TerritoryArea::Region { country, region } => {
                *country == c && lead.is_some_and(|lead| lead.state_str() == region)
            }
            TerritoryArea::Radius {
                country,
                center,
                radius_miles,
            } => {
                let center = zips.get(center).unwrap();
                *country == c
                    && lead.is_some_and(|lead| {
                        lead.has_centroid()
                            && distance_miles(center.lat, center.lon, lead.lat, lead.lon)
                                <= f64::from(*radius_miles)
                    })
            }
        };
        let (mut included, mut excluded) = (Vec::new(), Vec::new());
        if us && !(text.len() == 5 && text.bytes().all(|b| b.is_ascii_digit())) {
            return (included, excluded);
        }
        let mut sorted: Vec<_> = book
            .iter()
            .filter(|(_, vertical, _)| *vertical == v)
            .collect();
        sorted.sort_by_key(|(campaign, _, _)| *campaign);
        for (campaign, _, rules) in sorted {
            let hit = |effect| rules.iter().any(|r| r.effect == effect && matches(&r.rule));
            if hit(Effect::Include) {
                if hit(Effect::Exclude) {
                    excluded.push(*campaign);
                } else {
                    included.push(*campaign);
                }
            }
        }
        (included, excluded)
    }

    /// ZIPs of a few neighbouring states, Alaska, and military ZIPs, so that random rules and
    /// random leads meet often.
    fn pool() -> &'static [String] {
        static POOL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        POOL.get_or_init(|| {
            ZipTable::us()
                .iter()
                .filter(|(_, info)| {
                    ["CO", "WY", "UT", "AK", "AE", "AP"].contains(&info.state_str())
                })
                .map(|(zip, _)| zip.as_str().to_string())
                .collect()
        })
    }

    fn pool_zip() -> impl Strategy<Value = String> {
        any::<prop::sample::Index>().prop_map(|ix| ix.get(pool()).clone())
    }

    fn center_zip() -> impl Strategy<Value = String> {
        pool_zip().prop_filter("a center needs a centroid", |zip| {
            ZipTable::us().get(zip).unwrap().has_centroid()
        })
    }

    fn de_code() -> impl Strategy<Value = String> {
        "[0-9]{5}"
    }

    fn area() -> impl Strategy<Value = TerritoryArea<'static>> {
        prop_oneof![
            3 => pool_zip().prop_map(|zip| postal("US", &zip)),
            3 => (pool_zip(), 1..=5usize).prop_map(|(zip, len)| prefix("US", &zip[..len])),
            2 => pool_zip().prop_map(|zip| {
                region("US", ZipTable::us().get(&zip).unwrap().state_str())
            }),
            4 => (center_zip(), 1..=300u16).prop_map(|(zip, miles)| radius("US", &zip, miles)),
            1 => Just(whole("US")),
            2 => de_code().prop_map(|text| postal("DE", &text)),
            2 => (de_code(), 1..=5usize).prop_map(|(text, len)| prefix("DE", &text[..len])),
            1 => Just(whole("DE")),
        ]
    }

    fn rule() -> impl Strategy<Value = TerritoryRule<'static>> {
        (prop::bool::weighted(0.25), area()).prop_map(
            |(exclude, area)| {
                if exclude { exc(area) } else { inc(area) }
            },
        )
    }

    fn book() -> impl Strategy<Value = Vec<(u32, u16, Vec<TerritoryRule<'static>>)>> {
        let campaigns =
            prop::collection::vec((0..2u16, prop::collection::vec(rule(), 0..6)), 0..40);
        // Spread over 1 to 61 bitset words, so that the same lists are dense in some books and
        // sparse in others.
        let stride = prop::sample::select(vec![1u32, 3, 29, 97]);
        (campaigns, stride).prop_map(|(campaigns, stride)| {
            // Shuffled-looking indexes: dense in real books, but order must not matter.
            campaigns
                .into_iter()
                .enumerate()
                .map(|(ix, (v, rules))| ((ix as u32 * 37) % 41 * stride, v, rules))
                .collect()
        })
    }

    fn lead() -> impl Strategy<Value = (u16, &'static str, String)> {
        (
            0..3u16,
            prop_oneof![
                6 => pool_zip().prop_map(|zip| ("US", zip)),
                1 => "[0-9]{5}".prop_map(|zip| ("US", zip)),
                2 => de_code().prop_map(|text| ("DE", text)),
                1 => "[0-9]{1,6}".prop_map(|text| ("DE", text)),
            ],
        )
            .prop_map(|(v, (c, text))| (v, c, text))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn lookup_equals_the_reference(book in book(), leads in prop::collection::vec(lead(), 40)) {
            let index = build(&book);
            let mut out = TerritoryMatches::new();
            // Each rule's own codes are leads too, so that every rule is seen matching.
            let own: Vec<(u16, &str, String)> = book
                .iter()
                .flat_map(|(_, v, rules)| rules.iter().map(move |r| (*v, &r.rule)))
                .filter_map(|(v, area)| match area {
                    TerritoryArea::Postal { country, postal_code } => Some((v, if *country == US { "US" } else { "DE" }, postal_code.to_string())),
                    TerritoryArea::Radius { center, .. } => Some((v, "US", center.to_string())),
                    _ => None,
                })
                .collect();
            for (v, c, text) in leads.iter().chain(&own) {
                index.lookup(VerticalIx(*v), country(c), text, &mut out);
                let got = (
                    out.included().map(|c| c.0).collect::<Vec<_>>(),
                    out.excluded.iter().map(|c| c.0).collect::<Vec<_>>(),
                );
                prop_assert_eq!(got, reference(&book, *v, country(c), text), "lead {} {} {}", v, c, text);
            }
        }
    }
}
