//! Retried pings, repeated consumers, and what each buyer bought before: [`PingTokens`] maps a
//! seller's retried `client_token` to the first ping's id, and [`ContactHistory`] remembers,
//! per contact hash, when the consumer was last pinged (`DUPLICATE_LEAD`, 304) and which
//! buyers bought them when (a campaign's `duplicate_lookback_s`).
//!
//! # Order of the checks
//!
//! The engine asks [`PingTokens::lookup`] first. A retried ping (same seller, same non-zero
//! token) gets the first ping's answer again and is never a duplicate: the first ping recorded
//! the consumer's hashes, so asking [`ContactHistory::seen_within_window`] first would answer a
//! network retry with 304 instead of the offer the seller is waiting for. Only a ping that is
//! not a retry is checked for a repeated consumer, and only an accepted ping is recorded
//! ([`ContactHistory::record_ping`]); a refused duplicate is not, so a seller that keeps
//! re-sending a consumer does not keep extending the window.
//!
//! # Bounds
//!
//! Every table is bounded by a named maximum of entries and by a time window; the oldest entry
//! goes first. Each table is a hash map beside a queue of `(time, key)` records in insertion
//! order: expiry and eviction pop the queue's front, so both are O(1) per entry and never scan.
//! A key touched again gets a new record; its old record stays in the queue, is recognized as
//! stale (its time is not the entry's) and dropped when it reaches the front. The bound counts
//! records, so it also bounds the map. With a clock that never goes back (the engine's `now`),
//! insertion order is time order; if it did go back, expiry would only be later, never wrong.
//!
//! The tables reach a million entries and more, so neither the map nor the queue may copy
//! itself whole inside the ping that fills it: the map is a [`GrowingMap`], which moves a few
//! entries per insert into its larger successor, and the queue a [`ChunkedQueue`], which grows
//! by fixed chunks.
//!
//! Losing an entry early (at the bound) can only let a duplicate through, never refuse a
//! good lead, and a buyer's own duplicate check (`REJECT_DUPLICATE`, 620) stays behind ours.
//!
//! # Hashing
//!
//! Lookups are one hash probe per key (two for an absent key while a table grows). The keys
//! are chosen by sellers: client tokens, and the contact hashes of `PING`, which a seller may
//! send as any 32 bytes. SHA-256 outputs are uniform, so hashing their first 8 bytes would do
//! for honest sellers, but a dishonest or buggy one could send many keys that share those
//! bytes and turn every probe into a scan of all of them. So [`KeyedState`] folds every word of the key with a secret key (one multiply
//! per word, then a finalizer) before hashbrown's probe; without the key, colliding inputs
//! cannot be chosen. The maps are never iterated for anything observable (digests, snapshots
//! and eviction go through the queues), so the key changes nothing but memory layout.
//!
//! # Digest and snapshot
//!
//! `digest_into` feeds the live entries in queue order (the order they were recorded), with
//! fixed-width integers; so two histories built by the same inputs in the same order digest
//! equally, whatever the hash key. Serde writes the same ordered list (plus the hash key and
//! the bounds) and reading rebuilds the maps from it, checking the bounds.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde::{Deserialize, Serialize};

use super::chunked_queue::ChunkedQueue;
use super::growing_map::GrowingMap;
use super::types::{BuyerId, SellerId, TimeUs};
pub use crate::limits::{
    BUYERS_PER_CONTACT_MAX, DUPLICATE_LEAD_WINDOW_US, PING_TOKEN_WINDOW_US, PING_TOKENS_MAX,
    PINGED_CONTACTS_MAX, PURCHASE_LOOKBACK_MAX_US, PURCHASED_CONTACTS_MAX,
};
use crate::protocol::{ErrorCode, Hash32};

/// SHA-256 of the empty string: what a seller sends as the hash of an empty phone or email
/// field. Every such lead would otherwise be "the same consumer", so it is ignored like the
/// all-zero hash.
const EMPTY_INPUT_SHA256: Hash32 = Hash32([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Whether a hash identifies nobody: the all-zero hash or the hash of an empty field.
fn is_placeholder(hash: &Hash32) -> bool {
    *hash == EMPTY_INPUT_SHA256 || hash.0 == [0; 32]
}

/// The hashes of `hashes` that identify a consumer.
fn consumer_hashes(hashes: &[Hash32]) -> impl Iterator<Item = &Hash32> {
    hashes.iter().filter(|hash| !is_placeholder(hash))
}

/// Whether something recorded at `at` is still within `window` at `now`: `[at, at + window)`.
/// A time after `now` (a clock that went back) counts as within.
#[inline]
fn within(at: TimeUs, window: TimeUs, now: TimeUs) -> bool {
    now.saturating_sub(at) < window
}

// ---------------------------------------------------------------------------------------------
// Keyed hashing

/// Builds [`KeyedHasher`]s with a secret key: the maps' hasher for keys sellers choose (see
/// the module docs). Cheap: one multiply per 8 bytes of key and a finalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyedState {
    key: u64,
}

impl KeyedState {
    pub const fn new(key: u64) -> Self {
        Self { key }
    }

    pub const fn key(&self) -> u64 {
        self.key
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { hash: self.key }
    }
}

/// See [`KeyedState`].
#[derive(Debug, Clone)]
pub struct KeyedHasher {
    hash: u64,
}

/// An odd constant with well-spread bits (2^64 / φ), the multiplier of the fold.
const FOLD_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for KeyedHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        // Xor then multiply by an odd constant: a bijection of the word for any running hash,
        // so distinct single-word keys never fully collide, and which words collide in the low
        // bits hashbrown uses depends on the secret starting value.
        self.hash = (self.hash ^ word)
            .wrapping_mul(FOLD_MULTIPLIER)
            .rotate_left(23);
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(buffer));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buffer = [0u8; 8];
            for (slot, byte) in buffer.iter_mut().zip(rest) {
                *slot = *byte;
            }
            self.write_u64(u64::from_le_bytes(buffer));
        }
    }

    /// MurmurHash3's 64-bit finalizer: every input bit reaches every output bit, so both the
    /// low bits (bucket) and the top seven (hashbrown's tag) are well mixed.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A hash map with seller-chosen keys. Not `FxHashMap`: see the module docs. A
