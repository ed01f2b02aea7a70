//! Property tests of whole dials over real loopback sockets.
//!
//! The schedule itself is checked much more often, without I/O, by the property tests
//! of `src/dial/race.rs`; here random scenarios run through the public `Dialer`: one to
//! eight addresses of both families, each live, refusing, black-holed or never accepting
//! (the kernel completes the handshake, nobody calls `accept`), behind a resolver with a
//! random delay or failure, with a random attempt delay, attempt timeout and timeout, and
//! dropped by the caller at a random moment. Every dial must keep the trace's invariants,
//! agree with its scenario, and leave no socket open. A second property runs the same
//! scenarios inside nested `with_trace` scopes, one of which holds a hook that panics.
//!
//! All cases run in one test on one single-threaded runtime, one case after another, so
//! the socket-leak check can be exact although other tests of this binary run beside it:
//! it looks only at sockets connected to this test's own peers (`127.77.0.0/16` and
//! `[::1]`, on this test's ports: both properties run beside each other on their own grids).

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::FutureExt;
use nettrace::{
    DialError, DialId, Dialer, NetTrace, Resolve, ResolveError, ResolveErrorKind, Resolving,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use crate::support::record::{check_pairs, Event, Outcome, Recorder};

/// Real-socket cases per run; each runs one to four dials at once.
const CASES: u32 = 200;

/// Slack for a loaded two-core machine: how much later than the schedule a loopback
/// connect may be seen to finish before a scenario counts as "should have connected".
const MARGIN: Duration = Duration::from_millis(250);

/// How a peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Accepts (and closes) every connection.
    Live,
    /// Bound but not listening: every SYN is answered with a RST.
    Refused,
    /// A full accept queue: SYNs are dropped, the connect hangs.
    BlackHole,
    /// Listening with a long queue but never accepting: the kernel completes the
    /// handshake, so connects succeed although nobody accepts.
    Backlogged,
}

const KINDS: [Kind; 4] = [Kind::Live, Kind::Refused, Kind::BlackHole, Kind::Backlogged];

impl Kind {
    fn index(self) -> u8 {
        KINDS.iter().position(|k| *k == self).unwrap() as u8
    }

    fn connects(self) -> bool {
        matches!(self, Kind::Live | Kind::Backlogged)
    }
}

/// Peers of every kind on `127.77.<kind>.<1..=8>`, and `[::1]`, on four ports: on port
/// `ports[k]`, `[::1]` is of kind `KINDS[k]` (there is only one IPv6 loopback address).
struct Grid {
    ports: [u16; 4],
    _sockets: Vec<Socket>,
    _fillers: Vec<TcpStream>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The sockets this process holds to the grid before any dial: the black holes'
    /// fillers.
    baseline: HashSet<u64>,
}

/// Every socket the dials opened to `grid` is closed: the streams and the attempts that
/// lost, failed or were cancelled.
fn no_socket_left(grid: &Grid) -> Result<(), TestCaseError> {
    let held: Vec<u64> = grid
        .held_sockets()
        .difference(&grid.baseline)
        .copied()
        .collect();
    prop_assert!(held.is_empty(), "sockets left open: {:?}", held);
    Ok(())
}

impl Drop for Grid {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn v4(kind: Kind, slot: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 77, kind.index(), slot as u8 + 1))
}

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A socket bound to `addr`; listening with `backlog` if given.
fn bound(addr: SocketAddr, backlog: Option<i32>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    if let Some(backlog) = backlog {
        socket.listen(backlog)?;
    }
    Ok(socket)
}

/// A black hole at `addr`: `listen(0)`, then connections until one no longer completes.
async fn black_hole(addr: SocketAddr) -> io::Result<(Socket, Vec<TcpStream>)> {
    let listener = bound(addr, Some(0))?;
    let mut fillers = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(stream) => fillers.push(stream?),
            Err(_) => return Ok((listener, fillers)),
        }
        assert!(
            fillers.len() < 16,
            "the accept queue of {addr} never filled"
        );
    }
}

