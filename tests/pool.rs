//! The HTTP client's pool tells each request its own story (DESIGN.md §6, "HTTP
//! attribution"): Go's reuse rules, only a request's own events and none after it ends,
//! one HTTP/2 connection per origin, idle timeout, closed connections never reused.
//! Real hyper servers (h1, h2c, TLS h2) and a real DNS server, on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use nettrace::{
    ConnectOutcome, Connector, Dialer, HttpClient, HttpTrace, NetTrace, ResolveErrorKind, Timings,
    TimingsRecorder, TlsConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::dns::{static_dialer, DnsServer, Entry};
use crate::support::http::{get, HttpServer, Log, TestCa};
use crate::support::net::BlackHole;

/// Every hook of one request, one line each.
trait LogTrace {
    fn trace(&self) -> HttpTrace;
}

impl LogTrace for Log {
    fn trace(&self) -> HttpTrace {
        let l = || self.clone();
        let (a, b, c, d, e, f, g, h, i, j) = (l(), l(), l(), l(), l(), l(), l(), l(), l(), l());
        HttpTrace::new()
            .on_get_conn(move |_| a.push("get_conn".into()))
            .on_wait_for_conn(move |e| i.push(format!("wait_for_conn dialing={}", e.dialing)))
            .net(
                NetTrace::new()
                    .on_dns_start(move |_| b.push("dns_start".into()))
                    .on_dns_done(move |ev| {
                        c.push(match ev.error {
                            None => "dns_done".into(),
                            Some(err) if err.kind() == ResolveErrorKind::Cancelled => {
                                "dns_done cancelled".into()
                            }
                            Some(err) => format!("dns_done {err}"),
                        })
                    })
                    .on_connect_start(move |ev| d.push(format!("connect_start {}", ev.addr)))
                    .on_connect_done(move |ev| {
                        e.push(match ev.outcome {
                            ConnectOutcome::Connected => format!("connected {}", ev.addr),
                            ConnectOutcome::Detached => format!("detached {}", ev.addr),
                            ConnectOutcome::Failed(_) => format!("failed {}", ev.addr),
                            _ => format!("cancelled {}", ev.addr),
                        })
                    })
                    .on_connection_setup_done(move |ev| {
                        j.push(match ev.outcome {
                            ConnectOutcome::Connected => "setup_done".into(),
                            ConnectOutcome::Detached => "setup_detached".into(),
                            _ => "setup_failed".into(),
                        })
                    }),
            )
            .on_got_conn(move |ev| {
                f.push(format!(
                    "got_conn reused={} was_idle={}",
                    ev.reused, ev.was_idle
                ))
            })
            .on_wrote_request(move |_| g.push("wrote_request".into()))
            .on_got_first_response_byte(move |ev| {
                h.push(format!("first_byte {}", ev.status.as_u16()))
            })
    }
}

