//! `pingpost journal verify|head|dump|trace|ledger`: the auditor's view of a journal directory.
//! It only reads: it never cuts a torn tail or changes a file.
//!
//! Exit codes: 0 the journal is sound (and the command did its work); 1 the journal is unsound
//! (a damaged or changed byte, a broken chain, a torn tail, a head that does not match
//! `--expect-head`, a record that does not decode) or the asked-for lead is not in it; 2 a usage
//! or I/O error (no such directory, unreadable file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use pingpost::engine::auction::Award;
use pingpost::engine::events::{Event, Resolution};
use pingpost::journal::format::{RecordView, hex, parse_hex_hash};
use pingpost::journal::record::event_type;
use pingpost::journal::scan::{ScanEnd, TornTailMode, scan};
use pingpost::journal::{ChainHash, Head, JournalError, Lsn, decode_record};
use pingpost::protocol::ErrorCode;

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check every checksum and the whole hash chain; print record count, last LSN and head.
    Verify {
        /// The journal directory.
        dir: PathBuf,
        /// A head exported earlier (`LSN:HASH` as `journal head` prints it, or the hash alone):
        /// the journal must still contain it, which catches a truncated or rewritten tail.
        #[arg(long)]
        expect_head: Option<String>,
    },
    /// Print the chain's head as `LSN:HASH`, for export.
    Head {
        /// The journal directory.
        dir: PathBuf,
    },
    /// Print every record: LSN, time, type and the event's JSON.
    Dump {
        /// The journal directory.
        dir: PathBuf,
        /// The first LSN to print.
        #[arg(long)]
        from: Option<Lsn>,
        /// The last LSN to print.
        #[arg(long)]
        to: Option<Lsn>,
        /// One JSON object a line: lsn, type, schema, at, segment, offset, event.
        #[arg(long)]
        jsonl: bool,
    },
    /// Tell one lead's life: ping, offers, bids, winners, post and consent, deliveries, answers.
    Trace(TraceArgs),
    /// Totals of the sales (buyer charged, seller paid, exchange margin).
    Ledger {
        /// The journal directory.
        dir: PathBuf,
        /// How to group the totals.
        #[arg(long, value_enum, default_value_t = LedgerBy::Buyer)]
        by: LedgerBy,
    },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The journal directory.
    dir: PathBuf,
    /// The lead's id (from the `posted` record).
    #[arg(long, required_unless_present = "ping", conflicts_with = "ping")]
    lead: Option<u64>,
    /// The ping's id.
    #[arg(long)]
    ping: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LedgerBy {
    Buyer,
    Seller,
    Day,
}

/// Why a command stopped: exit 1 (unsound, or not found) or exit 2 (I/O).
enum Failure {
    Unsound(String),
    Io(String),
}

impl From<JournalError> for Failure {
    fn from(error: JournalError) -> Self {
        match error {
            JournalError::Io { .. } => Self::Io(error.to_string()),
            _ => Self::Unsound(error.to_string()),
        }
    }
}

pub fn run(command: JournalCommand) -> ExitCode {
    let result = match command {
        JournalCommand::Verify { dir, expect_head } => verify(&dir, expect_head.as_deref()),
        JournalCommand::Head { dir } => head(&dir),
        JournalCommand::Dump {
            dir,
            from,
            to,
            jsonl,
        } => dump(&dir, from.unwrap_or(0), to.unwrap_or(Lsn::MAX), jsonl),
        JournalCommand::Trace(args) => trace(&args),
        JournalCommand::Ledger { dir, by } => ledger(&dir, by),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unsound(message)) => {
            eprintln!("pingpost journal: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Io(message)) => {
            eprintln!("pingpost journal: {message}");
            ExitCode::from(2)
        }
    }
}

