//! `NetTrace::tracing()` seen through the OpenTelemetry SDK (in-memory span exporter): the
//! span tree of a dial — names, kinds, parents and attributes — as a collector gets it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nettrace::{Dialer, NetTrace, StaticResolver};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;

use crate::support::dns::{slow_v4_name, DnsServer, Entry};
use crate::support::net::{fallback_pair, BlackHole, Live};
use crate::support::otel::{attr, children, int, is_root, names, one, text, Exported};
use crate::support::record::{Event, Outcome, Recorder};

/// A port `P` with a black hole on `[::1]:P`, a live listener on `127.0.0.1:P` and
/// nothing on `127.0.0.2:P` (refused).
async fn hole_refused_live() -> (BlackHole, Live) {
    for _ in 0..20 {
        let (hole, live) = fallback_pair().await;
        if std::net::TcpListener::bind(("127.0.0.2", live.addr.port())).is_ok() {
            return (hole, live);
        }
    }
    panic!("no port free on 127.0.0.2");
}

/// Checks the attributes every socket connect span has, and returns its outcome.
fn connect_span(span: &SpanData, server: &str, peer: SocketAddr, attempt: i64) -> String {
    assert_eq!(
        span.name,
        format!("socket connect {}:{}", peer.ip(), peer.port())
    );
    assert_eq!(span.span_kind, SpanKind::Internal);
    assert_eq!(text(span, "server.address").as_deref(), Some(server));
    assert_eq!(int(span, "server.port"), Some(i64::from(peer.port())));
    let ip = peer.ip().to_string();
    assert_eq!(text(span, "network.peer.address"), Some(ip));
    assert_eq!(int(span, "network.peer.port"), Some(i64::from(peer.port())));
    assert_eq!(text(span, "network.transport").as_deref(), Some("tcp"));
    let family = if peer.is_ipv6() { "ipv6" } else { "ipv4" };
    assert_eq!(text(span, "network.type").as_deref(), Some(family));
    assert_eq!(int(span, "nettrace.attempt"), Some(attempt));
    text(span, "nettrace.outcome").expect("an outcome")
}

#[tokio::test]
async fn a_happy_eyeballs_dial_over_dns_is_a_lookup_and_its_attempts_under_the_caller() {
    let exported = Exported::install();
    let (hole, live) = hole_refused_live().await;
    let port = live.addr.port();
    // AAAA answers at once and A after 20 ms: the dial starts on the black hole, tries
    // 127.0.0.2 (refused) when the attempt delay ends, then 127.0.0.1 at once.
    let server = DnsServer::start().await;
    server.insert(
        "he.test",
        Entry::new()
            .aaaa("::1")
            .a("127.0.0.2")
            .a("127.0.0.1")
            .a_delay(Duration::from_millis(20)),
    );
    let dialer = Dialer::builder()
        .resolver(server.resolver())
        .attempt_delay(Duration::from_millis(100))
        .build();
    let dial = dialer.dial_host("he.test", port);
    let id = dial.id();
    let checkout = tracing::info_span!("checkout");
    let stream = nettrace::with_trace(NetTrace::tracing(), dial)
        .instrument(checkout)
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live.addr);

    let spans = exported.spans();
    let checkout = one(&spans, "checkout");
    assert!(is_root(checkout));
    assert_eq!(spans.len(), 5, "{:#?}", names(&spans));
    assert_eq!(children(&spans, checkout).len(), 4, "all under the caller");

    let dns = one(&spans, "DNS lookup he.test");
    assert_eq!(dns.parent_span_id, checkout.span_context.span_id());
    assert_eq!(dns.span_kind, SpanKind::Internal);
    assert_eq!(text(dns, "dns.question.name").as_deref(), Some("he.test"));
    let answers = text(dns, "dns.answers");
    assert_eq!(answers.as_deref(), Some("::1,127.0.0.2,127.0.0.1"));
    assert_eq!(attr(dns, "nettrace.coalesced"), Some(&Value::Bool(false)));
    assert_eq!(text(dns, "nettrace.outcome").as_deref(), Some("resolved"));
    assert_eq!(int(dns, "nettrace.dial_id"), Some(id.as_u64() as i64));
    assert_eq!(attr(dns, "error.type"), None);
    assert_eq!(dns.status, Status::Unset);
    let families: Vec<String> = dns
        .events
        .iter()
        .map(|e| {
            let family = e
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "nettrace.dns.family");
            format!("{} {}", e.name, family.unwrap().value)
        })
        .collect();
    assert_eq!(families, ["dns.answer ipv6", "dns.answer ipv4"]);

    let mut attempts: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name.starts_with("socket connect"))
        .collect();
    attempts.sort_by_key(|s| int(s, "nettrace.attempt"));
    let want = [
        (hole.addr, "cancelled"),
        (
            SocketAddr::new("127.0.0.2".parse().unwrap(), port),
            "failed",
        ),
        (live.addr, "connected"),
    ];
    assert_eq!(attempts.len(), want.len());
    for (i, (span, (peer, outcome))) in attempts.iter().zip(want).enumerate() {
        assert_eq!(span.parent_span_id, checkout.span_context.span_id());
        assert_eq!(connect_span(span, "he.test", peer, i as i64), outcome);
        assert_eq!(int(span, "nettrace.dial_id"), Some(id.as_u64() as i64));
        assert!(span.start_time >= dns.start_time);
    }
    let refused = attempts[1];
    assert_eq!(
        text(refused, "error.type").as_deref(),
        Some("connection_refused")
    );
    assert!(matches!(&refused.status, Status::Error { description } if !description.is_empty()));
    for ok in [attempts[0], attempts[2]] {
        assert_eq!(attr(ok, "error.type"), None);
        assert_eq!(ok.status, Status::Unset);
    }
    // Only the conventions' attributes and ours: no `otel.*` bookkeeping leaks through.
    assert!(spans
        .iter()
        .flat_map(|s| &s.attributes)
        .all(|kv| !kv.key.as_str().starts_with("otel.")));
}

