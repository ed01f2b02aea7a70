//! `NetTrace::metrics`: what the OpenTelemetry SDK (in-memory metric exporter) holds after
//! a known scenario — counts, attributes, units and histogram sums.

use std::time::{Duration, Instant};

use nettrace::{Dialer, NetTrace};

use crate::support::dns::{DnsServer, Entry};
use crate::support::metrics::Metrics;
use crate::support::net::{fallback_pair, Live};

const LOOKUP: &str = "dns.lookup.duration";
const ATTEMPTS: &str = "nettrace.connect.attempts";
const DURATION: &str = "nettrace.connect.duration";

/// A live `127.0.0.1:P` with nothing on `127.0.0.2:P` (refused).
async fn refused_then_live() -> Live {
    for _ in 0..20 {
        let live = Live::on("127.0.0.1").await;
        if std::net::TcpListener::bind(("127.0.0.2", live.addr.port())).is_ok() {
            return live;
        }
    }
    panic!("no port free on 127.0.0.2");
}

#[tokio::test]
async fn lookups_and_attempts_are_counted_and_timed() {
    let sdk = Metrics::new();
    let live = refused_then_live().await;
    let port = live.addr.port();
    let server = DnsServer::start().await;
    // Each lookup takes at least 50 ms: both families answer after that.
    let delay = Duration::from_millis(50);
    let entry = Entry::new().a("127.0.0.2").a("127.0.0.1");
    server.insert("m.test", entry.a_delay(delay).aaaa_delay(delay));
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let trace = NetTrace::metrics(&sdk.meter());

    let started = Instant::now();
    let scenario = async {
        // Twice: a lookup, 127.0.0.2 refused, 127.0.0.1 connected.
        for _ in 0..2 {
            dialer.dial_host("m.test", port).await.unwrap();
        }
        // A name the server does not know: a failed lookup, no attempt.
        assert!(dialer.dial_host("nowhere.test", port).await.is_err());
        // An IP literal: no lookup, one attempt.
        dialer.dial(&live.addr.to_string()).await.unwrap();
    };
    nettrace::with_trace(trace, scenario).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(
        server.questions_for("m.test", "A"),
        2,
        "no cache between dials"
    );

    let got = sdk.collect();
    assert_eq!(got.unit(LOOKUP), "s");
    assert_eq!(got.unit(DURATION), "s");
    assert_eq!(got.unit(ATTEMPTS), "{attempt}");

    assert_eq!(
        got.points(LOOKUP),
        [
            vec!["dns.question.name=m.test"],
            vec!["dns.question.name=nowhere.test", "error.type=not_found"],
        ]
    );
    let (count, sum) = got.histogram(LOOKUP, &[("dns.question.name", "m.test")]);
    assert_eq!(count, 2);
    assert!((0.1..=elapsed).contains(&sum), "{sum} s in {elapsed} s");
    assert_eq!(got.histogram(LOOKUP, &[("error.type", "not_found")]).0, 1);

    let refused = [
        ("nettrace.outcome", "failed"),
        ("network.type", "ipv4"),
        ("error.type", "connection_refused"),
    ];
    let connected = [("nettrace.outcome", "connected"), ("network.type", "ipv4")];
    assert_eq!(got.u64_sum(ATTEMPTS, &refused), 2);
    assert_eq!(got.u64_sum(ATTEMPTS, &connected), 3);
    assert_eq!(got.u64_sum(ATTEMPTS, &[]), 5);
    assert_eq!(
        got.points(ATTEMPTS),
        [
            vec![
                "error.type=connection_refused",
                "nettrace.outcome=failed",
                "network.type=ipv4"
            ],
            vec!["nettrace.outcome=connected", "network.type=ipv4"],
        ]
    );
    assert_eq!(got.points(DURATION), got.points(ATTEMPTS));
    assert_eq!(got.histogram(DURATION, &refused).0, 2);
    assert_eq!(got.histogram(DURATION, &connected).0, 3);
    let (_, sum) = got.histogram(DURATION, &[]);
    // Loopback attempts: well under the time the lookups took.
    assert!(
        (0.0..elapsed - 0.1).contains(&sum),
        "{sum} s in {elapsed} s"
    );
}

