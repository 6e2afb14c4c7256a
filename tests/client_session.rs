//! Loopback tests of the client's session: login, heartbeats, dead and broken servers, and the
//! orderly end in both directions, against a scripted in-test server.
//!
//! Tests about time use the protocol's own intervals on the real clock (tokio's paused clock
//! needs the `test-util` feature, which this crate does not enable). They wait on events, never
//! on sleeps, and assert what happened, never how long it took; the price is a few seconds of
//! run time (one heartbeat interval is 1 s, the login and goodbye timeouts 5 s).

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{
    TestServer, accepted, connect_seller, connect_with, disconnect_code, ping, ping_id_for,
    ping_result_for, token_of,
};
use pingpost::client::{Client, ClientError, DisconnectReason, LoginParams, ServerEvent};
use pingpost::limits::{HEARTBEAT_INTERVAL_MIN_MS, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN};
use pingpost::protocol::{
    ErrorCode, Goodbye, GoodbyeAck, Heartbeat, HeartbeatAck, LoginAccepted, LoginRejected, Message,
    Role, encode_frame,
};

/// A guard against a hang turning into a stuck test run; never a measurement.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn login_accepted_returns_the_session_the_server_announced() {
    let mut params = LoginParams::new(Role::Buyer, 9, "buyer-secret");
    params.heartbeat_interval_ms = 2_000;
    params.last_delivery_seq = 41;
    params.client_name = "test-buyer/1.0".to_owned();
    let announced = LoginAccepted {
        session_id: 99,
        heartbeat_interval_ms: 2_000,
        in_flight_max: 16,
        ..accepted()
    };

    let (client, _peer, login) = connect_with(params, announced).await;

    assert_eq!(client.session(), &announced);
    assert_eq!(client.session().currency.as_str(), "USD");
    assert_eq!(client.last_delivery_seq(), 41);
    assert_eq!(login.role, Role::Buyer);
    assert_eq!(login.principal_id, 9);
    assert_eq!(login.secret, "buyer-secret");
    assert_eq!(
        (login.version_min, login.version_max),
        (PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX)
    );
    assert_eq!(login.heartbeat_interval_ms, 2_000);
    assert_eq!(login.last_delivery_seq, 41);
    assert_eq!(login.client_name, "test-buyer/1.0");
}