impl Grid {
    async fn start() -> Grid {
        let mut ports = [0; 4];
        let mut sockets = Vec::new();
        let mut fillers = Vec::new();
        let mut listeners = Vec::new();
        for (k, v6_kind) in KINDS.iter().enumerate() {
            let (port, mut peers) = loop {
                if let Ok(found) = Grid::peers_on_one_port(*v6_kind).await {
                    break found;
                }
            };
            ports[k] = port;
            fillers.append(&mut peers.fillers);
            sockets.append(&mut peers.sockets);
            listeners.append(&mut peers.live);
        }
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(async move {
                    // Accept and close at once, so the server side holds no descriptor.
                    while let Ok(stream) = listener.accept().await {
                        drop(stream);
                    }
                })
            })
            .collect();
        let mut grid = Grid {
            ports,
            _sockets: sockets,
            _fillers: fillers,
            tasks,
            baseline: HashSet::new(),
        };
        grid.baseline = grid.held_sockets();
        grid
    }

    /// Every v4 peer, and `[::1]` of `v6_kind`, on one free port.
    async fn peers_on_one_port(v6_kind: Kind) -> io::Result<(u16, Peers)> {
        let first = bound(SocketAddr::new(v4(Kind::Live, 0), 0), Some(1024))?;
        let port = first.local_addr()?.as_socket().unwrap().port();
        let mut peers = Peers::default();
        peers.add(Kind::Live, first).await?;
        let mut addrs: Vec<(Kind, SocketAddr)> = Vec::new();
        for kind in KINDS {
            for slot in 0..8 {
                if (kind, slot) != (Kind::Live, 0) {
                    addrs.push((kind, SocketAddr::new(v4(kind, slot), port)));
                }
            }
        }
        addrs.push((v6_kind, SocketAddr::new(V6, port)));
        let mut holes = Vec::new();
        for (kind, addr) in addrs {
            match kind {
                Kind::Live => peers.add(kind, bound(addr, Some(1024))?).await?,
                Kind::Refused => peers.add(kind, bound(addr, None)?).await?,
                Kind::Backlogged => peers.add(kind, bound(addr, Some(4096))?).await?,
                Kind::BlackHole => holes.push(black_hole(addr)),
            }
        }
        for hole in join_all(holes).await {
            let (listener, mut streams) = hole?;
            peers.sockets.push(listener);
            peers.fillers.append(&mut streams);
        }
        Ok((port, peers))
    }

    /// The inodes of the sockets this process holds that are connected (or connecting)
    /// to a peer of the grid. Other tests' sockets never are.
    fn held_sockets(&self) -> HashSet<u64> {
        let ours: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|entry| {
                let link = std::fs::read_link(entry.ok()?.path()).ok()?;
                let link = link.to_str()?;
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()
            })
            .collect();
        let mut held = HashSet::new();
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(remote), Some(state), Some(inode)) =
                    (fields.get(2), fields.get(3), fields.get(9))
                else {
                    continue;
                };
                let inode: u64 = inode.parse().unwrap();
                let listening = *state == "0A";
                if !listening && ours.contains(&inode) && self.is_peer(parse_proc_addr(remote)) {
                    held.insert(inode);
                }
            }
        }
        held
    }

    /// Whether `addr` is one of this grid's peers; the ports tell this grid's from those of
    /// another test's grid on the same addresses.
    fn is_peer(&self, addr: SocketAddr) -> bool {
        let ours = self.ports.contains(&addr.port());
        match addr.ip() {
            IpAddr::V4(ip) => ours && ip.octets()[..2] == [127, 77],
            IpAddr::V6(ip) => ours && ip == Ipv6Addr::LOCALHOST,
        }
    }
}

#[derive(Default)]
struct Peers {
    sockets: Vec<Socket>,
    fillers: Vec<TcpStream>,
    live: Vec<TcpListener>,
}

impl Peers {
    async fn add(&mut self, kind: Kind, socket: Socket) -> io::Result<()> {
        if kind == Kind::Live {
            socket.set_nonblocking(true)?;
            let std: std::net::TcpListener = socket.into();
            self.live.push(TcpListener::from_std(std)?);
        } else {
            self.sockets.push(socket);
        }
        Ok(())
    }
}