#[tokio::test]
async fn a_cancelled_attempt_lasts_until_the_winner_and_traces_compose() {
    let sdk = Metrics::new();
    let (hole, live) = fallback_pair().await;
    let dialer = Dialer::builder()
        .resolver(
            nettrace::StaticResolver::new().insert("he.test", [hole.addr.ip(), live.addr.ip()]),
        )
        .attempt_delay(Duration::from_millis(50))
        .build();
    let metrics = NetTrace::metrics(&sdk.meter());
    let connects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connects.clone();
    let other = NetTrace::new().on_connect_done(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });

    let started = Instant::now();
    let dial = dialer.dial_host("he.test", live.addr.port());
    // The same metrics trace twice, and another trace: each attempt is recorded once,
    // and the other trace sees every event too.
    let dial = nettrace::with_trace(metrics.clone(), dial);
    let dial = nettrace::with_trace(other, dial);
    let dial = nettrace::with_trace(metrics, dial);
    dial.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(connects.load(std::sync::atomic::Ordering::Relaxed), 2);

    let got = sdk.collect();
    let cancelled = [("nettrace.outcome", "cancelled"), ("network.type", "ipv6")];
    let connected = [("nettrace.outcome", "connected"), ("network.type", "ipv4")];
    assert_eq!(got.u64_sum(ATTEMPTS, &cancelled), 1);
    assert_eq!(got.u64_sum(ATTEMPTS, &connected), 1);
    assert_eq!(got.u64_sum(ATTEMPTS, &[]), 2);
    // The black-holed attempt ran from its start until the second attempt, 50 ms
    // later, connected.
    let (count, sum) = got.histogram(DURATION, &cancelled);
    assert_eq!(count, 1);
    assert!((0.05..=elapsed).contains(&sum), "{sum} s in {elapsed} s");
    assert_eq!(got.histogram(LOOKUP, &[]).0, 1);
}

#[cfg(all(feature = "http", feature = "tls"))]
#[tokio::test]
async fn the_pool_counts_open_connections_by_state_and_times_each_connection() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use nettrace::{Connector, HttpClient, StaticResolver};

    use crate::support::http::HttpServer;

    const OPEN: &str = "http.client.open_connections";
    const LIFETIME: &str = "http.client.connection.duration";
    let sdk = Metrics::new();
    let server = HttpServer::plain("127.0.0.1").await;
    let port = server.addr().port().to_string();
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("pool.test", [server.addr().ip()]))
        .build();
    let client: HttpClient<Empty<Bytes>> = HttpClient::builder(Connector::new(dialer))
        .metrics(&sdk.meter())
        .pool_idle_timeout(Duration::from_millis(150))
        .build();
    let url = format!("http://pool.test:{port}/");
    let origin = [
        ("server.address", "pool.test"),
        ("server.port", port.as_str()),
        ("url.scheme", "http"),
    ];
    let state = |s: &'static str| {
        let mut want = origin.to_vec();
        want.push(("http.connection.state", s));
        want
    };

    let response = client
        .request(http::Request::get(&url).body(Empty::new()).unwrap())
        .await
        .unwrap();
    // While the body is unread the connection is active.
    let collected = sdk.collect();
    assert_eq!(collected.i64_sum(OPEN, &state("active")), 1);
    assert_eq!(collected.i64_sum(OPEN, &state("idle")), 0);
    response.into_body().collect().await.unwrap();
    let collected = sdk.collect();
    assert_eq!(collected.i64_sum(OPEN, &state("active")), 0);
    assert_eq!(collected.i64_sum(OPEN, &state("idle")), 1);
    assert_eq!(collected.unit(OPEN), "{connection}");

    // Past the idle timeout the connection closes: no longer open, its lifetime recorded.
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let collected = sdk.collect();
    assert_eq!(collected.i64_sum(OPEN, &state("idle")), 0);
    let (count, sum) = collected.histogram(LIFETIME, &origin);
    assert_eq!(count, 1);
    assert!(
        sum >= 0.150 && sum <= opened.elapsed().as_secs_f64() + 0.5,
        "lifetime {sum} s"
    );
    assert_eq!(collected.unit(LIFETIME), "s");
}
