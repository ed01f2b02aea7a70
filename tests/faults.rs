//! Faults: DNS servers that misbehave, and hooks that panic.
//!
//! Every DNS fault must end in a typed error (a `ResolveErrorKind`, with hickory's error
//! kept behind `source()`) and exactly one `DnsDone`. A panicking hook must reach the
//! caller of its own dial and nobody else: dials sharing its lookup still connect, and
//! the `Dialer` keeps working.

use std::any::Any;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::FutureExt;
use nettrace::{
    CoalescingResolver, DialError, Dialer, Family, HickoryResolver, NetTrace, ResolveError,
    ResolveErrorKind, StaticResolver,
};

use crate::support::dns::{DnsServer, Entry, Reply};
use crate::support::net::{BlackHole, Live};
use crate::support::record::{check_pairs, Event, Outcome, Recorder};

/// The per-query timeout for faults that end in silence.
const QUERY_TIMEOUT: Duration = Duration::from_millis(300);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Asks only `server`, with a short timeout and no retries. Never the system's servers.
fn hickory(server: &DnsServer) -> HickoryResolver {
    HickoryResolver::builder()
        .name_servers(&[server.addr()])
        .timeout(QUERY_TIMEOUT)
        .attempts(0)
        .build()
}

/// Looks up `fault.test`, which the server answers with `reply`, through a
/// `CoalescingResolver`; returns the answer, the events and the time it took.
async fn lookup_with(
    reply: Reply,
) -> (
    Result<Vec<IpAddr>, ResolveError>,
    Vec<Event>,
    Duration,
    DnsServer,
) {
    let server = DnsServer::start().await;
    server.insert(
        "fault.test",
        Entry::new().a("127.0.0.1").aaaa("::1").reply(reply),
    );
    let resolver = CoalescingResolver::new(hickory(&server));
    let rec = Recorder::new();
    let started = Instant::now();
    let answer = nettrace::with_trace(rec.trace(), resolver.lookup("fault.test")).await;
    let elapsed = started.elapsed();
    assert_eq!(resolver.in_flight(), 0);
    (answer, rec.events(), elapsed, server)
}

/// Asserts a failed lookup of kind `kind`, with exactly one `DnsStart` and one `DnsDone`
/// carrying the same kind, the cause kept, and no more than `within`.
async fn assert_fault(reply: Reply, kind: ResolveErrorKind, within: Duration) {
    let (answer, events, elapsed, _server) = lookup_with(reply).await;
    let err = answer.expect_err("the lookup must fail");
    assert_eq!(err.kind(), kind, "{reply:?}: {err:?}");
    assert_eq!(err.name(), "fault.test");
    assert!(
        std::error::Error::source(&err).is_some(),
        "{reply:?}: hickory's error is kept"
    );
    assert_eq!(
        events,
        [
            Event::DnsStart("fault.test".into()),
            Event::DnsDone {
                host: "fault.test".into(),
                addrs: vec![],
                coalesced: false,
                error: Some(kind),
            }
        ],
        "{reply:?}"
    );
    assert!(elapsed < within, "{reply:?} took {elapsed:?}");
}

/// Long enough for a loaded machine; short of the default five-second DNS timeout.
const PROMPT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn nxdomain_is_not_found() {
    assert_fault(Reply::NxDomain, ResolveErrorKind::NotFound, PROMPT).await;
}

#[tokio::test]
async fn servfail_is_a_server_failure() {
    assert_fault(Reply::ServFail, ResolveErrorKind::ServerFailure, PROMPT).await;
}

#[tokio::test]
async fn refused_is_a_server_failure() {
    assert_fault(Reply::Refused, ResolveErrorKind::ServerFailure, PROMPT).await;
}

/// A reply whose ID does not match the query's may be spoofed: it is ignored, and the
/// lookup times out as if nothing came back.
#[tokio::test]
async fn a_reply_with_the_wrong_id_is_ignored_and_times_out() {
    let within = QUERY_TIMEOUT + PROMPT;
    assert_fault(Reply::WrongId, ResolveErrorKind::TimedOut, within).await;
}

