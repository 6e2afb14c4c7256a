//! The session's I/O task: the only code that touches the socket after login.
//!
//! One task per connection owns both socket halves and both buffers ([`Connection`]) and
//! drives everything from one `select!` loop ([`Driver`]):
//!
//! - **Reads** go into one reused `BytesMut`. Each complete frame is checked (`check_frame`)
//!   before it is decoded, so an incomplete frame is just a wait, and a frame is never longer
//!   than `FRAME_LENGTH_MAX`: the read buffer holds at most one frame plus one read.
//! - **Writes** are batched: every wakeup moves all queued frames (requests and answers the
//!   callers encoded, plus the task's own heartbeats, acks and errors, encoded in place) into
//!   one write buffer, and the loop writes it with one `write` call per readiness. Nothing is
//!   flushed per frame; the buffer empties when the queue is drained and the socket takes it.
//! - Reading and writing are separate branches of the same `select!`, so a server that is busy
//!   writing to us never stops us from reading it, and the other way round.
//! - **Backpressure.** The task stops taking new frames from callers while
//!   `WRITE_BUFFER_SOFT_MAX` bytes wait to be written (callers then wait on the bounded
//!   command queue), and stops reading the socket while the application's event queue is full
//!   (the server then sees a slow reader). It never blocks on one consumer otherwise: answers
//!   to other requests, heartbeats and writes carry on.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::{self, Instant};

use super::buyer::{DeliveryHandle, OfferHandle, Responder, ServerEvent, decline_offer};
use super::error::{ClientError, DisconnectReason, ProtocolError};
use super::{Command, Shared};
use crate::limits::{
    FRAME_LENGTH_MAX, GOODBYE_TIMEOUT_MS, HEARTBEAT_MISSES_MAX, MESSAGE_TEXT_LEN_MAX,
};
use crate::protocol::{
    DecodeError, ErrorCode, Goodbye, GoodbyeAck, Heartbeat, HeartbeatAck, Message, MessageType,
    check_frame, decode_frame, encode_frame,
};

/// Bytes the read buffer has room for before each read. Most frames are under 2 KiB, so one
/// read usually brings many; larger frames grow the buffer up to one frame.
pub(crate) const READ_CHUNK_LEN: usize = 16 * 1024;

/// Unwritten bytes above which the task stops taking frames from callers. One large admin
/// frame can still be added on top, so the buffer stays below this plus `FRAME_LENGTH_MAX`.
const WRITE_BUFFER_SOFT_MAX: usize = 64 * 1024;

/// The socket halves and the two buffers of one session.
#[derive(Debug)]
pub(crate) struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl Connection {
    /// Takes over a logged-in socket; `read_buf` holds whatever arrived behind the login answer.
    pub(crate) fn new(reader: OwnedReadHalf, writer: OwnedWriteHalf, read_buf: BytesMut) -> Self {
        Self {
            reader,
            writer,
            read_buf,
            write_buf: BytesMut::with_capacity(READ_CHUNK_LEN),
        }
    }
}

/// A request written to the server and not yet answered.
#[derive(Debug)]
struct Pending {
    reply: oneshot::Sender<Result<Message<'static>, ClientError>>,
    /// Held until the answer arrives, so the caller's in-flight slot stays taken exactly as
    /// long as the server counts the request.
    _permit: OwnedSemaphorePermit,
}

/// Where the session is in its orderly end.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Open,
    /// This client sent `GOODBYE`; it closes at `GOODBYE_ACK` or at `deadline`.
    ClientGoodbye {
        deadline: Instant,
    },
    /// The server sent `GOODBYE` with `correlation_id`. Before `acked`, the client waits for
    /// its pending requests and the offers and deliveries in hand (until `deadline`); after,
    /// it waits for the server to close (until `deadline`).
    ServerGoodbye {
        correlation_id: u64,
        deadline: Instant,
        acked: bool,
    },
}

