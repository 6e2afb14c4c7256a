//! The exchange thread: the one owner of the engine.
//!
//! Sessions hand it commands through a bounded channel; it feeds them to the engine with the
//! time, sends every event to the journal, and routes the engine's outputs to sessions through
//! their bounded queues with `try_send`, so no socket and no disk can block it:
//!
//! - a session whose queue is full is a slow reader: it is cancelled (closed with
//!   `SLOW_CONSUMER`) rather than allowed to grow memory or stall the auctions;
//! - outputs that hand over a consumer's contact (`LEAD_DELIVERY`) or acknowledge a sale
//!   (`POST_RESULT`) wait until the journal reports their events durable; everything else
//!   leaves at once;
//! - live buyers without a session, or whose recent answers were slower than the time an
//!   offer leaves them, are answered for at once (`NO_BID` with `BUYER_NOT_CONNECTED` or
//!   `BUYER_TOO_SLOW`), so that the auction does not wait for a bid that cannot come.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::Credentials;
use super::outbox::{Outbox, PendingDelivery};
use super::snapshot::DaemonImage;
use super::stats::{self, ExchangeCounters, LatencyHistogram, SessionCounters};
use crate::engine::book::AdminChange;
use crate::engine::events::{Event, PingId};
use crate::engine::machine::{Engine, Output, RequestTag};
use crate::engine::types::{BuyerId, CampaignId, TimeUs};
use crate::limits::{
    BUYER_LATENCY_SAMPLES_MIN, EXCHANGE_COMMANDS_PER_TURN_MAX, OFFER_PROBE_EVERY, SHUTDOWN_DRAIN_MS,
};
use crate::protocol::{
    AdminOk, Consent, Contact, DeliveryAck, DeliveryMode, ErrorCode, Message, Ping, Role, Stats,
    TraceRequest,
};

/// What the journal offers the exchange thread. The journal's writer runs on its own thread;
/// `append` only hands the event over.
pub trait EventLog: Send {
    /// Hands one event to the journal and returns the log sequence number it will have.
    fn append(&mut self, event: Event) -> Result<u64, String>;
    /// The highest sequence number whose record is durable under the fsync policy.
    fn durable_lsn(&self) -> u64;
    /// A fatal journal error, if one happened: the daemon must stop.
    fn fatal(&self) -> Option<String>;
    /// Hands the daemon's state after record `lsn` (the last appended) to the journal, which
    /// encodes and writes it as a snapshot in the background; `false` if it was not taken
    /// because the previous one is still being written. A snapshot that fails is said and
    /// skipped: the records are all in the journal.
    fn snapshot(&mut self, lsn: u64, state: DaemonImage) -> Result<bool, String>;
    /// Writes everything handed over and syncs it; called once, at shutdown.
    fn close(&mut self) -> Result<(), String>;
}

/// A session's identity inside the daemon.
pub type SessionId = u64;