/// Bytes that are not a DNS message are dropped; the lookup times out.
#[tokio::test]
async fn garbage_bytes_are_ignored_and_time_out() {
    let within = QUERY_TIMEOUT + PROMPT;
    assert_fault(Reply::Garbage, ResolveErrorKind::TimedOut, within).await;
}

/// An answer for another name does not answer the question; the lookup times out.
#[tokio::test]
async fn a_reply_for_the_wrong_name_is_ignored_and_times_out() {
    let within = QUERY_TIMEOUT + PROMPT;
    assert_fault(Reply::WrongName, ResolveErrorKind::TimedOut, within).await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (answer, _, elapsed, _server) = lookup_with(Reply::Silent).await;
    assert!(elapsed >= QUERY_TIMEOUT, "gave up early: {elapsed:?}");
    drop(answer);
    assert_fault(
        Reply::Silent,
        ResolveErrorKind::TimedOut,
        QUERY_TIMEOUT + PROMPT,
    )
    .await;
}

/// TC=1 over UDP: the question is asked again over TCP, which answers in full.
#[tokio::test]
async fn a_truncated_udp_reply_falls_back_to_tcp() {
    let (answer, events, elapsed, server) = lookup_with(Reply::Truncated).await;
    assert_eq!(answer.unwrap(), [ip("::1"), ip("127.0.0.1")]);
    assert_eq!(
        events,
        [
            Event::DnsStart("fault.test".into()),
            Event::DnsDone {
                host: "fault.test".into(),
                addrs: vec![ip("::1"), ip("127.0.0.1")],
                coalesced: false,
                error: None,
            }
        ]
    );
    // Each family: once over UDP (truncated), once over TCP.
    assert_eq!(server.questions_for("fault.test", "A"), 2);
    assert_eq!(server.questions_for("fault.test", "AAAA"), 2);
    assert!(elapsed < PROMPT, "{elapsed:?}");
}

/// Through a `Dialer`, each fault is a `DialError::Resolve` of the same kind, with one
/// `DnsDone` and no connection attempt; a truncated reply still leads to a connection.
#[tokio::test]
async fn a_dialer_reports_dns_faults_as_resolve_errors() {
    let server = DnsServer::start().await;
    let live = Live::on("127.0.0.1").await;
    let faults = [
        ("nx.test", Reply::NxDomain, ResolveErrorKind::NotFound),
        (
            "servfail.test",
            Reply::ServFail,
            ResolveErrorKind::ServerFailure,
        ),
        (
            "refused.test",
            Reply::Refused,
            ResolveErrorKind::ServerFailure,
        ),
        ("wrong-id.test", Reply::WrongId, ResolveErrorKind::TimedOut),
        ("garbage.test", Reply::Garbage, ResolveErrorKind::TimedOut),
        (
            "wrong-name.test",
            Reply::WrongName,
            ResolveErrorKind::TimedOut,
        ),
        ("silent.test", Reply::Silent, ResolveErrorKind::TimedOut),
    ];
    for (name, reply, _) in faults {
        server.insert(name, Entry::new().a("127.0.0.1").reply(reply));
    }
    server.insert(
        "truncated.test",
        Entry::new().a("127.0.0.1").reply(Reply::Truncated),
    );
    let dialer = Dialer::builder().resolver(hickory(&server)).build();
    let port = live.addr.port();

    // All at once: none of them holds up another.
    let started = Instant::now();
    let dials = faults.iter().map(|(name, _, kind)| {
        let rec = Recorder::new();
        let dial = nettrace::with_trace(rec.trace(), dialer.dial_host(name, port));
        async move { (dial.await, rec, *name, *kind) }
    });
    for (result, rec, name, kind) in join_all(dials).await {
        match result {
            Err(DialError::Resolve(err)) => assert_eq!(err.kind(), kind, "{name}: {err:?}"),
            other => panic!("{name}: {other:?}"),
        }
        let events = rec.events();
        let dns_done = events
            .iter()
            .filter(|e| matches!(e, Event::DnsDone { error: Some(k), .. } if *k == kind))
            .count();
        assert_eq!(dns_done, 1, "{name}: {events:?}");
        assert_eq!(events.len(), 2, "{name}: no attempt: {events:?}");
    }
    assert!(started.elapsed() < QUERY_TIMEOUT + PROMPT);

    let rec = Recorder::new();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host("truncated.test", port))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live.addr);
    assert_eq!(rec.count(|e| matches!(e, Event::DnsDone { .. })), 1);
    assert_eq!(dialer.resolver().in_flight(), 0);
}

