//! Territory index benchmarks: build time, memory and lookup cost over a generated book of 1k,
//! 10k and 100k campaigns on the real ZIP table.
//!
//! The book mixes what buyers set in practice: ZIP lists (35% of campaigns), ZIP3 prefixes
//! (20%), states (25%), radii of 10–100 miles (15%) and nationwide (5%), with exclude rules on
//! 20% of campaigns (a few ZIPs, a ZIP3 or a state). Campaigns are spread over 8 verticals
//! (`PINGPOST_BENCH_VERTICALS=1` puts them all in one, the worst case for one lead). Leads are
//! ZIPs of the table drawn uniformly, each in a random vertical.
//!
//! Run: `cargo bench --bench territory`. Besides criterion's lookup timings it prints, per size,
//! the build time, the index's memory estimate, its shape, the mean number of campaigns a lookup
//! returns, and the distribution of per-lead lookup cost (each lead timed warm over repeated
//! lookups, since one sub-microsecond call is below the clock's resolution).

// A bench: a failed setup should stop it loudly, and its small casts are of known ranges.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use pingpost::engine::geo::ZipTable;
use pingpost::engine::territory::TerritoryIndex;
use pingpost::engine::types::{CampaignIx, VerticalIx};
use pingpost::protocol::{Country, Effect, PostalCode, TerritoryArea, TerritoryRule};

/// splitmix64: a seeded generator, so every run benches the same book.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

struct Zips {
    codes: Vec<String>,
    states: Vec<String>,
    with_centroid: Vec<usize>,
}

fn zips() -> Zips {
    let table = ZipTable::us();
    let mut zips = Zips {
        codes: Vec::new(),
        states: Vec::new(),
        with_centroid: Vec::new(),
    };
    for (ix, (code, info)) in table.iter().enumerate() {
        zips.codes.push(code.as_str().to_string());
        zips.states.push(info.state_str().to_string());
        if info.has_centroid() {
            zips.with_centroid.push(ix);
        }
    }
    zips
}

fn rule(effect: Effect, rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
    TerritoryRule { effect, rule }
}

fn code(text: &str) -> PostalCode<'static> {
    PostalCode::new(text.to_string()).unwrap()
}

fn generate(campaigns: usize, zips: &Zips, rng: &mut Rng) -> Vec<Vec<TerritoryRule<'static>>> {
    let us = Country::new("US").unwrap();
    let n = zips.codes.len();
    // ZIPs are numbered by region, so ZIPs near each other in the table are near on the map.
    let near = |rng: &mut Rng, anchor: usize, spread: usize| {
        (anchor + rng.below(2 * spread + 1))
            .saturating_sub(spread)
            .min(n - 1)
    };
    let postal = |ix: usize| TerritoryArea::Postal {
        country: us,
        postal_code: code(&zips.codes[ix]),
    };
    let zip3 = |ix: usize| TerritoryArea::Prefix {
        country: us,
        prefix: code(&zips.codes[ix][..3]),
    };
    let state = |ix: usize| TerritoryArea::Region {
        country: us,
        region: zips.states[ix].clone().into(),
    };
    (0..campaigns)
        .map(|_| {
            let mut rules = Vec::new();
            let anchor = rng.below(n);
            let kind = rng.below(100);
            if kind < 35 {
                for _ in 0..rng.range(20, 200) {
                    rules.push(rule(Effect::Include, postal(near(rng, anchor, 300))));
                }
            } else if kind < 55 {
                for _ in 0..rng.range(1, 10) {
                    rules.push(rule(Effect::Include, zip3(near(rng, anchor, 600))));
                }
            } else if kind < 80 {
                for _ in 0..rng.range(1, 5) {
                    rules.push(rule(Effect::Include, state(rng.below(n))));
                }
            } else if kind < 95 {
                for _ in 0..rng.range(1, 3) {
                    let center = zips.with_centroid[rng.below(zips.with_centroid.len())];
                    rules.push(rule(
                        Effect::Include,
                        TerritoryArea::Radius {
                            country: us,
                            center: code(&zips.codes[center]),
                            radius_miles: rng.range(10, 100) as u16,
                        },
                    ));
                }
            } else {
                rules.push(rule(
                    Effect::Include,
                    TerritoryArea::Country { country: us },
                ));
            }
            if rng.below(100) < 20 {
                match rng.below(3) {
                    0 => {
                        for _ in 0..rng.range(1, 5) {
                            rules.push(rule(Effect::Exclude, postal(near(rng, anchor, 300))));
                        }
                    }
                    1 => rules.push(rule(Effect::Exclude, zip3(near(rng, anchor, 600)))),
                    _ => rules.push(rule(Effect::Exclude, state(near(rng, anchor, 2_000)))),
                }
            }
            rules
        })
        .collect()
}

