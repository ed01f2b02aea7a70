//! Keep-alive GET requests per second over loopback with reqwest: a plain reqwest client
//! (the baseline) against one built with `nettrace::reqwest::Resolver` and `ConnectLayer`,
//! untraced and with a trace in scope for every request, all measured in one run.
//! Target: the client with the adapter and the layer reaches at least 0.98 of the
//! baseline's rate.
//!
//! Run with `cargo bench --bench reqwest --features reqwest`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use nettrace::reqwest::{ConnectLayer, Resolver};
use nettrace::{NetTrace, StaticResolver};

#[path = "support/http_server.rs"]
mod http_server;
#[macro_use]
mod support;

use http_server::start_server;

/// A trace with every hook a request could fire, each counting.
fn counting_trace(count: &Arc<AtomicUsize>) -> NetTrace {
    let hook = |count: &Arc<AtomicUsize>| {
        let count = count.clone();
        move || {
            count.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (a, b, c, d, e) = (
        hook(count),
        hook(count),
        hook(count),
        hook(count),
        hook(count),
    );
    NetTrace::new()
        .on_dns_start(move |_| a())
        .on_dns_answer(move |_| b())
        .on_dns_done(move |_| c())
        .on_connection_setup_start(move |_| d())
        .on_connection_setup_done(move |_| e())
}

async fn get(client: &reqwest::Client, url: &str) {
    let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
    std::hint::black_box(body);
}

fn keepalive(c: &mut Criterion) {
    let addr = start_server();
    // A name, so that the first connect of each client resolves it: reqwest's own override
    // for the baseline, the adapter over a static map for ours. No system DNS either way.
    let url = format!("http://bench.test:{}/", addr.port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plain = reqwest::Client::builder()
        .no_proxy()
        .resolve("bench.test", addr)
        .build()
        .unwrap();
    let adapted = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(Resolver::new(
            StaticResolver::new().insert("bench.test", [addr.ip()]),
        )))
        .connector_layer(ConnectLayer::new())
        .build()
        .unwrap();
    // reqwest's own cost of any connector layer (it boxes its connector, and hyper-util
    // clones the connector for every request, pooled or not), to tell it from ours.
    let identity = reqwest::Client::builder()
        .no_proxy()
        .resolve("bench.test", addr)
        .connector_layer(tower_layer::Identity::new())
        .build()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let trace = counting_trace(&count);

    let mut group = c.benchmark_group("reqwest_keepalive_get");
    group.measurement_time(Duration::from_secs(4));
    for (name, client, traced) in [
        ("reqwest", &plain, false),
        ("reqwest_nettrace_untraced", &adapted, false),
        ("reqwest_nettrace_traced", &adapted, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if traced {
                            nettrace::with_trace(trace.clone(), get(client, &url)).await;
                        } else {
                            get(client, &url).await;
                        }
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    // The untraced runs made the adapted client's one connection; the traced runs reused
    // it, so their trace fired nothing: this measures keep-alive requests.
    assert_eq!(
        count.load(Ordering::Relaxed),
        0,
        "the traced runs reused the connection"
    );
    paired(&rt, [&plain, &adapted, &identity], &trace, &url);
    support::print_rate_ratios(
        "reqwest_keepalive_get",
        "reqwest",
        &["reqwest_nettrace_untraced", "reqwest_nettrace_traced"],
    );
}

/// Rate ratios from side-by-side rounds of 500 requests each (plain, adapted, plain again,
/// adapted with a trace, plain with an identity connector layer), 21 rounds; see
/// `support::paired`.
fn paired(
    rt: &tokio::runtime::Runtime,
    [plain, adapted, identity]: [&reqwest::Client; 3],
    trace: &NetTrace,
    url: &str,
) {
    const ROUNDS: usize = 21;
    const PER_ROUND: usize = 500;
    let ratios = support::paired(
        ROUNDS,
        &mut [
            timed_batch!(rt, PER_ROUND, {
                get(plain, url).await;
            }),
            timed_batch!(rt, PER_ROUND, {
                get(adapted, url).await;
            }),
            // A/A: the baseline again, to show how far identical work drifts.
            timed_batch!(rt, PER_ROUND, {
                get(plain, url).await;
            }),
            timed_batch!(rt, PER_ROUND, {
                nettrace::with_trace(trace.clone(), get(adapted, url)).await;
            }),
            timed_batch!(rt, PER_ROUND, {
                get(identity, url).await;
            }),
        ],
    );
    println!("\nreqwest_keepalive_get: paired rate ratio to reqwest, median of {ROUNDS} rounds");
    println!("  reqwest again (A/A)          {:.3}", ratios[1]);
    println!(
        "  nettrace_untraced            {:.3}  (target >= 0.98)",
        ratios[0]
    );
    println!("  nettrace_traced              {:.3}", ratios[2]);
    println!("  reqwest + identity layer     {:.3}", ratios[3]);
}

criterion_group!(benches, keepalive);
criterion_main!(benches);
