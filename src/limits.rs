//! Every limit of the protocol and the daemon, each with the reason for its value.
//!
//! A limit lives here and nowhere else, so that a reviewer can see at once what bounds the
//! daemon's memory and time, and so that the spec (`protocol-spec/README.md`, section 9) and the
//! code name the same numbers.

/// Protocol versions this build speaks. Login negotiates the highest version in both ranges.
pub const PROTOCOL_VERSION_MIN: u8 = 1;
/// See [`PROTOCOL_VERSION_MIN`].
pub const PROTOCOL_VERSION_MAX: u8 = 1;

/// Bytes of the length prefix that starts every frame.
pub const FRAME_PREFIX_LEN: usize = 4;
/// Bytes of the header that follows the prefix: type (2), version (1), flags (1), correlation (8).
pub const FRAME_HEADER_LEN: usize = 12;
/// The largest `frame_length` (header + body) a peer may send. 256 KiB holds the largest admin
/// message we expect (a campaign with about 16k territory rules) while keeping a connection's
/// worst-case read buffer small; every latency-critical message is under 2 KiB.
pub const FRAME_LENGTH_MAX: u32 = 256 * 1024;

/// Unanswered requests a session may have at once (announced at login). Deep enough for a
/// seller to keep a 10 Gbit/s link busy with pipelined pings; small enough that one session's
/// backlog cannot hog the engine.
pub const IN_FLIGHT_MAX: u32 = 1024;

/// The largest money value on the wire, in minor units (10^12 cents = 10 billion dollars).
/// No single price or budget comes near it, and the sum of 18 million such values still fits in
/// a u64, so ledger arithmetic cannot overflow.
pub const MONEY_MAX: u64 = 1_000_000_000_000;

/// Attributes in one lead's map. Real verticals use 5 to 30 highlights.
pub const ATTRIBUTES_MAX: usize = 64;
/// Bytes of a symbol (vertical, attribute key, enum value).
pub const SYMBOL_LEN_MAX: usize = 32;
/// Bytes of a string attribute value.
pub const ATTRIBUTE_STRING_LEN_MAX: usize = 256;
/// Digits after the decimal point in a decimal attribute (10^9 keeps i64 mantissas meaningful).
pub const DECIMAL_SCALE_MAX: u8 = 9;
/// Bytes of a postal code: the longest national formats are 10 characters; 16 leaves room.
pub const POSTAL_CODE_LEN_MAX: usize = 16;
/// Buyers one shared (multisale) lead may be sold to. Consumers called by more than a handful
/// of companies stop answering; 8 is above every market's practice.
pub const SHARED_BUYERS_MAX: u8 = 8;

/// Bytes of a principal's secret in `LOGIN`.
pub const SECRET_LEN_MAX: usize = 128;
/// Bytes of the human-readable text in `ERROR`, `LOGIN_REJECTED` and `GOODBYE`.
pub const MESSAGE_TEXT_LEN_MAX: usize = 256;
/// Bytes of the client's self-description in `LOGIN`.
pub const CLIENT_NAME_LEN_MAX: usize = 64;
/// Bytes of a display name of a seller, buyer or campaign.
pub const NAME_LEN_MAX: usize = 64;

/// Territory rules in one campaign: a buyer listing every ZIP of a large metro area needs a few
/// thousand; 16,384 rules of five-digit codes still fit in one frame (about 180 KB). Rules with
/// longer codes fit fewer, and the encoder refuses a campaign that outgrows the frame.
pub const TERRITORY_RULES_MAX: usize = 16_384;
/// Attribute filters in one campaign.
pub const FILTERS_MAX: usize = 64;
/// Values in one `one_of` filter.
pub const FILTER_VALUES_MAX: usize = 64;
/// Weekly open-hour windows in one campaign schedule (several per day for split shifts).
pub const SCHEDULE_WINDOWS_MAX: usize = 64;
/// Tiers in one vertical's ping tree.
pub const TIERS_MAX: usize = 16;
/// Verticals a seller may sell, floors per seller, required attributes per vertical.
pub const VERTICALS_PER_SELLER_MAX: usize = 64;
/// Buyers on one seller's allow or block list.
pub const SELLER_BUYER_LIST_MAX: usize = 1024;
/// Counters and latency series in one `STATS` answer.
pub const STATS_COUNTERS_MAX: usize = 256;
/// See [`STATS_COUNTERS_MAX`].
pub const STATS_LATENCIES_MAX: usize = 64;
/// Events in one `TRACE` answer: a lead's life has tens of events; a cap keeps one answer in a
/// frame even when a lead was offered to many campaigns.
pub const TRACE_EVENTS_MAX: usize = 1024;
/// Exclusions an auction's in-memory trace lists one by one; the rest are summarized, one step
/// per reason with the count. At 10k campaigns an auction leaves out about 230 campaigns: kept
/// one by one for the retention time that is most of the engine's memory at full load (7 KB
/// an auction). The journal's trace lists every one.
pub const TRACE_EXCLUSIONS_LISTED_MAX: usize = 16;