#[tokio::test]
async fn a_coalesced_lookup_is_one_span_per_caller_each_under_its_own_caller() {
    let exported = Exported::install();
    let server = slow_v4_name("shared.test", Duration::from_millis(50)).await;
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let trace = NetTrace::tracing();
    let dial = |caller: &'static str| {
        let dial = dialer.dial_host("shared.test", live.addr.port());
        let id = dial.id().as_u64() as i64;
        let traced = nettrace::with_trace(trace.clone(), dial)
            .instrument(tracing::info_span!("caller", otel.name = caller));
        async move { (traced.await.unwrap(), id) }
    };
    let ((_, first), (_, second)) = tokio::join!(dial("first"), dial("second"));
    assert_eq!(server.questions_for("shared.test", "A"), 1, "one lookup");

    let spans = exported.spans();
    assert_eq!(spans.len(), 6, "{:#?}", names(&spans));
    for (caller, id) in [("first", first), ("second", second)] {
        let caller = one(&spans, caller);
        assert!(is_root(caller));
        let under = children(&spans, caller);
        assert_eq!(under.len(), 2, "{caller:#?}");
        let dns = under
            .iter()
            .find(|s| s.name == "DNS lookup shared.test")
            .unwrap();
        assert_eq!(attr(dns, "nettrace.coalesced"), Some(&Value::Bool(true)));
        assert_eq!(text(dns, "dns.answers").as_deref(), Some("127.0.0.1"));
        assert_eq!(int(dns, "nettrace.dial_id"), Some(id));
        let connect = under
            .iter()
            .find(|s| s.name.starts_with("socket connect"))
            .unwrap();
        assert_eq!(
            connect_span(connect, "shared.test", live.addr, 0),
            "connected"
        );
        assert_eq!(int(connect, "nettrace.dial_id"), Some(id));
    }
}

