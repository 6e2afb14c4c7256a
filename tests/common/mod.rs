//! A scripted in-test server built on the codec, and sample messages, for the client's
//! loopback tests. Each test plays the server's side frame by frame, so it can answer out of
//! order, go silent, or send broken bytes.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use pingpost::client::{Client, ClientError, LoginParams};
use pingpost::limits::FRAME_LENGTH_MAX;
use pingpost::protocol::{
    Attributes, Consent, Contact, Country, Currency, ErrorCode, LeadDelivery, LeadView, Login,
    LoginAccepted, Message, Ping, PingOffer, PingOutcome, PingResult, PingSaleMode, PostalCode,
    Role, SaleMode, Symbol, check_frame, decode_frame, encode_frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A listener on a free loopback port.
pub struct TestServer {
    listener: TcpListener,
    pub addr: SocketAddr,
}

impl TestServer {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        Self { listener, addr }
    }

    pub async fn accept(&self) -> Peer {
        let (stream, _) = self.listener.accept().await.expect("accept");
        Peer {
            stream,
            read_buf: BytesMut::new(),
        }
    }
}

/// The server's end of one connection.
pub struct Peer {
    stream: TcpStream,
    read_buf: BytesMut,
}

impl Peer {
    /// The next frame's correlation id and message, or `None` when the client closed the
    /// connection between frames. Panics on anything else: the client must send valid frames.
    pub async fn recv(&mut self) -> Option<(u64, Message<'static>)> {
        loop {
            if let Some(length) =
                check_frame(&self.read_buf, FRAME_LENGTH_MAX).expect("the client frames correctly")
            {
                let frame =
                    decode_frame(&self.read_buf[..length]).expect("the client's frame decodes");
                let received = (frame.header.correlation_id, frame.message.into_owned());
                self.read_buf.advance(length);
                return Some(received);
            }
            let read = self.stream.read_buf(&mut self.read_buf).await;
            // A reset is how a peer that closes with unread data ends; count it as closed.
            if matches!(read, Ok(0) | Err(_)) {
                assert!(
                    self.read_buf.is_empty(),
                    "the client closed in the middle of a frame"
                );
                return None;
            }
        }
    }

    /// The next frame, which must be there: the client must not have closed.
    pub async fn expect(&mut self) -> (u64, Message<'static>) {
        self.recv()
            .await
            .expect("a frame from the client, not the end of the connection")
    }

    /// The next frame that is not a client's own HEARTBEAT (clients heartbeat on their own
    /// schedule; most tests are not about that). A HEARTBEAT_ACK is returned: the client sends
    /// one only when the test sent a HEARTBEAT.
    pub async fn expect_request(&mut self) -> (u64, Message<'static>) {
        loop {
            let (id, message) = self.expect().await;
            if !matches!(message, Message::Heartbeat(_)) {
                return (id, message);
            }
        }
    }

    pub async fn send(&mut self, correlation_id: u64, message: impl Into<Message<'static>>) {
        let mut frame = BytesMut::new();
        encode_frame(correlation_id, &message.into(), &mut frame)
            .expect("the test's frame encodes");
        self.send_bytes(&frame).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the client");
    }

    /// Reads the client's LOGIN.
    pub async fn expect_login(&mut self) -> (u64, Login<'static>) {
        match self.expect().await {
            (id, Message::Login(login)) => (id, login),
            (_, other) => panic!("expected LOGIN, got {other:?}"),
        }
    }
}

/// What the test server announces unless a test says otherwise.
pub fn accepted() -> LoginAccepted {
    LoginAccepted {
        session_id: 4242,
        version: 1,
        heartbeat_interval_ms: 5_000,
        frame_length_max: FRAME_LENGTH_MAX,
        in_flight_max: 1024,
        currency: Currency::new("USD").expect("currency"),
        server_time: 1_700_000_000_000_000,
    }
}

