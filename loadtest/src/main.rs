//! `pingpost-loadtest`: parse the command line, run, print the report. Exit status 0 when the
//! run completed, 1 when it could not be carried out, 2 for a bad command line.

use std::process::ExitCode;

use clap::Parser;
use pingpost_loadtest::cli::{ADMIN_SECRET_ENV, Args, Config};
use pingpost_loadtest::run::run;

/// mimalloc, as the daemon uses: every request allocates a few small buffers that another
/// thread frees, where the system allocator spent a fifth of the generator's time (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::from_args(args, std::env::var(ADMIN_SECRET_ENV).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pingpost-loadtest: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pingpost-loadtest: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let report = match runtime.block_on(run(&config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("pingpost-loadtest: {error}");
            return ExitCode::from(1);
        }
    };
    print!("{}", report.render());
    if let Some(path) = &config.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|error| error.to_string())
            .and_then(|json| std::fs::write(path, json + "\n").map_err(|error| error.to_string()));
        if let Err(error) = written {
            eprintln!(
                "pingpost-loadtest: could not write the JSON report to {}: {error}",
                path.display()
            );
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