/// Sends a GET traced by `log` and a recorder, reads the body, returns the timings.
async fn traced(client: &HttpClient<Empty<Bytes>>, url: &str, log: &Log) -> (Timings, Version) {
    let recorder = TimingsRecorder::new();
    let response = client
        .send(get(url), recorder.trace().and(log.trace()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let version = response.version();
    response.into_body().collect().await.unwrap();
    (recorder.timings(), version)
}

#[tokio::test]
async fn a_traced_request_after_an_untraced_one_reports_the_reuse_and_no_dial() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client = HttpClient::new(Connector::new(static_dialer(
        "reuse.test",
        &[server.addr()],
    )));
    let url = format!("http://reuse.test:{}/", server.addr().port());
    let response = client.request(get(&url)).await.unwrap();
    response.into_body().collect().await.unwrap();

    let log = Log::default();
    let (t, _) = traced(&client, &url, &log).await;

    assert_eq!(server.connections(), 1);
    assert_eq!(
        log.lines(),
        [
            "get_conn",
            "got_conn reused=true was_idle=true",
            "wrote_request",
            "first_byte 200"
        ]
    );
    assert!(t.reused);
    assert!(t.namelookup.is_none() && t.connect.is_none() && t.attempts.is_empty());
    assert!(
        t.queue.is_none(),
        "an idle connection was ready at once: {t:#?}"
    );
}

#[tokio::test]
async fn a_request_served_by_a_freed_connection_while_its_dial_is_in_dns_closes_its_trace() {
    const HOST: &str = "slowdns.test";
    let server = HttpServer::plain("127.0.0.1").await;
    let dns = DnsServer::start().await;
    let delay = Duration::from_millis(400);
    dns.insert(HOST, Entry::new().a("127.0.0.1").a_delay(delay));
    let dialer = Dialer::builder()
        .resolver(dns.resolver())
        .family(nettrace::Family::Ipv4)
        .build();
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(dialer));
    let url = format!("http://{HOST}:{}/", server.addr().port());

    // Request 0 holds the only connection: its body is not read yet.
    let held = client.request(get(&url)).await.unwrap();

    // Request 1 finds no idle connection and dials; while its lookup waits, request 0
    // frees the connection, and request 1 takes it.
    let log = Log::default();
    let recorder = TimingsRecorder::new();
    let request = client.send(get(&url), recorder.trace().and(log.trace()));
    let one = tokio::spawn(async move {
        let response = request.await.unwrap();
        response.into_body().collect().await.unwrap();
    });
    while log.count("dns_start") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held.into_body().collect().await.unwrap();
    one.await.unwrap();

    let at_end = log.lines();
    assert_eq!(
        at_end,
        [
            "get_conn",
            "wait_for_conn dialing=true",
            "dns_start",
            "got_conn reused=true was_idle=false",
            "wrote_request",
            "first_byte 200",
            "dns_done cancelled",
            "setup_detached",
        ],
        "the trace is complete and closed when the request ends"
    );
    let t = recorder.timings();
    assert!(
        t.reused && t.namelookup.is_none() && t.attempts.is_empty(),
        "{t:#?}"
    );
    assert!(
        t.queue.is_some(),
        "it waited for a connection it did not dial: {t:#?}"
    );

    // The dial goes on for the pool and its connection is used later; request 1's trace
    // hears nothing of it.
    let later = Log::default();
    let mut served_by_dial = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server.connections() == 2 {
            served_by_dial = true;
            break;
        }
    }
    assert!(served_by_dial, "the detached dial connected for the pool");
    assert_eq!(log.lines(), at_end, "nothing after the request ended");
    // Two idle connections now: the newest (the detached dial's, never used) first.
    let (t, _) = traced(&client, &url, &later).await;
    assert_eq!(
        later.lines()[1],
        "got_conn reused=false was_idle=true",
        "Go: a connection dialed for another request and first used by this one"
    );
    assert!(!t.reused && t.connect.is_none(), "not its own dial: {t:#?}");
}

