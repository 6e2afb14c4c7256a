//! Loopback tests of the client's requests: pipelining, answer matching, server errors, the
//! in-flight bound (also for abandoned calls), typed admin calls and invalid requests, against
//! a scripted in-test server.
//!
//! Where a test must show the client did *not* send something, it sends a HEARTBEAT probe and
//! reads up to the probe's ack: the client's I/O task writes what it has queued in order, so a
//! request it should not have sent would show up ahead of the ack. No test sleeps.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;
use common::{
    accepted, connect_seller, connect_with, ping, ping_id_for, ping_result_for, token_of,
};
use pingpost::client::{
    Client, ClientError, DeliveryHandle, Incoming, LoginParams, OfferHandle, ProtocolError, timeout,
};
use pingpost::protocol::{
    AdminOk, Bid, ErrorCode, Heartbeat, LoginAccepted, Message, MessageType, PingSaleMode,
    SellerRemove, Stats, Trace, TraceKey, TraceRequest, encode_frame,
};
use pingpost::protocol::{Error as ErrorMessage, Role};

#[tokio::test]
async fn pipelined_pings_each_get_their_own_answer_whatever_the_order() {
    let (client, mut peer) = connect_seller().await;

    let calls: Vec<_> = (1..=64u64)
        .map(|token| {
            let client = client.clone();
            tokio::spawn(async move { (token, client.ping(ping(token)).await) })
        })
        .collect();

    // Collect all 64 before answering any: they are all in flight at once.
    let mut received = Vec::new();
    let mut correlation_ids = HashSet::new();
    while received.len() < 64 {
        let (id, message) = peer.expect_request().await;
        assert!(
            correlation_ids.insert(id),
            "correlation id {id} reused while in flight"
        );
        received.push((id, token_of(&message)));
    }
    // Answer in reverse order of arrival.
    for (id, token) in received.into_iter().rev() {
        peer.send(id, ping_result_for(token)).await;
    }

    for call in calls {
        let (token, result) = call.await.expect("ping task");
        let result = result.expect("ping answered");
        assert_eq!(
            result.ping_id,
            ping_id_for(token),
            "ping {token} got another ping's answer"
        );
    }
}

#[tokio::test]
async fn an_error_answer_is_a_server_error_and_the_session_carries_on() {
    let (client, mut peer) = connect_seller().await;

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (id, _) = peer.expect_request().await;
    let refusal = ErrorMessage {
        code: ErrorCode::UNKNOWN_VERTICAL,
        message: "no vertical `solar`".into(),
    };
    peer.send(id, refusal).await;
    match call.await.expect("ping task") {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, ErrorCode::UNKNOWN_VERTICAL);
            assert_eq!(message, "no vertical `solar`");
        }
        other => panic!("expected a server error, got {other:?}"),
    }

    // The same session still works.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(2)).await }
    });
    let (id, message) = peer.expect_request().await;
    peer.send(id, ping_result_for(token_of(&message))).await;
    assert_eq!(
        call.await
            .expect("ping task")
            .expect("ping answered")
            .ping_id,
        ping_id_for(2)
    );
}

#[tokio::test]
async fn an_answer_of_the_wrong_type_is_a_protocol_error() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (id, _) = peer.expect_request().await;
    peer.send(id, AdminOk { book_version: 1 }).await;
    match call.await.expect("ping task") {
        Err(ClientError::Protocol(ProtocolError::UnexpectedResponse { expected, got })) => {
            assert_eq!(expected, "PING_RESULT");
            assert_eq!(got, MessageType::AdminOk);
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_undecodable_answer_fails_only_its_own_call() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (id, _) = peer.expect_request().await;
    // A PING_RESULT with one byte too many: a per-frame fault, not a framing one.
    let mut frame = BytesMut::new();
    encode_frame(id, &Message::PingResult(ping_result_for(1)), &mut frame).expect("encode");
    frame.extend_from_slice(&[0]);
    let frame_length = u32::try_from(frame.len() - 4).expect("small frame");
    frame[..4].copy_from_slice(&frame_length.to_le_bytes());
    peer.send_bytes(&frame).await;
    match call.await.expect("ping task") {
        Err(ClientError::Protocol(ProtocolError::Decode(error))) => {
            assert_eq!(error.code, ErrorCode::TRAILING_BYTES);
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(2)).await }
    });
    let (id, _) = peer.expect_request().await;
    peer.send(id, ping_result_for(2)).await;
    assert_eq!(
        call.await
            .expect("ping task")
            .expect("ping answered")
            .ping_id,
        ping_id_for(2)
    );
}