/// An address of `/proc/net/tcp{,6}`: hex words in host byte order, then the port.
fn parse_proc_addr(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[8 * i..8 * i + 8], 16)
                .unwrap()
                .to_ne_bytes()
        })
        .collect();
    let ip = match words.as_slice() {
        [a] => IpAddr::from(*a),
        words => IpAddr::from(<[u8; 16]>::try_from(words.concat()).unwrap()),
    };
    SocketAddr::new(ip, port)
}

/// The lookup of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dns {
    /// Dial an IP literal: no lookup.
    Literal,
    /// Answer after this many milliseconds.
    Answer(u64),
    /// Fail with this kind after this many milliseconds.
    Fail(u64, ResolveErrorKind),
}

impl Dns {
    fn delay(self) -> Duration {
        match self {
            Dns::Literal => Duration::ZERO,
            Dns::Answer(ms) | Dns::Fail(ms, _) => Duration::from_millis(ms),
        }
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    /// The peers in the resolver's order.
    kinds: Vec<Kind>,
    /// Which of them is `[::1]`, if any.
    v6: Option<usize>,
    attempt_delay: Duration,
    happy_eyeballs: bool,
    dns: Dns,
    timeout: Option<Duration>,
    /// `DialerBuilder::attempt_timeout`.
    attempt_timeout: Option<Duration>,
    drop_after: Option<Duration>,
}

impl Scenario {
    fn port(&self, grid: &Grid) -> u16 {
        let v6_kind = self.v6.map_or(Kind::Live, |i| self.kinds[i]);
        grid.ports[usize::from(v6_kind.index())]
    }

    /// The addresses in the resolver's order.
    fn ips(&self) -> Vec<IpAddr> {
        (0..self.kinds.len())
            .map(|i| {
                if self.v6 == Some(i) {
                    V6
                } else {
                    v4(self.kinds[i], i)
                }
            })
            .collect()
    }

    /// The addresses in the order the dialer tries them (RFC 8305 §4), with their kind.
    fn order(&self, port: u16) -> Vec<(SocketAddr, Kind)> {
        let ips = self.ips();
        let (first, second): (Vec<usize>, Vec<usize>) =
            (0..ips.len()).partition(|i| ips[*i].is_ipv6() == ips[0].is_ipv6());
        let mut order = Vec::new();
        for i in 0..first.len().max(second.len()) {
            for list in [&first, &second] {
                if let Some(&j) = list.get(i) {
                    order.push((SocketAddr::new(ips[j], port), self.kinds[j]));
                }
            }
        }
        order
    }

    /// The limit on the dial: its timeout or the caller's drop, whichever is first.
    fn bound(&self) -> Option<Duration> {
        [self.timeout, self.drop_after].into_iter().flatten().min()
    }

