//! Engine-state snapshots: the whole state the events built, as bytes, and an engine loaded
//! back from them.
//!
//! A snapshot holds exactly what [`Engine::state_digest`] covers, plus the indexes the digest
//! leaves out because they follow from it (deadlines): the definitions of the current book and
//! of each older version an auction in memory still holds, cap and budget counters and
//! round-robin stamps by id, the id counters, every auction in memory, the delivery numbers,
//! retry tokens, contact history and ledger totals. Caches (compiled books, zone clocks,
//! headroom memos) are rebuilt on load, and requests waiting for an answer are not state: they
//! die with their connections.
//!
//! The bytes are JSON (`protocol-spec/journal.md`, "Snapshot state"), in the vocabulary of the
//! journal's own payloads, with every map written in key order: the same state always gives
//! the same bytes, and an auditor's reader needs nothing the journal did not already require.
//! Loading then replaying the records after the snapshot gives the state of replaying the
//! whole journal; `tests/engine_snapshot.rs` checks it digest for digest.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::{Auction, Engine, EngineConfig, LedgerTotals};
use crate::engine::book::{Book, BookDefs};
use crate::engine::caps::CapCounters;
use crate::engine::dedupe::{ContactHistory, PingTokens};
use crate::engine::events::{LeadId, PingId};
use crate::engine::types::{BuyerId, CampaignId, TimeUs};
use crate::engine::usage::Usage;

/// The layout version of a snapshot's state; a reader refuses any other.
pub const ENGINE_SNAPSHOT_SCHEMA: u16 = 1;

/// Why snapshot bytes could not become an engine.
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

