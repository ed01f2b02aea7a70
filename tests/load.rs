//! Load: 10,000 dials at once to loopback listeners all connect, every start is paired
//! with a done, and every descriptor is closed afterwards.
//!
//! A binary of its own: it raises the process's descriptor limit and counts descriptors,
//! so no other test may run beside it.

#![allow(unreachable_pub)]

#[allow(dead_code)]
#[path = "support/net.rs"]
mod net;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, Dialer, NetTrace, StaticResolver};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use net::open_fds;

/// Dials in flight at once.
const DIALS: usize = 10_000;
/// Listeners, on 127.0.0.1 ..= 127.0.0.16, so no accept queue gets long.
const LISTENERS: u8 = 16;
/// Descriptors needed: one per dial (the listeners close what they accept at once),
/// and room for the runtime, the listeners and the test harness.
const NEEDED: u64 = DIALS as u64 + 1_024;

/// Raises the soft descriptor limit to `NEEDED`; `Err` with the hard limit if it is
/// lower.
fn raise_fd_limit() -> Result<(), u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0,
        "getrlimit"
    );
    if limit.rlim_max != libc::RLIM_INFINITY && limit.rlim_max < NEEDED {
        return Err(limit.rlim_max);
    }
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < NEEDED {
        limit.rlim_cur = NEEDED;
        // SAFETY: `limit` is a valid rlimit; the soft limit stays within the hard one.
        assert_eq!(
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) },
            0,
            "setrlimit"
        );
    }
    Ok(())
}

/// A listener on `ip` with a long accept queue that closes every connection at once.
fn listener(ip: Ipv4Addr) -> TcpListener {
    let addr = SocketAddr::new(IpAddr::V4(ip), 0);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(4096).unwrap();
    socket.set_nonblocking(true).unwrap();
    TcpListener::from_std(socket.into()).unwrap()
}

#[derive(Default)]
struct Counts {
    dns_start: AtomicUsize,
    dns_done: AtomicUsize,
    connect_start: AtomicUsize,
    connected: AtomicUsize,
    other_done: AtomicUsize,
}

impl Counts {
    fn trace(self: &Arc<Counts>) -> NetTrace {
        let (a, b, c, d) = (self.clone(), self.clone(), self.clone(), self.clone());
        let bump = |n: &AtomicUsize| {
            n.fetch_add(1, Ordering::Relaxed);
        };
        NetTrace::new()
            .on_dns_start(move |_| bump(&a.dns_start))
            .on_dns_done(move |_| bump(&b.dns_done))
            .on_connect_start(move |_| bump(&c.connect_start))
            .on_connect_done(move |e| match e.outcome {
                ConnectOutcome::Connected => bump(&d.connected),
                _ => bump(&d.other_done),
            })
    }

    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::Relaxed)
    }
}

#[test]
fn ten_thousand_concurrent_dials_all_connect() {
    if let Err(hard) = raise_fd_limit() {
        println!("skipped: {DIALS} dials need {NEEDED} file descriptors; the hard limit is {hard}");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut addrs = Vec::new();
        let mut resolver = StaticResolver::new();
        for i in 1..=LISTENERS {
            let listener = listener(Ipv4Addr::new(127, 0, 0, i));
            let addr = listener.local_addr().unwrap();
            addrs.push(addr);
            resolver = resolver.insert(&format!("load{i}.test"), [addr.ip()]);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    drop(stream);
                }
            });
        }
        let dialer = Dialer::builder().resolver(resolver).build();
        // Warm up, so descriptors that live as long as the runtime are counted in the
        // baseline.
        drop(dialer.dial(&addrs[0].to_string()).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = open_fds();

        let counts = Arc::new(Counts::default());
        let started = Instant::now();
        // Half by IP literal, half by name (sharing lookups per name).
        let tasks: Vec<_> = (0..DIALS)
            .map(|i| {
                let k = i % usize::from(LISTENERS);
                let addr = addrs[k];
                let dial = if i % 2 == 0 {
                    dialer.dial(&addr.to_string())
                } else {
                    dialer.dial_host(&format!("load{}.test", k + 1), addr.port())
                };
                let dial = nettrace::with_trace(counts.trace(), dial);
                tokio::spawn(async move { (addr, dial.await) })
            })
            .collect();
        let mut streams = Vec::with_capacity(DIALS);
        for task in tasks {
            let (addr, result) = task.await.unwrap();
            let stream = result.unwrap_or_else(|err| panic!("dial to {addr}: {err}"));
            assert_eq!(stream.peer_addr().unwrap(), addr);
            streams.push(stream);
        }
        let elapsed = started.elapsed();
        let peak = open_fds();
        println!(
            "{DIALS} concurrent dials connected in {elapsed:?}; descriptors: {before} before, \
             {peak} with every stream open"
        );

        assert_eq!(Counts::get(&counts.connect_start), DIALS);
        assert_eq!(Counts::get(&counts.connected), DIALS);
        assert_eq!(Counts::get(&counts.other_done), 0);
        let lookups = Counts::get(&counts.dns_start);
        assert_eq!(lookups, DIALS / 2);
        assert_eq!(Counts::get(&counts.dns_done), lookups);
        assert!(peak >= before + DIALS, "every stream holds a descriptor");

        drop(streams);
        // The listeners close their side at once; give them a moment to catch up.
        let deadline = Instant::now() + Duration::from_secs(5);
        while open_fds() > before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(open_fds(), before, "every descriptor was closed");
        assert_eq!(dialer.resolver().in_flight(), 0);
        assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    });
}
