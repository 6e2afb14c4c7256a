//! Loopback tests of the buyer side: offers answered through handles, deliveries acknowledged,
//! auction notices, and the delivery sequence a reconnect resumes from.

mod common;

use std::time::Duration;

use common::{accepted, connect_buyer, connect_with, delivery, offer};
use pingpost::client::{LoginParams, ServerEvent};
use pingpost::limits::CLIENT_INCOMING_QUEUE_LEN as INCOMING_QUEUE_LEN;
use pingpost::protocol::{
    AuctionLost, AuctionWon, Bid, DeliveryAck, DeliveryOutcome, ErrorCode, Heartbeat, Message,
    NoBid, Role, SaleMode,
};

/// A guard against a hang turning into a stuck test run; never a measurement.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_offer_is_answered_with_a_bid_echoing_its_correlation_id() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");
    assert!(
        client.incoming().is_none(),
        "the event queue is handed out once"
    );

    peer.send(77, offer(1001)).await;
    let Some(ServerEvent::Offer(handle)) = incoming.recv().await else {
        panic!("expected an offer");
    };
    assert_eq!(handle.correlation_id(), 77);
    assert_eq!(handle.offer(), &offer(1001));
    handle.bid(1_500).await.expect("bid sent");

    match peer.expect_request().await {
        (77, Message::Bid(bid)) => {
            assert_eq!(
                bid,
                Bid {
                    auction_id: 1001,
                    campaign_id: 31,
                    price: 1_500
                }
            );
        }
        other => panic!("expected BID echoing 77, got {other:?}"),
    }
}

#[tokio::test]
async fn an_offer_can_be_declined_with_a_reason() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");

    peer.send(78, offer(1002)).await;
    let Some(ServerEvent::Offer(handle)) = incoming.recv().await else {
        panic!("expected an offer");
    };
    handle
        .no_bid(ErrorCode::OVER_CAPACITY)
        .await
        .expect("no-bid sent");

    match peer.expect_request().await {
        (78, Message::NoBid(no_bid)) => assert_eq!(
            no_bid,
            NoBid {
                auction_id: 1002,
                campaign_id: 31,
                reason: ErrorCode::OVER_CAPACITY
            }
        ),
        other => panic!("expected NO_BID echoing 78, got {other:?}"),
    }
}

#[tokio::test]
async fn deliveries_are_acknowledged_and_advance_last_delivery_seq() {
    let mut login = LoginParams::new(Role::Buyer, 9, "buyer-secret");
    login.last_delivery_seq = 4;
    let (client, mut peer, seen) = connect_with(login, accepted()).await;
    assert_eq!(
        seen.last_delivery_seq, 4,
        "the login tells the server where to resume"
    );
    assert_eq!(client.last_delivery_seq(), 4);
    let mut incoming = client.incoming().expect("events");

    peer.send(88, delivery(5)).await;
    let Some(ServerEvent::Delivery(handle)) = incoming.recv().await else {
        panic!("expected a delivery");
    };
    assert_eq!(handle.delivery(), &delivery(5));
    assert_eq!(client.last_delivery_seq(), 4, "not acknowledged yet");
    handle.accept().await.expect("ack sent");
    assert_eq!(client.last_delivery_seq(), 5);
    match peer.expect_request().await {
        (88, Message::DeliveryAck(ack)) => assert_eq!(
            ack,
            DeliveryAck {
                delivery_seq: 5,
                lead_id: 505,
                outcome: DeliveryOutcome::Accept,
                reason: ErrorCode::NONE
            }
        ),
        other => panic!("expected DELIVERY_ACK echoing 88, got {other:?}"),
    }

    peer.send(89, delivery(6)).await;
    let Some(ServerEvent::Delivery(handle)) = incoming.recv().await else {
        panic!("expected a delivery");
    };
    handle
        .reject(ErrorCode::REJECT_DUPLICATE)
        .await
        .expect("ack sent");
    assert_eq!(
        client.last_delivery_seq(),
        6,
        "a rejected delivery is processed too"
    );
    match peer.expect_request().await {
        (89, Message::DeliveryAck(ack)) => {
            assert_eq!(ack.outcome, DeliveryOutcome::Reject);
            assert_eq!(ack.reason, ErrorCode::REJECT_DUPLICATE);
            assert_eq!(ack.delivery_seq, 6);
        }
        other => panic!("expected DELIVERY_ACK echoing 89, got {other:?}"),
    }
}