/// What goes to a session's writer.
#[derive(Debug)]
pub enum Outbound {
    /// The answer to one of the client's requests (it frees an in-flight slot).
    Response {
        correlation_id: u64,
        message: Message<'static>,
    },
    /// A notice or a request of the server's (offer, delivery, won, lost). The writer gives it
    /// a correlation id from the server's half.
    Notice { message: Message<'static> },
    /// Deliveries of `buyer` with sequence numbers `after + 1 ..= through`, too old to be kept
    /// in memory: the session's writer reads them back from the journal and sends them.
    JournalReplay {
        buyer: BuyerId,
        after: u64,
        through: u64,
    },
    /// A frame the session answers itself (heartbeat ack, protocol or role error, goodbye ack):
    /// it frees no in-flight slot.
    Control {
        correlation_id: u64,
        message: Message<'static>,
    },
}

/// A request a session passes on; the session has checked the role already.
#[derive(Debug)]
pub enum Request {
    Ping(Ping<'static>),
    Post {
        ping_id: PingId,
        contact: Contact<'static>,
        consent: Consent<'static>,
    },
    DirectPost {
        ping: Ping<'static>,
        contact: Contact<'static>,
        consent: Consent<'static>,
    },
    Bid {
        auction_id: PingId,
        campaign_id: CampaignId,
        price: Option<u64>,
        reason: ErrorCode,
    },
    DeliveryAck(DeliveryAck),
    Admin(AdminChange),
    Stats,
    Trace(TraceRequest),
}

/// What sessions send the exchange thread.
#[derive(Debug)]
pub enum Command {
    /// A session logged in.
    Attach {
        session: SessionId,
        role: Role,
        principal: u64,
        last_delivery_seq: u64,
        queue: mpsc::Sender<Outbound>,
        cancel: CancellationToken,
    },
    /// A session ended.
    Detach { session: SessionId },
    Request {
        session: SessionId,
        correlation_id: u64,
        received: Instant,
        request: Request,
    },
    /// Stop: answer what is in flight, flush the journal, end the thread.
    Shutdown,
}

struct SessionEntry {
    role: Role,
    principal: u64,
    queue: mpsc::Sender<Outbound>,
    cancel: CancellationToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Ping,
    Post,
}

struct OpenRequest {
    session: SessionId,
    correlation_id: u64,
    received: Instant,
    kind: RequestKind,
}

/// An output held until the journal has made its events durable.
struct Gated {
    lsn: u64,
    output: Output,
}

/// A buyer's answer times, for skipping buyers too slow for an offer's time.
#[derive(Debug, Default, Clone, Copy)]
struct AnswerTimes {
    /// Exponentially weighted mean answer time, microseconds.
    mean_us: u64,
    samples: u32,
    skipped_since_probe: u32,
}

/// How the exchange thread ended.
#[derive(Debug)]
pub enum ExchangeEnd {
    /// Shut down in order; the journal is flushed.
    Clean,
    /// The journal failed: acknowledged work may depend on records that are not durable, so
    /// the daemon must stop and recovery take over.
    JournalFailed(String),
}

/// The exchange thread's state.
pub struct Exchange {
    engine: Engine,
    log: Box<dyn EventLog>,
    commands: Receiver<Command>,
    durable_wake: Receiver<u64>,
    credentials: Credentials,
    session_counters: Arc<SessionCounters>,
    sessions: FxHashMap<SessionId, SessionEntry>,
    buyer_sessions: FxHashMap<BuyerId, SessionId>,
    open_requests: FxHashMap<RequestTag, OpenRequest>,
    next_tag: RequestTag,
    gated: VecDeque<Gated>,
    last_lsn: u64,
    /// The LSN of the last snapshot taken (or loaded at start).
    snapshot_lsn: u64,
    snapshot_every_records: u64,
    outbox: Outbox,
    /// When each live offer was sent, by auction: answer times come from these.
    offers_sent_at: FxHashMap<PingId, Vec<(CampaignId, BuyerId, Instant)>>,
    answer_times: FxHashMap<BuyerId, AnswerTimes>,
    counters: ExchangeCounters,
    ping_latency: LatencyHistogram,
    post_latency: LatencyHistogram,
    engine_ping_latency: LatencyHistogram,
    clock: Clock,
    started: Instant,
    shutting_down: bool,
    /// Admin changes taken this turn and not applied yet: consecutive changes compile the book
    /// once (a book of 10k campaigns takes tens of milliseconds to compile).
    pending_admin: Vec<(SessionId, u64, AdminChange)>,
}

/// Wall-clock microseconds that never go backwards within a run, nor below the last event
/// the journal holds.
struct Clock {
    wall_at_start_us: u64,
    started: Instant,
    floor_us: u64,
}

impl Clock {
    fn new(floor_us: u64) -> Self {
        let wall_at_start_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Self {
            wall_at_start_us,
            started: Instant::now(),
            floor_us,
        }
    }

    fn now_us(&mut self) -> TimeUs {
        let elapsed = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let now = self
            .wall_at_start_us
            .saturating_add(elapsed)
            .max(self.floor_us);
        self.floor_us = now;
        now
    }