/// A snapshot's state as written (borrowing the engine's).
#[derive(Serialize)]
struct StateOut<'a> {
    schema: u16,
    book_version: u64,
    defs: &'a BookDefs,
    older_books: Vec<(u64, &'a BookDefs)>,
    caps: Vec<(CampaignId, &'a CapCounters)>,
    budgets: Vec<(BuyerId, &'a CapCounters)>,
    last_selected: Vec<(CampaignId, u64)>,
    selection_stamp: u64,
    next_ping_id: PingId,
    next_lead_id: LeadId,
    next_receipt_id: u64,
    delivery_seq: Vec<(BuyerId, u64)>,
    auctions: Vec<(PingId, u64, &'a Auction)>,
    deadlines: &'a BTreeSet<(TimeUs, PingId)>,
    deliveries: Vec<((BuyerId, u64), PingId)>,
    lead_to_ping: Vec<(LeadId, PingId)>,
    closed: &'a VecDeque<(TimeUs, PingId)>,
    tokens: &'a PingTokens,
    fingerprints: &'a PingTokens,
    contacts: &'a ContactHistory,
    ledger: &'a LedgerTotals,
}

/// A snapshot's state as read: [`StateOut`]'s fields, owned.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateIn {
    schema: u16,
    book_version: u64,
    defs: BookDefs,
    older_books: Vec<(u64, BookDefs)>,
    caps: Vec<(CampaignId, CapCounters)>,
    budgets: Vec<(BuyerId, CapCounters)>,
    last_selected: Vec<(CampaignId, u64)>,
    selection_stamp: u64,
    next_ping_id: PingId,
    next_lead_id: LeadId,
    next_receipt_id: u64,
    delivery_seq: Vec<(BuyerId, u64)>,
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

/// A map's entries in key order, so that the bytes do not depend on hashing.
fn sorted<K: Ord + Copy, V: Copy>(map: &FxHashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.iter().map(|(k, v)| (*k, *v)).collect();
    entries.sort_unstable_by_key(|&(k, _)| k);
    entries
}

impl Engine {
    /// The engine's state as snapshot bytes. Take it between two inputs, once every event
    /// polled so far is in the journal: the snapshot then stands for the journal up to its
    /// last record. Refused while events wait to be polled (the journal does not have them).
    pub fn snapshot_state(&self) -> Result<Vec<u8>, EngineSnapshotError> {
        if !self.events.is_empty() {
            return Err(refuse(format!(
                "{} events wait to be polled and journaled; a snapshot is taken after them",
                self.events.len()
            )));
        }
        let older: Vec<(u64, &BookDefs)> = {
            let mut older: Vec<(u64, &BookDefs)> = self
                .retired_defs
                .iter()
                .filter_map(|(book, defs)| Some((book.upgrade()?.version, defs.as_ref())))
                .collect();
            older.sort_unstable_by_key(|&(version, _)| version);
            older
        };
        let mut auctions: Vec<(PingId, u64, &Auction)> = self
            .auctions
            .iter()
            .map(|(&ping_id, auction)| (ping_id, auction.book.version, auction.as_ref()))
            .collect();
        auctions.sort_unstable_by_key(|&(ping_id, _, _)| ping_id);
        if let Some(&(ping_id, version, _)) = auctions.iter().find(|&&(_, version, _)| {
            version != self.book.version && older.binary_search_by_key(&version, |o| o.0).is_err()
        }) {
            return Err(refuse(format!(
                "auction {ping_id} holds book version {version}, whose definitions are gone"
            )));
        }
        let state = StateOut {
            schema: ENGINE_SNAPSHOT_SCHEMA,
            book_version: self.book.version,
            defs: &self.defs,
            older_books: older,
            caps: self.usage.all_caps(&self.book),
            budgets: self.usage.all_budgets(&self.book),
            last_selected: self.usage.all_last_selected(&self.book),
            selection_stamp: self.selection_stamp,
            next_ping_id: self.next_ping_id,
            next_lead_id: self.next_lead_id,
            next_receipt_id: self.next_receipt_id,
            delivery_seq: sorted(&self.delivery_seq),
            auctions,
            deadlines: &self.timers,
            deliveries: sorted(&self.deliveries),
            lead_to_ping: sorted(&self.lead_to_ping),
            closed: &self.closed,
            tokens: &self.tokens,
            fingerprints: &self.fingerprints,
            contacts: &self.contacts,
            ledger: &self.ledger,
        };
        serde_json::to_vec(&state).map_err(|error| refuse(error.to_string()))
    }

    /// An engine with the state of `bytes` (from [`Engine::snapshot_state`]) and `config`:
    /// the books are compiled again from their definitions, and the caches start empty.
    pub fn from_snapshot(config: EngineConfig, bytes: &[u8]) -> Result<Self, EngineSnapshotError> {
        let state: StateIn =
            serde_json::from_slice(bytes).map_err(|error| refuse(error.to_string()))?;
        if state.schema != ENGINE_SNAPSHOT_SCHEMA {
            return Err(refuse(format!(
                "state schema {} is not this build's {ENGINE_SNAPSHOT_SCHEMA}",
                state.schema
            )));
        }
        let mut engine = Self::new(config);
        let compile = |defs: &BookDefs, version: u64| {
            Book::compile(defs, version).map_err(|error| {
                refuse(format!("book version {version} does not compile: {error}"))
            })
        };
        if state.book_version != 0 {
            let book = compile(&state.defs, state.book_version)?;
            engine.install_book(book, state.defs);
        }
        // Older versions auctions still hold, each compiled once and shared.
        let mut books: FxHashMap<u64, Arc<Book>> = FxHashMap::default();
        books.insert(engine.book.version, Arc::clone(&engine.book));
        for (version, defs) in state.older_books {
            if books.contains_key(&version) {
                return Err(refuse(format!("book version {version} is listed twice")));
            }
            let book = Arc::new(compile(&defs, version)?);
            engine
                .retired_defs
                .push((Arc::downgrade(&book), Arc::new(defs)));
            books.insert(version, book);
        }
        engine.usage = Usage::restore(&engine.book, state.caps, state.budgets, state.last_selected);
        engine.selection_stamp = state.selection_stamp;
        engine.next_ping_id = state.next_ping_id;
        engine.next_lead_id = state.next_lead_id;
        engine.next_receipt_id = state.next_receipt_id;
        engine.delivery_seq = state.delivery_seq.into_iter().collect();
        engine.auctions.reserve(state.auctions.len());
        for (ping_id, version, mut auction) in state.auctions {
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
        engine.timers = state.deadlines;
        engine.deliveries = state.deliveries.into_iter().collect();
        engine.lead_to_ping = state.lead_to_ping.into_iter().collect();
        engine.closed = state.closed;
        engine.tokens = state.tokens;
        engine.fingerprints = state.fingerprints;
        engine.contacts = state.contacts;
        engine.ledger = state.ledger;
        Ok(engine)
    }
}
