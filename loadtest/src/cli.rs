//! The command line: what the user types ([`Args`]) and the checked run it describes
//! ([`Config`]). Every refusal is a sentence that names the flag and says what would work.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

use crate::limits::{
    BOOK_CAMPAIGNS_MAX, BOOK_SELLERS_MAX, BPS_PER_ONE, BUYER_LATENCY_MS_MAX, CONNECTIONS_MAX,
    COUNT_MAX, DURATION_S_MAX, IN_FLIGHT_MAX, LIVE_BUYERS_MAX, RATE_PER_S_MAX, SWEEP_STEP_PCT_MAX,
};

/// The environment variable the admin secret is read from when `--admin-secret` is not given,
/// so that the secret need not appear in the process list.
pub const ADMIN_SECRET_ENV: &str = "PINGPOST_ADMIN_SECRET";

/// The run's duration when neither `--duration` nor `--count` is given.
const DURATION_DEFAULT_MS: u64 = 10_000;

/// Percent of the generated book's buyers that bid live when `--live-buyers` asks for live
/// buyers and `--live-share` is not given: enough live campaigns that most leads meet one.
const LIVE_SHARE_DEFAULT_BPS: u32 = 1_000;

/// `pingpost-loadtest`: load a pingpost exchange like real sellers and live buyers would, and
/// report throughput and latency percentiles corrected for coordinated omission.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pingpost-loadtest",
    version,
    about = "The bundled load generator for the pingpost exchange",
    long_about = "Generates a realistic book (buyers, campaigns over the real US ZIP table), \
                  loads it over the admin protocol, then pings (and posts) leads from seller \
                  connections in open loop (--rate: constant rate, latency from each request's \
                  intended send time) or closed loop (no --rate: each connection keeps \
                  --in-flight requests outstanding), while simulated live buyers bid and \
                  accept. Loopback only unless --allow-remote."
)]
pub struct Args {
    /// The exchange to load, host:port.
    #[arg(
        long,
        default_value = "127.0.0.1:7400",
        conflicts_with = "spawn_daemon"
    )]
    pub addr: String,
    /// Allow an exchange that is not on this machine's loopback interface.
    #[arg(long)]
    pub allow_remote: bool,
    /// Start `PATH serve --listen 127.0.0.1:0 --journal TMPDIR` as a child, load it, and stop
    /// it at the end.
    #[arg(long, value_name = "PATH")]
    pub spawn_daemon: Option<PathBuf>,
    /// With --spawn-daemon: the journal's fsync policy, passed as `--fsync POLICY`
    /// (e.g. `interval`, `always`, `never`).
    #[arg(long, value_name = "POLICY", requires = "spawn_daemon")]
    pub daemon_fsync: Option<String>,
    /// With --spawn-daemon: one more argument for `serve` (repeat for several), e.g.
    /// `--daemon-arg=--config --daemon-arg=pingpost.toml`.
    #[arg(
        long = "daemon-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "spawn_daemon"
    )]
    pub daemon_args: Vec<String>,
    /// The admin principal that loads the book.
    #[arg(long, default_value_t = 1)]
    pub admin_id: u64,
    /// The admin's secret (or set PINGPOST_ADMIN_SECRET). Needed unless --no-book.
    #[arg(long)]
    pub admin_secret: Option<String>,

    /// Do not load a book: the exchange already holds the one --seed, --campaigns, --buyers,
    /// --sellers and --live-share describe (loaded by an earlier run), whose credentials the
    /// generator derives from the same seed.
    #[arg(long)]
    pub no_book: bool,
    /// Campaigns in the generated book.
    #[arg(long, default_value_t = 10_000)]
    pub campaigns: usize,
    /// Buyers owning the book's campaigns (default: a tenth of --campaigns).
    #[arg(long)]
    pub buyers: Option<usize>,
    /// Sellers in the book; seller connections log in as these in turn.
    #[arg(long, default_value_t = 20)]
    pub sellers: usize,
    /// Share of the book's buyers that bid live, as `0.1` or `10%` (default 0, or 10% when
    /// --live-buyers asks for some).
    #[arg(long, value_name = "SHARE")]
    pub live_share: Option<Share>,
    /// The seed everything is drawn from: the book, the leads, the buyers' answers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Seller connections.
    #[arg(long, default_value_t = 10)]
    pub connections: u32,
    /// Requests each seller connection keeps in flight at most.
    #[arg(long, default_value_t = 1)]
    pub in_flight: u32,
    /// Open loop: pings per second over all connections, at a constant pace. Without it the
    /// run is closed loop, as fast as the exchange answers.
    #[arg(long, value_name = "PINGS_PER_S")]
    pub rate: Option<u64>,
    /// How long to send, e.g. `30s`, `500ms`, `2m` (default 10s unless --count).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<HumanDuration>,
    /// How many pings to send in all.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Share of offered pings that go on to a POST, as `0.3` or `30%`.
    #[arg(long, value_name = "SHARE", default_value = "0")]
    pub post_share: Share,
    /// Share of leads that repeat an earlier consumer, as a whole percent (`0.02` or `2%`).
    #[arg(long, value_name = "SHARE", default_value = "2%")]
    pub duplicate_share: Share,
    /// The first lead number of this run: give a new one to rerun against an exchange that
    /// has seen the earlier leads (it would take them for retries and duplicates).
    #[arg(long, default_value_t = 0)]
    pub lead_offset: u64,
    /// The sellers' deadline in each PING, milliseconds.
    #[arg(long, default_value_t = 150)]
    pub ping_timeout_ms: u32,

    /// Live buyer sessions to connect (default: every live buyer of the book).
    #[arg(long, value_name = "N")]
    pub live_buyers: Option<u32>,
    /// How long a live buyer takes to answer an offer, ms: `5`, `fixed:5` or `uniform:2..20`.
    #[arg(long, value_name = "DIST", default_value = "uniform:1..5")]
    pub buyer_latency_ms: LatencyDist,
    /// Share of offers a live buyer declines with NO_BID.
    #[arg(long, value_name = "SHARE", default_value = "10%")]
    pub no_bid_share: Share,
    /// Share of deliveries a live buyer rejects (the rest it accepts).
    #[arg(long, value_name = "SHARE", default_value = "5%")]
    pub reject_share: Share,

    /// Write the whole report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Step the open-loop rate up from --rate until the exchange saturates, and print the curve.
    #[arg(long, requires = "rate")]
    pub sweep: bool,
    /// Sweep: how much each step raises the rate, percent.
    #[arg(long, default_value_t = 25, requires = "sweep")]
    pub sweep_step_pct: u32,
    /// Sweep: a step whose p99 ping latency is above this many µs is saturated.
    #[arg(long, default_value_t = 1_000, requires = "sweep")]
    pub sweep_p99_us_max: u64,
    /// Sweep: the most steps.
    #[arg(long, default_value_t = 20, requires = "sweep")]
    pub sweep_steps: u32,
}