#[tokio::test]
async fn a_dropped_dial_ends_every_span_as_cancelled() {
    let exported = Exported::install();
    let (hole, _live) = fallback_pair().await;
    let port = hole.addr.port();

    // Dropped while its only attempt hangs.
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("dead.test", [hole.addr.ip()]))
        .build();
    let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial_host("dead.test", port))
        .instrument(tracing::info_span!("connecting"));
    let late = tokio::time::timeout(Duration::from_millis(100), dial).await;
    assert!(late.is_err(), "a black hole answered");
    // Dropped while its lookup hangs.
    let dialer = Dialer::builder()
        .resolver(crate::support::dns::Never)
        .build();
    let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial("slow.test:80"))
        .instrument(tracing::info_span!("resolving"));
    let late = tokio::time::timeout(Duration::from_millis(50), dial).await;
    assert!(late.is_err());

    // Exported means ended.
    let spans = exported.spans();
    assert_eq!(spans.len(), 5, "{:#?}", names(&spans));
    let connecting = one(&spans, "connecting");
    let under = children(&spans, connecting);
    assert_eq!(under.len(), 2);
    let dns = one(&spans, "DNS lookup dead.test");
    assert_eq!(text(dns, "nettrace.outcome").as_deref(), Some("resolved"));
    let attempt = one(&spans, &format!("socket connect ::1:{port}"));
    assert_eq!(attempt.parent_span_id, connecting.span_context.span_id());
    assert_eq!(
        connect_span(attempt, "dead.test", hole.addr, 0),
        "cancelled"
    );
    assert_eq!(attempt.status, Status::Unset, "a cancel is no error");

    let resolving = one(&spans, "resolving");
    let dns = one(&spans, "DNS lookup slow.test");
    assert_eq!(dns.parent_span_id, resolving.span_context.span_id());
    assert_eq!(text(dns, "nettrace.outcome").as_deref(), Some("cancelled"));
    assert_eq!(attr(dns, "dns.answers"), None);
    assert_eq!(dns.status, Status::Unset);
}

#[tokio::test]
async fn twenty_concurrent_dials_under_one_parent_pair_exactly() {
    let exported = Exported::install();
    let (hole, live) = hole_refused_live().await;
    let port = live.addr.port();
    let refused: IpAddr = "127.0.0.2".parse().unwrap();
    // a.test: the black hole, then the live one after the attempt delay.
    // b.test: refused, then the live one at once. Both on the same port.
    let dialer = Dialer::builder()
        .resolver(
            StaticResolver::new()
                .insert("a.test", [hole.addr.ip(), live.addr.ip()])
                .insert("b.test", [refused, live.addr.ip()]),
        )
        .attempt_delay(Duration::from_millis(100))
        .build();
    let truth = Recorder::new();
    let dials = (0..20).map(|i| {
        let name = if i % 2 == 0 { "a.test" } else { "b.test" };
        let dial = dialer.dial_host(name, port);
        // Every fourth dial gives up while its attempt to the black hole hangs.
        let limit = Duration::from_millis(if i % 4 == 0 { 30 } else { 10_000 });
        async move { tokio::time::timeout(limit, dial).await.ok() }
    });
    let all = futures_util::future::join_all(dials);
    // Spans first, then the truth, for every event.
    let all = nettrace::with_trace(NetTrace::tracing(), all);
    let all = nettrace::with_trace(truth.trace(), all);
    let results = all.instrument(tracing::info_span!("parent")).await;
    let kept: Vec<_> = results.iter().flatten().collect();
    assert_eq!(kept.len(), 15, "five dials gave up");
    for result in kept {
        result.as_ref().unwrap();
    }

    let spans = exported.spans();
    let parent = one(&spans, "parent");
    assert_eq!(
        children(&spans, parent).len(),
        spans.len() - 1,
        "all under the parent"
    );

    // What the events say, by (dial, attempt).
    let mut want: BTreeMap<(i64, i64), (SocketAddr, &str)> = BTreeMap::new();
    let mut lookups = 0;
    for (dial, event) in truth.with_ids() {
        match event {
            Event::DnsStart(_) => lookups += 1,
            Event::ConnectDone(addr, attempt, outcome) => {
                let outcome = match outcome {
                    Outcome::Connected => "connected",
                    Outcome::Failed(_) => "failed",
                    Outcome::Cancelled => "cancelled",
                };
                want.insert((dial.as_u64() as i64, attempt as i64), (addr, outcome));
            }
            _ => {}
        }
    }
    assert_eq!(lookups, 20);
    let dns: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name.starts_with("DNS lookup"))
        .collect();
    assert_eq!(dns.len(), 20);
    // What the spans say.
    let mut got = BTreeMap::new();
    for span in spans
        .iter()
        .filter(|s| s.name.starts_with("socket connect"))
    {
        let dial = int(span, "nettrace.dial_id").unwrap();
        let attempt = int(span, "nettrace.attempt").unwrap();
        let peer: IpAddr = text(span, "network.peer.address").unwrap().parse().unwrap();
        let name = dns
            .iter()
            .find(|d| int(d, "nettrace.dial_id") == Some(dial))
            .and_then(|d| text(d, "dns.question.name"))
            .expect("every attempt's dial has its lookup");
        let addr = SocketAddr::new(peer, port);
        let outcome = connect_span(span, &name, addr, attempt);
        got.insert((dial, attempt), (addr, outcome));
    }
    let got: BTreeMap<_, _> = got
        .iter()
        .map(|(k, (a, o))| (*k, (*a, o.as_str())))
        .collect();
    assert_eq!(got, want);
    // Each span ended when its own attempt did: attempts to the black hole of dials
    // that gave up end at 30 ms, those of the others at 100 ms, all "cancelled", so an
    // end paired with the wrong start would show here. (The simple exporter exports a
    // span when it ends.)
    let done_order: Vec<(i64, i64)> = truth
        .with_ids()
        .into_iter()
        .filter_map(|(dial, event)| match event {
            Event::ConnectDone(_, attempt, _) => Some((dial.as_u64() as i64, attempt as i64)),
            _ => None,
        })
        .collect();
    let end_order: Vec<(i64, i64)> = spans
        .iter()
        .filter(|s| s.name.starts_with("socket connect"))
        .map(|s| {
            (
                int(s, "nettrace.dial_id").unwrap(),
                int(s, "nettrace.attempt").unwrap(),
            )
        })
        .collect();
    assert_eq!(end_order, done_order);
    let outcomes: std::collections::BTreeSet<&str> = want.values().map(|(_, o)| *o).collect();
    assert_eq!(
        outcomes.len(),
        3,
        "connected, failed and cancelled: {outcomes:?}"
    );
}

