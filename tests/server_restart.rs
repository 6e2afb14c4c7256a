//! The daemon across restarts: an orderly restart keeps the book, the ledger and the pending
//! deliveries; and a crash test kills `pingpost serve` (SIGKILL) at random moments under load,
//! restarts it on the same journal, and checks that nothing acknowledged is missing, nothing
//! appears that was never submitted, sequence numbers are contiguous and caps agree with the
//! ledger.
//!
//! The crash test runs `PINGPOST_CRASH_CYCLES` cycles (default 3, what CI runs); run it longer by
//! hand with e.g. `PINGPOST_CRASH_CYCLES=50 cargo test --release --test server_restart`.

#![allow(clippy::unwrap_used)]

mod server_util;

use server_util::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingpost::bookgen::SplitMix64;
use pingpost::client::{Client, Incoming};
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig};
use pingpost::journal::{Journal, SyncFault};
use pingpost::protocol::{
    Attributes, Country, LeadView, Ping, PingOutcome, PingSaleMode, Post, PostOutcome, PostalCode,
    Symbol,
};
use pingpost::server::config::FsyncPolicy;

fn now_us() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// An auto-insurance lead in Los Angeles (the default book's ZIP3 buyer, stored deliveries).
fn ping(client_token: u64) -> Ping<'static> {
    lead_in(client_token, "auto_insurance", "US", "90012")
}

/// A solar lead in Munich: with no installer connected, the uncapped fixed-price fallback
/// (campaign 9000, stored deliveries) buys it.
fn munich_ping(client_token: u64) -> Ping<'static> {
    lead_in(client_token, "solar", "DE", "80331")
}

fn lead_in(
    client_token: u64,
    vertical: &'static str,
    country: &'static str,
    postal_code: &'static str,
) -> Ping<'static> {
    Ping {
        client_token,
        lead: LeadView {
            vertical: Symbol::new(vertical).unwrap(),
            country: Country::new(country).unwrap(),
            postal_code: PostalCode::new(postal_code).unwrap(),
            attributes: Attributes::builder().build().unwrap(),
        },
        phone_hash: None,
        email_hash: None,
        sale_mode: PingSaleMode::Exclusive,
        shared_buyers_max: 0,
        timeout_ms: 1_000,
    }
}

async fn sell(seller: &Client, n: u64) -> Option<(u64, u64)> {
    sell_lead(seller, n, ping(n)).await
}

async fn sell_lead(seller: &Client, n: u64, lead: Ping<'static>) -> Option<(u64, u64)> {
    let result = seller.ping(lead).await.ok()?;
    if !matches!(result.outcome, PingOutcome::Offer { .. }) {
        return None;
    }
    let posted = seller
        .post(Post {
            ping_id: result.ping_id,
            contact: consumer(n),
            consent: consent(),
        })
        .await
        .ok()?;
    match posted.outcome {
        PostOutcome::Sold { .. } => Some((n, posted.lead_id)),
        PostOutcome::Unsold { .. } => None,
    }
}

/// Picks up (and accepts) the `sold` leads (lead number, lead id) as the connected `buyer`, and
/// checks each came once, in order, under delivery numbers 1, 2, 3 and so on. Returns the
/// buyer's incoming stream, for what is delivered next.
async fn assert_delivered_in_order(buyer: &Client, sold: &[(u64, u64)]) -> Incoming {
    let mut incoming = buyer.incoming().unwrap();
    let delivered: Vec<(u64, u64)> = pick_up(&mut incoming, sold.len())
        .await
        .into_iter()
        .map(|(seq, lead, _)| (seq, lead))
        .collect();
    let expected: Vec<(u64, u64)> = sold
        .iter()
        .enumerate()
        .map(|(i, &(_, lead))| (i as u64 + 1, lead))
        .collect();
    assert_eq!(
        delivered, expected,
        "each lead once, with its original number"
    );
    incoming
}