/// Where the exchange is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running exchange at this address (checked loopback unless `--allow-remote`).
    Addr(String),
    /// A daemon the generator starts and stops.
    Spawn(DaemonSpec),
}

/// How to start a daemon (see `daemon.rs` for the exact command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub path: PathBuf,
    pub fsync: Option<String>,
    pub extra_args: Vec<String>,
}

/// How the sellers pace their requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A constant rate over all connections; latency from each request's intended send time.
    Open { rate_per_s: u64 },
    /// As fast as the exchange answers: each connection keeps `in_flight` requests outstanding.
    Closed,
}

/// When a run stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    Count(u64),
}

/// The sweep's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub step_pct: u32,
    pub p99_us_max: u64,
    pub steps_max: u32,
}

/// The checked run.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub allow_remote: bool,
    pub admin_id: u64,
    /// `None` only with `--no-book`.
    pub admin_secret: Option<String>,
    pub load_book: bool,
    pub campaigns: usize,
    pub buyers: usize,
    pub sellers: usize,
    pub live_share: Share,
    pub seed: u64,
    pub connections: u32,
    pub in_flight: u32,
    pub mode: Mode,
    pub stop: Stop,
    pub post_share: Share,
    /// Whole percent, as the lead generator draws duplicates.
    pub duplicate_pct: u8,
    pub lead_offset: u64,
    pub ping_timeout_ms: u32,
    /// `None`: every live buyer of the book.
    pub live_buyers: Option<u32>,
    pub buyer_latency_ms: LatencyDist,
    pub no_bid_share: Share,
    pub reject_share: Share,
    pub json: Option<PathBuf>,
    pub progress: bool,
    pub sweep: Option<Sweep>,
}

/// A refused command line: one sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn refuse<T>(text: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(text.into()))
}