    fn instant_of(&self, at_us: TimeUs) -> Instant {
        let offset = at_us.saturating_sub(self.wall_at_start_us);
        self.started + Duration::from_micros(offset)
    }
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("sessions", &self.sessions.len())
            .field("open_requests", &self.open_requests.len())
            .field("gated", &self.gated.len())
            .field("last_lsn", &self.last_lsn)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ExchangeParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeParts")
            .field("last_lsn", &self.last_lsn)
            .finish_non_exhaustive()
    }
}

/// Everything the exchange thread starts with.
pub struct ExchangeParts {
    pub engine: Engine,
    pub log: Box<dyn EventLog>,
    pub commands: Receiver<Command>,
    pub durable_wake: Receiver<u64>,
    pub credentials: Credentials,
    pub session_counters: Arc<SessionCounters>,
    pub outbox: Outbox,
    /// The time of the last recovered event: the clock never goes below it.
    pub clock_floor_us: u64,
    /// The LSN of the last recovered record.
    pub last_lsn: u64,
    /// The LSN of the snapshot loaded at start (0: none).
    pub snapshot_lsn: u64,
    /// Journal records between two snapshots; 0: only at a clean shutdown.
    pub snapshot_every_records: u64,
}

impl Exchange {
    pub fn new(parts: ExchangeParts) -> Self {
        parts.credentials.sync_book(parts.engine.definitions());
        Self {
            engine: parts.engine,
            log: parts.log,
            commands: parts.commands,
            durable_wake: parts.durable_wake,
            credentials: parts.credentials,
            session_counters: parts.session_counters,
            sessions: FxHashMap::default(),
            buyer_sessions: FxHashMap::default(),
            open_requests: FxHashMap::default(),
            next_tag: 0,
            gated: VecDeque::new(),
            last_lsn: parts.last_lsn,
            snapshot_lsn: parts.snapshot_lsn,
            snapshot_every_records: parts.snapshot_every_records,
            outbox: parts.outbox,
            offers_sent_at: FxHashMap::default(),
            answer_times: FxHashMap::default(),
            counters: ExchangeCounters::default(),
            ping_latency: LatencyHistogram::new("ping_to_result"),
            post_latency: LatencyHistogram::new("post_to_result"),
            engine_ping_latency: LatencyHistogram::new("engine_ping"),
            clock: Clock::new(parts.clock_floor_us),
            started: Instant::now(),
            shutting_down: false,
            pending_admin: Vec::new(),
        }
    }

    /// Runs until shutdown or a journal failure.
    pub fn run(mut self) -> ExchangeEnd {
        let mut drain_until: Option<Instant> = None;
        loop {
            if let Some(error) = self.log.fatal() {
                return self.fail(error);
            }
            let deadline = self
                .engine
                .poll_timeout()
                .map(|at| self.clock.instant_of(at));
            let wait_until = [deadline, drain_until].into_iter().flatten().min();
            let mut woke = self.wait(wait_until);
            // Take whatever else is queued, up to a bound, so that a burst costs one journal
            // hand-over and one pass over the gated outputs.
            let mut taken = 0;
            while let Some(command) = woke.take() {
                if self.handle(command) && drain_until.is_none() {
                    drain_until =
                        Some(Instant::now() + Duration::from_millis(u64::from(SHUTDOWN_DRAIN_MS)));
                }
                taken += 1;
                if taken < EXCHANGE_COMMANDS_PER_TURN_MAX {
                    woke = self.commands.try_recv().ok();
                }
            }
            self.apply_admin();
            let now = self.clock.now_us();
            if self.engine.poll_timeout().is_some_and(|at| at <= now) {
                self.engine.handle_timeout(now);
            }
            if let Err(error) = self.pump() {
                return self.fail(error);
            }
            if self.snapshot_every_records != 0
                && self.last_lsn - self.snapshot_lsn >= self.snapshot_every_records
            {
                if let Err(error) = self.snapshot() {
                    return self.fail(error);
                }
            }
            if let Some(until) = drain_until {
                let answered = self.open_requests.is_empty() && self.gated.is_empty();
                if answered || Instant::now() >= until {
                    return self.finish();
                }
            }
        }
    }

    /// Waits for a command, a durability report or the deadline.
    fn wait(&mut self, until: Option<Instant>) -> Option<Command> {
        let commands = &self.commands;
        let durable = &self.durable_wake;
        let timeout = until.map_or(Duration::from_millis(100), |until| {
            until.saturating_duration_since(Instant::now())
        });
        crossbeam_channel::select! {
            // Every sender gone (the daemon's handle dropped without a shutdown): stop in
            // order rather than spin on a closed channel.
            recv(commands) -> command => Some(command.unwrap_or(Command::Shutdown)),
            recv(durable) -> _ => None,
            default(timeout) => None,
        }
    }