#[tokio::test]
async fn a_dropped_request_detaches_its_pending_attempt_and_the_pool_keeps_the_connection() {
    const HOST: &str = "hole.test";
    let server = HttpServer::plain("127.0.0.1").await;
    let port = server.addr().port();
    let hole = BlackHole::on_port("127.0.0.3", port).await;
    // The black hole first: the first attempt hangs, the second starts 250 ms later.
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(static_dialer(
        HOST,
        &[hole.addr, server.addr()],
    )));
    let url = format!("http://{HOST}:{port}/");
    let log = Log::default();

    let request = client.send(get(&url), log.trace());
    let dropped = tokio::time::timeout(Duration::from_millis(100), request).await;
    assert!(dropped.is_err(), "still connecting after 100 ms");
    let at_end = log.lines();
    assert_eq!(
        at_end,
        [
            "get_conn".to_owned(),
            "wait_for_conn dialing=true".to_owned(),
            "dns_start".to_owned(),
            "dns_done".to_owned(),
            format!("connect_start {}", hole.addr),
            format!("detached {}", hole.addr),
            "setup_detached".to_owned(),
        ]
    );

    // The dial went on: its second attempt connected, for the pool.
    for _ in 0..40 {
        if server.connections() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(server.connections(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.lines(), at_end, "nothing after the request ended");
    let next = Log::default();
    let (t, _) = traced(&client, &url, &next).await;
    assert_eq!(next.lines()[1], "got_conn reused=false was_idle=true");
    assert_eq!(
        server.connections(),
        1,
        "the detached dial's connection served it"
    );
    assert!(t.attempts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_tls_requests_to_one_h2_origin_open_one_connection() {
    let ca = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
    let tls = TlsConfig::builder()
        .webpki_roots(false)
        .add_root_certificate(ca.ca_der())
        .build()
        .unwrap();
    let connector = Connector::new(static_dialer("localhost", &[server.addr()])).tls(tls);
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(connector);
    let url = format!("https://localhost:{}/", server.addr().port());

    let logs: Vec<Log> = (0..64).map(|_| Log::default()).collect();
    let requests = logs.iter().map(|log| {
        let (client, url, log) = (client.clone(), url.clone(), log.clone());
        tokio::spawn(async move { traced(&client, &url, &log).await })
    });
    let results = futures_util::future::join_all(requests).await;

    assert_eq!(
        server.connections(),
        1,
        "one TCP+TLS connection for 64 requests"
    );
    let mut new = 0;
    for (log, result) in logs.iter().zip(results) {
        let (t, version) = result.unwrap();
        assert_eq!(version, Version::HTTP_2);
        if t.reused {
            assert!(t.connect.is_none() && t.appconnect.is_none(), "{t:#?}");
            assert_eq!(log.count("connect_start"), 0, "{:?}", log.lines());
            // It waited for the shared dial, or came after it was made.
            let waited = log
                .lines()
                .contains(&"wait_for_conn dialing=false".to_owned());
            assert_eq!(t.queue.is_some(), waited, "{t:#?}");
        } else {
            new += 1;
            assert!(t.connect.is_some() && t.appconnect.is_some(), "{t:#?}");
            assert_eq!(t.alpn.as_deref(), Some(&b"h2"[..]));
            assert!(t.queue.is_none());
        }
    }
    assert_eq!(new, 1, "exactly one request dialed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_http1_requests_open_eight_and_later_ones_report_reuse() {
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(300));
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(static_dialer(
        "eight.test",
        &[server.addr()],
    )));
    let url = format!("http://eight.test:{}/", server.addr().port());

    let logs: Vec<Log> = (0..8).map(|_| Log::default()).collect();
    let requests = logs.iter().map(|log| {
        let (client, url, log) = (client.clone(), url.clone(), log.clone());
        tokio::spawn(async move { traced(&client, &url, &log).await })
    });
    for result in futures_util::future::join_all(requests).await {
        let (t, version) = result.unwrap();
        assert_eq!(version, Version::HTTP_11);
        assert!(!t.reused && t.connect.is_some(), "{t:#?}");
    }
    assert_eq!(server.connections(), 8);
    for log in &logs {
        assert_eq!(log.count("connect_start"), 1, "{:?}", log.lines());
        assert_eq!(log.count("got_conn reused=false was_idle=false"), 1);
    }

    server.set_delay(Duration::ZERO);
    for _ in 0..8 {
        let log = Log::default();
        let (t, _) = traced(&client, &url, &log).await;
        assert!(t.reused && t.connect.is_none(), "{t:#?}");
        assert_eq!(log.lines()[1], "got_conn reused=true was_idle=true");
    }
    assert_eq!(server.connections(), 8, "no new connection");
}

#[tokio::test]
async fn h2c_requests_share_one_connection_with_http2_only() {
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(100));
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::builder(Connector::new(static_dialer("h2c.test", &[server.addr()])))
            .http2_only(true)
            .build();
    let url = format!("http://h2c.test:{}/", server.addr().port());
    let logs: Vec<Log> = (0..8).map(|_| Log::default()).collect();
    let requests = logs.iter().map(|log| {
        let (client, url, log) = (client.clone(), url.clone(), log.clone());
        tokio::spawn(async move { traced(&client, &url, &log).await })
    });
    let results = futures_util::future::join_all(requests).await;
    let new = results
        .into_iter()
        .map(|r| r.unwrap())
        .inspect(|(_, version)| assert_eq!(*version, Version::HTTP_2))
        .filter(|(t, _)| !t.reused)
        .count();
    assert_eq!(server.connections(), 1);
    assert_eq!(new, 1);
}

#[tokio::test]
async fn an_idle_connection_past_the_idle_timeout_is_closed_and_not_reused() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::builder(Connector::new(static_dialer("idle.test", &[server.addr()])))
            .pool_idle_timeout(Duration::from_millis(100))
            .build();
    let url = format!("http://idle.test:{}/", server.addr().port());
    let (first, _) = traced(&client, &url, &Log::default()).await;
    assert!(!first.reused);
    let (young, _) = traced(&client, &url, &Log::default()).await;
    assert!(young.reused, "within the idle timeout it is reused");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let (late, _) = traced(&client, &url, &Log::default()).await;
    assert!(!late.reused && late.connect.is_some(), "{late:#?}");
    assert_eq!(server.connections(), 2);
}