/// The state of the I/O task.
#[derive(Debug)]
pub(crate) struct Driver {
    conn: Connection,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    /// `false` once every client and handle is gone.
    commands_open: bool,
    /// Lets the task give handles a way to answer without keeping the command queue open itself
    /// (the queue closing is how the task learns every handle is gone).
    responders: mpsc::WeakSender<Command>,
    events: mpsc::Sender<ServerEvent>,
    /// An event the application's full queue could not take; reading waits until it can.
    parked: Option<ServerEvent>,
    pending: HashMap<u64, Pending>,
    phase: Phase,
    version: u8,
    heartbeat_interval: Duration,
    /// `HEARTBEAT_MISSES_MAX` intervals: silence this long means the server is dead.
    silence_max: Duration,
    /// When bytes last went out (or a heartbeat was queued).
    last_sent: Instant,
    /// When bytes last came in.
    last_received: Instant,
    finished: bool,
}

impl Driver {
    pub(crate) fn new(
        conn: Connection,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        responders: mpsc::WeakSender<Command>,
        events: mpsc::Sender<ServerEvent>,
    ) -> Self {
        let session = &shared.session;
        let heartbeat_interval = Duration::from_millis(u64::from(session.heartbeat_interval_ms));
        let pending_capacity = shared.in_flight.available_permits().min(1024);
        let now = Instant::now();
        Self {
            conn,
            version: session.version,
            heartbeat_interval,
            silence_max: heartbeat_interval.saturating_mul(HEARTBEAT_MISSES_MAX),
            shared,
            commands,
            commands_open: true,
            responders,
            events,
            parked: None,
            pending: HashMap::with_capacity(pending_capacity),
            phase: Phase::Open,
            last_sent: now,
            last_received: now,
            finished: false,
        }
    }

    /// Runs the session to its end, then fails whatever is left with the reason.
    pub(crate) async fn run(mut self) {
        let reason = self.drive().await;
        self.finish(reason);
    }

    async fn drive(&mut self) -> DisconnectReason {
        let mut timer = Box::pin(time::sleep_until(self.next_deadline()));
        loop {
            if let Err(reason) = self.process_frames() {
                return reason;
            }
            self.advance_server_goodbye(Instant::now());

            let deadline = self.next_deadline();
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let read_open = self.parked.is_none();
            if read_open {
                self.conn.read_buf.reserve(READ_CHUNK_LEN);
            }
            let take_commands =
                self.commands_open && self.conn.write_buf.len() < WRITE_BUFFER_SOFT_MAX;
            let write_waiting = !self.conn.write_buf.is_empty();
            let waiting_for_in_hand =
                matches!(self.phase, Phase::ServerGoodbye { acked: false, .. });

            tokio::select! {
                read = self.conn.reader.read_buf(&mut self.conn.read_buf), if read_open => {
                    match read {
                        Ok(0) => return self.on_eof(),
                        Ok(_) => self.last_received = Instant::now(),
                        Err(error) => return DisconnectReason::Io(Arc::new(error)),
                    }
                }
                written = self.conn.writer.write_buf(&mut self.conn.write_buf), if write_waiting => {
                    match written {
                        Ok(0) => {
                            let error = std::io::Error::from(std::io::ErrorKind::WriteZero);
                            return DisconnectReason::Io(Arc::new(error));
                        }
                        Ok(_) => self.last_sent = Instant::now(),
                        Err(error) => return DisconnectReason::Io(Arc::new(error)),
                    }
                }
                command = self.commands.recv(), if take_commands => match command {
                    Some(command) => {
                        self.on_command(command);
                        self.drain_commands(WRITE_BUFFER_SOFT_MAX);
                    }
                    None => {
                        // Every client and handle is gone: nobody can use the session.
                        self.commands_open = false;
                        self.begin_client_goodbye();
                    }
                },
                // An owned permit, so the output does not borrow `self` (cloned only while parked).
                permit = self.events.clone().reserve_owned(), if self.parked.is_some() => {
                    let event = self.parked.take();
                    match (permit, event) {
                        (Ok(permit), Some(event)) => {
                            permit.send(event);
                        }
                        (Err(_), Some(event)) => self.on_unwanted(event),
                        (_, None) => {}
                    }
                    // We were the slow side; the server's silence meanwhile proves nothing.
                    self.last_received = Instant::now();
                }
                () = timer.as_mut() => {
                    if let Err(reason) = self.on_timer(Instant::now()) {
                        return reason;
                    }
                }
                () = self.shared.in_hand_released.notified(), if waiting_for_in_hand => {}
            }
        }
    }

