//! `pingpost demo`: the seed's worked example, played against a daemon started in-process on
//! loopback with the embedded default book and a throw-away journal.
//!
//! 1. A solar lead from ZIP 80331 is pinged to the six live installers around Munich: each
//!    sees only the anonymized view. Three bid ($38, $42, $45), three pass; $45 wins.
//! 2. The seller posts the contact record; only the $45 winner receives it, in the same second,
//!    and accepts; the seller is paid $45 less the exchange's 10 % margin.
//! 3. A second lead gets no bids: it goes to the fixed-price fallback buyer.
//! 4. A third lead's winner rejects the delivery: it cascades to the runner-up.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pingpost::client::{Client, ClientError, LoginParams, ServerEvent};
use pingpost::protocol::{
    Attributes, Consent, Contact, Country, ErrorCode, LeadView, Ping, PingOutcome, PingSaleMode,
    Post, PostOutcome, PostalCode, Role, Symbol,
};
use pingpost::server::default_book::{
    DEFAULT_BUYER_SECRET, DEFAULT_SELLER, FALLBACK_BUYER, SEED_BUYERS, default_config_file,
};

/// What each installer does in a round of the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// The seed's bids.
    SeedBids,
    /// Nobody bids.
    NoBids,
    /// The seed's bids, and the winner rejects the delivery.
    WinnerRejects,
}

#[derive(Debug)]
struct Story {
    round: Round,
    lines: Vec<String>,
}

type Shared = Arc<Mutex<Story>>;

fn say(story: &Shared, line: String) {
    story
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .lines
        .push(line);
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn clock(at_us: u64) -> String {
    let seconds = at_us / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        at_us / 1_000 % 1_000
    )
}

fn seed_bid(buyer: u64) -> Option<u64> {
    match buyer {
        101 => Some(3_800),
        102 => Some(4_200),
        103 => Some(4_500),
        _ => None,
    }
}

fn lead(client_token: u64) -> Result<Ping<'static>, String> {
    let attributes = Attributes::builder()
        .bool("homeowner", true)
        .decimal("monthly_bill", 14_550, 2)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Ping {
        client_token,
        lead: LeadView {
            vertical: Symbol::new("solar").map_err(|e| e.to_string())?,
            country: Country::new("DE").map_err(|e| e.to_string())?,
            postal_code: PostalCode::new("80331").map_err(|e| e.to_string())?,
            attributes,
        },
        phone_hash: None,
        email_hash: None,
        sale_mode: PingSaleMode::Exclusive,
        shared_buyers_max: 0,
        timeout_ms: 1_000,
    })
}

/// One consumer per round: a buyer that bought a consumer is not sold the same one again
/// within its look-back, which would change the story.
fn contact(round: usize) -> Contact<'static> {
    let people = [
        (
            "Jana",
            "Muster",
            "+4989555014200",
            "jana.muster@example.com",
            "Marienplatz 8",
        ),
        (
            "Lukas",
            "Beispiel",
            "+4989555014201",
            "lukas.beispiel@example.com",
            "Sendlinger Str. 3",
        ),
        (
            "Mia",
            "Probe",
            "+4989555014202",
            "mia.probe@example.com",
            "Tal 12",
        ),
    ];
    let (first, last, phone, email, street) = people[round % people.len()];
    Contact {
        first_name: Cow::Borrowed(first),
        last_name: Cow::Borrowed(last),
        phone: Cow::Borrowed(phone),
        email: Cow::Borrowed(email),
        street: Cow::Borrowed(street),
        city: Cow::Borrowed("München"),
        region: Cow::Borrowed("BY"),
    }
}

fn consent() -> Consent<'static> {
    Consent {
        certificate_id: Cow::Borrowed("cert-7d1c"),
        text_version: Cow::Borrowed("solar-2026-03"),
        consented_at: now_us().saturating_sub(60_000_000),
        ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        user_agent: Cow::Borrowed("Mozilla/5.0"),
        page_url: Cow::Borrowed("https://quotes.example.com/solar"),
    }
}

/// One live installer: tells the story of what it sees and answers per the round.
fn installer(client: Client, id: u64, story: Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut incoming) = client.incoming() else {
            return;
        };
        while let Some(event) = incoming.recv().await {
            let round = story.lock().unwrap_or_else(PoisonError::into_inner).round;
            match event {
                ServerEvent::Offer(offer) => {
                    let view = &offer.offer().lead;
                    let bid = if round == Round::NoBids {
                        None
                    } else {
                        seed_bid(id)
                    };
                    let answer =
                        bid.map_or_else(|| "passes".to_owned(), |p| format!("bids {}", dollars(p)));
                    say(
                        &story,
                        format!(
                            "  buyer {id} sees: vertical {}, {} {}, {} attributes, no name, phone, email or address -> {answer}",
                            view.vertical,
                            view.country,
                            view.postal_code,
                            view.attributes.len()
                        ),
                    );
                    let _ = match bid {
                        Some(price) => offer.bid(price).await,
                        None => offer.no_bid(ErrorCode::NOT_INTERESTED).await,
                    };
                }
                ServerEvent::Delivery(delivery) => {
                    let lead = delivery.delivery();
                    say(
                        &story,
                        format!(
                            "  buyer {id} receives lead {} at {}: {} {}, {}, {}, {} {} — consent {} at {}",
                            lead.lead_id,
                            clock(lead.delivered_at),
                            lead.contact.first_name,
                            lead.contact.last_name,
                            lead.contact.phone,
                            lead.contact.email,
                            lead.contact.street,
                            lead.contact.city,
                            lead.consent.certificate_id,
                            clock(lead.consent.consented_at),
                        ),
                    );
                    let _ = if round == Round::WinnerRejects && id == 103 {
                        say(&story, format!("  buyer {id} rejects it (REJECT_OTHER)"));
                        delivery.reject(ErrorCode::REJECT_OTHER).await
                    } else {
                        say(&story, format!("  buyer {id} accepts it"));
                        delivery.accept().await
                    };
                }
                ServerEvent::Won(won) => say(
                    &story,
                    format!("  buyer {id} is told it won at {}", dollars(won.price)),
                ),
                ServerEvent::Goodbye { .. } => break,
                _ => {}
            }
        }
    })
}