#[tokio::test]
async fn the_server_never_sees_more_requests_in_flight_than_it_announced() {
    const IN_FLIGHT_MAX: u32 = 4;
    let in_flight_max = IN_FLIGHT_MAX as usize;
    const PINGS: u64 = 32;
    let announced = LoginAccepted {
        in_flight_max: IN_FLIGHT_MAX,
        ..accepted()
    };
    let (client, mut peer, _) = connect_with(
        LoginParams::new(Role::Seller, 7, "seller-secret"),
        announced,
    )
    .await;

    let calls: Vec<_> = (1..=PINGS)
        .map(|token| {
            let client = client.clone();
            tokio::spawn(async move { (token, client.ping(ping(token)).await) })
        })
        .collect();

    // Each time the server holds IN_FLIGHT_MAX requests it sends a HEARTBEAT probe and reads on
    // until the probe's ack before it answers anything. The client answers the probe only after
    // writing everything it had queued, so a client that sent one request too many would have
    // it read here, ahead of the ack.
    let mut unanswered = Vec::new();
    let mut received = 0;
    let mut most_unanswered = 0;
    let mut probe_id = 1_000_000;
    while received < PINGS {
        let (id, message) = peer.expect().await;
        match message {
            Message::Ping(ref ping) => {
                received += 1;
                unanswered.push((id, ping.client_token));
                most_unanswered = most_unanswered.max(unanswered.len());
                assert!(
                    unanswered.len() <= in_flight_max,
                    "{} requests in flight",
                    unanswered.len()
                );
                if unanswered.len() == in_flight_max {
                    probe_id += 1;
                    peer.send(probe_id, Heartbeat { sent_at: probe_id }).await;
                }
            }
            Message::HeartbeatAck(_) if id == probe_id => {
                let (id, token) = unanswered.remove(0);
                peer.send(id, ping_result_for(token)).await;
            }
            Message::Heartbeat(_) | Message::HeartbeatAck(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    for (id, token) in unanswered.drain(..) {
        peer.send(id, ping_result_for(token)).await;
    }
    assert_eq!(
        most_unanswered, in_flight_max,
        "the client should use the whole window"
    );

    for call in calls {
        let (token, result) = call.await.expect("ping task");
        assert_eq!(result.expect("ping answered").ping_id, ping_id_for(token));
    }
}

#[tokio::test]
async fn admin_calls_return_their_typed_answers() {
    let (client, mut peer, _) =
        connect_with(LoginParams::new(Role::Admin, 1, "admin-secret"), accepted()).await;

    let remove = tokio::spawn({
        let client = client.clone();
        async move { client.seller_remove(SellerRemove { seller_id: 12 }).await }
    });
    let (id, message) = peer.expect_request().await;
    assert_eq!(
        message,
        Message::SellerRemove(SellerRemove { seller_id: 12 })
    );
    peer.send(id, AdminOk { book_version: 3 }).await;
    assert_eq!(
        remove.await.expect("task").expect("answered"),
        AdminOk { book_version: 3 }
    );

    let stats = tokio::spawn({
        let client = client.clone();
        async move { client.stats().await }
    });
    let (id, message) = peer.expect_request().await;
    assert_eq!(message.message_type(), MessageType::StatsRequest);
    let answer = Stats {
        uptime_ms: 1_234,
        counters: vec![],
        latencies: vec![],
    };
    peer.send(id, answer.clone()).await;
    assert_eq!(stats.await.expect("task").expect("answered"), answer);

    let trace = tokio::spawn({
        let client = client.clone();
        async move { client.trace(TraceKey::Lead, 77).await }
    });
    let (id, message) = peer.expect_request().await;
    assert_eq!(
        message,
        Message::TraceRequest(TraceRequest {
            key: TraceKey::Lead,
            id: 77
        })
    );
    let answer = Trace {
        ping_id: 70,
        lead_id: 77,
        events: vec![],
    };
    peer.send(id, answer.clone()).await;
    assert_eq!(trace.await.expect("task").expect("answered"), answer);
}

#[tokio::test]
async fn invalid_requests_fail_in_the_caller_without_touching_the_session() {
    let (client, mut peer) = connect_seller().await;

    // An answer is not a request: it would never be answered.
    let bid = Bid {
        auction_id: 1,
        campaign_id: 2,
        price: 3,
    };
    match client.request(Message::Bid(bid)).await {
        Err(ClientError::NotARequest(MessageType::Bid)) => {}
        other => panic!("expected NotARequest, got {other:?}"),
    }

    // An exclusive ping must not name shared buyers: the encoder refuses it, nothing is sent.
    let mut broken = ping(1);
    broken.sale_mode = PingSaleMode::Exclusive;
    broken.shared_buyers_max = 3;
    match client.ping(broken).await {
        Err(ClientError::Encode(error)) => assert_eq!(error.code, ErrorCode::INVALID_FIELD),
        other => panic!("expected an encode error, got {other:?}"),
    }

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(2)).await }
    });
    let (id, message) = peer.expect_request().await;
    assert_eq!(
        token_of(&message),
        2,
        "the refused requests must not have been sent"
    );
    peer.send(id, ping_result_for(2)).await;
    assert_eq!(
        call.await
            .expect("ping task")
            .expect("ping answered")
            .ping_id,
        ping_id_for(2)
    );
}

