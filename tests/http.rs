//! The traced hyper connector and HTTP tracer against real hyper servers on loopback, with
//! real rustls handshakes on a generated certificate.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http_body_util::{BodyExt, Empty};
use nettrace::{
    AttemptOutcome, ConnectError, ConnectOutcome, Connector, Dialer, HttpClient, HttpTrace,
    NetTrace, StaticResolver, Timings, TimingsRecorder, TlsConfig,
};

use crate::support::dns::{static_dialer, DnsServer, Entry};
use crate::support::http::{get, HttpServer, Log, TestCa};
use crate::support::net::BlackHole;

/// An HTTP trace that logs every hook as one line.
trait LogTrace {
    fn trace(&self) -> HttpTrace;
}

impl LogTrace for Log {
    fn trace(&self) -> HttpTrace {
        let l = || self.clone();
        let (a, b, c, d, e, f, g, h, i, j) = (l(), l(), l(), l(), l(), l(), l(), l(), l(), l());
        HttpTrace::new()
            .on_get_conn(move |_| a.push("get_conn".into()))
            .net(
                NetTrace::new()
                    .on_dns_start(move |_| b.push("dns_start".into()))
                    .on_dns_done(move |_| c.push("dns_done".into()))
                    .on_connect_start(move |_| d.push("connect_start".into()))
                    .on_connect_done(move |ev| {
                        e.push(match ev.outcome {
                            ConnectOutcome::Connected => "connected".into(),
                            ConnectOutcome::Failed(_) => "connect_failed".into(),
                            _ => "connect_cancelled".into(),
                        })
                    }),
            )
            .on_tls_handshake_start(move |_| f.push("tls_start".into()))
            .on_tls_handshake_done(move |ev| match ev.error {
                None => g.push(format!(
                    "tls_done {} {}",
                    ev.version.unwrap_or("-"),
                    String::from_utf8_lossy(ev.alpn.unwrap_or(b"-"))
                )),
                Some(err) => g.push(format!("tls_failed {:?}", err.kind())),
            })
            .on_got_conn(move |ev| h.push(format!("got_conn reused={}", ev.reused)))
            .on_wrote_request(move |_| i.push("wrote_request".into()))
            .on_got_first_response_byte(move |ev| {
                j.push(format!("first_byte {}", ev.status.as_u16()))
            })
    }
}

/// Sends one GET with a recorder (and the log's hooks) and reads the body.
async fn timed(
    client: &HttpClient<Empty<Bytes>>,
    url: &str,
    log: &Log,
) -> (Timings, Version, Bytes) {
    let recorder = TimingsRecorder::new();
    let trace = recorder.trace().and(log.trace());
    let response = client.send(get(url), trace).await.unwrap();
    assert_eq!(response.status(), 200);
    let version = response.version();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (recorder.timings(), version, body)
}

fn assert_ordered(t: &Timings) {
    let phases = [
        t.namelookup,
        t.connect,
        t.appconnect,
        t.pretransfer,
        t.starttransfer,
        t.total,
    ];
    let present: Vec<Duration> = phases.into_iter().flatten().collect();
    assert!(present.windows(2).all(|w| w[0] <= w[1]), "{t:#?}");
}

#[tokio::test]
async fn http1_plain_fires_every_hook_once_in_order() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client = HttpClient::new(Connector::new(static_dialer(
        "plain.test",
        &[server.addr()],
    )));
    let log = Log::default();

    let url = format!("http://plain.test:{}/a", server.addr().port());
    let (t, version, body) = timed(&client, &url, &log).await;

    assert_eq!(body, "hello from /a");
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(
        log.lines(),
        [
            "get_conn",
            "dns_start",
            "dns_done",
            "connect_start",
            "connected",
            "got_conn reused=false",
            "wrote_request",
            "first_byte 200",
        ]
    );
    assert!(!t.reused);
    assert!(
        t.namelookup.is_some() && t.connect.is_some() && t.appconnect.is_none(),
        "{t:#?}"
    );
    assert!(t.pretransfer.is_some() && t.starttransfer.is_some() && t.total.is_some());
    assert_ordered(&t);
    assert_eq!(t.remote_addr, Some(server.addr()));
    assert_eq!(t.http_version, Some(Version::HTTP_11));
    assert_eq!(t.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(t.attempts.len(), 1);
    assert_eq!(t.attempts[0].outcome, AttemptOutcome::Connected);
}

#[tokio::test]
async fn a_kept_alive_connection_is_reused_without_dns_or_connect() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client = HttpClient::new(Connector::new(static_dialer("keep.test", &[server.addr()])));
    let url = format!("http://keep.test:{}/", server.addr().port());
    let first = Log::default();
    let (t1, _, _) = timed(&client, &url, &first).await;
    assert!(!t1.reused);

    let second = Log::default();
    let (t2, _, _) = timed(&client, &url, &second).await;
    assert!(t2.reused);
    assert_eq!(
        second.lines(),
        [
            "get_conn",
            "got_conn reused=true",
            "wrote_request",
            "first_byte 200"
        ]
    );
    assert!(t2.namelookup.is_none() && t2.connect.is_none() && t2.attempts.is_empty());
    assert_ordered(&t2);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn server_think_time_lands_between_pretransfer_and_starttransfer() {
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(200));
    let client = HttpClient::new(Connector::new(Dialer::new()));
    let url = format!("http://{}/slow", server.addr());
    let (t, _, _) = timed(&client, &url, &Log::default()).await;
    let think = t.starttransfer.unwrap() - t.pretransfer.unwrap();
    assert!(think >= Duration::from_millis(200), "{think:?}");
    assert!(t.namelookup.is_none(), "an IP literal needs no lookup");
}

