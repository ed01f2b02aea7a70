//! The cost of a traced dial, on loopback only, against tokio and hyper-util in the same run.
//!
//! - `connect_ip_literal`: sequential connects to `127.0.0.1:P` by IP literal with
//!   `tokio::net::TcpStream::connect` (the baseline), `Dialer::dial` with no trace, with four
//!   no-op hooks and with four recording hooks, and hyper-util's `HttpConnector`. Printed as
//!   connects/s and as ratios to tokio. Targets: no trace >= 0.97 of tokio's rate, no-op
//!   hooks >= 0.95.
//! - `happy_eyeballs_fallback`: a name resolving to `[::1]:P` (black-holed) then
//!   `127.0.0.1:P` (live): our `Dialer` (250 ms attempt delay) against hyper-util's
//!   `HttpConnector` (300 ms Happy Eyeballs timeout, its default).
//!
//! - `traced_dial` (with `--features tracing,metrics`): paired rounds of a dial by name
//!   (`StaticResolver`, one lookup and one attempt to `127.0.0.1:P`) untraced, again
//!   untraced (the A/A row: the noise floor), with `NetTrace::tracing()` under
//!   `tracing`'s `NoSubscriber` and under a `tracing_subscriber::registry()` with no
//!   layer (every span made, none exported), and with `NetTrace::metrics` on the global
//!   no-op meter and on an SDK meter (a periodic reader that does not export during the
//!   run). Printed as rate ratios to the untraced dial. Target: >= 0.95 each.
//!
//! Only loopback is touched, and no name goes to the system's DNS: names resolve through
//! fixed maps. Client and listeners share one current-thread runtime, so no cross-thread
//! wake-up is timed; each connection waits for the server's FIN before it is dropped
//! (see `finish`), the same for every variant.
//!
//! Run with `cargo bench --bench dial` (quicker: `-- --warm-up-time 1 --measurement-time 2`).

use std::future::{poll_fn, ready, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, Criterion, SamplingMode};
use http::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use nettrace::{ConnectOutcome, Dialer, NetTrace, StaticResolver};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tower_service::Service;

#[macro_use]
mod support;

// The tests' black hole: a listener whose accept queue is full.
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/support/net.rs"]
mod net;

use net::BlackHole;

const LITERAL: &str = "connect_ip_literal";
const FALLBACK: &str = "happy_eyeballs_fallback";

/// A hyper-util resolver answering every name with the same addresses, in order.
#[derive(Clone, Debug)]
struct FixedAddrs(Vec<SocketAddr>);

impl Service<Name> for FixedAddrs {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Ready<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        ready(Ok(self.0.clone().into_iter()))
    }
}

/// One event as the recording hooks keep it.
#[derive(Debug)]
#[allow(dead_code)] // Only ever stored.
enum Event {
    DnsStart,
    DnsDone(usize),
    ConnectStart(SocketAddr, usize),
    ConnectDone(SocketAddr, usize, bool),
}

fn noop_trace() -> NetTrace {
    NetTrace::new()
        .on_dns_start(|_| {})
        .on_dns_done(|_| {})
        .on_connect_start(|_| {})
        .on_connect_done(|_| {})
}

fn recording_trace(log: &Arc<Mutex<Vec<Event>>>) -> NetTrace {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    NetTrace::new()
        .on_dns_start(move |_| a.lock().unwrap().push(Event::DnsStart))
        .on_dns_done(move |e| b.lock().unwrap().push(Event::DnsDone(e.addrs.len())))
        .on_connect_start(move |e| {
            c.lock()
                .unwrap()
                .push(Event::ConnectStart(e.addr, e.attempt))
        })
        .on_connect_done(move |e| {
            let won = matches!(e.outcome, ConnectOutcome::Connected);
            d.lock()
                .unwrap()
                .push(Event::ConnectDone(e.addr, e.attempt, won))
        })
}

/// One current-thread runtime for client and server: no cross-thread wake-ups to time.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Binds `ip:port`; a task spawned on `rt` closes every accepted connection at once.
fn serve(rt: &Runtime, ip: &str, port: u16) -> SocketAddr {
    let ip: IpAddr = ip.parse().unwrap();
    let listener = rt.block_on(TcpListener::bind((ip, port))).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            // Dropping the accepted stream closes it: the server sends the first FIN.
            let _ = listener.accept().await;
        }
    });
    addr
}

/// Ends a client connection the same way for every variant: wait for the server's FIN,
/// then close. The server closing first keeps TIME_WAIT off the client's side, so the
/// ~28k ephemeral ports never run out and later benches do not pay for earlier ones.
async fn finish(mut stream: TcpStream) {
    let mut byte = [0u8; 1];
    let n = stream.read(&mut byte).await.expect("read EOF");
    assert_eq!(n, 0, "the server sends nothing");
}

