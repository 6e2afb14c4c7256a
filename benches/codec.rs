//! Codec speed: encode and decode of a typical PING and POST, in memory, no sockets.
//!
//! Run: `cargo bench --bench codec`. The PING is the seed's solar lead in ZIP 80331 with six
//! highlights and both contact hashes; the POST carries a full contact record and consent.

use std::borrow::Cow;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pingpost::limits::FRAME_LENGTH_MAX;
use pingpost::protocol::{
    Attributes, Consent, Contact, Country, Hash32, LeadView, Message, Ping, PingSaleMode, Post,
    PostalCode, Symbol, check_frame, decode_frame, encode_frame,
};

fn typical_ping() -> Message<'static> {
    let attributes = Attributes::builder()
        .integer("credit_score", 720)
        .bool("homeowner", true)
        .decimal("monthly_bill", 14_550, 2)
        .enum_value("roof_type", "asphalt")
        .enum_value("shade", "partial")
        .integer("system_size_w", 7_200)
        .build()
        .expect("valid attributes");
    Message::Ping(Ping {
        client_token: 0x5eed_0000_8033_1001,
        lead: LeadView {
            vertical: Symbol::new("solar").expect("valid symbol"),
            country: Country::new("US").expect("valid country"),
            postal_code: PostalCode::new("80331").expect("valid postal code"),
            attributes,
        },
        phone_hash: Some(Hash32([0x11; 32])),
        email_hash: Some(Hash32([0x22; 32])),
        sale_mode: PingSaleMode::Either,
        shared_buyers_max: 3,
        timeout_ms: 150,
    })
}

fn typical_post() -> Message<'static> {
    Message::Post(Post {
        ping_id: 1_000_042,
        contact: Contact {
            first_name: Cow::Borrowed("Jane"),
            last_name: Cow::Borrowed("Doe"),
            phone: Cow::Borrowed("+13035550142"),
            email: Cow::Borrowed("jane.doe@example.com"),
            street: Cow::Borrowed("1200 Example Street, Apt 4"),
            city: Cow::Borrowed("Denver"),
            region: Cow::Borrowed("CO"),
        },
        consent: Consent {
            certificate_id: Cow::Borrowed("cert-3f9a2c7e-5b1d-4e8f-9a0b-6c2d1e7f8a90"),
            text_version: Cow::Borrowed("solar-tcpa-2026-03"),
            consented_at: 1_795_000_000_000_000,
            ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            user_agent: Cow::Borrowed(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            ),
            page_url: Cow::Borrowed("https://quotes.example.com/solar/denver"),
        },
    })
}

fn bench_message(c: &mut Criterion, name: &str, message: &Message<'_>) {
    let mut frame = BytesMut::new();
    encode_frame(7, message, &mut frame).expect("encodes");
    let frame = frame.freeze();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let bytes = black_box(&frame[..]);
            let length = check_frame(bytes, FRAME_LENGTH_MAX)
                .expect("sane prefix")
                .expect("whole frame");
            decode_frame(&bytes[..length]).expect("decodes")
        })
    });
    let mut out = BytesMut::with_capacity(frame.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(7, black_box(message), &mut out).expect("encodes");
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_message(c, "ping", &typical_ping());
    bench_message(c, "post", &typical_post());
}

criterion_group!(benches, codec);
criterion_main!(benches);
