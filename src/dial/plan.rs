//! The RFC 8305 connection attempt schedule, free of I/O and of the clock.
//!
//! The dial future tells the [`Plan`] what happened (an attempt failed) and what time it
//! is; the plan answers what to do next. Tests drive it with made-up instants.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

/// What the dial should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Start attempt number `attempt` to `addr` now.
    Start { attempt: usize, addr: SocketAddr },
    /// Nothing to start before this instant, unless an attempt fails first.
    WaitUntil(Instant),
    /// Nothing more to start: wait for the attempts in flight.
    Wait,
    /// Every attempt has been made and has failed.
    Exhausted,
}

/// The schedule of one dial's attempts.
#[derive(Debug)]
pub(crate) struct Plan {
    addrs: Vec<SocketAddr>,
    /// Index into `addrs` of the next attempt to start.
    next: usize,
    /// `None` when attempts are made one at a time.
    delay: Option<Duration>,
    last_start: Option<Instant>,
    in_flight: usize,
}

impl Plan {
    /// Plans attempts to `addrs` (already in the order to try them). With `delay`, a new
    /// attempt starts that long after the previous one (Happy Eyeballs); without, only
    /// when the previous one failed.
    pub(crate) fn new(addrs: Vec<SocketAddr>, delay: Option<Duration>) -> Plan {
        Plan {
            addrs,
            next: 0,
            delay,
            last_start: None,
            in_flight: 0,
        }
    }

    /// Returns what to do at `now`. A `Start` is taken as done: the attempt is in flight.
    pub(crate) fn step(&mut self, now: Instant) -> Step {
        let Some(&addr) = self.addrs.get(self.next) else {
            return if self.in_flight == 0 {
                Step::Exhausted
            } else {
                Step::Wait
            };
        };
        // RFC 8305 §5: start the next attempt when the delay since the previous start has
        // passed, or at once when nothing is in flight (the first attempt, or every
        // attempt so far has failed).
        let due = match (self.in_flight, self.last_start, self.delay) {
            (0, _, _) | (_, None, _) => now,
            (_, Some(_), None) => return Step::Wait,
            (_, Some(last), Some(delay)) => last + delay,
        };
        if due > now {
            return Step::WaitUntil(due);
        }
        let attempt = self.next;
        self.next += 1;
        self.in_flight += 1;
        self.last_start = Some(now);
        Step::Start { attempt, addr }
    }

    /// An attempt in flight failed.
    pub(crate) fn failed(&mut self) {
        debug_assert!(self.in_flight > 0);
        self.in_flight -= 1;
    }

    /// The addresses of the attempts started so far, in attempt order.
    pub(crate) fn started_addrs(&self) -> &[SocketAddr] {
        &self.addrs[..self.next]
    }
}