#[cfg(all(feature = "http", feature = "tls"))]
mod requests {
    use ::http::{Request, Version};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use nettrace::{Connector, HttpClient, HttpTrace, TlsConfig};

    use super::*;
    use crate::support::http::{HttpServer, TestCa};

    async fn get(client: &HttpClient<Empty<Bytes>>, url: &str, caller: &'static str) -> Version {
        let request = Request::get(url).body(Empty::new()).unwrap();
        // One `HttpTrace::tracing()` per request.
        let send = client.send(request, HttpTrace::tracing());
        let response = send
            .instrument(tracing::info_span!("caller", otel.name = caller))
            .await
            .unwrap();
        let version = response.version();
        response.into_body().collect().await.unwrap();
        version
    }

    #[tokio::test]
    async fn a_request_that_waited_for_another_ones_h2_connection() {
        let exported = Exported::install();
        let ca = TestCa::new();
        let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
        let port = server.addr().port();
        let tls = TlsConfig::builder()
            .webpki_roots(false)
            .add_root_certificate(ca.ca_der())
            .build()
            .unwrap();
        let dialer = Dialer::builder()
            .resolver(StaticResolver::new().insert("localhost", [server.addr().ip()]))
            .build();
        let client = HttpClient::new(Connector::new(dialer).tls(tls));
        let url = format!("https://localhost:{port}/shared?sig=secret");

        // Both start before any connection exists: the first dials, the second waits for
        // that dial's HTTP/2 connection.
        let (a, b) = tokio::join!(get(&client, &url, "a"), get(&client, &url, "b"));
        assert_eq!((a, b), (Version::HTTP_2, Version::HTTP_2));
        assert_eq!(server.connections(), 1);

        let spans = exported.spans();
        let at = |what: &str| format!("{what} localhost:{port}");
        let requests: Vec<&SpanData> = spans.iter().filter(|s| s.name == "GET").collect();
        assert_eq!(requests.len(), 2, "{:#?}", names(&spans));
        let mut dialed = None;
        for caller in ["a", "b"] {
            let caller = one(&spans, caller);
            let under = children(&spans, caller);
            assert_eq!(under.len(), 1);
            let request = under[0];
            assert_eq!(request.name, "GET");
            assert_eq!(request.span_kind, SpanKind::Client);
            assert_eq!(text(request, "http.request.method").as_deref(), Some("GET"));
            let full = format!("https://localhost:{port}/shared?sig=REDACTED");
            assert_eq!(text(request, "url.full"), Some(full));
            assert_eq!(
                text(request, "server.address").as_deref(),
                Some("localhost")
            );
            assert_eq!(int(request, "server.port"), Some(i64::from(port)));
            assert_eq!(int(request, "http.response.status_code"), Some(200));
            assert_eq!(
                text(request, "network.protocol.version").as_deref(),
                Some("2")
            );
            assert_eq!(attr(request, "error.type"), None);
            assert_eq!(request.status, Status::Unset);

            let under = children(&spans, request);
            let wait: Vec<_> = under
                .iter()
                .filter(|s| s.name == at("HTTP wait_for_connection"))
                .collect();
            assert_eq!(wait.len(), 1, "{caller:?} waited");
            let wait = wait[0];
            assert_eq!(wait.span_kind, SpanKind::Internal);
            assert_eq!(text(wait, "server.address").as_deref(), Some("localhost"));
            assert_eq!(int(wait, "server.port"), Some(i64::from(port)));
            assert_eq!(text(wait, "nettrace.outcome").as_deref(), Some("got_conn"));
            assert!(wait.end_time <= request.end_time);
            let setups: Vec<_> = under
                .iter()
                .filter(|s| s.name == at("HTTP connection_setup"))
                .collect();
            match attr(wait, "nettrace.dialing") {
                Some(Value::Bool(true)) => {
                    assert_eq!(setups.len(), 1);
                    assert!(dialed.replace(*setups[0]).is_none(), "one request dialed");
                }
                Some(Value::Bool(false)) => assert!(setups.is_empty()),
                other => panic!("nettrace.dialing = {other:?}"),
            }
            assert_eq!(under.len(), 1 + setups.len(), "{under:#?}");
        }

        // The dialing request's setup holds the lookup, the attempt and the handshake.
        let setup = dialed.expect("a request dialed");
        assert_eq!(setup.span_kind, SpanKind::Internal);
        assert_eq!(
            text(setup, "nettrace.outcome").as_deref(),
            Some("connected")
        );
        let dial = int(setup, "nettrace.dial_id");
        let mut under: Vec<String> = children(&spans, setup)
            .iter()
            .map(|s| {
                assert_eq!(int(s, "nettrace.dial_id"), dial, "{s:#?}");
                assert_eq!(s.span_kind, SpanKind::Internal);
                s.name.to_string()
            })
            .collect();
        under.sort();
        assert_eq!(
            under,
            [
                "DNS lookup localhost".to_owned(),
                "TLS client handshake localhost".to_owned(),
                format!("socket connect 127.0.0.1:{port}"),
            ]
        );
        let tls = one(&spans, "TLS client handshake localhost");
        assert_eq!(text(tls, "tls.protocol.version").as_deref(), Some("1.3"));
        assert_eq!(text(tls, "tls.next_protocol").as_deref(), Some("h2"));
        assert!(text(tls, "tls.cipher").is_some_and(|c| c.starts_with("TLS13_")));
        // Ours: requests, waits, the setup and its three (hyper and h2 make spans too).
        let ours = spans
            .iter()
            .filter(|s| {
                s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str().starts_with("nettrace."))
            })
            .count();
        assert_eq!(ours, 2 + 2 + 1 + 3, "{:#?}", names(&spans));
    }

    #[tokio::test]
    async fn a_request_that_fails_to_connect_has_error_type_and_an_error_status() {
        let exported = Exported::install();
        let refused = crate::support::net::refused("127.0.0.1");
        let dialer = Dialer::builder()
            .resolver(StaticResolver::new().insert("down.test", [refused.ip()]))
            .build();
        let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(dialer));
        let url = format!("http://down.test:{}/", refused.port());

        let request = Request::get(&url).body(Empty::new()).unwrap();
        let err = client
            .send(request, HttpTrace::tracing())
            .instrument(tracing::info_span!("caller", otel.name = "failing"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), nettrace::HttpErrorKind::Connect);

        let spans = exported.spans();
        let caller = one(&spans, "failing");
        let under = children(&spans, caller);
        assert_eq!(under.len(), 1, "{:#?}", names(&spans));
        let request = under[0];
        assert_eq!(request.name, "GET");
        assert_eq!(
            text(request, "error.type").as_deref(),
            Some("connection_error")
        );
        assert_eq!(text(request, "nettrace.outcome").as_deref(), Some("failed"));
        assert!(
            matches!(request.status, Status::Error { .. }),
            "{:?}",
            request.status
        );
        let setup = one(
            &spans,
            &format!("HTTP connection_setup down.test:{}", refused.port()),
        );
        assert_eq!(setup.parent_span_id, request.span_context.span_id());
        assert_eq!(text(setup, "nettrace.outcome").as_deref(), Some("failed"));
    }
}
