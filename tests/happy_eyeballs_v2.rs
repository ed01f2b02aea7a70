//! RFC 8305 §3 asynchronous resolution on real sockets: a DNS server on loopback answers
//! AAAA and A with chosen delays, `HickoryResolver` asks both in parallel, and the dialer
//! races listeners on 127.0.0.1 and [::1]. Every test checks the order and the counts of
//! the events, dial by dial ([`Recorder::assert_pairs`]); time bounds are generous.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::join_all;
use nettrace::{DialId, Dialer, DialerBuilder, Family, ResolveErrorKind};
use tokio::time::Instant;

use crate::support::dns::{DnsServer, Entry};
use crate::support::net::{live_pair, refused_v4_live_v6, Live};
use crate::support::record::{Event, Outcome, Recorder};

/// How late the AAAA answer is in the "late AAAA" tests: far longer than any dial takes.
const LATE: Duration = Duration::from_millis(1500);

/// The bound on a dial that should not wait for a late AAAA: the 50 ms resolution delay
/// and a loopback connect, with room for a busy machine.
const EARLY: Duration = Duration::from_millis(300);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn answer(host: &str, family: Family, addrs: &[&str]) -> Event {
    Event::DnsAnswer {
        host: host.into(),
        family,
        addrs: addrs.iter().map(|a| ip(a)).collect(),
        coalesced: false,
        error: None,
    }
}

/// The answer of a family the dial stopped waiting for.
fn cancelled(host: &str, family: Family) -> Event {
    Event::DnsAnswer {
        host: host.into(),
        family,
        addrs: Vec::new(),
        coalesced: false,
        error: Some(ResolveErrorKind::Cancelled),
    }
}

fn done(host: &str, addrs: &[&str]) -> Event {
    Event::DnsDone {
        host: host.into(),
        addrs: addrs.iter().map(|a| ip(a)).collect(),
        coalesced: false,
        error: None,
    }
}

fn is_answer(family: Family) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::DnsAnswer { family: f, .. } if *f == family)
}

fn is_connect_start(e: &Event) -> bool {
    matches!(e, Event::ConnectStart(..))
}

/// Live listeners on 127.0.0.1:P and [::1]:P, and a DNS server answering `host` with both:
/// A at once, AAAA after `aaaa_delay`.
async fn both_live(host: &str, aaaa_delay: Duration) -> (DnsServer, Live, Live) {
    let (v4, v6) = live_pair().await;
    let server = DnsServer::start().await;
    let entry = Entry::new().a("127.0.0.1").aaaa("::1");
    server.insert(host, entry.aaaa_delay(aaaa_delay));
    (server, v4, v6)
}

#[tokio::test]
async fn a_late_aaaa_does_not_hold_the_dial_past_the_resolution_delay() {
    const HOST: &str = "late6.test";
    let (server, v4, _v6) = both_live(HOST, LATE).await;
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let rec = Recorder::new();

    let start = Instant::now();
    let dial = dialer.dial_host(HOST, v4.addr.port());
    let id = dial.id();
    let stream = nettrace::with_trace(rec.trace(), dial).await.unwrap();
    let took = start.elapsed();

    assert_eq!(stream.peer_addr().unwrap(), v4.addr);
    assert!(took < EARLY, "connected after {took:?}");
    let expected = [
        Event::DnsStart(HOST.into()),
        answer(HOST, Family::Ipv4, &["127.0.0.1"]),
        Event::ConnectStart(v4.addr, 0),
        Event::ConnectDone(v4.addr, 0, Outcome::Connected),
        // The dial stopped waiting for AAAA: it answers cancelled, and `DnsDone` reports
        // what was received, after the connect.
        cancelled(HOST, Family::Ipv6),
        done(HOST, &["127.0.0.1"]),
    ];
    assert_eq!(rec.all_events(), expected);
    assert!(rec.with_ids().iter().all(|(dial, _)| *dial == id));
    // The first attempt waited the resolution delay (50 ms by default) for AAAA.
    let answered = rec.time_of(is_answer(Family::Ipv4)).unwrap();
    let started = rec.time_of(is_connect_start).unwrap();
    assert!(
        started - answered >= Duration::from_millis(40),
        "started {:?} after the A answer",
        started - answered
    );
    rec.assert_pairs();

    // The AAAA answer, when it comes, reaches no hook.
    tokio::time::sleep_until(start + LATE + Duration::from_millis(200)).await;
    assert_eq!(rec.all_events(), expected);
    assert_eq!(server.questions_for(HOST, "AAAA"), 1);
    assert_eq!(server.questions_for(HOST, "A"), 1);
}

