//! Engine-state snapshots: the whole state the events built, copied out of the engine as an
//! [`EngineImage`], written as bytes, and an engine loaded back from them.
//!
//! An image holds exactly what [`Engine::state_digest`] covers, plus the index the digest
//! leaves out because it follows from it (deadlines): the definitions of the current book and
//! of each older version an auction in memory still holds, cap and budget counters and
//! round-robin stamps by id, the id counters, every auction in memory, the delivery numbers,
//! retry tokens, contact history and ledger totals. Caches (compiled books, zone clocks,
//! headroom memos) are rebuilt on load, and requests waiting for an answer are not state: they
//! die with their connections.
//!
//! Taking an image copies the state (the book definitions are shared, not copied); encoding it
//! is the slow part, and the image is `Send`, so the daemon encodes it off the exchange
//! thread. The bytes are JSON (`protocol-spec/journal.md`, "Snapshot state"), in the
//! vocabulary of the journal's own payloads, with every map in key order: the same state
//! always gives the same bytes, and an auditor's reader needs nothing the journal did not
//! already require. Loading then replaying the records after the snapshot gives the state of
//! replaying the whole journal; `tests/engine_snapshot.rs` checks it digest for digest.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use super::{Auction, Engine, EngineConfig, LedgerTotals};
use crate::engine::book::{Book, BookDefs};
use crate::engine::caps::CapCounters;
use crate::engine::dedupe::{ContactHistory, PingTokens};
use crate::engine::events::{LeadId, PingId};
use crate::engine::growing_map::GrowingMap;
use crate::engine::types::{BuyerId, CampaignId, TimeUs};
use crate::engine::usage::Usage;

/// The layout version of a snapshot's state; a reader refuses any other.
pub const ENGINE_SNAPSHOT_SCHEMA: u16 = 1;

/// Bytes reserved for a snapshot beyond its auctions (book definitions, dedupe tables).
const SNAPSHOT_RESERVE_FIXED_BYTES: usize = 64 << 20;
/// Bytes reserved per auction in memory: several times the few KB one takes.
const SNAPSHOT_RESERVE_PER_AUCTION_BYTES: usize = 32 << 10;

/// Why an engine's state could not be taken, written or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSnapshotError(String);

impl fmt::Display for EngineSnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "engine snapshot: {}", self.0)
    }
}

impl std::error::Error for EngineSnapshotError {}

fn refuse(problem: impl Into<String>) -> EngineSnapshotError {
    EngineSnapshotError(problem.into())
}

/// What a deserialized auction holds until its book is put back: never seen outside a load.
pub(super) fn book_to_be_restored() -> Arc<Book> {
    static PLACEHOLDER: OnceLock<Arc<Book>> = OnceLock::new();
    Arc::clone(PLACEHOLDER.get_or_init(|| Arc::new(Book::empty())))
}

/// A copy of an engine's state (see the module documentation), as written and as read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineImage {
    schema: u16,
    book_version: u64,
    defs: Arc<BookDefs>,
    /// Older book versions that auctions in memory still hold, by version.
    older_books: Vec<(u64, Arc<BookDefs>)>,
    caps: Vec<(CampaignId, CapCounters)>,
    budgets: Vec<(BuyerId, CapCounters)>,
    last_selected: Vec<(CampaignId, u64)>,
    selection_stamp: u64,
    next_ping_id: PingId,
    next_lead_id: LeadId,
    next_receipt_id: u64,
    delivery_seq: Vec<(BuyerId, u64)>,
    /// Each auction with the book version it holds.
    auctions: Vec<(PingId, u64, Auction)>,
    deadlines: BTreeSet<(TimeUs, PingId)>,
    deliveries: Vec<((BuyerId, u64), PingId)>,
    lead_to_ping: Vec<(LeadId, PingId)>,
    closed: VecDeque<(TimeUs, PingId)>,
    tokens: PingTokens,
    fingerprints: PingTokens,
    contacts: ContactHistory,
    ledger: LedgerTotals,
}

impl EngineImage {
    /// The image as snapshot bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EngineSnapshotError> {
        // Reserved generously so that the buffer never moves while it grows; the pages not
        // written are never touched.
        let mut bytes = Vec::with_capacity(
            SNAPSHOT_RESERVE_FIXED_BYTES + self.auctions.len() * SNAPSHOT_RESERVE_PER_AUCTION_BYTES,
        );
        serde_json::to_writer(&mut bytes, self).map_err(|error| refuse(error.to_string()))?;
        Ok(bytes)
    }

    /// The auctions the image holds.
    pub fn auctions(&self) -> usize {
        self.auctions.len()
    }
}

/// A map's entries in key order, so that the bytes do not depend on hashing.
fn sorted<'a, K: Ord + Copy + 'a, V: Copy + 'a>(
    map: impl IntoIterator<Item = (&'a K, &'a V)>,
) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.into_iter().map(|(k, v)| (*k, *v)).collect();
    entries.sort_unstable_by_key(|&(k, _)| k);
    entries
}

/// A snapshot's list of entries as the map the engine keeps them in.
fn map_of<K: Hash + Eq, V>(entries: Vec<(K, V)>) -> GrowingMap<K, V, FxBuildHasher> {
    let mut map = GrowingMap::with_capacity_and_hasher(entries.len(), FxBuildHasher);
    for (key, value) in entries {
        map.insert(key, value);
    }
    map
}

