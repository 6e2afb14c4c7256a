//! The sans-IO auction engine: the book of sellers, buyers and campaigns, the territory index,
//! filters, schedules, caps and budgets, ping-tree selection, exclusive and shared sales,
//! cascade and fallbacks, pre-ping checks and duplicate detection.
//!
//! # Shape
//!
//! The engine is a state machine in the style of quinn-proto: the caller hands it inputs through
//! `handle_*` methods, each with the current time (`now`, microseconds since the Unix epoch), and
//! takes its outputs back. It never reads a clock, opens a socket or file, or starts a thread;
//! randomness comes from a seed given at construction and the auction's own id, so the same
//! inputs always give the same outputs, byte for byte.
//!
//! Every change of state is an [`events::Event`] value. `handle_*` decides, turns the decision
//! into events, and applies them with [`Engine::apply`], the only function that mutates state.
//! Replaying the same events (from the journal) through `apply` rebuilds the same state.
//!
//! # Code map
//!
//! - [`types`]: ids, dense indexes and the engine's reason codes for exclusions.
//! - [`geo`]: the embedded US ZIP table (centroids and states) and great-circle distance.
//! - [`territory`]: the territory index: from (vertical, country, postal code) to the campaigns
//!   whose include rules match and no exclude rule does, without scanning the book.
//! - [`clock`]: a buyer's local time from `now` and its IANA time zone (DST-correct), and the
//!   keys of the local hour, day, week and month that caps reset on.
//! - [`schedule`]: weekly open hours.
//! - [`caps`]: lead and money counters per period with reservations: reserve, commit, release.
//! - [`filters`]: compiled attribute predicates.
//! - [`preping`]: the checks a lead passes before any buyer sees it.
//! - [`dedupe`]: retried pings, repeated consumers, and what each buyer bought before.
//! - [`growing_map`] and [`chunked_queue`]: the hash map and the queue the duplicate tables
//!   use, which grow without copying themselves whole inside one ping.
//! - [`book`]: the compiled, immutable book snapshot built from admin definitions.
//! - [`availability`]: the book's bitsets over its campaigns (active, sale modes, each
//!   listing seller's admitted buyers), ANDed with the territory's matches 64 at a time.
//! - [`usage`]: cap and budget counters and round-robin stamps, dense by the current book's
//!   indexes and carried across snapshots by id.
//! - [`auction`]: ranking bids within a ping tree's tiers; exclusive or shared.
//! - [`events`]: every state change as a value.
//! - [`machine`]: the state machine that ties them together: [`machine::Engine`].

pub mod auction;
pub mod availability;
pub mod book;
pub mod caps;
pub mod chunked_queue;
pub mod clock;
pub mod dedupe;
pub mod events;
pub mod filters;
pub mod geo;
pub mod growing_map;
pub mod machine;
pub mod preping;
pub mod schedule;
pub mod territory;
pub mod types;
pub mod usage;