/// [`GrowingMap`], so that a table of a million entries grows without stalling the ping that
/// fills it.
type KeyedMap<K, V> = GrowingMap<K, V, KeyedState>;

fn keyed_map<K: std::hash::Hash + Eq, V>(hash_key: u64) -> KeyedMap<K, V> {
    GrowingMap::with_hasher(KeyedState::new(hash_key))
}

/// Describes a snapshot the bounds refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError(String);

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SnapshotError {}

// ---------------------------------------------------------------------------------------------
// Ping tokens

/// A seller's token: tokens are the seller's own ids, so two sellers may use the same one.
type TokenKey = (SellerId, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenEntry {
    ping_id: u64,
    at: TimeUs,
}

/// Retried pings: (seller, non-zero `client_token`) to the first ping's id, for
/// [`PING_TOKEN_WINDOW_US`], at most `entries_max` ([`PING_TOKENS_MAX`]) of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PingTokensSnapshot", try_from = "PingTokensSnapshot")]
pub struct PingTokens {
    map: KeyedMap<TokenKey, TokenEntry>,
    /// `(recorded at, key)` in insertion order; see the module docs on stale records.
    order: ChunkedQueue<(TimeUs, TokenKey)>,
    entries_max: usize,
}

impl Default for PingTokens {
    /// A fixed hash key (0) and the default bound: for tests and tools. A daemon facing sellers
    /// uses [`PingTokens::new`] with a secret key.
    fn default() -> Self {
        Self::new(0)
    }
}

impl PingTokens {
    /// An empty table hashing with `hash_key` (a secret, e.g. derived from the engine's seed),
    /// bounded by [`PING_TOKENS_MAX`].
    pub fn new(hash_key: u64) -> Self {
        Self::with_limits(hash_key, PING_TOKENS_MAX)
    }

    /// As [`new`](Self::new) with another bound (at least 1).
    pub fn with_limits(hash_key: u64, entries_max: usize) -> Self {
        Self {
            map: keyed_map(hash_key),
            order: ChunkedQueue::new(),
            entries_max: entries_max.max(1),
        }
    }

    /// The first ping's id if `seller` sent `token` within the window, else `None`. Token 0
    /// means "no token" and never matches.
    #[inline]
    pub fn lookup(&self, seller: SellerId, token: u64, now: TimeUs) -> Option<u64> {
        if token == 0 {
            return None;
        }
        self.map
            .get(&(seller, token))
            .filter(|entry| within(entry.at, PING_TOKEN_WINDOW_US, now))
            .map(|entry| entry.ping_id)
    }

    /// Remembers that `seller`'s `token` is ping `ping_id`. Token 0 is not remembered. A token
    /// already mapped within the window keeps its first ping: a retry never replaces it.
    /// Expires old tokens first, then evicts the oldest beyond the bound.
    pub fn insert(&mut self, seller: SellerId, token: u64, ping_id: u64, now: TimeUs) {
        if token == 0 {
            return;
        }
        self.expire(now);
        let key = (seller, token);
        // One probe of the map whether the token is new, stale or live.
        let entry = TokenEntry { ping_id, at: now };
        let (held, inserted) = self.map.get_or_insert(key, entry);
        if !inserted {
            if within(held.at, PING_TOKEN_WINDOW_US, now) {
                return;
            }
            *held = entry;
        }
        self.order.push_back((now, key));
        while self.order.len() > self.entries_max {
            self.pop_front();
        }
    }

    /// Forgets tokens older than the window.
    pub fn expire(&mut self, now: TimeUs) {
        while let Some(&(at, _)) = self.order.front() {
            if within(at, PING_TOKEN_WINDOW_US, now) {
                break;
            }
            self.pop_front();
        }
    }

    /// Drops the oldest record, and its entry if the record is the entry's latest.
    fn pop_front(&mut self) {
        if let Some((at, key)) = self.order.pop_front() {
            self.map.remove_if(&key, |held| held.at == at);
        }
    }

    /// Tokens remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The live entries in the order they were recorded.
    fn live(&self) -> impl Iterator<Item = (TimeUs, TokenKey, u64)> + '_ {
        self.order.iter().filter_map(|&(at, key)| {
            let entry = self.map.get(&key)?;
            (entry.at == at).then_some((at, key, entry.ping_id))
        })
    }

    /// Feeds the live tokens to `hasher` in the order they were recorded: count, then per
    /// token its time, seller, token and ping id, all `u64`. The hash key and the bound are
    /// configuration, not history, and are left out.
    pub fn digest_into(&self, hasher: &mut impl Hasher) {
        hasher.write_u64(self.map.len() as u64);
        for (at, (seller, token), ping_id) in self.live() {
            hasher.write_u64(at);
            hasher.write_u64(seller);
            hasher.write_u64(token);
            hasher.write_u64(ping_id);
        }
    }
}

