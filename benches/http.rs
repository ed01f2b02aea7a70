//! Two HTTP measurements against hyper-util's legacy `Client`, each in paired rounds with
//! an A/A row (the baseline against itself), all in one run:
//!
//! 1. Keep-alive GET requests per second over loopback HTTP/1.1: `nettrace::HttpClient`
//!    untraced (target ≥ 0.98 of the baseline's rate) and with a `TimingsRecorder` per
//!    request (target ≥ 0.97), against hyper-util's `Client` + `HttpConnector`.
//! 2. 64 concurrent GETs to one TLS origin that speaks HTTP/2, from a cold pool (a fresh
//!    client and TLS configuration each round): the connections the server accepted and
//!    the time until all 64 responded, `HttpClient` against hyper-util's `Client` over the
//!    same `Connector` with the same TLS stack (target: one connection, and a time ratio
//!    ≤ 1.0).
//!
//! Run with `cargo bench --bench http --features http,tls`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nettrace::{Connector, Dialer, HttpClient, TimingsRecorder, TlsConfig};

#[path = "support/http_server.rs"]
mod http_server;
#[macro_use]
mod support;
// The tests' TLS server and CA. Its `#[cfg(test)]` self-tests are compiled here too, but
// without a test harness their `#[tokio::test]` functions vanish and leave imports unused.
#[allow(unused_imports)]
#[path = "../tests/support/http.rs"]
mod test_servers;

use http_server::start_server;
use test_servers::{HttpServer, TestCa};