/// When a [`one_shot_server`] closes a connection, after answering its first request.
#[derive(Clone, Copy)]
enum Close {
    /// At once.
    AfterAnswer,
    /// When the next request arrives, unanswered: a server closing an idle connection
    /// just as a request goes out.
    OnNextRequest,
}

/// A server that answers one request per connection (keep-alive in its headers), then
/// closes the connection as `close` says. Returns its address, the count of accepted
/// connections and its task.
async fn one_shot_server(
    close: Close,
) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
                    .await;
                if let Close::OnNextRequest = close {
                    let _ = stream.read(&mut buf).await;
                }
                // Closes: the stream drops.
            });
        }
    });
    (addr, accepted, task)
}

#[tokio::test]
async fn a_connection_the_server_closed_is_never_handed_out() {
    let (addr, accepted, server) = one_shot_server(Close::AfterAnswer).await;
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::new(Connector::new(static_dialer("closing.test", &[addr])));
    let url = format!("http://closing.test:{}/", addr.port());
    let (first, _) = traced(&client, &url, &Log::default()).await;
    assert!(!first.reused);
    // Let the client see the close.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = Log::default();
    let (second, _) = traced(&client, &url, &log).await;
    assert!(!second.reused, "{:?}", log.lines());
    assert_eq!(log.count("got_conn"), 1, "{:?}", log.lines());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    server.abort();
}