/// One remembered token in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    at: TimeUs,
    seller: SellerId,
    token: u64,
    ping_id: u64,
}

/// The serde form of [`PingTokens`]: the live tokens in recorded order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingTokensSnapshot {
    hash_key: u64,
    entries_max: usize,
    tokens: Vec<TokenRecord>,
}

impl From<PingTokens> for PingTokensSnapshot {
    fn from(tokens: PingTokens) -> Self {
        Self {
            hash_key: tokens.map.hasher().key(),
            entries_max: tokens.entries_max,
            tokens: tokens
                .live()
                .map(|(at, (seller, token), ping_id)| TokenRecord {
                    at,
                    seller,
                    token,
                    ping_id,
                })
                .collect(),
        }
    }
}

impl TryFrom<PingTokensSnapshot> for PingTokens {
    type Error = SnapshotError;

    fn try_from(snapshot: PingTokensSnapshot) -> Result<Self, SnapshotError> {
        if snapshot.tokens.len() > snapshot.entries_max {
            return Err(SnapshotError(format!(
                "{} ping tokens, above the bound of {}",
                snapshot.tokens.len(),
                snapshot.entries_max
            )));
        }
        let mut tokens = Self::with_limits(snapshot.hash_key, snapshot.entries_max);
        for record in snapshot.tokens {
            let key = (record.seller, record.token);
            if record.token == 0 {
                return Err(SnapshotError("a ping token of 0".to_owned()));
            }
            let entry = TokenEntry {
                ping_id: record.ping_id,
                at: record.at,
            };
            if tokens.map.insert(key, entry).is_some() {
                return Err(SnapshotError(format!(
                    "seller {}'s token {} is listed twice",
                    record.seller, record.token
                )));
            }
            tokens.order.push_back((record.at, key));
        }
        Ok(tokens)
    }
}

// ---------------------------------------------------------------------------------------------
// Contact history

/// A buyer's latest purchase of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Purchase {
    buyer: BuyerId,
    at: TimeUs,
}

/// The purchases of one contact hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Purchases {
    /// The latest purchase: the entry's time in the queue.
    last_at: TimeUs,
    /// One per buyer, at most `BUYERS_PER_CONTACT_MAX`, in the order first bought. A boxed
    /// slice, not a `Vec`: most consumers have one buyer, and this saves the capacity word and
    /// the spare slots of millions of entries; adding a buyer (rare) reallocates.
    buyers: Box<[Purchase]>,
}

/// Per contact hash, when the consumer was last pinged and which buyers bought them when.
///
/// Keyed by a hash of the phone or of the email (a lead may carry either or both): a consumer
/// matches a later lead when either hash matches, so a phone-only lead and an email-only lead
/// of the same person are linked only through a lead that carried both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ContactHistorySnapshot", try_from = "ContactHistorySnapshot")]
pub struct ContactHistory {
    /// Hash to the time it was last pinged.
    pinged: KeyedMap<Hash32, TimeUs>,
    ping_order: ChunkedQueue<(TimeUs, Hash32)>,
    pinged_max: usize,
    purchased: KeyedMap<Hash32, Purchases>,
    purchase_order: ChunkedQueue<(TimeUs, Hash32)>,
    purchased_max: usize,
}

impl Default for ContactHistory {
    /// A fixed hash key (0) and the default bounds: for tests and tools. A daemon facing
    /// sellers uses [`ContactHistory::new`] with a secret key.
    fn default() -> Self {
        Self::new(0)
    }
}

impl ContactHistory {
    /// An empty history hashing with `hash_key` (a secret, e.g. derived from the engine's
    /// seed), bounded by [`PINGED_CONTACTS_MAX`] and [`PURCHASED_CONTACTS_MAX`].
    pub fn new(hash_key: u64) -> Self {
        Self::with_limits(hash_key, PINGED_CONTACTS_MAX, PURCHASED_CONTACTS_MAX)
    }

    /// As [`new`](Self::new) with other bounds (each at least 1).
    pub fn with_limits(hash_key: u64, pinged_max: usize, purchased_max: usize) -> Self {
        Self {
            pinged: keyed_map(hash_key),
            ping_order: ChunkedQueue::new(),
            pinged_max: pinged_max.max(1),
            purchased: keyed_map(hash_key),
            purchase_order: ChunkedQueue::new(),
            purchased_max: purchased_max.max(1),
        }
    }

    /// Whether any of `hashes` (a ping's phone and email hashes) was pinged within
    /// [`DUPLICATE_LEAD_WINDOW_US`]: the ping is then a `DUPLICATE_LEAD` (304). Ask
    /// [`PingTokens::lookup`] first (module docs). At most one probe per hash.
    #[inline]
    pub fn seen_within_window(&self, hashes: &[Hash32], now: TimeUs) -> bool {
        consumer_hashes(hashes).any(|hash| {
            self.pinged
                .get(hash)
                .is_some_and(|&at| within(at, DUPLICATE_LEAD_WINDOW_US, now))
        })
    }

