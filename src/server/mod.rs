//! The daemon: a tokio server on persistent TCP connections around one exchange thread.
//!
//! # Shape
//!
//! - [`exchange`]: the exchange thread, sole owner of the engine. Sessions send it commands
//!   through one bounded channel; it hands events to the journal and routes outputs back.
//! - [`session`]: one task per connection reading and checking frames, one writing batches.
//! - [`outbox`]: deliveries waiting for their buyer, rebuilt from the journal on restart.
//! - [`auth`]: hashed secrets and the credentials sessions check at login.
//! - [`config`], [`default_book`]: the TOML configuration and the embedded default.
//! - [`journal_log`]: the journal as the exchange thread sees it (append, durable watermark).
//!
//! Start-up: open the journal and recover it, replay its events into a fresh engine (and the
//! outbox), load the configured book if the journal was empty, start the exchange thread, then
//! listen. Shutdown: stop accepting, let the exchange answer what is in flight and flush the
//! journal, then end every session with `GOODBYE SERVER_SHUTTING_DOWN`.

pub mod auth;
pub mod config;
pub mod default_book;
pub mod exchange;
pub mod journal_log;
pub mod memory;
pub mod outbox;
pub mod session;
pub mod snapshot;
pub mod stats;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::engine::machine::{Engine, EngineConfig};
use crate::limits::CONNECTIONS_MAX;
use crate::protocol::{Error, ErrorCode, Message, Role};
use auth::{Credential, Credentials};
use config::ServerConfig;
use exchange::{Command, Exchange, ExchangeEnd, ExchangeParts};
use outbox::OutboxBuilder;
use session::SessionContext;
use stats::SessionCounters;

/// Builds an `ERROR` message; the text is cut to the protocol's limit.
pub fn error_message(code: ErrorCode, text: &str) -> Message<'static> {
    let mut text = text.to_owned();
    if text.len() > crate::limits::MESSAGE_TEXT_LEN_MAX {
        let mut cut = crate::limits::MESSAGE_TEXT_LEN_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Message::Error(Error {
        code,
        message: text.into(),
    })
}

/// A daemon that is running.
#[derive(Debug)]
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop_accepting: CancellationToken,
    sessions: CancellationToken,
    commands: crossbeam_channel::Sender<Command>,
    exchange: Option<thread::JoinHandle<ExchangeEnd>>,
    /// Records replayed from the journal at start (after the snapshot, if one was loaded).
    pub recovered_records: u64,
    /// The LSN of the snapshot loaded at start, if one was.
    pub snapshot_lsn: Option<u64>,
    /// Newer snapshots passed over at start because their bytes did not check out.
    pub snapshots_skipped: Vec<String>,
    /// What recovery cut from a torn tail, said at start (never silent).
    pub torn_tail: Option<String>,
}

/// What recovery builds before the exchange thread starts.
struct Replay {
    engine: Engine,
    outbox: OutboxBuilder,
    clock_floor_us: u64,
}

