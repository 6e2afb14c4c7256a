//! What the server sends a client unasked: offers and deliveries to answer, notices to read.
//!
//! The I/O task turns each such frame into a [`ServerEvent`] on a bounded queue that the
//! application takes once with [`Client::incoming`](super::Client::incoming). Offers and
//! deliveries come as handles that answer with the request's correlation id, so the
//! application never sees ids or frames.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::error::ClientError;
use super::{Command, Shared};
use crate::protocol::{
    AuctionLost, AuctionWon, Bid, DeliveryAck, DeliveryOutcome, ErrorCode, LeadDelivery, Message,
    NoBid, PingOffer, encode_frame,
};

/// One thing the server sent unasked, in the order it arrived.
#[derive(Debug)]
pub enum ServerEvent {
    /// `PING_OFFER`: the exchange asks for a bid; answer with [`OfferHandle::bid`] or
    /// [`OfferHandle::no_bid`] within the offer's `bid_within_ms`.
    Offer(OfferHandle),
    /// `LEAD_DELIVERY`: a won lead with its contact record; answer with
    /// [`DeliveryHandle::accept`] or [`DeliveryHandle::reject`] within `accept_within_ms`.
    Delivery(DeliveryHandle),
    /// `AUCTION_WON`: a bid or fixed price won; the lead follows if the seller posts it.
    Won(AuctionWon),
    /// `AUCTION_LOST`: a bid did not win, or the won lead will not be delivered.
    Lost(AuctionLost),
    /// `GOODBYE`: the server is ending the session. The client answers `GOODBYE_ACK` once its
    /// own requests are answered and every offer and delivery handed out has been answered or
    /// dropped (bounded by `GOODBYE_TIMEOUT_MS`); then the stream ends.
    Goodbye {
        /// Why, e.g. `SERVER_SHUTTING_DOWN` (207).
        reason: ErrorCode,
        /// The server's sentence for a human.
        message: String,
    },
    /// An `ERROR` that answers none of this client's pending requests: most often the server
    /// refusing one of this client's answers (a `BID` after the offer expired), or an error
    /// about a frame it could not read at all (correlation id 0).
    Error {
        /// The correlation id the `ERROR` carries.
        correlation_id: u64,
        /// The server's code.
        code: ErrorCode,
        /// The server's sentence for a human.
        message: String,
    },
}

/// The receiving end of the server's events. It ends (yields `None`) when the session is over.
///
/// Read it promptly: when its queue (`CLIENT_INCOMING_QUEUE_LEN` events) is full, the client stops
/// reading the socket until there is room, so a slow consumer slows the whole session (the
/// server sees a slow reader) rather than growing memory without bound. Dropping it is allowed:
/// later offers are then answered `NO_BID NOT_INTERESTED` (600) at once so no auction waits on
/// this client, and later deliveries are left unanswered, so the server re-sends them after a
/// reconnect. Until it is taken, events queue up to the same bound and those beyond it are
/// treated as if it had been dropped, so a session that never takes it (a seller's) cannot
/// stall on events nobody will read.
#[derive(Debug)]
pub struct Incoming {
    pub(crate) events: mpsc::Receiver<ServerEvent>,
}

impl Incoming {
    /// The next event, or `None` once the session is over and every event has been read.
    pub async fn recv(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<ServerEvent> {
        self.events.try_recv().ok()
    }

    /// Events queued and not yet read: how far the application lags behind the server. At
    /// `CLIENT_INCOMING_QUEUE_LEN` the client has stopped reading the socket.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl Stream for Incoming {
    type Item = ServerEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServerEvent>> {
        self.events.poll_recv(cx)
    }
}

/// Sends one answer to a server request and counts the request as "in hand" until then.
///
/// The count lets the I/O task honour the spec's orderly end: after the server's `GOODBYE` the
/// client answers the requests it holds before it sends `GOODBYE_ACK`. Dropping a handle
/// unanswered releases it too, so a forgotten handle cannot stall the goodbye.
pub(crate) struct Responder {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    correlation_id: u64,
}

impl Responder {
    /// Counts a new request in hand. Called by the I/O task only.
    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: mpsc::Sender<Command>,
        correlation_id: u64,
    ) -> Self {
        shared
            .server_requests_in_hand
            .fetch_add(1, Ordering::AcqRel);
        Self {
            shared,
            commands,
            correlation_id,
        }
    }

    /// Encodes the answer here, so that an invalid answer is the caller's error, and queues it.
    async fn send(self, message: &Message<'_>) -> Result<(), ClientError> {
        let mut frame = BytesMut::new();
        encode_frame(self.correlation_id, message, &mut frame)?;
        self.commands
            .send(Command::Respond {
                frame: frame.freeze(),
            })
            .await
            .map_err(|_| ClientError::disconnected(self.shared.end_reason()))
        // `self` drops here, after the answer is queued: the I/O task drains the queue before it
        // acts on the released count, so the answer always goes out before `GOODBYE_ACK`.
    }
}

