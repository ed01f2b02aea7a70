//! Tests of the race: expectations with made-up instants, then properties over random
//! scenarios whose oracle is what RFC 8305 allows (and Go's `partialDeadline`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v4(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)), 443)
}

fn v6(n: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, n)), 443)
}

fn config(attempt_delay: Option<u64>) -> Config {
    Config {
        attempt_delay: attempt_delay.map(ms),
        resolution_delay: ms(50),
        attempt_timeout: None,
        deadline: None,
    }
}

/// Everything the race says at `now`.
fn drain(race: &mut Race, now: Instant) -> Vec<Output> {
    std::iter::from_fn(|| race.poll_output(now)).collect()
}

fn start(attempt: usize, addr: SocketAddr) -> Output {
    Output::Start { attempt, addr }
}

#[test]
fn aaaa_first_starts_at_once() {
    let t0 = Instant::now();
    let mut race = Race::new(config(Some(250)), Family::Any);
    assert_eq!(drain(&mut race, t0), []);
    assert_eq!(race.poll_timeout(), None);
    race.answer(Family::Ipv6, vec![v6(1)], t0 + ms(5));
    assert_eq!(drain(&mut race, t0 + ms(5)), [start(0, v6(1))]);
    // The A answer joins the untried part: next after the attempt delay.
    race.answer(Family::Ipv4, vec![v6(1), v4(1)], t0 + ms(30));
    assert_eq!(drain(&mut race, t0 + ms(30)), []);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(255)));
    assert_eq!(drain(&mut race, t0 + ms(255)), [start(1, v4(1))]);
}

#[test]
fn a_first_waits_the_resolution_delay_for_aaaa() {
    let t0 = Instant::now();
    let mut race = Race::new(config(Some(250)), Family::Any);
    race.answer(Family::Ipv4, vec![v4(1)], t0);
    assert_eq!(drain(&mut race, t0), []);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(50)));
    assert_eq!(drain(&mut race, t0 + ms(49)), []);
    assert_eq!(drain(&mut race, t0 + ms(50)), [start(0, v4(1))]);
    // AAAA late: joins, and is next (the families alternate).
    race.answer(Family::Ipv6, vec![v4(1), v6(1)], t0 + ms(1500));
    assert_eq!(race.poll_timeout(), Some(t0 + ms(300)));
}

#[test]
fn aaaa_within_the_resolution_delay_goes_first() {
    let t0 = Instant::now();
    let mut race = Race::new(config(Some(250)), Family::Any);
    race.answer(Family::Ipv4, vec![v4(1)], t0);
    assert_eq!(drain(&mut race, t0 + ms(20)), []);
    race.answer(Family::Ipv6, vec![v6(1), v4(1)], t0 + ms(20));
    assert_eq!(drain(&mut race, t0 + ms(20)), [start(0, v6(1))]);
}

#[test]
fn when_every_attempt_failed_and_an_answer_is_due_the_race_waits_for_it() {
    let t0 = Instant::now();
    let mut race = Race::new(config(Some(250)), Family::Any);
    race.answer(Family::Ipv4, vec![v4(1)], t0);
    assert_eq!(drain(&mut race, t0 + ms(50)), [start(0, v4(1))]);
    race.failed(0);
    assert_eq!(drain(&mut race, t0 + ms(51)), []);
    assert_eq!(race.poll_timeout(), None);
    race.answer(Family::Ipv6, vec![v4(1), v6(1)], t0 + ms(400));
    assert_eq!(drain(&mut race, t0 + ms(400)), [start(1, v6(1))]);
    race.connected(1);
    assert_eq!(
        drain(&mut race, t0 + ms(401)),
        [Output::Done(End::Connected(1))]
    );
    assert_eq!(drain(&mut race, t0 + ms(402)), []);
}

#[test]
fn exhausted_only_when_no_answer_is_due() {
    let t0 = Instant::now();
    let mut race = Race::new(config(Some(250)), Family::Any);
    race.answer(Family::Ipv6, vec![], t0);
    race.answer(Family::Ipv4, vec![], t0);
    assert_eq!(drain(&mut race, t0), [Output::Done(End::Exhausted)]);
    let mut race = Race::new(config(Some(250)), Family::Ipv4);
    assert!(!race.awaiting(Family::Ipv6));
    race.answer(Family::Ipv4, vec![v4(1)], t0);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    race.failed(0);
    assert_eq!(drain(&mut race, t0), [Output::Done(End::Exhausted)]);
}

