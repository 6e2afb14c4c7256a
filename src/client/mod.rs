//! The async client library: connect, log in, pipeline requests, receive offers and deliveries.
//!
//! # Shape
//!
//! [`Client::connect`] opens one TCP connection, logs in, and spawns one I/O task that owns the
//! socket for the rest of the session (see `connection.rs`). A [`Client`] is a cheap, cloneable
//! handle to that task: any number of tasks may call it at once. Each call encodes its request
//! into a frame with a fresh correlation id, takes one of the `in_flight_max` permits the server
//! announced (waiting for one if all are taken, so the server never answers
//! `TOO_MANY_IN_FLIGHT`), hands the frame to the I/O task and waits for the answer the task
//! matches to it by correlation id. Answers may come in any order.
//!
//! What the server sends unasked (offers, deliveries, auction notices, `GOODBYE`) arrives as
//! [`ServerEvent`]s on the queue [`Client::incoming`] hands out once.
//!
//! The I/O task also keeps the session alive (heartbeats), declares a silent server dead, and
//! ends the session in order ([`Client::close`]). When the session ends for any reason, every
//! pending and later call fails at once with [`ClientError::Disconnected`] and its reason; no
//! call waits forever.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), pingpost::client::ClientError> {
//! use pingpost::client::{Client, LoginParams};
//! use pingpost::protocol::Role;
//!
//! let client = Client::connect("127.0.0.1:7400", LoginParams::new(Role::Admin, 1, "s3cret")).await?;
//! let stats = client.stats().await?;
//! println!("up for {} ms", stats.uptime_ms);
//! client.close().await?;
//! # Ok(())
//! # }
//! ```

mod buyer;
mod connection;
mod error;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs, lookup_host};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

pub use buyer::{DeliveryHandle, Incoming, OfferHandle, ServerEvent};
pub use error::{ClientError, DisconnectReason, ProtocolError};

use crate::limits::{
    CLIENT_COMMAND_QUEUE_LEN, CLIENT_IN_FLIGHT_MAX, CLIENT_INCOMING_QUEUE_LEN, FRAME_HEADER_LEN,
    FRAME_LENGTH_MAX, FRAME_PREFIX_LEN, LOGIN_TIMEOUT_MS, PROTOCOL_VERSION_MAX,
    PROTOCOL_VERSION_MIN,
};
use crate::protocol::{
    AdminOk, BuyerPut, BuyerRemove, CampaignPut, CampaignRemove, DirectPost, EncodeError,
    ErrorCode, Login, LoginAccepted, Message, MessageType, Ping, PingResult, Post, PostResult,
    Role, SellerPut, SellerRemove, SetStatus, Stats, StatsRequest, Trace, TraceKey, TraceRequest,
    VerticalPut, VerticalRemove, check_frame, decode_frame, encode_frame,
};

/// Who to log in as, and what to ask the server for.
#[derive(Clone)]
pub struct LoginParams {
    /// What the session acts as.
    pub role: Role,
    /// The seller's, buyer's or admin's id.
    pub principal_id: u64,
    /// The principal's secret (at most 128 bytes); sent only inside `LOGIN`.
    pub secret: String,
    /// The heartbeat interval to ask for; 0 (the default) takes the server's default.
    pub heartbeat_interval_ms: u32,
    /// Buyers: the `delivery_seq` of the last delivery processed, so the server re-sends the
    /// later ones. Pass the previous session's [`Client::last_delivery_seq`] when reconnecting.
    pub last_delivery_seq: u64,
    /// Free text for the server's logs (at most 64 bytes).
    pub client_name: String,
}

