//! `pingpost serve`: configuration, start-up banner, signals.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pingpost::server::config::{ConfigFile, FsyncPolicy};
use pingpost::server::default_book::{default_config_file, default_credentials_text};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see `--print-default-config`); without it, the embedded
    /// default book and credentials.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The address to listen on, e.g. 127.0.0.1:7400 (port 0: any free port).
    #[arg(long)]
    listen: Option<String>,
    /// The journal's directory.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// When the journal syncs: always, interval=<ms>, never.
    #[arg(long)]
    fsync: Option<FsyncPolicy>,
    /// Journal records between two snapshots of the daemon's state (0: only at a clean
    /// shutdown).
    #[arg(long, value_name = "RECORDS")]
    snapshot_every: Option<u64>,
    /// Start a new journal with no book (the configuration's admins only), for a book loaded
    /// over the admin protocol, as the load generator does.
    #[arg(long)]
    empty_book: bool,
    /// Keep the kernel's transparent huge pages after start-up. By default the daemon turns
    /// them off once its book is loaded and its journal replayed: where the kernel compacts
    /// memory to make a huge page, the first touch of new memory stalls the exchange for
    /// milliseconds (see BENCHMARKS.md).
    #[arg(long)]
    transparent_huge_pages: bool,
    /// Print the embedded default configuration as TOML and exit.
    #[arg(long)]
    print_default_config: bool,
}

pub fn run(args: ServeArgs) -> ExitCode {
    if args.print_default_config {
        return match default_config_file().to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pingpost serve: {error}");
                ExitCode::from(2)
            }
        };
    }
    let embedded = args.config.is_none();
    let file = match &args.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match ConfigFile::parse(&text) {
                Ok(file) => file,
                Err(error) => {
                    eprintln!("pingpost serve: {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            },
            Err(error) => {
                eprintln!("pingpost serve: cannot read {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => default_config_file(),
    };
    let mut config = match file.check() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pingpost serve: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        match listen.parse() {
            Ok(addr) => config.listen = addr,
            Err(_) => {
                eprintln!(
                    "pingpost serve: --listen {listen:?} is not an address like 127.0.0.1:7400"
                );
                return ExitCode::from(2);
            }
        }
    }
    if let Some(journal) = args.journal {
        config.journal_dir = journal;
    }
    if let Some(fsync) = args.fsync {
        config.fsync = fsync;
    }
    if let Some(records) = args.snapshot_every {
        config.snapshot_every_records = records;
    }
    if args.empty_book {
        config.book.clear();
    }
    let embedded = embedded && !args.empty_book;
    let keep_huge_pages = args.transparent_huge_pages;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pingpost serve: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let journal_dir = config.journal_dir.clone();
        let fsync = config.fsync;
        let mut server = match pingpost::server::start(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("pingpost serve: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!("listening on {}", server.addr);
        if keep_huge_pages {
            println!("transparent huge pages: as the kernel has them (--transparent-huge-pages)");
        } else {
            match pingpost::server::memory::stop_transparent_huge_pages() {
                Ok(()) => println!("transparent huge pages: off from now on"),
                Err(error) => println!("transparent huge pages: left as they are ({error})"),
            }
        }
        match server.snapshot_lsn {
            Some(lsn) => println!(
                "journal {} (fsync {fsync}): snapshot at LSN {lsn} loaded, {} records after it \
                 replayed",
                journal_dir.display(),
                server.recovered_records
            ),
            None => println!(
                "journal {} (fsync {fsync}), {} records recovered",
                journal_dir.display(),
                server.recovered_records
            ),
        }
        for skipped in &server.snapshots_skipped {
            println!("a damaged snapshot was passed over: {skipped}");
        }
        if let Some(tail) = &server.torn_tail {
            println!("recovery cut a torn tail (a write the crash interrupted): {tail}");
        }
        if embedded {
            println!("embedded default book; credentials:\n{}", default_credentials_text());
        }
        tokio::select! {
            () = shutdown_signal() => {
                println!("shutting down: answering what is in flight, flushing the journal");
                match server.shutdown().await {
                    Ok(()) => {
                        println!("stopped cleanly");
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("pingpost serve: the journal failed at shutdown: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
            error = server.failed() => {
                eprintln!("pingpost serve: stopping, the journal failed: {error}; restart to recover");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