#[tokio::test]
async fn an_orderly_restart_keeps_the_ledger_and_the_deliveries_still_to_pick_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = pingpost::server::start(config(dir.path())).await.unwrap();
    assert_eq!(server.recovered_records, 0);
    let seller = server_util::seller(server.addr).await;
    let mut sold = Vec::new();
    for n in 1..=5 {
        sold.push(sell(&seller, n).await.expect("sold"));
    }
    let _ = seller.close().await;
    server.shutdown().await.unwrap();

    let server = pingpost::server::start(config(dir.path())).await.unwrap();
    // The clean stop left a snapshot of the final state: nothing to replay after it.
    assert!(server.snapshot_lsn.is_some());
    assert_eq!(server.recovered_records, 0);
    // The stored buyer (203, Los Angeles) was never connected: its five leads wait for it.
    let buyer = server_util::buyer(server.addr, 203, 0).await;
    let _incoming = assert_delivered_in_order(&buyer, &sold).await;
    // New leads continue the numbering: no id is reused after a restart.
    let seller = server_util::seller(server.addr).await;
    let (_, lead) = sell(&seller, 6).await.expect("sold after restart");
    assert_eq!(lead, sold.last().unwrap().1 + 1);
    let admin = server_util::admin(server.addr).await;
    // The trace of a lead sold before the restart is rebuilt from the journal.
    let trace = admin
        .trace(pingpost::protocol::TraceKey::Lead, sold[0].1)
        .await;
    assert!(trace.is_ok(), "{trace:?}");
    let _ = (
        seller.close().await,
        buyer.close().await,
        admin.close().await,
    );
    server.shutdown().await.unwrap();
}

/// Every record of a journal directory from LSN 1, snapshots or not.
fn every_event(dir: &Path) -> Vec<(u64, Event)> {
    let mut events = Vec::new();
    pingpost::journal::scan::scan(
        dir,
        pingpost::journal::scan::TornTailMode::Report,
        |segment, batch| {
            for record in &batch.records {
                events.push((
                    record.lsn,
                    pingpost::journal::decode_record(segment, record)?,
                ));
            }
            Ok(())
        },
    )
    .unwrap();
    events
}

/// A `pingpost serve` child on a journal directory.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