impl LoginParams {
    /// Login parameters with the server's default heartbeat, no deliveries processed yet, and
    /// this library as the client name.
    pub fn new(role: Role, principal_id: u64, secret: impl Into<String>) -> Self {
        Self {
            role,
            principal_id,
            secret: secret.into(),
            heartbeat_interval_ms: 0,
            last_delivery_seq: 0,
            client_name: concat!("pingpost-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    fn to_wire(&self) -> Login<'_> {
        Login {
            role: self.role,
            principal_id: self.principal_id,
            secret: self.secret.as_str().into(),
            version_min: PROTOCOL_VERSION_MIN,
            version_max: PROTOCOL_VERSION_MAX,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            last_delivery_seq: self.last_delivery_seq,
            client_name: self.client_name.as_str().into(),
        }
    }
}

impl fmt::Debug for LoginParams {
    /// Leaves the secret out, so that logging the parameters cannot leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginParams")
            .field("role", &self.role)
            .field("principal_id", &self.principal_id)
            .field("secret", &"<redacted>")
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("last_delivery_seq", &self.last_delivery_seq)
            .field("client_name", &self.client_name)
            .finish()
    }
}

/// A logged-in session. Clone it freely: every clone drives the same connection, and the
/// session ends in order (`GOODBYE`) once every clone and every offer or delivery handle is
/// dropped, or at once with [`close`](Self::close).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    incoming: Mutex<Option<Incoming>>,
}

/// What the client handles, the buyer handles and the I/O task share. Nothing here is held
/// across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    session: LoginAccepted,
    /// The largest `frame_length` this client sends: the server's announced maximum, capped
    /// by the protocol's.
    frame_length_max: u32,
    /// One permit per request the server will process at once.
    in_flight: Arc<Semaphore>,
    next_correlation_id: AtomicU64,
    /// Why the session ended or is ending; set once, the first reason wins. While it is set
    /// no new request is sent.
    end: Mutex<Option<DisconnectReason>>,
    /// Becomes `true` when the I/O task has stopped.
    finished: watch::Sender<bool>,
    /// The server acknowledged this client's `GOODBYE`.
    goodbye_acked: AtomicBool,
    pub(crate) last_delivery_seq: AtomicU64,
    /// The application took the event queue: a full queue then means "wait for it to make
    /// room", not "nobody will ever read this".
    pub(crate) incoming_taken: AtomicBool,
    /// Offers and deliveries handed to the application and not yet answered or dropped.
    pub(crate) server_requests_in_hand: AtomicUsize,
    pub(crate) in_hand_released: Notify,
}

