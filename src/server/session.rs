//! One TCP connection, from `LOGIN` to close.
//!
//! The task that accepted the connection reads: it checks each frame for completeness before
//! decoding it (an incomplete frame is not an error), answers what it can itself (heartbeats,
//! protocol errors, role errors, in-flight overflow) and passes requests to the exchange
//! thread. A second task writes: it takes frames from the session's bounded queue, encodes a
//! batch and writes it in one system call, and sends heartbeats when the line is idle.
//!
//! A frame that cannot be found (oversize or undersize prefix) gets `ERROR` and closes this
//! connection only; any other bad frame gets `ERROR` with its correlation id and the session
//! carries on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use crossbeam_channel::Sender;
use rustc_hash::FxHashSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::{Credentials, LoginRefusal, hash_secrets_in};
use super::error_message;
use super::exchange::{self, Command, Outbound, Request, SessionId};
use super::stats::SessionCounters;
use crate::engine::book::AdminChange;
use crate::limits::{
    GOODBYE_TIMEOUT_MS, HEARTBEAT_INTERVAL_DEFAULT_MS, HEARTBEAT_INTERVAL_MAX_MS,
    HEARTBEAT_INTERVAL_MIN_MS, HEARTBEAT_MISSES_MAX, LOGIN_TIMEOUT_MS, PROTOCOL_VERSION_MAX,
    PROTOCOL_VERSION_MIN, SESSION_READ_CHUNK_LEN, SESSION_SERVER_REQUESTS_MAX,
    SESSION_WRITE_BATCH_MAX,
};
use crate::protocol::{
    Currency, ErrorCode, Goodbye, GoodbyeAck, HeartbeatAck, Login, LoginAccepted, LoginRejected,
    Message, Role, check_frame, decode_frame, encode_frame_with_version,
};

/// The top bit of a correlation id: set on the server's own requests and notices.
const SERVER_CORRELATION_BIT: u64 = 1 << 63;

/// What every session shares.
#[derive(Debug)]
pub struct SessionContext {
    pub credentials: Credentials,
    pub commands: Sender<Command>,
    pub counters: Arc<SessionCounters>,
    pub next_session: AtomicU64,
    pub frame_length_max: u32,
    pub in_flight_max: u32,
    pub session_queue_len: usize,
    pub currency: Currency,
    /// The journal's directory, to read back deliveries older than the outbox keeps.
    pub journal_dir: std::path::PathBuf,
    /// Cancelled when the daemon shuts down.
    pub shutdown: CancellationToken,
}

/// What a session's reader and writer share.
#[derive(Debug)]
struct SessionShared {
    in_flight: AtomicU32,
    /// Correlation ids of offers and deliveries sent and not yet answered.
    awaiting: Mutex<Awaiting>,
    /// Why the server ends the session, for the `GOODBYE` the writer sends.
    end: Mutex<Option<(ErrorCode, &'static str)>>,
    cancel: CancellationToken,
}

#[derive(Debug, Default)]
struct Awaiting {
    ids: FxHashSet<u64>,
    order: VecDeque<u64>,
}

impl SessionShared {
    fn end_with(&self, code: ErrorCode, text: &'static str) {
        let mut end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
        end.get_or_insert((code, text));
        drop(end);
        self.cancel.cancel();
    }

    fn expect_answer(&self, correlation_id: u64) {
        let mut awaiting = self.awaiting.lock().unwrap_or_else(PoisonError::into_inner);
        if awaiting.ids.insert(correlation_id) {
            awaiting.order.push_back(correlation_id);
        }
        while awaiting.order.len() > SESSION_SERVER_REQUESTS_MAX {
            if let Some(old) = awaiting.order.pop_front() {
                awaiting.ids.remove(&old);
            }
        }
    }

