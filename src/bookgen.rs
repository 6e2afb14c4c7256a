//! A realistic generated book and lead stream over the real US ZIP table, for benches, the load
//! generator and the daemon's demo book.
//!
//! [`generate`] turns a [`BookSpec`] into the admin changes that build a book: verticals with
//! required attributes and ping trees, sellers with margins, floors and block lists, buyers in
//! real US time zones with budgets, and campaigns that mix territory kinds the way buyers set
//! them (ZIP lists around a metro, ZIP3 prefixes, whole states, radii around a real ZIP, a few
//! excludes), attribute filters, schedules, caps, tiers and prices, plus one fixed-price
//! fallback campaign per vertical and census region. [`LeadGen`] draws pings whose ZIPs,
//! verticals and attributes follow plausible distributions, so that most leads match some
//! campaign and some do not.
//!
//! # Determinism
//!
//! Everything follows from the seeds: no clock, no file, no thread. The ZIP table is the one the
//! engine embeds ([`ZipTable::us`]); the state populations and metro areas are tables in this
//! module. [`LeadGen::lead`] is a pure function of the generator's seed and the lead's number,
//! so a load generator's workers can draw disjoint ranges of one stream without sharing state.
//!
//! # Where the numbers come from
//!
//! State populations are the 2020 census (thousands); metro areas are the largest US
//! metropolitan areas with an approximate population and a ZIP at their center, plus one metro
//! for every state that has none of those, so that every state's buyers have a home. Prices,
//! caps and attribute distributions are plausible values for US lead generation, not data.
//!
//! # The book's shape
//!
//! - **Buyers** are based in a metro drawn by population, in its state's main time zone: 60 %
//!   local, 30 % regional, 10 % national. A quarter have a daily budget, 15 % a monthly one.
//! - **Territories** follow the buyer's reach. Local: a list of the 5–200 ZIPs nearest the
//!   metro's center (45 %), 1–8 ZIP3 prefixes (25 %) or a radius of 10–100 miles (30 %).
//!   Regional: mostly 1–5 states of the buyer's census region, else as local. National: 8–35
//!   states by population (80 %) or the whole country. 15 % of campaigns exclude a few ZIPs,
//!   a ZIP3 or states.
//! - **Campaigns** have 0–3 filters (30/35/25/10 %); weekday business hours (60 %), the same with
//!   Saturday mornings (15 %) or no schedule; a daily cap of 5–200 (90 %), some hourly, weekly,
//!   monthly, total and spend caps; tiers 0/1/2 (50/35/15 %); exclusive only (60 %), shared only
//!   (10 %) or both; fixed prices in the vertical's range (exclusive $15–120, shared 25–45 % of
//!   it), or live bids for live buyers; a 30- or 90-day duplicate look-back (70 %). 3 % are
//!   paused.
//! - **Leads**: 65 % around a metro (mostly near its center), the rest anywhere by state
//!   population; 80 % exclusive, 8 % shared, 12 % either; 2 % repeat an earlier consumer.
//!
//! # Use
//!
//! ```
//! use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, generate};
//!
//! let spec = BookSpec::new(7, 200);
//! // Verticals, buyers, sellers, then campaigns: `Engine::handle_admin_batch` loads them all
//! // with one compile of the book (`handle_admin` one at a time compiles it per change).
//! let changes = generate(&spec);
//! assert_eq!(changes.len(), 4 + 20 + 4 + 20 + 200);
//! // Lead 0 of a stream: `engine.handle_ping(now, tag, lead.seller, &lead.ping)`.
//! let leads = LeadGen::new(LeadSpec::for_book(&spec, 1));
//! let lead = leads.lead(0);
//! assert!(spec.seller_ids().contains(&lead.seller));
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use crate::engine::book::AdminChange;
use crate::engine::geo::ZipTable;
use crate::engine::preping::phone_hash;
use crate::engine::types::{BuyerId, SellerId, TimeUs};
use crate::protocol::{
    AttributeKind, Attributes, Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, Consent,
    Contact, Country, DeliveryMode, Effect, Filter, FilterCondition, Floor, LeadView, Money, Ping,
    PingSaleMode, PostalCode, Pricing, PutMode, RequiredAttribute, SaleModes, Seller, SellerPut,
    Status, Strategy, Symbol, TerritoryArea, TerritoryRule, Tier, VerticalPut, Window,
};

/// Cents in a US dollar: every price here is written in dollars and stored in cents.
const CENTS_PER_USD: Money = 100;
/// Microseconds in a second.
const US_PER_S: u64 = 1_000_000;
/// The US, the only country the generated book and leads use.
const US: Country = Country::from_checked(*b"US");
/// How many ZIPs nearest to a metro's center make up the metro: enough for the largest ZIP
/// lists (200) and a spread of leads around the center.
const METRO_ZIPS: usize = 400;

// ---------------------------------------------------------------------------------------------
// The seeded generator

/// splitmix64 (Steele, Lea and Flood): a small, fast, seeded generator whose every output is a
/// full-period bijection of its state. Good enough for test data; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

/// The splitmix64 finalizer: a bijection of `u64` that spreads every input bit over the output.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for item `index` of this seed: what [`LeadGen::lead`] uses so
    /// that lead `i` does not depend on leads `0..i`.
    pub const fn fork(seed: u64, index: u64) -> Self {
        Self::new(mix64(seed ^ mix64(index.wrapping_add(0x6C65_6164))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A uniform draw from `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for the
    /// sizes used here). `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no value to return");
        let wide = u128::from(self.next_u64()) * u128::from(n);
        // The high half of a 64 × 64-bit product is below `n`, so it fits.
        u64::try_from(wide >> 64).unwrap_or(0)
    }

    /// A uniform index into a slice of `len` elements.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// A uniform draw from `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "range({lo}, {hi}) is empty");
        lo + self.below(hi - lo + 1)
    }

    /// [`SplitMix64::range`] for counts and indexes.
    pub fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        usize::try_from(self.range(lo as u64, hi as u64)).unwrap_or(lo)
    }

    /// A draw from `lo..=hi` skewed toward `lo`: the square of a uniform fraction, so that the
    /// median is a quarter of the way up. Lists, caps and radii are mostly small, a few large.
    pub fn skewed(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi - lo + 1;
        let a = self.below(span);
        let b = self.below(span);
        lo + a * b / span
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// A uniform element of a non-empty slice.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.index(items.len())]
    }

    /// An index drawn with probability proportional to `weights[i]` (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut draw = self.below(total);
        for (ix, &weight) in weights.iter().enumerate() {
            let weight = u64::from(weight);
            if draw < weight {
                return ix;
            }
            draw -= weight;
        }
        weights.len() - 1
    }

    /// An index drawn from cumulative weights (strictly increasing, last is the total).
    fn cumulative(&mut self, cumulative: &[u64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0);
        let draw = self.below(total.max(1));
        cumulative.partition_point(|&upto| upto <= draw)
    }
}

// ---------------------------------------------------------------------------------------------
// US reference tables

/// A US census region: fallback campaigns cover one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    Northeast,
    Midwest,
    South,
    West,
}

impl Region {
    pub const ALL: [Region; 4] = [
        Region::Northeast,
        Region::Midwest,
        Region::South,
        Region::West,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Region::Northeast => "northeast",
            Region::Midwest => "midwest",
            Region::South => "south",
            Region::West => "west",
        }
    }
}

/// The IANA zones of the 50 states and DC, as buyers set them.
pub const US_TIME_ZONES: [&str; 7] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
];

/// A state: its code, 2020 census population in thousands, census region and the zone most
/// of its people live in (states split between zones take their larger part).
struct State {
    code: &'static str,
    population_k: u32,
    region: Region,
    /// Index into [`US_TIME_ZONES`].
    zone: u8,
}

const fn state(code: &'static str, population_k: u32, region: Region, zone: u8) -> State {
    State {
        code,
        population_k,
        region,
        zone,
    }
}

const ET: u8 = 0;
const CT: u8 = 1;
const MT: u8 = 2;
const PT: u8 = 3;
const AZ: u8 = 4;
const AK: u8 = 5;
const HI: u8 = 6;