    /// [`seen_within_window`](Self::seen_within_window) as the ping's answer:
    /// `DUPLICATE_LEAD` (304) when seen.
    pub fn check_duplicate(&self, hashes: &[Hash32], now: TimeUs) -> Result<(), ErrorCode> {
        if self.seen_within_window(hashes, now) {
            Err(ErrorCode::DUPLICATE_LEAD)
        } else {
            Ok(())
        }
    }

    /// Records an accepted ping of the consumer with `hashes`. Hashes that identify nobody
    /// (all zeros, or the SHA-256 of an empty field) are ignored. Expires old pings first, then
    /// evicts the oldest beyond the bound.
    pub fn record_ping(&mut self, hashes: &[Hash32], now: TimeUs) {
        self.expire_pings(now);
        for hash in consumer_hashes(hashes) {
            let (at, inserted) = self.pinged.get_or_insert(*hash, now);
            if !inserted {
                // Already recorded at this time or later (a clock that went back): keep it.
                if *at >= now {
                    continue;
                }
                *at = now;
            }
            self.ping_order.push_back((now, *hash));
        }
        while self.ping_order.len() > self.pinged_max {
            self.pop_ping();
        }
    }

    /// Records that `buyer` bought the consumer with `hashes` (the hashes the exchange computed
    /// from the posted contact record). Placeholder hashes are ignored. Expires old purchases
    /// first, then evicts the oldest beyond the bound.
    pub fn record_purchase(&mut self, buyer: BuyerId, hashes: &[Hash32], now: TimeUs) {
        self.expire_purchases(now);
        for hash in consumer_hashes(hashes) {
            match self.purchased.get_mut(hash) {
                Some(purchases) => {
                    add_buyer(&mut purchases.buyers, buyer, now);
                    if purchases.last_at >= now {
                        continue;
                    }
                    purchases.last_at = now;
                }
                None => {
                    let purchases = Purchases {
                        last_at: now,
                        buyers: Box::new([Purchase { buyer, at: now }]),
                    };
                    self.purchased.insert_absent(*hash, purchases);
                }
            }
            self.purchase_order.push_back((now, *hash));
        }
        while self.purchase_order.len() > self.purchased_max {
            self.pop_purchase();
        }
    }

    /// Whether `buyer` bought the consumer with any of `hashes` within `lookback_us` of `now`
    /// (a campaign's `duplicate_lookback_s` in µs; 0: no check, so `false`). A look-back above
    /// [`PURCHASE_LOOKBACK_MAX_US`] is capped to it: older purchases are not kept. A purchase at
    /// `t` is within the look-back while `now < t + lookback_us`. At most one probe per hash
    /// and a scan of at most [`BUYERS_PER_CONTACT_MAX`] buyers.
    #[inline]
    pub fn bought_within(
        &self,
        buyer: BuyerId,
        hashes: &[Hash32],
        lookback_us: TimeUs,
        now: TimeUs,
    ) -> bool {
        let lookback_us = lookback_us.min(PURCHASE_LOOKBACK_MAX_US);
        if lookback_us == 0 {
            return false;
        }
        consumer_hashes(hashes).any(|hash| {
            self.purchased.get(hash).is_some_and(|purchases| {
                purchases
                    .buyers
                    .iter()
                    .any(|p| p.buyer == buyer && within(p.at, lookback_us, now))
            })
        })
    }

    /// Whether any buyer's purchase of this consumer is still kept: when not,
    /// [`Self::bought_within`] is `false` for every buyer and look-back, so an auction asks
    /// once per lead instead of once per campaign. One probe per hash.
    pub fn any_purchase(&self, hashes: &[Hash32]) -> bool {
        consumer_hashes(hashes).any(|hash| self.purchased.contains_key(hash))
    }

    /// Forgets pings older than [`DUPLICATE_LEAD_WINDOW_US`] and consumers whose latest
    /// purchase is older than [`PURCHASE_LOOKBACK_MAX_US`]. Recording calls it too; the engine
    /// may call it on a timer so that memory is returned when traffic stops.
    pub fn expire(&mut self, now: TimeUs) {
        self.expire_pings(now);
        self.expire_purchases(now);
    }

    fn expire_pings(&mut self, now: TimeUs) {
        while let Some(&(at, _)) = self.ping_order.front() {
            if within(at, DUPLICATE_LEAD_WINDOW_US, now) {
                break;
            }
            self.pop_ping();
        }
    }

    fn expire_purchases(&mut self, now: TimeUs) {
        while let Some(&(at, _)) = self.purchase_order.front() {
            if within(at, PURCHASE_LOOKBACK_MAX_US, now) {
                break;
            }
            self.pop_purchase();
        }
    }

    fn pop_ping(&mut self) {
        if let Some((at, hash)) = self.ping_order.pop_front() {
            self.pinged.remove_if(&hash, |&held| held == at);
        }
    }

    fn pop_purchase(&mut self) {
        if let Some((at, hash)) = self.purchase_order.pop_front() {
            self.purchased.remove_if(&hash, |p| p.last_at == at);
        }
    }

    /// Contact hashes remembered for the duplicate check.
    pub fn pinged_len(&self) -> usize {
        self.pinged.len()
    }

    /// Contact hashes with remembered purchases.
    pub fn purchased_len(&self) -> usize {
        self.purchased.len()
    }