impl Shared {
    pub(crate) fn next_correlation_id(&self) -> u64 {
        self.next_correlation_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records why the session ends (unless a reason is recorded already) and stops new
    /// requests. Returns the reason in force.
    pub(crate) fn end(&self, reason: DisconnectReason) -> DisconnectReason {
        let mut end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
        let reason = end.get_or_insert(reason).clone();
        drop(end);
        // Callers waiting for a permit fail at once instead of waiting for a dead session.
        self.in_flight.close();
        reason
    }

    pub(crate) fn ending(&self) -> Option<DisconnectReason> {
        self.end
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The recorded reason; a call only asks after the I/O task is gone, which records one.
    pub(crate) fn end_reason(&self) -> DisconnectReason {
        self.ending().unwrap_or(DisconnectReason::TaskEnded)
    }
}

/// What callers hand the I/O task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A request frame, with where its answer goes and the permit it holds until answered.
    Request {
        correlation_id: u64,
        frame: Bytes,
        reply: oneshot::Sender<Result<Message<'static>, ClientError>>,
        permit: OwnedSemaphorePermit,
    },
    /// An answer to a server request (`BID`, `NO_BID`, `DELIVERY_ACK`).
    Respond { frame: Bytes },
    /// Send `GOODBYE` and end the session when the server acknowledges it.
    Close,
}

impl Client {
    /// Connects to `addr`, logs in, and starts the session's I/O task. The whole exchange is
    /// bounded by `LOGIN_TIMEOUT_MS` (`ClientError::Timeout`).
    ///
    /// Fails with `LoginRejected` when the server refuses the login, `Connect` when no
    /// connection can be opened, `Protocol` when the server's answer breaks the spec.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        login: LoginParams,
    ) -> Result<Client, ClientError> {
        let login_timeout = Duration::from_millis(u64::from(LOGIN_TIMEOUT_MS));
        tokio::time::timeout(login_timeout, Self::connect_and_login(addr, login))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn connect_and_login(
        addr: impl ToSocketAddrs,
        login: LoginParams,
    ) -> Result<Client, ClientError> {
        // The LOGIN takes the session's first correlation id. Encoded before connecting, so
        // that an invalid login (a secret too long) costs the server no connection.
        let login_correlation_id = 1;
        let mut frame = BytesMut::new();
        encode_frame(
            login_correlation_id,
            &Message::Login(login.to_wire()),
            &mut frame,
        )?;

        let stream = open(addr).await?;
        // Pings are small and latency-bound: never let Nagle hold one back.
        stream.set_nodelay(true).map_err(ClientError::Io)?;
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(&frame).await.map_err(ClientError::Io)?;

        // Read exactly one frame; whatever follows it stays in the buffer for the I/O task
        // (a buyer's re-sent deliveries may arrive right behind LOGIN_ACCEPTED).
        let mut read_buf = BytesMut::with_capacity(connection::READ_CHUNK_LEN);
        let (correlation_id, answer) = loop {
            match check_frame(&read_buf, FRAME_LENGTH_MAX) {
                Ok(Some(length)) => {
                    let frame = decode_frame(&read_buf[..length])
                        .map_err(|error| ClientError::Protocol(ProtocolError::Decode(error)))?;
                    let answer = (frame.header.correlation_id, frame.message.into_owned());
                    read_buf.advance(length);
                    break answer;
                }
                Ok(None) => {}
                Err(error) => return Err(ClientError::Protocol(ProtocolError::Decode(error))),
            }
            read_buf.reserve(connection::READ_CHUNK_LEN);
            if reader
                .read_buf(&mut read_buf)
                .await
                .map_err(ClientError::Io)?
                == 0
            {
                let reason = if read_buf.is_empty() {
                    DisconnectReason::ConnectionClosed
                } else {
                    DisconnectReason::TruncatedFrame {
                        bytes_received: read_buf.len(),
                    }
                };
                return Err(ClientError::disconnected(reason));
            }
        };

        let accepted = match answer {
            Message::LoginAccepted(accepted) => accepted,
            Message::LoginRejected(rejected) => {
                return Err(ClientError::LoginRejected {
                    reason: rejected.reason,
                    message: rejected.message.into_owned(),
                });
            }
            Message::Error(error) => {
                return Err(ClientError::Server {
                    code: error.code,
                    message: error.message.into_owned(),
                });
            }
            other => return Err(unexpected("LOGIN_ACCEPTED", &other)),
        };
        check_accepted(login_correlation_id, correlation_id, &accepted)?;

        let permits = accepted.in_flight_max.min(CLIENT_IN_FLIGHT_MAX);
        let (finished, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            frame_length_max: accepted.frame_length_max.min(FRAME_LENGTH_MAX),
            in_flight: Arc::new(Semaphore::new(permits as usize)),
            next_correlation_id: AtomicU64::new(login_correlation_id + 1),
            end: Mutex::new(None),
            finished,
            goodbye_acked: AtomicBool::new(false),
            last_delivery_seq: AtomicU64::new(login.last_delivery_seq),
            incoming_taken: AtomicBool::new(false),
            server_requests_in_hand: AtomicUsize::new(0),
            in_hand_released: Notify::new(),
            session: accepted,
        });
        let (commands, commands_rx) = mpsc::channel(CLIENT_COMMAND_QUEUE_LEN);
        let (events, events_rx) = mpsc::channel(CLIENT_INCOMING_QUEUE_LEN);
        let driver = connection::Driver::new(
            connection::Connection::new(reader, writer, read_buf),
            Arc::clone(&shared),
            commands_rx,
            commands.downgrade(),
            events,
        );
        tokio::spawn(driver.run());

        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                commands,
                incoming: Mutex::new(Some(Incoming { events: events_rx })),
            }),
        })
    }

    /// What the server announced at login: session id, negotiated version, heartbeat interval,
    /// frame and in-flight limits, currency and the server's clock.
    pub fn session(&self) -> &LoginAccepted {
        &self.inner.shared.session
    }

    /// The server's offers, deliveries and notices. Returns the queue the first time only (one
    /// consumer owns it); `None` after. A buyer must take it and read it: see [`Incoming`].
    pub fn incoming(&self) -> Option<Incoming> {
        let incoming = self
            .inner
            .incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if incoming.is_some() {
            self.inner
                .shared
                .incoming_taken
                .store(true, Ordering::Release);
        }
        incoming
    }

    /// The highest `delivery_seq` this session has acknowledged (or the login's
    /// `last_delivery_seq` if none): pass it to the next login so the server re-sends only the
    /// deliveries after it. Acknowledge deliveries in order, or a reconnect may skip one that
    /// was still unanswered.
    pub fn last_delivery_seq(&self) -> u64 {
        self.inner.shared.last_delivery_seq.load(Ordering::Acquire)
    }

    /// Why the session ended, once it is ending or over; `None` while it is open.
    pub fn end_reason(&self) -> Option<DisconnectReason> {
        self.inner.shared.ending()
    }

    /// Whether the I/O task has stopped: the connection is closed.
    pub fn is_closed(&self) -> bool {
        *self.inner.shared.finished.borrow()
    }

    /// Waits until the connection is closed, and returns why.
    pub async fn closed(&self) -> DisconnectReason {
        let mut finished = self.inner.shared.finished.subscribe();
        // The sender lives in `Shared`, which `self` keeps alive, so this cannot fail.
        let _ = finished.wait_for(|finished| *finished).await;
        self.inner.shared.end_reason()
    }

    /// Ends the session in order: sends `GOODBYE`, lets the server answer what is in flight,
    /// waits for `GOODBYE_ACK` (at most `GOODBYE_TIMEOUT_MS`) and closes the connection. New
    /// calls fail with `Disconnected` from the moment `close` is called.
    ///
    /// Returns `Ok` when the server acknowledged, `Timeout` when it did not in time, and
    /// `Disconnected` when the session had already ended for another reason.
    pub async fn close(&self) -> Result<(), ClientError> {
        let shared = &self.inner.shared;
        // Fails only when the I/O task is gone, and then there is nothing left to close.
        let _ = self.inner.commands.send(Command::Close).await;
        let reason = self.closed().await;
        if shared.goodbye_acked.load(Ordering::Acquire) {
            Ok(())
        } else if matches!(reason, DisconnectReason::ClosedByClient) {
            Err(ClientError::Timeout)
        } else {
            Err(ClientError::disconnected(reason))
        }
    }

    /// Sends any client request and waits for its answer. An `ERROR` answer becomes
    /// [`ClientError::Server`]; every other answer is returned as it came, whatever its type
    /// (the typed calls check it). Fails with `NotARequest` for messages the client does not
    /// send as requests (answers, notices, `LOGIN`, `GOODBYE`: use [`close`](Self::close)).
    pub async fn request(&self, message: Message<'_>) -> Result<Message<'static>, ClientError> {
        let message_type = message.message_type();
        if !is_client_request(message_type) {
            return Err(ClientError::NotARequest(message_type));
        }
        let shared = &self.inner.shared;
        if let Some(reason) = shared.ending() {
            return Err(ClientError::disconnected(reason));
        }
        // Waiting here, not at the server, is what keeps the server from ever seeing more than
        // `in_flight_max` unanswered requests. The permit is released when the answer arrives.
        let permit = Arc::clone(&shared.in_flight)
            .acquire_owned()
            .await
            .map_err(|_| ClientError::disconnected(shared.end_reason()))?;

        let correlation_id = shared.next_correlation_id();
        // Encoding here, in the caller's task, keeps an invalid request the caller's error and
        // spreads the encoding work over the callers instead of the one I/O task.
        let mut frame = BytesMut::new();
        encode_frame(correlation_id, &message, &mut frame)?;
        let frame_length = frame.len().saturating_sub(FRAME_PREFIX_LEN);
        if frame_length > shared.frame_length_max as usize {
            return Err(ClientError::Encode(EncodeError {
                code: ErrorCode::FRAME_TOO_LARGE,
                field: "frame_length",
            }));
        }

        let (reply, answer) = oneshot::channel();
        let command = Command::Request {
            correlation_id,
            frame: frame.freeze(),
            reply,
            permit,
        };
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| ClientError::disconnected(shared.end_reason()))?;
        match answer.await {
            Ok(Ok(Message::Error(error))) => Err(ClientError::Server {
                code: error.code,
                message: error.message.into_owned(),
            }),
            Ok(answer) => answer,
            Err(_) => Err(ClientError::disconnected(shared.end_reason())),
        }
    }

    /// Seller: offers a lead's anonymized view for sale (`PING` → `PING_RESULT`).
    pub async fn ping(&self, ping: Ping<'_>) -> Result<PingResult<'static>, ClientError> {
        match self.request(Message::Ping(ping)).await? {
            Message::PingResult(result) => Ok(result),
            other => Err(unexpected("PING_RESULT", &other)),
        }
    }

    /// Seller: sells a pinged lead by sending its contact record (`POST` → `POST_RESULT`).
    pub async fn post(&self, post: Post<'_>) -> Result<PostResult<'static>, ClientError> {
        match self.request(Message::Post(post)).await? {
            Message::PostResult(result) => Ok(result),
            other => Err(unexpected("POST_RESULT", &other)),
        }
    }

    /// Seller: pings and posts in one step (`DIRECT_POST` → `POST_RESULT`).
    pub async fn direct_post(
        &self,
        direct_post: DirectPost<'_>,
    ) -> Result<PostResult<'static>, ClientError> {
        match self.request(Message::DirectPost(direct_post)).await? {
            Message::PostResult(result) => Ok(result),
            other => Err(unexpected("POST_RESULT", &other)),
        }
    }

    /// Admin: creates, updates or upserts a vertical (`VERTICAL_PUT` → `ADMIN_OK`).
    pub async fn vertical_put(&self, put: VerticalPut<'_>) -> Result<AdminOk, ClientError> {
        self.admin(Message::VerticalPut(put)).await
    }

    /// Admin: removes a vertical (`VERTICAL_REMOVE` → `ADMIN_OK`).
    pub async fn vertical_remove(
        &self,
        remove: VerticalRemove<'_>,
    ) -> Result<AdminOk, ClientError> {
        self.admin(Message::VerticalRemove(remove)).await
    }

    /// Admin: creates, updates or upserts a seller (`SELLER_PUT` → `ADMIN_OK`).
    pub async fn seller_put(&self, put: SellerPut<'_>) -> Result<AdminOk, ClientError> {
        self.admin(Message::SellerPut(put)).await
    }

    /// Admin: removes a seller (`SELLER_REMOVE` → `ADMIN_OK`).
    pub async fn seller_remove(&self, remove: SellerRemove) -> Result<AdminOk, ClientError> {
        self.admin(Message::SellerRemove(remove)).await
    }

    /// Admin: creates, updates or upserts a buyer (`BUYER_PUT` → `ADMIN_OK`).
    pub async fn buyer_put(&self, put: BuyerPut<'_>) -> Result<AdminOk, ClientError> {
        self.admin(Message::BuyerPut(put)).await
    }

    /// Admin: removes a buyer (`BUYER_REMOVE` → `ADMIN_OK`).
    pub async fn buyer_remove(&self, remove: BuyerRemove) -> Result<AdminOk, ClientError> {
        self.admin(Message::BuyerRemove(remove)).await
    }

    /// Admin: creates, updates or upserts a campaign (`CAMPAIGN_PUT` → `ADMIN_OK`).
    pub async fn campaign_put(&self, put: CampaignPut<'_>) -> Result<AdminOk, ClientError> {
        self.admin(Message::CampaignPut(put)).await
    }

    /// Admin: removes a campaign (`CAMPAIGN_REMOVE` → `ADMIN_OK`).
    pub async fn campaign_remove(&self, remove: CampaignRemove) -> Result<AdminOk, ClientError> {
        self.admin(Message::CampaignRemove(remove)).await
    }

    /// Admin: pauses or resumes a seller, buyer or campaign (`SET_STATUS` → `ADMIN_OK`).
    pub async fn set_status(&self, set_status: SetStatus) -> Result<AdminOk, ClientError> {
        self.admin(Message::SetStatus(set_status)).await
    }

    /// Admin: the exchange's counters and latencies (`STATS_REQUEST` → `STATS`).
    pub async fn stats(&self) -> Result<Stats<'static>, ClientError> {
        match self.request(Message::StatsRequest(StatsRequest)).await? {
            Message::Stats(stats) => Ok(stats),
            other => Err(unexpected("STATS", &other)),
        }
    }

    /// Admin: a lead's or ping's life, oldest event first (`TRACE_REQUEST` → `TRACE`).
    pub async fn trace(&self, key: TraceKey, id: u64) -> Result<Trace<'static>, ClientError> {
        match self
            .request(Message::TraceRequest(TraceRequest { key, id }))
            .await?
        {
            Message::Trace(trace) => Ok(trace),
            other => Err(unexpected("TRACE", &other)),
        }
    }

    async fn admin(&self, message: Message<'_>) -> Result<AdminOk, ClientError> {
        match self.request(message).await? {
            Message::AdminOk(ok) => Ok(ok),
            other => Err(unexpected("ADMIN_OK", &other)),
        }
    }
}