#[tokio::test]
async fn login_rejected_surfaces_the_reason() {
    let server = TestServer::bind().await;
    let connecting = tokio::spawn(Client::connect(
        server.addr,
        LoginParams::new(Role::Seller, 7, "wrong"),
    ));
    let mut peer = server.accept().await;
    let (id, _) = peer.expect_login().await;
    let rejection = LoginRejected {
        reason: ErrorCode::BAD_CREDENTIALS,
        message: "unknown principal or wrong secret".into(),
    };
    peer.send(id, rejection).await;
    drop(peer);

    let error = connecting
        .await
        .expect("connect task")
        .expect_err("the login must fail");
    match &error {
        ClientError::LoginRejected { reason, message } => {
            assert_eq!(*reason, ErrorCode::BAD_CREDENTIALS);
            assert_eq!(message, "unknown principal or wrong secret");
        }
        other => panic!("expected LoginRejected, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "the server rejected the login with BAD_CREDENTIALS (200): unknown principal or wrong secret"
    );
}

#[tokio::test]
async fn connecting_where_nobody_listens_fails_with_connect() {
    // Take a free port, then free it again: nothing listens there.
    let addr = TestServer::bind().await.addr;
    let error = Client::connect(addr, LoginParams::new(Role::Seller, 7, "s"))
        .await
        .expect_err("nobody listens");
    match error {
        ClientError::Connect {
            addr: Some(tried), ..
        } => assert_eq!(tried, addr),
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_the_login_times_out() {
    let server = TestServer::bind().await;
    let connecting = tokio::spawn(Client::connect(
        server.addr,
        LoginParams::new(Role::Seller, 7, "s"),
    ));
    let mut peer = server.accept().await;
    let _ = peer.expect_login().await;
    // The server keeps the connection open and says nothing.
    let result = connecting.await.expect("connect task");
    assert!(
        matches!(result, Err(ClientError::Timeout)),
        "got {result:?}"
    );
    drop(peer);
}

#[tokio::test]
async fn an_idle_client_heartbeats_and_answers_the_servers_heartbeats() {
    let announced = LoginAccepted {
        heartbeat_interval_ms: HEARTBEAT_INTERVAL_MIN_MS,
        ..accepted()
    };
    let (client, mut peer, _) =
        connect_with(LoginParams::new(Role::Seller, 7, "s"), announced).await;

    // Idle for several intervals: the client keeps the session alive on its own.
    for _ in 0..3 {
        match peer.expect().await {
            (id, Message::Heartbeat(Heartbeat { sent_at })) => {
                peer.send(id, HeartbeatAck { sent_at }).await;
            }
            (_, other) => panic!("expected HEARTBEAT from an idle client, got {other:?}"),
        }
    }

    // The server's own heartbeat is echoed with its id and timestamp.
    peer.send(900, Heartbeat { sent_at: 42 }).await;
    loop {
        match peer.expect().await {
            (900, Message::HeartbeatAck(HeartbeatAck { sent_at })) => {
                assert_eq!(sent_at, 42);
                break;
            }
            (id, Message::Heartbeat(Heartbeat { sent_at })) => {
                peer.send(id, HeartbeatAck { sent_at }).await
            }
            (_, other) => panic!("expected HEARTBEAT_ACK, got {other:?}"),
        }
    }
    assert!(
        client.end_reason().is_none(),
        "an answering server is alive"
    );
    assert!(!client.is_closed());
}

#[tokio::test]
async fn a_silent_server_is_declared_dead_and_pending_calls_fail() {
    let announced = LoginAccepted {
        heartbeat_interval_ms: HEARTBEAT_INTERVAL_MIN_MS,
        ..accepted()
    };
    let (client, mut peer, _) =
        connect_with(LoginParams::new(Role::Seller, 7, "s"), announced).await;
    let mut incoming = client.incoming().expect("events");

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let _ = peer.expect_request().await;
    // From here the server neither reads nor writes, but keeps the socket open.

    let error = call
        .await
        .expect("ping task")
        .expect_err("a dead server answers nothing");
    assert_eq!(disconnect_code(&error), Some(ErrorCode::HEARTBEAT_TIMEOUT));
    assert!(
        incoming.recv().await.is_none(),
        "the event stream ends with the session"
    );

    // Later calls fail at once with the same reason.
    let error = client.ping(ping(2)).await.expect_err("the session is over");
    assert_eq!(disconnect_code(&error), Some(ErrorCode::HEARTBEAT_TIMEOUT));
    assert!(client.is_closed());

    // The client said why before closing, as the spec asks.
    loop {
        match peer.recv().await {
            Some((_, Message::Heartbeat(_))) => {}
            Some((_, Message::Goodbye(goodbye))) => {
                assert_eq!(goodbye.reason, ErrorCode::HEARTBEAT_TIMEOUT);
                break;
            }
            other => panic!("expected GOODBYE HEARTBEAT_TIMEOUT, got {other:?}"),
        }
    }
    assert!(peer.recv().await.is_none(), "then it closes");
}

#[tokio::test]
async fn a_server_that_dies_mid_frame_fails_pending_and_later_calls() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (id, _) = peer.expect_request().await;
    let mut frame = BytesMut::new();
    encode_frame(id, &Message::PingResult(ping_result_for(1)), &mut frame).expect("encode");
    peer.send_bytes(&frame[..frame.len() / 2]).await;
    drop(peer);

    let error = tokio::time::timeout(HANG_GUARD, call)
        .await
        .expect("no hang")
        .expect("ping task")
        .expect_err("no answer");
    match &error {
        ClientError::Disconnected {
            reason: DisconnectReason::TruncatedFrame { bytes_received },
        } => {
            assert_eq!(*bytes_received, frame.len() / 2);
        }
        other => panic!("expected Disconnected(TruncatedFrame), got {other:?}"),
    }
    let error = client.ping(ping(2)).await.expect_err("the session is over");
    assert!(matches!(
        error,
        ClientError::Disconnected {
            reason: DisconnectReason::TruncatedFrame { .. }
        }
    ));
}

#[tokio::test]
async fn unframeable_bytes_get_an_error_and_end_the_session() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let _ = peer.expect_request().await;
    // A length prefix far above FRAME_LENGTH_MAX: the next frame can never be found.
    peer.send_bytes(&u32::MAX.to_le_bytes()).await;
    peer.send_bytes(b"garbage").await;

    let error = tokio::time::timeout(HANG_GUARD, call)
        .await
        .expect("no hang")
        .expect("ping task")
        .expect_err("no answer");
    assert_eq!(disconnect_code(&error), Some(ErrorCode::FRAME_TOO_LARGE));
    match peer.recv().await {
        Some((0, Message::Error(error))) => assert_eq!(error.code, ErrorCode::FRAME_TOO_LARGE),
        other => panic!("expected ERROR FRAME_TOO_LARGE with correlation id 0, got {other:?}"),
    }
    assert!(
        peer.recv().await.is_none(),
        "the client closes after a framing fault"
    );
    assert!(matches!(
        client.ping(ping(2)).await,
        Err(ClientError::Disconnected { .. })
    ));
}

#[tokio::test]
async fn a_malformed_server_request_gets_an_error_and_the_session_carries_on() {
    let (client, mut peer) = connect_seller().await;
    // A HEARTBEAT with a body one byte short: TRUNCATED, a per-frame fault.
    let mut frame = BytesMut::new();
    encode_frame(
        55,
        &Message::Heartbeat(Heartbeat { sent_at: 1 }),
        &mut frame,
    )
    .expect("encode");
    frame.truncate(frame.len() - 1);
    let frame_length = u32::try_from(frame.len() - 4).expect("small frame");
    frame[..4].copy_from_slice(&frame_length.to_le_bytes());
    peer.send_bytes(&frame).await;

    match peer.expect_request().await {
        (55, Message::Error(error)) => assert_eq!(error.code, ErrorCode::TRUNCATED),
        other => panic!("expected ERROR TRUNCATED echoing id 55, got {other:?}"),
    }
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(3)).await }
    });
    let (id, message) = peer.expect_request().await;
    peer.send(id, ping_result_for(token_of(&message))).await;
    assert_eq!(
        call.await.expect("ping task").expect("answered").ping_id,
        ping_id_for(3)
    );
}