/// Milliseconds a new connection has to complete `LOGIN`.
pub const LOGIN_TIMEOUT_MS: u32 = 5_000;
/// Heartbeat intervals the server accepts; a client's ask is clamped into this range.
pub const HEARTBEAT_INTERVAL_MIN_MS: u32 = 1_000;
/// See [`HEARTBEAT_INTERVAL_MIN_MS`].
pub const HEARTBEAT_INTERVAL_MAX_MS: u32 = 60_000;
/// The interval used when the client asks for 0.
pub const HEARTBEAT_INTERVAL_DEFAULT_MS: u32 = 5_000;
/// Silent intervals after which a peer is declared dead. Three tolerates one lost heartbeat
/// and one late one without false alarms.
pub const HEARTBEAT_MISSES_MAX: u32 = 3;
/// Milliseconds the sender of `GOODBYE` waits for `GOODBYE_ACK` before closing anyway.
pub const GOODBYE_TIMEOUT_MS: u32 = 5_000;

// Per-field maxima of the spec's message tables (protocol-spec/README.md, sections 2 and 5-7).

/// `contact.first_name`, `contact.last_name`: `str(64)`.
pub const PERSON_NAME_LEN_MAX: usize = 64;
/// `contact.phone`: `str(20)`; E.164 numbers have at most 15 digits plus `+`, 20 leaves room.
pub const PHONE_LEN_MAX: usize = 20;
/// `contact.email`: `str(254)`, the longest address SMTP paths allow (RFC 5321).
pub const EMAIL_LEN_MAX: usize = 254;
/// `contact.street`: `str(128)`.
pub const STREET_LEN_MAX: usize = 128;
/// `contact.city`: `str(64)`.
pub const CITY_LEN_MAX: usize = 64;
/// `contact.region`: `str(64)`.
pub const CONTACT_REGION_LEN_MAX: usize = 64;
/// `consent.certificate_id`: `str(256)`.
pub const CERTIFICATE_ID_LEN_MAX: usize = 256;
/// `consent.text_version`: `str(64)`.
pub const TEXT_VERSION_LEN_MAX: usize = 64;
/// `consent.user_agent`: `str(512)`; real user agents stay under 300 bytes.
pub const USER_AGENT_LEN_MAX: usize = 512;
/// `consent.page_url`: `str(512)`.
pub const PAGE_URL_LEN_MAX: usize = 512;
/// `buyer.time_zone`: `str(64)`; the longest IANA zone name is about 30 bytes.
pub const TIME_ZONE_LEN_MAX: usize = 64;
/// A territory rule's `region`: `str(8)` (state or region codes such as `CO`, `NSW`).
pub const TERRITORY_REGION_LEN_MAX: usize = 8;
/// One value of a `one_of` filter: `str(256)`, as long as a string attribute value can be.
pub const FILTER_VALUE_LEN_MAX: usize = 256;
/// The `name` of a `STATS` counter or latency series: `str(64)`.
pub const STATS_NAME_LEN_MAX: usize = 64;
/// The `detail` of a `TRACE` event: `str(256)`.
pub const TRACE_DETAIL_LEN_MAX: usize = 256;

/// The largest `margin_bps` (100 %), and the largest magnitude of a campaign's `adjust_bps`.
pub const BASIS_POINTS_MAX: u16 = 10_000;
/// `window.close_minute` is at most this many minutes after local midnight.
pub const MINUTES_PER_DAY: u16 = 1_440;

// The client library's own queues (src/client/).