impl Config {
    /// Checks `args` and turns them into a run. `admin_secret_env` is the value of
    /// `PINGPOST_ADMIN_SECRET`, passed in so the check reads no process state.
    pub fn from_args(args: Args, admin_secret_env: Option<String>) -> Result<Self, ArgError> {
        if args.connections == 0 || args.connections > CONNECTIONS_MAX {
            return refuse(format!(
                "--connections {} is out of range: give 1 to {CONNECTIONS_MAX}",
                args.connections
            ));
        }
        if args.in_flight == 0 || args.in_flight > IN_FLIGHT_MAX {
            return refuse(format!(
                "--in-flight {} is out of range: give 1 to {IN_FLIGHT_MAX} \
                 (the protocol's in_flight_max)",
                args.in_flight
            ));
        }
        let mode = match args.rate {
            None => Mode::Closed,
            Some(0) => {
                return refuse(
                    "--rate 0 would send nothing: give a positive rate, \
                     or leave --rate out for a closed-loop run",
                );
            }
            Some(rate) if rate > RATE_PER_S_MAX => {
                return refuse(format!(
                    "--rate {rate} is above the generator's {RATE_PER_S_MAX} pings/s"
                ));
            }
            Some(rate_per_s) => Mode::Open { rate_per_s },
        };
        let stop = match (args.duration, args.count) {
            (Some(_), Some(_)) => return refuse("give --duration or --count, not both"),
            (_, Some(0)) => return refuse("--count 0 would send nothing: give at least 1"),
            (_, Some(count)) if count > COUNT_MAX => {
                return refuse(format!("--count {count} is above the most, {COUNT_MAX}"));
            }
            (_, Some(count)) => Stop::Count(count),
            (Some(duration), None) => {
                if duration.0.is_zero() {
                    return refuse("--duration 0 would send nothing: give e.g. 10s");
                }
                if duration.0.as_secs() > DURATION_S_MAX {
                    return refuse(format!(
                        "--duration is above the longest run, {DURATION_S_MAX} s (a day)"
                    ));
                }
                Stop::After(duration.0)
            }
            (None, None) => Stop::After(Duration::from_millis(DURATION_DEFAULT_MS)),
        };
        if let (Mode::Open { rate_per_s }, Stop::After(duration)) = (mode, stop) {
            if crate::rate::Schedule::new(rate_per_s).count_within(duration) == 0 {
                return refuse(format!(
                    "--rate {rate_per_s} for {} ms schedules no ping at all: \
                     raise the rate or the duration",
                    duration.as_millis()
                ));
            }
        }

        if args.campaigns == 0 || args.campaigns > BOOK_CAMPAIGNS_MAX {
            return refuse(format!(
                "--campaigns {} is out of range: give 1 to {BOOK_CAMPAIGNS_MAX}",
                args.campaigns
            ));
        }
        let buyers = args.buyers.unwrap_or((args.campaigns / 10).max(1));
        if buyers == 0 || buyers > args.campaigns {
            return refuse(format!(
                "--buyers {buyers} is out of range: give 1 to --campaigns ({}), \
                 since every buyer owns a campaign",
                args.campaigns
            ));
        }
        if args.sellers == 0 || args.sellers > BOOK_SELLERS_MAX {
            return refuse(format!(
                "--sellers {} is out of range: give 1 to {BOOK_SELLERS_MAX}",
                args.sellers
            ));
        }
        if let Some(live_buyers) = args.live_buyers {
            if live_buyers > LIVE_BUYERS_MAX {
                return refuse(format!(
                    "--live-buyers {live_buyers} is above the most, {LIVE_BUYERS_MAX}"
                ));
            }
        }
        let live_share = match (args.live_share, args.live_buyers) {
            (Some(share), _) => share,
            (None, Some(n)) if n > 0 => Share(LIVE_SHARE_DEFAULT_BPS),
            (None, _) => Share(0),
        };
        if live_share.bps() % 100 != 0 {
            return refuse(format!(
                "--live-share {live_share} must be a whole percent: \
                 the book generator draws live buyers in percent"
            ));
        }
        if args.live_buyers.is_some_and(|n| n > 0) && live_share.bps() == 0 {
            return refuse(
                "--live-buyers asks for live buyers but --live-share 0 makes none in the book: \
                 give --live-share (e.g. 10%)",
            );
        }
        if args.duplicate_share.bps() % 100 != 0 {
            return refuse(format!(
                "--duplicate-share {} must be a whole percent: \
                 the lead generator draws duplicates in percent",
                args.duplicate_share
            ));
        }
        if args.ping_timeout_ms == 0 {
            return refuse("--ping-timeout-ms 0 leaves the exchange no time: give e.g. 150");
        }

        let target = match args.spawn_daemon {
            Some(path) => Target::Spawn(DaemonSpec {
                path,
                fsync: args.daemon_fsync,
                extra_args: args.daemon_args,
            }),
            None => Target::Addr(args.addr),
        };
        let admin_secret = args.admin_secret.or(admin_secret_env);
        if !args.no_book && admin_secret.is_none() {
            return refuse(format!(
                "loading the book needs the admin's secret: give --admin-secret or set \
                 {ADMIN_SECRET_ENV} (or --no-book if the exchange already holds the book)"
            ));
        }
        let sweep = if args.sweep {
            if args.sweep_step_pct == 0 || args.sweep_step_pct > SWEEP_STEP_PCT_MAX {
                return refuse(format!(
                    "--sweep-step-pct {} is out of range: give 1 to {SWEEP_STEP_PCT_MAX}",
                    args.sweep_step_pct
                ));
            }
            if args.sweep_steps == 0 || args.sweep_steps > crate::limits::SWEEP_STEPS_MAX {
                return refuse(format!(
                    "--sweep-steps {} is out of range: give 1 to {}",
                    args.sweep_steps,
                    crate::limits::SWEEP_STEPS_MAX
                ));
            }
            if matches!(stop, Stop::Count(_)) {
                return refuse("--sweep runs each step for --duration; --count does not apply");
            }
            Some(Sweep {
                step_pct: args.sweep_step_pct,
                p99_us_max: args.sweep_p99_us_max,
                steps_max: args.sweep_steps,
            })
        } else {
            None
        };

        Ok(Self {
            target,
            allow_remote: args.allow_remote,
            admin_id: args.admin_id,
            admin_secret,
            load_book: !args.no_book,
            campaigns: args.campaigns,
            buyers,
            sellers: args.sellers,
            live_share,
            seed: args.seed,
            connections: args.connections,
            in_flight: args.in_flight,
            mode,
            stop,
            post_share: args.post_share,
            duplicate_pct: u8::try_from(args.duplicate_share.bps() / 100).unwrap_or(100),
            lead_offset: args.lead_offset,
            ping_timeout_ms: args.ping_timeout_ms,
            live_buyers: args.live_buyers,
            buyer_latency_ms: args.buyer_latency_ms,
            no_bid_share: args.no_bid_share,
            reject_share: args.reject_share,
            json: args.json,
            progress: !args.quiet,
            sweep,
        })
    }
}