#[tokio::test]
async fn close_says_goodbye_and_waits_for_the_ack() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (ping_id, _) = peer.expect_request().await;

    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let (goodbye_id, goodbye) = peer.expect_request().await;
    match goodbye {
        Message::Goodbye(goodbye) => assert_eq!(goodbye.reason, ErrorCode::NONE),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    // New calls stop as soon as the client said goodbye ...
    let error = client.ping(ping(2)).await.expect_err("closing");
    assert!(matches!(
        error,
        ClientError::Disconnected {
            reason: DisconnectReason::ClosedByClient
        }
    ));
    // ... but what was in flight is still answered, before the ack.
    peer.send(ping_id, ping_result_for(1)).await;
    peer.send(goodbye_id, GoodbyeAck).await;

    assert_eq!(
        call.await
            .expect("ping task")
            .expect("answered before the ack")
            .ping_id,
        ping_id_for(1)
    );
    closing
        .await
        .expect("close task")
        .expect("the server acknowledged");
    assert!(client.is_closed());
    assert!(
        peer.recv().await.is_none(),
        "the client closes after the ack"
    );
}

#[tokio::test]
async fn close_gives_up_when_the_server_never_acknowledges() {
    let (client, mut peer) = connect_seller().await;
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let (_, goodbye) = peer.expect_request().await;
    assert_eq!(
        goodbye.message_type(),
        pingpost::protocol::MessageType::Goodbye
    );
    let result = closing.await.expect("close task");
    assert!(
        matches!(result, Err(ClientError::Timeout)),
        "got {result:?}"
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn a_server_goodbye_stops_new_calls_and_is_acknowledged_after_pending_answers() {
    let (client, mut peer) = connect_seller().await;
    let mut incoming = client.incoming().expect("events");
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (ping_id, _) = peer.expect_request().await;

    let goodbye = Goodbye {
        reason: ErrorCode::SERVER_SHUTTING_DOWN,
        message: "restarting".into(),
    };
    peer.send(500, goodbye).await;
    match incoming.recv().await {
        Some(ServerEvent::Goodbye { reason, message }) => {
            assert_eq!(reason, ErrorCode::SERVER_SHUTTING_DOWN);
            assert_eq!(message, "restarting");
        }
        other => panic!("expected a Goodbye event, got {other:?}"),
    }
    let error = client
        .ping(ping(2))
        .await
        .expect_err("no new requests after GOODBYE");
    assert_eq!(
        disconnect_code(&error),
        Some(ErrorCode::SERVER_SHUTTING_DOWN)
    );

    // The server finishes what was in flight; only then does the client acknowledge.
    peer.send(ping_id, ping_result_for(1)).await;
    assert_eq!(
        call.await.expect("ping task").expect("answered").ping_id,
        ping_id_for(1)
    );
    match peer.expect_request().await {
        (500, Message::GoodbyeAck(_)) => {}
        other => panic!("expected GOODBYE_ACK echoing 500, got {other:?}"),
    }
    drop(peer);
    let reason = client.closed().await;
    assert_eq!(reason.code(), Some(ErrorCode::SERVER_SHUTTING_DOWN));
    assert!(
        incoming.recv().await.is_none(),
        "the event stream ends with the session"
    );
}

#[tokio::test]
async fn dropping_every_client_ends_the_session_in_order() {
    let (client, mut peer) = connect_seller().await;
    drop(client);
    let (id, goodbye) = peer.expect_request().await;
    assert_eq!(
        goodbye.message_type(),
        pingpost::protocol::MessageType::Goodbye
    );
    peer.send(id, GoodbyeAck).await;
    assert!(
        peer.recv().await.is_none(),
        "the client closes after the ack"
    );
}