/// The 50 states and DC. Territories (PR, GU, ...) and military ZIPs are left out: lead
/// generation buyers in them are rare, and their zones are not among [`US_TIME_ZONES`].
const STATES: [State; 51] = {
    use Region::{Midwest as MW, Northeast as NE, South as S, West as W};
    [
        state("AK", 733, W, AK),
        state("AL", 5_024, S, CT),
        state("AR", 3_012, S, CT),
        state("AZ", 7_152, W, AZ),
        state("CA", 39_538, W, PT),
        state("CO", 5_774, W, MT),
        state("CT", 3_606, NE, ET),
        state("DC", 690, S, ET),
        state("DE", 990, S, ET),
        state("FL", 21_538, S, ET),
        state("GA", 10_712, S, ET),
        state("HI", 1_455, W, HI),
        state("IA", 3_190, MW, CT),
        state("ID", 1_839, W, MT),
        state("IL", 12_813, MW, CT),
        state("IN", 6_786, MW, ET),
        state("KS", 2_938, MW, CT),
        state("KY", 4_506, S, ET),
        state("LA", 4_658, S, CT),
        state("MA", 7_030, NE, ET),
        state("MD", 6_177, S, ET),
        state("ME", 1_362, NE, ET),
        state("MI", 10_077, MW, ET),
        state("MN", 5_706, MW, CT),
        state("MO", 6_155, MW, CT),
        state("MS", 2_961, S, CT),
        state("MT", 1_084, W, MT),
        state("NC", 10_439, S, ET),
        state("ND", 779, MW, CT),
        state("NE", 1_962, MW, CT),
        state("NH", 1_378, NE, ET),
        state("NJ", 9_289, NE, ET),
        state("NM", 2_118, W, MT),
        state("NV", 3_105, W, PT),
        state("NY", 20_201, NE, ET),
        state("OH", 11_799, MW, ET),
        state("OK", 3_959, S, CT),
        state("OR", 4_237, W, PT),
        state("PA", 13_003, NE, ET),
        state("RI", 1_097, NE, ET),
        state("SC", 5_119, S, ET),
        state("SD", 887, MW, CT),
        state("TN", 6_911, S, CT),
        state("TX", 29_146, S, CT),
        state("UT", 3_272, W, MT),
        state("VA", 8_631, S, ET),
        state("VT", 643, NE, ET),
        state("WA", 7_705, W, PT),
        state("WI", 5_894, MW, CT),
        state("WV", 1_794, S, ET),
        state("WY", 577, W, MT),
    ]
};

/// A metro area: a ZIP at its center and its population in thousands (approximate).
struct Metro {
    name: &'static str,
    center: &'static str,
    population_k: u32,
}

const fn metro(name: &'static str, center: &'static str, population_k: u32) -> Metro {
    Metro {
        name,
        center,
        population_k,
    }
}

/// The largest US metros, then one for each state the list would otherwise miss.
const METROS: [Metro; 66] = [
    metro("new_york", "10001", 19_500),
    metro("los_angeles", "90012", 13_200),
    metro("chicago", "60601", 9_500),
    metro("dallas", "75201", 7_600),
    metro("houston", "77002", 7_100),
    metro("washington", "20001", 6_300),
    metro("philadelphia", "19103", 6_200),
    metro("miami", "33130", 6_100),
    metro("atlanta", "30303", 6_100),
    metro("boston", "02108", 4_900),
    metro("phoenix", "85003", 4_900),
    metro("san_francisco", "94103", 4_700),
    metro("riverside", "92501", 4_600),
    metro("detroit", "48226", 4_400),
    metro("seattle", "98101", 4_000),
    metro("minneapolis", "55401", 3_700),
    metro("san_diego", "92101", 3_300),
    metro("tampa", "33602", 3_200),
    metro("denver", "80202", 3_000),
    metro("baltimore", "21202", 2_800),
    metro("st_louis", "63101", 2_800),
    metro("orlando", "32801", 2_700),
    metro("charlotte", "28202", 2_700),
    metro("san_antonio", "78205", 2_600),
    metro("portland", "97204", 2_500),
    metro("sacramento", "95814", 2_400),
    metro("pittsburgh", "15222", 2_400),
    metro("austin", "78701", 2_300),
    metro("las_vegas", "89101", 2_300),
    metro("cincinnati", "45202", 2_200),
    metro("kansas_city", "64106", 2_200),
    metro("columbus", "43215", 2_100),
    metro("indianapolis", "46204", 2_100),
    metro("cleveland", "44113", 2_100),
    metro("san_jose", "95113", 2_000),
    metro("nashville", "37203", 2_000),
    metro("virginia_beach", "23451", 1_800),
    metro("providence", "02903", 1_700),
    metro("jacksonville", "32202", 1_600),
    metro("milwaukee", "53202", 1_600),
    metro("raleigh", "27601", 1_400),
    metro("oklahoma_city", "73102", 1_400),
    metro("memphis", "38103", 1_300),
    metro("richmond", "23219", 1_300),
    metro("louisville", "40202", 1_300),
    metro("new_orleans", "70112", 1_300),
    metro("salt_lake_city", "84101", 1_300),
    metro("hartford", "06103", 1_200),
    metro("buffalo", "14202", 1_100),
    metro("birmingham", "35203", 1_100),
    metro("tucson", "85701", 1_000),
    metro("honolulu", "96813", 1_000),
    metro("omaha", "68102", 970),
    metro("albuquerque", "87102", 900),
    metro("columbia", "29201", 830),
    metro("boise", "83702", 760),
    metro("little_rock", "72201", 750),
    metro("des_moines", "50309", 700),
    metro("wichita", "67202", 650),
    metro("jackson", "39201", 590),
    metro("portland_me", "04101", 550),
    metro("anchorage", "99501", 400),
    metro("manchester", "03101", 420),
    metro("sioux_falls", "57104", 280),
    metro("fargo", "58102", 250),
    metro("charleston_wv", "25301", 210),
];

/// Metros of the states [`METROS`] leaves without one: Vermont, Montana, Wyoming, and two whose
/// people mostly live in a neighbor's metro (Delaware in Philadelphia's, New Jersey in New
/// York's and Philadelphia's) but whose buyers are based at home.
const SMALL_METROS: [Metro; 5] = [
    metro("newark", "07102", 2_100),
    metro("burlington", "05401", 220),
    metro("billings", "59101", 180),
    metro("cheyenne", "82001", 100),
    metro("wilmington", "19801", 700),
];

/// One ZIP of the 50 states and DC, with a centroid.
#[derive(Debug, Clone, Copy)]
struct GeoZip {
    /// The five digits, borrowed from the table this module keeps for the process's life.
    code: &'static str,
    /// Index into [`STATES`].
    state: u8,
    lat: f64,
    lon: f64,
}

#[derive(Debug)]
struct GeoMetro {
    name: &'static str,
    /// Index into [`Geo::zips`] of the center.
    center: u32,
    /// Index into [`STATES`] of the center's state.
    state: u8,
    /// The [`METRO_ZIPS`] ZIPs nearest to the center, nearest first (the center included).
    near: Vec<u32>,
    /// The distinct ZIP3 prefixes of `near`, in order of first appearance (nearest first).
    zip3s: Vec<&'static str>,
}

/// What the generators derive from the ZIP table once: ZIPs by state, metros with their
/// nearest ZIPs, and cumulative population weights.
#[derive(Debug)]
struct Geo {
    zips: Vec<GeoZip>,
    /// Indexes into `zips` per [`STATES`] entry.
    by_state: Vec<Vec<u32>>,
    /// Cumulative state populations, for drawing a lead's state.
    state_cumulative: Vec<u64>,
    metros: Vec<GeoMetro>,
    /// Cumulative metro populations, for drawing a lead's or a buyer's metro.
    metro_cumulative: Vec<u64>,
}

/// Squared distance in degrees on a local flat projection: enough to rank ZIPs by distance
/// from a nearby center, and far cheaper than the great circle.
fn flat_distance2(lat0: f64, lon0: f64, cos_lat0: f64, lat: f64, lon: f64) -> f64 {
    let dy = lat - lat0;
    let dx = (lon - lon0) * cos_lat0;
    dx * dx + dy * dy
}