/// Connects a client with `login`, has the server accept it with `accepted`, and returns both
/// ends and the LOGIN the server saw.
pub async fn connect_with(
    login: LoginParams,
    accepted: LoginAccepted,
) -> (Client, Peer, Login<'static>) {
    let server = TestServer::bind().await;
    let connecting = tokio::spawn(Client::connect(server.addr, login));
    let mut peer = server.accept().await;
    let (id, login) = peer.expect_login().await;
    peer.send(id, accepted).await;
    let client = connecting
        .await
        .expect("connect task")
        .expect("login accepted");
    (client, peer, login)
}

/// A seller session with the default announcement.
pub async fn connect_seller() -> (Client, Peer) {
    let (client, peer, _) = connect_with(
        LoginParams::new(Role::Seller, 7, "seller-secret"),
        accepted(),
    )
    .await;
    (client, peer)
}

/// A buyer session with the default announcement.
pub async fn connect_buyer() -> (Client, Peer) {
    let (client, peer, _) =
        connect_with(LoginParams::new(Role::Buyer, 9, "buyer-secret"), accepted()).await;
    (client, peer)
}

pub fn lead_view() -> LeadView<'static> {
    LeadView {
        vertical: Symbol::new("solar").expect("symbol"),
        country: Country::new("US").expect("country"),
        postal_code: PostalCode::new("80302").expect("postal code"),
        attributes: Attributes::builder()
            .integer("monthly_bill", 180)
            .bool("owns_home", true)
            .build()
            .expect("attributes"),
    }
}

/// A ping whose `client_token` lets the test tell pings apart.
pub fn ping(client_token: u64) -> Ping<'static> {
    Ping {
        client_token,
        lead: lead_view(),
        phone_hash: None,
        email_hash: None,
        sale_mode: PingSaleMode::Exclusive,
        shared_buyers_max: 0,
        timeout_ms: 250,
    }
}

/// The answer a test server gives: `ping_id` derived from the ping's token, so the caller can
/// check it got the answer meant for its own ping.
pub fn ping_result_for(client_token: u64) -> PingResult<'static> {
    PingResult {
        ping_id: ping_id_for(client_token),
        outcome: PingOutcome::Offer {
            sale_mode: SaleMode::Exclusive,
            payouts: Cow::Owned(vec![1_000 + client_token]),
            post_within_ms: 30_000,
        },
    }
}

pub fn ping_id_for(client_token: u64) -> u64 {
    client_token * 1_000 + 7
}

/// The client token of a PING the server received.
pub fn token_of(message: &Message<'_>) -> u64 {
    match message {
        Message::Ping(ping) => ping.client_token,
        other => panic!("expected PING, got {other:?}"),
    }
}

pub fn offer(auction_id: u64) -> PingOffer<'static> {
    PingOffer {
        auction_id,
        campaign_id: 31,
        lead: lead_view(),
        sale_mode: SaleMode::Exclusive,
        price_floor: 1_200,
        bid_within_ms: 100,
    }
}

pub fn delivery(delivery_seq: u64) -> LeadDelivery<'static> {
    LeadDelivery {
        delivery_seq,
        lead_id: 500 + delivery_seq,
        auction_id: 600 + delivery_seq,
        campaign_id: 31,
        price: 4_500,
        sale_mode: SaleMode::Exclusive,
        lead: lead_view(),
        contact: Contact {
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone: "+13035550142".into(),
            email: "jane.doe@example.com".into(),
            street: "1 Main St".into(),
            city: "Boulder".into(),
            region: "CO".into(),
        },
        consent: Consent {
            certificate_id: "cert-1".into(),
            text_version: "v3".into(),
            consented_at: 1_700_000_000_000_000,
            ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            user_agent: "Mozilla/5.0".into(),
            page_url: "https://example.com/quote".into(),
        },
        delivered_at: 1_700_000_000_500_000,
        accept_within_ms: 2_000,
    }
}

/// The session-ending code of a `Disconnected` error, for assertions.
pub fn disconnect_code(error: &ClientError) -> Option<ErrorCode> {
    match error {
        ClientError::Disconnected { reason } => reason.code(),
        other => panic!("expected Disconnected, got {other:?}"),
    }
}