/// Times `iters` sequential rounds of `connect` then [`finish`]; only this loop is timed.
fn connect_loop(b: &mut Bencher<'_>, rt: &Runtime, mut connect: impl AsyncFnMut() -> TcpStream) {
    b.iter_custom(|iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                finish(connect().await).await;
            }
            start.elapsed()
        })
    });
}

fn connect_ip_literal(c: &mut Criterion) {
    let rt = runtime();
    let addr = serve(&rt, "127.0.0.1", 0);
    let target = addr.to_string();
    let dialer = Dialer::new();
    let log = Arc::new(Mutex::new(Vec::new()));

    let mut group = c.benchmark_group(LITERAL);
    group.bench_function("tokio_connect", |b| {
        connect_loop(b, &rt, async || TcpStream::connect(addr).await.unwrap())
    });
    group.bench_function("dialer_no_trace", |b| {
        connect_loop(b, &rt, async || dialer.dial(&target).await.unwrap())
    });
    // One `with_trace` scope per dial, as a per-request trace would be installed.
    let noop = noop_trace();
    group.bench_function("dialer_noop_hooks", |b| {
        connect_loop(b, &rt, async || {
            nettrace::with_trace(noop.clone(), dialer.dial(&target))
                .await
                .unwrap()
        })
    });
    let recording = recording_trace(&log);
    // Sanity: one dial under the recording trace reports one attempt's start and done.
    let dial = nettrace::with_trace(recording.clone(), dialer.dial(&target));
    rt.block_on(async { finish(dial.await.unwrap()).await });
    assert_eq!(log.lock().unwrap().len(), 2, "{:?}", log.lock().unwrap());
    group.bench_function("dialer_recording_hooks", |b| {
        log.lock().unwrap().clear(); // Bounded: one batch of events at most.
        connect_loop(b, &rt, async || {
            nettrace::with_trace(recording.clone(), dialer.dial(&target))
                .await
                .unwrap()
        })
    });
    // hyper-util keeps its defaults; unlike the others it also calls `set_nodelay(false)`
    // on every connected socket (one more syscall) and checks the URI's scheme.
    let mut connector = HttpConnector::new_with_resolver(FixedAddrs(vec![addr]));
    let uri: Uri = format!("http://{addr}").parse().unwrap();
    group.bench_function("hyper_util_http_connector", |b| {
        connect_loop(b, &rt, async || {
            poll_fn(|cx| connector.poll_ready(cx)).await.unwrap();
            connector.call(uri.clone()).await.unwrap().into_inner()
        })
    });
    group.finish();

    paired(&rt, addr, &dialer, &noop);

    let others = [
        "dialer_no_trace",
        "dialer_noop_hooks",
        "dialer_recording_hooks",
        "hyper_util_http_connector",
    ];
    support::print_time_ratios(LITERAL, "tokio_connect", &others);
    support::print_rate_ratios(LITERAL, "tokio_connect", &others);
}

/// Rate ratios from side-by-side rounds of 300 connects each (tokio, Dialer with no
/// trace, Dialer with no-op hooks), 15 rounds; see `support::paired`.
fn paired(rt: &Runtime, addr: SocketAddr, dialer: &Dialer, noop: &NetTrace) {
    const ROUNDS: usize = 15;
    const PER_ROUND: usize = 300;
    let target = addr.to_string();
    let ratios = support::paired(
        ROUNDS,
        &mut [
            timed_batch!(rt, PER_ROUND, {
                finish(TcpStream::connect(addr).await.unwrap()).await;
            }),
            timed_batch!(rt, PER_ROUND, {
                finish(dialer.dial(&target).await.unwrap()).await;
            }),
            timed_batch!(rt, PER_ROUND, {
                finish(
                    nettrace::with_trace(noop.clone(), dialer.dial(&target))
                        .await
                        .unwrap(),
                )
                .await;
            }),
        ],
    );
    println!("\n{LITERAL}: paired rate ratio to tokio_connect, median of {ROUNDS} rounds");
    println!(
        "  dialer_no_trace              {:.3}  (target >= 0.97)",
        ratios[0]
    );
    println!(
        "  dialer_noop_hooks            {:.3}  (target >= 0.95)",
        ratios[1]
    );
}