    /// Whether the dial must connect: it resolves, and a peer that connects is due
    /// (by the schedule, at the latest) well before the dial's limit.
    fn must_connect(&self, port: u16) -> bool {
        if matches!(self.dns, Dns::Fail(..)) {
            return false;
        }
        let order = self.order(port);
        let mut due = self.dns.delay();
        for (_, kind) in &order {
            if kind.connects() {
                return self.bound().is_none_or(|bound| due + MARGIN < bound);
            }
            if !self.happy_eyeballs && *kind != Kind::Refused {
                // One at a time, and this one never fails: nothing after it starts.
                return false;
            }
            if self.happy_eyeballs {
                due += self.attempt_delay;
            }
        }
        false
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let kind = prop_oneof![
        Just(Kind::Live),
        Just(Kind::Refused),
        Just(Kind::BlackHole),
        Just(Kind::Backlogged),
    ];
    let failure = prop_oneof![
        Just(ResolveErrorKind::NotFound),
        Just(ResolveErrorKind::ServerFailure),
        Just(ResolveErrorKind::TimedOut),
        Just(ResolveErrorKind::Other),
    ];
    let dns = prop_oneof![
        1 => Just(Dns::Literal),
        4 => (0u64..=50).prop_map(Dns::Answer),
        1 => (0u64..=50, failure).prop_map(|(ms, kind)| Dns::Fail(ms, kind)),
    ];
    let ms = |range: std::ops::RangeInclusive<u64>| range.prop_map(Duration::from_millis);
    (
        prop::collection::vec(kind, 1..=8),
        any::<prop::sample::Index>(),
        any::<bool>(),
        ms(10..=100),
        prop::bool::weighted(0.85),
        dns,
        prop::option::of(ms(20..=300)),
        // Long enough that a loopback peer that connects is never timed out, even on a
        // loaded machine (see `MARGIN`).
        prop::option::weighted(0.3, ms(MARGIN.as_millis() as u64..=400)),
        prop::option::weighted(0.3, ms(0..=300)),
    )
        .prop_map(
            |(
                mut kinds,
                v6_at,
                with_v6,
                attempt_delay,
                happy_eyeballs,
                dns,
                timeout,
                attempt_timeout,
                drop_after,
            )| {
                if dns == Dns::Literal {
                    kinds.truncate(1);
                }
                let mut timeout = timeout;
                if timeout.is_none() && drop_after.is_none() && kinds.contains(&Kind::BlackHole) {
                    // Otherwise only the system's connect timeout (minutes) would end it.
                    timeout = Some(Duration::from_millis(300));
                }
                Scenario {
                    v6: with_v6.then(|| v6_at.index(kinds.len())),
                    kinds,
                    attempt_delay,
                    happy_eyeballs,
                    dns,
                    timeout,
                    attempt_timeout,
                    drop_after,
                }
            },
        )
}

/// Answers with the scenario's addresses, or fails, after the scenario's DNS delay.
#[derive(Debug)]
struct ScenarioResolver {
    ips: Vec<IpAddr>,
    dns: Dns,
}

impl Resolve for ScenarioResolver {
    fn resolve(&self, host: &str) -> Resolving {
        let (ips, dns, host) = (self.ips.clone(), self.dns, host.to_owned());
        Box::pin(async move {
            tokio::time::sleep(dns.delay()).await;
            match dns {
                Dns::Fail(_, kind) => Err(ResolveError::new(kind, &host)),
                _ => Ok(ips),
            }
        })
    }
}

/// Runs a dial and notes how many events had fired once it returned, or once it was
/// dropped (after the drop, which may still report the pending hooks): any event past
/// that count fired late.
struct Guarded<F> {
    inner: Option<Pin<Box<F>>>,
    rec: Recorder,
    finished_at: Arc<OnceLock<usize>>,
}

impl<F> Guarded<F> {
    fn finished(&self) {
        let _ = self.finished_at.set(self.rec.events().len());
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.inner.as_mut().expect("polled after completion");
        let output = std::task::ready!(inner.as_mut().poll(cx));
        self.finished();
        Poll::Ready(output)
    }
}

impl<F> Drop for Guarded<F> {
    fn drop(&mut self) {
        // A hook that panics in the dial's drop: the count is still taken, after every
        // pending hook fired, and the panic goes on.
        let inner = self.inner.take();
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(inner)));
        self.finished();
        if let Err(panic) = dropped {
            std::panic::resume_unwind(panic);
        }
    }
}

/// What one dial did.
struct Observed {
    /// `None` if the caller dropped it first.
    result: Option<Result<SocketAddr, DialError>>,
    elapsed: Duration,
    rec: Recorder,
    finished_at: Arc<OnceLock<usize>>,
    port: u16,
}

impl Scenario {
    fn dialer(&self) -> Dialer {
        let mut builder = Dialer::builder()
            .resolver(ScenarioResolver {
                ips: self.ips(),
                dns: self.dns,
            })
            .attempt_delay(self.attempt_delay)
            .happy_eyeballs(self.happy_eyeballs);
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(timeout) = self.attempt_timeout {
            builder = builder.attempt_timeout(timeout);
        }
        builder.build()
    }

    fn target(&self, port: u16) -> String {
        match self.dns {
            Dns::Literal => SocketAddr::new(self.ips()[0], port).to_string(),
            _ => format!("case.test:{port}"),
        }
    }
}