/// Indexes the book with campaign `ix` in vertical `ix * verticals / campaigns`: numbered by
/// vertical first, as `Book` numbers them, so that each market's campaigns are one run of
/// bitset words.
fn build(book: &[Vec<TerritoryRule<'static>>], verticals: u16) -> TerritoryIndex {
    let campaigns = book.len();
    TerritoryIndex::build(
        book.iter().enumerate().map(|(ix, rules)| {
            let vertical = u16::try_from(ix * usize::from(verticals) / campaigns).unwrap();
            let ix = u32::try_from(ix).unwrap();
            (CampaignIx(ix), VerticalIx(vertical), rules.as_slice())
        }),
        ZipTable::us(),
    )
    .unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn territory(c: &mut Criterion) {
    let started = Instant::now();
    let table = ZipTable::us();
    println!(
        "geo: parsed {} ZIPs in {} µs; {:.2} MiB in memory",
        table.len(),
        started.elapsed().as_micros(),
        table.memory_bytes() as f64 / (1 << 20) as f64,
    );
    let zips = zips();
    let us = Country::new("US").unwrap();
    let verticals: u16 = std::env::var("PINGPOST_BENCH_VERTICALS")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(8);
    let mut rng = Rng(0x7E55_1700_2026);
    let leads: Vec<(VerticalIx, &str)> = (0..4096)
        .map(|_| {
            let vertical = VerticalIx(rng.below(usize::from(verticals)) as u16);
            (vertical, zips.codes[rng.below(zips.codes.len())].as_str())
        })
        .collect();

    for (label, campaigns) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
        let book = generate(campaigns, &zips, &mut rng);
        let rules: usize = book.iter().map(Vec::len).sum();
        let started = Instant::now();
        let index = build(&book, verticals);
        let build_ms = started.elapsed().as_secs_f64() * 1e3;

        let mut out = index.new_matches();
        let (mut included, mut excluded, mut most) = (0usize, 0usize, 0usize);
        for &(vertical, lead) in &leads {
            index.lookup(vertical, us, lead, &mut out);
            included += out.included_count();
            excluded += out.excluded.len();
            most = most.max(out.included_count());
        }
        // Per-lead cost: each lead looked up warm 64 times; the spread across leads shows how
        // cost follows the number of matches.
        let mut per_lead_ns: Vec<f64> = leads[..2048]
            .iter()
            .map(|&(vertical, lead)| {
                let started = Instant::now();
                for _ in 0..64 {
                    index.lookup(vertical, us, black_box(lead), &mut out);
                    black_box(&out);
                }
                started.elapsed().as_nanos() as f64 / 64.0
            })
            .collect();
        per_lead_ns.sort_by(f64::total_cmp);
        // Rotating leads: batches of 256 different leads, so caches hold no lead's data from its
        // last lookup; the median batch is robust to the scheduler taking the core away.
        let mut batch_ns: Vec<f64> = (0..400)
            .map(|batch| {
                let started = Instant::now();
                for &(vertical, lead) in leads.iter().skip(batch * 7 % 3840).take(256) {
                    index.lookup(vertical, us, black_box(lead), &mut out);
                    black_box(&out);
                }
                started.elapsed().as_nanos() as f64 / 256.0
            })
            .collect();
        batch_ns.sort_by(f64::total_cmp);
        println!(
            "territory {label}: {campaigns} campaigns in {verticals} verticals, {rules} rules; build {build_ms:.1} ms; \
             memory {:.1} MiB; {:?}",
            index.memory_bytes() as f64 / (1 << 20) as f64,
            index.stats(),
        );
        println!(
            "territory {label}: per lookup {:.1} included, {:.2} excluded (most {most}); \
             ns per lead (warm) p50 {:.0} p90 {:.0} p99 {:.0} max {:.0}; \
             ns per lookup over rotating leads, median batch {:.0}",
            included as f64 / leads.len() as f64,
            excluded as f64 / leads.len() as f64,
            percentile(&per_lead_ns, 0.5),
            percentile(&per_lead_ns, 0.9),
            percentile(&per_lead_ns, 0.99),
            percentile(&per_lead_ns, 1.0),
            percentile(&batch_ns, 0.5),
        );

        let mut next = 0usize;
        c.bench_function(&format!("territory/lookup/{label}"), |b| {
            b.iter(|| {
                next = (next + 1) % leads.len();
                let (vertical, lead) = leads[next];
                index.lookup(vertical, us, black_box(lead), &mut out);
                black_box(out.included_count())
            })
        });
        if campaigns <= 10_000 {
            let mut group = c.benchmark_group("territory/build");
            group.sample_size(10);
            group.bench_function(label, |b| b.iter(|| build(black_box(&book), verticals)));
            group.finish();
        }
    }

    c.bench_function("geo/zip_get", |b| {
        let table = ZipTable::us();
        let mut next = 0usize;
        b.iter(|| {
            next = (next + 1) % leads.len();
            table.get(black_box(leads[next].1))
        })
    });
}

criterion_group!(benches, territory);
criterion_main!(benches);
