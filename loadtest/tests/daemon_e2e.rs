//! End to end through `--spawn-daemon`: the generator starts a daemon as a child, loads a book
//! over the admin protocol, pings and posts with live buyers answering, and stops the daemon.
//!
//! `the_fake_exchange_runs_through_spawn_daemon` runs now, against the stand-in
//! `pingpost-fake-exchange` (`src/bin/fake_exchange.rs`): it checks the spawn, address and stop
//! machinery.
//!
//! `a_short_run_against_pingpost_serve_has_no_protocol_errors` is the CI check: the
//! real daemon, started with its embedded default configuration (admin 1, `admin-demo-secret`;
//! `PINGPOST_ADMIN_ID` and `PINGPOST_ADMIN_SECRET` override), loaded with a generated book.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use clap::Parser;
use pingpost_loadtest::cli::{Args, Config};
use pingpost_loadtest::run::run;

/// Admin credentials when the environment gives none.
const ADMIN_ID: &str = "1";
const ADMIN_SECRET: &str = "admin-demo-secret";

/// A binary next to this test's own (`target/<profile>/`).
fn built(relative: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/daemon_e2e-<hash> → target/<profile>/
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join(relative)
}

fn config(daemon: &Path, extra: &[&str]) -> Config {
    let admin_id = std::env::var("PINGPOST_ADMIN_ID").unwrap_or_else(|_| ADMIN_ID.to_owned());
    let admin_secret =
        std::env::var("PINGPOST_ADMIN_SECRET").unwrap_or_else(|_| ADMIN_SECRET.to_owned());
    let mut argv: Vec<String> = [
        "pingpost-loadtest",
        "--spawn-daemon",
        daemon.to_str().unwrap(),
        "--admin-id",
        &admin_id,
        "--admin-secret",
        &admin_secret,
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    Config::from_args(Args::try_parse_from(argv).unwrap(), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_exchange_runs_through_spawn_daemon() {
    let fake = PathBuf::from(env!("CARGO_BIN_EXE_pingpost-fake-exchange"));
    let config = config(
        &fake,
        &[
            "--campaigns",
            "100",
            "--connections",
            "2",
            "--count",
            "200",
            "--post-share",
            "10%",
        ],
    );
    let report = run(&config).await.unwrap();
    assert!(report.spawned_daemon);
    assert!(report.target.starts_with("127.0.0.1:"), "{}", report.target);
    assert_eq!(report.result.pings_answered, 200);
    assert_eq!(report.result.ping_errors + report.result.post_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_against_pingpost_serve_has_no_protocol_errors() {
    // A 1k-campaign book with live buyers, open loop for two seconds, a third of the offers
    // posted, the journal on with the interval policy.
    let config = config(
        &built("pingpost"),
        &[
            "--daemon-fsync",
            "interval=2",
            "--campaigns",
            "1000",
            "--live-share",
            "20%",
            "--connections",
            "4",
            "--in-flight",
            "8",
            "--rate",
            "2000",
            "--duration",
            "2s",
            "--post-share",
            "33%",
        ],
    );
    let report = run(&config).await.unwrap();
    let result = &report.result;
    assert_eq!(result.pings_sent, 4_000);
    // Zero protocol errors: every ping and post answered, none with an ERROR.
    assert_eq!(result.ping_errors, 0, "{:?}", result.ping_errors_by_code);
    assert_eq!(result.post_errors, 0, "{:?}", result.post_errors_by_code);
    assert_eq!(result.pings_unanswered, 0);
    // A realistic book sells most leads: the generator's leads are well formed.
    assert!(result.offers > result.pings_answered / 2, "{result:?}");
    assert!(report.buyers.sessions > 0 && report.buyers.offers > 0);
    assert!(
        report.buyers.errors_by_code.is_empty(),
        "{:?}",
        report.buyers
    );
}