/// Orders `addrs` for connecting: the address families alternate (RFC 8305 §4, First
/// Address Family Count 1), starting with the family of the first address; within a
/// family the resolver's order is kept.
pub(crate) fn interleave(addrs: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let first_v6 = first.is_ipv6();
    let mut primary = addrs.iter().filter(|a| a.is_ipv6() == first_v6);
    let mut secondary = addrs.iter().filter(|a| a.is_ipv6() != first_v6);
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        match (primary.next(), secondary.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b).map(|ip| SocketAddr::new(*ip, port))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn addrs() -> Vec<SocketAddr> {
        vec![sa("[::1]:80"), sa("127.0.0.1:80"), sa("[::2]:80")]
    }

    #[test]
    fn interleaves_families_starting_with_the_first() {
        let ips: Vec<IpAddr> = ["::1", "::2", "::3", "127.0.0.1", "127.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let order: Vec<String> = interleave(&ips, 8080)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "[::1]:8080",
                "127.0.0.1:8080",
                "[::2]:8080",
                "127.0.0.2:8080",
                "[::3]:8080"
            ]
        );
        let v4_first: Vec<IpAddr> = ["127.0.0.1", "::1", "::2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let order = interleave(&v4_first, 1);
        assert_eq!(order, [sa("127.0.0.1:1"), sa("[::1]:1"), sa("[::2]:1")]);
        assert!(interleave(&[], 1).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn next_attempt_starts_after_the_delay() {
        let t0 = Instant::now();
        let mut plan = Plan::new(addrs(), Some(ms(250)));
        assert_eq!(
            plan.step(t0),
            Step::Start {
                attempt: 0,
                addr: sa("[::1]:80")
            }
        );
        assert_eq!(plan.step(t0), Step::WaitUntil(t0 + ms(250)));
        tokio::time::advance(ms(249)).await;
        assert_eq!(plan.step(Instant::now()), Step::WaitUntil(t0 + ms(250)));
        tokio::time::advance(ms(1)).await;
        let t1 = Instant::now();
        assert_eq!(
            plan.step(t1),
            Step::Start {
                attempt: 1,
                addr: sa("127.0.0.1:80")
            }
        );
        assert_eq!(plan.step(t1), Step::WaitUntil(t1 + ms(250)));
        tokio::time::advance(ms(250)).await;
        assert!(matches!(
            plan.step(Instant::now()),
            Step::Start { attempt: 2, .. }
        ));
        assert_eq!(plan.step(Instant::now()), Step::Wait);
        assert_eq!(plan.started_addrs().len(), 3);
        assert_eq!(plan.started_addrs(), addrs());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_with_nothing_else_in_flight_starts_the_next_at_once() {
        let t0 = Instant::now();
        let mut plan = Plan::new(addrs(), Some(ms(250)));
        assert!(matches!(plan.step(t0), Step::Start { attempt: 0, .. }));
        tokio::time::advance(ms(10)).await;
        plan.failed();
        let now = Instant::now();
        assert!(matches!(plan.step(now), Step::Start { attempt: 1, .. }));
        // The delay now counts from attempt 1's start.
        assert_eq!(plan.step(now), Step::WaitUntil(now + ms(250)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_while_another_is_in_flight_keeps_the_delay() {
        let t0 = Instant::now();
        let mut plan = Plan::new(addrs(), Some(ms(250)));
        assert!(matches!(plan.step(t0), Step::Start { attempt: 0, .. }));
        tokio::time::advance(ms(250)).await;
        let t1 = Instant::now();
        assert!(matches!(plan.step(t1), Step::Start { attempt: 1, .. }));
        tokio::time::advance(ms(20)).await;
        plan.failed(); // one of the two failed; the other is still trying
        assert_eq!(plan.step(Instant::now()), Step::WaitUntil(t1 + ms(250)));
        plan.failed(); // now both have failed
        assert!(matches!(
            plan.step(Instant::now()),
            Step::Start { attempt: 2, .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_only_when_every_attempt_failed() {
        let t0 = Instant::now();
        let mut plan = Plan::new(vec![sa("127.0.0.1:1"), sa("127.0.0.2:1")], Some(ms(100)));
        assert!(matches!(plan.step(t0), Step::Start { attempt: 0, .. }));
        plan.failed();
        assert!(matches!(plan.step(t0), Step::Start { attempt: 1, .. }));
        assert_eq!(plan.step(t0), Step::Wait);
        plan.failed();
        assert_eq!(plan.step(t0), Step::Exhausted);
        assert_eq!(Plan::new(vec![], Some(ms(1))).step(t0), Step::Exhausted);
    }

    #[tokio::test(start_paused = true)]
    async fn without_happy_eyeballs_one_attempt_at_a_time() {
        let t0 = Instant::now();
        let mut plan = Plan::new(addrs(), None);
        assert!(matches!(plan.step(t0), Step::Start { attempt: 0, .. }));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(plan.step(Instant::now()), Step::Wait);
        plan.failed();
        assert!(matches!(
            plan.step(Instant::now()),
            Step::Start { attempt: 1, .. }
        ));
        assert_eq!(plan.step(Instant::now()), Step::Wait);
    }
}

/// Property tests: the plan, driven by a simulated dial over fake attempts and made-up
/// instants (no I/O, no clock), must follow an independent model of the RFC 8305
/// schedule and keep the dial's event invariants, whatever the peers, delays, timeout,
/// lookup and the moment the dial is dropped.
#[cfg(test)]
mod proptests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    /// How a simulated peer answers a connection attempt; times are milliseconds after
    /// the attempt started.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Peer {
        /// Accepts after a loopback-like latency.
        Live(u64),
        /// Accepts, but later than a typical attempt delay.
        Slow(u64),
        /// Refuses (RST or ICMP unreachable) after a while.
        Refused(u64),
        /// Never answers.
        BlackHole,
    }

    impl Peer {
        /// When the attempt ends, and whether it connects; `None` if it never ends.
        fn ends(self) -> Option<(u64, bool)> {
            match self {
                Peer::Live(ms) | Peer::Slow(ms) => Some((ms, true)),
                Peer::Refused(ms) => Some((ms, false)),
                Peer::BlackHole => None,
            }
        }
    }

    /// The name lookup before the race.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Dns {
        /// An IP literal: no lookup, no DNS events, one address.
        Literal,
        /// The lookup answers after this many milliseconds.
        Answer(u64),
        /// The lookup fails after this many milliseconds.
        Fail(u64),
    }

    #[derive(Debug, Clone)]
    struct Scenario {
        /// In the resolver's order: whether the address is IPv6, and its peer.
        peers: Vec<(bool, Peer)>,
        /// The attempt delay; `None` is one attempt at a time.
        delay: Option<u64>,
        dns: Dns,
        timeout: Option<u64>,
        /// When the caller drops the dial, if it does.
        drop_at: Option<u64>,
    }

    impl Scenario {
        /// The addresses in the resolver's order (distinct, so each names its peer).
        fn ips(&self) -> Vec<IpAddr> {
            let mut v4 = 0u8;
            let mut v6 = 0u16;
            self.peers
                .iter()
                .map(|&(is_v6, _)| {
                    if is_v6 {
                        v6 += 1;
                        IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, v6))
                    } else {
                        v4 += 1;
                        IpAddr::V4(Ipv4Addr::new(127, 0, 0, v4))
                    }
                })
                .collect()
        }

        /// The addresses in the order to try them, each with its peer.
        fn order(&self) -> Vec<(SocketAddr, Peer)> {
            let ips = self.ips();
            interleave(&ips, 443)
                .into_iter()
                .map(|addr| {
                    let i = ips.iter().position(|ip| *ip == addr.ip()).unwrap();
                    (addr, self.peers[i].1)
                })
                .collect()
        }
    }

    fn peer() -> impl Strategy<Value = Peer> {
        prop_oneof![
            (0u64..=20).prop_map(Peer::Live),
            (20u64..=3_000).prop_map(Peer::Slow),
            (0u64..=300).prop_map(Peer::Refused),
            Just(Peer::BlackHole),
        ]
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        let dns = prop_oneof![
            1 => Just(Dns::Literal),
            4 => (0u64..=500).prop_map(Dns::Answer),
            1 => (0u64..=500).prop_map(Dns::Fail),
        ];
        (
            prop::collection::vec((any::<bool>(), peer()), 1..=8),
            prop::option::weighted(0.85, 10u64..=2_000),
            dns,
            // A zero timeout means no limit (as in Go and curl): see `DialerBuilder::timeout`.
            prop::option::of(1u64..=5_000),
            prop::option::of(0u64..=5_000),
        )
            .prop_map(|(mut peers, delay, dns, timeout, drop_at)| {
                if dns == Dns::Literal {
                    peers.truncate(1);
                }
                Scenario {
                    peers,
                    delay,
                    dns,
                    timeout,
                    drop_at,
                }
            })
    }

    /// How the dial ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum End {
        Connected {
            attempt: usize,
        },
        AllFailed,
        Timeout,
        ResolveFailed,
        Dropped,
        /// Only black holes in flight and nothing else to wait for: a real dial would
        /// wait for the operating system's connect timeout.
        Hung,
    }

    /// An event as the hooks would see it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ev {
        DnsStart,
        DnsDone,
        Start(usize, SocketAddr),
        Connected(usize),
        Failed(usize),
        Cancelled(usize),
    }

    /// What a simulated dial did: its events with their times, and how and when it
    /// ended.
    #[derive(Debug)]
    struct Run {
        events: Vec<(u64, Ev)>,
        end: End,
        at: u64,
    }

    struct InFlight {
        attempt: usize,
        /// When it ends, and whether it connects.
        ends: Option<(u64, bool)>,
    }

    /// Drives a [`Plan`] the way the dial future does: at each instant the deadline is
    /// checked first, then every due attempt starts, then the attempts in flight are
    /// polled in attempt order (a failure may let the next attempt start at once). A
    /// caller that drops the dial at an instant does so after the dial has handled it.
    fn simulate(s: &Scenario) -> Run {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let order = s.order();
        let mut events = Vec::new();
        let end = |events, end, at| Run { events, end, at };

        // The lookup.
        let start = match s.dns {
            Dns::Literal => 0,
            Dns::Answer(ms) | Dns::Fail(ms) => {
                events.push((0, Ev::DnsStart));
                if let Some(timeout) = s.timeout.filter(|t| *t <= ms) {
                    events.push((timeout, Ev::DnsDone));
                    return end(events, End::Timeout, timeout);
                }
                if let Some(drop_at) = s.drop_at.filter(|d| *d < ms) {
                    events.push((drop_at, Ev::DnsDone));
                    return end(events, End::Dropped, drop_at);
                }
                events.push((ms, Ev::DnsDone));
                if matches!(s.dns, Dns::Fail(_)) {
                    return end(events, End::ResolveFailed, ms);
                }
                ms
            }
        };

        let mut plan = Plan::new(
            order.iter().map(|(addr, _)| *addr).collect(),
            s.delay.map(Duration::from_millis),
        );
        let mut in_flight: Vec<InFlight> = Vec::new();
        let mut now = start;
        loop {
            if s.timeout.is_some_and(|t| t <= now) {
                for a in &in_flight {
                    events.push((now, Ev::Cancelled(a.attempt)));
                }
                return end(events, End::Timeout, now);
            }
            let mut timer: Option<u64>;
            loop {
                // Start every attempt that is due.
                loop {
                    match plan.step(at(now)) {
                        Step::Start { attempt, addr } => {
                            let started = events
                                .iter()
                                .filter(|(_, e)| matches!(e, Ev::Start(..)))
                                .count();
                            assert_eq!(attempt, started, "attempts are numbered in order");
                            assert_eq!(addr, order[attempt].0, "addresses are tried in order");
                            events.push((now, Ev::Start(attempt, addr)));
                            let ends = order[attempt].1.ends();
                            in_flight.push(InFlight {
                                attempt,
                                ends: ends.map(|(ms, ok)| (now + ms, ok)),
                            });
                        }
                        Step::WaitUntil(due) => {
                            assert!(due > at(now), "a due attempt was not started");
                            assert!(!in_flight.is_empty(), "waiting with nothing in flight");
                            let ms = due.duration_since(t0).as_millis();
                            timer = Some(u64::try_from(ms).unwrap());
                            break;
                        }
                        Step::Wait => {
                            assert!(!in_flight.is_empty(), "waiting with nothing in flight");
                            timer = None;
                            break;
                        }
                        Step::Exhausted => {
                            assert!(in_flight.is_empty(), "exhausted with attempts in flight");
                            assert_eq!(plan.started_addrs().len(), order.len());
                            return end(events, End::AllFailed, now);
                        }
                    }
                }
                // Poll the attempts in flight, in attempt order.
                let mut failures = false;
                let mut i = 0;
                while i < in_flight.len() {
                    match in_flight[i].ends {
                        Some((ms, true)) if ms <= now => {
                            let winner = in_flight.remove(i).attempt;
                            events.push((now, Ev::Connected(winner)));
                            for a in &in_flight {
                                events.push((now, Ev::Cancelled(a.attempt)));
                            }
                            return end(events, End::Connected { attempt: winner }, now);
                        }
                        Some((ms, false)) if ms <= now => {
                            let loser = in_flight.remove(i).attempt;
                            plan.failed();
                            events.push((now, Ev::Failed(loser)));
                            failures = true;
                        }
                        _ => i += 1,
                    }
                }
                if !failures {
                    break;
                }
            }
            // Pending: the next instant the dial is woken at.
            let next = [timer, s.timeout]
                .into_iter()
                .flatten()
                .chain(in_flight.iter().filter_map(|a| a.ends.map(|(ms, _)| ms)))
                .min();
            if let Some(drop_at) = s.drop_at.filter(|d| next.is_none_or(|n| *d < n)) {
                for a in &in_flight {
                    events.push((drop_at, Ev::Cancelled(a.attempt)));
                }
                return end(events, End::Dropped, drop_at);
            }
            let Some(next) = next else {
                assert!(
                    in_flight.iter().all(|a| a.ends.is_none()),
                    "stalled with an attempt that will end"
                );
                return end(events, End::Hung, now);
            };
            assert!(next > now, "time goes forward");
            now = next;
        }
    }

    /// The expected start times and end, computed from RFC 8305 §5 directly rather than
    /// through a [`Plan`]: attempt k starts `delay` after attempt k-1 or as soon as every
    /// attempt before it has failed, whichever is first, unless the dial has ended.
    fn model(s: &Scenario) -> (Vec<u64>, End, u64) {
        let order = s.order();
        let first = match s.dns {
            Dns::Literal => 0,
            Dns::Answer(ms) | Dns::Fail(ms) => {
                if let Some(timeout) = s.timeout.filter(|t| *t <= ms) {
                    return (vec![], End::Timeout, timeout);
                }
                if let Some(drop_at) = s.drop_at.filter(|d| *d < ms) {
                    return (vec![], End::Dropped, drop_at);
                }
                if matches!(s.dns, Dns::Fail(_)) {
                    return (vec![], End::ResolveFailed, ms);
                }
                ms
            }
        };
        let mut starts = vec![first];
        loop {
            let k = starts.len();
            let ends = |j: usize| order[j].1.ends().map(|(ms, ok)| (starts[j] + ms, ok));
            // The first to connect (the lowest attempt number among simultaneous ones).
            let success = (0..k)
                .filter_map(|j| match ends(j) {
                    Some((t, true)) => Some((t, j)),
                    _ => None,
                })
                .min();
            // When every attempt started so far has failed, if they all fail.
            let all_failed = (0..k)
                .map(|j| match ends(j) {
                    Some((t, false)) => Some(t),
                    _ => None,
                })
                .try_fold(0, |acc, t| t.map(|t| acc.max(t)));
            let next_start = (k < order.len())
                .then(|| {
                    let after_delay = s.delay.map(|d| starts[k - 1] + d);
                    [after_delay, all_failed].into_iter().flatten().min()
                })
                .flatten();
            let exhausted = if k == order.len() { all_failed } else { None };
            let next = [s.timeout, next_start, success.map(|(t, _)| t), exhausted]
                .into_iter()
                .flatten()
                .min();
            // At one instant: the deadline, then starts, then attempts; a drop last.
            if let Some(drop_at) = s.drop_at.filter(|d| next.is_none_or(|n| *d < n)) {
                return (starts, End::Dropped, drop_at);
            }
            let Some(next) = next else {
                // Stuck on black holes since the last start or failure.
                let last_failure = (0..k).filter_map(|j| ends(j).map(|(t, _)| t)).max();
                let at = last_failure.unwrap_or(0).max(starts[k - 1]);
                return (starts, End::Hung, at);
            };
            if s.timeout == Some(next) {
                return (starts, End::Timeout, next);
            }
            if next_start == Some(next) {
                starts.push(next);
                continue;
            }
            if let Some((t, attempt)) = success.filter(|(t, _)| *t == next) {
                return (starts, End::Connected { attempt }, t);
            }
            return (starts, End::AllFailed, next);
        }
    }

    /// The property: the run follows the model, and every event pairs up.
    fn check(s: &Scenario) -> Result<(), TestCaseError> {
        let run = simulate(s);
        let (starts, end, at) = model(s);
        let order = s.order();

        // The plan starts the attempts the model says, when it says.
        let started: Vec<u64> = run
            .events
            .iter()
            .filter_map(|(t, e)| matches!(e, Ev::Start(..)).then_some(*t))
            .collect();
        prop_assert_eq!(&started, &starts);
        prop_assert_eq!(run.end, end);
        prop_assert_eq!(run.at, at);
        prop_assert!(starts.len() <= order.len());

        // Events are in time order and none comes after the dial ended.
        prop_assert!(run.events.windows(2).all(|w| w[0].0 <= w[1].0));
        prop_assert!(run.events.iter().all(|(t, _)| *t <= run.at));

        // One DnsDone per DnsStart; none for a literal.
        let dns_starts = run.events.iter().filter(|(_, e)| *e == Ev::DnsStart).count();
        let dns_dones = run.events.iter().filter(|(_, e)| *e == Ev::DnsDone).count();
        prop_assert_eq!(dns_starts, dns_dones);
        prop_assert_eq!(dns_starts, usize::from(s.dns != Dns::Literal));

        // Every attempt 0..n ends exactly once, after it started, and as its peer
        // allows; at most one connects, and only the one the dial returns.
        let mut connected = Vec::new();
        for (attempt, (addr, peer)) in order.iter().enumerate().take(starts.len()) {
            let start = run.events.iter().position(|(_, e)| *e == Ev::Start(attempt, *addr));
            let dones: Vec<(usize, Ev)> = run
                .events
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| matches!(
                    e,
                    Ev::Connected(a) | Ev::Failed(a) | Ev::Cancelled(a) if *a == attempt
                ))
                .map(|(i, (_, e))| (i, *e))
                .collect();
            if end == End::Hung {
                prop_assert!(dones.iter().all(|(_, e)| matches!(e, Ev::Failed(_))));
                continue;
            }
            prop_assert_eq!(dones.len(), 1, "attempt {} ends once: {:?}", attempt, run.events);
            let (i, done) = dones[0];
            prop_assert!(start.is_some_and(|s| s < i));
            match done {
                Ev::Connected(a) => {
                    prop_assert!(matches!(peer, Peer::Live(_) | Peer::Slow(_)));
                    connected.push(a);
                }
                Ev::Failed(_) => prop_assert!(matches!(peer, Peer::Refused(_))),
                _ => {}
            }
        }
        match end {
            End::Connected { attempt } => prop_assert_eq!(connected, vec![attempt]),
            _ => prop_assert!(connected.is_empty()),
        }
        if end == End::AllFailed {
            prop_assert_eq!(starts.len(), order.len());
        }

        // A live address whose attempt is due before the timeout, the drop and any
        // other winner means success.
        let dns = match s.dns {
            Dns::Literal => Some(0),
            Dns::Answer(ms) => Some(ms),
            Dns::Fail(_) => None,
        };
        if let (Some(delay), Some(dns)) = (s.delay, dns) {
            let first_live = order.iter().position(|(_, p)| matches!(p, Peer::Live(_)));
            if let Some(j) = first_live {
                let Peer::Live(latency) = order[j].1 else { unreachable!() };
                // Attempt j starts at the latest j delays after the first, so it
                // connects by `latest`; an earlier-started or faster attempt may
                // win first (RFC 8305 §5: the first to connect wins), but the dial
                // must have connected by then.
                let latest = dns + j as u64 * delay + latency;
                let before = |limit: Option<u64>| limit.is_none_or(|l| latest < l);
                if before(s.timeout) && before(s.drop_at) {
                    let won = matches!(end, End::Connected { .. }) && at <= latest;
                    prop_assert!(won, "attempt {} is live by {}: {:?} at {}", j, latest, end, at);
                }
            }
        }
        Ok(())
    }

    /// Shrunk from a failure of the first oracle, which wanted the first live address in
    /// order to win. In order: attempt 0 to a slow v4 peer (0 → 21 ms), attempt 1 to a v6
    /// peer (10 → 21 ms), attempt 2 to a v4 peer that accepts at once (20 → 20 ms): the
    /// last one started is the first to connect, and wins.
    #[test]
    fn a_later_faster_attempt_may_win() {
        let s = Scenario {
            peers: vec![(false, Peer::Slow(21)), (false, Peer::Live(0)), (true, Peer::Live(11))],
            delay: Some(10),
            dns: Dns::Answer(0),
            timeout: None,
            drop_at: None,
        };
        check(&s).unwrap();
        assert_eq!(model(&s).1, End::Connected { attempt: 2 });
    }

    /// Shrunk from a failure of the first oracle on `timeout(0)`, which now means no limit
    /// and never reaches the plan; the smallest limit that does is 1 ms.
    #[test]
    fn a_one_millisecond_timeout_on_a_literal_starts_its_attempt() {
        let s = Scenario {
            peers: vec![(false, Peer::Live(0))],
            delay: Some(10),
            dns: Dns::Literal,
            timeout: Some(1),
            drop_at: None,
        };
        check(&s).unwrap();
        assert_eq!(model(&s).1, End::Connected { attempt: 0 });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn the_schedule_follows_rfc_8305_and_events_pair_up(s in scenario()) {
            check(&s)?;
        }

        #[test]
        fn interleave_alternates_families_and_keeps_each_familys_order(
            families in prop::collection::vec(any::<bool>(), 0..=16),
            port in 1u16..,
        ) {
            let s = Scenario {
                peers: families.iter().map(|v6| (*v6, Peer::BlackHole)).collect(),
                delay: None,
                dns: Dns::Answer(0),
                timeout: None,
                drop_at: None,
            };
            let ips = s.ips();
            let out = interleave(&ips, port);
            prop_assert_eq!(out.len(), ips.len());
            prop_assert!(out.iter().all(|a| a.port() == port));
            // Each family keeps the resolver's order.
            for v6 in [false, true] {
                let want: Vec<IpAddr> = ips.iter().copied().filter(|ip| ip.is_ipv6() == v6).collect();
                let got: Vec<IpAddr> = out.iter().map(|a| a.ip()).filter(|ip| ip.is_ipv6() == v6).collect();
                prop_assert_eq!(got, want);
            }
            // The families alternate, starting with the first address's, until one runs
            // out.
            if let Some(first) = ips.first() {
                prop_assert_eq!(out[0].ip(), *first);
                let v4 = ips.iter().filter(|ip| ip.is_ipv4()).count();
                let pairs = v4.min(ips.len() - v4);
                for (i, addr) in out.iter().enumerate().take(2 * pairs) {
                    prop_assert_eq!(addr.is_ipv6() == first.is_ipv6(), i % 2 == 0);
                }
            }
        }
    }
}