/// A trace whose `hook` panics with `message`, on every call.
fn panicking(hook: &str, message: &'static str) -> NetTrace {
    let boom = move || -> ! { std::panic::panic_any(message) };
    match hook {
        "dns_start" => NetTrace::new().on_dns_start(move |_| boom()),
        "dns_answer" => NetTrace::new().on_dns_answer(move |_| boom()),
        "dns_done" => NetTrace::new().on_dns_done(move |_| boom()),
        "connect_start" => NetTrace::new().on_connect_start(move |_| boom()),
        "connect_done" => NetTrace::new().on_connect_done(move |_| boom()),
        _ => unreachable!(),
    }
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// Four dials with a panicking hook (one per hook) and eight good ones share one slow
/// lookup. Each panic reaches its own task only; the eight connect, all told the lookup
/// was shared; the dialer's resolver is left consistent and the dialer keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_reaches_only_its_own_dial() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(200);
    server.insert(
        "shared.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder().resolver(hickory(&server)).build();
    let port = live.addr.port();

    let hooks = ["dns_start", "dns_done", "connect_start", "connect_done"];
    let panics: Vec<_> = hooks
        .iter()
        .map(|hook| {
            let rec = Recorder::new();
            let message: &'static str = Box::leak(format!("{hook} hook panicked").into());
            let dial = nettrace::with_trace(
                panicking(hook, message),
                nettrace::with_trace(rec.trace(), dialer.dial_host("shared.test", port)),
            );
            (tokio::spawn(dial), rec, message)
        })
        .collect();
    let good: Vec<_> = (0..8)
        .map(|_| {
            let rec = Recorder::new();
            let dial = nettrace::with_trace(rec.trace(), dialer.dial_host("shared.test", port));
            (tokio::spawn(dial), rec)
        })
        .collect();

    for (task, rec, want) in panics {
        let err = task
            .await
            .expect_err("the hook's panic reaches its dial's task");
        assert!(err.is_panic());
        assert_eq!(message(err.into_panic().as_ref()), want);
        // The events recorded still pair up: a dial dropped after a panic reports its
        // pending `DnsDone` and `ConnectDone` like any dropped dial, also when the
        // `ConnectStart` hook itself panicked.
        let events = rec.events();
        let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
        assert_eq!(
            count(|e| matches!(e, Event::DnsStart(_))),
            count(|e| matches!(e, Event::DnsDone { .. })),
            "{want}: {events:?}"
        );
        assert_eq!(
            count(|e| matches!(e, Event::ConnectStart(..))),
            count(|e| matches!(e, Event::ConnectDone(..))),
            "{want}: {events:?}"
        );
    }
    for (task, rec) in good {
        let stream = task.await.expect("no panic here").expect("connects");
        assert_eq!(stream.peer_addr().unwrap(), live.addr);
        let events = rec.events();
        assert!(
            matches!(
                &events[..],
                [
                    Event::DnsStart(_),
                    Event::DnsDone {
                        coalesced: true,
                        error: None,
                        ..
                    },
                    Event::ConnectStart(_, 0),
                    Event::ConnectDone(_, 0, Outcome::Connected),
                ]
            ),
            "{events:?}"
        );
    }
    // One lookup for all twelve: one question per family.
    assert_eq!(server.questions_for("shared.test", "A"), 1);
    assert_eq!(server.questions_for("shared.test", "AAAA"), 1);

    // Nothing is left in flight or poisoned: two new dials share a new lookup.
    assert_eq!(dialer.resolver().in_flight(), 0);
    let rec = Recorder::new();
    let (a, b) = nettrace::with_trace(rec.trace(), async {
        tokio::join!(
            dialer.dial_host("shared.test", port),
            dialer.dial_host("SHARED.test", port)
        )
    })
    .await;
    assert_eq!(a.unwrap().peer_addr().unwrap(), live.addr);
    assert_eq!(b.unwrap().peer_addr().unwrap(), live.addr);
    assert_eq!(
        rec.count(|e| matches!(
            e,
            Event::DnsDone {
                coalesced: true,
                ..
            }
        )),
        2
    );
    assert_eq!(server.questions_for("shared.test", "A"), 2);
}

/// Awaited directly, the panic reaches the caller, which can catch it; the dial's
/// sockets are closed and the same dialer connects again at once. The panicking trace is
/// in the outer scope or in the inner one: the recording trace in the other sees events
/// that pair up either way. (Which events depends on which family's answer comes first,
/// so the two runs are not compared.)
#[tokio::test]
async fn the_panic_reaches_the_caller_and_the_dialer_stays_usable() {
    let server = DnsServer::start().await;
    server.insert("panic.test", Entry::new().a("127.0.0.1"));
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder().resolver(hickory(&server)).build();
    let target = format!("panic.test:{}", live.addr.port());
    let hooks = [
        "dns_start",
        "dns_answer",
        "dns_done",
        "connect_start",
        "connect_done",
    ];
    for hook in hooks {
        for panicking_inside in [false, true] {
            let rec = Recorder::new();
            let (outer, inner) = match panicking_inside {
                false => (panicking(hook, "on purpose"), rec.trace()),
                true => (rec.trace(), panicking(hook, "on purpose")),
            };
            let dial =
                nettrace::with_trace(outer, nettrace::with_trace(inner, dialer.dial(&target)));
            let caught = AssertUnwindSafe(dial).catch_unwind().await;
            let payload = caught.expect_err("the panic reaches the caller");
            assert_eq!(message(payload.as_ref()), "on purpose");
            let events = rec.events();
            let dns_starts = rec.count(|e| matches!(e, Event::DnsStart(..)));
            let dns_dones = rec.count(|e| matches!(e, Event::DnsDone { .. }));
            assert_eq!(dns_starts, 1, "{hook}: {events:?}");
            assert_eq!(dns_dones, 1, "{hook}: {events:?}");
            let starts = rec.count(|e| matches!(e, Event::ConnectStart(..)));
            let dones = rec.count(|e| matches!(e, Event::ConnectDone(..)));
            assert_eq!(starts, dones, "{hook}: {events:?}");
            check_pairs(&rec.with_ids(), true).unwrap_or_else(|err| panic!("{hook}: {err}"));

            let stream = dialer.dial(&target).await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), live.addr);
        }
    }
}