/// A share between 0 and 1, kept as integer basis points so draws are exact. Written `0.25`
/// or `25%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share(u32);

impl Share {
    /// A share of `bps` basis points; `None` above one.
    pub fn from_bps(bps: u32) -> Option<Self> {
        (bps <= BPS_PER_ONE).then_some(Self(bps))
    }

    pub fn bps(self) -> u32 {
        self.0
    }

    /// Whether a uniform draw from `0..BPS_PER_ONE` falls inside the share.
    pub fn holds_for(self, draw_bps: u64) -> bool {
        draw_bps < u64::from(self.0)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}%", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Share {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bps = if let Some(percent) = text.strip_suffix('%') {
            parse_fixed(percent.trim(), 2)
        } else {
            parse_fixed(text, 4)
        };
        bps.and_then(|bps| u32::try_from(bps).ok())
            .and_then(Share::from_bps)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a share: give a fraction from 0 to 1 (0.25) \
                     or a percent (25%), to at most two decimals of a percent"
                )
            })
    }
}

/// `text` (digits, at most one `.`) times 10^`scale`, if it has no more than `scale` decimals.
fn parse_fixed(text: &str, scale: u32) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if fraction.len() > scale as usize {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let padded = format!("{fraction:0<width$}", width = scale as usize);
    let fraction: u64 = if padded.is_empty() {
        0
    } else {
        padded.parse().ok()?
    };
    whole.checked_mul(10u64.pow(scale))?.checked_add(fraction)
}

/// A duration written `250ms`, `30s`, `2m` or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not a duration: give e.g. 30s, 500ms or 2m");
        let (number, unit_ms) = if let Some(number) = text.strip_suffix("ms") {
            (number, 1)
        } else if let Some(number) = text.strip_suffix('s') {
            (number, 1_000)
        } else if let Some(number) = text.strip_suffix('m') {
            (number, 60_000)
        } else {
            (text, 1_000)
        };
        let number: u64 = number.trim().parse().map_err(|_| bad())?;
        let ms = number.checked_mul(unit_ms).ok_or_else(bad)?;
        Ok(Self(Duration::from_millis(ms)))
    }
}