#[tokio::test]
async fn an_abandoned_request_keeps_its_slot_until_the_server_answers_it() {
    let announced = LoginAccepted {
        in_flight_max: 1,
        ..accepted()
    };
    let (client, mut peer, _) = connect_with(
        LoginParams::new(Role::Seller, 7, "seller-secret"),
        announced,
    )
    .await;

    let abandoned = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(1)).await }
    });
    let (first_id, _) = peer.expect_request().await;
    // The caller gives up (a timeout would do the same), but the server still counts the ping.
    abandoned.abort();
    assert!(abandoned.await.expect_err("aborted").is_cancelled());

    let second = tokio::spawn({
        let client = client.clone();
        async move { client.ping(ping(2)).await }
    });
    tokio::task::yield_now().await;
    // Probe: everything the client had queued is written before the probe's ack.
    peer.send(777, Heartbeat { sent_at: 1 }).await;
    match peer.expect_request().await {
        (777, Message::HeartbeatAck(_)) => {}
        other => panic!("the second ping must wait for the first one's answer, got {other:?}"),
    }
    peer.send(first_id, ping_result_for(1)).await;
    let (id, message) = peer.expect_request().await;
    assert_eq!(token_of(&message), 2);
    peer.send(id, ping_result_for(2)).await;
    assert_eq!(
        second.await.expect("task").expect("answered").ping_id,
        ping_id_for(2)
    );
}

#[tokio::test]
async fn the_timeout_helper_bounds_a_call() {
    let (client, mut peer) = connect_seller().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { timeout(Duration::from_millis(50), client.ping(ping(1))).await }
    });
    let _ = peer.expect_request().await;
    // The server never answers.
    assert!(matches!(
        call.await.expect("task"),
        Err(ClientError::Timeout)
    ));
}

#[test]
fn clients_and_handles_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<Client>();
    sendable::<OfferHandle>();
    sendable::<DeliveryHandle>();
    sendable::<Incoming>();
    sendable::<ClientError>();
}