async fn dial(grid: &Grid, s: &Scenario) -> Observed {
    let port = s.port(grid);
    let (dialer, target) = (s.dialer(), s.target(port));
    let rec = Recorder::new();
    let finished_at = Arc::new(OnceLock::new());
    let guarded = Guarded {
        inner: Some(Box::pin(nettrace::with_trace(
            rec.trace(),
            dialer.dial(&target),
        ))),
        rec: rec.clone(),
        finished_at: finished_at.clone(),
    };
    let started = Instant::now();
    let result = match s.drop_after {
        Some(after) => tokio::time::timeout(after, guarded).await.ok(),
        None => Some(guarded.await),
    };
    let elapsed = started.elapsed();
    // The stream is closed here: only its peer's address is kept.
    let result = result.map(|r| r.map(|stream| stream.peer_addr().unwrap()));
    Observed {
        result,
        elapsed,
        rec,
        finished_at,
        port,
    }
}

/// Checks one dial against its scenario.
fn check(s: &Scenario, o: &Observed) -> Result<(), TestCaseError> {
    let events = o.rec.events();
    let order = s.order(o.port);
    let kind_of = |addr: SocketAddr| order.iter().find(|(a, _)| *a == addr).map(|(_, k)| *k);

    // No hook after the dial returned or was dropped.
    let finished_at = *o
        .finished_at
        .get()
        .expect("the dial returned or was dropped");
    let late = &events[finished_at..];
    prop_assert!(late.is_empty(), "late events {:?}", late);

    // One DnsDone per DnsStart; none for an IP literal.
    let dns_starts = events
        .iter()
        .filter(|e| matches!(e, Event::DnsStart(_)))
        .count();
    let dns_dones: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::DnsDone { .. }))
        .collect();
    prop_assert_eq!(dns_starts, dns_dones.len());
    prop_assert_eq!(dns_starts, usize::from(s.dns != Dns::Literal));

    // Attempts are numbered 0..n without gaps, each to the next address in order, and
    // each ends exactly once.
    let starts: Vec<(SocketAddr, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectStart(addr, i) => Some((*addr, *i)),
            _ => None,
        })
        .collect();
    let dones: Vec<(SocketAddr, usize, Outcome)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectDone(addr, i, outcome) => Some((*addr, *i, *outcome)),
            _ => None,
        })
        .collect();
    prop_assert_eq!(starts.len(), dones.len(), "{:?}", events);
    prop_assert!(starts.len() <= order.len());
    for (i, (addr, attempt)) in starts.iter().enumerate() {
        prop_assert_eq!(*attempt, i);
        prop_assert_eq!(*addr, order[i].0);
        let ends: Vec<_> = dones.iter().filter(|(_, a, _)| a == attempt).collect();
        prop_assert_eq!(ends.len(), 1, "attempt {} in {:?}", i, events);
        prop_assert_eq!(ends[0].0, *addr);
    }
    // Every other attempt failed or was cancelled; failures only where refused, or where
    // the attempt timeout passed on a peer that never connects.
    let timed = o.rec.timed();
    let connected: Vec<SocketAddr> = dones
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Connected)
        .map(|(addr, _, _)| *addr)
        .collect();
    let mut failed: Vec<(usize, SocketAddr)> = Vec::new();
    for (addr, attempt, outcome) in &dones {
        match outcome {
            Outcome::Failed(io::ErrorKind::TimedOut) => {
                let Some(limit) = s.attempt_timeout else {
                    return Err(TestCaseError::fail(format!(
                        "no attempt timeout: {events:?}"
                    )));
                };
                prop_assert!(
                    kind_of(*addr).is_some_and(|k| !k.connects()),
                    "{:?}",
                    events
                );
                let at = |f: &dyn Fn(&Event) -> bool| timed.iter().find(|(_, e)| f(e)).unwrap().0;
                let began = at(&|e| *e == Event::ConnectStart(*addr, *attempt));
                let ended = at(&|e| *e == Event::ConnectDone(*addr, *attempt, *outcome));
                // The race reads its clock once per pass, before the hooks of that pass run,
                // so the start hook may fire some milliseconds after the attempt's clock
                // started on a loaded machine.
                prop_assert!(
                    ended - began + Duration::from_millis(50) >= limit,
                    "attempt {} timed out after {:?}",
                    attempt,
                    ended - began
                );
                failed.push((*attempt, *addr));
            }
            Outcome::Failed(kind) => {
                prop_assert_eq!(kind_of(*addr), Some(Kind::Refused), "{:?}", events);
                prop_assert_eq!(*kind, io::ErrorKind::ConnectionRefused);
                failed.push((*attempt, *addr));
            }
            _ => {}
        }
    }
    failed.sort();
    let failed: Vec<SocketAddr> = failed.into_iter().map(|(_, addr)| addr).collect();

    // The result agrees with the events and the scenario.
    match &o.result {
        Some(Ok(peer)) => {
            prop_assert_eq!(
                &connected,
                &vec![*peer],
                "the stream returned is the one connected"
            );
            prop_assert!(kind_of(*peer).is_some_and(Kind::connects));
            prop_assert!(!matches!(s.dns, Dns::Fail(..)));
        }
        Some(Err(err)) => {
            prop_assert!(connected.is_empty());
            match err {
                DialError::Resolve(e) => {
                    let Dns::Fail(_, kind) = s.dns else {
                        return Err(TestCaseError::fail(format!("{err:?}")));
                    };
                    prop_assert_eq!(e.kind(), kind);
                    prop_assert!(starts.is_empty());
                    let done_kind = match dns_dones[0] {
                        Event::DnsDone { error, .. } => *error,
                        _ => None,
                    };
                    prop_assert_eq!(done_kind, Some(kind));
                }
                DialError::AllAttemptsFailed { attempts, .. } => {
                    prop_assert_eq!(starts.len(), order.len());
                    let can_fail = |k: Kind| {
                        k == Kind::Refused || s.attempt_timeout.is_some() && !k.connects()
                    };
                    prop_assert!(order.iter().all(|(_, k)| can_fail(*k)));
                    let addrs: Vec<SocketAddr> = attempts.iter().map(|(a, _)| *a).collect();
                    prop_assert_eq!(addrs, failed);
                }
                DialError::Timeout {
                    after,
                    started,
                    failed: failures,
                    ..
                } => {
                    prop_assert_eq!(Some(*after), s.timeout);
                    prop_assert!(o.elapsed >= *after, "timed out early: {:?}", o.elapsed);
                    let started_addrs: Vec<SocketAddr> = starts.iter().map(|(a, _)| *a).collect();
                    prop_assert_eq!(started, &started_addrs);
                    let failure_addrs: Vec<SocketAddr> = failures.iter().map(|(a, _)| *a).collect();
                    prop_assert_eq!(failure_addrs, failed);
                    prop_assert!(dones.iter().all(|(_, _, o)| *o != Outcome::Connected));
                }
                other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            }
        }
        None => {
            let after = s.drop_after.unwrap();
            prop_assert!(o.elapsed >= after, "dropped early: {:?}", o.elapsed);
            prop_assert!(connected.is_empty());
            let pending = dones.iter().filter(|(_, _, o)| *o == Outcome::Cancelled);
            prop_assert_eq!(pending.count() + failed.len(), starts.len());
        }
    }
    if s.must_connect(o.port) {
        prop_assert!(
            matches!(o.result, Some(Ok(_))),
            "should have connected: {:?} after {:?}, {:?}",
            o.result,
            o.elapsed,
            events
        );
    }
    Ok(())
}