    fn take_answer(&self, correlation_id: u64) -> bool {
        let mut awaiting = self.awaiting.lock().unwrap_or_else(PoisonError::into_inner);
        // The order list is cleaned lazily when it overflows; removing from the set suffices.
        awaiting.ids.remove(&correlation_id)
    }
}

/// Serves one accepted connection to its end.
pub async fn serve(stream: TcpStream, context: Arc<SessionContext>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = BytesMut::with_capacity(SESSION_READ_CHUNK_LEN);
    let login_timeout = Duration::from_millis(u64::from(LOGIN_TIMEOUT_MS));
    let login = tokio::time::timeout(
        login_timeout,
        read_login(&mut reader, &mut writer, &mut buffer, &context),
    )
    .await;
    let login = match login {
        Ok(Some(login)) => login,
        Ok(None) => return,
        Err(_) => {
            let goodbye = Message::Goodbye(Goodbye {
                reason: ErrorCode::LOGIN_TIMEOUT,
                message: "no LOGIN within the login timeout".into(),
            });
            let _ = write_now(&mut writer, 0, &goodbye).await;
            return;
        }
    };
    let session_id = context.next_session.fetch_add(1, Ordering::Relaxed) + 1;
    let heartbeat_ms = match login.heartbeat_interval_ms {
        0 => HEARTBEAT_INTERVAL_DEFAULT_MS,
        asked => asked.clamp(HEARTBEAT_INTERVAL_MIN_MS, HEARTBEAT_INTERVAL_MAX_MS),
    };
    let accepted = Message::LoginAccepted(LoginAccepted {
        session_id,
        version: PROTOCOL_VERSION_MAX.min(login.version_max),
        heartbeat_interval_ms: heartbeat_ms,
        frame_length_max: context.frame_length_max,
        in_flight_max: context.in_flight_max,
        currency: context.currency,
        server_time: now_us(),
    });
    let version = PROTOCOL_VERSION_MAX.min(login.version_max);
    if write_now(&mut writer, login.correlation_id, &accepted)
        .await
        .is_err()
    {
        return;
    }

    let (queue, queue_rx) = mpsc::channel(context.session_queue_len);
    let shared = Arc::new(SessionShared {
        in_flight: AtomicU32::new(0),
        awaiting: Mutex::new(Awaiting::default()),
        end: Mutex::new(None),
        cancel: context.shutdown.child_token(),
    });
    let attach = Command::Attach {
        session: session_id,
        role: login.role,
        principal: login.principal_id,
        last_delivery_seq: login.last_delivery_seq,
        queue: queue.clone(),
        cancel: shared.cancel.clone(),
    };
    if exchange::offer(&context.commands, attach).is_err() {
        let goodbye = Message::Goodbye(Goodbye {
            reason: ErrorCode::OVERLOADED,
            message: "the exchange is overloaded; reconnect with backoff".into(),
        });
        let _ = write_now(&mut writer, SERVER_CORRELATION_BIT, &goodbye).await;
        return;
    }
    SessionCounters::bump(&context.counters.sessions_open);
    let heartbeat = Duration::from_millis(u64::from(heartbeat_ms));
    let writer_task = tokio::spawn(write_loop(
        writer,
        queue_rx,
        Arc::clone(&shared),
        heartbeat,
        version,
        context.journal_dir.clone(),
    ));
    let mut session = Session {
        id: session_id,
        role: login.role,
        context: Arc::clone(&context),
        shared: Arc::clone(&shared),
        queue,
        heartbeat,
    };
    session.read_loop(&mut reader, buffer).await;
    detach(&context.commands, session_id).await;
    drop(session);
    let _ = writer_task.await;
    context
        .counters
        .sessions_open
        .fetch_sub(1, Ordering::Relaxed);
}

/// What the login step hands on.
struct LoginDone {
    correlation_id: u64,
    role: Role,
    principal_id: u64,
    version_max: u8,
    heartbeat_interval_ms: u32,
    last_delivery_seq: u64,
}

/// Reads the first frame; it must be a valid `LOGIN` with good credentials. Answers refusals
/// itself and returns `None` when the connection must close.
async fn read_login(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buffer: &mut BytesMut,
    context: &SessionContext,
) -> Option<LoginDone> {
    let length = loop {
        match check_frame(buffer, context.frame_length_max) {
            Ok(Some(length)) => break length,
            Ok(None) => {}
            Err(error) => {
                SessionCounters::bump(&context.counters.protocol_errors);
                let _ = write_now(writer, 0, &error_message(error.code, &error.to_string())).await;
                return None;
            }
        }
        buffer.reserve(SESSION_READ_CHUNK_LEN);
        match reader.read_buf(buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    };
    let frame = match decode_frame(&buffer[..length]) {
        Ok(frame) => frame,
        Err(error) => {
            SessionCounters::bump(&context.counters.protocol_errors);
            let answer = error_message(error.code, &error.to_string());
            let _ = write_now(writer, error.reply_correlation_id(), &answer).await;
            return None;
        }
    };
    let correlation_id = frame.header.correlation_id;
    let Message::Login(login) = frame.message else {
        let answer = error_message(
            ErrorCode::NOT_LOGGED_IN,
            "the first frame of a session must be LOGIN",
        );
        let _ = write_now(writer, correlation_id, &answer).await;
        return None;
    };
    let refuse = |reason: ErrorCode, text: &'static str| {
        Message::LoginRejected(LoginRejected {
            reason,
            message: text.into(),
        })
    };
    let refusal = if login.version_max < PROTOCOL_VERSION_MIN
        || login.version_min > PROTOCOL_VERSION_MAX
        || login.version_min > login.version_max
    {
        Some(refuse(
            ErrorCode::NO_COMMON_VERSION,
            "no protocol version in common; this server speaks version 1",
        ))
    } else {
        match context
            .credentials
            .check(login.role, login.principal_id, &login.secret)
        {
            Ok(()) => None,
            Err(LoginRefusal::BadCredentials) => Some(refuse(
                ErrorCode::BAD_CREDENTIALS,
                "unknown principal or wrong secret",
            )),
            Err(LoginRefusal::Paused) => Some(refuse(
                ErrorCode::PRINCIPAL_PAUSED,
                "this principal is paused",
            )),
        }
    };
    if let Some(refusal) = refusal {
        SessionCounters::bump(&context.counters.logins_rejected);
        let _ = write_now(writer, correlation_id, &refusal).await;
        return None;
    }
    let done = login_done(correlation_id, &login);
    buffer.advance(length);
    Some(done)
}

fn login_done(correlation_id: u64, login: &Login<'_>) -> LoginDone {
    LoginDone {
        correlation_id,
        role: login.role,
        principal_id: login.principal_id,
        version_max: login.version_max,
        heartbeat_interval_ms: login.heartbeat_interval_ms,
        last_delivery_seq: login.last_delivery_seq,
    }
}

/// Writes one frame straight to the socket (before the writer task exists).
async fn write_now(
    writer: &mut OwnedWriteHalf,
    correlation_id: u64,
    message: &Message<'_>,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    if encode_frame_with_version(PROTOCOL_VERSION_MIN, correlation_id, message, &mut out).is_ok() {
        writer.write_all(&out).await?;
    }
    Ok(())
}

