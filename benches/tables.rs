//! The duplicate tables' map, growing against doubling: `GrowingMap` (which moves a few entries
//! per insert into its larger successor) and std's `HashMap` (which doubles and rehashes every
//! entry inside one insert), with the same keyed hasher, under the traffic a retry table sees:
//! per operation, one lookup of an absent key (a new ping's token), one insert, and once the
//! bound is reached one removal of the oldest key (the bound's eviction).
//!
//! Run: `cargo bench --bench tables`. `PINGPOST_BENCH_TABLE_BOUND` sets the bound (default
//! 2^20, the retry table's `PING_TOKENS_MAX`). Each map first takes three bounds' worth of
//! operations (it grows to the bound, then churns at it), then two million more are the steady
//! state. Printed per map: the whole run's time, the steady state's mean per operation, and
//! the worst operation of the run (a doubling, for `HashMap`). Each operation is timed on its
//! own, so every figure includes two clock reads, the same for both maps.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use pingpost::engine::dedupe::KeyedState;
use pingpost::engine::growing_map::GrowingMap;

/// Operations measured after the warm-up.
const STEADY_OPERATIONS: u64 = 2_000_000;
/// Bounds' worth of operations before the steady state.
const WARM_UP_BOUNDS: u64 = 3;
/// Rounds of both maps, alternating.
const ROUNDS: usize = 2;

/// A retry table's key: (seller, token), tokens spread over the whole u64 range.
fn key(i: u64) -> (u64, u64) {
    (i % 20, i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// What the run of one map measured.
struct Run {
    total: Duration,
    steady_ns_per_op: f64,
    worst: Duration,
}

/// The three operations a map must offer here.
trait Table {
    fn contains(&self, key: &(u64, u64)) -> bool;
    fn insert(&mut self, key: (u64, u64), value: u64);
    fn remove(&mut self, key: &(u64, u64));
}

impl Table for HashMap<(u64, u64), u64, KeyedState> {
    fn contains(&self, key: &(u64, u64)) -> bool {
        self.contains_key(key)
    }
    fn insert(&mut self, key: (u64, u64), value: u64) {
        self.entry(key).or_insert(value);
    }
    fn remove(&mut self, key: &(u64, u64)) {
        HashMap::remove(self, key);
    }
}

impl Table for GrowingMap<(u64, u64), u64, KeyedState> {
    fn contains(&self, key: &(u64, u64)) -> bool {
        self.contains_key(key)
    }
    fn insert(&mut self, key: (u64, u64), value: u64) {
        self.get_or_insert(key, value);
    }
    fn remove(&mut self, key: &(u64, u64)) {
        GrowingMap::remove(self, key);
    }
}

fn run(table: &mut impl Table, bound: u64) -> Run {
    let warm_up = WARM_UP_BOUNDS * bound;
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut steady = Duration::ZERO;
    for i in 0..warm_up + STEADY_OPERATIONS {
        let op_started = Instant::now();
        black_box(table.contains(&key(i + (1 << 40))));
        table.insert(key(i), i);
        if i >= bound {
            table.remove(&key(i - bound));
        }
        let elapsed = op_started.elapsed();
        worst = worst.max(elapsed);
        if i >= warm_up {
            steady += elapsed;
        }
    }
    Run {
        total: started.elapsed(),
        steady_ns_per_op: steady.as_nanos() as f64 / STEADY_OPERATIONS as f64,
        worst,
    }
}

fn main() {
    let bound = std::env::var("PINGPOST_BENCH_TABLE_BOUND")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(1 << 20);
    println!(
        "bound {bound}: lookup of an absent key + insert (+ removal of the oldest at the bound)"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>15} {:>10}",
        "round", "map", "total ms", "steady ns/op", "worst µs"
    );
    for round in 1..=ROUNDS {
        let doubling = run(
            &mut HashMap::with_hasher(KeyedState::new(round as u64)),
            bound,
        );
        let growing = run(
            &mut GrowingMap::with_hasher(KeyedState::new(round as u64)),
            bound,
        );
        for (name, run) in [("HashMap", doubling), ("Growing", growing)] {
            println!(
                "{round:>6} {name:>10} {:>10.0} {:>15.1} {:>10.0}",
                run.total.as_secs_f64() * 1e3,
                run.steady_ns_per_op,
                run.worst.as_secs_f64() * 1e6
            );
        }
    }
}