    fn fail(mut self, error: String) -> ExchangeEnd {
        for entry in self.sessions.values() {
            entry.cancel.cancel();
        }
        let _ = self.log.close();
        ExchangeEnd::JournalFailed(error)
    }

    fn finish(mut self) -> ExchangeEnd {
        // A clean stop leaves a snapshot of the final state, so the next start replays nothing.
        if self.last_lsn > self.snapshot_lsn {
            if let Err(error) = self.snapshot() {
                return self.fail(error);
            }
        }
        match self.log.close() {
            Ok(()) => {
                // Everything is durable now: release what waited for it.
                self.release_durable(u64::MAX);
                ExchangeEnd::Clean
            }
            Err(error) => ExchangeEnd::JournalFailed(error),
        }
    }

    /// Handles one command; `true` when it asks to shut down.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Attach {
                session,
                role,
                principal,
                last_delivery_seq,
                queue,
                cancel,
            } => {
                if role == Role::Buyer {
                    if let Some(old) = self.buyer_sessions.insert(principal, session) {
                        // One live session per buyer: the newer one takes over.
                        if let Some(entry) = self.sessions.remove(&old) {
                            entry.cancel.cancel();
                        }
                    }
                }
                self.sessions.insert(
                    session,
                    SessionEntry {
                        role,
                        principal,
                        queue,
                        cancel,
                    },
                );
                if role == Role::Buyer {
                    let resend = self.outbox.reattach(principal, last_delivery_seq);
                    if let Some((after, through)) = resend.from_journal {
                        // Older than memory holds: the session reads them back from the journal
                        // (file reads stay off this thread), before the ones below.
                        self.counters.deliveries_resent += through - after;
                        self.send(
                            session,
                            Outbound::JournalReplay {
                                buyer: principal,
                                after,
                                through,
                            },
                        );
                    }
                    for delivery in resend.from_memory {
                        self.counters.deliveries_resent += 1;
                        self.send(
                            session,
                            Outbound::Notice {
                                message: Message::LeadDelivery(delivery),
                            },
                        );
                    }
                }
                false
            }
            Command::Detach { session } => {
                self.forget_session(session);
                false
            }
            Command::Request {
                session,
                correlation_id,
                received,
                request,
            } => {
                self.request(session, correlation_id, received, request);
                false
            }
            Command::Shutdown => {
                self.shutting_down = true;
                true
            }
        }
    }

    fn tag(
        &mut self,
        session: SessionId,
        correlation_id: u64,
        received: Instant,
        kind: RequestKind,
    ) -> RequestTag {
        self.next_tag += 1;
        self.open_requests.insert(
            self.next_tag,
            OpenRequest {
                session,
                correlation_id,
                received,
                kind,
            },
        );
        self.next_tag
    }

    fn request(
        &mut self,
        session: SessionId,
        correlation_id: u64,
        received: Instant,
        request: Request,
    ) {
        if !self.sessions.contains_key(&session) {
            return;
        }
        match request {
            Request::Admin(change) if !self.shutting_down => {
                self.pending_admin.push((session, correlation_id, change));
                return;
            }
            // Anything else sees the admin changes that came before it.
            _ => self.apply_admin(),
        }
        let Some(entry) = self.sessions.get(&session) else {
            return;
        };
        let principal = entry.principal;
        let now = self.clock.now_us();
        let refuse = |this: &mut Self, code: ErrorCode, text: &str| {
            this.send(
                session,
                Outbound::Response {
                    correlation_id,
                    message: super::error_message(code, text),
                },
            );
        };
        if self.shutting_down
            && matches!(
                request,
                Request::Ping(_) | Request::DirectPost { .. } | Request::Admin(_)
            )
        {
            return refuse(
                self,
                ErrorCode::SERVER_SHUTTING_DOWN,
                "the exchange is shutting down and takes no new leads",
            );
        }
        match request {
            Request::Ping(ping) => {
                self.counters.pings += 1;
                let tag = self.tag(session, correlation_id, received, RequestKind::Ping);
                let started = Instant::now();
                self.engine.handle_ping(now, tag, principal, &ping);
                self.engine_ping_latency.record(started.elapsed());
            }
            Request::Post {
                ping_id,
                contact,
                consent,
            } => {
                self.counters.posts += 1;
                let tag = self.tag(session, correlation_id, received, RequestKind::Post);
                self.engine
                    .handle_post(now, tag, principal, ping_id, &contact, &consent);
            }
            Request::DirectPost {
                ping,
                contact,
                consent,
            } => {
                self.counters.pings += 1;
                self.counters.posts += 1;
                let tag = self.tag(session, correlation_id, received, RequestKind::Post);
                self.engine
                    .handle_direct_post(now, tag, principal, &ping, &contact, &consent);
            }
            Request::Bid {
                auction_id,
                campaign_id,
                price,
                reason,
            } => {
                self.counters.bids += 1;
                let sent = self.offers_sent_at.get(&auction_id).and_then(|offers| {
                    offers
                        .iter()
                        .find(|(campaign, buyer, _)| {
                            *campaign == campaign_id && *buyer == principal
                        })
                        .map(|&(_, _, sent)| sent)
                });
                if let Some(sent) = sent {
                    self.record_answer_time(principal, sent.elapsed());
                }
                self.engine
                    .handle_bid(now, principal, auction_id, campaign_id, price, reason);
            }
            Request::DeliveryAck(ack) => {
                self.engine.handle_delivery_ack(
                    now,
                    principal,
                    ack.delivery_seq,
                    ack.outcome,
                    ack.reason,
                );
                self.outbox.acknowledged(principal, ack.delivery_seq);
            }
            Request::Admin(change) => self.admin(session, correlation_id, now, change),
            Request::Stats => {
                let stats = self.stats();
                self.send(
                    session,
                    Outbound::Response {
                        correlation_id,
                        message: Message::Stats(stats),
                    },
                );
            }
            Request::Trace(trace) => match self.engine.trace(trace.key, trace.id) {
                Some(trace) => self.send(
                    session,
                    Outbound::Response {
                        correlation_id,
                        message: Message::Trace(trace),
                    },
                ),
                None => refuse(
                    self,
                    ErrorCode::NOT_FOUND,
                    "no lead or ping with this id is in memory; the journal's trace holds older ones",
                ),
            },
        }
    }

    /// Applies the admin changes taken so far: all at once with one compile of the book when
    /// they all hold, else one by one so that each gets its own answer.
    fn apply_admin(&mut self) {
        if self.pending_admin.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_admin);
        let now = self.clock.now_us();
        if pending.len() > 1 {
            let changes = pending
                .iter()
                .map(|(_, _, change)| change.clone())
                .collect();
            if let Ok(book_version) = self.engine.handle_admin_batch(now, changes) {
                self.counters.admin_changes += pending.len() as u64;
                self.credentials.sync_book(self.engine.definitions());
                for (session, correlation_id, _) in pending {
                    self.send(
                        session,
                        Outbound::Response {
                            correlation_id,
                            message: Message::AdminOk(AdminOk { book_version }),
                        },
                    );
                }
                return;
            }
        }
        for (session, correlation_id, change) in pending {
            self.admin(session, correlation_id, now, change);
        }
    }

    fn admin(&mut self, session: SessionId, correlation_id: u64, now: TimeUs, change: AdminChange) {
        match self.engine.handle_admin(now, change) {
            Ok(book_version) => {
                self.counters.admin_changes += 1;
                self.credentials.sync_book(self.engine.definitions());
                self.send(
                    session,
                    Outbound::Response {
                        correlation_id,
                        message: Message::AdminOk(AdminOk { book_version }),
                    },
                );
            }
            Err(error) => {
                self.counters.admin_refused += 1;
                self.send(
                    session,
                    Outbound::Response {
                        correlation_id,
                        message: super::error_message(error.code, &error.message),
                    },
                );
            }
        }
    }

    fn record_answer_time(&mut self, buyer: BuyerId, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let times = self.answer_times.entry(buyer).or_default();
        // Weight 1/8 for the newest answer: recent enough to follow a buyer that slows down,
        // smooth enough that one slow answer does not exclude it.
        times.mean_us = if times.samples == 0 {
            us
        } else {
            times.mean_us - times.mean_us / 8 + us / 8
        };
        times.samples = times.samples.saturating_add(1);
    }

    /// Whether a live buyer can answer an offer that leaves it `within_ms`; counts skips.
    fn offer_reachable(&mut self, buyer: BuyerId, within_ms: u32) -> Result<SessionId, ErrorCode> {
        let Some(&session) = self.buyer_sessions.get(&buyer) else {
            self.counters.offers_skipped_not_connected += 1;
            return Err(ErrorCode::BUYER_NOT_CONNECTED);
        };
        let times = self.answer_times.entry(buyer).or_default();
        let too_slow = times.samples >= BUYER_LATENCY_SAMPLES_MIN
            && times.mean_us > u64::from(within_ms) * 1_000;
        if too_slow {
            times.skipped_since_probe += 1;
            // Every so often a slow buyer is asked anyway, so that a buyer that got faster
            // is noticed.
            if times.skipped_since_probe < OFFER_PROBE_EVERY {
                self.counters.offers_skipped_too_slow += 1;
                return Err(ErrorCode::BUYER_TOO_SLOW);
            }
            times.skipped_since_probe = 0;
        }
        Ok(session)
    }

    /// Hands the daemon's state after the last appended record to the journal as a snapshot.
    /// Called after a pump, when every event the engine emitted is appended. The state is
    /// copied here, on the exchange thread (the stall is counted in the stats); the journal's
    /// snapshot thread encodes it and writes the file.
    fn snapshot(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let floor = self.clock.now_us();
        match DaemonImage::take(&self.engine, &self.outbox, floor) {
            Ok(image) => {
                self.counters.snapshot_auctions = image.auctions() as u64;
                if self.log.snapshot(self.last_lsn, image)? {
                    self.counters.snapshots += 1;
                }
            }
            // Not fatal: the journal has every record; the next one tries again.
            Err(error) => eprintln!("pingpost: no snapshot at LSN {}: {error}", self.last_lsn),
        }
        self.snapshot_lsn = self.last_lsn;
        self.counters.snapshot_last_us =
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Moves events to the journal and outputs to sessions until the engine has none left.
    ///
    /// Events are drained before each output is taken: the engine emits an output's events
    /// before the output, and routing one output can make more (a `NO_BID` answered for an
    /// absent buyer may resolve an auction), so `last_lsn` always covers the output routed.
    fn pump(&mut self) -> Result<(), String> {
        loop {
            while let Some(event) = self.engine.poll_event() {
                self.outbox.observe(&event);
                self.observe_event(&event);
                self.last_lsn = self.log.append(event)?;
                self.counters.journal_records += 1;
            }
            let Some(output) = self.engine.poll_output() else {
                break;
            };
            self.route(output);
        }
        let durable = self.log.durable_lsn();
        self.release_durable(durable);
        Ok(())
    }

    fn observe_event(&mut self, event: &Event) {
        match event {
            Event::AuctionResolved {
                ping_id,
                resolution,
                ..
            } => {
                self.offers_sent_at.remove(ping_id);
                match resolution {
                    crate::engine::events::Resolution::Offer { .. } => {
                        self.counters.pings_offered += 1;
                    }
                    crate::engine::events::Resolution::NoSale { .. } => {
                        self.counters.pings_no_sale += 1;
                    }
                }
            }
            Event::Delivered { .. } => self.counters.deliveries += 1,
            Event::LeadSettled { sold, .. } => {
                if *sold {
                    self.counters.leads_sold += 1;
                } else {
                    self.counters.leads_unsold += 1;
                }
            }
            _ => {}
        }
    }

    fn route(&mut self, output: Output) {
        match output {
            Output::Deliver { .. } | Output::PostAnswer { .. } => {
                if let Output::Deliver { buyer, delivery } = &output {
                    self.outbox.insert(
                        *buyer,
                        PendingDelivery {
                            live: self
                                .engine
                                .book()
                                .buyer(*buyer)
                                .is_some_and(|b| b.delivery == DeliveryMode::Live),
                            delivery: delivery.clone(),
                            released: false,
                        },
                    );
                }
                self.gated.push_back(Gated {
                    lsn: self.last_lsn,
                    output,
                });
            }
            Output::PingAnswer {
                request, result, ..
            } => {
                if let Some(open) = self.open_requests.remove(&request) {
                    if open.kind == RequestKind::Ping {
                        self.ping_latency.record(open.received.elapsed());
                    }
                    self.send(
                        open.session,
                        Outbound::Response {
                            correlation_id: open.correlation_id,
                            message: Message::PingResult(result),
                        },
                    );
                }
            }
            Output::Offer { buyer, offer } => {
                match self.offer_reachable(buyer, offer.bid_within_ms) {
                    Ok(session) => {
                        self.counters.offers_sent += 1;
                        self.offers_sent_at
                            .entry(offer.auction_id)
                            .or_default()
                            .push((offer.campaign_id, buyer, Instant::now()));
                        self.send(
                            session,
                            Outbound::Notice {
                                message: Message::PingOffer(offer),
                            },
                        );
                    }
                    Err(reason) => {
                        let now = self.clock.now_us();
                        self.engine.handle_bid(
                            now,
                            buyer,
                            offer.auction_id,
                            offer.campaign_id,
                            None,
                            reason,
                        );
                    }
                }
            }
            Output::Won { buyer, notice } => self.notify_buyer(buyer, Message::AuctionWon(notice)),
            Output::Lost { buyer, notice } => {
                self.notify_buyer(buyer, Message::AuctionLost(notice));
            }
        }
    }

    fn notify_buyer(&mut self, buyer: BuyerId, message: Message<'static>) {
        if let Some(&session) = self.buyer_sessions.get(&buyer) {
            self.send(session, Outbound::Notice { message });
        }
    }

    /// Sends every gated output whose events are durable up to `durable`.
    fn release_durable(&mut self, durable: u64) {
        while self.gated.front().is_some_and(|g| g.lsn <= durable) {
            let Some(Gated { output, .. }) = self.gated.pop_front() else {
                break;
            };
            match output {
                Output::Deliver { buyer, delivery } => {
                    let seq = delivery.delivery_seq;
                    if self.outbox.release(buyer, seq) {
                        self.notify_buyer(buyer, Message::LeadDelivery(delivery));
                    }
                }
                Output::PostAnswer {
                    request, result, ..
                } => {
                    if let Some(open) = self.open_requests.remove(&request) {
                        self.post_latency.record(open.received.elapsed());
                        self.send(
                            open.session,
                            Outbound::Response {
                                correlation_id: open.correlation_id,
                                message: Message::PostResult(result),
                            },
                        );
                    }
                }
                other => self.route(other),
            }
        }
    }

    /// Queues a frame for a session; a full queue closes that session (slow reader).
    fn send(&mut self, session: SessionId, outbound: Outbound) {
        let Some(entry) = self.sessions.get(&session) else {
            return;
        };
        match entry.queue.try_send(outbound) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                SessionCounters::bump(&self.session_counters.slow_consumers_closed);
                entry.cancel.cancel();
                self.forget_session(session);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.forget_session(session),
        }
    }

    /// Stops routing to a session; a buyer without a session is answered for from now on.
    fn forget_session(&mut self, session: SessionId) {
        if let Some(entry) = self.sessions.remove(&session) {
            if entry.role == Role::Buyer
                && self.buyer_sessions.get(&entry.principal) == Some(&session)
            {
                self.buyer_sessions.remove(&entry.principal);
            }
        }
    }

    fn stats(&mut self) -> Stats<'static> {
        let extra = [
            (
                "auctions_in_memory",
                self.engine.auctions_in_memory() as u64,
            ),
            ("deliveries_waiting", self.outbox.waiting() as u64),
            ("journal_durable_lsn", self.log.durable_lsn()),
            ("journal_last_lsn", self.last_lsn),
            ("book_version", self.engine.book().version),
        ];
        Stats {
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            counters: stats::counters(&self.counters, &self.session_counters, &extra),
            latencies: vec![
                self.ping_latency.wire(),
                self.post_latency.wire(),
                self.engine_ping_latency.wire(),
            ],
        }
    }
}

/// Sends a command without blocking an async task: a full channel is the exchange being
/// overloaded, which the caller answers with `OVERLOADED`. The refused command comes back so
/// that the caller may retry it; it is moved, not copied, so its size costs nothing.
#[allow(clippy::result_large_err)]
pub fn offer(commands: &Sender<Command>, command: Command) -> Result<(), Command> {
    commands.try_send(command).map_err(|error| match error {
        TrySendError::Full(command) | TrySendError::Disconnected(command) => command,
    })
}
