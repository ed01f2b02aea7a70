//! The traced Dialer against loopback peers: live listeners, refused ports, black holes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::FutureExt;
use nettrace::{DialError, Dialer, Family, StaticResolver};

use crate::support::dns::{DnsServer, Entry};
use crate::support::net::{fallback_pair, refused, BlackHole, Live};
use crate::support::record::{Event, Outcome, Recorder};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn resolving(name: &str, addrs: &[SocketAddr]) -> StaticResolver {
    StaticResolver::new().insert(name, addrs.iter().map(|a| a.ip()))
}

#[tokio::test]
async fn ip_literal_needs_no_dns_and_makes_one_attempt() {
    let live = Live::on("127.0.0.1").await;
    let rec = Recorder::new();
    let stream = nettrace::with_trace(rec.trace(), Dialer::new().dial(&live.addr.to_string()))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live.addr);
    assert_eq!(
        rec.events(),
        [
            Event::ConnectStart(live.addr, 0),
            Event::ConnectDone(live.addr, 0, Outcome::Connected)
        ]
    );
}

#[tokio::test]
async fn ipv6_literal_and_dial_host() {
    let live = Live::on("::1").await;
    let dialer = Dialer::new();
    let a = dialer
        .dial(&format!("[::1]:{}", live.addr.port()))
        .await
        .unwrap();
    let b = dialer.dial_host("::1", live.addr.port()).await.unwrap();
    let c = dialer.dial_host("[::1]", live.addr.port()).await.unwrap();
    for s in [a, b, c] {
        assert_eq!(s.peer_addr().unwrap(), live.addr);
    }
}

#[tokio::test]
async fn happy_eyeballs_falls_back_from_a_black_holed_ipv6() {
    let (hole, live) = fallback_pair().await;
    let dialer = Dialer::builder()
        .resolver(resolving("fallback.test", &[hole.addr, live.addr]))
        .attempt_delay(Duration::from_millis(100))
        .build();
    let rec = Recorder::new();
    let port = live.addr.port();

    let stream = nettrace::with_trace(rec.trace(), dialer.dial(&format!("fallback.test:{port}")))
        .await
        .unwrap();

    assert_eq!(stream.peer_addr().unwrap(), live.addr);
    assert_eq!(
        rec.events(),
        [
            Event::DnsStart("fallback.test".into()),
            Event::DnsDone {
                host: "fallback.test".into(),
                addrs: vec![ip("::1"), ip("127.0.0.1")],
                coalesced: false,
                error: None
            },
            Event::ConnectStart(hole.addr, 0),
            Event::ConnectStart(live.addr, 1),
            Event::ConnectDone(live.addr, 1, Outcome::Connected),
            Event::ConnectDone(hole.addr, 0, Outcome::Cancelled),
        ]
    );
    let first = rec
        .time_of(|e| matches!(e, Event::ConnectStart(_, 0)))
        .unwrap();
    let second = rec
        .time_of(|e| matches!(e, Event::ConnectStart(_, 1)))
        .unwrap();
    assert!(
        second - first >= Duration::from_millis(100),
        "{:?}",
        second - first
    );
}

#[tokio::test]
async fn a_refused_first_address_starts_the_next_at_once() {
    let dead = refused("127.0.0.2");
    let live = Live::on_port("127.0.0.3", dead.port()).await;
    let dialer = Dialer::builder()
        .resolver(resolving("refused.test", &[dead, live.addr]))
        .attempt_delay(Duration::from_secs(2))
        .build();
    let rec = Recorder::new();

    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host("refused.test", dead.port()))
        .await
        .unwrap();

    assert_eq!(stream.peer_addr().unwrap(), live.addr);
    let events = rec.events();
    assert!(
        matches!(
            events[3],
            Event::ConnectDone(addr, 0, Outcome::Failed(std::io::ErrorKind::ConnectionRefused)) if addr == dead
        ),
        "{events:?}"
    );
    assert_eq!(events[4], Event::ConnectStart(live.addr, 1));
    let first = rec
        .time_of(|e| matches!(e, Event::ConnectStart(_, 0)))
        .unwrap();
    let second = rec
        .time_of(|e| matches!(e, Event::ConnectStart(_, 1)))
        .unwrap();
    assert!(
        second - first < Duration::from_millis(500),
        "{:?}",
        second - first
    );
}

