//! [`GrowingMap`]: a hash map that grows a few entries at a time, so that no insert waits
//! while the whole map is copied.
//!
//! A hash map that is full allocates one twice its size and moves every entry into it inside
//! the insert that found it full. For the duplicate tables (a million entries and more) that
//! is milliseconds to tens of milliseconds on the exchange thread, during which every ping in
//! flight waits. Reserving the tables at full size up front removes the copy but touches a
//! gigabyte of memory at once, which stalls the thread worse (BENCHMARKS.md has both
//! measurements).
//!
//! # How it grows
//!
//! The map is two hashbrown tables: `current`, where new entries go, and `previous`, the full
//! table it replaced, being emptied into `current`. When `current` is full, it becomes
//! `previous` and a new `current` is allocated: twice its buckets, or the same number when it
//! is full of deletion markers rather than of entries. Every insert then moves the entries of
//! the next [`BUCKETS_MOVED_PER_INSERT`] buckets of `previous` into `current`, in bucket order
//! (removing an entry from a hashbrown table never moves another, so the bucket cursor stays
//! valid). A key lives in exactly one of the two tables; while `previous` holds entries,
//! lookups and removals ask both.
//!
//! Moving 4 buckets an insert empties `previous` within a quarter of its bucket count of
//! inserts, before `current` can fill: doubling, `current` holds at most 7/8 + 1/4 of the old
//! bucket count against a capacity of 7/4 of it; at the same size, at most 1/2 + 1/4 against
//! 7/8. Should it fill anyway, the rest of `previous` is moved at once: a stall, never a wrong
//! answer.
//!
//! The cost, while a move is under way: an insert moves about 3.5 entries (one hash and one
//! insert each), a lookup of an absent key probes both tables, and both tables are held, as a
//! doubling map holds both during its copy. The total of entries moved is the same as a
//! doubling map's; they are only spread over the inserts.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use hashbrown::hash_table::{Entry, OccupiedEntry};

/// Buckets of the previous table whose entries one insert moves into the current one. See
/// the module docs for why 4 empties it before the current one fills.
pub const BUCKETS_MOVED_PER_INSERT: usize = 4;

/// The capacity a map's first table is allocated with.
pub const GROWING_MAP_CAPACITY_MIN: usize = 16;

/// A hash map of `K` to `V` hashed by `S` that grows without moving all its entries in one
/// insert. See the module docs.
#[derive(Clone)]
pub struct GrowingMap<K, V, S> {
    current: HashTable<(K, V)>,
    /// The table `current` replaced, being emptied into it; empty when no move is under way.
    previous: HashTable<(K, V)>,
    /// The next bucket of `previous` to move.
    cursor: usize,
    hasher: S,
}

