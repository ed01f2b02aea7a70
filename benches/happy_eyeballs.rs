//! Time to the first connection when the AAAA answer is late (RFC 8305 §3), on loopback.
//!
//! A DNS server on 127.0.0.1 answers `late6.test` with A `127.0.0.1` at once and AAAA
//! `::1` after 1.5 s; listeners on `127.0.0.1:P` and `[::1]:P` accept. Timed from dial start
//! to connected, in the same run:
//! - `nettrace_dialer`: `Dialer` with `HickoryResolver::with_name_servers` (AAAA and A asked
//!   in parallel, each used as it comes): starts on the A answer after the 50 ms
//!   resolution delay, so ≈ 50 ms.
//! - `hyper_util_joined_hickory`: hyper-util's `HttpConnector` whose resolver is the same
//!   `HickoryResolver`, both answers joined (`Resolve::resolve`), as any resolver that
//!   returns one list behaves: ≈ 1.5 s.
//! - `hickory_joined_then_tokio`: the same joined lookup, then `TcpStream::connect` on the
//!   list: ≈ 1.5 s.
//!
//! Then 20 more traced dials measure the target directly: the time from the A answer's
//! `DnsAnswer` to `ConnectDone(Connected)` should be at most the resolution delay + 5 ms.
//!
//! Only loopback is touched; the resolver asks only the loopback server. Run with
//! `cargo bench --bench happy_eyeballs` (about 45 s: each joined sample takes 1.5 s).

use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, Criterion, SamplingMode};
use http::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use nettrace::{ConnectOutcome, Dialer, Family, HickoryResolver, NetTrace, Resolve};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tower_service::Service;

mod support;

// The tests' loopback DNS server (it allows its own dead code). Benches build with
// `cfg(test)` but without `#[test]` functions, so its self-test module keeps an import
// only a test uses.
#[allow(unused_imports)]
#[path = "../tests/support/dns.rs"]
mod dns;

use dns::{DnsServer, Entry};

const GROUP: &str = "happy_eyeballs_late_aaaa";
const HOST: &str = "late6.test";
const AAAA_DELAY: Duration = Duration::from_millis(1500);
/// `DialerBuilder::resolution_delay`'s default.
const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// hyper-util's resolver: the hickory lookup, both families joined.
#[derive(Clone)]
struct Joined(HickoryResolver);

impl Service<Name> for Joined {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.0.resolve(name.as_str());
        Box::pin(async move {
            let ips = lookup.await.map_err(io::Error::other)?;
            // hyper-util puts the URI's port in.
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| (ip, 0).into()).collect();
            Ok(addrs.into_iter())
        })
    }
}