fn get(uri: &http::Uri) -> http::Request<Empty<Bytes>> {
    http::Request::get(uri.clone()).body(Empty::new()).unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn keepalive(c: &mut Criterion) {
    let addr = start_server();
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let rt = current_thread();
    let plain: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let traced: HttpClient<Empty<Bytes>> = HttpClient::new(Connector::new(Dialer::new()));

    let mut group = c.benchmark_group("keepalive_get");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("hyper_util_http_connector", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let response = plain.request(get(&uri)).await.unwrap();
                    response.into_body().collect().await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("nettrace_untraced", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let response = traced.request(get(&uri)).await.unwrap();
                    response.into_body().collect().await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("nettrace_timings_recorder", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let recorder = TimingsRecorder::new();
                    let response = traced.send(get(&uri), recorder.trace()).await.unwrap();
                    response.into_body().collect().await.unwrap();
                    std::hint::black_box(recorder.timings());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    paired(&rt, &plain, &traced, &uri);
    support::print_rate_ratios(
        "keepalive_get",
        "hyper_util_http_connector",
        &["nettrace_untraced", "nettrace_timings_recorder"],
    );
}

/// Rate ratios from side-by-side rounds of 500 requests each (plain, untraced, plain
/// again, recorded), 21 rounds; see `support::paired`.
fn paired(
    rt: &tokio::runtime::Runtime,
    plain: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    traced: &HttpClient<Empty<Bytes>>,
    uri: &http::Uri,
) {
    const ROUNDS: usize = 21;
    const PER_ROUND: usize = 500;
    let ratios = support::paired(
        ROUNDS,
        &mut [
            timed_batch!(rt, PER_ROUND, {
                let response = plain.request(get(uri)).await.unwrap();
                response.into_body().collect().await.unwrap();
            }),
            timed_batch!(rt, PER_ROUND, {
                let response = traced.request(get(uri)).await.unwrap();
                response.into_body().collect().await.unwrap();
            }),
            // A/A: the baseline again, to show how far identical work drifts.
            timed_batch!(rt, PER_ROUND, {
                let response = plain.request(get(uri)).await.unwrap();
                response.into_body().collect().await.unwrap();
            }),
            timed_batch!(rt, PER_ROUND, {
                let recorder = TimingsRecorder::new();
                let response = traced.send(get(uri), recorder.trace()).await.unwrap();
                response.into_body().collect().await.unwrap();
                std::hint::black_box(recorder.timings());
            }),
        ],
    );
    println!("\nkeepalive_get: paired rate ratio to hyper_util_http_connector, median of {ROUNDS} rounds");
    println!("  hyper_util again (A/A)       {:.3}", ratios[1]);
    println!(
        "  nettrace_untraced            {:.3}  (target >= 0.98)",
        ratios[0]
    );
    println!(
        "  nettrace_timings_recorder    {:.3}  (target >= 0.97)",
        ratios[2]
    );
}

/// Concurrent requests per burst.
const BURST: usize = 64;

/// Sends [`BURST`] GETs at once and waits for every response body; each must have come
/// over HTTP/2.
macro_rules! burst {
    ($client:expr, $uri:expr) => {
        join_all((0..BURST).map(|_| async {
            let response = $client.request(get($uri)).await.unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2);
            response.into_body().collect().await.unwrap();
        }))
    };
}

/// One cold-pool round for `paired`: builds a client with `$make` (a fresh connector and
/// TLS configuration, so no TLS session carries over from an earlier round), times one
/// burst, then drops the client and lets its connections close before the next variant
/// runs. Pushes the time onto `$times` and the connections the server accepted meanwhile
/// onto `$conns`.
macro_rules! cold_burst {
    ($rt:expr, $server:expr, $uri:expr, $times:expr, $conns:expr, $make:expr) => {
        &mut || {
            let client = $make;
            let before = $server.connections();
            let start = Instant::now();
            $rt.block_on(burst!(client, $uri));
            let elapsed = start.elapsed();
            drop(client);
            // Late connects (a pool that dials per request) land here, still counted.
            $rt.block_on(tokio::time::sleep(Duration::from_millis(100)));
            $conns.push($server.connections() - before);
            $times.push(elapsed);
            elapsed
        }
    };
}

fn tls_h2_cold_burst(_c: &mut Criterion) {
    const ROUNDS: usize = 15;
    let ca = TestCa::new();
    // The server's own runtime and thread, as the HTTP/1.1 server has.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]));
    let uri: http::Uri = format!("https://127.0.0.1:{}/", server.addr().port())
        .parse()
        .unwrap();
    let connector = || {
        let tls = TlsConfig::builder()
            .webpki_roots(false)
            .add_root_pem(&ca.ca_pem())
            .build()
            .unwrap();
        Connector::new(Dialer::new()).tls(tls)
    };
    let hyper_util = || -> Client<Connector, Empty<Bytes>> {
        Client::builder(TokioExecutor::new()).build(connector())
    };
    let nettrace = || -> HttpClient<Empty<Bytes>> { HttpClient::new(connector()) };
    let rt = current_thread();
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut conns: [Vec<usize>; 3] = Default::default();
    let [t0, t1, t2] = &mut times;
    let [c0, c1, c2] = &mut conns;
    let ratios = support::paired(
        ROUNDS,
        &mut [
            cold_burst!(rt, server, &uri, t0, c0, hyper_util()),
            cold_burst!(rt, server, &uri, t1, c1, nettrace()),
            // A/A: the baseline again.
            cold_burst!(rt, server, &uri, t2, c2, hyper_util()),
        ],
    );
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!("\ntls_h2_cold_burst: {BURST} concurrent GETs, one TLS h2 origin, a fresh client per round, {ROUNDS} rounds");
    println!("  variant                  median time   connections per round   time ratio to hyper_util (median)");
    let rows = [
        ("hyper_util_connector", 1.0, 0, "—"),
        ("nettrace_http_client", 1.0 / ratios[0], 1, "(target <= 1.0, 1 connection)"),
        ("hyper_util again (A/A)", 1.0 / ratios[1], 2, ""),
    ];
    for (name, ratio, i, note) in rows {
        let (min, max) = (
            conns[i].iter().min().unwrap(),
            conns[i].iter().max().unwrap(),
        );
        println!(
            "  {name:<24} {:>8.2} ms   {min:>3} – {max:<3}             {ratio:.3}  {note}",
            median(&mut times[i]).as_secs_f64() * 1e3,
        );
    }
}

criterion_group!(benches, keepalive, tls_h2_cold_burst);
criterion_main!(benches);