impl<K, V, S> GrowingMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// An empty map; it allocates at its first insert.
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            current: HashTable::new(),
            previous: HashTable::new(),
            cursor: 0,
            hasher,
        }
    }

    /// An empty map with room for `capacity` entries before it first grows: for a map filled
    /// at once, as a snapshot's load does.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self {
            current: HashTable::with_capacity(capacity),
            ..Self::with_hasher(hasher)
        }
    }

    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// Entries held, in both tables.
    pub fn len(&self) -> usize {
        self.current.len().saturating_add(self.previous.len())
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.previous.is_empty()
    }

    /// Whether a move from the previous table is under way.
    #[cfg(test)]
    fn is_growing(&self) -> bool {
        !self.previous.is_empty()
    }

    /// Buckets allocated, in both tables.
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.current
            .num_buckets()
            .saturating_add(self.previous.num_buckets())
    }

    fn hash_of<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        let eq = |entry: &(K, V)| entry.0.borrow() == key;
        let found = match self.current.find(hash, eq) {
            Some(entry) => Some(entry),
            None if self.previous.is_empty() => None,
            None => self.previous.find(hash, eq),
        };
        found.map(|(_, value)| value)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        let eq = |entry: &(K, V)| entry.0.borrow() == key;
        if let Some((_, value)) = self.current.find_mut(hash, eq) {
            return Some(value);
        }
        self.previous.find_mut(hash, eq).map(|(_, value)| value)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Inserts `value` at `key`; returns the value it replaced, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(held) = self.get_mut(&key) {
            return Some(std::mem::replace(held, value));
        }
        self.insert_absent(key, value);
        None
    }

    /// The value at `key`, or `value` inserted there: the value and whether it was inserted.
    /// One lookup either way.
    pub fn get_or_insert(&mut self, key: K, value: V) -> (&mut V, bool) {
        let hash = self.hash_of(&key);
        let eq = |entry: &(K, V)| entry.0 == key;
        // A key in `previous` is found there (the entry is occupied, nothing is inserted into
        // `previous`); any other is found or inserted in `current`, after making room.
        let in_previous = !self.previous.is_empty() && self.previous.find(hash, eq).is_some();
        if !in_previous {
            self.make_room();
        }
        let table = if in_previous {
            &mut self.previous
        } else {
            &mut self.current
        };
        let hasher = &self.hasher;
        match table.entry(hash, eq, |entry| hasher.hash_one(&entry.0)) {
            Entry::Occupied(held) => (&mut held.into_mut().1, false),
            Entry::Vacant(free) => (&mut free.insert((key, value)).into_mut().1, true),
        }
    }

    /// Inserts an entry whose key the map does not hold: for a caller that has just looked,
    /// so that a new key costs one lookup, not two. A key the map holds would be held twice.
    pub fn insert_absent(&mut self, key: K, value: V) {
        debug_assert!(
            self.get(&key).is_none(),
            "insert_absent of a key the map holds"
        );
        self.make_room();
        let hash = self.hash_of(&key);
        let hasher = &self.hasher;
        self.current
            .insert_unique(hash, (key, value), |entry| hasher.hash_one(&entry.0));
    }

    /// Before an insert into `current`: moves the next buckets of a move under way, then
    /// starts growing if `current` is full. Either way `current` then has room for one more
    /// entry without hashbrown growing it.
    fn make_room(&mut self) {
        self.move_some(BUCKETS_MOVED_PER_INSERT);
        if self.current.len() >= self.current.capacity() {
            self.start_growing();
        }
    }

    /// Removes the entry at `key` when `remove` says so of its value; returns whether it did.
    pub fn remove_if<Q>(&mut self, key: &Q, remove: impl FnOnce(&V) -> bool) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.occupied(key) {
            Some(entry) if remove(&entry.get().1) => {
                entry.remove();
                true
            }
            _ => false,
        }
    }

    /// Removes the entry at `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.occupied(key).map(|entry| entry.remove().0.1)
    }

    /// The entry at `key`, in whichever table holds it.
    fn occupied<Q>(&mut self, key: &Q) -> Option<OccupiedEntry<'_, (K, V)>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        let eq = |entry: &(K, V)| entry.0.borrow() == key;
        match self.current.find_entry(hash, eq) {
            Ok(entry) => Some(entry),
            Err(_) => self.previous.find_entry(hash, eq).ok(),
        }
    }

    /// `current` is full: it becomes `previous`, and a new `current` twice its buckets (the
    /// same number when fewer than half of them hold entries: the rest are deletion markers)
    /// takes the inserts. A move still under way is finished first.
    fn start_growing(&mut self) {
        self.move_some(usize::MAX);
        let entries = self.current.len();
        let capacity = self.current.capacity();
        let buckets = self.current.num_buckets();
        let wanted = if entries.saturating_mul(2) > buckets {
            capacity.saturating_mul(2)
        } else {
            capacity
        };
        let next = HashTable::with_capacity(wanted.max(GROWING_MAP_CAPACITY_MIN));
        self.previous = std::mem::replace(&mut self.current, next);
        self.cursor = 0;
    }

    /// Moves the entries of the next `buckets` buckets of `previous` into `current`; frees
    /// `previous` once it is empty.
    fn move_some(&mut self, buckets: usize) {
        if self.previous.is_empty() {
            return;
        }
        let end = self
            .cursor
            .saturating_add(buckets)
            .min(self.previous.num_buckets());
        let hasher = &self.hasher;
        for index in self.cursor..end {
            if let Ok(entry) = self.previous.get_bucket_entry(index) {
                let (entry, _) = entry.remove();
                let hash = hasher.hash_one(&entry.0);
                self.current
                    .insert_unique(hash, entry, |entry| hasher.hash_one(&entry.0));
            }
        }
        self.cursor = end;
        if self.previous.is_empty() {
            self.previous = HashTable::new();
            self.cursor = 0;
        }
    }
}