/// Server events (offers, deliveries, notices) the client queues for the application before it
/// stops reading the socket. Deep enough to ride out a burst of offers while the application
/// prices the first ones; small enough that a stalled consumer holds at most this many leads in
/// memory, and the server sees a slow reader instead of the client growing without bound.
pub const CLIENT_INCOMING_QUEUE_LEN: usize = 1024;
/// Frames callers may queue for the client's I/O task before sending waits. The in-flight
/// semaphore already bounds requests; this bounds answers to the server and keeps one wakeup's
/// batch (and so one write) from growing without limit.
pub const CLIENT_COMMAND_QUEUE_LEN: usize = 1024;
/// The most in-flight requests a client allows itself, whatever the server announces: a bound on
/// the client's pending-request table even against a server that announces `u32::MAX`.
pub const CLIENT_IN_FLIGHT_MAX: u32 = 65_536;

// The daemon (src/server/).

/// The address `pingpost serve` listens on without configuration: loopback only, so that a
/// newcomer's first run is not reachable from the network.
pub const LISTEN_ADDR_DEFAULT: &str = "127.0.0.1:7400";
/// Open connections the daemon serves at once; one more is told `TOO_MANY_CONNECTIONS` and
/// closed. Aggregators hold tens of persistent connections and live buyers one each; 4,096
/// leaves room for thousands of buyers while bounding the memory of per-connection buffers
/// (each session's queue and read buffer) to well under a gigabyte.
pub const CONNECTIONS_MAX: usize = 4_096;
/// Frames queued for one session's socket. A session that lets this many pile up is not
/// reading; it is closed with `SLOW_CONSUMER` instead of growing memory or holding up the
/// exchange thread. Deep enough for a full pipeline of answers (`IN_FLIGHT_MAX`) and a burst of
/// offers behind them.
pub const SESSION_QUEUE_LEN: usize = 4_096;
/// Bytes a session reads from its socket per call: a batch of pipelined pings (about 150 bytes
/// each) in one system call.
pub const SESSION_READ_CHUNK_LEN: usize = 64 * 1024;
/// Frames a session writer encodes before it writes them in one system call: batching answers
/// to a pipelined burst, bounded so that one writer cannot hold a huge buffer.
pub const SESSION_WRITE_BATCH_MAX: usize = 256;
/// Offers and deliveries a session remembers as awaiting the buyer's answer, to tell a real
/// answer from an `UNEXPECTED_MESSAGE`. Beyond it the oldest are forgotten (their auctions are
/// over long before): a buyer flooded with more unanswered offers than this is failing anyway.
pub const SESSION_SERVER_REQUESTS_MAX: usize = 65_536;
/// Commands the sessions may queue for the exchange thread. When full, a request is answered
/// `OVERLOADED` at once rather than queued: a seller with a deadline is better served by a fast
/// refusal than by a ping that waits behind a backlog it cannot see.
pub const EXCHANGE_QUEUE_LEN: usize = 65_536;
/// Commands the exchange thread takes per turn before it hands events to the journal and
/// releases durable outputs: large enough to batch a burst, small enough that releases are not
/// delayed behind a long backlog.
pub const EXCHANGE_COMMANDS_PER_TURN_MAX: usize = 1_024;
/// Answers a live buyer must have given before its answer time is trusted to skip it as too
/// slow: one slow first answer (a cold start) does not exclude a buyer.
pub const BUYER_LATENCY_SAMPLES_MIN: u32 = 8;
/// A buyer skipped as too slow is still asked once per this many offers, so that a buyer that
/// got faster is noticed.
pub const OFFER_PROBE_EVERY: u32 = 16;
/// Milliseconds the daemon waits at shutdown for auctions in flight to be answered (their
/// bidding ends within the sellers' deadlines, which are seconds at most) before it flushes
/// the journal and exits regardless.
pub const SHUTDOWN_DRAIN_MS: u32 = 10_000;
/// Stored deliveries (rule-only buyers that pick up leads when they connect) kept in memory per
/// buyer. A buyer that stays away longer than this many leads gets the older ones read back
/// from the journal when it reconnects, so memory stays bounded (about 1 KB a delivery: 64 MB
/// for one absent buyer at most) however long a buyer is away, and nothing is lost.
pub const OUTBOX_STORED_PER_BUYER_MAX: usize = 65_536;

// The auction engine (src/engine/).