#[tokio::test]
async fn auction_notices_arrive_as_events_in_order() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");

    let won = AuctionWon {
        auction_id: 1,
        campaign_id: 31,
        price: 2_000,
        sale_mode: SaleMode::Exclusive,
    };
    let lost = AuctionLost {
        auction_id: 2,
        campaign_id: 31,
        reason: ErrorCode::OUTBID,
    };
    peer.send(300, won).await;
    peer.send(301, lost).await;

    match incoming.recv().await {
        Some(ServerEvent::Won(event)) => assert_eq!(event, won),
        other => panic!("expected Won, got {other:?}"),
    }
    match incoming.recv().await {
        Some(ServerEvent::Lost(event)) => assert_eq!(event, lost),
        other => panic!("expected Lost, got {other:?}"),
    }
}

#[tokio::test]
async fn offers_are_declined_when_nobody_reads_events() {
    let (client, mut peer) = connect_buyer().await;
    drop(client.incoming());

    peer.send(90, offer(1003)).await;
    match peer.expect_request().await {
        (90, Message::NoBid(no_bid)) => {
            assert_eq!(no_bid.auction_id, 1003);
            assert_eq!(no_bid.reason, ErrorCode::NOT_INTERESTED);
        }
        other => panic!("expected an automatic NO_BID echoing 90, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_about_an_answer_arrives_as_an_event() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");

    peer.send(91, offer(1004)).await;
    let Some(ServerEvent::Offer(handle)) = incoming.recv().await else {
        panic!("expected an offer");
    };
    handle.bid(1_300).await.expect("bid sent");
    let (id, _) = peer.expect_request().await;
    let late = pingpost::protocol::Error {
        code: ErrorCode::UNEXPECTED_MESSAGE,
        message: "the auction is over".into(),
    };
    peer.send(id, late).await;

    match incoming.recv().await {
        Some(ServerEvent::Error {
            correlation_id,
            code,
            message,
        }) => {
            assert_eq!(correlation_id, 91);
            assert_eq!(code, ErrorCode::UNEXPECTED_MESSAGE);
            assert_eq!(message, "the auction is over");
        }
        other => panic!("expected an Error event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_goodbye_waits_for_offers_in_hand_before_the_ack() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");

    peer.send(92, offer(1005)).await;
    let Some(ServerEvent::Offer(handle)) = incoming.recv().await else {
        panic!("expected an offer");
    };
    let goodbye = pingpost::protocol::Goodbye {
        reason: ErrorCode::SERVER_SHUTTING_DOWN,
        message: "bye".into(),
    };
    peer.send(93, goodbye).await;
    assert!(matches!(
        incoming.recv().await,
        Some(ServerEvent::Goodbye { .. })
    ));

    // The offer in hand is answered first; the ack follows it.
    handle
        .bid(1_400)
        .await
        .expect("bid sent during the goodbye");
    match peer.expect_request().await {
        (92, Message::Bid(bid)) => assert_eq!(bid.price, 1_400),
        other => panic!("expected the BID before the ack, got {other:?}"),
    }
    match peer.expect_request().await {
        (93, Message::GoodbyeAck(_)) => {}
        other => panic!("expected GOODBYE_ACK echoing 93, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_consumer_loses_no_event_when_the_queue_overflows() {
    let (client, mut peer) = connect_buyer().await;
    let mut incoming = client.incoming().expect("events");

    // More notices than the queue holds, sent before the application reads any: the client
    // must stop reading the socket, not drop events or grow without bound.
    let notices = INCOMING_QUEUE_LEN as u64 + 100;
    for auction_id in 1..=notices {
        let lost = AuctionLost {
            auction_id,
            campaign_id: 31,
            reason: ErrorCode::OUTBID,
        };
        peer.send(auction_id, lost).await;
    }
    peer.send(999_999, Heartbeat { sent_at: 5 }).await;
    // Let the client fill the queue before the application reads anything (yielding, not
    // sleeping: the client's task runs whenever this one yields).
    let filled = async {
        while incoming.len() < INCOMING_QUEUE_LEN {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(HANG_GUARD, filled)
        .await
        .expect("the queue fills up");

    for auction_id in 1..=notices {
        match incoming.recv().await {
            Some(ServerEvent::Lost(lost)) => assert_eq!(lost.auction_id, auction_id),
            other => panic!("expected notice {auction_id}, got {other:?}"),
        }
    }
    // Reading resumed: the frame behind the notices is answered.
    match peer.expect_request().await {
        (999_999, Message::HeartbeatAck(ack)) => assert_eq!(ack.sent_at, 5),
        other => panic!("expected HEARTBEAT_ACK echoing 999999, got {other:?}"),
    }
}