fn geo() -> &'static Geo {
    static GEO: OnceLock<Geo> = OnceLock::new();
    static TEXT: OnceLock<Vec<String>> = OnceLock::new();
    GEO.get_or_init(|| {
        let table = ZipTable::us();
        // The five-digit texts live as long as the process, so rules and pings borrow them.
        let text = TEXT.get_or_init(|| {
            table
                .iter()
                .map(|(code, _)| code.as_str().to_owned())
                .collect()
        });
        let mut zips = Vec::new();
        let mut by_state = vec![Vec::new(); STATES.len()];
        for ((_, info), code) in table.iter().zip(text) {
            let Some(state) = STATES.iter().position(|s| s.code == info.state_str()) else {
                continue;
            };
            if !info.has_centroid() {
                continue;
            }
            let ix = u32::try_from(zips.len()).unwrap_or(u32::MAX);
            by_state[state].push(ix);
            zips.push(GeoZip {
                code: code.as_str(),
                state: u8::try_from(state).unwrap_or(0),
                lat: info.lat,
                lon: info.lon,
            });
        }
        let mut state_cumulative = Vec::with_capacity(STATES.len());
        let mut total = 0u64;
        for (state, members) in STATES.iter().zip(&by_state) {
            // A state with no ZIP in the table (none today) cannot be drawn.
            if !members.is_empty() {
                total += u64::from(state.population_k);
            }
            state_cumulative.push(total);
        }

        let mut metros = Vec::with_capacity(METROS.len() + SMALL_METROS.len());
        let mut metro_cumulative = Vec::with_capacity(metros.capacity());
        let mut total = 0u64;
        let mut ranked: Vec<(f64, u32)> = Vec::with_capacity(zips.len());
        for metro in METROS.iter().chain(&SMALL_METROS) {
            let center = zips
                .iter()
                .position(|zip| zip.code == metro.center)
                .unwrap_or_else(|| {
                    panic!(
                        "metro {} center {} is not in the ZIP table",
                        metro.name, metro.center
                    )
                });
            let c = zips[center];
            let cos_lat0 = c.lat.to_radians().cos();
            ranked.clear();
            ranked.extend(zips.iter().enumerate().map(|(ix, zip)| {
                let d2 = flat_distance2(c.lat, c.lon, cos_lat0, zip.lat, zip.lon);
                (d2, u32::try_from(ix).unwrap_or(u32::MAX))
            }));
            let keep = METRO_ZIPS.min(ranked.len());
            ranked.select_nth_unstable_by(keep - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            ranked.truncate(keep);
            ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let near: Vec<u32> = ranked.iter().map(|&(_, ix)| ix).collect();
            let mut zip3s: Vec<&'static str> = Vec::new();
            for &ix in &near {
                let zip3 = &zips[ix as usize].code[..3];
                if !zip3s.contains(&zip3) {
                    zip3s.push(zip3);
                }
            }
            total += u64::from(metro.population_k);
            metro_cumulative.push(total);
            metros.push(GeoMetro {
                name: metro.name,
                center: u32::try_from(center).unwrap_or(u32::MAX),
                state: c.state,
                near,
                zip3s,
            });
        }
        Geo {
            zips,
            by_state,
            state_cumulative,
            metros,
            metro_cumulative,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Verticals

/// The verticals the generator knows, each with its required attributes, attribute
/// distributions, filters buyers set on them, price range and ping tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vertical {
    Solar,
    Mortgage,
    AutoInsurance,
    HomeSecurity,
}

impl Vertical {
    pub const ALL: [Vertical; 4] = [
        Vertical::Solar,
        Vertical::Mortgage,
        Vertical::AutoInsurance,
        Vertical::HomeSecurity,
    ];

    /// The vertical's symbol, e.g. `auto_insurance`.
    pub fn name(self) -> &'static str {
        match self {
            Vertical::Solar => "solar",
            Vertical::Mortgage => "mortgage",
            Vertical::AutoInsurance => "auto_insurance",
            Vertical::HomeSecurity => "home_security",
        }
    }

    /// The attributes every lead of the vertical carries (`VERTICAL_PUT.required`).
    pub fn required(self) -> &'static [(&'static str, AttributeKind)] {
        use AttributeKind::{Bool, Decimal, Enum, Integer};
        match self {
            Vertical::Solar => &[("homeowner", Bool), ("monthly_bill", Decimal)],
            Vertical::Mortgage => &[
                ("credit_score", Integer),
                ("loan_amount", Integer),
                ("loan_purpose", Enum),
                ("property_value", Integer),
            ],
            Vertical::AutoInsurance => &[
                ("currently_insured", Bool),
                ("driver_age", Integer),
                ("vehicle_count", Integer),
                ("vehicle_year", Integer),
            ],
            Vertical::HomeSecurity => &[("homeowner", Bool), ("property_type", Enum)],
        }
    }

    /// The vertical's ping tree: a strategy per tier (tiers 0–2).
    fn tiers(self) -> &'static [(u8, Strategy)] {
        use Strategy::{FirstToAccept, HighestBid, RoundRobin, SecondPrice, Weighted};
        match self {
            Vertical::Solar => &[(0, HighestBid), (1, Weighted), (2, RoundRobin)],
            Vertical::Mortgage => &[(0, SecondPrice), (1, HighestBid), (2, RoundRobin)],
            Vertical::AutoInsurance => &[(0, HighestBid), (1, RoundRobin), (2, FirstToAccept)],
            Vertical::HomeSecurity => &[(0, Weighted), (1, HighestBid)],
        }
    }

    /// Share of campaigns and leads, in relative weights.
    fn weight(self) -> u32 {
        match self {
            Vertical::Solar => 30,
            Vertical::Mortgage => 25,
            Vertical::AutoInsurance => 30,
            Vertical::HomeSecurity => 15,
        }
    }

    /// The range of exclusive fixed prices, in whole dollars (within 15–120).
    fn exclusive_usd(self) -> (u64, u64) {
        match self {
            Vertical::Solar => (35, 110),
            Vertical::Mortgage => (40, 120),
            Vertical::AutoInsurance => (15, 45),
            Vertical::HomeSecurity => (20, 70),
        }
    }

    /// Draws a lead's attributes: every required one, and the optional ones buyers filter on,
    /// each present with a plausible frequency.
    fn attributes(self, rng: &mut SplitMix64) -> Attributes<'static> {
        let b = Attributes::builder();
        let b = match self {
            Vertical::Solar => {
                // Solar leads come mostly from owners, with bills between $40 and $500.
                let b = b.bool("homeowner", rng.percent(88)).decimal(
                    "monthly_bill",
                    monthly_bill_cents(rng),
                    2,
                );
                let b = if rng.percent(90) {
                    b.enum_value("roof_type", *pick_weighted(rng, ROOF_TYPES))
                } else {
                    b
                };
                let b = if rng.percent(70) {
                    b.enum_value("roof_shade", *pick_weighted(rng, ROOF_SHADES))
                } else {
                    b
                };
                let b = if rng.percent(60) {
                    b.integer("credit_score", credit_score(rng))
                } else {
                    b
                };
                if rng.percent(50) {
                    b.string("utility_name", *rng.pick(UTILITIES))
                } else {
                    b
                }
            }
            Vertical::Mortgage => {
                let purpose = *pick_weighted(rng, LOAN_PURPOSES);
                let value = rng.skewed(90, 1_500) as i64 * 1_000;
                // Loans are 50–95 % of the value for a purchase, less for a refinance.
                let ltv = if purpose == "purchase" {
                    rng.range(50, 95)
                } else {
                    rng.range(30, 80)
                } as i64;
                let b = b
                    .integer("credit_score", credit_score(rng))
                    .integer("loan_amount", value * ltv / 100 / 1_000 * 1_000)
                    .enum_value("loan_purpose", purpose)
                    .integer("property_value", value);
                let b = if rng.percent(85) {
                    b.enum_value("property_type", *pick_weighted(rng, PROPERTY_TYPES))
                } else {
                    b
                };
                if rng.percent(40) {
                    b.bool("va_eligible", rng.percent(20))
                } else {
                    b
                }
            }
            Vertical::AutoInsurance => {
                let b = b
                    .bool("currently_insured", rng.percent(75))
                    .integer("driver_age", rng.skewed(18, 85) as i64)
                    .integer(
                        "vehicle_count",
                        *pick_weighted(rng, &[(1, 55), (2, 32), (3, 10), (4, 3)]),
                    )
                    .integer("vehicle_year", 2027 - rng.skewed(0, 20) as i64);
                let b = if rng.percent(80) {
                    b.integer(
                        "incidents_3y",
                        *pick_weighted(rng, &[(0, 70), (1, 20), (2, 7), (3, 3)]),
                    )
                } else {
                    b
                };
                let b = if rng.percent(65) {
                    b.enum_value("credit_rating", *pick_weighted(rng, CREDIT_RATINGS))
                } else {
                    b
                };
                if rng.percent(60) {
                    b.bool("homeowner", rng.percent(60))
                } else {
                    b
                }
            }
            Vertical::HomeSecurity => {
                let b = b
                    .bool("homeowner", rng.percent(75))
                    .enum_value("property_type", *pick_weighted(rng, PROPERTY_TYPES));
                let b = if rng.percent(80) {
                    b.enum_value("install_timeframe", *pick_weighted(rng, TIMEFRAMES))
                } else {
                    b
                };
                if rng.percent(50) {
                    b.integer("credit_score", credit_score(rng))
                } else {
                    b
                }
            }
        };
        b.build()
            .unwrap_or_else(|error| panic!("generated attributes must encode: {error:?}"))
    }

    /// The filters buyers of this vertical set, one per key: a campaign takes 0–3 of them.
    fn filter(self, rng: &mut SplitMix64, which: usize) -> Filter<'static> {
        let (key, condition) = match (self, which) {
            (Vertical::Solar, 0) | (Vertical::HomeSecurity, 0) => {
                ("homeowner", FilterCondition::Is { value: true })
            }
            (Vertical::Solar, 1) => (
                "monthly_bill",
                FilterCondition::DecimalRange {
                    min: *rng.pick(&[7_500, 10_000, 12_500, 15_000]),
                    max: 1_000_000,
                    scale: 2,
                },
            ),
            (Vertical::Solar, 2) => (
                "roof_type",
                one_of(&["asphalt_shingle", "metal", "tile", "flat"][..rng.range_usize(2, 4)]),
            ),
            (Vertical::Solar, 3) => ("roof_shade", one_of(&["none", "partial"])),
            (Vertical::Solar, _) | (Vertical::HomeSecurity, 3) => (
                "credit_score",
                FilterCondition::IntRange {
                    min: *rng.pick(&[580, 600, 620, 640, 660]),
                    max: 850,
                },
            ),
            (Vertical::Mortgage, 0) => (
                "credit_score",
                FilterCondition::IntRange {
                    min: *rng.pick(&[580, 620, 640, 660, 700]),
                    max: 850,
                },
            ),
            (Vertical::Mortgage, 1) => (
                "loan_amount",
                FilterCondition::IntRange {
                    min: *rng.pick(&[50_000, 75_000, 100_000, 150_000]),
                    max: *rng.pick(&[726_200, 1_000_000, 2_000_000]),
                },
            ),
            (Vertical::Mortgage, 2) => (
                "loan_purpose",
                one_of(if rng.percent(50) {
                    &["refinance", "cash_out_refinance"][..]
                } else {
                    &["purchase"][..]
                }),
            ),
            (Vertical::Mortgage, 3) => (
                "property_type",
                one_of(
                    &["single_family", "townhouse", "condo", "multi_family"]
                        [..rng.range_usize(2, 4)],
                ),
            ),
            (Vertical::Mortgage, _) => (
                "property_value",
                FilterCondition::IntRange {
                    min: *rng.pick(&[100_000, 150_000, 200_000]),
                    max: 5_000_000,
                },
            ),
            (Vertical::AutoInsurance, 0) => {
                ("currently_insured", FilterCondition::Is { value: true })
            }
            (Vertical::AutoInsurance, 1) => (
                "driver_age",
                FilterCondition::IntRange {
                    min: *rng.pick(&[21, 25]),
                    max: *rng.pick(&[70, 75, 80]),
                },
            ),
            (Vertical::AutoInsurance, 2) => (
                "incidents_3y",
                FilterCondition::IntRange {
                    min: 0,
                    max: *rng.pick(&[0, 1, 1, 2]),
                },
            ),
            (Vertical::AutoInsurance, 3) => (
                "vehicle_year",
                FilterCondition::IntRange {
                    min: *rng.pick(&[2008, 2010, 2012, 2015]),
                    max: 2027,
                },
            ),
            (Vertical::AutoInsurance, _) => (
                "credit_rating",
                one_of(&["excellent", "good", "fair"][..rng.range_usize(2, 3)]),
            ),
            (Vertical::HomeSecurity, 1) => (
                "property_type",
                one_of(&["single_family", "townhouse", "condo"][..rng.range_usize(1, 3)]),
            ),
            (Vertical::HomeSecurity, _) => (
                "install_timeframe",
                one_of(&["asap", "within_month", "within_3_months"][..rng.range_usize(2, 3)]),
            ),
        };
        Filter {
            key: symbol(key),
            condition,
        }
    }

    /// How many distinct filters [`Vertical::filter`] offers.
    fn filter_kinds(self) -> usize {
        match self {
            Vertical::Solar | Vertical::Mortgage | Vertical::AutoInsurance => 5,
            Vertical::HomeSecurity => 4,
        }
    }
}

