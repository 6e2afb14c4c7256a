//! `--spawn-daemon`: start `pingpost serve` as a child on a free loopback port with a fresh
//! journal, learn the address it bound from its standard output, and stop it at the end.
//!
//! # What the generator assumes of the daemon
//!
//! - `serve --listen 127.0.0.1:0 --journal DIR` binds a free loopback port and keeps its
//!   journal in `DIR`; `--fsync POLICY` (only when `--daemon-fsync` is given) sets the
//!   journal's fsync policy. The command line is built in [`command_line`] alone.
//! - Once it accepts connections it prints a line `listening on 127.0.0.1:PORT` on standard
//!   output. The line is recognized by [`parse_listening_line`] alone, so adapting to another
//!   wording is a change to that one function.
//! - SIGTERM shuts it down in order (it flushes its journal and exits 0).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::DaemonSpec;
use crate::limits::{DAEMON_BANNER_LINES_MAX, DAEMON_START_TIMEOUT_MS, DAEMON_STOP_TIMEOUT_MS};

/// The words before the address in the daemon's start line.
const LISTENING_MARKER: &str = "listening on ";

/// The address in a line the daemon prints when it is ready: the first token after
/// `listening on ` (case-insensitive), without trailing punctuation. `None` for other lines.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let lower = line.to_ascii_lowercase();
    let at = lower.find(LISTENING_MARKER)? + LISTENING_MARKER.len();
    let token = line.get(at..)?.split_whitespace().next()?;
    let token = token.trim_end_matches([',', '.', ';', ')']);
    token.parse().ok()
}

/// The daemon's arguments: `serve --listen 127.0.0.1:0 --journal DIR [--fsync POLICY] [extra]`.
pub fn command_line(spec: &DaemonSpec, journal_dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--journal".into(),
        journal_dir.as_os_str().to_owned(),
        // The generator loads its own book; the daemon's embedded one would share its ids.
        "--empty-book".into(),
    ];
    if let Some(policy) = &spec.fsync {
        args.push("--fsync".into());
        args.push(policy.into());
    }
    args.extend(spec.extra_args.iter().map(OsString::from));
    args
}

/// Why the daemon could not be started.
#[derive(Debug)]
pub struct DaemonError(pub String);

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DaemonError {}

/// A running child daemon. Stop it with [`Daemon::stop`]; dropping it kills it.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    journal_dir: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits (at most `DAEMON_START_TIMEOUT_MS`) for its address.
    pub async fn spawn(spec: &DaemonSpec) -> Result<Self, DaemonError> {
        let journal_dir = fresh_journal_dir();
        std::fs::create_dir_all(&journal_dir).map_err(|error| {
            DaemonError(format!(
                "could not create the journal directory {}: {error}",
                journal_dir.display()
            ))
        })?;
        let mut child = Command::new(&spec.path)
            .args(command_line(spec, &journal_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                DaemonError(format!(
                    "could not start the daemon {}: {error}",
                    spec.path.display()
                ))
            })?;
        let stdout = child.stdout.take().ok_or_else(|| {
            DaemonError("the daemon's standard output was not captured".to_owned())
        })?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            for _ in 0..DAEMON_BANNER_LINES_MAX {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(addr) = parse_listening_line(&line) {
                            return Ok(addr);
                        }
                    }
                    Ok(None) => {
                        return Err(DaemonError(
                            "the daemon closed its standard output (it probably exited) \
                             before printing `listening on ADDRESS`"
                                .to_owned(),
                        ));
                    }
                    Err(error) => {
                        return Err(DaemonError(format!(
                            "reading the daemon's standard output failed: {error}"
                        )));
                    }
                }
            }
            Err(DaemonError(format!(
                "the daemon printed {DAEMON_BANNER_LINES_MAX} lines without \
                 `listening on ADDRESS`"
            )))
        };
        let addr = match tokio::time::timeout(Duration::from_millis(DAEMON_START_TIMEOUT_MS), wait)
            .await
        {
            Ok(Ok(addr)) => addr,
            Ok(Err(error)) => {
                let _ = std::fs::remove_dir_all(&journal_dir);
                return Err(error);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&journal_dir);
                return Err(DaemonError(format!(
                    "the daemon did not print `listening on ADDRESS` within \
                     {DAEMON_START_TIMEOUT_MS} ms"
                )));
            }
        };
        // Keep reading its output so that a full pipe never blocks the daemon.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            addr,
            journal_dir,
        })
    }

    /// Asks the daemon to shut down in order (SIGTERM), kills it if it has not exited within
    /// `DAEMON_STOP_TIMEOUT_MS`, and removes its journal. Returns a sentence if it had to be
    /// killed or exited with an error.
    pub async fn stop(mut self) -> Option<String> {
        let mut problem = None;
        if let Some(pid) = self.child.id() {
            // `kill` rather than a signal call from here: the crate has no unsafe code.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(
            Duration::from_millis(DAEMON_STOP_TIMEOUT_MS),
            self.child.wait(),
        )
        .await
        {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => problem = Some(format!("the daemon exited with {status}")),
            Ok(Err(error)) => problem = Some(format!("waiting for the daemon failed: {error}")),
            Err(_) => {
                let _ = self.child.kill().await;
                problem = Some(format!(
                    "the daemon did not stop within {DAEMON_STOP_TIMEOUT_MS} ms of SIGTERM \
                     and was killed"
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&self.journal_dir);
        problem
    }
}

/// A journal directory of its own under the system's temporary directory.
fn fresh_journal_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    std::env::temp_dir().join(format!(
        "pingpost-loadtest-{}-{nanos:09}",
        std::process::id()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(
            parse_listening_line("listening on 127.0.0.1:40123"),
            Some(addr)
        );
        assert_eq!(
            parse_listening_line("pingpost 0.1.0: Listening on 127.0.0.1:40123, journal ./j"),
            Some(addr)
        );
        assert_eq!(
            parse_listening_line("INFO listening on [::1]:7400."),
            Some("[::1]:7400".parse().unwrap())
        );
        assert_eq!(parse_listening_line("seller 1 secret s3cret"), None);
        assert_eq!(parse_listening_line("listening on port 7400"), None);
        assert_eq!(parse_listening_line("listening on "), None);
    }

    #[test]
    fn the_command_line_asks_for_a_free_loopback_port_and_a_journal() {
        let spec = DaemonSpec {
            path: "pingpost".into(),
            fsync: Some("interval".to_owned()),
            extra_args: vec!["--config".to_owned(), "book.toml".to_owned()],
        };
        let args = command_line(&spec, Path::new("/tmp/j"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--journal",
                "/tmp/j",
                "--empty-book",
                "--fsync",
                "interval",
                "--config",
                "book.toml"
            ]
        );
    }
}
