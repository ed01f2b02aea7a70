//! Soak test: 200,000 traced dials over loopback, a random half of them cancelled at a
//! random moment, printing the process's open descriptors and resident memory every
//! 10,000 dials. Both must stay flat: a dial, finished or dropped, keeps nothing.
//!
//! ```sh
//! cargo run --release --example soak            # 200,000 dials
//! cargo run --release --example soak -- 50000   # another count
//! ```
//!
//! Targets (all on loopback): a live listener, a refused port, a black hole (a full
//! accept queue), a name that resolves to the black hole then the live address (Happy
//! Eyeballs falls back), and a name whose lookup takes 0-3 ms (so cancellations land
//! during lookups, which concurrent dials share). Exits with status 1 if descriptors grew
//! or a `ConnectStart`/`DnsStart` was left without its done.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nettrace::{DialError, Dialer, NetTrace, Resolve, Resolving, StaticResolver};
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Dials run at once.
const BATCH: usize = 500;
/// Print a line every this many dials.
const REPORT_EVERY: usize = 10_000;

/// xorshift64*: random enough to pick targets and cancellation moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Answers `127.0.0.1` after a delay of 0-3 ms that depends on the call.
#[derive(Debug, Default)]
struct SlowResolver {
    calls: AtomicU64,
}

impl Resolve for SlowResolver {
    fn resolve(&self, _host: &str) -> Resolving {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_micros(n * 7919 % 3_000)).await;
            Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
        })
    }
}

/// Open descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Resident memory of this process in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A black hole at `addr`: `listen(0)`, then connections until one no longer completes.
async fn black_hole(addr: SocketAddr) -> io::Result<(Socket, Vec<TcpStream>)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    socket.listen(0)?;
    let addr = socket.local_addr()?.as_socket().expect("an IP socket");
    let mut fillers = Vec::new();
    while let Ok(stream) =
        tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
    {
        fillers.push(stream?);
    }
    Ok((socket, fillers))
}

#[derive(Default)]
struct Tally {
    dns_start: AtomicUsize,
    dns_done: AtomicUsize,
    connect_start: AtomicUsize,
    connect_done: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    timed_out: AtomicUsize,
    cancelled: AtomicUsize,
}

fn bump(n: &AtomicUsize) {
    n.fetch_add(1, Ordering::Relaxed);
}

fn count(n: &AtomicUsize) -> usize {
    n.load(Ordering::Relaxed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> io::Result<()> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| io::Error::other(format!("{n:?}: {e}")))?,
        None => 200_000,
    };

    // The black hole on 127.0.0.2:P and a live listener on 127.0.0.1:P.
    let (hole, live) = loop {
        let hole = black_hole("127.0.0.2:0".parse().unwrap()).await?;
        let port = hole
            .0
            .local_addr()?
            .as_socket()
            .expect("an IP socket")
            .port();
        if let Ok(live) = TcpListener::bind(("127.0.0.1", port)).await {
            break (hole, live);
        }
    };
    let live_addr = live.local_addr()?;
    let hole_addr = SocketAddr::new([127, 0, 0, 2].into(), live_addr.port());
    tokio::spawn(async move {
        while let Ok((stream, _)) = live.accept().await {
            drop(stream);
        }
    });
    // Bound but not listening: connects are refused.
    let refusing = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    refusing.bind(&SocketAddr::from(([127, 0, 0, 3], live_addr.port())).into())?;
    let refused_addr = SocketAddr::new([127, 0, 0, 3].into(), live_addr.port());

    let resolver = StaticResolver::new()
        .insert("fallback.soak", [hole_addr.ip(), live_addr.ip()])
        .fallback(SlowResolver::default());
    let dialer = Dialer::builder()
        .resolver(resolver)
        .attempt_delay(Duration::from_millis(10))
        .timeout(Duration::from_millis(50))
        .build();
    let targets = [
        live_addr.to_string(),
        refused_addr.to_string(),
        hole_addr.to_string(),
        format!("fallback.soak:{}", live_addr.port()),
        format!("slow.soak:{}", live_addr.port()),
    ];

    let tally = Arc::new(Tally::default());
    let trace = {
        let (a, b, c, d) = (tally.clone(), tally.clone(), tally.clone(), tally.clone());
        NetTrace::new()
            .on_dns_start(move |_| bump(&a.dns_start))
            .on_dns_done(move |_| bump(&b.dns_done))
            .on_connect_start(move |_| bump(&c.connect_start))
            .on_connect_done(move |_| bump(&d.connect_done))
    };

    println!(
        "{total} dials, {BATCH} at a time: live {live_addr}, refused {refused_addr}, \
         black hole {hole_addr}, fallback.soak, slow.soak"
    );
    println!(
        "{:>8} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9} {:>8}",
        "dials", "fds", "rss_kib", "connected", "failed", "timed_out", "cancelled", "secs"
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut samples: Vec<(usize, usize, u64)> = Vec::new();
    let mut done = 0;
    while done < total {
        let n = BATCH.min(total - done);
        let batch: Vec<_> = (0..n)
            .map(|_| {
                let target = &targets[rng.below(targets.len() as u64) as usize];
                let dial = nettrace::with_trace(trace.clone(), dialer.dial(target));
                // Half run to the end; the others are dropped before their first poll,
                // or after 0-20 ms (during the lookup, the race, or not at all if done).
                let cancel_after = (rng.below(2) == 0).then(|| rng.below(21));
                let tally = tally.clone();
                tokio::spawn(async move {
                    let result = match cancel_after {
                        None => Some(dial.await),
                        Some(0) => None,
                        Some(ms) => tokio::time::timeout(Duration::from_millis(ms), dial)
                            .await
                            .ok(),
                    };
                    match result {
                        Some(Ok(_stream)) => bump(&tally.connected),
                        Some(Err(DialError::Timeout { .. })) => bump(&tally.timed_out),
                        Some(Err(_)) => bump(&tally.failed),
                        None => bump(&tally.cancelled),
                    }
                })
            })
            .collect();
        for task in batch {
            task.await?;
        }
        let before = done;
        done += n;
        if done / REPORT_EVERY != before / REPORT_EVERY || done == total {
            let (fds, rss) = (open_fds(), rss_kib());
            samples.push((done, fds, rss));
            println!(
                "{done:>8} {fds:>6} {rss:>9} {:>9} {:>7} {:>9} {:>9} {:>8.1}",
                count(&tally.connected),
                count(&tally.failed),
                count(&tally.timed_out),
                count(&tally.cancelled),
                started.elapsed().as_secs_f64()
            );
        }
    }

    let starts = count(&tally.connect_start);
    let dones = count(&tally.connect_done);
    let (dns_starts, dns_dones) = (count(&tally.dns_start), count(&tally.dns_done));
    println!(
        "ConnectStart {starts} / ConnectDone {dones}; DnsStart {dns_starts} / DnsDone {dns_dones}"
    );
    let first = samples.first().copied().unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    let peak_rss = samples.iter().map(|s| s.2).max().unwrap_or(0);
    println!(
        "descriptors {} -> {}; RSS {} KiB -> {} KiB (peak {} KiB) from dial {} to dial {}",
        first.1, last.1, first.2, last.2, peak_rss, first.0, last.0
    );
    drop((hole, refusing));
    if starts != dones || dns_starts != dns_dones || last.1 > first.1 {
        eprintln!("soak failed: unpaired events or descriptors grew");
        std::process::exit(1);
    }
    Ok(())
}