fn tls_client(ca: &TestCa, name: &str, addr: SocketAddr) -> HttpClient<Empty<Bytes>> {
    let tls = TlsConfig::builder()
        .webpki_roots(false)
        .add_root_pem(&ca.ca_pem())
        .build()
        .unwrap();
    HttpClient::new(Connector::new(static_dialer(name, &[addr])).tls(tls))
}

#[tokio::test]
async fn https_negotiates_http2_or_http1_by_alpn() {
    let ca = TestCa::new();
    for (alpn, version, expected) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Version::HTTP_2, "h2"),
        (&[b"http/1.1".as_slice()][..], Version::HTTP_11, "http/1.1"),
    ] {
        let server = HttpServer::tls("127.0.0.1", &ca, alpn).await;
        let client = tls_client(&ca, "localhost", server.addr());
        let log = Log::default();
        let url = format!("https://localhost:{}/tls", server.addr().port());
        let (t, got_version, body) = timed(&client, &url, &log).await;

        assert_eq!(body, "hello from /tls");
        assert_eq!(got_version, version);
        assert_eq!(t.http_version, Some(version));
        assert!(t.appconnect.is_some(), "{t:#?}");
        assert!(t.connect.unwrap() <= t.appconnect.unwrap());
        assert_ordered(&t);
        assert_eq!(t.alpn.as_deref(), Some(expected.as_bytes()));
        assert!(t.tls_version.is_some() && t.tls_cipher.is_some());
        let lines = log.lines();
        let tls_start = lines.iter().position(|l| l == "tls_start").unwrap();
        let tls_done = lines
            .iter()
            .position(|l| l.starts_with("tls_done"))
            .unwrap();
        let connected = lines.iter().position(|l| l == "connected").unwrap();
        let got_conn = lines
            .iter()
            .position(|l| l.starts_with("got_conn"))
            .unwrap();
        assert!(
            connected < tls_start && tls_start < tls_done && tls_done < got_conn,
            "{lines:?}"
        );
        assert!(lines[tls_done].ends_with(expected), "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("tls_")).count(), 2);
    }
}

#[tokio::test]
async fn a_wrong_ca_fails_clearly_and_the_hook_carries_the_error() {
    let server_ca = TestCa::new();
    let other_ca = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &server_ca, &[b"http/1.1"]).await;
    let client = tls_client(&other_ca, "localhost", server.addr());
    let log = Log::default();
    let url = format!("https://localhost:{}/", server.addr().port());

    let err = client.send(get(&url), log.trace()).await.unwrap_err();

    assert_eq!(err.kind(), nettrace::HttpErrorKind::Connect, "{err:?}");
    let connect = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<ConnectError>())
        .expect("the connector's error is the source");
    assert!(std::ptr::eq(connect, err.connect_error().unwrap()));
    assert!(matches!(connect, ConnectError::Tls { server_name, .. } if server_name == "localhost"));
    let chain = format!("{:?}", connect);
    assert!(chain.contains("InvalidCertificate"), "{chain}");
    let lines = log.lines();
    assert!(
        lines.contains(&"tls_failed InvalidData".to_string()),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("got_conn")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn concurrent_requests_each_see_only_their_own_events() {
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(50));
    let client = HttpClient::new(Connector::new(static_dialer(
        "fresh.test",
        &[server.addr()],
    )));
    let url = format!("http://fresh.test:{}/", server.addr().port());
    let (a, b) = (Log::default(), Log::default());
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let (client, url, a) = (client.clone(), url.clone(), a.clone());
            async move { timed(&client, &url, &a).await }
        }),
        tokio::spawn({
            let (client, url, b) = (client.clone(), url.clone(), b.clone());
            async move { timed(&client, &url, &b).await }
        }),
    );
    let (ta, tb) = (ra.unwrap().0, rb.unwrap().0);
    for (log, t) in [(a, ta), (b, tb)] {
        let lines = log.lines();
        // Each request dialed once and saw exactly one of each event of its own.
        for event in [
            "get_conn",
            "dns_start",
            "dns_done",
            "connect_start",
            "connected",
            "wrote_request",
            "first_byte 200",
        ] {
            assert_eq!(
                lines.iter().filter(|l| *l == event).count(),
                1,
                "{event}: {lines:?}"
            );
        }
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("got_conn")).count(),
            1,
            "{lines:?}"
        );
        assert_ordered(&t);
    }
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn happy_eyeballs_fallback_shows_both_attempts_in_the_timings() {
    // A live HTTP server on 127.0.0.1:P and a black hole on [::1]:P.
    let (server, hole) = loop {
        let server = HttpServer::plain("127.0.0.1").await;
        let port = server.addr().port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            break (server, BlackHole::on_port("::1", port).await);
        }
    };
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("dual.test", [hole.addr.ip(), server.addr().ip()]))
        .attempt_delay(Duration::from_millis(50))
        .build();
    let client = HttpClient::new(Connector::new(dialer));
    let url = format!("http://dual.test:{}/", server.addr().port());
    let (t, _, body) = timed(&client, &url, &Log::default()).await;

    assert_eq!(body, "hello from /");
    assert_eq!(t.attempts.len(), 2, "{t:#?}");
    assert_eq!(t.attempts[0].addr, hole.addr);
    assert_eq!(t.attempts[0].outcome, AttemptOutcome::Cancelled);
    assert_eq!(t.attempts[1].addr, server.addr());
    assert_eq!(t.attempts[1].outcome, AttemptOutcome::Connected);
    assert!(t.attempts[1].start >= t.attempts[0].start + Duration::from_millis(50));
    assert_eq!(t.remote_addr, Some(server.addr()));
    assert_ordered(&t);
}