/// A resolution delay (300 ms) much longer than the AAAA delay (60 ms), so that neither
/// the A-before-AAAA order nor the race depends on the machine's load.
#[tokio::test]
async fn an_aaaa_within_the_resolution_delay_goes_first() {
    const HOST: &str = "soon6.test";
    let (server, _v4, v6) = both_live(HOST, Duration::from_millis(60)).await;
    let dialer = Dialer::builder()
        .resolver(server.resolver())
        .resolution_delay(Duration::from_millis(300))
        .build();
    let rec = Recorder::new();

    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host(HOST, v6.addr.port()))
        .await
        .unwrap();

    assert_eq!(stream.peer_addr().unwrap(), v6.addr);
    assert_eq!(
        rec.all_events(),
        [
            Event::DnsStart(HOST.into()),
            answer(HOST, Family::Ipv4, &["127.0.0.1"]),
            answer(HOST, Family::Ipv6, &["::1"]),
            done(HOST, &["::1", "127.0.0.1"]),
            Event::ConnectStart(v6.addr, 0),
            Event::ConnectDone(v6.addr, 0, Outcome::Connected),
        ]
    );
    // It started on the AAAA answer, not when the resolution delay ran out.
    let answered = rec.time_of(is_answer(Family::Ipv4)).unwrap();
    let started = rec.time_of(is_connect_start).unwrap();
    assert!(
        started - answered < Duration::from_millis(250),
        "started {:?} after the A answer",
        started - answered
    );
    rec.assert_pairs();
}

#[tokio::test]
async fn when_every_ipv4_attempt_failed_the_dial_waits_for_aaaa() {
    const HOST: &str = "wait6.test";
    let v6 = refused_v4_live_v6().await;
    let port = v6.addr.port();
    let refused = SocketAddr::new(ip("127.0.0.1"), port);
    let server = DnsServer::start().await;
    let aaaa_delay = Duration::from_millis(400);
    let entry = Entry::new().a("127.0.0.1").aaaa("::1");
    server.insert(HOST, entry.aaaa_delay(aaaa_delay));
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let rec = Recorder::new();

    let start = Instant::now();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host(HOST, port))
        .await
        .unwrap();
    let took = start.elapsed();

    assert_eq!(stream.peer_addr().unwrap(), v6.addr);
    assert_eq!(
        rec.all_events(),
        [
            Event::DnsStart(HOST.into()),
            answer(HOST, Family::Ipv4, &["127.0.0.1"]),
            Event::ConnectStart(refused, 0),
            Event::ConnectDone(
                refused,
                0,
                Outcome::Failed(std::io::ErrorKind::ConnectionRefused)
            ),
            answer(HOST, Family::Ipv6, &["::1"]),
            done(HOST, &["::1", "127.0.0.1"]),
            Event::ConnectStart(v6.addr, 1),
            Event::ConnectDone(v6.addr, 1, Outcome::Connected),
        ]
    );
    assert!(
        took >= aaaa_delay && took < LATE,
        "connected after {took:?}"
    );
    rec.assert_pairs();
}

/// Ten dials of one name through one `Dialer` (one singleflight), AAAA 1.5 s late.
async fn ten_concurrent_dials(host: &str) -> (DnsServer, Live, Recorder, Vec<DialId>) {
    let (server, v4, _v6) = both_live(host, LATE).await;
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let rec = Recorder::new();

    let dials = (0..10).map(|_| {
        let dial = dialer.dial_host(host, v4.addr.port());
        let id = dial.id();
        let traced = nettrace::with_trace(rec.trace(), dial);
        async move {
            let start = Instant::now();
            let stream = traced.await.unwrap();
            (id, stream, start.elapsed())
        }
    });
    let dialed = join_all(dials).await;

    for (id, stream, took) in &dialed {
        assert_eq!(stream.peer_addr().unwrap(), v4.addr, "dial {id}");
        assert!(*took < EARLY, "dial {id} connected after {took:?}");
    }
    let ids = dialed.into_iter().map(|(id, _, _)| id).collect();
    (server, v4, rec, ids)
}

#[tokio::test]
async fn concurrent_dials_share_the_lookup_and_none_waits_for_a_late_aaaa() {
    const HOST: &str = "shared6.test";
    let (server, v4, rec, ids) = ten_concurrent_dials(HOST).await;

    assert!(server.questions() <= 4, "{} questions", server.questions());
    rec.assert_pairs();
    for id in ids {
        let events = rec.of_dial(id);
        assert_eq!(
            events.len(),
            6,
            "dial {id}: DnsStart, 2 DnsAnswer, DnsDone, ConnectStart, ConnectDone: {events:#?}"
        );
        assert_eq!(events[0], Event::DnsStart(HOST.into()));
        assert_eq!(
            events[1],
            Event::DnsAnswer {
                host: HOST.into(),
                family: Family::Ipv4,
                addrs: vec![ip("127.0.0.1")],
                coalesced: true,
                error: None,
            },
            "dial {id}"
        );
        assert_eq!(events[2], Event::ConnectStart(v4.addr, 0), "dial {id}");
        assert_eq!(
            events[3],
            Event::ConnectDone(v4.addr, 0, Outcome::Connected),
            "dial {id}"
        );
        assert!(
            matches!(&events[4], Event::DnsAnswer {
                family: Family::Ipv6,
                error: Some(ResolveErrorKind::Cancelled),
                addrs,
                ..
            } if addrs.is_empty()),
            "dial {id}: {events:#?}"
        );
        assert!(
            matches!(&events[5], Event::DnsDone { addrs, error: None, .. }
                if addrs == &[ip("127.0.0.1")]),
            "dial {id}: {events:#?}"
        );
    }
}

