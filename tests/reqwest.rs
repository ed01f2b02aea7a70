//! `nettrace::reqwest`: a real reqwest `Client` with the `Resolver` and the `ConnectLayer`,
//! against a hyper server and the DNS server, both on loopback.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::reqwest::{ConnectLayer, Resolver};
use nettrace::{ConnectOutcome, DialId, Family, NetTrace, ResolveErrorKind};

use crate::support::dns::{DnsServer, Entry, Reply};
use crate::support::http::HttpServer;

/// One event as a [`Log`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    DnsStart(String),
    DnsAnswer(Family, Vec<IpAddr>, Option<ResolveErrorKind>),
    DnsDone {
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<ResolveErrorKind>,
    },
    SetupStart(Option<String>, Option<u16>),
    SetupDone(Option<SocketAddr>, Outcome),
    /// A connection attempt: reqwest dials itself, so there must be none.
    Attempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Connected,
    Failed(io::ErrorKind),
    Cancelled,
}

/// Every event of one trace, with its dial id and when it fired.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(Instant, DialId, Ev)>>>);

impl Log {
    fn push(&self, dial: DialId, ev: Ev) {
        self.0.lock().unwrap().push((Instant::now(), dial, ev));
    }

    fn trace(&self) -> NetTrace {
        let (a, b, c, d, e, f, g) = (
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
        );
        NetTrace::new()
            .on_dns_start(move |ev| a.push(ev.dial, Ev::DnsStart(ev.host.into())))
            .on_dns_answer(move |ev| {
                let error = ev.error.map(|err| err.kind());
                b.push(ev.dial, Ev::DnsAnswer(ev.family, ev.addrs.to_vec(), error))
            })
            .on_dns_done(move |ev| {
                c.push(
                    ev.dial,
                    Ev::DnsDone {
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|err| err.kind()),
                    },
                )
            })
            .on_connection_setup_start(move |ev| {
                d.push(ev.dial, Ev::SetupStart(ev.host.map(Into::into), ev.port))
            })
            .on_connection_setup_done(move |ev| {
                let outcome = match ev.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) => Outcome::Failed(err.kind()),
                    ConnectOutcome::Cancelled => Outcome::Cancelled,
                    _ => unreachable!("new outcome"),
                };
                e.push(ev.dial, Ev::SetupDone(ev.peer, outcome))
            })
            .on_connect_start(move |ev| f.push(ev.dial, Ev::Attempt))
            .on_connect_done(move |ev| g.push(ev.dial, Ev::Attempt))
    }

    fn all(&self) -> Vec<(Instant, DialId, Ev)> {
        self.0.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<(DialId, Ev)> {
        self.all().into_iter().map(|(_, d, e)| (d, e)).collect()
    }

    fn count(&self, pred: impl Fn(&Ev) -> bool) -> usize {
        self.events().iter().filter(|(_, e)| pred(e)).count()
    }

    /// Waits (up to 10 s) until `pred` holds for `n` events.
    async fn wait_for(&self, n: usize, pred: impl Fn(&Ev) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count(&pred) < n {
            assert!(Instant::now() < deadline, "timed out: {:#?}", self.events());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asserts that every start has exactly one done of the same id after it, and that
    /// a lookup's answers come between its start and its done.
    fn assert_pairs(&self) {
        let events = self.events();
        let ids: BTreeSet<DialId> = events.iter().map(|(d, _)| *d).collect();
        for id in ids {
            let mine: Vec<&Ev> = events
                .iter()
                .filter(|(d, _)| *d == id)
                .map(|(_, e)| e)
                .collect();
            let shape: Vec<&str> = mine
                .iter()
                .map(|e| match e {
                    Ev::DnsStart(_) => "dns_start",
                    Ev::DnsAnswer(..) => "answer",
                    Ev::DnsDone { .. } => "dns_done",
                    Ev::SetupStart(..) => "setup_start",
                    Ev::SetupDone(..) => "setup_done",
                    Ev::Attempt => "attempt",
                })
                .collect();
            let ok = shape == ["dns_start", "answer", "answer", "dns_done"]
                || shape == ["setup_start", "setup_done"];
            assert!(ok, "{id}: {shape:?}: {mine:#?}");
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A client with the resolver (asking only `dns`) and the layer, and no proxy.
fn client(dns: &DnsServer) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(Resolver::new(dns.resolver())))
        .connector_layer(ConnectLayer::new())
        .no_proxy()
        .build()
        .unwrap()
}

/// GET `url` inside a scope with `log`'s trace; returns the body.
async fn get(client: &reqwest::Client, log: &Log, url: String) -> reqwest::Result<String> {
    nettrace::with_trace(log.trace(), async {
        client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    })
    .await
}

#[tokio::test]
async fn one_request_reports_its_lookup_and_connection_setup_and_reuse_reports_nothing() {
    let dns = DnsServer::start().await;
    dns.insert("api.test", Entry::new().a("127.0.0.1"));
    let server = HttpServer::plain("127.0.0.1").await;
    let port = server.addr().port();
    let client = client(&dns);

    let log = Log::default();
    let body = get(&client, &log, format!("http://api.test:{port}/one"))
        .await
        .unwrap();
    assert_eq!(body, "hello from /one");
    log.assert_pairs();

    let events = log.events();
    let names: Vec<String> = events
        .iter()
        .map(|(_, e)| format!("{e:?}").split('(').next().unwrap().to_owned())
        .map(|s| s.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "SetupStart",
            "DnsStart",
            "DnsAnswer",
            "DnsAnswer",
            "DnsDone",
            "SetupDone"
        ],
        "{events:#?}"
    );
    let (setup, lookup) = (events[0].0, events[1].0);
    assert_ne!(setup, lookup, "the lookup has an id of its own");
    assert_eq!(
        events[0].1,
        Ev::SetupStart(Some("api.test".into()), Some(port))
    );
    assert_eq!(events[1].1, Ev::DnsStart("api.test".into()));
    let answers: BTreeSet<String> = events[2..4].iter().map(|(_, e)| format!("{e:?}")).collect();
    let v4 = format!(
        "{:?}",
        Ev::DnsAnswer(Family::Ipv4, vec![ip("127.0.0.1")], None)
    );
    assert!(answers.contains(&v4), "{answers:?}");
    assert!(
        matches!(&events[2..4], [(_, Ev::DnsAnswer(f1, ..)), (_, Ev::DnsAnswer(f2, ..))] if f1 != f2)
    );
    assert_eq!(
        events[4].1,
        Ev::DnsDone {
            addrs: vec![ip("127.0.0.1")],
            coalesced: false,
            error: None
        }
    );
    assert_eq!(
        events[5].1,
        Ev::SetupDone(Some(server.addr()), Outcome::Connected)
    );

    // The second request takes the pooled connection: no lookup, no setup.
    let again = Log::default();
    let body = get(&client, &again, format!("http://api.test:{port}/two"))
        .await
        .unwrap();
    assert_eq!(body, "hello from /two");
    assert_eq!(again.events(), []);
    assert_eq!(server.connections(), 1);
    assert_eq!(dns.questions_for("api.test", "A"), 1);
}

#[tokio::test]
async fn twenty_concurrent_requests_to_a_cold_name_share_one_lookup() {
    let dns = DnsServer::start().await;
    // Slow answers: every request asks before the first answer comes.
    let delay = Duration::from_millis(300);
    dns.insert(
        "cold.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let server = HttpServer::plain("127.0.0.1").await;
    let port = server.addr().port();
    let client = client(&dns);

    let log = Log::default();
    let requests = (0..20).map(|i| get(&client, &log, format!("http://cold.test:{port}/{i}")));
    let bodies = futures_util::future::join_all(requests).await;
    for (i, body) in bodies.into_iter().enumerate() {
        assert_eq!(body.unwrap(), format!("hello from /{i}"));
    }
    // A request may take a connection another request made and leave its own setup to
    // finish in the background (see `a_connect_moved_to_the_background_...`): wait.
    log.wait_for(20, |e| matches!(e, Ev::SetupDone(..))).await;
    log.assert_pairs();

    let events = log.events();
    let lookups: BTreeSet<DialId> = events
        .iter()
        .filter(|(_, e)| matches!(e, Ev::DnsStart(_)))
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(lookups.len(), 20, "one lookup (one id) per connect");
    let dones: Vec<&Ev> = events
        .iter()
        .filter(|(_, e)| matches!(e, Ev::DnsDone { .. }))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(dones.len(), 20);
    let shared = Ev::DnsDone {
        addrs: vec![ip("127.0.0.1")],
        coalesced: true,
        error: None,
    };
    assert!(dones.iter().all(|e| **e == shared), "{dones:#?}");
    // Every answer says so too.
    assert_eq!(
        log.count(|e| matches!(e, Ev::DnsAnswer(..))),
        40,
        "{events:#?}"
    );
    // One query per family reached the server (a retry at most).
    assert!(dns.questions_for("cold.test", "A") <= 2);
    assert!(dns.questions_for("cold.test", "AAAA") <= 2);
    assert!(dns.questions_for("cold.test", "A") >= 1);
    assert_eq!(log.count(|e| matches!(e, Ev::SetupStart(..))), 20);
    assert_eq!(
        log.count(|e| matches!(e, Ev::SetupDone(Some(_), Outcome::Connected))),
        20
    );
    assert_eq!(log.count(|e| *e == Ev::Attempt), 0);
}

#[tokio::test]
async fn nxdomain_is_a_connect_error_with_one_failed_lookup() {
    let dns = DnsServer::start().await;
    dns.insert("gone.test", Entry::new().reply(Reply::NxDomain));
    let client = client(&dns);

    let log = Log::default();
    let err = get(&client, &log, "http://gone.test:8080/".into())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // The resolver's own error is among the causes.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut found = None;
    while let Some(e) = cause {
        found = found.or(e.downcast_ref::<nettrace::ResolveError>());
        cause = e.source();
    }
    assert_eq!(
        found.map(|e| e.kind()),
        Some(ResolveErrorKind::NotFound),
        "{err:?}"
    );
    log.assert_pairs();

    let dns_dones: Vec<Ev> = log
        .events()
        .into_iter()
        .filter(|(_, e)| matches!(e, Ev::DnsDone { .. }))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(
        dns_dones,
        [Ev::DnsDone {
            addrs: vec![],
            coalesced: false,
            error: Some(ResolveErrorKind::NotFound)
        }]
    );
    let events = log.events();
    assert!(
        matches!(&events[..], [(_, Ev::SetupStart(Some(h), Some(8080))), .., (_, Ev::SetupDone(None, Outcome::Failed(_)))] if h == "gone.test"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_dropped_request_leaves_no_start_without_its_done() {
    let dns = DnsServer::start().await;
    dns.insert(
        "slow.test",
        Entry::new()
            .a("127.0.0.1")
            .a_delay(Duration::from_secs(5))
            .aaaa_delay(Duration::from_secs(5)),
    );
    let client = client(&dns);

    let log = Log::default();
    let request = get(&client, &log, "http://slow.test:8080/".into());
    let dropped = tokio::time::timeout(Duration::from_millis(200), request).await;
    assert!(
        dropped.is_err(),
        "the request must still be waiting for DNS"
    );
    log.assert_pairs();

    let events: Vec<Ev> = log.events().into_iter().map(|(_, e)| e).collect();
    let cancelled = Some(ResolveErrorKind::Cancelled);
    assert_eq!(events.len(), 6, "{events:#?}");
    assert_eq!(
        events[0],
        Ev::SetupStart(Some("slow.test".into()), Some(8080))
    );
    assert_eq!(events[1], Ev::DnsStart("slow.test".into()));
    assert!(events[2..4].iter().all(
        |e| matches!(e, Ev::DnsAnswer(_, addrs, err) if addrs.is_empty() && *err == cancelled)
    ));
    assert_eq!(
        events[4],
        Ev::DnsDone {
            addrs: vec![],
            coalesced: false,
            error: cancelled
        }
    );
    // The connect's own events first, then the setup's.
    assert_eq!(events[5], Ev::SetupDone(None, Outcome::Cancelled));
}

/// Finds out what happens when hyper-util's pool moves a connect to a background task: a
/// request B that finds no idle connection starts its own, but request A's connection
/// frees up first and B takes it. B's lookup and setup started under B's trace and keep
/// reporting to it from the background, after B's response has come.
#[tokio::test]
async fn a_connect_moved_to_the_background_keeps_reporting_to_its_request() {
    let dns = DnsServer::start().await;
    dns.insert("bg.test", Entry::new().a("127.0.0.1"));
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(300));
    let port = server.addr().port();
    let client = client(&dns);
    let url = format!("http://bg.test:{port}/");

    let (a_log, b_log) = (Log::default(), Log::default());
    let a = tokio::spawn({
        let (client, log, url) = (client.clone(), a_log.clone(), url.clone());
        async move { get(&client, &log, url).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.requests() < 1 {
        assert!(Instant::now() < deadline, "request A never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A is on the server (for 300 ms). B's lookup takes 2 s: A's connection frees up first.
    let slow = Duration::from_secs(2);
    dns.insert(
        "bg.test",
        Entry::new().a("127.0.0.1").a_delay(slow).aaaa_delay(slow),
    );
    let b_body = get(&client, &b_log, url).await.unwrap();
    let b_ended = Instant::now();
    assert_eq!(b_body, "hello from /");
    assert_eq!(a.await.unwrap().unwrap(), "hello from /");
    assert_eq!(server.connections(), 1, "B was served on A's connection");

    // B's setup started under B's trace, and had not ended when B's response came.
    let so_far: Vec<Ev> = b_log.events().into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        so_far,
        [
            Ev::SetupStart(Some("bg.test".into()), Some(port)),
            Ev::DnsStart("bg.test".into()),
        ]
    );
    // It goes on in the background, reporting to B's trace, and pools its connection.
    b_log.wait_for(1, |e| matches!(e, Ev::SetupDone(..))).await;
    b_log.assert_pairs();
    let late: Vec<(Instant, Ev)> = b_log
        .all()
        .into_iter()
        .skip(2)
        .map(|(at, _, e)| (at, e))
        .collect();
    assert!(late.iter().all(|(at, _)| *at > b_ended), "{late:#?}");
    assert_eq!(
        late.last().unwrap().1,
        Ev::SetupDone(Some(server.addr()), Outcome::Connected)
    );
    assert!(late.iter().any(|(_, e)| *e
        == Ev::DnsDone {
            addrs: vec![ip("127.0.0.1")],
            coalesced: false,
            error: None
        }));
    assert_eq!(server.connections(), 2);
    // A's trace saw only A's own connect.
    assert_eq!(a_log.count(|e| matches!(e, Ev::SetupStart(..))), 1);
    assert_eq!(a_log.count(|e| matches!(e, Ev::DnsStart(..))), 1);
}

#[cfg(feature = "tracing")]
mod spans {
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry::Value;
    use opentelemetry_sdk::trace::SpanData;

    use super::*;
    use crate::support::otel::{attr, Exported};

    #[tokio::test]
    async fn each_connection_setup_is_an_http_connection_setup_span() {
        let exported = Exported::install();

        let dns = DnsServer::start().await;
        dns.insert("api.test", Entry::new().a("127.0.0.1"));
        dns.insert("gone.test", Entry::new().reply(Reply::NxDomain));
        let server = HttpServer::plain("127.0.0.1").await;
        let port = server.addr().port();
        let client = client(&dns);

        let ok = client.get(format!("http://api.test:{port}/")).send();
        let response = nettrace::with_trace(NetTrace::tracing(), ok).await.unwrap();
        assert_eq!(response.status(), 200);
        let failed = client.get("http://gone.test:81/").send();
        let err = nettrace::with_trace(NetTrace::tracing(), failed)
            .await
            .unwrap_err();
        assert!(err.is_connect());

        let spans = exported.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        let ok_name = format!("HTTP connection_setup api.test:{port}");
        assert_eq!(
            names,
            [
                "DNS lookup api.test",
                &ok_name,
                "DNS lookup gone.test",
                "HTTP connection_setup gone.test:81"
            ]
        );
        let (ok, failed) = (&spans[1], &spans[3]);
        for span in [ok, failed] {
            assert_eq!(span.span_kind, SpanKind::Internal);
        }
        let string = |span: &SpanData, key: &str| attr(span, key).map(|v| v.as_str().into_owned());
        assert_eq!(string(ok, "server.address").as_deref(), Some("api.test"));
        assert_eq!(attr(ok, "server.port"), Some(&Value::I64(i64::from(port))));
        assert_eq!(
            string(ok, "network.peer.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            attr(ok, "network.peer.port"),
            Some(&Value::I64(i64::from(port)))
        );
        assert_eq!(string(ok, "nettrace.outcome").as_deref(), Some("connected"));
        assert_eq!(ok.status, Status::Unset);
        assert_eq!(
            string(failed, "nettrace.outcome").as_deref(),
            Some("failed")
        );
        assert!(string(failed, "error.type").is_some());
        assert!(matches!(failed.status, Status::Error { .. }));
    }
}
