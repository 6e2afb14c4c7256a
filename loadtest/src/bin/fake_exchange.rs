//! `pingpost-fake-exchange`: a stand-in for `pingpost serve` with the start-up contract the
//! generator's `--spawn-daemon` relies on: `pingpost-fake-exchange serve --listen 127.0.0.1:0 --journal DIR ...`
//! prints `listening on ADDR` and stops on SIGTERM. It accepts any login and answers every
//! ping with an offer at once, so it measures the generator's own ceiling, not an exchange.
//!
//! ```sh
//! cargo build --release -p pingpost-loadtest
//! target/release/pingpost-loadtest --spawn-daemon target/release/pingpost-fake-exchange \
//!     --admin-secret any --campaigns 1000 --connections 50 --in-flight 16 --duration 5s
//! ```

use std::process::ExitCode;

use pingpost_loadtest::fake_server::{FakeConfig, FakeServer};

/// mimalloc, as the daemon uses: every request allocates a few small buffers that another
/// thread frees, where the system allocator spent a fifth of the generator's time (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Only `--listen 127.0.0.1:0` is honoured (a free port is always taken); the other
    // arguments of `serve` are accepted and ignored, as a fake has no journal.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        eprintln!(
            "usage: pingpost-fake-exchange serve [--listen 127.0.0.1:0] [--journal DIR] [...]"
        );
        return ExitCode::from(2);
    }
    let server = match FakeServer::start(FakeConfig::default()).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("pingpost-fake-exchange: could not listen: {error}");
            return ExitCode::from(1);
        }
    };
    println!("fake exchange, not pingpost: listening on {}", server.addr);
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("pingpost-fake-exchange: could not watch SIGTERM: {error}");
                return ExitCode::from(1);
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