fn spawn_daemon(dir: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pingpost"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--fsync",
            "always",
            // Snapshots every few dozen records: crashes land before, during and after them.
            "--snapshot-every",
            "40",
            "--journal",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the daemon prints its address")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.parse().unwrap();
        }
    };
    // Keep reading its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Daemon { child, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_the_daemon_loses_nothing_acknowledged() {
    let cycles: u64 = std::env::var("PINGPOST_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let mut random = SplitMix64::new(0xC2A5_4000);
    // Consumers whose sale the daemon acknowledged (POST_RESULT sold), by consumer number.
    let acknowledged: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let submitted: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let next_consumer = Arc::new(AtomicU64::new(1));
    for _ in 0..cycles {
        let daemon = spawn_daemon(dir.path());
        let seller = server_util::seller(daemon.addr).await;
        // Eight pipelines selling without pause until the daemon dies under them.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let seller = seller.clone();
            let (acknowledged, submitted) = (Arc::clone(&acknowledged), Arc::clone(&submitted));
            let next_consumer = Arc::clone(&next_consumer);
            tasks.push(tokio::spawn(async move {
                while !seller.is_closed() {
                    let n = next_consumer.fetch_add(1, Ordering::Relaxed);
                    submitted.lock().unwrap().insert(n);
                    if let Some((n, lead)) = sell_lead(&seller, n, munich_ping(n)).await {
                        acknowledged.lock().unwrap().insert(n, lead);
                    }
                }
            }));
        }
        let kill_after = Duration::from_millis(50 + random.next_u64() % 450);
        tokio::time::sleep(kill_after).await;
        let mut daemon = daemon;
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let submitted = submitted.lock().unwrap().clone();

    // The journal after the last crash: recovery cuts a torn tail at most and refuses
    // corruption; the records are contiguous from LSN 1.
    let recovery = Journal::recover::<Event>(dir.path()).unwrap();
    let all = every_event(dir.path());
    let lsns: Vec<u64> = all.iter().map(|(lsn, _)| *lsn).collect();
    assert_eq!(
        lsns,
        (1..=lsns.len() as u64).collect::<Vec<_>>(),
        "LSNs contiguous"
    );

    // Every acknowledged sale is in the journal; every sale in it was submitted by us.
    let mut posted: BTreeMap<u64, u64> = BTreeMap::new(); // lead id → consumer number
    let mut committed: BTreeSet<u64> = BTreeSet::new(); // lead ids
    let mut committed_to_fallback = 0_u64;
    for (_, event) in &all {
        match event {
            Event::Posted {
                lead_id, contact, ..
            } => {
                let n: u64 = contact
                    .last_name
                    .strip_prefix("Consumer")
                    .and_then(|n| n.parse().ok())
                    .expect("only our consumers are posted");
                posted.insert(*lead_id, n);
            }
            Event::SaleCommitted {
                lead_id, campaign, ..
            } => {
                committed.insert(*lead_id);
                if *campaign == 9_000 {
                    committed_to_fallback += 1;
                }
            }
            _ => {}
        }
    }
    for (n, lead) in &acknowledged {
        assert_eq!(
            posted.get(lead),
            Some(n),
            "acknowledged lead {lead} is journaled"
        );
        assert!(
            committed.contains(lead),
            "acknowledged sale {lead} committed"
        );
    }
    for n in posted.values() {
        assert!(submitted.contains(n), "consumer {n} was never submitted");
    }

    // Replay rebuilds a state whose caps agree with the ledger: the fallback campaign's count
    // of committed leads is the number of its sales in the journal.
    let mut engine = Engine::new(EngineConfig::default());
    for (_, event) in &all {
        engine.apply(event);
    }
    assert_eq!(engine.ledger().sales, committed.len() as u64);
    // The newest snapshot the crashes left, plus the records after it, is that same state.
    let (snapshot_lsn, state) = recovery.snapshot.expect("the daemon took snapshots");
    let restored = pingpost::server::snapshot::decode(
        &state,
        EngineConfig::default(),
        pingpost::limits::OUTBOX_STORED_PER_BUYER_MAX,
    )
    .expect("the snapshot loads");
    let mut resumed = restored.engine;
    for (lsn, event) in &recovery.events {
        assert!(*lsn > snapshot_lsn);
        resumed.apply(event);
    }
    assert_eq!(
        resumed.state_digest(),
        engine.state_digest(),
        "snapshot at LSN {snapshot_lsn} + the records after it == replay from the first record"
    );
    let usage = engine.campaign_usage(9_000, now_us()).unwrap();
    assert_eq!(
        u64::from(usage.total.leads_committed),
        committed_to_fallback,
        "caps agree with the ledger: {usage:?}"
    );
    assert!(!acknowledged.is_empty(), "some sales were acknowledged");
    eprintln!(
        "crash test: {cycles} cycles, {} sales acknowledged, {} committed in the journal, {} records",
        acknowledged.len(),
        committed.len(),
        lsns.len()
    );
}

