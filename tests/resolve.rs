//! Name resolution through a DNS server on loopback: `HickoryResolver` behind
//! `CoalescingResolver`, checked with a recording trace.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::FutureExt;
use nettrace::{CoalescingResolver, HickoryResolver, ResolveErrorKind};

use crate::support::dns::{DnsServer, Entry, Reply};
use crate::support::record::{Event, Recorder};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A resolver that asks only `server`, with a short timeout and no retries.
fn resolver_for(server: &DnsServer, timeout: Duration) -> CoalescingResolver {
    CoalescingResolver::new(
        HickoryResolver::builder()
            .name_servers(&[server.addr()])
            .timeout(timeout)
            .attempts(0)
            .build(),
    )
}

#[tokio::test]
async fn one_lookup_reports_both_families_not_coalesced() {
    let server = DnsServer::start().await;
    server.insert("both.test", Entry::new().a("127.0.0.1").aaaa("::1"));
    let resolver = resolver_for(&server, Duration::from_secs(2));
    let rec = Recorder::new();

    let addrs = nettrace::with_trace(rec.trace(), resolver.lookup("both.test"))
        .await
        .unwrap();

    assert_eq!(addrs, [ip("::1"), ip("127.0.0.1")], "IPv6 first");
    assert_eq!(
        rec.events(),
        [
            Event::DnsStart("both.test".into()),
            Event::DnsDone {
                host: "both.test".into(),
                addrs: vec![ip("::1"), ip("127.0.0.1")],
                coalesced: false,
                error: None,
            }
        ]
    );
    assert_eq!(server.questions_for("both.test", "A"), 1);
    assert_eq!(server.questions_for("both.test", "AAAA"), 1);
}

#[tokio::test]
async fn five_hundred_concurrent_lookups_share_one_query_per_family() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(100);
    server.insert(
        "cold.test",
        Entry::new()
            .a("127.0.0.1")
            .aaaa("::1")
            .a_delay(delay)
            .aaaa_delay(delay),
    );
    let resolver = resolver_for(&server, Duration::from_secs(5));
    let rec = Recorder::new();

    let callers = (0..500).map(|_| {
        let resolver = resolver.clone();
        tokio::spawn(nettrace::with_trace(rec.trace(), async move {
            resolver.lookup("cold.test").await
        }))
    });
    let results = join_all(callers).await;

    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(Ok(a)) if a.len() == 2)));
    assert!(server.questions() <= 2, "{} questions", server.questions());
    let dones: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::DnsDone { .. }))
        .collect();
    assert_eq!(dones.len(), 500);
    assert!(dones.iter().all(|e| matches!(
        e,
        Event::DnsDone {
            coalesced: true,
            error: None,
            ..
        }
    )));
    assert_eq!(rec.count(|e| matches!(e, Event::DnsStart(_))), 500);
    assert_eq!(resolver.in_flight(), 0);
}