#[test]
fn dials_keep_their_invariants_over_random_scenarios() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let grid = rt.block_on(Grid::start());
    let setup = started.elapsed();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let dials = std::cell::Cell::new(0);
    let outcome = runner.run(&prop::collection::vec(scenario(), 1..=4), |scenarios| {
        let observed = rt.block_on(join_all(scenarios.iter().map(|s| dial(&grid, s))));
        dials.set(dials.get() + scenarios.len());
        for (s, o) in scenarios.iter().zip(&observed) {
            check(s, o)?;
        }
        drop(observed);
        // Every socket a dial opened is closed: the streams (dropped above), the
        // attempts that lost, failed or were cancelled.
        no_socket_left(&grid)
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
    eprintln!(
        "{CASES} cases, {} real dials in {:?} (peers set up in {setup:?})",
        dials.get(),
        started.elapsed()
    );
    rt.block_on(async { drop(grid) });
}

/// Cases of the panicking-hook property; each runs one to three dials at once.
const PANIC_CASES: u32 = 90;

/// A hook that can panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    DnsStart,
    DnsAnswer,
    DnsDone,
    ConnectStart,
    ConnectDone,
}

/// Where the panicking hook is, and when it panics.
#[derive(Debug, Clone, Copy)]
struct Panicking {
    hook: Hook,
    /// It panics on this call (1 is the first), and only on it.
    call: usize,
    /// How many `with_trace` scopes are nested around the dial, each with a recorder.
    depth: usize,
    /// The scope (0 is the outermost) whose trace holds the panicking hook.
    scope: usize,
    /// Whether it comes before that scope's recording hooks (else after them).
    before: bool,
}