/// Scans `dir` read-only, decoding every record as an event for `visit`. A torn tail is
/// unsound for the auditor: the bytes after the last complete batch are not a record.
fn read_events(
    dir: &Path,
    mut visit: impl FnMut(&Path, &RecordView<'_>, Event) -> Result<(), Failure>,
    mut on_batch: impl FnMut(Lsn, &ChainHash),
) -> Result<ScanEnd, Failure> {
    if !dir.is_dir() {
        return Err(Failure::Io(format!(
            "{} is not a directory (give the journal directory)",
            dir.display()
        )));
    }
    let mut failure = None;
    let result = scan(dir, TornTailMode::Report, |segment, batch| {
        for record in &batch.records {
            let event = decode_record::<Event>(segment, record)?;
            if let Err(error) = visit(segment, record, event) {
                failure = Some(error);
                return Err(JournalError::Closed);
            }
        }
        on_batch(batch.last_lsn(), &batch.hash);
        Ok(())
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    let end = result?;
    if let Some(torn) = &end.torn {
        return Err(Failure::Unsound(format!(
            "the journal has a torn tail in {} from byte {} ({} bytes, LSN {} on): {}; the \
             records before it are sound (head {}), and the daemon's recovery will cut the tail",
            torn.segment.display(),
            torn.offset,
            torn.bytes,
            torn.first_lost_lsn,
            torn.damage,
            end.head
        )));
    }
    if end.segments == 0 {
        return Err(Failure::Io(format!(
            "{} holds no journal segment (journal-NNNNNNNN.seg)",
            dir.display()
        )));
    }
    Ok(end)
}

fn verify(dir: &Path, expect_head: Option<&str>) -> Result<(), Failure> {
    let expected = expect_head.map(parse_head).transpose()?;
    let mut found_expected = false;
    let end = read_events(
        dir,
        |_, _, _| Ok(()),
        |lsn, hash| {
            if let Some((expected_lsn, expected_hash)) = expected {
                found_expected |=
                    *hash == expected_hash && expected_lsn.is_none_or(|want| want == lsn);
            }
        },
    )?;
    if let Some((expected_lsn, expected_hash)) = expected {
        let genesis = expected_lsn == Some(0) && expected_hash == Head::GENESIS.hash;
        if !found_expected && !genesis {
            let lsn = expected_lsn.map_or_else(|| "?".to_owned(), |lsn| lsn.to_string());
            return Err(Failure::Unsound(format!(
                "the expected head (LSN {lsn}, hash {}) is not in this journal, whose head is \
                 {}: its tail was truncated or rewritten after that head was exported",
                hex(&expected_hash),
                end.head
            )));
        }
    }
    println!(
        "journal sound: {} records in {} batches and {} segments, last LSN {}",
        end.records, end.batches, end.segments, end.head.lsn
    );
    println!("head {}", end.head);
    if expected.is_some() {
        println!("the expected head is on the chain");
    }
    Ok(())
}

/// `LSN:HASH` or `HASH`.
fn parse_head(text: &str) -> Result<(Option<Lsn>, ChainHash), Failure> {
    let (lsn, hash) = match text.split_once(':') {
        Some((lsn, hash)) => (Some(lsn), hash),
        None => (None, text),
    };
    let usage = || {
        Failure::Io(format!(
            "--expect-head {text:?} is not a head: give LSN:HASH as `journal head` prints it, \
             or the 64 hex digits of the hash"
        ))
    };
    let lsn = lsn
        .map(|lsn| lsn.parse::<Lsn>())
        .transpose()
        .map_err(|_| usage())?;
    let hash = parse_hex_hash(hash).ok_or_else(usage)?;
    Ok((lsn, hash))
}

fn head(dir: &Path) -> Result<(), Failure> {
    let end = read_events(dir, |_, _, _| Ok(()), |_, _| {})?;
    println!("{}", end.head);
    Ok(())
}

fn dump(dir: &Path, from: Lsn, to: Lsn, jsonl: bool) -> Result<(), Failure> {
    read_events(
        dir,
        |segment, record, event| {
            if record.lsn < from || record.lsn > to {
                return Ok(());
            }
            let name = event_type::name(record.record_type).unwrap_or("unknown");
            let event_json = serde_json::to_value(&event).unwrap_or_default();
            if jsonl {
                let line = serde_json::json!({
                    "lsn": record.lsn,
                    "type": record.record_type,
                    "type_name": name,
                    "schema": record.schema_version,
                    "at": record.timestamp_us,
                    "segment": segment.file_name().and_then(|n| n.to_str()).unwrap_or(""),
                    "offset": record.offset,
                    "event": event_json,
                });
                println!("{line}");
            } else {
                println!(
                    "LSN {} {} {name} {event_json}",
                    record.lsn,
                    time(record.timestamp_us)
                );
            }
            Ok(())
        },
        |_, _| {},
    )?;
    Ok(())
}

fn time(at: u64) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map_or_else(|| format!("{at}us"), |t| format!("{t:.6}"))
}

fn money(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn reason(code: u16) -> String {
    match ErrorCode(code).name() {
        Some(name) => format!("{code} {name}"),
        None => code.to_string(),
    }
}

fn trace(args: &TraceArgs) -> Result<(), Failure> {
    // One pass: keep every event with a ping id; the lead's ping is known from `posted`.
    let mut by_ping: BTreeMap<u64, Vec<(Lsn, Event)>> = BTreeMap::new();
    let mut lead_ping = None;
    read_events(
        &args.dir,
        |_, record, event| {
            if let (
                Some(lead),
                Event::Posted {
                    lead_id, ping_id, ..
                },
            ) = (args.lead, &event)
            {
                if *lead_id == lead {
                    lead_ping = Some(*ping_id);
                }
            }
            if let Some(ping_id) = ping_of(&event) {
                if args.ping.is_none_or(|ping| ping == ping_id) {
                    by_ping
                        .entry(ping_id)
                        .or_default()
                        .push((record.lsn, event));
                }
            }
            Ok(())
        },
        |_, _| {},
    )?;
    let ping_id = match (args.ping, args.lead) {
        (Some(ping), _) => ping,
        (None, Some(lead)) => lead_ping.ok_or_else(|| {
            Failure::Unsound(format!(
                "lead {lead} is not in the journal (no posted record)"
            ))
        })?,
        (None, None) => return Err(Failure::Io("give --lead ID or --ping ID".to_owned())),
    };
    let events = by_ping
        .remove(&ping_id)
        .ok_or_else(|| Failure::Unsound(format!("ping {ping_id} is not in the journal")))?;
    println!("ping {ping_id}: {} events", events.len());
    for (lsn, event) in &events {
        println!("LSN {lsn} {} {}", time(event.at()), describe(event));
    }
    Ok(())
}

fn ping_of(event: &Event) -> Option<u64> {
    match event {
        Event::BookChanged { .. } | Event::PingRejected { .. } => None,
        Event::PingOpened { ping_id, .. }
        | Event::BidReceived { ping_id, .. }
        | Event::AuctionResolved { ping_id, .. }
        | Event::PingExpired { ping_id, .. }
        | Event::Posted { ping_id, .. }
        | Event::CascadeReserved { ping_id, .. }
        | Event::CascadeSkipped { ping_id, .. }
        | Event::RunnersUpRanked { ping_id, .. }
        | Event::Delivered { ping_id, .. }
        | Event::SaleCommitted { ping_id, .. }
        | Event::SaleFailed { ping_id, .. }
        | Event::LeadSettled { ping_id, .. } => Some(*ping_id),
    }
}

/// One indented line per runner-up, in the order the cascade tries them.
fn runner_up_lines(runners_up: &[Award], out: &mut String) {
    for (i, r) in runners_up.iter().enumerate() {
        out.push_str(&format!(
            "\n    runner-up {}: campaign {} (buyer {}, tier {}) at {}",
            i + 1,
            r.campaign,
            r.buyer,
            r.tier,
            money(r.price)
        ));
    }
}

/// One line (with indented detail lines) saying what an event means for the lead.
fn describe(event: &Event) -> String {
    let mode = |value: &dyn erased::Json| value.json();
    match event {
        Event::PingOpened {
            seller,
            client_token,
            lead,
            sale_mode,
            shared_buyers_max,
            floor,
            bid_deadline,
            candidates,
            offers,
            excluded,
            direct,
            not_reached,
            ..
        } => {
            let mut out = format!(
                "ping opened{}: seller {seller} (token {client_token}), {} {} {}, \
                 attributes {}, sale mode {} (shared up to {shared_buyers_max}), floor {}, \
                 bids until {}",
                if *direct { " (direct post)" } else { "" },
                lead.vertical,
                lead.country,
                lead.postal_code,
                mode(&lead.attributes),
                mode(sale_mode),
                money(*floor),
                time(*bid_deadline),
            );
            for c in candidates {
                out.push_str(&format!(
                    "\n    price known: campaign {} (buyer {}, tier {}): exclusive {}, shared {}",
                    c.campaign,
                    c.buyer,
                    c.tier,
                    c.exclusive_price.map_or_else(|| "-".to_owned(), money),
                    c.shared_price.map_or_else(|| "-".to_owned(), money),
                ));
            }
            for o in offers {
                out.push_str(&format!(
                    "\n    offered: campaign {} (buyer {}), {}, floor {}",
                    o.campaign,
                    o.buyer,
                    mode(&o.sale_mode),
                    money(o.price_floor)
                ));
            }
            for x in excluded {
                out.push_str(&format!(
                    "\n    excluded: campaign {}: {}",
                    x.campaign,
                    reason(x.reason.0)
                ));
            }
            if *not_reached > 0 {
                out.push_str(&format!(
                    "\n    not evaluated: {not_reached} more campaigns: {}",
                    reason(ErrorCode::EXCLUDED_NOT_REACHED.0)
                ));
            }
            out
        }
        Event::BidReceived {
            campaign,
            price,
            reason: code,
            ..
        } => match price {
            Some(price) => format!("bid: campaign {campaign} bids {}", money(*price)),
            None => format!("no bid: campaign {campaign}: {}", reason(*code)),
        },
        Event::AuctionResolved {
            resolution,
            excluded,
            ..
        } => {
            let mut out = match resolution {
                Resolution::Offer {
                    sale_mode,
                    winners,
                    runners_up,
                    payouts,
                    expires_at,
                    runners_up_later,
                } => {
                    let mut out = format!(
                        "auction resolved: {} sale, offer expires {}{}",
                        mode(sale_mode),
                        time(*expires_at),
                        if *runners_up_later {
                            "; runners-up ranked if a cascade needs them"
                        } else {
                            ""
                        }
                    );
                    for (i, w) in winners.iter().enumerate() {
                        out.push_str(&format!(
                            "\n    winner: campaign {} (buyer {}, tier {}) pays {}, seller gets {}",
                            w.campaign,
                            w.buyer,
                            w.tier,
                            money(w.price),
                            payouts.get(i).map_or_else(|| "-".to_owned(), |p| money(*p)),
                        ));
                    }
                    runner_up_lines(runners_up, &mut out);
                    out
                }
                Resolution::NoSale { reason: code } => {
                    format!("auction resolved: no sale: {}", reason(*code))
                }
            };
            for x in excluded {
                out.push_str(&format!(
                    "\n    excluded at resolution: campaign {}: {}",
                    x.campaign,
                    reason(x.reason.0)
                ));
            }
            out
        }
        Event::PingExpired { .. } => "offer expired unposted: reservations released".to_owned(),
        Event::Posted {
            lead_id,
            contact,
            consent,
            ..
        } => format!(
            "posted: lead {lead_id}, contact {} {}, {}, {}, {}, {}, {}\n    consent: \
             certificate {}, text {}, given {}, from {}, user agent {:?}, page {}",
            contact.first_name,
            contact.last_name,
            contact.phone,
            contact.email,
            contact.street,
            contact.city,
            contact.region,
            consent.certificate_id,
            consent.text_version,
            time(consent.consented_at),
            consent.ip,
            consent.user_agent,
            consent.page_url,
        ),
        Event::CascadeReserved { award, payout, .. } => format!(
            "cascade: campaign {} (buyer {}, tier {}) takes the slot at {}, seller gets {}",
            award.campaign,
            award.buyer,
            award.tier,
            money(award.price),
            money(*payout)
        ),
        Event::CascadeSkipped {
            campaign,
            reason: code,
            ..
        } => format!("cascade skipped campaign {campaign}: {}", reason(code.0)),
        Event::RunnersUpRanked {
            runners_up,
            excluded,
            ..
        } => {
            let mut out = format!("runners-up ranked for the cascade: {}", runners_up.len());
            runner_up_lines(runners_up, &mut out);
            for x in excluded {
                out.push_str(&format!(
                    "\n    excluded: campaign {}: {}",
                    x.campaign,
                    reason(x.reason.0)
                ));
            }
            out
        }
        Event::Delivered {
            lead_id,
            campaign,
            buyer,
            delivery_seq,
            ack_deadline,
            ..
        } => format!(
            "delivered: lead {lead_id} to buyer {buyer} (campaign {campaign}) as delivery \
             {delivery_seq}{}",
            ack_deadline.map_or_else(
                || ", stored (final)".to_owned(),
                |at| format!(", answer due {}", time(at))
            )
        ),
        Event::SaleCommitted {
            lead_id,
            campaign,
            buyer,
            seller,
            receipt_id,
            price,
            payout,
            ..
        } => format!(
            "accepted: buyer {buyer} (campaign {campaign}) bought lead {lead_id}, receipt \
             {receipt_id}: charged {}, seller {seller} paid {}, margin {}",
            money(*price),
            money(*payout),
            margin(*price, *payout)
        ),
        Event::SaleFailed {
            campaign,
            reason: code,
            ..
        } => format!("not taken: campaign {campaign}: {}", reason(*code)),
        Event::LeadSettled {
            sold, reason: code, ..
        } => format!(
            "settled: {}{}",
            if *sold { "sold" } else { "unsold" },
            if *code == 0 {
                String::new()
            } else {
                format!(", {}", reason(*code))
            }
        ),
        Event::BookChanged { version, .. } => format!("book changed to version {version}"),
        Event::PingRejected {
            seller,
            reason: code,
            ..
        } => format!("ping of seller {seller} rejected: {}", reason(*code)),
    }
}

fn margin(price: u64, payout: u64) -> String {
    if price >= payout {
        money(price - payout)
    } else {
        format!("-{}", money(payout - price))
    }
}

/// JSON text of a serializable value, for enums and maps that have no display form.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(text)) => text,
                Ok(value) => value.to_string(),
                Err(_) => "?".to_owned(),
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    sales: u64,
    charged: u64,
    paid: u64,
}

fn ledger(dir: &Path, by: LedgerBy) -> Result<(), Failure> {
    let mut rows: BTreeMap<String, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    read_events(
        dir,
        |_, _, event| {
            if let Event::SaleCommitted {
                at,
                buyer,
                seller,
                price,
                payout,
                ..
            } = event
            {
                let key = match by {
                    LedgerBy::Buyer => format!("buyer {buyer}"),
                    LedgerBy::Seller => format!("seller {seller}"),
                    LedgerBy::Day => time(at).get(..10).unwrap_or("?").to_owned(),
                };
                for totals in [rows.entry(key).or_default(), &mut all] {
                    totals.sales += 1;
                    totals.charged += price;
                    totals.paid += payout;
                }
            }
            Ok(())
        },
        |_, _| {},
    )?;
    let heading = match by {
        LedgerBy::Buyer => "buyer",
        LedgerBy::Seller => "seller",
        LedgerBy::Day => "day (UTC)",
    };
    println!(
        "{heading:<14} {:>8} {:>16} {:>16} {:>16}",
        "sales", "buyer charged", "seller paid", "margin"
    );
    let total = "total".to_owned();
    for (key, totals) in rows.iter().chain(std::iter::once((&total, &all))) {
        println!(
            "{key:<14} {:>8} {:>16} {:>16} {:>16}",
            totals.sales,
            money(totals.charged),
            money(totals.paid),
            margin(totals.charged, totals.paid)
        );
    }
    Ok(())
}