#[tokio::test]
async fn each_family_answer_has_its_own_time() {
    // A live HTTP server on [::1]:P; 127.0.0.1:P refuses.
    let server = loop {
        let server = HttpServer::plain("::1").await;
        if std::net::TcpListener::bind(("127.0.0.1", server.addr().port())).is_ok() {
            break server;
        }
    };
    let dns = DnsServer::start().await;
    let late = Duration::from_millis(200);
    dns.insert(
        "late6.test",
        Entry::new().a("127.0.0.1").aaaa("::1").aaaa_delay(late),
    );
    let dialer = Dialer::builder().resolver(dns.resolver()).build();
    let client = HttpClient::new(Connector::new(dialer));
    let url = format!("http://late6.test:{}/", server.addr().port());
    let (t, _, body) = timed(&client, &url, &Log::default()).await;

    assert_eq!(body, "hello from /");
    // A answers at once and its address refuses; the dial waits for AAAA, which is late.
    let (v4, v6) = (t.dns_answer_ipv4.unwrap(), t.dns_answer_ipv6.unwrap());
    assert!(v4 < late, "{t:#?}");
    assert!(v6 >= late, "{t:#?}");
    assert!(t.namelookup.unwrap() >= v6, "{t:#?}");
    assert_eq!(t.attempts.len(), 2, "{t:#?}");
    assert!(matches!(
        t.attempts[0].outcome,
        AttemptOutcome::Failed { .. }
    ));
    assert!(
        t.attempts[0].start >= v4 && t.attempts[0].start < v6,
        "{t:#?}"
    );
    assert_eq!(t.attempts[1].addr, server.addr());
    assert_eq!(t.attempts[1].outcome, AttemptOutcome::Connected);
    assert!(t.attempts[1].start >= v6, "{t:#?}");
    assert_ordered(&t);

    // A reused connection has no lookup, so no answers.
    let (t, _, _) = timed(&client, &url, &Log::default()).await;
    assert!(t.reused);
    assert_eq!((t.dns_answer_ipv4, t.dns_answer_ipv6), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_shared_http2_connection_only_the_dialer_is_new() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://h2.test:{}/", server.addr().port());
    for round in 0..40 {
        let client: HttpClient<Empty<Bytes>> =
            HttpClient::builder(Connector::new(static_dialer("h2.test", &[server.addr()])))
                .http2_only(true)
                .build();
        let logs: Vec<Log> = (0..4).map(|_| Log::default()).collect();
        let requests = logs.iter().map(|log| {
            let (client, url, log) = (client.clone(), url.clone(), log.clone());
            tokio::spawn(async move { timed(&client, &url, &log).await })
        });
        let results = futures_util::future::join_all(requests).await;
        for (log, result) in logs.iter().zip(results) {
            let (t, version, _) = result.unwrap();
            assert_eq!(version, Version::HTTP_2);
            let lines = log.lines();
            let position = |p: &dyn Fn(&String) -> bool| lines.iter().position(p);
            let got_conn = position(&|l| l.starts_with("got_conn")).unwrap();
            let wrote = position(&|l| l == "wrote_request").unwrap();
            let first_byte = position(&|l| l == "first_byte 200").unwrap();
            assert!(
                got_conn < wrote && wrote < first_byte,
                "round {round}: {lines:?}"
            );
            // New only on a connection this request dialed itself, which therefore
            // connected before it got it; then the timings show that dial.
            let connected = position(&|l| l == "connected");
            if !t.reused {
                assert!(
                    connected.is_some_and(|c| c < got_conn),
                    "round {round}: new, but not dialed by this request: {lines:?}"
                );
                assert!(
                    t.connect.is_some() && !t.attempts.is_empty(),
                    "round {round}: {t:#?}"
                );
            } else {
                assert!(
                    t.connect.is_none() && t.attempts.is_empty(),
                    "round {round}: {t:#?}"
                );
            }
        }
    }
}