#[tokio::test]
async fn deliveries_older_than_memory_keeps_are_read_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = config(dir.path());
    small.outbox_stored_per_buyer_max = 2;
    let server = pingpost::server::start(small).await.unwrap();
    let seller = server_util::seller(server.addr).await;
    let mut sold = Vec::new();
    for n in 1..=5 {
        sold.push(sell(&seller, n).await.expect("sold").1);
    }
    // Buyer 203 was away for five leads; memory holds the last two.
    let admin = server_util::admin(server.addr).await;
    assert_eq!(
        counter(&admin, "deliveries_waiting").await,
        Some(2),
        "three of five left memory"
    );
    let _ = admin.close().await;
    let buyer = server_util::buyer(server.addr, 203, 0).await;
    let mut incoming = buyer.incoming().unwrap();
    let picked = pick_up(&mut incoming, sold.len()).await;
    let names: Vec<&str> = picked.iter().map(|(_, _, name)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Consumer1",
            "Consumer2",
            "Consumer3",
            "Consumer4",
            "Consumer5"
        ]
    );
    let delivered: Vec<(u64, u64)> = picked.iter().map(|&(seq, lead, _)| (seq, lead)).collect();
    let expected: Vec<(u64, u64)> = (1..).zip(sold.iter().copied()).collect();
    assert_eq!(
        delivered, expected,
        "in order, each once, with its original number"
    );
    let _ = (seller.close().await, buyer.close().await);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_what_is_in_flight_flushes_the_journal_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = spawn_daemon(dir.path());
    let seller = server_util::seller(daemon.addr).await;
    let (_, lead) = sell(&seller, 1).await.expect("sold");
    let status = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || daemon.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // The seller's session was ended in order.
    let reason = tokio::time::timeout(WAIT, seller.closed()).await.unwrap();
    assert!(
        format!("{reason:?}").contains("SERVER_SHUTTING_DOWN"),
        "{reason:?}"
    );
    // The journal is sound and holds the sale.
    let output = Command::new(env!("CARGO_BIN_EXE_pingpost"))
        .args(["journal", "verify"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let recovery = Journal::recover::<Event>(dir.path()).unwrap();
    assert!(
        recovery.truncated.is_none(),
        "a clean stop leaves no torn tail"
    );
    let (lsn, _) = recovery.snapshot.expect("a clean stop leaves a snapshot");
    assert_eq!(recovery.next_lsn, lsn + 1, "of the final state");
    assert!(every_event(dir.path()).iter().any(
        |(_, event)| matches!(event, Event::SaleCommitted { lead_id, .. } if *lead_id == lead)
    ));
}

#[tokio::test]
async fn a_failed_journal_sync_stops_the_daemon_and_a_restart_recovers_everything_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // The disk starts failing on demand: every sync after the switch fails as EIO would.
    let failing = Arc::new(AtomicBool::new(false));
    let failed_syncs = Arc::new(AtomicU64::new(0));
    let mut faulty = config(dir.path());
    faulty.fsync = FsyncPolicy::Always;
    let (switch, count) = (Arc::clone(&failing), Arc::clone(&failed_syncs));
    faulty.journal_sync_fault = Some(SyncFault::new(move |_| {
        if switch.load(Ordering::SeqCst) {
            count.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::from_raw_os_error(5));
        }
        Ok(())
    }));
    let mut server = pingpost::server::start(faulty).await.unwrap();
    let seller = server_util::seller(server.addr).await;
    let mut sold = Vec::new();
    for n in 1..=3 {
        sold.push(sell(&seller, n).await.expect("sold"));
    }

    failing.store(true, Ordering::SeqCst);
    // Nothing whose record could not be made durable is acknowledged as sold.
    let unsold = tokio::time::timeout(WAIT, sell(&seller, 4)).await.unwrap();
    assert_eq!(unsold, None, "a sale acknowledged without a durable record");
    let why = tokio::time::timeout(WAIT, server.failed()).await.unwrap();
    assert!(why.contains("sync"), "{why}");
    // The failed sync is never retried: a retry that succeeded could claim durability for
    // pages the kernel already dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(failed_syncs.load(Ordering::SeqCst), 1);
    let _ = seller.close().await;
    drop(server);

    // Recovery takes over on the same journal: every acknowledged sale is there, each lead
    // waiting for its buyer under its original number.
    let server = pingpost::server::start(config(dir.path())).await.unwrap();
    let buyer = server_util::buyer(server.addr, 203, 0).await;
    let _incoming = assert_delivered_in_order(&buyer, &sold).await;
    let _ = buyer.close().await;
    server.shutdown().await.unwrap();
}