const ROOF_TYPES: &[(&str, u32)] = &[
    ("asphalt_shingle", 65),
    ("metal", 10),
    ("tile", 12),
    ("flat", 8),
    ("wood_shake", 5),
];
const ROOF_SHADES: &[(&str, u32)] = &[("none", 50), ("partial", 35), ("full", 15)];
const UTILITIES: &[&str] = &[
    "Pacific Gas and Electric",
    "Southern California Edison",
    "Duke Energy",
    "Florida Power & Light",
    "Georgia Power",
    "Xcel Energy",
    "Con Edison",
    "Dominion Energy",
    "Arizona Public Service",
    "Oncor",
];
const LOAN_PURPOSES: &[(&str, u32)] = &[
    ("purchase", 45),
    ("refinance", 35),
    ("cash_out_refinance", 20),
];
const PROPERTY_TYPES: &[(&str, u32)] = &[
    ("single_family", 68),
    ("townhouse", 10),
    ("condo", 12),
    ("multi_family", 6),
    ("manufactured", 4),
];
const CREDIT_RATINGS: &[(&str, u32)] =
    &[("excellent", 25), ("good", 40), ("fair", 25), ("poor", 10)];
const TIMEFRAMES: &[(&str, u32)] = &[
    ("asap", 30),
    ("within_month", 30),
    ("within_3_months", 20),
    ("researching", 20),
];

/// An element of a small table of (value, weight) pairs, drawn by weight.
fn pick_weighted<'t, T>(rng: &mut SplitMix64, items: &'t [(T, u32)]) -> &'t T {
    let total: u64 = items.iter().map(|item| u64::from(item.1)).sum();
    let mut draw = rng.below(total);
    for (value, weight) in items {
        if draw < u64::from(*weight) {
            return value;
        }
        draw -= u64::from(*weight);
    }
    &items[items.len() - 1].0
}

/// A FICO-like score in 500..=850 with its mass around 700: the mean of three uniform draws.
fn credit_score(rng: &mut SplitMix64) -> i64 {
    let sum = rng.range(500, 850) + rng.range(560, 850) + rng.range(600, 850);
    (sum / 3) as i64
}

/// A monthly electricity bill in cents between $40 and $500, most between $90 and $250.
fn monthly_bill_cents(rng: &mut SplitMix64) -> i64 {
    let dollars = (rng.range(40, 300) + rng.range(40, 300) + rng.skewed(0, 200)) / 2;
    (dollars * 100 + rng.below(100)) as i64
}