/// Bounds any client call by `duration`, failing with [`ClientError::Timeout`] when it runs
/// out. A request abandoned this way keeps its in-flight permit until the server answers it
/// (the server still counts it), so a timed-out call cannot push the client past
/// `in_flight_max`.
pub async fn timeout<T>(
    duration: Duration,
    call: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(duration, call)
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// Opens a TCP connection to the first address of `addr` that accepts one.
async fn open(addr: impl ToSocketAddrs) -> Result<TcpStream, ClientError> {
    let addrs = lookup_host(addr)
        .await
        .map_err(|source| ClientError::Connect { addr: None, source })?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(source) => {
                last_error = Some(ClientError::Connect {
                    addr: Some(addr),
                    source,
                })
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ClientError::Connect {
        addr: None,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolved to no socket address",
        ),
    }))
}

/// Checks the parts of `LOGIN_ACCEPTED` the client relies on, so that a broken server fails
/// the login instead of the session later.
fn check_accepted(
    login_correlation_id: u64,
    correlation_id: u64,
    accepted: &LoginAccepted,
) -> Result<(), ClientError> {
    let violation = |text: String| Err(ClientError::Protocol(ProtocolError::Violation(text)));
    if correlation_id != login_correlation_id {
        return violation(format!(
            "LOGIN_ACCEPTED carries correlation id {correlation_id}, \
             not the LOGIN's {login_correlation_id}"
        ));
    }
    if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&accepted.version) {
        return violation(format!(
            "the server chose version {}, outside the client's {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION_MAX}",
            accepted.version
        ));
    }
    if accepted.heartbeat_interval_ms == 0 {
        return violation("the server announced a heartbeat interval of 0 ms".to_owned());
    }
    if accepted.in_flight_max == 0 {
        return violation(
            "the server announced in_flight_max 0: no request could be sent".to_owned(),
        );
    }
    if (accepted.frame_length_max as usize) < FRAME_HEADER_LEN {
        return violation(format!(
            "the server announced frame_length_max {}, below the header's {FRAME_HEADER_LEN} bytes",
            accepted.frame_length_max
        ));
    }
    Ok(())
}

/// Whether the client may send `message_type` with [`Client::request`]: the requests a client
/// sends and the server answers. `LOGIN` and `GOODBYE` belong to the session's own machinery.
fn is_client_request(message_type: MessageType) -> bool {
    matches!(
        message_type,
        MessageType::Heartbeat
            | MessageType::Ping
            | MessageType::Post
            | MessageType::DirectPost
            | MessageType::VerticalPut
            | MessageType::VerticalRemove
            | MessageType::SellerPut
            | MessageType::SellerRemove
            | MessageType::BuyerPut
            | MessageType::BuyerRemove
            | MessageType::CampaignPut
            | MessageType::CampaignRemove
            | MessageType::SetStatus
            | MessageType::StatsRequest
            | MessageType::TraceRequest
    )
}

fn unexpected(expected: &'static str, got: &Message<'_>) -> ClientError {
    ClientError::Protocol(ProtocolError::UnexpectedResponse {
        expected,
        got: got.message_type(),
    })
}
