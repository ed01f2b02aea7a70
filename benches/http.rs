//! Keep-alive GET requests per second over loopback: hyper-util's client with its own
//! `HttpConnector` (the baseline) against `nettrace::HttpClient`, untraced and with a
//! `TimingsRecorder` per request, all measured in one run. Target: the traced client
//! reaches at least 0.97 of the baseline's rate.
//!
//! Run with `cargo bench --bench http --features http`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nettrace::{Connector, Dialer, HttpClient, TimingsRecorder};

#[path = "support/http_server.rs"]
mod http_server;
#[macro_use]
mod support;

use http_server::start_server;

fn get(uri: &http::Uri) -> http::Request<Empty<Bytes>> {
    http::Request::get(uri.clone()).body(Empty::new()).unwrap()
}

fn keepalive(c: &mut Criterion) {
    let addr = start_server();
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
    println!("  nettrace_untraced            {:.3}", ratios[0]);
    println!(
        "  nettrace_timings_recorder    {:.3}  (target >= 0.97)",
        ratios[2]
    );
}

criterion_group!(benches, keepalive);
criterion_main!(benches);
