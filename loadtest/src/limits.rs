//! Every bound of the load generator, each with the reason for its value.
//!
//! The daemon's own limits are in `pingpost::limits`; these bound the generator itself, so that
//! a typo on the command line fails with a sentence instead of exhausting the machine.

/// Seller connections one run may open. Ten thousand is beyond any realistic seller fleet on
/// one exchange, and each connection costs the generator a task, two buffers and a histogram.
pub const CONNECTIONS_MAX: u32 = 10_000;

/// Requests in flight per connection. The protocol's own default `in_flight_max` is 1,024 and
/// the client library never exceeds what the server announces, so a deeper pipe could not be
/// used anyway.
pub const IN_FLIGHT_MAX: u32 = 1_024;

/// The highest open-loop rate, pings per second. Ten million is far above what one machine's
/// loopback can carry; past it the pacer's integer schedule would still be exact, but the
/// number is certainly a typo.
pub const RATE_PER_S_MAX: u64 = 10_000_000;

/// The longest run, in seconds: a day. A soak test longer than that should be several runs
/// with their own reports.
pub const DURATION_S_MAX: u64 = 86_400;

/// The most pings one run may send: a day at a million per second.
pub const COUNT_MAX: u64 = 86_400_000_000;

/// Live buyer sessions one run may open; each is one connection and one task.
pub const LIVE_BUYERS_MAX: u32 = 10_000;

/// Campaigns in a generated book: the engine's benches go to 100k, and the book is generated
/// in memory before it is loaded.
pub const BOOK_CAMPAIGNS_MAX: usize = 1_000_000;

/// Sellers in a generated book.
pub const BOOK_SELLERS_MAX: usize = 10_000;

/// Admin requests in flight while a book loads: deep enough to hide the loopback round trip,
/// shallow enough that one slow campaign compile does not queue thousands behind it.
pub const ADMIN_PIPELINE_DEPTH: usize = 64;

/// Tickets (intended sends) one connection may have waiting for a free in-flight slot. When
/// the exchange falls this far behind the schedule the run is saturated; the pacer then waits,
/// and the lateness still shows in the latency because it is measured from the intended time.
pub const TICKET_BACKLOG_MAX: usize = 65_536;

/// How long after the last intended send the generator waits for answers still in flight.
/// Ten seconds is far beyond any seller deadline; what has not come back by then is counted as
/// unanswered instead of holding the report back forever.
pub const DRAIN_TIMEOUT_MS: u64 = 10_000;

/// Added to the lead's own `timeout_ms` to bound the wait for one answer: the exchange must
/// answer within the seller's deadline, and the generator gives it this much grace for the
/// loopback round trip and scheduling before it counts a timeout.
pub const REQUEST_GRACE_MS: u64 = 1_000;

/// How long a POST may take before the generator counts a timeout: the exchange may wait for a
/// live buyer's acceptance and cascade, each bounded by the buyer's `accept_within_ms` (at most
/// 10 s in generated books).
pub const POST_TIMEOUT_MS: u64 = 60_000;

/// How long a spawned daemon may take to print the address it bound: it may be recovering a
/// journal first.
pub const DAEMON_START_TIMEOUT_MS: u64 = 30_000;

/// How long a spawned daemon may take to shut down in order after SIGTERM before it is killed.
pub const DAEMON_STOP_TIMEOUT_MS: u64 = 10_000;

/// Lines of a spawned daemon's standard output read while looking for its address: a daemon
/// that prints its default book's credentials first still fits; one that prints forever is not
/// going to print the address.
pub const DAEMON_BANNER_LINES_MAX: usize = 10_000;

/// The largest latency the histograms record, in microseconds: one hour. Anything longer is
/// clamped to it (and still counted); HDR histograms need a fixed upper bound.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Significant decimal digits of the latency histograms: 3 gives 0.1 % precision at every
/// magnitude, the HdrHistogram default, at a few hundred KiB per histogram.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Steps of a `--sweep`: with the default 25 % growth, 40 steps span five orders of magnitude.
pub const SWEEP_STEPS_MAX: u32 = 40;

/// The largest per-step growth of a sweep, percent: ten times per step is already coarse.
pub const SWEEP_STEP_PCT_MAX: u32 = 900;

/// A sweep step is saturated when it achieves less than this share of the requested rate,
/// in percent (the definition).
pub const SWEEP_ACHIEVED_PCT_MIN: u64 = 95;

/// The largest simulated buyer answer latency, milliseconds: a buyer slower than a minute has
/// missed every deadline the exchange gives.
pub const BUYER_LATENCY_MS_MAX: u64 = 60_000;

/// Distinct reason codes a report keeps per table. Codes are an open `u16` set, so a broken
/// peer could send thousands; beyond this many the rest are counted under `OTHER`.
pub const REASON_CODES_MAX: usize = 256;

/// Basis points in one: shares on the command line are kept as integer basis points, so the
/// draws are exact and reproducible.
pub const BPS_PER_ONE: u32 = 10_000;