/// Milliseconds a seller has to post after its `PING_RESULT`. Sellers post within seconds of
/// the consumer's form submission; a minute covers slow form flows without holding buyers'
/// reservations (and so their caps) for long.
pub const POST_WINDOW_MS: u32 = 60_000;
/// Milliseconds the exchange keeps for itself out of a seller's deadline: bids are taken until
/// the deadline less this, so that resolving and answering still lands in time.
pub const DEADLINE_MARGIN_MS: u32 = 5;
/// The shortest ping deadline accepted: below it no live buyer could answer, and fixed-price
/// books need no deadline at all.
pub const PING_TIMEOUT_MIN_MS: u32 = 10;
/// Milliseconds an ended auction stays in memory, for retried pings, late acknowledgements and
/// traces. The journal keeps every auction forever; memory keeps only what live traffic needs:
/// sellers retry within seconds, buyers acknowledge within their `accept_within_ms`.
pub const AUCTION_RETENTION_MS: u32 = 60 * 1_000;
/// Ended auctions held in memory at most, whatever their age: at 50,000 pings a second a minute
/// of retention is three million auctions, so a count bound keeps memory flat under any load.
pub const AUCTIONS_CLOSED_MAX: usize = 1_000_000;

// Pre-ping, duplicates, selection, time and territory (src/engine/).

/// How long a seller's `client_token` maps to its first ping: 24 hours. Sellers retry on a
/// timeout or a dropped connection within seconds or minutes, and batch systems that resend a
/// failed run do so the same day; a day covers every sane retry policy, while the bound below
/// keeps the table small whatever the window.
pub const PING_TOKEN_WINDOW_US: u64 = 24 * 60 * 60 * 1_000_000;

/// Tokens remembered at most, across all sellers (about 100 bytes each with the map's and the
/// queue's slack: about 100 MB at the bound). At 1,000 pings a second with tokens this keeps
/// the last 17 minutes; at 100 a second, nearly three hours: far beyond the minutes in which
/// retries come. Beyond it the oldest tokens go first, so only the staler retries are lost.
pub const PING_TOKENS_MAX: usize = 1 << 20;

/// A consumer pinged again within this window is a `DUPLICATE_LEAD` (304): one hour. It
/// catches double-submitted forms, resubmissions and a seller re-pinging to shop for a better
/// price, which all happen within minutes, and the same consumer arriving from two sources in
/// one session. It is short enough that an unsold lead may be offered again later in the day,
/// when other buyers' schedules open. Buying the same consumer twice is what buyers fear, and
/// the purchase look-back (`ContactHistory::bought_within`) guards that for weeks.
pub const DUPLICATE_LEAD_WINDOW_US: u64 = 60 * 60 * 1_000_000;

/// Contact hashes remembered for the duplicate check (about 100 bytes each with slack: about
/// 100 MB at the bound). A lead usually carries two hashes, so this holds the last hour of
/// about 145 pings a second; at higher rates the window shrinks, letting some duplicates
/// through rather than growing.
pub const PINGED_CONTACTS_MAX: usize = 1 << 20;

/// The longest purchase look-back supported: 90 days. A campaign's longer
/// `duplicate_lookback_s` is capped to it. A quarter is the longest exclusivity the industry
/// sells (30 days is common, 90 the longest in practice), and purchases older than this are
/// forgotten, so it bounds how long a purchase is kept.
pub const PURCHASE_LOOKBACK_MAX_US: u64 = 90 * 24 * 60 * 60 * 1_000_000;

/// Contact hashes with purchases remembered (about 150 bytes each with one buyer and slack:
/// about 300 MB at the bound). Two hashes per sold lead, so this holds 90 days of about 11,600
/// sales a day; above that, the oldest purchases are forgotten before 90 days.
pub const PURCHASED_CONTACTS_MAX: usize = 1 << 21;

/// Buyers remembered per contact hash. A shared sale goes to at most `SHARED_BUYERS_MAX` (8)
/// buyers, so 16 holds two full shared sales of one consumer; when full, the buyer that bought
/// longest ago is forgotten, being the one whose look-back has most likely passed.
pub const BUYERS_PER_CONTACT_MAX: usize = 16;

/// How far in the future a consent's `consented_at` may be before it is refused: sellers'
/// clocks drift, and a capture service's timestamp can be seconds ahead of ours. Five minutes
/// absorbs any NTP-synced clock; a consent later than that was not given before the post.
pub const CONSENT_CLOCK_SKEW_MAX_US: u64 = 5 * 60 * 1_000_000;

/// The most candidates one selection ranks. A ZIP covered by state- or country-wide campaigns
/// can match thousands of a large book's campaigns, so the bound is generous; it exists so that
/// one auction's worst case stays in the low milliseconds (about 30 ns per candidate measured)
/// and its runners-up list stays a bounded record, and so that a candidate's position fits the
/// `u32` the selector keeps. Exceeding it is the engine's bug, and asserted.
pub const AUCTION_CANDIDATES_MAX: usize = 65_536;