    /// Handles every complete frame in the read buffer, unless an event is parked.
    fn process_frames(&mut self) -> Result<(), DisconnectReason> {
        while self.parked.is_none() {
            let length = match check_frame(&self.conn.read_buf, FRAME_LENGTH_MAX) {
                Ok(Some(length)) => length,
                Ok(None) => return Ok(()),
                Err(error) => {
                    // The next frame cannot be found: say why, as the spec asks, and close.
                    self.queue_error(0, error.code, &format!("the client cannot frame: {error}"));
                    self.try_flush();
                    return Err(DisconnectReason::Framing(error));
                }
            };
            let frame = &self.conn.read_buf[..length];
            let raw_type = frame
                .get(4..6)
                .map_or(0, |bytes| u16::from_le_bytes([bytes[0], bytes[1]]));
            let decoded = decode_frame(frame).map(|frame| {
                (
                    frame.header.version,
                    frame.header.correlation_id,
                    frame.message.into_owned(),
                )
            });
            self.conn.read_buf.advance(length);
            match decoded {
                Ok((version, correlation_id, _)) if version != self.version => {
                    // Only the negotiated version may follow the login (spec section 1).
                    let error = DecodeError {
                        code: ErrorCode::UNSUPPORTED_VERSION,
                        correlation_id: Some(correlation_id),
                        field: "version",
                        offset: 6,
                    };
                    self.on_bad_frame(raw_type, error);
                }
                Ok((_, correlation_id, message)) => self.on_message(correlation_id, message)?,
                Err(error) => self.on_bad_frame(raw_type, error),
            }
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        correlation_id: u64,
        message: Message<'static>,
    ) -> Result<(), DisconnectReason> {
        match message {
            Message::Heartbeat(Heartbeat { sent_at }) => {
                self.queue(
                    correlation_id,
                    &Message::HeartbeatAck(HeartbeatAck { sent_at }),
                );
            }
            Message::Goodbye(goodbye) => self.on_server_goodbye(correlation_id, goodbye),
            Message::GoodbyeAck(_) => {
                if let Phase::ClientGoodbye { .. } = self.phase {
                    self.shared.goodbye_acked.store(true, Ordering::Release);
                    return Err(DisconnectReason::ClosedByClient);
                }
                self.queue_error(
                    correlation_id,
                    ErrorCode::UNEXPECTED_MESSAGE,
                    "GOODBYE_ACK but the client sent no GOODBYE",
                );
            }
            Message::PingOffer(offer) => match self.responder(correlation_id) {
                Some(responder) => {
                    self.emit(ServerEvent::Offer(OfferHandle::new(offer, responder)))
                }
                // Nobody is left to answer: decline at once so the auction does not wait.
                None => decline_offer(correlation_id, &offer, &mut self.conn.write_buf),
            },
            Message::LeadDelivery(delivery) => {
                // Unanswerable deliveries are left alone: the server re-sends them after a
                // reconnect, because `last_delivery_seq` does not move past them.
                if let Some(responder) = self.responder(correlation_id) {
                    self.emit(ServerEvent::Delivery(DeliveryHandle::new(
                        delivery, responder,
                    )));
                }
            }
            Message::AuctionWon(won) => self.emit(ServerEvent::Won(won)),
            Message::AuctionLost(lost) => self.emit(ServerEvent::Lost(lost)),
            Message::Error(error) => {
                if let Some(pending) = self.pending.remove(&correlation_id) {
                    let _ = pending.reply.send(Ok(Message::Error(error)));
                    return Ok(());
                }
                let code = error.code;
                let message = error.message.into_owned();
                if code.is_fatal() {
                    // The server closes after a fatal error: make that the session's reason.
                    self.shared.end(DisconnectReason::Code {
                        code,
                        message: message.clone(),
                    });
                }
                self.emit(ServerEvent::Error {
                    correlation_id,
                    code,
                    message,
                });
            }
            answer @ (Message::PingResult(_)
            | Message::PostResult(_)
            | Message::AdminOk(_)
            | Message::Stats(_)
            | Message::Trace(_)
            | Message::HeartbeatAck(_)
            | Message::LoginAccepted(_)
            | Message::LoginRejected(_)) => match self.pending.remove(&correlation_id) {
                Some(pending) => {
                    // The caller may have given up; its permit is released either way.
                    let _ = pending.reply.send(Ok(answer));
                }
                // The answers to the task's own heartbeats are not pending: they only prove
                // the server alive, which receiving them already recorded.
                None if matches!(answer, Message::HeartbeatAck(_)) => {}
                None => {
                    let text = format!(
                        "{} answers no request of this client",
                        answer.message_type().name()
                    );
                    self.queue_error(correlation_id, ErrorCode::UNEXPECTED_MESSAGE, &text);
                }
            },
            other => {
                // Requests only a client sends (PING, BID, admin changes, ...).
                let text = format!("a client does not accept {}", other.message_type().name());
                self.queue_error(correlation_id, ErrorCode::UNEXPECTED_MESSAGE, &text);
            }
        }
        Ok(())
    }

    /// A frame that does not decode. An answer to one of our requests fails that request; any
    /// other frame gets `ERROR` back, as the spec asks of every receiver.
    fn on_bad_frame(&mut self, raw_type: u16, error: DecodeError) {
        if let Some(correlation_id) = error.correlation_id
            && is_server_answer(raw_type)
            && let Entry::Occupied(entry) = self.pending.entry(correlation_id)
        {
            let pending = entry.remove();
            let _ = pending
                .reply
                .send(Err(ClientError::Protocol(ProtocolError::Decode(error))));
            return;
        }
        // Answering an ERROR with an ERROR could ping-pong forever between two confused peers.
        if raw_type == MessageType::Error.as_u16() {
            return;
        }
        let text = format!("the client cannot read this frame: {error}");
        self.queue_error(error.reply_correlation_id(), error.code, &text);
    }

    fn on_server_goodbye(&mut self, correlation_id: u64, goodbye: Goodbye<'static>) {
        let now = Instant::now();
        match self.phase {
            Phase::Open => {
                let message = goodbye.message.into_owned();
                self.shared.end(DisconnectReason::Code {
                    code: goodbye.reason,
                    message: message.clone(),
                });
                self.emit(ServerEvent::Goodbye {
                    reason: goodbye.reason,
                    message,
                });
                self.phase = Phase::ServerGoodbye {
                    correlation_id,
                    deadline: now + goodbye_timeout(),
                    acked: false,
                };
            }
            // Both sides said goodbye at once: acknowledge theirs and keep waiting for ours.
            Phase::ClientGoodbye { .. } => {
                self.queue(correlation_id, &Message::GoodbyeAck(GoodbyeAck));
            }
            Phase::ServerGoodbye { .. } => {}
        }
    }

    /// After the server's `GOODBYE`, acknowledges once the client has nothing left in hand:
    /// no request of its own unanswered, no offer or delivery unanswered. The spec's order
    /// (answers first, then `GOODBYE_ACK`) lets the server finish cleanly.
    fn advance_server_goodbye(&mut self, now: Instant) {
        let Phase::ServerGoodbye {
            correlation_id,
            deadline,
            acked: false,
        } = self.phase
        else {
            return;
        };
        let in_hand = self.shared.server_requests_in_hand.load(Ordering::Acquire);
        if (!self.pending.is_empty() || in_hand > 0) && now < deadline {
            return;
        }
        // Answers the handles queued before releasing their count must go out before the ack.
        self.drain_commands(usize::MAX);
        self.queue(correlation_id, &Message::GoodbyeAck(GoodbyeAck));
        self.phase = Phase::ServerGoodbye {
            correlation_id,
            deadline: now + goodbye_timeout(),
            acked: true,
        };
    }

    fn begin_client_goodbye(&mut self) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        self.shared.end(DisconnectReason::ClosedByClient);
        let goodbye = Goodbye {
            reason: ErrorCode::NONE,
            message: "the client is closing".into(),
        };
        let correlation_id = self.shared.next_correlation_id();
        self.queue(correlation_id, &Message::Goodbye(goodbye));
        self.phase = Phase::ClientGoodbye {
            deadline: Instant::now() + goodbye_timeout(),
        };
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                correlation_id,
                frame,
                reply,
                permit,
            } => {
                if !matches!(self.phase, Phase::Open) {
                    // After either GOODBYE no new request goes out.
                    let reason = self.shared.end_reason();
                    let _ = reply.send(Err(ClientError::disconnected(reason)));
                    return;
                }
                if reply.is_closed() {
                    // The caller gave up before the request left: do not send it at all.
                    return;
                }
                self.conn.write_buf.extend_from_slice(&frame);
                let previous = self.pending.insert(
                    correlation_id,
                    Pending {
                        reply,
                        _permit: permit,
                    },
                );
                assert!(
                    previous.is_none(),
                    "correlation id {correlation_id} issued twice"
                );
            }
            Command::Respond { frame } => self.conn.write_buf.extend_from_slice(&frame),
            Command::Close => self.begin_client_goodbye(),
        }
    }

    /// Moves queued commands into the write buffer until the queue is empty or `bytes_max`
    /// bytes wait: one wakeup, one batch, one write.
    fn drain_commands(&mut self, bytes_max: usize) {
        while self.conn.write_buf.len() < bytes_max {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn on_timer(&mut self, now: Instant) -> Result<(), DisconnectReason> {
        if self.parked.is_none() && now >= self.last_received + self.silence_max {
            let silent_ms = u64::try_from(self.silence_max.as_millis()).unwrap_or(u64::MAX);
            let reason = DisconnectReason::heartbeat_timeout(silent_ms);
            let goodbye = Goodbye {
                reason: ErrorCode::HEARTBEAT_TIMEOUT,
                message: reason.to_string().into(),
            };
            let correlation_id = self.shared.next_correlation_id();
            self.queue(correlation_id, &Message::Goodbye(goodbye));
            // "If it can": one non-blocking attempt, since the server may be reading nothing.
            self.try_flush();
            return Err(reason);
        }
        if now >= self.last_sent + self.heartbeat_interval {
            // Bytes already waiting to go out will show the server we are alive; piling
            // heartbeats behind them would only grow the buffer of a stuck socket.
            if self.conn.write_buf.is_empty() {
                let correlation_id = self.shared.next_correlation_id();
                self.queue(
                    correlation_id,
                    &Message::Heartbeat(Heartbeat {
                        sent_at: unix_time_us(),
                    }),
                );
            }
            self.last_sent = now;
        }
        match self.phase {
            Phase::ClientGoodbye { deadline } if now >= deadline => {
                Err(DisconnectReason::GoodbyeUnanswered)
            }
            // We acknowledged the server's GOODBYE and it never closed: close ourselves.
            Phase::ServerGoodbye {
                deadline,
                acked: true,
                ..
            } if now >= deadline => Err(self.shared.end_reason()),
            _ => Ok(()),
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut deadline = self.last_sent + self.heartbeat_interval;
        if self.parked.is_none() {
            deadline = deadline.min(self.last_received + self.silence_max);
        }
        match self.phase {
            Phase::Open => deadline,
            Phase::ClientGoodbye { deadline: end } | Phase::ServerGoodbye { deadline: end, .. } => {
                deadline.min(end)
            }
        }
    }

    fn on_eof(&mut self) -> DisconnectReason {
        if self.conn.read_buf.is_empty() {
            DisconnectReason::ConnectionClosed
        } else {
            DisconnectReason::TruncatedFrame {
                bytes_received: self.conn.read_buf.len(),
            }
        }
    }

    /// A handle's way to answer, unless every client and handle is gone.
    fn responder(&self, correlation_id: u64) -> Option<Responder> {
        let commands = self.responders.upgrade()?;
        Some(Responder::new(
            Arc::clone(&self.shared),
            commands,
            correlation_id,
        ))
    }

    /// Queues an event for the application. When the queue is full and the application holds
    /// it, reading stops until it makes room (backpressure reaches the server as a slow reader);
    /// when nobody took the queue, nobody is going to make room, so the event is unwanted.
    fn emit(&mut self, event: ServerEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event))
                if self.shared.incoming_taken.load(Ordering::Acquire) =>
            {
                self.parked = Some(event);
            }
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => self.on_unwanted(event),
        }
    }

    /// Nobody reads events any more. Offers are declined so no auction waits for this client;
    /// a dropped delivery handle leaves the delivery to be re-sent after a reconnect.
    fn on_unwanted(&mut self, event: ServerEvent) {
        if let ServerEvent::Offer(handle) = event {
            decline_offer(
                handle.correlation_id(),
                handle.offer(),
                &mut self.conn.write_buf,
            );
        }
    }

    /// Encodes one of the task's own messages straight into the write buffer.
    fn queue(&mut self, correlation_id: u64, message: &Message<'_>) {
        let length = self.conn.write_buf.len();
        if let Err(error) = encode_frame(correlation_id, message, &mut self.conn.write_buf) {
            // Only the task's own fixed messages get here, which always encode.
            debug_assert!(
                false,
                "the client's own {:?} failed to encode: {error}",
                message.message_type()
            );
            self.conn.write_buf.truncate(length);
        }
    }

    fn queue_error(&mut self, correlation_id: u64, code: ErrorCode, text: &str) {
        let message = truncate_at_char(text, MESSAGE_TEXT_LEN_MAX);
        let error = crate::protocol::Error {
            code,
            message: message.into(),
        };
        self.queue(correlation_id, &Message::Error(error));
    }

    /// One non-blocking write of whatever is buffered, for last words before closing.
    fn try_flush(&mut self) {
        if let Ok(written) = self.conn.writer.try_write(&self.conn.write_buf) {
            self.conn.write_buf.advance(written);
        }
    }

    /// Fails everything still waiting with the session's reason and tells the handles the
    /// task is gone. Runs once, from `run` or, if the task is torn down early, from `drop`.
    fn finish(&mut self, reason: DisconnectReason) {
        if self.finished {
            return;
        }
        self.finished = true;
        let reason = self.shared.end(reason);
        for (_, pending) in self.pending.drain() {
            let _ = pending
                .reply
                .send(Err(ClientError::disconnected(reason.clone())));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Request { reply, .. } = command {
                let _ = reply.send(Err(ClientError::disconnected(reason.clone())));
            }
        }
        // Dropping a parked handle releases its in-hand count.
        self.parked = None;
        self.shared.finished.send_replace(true);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Reached without `run` finishing only if the task panicked or its runtime shut down;
        // pending callers must still be told, or they would wait forever.
        self.finish(DisconnectReason::TaskEnded);
    }
}