/// Dials `target` with a trace whose `hook` panics between two recording scopes; returns
/// the panic's message and what the outer and the inner recorder saw.
async fn dial_between(dialer: &Dialer, target: &str, hook: &str) -> (String, Recorder, Recorder) {
    let (outer, inner) = (Recorder::new(), Recorder::new());
    let dial = nettrace::with_trace(
        outer.trace(),
        nettrace::with_trace(
            panicking(hook, "inner"),
            nettrace::with_trace(inner.trace(), dialer.dial(target)),
        ),
    );
    let payload = AssertUnwindSafe(dial)
        .catch_unwind()
        .await
        .expect_err("the panic reaches the caller");
    (message(payload.as_ref()).to_owned(), outer, inner)
}

/// A hook that panics in an inner scope costs the outer trace none of its events: it sees
/// the `ConnectStart` whose hook panicked and that attempt's `ConnectDone`, the `DnsStart`
/// whose hook panicked and the lookup's answers and `DnsDone`.
#[tokio::test]
async fn a_panicking_inner_hook_costs_the_outer_trace_no_event() {
    let live = Live::on("127.0.0.1").await;
    let (message, outer, inner) =
        dial_between(&Dialer::new(), &live.addr.to_string(), "connect_start").await;
    assert_eq!(message, "inner");
    let want = [
        Event::ConnectStart(live.addr, 0),
        Event::ConnectDone(live.addr, 0, Outcome::Cancelled),
    ];
    assert_eq!(outer.all_events(), want);
    assert_eq!(inner.all_events(), want);

    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("inner.test", [ip("127.0.0.1")]))
        .build();
    let target = format!("inner.test:{}", live.addr.port());
    let (message, outer, inner) = dial_between(&dialer, &target, "dns_start").await;
    assert_eq!(message, "inner");
    let cancelled = |family| Event::DnsAnswer {
        host: "inner.test".into(),
        family,
        addrs: vec![],
        coalesced: false,
        error: Some(ResolveErrorKind::Cancelled),
    };
    let want = [
        Event::DnsStart("inner.test".into()),
        cancelled(Family::Ipv6),
        cancelled(Family::Ipv4),
        Event::DnsDone {
            host: "inner.test".into(),
            addrs: vec![],
            coalesced: false,
            error: Some(ResolveErrorKind::Cancelled),
        },
    ];
    assert_eq!(outer.all_events(), want);
    assert_eq!(inner.all_events(), want);
    assert_eq!(dialer.resolver().in_flight(), 0);
}