    fn live_pings(&self) -> impl Iterator<Item = (TimeUs, &Hash32)> + '_ {
        self.ping_order
            .iter()
            .filter(|(at, hash)| self.pinged.get(hash) == Some(at))
            .map(|(at, hash)| (*at, hash))
    }

    fn live_purchases(&self) -> impl Iterator<Item = (&Hash32, &Purchases)> + '_ {
        self.purchase_order.iter().filter_map(|(at, hash)| {
            let purchases = self.purchased.get(hash)?;
            (purchases.last_at == *at).then_some((hash, purchases))
        })
    }

    /// Feeds the live history to `hasher` in the order it was recorded, all integers `u64`:
    /// the count of pinged hashes, then per hash its time and 32 bytes; the count of purchased
    /// hashes, then per hash its 32 bytes, latest time, buyer count and each (buyer, time) in
    /// the order first bought. The hash key and the bounds are configuration, left out.
    pub fn digest_into(&self, hasher: &mut impl Hasher) {
        hasher.write_u64(self.pinged.len() as u64);
        for (at, hash) in self.live_pings() {
            hasher.write_u64(at);
            hasher.write(&hash.0);
        }
        hasher.write_u64(self.purchased.len() as u64);
        for (hash, purchases) in self.live_purchases() {
            hasher.write(&hash.0);
            hasher.write_u64(purchases.last_at);
            hasher.write_u64(purchases.buyers.len() as u64);
            for purchase in purchases.buyers.iter() {
                hasher.write_u64(purchase.buyer);
                hasher.write_u64(purchase.at);
            }
        }
    }
}

/// Records `buyer`'s purchase at `now` in a consumer's buyer list: updates its slot if it has
/// one; otherwise drops purchases past the longest look-back, then appends, or, when the list
/// is full, replaces the purchase made longest ago (the first such, for determinism).
fn add_buyer(buyers: &mut Box<[Purchase]>, buyer: BuyerId, now: TimeUs) {
    if let Some(slot) = buyers.iter_mut().find(|p| p.buyer == buyer) {
        slot.at = slot.at.max(now);
        return;
    }
    let mut kept: Vec<Purchase> = Vec::with_capacity(buyers.len().saturating_add(1));
    kept.extend(
        buyers
            .iter()
            .filter(|p| within(p.at, PURCHASE_LOOKBACK_MAX_US, now)),
    );
    let purchase = Purchase { buyer, at: now };
    if kept.len() < BUYERS_PER_CONTACT_MAX {
        kept.push(purchase);
    } else if let Some(oldest) = kept
        .iter_mut()
        .reduce(|oldest, p| if p.at < oldest.at { p } else { oldest })
    {
        *oldest = purchase;
    }
    *buyers = kept.into_boxed_slice();
}

/// One contact hash with purchases, in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseRecord {
    hash: Hash32,
    last_at: TimeUs,
    buyers: Vec<Purchase>,
}

/// One pinged contact hash, in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingRecord {
    at: TimeUs,
    hash: Hash32,
}

/// The serde form of [`ContactHistory`]: the live entries in recorded order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactHistorySnapshot {
    hash_key: u64,
    pinged_max: usize,
    purchased_max: usize,
    pinged: Vec<PingRecord>,
    purchased: Vec<PurchaseRecord>,
}

impl From<ContactHistory> for ContactHistorySnapshot {
    fn from(history: ContactHistory) -> Self {
        Self {
            hash_key: history.pinged.hasher().key(),
            pinged_max: history.pinged_max,
            purchased_max: history.purchased_max,
            pinged: history
                .live_pings()
                .map(|(at, hash)| PingRecord { at, hash: *hash })
                .collect(),
            purchased: history
                .live_purchases()
                .map(|(hash, purchases)| PurchaseRecord {
                    hash: *hash,
                    last_at: purchases.last_at,
                    buyers: purchases.buyers.to_vec(),
                })
                .collect(),
        }
    }
}

impl TryFrom<ContactHistorySnapshot> for ContactHistory {
    type Error = SnapshotError;

