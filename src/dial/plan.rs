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