fn goodbye_timeout() -> Duration {
    Duration::from_millis(u64::from(GOODBYE_TIMEOUT_MS))
}

/// Whether a frame of this raw type is an answer the server sends to a client request.
fn is_server_answer(raw_type: u16) -> bool {
    [
        MessageType::LoginAccepted,
        MessageType::LoginRejected,
        MessageType::HeartbeatAck,
        MessageType::GoodbyeAck,
        MessageType::Error,
        MessageType::PingResult,
        MessageType::PostResult,
        MessageType::AdminOk,
        MessageType::Stats,
        MessageType::Trace,
    ]
    .iter()
    .any(|message_type| message_type.as_u16() == raw_type)
}

/// The wall clock for `HEARTBEAT.sent_at`; only the server's echo of it is ever compared.
fn unix_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// `text` cut to at most `bytes_max` bytes without splitting a character.
fn truncate_at_char(text: &str, bytes_max: usize) -> &str {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_cut_at_a_character_boundary() {
        assert_eq!(truncate_at_char("short", 256), "short");
        // "é" is two bytes: a cut at 3 would split the second one.
        assert_eq!(truncate_at_char("éé", 3), "é");
        let long = "x".repeat(300);
        assert_eq!(
            truncate_at_char(&long, MESSAGE_TEXT_LEN_MAX).len(),
            MESSAGE_TEXT_LEN_MAX
        );
    }

    #[test]
    fn only_answers_are_server_answers() {
        assert!(is_server_answer(MessageType::PingResult.as_u16()));
        assert!(is_server_answer(MessageType::Error.as_u16()));
        assert!(!is_server_answer(MessageType::PingOffer.as_u16()));
        assert!(!is_server_answer(MessageType::Heartbeat.as_u16()));
        assert!(!is_server_answer(0xFFFF));
    }
}