/// The A answer each of these dials received was shared, so its `DnsDone` (fired when it
/// stops waiting for AAAA) says so, as the DESIGN's "coalesced for the joiners" asks.
#[tokio::test]
async fn concurrent_dials_that_stop_waiting_report_their_shared_answer_coalesced() {
    const HOST: &str = "joined6.test";
    let (_server, _v4, rec, ids) = ten_concurrent_dials(HOST).await;

    for id in ids {
        let coalesced: Vec<(bool, bool)> = rec
            .of_dial(id)
            .into_iter()
            .filter_map(|e| match e {
                Event::DnsDone {
                    coalesced, addrs, ..
                } => Some((coalesced, !addrs.is_empty())),
                _ => None,
            })
            .collect();
        assert_eq!(
            coalesced,
            [(true, true)],
            "dial {id}: DnsDone (coalesced, with addresses)"
        );
    }
}

#[tokio::test]
async fn a_dial_dropped_mid_lookup_closes_every_dns_event_before_the_drop_returns() {
    const HOST: &str = "dropped.test";
    let server = DnsServer::start().await;
    let late = Duration::from_millis(500);
    let entry = Entry::new().a("127.0.0.1").aaaa("::1");
    server.insert(HOST, entry.a_delay(late).aaaa_delay(late));
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let rec = Recorder::new();

    let dial = dialer.dial_host(HOST, 9);
    let id = dial.id();
    let traced = nettrace::with_trace(rec.trace(), dial);
    let res = tokio::time::timeout(Duration::from_millis(50), traced).await;
    assert!(res.is_err(), "the dial ended before the timeout: {res:?}");

    let expected = [
        Event::DnsStart(HOST.into()),
        cancelled(HOST, Family::Ipv6),
        cancelled(HOST, Family::Ipv4),
        Event::DnsDone {
            host: HOST.into(),
            addrs: Vec::new(),
            coalesced: false,
            error: Some(ResolveErrorKind::Cancelled),
        },
    ];
    assert_eq!(rec.all_events(), expected);
    assert!(rec.with_ids().iter().all(|(dial, _)| *dial == id));
    rec.assert_pairs();

    // The answers come at 500 ms: none reaches a hook.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rec.all_events(), expected);
}

/// Dials `host` (A at once, AAAA late) with `builder`'s dialer: it must connect over IPv4
/// on the A answer, without waiting for AAAA.
async fn starts_on_the_a_answer(host: &str, builder: impl FnOnce(DialerBuilder) -> DialerBuilder) {
    let (server, v4, _v6) = both_live(host, LATE).await;
    let dialer = builder(Dialer::builder().resolver(server.resolver())).build();
    let rec = Recorder::new();

    let start = Instant::now();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host(host, v4.addr.port()))
        .await
        .unwrap();
    let took = start.elapsed();

    assert_eq!(stream.peer_addr().unwrap(), v4.addr);
    assert!(took < EARLY, "connected after {took:?}");
    assert_eq!(
        rec.all_events(),
        [
            Event::DnsStart(host.into()),
            answer(host, Family::Ipv4, &["127.0.0.1"]),
            Event::ConnectStart(v4.addr, 0),
            Event::ConnectDone(v4.addr, 0, Outcome::Connected),
            cancelled(host, Family::Ipv6),
            done(host, &["127.0.0.1"]),
        ]
    );
    // No wait after the A answer (the default Resolution Delay would be 50 ms).
    let answered = rec.time_of(is_answer(Family::Ipv4)).unwrap();
    let started = rec.time_of(is_connect_start).unwrap();
    assert!(
        started - answered < Duration::from_millis(40),
        "started {:?} after the A answer",
        started - answered
    );
    rec.assert_pairs();
}

#[tokio::test]
async fn a_zero_resolution_delay_starts_on_the_first_answer() {
    starts_on_the_a_answer("zero.test", |b| b.resolution_delay(Duration::ZERO)).await;
}

#[tokio::test]
async fn an_ipv4_only_dial_never_waits_for_aaaa() {
    starts_on_the_a_answer("only4.test", |b| b.family(Family::Ipv4)).await;
}
