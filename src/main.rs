//! The `pingpost` command: parses the command line and runs one subcommand.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod frame_tool;
mod journal_tool;
mod serve;

/// mimalloc: the exchange allocates many small, short-lived buffers across threads, where
/// mimalloc's per-thread free lists beat the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "pingpost",
    version,
    about = "Low-latency ping-post lead exchange"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the exchange daemon. With no options: loopback, the embedded default book, a
    /// journal in ./pingpost-data.
    Serve(serve::ServeArgs),
    /// Play the seed's worked example against an in-process daemon, step by step.
    Demo,
    /// Print the stored form of a secret, for `secret_hash` in a configuration file.
    HashSecret {
        /// The secret; read from standard input if absent.
        secret: Option<String>,
    },
    /// Decode and encode single protocol frames, for people writing their own clients.
    #[command(subcommand)]
    Frame(FrameCommand),
    /// Check and read a journal directory, for auditors (exit 0 sound, 1 unsound, 2 usage/IO).
    #[command(subcommand)]
    Journal(journal_tool::JournalCommand),
}

#[derive(Debug, Subcommand)]
enum FrameCommand {
    /// Decode one frame given as hex (argument, or standard input) and print it as JSON.
    /// Exits 1 with the protocol error code when the bytes are not a valid frame.
    Decode {
        /// The frame's bytes in hex; white space is ignored. Read from standard input if absent.
        hex: Option<String>,
    },
    /// Encode one frame given as JSON (argument, or standard input) and print its hex.
    /// The JSON is `{"correlation_id": 7, "message": {"type": "PING", ...}}`, the form
    /// `frame decode` prints and the spec's vectors use.
    Encode {
        /// The frame as JSON. Read from standard input if absent.
        json: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo => demo::run(),
        Command::HashSecret { secret } => {
            let secret = match secret.map_or_else(read_stdin, Ok) {
                Ok(secret) => secret.trim_end_matches(['\r', '\n']).to_owned(),
                Err(error) => {
                    eprintln!("pingpost hash-secret: cannot read standard input: {error}");
                    return ExitCode::from(2);
                }
            };
            println!("{}", pingpost::server::auth::hash_secret(&secret));
            ExitCode::SUCCESS
        }
        Command::Journal(command) => journal_tool::run(command),
        Command::Frame(command) => {
            let (input, run) = match command {
                FrameCommand::Decode { hex } => (hex, frame_tool::decode as FrameTool),
                FrameCommand::Encode { json } => (json, frame_tool::encode as FrameTool),
            };
            let input = match input.map_or_else(read_stdin, Ok) {
                Ok(input) => input,
                Err(error) => {
                    eprintln!("pingpost frame: cannot read standard input: {error}");
                    return ExitCode::from(2);
                }
            };
            match run(&input) {
                Ok(output) => {
                    println!("{output}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("pingpost frame: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A `frame` subcommand: text in, text out, or a sentence saying what is wrong.
type FrameTool = fn(&str) -> Result<String, String>;

fn read_stdin() -> std::io::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    Ok(input)
}