impl Engine {
    /// A copy of the engine's state. Take it between two inputs, once every event polled so
    /// far is in the journal: the snapshot then stands for the journal up to its last record.
    /// Refused while events wait to be polled (the journal does not have them).
    pub fn snapshot_image(&self) -> Result<EngineImage, EngineSnapshotError> {
        if !self.events.is_empty() {
            return Err(refuse(format!(
                "{} events wait to be polled and journaled; a snapshot is taken after them",
                self.events.len()
            )));
        }
        let mut older_books: Vec<(u64, Arc<BookDefs>)> = self
            .retired_defs
            .iter()
            .filter_map(|(book, defs)| Some((book.upgrade()?.version, Arc::clone(defs))))
            .collect();
        older_books.sort_unstable_by_key(|&(version, _)| version);
        let mut auctions: Vec<(PingId, u64, Auction)> = self
            .auctions
            .iter()
            .map(|(&ping_id, auction)| (ping_id, auction.book.version, Auction::clone(auction)))
            .collect();
        auctions.sort_unstable_by_key(|&(ping_id, _, _)| ping_id);
        let known = |version: u64| {
            version == self.book.version
                || older_books
                    .binary_search_by_key(&version, |&(v, _)| v)
                    .is_ok()
        };
        if let Some((ping_id, version, _)) = auctions.iter().find(|(_, v, _)| !known(*v)) {
            return Err(refuse(format!(
                "auction {ping_id} holds book version {version}, whose definitions are gone"
            )));
        }
        let owned = |entries: Vec<(CampaignId, &CapCounters)>| {
            entries
                .into_iter()
                .map(|(id, counters)| (id, counters.clone()))
                .collect()
        };
        Ok(EngineImage {
            schema: ENGINE_SNAPSHOT_SCHEMA,
            book_version: self.book.version,
            defs: Arc::clone(&self.defs),
            older_books,
            caps: owned(self.usage.all_caps(&self.book)),
            budgets: owned(self.usage.all_budgets(&self.book)),
            last_selected: self.usage.all_last_selected(&self.book),
            selection_stamp: self.selection_stamp,
            next_ping_id: self.next_ping_id,
            next_lead_id: self.next_lead_id,
            next_receipt_id: self.next_receipt_id,
            delivery_seq: sorted(&self.delivery_seq),
            auctions,
            deadlines: self.timers.clone(),
            deliveries: sorted(self.deliveries.iter()),
            lead_to_ping: sorted(self.lead_to_ping.iter()),
            closed: self.closed.iter().copied().collect(),
            tokens: self.tokens.clone(),
            fingerprints: self.fingerprints.clone(),
            contacts: self.contacts.clone(),
            ledger: self.ledger.clone(),
        })
    }

    /// The engine's state as snapshot bytes: [`Engine::snapshot_image`], encoded.
    pub fn snapshot_state(&self) -> Result<Vec<u8>, EngineSnapshotError> {
        self.snapshot_image()?.encode()
    }

    /// An engine with the state of `bytes` (from [`Engine::snapshot_state`]) and `config`:
    /// the books are compiled again from their definitions, and the caches start empty.
    pub fn from_snapshot(config: EngineConfig, bytes: &[u8]) -> Result<Self, EngineSnapshotError> {
        let image: EngineImage =
            serde_json::from_slice(bytes).map_err(|error| refuse(error.to_string()))?;
        Self::from_image(config, image)
    }

    /// An engine with the state of `image` and `config` (see [`Engine::from_snapshot`]).
    pub fn from_image(
        config: EngineConfig,
        image: EngineImage,
    ) -> Result<Self, EngineSnapshotError> {
        if image.schema != ENGINE_SNAPSHOT_SCHEMA {
            return Err(refuse(format!(
                "state schema {} is not this build's {ENGINE_SNAPSHOT_SCHEMA}",
                image.schema
            )));
        }
        let mut engine = Self::new(config);
        let compile = |defs: &BookDefs, version: u64| {
            Book::compile(defs, version).map_err(|error| {
                refuse(format!("book version {version} does not compile: {error}"))
            })
        };
        if image.book_version != 0 {
            let book = compile(&image.defs, image.book_version)?;
            engine.install_book(book, image.defs);
        }
        // Older versions auctions still hold, each compiled once and shared.
        let mut books: FxHashMap<u64, Arc<Book>> = FxHashMap::default();
        books.insert(engine.book.version, Arc::clone(&engine.book));
        for (version, defs) in image.older_books {
            if books.contains_key(&version) {
                return Err(refuse(format!("book version {version} is listed twice")));
            }
            let book = Arc::new(compile(&defs, version)?);
            engine.retired_defs.push((Arc::downgrade(&book), defs));
            books.insert(version, book);
        }
        engine.usage = Usage::restore(&engine.book, image.caps, image.budgets, image.last_selected);
        engine.selection_stamp = image.selection_stamp;
        engine.next_ping_id = image.next_ping_id;
        engine.next_lead_id = image.next_lead_id;
        engine.next_receipt_id = image.next_receipt_id;
        engine.delivery_seq = image.delivery_seq.into_iter().collect();
        engine.auctions = GrowingMap::with_capacity_and_hasher(image.auctions.len(), FxBuildHasher);
        for (ping_id, version, mut auction) in image.auctions {
            let Some(book) = books.get(&version) else {
                return Err(refuse(format!(
                    "auction {ping_id} holds book version {version}, which the snapshot lacks"
                )));
            };
            auction.book = Arc::clone(book);
            if engine.auctions.insert(ping_id, Box::new(auction)).is_some() {
                return Err(refuse(format!("auction {ping_id} is listed twice")));
            }
        }
        engine.timers = image.deadlines;
        engine.deliveries = map_of(image.deliveries);
        engine.lead_to_ping = map_of(image.lead_to_ping);
        image
            .closed
            .into_iter()
            .for_each(|closed| engine.closed.push_back(closed));
        engine.tokens = image.tokens;
        engine.fingerprints = image.fingerprints;
        engine.contacts = image.contacts;
        engine.ledger = image.ledger;
        Ok(engine)
    }
}