fn symbol(text: &'static str) -> Symbol<'static> {
    Symbol::new(text).unwrap_or_else(|error| panic!("{text:?} is a symbol: {error:?}"))
}

fn postal(text: &'static str) -> PostalCode<'static> {
    PostalCode::new(text).unwrap_or_else(|error| panic!("{text:?} is a postal code: {error:?}"))
}

fn one_of(values: &[&'static str]) -> FilterCondition<'static> {
    FilterCondition::OneOf {
        values: values.iter().map(|&value| Cow::Borrowed(value)).collect(),
    }
}

fn usd(dollars: u64) -> Money {
    dollars * CENTS_PER_USD
}

// ---------------------------------------------------------------------------------------------
// The book

/// What book to generate. [`BookSpec::new`] gives the defaults; every field may be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSpec {
    /// Everything follows from it: the same spec gives the same changes.
    pub seed: u64,
    /// Campaigns in all, the fallback campaigns included (one per vertical and census region,
    /// when there are at least twice as many campaigns as fallbacks).
    pub campaigns: usize,
    /// Buyers that own the primary campaigns (default `campaigns / 10`, at least 1). Fallback
    /// campaigns belong to one more buyer per census region, with ids after these.
    pub buyers: usize,
    /// The verticals of the book (default all of [`Vertical::ALL`]).
    pub verticals: Vec<Vertical>,
    /// Sellers, ids `1..=sellers` (default 20). Each sells every vertical of the book.
    pub sellers: usize,
    /// Percent of buyers that are live bidders (connected, bidding per ping); the rest take
    /// stored deliveries at fixed prices. Default 0: every auction resolves inside its ping.
    pub live_share_pct: u8,
}

impl BookSpec {
    pub fn new(seed: u64, campaigns: usize) -> Self {
        Self {
            seed,
            campaigns,
            buyers: (campaigns / 10).max(1),
            verticals: Vertical::ALL.to_vec(),
            sellers: 20,
            live_share_pct: 0,
        }
    }

    /// The ids of the book's sellers.
    pub fn seller_ids(&self) -> std::ops::RangeInclusive<SellerId> {
        1..=self.sellers as SellerId
    }

    /// How many fallback campaigns the book has.
    pub fn fallback_campaigns(&self) -> usize {
        let fallbacks = self.verticals.len() * Region::ALL.len();
        if self.campaigns >= 2 * fallbacks {
            fallbacks
        } else {
            0
        }
    }
}

/// A buyer as the generator plans it before writing its definition.
#[derive(Debug, Clone)]
struct BuyerPlan {
    id: BuyerId,
    /// Index into [`Geo::metros`]: where it is based and where its local campaigns are.
    metro: usize,
    vertical: Vertical,
    live: bool,
    /// Its reach: 0 local (metro), 1 regional (states), 2 national.
    reach: u8,
}

/// The admin changes that build the book `spec` describes, in an order that applies to an
/// empty book: verticals, buyers, sellers, campaigns, each created once. Deterministic in
/// `spec`. Reads the embedded ZIP table; never a clock or a file.
///
/// Panics if `spec` has no vertical, or asks for campaigns without buyers or sellers: those
/// are the caller's mistakes, not data.
pub fn generate(spec: &BookSpec) -> Vec<AdminChange> {
    assert!(!spec.verticals.is_empty(), "a book needs a vertical");
    assert!(spec.sellers > 0, "a book needs a seller");
    assert!(
        spec.buyers > 0 || spec.campaigns == 0,
        "campaigns need buyers"
    );
    let geo = geo();
    let mut rng = SplitMix64::new(mix64(spec.seed));
    let mut changes = Vec::with_capacity(
        spec.verticals.len() + spec.buyers + Region::ALL.len() + spec.sellers + spec.campaigns,
    );

    for &vertical in &spec.verticals {
        changes.push(AdminChange::VerticalPut(VerticalPut {
            mode: PutMode::Create,
            vertical: symbol(vertical.name()),
            required: vertical
                .required()
                .iter()
                .map(|&(key, kind)| RequiredAttribute {
                    key: symbol(key),
                    kind,
                })
                .collect(),
            tiers: vertical
                .tiers()
                .iter()
                .map(|&(tier, strategy)| Tier { tier, strategy })
                .collect(),
        }));
    }

    // Buyers: based in a metro drawn by population; most sell one vertical, locally.
    let vertical_weights: Vec<u32> = spec.verticals.iter().map(|v| v.weight()).collect();
    let mut buyers = Vec::with_capacity(spec.buyers);
    for ix in 0..spec.buyers {
        let metro = rng.cumulative(&geo.metro_cumulative);
        let plan = BuyerPlan {
            id: ix as BuyerId + 1,
            metro,
            vertical: spec.verticals[rng.weighted(&vertical_weights)],
            live: rng.below(100) < u64::from(spec.live_share_pct),
            reach: match rng.below(100) {
                0..=59 => 0,
                60..=89 => 1,
                _ => 2,
            },
        };
        let zone = US_TIME_ZONES[usize::from(STATES[usize::from(geo.metros[metro].state)].zone)];
        let budgeted = rng.percent(25);
        changes.push(AdminChange::BuyerPut(BuyerPut {
            mode: PutMode::Create,
            buyer: Buyer {
                buyer_id: plan.id,
                name: Cow::Owned(format!(
                    "{} {} {}",
                    geo.metros[metro].name,
                    plan.vertical.name(),
                    plan.id
                )),
                // A few accounts are paused (billing, a quality dispute).
                status: if rng.percent(1) {
                    Status::Paused
                } else {
                    Status::Active
                },
                secret: Some(Cow::Owned(format!("buyer-{:016x}", rng.next_u64()))),
                time_zone: Cow::Borrowed(zone),
                budget_day: if budgeted {
                    usd(rng.skewed(500, 10_000))
                } else {
                    0
                },
                budget_month: if rng.percent(15) {
                    usd(rng.skewed(10_000, 200_000))
                } else {
                    0
                },
                delivery: if plan.live {
                    DeliveryMode::Live
                } else {
                    DeliveryMode::Stored
                },
                accept_within_ms: *rng.pick(&[2_000, 5_000, 10_000]),
            },
        }));
        buyers.push(plan);
    }
    let fallbacks = spec.fallback_campaigns();
    let fallback_buyer = |region: usize| (spec.buyers + region + 1) as BuyerId;
    if fallbacks > 0 {
        for (ix, region) in Region::ALL.iter().enumerate() {
            changes.push(AdminChange::BuyerPut(BuyerPut {
                mode: PutMode::Create,
                buyer: Buyer {
                    buyer_id: fallback_buyer(ix),
                    name: Cow::Owned(format!("{} aggregator", region.name())),
                    status: Status::Active,
                    secret: Some(Cow::Owned(format!("buyer-{:016x}", rng.next_u64()))),
                    time_zone: Cow::Borrowed(US_TIME_ZONES[0]),
                    budget_day: 0,
                    budget_month: 0,
                    delivery: DeliveryMode::Stored,
                    accept_within_ms: 2_000,
                },
            }));
        }
    }

    for seller_id in spec.seller_ids() {
        let floored = rng.percent(40);
        changes.push(AdminChange::SellerPut(SellerPut {
            mode: PutMode::Create,
            seller: Seller {
                seller_id,
                name: Cow::Owned(format!("Publisher {seller_id}")),
                status: Status::Active,
                secret: Some(Cow::Owned(format!("seller-{:016x}", rng.next_u64()))),
                verticals: spec.verticals.iter().map(|v| symbol(v.name())).collect(),
                margin_bps: u16::try_from(rng.range(8, 25) * 100).unwrap_or(1_000),
                margin_fixed: if rng.percent(20) {
                    rng.range(25, 150)
                } else {
                    0
                },
                // A floor below most exclusive prices: it mostly bites on shared prices.
                floors: if floored {
                    spec.verticals
                        .iter()
                        .map(|v| Floor {
                            vertical: symbol(v.name()),
                            price: usd(v.exclusive_usd().0 * rng.range(25, 60) / 100),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                buyers_allowed: Vec::new(),
                // Some publishers block a buyer or two after disputes.
                buyers_blocked: if rng.percent(15) && !buyers.is_empty() {
                    (0..rng.range(1, 3))
                        .map(|_| rng.pick(&buyers).id)
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                },
            },
        }));
    }

    let primaries = spec.campaigns - fallbacks;
    for ix in 0..primaries {
        // The first campaigns give every buyer one; the rest go mostly to the first buyers,
        // as a few large buyers own many campaigns.
        let buyer = if ix < buyers.len() {
            &buyers[ix]
        } else {
            let a = rng.index(buyers.len());
            let b = rng.index(buyers.len());
            &buyers[a.min(b)]
        };
        let campaign = primary_campaign(&mut rng, geo, spec, buyer, ix as u64 + 1);
        changes.push(AdminChange::CampaignPut(CampaignPut {
            mode: PutMode::Create,
            campaign,
        }));
    }
    if fallbacks > 0 {
        let mut campaign_id = primaries as u64;
        for &vertical in &spec.verticals {
            for (region_ix, &region) in Region::ALL.iter().enumerate() {
                campaign_id += 1;
                changes.push(AdminChange::CampaignPut(CampaignPut {
                    mode: PutMode::Create,
                    campaign: fallback_campaign(
                        vertical,
                        region,
                        fallback_buyer(region_ix),
                        campaign_id,
                    ),
                }));
            }
        }
    }
    changes
}

fn include(rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
    TerritoryRule {
        effect: Effect::Include,
        rule,
    }
}

fn exclude(rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
    TerritoryRule {
        effect: Effect::Exclude,
        rule,
    }
}

fn zip_rule(code: &'static str) -> TerritoryArea<'static> {
    TerritoryArea::Postal {
        country: US,
        postal_code: postal(code),
    }
}

fn zip3_rule(prefix: &'static str) -> TerritoryArea<'static> {
    TerritoryArea::Prefix {
        country: US,
        prefix: postal(prefix),
    }
}

fn state_rule(state: usize) -> TerritoryArea<'static> {
    TerritoryArea::Region {
        country: US,
        region: Cow::Borrowed(STATES[state].code),
    }
}

/// Up to `count` distinct states besides `home`, drawn by population, from `region` if given.
fn more_states(
    rng: &mut SplitMix64,
    home: usize,
    region: Option<Region>,
    count: usize,
) -> Vec<usize> {
    let weights: Vec<u32> = STATES
        .iter()
        .enumerate()
        .map(|(ix, s)| {
            let eligible = ix != home && region.is_none_or(|r| s.region == r);
            if eligible { s.population_k } else { 0 }
        })
        .collect();
    let mut chosen = vec![home];
    let mut weights = weights;
    for _ in 0..count {
        if weights.iter().all(|&w| w == 0) {
            break;
        }
        let ix = rng.weighted(&weights);
        weights[ix] = 0;
        chosen.push(ix);
    }
    chosen
}

/// A primary campaign of `buyer`: its territory, filters, schedule, caps and price.
fn primary_campaign(
    rng: &mut SplitMix64,
    geo: &Geo,
    spec: &BookSpec,
    buyer: &BuyerPlan,
    campaign_id: u64,
) -> Campaign<'static> {
    // Most campaigns are in the buyer's vertical; some buyers branch out.
    let vertical = if rng.percent(85) || spec.verticals.len() == 1 {
        buyer.vertical
    } else {
        *rng.pick(&spec.verticals)
    };
    let metro = &geo.metros[buyer.metro];
    let home_state = usize::from(metro.state);
    let near = |rng: &mut SplitMix64, within: usize| -> &'static str {
        let within = within.clamp(1, metro.near.len());
        geo.zips[metro.near[rng.index(within)] as usize].code
    };

    // Territory, by the buyer's reach: local buyers list ZIPs, ZIP3s or a radius around their
    // metro; regional ones list states; national ones most states or the country.
    let mut territory = Vec::new();
    let kind;
    let roll = rng.below(100);
    match (buyer.reach, roll) {
        (0, 0..=44) | (1, 0..=14) => {
            kind = "zips";
            let count = usize::try_from(rng.skewed(5, 200)).unwrap_or(5);
            // The nearest ZIPs, with a few gaps where the buyer does not serve.
            let mut taken = 0;
            for &zip in &metro.near {
                if taken == count {
                    break;
                }
                if rng.percent(90) {
                    territory.push(include(zip_rule(geo.zips[zip as usize].code)));
                    taken += 1;
                }
            }
        }
        (0, 45..=69) | (1, 15..=34) => {
            kind = "zip3";
            let count = usize::try_from(rng.skewed(1, 8))
                .unwrap_or(1)
                .min(metro.zip3s.len());
            for &zip3 in &metro.zip3s[..count] {
                territory.push(include(zip3_rule(zip3)));
            }
        }
        (0, _) | (1, 35..=49) => {
            kind = "radius";
            let center = if rng.percent(70) {
                geo.zips[metro.center as usize].code
            } else {
                near(rng, 40)
            };
            territory.push(include(TerritoryArea::Radius {
                country: US,
                center: postal(center),
                radius_miles: u16::try_from(rng.skewed(10, 100)).unwrap_or(25),
            }));
        }
        (1, _) => {
            kind = "states";
            let count = usize::try_from(rng.skewed(0, 4)).unwrap_or(0);
            for state in more_states(rng, home_state, Some(STATES[home_state].region), count) {
                territory.push(include(state_rule(state)));
            }
        }
        (_, 0..=79) => {
            kind = "states";
            let count = rng.range_usize(8, 35);
            for state in more_states(rng, home_state, None, count) {
                territory.push(include(state_rule(state)));
            }
        }
        (_, _) => {
            kind = "country";
            territory.push(include(TerritoryArea::Country { country: US }));
        }
    }
    // A few excludes: ZIPs a local buyer does not serve, a ZIP3 or a state a wide one skips.
    if rng.percent(15) {
        match kind {
            "zips" | "zip3" | "radius" => {
                for _ in 0..rng.range(1, 5) {
                    territory.push(exclude(zip_rule(near(rng, 120))));
                }
            }
            "states" => {
                let state = match &territory[rng.index(territory.len())].rule {
                    TerritoryArea::Region { region, .. } => STATES
                        .iter()
                        .position(|s| s.code == region.as_ref())
                        .unwrap_or(home_state),
                    _ => home_state,
                };
                let zips = &geo.by_state[state];
                if !zips.is_empty() {
                    let zip = geo.zips[zips[rng.index(zips.len())] as usize].code;
                    territory.push(exclude(zip3_rule(&zip[..3])));
                }
            }
            _ => {
                let (first, more) = (rng.index(STATES.len()), rng.index(3));
                for state in more_states(rng, first, None, more) {
                    territory.push(exclude(state_rule(state)));
                }
            }
        }
    }

    // Filters: 0–3 distinct ones.
    let filter_count = match rng.below(100) {
        0..=29 => 0,
        30..=64 => 1,
        65..=89 => 2,
        _ => 3,
    };
    let mut kinds: Vec<usize> = (0..vertical.filter_kinds()).collect();
    let mut filters = Vec::with_capacity(filter_count);
    for _ in 0..filter_count.min(kinds.len()) {
        let which = kinds.swap_remove(rng.index(kinds.len()));
        filters.push(vertical.filter(rng, which));
    }

    // Schedule, in the buyer's zone: business hours on weekdays for most, some with Saturday
    // mornings, the rest always open.
    let schedule = match rng.below(100) {
        0..=59 => business_hours(rng, false),
        60..=74 => business_hours(rng, true),
        _ => Vec::new(),
    };

    // Prices: exclusive within the vertical's range, shared 25–45 % of it.
    let (low, high) = vertical.exclusive_usd();
    let exclusive_price = usd(rng.range(low, high));
    let shared_price = exclusive_price * rng.range(25, 45) / 100 / 25 * 25;
    let sale_modes = match rng.below(100) {
        0..=59 => SaleModes::EXCLUSIVE,
        60..=69 => SaleModes::SHARED,
        _ => SaleModes::BOTH,
    };
    let pricing = if buyer.live && rng.percent(85) {
        Pricing::LiveBid {
            bid_min: usd(low / 2),
            bid_max: usd(rng.range(low, high)),
            adjust_bps: *rng.pick(&[0, 0, 0, -500, 500, 1_000]),
        }
    } else {
        Pricing::Fixed {
            exclusive_price: if sale_modes.contains(crate::protocol::SaleMode::Exclusive) {
                exclusive_price
            } else {
                0
            },
            shared_price,
        }
    };

    // Caps: most campaigns cap leads per day; some per hour, week or month, some spend.
    let day = if rng.percent(90) {
        u32::try_from(rng.skewed(5, 200)).unwrap_or(50)
    } else {
        0
    };
    let day_or = |fallback: u32| if day == 0 { fallback } else { day };
    let caps = Caps {
        leads_hour: if rng.percent(20) {
            (day_or(40) / u32::try_from(rng.range(4, 8)).unwrap_or(4)).max(1)
        } else {
            0
        },
        leads_day: day,
        leads_week: if rng.percent(10) {
            day_or(40) * u32::try_from(rng.range(3, 5)).unwrap_or(4)
        } else {
            0
        },
        leads_month: if rng.percent(20) {
            day_or(40) * u32::try_from(rng.range(15, 25)).unwrap_or(20)
        } else {
            0
        },
        leads_total: if rng.percent(3) {
            u32::try_from(rng.range(500, 5_000)).unwrap_or(1_000)
        } else {
            0
        },
        spend_day: if rng.percent(15) {
            exclusive_price * u64::from(day_or(40)) * rng.range(50, 90) / 100
        } else {
            0
        },
        spend_month: if rng.percent(5) {
            exclusive_price * u64::from(day_or(40)) * rng.range(15, 22)
        } else {
            0
        },
    };

    let tier = match rng.below(100) {
        0..=49 => 0,
        50..=84 => 1,
        _ => 2,
    };
    Campaign {
        campaign_id,
        buyer_id: buyer.id,
        name: Cow::Owned(format!(
            "{} {} {kind} {campaign_id}",
            metro.name,
            vertical.name()
        )),
        status: if rng.percent(3) {
            Status::Paused
        } else {
            Status::Active
        },
        vertical: symbol(vertical.name()),
        role: CampaignRole::Primary,
        territory,
        filters,
        schedule,
        caps,
        sale_modes,
        pricing,
        tier,
        weight: u16::try_from(rng.range(1, 10)).unwrap_or(1),
        duplicate_lookback_s: match rng.below(100) {
            0..=49 => 30 * 86_400,
            50..=69 => 90 * 86_400,
            _ => 0,
        },
    }
}

/// Monday to Friday (and Saturday morning if `saturday`), opening at 8:00 or 9:00 and closing
/// at 17:00, 18:00 or 20:00 local time.
fn business_hours(rng: &mut SplitMix64, saturday: bool) -> Vec<Window> {
    let open_minute = *rng.pick(&[8 * 60, 9 * 60]);
    let close_minute = *rng.pick(&[17 * 60, 18 * 60, 20 * 60]);
    let mut windows: Vec<Window> = (1..=5)
        .map(|weekday| Window {
            weekday,
            open_minute,
            close_minute,
        })
        .collect();
    if saturday {
        windows.push(Window {
            weekday: 6,
            open_minute: 9 * 60,
            close_minute: 13 * 60,
        });
    }
    windows
}

/// The fixed-price campaign that buys `vertical`'s leads in `region` that no primary campaign
/// took: every state of the region, always open, no filters, uncapped, at a low price.
fn fallback_campaign(
    vertical: Vertical,
    region: Region,
    buyer_id: BuyerId,
    campaign_id: u64,
) -> Campaign<'static> {
    let exclusive_price = usd(vertical.exclusive_usd().0) / 4;
    Campaign {
        campaign_id,
        buyer_id,
        name: Cow::Owned(format!("{} {} fallback", region.name(), vertical.name())),
        status: Status::Active,
        vertical: symbol(vertical.name()),
        role: CampaignRole::Fallback,
        territory: STATES
            .iter()
            .enumerate()
            .filter(|(_, s)| s.region == region)
            .map(|(ix, _)| include(state_rule(ix)))
            .collect(),
        filters: Vec::new(),
        schedule: Vec::new(),
        caps: Caps::default(),
        sale_modes: SaleModes::BOTH,
        pricing: Pricing::Fixed {
            exclusive_price,
            shared_price: exclusive_price / 2,
        },
        tier: 0,
        weight: 1,
        duplicate_lookback_s: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Leads

/// What leads to draw. [`LeadSpec::for_book`] matches a [`BookSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSpec {
    pub seed: u64,
    /// The verticals to draw, weighted by their usual shares.
    pub verticals: Vec<Vertical>,
    /// Sellers `1..=sellers`; lead `i` comes from seller `1 + i % sellers`.
    pub sellers: usize,
    /// Percent of leads that repeat an earlier consumer's phone (a duplicate).
    pub duplicate_pct: u8,
    /// Percent of leads offered as shared, and as either; the rest are exclusive.
    pub shared_pct: u8,
    pub either_pct: u8,
    /// Percent of leads drawn around a metro (the rest anywhere, by state population).
    pub metro_pct: u8,
    /// The seller's deadline.
    pub timeout_ms: u32,
}

impl LeadSpec {
    /// Leads for the book `book` describes: its verticals and sellers, 2 % duplicates, 8 %
    /// shared, 12 % either, 65 % in metros, 150 ms deadlines.
    pub fn for_book(book: &BookSpec, seed: u64) -> Self {
        Self {
            seed,
            verticals: book.verticals.clone(),
            sellers: book.sellers,
            duplicate_pct: 2,
            shared_pct: 8,
            either_pct: 12,
            metro_pct: 65,
            timeout_ms: 150,
        }
    }
}

/// A drawn lead: the seller that pings it and the ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub seller: SellerId,
    pub ping: Ping<'static>,
}

/// Draws leads; see the module documentation. Lead `i` depends only on the spec and `i`.
#[derive(Debug, Clone)]
pub struct LeadGen {
    spec: LeadSpec,
    vertical_weights: Vec<u32>,
}

impl LeadGen {
    pub fn new(spec: LeadSpec) -> Self {
        assert!(!spec.verticals.is_empty(), "leads need a vertical");
        assert!(spec.sellers > 0, "leads need a seller");
        let vertical_weights = spec.verticals.iter().map(|v| v.weight()).collect();
        Self {
            spec,
            vertical_weights,
        }
    }

    pub fn spec(&self) -> &LeadSpec {
        &self.spec
    }

    /// The consumer behind lead `i`: usually its own, sometimes (a duplicate) one of the
    /// previous thousand leads'.
    pub fn consumer(&self, i: u64) -> u64 {
        let mut rng = SplitMix64::fork(self.spec.seed ^ 0xD0_0B1E, i);
        if i > 0 && rng.below(100) < u64::from(self.spec.duplicate_pct) {
            i - 1 - rng.below(i.min(1_000))
        } else {
            i
        }
    }

    /// Lead `i`.
    pub fn lead(&self, i: u64) -> Lead {
        let geo = geo();
        let mut rng = SplitMix64::fork(self.spec.seed, i);
        let vertical = self.spec.verticals[rng.weighted(&self.vertical_weights)];
        let zip = if rng.below(100) < u64::from(self.spec.metro_pct) {
            // Around a metro, mostly near its center.
            let metro = &geo.metros[rng.cumulative(&geo.metro_cumulative)];
            let at = usize::try_from(rng.skewed(0, metro.near.len() as u64 - 1)).unwrap_or(0);
            metro.near[at]
        } else {
            let state = rng.cumulative(&geo.state_cumulative);
            *rng.pick(&geo.by_state[state])
        };
        let roll = rng.below(100);
        let (sale_mode, shared_buyers_max) = if roll < u64::from(self.spec.shared_pct) {
            (
                PingSaleMode::Shared,
                u8::try_from(rng.range(2, 4)).unwrap_or(3),
            )
        } else if roll < u64::from(self.spec.shared_pct) + u64::from(self.spec.either_pct) {
            (
                PingSaleMode::Either,
                u8::try_from(rng.range(2, 4)).unwrap_or(3),
            )
        } else {
            (PingSaleMode::Exclusive, 0)
        };
        let consumer = self.consumer(i);
        Lead {
            seller: 1 + i % self.spec.sellers as u64,
            ping: Ping {
                // Sellers number their leads; a token is unique per seller.
                client_token: i + 1,
                lead: LeadView {
                    vertical: symbol(vertical.name()),
                    country: US,
                    postal_code: postal(geo.zips[zip as usize].code),
                    attributes: vertical.attributes(&mut rng),
                },
                phone_hash: Some(phone_hash(&Self::phone(consumer))),
                email_hash: None,
                sale_mode,
                shared_buyers_max,
                timeout_ms: self.spec.timeout_ms,
            },
        }
    }

    /// The E.164 phone of consumer `consumer`: a US number in the 555-01xx fictional range's
    /// spirit, unique per consumer below 10^7.
    fn phone(consumer: u64) -> String {
        format!("+1303{:07}", consumer % 10_000_000)
    }

    /// The contact record of lead `i`, for its post; its phone hashes to the ping's.
    pub fn contact(&self, i: u64) -> Contact<'static> {
        let consumer = self.consumer(i);
        Contact {
            first_name: Cow::Borrowed(*SplitMix64::fork(consumer, 1).pick(FIRST_NAMES)),
            last_name: Cow::Borrowed(*SplitMix64::fork(consumer, 2).pick(LAST_NAMES)),
            phone: Cow::Owned(Self::phone(consumer)),
            email: Cow::Owned(format!("consumer{consumer}@example.com")),
            street: Cow::Owned(format!("{} Main St", 100 + consumer % 9_000)),
            city: Cow::Borrowed("Springfield"),
            region: Cow::Borrowed("CO"),
        }
    }

    /// The consent evidence of lead `i`, given a minute before `now`.
    pub fn consent(&self, i: u64, now: TimeUs) -> Consent<'static> {
        let consumer = self.consumer(i);
        Consent {
            certificate_id: Cow::Owned(format!("cert-{:016x}", mix64(consumer ^ self.spec.seed))),
            text_version: Cow::Borrowed("tcpa-2026-01"),
            consented_at: now.saturating_sub(60 * US_PER_S),
            ip: IpAddr::V4(Ipv4Addr::new(
                198,
                51,
                100,
                u8::try_from(consumer % 250).unwrap_or(0) + 1,
            )),
            user_agent: Cow::Borrowed("Mozilla/5.0"),
            page_url: Cow::Borrowed("https://quotes.example.com/"),
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "Maria", "James", "Aisha", "Wei", "Carlos", "Emma", "Noah", "Priya",
];
const LAST_NAMES: &[&str] = &[
    "Garcia", "Smith", "Johnson", "Nguyen", "Patel", "Brown", "Lee",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::events::{Event, Resolution};
    use crate::engine::machine::{Engine, EngineConfig, Output};
    use crate::protocol::PingOutcome;

    /// Tuesday 2026-11-24 18:00 UTC: 13:00 in New York, 10:00 in Los Angeles, 08:00 in
    /// Honolulu: business hours in most of the country.
    const TUESDAY_NOON: TimeUs = 1_795_543_200_000_000;

    #[test]
    fn metros_and_states_are_in_the_table() {
        let geo = geo();
        assert_eq!(geo.metros.len(), METROS.len() + SMALL_METROS.len());
        let without_metro: Vec<&str> = STATES
            .iter()
            .filter(|state| {
                !geo.metros
                    .iter()
                    .any(|m| STATES[usize::from(m.state)].code == state.code)
            })
            .map(|state| state.code)
            .collect();
        assert!(
            without_metro.is_empty(),
            "states without a metro: {without_metro:?}"
        );
        for (state, zips) in STATES.iter().zip(&geo.by_state) {
            assert!(!zips.is_empty(), "{} has ZIPs", state.code);
        }
        for metro in &geo.metros {
            assert_eq!(metro.near.len(), METRO_ZIPS);
            assert_eq!(
                metro.near[0], metro.center,
                "{} is nearest itself",
                metro.name
            );
        }
    }

    #[test]
    fn same_seed_same_changes() {
        let spec = BookSpec::new(7, 300);
        assert_eq!(generate(&spec), generate(&spec));
        assert_ne!(generate(&spec), generate(&BookSpec::new(8, 300)));
        let leads = LeadGen::new(LeadSpec::for_book(&spec, 3));
        assert_eq!(leads.lead(41), leads.lead(41));
        assert_ne!(leads.lead(41), leads.lead(42));
    }

    #[test]
    fn counts_follow_the_spec() {
        let spec = BookSpec::new(1, 1_000);
        let changes = generate(&spec);
        let campaigns = changes
            .iter()
            .filter(|c| matches!(c, AdminChange::CampaignPut(_)))
            .count();
        assert_eq!(campaigns, 1_000);
        let buyers = changes
            .iter()
            .filter(|c| matches!(c, AdminChange::BuyerPut(_)))
            .count();
        assert_eq!(buyers, 100 + Region::ALL.len());
    }

    fn engine_with(changes: Vec<AdminChange>) -> Engine {
        let mut engine = Engine::new(EngineConfig::default());
        for change in changes {
            let what = format!("{change:?}");
            if let Err(error) = engine.handle_admin(TUESDAY_NOON, change) {
                panic!("refused: {error}\n{}", &what[..what.len().min(600)]);
            }
        }
        while engine.poll_event().is_some() {}
        engine
    }

    #[test]
    fn a_large_book_loads_as_one_batch() {
        let spec = BookSpec::new(3, 10_000);
        let mut engine = Engine::new(EngineConfig::default());
        engine
            .handle_admin_batch(TUESDAY_NOON, generate(&spec))
            .unwrap_or_else(|error| panic!("refused: {error}"));
        assert_eq!(engine.book().campaign_count(), 10_000);
    }

    #[test]
    fn every_change_is_accepted_and_most_leads_get_an_offer() {
        let spec = BookSpec::new(11, 1_000);
        let mut engine = engine_with(generate(&spec));
        assert_eq!(engine.book().campaign_count(), 1_000);
        let primaries = (spec.campaigns - spec.fallback_campaigns()) as u64;

        let leads = LeadGen::new(LeadSpec::for_book(&spec, 5));
        let (mut offers, mut to_primaries, mut rejected) = (0u32, 0u32, 0u32);
        for i in 0..1_000u64 {
            let lead = leads.lead(i);
            // A tenth of a second apart: caps fill as in a busy quarter of an hour, and no
            // offer expires.
            let now = TUESDAY_NOON + i * US_PER_S / 10;
            engine.handle_ping(now, i, lead.seller, &lead.ping);
            while let Some(output) = engine.poll_output() {
                if let Output::PingAnswer { result, .. } = output {
                    match result.outcome {
                        PingOutcome::Offer { .. } => offers += 1,
                        PingOutcome::NoSale { reason } if reason.0 < 400 => rejected += 1,
                        PingOutcome::NoSale { .. } => {}
                    }
                }
            }
            while let Some(event) = engine.poll_event() {
                if let Event::AuctionResolved {
                    resolution: Resolution::Offer { winners, .. },
                    ..
                } = event
                {
                    to_primaries += u32::from(winners.iter().any(|w| w.campaign <= primaries));
                }
            }
        }
        println!(
            "of 1000 leads: {offers} got an offer, {to_primaries} from a primary campaign \
             (the rest from a fallback); {rejected} failed pre-ping"
        );
        assert!(offers >= 500, "only {offers} of 1000 leads got an offer");
        assert!(
            to_primaries >= 500,
            "only {to_primaries} of 1000 leads got a primary campaign's offer"
        );
        // Only repeated consumers (2 %) should fail pre-ping: every lead is well formed.
        assert!(rejected <= 50, "{rejected} leads failed pre-ping");
    }
}