async fn play(addr: SocketAddr) -> Result<Vec<String>, ClientError> {
    let story = Arc::new(Mutex::new(Story {
        round: Round::SeedBids,
        lines: Vec::new(),
    }));
    let mut buyers = Vec::new();
    for id in SEED_BUYERS {
        let client = Client::connect(
            addr,
            LoginParams::new(Role::Buyer, id, DEFAULT_BUYER_SECRET),
        )
        .await?;
        buyers.push((client.clone(), installer(client, id, Arc::clone(&story))));
    }
    let seller = Client::connect(
        addr,
        LoginParams::new(Role::Seller, DEFAULT_SELLER.0, DEFAULT_SELLER.1),
    )
    .await?;

    let rounds = [
        (
            Round::SeedBids,
            "1. The seed's example: a solar lead from ZIP 80331, pinged to six live installers",
        ),
        (
            Round::NoBids,
            "2. A lead nobody bids on goes to the fixed-price fallback buyer",
        ),
        (
            Round::WinnerRejects,
            "3. The winner rejects the delivery: the lead cascades to the runner-up",
        ),
    ];
    for (number, (round, title)) in rounds.into_iter().enumerate() {
        story.lock().unwrap_or_else(PoisonError::into_inner).round = round;
        say(&story, String::new());
        say(&story, title.to_owned());
        let ping = lead(number as u64 + 1).map_err(|message| ClientError::Server {
            code: ErrorCode::INVALID_FIELD,
            message,
        })?;
        let result = seller.ping(ping).await?;
        let ping_id = result.ping_id;
        match &result.outcome {
            PingOutcome::Offer { payouts, .. } => say(
                &story,
                format!(
                    "  seller: PING_RESULT for ping {ping_id}: offer, payout {}",
                    payouts
                        .iter()
                        .map(|&p| dollars(p))
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
            ),
            PingOutcome::NoSale { reason } => {
                say(&story, format!("  seller: no sale ({reason})"));
                continue;
            }
        }
        let posted = seller
            .post(Post {
                ping_id,
                contact: contact(number),
                consent: consent(),
            })
            .await?;
        match &posted.outcome {
            PostOutcome::Sold {
                payout_total,
                receipts,
                ..
            } => say(
                &story,
                format!(
                    "  seller: POST_RESULT: sold as lead {}, receipt {}, paid {} (the price less the exchange's 10 % margin)",
                    posted.lead_id,
                    receipts.first().map_or(0, |r| r.receipt_id),
                    dollars(*payout_total)
                ),
            ),
            PostOutcome::Unsold { reason } => say(&story, format!("  seller: unsold ({reason})")),
        }
        if round == Round::NoBids {
            let fallback = Client::connect(
                addr,
                LoginParams::new(Role::Buyer, FALLBACK_BUYER, DEFAULT_BUYER_SECRET),
            )
            .await?;
            if let Some(mut incoming) = fallback.incoming() {
                if let Ok(Some(ServerEvent::Delivery(delivery))) =
                    tokio::time::timeout(Duration::from_secs(2), incoming.recv()).await
                {
                    let lead = delivery.delivery();
                    say(
                        &story,
                        format!(
                            "  fallback buyer {FALLBACK_BUYER} connects and picks up lead {} (delivery #{}) at {}",
                            lead.lead_id,
                            lead.delivery_seq,
                            dollars(lead.price)
                        ),
                    );
                    let _ = delivery.accept().await;
                }
            }
            let _ = fallback.close().await;
        }
        // Let the buyers' lines about this round arrive before the next one starts.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = seller.close().await;
    for (client, task) in buyers {
        let _ = client.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let lines = std::mem::take(&mut story.lock().unwrap_or_else(PoisonError::into_inner).lines);
    Ok(lines)
}

pub fn run() -> ExitCode {
    let journal = std::env::temp_dir().join(format!("pingpost-demo-{}", std::process::id()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pingpost demo: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let mut config = match default_config_file().check() {
            Ok(config) => config,
            Err(error) => {
                eprintln!("pingpost demo: {error}");
                return ExitCode::from(2);
            }
        };
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.journal_dir = journal.clone();
        let server = match pingpost::server::start(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("pingpost demo: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "pingpost demo: a daemon on {} with the embedded default book, journal in {}",
            server.addr,
            journal.display()
        );
        let played = play(server.addr).await;
        let stopped = server.shutdown().await;
        match played {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
            }
            Err(error) => {
                eprintln!("pingpost demo: {error}");
                return ExitCode::FAILURE;
            }
        }
        if let Err(error) = stopped {
            eprintln!("pingpost demo: {error}");
            return ExitCode::FAILURE;
        }
        println!();
        println!(
            "Audit it: pingpost journal trace {} --lead 1",
            journal.display()
        );
        ExitCode::SUCCESS
    })
}