#[tokio::test]
async fn every_address_refused_names_every_attempt() {
    let a = refused("127.0.0.1");
    let b = SocketAddr::new(ip("127.0.0.2"), a.port());
    let c = SocketAddr::new(ip("::1"), a.port());
    let dialer = Dialer::builder()
        .resolver(resolving("nobody.test", &[a, b, c]))
        .build();
    let rec = Recorder::new();

    let err = nettrace::with_trace(rec.trace(), dialer.dial_host("nobody.test", a.port()))
        .await
        .unwrap_err();

    let DialError::AllAttemptsFailed { attempts, .. } = &err else {
        panic!("{err:?}");
    };
    let addrs: Vec<SocketAddr> = attempts.iter().map(|(a, _)| *a).collect();
    // Families interleave, starting with the first address's.
    assert_eq!(addrs, [a, c, b]);
    assert!(attempts
        .iter()
        .all(|(_, e)| e.kind() == std::io::ErrorKind::ConnectionRefused));
    let message = err.to_string();
    for addr in [a, b, c] {
        assert!(message.contains(&addr.to_string()), "{message}");
    }
    assert_eq!(rec.count(|e| matches!(e, Event::ConnectStart(..))), 3);
    assert_eq!(
        rec.count(|e| matches!(e, Event::ConnectDone(_, _, Outcome::Failed(_)))),
        3
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn every_address_black_holed_times_out_and_cancels_every_attempt() {
    let hole_a = BlackHole::on("127.0.0.4").await;
    let hole_b = BlackHole::on_port("127.0.0.5", hole_a.addr.port()).await;
    let dialer = Dialer::builder()
        .resolver(resolving("void.test", &[hole_a.addr, hole_b.addr]))
        .attempt_delay(Duration::from_millis(100))
        .timeout(Duration::from_millis(300))
        .build();
    let rec = Recorder::new();
    let started = std::time::Instant::now();

    let err = nettrace::with_trace(
        rec.trace(),
        dialer.dial_host("void.test", hole_a.addr.port()),
    )
    .await
    .unwrap_err();

    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    match &err {
        DialError::Timeout {
            after,
            started,
            failed,
            ..
        } => {
            assert_eq!(*after, Duration::from_millis(300));
            assert_eq!(started, &[hole_a.addr, hole_b.addr]);
            assert!(failed.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rec.events()[2..],
        [
            Event::ConnectStart(hole_a.addr, 0),
            Event::ConnectStart(hole_b.addr, 1),
            Event::ConnectDone(hole_a.addr, 0, Outcome::Cancelled),
            Event::ConnectDone(hole_b.addr, 1, Outcome::Cancelled),
        ]
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );
}

#[tokio::test]
async fn a_dropped_dial_reports_its_pending_attempts() {
    let hole = BlackHole::on("127.0.0.6").await;
    let rec = Recorder::new();
    let mut dial = Box::pin(nettrace::with_trace(
        rec.trace(),
        Dialer::new().dial(&hole.addr.to_string()),
    ));
    assert!((&mut dial).now_or_never().is_none());
    assert_eq!(rec.events(), [Event::ConnectStart(hole.addr, 0)]);
    drop(dial);
    assert_eq!(
        rec.events(),
        [
            Event::ConnectStart(hole.addr, 0),
            Event::ConnectDone(hole.addr, 0, Outcome::Cancelled)
        ]
    );
}

#[tokio::test]
async fn five_hundred_concurrent_dials_share_one_lookup() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(100);
    server.insert(
        "many.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let rec = Recorder::new();

    let dials = (0..500).map(|_| {
        let dial = dialer.clone().dial_host("many.test", live.addr.port());
        tokio::spawn(nettrace::with_trace(rec.trace(), dial))
    });
    let streams = join_all(dials).await;

    assert!(streams.iter().all(|s| matches!(s, Ok(Ok(_)))));
    assert!(server.questions() <= 2, "{} questions", server.questions());
    assert_eq!(
        rec.count(|e| matches!(
            e,
            Event::DnsDone {
                coalesced: true,
                ..
            }
        )),
        500
    );
    assert_eq!(
        rec.count(|e| matches!(e, Event::ConnectDone(_, _, Outcome::Connected))),
        500
    );
}

#[tokio::test]
async fn without_happy_eyeballs_one_address_at_a_time() {
    let (hole, live) = fallback_pair().await;
    let dialer = Dialer::builder()
        .resolver(resolving("serial.test", &[hole.addr, live.addr]))
        .happy_eyeballs(false)
        .timeout(Duration::from_millis(600))
        .build();
    let rec = Recorder::new();
    let err = nettrace::with_trace(
        rec.trace(),
        dialer.dial_host("serial.test", live.addr.port()),
    )
    .await
    .unwrap_err();
    // The black hole never fails, so the live address is never tried.
    assert!(
        matches!(&err, DialError::Timeout { started, .. } if started == &[hole.addr]),
        "{err:?}"
    );
    assert_eq!(rec.count(|e| matches!(e, Event::ConnectStart(..))), 1);
}

#[tokio::test]
async fn socket_options_are_visible_on_the_stream() {
    let live = Live::on("127.0.0.1").await;
    let local: SocketAddr = "127.0.0.7:0".parse().unwrap();
    let dialer = Dialer::builder()
        .nodelay(true)
        .keepalive(Some(Duration::from_secs(42)))
        .local_addr(Some(local))
        .reuse_address(true)
        .build();
    let stream = dialer.dial(&live.addr.to_string()).await.unwrap();
    assert!(stream.nodelay().unwrap());
    let sock = socket2::SockRef::from(&stream);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(42));
    assert!(sock.reuse_address().unwrap());
    assert_eq!(stream.local_addr().unwrap().ip(), local.ip());

    let plain = Dialer::new().dial(&live.addr.to_string()).await.unwrap();
    assert!(!plain.nodelay().unwrap());
    assert!(!socket2::SockRef::from(&plain).keepalive().unwrap());
}

#[tokio::test]
async fn family_filter_and_local_addr_skip_other_families() {
    let (hole, live) = fallback_pair().await;
    let resolver = resolving("fam.test", &[hole.addr, live.addr]);
    let dialer = Dialer::builder()
        .resolver(resolver)
        .family(Family::Ipv4)
        .build();
    let rec = Recorder::new();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host("fam.test", live.addr.port()))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live.addr);
    assert_eq!(rec.count(|e| matches!(e, Event::ConnectStart(..))), 1);

    let v6_only = Dialer::builder().family(Family::Ipv6).build();
    let err = v6_only.dial(&live.addr.to_string()).await.unwrap_err();
    assert!(matches!(err, DialError::NoAddresses { .. }), "{err:?}");
}

#[tokio::test]
async fn resolution_failure_is_a_resolve_error() {
    let dialer = Dialer::builder().resolver(StaticResolver::new()).build();
    let rec = Recorder::new();
    let err = nettrace::with_trace(rec.trace(), dialer.dial("unknown.test:80"))
        .await
        .unwrap_err();
    match &err {
        DialError::Resolve(e) => assert_eq!(e.kind(), nettrace::ResolveErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert_eq!(rec.count(|e| matches!(e, Event::ConnectStart(..))), 0);
    assert_eq!(rec.count(|e| matches!(e, Event::DnsDone { .. })), 1);
}

#[tokio::test]
async fn bad_inputs_fail_before_any_hook_or_network_use() {
    let rec = Recorder::new();
    let dialer = Dialer::builder().resolver(StaticResolver::new()).build();
    let long = format!("{}:80", "a".repeat(300));
    let long_dotted = format!("{}:80", "abc.".repeat(70));
    let inputs = [
        "",
        "host",
        "host:",
        ":80",
        "host:99999",
        "host:0",
        "host:http",
        "[::1",
        "[::1]",
        "[::1]80",
        "::1:80",
        "[127.0.0.1]:80",
        "exa mple.com:80",
        " host:80",
        "host:80 ",
        "a..b:80",
        "bad_host!:80",
        "bücher.test:80",
        "[fe80::1%]:80",
        long.as_str(),
        long_dotted.as_str(),
    ];
    for input in inputs {
        let err = nettrace::with_trace(rec.trace(), dialer.dial(input))
            .await
            .unwrap_err();
        match &err {
            DialError::InvalidAddress {
                input: kept,
                reason,
                ..
            } => {
                assert!(input.starts_with(kept.as_str()), "{input:?}");
                assert!(!reason.is_empty());
                assert!(err.to_string().starts_with("invalid address"), "{err}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    for (host, port) in [("", 80), ("a.test", 0), ("::zz", 80), ("a b", 80)] {
        let err = dialer.dial_host(host, port).await.unwrap_err();
        assert!(
            matches!(err, DialError::InvalidAddress { .. }),
            "{host:?}:{port}: {err:?}"
        );
    }
    assert!(rec.events().is_empty(), "{:?}", rec.events());
}

#[tokio::test]
async fn a_panic_elsewhere_in_the_task_still_closes_every_attempt() {
    let hole = BlackHole::on("127.0.0.12").await;
    let rec = Recorder::new();
    let dial = Dialer::new().dial(&hole.addr.to_string());
    let task = tokio::spawn(nettrace::with_trace(rec.trace(), async move {
        // The dial is in flight when a sibling branch of the same task panics; tokio
        // drops the task's future while unwinding.
        let _ = tokio::join!(dial, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            panic!("a sibling branch failed");
        });
    }));
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(
        rec.events(),
        [
            Event::ConnectStart(hole.addr, 0),
            Event::ConnectDone(hole.addr, 0, Outcome::Cancelled)
        ]
    );
}

#[tokio::test]
async fn family_and_url_mistakes_get_helpful_messages() {
    let dialer = Dialer::builder().family(Family::Ipv4).build();
    let err = dialer.dial("[::1]:80").await.unwrap_err();
    assert!(err.to_string().contains("family filter"), "{err}");
    let err = dialer.dial("http://example.test:80").await.unwrap_err();
    assert!(err.to_string().contains("not a URL"), "{err}");
    // A host with a ':' is shown in brackets, so the port given stays apart from it.
    let err = dialer.dial_host("example.test:80", 443).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid address \"[example.test:80]:443\""),
        "{err}"
    );
}

/// `dial_host` shows an IPv6 host in brackets in its errors, as `[::1]:80`.
#[tokio::test]
async fn dial_host_errors_show_ipv6_hosts_in_brackets() {
    let dialer = Dialer::builder().resolver(StaticResolver::new()).build();
    for (host, port, shown) in [
        ("::zz", 80, "[::zz]:80"),
        ("fe80::1%no-such-if0", 443, "[fe80::1%no-such-if0]:443"),
        ("[fe80::1%]", 8080, "[fe80::1%]:8080"),
        ("[::1", 80, "[[::1]:80"),
        ("::1", 0, "[::1]:0"),
        ("[::1]", 0, "[::1]:0"),
        ("127.0.0.1", 0, "127.0.0.1:0"),
    ] {
        let err = dialer.dial_host(host, port).await.unwrap_err();
        match &err {
            DialError::InvalidAddress { input, .. } => assert_eq!(input, shown, "{err}"),
            other => panic!("{host:?} {port}: {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("invalid address {shown:?}: ")),
            "{err}"
        );
    }
}