/// Runners-up an auction keeps for its cascade (primaries and fallbacks each), best first.
/// Each step of a cascade waits for a buyer's answer (a live buyer's accept window, seconds),
/// so 32 steps already outlast the minutes in which a consumer still expects a call; beyond
/// them the lead is held back unsold. The bound keeps an auction's record small and lets
/// selection rank only the best few dozen of hundreds of candidates instead of sorting them all.
pub const AUCTION_RUNNERS_UP_MAX: usize = 32;

/// The latest instant whose local time is computed exactly: jiff's largest timestamp,
/// 9999-12-30T22:00:00Z, the last instant at which every offset still gives a date jiff can
/// represent. A later `now` (a corrupt clock, not a real one) is read as this instant, so keys
/// stay well inside `u32` and the arithmetic below cannot overflow.
pub const LOCAL_TIME_US_MAX: u64 = 253_402_207_200_000_000;

/// The widest radius rule, in miles. Buyers target metro areas (10–100 miles) and at most a
/// region (a few hundred); 500 miles covers that, while bounding the grid cells one rule may
/// touch (about 2,000 at Alaskan latitudes, before keeping only cells that hold a ZIP) and so
/// the index's build time and memory per rule.
pub const TERRITORY_RADIUS_MILES_MAX: u16 = 500;

// The journal (src/journal/).

/// Bytes a journal segment grows to before the writer starts the next one. 64 MiB is a few
/// minutes of records at full load (about 1 KB a record): recovery reads one segment into
/// memory at a time, so this bounds its buffer, and an auditor can copy or hash one segment in
/// well under a second. A single batch larger than this still goes whole into a fresh segment.
pub const JOURNAL_SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Bytes of one record's payload (an event's JSON). The largest event is loading a whole book
/// as one admin batch: bookgen's books take about 2.3 KB of JSON a campaign (23.5 MB for 10k
/// campaigns), so a 100k-campaign book is about 235 MB and 512 MiB holds twice that, while a
/// corrupt length still cannot ask a reader for gigabytes. Auction events are under 13 KB.
pub const JOURNAL_RECORD_BYTES_MAX: u32 = 512 * 1024 * 1024;

/// Records in one batch (one hash-chain link, one write, one sync). The writer closes a batch
/// at this count even if more records wait, so one commit's latency and buffer stay bounded;
/// 4,096 records of about 1 KB is 4 MB, one large sequential write.
pub const JOURNAL_BATCH_RECORDS_MAX: u32 = 4_096;

/// Bytes of records in one batch before the writer closes it (a record larger than this gets
/// a batch of its own). 8 MiB keeps a batch one sequential write that a disk completes in a few
/// milliseconds, and bounds what the writer buffers before it writes.
pub const JOURNAL_BATCH_BYTES_MAX: u32 = 8 * 1024 * 1024;

/// Records the engine thread may queue for the journal writer before `append` blocks. Deep
/// enough to hold several full batches while one is being synced (a sync takes milliseconds,
/// and the engine produces tens of records a millisecond at peak), so the engine never waits
/// in steady state; small enough that a stalled disk stops the engine within about 16 MB of
/// unwritten events instead of letting memory grow.
pub const JOURNAL_QUEUE_LEN: usize = 16_384;

/// Snapshots kept in the journal directory. Recovery needs only the newest valid one; two
/// older ones are a fallback if the newest turns out damaged, and each costs only disk.
pub const JOURNAL_SNAPSHOTS_KEPT: usize = 3;

/// Records between two snapshots of the daemon's state, by default (`snapshot_every_records`):
/// a restart loads the newest snapshot and replays at most this many records after it, a few
/// seconds' work. A snapshot serializes the whole engine on the exchange thread, which stalls
/// auctions for a time that grows with the auctions in memory (see BENCHMARKS.md), so it is
/// not taken often; the daemon also takes one at a clean shutdown.
pub const SNAPSHOT_EVERY_RECORDS_DEFAULT: u64 = 2_000_000;

/// Bytes of one snapshot's state. Engine state at the bounds in this file (dedupe tables,
/// auctions in memory) is a few GB at most; 16 GiB keeps a corrupt length field from making a
/// reader try to allocate the whole address space.
pub const JOURNAL_SNAPSHOT_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;
