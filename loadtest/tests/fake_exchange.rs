//! The generator against the in-process fake exchange: pacing, coordinated-omission-correct
//! latency, the whole run with its book, and the JSON report. Assertions are on counts and on
//! bounds that only grow when the machine is slow, never on how fast something ran.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec};
use pingpost::protocol::Role;
use pingpost_loadtest::book::Credential;
use pingpost_loadtest::cli::{Args, Config, Mode, Stop};
use pingpost_loadtest::fake_server::{FAKE_PAYOUT, FakeConfig, FakeServer};
use pingpost_loadtest::rate::Schedule;
use pingpost_loadtest::run::{StepSpec, connect_all, run, run_step};
use pingpost_loadtest::seller::SellerPlan;

use clap::Parser;

fn sellers(count: u64) -> Vec<Credential> {
    (1..=count)
        .map(|id| Credential {
            id,
            secret: format!("seller-{id}"),
        })
        .collect()
}

fn plan(post_share: &str, lead_offset: u64) -> Arc<SellerPlan> {
    let spec = BookSpec::new(1, 200);
    Arc::new(SellerPlan {
        leads: LeadGen::new(LeadSpec::for_book(&spec, 1)),
        lead_offset,
        post_share: post_share.parse().unwrap(),
        seed: 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_sends_exactly_the_scheduled_pings_and_never_early() {
    let server = FakeServer::start(FakeConfig {
        record_arrivals: true,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let clients = connect_all(server.addr, Role::Seller, &sellers(4))
        .await
        .unwrap();
    let rate_per_s = 2_000;
    let duration = Duration::from_millis(1_000);
    let lead_offset = 500;
    let outcome = run_step(
        &clients,
        plan("0", lead_offset),
        StepSpec {
            mode: Mode::Open { rate_per_s },
            stop: Stop::After(duration),
            in_flight: 8,
            progress: false,
        },
    )
    .await
    .unwrap();

    // Achieved count over the run is rate × duration: exactly, not just within 1 %.
    let expected = rate_per_s * u64::try_from(duration.as_millis()).unwrap() / 1_000;
    assert_eq!(outcome.scheduled, Some(expected));
    assert_eq!(outcome.tally.pings_sent, expected);
    assert_eq!(outcome.tally.pings_answered(), expected);
    assert_eq!(outcome.tally.ping_latency.len(), expected);
    let report = outcome.report(Some(rate_per_s));
    assert_eq!(report.ping_errors, 0);
    assert_eq!(report.pings_unanswered, 0);

    // The server saw each ping once, and none before its intended time: the pacer never runs
    // ahead of the schedule, so the rate can be no higher than asked; with the exact count it
    // is the rate asked for.
    let mut arrivals = server.counters.arrivals();
    assert_eq!(arrivals.len() as u64, expected);
    arrivals.sort_by_key(|&(token, _)| token);
    let schedule = Schedule::new(rate_per_s);
    for (ix, &(token, at)) in arrivals.iter().enumerate() {
        // `LeadGen` tokens are the lead number + 1.
        assert_eq!(
            token,
            lead_offset + ix as u64 + 1,
            "each lead once, in order"
        );
        let intended = outcome.start + schedule.offset(ix as u64);
        assert!(
            at >= intended,
            "ping {ix} arrived {:?} before its intended time",
            intended - at
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_up_in_the_tail_measured_from_the_intended_time() {
    let stall = Duration::from_millis(300);
    let server = FakeServer::start(FakeConfig {
        stall_once: Some((200, stall)),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let clients = connect_all(server.addr, Role::Seller, &sellers(1))
        .await
        .unwrap();
    let rate_per_s = 1_000;
    let outcome = run_step(
        &clients,
        plan("0", 0),
        StepSpec {
            mode: Mode::Open { rate_per_s },
            stop: Stop::Count(1_500),
            in_flight: 1,
            progress: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.tally.pings_answered(), 1_500);
    let latency = &outcome.tally.ping_latency;
    let stall_us = u64::try_from(stall.as_micros()).unwrap();
    // The stalled ping itself waited the whole stall.
    assert!(
        latency.max() >= stall_us * 999 / 1_000,
        "max {} us",
        latency.max()
    );
    // Every ping intended during the first half of the stall waited at least half of it: about
    // rate × stall / 2 = 150 of them. A generator that measured from the actual send would
    // show one slow ping and 149 fast ones.
    let half_us = stall_us / 2;
    let slow = latency.count_between(half_us, latency.max());
    let intended_in_first_half = rate_per_s * u64::try_from(stall.as_millis()).unwrap() / 2_000;
    assert!(
        slow >= intended_in_first_half * 9 / 10,
        "only {slow} pings at or above {half_us} us; expected about {intended_in_first_half}"
    );
    // And the tail percentiles say so: 150 of 1,500 is the slowest 10 %.
    let report = outcome.report(Some(rate_per_s));
    assert!(report.ping_latency_us.p99_us >= half_us, "{report:?}");
    // The queueing happened in front of the send: the send lateness shows it too.
    assert!(outcome.tally.send_lateness.count_between(half_us, u64::MAX) >= 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closed_loop_keeps_every_connection_busy_until_the_count() {
    let server = FakeServer::start(FakeConfig {
        no_sale_every: 10,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let clients = connect_all(server.addr, Role::Seller, &sellers(3))
        .await
        .unwrap();
    let outcome = run_step(
        &clients,
        plan("50%", 0),
        StepSpec {
            mode: Mode::Closed,
            stop: Stop::Count(3_000),
            in_flight: 16,
            progress: false,
        },
    )
    .await
    .unwrap();
    let tally = &outcome.tally;
    assert_eq!(tally.pings_sent, 3_000);
    assert_eq!(tally.pings_answered(), 3_000);
    assert_eq!(tally.no_sales_by_reason.get("NO_MATCHING_CAMPAIGN"), 300);
    assert_eq!(tally.offers, 2_700);
    // About half of the offers were posted, and every post sold at the fake's payout.
    assert!(
        (1_200..=1_500).contains(&tally.posts_sent),
        "{}",
        tally.posts_sent
    );
    assert_eq!(tally.sold, tally.posts_sent);
    assert_eq!(tally.payout_total, tally.sold * FAKE_PAYOUT);
    assert_eq!(tally.post_latency.len(), tally.posts_sent);
    assert_eq!(
        server
            .counters
            .posts
            .load(std::sync::atomic::Ordering::Relaxed),
        tally.posts_sent
    );
}

fn config(args: &[&str]) -> Result<Config, String> {
    let mut argv = vec!["pingpost-loadtest"];
    argv.extend_from_slice(args);
    let args = Args::try_parse_from(argv).map_err(|error| error.to_string())?;
    Config::from_args(args, None).map_err(|error| error.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_loads_the_book_and_writes_every_report_field() {
    let server = FakeServer::start(FakeConfig {
        no_sale_every: 4,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let addr = server.addr.to_string();
    let config = config(&[
        "--addr",
        &addr,
        "--admin-secret",
        "admin",
        "--campaigns",
        "200",
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--count",
        "400",
        "--post-share",
        "25%",
        "--quiet",
    ])
    .unwrap();
    let report = run(&config).await.unwrap();

    // The whole book went over the admin protocol: 4 verticals, 20 + 4 buyers, 20 sellers,
    // 200 campaigns.
    let admin_changes = server
        .counters
        .admin_changes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(admin_changes, 4 + 24 + 20 + 200);
    assert_eq!(report.book.admin_changes, admin_changes);
    assert_eq!(report.result.pings_answered, 400);
    assert_eq!(
        report.result.no_sales_by_reason.get("NO_MATCHING_CAMPAIGN"),
        100
    );
    assert_eq!(report.result.ping_errors + report.result.post_errors, 0);

    let json = serde_json::to_value(&report).unwrap();
    let top = [
        "generator_version",
        "target",
        "spawned_daemon",
        "mode",
        "connections",
        "in_flight",
        "post_share_pct",
        "duplicate_pct",
        "book",
        "result",
        "buyers",
        "sweep",
        "saturated_at_rate_per_s",
        "saturation_reason",
    ];
    let step = [
        "requested_rate_per_s",
        "elapsed_s",
        "pings_scheduled",
        "pings_sent",
        "pings_answered",
        "pings_unanswered",
        "throughput_per_s",
        "achieved_pct",
        "offers",
        "no_sales",
        "no_sales_by_reason",
        "ping_errors",
        "ping_errors_by_code",
        "posts_sent",
        "sold",
        "unsold",
        "unsold_by_reason",
        "post_errors",
        "post_errors_by_code",
        "payout_total",
        "ping_latency_us",
        "post_latency_us",
        "send_lateness_us",
    ];
    let percentiles = [
        "count", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us", "mean_us",
    ];
    let book = [
        "loaded",
        "seed",
        "campaigns",
        "buyers",
        "sellers",
        "live_buyers",
        "admin_changes",
        "load_s",
    ];
    let buyers = [
        "sessions",
        "offers",
        "bids",
        "no_bids",
        "won",
        "lost",
        "lost_by_reason",
        "deliveries",
        "accepted",
        "rejected",
        "errors_by_code",
    ];
    let keys = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let sorted = |names: &[&str]| -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(keys(&json), sorted(&top));
    assert_eq!(keys(&json["result"]), sorted(&step));
    assert_eq!(keys(&json["book"]), sorted(&book));
    assert_eq!(keys(&json["buyers"]), sorted(&buyers));
    for latency in ["ping_latency_us", "post_latency_us", "send_lateness_us"] {
        assert_eq!(keys(&json["result"][latency]), sorted(&percentiles));
    }
    assert_eq!(json["mode"], "closed");
    assert_eq!(json["result"]["pings_scheduled"], 400);
    assert!(json["result"]["requested_rate_per_s"].is_null());
    assert_eq!(json["result"]["ping_latency_us"]["count"], 400);
    assert_eq!(
        json["result"]["post_latency_us"]["count"],
        json["result"]["posts_sent"]
    );
    // The human table has every latency row.
    let table = report.render();
    for row in [
        "ping -> result",
        "post -> result",
        "p99.99",
        "NO_MATCHING_CAMPAIGN",
    ] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_steps_the_rate_up_and_reports_each_step() {
    let server = FakeServer::start(FakeConfig::default()).await.unwrap();
    let addr = server.addr.to_string();
    let config = config(&[
        "--addr",
        &addr,
        "--no-book",
        "--campaigns",
        "100",
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--rate",
        "400",
        "--duration",
        "250ms",
        "--sweep",
        "--sweep-step-pct",
        "100",
        "--sweep-steps",
        "3",
        // No bound a fake on loopback can break: the sweep runs all its steps.
        "--sweep-p99-us-max",
        "60000000",
        "--quiet",
    ])
    .unwrap();
    let report = run(&config).await.unwrap();
    let rates: Vec<u64> = report
        .sweep
        .iter()
        .map(|step| step.requested_rate_per_s.unwrap())
        .collect();
    // Each step is one rate × its duration, and the rates double. A step may end the sweep if
    // a slow machine misses 95 % of its rate; the ones that ran are still in order.
    assert!(!rates.is_empty());
    assert_eq!(rates, [400, 800, 1_600][..rates.len()]);
    for step in &report.sweep {
        let rate = step.requested_rate_per_s.unwrap();
        assert_eq!(step.pings_scheduled, Some(rate / 4));
        assert_eq!(step.pings_answered, rate / 4);
    }
    assert_eq!(report.result, *report.sweep.last().unwrap());
    if rates.len() < 3 {
        assert!(report.saturated_at_rate_per_s.is_some());
    }
    assert!(report.render().contains("achieved/s"));
}

#[test]
fn bad_arguments_are_refused_with_a_sentence() {
    let cases: &[(&[&str], &str)] = &[
        (&["--connections", "0"], "--connections 0 is out of range"),
        (&["--in-flight", "5000"], "--in-flight 5000 is out of range"),
        (&["--rate", "0"], "--rate 0 would send nothing"),
        (&["--rate", "99999999999"], "above the generator's"),
        (&["--count", "0"], "--count 0 would send nothing"),
        (&["--duration", "0s"], "--duration 0 would send nothing"),
        (&["--rate", "1", "--duration", "0ms"], "--duration 0"),
        (&["--post-share", "1.5"], "is not a share"),
        (&["--duplicate-share", "2.5%"], "must be a whole percent"),
        (&["--live-buyers", "3", "--live-share", "0"], "--live-share"),
        (&["--campaigns", "0"], "--campaigns 0 is out of range"),
        (&["--buyers", "0"], "--buyers 0 is out of range"),
        (&["--buyer-latency-ms", "uniform:9..2"], "empty range"),
        (&["--ping-timeout-ms", "0"], "leaves the exchange no time"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["--no-book"];
        argv.extend_from_slice(args);
        let error = config(&argv).unwrap_err();
        assert!(
            error.contains(expected),
            "{args:?}: expected {expected:?} in {error:?}"
        );
    }
    // Loading a book needs the admin's secret.
    let error = config(&[]).unwrap_err();
    assert!(error.contains("--admin-secret"), "{error}");
    // clap's own checks: --sweep needs --rate, --duration and --count exclude each other.
    assert!(config(&["--no-book", "--sweep"]).is_err());
    assert!(config(&["--no-book", "--duration", "1s", "--count", "5"]).is_err());
    assert!(config(&["--no-book", "--daemon-fsync", "interval"]).is_err());

    // And what works.
    let ok = config(&["--no-book", "--rate", "50000", "--duration", "2s"]).unwrap();
    assert_eq!(ok.mode, Mode::Open { rate_per_s: 50_000 });
    assert_eq!(ok.stop, Stop::After(Duration::from_secs(2)));
    let ok = config(&["--admin-secret", "x", "--live-buyers", "3"]).unwrap();
    assert_eq!(ok.live_share.bps(), 1_000, "live buyers imply a live share");
    assert_eq!(ok.mode, Mode::Closed);
}

#[tokio::test]
async fn a_remote_address_is_refused_without_allow_remote() {
    let config = config(&["--no-book", "--addr", "192.0.2.7:7400", "--count", "1"]).unwrap();
    let error = run(&config).await.unwrap_err();
    assert!(error.0.contains("--allow-remote"), "{error}");
}