/// Why the daemon could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Starts the daemon: recovers the journal, starts the exchange thread, listens.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let (durable_tx, durable_rx) = crossbeam_channel::bounded(1);
    // Recovery: the newest snapshot, if there is one, then the journal's events after it, one
    // at a time, through the engine and the outbox.
    let replay = RefCell::new(Replay {
        engine: Engine::new(EngineConfig::default()),
        outbox: OutboxBuilder::new(config.outbox_stored_per_buyer_max),
        clock_floor_us: 0,
    });
    let opened = journal_log::open(
        &config.journal_dir,
        config.fsync,
        config.journal_sync_fault.clone(),
        durable_tx,
        |_, state| {
            let restored = snapshot::decode(
                &state,
                EngineConfig::default(),
                config.outbox_stored_per_buyer_max,
            )?;
            *replay.borrow_mut() = Replay {
                engine: restored.engine,
                outbox: OutboxBuilder::resume(restored.outbox),
                clock_floor_us: restored.clock_floor_us,
            };
            Ok(())
        },
        |event| {
            let replay = &mut *replay.borrow_mut();
            replay.engine.apply(event);
            replay.outbox.observe_resumed(event, &replay.engine);
            replay.clock_floor_us = replay.clock_floor_us.max(event.at());
        },
    )
    .map_err(|error| StartError(format!("cannot open the journal: {error}")))?;
    let Replay {
        mut engine,
        outbox,
        mut clock_floor_us,
    } = replay.into_inner();
    let recovered_records = opened.records;
    let snapshot_lsn = opened.snapshot_lsn;
    let snapshots_skipped = opened.snapshots_skipped.clone();
    let torn_tail = opened.truncated.as_ref().map(|tail| {
        format!(
            "{} bytes cut at offset {} of {} ({}); the next record is LSN {}",
            tail.bytes,
            tail.offset,
            tail.segment.display(),
            tail.damage,
            tail.first_lost_lsn
        )
    });
    let mut log = opened.log;
    let mut last_lsn = opened.last_lsn;
    if opened.last_lsn == 0 && !config.book.is_empty() {
        let now = wall_clock_us();
        engine
            .handle_admin_batch(now, config.book.clone())
            .map_err(|error| StartError(format!("the configured book is not valid: {error}")))?;
        while let Some(event) = engine.poll_event() {
            last_lsn = log
                .append(event)
                .map_err(|error| StartError(format!("cannot write the journal: {error}")))?;
        }
        clock_floor_us = now;
    }

    let credentials = Credentials::default();
    for (id, hash) in &config.admins {
        credentials.set(
            Role::Admin,
            *id,
            Credential {
                secret_hash: hash.clone(),
                active: true,
            },
        );
    }
    let session_counters = Arc::new(SessionCounters::default());
    let (commands, commands_rx) = crossbeam_channel::bounded(crate::limits::EXCHANGE_QUEUE_LEN);
    let exchange = Exchange::new(ExchangeParts {
        engine,
        log,
        commands: commands_rx,
        durable_wake: durable_rx,
        credentials: credentials.clone(),
        session_counters: Arc::clone(&session_counters),
        outbox: outbox.finish(),
        clock_floor_us,
        last_lsn,
        snapshot_lsn: opened.snapshot_lsn.unwrap_or(0),
        snapshot_every_records: config.snapshot_every_records,
    });
    let exchange = thread::Builder::new()
        .name("pingpost-exchange".into())
        .spawn(move || exchange.run())
        .map_err(|error| StartError(format!("cannot start the exchange thread: {error}")))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| StartError(format!("cannot listen on {}: {error}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|error| StartError(format!("cannot read the bound address: {error}")))?;
    let stop_accepting = CancellationToken::new();
    let sessions = CancellationToken::new();
    let context = Arc::new(SessionContext {
        credentials,
        commands: commands.clone(),
        counters: session_counters,
        next_session: AtomicU64::new(0),
        frame_length_max: config.frame_length_max,
        in_flight_max: config.in_flight_max,
        session_queue_len: config.session_queue_len,
        currency: config.currency,
        journal_dir: config.journal_dir.clone(),
        shutdown: sessions.clone(),
    });
    tokio::spawn(accept_loop(
        listener,
        context,
        config.connections_max.min(CONNECTIONS_MAX),
        stop_accepting.clone(),
    ));
    Ok(RunningServer {
        addr,
        stop_accepting,
        sessions,
        commands,
        exchange: Some(exchange),
        recovered_records,
        snapshot_lsn,
        snapshots_skipped,
        torn_tail,
    })
}

impl RunningServer {
    /// Shuts down in order: stop accepting, answer what is in flight, flush the journal, end
    /// the sessions. `Ok` when the journal is sound.
    pub async fn shutdown(mut self) -> Result<(), String> {
        self.stop_accepting.cancel();
        let _ = self.commands.send(Command::Shutdown);
        let end = match self.exchange.take() {
            Some(handle) => tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|error| format!("the exchange thread could not be joined: {error}"))?
                .map_err(|_| "the exchange thread panicked".to_owned())?,
            None => ExchangeEnd::Clean,
        };
        self.sessions.cancel();
        // Give the writers a moment to send GOODBYE.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match end {
            ExchangeEnd::Clean => Ok(()),
            ExchangeEnd::JournalFailed(error) => Err(error),
        }
    }

    /// Waits until the exchange thread ends by itself (a journal failure); returns why.
    pub async fn failed(&mut self) -> String {
        loop {
            if self
                .exchange
                .as_ref()
                .is_some_and(thread::JoinHandle::is_finished)
            {
                if let Some(handle) = self.exchange.take() {
                    return match handle.join() {
                        Ok(ExchangeEnd::JournalFailed(error)) => error,
                        Ok(ExchangeEnd::Clean) => "the exchange stopped".to_owned(),
                        Err(_) => "the exchange thread panicked".to_owned(),
                    };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    context: Arc<SessionContext>,
    connections_max: usize,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(connections_max));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        SessionCounters::bump(&context.counters.connections_accepted);
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let context = Arc::clone(&context);
                tokio::spawn(async move {
                    session::serve(stream, context).await;
                    drop(permit);
                });
            }
            Err(_) => {
                SessionCounters::bump(&context.counters.connections_refused);
                tokio::spawn(refuse_connection(stream));
            }
        }
    }
}

/// Tells a connection over the limit why it is closed.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut out = bytes::BytesMut::new();
    let message = Message::LoginRejected(crate::protocol::LoginRejected {
        reason: ErrorCode::TOO_MANY_CONNECTIONS,
        message: "the server has reached its connection limit; retry later".into(),
    });
    if crate::protocol::encode_frame(0, &message, &mut out).is_ok() {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&out)).await;
    }
    let _ = stream.shutdown().await;
}

fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