/// Two black-holed attempts in flight and a `ConnectDone` hook that panics on every call:
/// when the dial times out, and when it is dropped, both attempts still get their done in
/// every scope, and the first panic reaches the caller.
#[tokio::test]
async fn a_panicking_connect_done_hook_leaves_no_attempt_without_its_done() {
    let hole_a = BlackHole::on("127.0.0.20").await;
    let hole_b = BlackHole::on_port("127.0.0.21", hole_a.addr.port()).await;
    let port = hole_a.addr.port();
    let resolver =
        || StaticResolver::new().insert("holes.test", [hole_a.addr.ip(), hole_b.addr.ip()]);
    let want = [
        Event::ConnectStart(hole_a.addr, 0),
        Event::ConnectStart(hole_b.addr, 1),
        Event::ConnectDone(hole_a.addr, 0, Outcome::Cancelled),
        Event::ConnectDone(hole_b.addr, 1, Outcome::Cancelled),
    ];

    // On timeout.
    let dialer = Dialer::builder()
        .resolver(resolver())
        .attempt_delay(Duration::from_millis(10))
        .timeout(Duration::from_millis(300))
        .build();
    let target = format!("holes.test:{port}");
    let (thrown, outer, inner) = dial_between(&dialer, &target, "connect_done").await;
    assert_eq!(thrown, "inner");
    for rec in [&outer, &inner] {
        assert_eq!(rec.events()[2..], want, "on timeout");
    }

    // On drop.
    let dialer = Dialer::builder()
        .resolver(resolver())
        .attempt_delay(Duration::from_millis(10))
        .build();
    let (outer, inner) = (Recorder::new(), Recorder::new());
    let dial = nettrace::with_trace(
        outer.trace(),
        nettrace::with_trace(
            panicking("connect_done", "inner"),
            nettrace::with_trace(inner.trace(), dialer.dial(&target)),
        ),
    );
    let dropped = AssertUnwindSafe(async {
        // The dial is dropped when its timeout gives up on it, inside this future.
        let _ = tokio::time::timeout(Duration::from_millis(300), dial).await;
    })
    .catch_unwind()
    .await;
    let payload = dropped.expect_err("the panic of the drop reaches the caller");
    assert_eq!(message(payload.as_ref()), "inner");
    for rec in [&outer, &inner] {
        assert_eq!(rec.events()[2..], want, "on drop");
    }
}

/// A panic in a `ConnectStart` hook still gives the other traces in scope their
/// `ConnectDone`: the dial's drop reports the attempt whose start hooks were running.
#[tokio::test]
async fn a_panicking_connect_start_hook_still_pairs_the_attempt() {
    let live = Live::on("127.0.0.1").await;
    let rec = Recorder::new();
    let dial = nettrace::with_trace(
        panicking("connect_start", "on purpose"),
        nettrace::with_trace(rec.trace(), Dialer::new().dial(&live.addr.to_string())),
    );
    assert!(AssertUnwindSafe(dial).catch_unwind().await.is_err());
    assert_eq!(
        rec.events(),
        [
            Event::ConnectStart(live.addr, 0),
            Event::ConnectDone(live.addr, 0, Outcome::Cancelled)
        ]
    );
}