#[tokio::test]
async fn a_get_whose_reused_connection_closes_under_it_is_sent_again_on_a_new_one() {
    let (addr, accepted, _server) = one_shot_server(Close::OnNextRequest).await;
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::new(Connector::new(static_dialer("again.test", &[addr])));
    let url = format!("http://again.test:{}/", addr.port());
    traced(&client, &url, &Log::default()).await;

    let log = Log::default();
    let (t, _) = traced(&client, &url, &log).await;

    let lines = log.lines();
    let got: Vec<&String> = lines.iter().filter(|l| l.starts_with("got_conn")).collect();
    assert_eq!(
        got,
        [
            "got_conn reused=true was_idle=true",
            "got_conn reused=false was_idle=false"
        ],
        "both connections, in order: {lines:?}"
    );
    assert_eq!(log.count("connect_start"), 1, "{lines:?}");
    assert!(!t.reused && t.connect.is_some(), "{t:#?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_post_whose_reused_connection_closes_under_it_fails_rather_than_being_sent_twice() {
    let (addr, accepted, _server) = one_shot_server(Close::OnNextRequest).await;
    let client: HttpClient<http_body_util::Full<Bytes>> =
        HttpClient::new(Connector::new(static_dialer("post.test", &[addr])));
    let url = format!("http://post.test:{}/", addr.port());
    let post = || {
        Request::post(&url)
            .body(http_body_util::Full::new(Bytes::from_static(b"x")))
            .unwrap()
    };
    let response = client.request(post()).await.unwrap();
    response.into_body().collect().await.unwrap();

    let err = client.request(post()).await.unwrap_err();

    assert_eq!(err.kind(), nettrace::HttpErrorKind::Request, "{err:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no second connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_right_after_the_server_closed_succeed_and_a_retry_shows_both_connections() {
    let (addr, accepted, server) = one_shot_server(Close::AfterAnswer).await;
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::new(Connector::new(static_dialer("retry.test", &[addr])));
    let url = format!("http://retry.test:{}/", addr.port());
    let mut retried = 0;
    for round in 0..40 {
        // No pause: the next request may meet the connection before the client saw the
        // server close it.
        let log = Log::default();
        let (t, _) = traced(&client, &url, &log).await;
        let got: Vec<String> = log
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("got_conn"))
            .collect();
        match got.len() {
            1 => assert!(!t.reused, "round {round}: {:?}", log.lines()),
            // Sent on the old connection, it never went out: once more, on a new one.
            2 => {
                retried += 1;
                assert!(got[0].starts_with("got_conn reused=true"), "{got:?}");
                assert_eq!(got[1], "got_conn reused=false was_idle=false");
                assert!(!t.reused && t.connect.is_some(), "{t:#?}");
            }
            _ => panic!("round {round}: {:?}", log.lines()),
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        40,
        "one connection per request"
    );
    eprintln!("{retried} of 40 requests were retried");
    server.abort();
}

#[tokio::test]
async fn a_client_wide_trace_sees_every_request_and_composes_with_a_request_trace() {
    let server = HttpServer::plain("127.0.0.1").await;
    let all = Log::default();
    let client: HttpClient<Empty<Bytes>> =
        HttpClient::builder(Connector::new(static_dialer("wide.test", &[server.addr()])))
            .trace(all.trace())
            .build();
    let url = format!("http://wide.test:{}/", server.addr().port());
    let response = client.request(get(&url)).await.unwrap();
    response.into_body().collect().await.unwrap();
    let own = Log::default();
    traced(&client, &url, &own).await;

    assert_eq!(all.count("get_conn"), 2);
    assert_eq!(all.count("connect_start"), 1);
    assert_eq!(all.count("first_byte 200"), 2);
    assert_eq!(
        own.lines(),
        [
            "get_conn",
            "got_conn reused=true was_idle=true",
            "wrote_request",
            "first_byte 200"
        ]
    );
}

#[tokio::test]
async fn the_client_is_a_tower_service_and_takes_bodies_that_are_not_unpin() {
    use tower_service::Service;

    let server = HttpServer::plain("127.0.0.1").await;
    // A body made of an `async` block is not `Unpin`; its type is inferred below.
    let body = http_body_util::StreamBody::new(futures_util::stream::once(async {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from_static(b"posted")))
    }));
    let mut client = HttpClient::new(Connector::new(static_dialer("svc.test", &[server.addr()])));
    let url = format!("http://svc.test:{}/path", server.addr().port());
    std::future::poll_fn(|cx| client.poll_ready(cx))
        .await
        .unwrap();
    let response = client
        .call(Request::post(url).body(body).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello from /path");
}

#[tokio::test]
async fn a_hook_that_panics_in_the_dial_panics_the_request_and_the_pool_goes_on() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(static_dialer(
        "panic.test",
        &[server.addr()],
    )));
    let url = format!("http://panic.test:{}/", server.addr().port());
    let log = Log::default();
    let trace = log
        .trace()
        .net(NetTrace::new().on_connect_start(|_| panic!("hook")));

    let request = client.send(get(&url), trace);
    let joined = tokio::time::timeout(Duration::from_secs(5), tokio::spawn(request))
        .await
        .expect("the request ends, it does not wait forever");
    let panic = joined.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"hook"));
    // Every other hook saw its events, every start got its done.
    let lines = log.lines();
    assert_eq!(log.count("connect_start"), 1, "{lines:?}");
    assert_eq!(
        log.count("connected") + log.count("cancelled"),
        1,
        "{lines:?}"
    );

    let (t, _) = tokio::time::timeout(Duration::from_secs(5), traced(&client, &url, &log))
        .await
        .expect("the pool still serves requests");
    assert!(t.status.is_some());
}