/// One current-thread runtime for the DNS server, the listeners and the clients.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Listeners on `127.0.0.1:P` and `[::1]:P` that close every accepted connection; `P`.
fn serve_both(rt: &Runtime) -> u16 {
    let serve = |listener: TcpListener| {
        rt.spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
    };
    for _ in 0..20 {
        let v4 = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = v4.local_addr().unwrap().port();
        if let Ok(v6) = rt.block_on(TcpListener::bind(("::1", port))) {
            serve(v4);
            serve(v6);
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// Times `iters` sequential connects; `check` sees each connection's peer.
fn connect_loop(
    b: &mut Bencher<'_>,
    rt: &Runtime,
    mut connect: impl AsyncFnMut() -> TcpStream,
    check: impl Fn(SocketAddr),
) {
    b.iter_custom(|iters| {
        rt.block_on(async {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let stream = connect().await;
                total += start.elapsed();
                check(stream.peer_addr().unwrap());
            }
            total
        })
    });
}

fn late_aaaa(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(DnsServer::start());
    server.insert(
        HOST,
        Entry::new()
            .a("127.0.0.1")
            .aaaa("::1")
            .aaaa_delay(AAAA_DELAY),
    );
    let port = serve_both(&rt);
    let hickory = HickoryResolver::with_name_servers(&[server.addr()]);
    let dialer = Dialer::builder().resolver(hickory.clone()).build();
    let mut connector = HttpConnector::new_with_resolver(Joined(hickory.clone()));
    let uri: Uri = format!("http://{HOST}:{port}").parse().unwrap();
    let v4 = |peer: SocketAddr| assert!(peer.is_ipv4(), "connected to {peer}");
    let any = |_: SocketAddr| {};

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("nettrace_dialer", |b| {
        connect_loop(
            b,
            &rt,
            async || dialer.dial_host(HOST, port).await.unwrap(),
            v4,
        )
    });
    group.bench_function("hyper_util_joined_hickory", |b| {
        connect_loop(
            b,
            &rt,
            async || {
                poll_fn(|cx| connector.poll_ready(cx)).await.unwrap();
                connector.call(uri.clone()).await.unwrap().into_inner()
            },
            any,
        )
    });
    group.bench_function("hickory_joined_then_tokio", |b| {
        connect_loop(
            b,
            &rt,
            async || {
                let ips = hickory.resolve(HOST).await.unwrap();
                let addrs: Vec<SocketAddr> = ips.iter().map(|ip| (*ip, port).into()).collect();
                TcpStream::connect(&addrs[..]).await.unwrap()
            },
            any,
        )
    });
    group.finish();

    let after_a = after_the_a_answer(&rt, &dialer, port);

    println!(
        "\n{GROUP}: mean time from dial start to connected, AAAA {AAAA_DELAY:?} late, same run"
    );
    let ours = support::mean_ns(GROUP, "nettrace_dialer");
    for bench in [
        "nettrace_dialer",
        "hyper_util_joined_hickory",
        "hickory_joined_then_tokio",
    ] {
        match (support::mean_ns(GROUP, bench), ours) {
            (Some(t), Some(ours)) => {
                println!("  {bench:<28} {:>9.2} ms  {:>6.1}x", t / 1e6, t / ours)
            }
            _ => println!("  {bench:<28} (no estimate)"),
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "\n{GROUP}: nettrace_dialer, A answer to connected over {} dials \
         (target <= resolution delay {RESOLUTION_DELAY:?} + 5 ms)",
        after_a.len()
    );
    println!(
        "  min {:.2} ms  median {:.2} ms  max {:.2} ms",
        ms(after_a[0]),
        ms(after_a[after_a.len() / 2]),
        ms(after_a[after_a.len() - 1])
    );
}

/// Dials 20 times with a trace that notes when the A answer came and when the dial
/// connected; returns the gaps, sorted.
fn after_the_a_answer(rt: &Runtime, dialer: &Dialer, port: u16) -> Vec<Duration> {
    let a_at = Arc::new(Mutex::new(None));
    let connected_at = Arc::new(Mutex::new(None));
    let (a, connected) = (a_at.clone(), connected_at.clone());
    let trace = NetTrace::new()
        .on_dns_answer(move |e| {
            if e.family == Family::Ipv4 && e.error.is_none() {
                *a.lock().unwrap() = Some(Instant::now());
            }
        })
        .on_connect_done(move |e| {
            if matches!(e.outcome, ConnectOutcome::Connected) {
                *connected.lock().unwrap() = Some(Instant::now());
            }
        });
    let mut gaps: Vec<Duration> = (0..20)
        .map(|_| {
            let dial = nettrace::with_trace(trace.clone(), dialer.dial_host(HOST, port));
            let stream = rt.block_on(dial).unwrap();
            assert!(stream.peer_addr().unwrap().ip() == IpAddr::from([127, 0, 0, 1]));
            let a = a_at.lock().unwrap().take().expect("an A answer");
            let connected = connected_at.lock().unwrap().take().expect("connected");
            connected - a
        })
        .collect();
    gaps.sort();
    gaps
}

criterion_group! {
    name = benches;
    // Short: every joined sample waits 1.5 s for AAAA. Set here, not on the group, so that
    // `--warm-up-time` and `--measurement-time` still apply.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = late_aaaa
}
criterion_main!(benches);