#[test]
fn attempt_timeout_fails_the_attempt_and_the_next_starts_at_once() {
    let t0 = Instant::now();
    let mut cfg = config(None);
    cfg.attempt_timeout = Some(ms(100));
    let mut race = Race::with_addrs(cfg, vec![v4(1), v4(2)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(100)));
    assert_eq!(
        drain(&mut race, t0 + ms(100)),
        [Output::TimedOut { attempt: 0 }, start(1, v4(2))]
    );
}

#[test]
fn serial_mode_gives_each_address_its_share_of_the_deadline() {
    let t0 = Instant::now();
    let mut cfg = config(None);
    cfg.deadline = Some(t0 + ms(10_000));
    let mut race = Race::with_addrs(cfg, vec![v4(1), v4(2)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    // 10 s for two addresses: 5 s each.
    assert_eq!(race.poll_timeout(), Some(t0 + ms(5_000)));
    assert_eq!(
        drain(&mut race, t0 + ms(5_000)),
        [Output::TimedOut { attempt: 0 }, start(1, v4(2))]
    );
    assert_eq!(race.poll_timeout(), Some(t0 + ms(10_000)));

    // With 2 s in all, the first is not given less than... what is left, 2 s: the whole.
    let mut cfg = config(None);
    cfg.deadline = Some(t0 + ms(2_000));
    let mut race = Race::with_addrs(cfg, vec![v4(1), v4(2), v4(3)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(2_000)));
    // 5 s for three: 2 s (the minimum), not 1.67 s.
    let mut cfg = config(None);
    cfg.deadline = Some(t0 + ms(5_000));
    let mut race = Race::with_addrs(cfg, vec![v4(1), v4(2), v4(3)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(2_000)));
}

#[test]
fn the_deadline_ends_the_race() {
    let t0 = Instant::now();
    let mut cfg = config(Some(250));
    cfg.deadline = Some(t0 + ms(300));
    let mut race = Race::with_addrs(cfg, vec![v4(1), v6(1), v4(2)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    assert_eq!(drain(&mut race, t0 + ms(250)), [start(1, v6(1))]);
    assert_eq!(race.poll_timeout(), Some(t0 + ms(300)));
    assert_eq!(
        drain(&mut race, t0 + ms(300)),
        [Output::Done(End::TimedOut)]
    );
}

/// Shrunk from a failure of the first property oracle, which wanted the first live
/// address in order to win: attempt 2 connects at 20 ms, before attempt 1 (started at
/// 10 ms, 11 ms away) and attempt 0 (slow): the first to connect wins (RFC 8305 §5).
#[test]
fn a_later_faster_attempt_may_win() {
    let t0 = Instant::now();
    let mut race = Race::with_addrs(config(Some(10)), vec![v4(1), v6(1), v4(2)]);
    assert_eq!(drain(&mut race, t0), [start(0, v4(1))]);
    assert_eq!(drain(&mut race, t0 + ms(10)), [start(1, v6(1))]);
    assert_eq!(drain(&mut race, t0 + ms(20)), [start(2, v4(2))]);
    race.connected(2);
    assert_eq!(
        drain(&mut race, t0 + ms(20)),
        [Output::Done(End::Connected(2))]
    );
}

#[test]
fn interleave_alternates_and_keeps_each_familys_order() {
    let addrs = [v6(1), v6(2), v6(3), v4(1), v4(2)];
    assert_eq!(
        interleave(&addrs, true),
        [v6(1), v4(1), v6(2), v4(2), v6(3)]
    );
    assert_eq!(
        interleave(&addrs, false),
        [v4(1), v6(1), v4(2), v6(2), v6(3)]
    );
    assert!(interleave(&[], true).is_empty());
}

// ---------------------------------------------------------------------------------------
// Properties: a simulated dial over fake peers and made-up instants drives the race; the
// oracle checks the run against what RFC 8305 allows.

/// How a peer answers an attempt; times in milliseconds after the attempt started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Connects(u64),
    Refuses(u64),
    BlackHole,
}

#[derive(Debug, Clone)]
struct Scenario {
    v6: Vec<Peer>,
    v4: Vec<Peer>,
    /// When each family's answer arrives; `None`: never (the dial must not wait forever
    /// for it unless it has nothing else to do).
    aaaa_at: Option<u64>,
    a_at: Option<u64>,
    attempt_delay: Option<u64>,
    resolution_delay: u64,
    attempt_timeout: Option<u64>,
    deadline: Option<u64>,
}

impl Scenario {
    fn addr(&self, v6_family: bool, i: usize) -> SocketAddr {
        if v6_family {
            v6(u16::try_from(i + 1).unwrap())
        } else {
            v4(u8::try_from(i + 1).unwrap())
        }
    }

    fn peer(&self, addr: SocketAddr) -> Peer {
        let i = match addr.ip() {
            IpAddr::V6(ip) => usize::from(ip.segments()[7]) - 1,
            IpAddr::V4(ip) => usize::from(ip.octets()[3]) - 1,
        };
        if addr.is_ipv6() {
            self.v6[i]
        } else {
            self.v4[i]
        }
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let peer = prop_oneof![
        (0u64..=400).prop_map(Peer::Connects),
        (0u64..=300).prop_map(Peer::Refuses),
        Just(Peer::BlackHole),
    ];
    let at = prop::option::weighted(0.9, 0u64..=600);
    (
        prop::collection::vec(peer.clone(), 0..=4),
        prop::collection::vec(peer, 0..=4),
        at.clone(),
        at,
        prop::option::weighted(0.8, 10u64..=300),
        0u64..=100,
        prop::option::of(20u64..=500),
        prop::option::weighted(0.7, 1u64..=3_000),
    )
        .prop_map(
            |(
                v6,
                v4,
                aaaa_at,
                a_at,
                attempt_delay,
                resolution_delay,
                attempt_timeout,
                deadline,
            )| {
                Scenario {
                    v6,
                    v4,
                    aaaa_at,
                    a_at,
                    attempt_delay,
                    resolution_delay,
                    attempt_timeout,
                    deadline,
                }
            },
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Answer(bool),
    Start(usize, SocketAddr),
    Connected(usize),
    Failed(usize),
    TimedOut(usize),
    Done(End),
}

#[derive(Debug)]
struct Run {
    events: Vec<(u64, Ev)>,
    /// Whether the race ended (or waits only on black holes with no limit).
    ended: bool,
}

/// Runs the scenario: at each instant, answers due, then attempt results due, then the
/// race's outputs until it has none; then on to the next instant anything is due.
fn simulate(s: &Scenario) -> Run {
    let t0 = Instant::now();
    let at = |t: u64| t0 + ms(t);
    let config = Config {
        attempt_delay: s.attempt_delay.map(ms),
        resolution_delay: ms(s.resolution_delay),
        attempt_timeout: s.attempt_timeout.map(ms),
        deadline: s.deadline.map(at),
    };
    let mut race = Race::new(config, Family::Any);
    let mut events = Vec::new();
    // Pending attempt results: (time, attempt, connects).
    let mut results: Vec<(u64, usize, bool)> = Vec::new();
    let mut answers = [(s.aaaa_at, true), (s.a_at, false)];
    let mut known: Vec<SocketAddr> = Vec::new();
    let mut now = 0;
    loop {
        for (when, is_v6) in &mut answers {
            if when.is_some_and(|t| t <= now) {
                *when = None;
                // Preference: IPv6 before IPv4 (as RFC 6724 ranks loopback-like peers).
                let n = if *is_v6 { s.v6.len() } else { s.v4.len() };
                let new = (0..n).map(|i| s.addr(*is_v6, i));
                if *is_v6 {
                    known.splice(0..0, new.collect::<Vec<_>>());
                } else {
                    known.extend(new);
                }
                events.push((now, Ev::Answer(*is_v6)));
                let family = if *is_v6 { Family::Ipv6 } else { Family::Ipv4 };
                race.answer(family, known.clone(), at(now));
            }
        }
        results.sort_by_key(|(t, attempt, _)| (*t, *attempt));
        while let Some(&(t, attempt, connects)) = results.first() {
            if t > now {
                break;
            }
            results.remove(0);
            if connects {
                events.push((now, Ev::Connected(attempt)));
                race.connected(attempt);
            } else {
                events.push((now, Ev::Failed(attempt)));
                race.failed(attempt);
            }
        }
        while let Some(output) = race.poll_output(at(now)) {
            match output {
                Output::Start { attempt, addr } => {
                    events.push((now, Ev::Start(attempt, addr)));
                    match s.peer(addr) {
                        Peer::Connects(d) => results.push((now + d, attempt, true)),
                        Peer::Refuses(d) => results.push((now + d, attempt, false)),
                        Peer::BlackHole => {}
                    }
                }
                Output::TimedOut { attempt } => {
                    events.push((now, Ev::TimedOut(attempt)));
                    results.retain(|(_, a, _)| *a != attempt);
                }
                Output::Done(end) => {
                    events.push((now, Ev::Done(end)));
                    return Run {
                        events,
                        ended: true,
                    };
                }
            }
        }
        let timeout = race.poll_timeout().map(|t| {
            // Rounded up: a limit inside a millisecond is reached at its end.
            let d = t.duration_since(t0);
            let t = u64::try_from(d.as_millis()).unwrap()
                + u64::from(d.subsec_nanos() % 1_000_000 != 0);
            assert!(t > now, "the race asks to be woken in the past");
            t
        });
        let next = answers
            .iter()
            .filter_map(|(t, _)| *t)
            .chain(results.iter().map(|(t, _, _)| *t))
            .chain(timeout)
            .min();
        match next {
            Some(next) => now = next,
            None => {
                return Run {
                    events,
                    ended: false,
                }
            }
        }
    }
}

/// What RFC 8305 (and the deadlines) allow, checked over a run's events.
fn check(s: &Scenario) -> Result<(), TestCaseError> {
    let run = simulate(s);
    let ev = &run.events;
    let starts: Vec<(u64, usize, SocketAddr)> = ev
        .iter()
        .filter_map(|(t, e)| match e {
            Ev::Start(a, addr) => Some((*t, *a, *addr)),
            _ => None,
        })
        .collect();
    let answered = |v6: bool, t: u64| ev.iter().any(|(at, e)| *e == Ev::Answer(v6) && *at <= t);
    let answer_at = |v6: bool| {
        ev.iter()
            .find(|(_, e)| *e == Ev::Answer(v6))
            .map(|(t, _)| *t)
    };
    let end = ev.iter().find_map(|(t, e)| match e {
        Ev::Done(end) => Some((*t, *end)),
        _ => None,
    });
    let end_at = end.map(|(t, _)| t);
    prop_assert_eq!(run.ended, end.is_some());

    // Attempts are numbered in order, each address is tried once, after its answer.
    for (k, (t, a, addr)) in starts.iter().enumerate() {
        prop_assert_eq!(*a, k);
        prop_assert!(answered(addr.is_ipv6(), *t), "{} before its answer", addr);
        prop_assert_eq!(starts.iter().filter(|(_, _, b)| b == addr).count(), 1);
    }

    // Each attempt ends once: a result, a timeout, or the race's end (cancelled).
    for (_, k, _) in &starts {
        let ends = ev
            .iter()
            .filter(
                |(_, e)| matches!(e, Ev::Connected(a) | Ev::Failed(a) | Ev::TimedOut(a) if a == k),
            )
            .count();
        prop_assert!(ends <= 1, "attempt {} ended twice: {:?}", k, ev);
    }

    // The first attempt: RFC 8305 §3. It starts once an address is known and either the
    // AAAA answer came or the A answer is `resolution_delay` old — not before, not after.
    let first_allowed = (0..=10_000u64).find(|&t| {
        let has_addr =
            (answered(true, t) && !s.v6.is_empty()) || (answered(false, t) && !s.v4.is_empty());
        let a_old = answer_at(false).is_some_and(|a| a + s.resolution_delay <= t);
        has_addr && (answered(true, t) || a_old)
    });
    let limit = end_at.unwrap_or(u64::MAX);
    match (starts.first(), first_allowed) {
        (Some((t, _, addr)), Some(allowed)) => {
            prop_assert_eq!(*t, allowed);
            // The most preferred family first (here IPv6, when it has an address).
            prop_assert_eq!(addr.is_ipv6(), answered(true, *t) && !s.v6.is_empty());
        }
        (Some(_), None) => prop_assert!(false, "started with nothing allowed"),
        (None, Some(allowed)) => prop_assert!(allowed >= limit, "no start by {}", allowed),
        (None, None) => {}
    }

    // Later attempts: RFC 8305 §5. Attempt k starts `attempt_delay` after attempt k-1, or
    // earlier only when nothing was in flight; and no later than the first instant it was
    // allowed with an address to try.
    // Attempts before `before` in flight at `t` (those that ended at `t` are not).
    let in_flight_before = |t: u64, before: usize| {
        starts
            .iter()
            .filter(|(st, k, _)| {
                *k < before && *st <= t && !ev.iter().any(|(et, e)| {
                    *et <= t
                        && matches!(e, Ev::Connected(a) | Ev::Failed(a) | Ev::TimedOut(a) if a == k)
                })
            })
            .count()
    };
    let known_at = |t: u64| {
        usize::from(answered(true, t)) * s.v6.len() + usize::from(answered(false, t)) * s.v4.len()
    };
    for k in 1..starts.len() {
        let (prev, _, _) = starts[k - 1];
        let (t, _, addr) = starts[k];
        let by_delay = s.attempt_delay.is_some_and(|d| t >= prev + d);
        prop_assert!(
            by_delay || in_flight_before(t, k) == 0,
            "attempt {} at {} came early: {:?}",
            k,
            t,
            ev
        );
        // Interleave: the other family when it has an untried address.
        let (_, _, prev_addr) = starts[k - 1];
        let other_untried = starts[..k]
            .iter()
            .filter(|(_, _, a)| a.is_ipv6() != prev_addr.is_ipv6())
            .count()
            < if prev_addr.is_ipv6() {
                usize::from(answered(false, t)) * s.v4.len()
            } else {
                usize::from(answered(true, t)) * s.v6.len()
            };
        if other_untried {
            prop_assert!(addr.is_ipv6() != prev_addr.is_ipv6(), "families alternate");
        }
    }
    // No stall: at every instant of the run after the first start and before the end,
    // if an address was untried and the rule allowed a start, one was made.
    if let Some(&(first, _, _)) = starts.first() {
        let delays = starts
            .iter()
            .filter_map(|(st, _, _)| s.attempt_delay.map(|d| st + d));
        let times: Vec<u64> = ev.iter().map(|(t, _)| *t).chain(delays).collect();
        for t in times {
            if t < first || t >= limit {
                continue;
            }
            let made = starts.iter().filter(|(st, _, _)| *st <= t).count();
            let last = starts
                .iter()
                .filter(|(st, _, _)| *st <= t)
                .map(|(st, _, _)| *st)
                .max();
            let allowed = in_flight_before(t, usize::MAX) == 0
                || s.attempt_delay.zip(last).is_some_and(|(d, l)| t >= l + d);
            prop_assert!(
                !(allowed && made < known_at(t)),
                "stalled at {} with untried addresses: {:?}",
                t,
                ev
            );
        }
    }

    // Attempt deadlines: its own timeout; in serial mode with a deadline, its share.
    for (st, k, _) in &starts {
        if let Some((tt, _)) = ev.iter().find(|(_, e)| *e == Ev::TimedOut(*k)) {
            let allowed = match (s.attempt_timeout, s.attempt_delay, s.deadline) {
                (Some(limit), _, _) => Some(st + limit),
                (None, None, Some(deadline)) => {
                    let left = deadline - st;
                    let remaining = (known_at(*st) - k).max(1) as u64;
                    let share = left / remaining;
                    Some(
                        st + if share < 2_000 {
                            left.min(2_000)
                        } else {
                            share
                        },
                    )
                }
                _ => None,
            };
            prop_assert!(allowed.is_some(), "attempt {} timed out with no limit", k);
            // Within a millisecond: the share is computed in nanoseconds.
            let allowed = allowed.unwrap();
            prop_assert!(
                tt.abs_diff(allowed) <= 1,
                "attempt {} timed out at {}, limit {}",
                k,
                tt,
                allowed
            );
        }
    }

    // The end.
    match end {
        Some((t, End::Connected(k))) => {
            prop_assert!(ev.iter().any(|(at, e)| *at == t && *e == Ev::Connected(k)));
            prop_assert!(!ev
                .iter()
                .any(|(at, e)| *at < t && matches!(e, Ev::Connected(_))));
        }
        Some((t, End::TimedOut)) => prop_assert_eq!(Some(t), s.deadline),
        Some((t, End::Exhausted)) => {
            prop_assert_eq!(starts.len(), known_at(t));
            prop_assert!(s.aaaa_at.is_some_and(|a| a <= t) && s.a_at.is_some_and(|a| a <= t));
            prop_assert_eq!(in_flight_before(t, usize::MAX), 0);
        }
        None => {
            // Only black holes with no limit, or an answer that never comes with nothing
            // to try: a real dial would wait for the system's timeouts.
            prop_assert!(s.deadline.is_none());
        }
    }
    if let (Some(deadline), Some(t)) = (s.deadline, end_at) {
        prop_assert!(t <= deadline);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn the_race_follows_rfc_8305(s in scenario()) {
        check(&s)?;
    }
}