impl<K, V, S> GrowingMap<K, V, S> {
    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.current
            .iter()
            .chain(self.previous.iter())
            .map(|(key, value)| (key, value))
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for GrowingMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when both hold the same entries, wherever each holds them.
impl<K, V, S> PartialEq for GrowingMap<K, V, S>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
{
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(key, value)| other.get(key).is_some_and(|held| held == value))
    }
}

impl<K: Hash + Eq, V: Eq, S: BuildHasher> Eq for GrowingMap<K, V, S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;

    type Map = GrowingMap<u64, u64, BuildHasherDefault<rustc_hash::FxHasher>>;

    fn map() -> Map {
        GrowingMap::with_hasher(BuildHasherDefault::default())
    }

    #[test]
    fn agrees_with_a_hash_map_through_growth_and_removal() {
        let mut grown = map();
        let mut model = HashMap::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut moves_seen = 0;
        for step in 0..200_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = rng % 50_000;
            match rng % 6 {
                0 | 1 => assert_eq!(grown.insert(key, step), model.insert(key, step)),
                5 => {
                    let (held, inserted) = grown.get_or_insert(key, step);
                    assert_eq!(inserted, !model.contains_key(&key));
                    let expected = model.entry(key).or_insert(step);
                    assert_eq!(*held, *expected);
                    *held += 1;
                    *expected += 1;
                }
                2 => assert_eq!(grown.remove(&key), model.remove(&key)),
                3 => assert_eq!(
                    grown.remove_if(&key, |&v| v % 2 == 0),
                    model.get(&key).is_some_and(|&v| v % 2 == 0) && model.remove(&key).is_some()
                ),
                _ => {
                    if let Some(value) = grown.get_mut(&key) {
                        *value += 1;
                    }
                    if let Some(value) = model.get_mut(&key) {
                        *value += 1;
                    }
                }
            }
            assert_eq!(grown.get(&key), model.get(&key));
            assert_eq!(grown.len(), model.len());
            moves_seen += usize::from(grown.is_growing());
        }
        assert!(moves_seen > 0, "the map grew through at least one move");
        let mut entries: Vec<_> = grown.iter().map(|(k, v)| (*k, *v)).collect();
        let mut expected: Vec<_> = model.into_iter().collect();
        entries.sort_unstable();
        expected.sort_unstable();
        assert_eq!(entries, expected);
    }

    #[test]
    fn a_move_ends_before_the_new_table_fills() {
        // Inserting only: every start of growth must find the previous move finished, and no
        // insert may make hashbrown itself grow the current table (its buckets change only when
        // a move starts).
        let mut grown = map();
        let mut buckets = grown.current.num_buckets();
        for key in 0..300_000u64 {
            let growing_before = grown.is_growing();
            let full = grown.current.len() >= grown.current.capacity();
            grown.insert(key, key);
            if !full {
                assert_eq!(grown.current.num_buckets(), buckets, "key {key}");
            } else {
                assert!(!growing_before, "a move was still under way at key {key}");
            }
            buckets = grown.current.num_buckets();
        }
        assert!(!grown.is_growing() || grown.previous.len() < grown.len());
        assert_eq!(grown.len(), 300_000);
        assert!((0..300_000u64).all(|key| grown.get(&key) == Some(&key)));
    }

    #[test]
    fn churn_at_a_bound_keeps_the_size_steady() {
        // A FIFO table at a bound, as the duplicate tables run: one insert, one removal of the
        // oldest. The buckets stay within twice what the bound needs.
        let mut grown = map();
        let bound = 10_000u64;
        for key in 0..200_000u64 {
            grown.insert(key, key);
            if key >= bound {
                assert_eq!(grown.remove(&(key - bound)), Some(key - bound));
            }
        }
        assert_eq!(grown.len(), 10_000);
        assert!(grown.buckets() <= 4 * 16_384, "{} buckets", grown.buckets());
    }

    #[test]
    fn equality_ignores_which_table_holds_an_entry() {
        let mut a = map();
        let mut b = map();
        for key in 0..1000u64 {
            a.insert(key, key * 2);
        }
        for key in (0..1000u64).rev() {
            b.insert(key, key * 2);
        }
        assert_eq!(a, b);
        b.insert(7, 0);
        assert_ne!(a, b);
    }
}