#[tokio::test]
async fn a_dropped_caller_does_not_cancel_the_others() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(150);
    server.insert(
        "shared.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let resolver = resolver_for(&server, Duration::from_secs(5));
    let first_rec = Recorder::new();
    let others_rec = Recorder::new();

    let mut first = Box::pin(nettrace::with_trace(
        first_rec.trace(),
        resolver.lookup("shared.test"),
    ));
    assert!(
        (&mut first).now_or_never().is_none(),
        "the lookup is in flight"
    );
    let others: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn(nettrace::with_trace(
                others_rec.trace(),
                resolver.lookup("shared.test"),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(first);

    assert_eq!(
        first_rec.events(),
        [
            Event::DnsStart("shared.test".into()),
            Event::DnsDone {
                host: "shared.test".into(),
                addrs: vec![],
                // It left before the result came, so it shared none (Go says the same).
                coalesced: false,
                error: Some(ResolveErrorKind::Cancelled),
            }
        ]
    );
    for other in join_all(others).await {
        assert_eq!(other.unwrap().unwrap(), [ip("127.0.0.1")]);
    }
    assert_eq!(
        others_rec.count(|e| matches!(
            e,
            Event::DnsDone {
                error: None,
                coalesced: true,
                ..
            }
        )),
        5
    );
    assert_eq!(
        server.questions(),
        2,
        "one query per family for all six callers"
    );
}

#[tokio::test]
async fn dropping_every_caller_cancels_the_lookup() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(300);
    server.insert(
        "gone.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let resolver = resolver_for(&server, Duration::from_secs(5));
    let rec = Recorder::new();

    let mut callers: Vec<_> = (0..3)
        .map(|_| {
            Box::pin(nettrace::with_trace(
                rec.trace(),
                resolver.lookup("gone.test"),
            ))
        })
        .collect();
    for caller in &mut callers {
        assert!(caller.now_or_never().is_none());
    }
    assert_eq!(resolver.in_flight(), 1);
    drop(callers);
    assert_eq!(
        resolver.in_flight(),
        0,
        "the last caller to leave removed the lookup"
    );
    assert_eq!(
        rec.count(|e| matches!(
            e,
            Event::DnsDone {
                error: Some(ResolveErrorKind::Cancelled),
                ..
            }
        )),
        3
    );

    // A new caller starts a new lookup rather than joining the cancelled one.
    let before = server.questions();
    let addrs = resolver.lookup("gone.test").await.unwrap();
    assert_eq!(addrs, [ip("127.0.0.1")]);
    assert!(server.questions() > before);
}

async fn lookup_error(entry: Entry, timeout: Duration) -> (nettrace::ResolveError, Vec<Event>) {
    let server = DnsServer::start().await;
    server.insert("fail.test", entry);
    let resolver = resolver_for(&server, timeout);
    let rec = Recorder::new();
    let err = nettrace::with_trace(rec.trace(), resolver.lookup("fail.test"))
        .await
        .unwrap_err();
    (err, rec.events())
}

fn done_with(events: &[Event], kind: ResolveErrorKind) -> bool {
    matches!(
        events,
        [Event::DnsStart(_), Event::DnsDone { error: Some(k), addrs, .. }] if *k == kind && addrs.is_empty()
    )
}

#[tokio::test]
async fn nxdomain_is_not_found() {
    let (err, events) =
        lookup_error(Entry::new().reply(Reply::NxDomain), Duration::from_secs(2)).await;
    assert_eq!(err.kind(), ResolveErrorKind::NotFound, "{err:?}");
    assert_eq!(err.name(), "fail.test");
    assert!(
        std::error::Error::source(&err).is_some(),
        "hickory's error is kept"
    );
    assert!(done_with(&events, ResolveErrorKind::NotFound), "{events:?}");
}

#[tokio::test]
async fn servfail_is_server_failure() {
    let (err, events) =
        lookup_error(Entry::new().reply(Reply::ServFail), Duration::from_secs(2)).await;
    assert_eq!(err.kind(), ResolveErrorKind::ServerFailure, "{err:?}");
    assert!(
        done_with(&events, ResolveErrorKind::ServerFailure),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_timeout() {
    let started = Instant::now();
    let (err, events) = lookup_error(
        Entry::new().reply(Reply::Silent),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(err.kind(), ResolveErrorKind::TimedOut, "{err:?}");
    assert!(done_with(&events, ResolveErrorKind::TimedOut), "{events:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn single_family_names() {
    let server = DnsServer::start().await;
    server.insert("v4only.test", Entry::new().a("127.0.0.2"));
    server.insert("v6only.test", Entry::new().aaaa("::1"));
    let resolver = resolver_for(&server, Duration::from_secs(2));
    assert_eq!(
        resolver.lookup("v4only.test").await.unwrap(),
        [ip("127.0.0.2")]
    );
    assert_eq!(resolver.lookup("v6only.test").await.unwrap(), [ip("::1")]);
}

#[tokio::test]
async fn a_name_with_no_records_is_not_found() {
    let (err, _) = lookup_error(Entry::new(), Duration::from_secs(2)).await;
    assert_eq!(err.kind(), ResolveErrorKind::NotFound, "{err:?}");
}

#[tokio::test]
async fn invalid_names_fail_before_any_hook_or_query() {
    let server = DnsServer::start().await;
    let resolver = resolver_for(&server, Duration::from_secs(2));
    let rec = Recorder::new();
    let long_name = format!("{}.test", "a.".repeat(130));
    let long_label = format!("{}.test", "b".repeat(64));
    let bad = [
        "",
        ".",
        "a..test",
        ".test",
        "a b.test",
        "tab\there.test",
        "slash/.test",
        "colon:.test",
        "percent%.test",
        "nul\0.test",
        "bücher.test",
        "-lead.test",
        "trail-.test",
        long_name.as_str(),
        long_label.as_str(),
    ];
    for name in bad {
        let err = nettrace::with_trace(rec.trace(), resolver.lookup(name))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ResolveErrorKind::InvalidName, "{name:?}: {err}");
    }
    assert!(rec.events().is_empty(), "{:?}", rec.events());
    assert_eq!(server.questions(), 0);
}

#[tokio::test]
async fn ip_literals_fire_no_hooks_and_send_no_query() {
    let server = DnsServer::start().await;
    let resolver = resolver_for(&server, Duration::from_secs(2));
    let rec = Recorder::new();
    for literal in ["127.0.0.1", "::1", "fe80::1"] {
        let addrs = nettrace::with_trace(rec.trace(), resolver.lookup(literal))
            .await
            .unwrap();
        assert_eq!(addrs, [ip(literal)]);
    }
    assert!(rec.events().is_empty());
    assert_eq!(server.questions(), 0);
}

#[tokio::test]
async fn the_wrapped_resolver_never_sees_the_callers_trace() {
    use std::sync::{Arc, Mutex};

    /// Records whether a trace is in scope when `resolve` is called and when its future
    /// runs.
    struct Peek(Arc<Mutex<Vec<bool>>>);
    impl nettrace::Resolve for Peek {
        fn resolve(&self, _host: &str) -> nettrace::Resolving {
            self.0.lock().unwrap().push(nettrace::current().is_some());
            let seen = self.0.clone();
            Box::pin(async move {
                seen.lock().unwrap().push(nettrace::current().is_some());
                Ok(vec![ip("127.0.0.1")])
            })
        }
    }

    let seen = Arc::new(Mutex::new(Vec::new()));
    let resolver = CoalescingResolver::new(Peek(seen.clone()));
    let rec = Recorder::new();
    nettrace::with_trace(rec.trace(), resolver.lookup("peek.test"))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [false, false]);
    assert_eq!(rec.events().len(), 2, "the caller's own hooks still fire");
}

#[tokio::test]
async fn names_are_shared_regardless_of_case() {
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(50);
    server.insert(
        "case.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let resolver = resolver_for(&server, Duration::from_secs(2));
    let (a, b) = tokio::join!(resolver.lookup("case.test"), resolver.lookup("CASE.test"));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(server.questions(), 2);
}

/// `x.test.` (fully qualified) and `x.test` are one name: concurrent lookups of both share
/// one lookup, asked with the first caller's spelling.
#[tokio::test]
async fn a_trailing_dot_names_the_same_host() {
    use std::sync::{Arc, Mutex};

    use nettrace::{Resolve, Resolving};

    /// Answers after 100 ms and remembers every name it was asked.
    struct Slow(Arc<Mutex<Vec<String>>>);

    impl Resolve for Slow {
        fn resolve(&self, host: &str) -> Resolving {
            self.0.lock().unwrap().push(host.to_owned());
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(vec![ip("127.0.0.1")])
            })
        }
    }

    let asked = Arc::new(Mutex::new(Vec::new()));
    let resolver = CoalescingResolver::new(Slow(asked.clone()));
    let rec = Recorder::new();

    let (a, b) = nettrace::with_trace(rec.trace(), async {
        tokio::join!(resolver.lookup("x.test"), resolver.lookup("x.test."))
    })
    .await;

    assert_eq!(a.unwrap(), [ip("127.0.0.1")]);
    assert_eq!(b.unwrap(), [ip("127.0.0.1")]);
    assert_eq!(*asked.lock().unwrap(), ["x.test"]);
    let dones: Vec<_> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::DnsDone {
                coalesced, error, ..
            } => Some((coalesced, error)),
            _ => None,
        })
        .collect();
    assert_eq!(dones, [(true, None), (true, None)]);
    assert_eq!(resolver.in_flight(), 0);
}