impl fmt::Debug for Responder {
    /// Only the id: the shared state and the queue say nothing about this one request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.shared
            .server_requests_in_hand
            .fetch_sub(1, Ordering::AcqRel);
        self.shared.in_hand_released.notify_one();
    }
}

/// A `PING_OFFER` waiting for this buyer's answer.
#[derive(Debug)]
pub struct OfferHandle {
    offer: PingOffer<'static>,
    responder: Responder,
}

impl OfferHandle {
    pub(crate) fn new(offer: PingOffer<'static>, responder: Responder) -> Self {
        Self { offer, responder }
    }

    /// The offer: auction, campaign, lead view, sale mode, floor and deadline.
    pub fn offer(&self) -> &PingOffer<'static> {
        &self.offer
    }

    /// The offer's correlation id, which the answer echoes.
    pub fn correlation_id(&self) -> u64 {
        self.responder.correlation_id
    }

    /// Answers `BID` with `price` in minor units. Fails with `Encode` if the price is above
    /// `MONEY_MAX`, with `Disconnected` if the session is over.
    pub async fn bid(self, price: u64) -> Result<(), ClientError> {
        let bid = Bid {
            auction_id: self.offer.auction_id,
            campaign_id: self.offer.campaign_id,
            price,
        };
        self.responder.send(&Message::Bid(bid)).await
    }

    /// Answers `NO_BID` with `reason`, e.g. `NOT_INTERESTED` (600).
    pub async fn no_bid(self, reason: ErrorCode) -> Result<(), ClientError> {
        let no_bid = NoBid {
            auction_id: self.offer.auction_id,
            campaign_id: self.offer.campaign_id,
            reason,
        };
        self.responder.send(&Message::NoBid(no_bid)).await
    }
}

/// Appends the `NO_BID NOT_INTERESTED` the I/O task sends itself for an offer nobody can
/// answer (every handle gone, or the event queue dropped), so no auction waits on this client.
pub(crate) fn decline_offer(correlation_id: u64, offer: &PingOffer<'_>, out: &mut BytesMut) {
    let no_bid = NoBid {
        auction_id: offer.auction_id,
        campaign_id: offer.campaign_id,
        reason: ErrorCode::NOT_INTERESTED,
    };
    // A NO_BID holds two ids and a code: nothing in it can fail to encode.
    let encoded = encode_frame(correlation_id, &Message::NoBid(no_bid), out);
    debug_assert!(encoded.is_ok(), "NO_BID failed to encode: {encoded:?}");
}

/// A `LEAD_DELIVERY` waiting for this buyer's acknowledgement.
#[derive(Debug)]
pub struct DeliveryHandle {
    delivery: LeadDelivery<'static>,
    responder: Responder,
}

impl DeliveryHandle {
    pub(crate) fn new(delivery: LeadDelivery<'static>, responder: Responder) -> Self {
        Self {
            delivery,
            responder,
        }
    }

    /// The delivery: sequence number, lead, contact record, consent, price and deadline.
    pub fn delivery(&self) -> &LeadDelivery<'static> {
        &self.delivery
    }

    /// The delivery's correlation id, which the acknowledgement echoes.
    pub fn correlation_id(&self) -> u64 {
        self.responder.correlation_id
    }

    /// Answers `DELIVERY_ACK accept`.
    pub async fn accept(self) -> Result<(), ClientError> {
        self.acknowledge(DeliveryOutcome::Accept, ErrorCode::NONE)
            .await
    }

    /// Answers `DELIVERY_ACK reject` with `reason`, e.g. `REJECT_DUPLICATE` (620).
    pub async fn reject(self, reason: ErrorCode) -> Result<(), ClientError> {
        self.acknowledge(DeliveryOutcome::Reject, reason).await
    }

    async fn acknowledge(
        self,
        outcome: DeliveryOutcome,
        reason: ErrorCode,
    ) -> Result<(), ClientError> {
        let delivery_seq = self.delivery.delivery_seq;
        let ack = DeliveryAck {
            delivery_seq,
            lead_id: self.delivery.lead_id,
            outcome,
            reason,
        };
        let shared = Arc::clone(&self.responder.shared);
        self.responder.send(&Message::DeliveryAck(ack)).await?;
        // Either outcome means "processed": the server must not re-send it after a reconnect.
        shared
            .last_delivery_seq
            .fetch_max(delivery_seq, Ordering::AcqRel);
        Ok(())
    }
}