/// How long a simulated buyer takes to answer, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyDist {
    Fixed(u64),
    /// Uniform over `lo..=hi`.
    Uniform {
        lo: u64,
        hi: u64,
    },
}

impl LatencyDist {
    /// The latency for a uniform 64-bit draw.
    pub fn sample_ms(self, draw: u64) -> u64 {
        match self {
            Self::Fixed(ms) => ms,
            Self::Uniform { lo, hi } => lo + draw % (hi - lo + 1),
        }
    }
}

impl FromStr for LatencyDist {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "`{text}` is not a latency distribution: give `5`, `fixed:5` or \
                 `uniform:2..20` (milliseconds, at most {BUYER_LATENCY_MS_MAX})"
            )
        };
        let number = |s: &str| -> Result<u64, String> {
            let ms: u64 = s.trim().parse().map_err(|_| bad())?;
            if ms > BUYER_LATENCY_MS_MAX {
                return Err(bad());
            }
            Ok(ms)
        };
        if let Some(range) = text.strip_prefix("uniform:") {
            let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
            let (lo, hi) = (number(lo)?, number(hi.trim_start_matches('='))?);
            if lo > hi {
                return Err(format!(
                    "`{text}` is an empty range: the low end must not exceed the high end"
                ));
            }
            Ok(Self::Uniform { lo, hi })
        } else {
            Ok(Self::Fixed(number(
                text.strip_prefix("fixed:").unwrap_or(text),
            )?))
        }
    }
}

/// The loopback check: every address the target resolves to must be on this machine's
/// loopback interface, unless the user allowed a remote one. Load generators are weapons when
/// pointed at someone else's server.
pub fn check_loopback(
    addr_text: &str,
    resolved: &[SocketAddr],
    allow_remote: bool,
) -> Result<(), ArgError> {
    if resolved.is_empty() {
        return refuse(format!("--addr {addr_text} resolves to no address"));
    }
    if allow_remote {
        return Ok(());
    }
    if let Some(remote) = resolved.iter().find(|addr| !addr.ip().is_loopback()) {
        return refuse(format!(
            "--addr {addr_text} is not a loopback address ({remote}): the generator only \
             loads an exchange on this machine unless --allow-remote is given"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_as_fractions_or_percents() {
        assert_eq!("0.25".parse::<Share>().unwrap().bps(), 2_500);
        assert_eq!("25%".parse::<Share>().unwrap().bps(), 2_500);
        assert_eq!("2.5%".parse::<Share>().unwrap().bps(), 250);
        assert_eq!("1".parse::<Share>().unwrap().bps(), 10_000);
        assert_eq!("0".parse::<Share>().unwrap().bps(), 0);
        assert_eq!(".5".parse::<Share>().unwrap().bps(), 5_000);
        for bad in ["", "1.5", "101%", "-0.1", "abc", "0.12345", "1.001%", "."] {
            assert!(bad.parse::<Share>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            "30s".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            "2m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            "7".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(7)
        );
        assert!("fast".parse::<HumanDuration>().is_err());
        assert!("-1s".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn latency_distributions_parse_and_sample_in_range() {
        assert_eq!("5".parse::<LatencyDist>().unwrap(), LatencyDist::Fixed(5));
        assert_eq!(
            "fixed:7".parse::<LatencyDist>().unwrap(),
            LatencyDist::Fixed(7)
        );
        let uniform = "uniform:2..20".parse::<LatencyDist>().unwrap();
        assert_eq!(uniform, LatencyDist::Uniform { lo: 2, hi: 20 });
        for draw in 0..1_000 {
            assert!((2..=20).contains(&uniform.sample_ms(draw)));
        }
        assert!("uniform:9..3".parse::<LatencyDist>().is_err());
        assert!("uniform:3".parse::<LatencyDist>().is_err());
        assert!("999999999".parse::<LatencyDist>().is_err());
    }

    #[test]
    fn the_loopback_check_refuses_remote_addresses() {
        let local: SocketAddr = "127.0.0.1:7400".parse().unwrap();
        let local6: SocketAddr = "[::1]:7400".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:7400".parse().unwrap();
        assert!(check_loopback("localhost:7400", &[local, local6], false).is_ok());
        let refused = check_loopback("exchange:7400", &[local, remote], false).unwrap_err();
        assert!(refused.0.contains("--allow-remote"), "{refused}");
        assert!(check_loopback("exchange:7400", &[remote], true).is_ok());
        assert!(check_loopback("nowhere:1", &[], true).is_err());
    }
}