fn panicking() -> impl Strategy<Value = Panicking> {
    let hook = prop_oneof![
        Just(Hook::DnsStart),
        Just(Hook::DnsAnswer),
        Just(Hook::DnsDone),
        Just(Hook::ConnectStart),
        Just(Hook::ConnectDone),
    ];
    (
        hook,
        1usize..=3,
        1usize..=4,
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(hook, call, depth, scope, before)| Panicking {
            hook,
            call,
            depth,
            scope: scope.index(depth),
            before,
        })
}

/// The payload the hook panics with: unique to its dial.
#[derive(Debug, PartialEq, Eq)]
struct Thrown(u64);

/// Keeps the default panic hook from printing the thrown panics (the cases throw many);
/// every other panic is printed as before.
fn quiet_thrown_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Thrown>().is_none() {
                default(info);
            }
        }));
    });
}

/// `trace` with a hook that throws `Thrown(id)` on its `call`-th call, counting calls.
fn add_panicking(trace: NetTrace, p: &Panicking, id: u64, calls: Arc<AtomicUsize>) -> NetTrace {
    let call = p.call;
    let boom = move || {
        if calls.fetch_add(1, Ordering::SeqCst) + 1 == call {
            std::panic::panic_any(Thrown(id));
        }
    };
    match p.hook {
        Hook::DnsStart => trace.on_dns_start(move |_| boom()),
        Hook::DnsAnswer => trace.on_dns_answer(move |_| boom()),
        Hook::DnsDone => trace.on_dns_done(move |_| boom()),
        Hook::ConnectStart => trace.on_connect_start(move |_| boom()),
        Hook::ConnectDone => trace.on_connect_done(move |_| boom()),
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What one dial with a panicking hook did.
struct Caught {
    observed: Observed,
    /// What the caller caught, if the dial panicked.
    panic: Option<Box<dyn std::any::Any + Send>>,
    id: u64,
    dial: DialId,
    /// How often the panicking hook was called.
    calls: usize,
    /// Every scope's recorder, outermost first.
    recs: Vec<Recorder>,
    /// Each recorder's event count once the dial was over, and a little later.
    counts: (Vec<usize>, Vec<usize>),
}

async fn dial_panicking(grid: &Grid, s: &Scenario, p: &Panicking) -> Caught {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    let port = s.port(grid);
    let (dialer, target) = (s.dialer(), s.target(port));
    let calls = Arc::new(AtomicUsize::new(0));
    let recs: Vec<Recorder> = (0..p.depth).map(|_| Recorder::new()).collect();
    let dial = dialer.dial(&target);
    let dial_id = dial.id();
    let mut fut: Boxed<Result<TcpStream, DialError>> = Box::pin(dial);
    for (scope, rec) in recs.iter().enumerate().rev() {
        let trace = match (scope == p.scope, p.before) {
            (false, _) => rec.trace(),
            (true, true) => rec.extend(add_panicking(NetTrace::new(), p, id, calls.clone())),
            (true, false) => add_panicking(rec.trace(), p, id, calls.clone()),
        };
        fut = Box::pin(nettrace::with_trace(trace, fut));
    }
    let finished_at = Arc::new(OnceLock::new());
    let guarded = Guarded {
        inner: Some(Box::pin(fut)),
        rec: recs[0].clone(),
        finished_at: finished_at.clone(),
    };
    let drop_after = s.drop_after;
    let run = async move {
        match drop_after {
            Some(after) => tokio::time::timeout(after, guarded).await.ok(),
            None => Some(guarded.await),
        }
    };
    let started = Instant::now();
    let caught = AssertUnwindSafe(run).catch_unwind().await;
    let elapsed = started.elapsed();
    let count = || {
        recs.iter()
            .map(|r| r.all_events().len())
            .collect::<Vec<_>>()
    };
    let over = count();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let later = count();
    let (result, panic) = match caught {
        Ok(result) => (result, None),
        Err(panic) => (None, Some(panic)),
    };
    Caught {
        observed: Observed {
            result: result.map(|r| r.map(|stream| stream.peer_addr().unwrap())),
            elapsed,
            rec: recs[0].clone(),
            finished_at,
            port,
        },
        panic,
        id,
        dial: dial_id,
        calls: calls.load(Ordering::SeqCst),
        recs,
        counts: (over, later),
    }
}

/// Checks one dial with a panicking hook.
fn check_panicking(s: &Scenario, p: &Panicking, c: &Caught) -> Result<(), TestCaseError> {
    let events = c.recs[0].with_ids();
    // Every hook of every composed trace saw every event, in the same order.
    for (scope, rec) in c.recs.iter().enumerate() {
        prop_assert_eq!(&rec.with_ids(), &events, "scope {} of {:?}", scope, p);
    }
    // Nothing after the dial returned, panicked or was dropped.
    prop_assert_eq!(&c.counts.0, &c.counts.1, "late events");
    let finished_at = *c.observed.finished_at.get().expect("the dial ended");
    prop_assert_eq!(finished_at, c.observed.rec.events().len(), "late events");
    // Every event is this dial's; per dial, every start has its done.
    prop_assert!(events.iter().all(|(d, _)| *d == c.dial), "{:?}", events);
    let looked_up = s.dns != Dns::Literal;
    let dials = check_pairs(&events, looked_up).map_err(TestCaseError::fail)?;
    prop_assert!(dials.len() <= 1);
    if looked_up {
        prop_assert_eq!(dials.len(), 1, "a lookup always starts");
    }
    // The panic reaches the caller exactly when the hook panicked, with its payload.
    let thrown = c.calls >= p.call;
    match &c.panic {
        Some(panic) => {
            prop_assert!(thrown, "a panic, but the hook did not throw: {:?}", events);
            prop_assert_eq!(panic.downcast_ref::<Thrown>(), Some(&Thrown(c.id)));
        }
        None => {
            prop_assert!(!thrown, "the hook's panic was lost: {:?}", events);
            // A dial whose hook never threw is an ordinary dial.
            check(s, &c.observed)?;
        }
    }
    Ok(())
}

#[test]
fn a_panicking_hook_in_any_scope_costs_no_trace_an_event() {
    quiet_thrown_panics();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let grid = rt.block_on(Grid::start());
    let mut runner = TestRunner::new(Config {
        cases: PANIC_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let thrown = std::cell::Cell::new(0);
    let dials = std::cell::Cell::new(0);
    let cases = prop::collection::vec((scenario(), panicking()), 1..=3);
    let outcome = runner.run(&cases, |cases| {
        let caught = rt.block_on(join_all(
            cases.iter().map(|(s, p)| dial_panicking(&grid, s, p)),
        ));
        dials.set(dials.get() + cases.len());
        for ((s, p), c) in cases.iter().zip(&caught) {
            thrown.set(thrown.get() + usize::from(c.panic.is_some()));
            check_panicking(s, p, c)?;
        }
        drop(caught);
        no_socket_left(&grid)
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
    eprintln!(
        "{PANIC_CASES} cases, {} dials, {} panicked, in {:?}",
        dials.get(),
        thrown.get(),
        started.elapsed()
    );
    rt.block_on(async { drop(grid) });
}
