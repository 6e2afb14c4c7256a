//! `pingpost-loadtest`: the bundled load generator for the pingpost exchange.
//!
//! # Code map
//!
//! - [`cli`]: the command line and its checks, into a [`cli::Config`].
//! - [`limits`]: every bound of the generator, with its reason.
//! - [`book`]: the generated book (`pingpost::bookgen`), its credentials, loading it over the
//!   admin protocol.
//! - [`rate`]: the open-loop schedule of intended send times and the pacer thread.
//! - [`seller`]: seller connections: pipelined pings and posts, tallied per connection.
//! - [`buyer`]: live buyers: answer latency, bids, no-bids, accepts and rejects.
//! - [`report`]: HDR percentiles, counts by reason code, the JSON report and the human table.
//! - [`daemon`]: `--spawn-daemon`: start `pingpost serve`, find its address, stop it.
//! - [`run`]: one run from start to report, and the sweep.
//! - [`fake_server`]: a stand-in exchange for the generator's own tests.
//!
//! # Invariants
//!
//! - Open-loop latency is measured from each request's intended send time, fixed before the
//!   run; nothing the generator or the exchange does can move it (coordinated omission).
//! - No lock on the request path: each connection tallies alone; tallies merge at the end.
//! - Every draw (leads, posts, bids, rejects, answer latencies) is a pure function of the seed
//!   and an index, so a run can be repeated.

pub mod book;
pub mod buyer;
pub mod cli;
pub mod daemon;
pub mod fake_server;
pub mod limits;
pub mod rate;
pub mod report;
pub mod run;
pub mod seller;
