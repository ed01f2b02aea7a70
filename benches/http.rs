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
use nettrace::{Connector, Dialer, HttpClient, HttpTrace, TimingsRecorder, TlsConfig};

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
    if let Ok(spec) = std::env::var("NETTRACE_BENCH_LOOP") {
        instruction_loop(&spec, &rt, &plain, &traced, &uri);
        std::process::exit(0);
    }

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
/// again, recorded, an empty trace), 21 rounds; see `support::paired`.
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
            // A trace with no hooks: the client's own price of a traced request, without
            // the recorder's.
            timed_batch!(rt, PER_ROUND, {
                let response = traced.send(get(uri), HttpTrace::new()).await.unwrap();
                response.into_body().collect().await.unwrap();
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
    println!("  nettrace_empty_trace         {:.3}", ratios[3]);
}

/// `NETTRACE_BENCH_LOOP=variant:n`: `n` keep-alive GETs of one variant and nothing else,
/// for instruction counts (run the bench binary under `valgrind --tool=callgrind` with two
/// values of `n`; the difference divided by the difference of `n` is the cost of one
/// request, set-up excluded). Variants: `plain` (hyper-util), `untraced`, `empty` (an
/// `HttpTrace` with no hooks), `recorder` (a `TimingsRecorder` per request) and
/// `recorder_once` (one recorder's trace, built once and cloned for every request).
fn instruction_loop(
    spec: &str,
    rt: &tokio::runtime::Runtime,
    plain: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    traced: &HttpClient<Empty<Bytes>>,
    uri: &http::Uri,
) {
    let (variant, n) = spec
        .split_once(':')
        .expect("NETTRACE_BENCH_LOOP is variant:n");
    let n: usize = n.parse().expect("n is a number");
    let once = TimingsRecorder::new();
    let once_trace = once.trace();
    rt.block_on(async {
        for _ in 0..n {
            let response = match variant {
                "plain" => {
                    let response = plain.request(get(uri)).await.unwrap();
                    response.into_body().collect().await.unwrap();
                    continue;
                }
                "untraced" => traced.request(get(uri)).await,
                "empty" => traced.send(get(uri), HttpTrace::new()).await,
                "recorder" => {
                    let recorder = TimingsRecorder::new();
                    let response = traced.send(get(uri), recorder.trace()).await.unwrap();
                    response.into_body().collect().await.unwrap();
                    std::hint::black_box(recorder.timings());
                    continue;
                }
                "recorder_once" => {
                    let response = traced.send(get(uri), once_trace.clone()).await.unwrap();
                    response.into_body().collect().await.unwrap();
                    std::hint::black_box(once.timings());
                    continue;
                }
                other => panic!("unknown variant {other}"),
            };
            response.unwrap().into_body().collect().await.unwrap();
        }
    });
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

/// What one variant's rounds measured: the time of each burst, and the connections the
/// server accepted for it.
#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    conns: Vec<usize>,
}

impl Samples {
    fn median_ms(&self) -> f64 {
        let mut times = self.times.clone();
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1e3
    }

    /// The median over rounds of this variant's time divided by `base`'s in that round.
    fn time_ratio(&self, base: &Samples) -> f64 {
        let mut ratios: Vec<f64> = (self.times.iter().zip(&base.times))
            .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    }
}

/// One cold-pool round for `paired`: builds a client with `$make` (a fresh connector and
/// TLS configuration, so no TLS session carries over from an earlier round), times one
/// burst, then drops the client and lets its connections close before the next variant
/// runs. Records the time and the connections the server accepted meanwhile in
/// `$samples`.
macro_rules! cold_burst {
    ($rt:expr, $server:expr, $uri:expr, $samples:expr, $make:expr) => {
        &mut || {
            let client = $make;
            let before = $server.connections();
            let start = Instant::now();
            $rt.block_on(burst!(client, $uri));
            let elapsed = start.elapsed();
            drop(client);
            // Late connects (a pool that dials per request) land here, still counted.
            $rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
            $samples.conns.push($server.connections() - before);
            $samples.times.push(elapsed);
            elapsed
        }
    };
}

/// 64 concurrent GETs to one TLS origin offering h2 and http/1.1, from a cold pool, with
/// the `Dialer`'s default socket options and with `nodelay(true)`: the default leaves
/// Nagle's algorithm on, and both clients then wait for a delayed ACK before their
/// requests go out.
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
    // The same TLS stack for both clients: our `Connector`, which hyper-util's legacy
    // `Client` takes as its connector.
    let connector = |nodelay: bool| {
        let tls = TlsConfig::builder()
            .webpki_roots(false)
            .add_root_pem(&ca.ca_pem())
            .build()
            .unwrap();
        Connector::new(Dialer::builder().nodelay(nodelay).build()).tls(tls)
    };
    let hyper_util = |nodelay| -> Client<Connector, Empty<Bytes>> {
        Client::builder(TokioExecutor::new()).build(connector(nodelay))
    };
    let nettrace = |nodelay| -> HttpClient<Empty<Bytes>> { HttpClient::new(connector(nodelay)) };
    let rt = current_thread();
    let mut samples: [Samples; 5] = Default::default();
    let [s0, s1, s2, s3, s4] = &mut samples;
    support::paired(
        ROUNDS,
        &mut [
            cold_burst!(rt, server, &uri, s0, hyper_util(false)),
            cold_burst!(rt, server, &uri, s1, nettrace(false)),
            // A/A: the baseline again.
            cold_burst!(rt, server, &uri, s2, hyper_util(false)),
            cold_burst!(rt, server, &uri, s3, hyper_util(true)),
            cold_burst!(rt, server, &uri, s4, nettrace(true)),
        ],
    );
    println!(
        "\ntls_h2_cold_burst: {BURST} concurrent GETs to one TLS h2 origin, a fresh client per round, {ROUNDS} rounds"
    );
    println!("  variant                          median time  connections  time ratio (median)");
    let rows = [
        ("hyper_util, default dialer", 0, 0, ""),
        ("nettrace, default dialer", 1, 0, "  (target <= 1.0)"),
        ("hyper_util again (A/A)", 2, 0, ""),
        ("hyper_util, nodelay", 3, 3, ""),
        ("nettrace, nodelay", 4, 3, "  (target <= 1.0)"),
    ];
    for (name, i, base, note) in rows {
        let s = &samples[i];
        let (min, max) = (s.conns.iter().min(), s.conns.iter().max());
        println!(
            "  {name:<32} {:>8.2} ms  {:>3} – {:<3}    {:.3} of row {base}{note}",
            s.median_ms(),
            min.unwrap(),
            max.unwrap(),
            s.time_ratio(&samples[base]),
        );
    }
}

criterion_group!(benches, keepalive, tls_h2_cold_burst);
criterion_main!(benches);