    fn try_from(snapshot: ContactHistorySnapshot) -> Result<Self, SnapshotError> {
        if snapshot.pinged.len() > snapshot.pinged_max
            || snapshot.purchased.len() > snapshot.purchased_max
        {
            return Err(SnapshotError(
                "more contact hashes than the history's bounds".to_owned(),
            ));
        }
        let mut history = Self::with_limits(
            snapshot.hash_key,
            snapshot.pinged_max,
            snapshot.purchased_max,
        );
        for record in snapshot.pinged {
            if history.pinged.insert(record.hash, record.at).is_some() {
                return Err(SnapshotError(format!(
                    "pinged hash {} listed twice",
                    record.hash
                )));
            }
            history.ping_order.push_back((record.at, record.hash));
        }
        for record in snapshot.purchased {
            if record.buyers.is_empty() || record.buyers.len() > BUYERS_PER_CONTACT_MAX {
                return Err(SnapshotError(format!(
                    "purchased hash {} has {} buyers",
                    record.hash,
                    record.buyers.len()
                )));
            }
            let purchases = Purchases {
                last_at: record.last_at,
                buyers: record.buyers.into_boxed_slice(),
            };
            if history.purchased.insert(record.hash, purchases).is_some() {
                return Err(SnapshotError(format!(
                    "purchased hash {} listed twice",
                    record.hash
                )));
            }
            history
                .purchase_order
                .push_back((record.last_at, record.hash));
        }
        Ok(history)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const SECOND_US: TimeUs = 1_000_000;
    const HOUR_US: TimeUs = 3_600 * SECOND_US;
    const DAY_US: TimeUs = 24 * HOUR_US;
    use crate::engine::preping::{email_hash, phone_hash};

    const T0: TimeUs = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    const MINUTE_US: TimeUs = 60 * SECOND_US;
    const SELLER: SellerId = 7;

    #[test]
    fn token_retry_within_the_window_gets_the_first_ping() {
        let mut tokens = PingTokens::new(0x5eed);
        assert_eq!(tokens.lookup(SELLER, 42, T0), None);
        tokens.insert(SELLER, 42, 1001, T0);
        assert_eq!(tokens.lookup(SELLER, 42, T0 + 2 * SECOND_US), Some(1001));
        assert_eq!(
            tokens.lookup(SELLER, 42, T0 + PING_TOKEN_WINDOW_US - 1),
            Some(1001)
        );
        // A second insert for the same token (the engine racing a retry) keeps the first.
        tokens.insert(SELLER, 42, 1002, T0 + MINUTE_US);
        assert_eq!(tokens.lookup(SELLER, 42, T0 + 2 * MINUTE_US), Some(1001));
        // Another seller's token 42 is another ping; token 0 is never remembered.
        assert_eq!(tokens.lookup(SELLER + 1, 42, T0), None);
        tokens.insert(SELLER, 0, 1003, T0);
        assert_eq!(tokens.lookup(SELLER, 0, T0), None);
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn token_after_the_window_is_a_new_ping() {
        let mut tokens = PingTokens::new(1);
        tokens.insert(SELLER, 42, 1001, T0);
        let later = T0 + PING_TOKEN_WINDOW_US;
        assert_eq!(tokens.lookup(SELLER, 42, later), None);
        tokens.insert(SELLER, 42, 2001, later);
        assert_eq!(tokens.lookup(SELLER, 42, later), Some(2001));
        assert_eq!(tokens.len(), 1);
        tokens.expire(later + PING_TOKEN_WINDOW_US);
        assert!(tokens.is_empty());
        assert!(tokens.order.is_empty());
    }

    #[test]
    fn tokens_evict_the_oldest_at_the_bound() {
        let mut tokens = PingTokens::with_limits(3, 4);
        for token in 1..=6u64 {
            tokens.insert(SELLER, token, 100 + token, T0 + token);
        }
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens.lookup(SELLER, 1, T0 + 10), None);
        assert_eq!(tokens.lookup(SELLER, 2, T0 + 10), None);
        for token in 3..=6u64 {
            assert_eq!(tokens.lookup(SELLER, token, T0 + 10), Some(100 + token));
        }
    }

    #[test]
    fn tokens_stay_bounded_under_a_flood() {
        let mut tokens = PingTokens::with_limits(9, 1000);
        for token in 1..=50_000u64 {
            tokens.insert(token % 13, token, token, T0 + token);
        }
        assert_eq!(tokens.len(), 1000);
        assert_eq!(tokens.order.len(), 1000);
    }

    #[test]
    fn token_snapshot_round_trips() {
        let mut tokens = PingTokens::new(77);
        tokens.insert(SELLER, 42, 1001, T0);
        tokens.insert(SELLER, 43, 1002, T0 + 1);
        let json = serde_json::to_string(&tokens).unwrap();
        let back: PingTokens = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tokens);
        assert_eq!(back.lookup(SELLER, 43, T0 + 2), Some(1002));
        let twice = r#"{"hash_key":0,"entries_max":4,"tokens":[
            {"at":1,"seller":1,"token":5,"ping_id":1},{"at":2,"seller":1,"token":5,"ping_id":2}]}"#;
        assert!(serde_json::from_str::<PingTokens>(twice).is_err());
        let over = r#"{"hash_key":0,"entries_max":1,"tokens":[
            {"at":1,"seller":1,"token":5,"ping_id":1},{"at":2,"seller":1,"token":6,"ping_id":2}]}"#;
        assert!(serde_json::from_str::<PingTokens>(over).is_err());
    }

    fn jane() -> (Hash32, Hash32) {
        (
            phone_hash("+13035550142"),
            email_hash("jane.doe@example.com"),
        )
    }

    #[test]
    fn duplicate_within_and_after_the_window() {
        let (phone, email) = jane();
        let mut history = ContactHistory::new(0xfeed);
        assert_eq!(history.check_duplicate(&[phone, email], T0), Ok(()));
        history.record_ping(&[phone, email], T0);
        assert_eq!(
            history.check_duplicate(&[phone, email], T0 + MINUTE_US),
            Err(ErrorCode::DUPLICATE_LEAD)
        );
        assert!(history.seen_within_window(&[phone, email], T0 + DUPLICATE_LEAD_WINDOW_US - 1));
        assert!(!history.seen_within_window(&[phone, email], T0 + DUPLICATE_LEAD_WINDOW_US));
        history.expire(T0 + DUPLICATE_LEAD_WINDOW_US);
        assert_eq!(history.pinged_len(), 0);
        // A lead without hashes is never a duplicate.
        assert!(!history.seen_within_window(&[], T0));
    }

    #[test]
    fn phone_only_and_email_only_leads_match_the_same_consumer() {
        let (phone, email) = jane();
        let other_phone = phone_hash("+13035550199");
        let mut history = ContactHistory::new(1);
        history.record_ping(&[phone, email], T0);
        let soon = T0 + MINUTE_US;
        assert!(history.seen_within_window(&[phone], soon));
        assert!(history.seen_within_window(&[email], soon));
        assert!(history.seen_within_window(&[other_phone, email], soon));
        assert!(!history.seen_within_window(&[other_phone], soon));

        // A phone-only lead, then an email-only lead of the same person: not linked.
        let mut history = ContactHistory::new(1);
        history.record_ping(&[phone], T0);
        assert!(!history.seen_within_window(&[email], soon));
        assert!(history.seen_within_window(&[email_hash("x@example.com"), phone], soon));
    }

    #[test]
    fn placeholder_hashes_identify_nobody() {
        let empty = email_hash("");
        assert_eq!(empty, EMPTY_INPUT_SHA256);
        assert_eq!(phone_hash(""), EMPTY_INPUT_SHA256);
        let zero = Hash32([0; 32]);
        let mut history = ContactHistory::new(2);
        history.record_ping(&[empty, zero], T0);
        history.record_purchase(5, &[empty, zero], T0);
        assert_eq!(history.pinged_len(), 0);
        assert_eq!(history.purchased_len(), 0);
        assert!(!history.seen_within_window(&[empty], T0 + 1));
        assert!(!history.bought_within(5, &[zero], DAY_US, T0 + 1));
    }

    #[test]
    fn bought_within_per_buyer_and_window() {
        let (phone, email) = jane();
        let mut history = ContactHistory::new(3);
        let (acme, solarco) = (11, 12);
        history.record_purchase(acme, &[phone, email], T0);
        let thirty_days = 30 * DAY_US;
        let later = T0 + 10 * DAY_US;
        assert!(history.bought_within(acme, &[phone, email], thirty_days, later));
        assert!(history.bought_within(acme, &[phone], thirty_days, later));
        assert!(history.bought_within(acme, &[email], thirty_days, later));
        assert!(!history.bought_within(solarco, &[phone, email], thirty_days, later));
        // A 7-day look-back has passed; 0 means no check.
        assert!(!history.bought_within(acme, &[phone], 7 * DAY_US, later));
        assert!(!history.bought_within(acme, &[phone], 0, T0));
        // The window is [t, t + lookback).
        assert!(history.bought_within(acme, &[phone], thirty_days, T0 + thirty_days - 1));
        assert!(!history.bought_within(acme, &[phone], thirty_days, T0 + thirty_days));
        // A year's look-back is capped to the 90 days kept.
        let year = 365 * DAY_US;
        assert!(history.bought_within(acme, &[phone], year, T0 + 89 * DAY_US));
        assert!(!history.bought_within(acme, &[phone], year, T0 + 90 * DAY_US));

        // A shared sale: two buyers at once, each remembered separately.
        history.record_purchase(solarco, &[phone, email], later);
        assert!(history.bought_within(solarco, &[email], DAY_US, later + 1));
        assert!(history.bought_within(acme, &[email], thirty_days, later + 1));
        assert_eq!(history.purchased_len(), 2);

        // The entry lives 90 days from its latest purchase.
        history.expire(T0 + 90 * DAY_US);
        assert_eq!(history.purchased_len(), 2);
        history.expire(later + 90 * DAY_US);
        assert_eq!(history.purchased_len(), 0);
        assert!(history.purchase_order.is_empty());
    }

    #[test]
    fn buyers_per_contact_are_bounded() {
        let (phone, _) = jane();
        let mut history = ContactHistory::new(4);
        for buyer in 1..=(BUYERS_PER_CONTACT_MAX as u64 + 3) {
            history.record_purchase(buyer, &[phone], T0 + buyer * SECOND_US);
        }
        let now = T0 + DAY_US;
        let entry = history.purchased.get(&phone).unwrap();
        assert_eq!(entry.buyers.len(), BUYERS_PER_CONTACT_MAX);
        // The three that bought first were forgotten; the rest are kept.
        for buyer in 1..=3 {
            assert!(!history.bought_within(buyer, &[phone], DAY_US * 2, now));
        }
        for buyer in 4..=(BUYERS_PER_CONTACT_MAX as u64 + 3) {
            assert!(
                history.bought_within(buyer, &[phone], DAY_US * 2, now),
                "{buyer}"
            );
        }
        // A repeat purchase updates the buyer's slot, not a new one.
        history.record_purchase(10, &[phone], now);
        assert_eq!(
            history.purchased.get(&phone).unwrap().buyers.len(),
            BUYERS_PER_CONTACT_MAX
        );
        assert!(history.bought_within(10, &[phone], MINUTE_US, now + 1));
    }

    #[test]
    fn contacts_evict_the_oldest_at_the_bound() {
        let mut history = ContactHistory::with_limits(5, 4, 4);
        let hash = |i: u64| phone_hash(&format!("+1303555{i:04}"));
        for i in 0..6u64 {
            history.record_ping(&[hash(i)], T0 + i);
            history.record_purchase(1, &[hash(i)], T0 + i);
        }
        assert_eq!(history.pinged_len(), 4);
        assert_eq!(history.purchased_len(), 4);
        let now = T0 + 10;
        assert!(!history.seen_within_window(&[hash(0)], now));
        assert!(!history.seen_within_window(&[hash(1)], now));
        assert!(!history.bought_within(1, &[hash(1)], DAY_US, now));
        for i in 2..6 {
            assert!(history.seen_within_window(&[hash(i)], now));
            assert!(history.bought_within(1, &[hash(i)], DAY_US, now));
        }
    }

    #[test]
    fn contacts_stay_bounded_under_a_flood_of_unique_consumers() {
        let mut history = ContactHistory::with_limits(6, 500, 300);
        for i in 0..20_000u64 {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            bytes[31] = 1;
            let hash = Hash32(bytes);
            history.record_ping(&[hash], T0 + i);
            history.record_purchase(i % 5, &[hash], T0 + i);
        }
        assert_eq!(history.pinged_len(), 500);
        assert!(history.ping_order.len() <= 500);
        assert_eq!(history.purchased_len(), 300);
        assert!(history.purchase_order.len() <= 300);
    }

    #[test]
    fn keys_that_share_their_first_bytes_still_spread() {
        // A seller sending "hashes" that differ only in their last byte must not make every
        // probe a scan: the keyed hasher mixes every word.
        let build = KeyedState::new(0x1234_5678_9abc_def0);
        let mut buckets = std::collections::HashSet::new();
        for last in 0..=255u8 {
            let mut bytes = [0xAB; 32];
            bytes[31] = last;
            buckets.insert(build.hash_one(Hash32(bytes)) & 0xFFFF);
        }
        assert!(
            buckets.len() > 250,
            "{} distinct buckets of 256",
            buckets.len()
        );
        // Another key places the same inputs differently.
        let other = KeyedState::new(1);
        assert_ne!(
            build.hash_one(Hash32([0; 32])),
            other.hash_one(Hash32([0; 32]))
        );
    }

    /// Nanoseconds per duplicate check and per `bought_within` with 200,000 consumers known.
    /// Run: `cargo test --release --lib engine::dedupe::tests::measure_lookups -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "a measurement; run it in release mode"]
    fn measure_lookups() {
        use std::hint::black_box;
        use std::time::Instant;
        let hash = |i: u64| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            bytes[8..16].copy_from_slice(&i.to_le_bytes());
            Hash32(bytes)
        };
        let mut history = ContactHistory::new(0x5eed);
        for i in 0..200_000u64 {
            history.record_ping(&[hash(i)], T0 + i);
            history.record_purchase(i % 50, &[hash(i)], T0 + i);
        }
        let now = T0 + 300_000;
        let rounds = 1_000_000u64;
        let start = Instant::now();
        let mut seen = 0u64;
        for i in 0..rounds {
            let hashes = [hash(i % 400_000), hash(i % 400_000 + 1)];
            seen += u64::from(history.seen_within_window(black_box(&hashes), now));
        }
        let ns = start.elapsed().as_nanos() / u128::from(rounds);
        eprintln!("seen_within_window, two hashes: {ns} ns ({seen} seen)");
        let start = Instant::now();
        let mut bought = 0u64;
        for i in 0..rounds {
            let hashes = [hash(i % 400_000), hash(i % 400_000 + 1)];
            bought += u64::from(history.bought_within(i % 50, black_box(&hashes), DAY_US, now));
        }
        let ns = start.elapsed().as_nanos() / u128::from(rounds);
        eprintln!("bought_within, two hashes: {ns} ns ({bought} bought)");
    }

    fn digest(history: &ContactHistory) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        history.digest_into(&mut hasher);
        hasher.finish()
    }

    fn build(hash_key: u64) -> ContactHistory {
        let (phone, email) = jane();
        let other = phone_hash("+13035550199");
        let mut history = ContactHistory::new(hash_key);
        history.record_ping(&[phone, email], T0);
        history.record_ping(&[other], T0 + MINUTE_US);
        history.record_purchase(11, &[phone, email], T0 + 2 * MINUTE_US);
        history.record_purchase(12, &[phone, email], T0 + 2 * MINUTE_US);
        history.record_purchase(11, &[other], T0 + 3 * MINUTE_US);
        history.record_ping(&[phone], T0 + 2 * DUPLICATE_LEAD_WINDOW_US);
        history
    }

    #[test]
    fn equal_histories_digest_equally() {
        // Same inputs in the same order: equal state and digest, whatever the hash key.
        assert_eq!(build(1), build(1));
        assert_eq!(digest(&build(1)), digest(&build(2)));
        let mut changed = build(1);
        changed.record_purchase(13, &[jane().0], T0 + 4 * DUPLICATE_LEAD_WINDOW_US);
        assert_ne!(digest(&changed), digest(&build(1)));

        let tokens = |key| {
            let mut tokens = PingTokens::new(key);
            tokens.insert(SELLER, 42, 1001, T0);
            tokens.insert(SELLER, 43, 1002, T0 + 1);
            tokens
        };
        let digest_tokens = |tokens: &PingTokens| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            tokens.digest_into(&mut hasher);
            hasher.finish()
        };
        assert_eq!(digest_tokens(&tokens(1)), digest_tokens(&tokens(2)));
    }

    #[test]
    fn history_snapshot_round_trips() {
        let history = build(99);
        let json = serde_json::to_string(&history).unwrap();
        let back: ContactHistory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history);
        assert_eq!(digest(&back), digest(&history));
        // Serializing twice gives the same bytes: the order is the queue's, not the map's.
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