/// A live `127.0.0.1:P` and a black-holed `[::1]:P` on the same port `P`.
fn fallback_pair(rt: &Runtime) -> (u16, BlackHole) {
    for _ in 0..20 {
        let port = serve(rt, "127.0.0.1", 0).port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            return (port, rt.block_on(BlackHole::on_port("::1", port)));
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

fn happy_eyeballs_fallback(c: &mut Criterion) {
    let rt = runtime();
    let (port, _hole) = fallback_pair(&rt);
    let (v6, v4): (IpAddr, IpAddr) = ("::1".parse().unwrap(), "127.0.0.1".parse().unwrap());

    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("fallback.test", [v6, v4]))
        .build();
    let target = format!("fallback.test:{port}");
    // hyper-util's default Happy Eyeballs timeout is 300 ms; set it anyway to be explicit.
    let addrs = [SocketAddr::new(v6, port), SocketAddr::new(v4, port)];
    let mut connector = HttpConnector::new_with_resolver(FixedAddrs(addrs.to_vec()));
    connector.set_happy_eyeballs_timeout(Some(Duration::from_millis(300)));
    let uri: Uri = format!("http://fallback.test:{port}").parse().unwrap();

    let mut group = c.benchmark_group(FALLBACK);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("nettrace_dialer_250ms", |b| {
        connect_loop(b, &rt, async || dialer.dial(&target).await.unwrap())
    });
    group.bench_function("hyper_util_300ms", |b| {
        connect_loop(b, &rt, async || {
            poll_fn(|cx| connector.poll_ready(cx)).await.unwrap();
            connector.call(uri.clone()).await.unwrap().into_inner()
        })
    });
    group.finish();

    let ours = support::mean_ns(FALLBACK, "nettrace_dialer_250ms");
    let theirs = support::mean_ns(FALLBACK, "hyper_util_300ms");
    if let (Some(ours), Some(theirs)) = (ours, theirs) {
        println!("\n{FALLBACK}: mean time to connect through the fallback, same run");
        println!("  nettrace_dialer_250ms        {:>8.2} ms", ours / 1e6);
        println!("  hyper_util_300ms             {:>8.2} ms", theirs / 1e6);
        println!("  ratio (nettrace / hyper-util) {:>7.3}", ours / theirs);
    }
}

/// Paired rounds of traced and untraced dials by name; see the module docs.
fn traced_dial(_c: &mut Criterion) {
    #[cfg(all(feature = "tracing", feature = "metrics"))]
    otel::paired_rows();
    #[cfg(not(all(feature = "tracing", feature = "metrics")))]
    println!("\ntraced_dial: run with --features tracing,metrics");
}

#[cfg(all(feature = "tracing", feature = "metrics"))]
mod otel {
    use std::time::Duration;

    use nettrace::{Dialer, NetTrace, StaticResolver};
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use tracing::Dispatch;

    use super::{finish, runtime, serve, support};

    const ROUNDS: usize = 41;
    const PER_ROUND: usize = 300;

    /// Runs `batch` with `dispatch` as the thread's default subscriber.
    fn under(dispatch: &Dispatch, batch: &mut dyn FnMut() -> Duration) -> Duration {
        tracing::dispatcher::with_default(dispatch, batch)
    }

    pub(super) fn paired_rows() {
        let rt = runtime();
        let addr = serve(&rt, "127.0.0.1", 0);
        let dialer = Dialer::builder()
            .resolver(StaticResolver::new().insert("bench.test", [addr.ip()]))
            .build();
        let target = format!("bench.test:{}", addr.port());

        let spans = NetTrace::tracing();
        let none = Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let registry = Dispatch::new(tracing_subscriber::registry());
        let noop_meter = NetTrace::metrics(&opentelemetry::global::meter("bench"));
        // Aggregates every value; exports only every 60 s (the default), so not during a round.
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
            .build();
        let sdk_meter = NetTrace::metrics(&provider.meter("bench"));

        let dial = |trace: &NetTrace| nettrace::with_trace(trace.clone(), dialer.dial(&target));
        let ratios = support::paired(
            ROUNDS,
            &mut [
                timed_batch!(rt, PER_ROUND, {
                    finish(dialer.dial(&target).await.unwrap()).await;
                }),
                timed_batch!(rt, PER_ROUND, {
                    finish(dialer.dial(&target).await.unwrap()).await;
                }),
                &mut || {
                    under(
                        &none,
                        timed_batch!(rt, PER_ROUND, {
                            finish(dial(&spans).await.unwrap()).await;
                        }),
                    )
                },
                &mut || {
                    under(
                        &registry,
                        timed_batch!(rt, PER_ROUND, {
                            finish(dial(&spans).await.unwrap()).await;
                        }),
                    )
                },
                timed_batch!(rt, PER_ROUND, {
                    finish(dial(&noop_meter).await.unwrap()).await;
                }),
                timed_batch!(rt, PER_ROUND, {
                    finish(dial(&sdk_meter).await.unwrap()).await;
                }),
            ],
        );
        println!("\ntraced_dial: paired rate ratio to an untraced dial by name, median of {ROUNDS} rounds of {PER_ROUND}");
        let rows = [
            "untraced (A/A)",
            "tracing, NoSubscriber",
            "tracing, registry (no layer)",
            "metrics, global no-op meter",
            "metrics, SDK meter",
        ];
        for (row, ratio) in rows.iter().zip(ratios) {
            println!("  {row:<30} {ratio:.3}  (target >= 0.95)");
        }
        provider.shutdown().unwrap();
    }
}

criterion_group! {
    name = benches;
    // Set here, not on the groups, so that `--warm-up-time` and `--measurement-time` still
    // apply (group settings would override them). Kept short: ~20k connects/s each leave
    // a (server-side) TIME_WAIT socket behind.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = connect_ip_literal, happy_eyeballs_fallback, traced_dial
}
criterion_main!(benches);