#[tokio::test]
async fn the_trace_in_scope_is_the_one_where_the_request_is_polled() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(static_dialer(
        "scope.test",
        &[server.addr()],
    )));
    let url = format!("http://scope.test:{}/", server.addr().port());
    let starts = Arc::new(AtomicUsize::new(0));
    let seen = starts.clone();
    let scope = NetTrace::new().on_connect_start(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });

    // The future is made outside the scope and polled inside it.
    let request = client.request(get(&url));
    let response = nettrace::with_trace(scope, request).await.unwrap();
    response.into_body().collect().await.unwrap();

    assert_eq!(starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_h2_connection_unused_past_the_idle_timeout_closes() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> = HttpClient::builder(Connector::new(static_dialer(
        "idle2.test",
        &[server.addr()],
    )))
    .http2_only(true)
    .pool_idle_timeout(Duration::from_millis(100))
    .build();
    let url = format!("http://idle2.test:{}/", server.addr().port());
    let (first, _) = traced(&client, &url, &Log::default()).await;
    assert!(!first.reused);
    let log = Log::default();
    let (young, version) = traced(&client, &url, &log).await;
    assert_eq!(version, Version::HTTP_2);
    assert!(young.reused);
    assert_eq!(log.lines()[1], "got_conn reused=true was_idle=true");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let (late, _) = traced(&client, &url, &Log::default()).await;
    assert!(!late.reused && late.connect.is_some(), "{late:#?}");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_wait_hook_that_panics_still_lets_its_dial_serve_the_requests_that_join_it() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> = HttpClient::builder(Connector::new(static_dialer(
        "waitpanic.test",
        &[server.addr()],
    )))
    .http2_only(true)
    .build();
    let url = format!("http://waitpanic.test:{}/", server.addr().port());
    let trace = HttpTrace::new().on_wait_for_conn(|_| panic!("wait hook"));

    let first = tokio::spawn(client.send(get(&url), trace));
    let panic = first.await.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"wait hook"));

    // The dial the first request started is the one later requests share (HTTP/2).
    let (t, version) = tokio::time::timeout(
        Duration::from_secs(5),
        traced(&client, &url, &Log::default()),
    )
    .await
    .expect("the shared dial was started and serves");
    assert_eq!(version, Version::HTTP_2);
    assert!(t.status.is_some());
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_panicking_http_hook_costs_no_other_hook_its_event_then_the_request_panics() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(static_dialer(
        "hookpanic.test",
        &[server.addr()],
    )));
    let url = format!("http://hookpanic.test:{}/", server.addr().port());
    let log = Log::default();
    let trace = HttpTrace::new()
        .on_got_conn(|_| panic!("first got_conn hook"))
        .and(log.trace());

    let panic = tokio::spawn(client.send(get(&url), trace))
        .await
        .unwrap_err()
        .into_panic();

    assert_eq!(panic.downcast_ref::<&str>(), Some(&"first got_conn hook"));
    assert_eq!(log.count("got_conn"), 1, "{:?}", log.lines());
}

#[tokio::test]
async fn a_wrote_request_hook_that_panics_panics_the_request_not_the_connection() {
    let server = HttpServer::plain("127.0.0.1").await;
    let client: HttpClient<http_body_util::Full<Bytes>> = HttpClient::new(Connector::new(
        static_dialer("wrotepanic.test", &[server.addr()]),
    ));
    let url = format!("http://wrotepanic.test:{}/", server.addr().port());
    let post = || {
        Request::post(&url)
            .body(http_body_util::Full::new(Bytes::from_static(b"body")))
            .unwrap()
    };
    let trace = HttpTrace::new().on_wrote_request(|_| panic!("wrote hook"));

    // hyper polls the body, and so fires `wrote_request`, in the connection's task.
    let panic = tokio::spawn(client.send(post(), trace))
        .await
        .unwrap_err()
        .into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"wrote hook"));

    // The connection lived on and serves the next request.
    let recorder = TimingsRecorder::new();
    let response = client.send(post(), recorder.trace()).await.unwrap();
    response.into_body().collect().await.unwrap();
    assert!(recorder.timings().reused, "{:#?}", recorder.timings());
    assert_eq!(server.connections(), 1);
}