/// Tells the exchange thread the session is gone. The exchange must hear it (or it keeps
/// routing to a dead queue until the queue fills), so a full channel is retried.
async fn detach(commands: &Sender<Command>, session: SessionId) {
    let mut command = Command::Detach { session };
    for _ in 0..1_000 {
        match exchange::offer(commands, command) {
            Ok(()) => return,
            Err(back) => command = back,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Session {
    id: SessionId,
    role: Role,
    context: Arc<SessionContext>,
    shared: Arc<SessionShared>,
    queue: mpsc::Sender<Outbound>,
    heartbeat: Duration,
}

/// What reading one frame asks the reader to do next.
enum Next {
    Continue,
    Close,
    /// The client said GOODBYE: answer what is in flight, acknowledge, close.
    Goodbye,
}

impl Session {
    async fn read_loop(&mut self, reader: &mut OwnedReadHalf, mut buffer: BytesMut) {
        let dead_after = self.heartbeat * HEARTBEAT_MISSES_MAX;
        let mut last_heard = Instant::now();
        loop {
            // Every whole frame already in the buffer, before reading more.
            loop {
                let length = match check_frame(&buffer, self.context.frame_length_max) {
                    Ok(Some(length)) => length,
                    Ok(None) => break,
                    Err(error) => {
                        SessionCounters::bump(&self.context.counters.protocol_errors);
                        self.control(0, error_message(error.code, &error.to_string()));
                        self.shared.cancel.cancel();
                        return;
                    }
                };
                let next = self.frame(&buffer[..length]);
                buffer.advance(length);
                match next {
                    Next::Continue => {}
                    Next::Close => {
                        self.shared.cancel.cancel();
                        return;
                    }
                    Next::Goodbye => {
                        self.goodbye().await;
                        return;
                    }
                }
            }
            buffer.reserve(SESSION_READ_CHUNK_LEN);
            tokio::select! {
                () = self.shared.cancel.cancelled() => return,
                read = reader.read_buf(&mut buffer) => match read {
                    Ok(0) | Err(_) => {
                        self.shared.cancel.cancel();
                        return;
                    }
                    Ok(_) => last_heard = Instant::now(),
                },
                () = tokio::time::sleep_until((last_heard + dead_after).into()) => {
                    SessionCounters::bump(&self.context.counters.dead_peers_closed);
                    self.shared.end_with(
                        ErrorCode::HEARTBEAT_TIMEOUT,
                        "nothing received for three heartbeat intervals",
                    );
                    return;
                }
            }
        }
    }

    /// The client's GOODBYE: wait (bounded) for the answers to its requests, then ack.
    async fn goodbye(&mut self) {
        let until = Instant::now() + Duration::from_millis(u64::from(GOODBYE_TIMEOUT_MS));
        while self.shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.control(0, Message::GoodbyeAck(GoodbyeAck {}));
    }

    /// Queues a frame the session answers itself (it frees no in-flight slot).
    fn control(&self, correlation_id: u64, message: Message<'static>) {
        let outbound = Outbound::Control {
            correlation_id,
            message,
        };
        if self.queue.try_send(outbound).is_err() {
            SessionCounters::bump(&self.context.counters.slow_consumers_closed);
            self.shared.end_with(
                ErrorCode::SLOW_CONSUMER,
                "the session does not read its frames",
            );
        }
    }

    fn refuse(&self, correlation_id: u64, code: ErrorCode, text: &str) {
        self.control(correlation_id, error_message(code, text));
    }

    /// Handles one complete frame.
    fn frame(&mut self, bytes: &[u8]) -> Next {
        let frame = match decode_frame(bytes) {
            Ok(frame) => frame,
            Err(error) => {
                SessionCounters::bump(&self.context.counters.protocol_errors);
                self.refuse(error.reply_correlation_id(), error.code, &error.to_string());
                return if error.is_fatal() {
                    Next::Close
                } else {
                    Next::Continue
                };
            }
        };
        let correlation_id = frame.header.correlation_id;
        let message = frame.message;
        match message {
            Message::Heartbeat(heartbeat) => {
                self.control(
                    correlation_id,
                    Message::HeartbeatAck(HeartbeatAck {
                        sent_at: heartbeat.sent_at,
                    }),
                );
                return Next::Continue;
            }
            Message::HeartbeatAck(_) | Message::Error(_) => return Next::Continue,
            Message::Goodbye(_) => return Next::Goodbye,
            Message::GoodbyeAck(_) => return Next::Close,
            Message::Login(_) => {
                self.refuse(
                    correlation_id,
                    ErrorCode::ALREADY_LOGGED_IN,
                    "this session is logged in already",
                );
                return Next::Continue;
            }
            _ => {}
        }
        let request = match (self.role, message) {
            (Role::Seller, Message::Ping(ping)) => Request::Ping(ping.into_owned()),
            (Role::Seller, Message::Post(post)) => Request::Post {
                ping_id: post.ping_id,
                contact: post.contact.into_owned(),
                consent: post.consent.into_owned(),
            },
            (Role::Seller, Message::DirectPost(direct)) => Request::DirectPost {
                ping: direct.ping.into_owned(),
                contact: direct.contact.into_owned(),
                consent: direct.consent.into_owned(),
            },
            (
                Role::Buyer,
                message @ (Message::Bid(_) | Message::NoBid(_) | Message::DeliveryAck(_)),
            ) => {
                if !self.shared.take_answer(correlation_id) {
                    self.refuse(
                        correlation_id,
                        ErrorCode::UNEXPECTED_MESSAGE,
                        "this answers no offer or delivery sent on this session",
                    );
                    return Next::Continue;
                }
                let request = match message {
                    Message::Bid(bid) => Request::Bid {
                        auction_id: bid.auction_id,
                        campaign_id: bid.campaign_id,
                        price: Some(bid.price),
                        reason: ErrorCode::NONE,
                    },
                    Message::NoBid(no_bid) => Request::Bid {
                        auction_id: no_bid.auction_id,
                        campaign_id: no_bid.campaign_id,
                        price: None,
                        reason: no_bid.reason,
                    },
                    Message::DeliveryAck(ack) => Request::DeliveryAck(ack),
                    _ => return Next::Continue,
                };
                // Answers to the server's requests take no in-flight slot.
                return self.forward(correlation_id, request, false);
            }
            (Role::Admin, Message::StatsRequest(_)) => Request::Stats,
            (Role::Admin, Message::TraceRequest(trace)) => Request::Trace(trace),
            (Role::Admin, message) => match admin_change(message) {
                Some(mut change) => {
                    hash_secrets_in(&mut change);
                    Request::Admin(change)
                }
                None => {
                    self.refuse(
                        correlation_id,
                        ErrorCode::ROLE_FORBIDDEN,
                        "an admin session sends admin messages only",
                    );
                    return Next::Continue;
                }
            },
            (role, message) => {
                let text = format!(
                    "a {} session may not send {}",
                    role_name(role),
                    message.message_type().name()
                );
                self.refuse(correlation_id, ErrorCode::ROLE_FORBIDDEN, &text);
                return Next::Continue;
            }
        };
        self.forward(correlation_id, request, true)
    }

    fn forward(&self, correlation_id: u64, request: Request, counted: bool) -> Next {
        if counted {
            let in_flight = self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
            if in_flight >= self.context.in_flight_max {
                self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                self.refuse(
                    correlation_id,
                    ErrorCode::TOO_MANY_IN_FLIGHT,
                    "too many requests in flight on this session",
                );
                return Next::Continue;
            }
        }
        let command = Command::Request {
            session: self.id,
            correlation_id,
            received: Instant::now(),
            request,
        };
        if exchange::offer(&self.context.commands, command).is_err() {
            if counted {
                self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
            SessionCounters::bump(&self.context.counters.overloaded_answers);
            self.refuse(
                correlation_id,
                ErrorCode::OVERLOADED,
                "the exchange is overloaded; retry with backoff",
            );
        }
        Next::Continue
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Seller => "seller",
        Role::Buyer => "buyer",
        Role::Admin => "admin",
    }
}

/// The book change an admin message asks for; `None` for messages that are not changes.
fn admin_change(message: Message<'_>) -> Option<AdminChange> {
    Some(match message {
        Message::VerticalPut(put) => AdminChange::VerticalPut(put.into_owned()),
        Message::VerticalRemove(remove) => AdminChange::VerticalRemove {
            vertical: remove.vertical.as_str().to_owned(),
        },
        Message::SellerPut(put) => AdminChange::SellerPut(put.into_owned()),
        Message::SellerRemove(remove) => AdminChange::SellerRemove {
            seller_id: remove.seller_id,
        },
        Message::BuyerPut(put) => AdminChange::BuyerPut(put.into_owned()),
        Message::BuyerRemove(remove) => AdminChange::BuyerRemove {
            buyer_id: remove.buyer_id,
        },
        Message::CampaignPut(put) => AdminChange::CampaignPut(put.into_owned()),
        Message::CampaignRemove(remove) => AdminChange::CampaignRemove {
            campaign_id: remove.campaign_id,
        },
        Message::SetStatus(set_status) => AdminChange::SetStatus(set_status),
        _ => return None,
    })
}

/// The session's writer: batches queued frames into one write; heartbeats when idle; the
/// server's `GOODBYE` when the session is cancelled.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outbound>,
    shared: Arc<SessionShared>,
    heartbeat: Duration,
    version: u8,
    journal_dir: std::path::PathBuf,
) {
    let mut out = BytesMut::with_capacity(SESSION_READ_CHUNK_LEN);
    let mut next_server_id = SERVER_CORRELATION_BIT;
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => {
                // Whatever is queued still goes out (answers already decided), then GOODBYE.
                while let Ok(outbound) = queue.try_recv() {
                    encode(&mut out, outbound, &shared, &mut next_server_id, version);
                }
                let (reason, text) = shared
                    .end
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .unwrap_or((ErrorCode::SERVER_SHUTTING_DOWN, "the server is shutting down"));
                next_server_id += 1;
                let goodbye = Message::Goodbye(Goodbye { reason, message: text.into() });
                let _ = encode_frame_with_version(version, next_server_id, &goodbye, &mut out);
                let write = writer.write_all(&out);
                let _ = tokio::time::timeout(Duration::from_millis(u64::from(GOODBYE_TIMEOUT_MS)), write).await;
                let _ = writer.shutdown().await;
                return;
            }
            outbound = queue.recv() => {
                let Some(outbound) = outbound else {
                    let _ = writer.write_all(&out).await;
                    let _ = writer.shutdown().await;
                    return;
                };
                let outbound = match outbound {
                    Outbound::JournalReplay { buyer, after, through } => {
                        replay_from_journal(&journal_dir, buyer, after, through, &mut out, &shared, &mut next_server_id, version).await;
                        continue;
                    }
                    other => other,
                };
                encode(&mut out, outbound, &shared, &mut next_server_id, version);
                let mut batched = 1;
                while batched < SESSION_WRITE_BATCH_MAX {
                    let Ok(outbound) = queue.try_recv() else { break };
                    encode(&mut out, outbound, &shared, &mut next_server_id, version);
                    batched += 1;
                }
            }
            () = tokio::time::sleep_until((last_sent + heartbeat).into()) => {
                next_server_id += 1;
                let beat = Message::Heartbeat(crate::protocol::Heartbeat { sent_at: now_us() });
                let _ = encode_frame_with_version(version, next_server_id, &beat, &mut out);
            }
        }
        if !out.is_empty() {
            if writer.write_all(&out).await.is_err() {
                shared.cancel.cancel();
                return;
            }
            out.clear();
            last_sent = Instant::now();
        }
    }
}

/// Sends a buyer's deliveries read back from the journal, in order. A journal that cannot be
/// read ends the session: the buyer reconnects and asks again, nothing is skipped.
#[allow(clippy::too_many_arguments)]
async fn replay_from_journal(
    journal_dir: &std::path::Path,
    buyer: u64,
    after: u64,
    through: u64,
    out: &mut BytesMut,
    shared: &SessionShared,
    next_server_id: &mut u64,
    version: u8,
) {
    let dir = journal_dir.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        super::journal_log::read_deliveries(&dir, buyer, after, through)
    })
    .await;
    match read {
        Ok(Ok(deliveries)) => {
            for delivery in deliveries {
                let notice = Outbound::Notice {
                    message: Message::LeadDelivery(delivery),
                };
                encode(out, notice, shared, next_server_id, version);
            }
        }
        _ => shared.end_with(
            ErrorCode::INTERNAL_ERROR,
            "older deliveries could not be read back from the journal; reconnect to retry",
        ),
    }
}

fn encode(
    out: &mut BytesMut,
    outbound: Outbound,
    shared: &SessionShared,
    next_server_id: &mut u64,
    version: u8,
) {
    let (correlation_id, message) = match outbound {
        Outbound::Response {
            correlation_id,
            message,
        } => {
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            (correlation_id, message)
        }
        Outbound::Control {
            correlation_id,
            message,
        } => (correlation_id, message),
        Outbound::JournalReplay { .. } => return,
        Outbound::Notice { message } => {
            *next_server_id += 1;
            if matches!(message, Message::PingOffer(_) | Message::LeadDelivery(_)) {
                shared.expect_answer(*next_server_id);
            }
            (*next_server_id, message)
        }
    };
    if let Err(error) = encode_frame_with_version(version, correlation_id, &message, out) {
        // Only a message the exchange built wrongly can fail to encode: tell the peer the
        // request failed rather than send nothing.
        let answer = error_message(
            ErrorCode::INTERNAL_ERROR,
            &format!("the answer could not be encoded: {error}"),
        );
        let _ = encode_frame_with_version(version, correlation_id, &answer, out);
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
