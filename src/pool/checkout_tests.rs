use std::time::Duration;

use tokio::time::Instant;

use proptest::prelude::*;

use super::*;

const KEY: &str = "http://a:80";

fn pool(max_idle: usize, idle_timeout: Option<Duration>) -> Checkouts<&'static str, u32> {
    Checkouts::new(Limits {
        idle_timeout,
        max_idle_per_host: max_idle,
    })
}

fn dial_of(checkout: Checkout) -> ConnId {
    match checkout {
        Checkout::Wait { dial: Some(id) } => id,
        other => panic!("expected a new dial, got {other:?}"),
    }
}

fn used(checkout: Checkout) -> Handoff {
    match checkout {
        Checkout::Use(handoff) => handoff,
        other => panic!("expected a connection, got {other:?}"),
    }
}

/// Dials for `request` and gives it the new HTTP/1.1 connection.
fn connect(p: &mut Checkouts<&'static str, u32>, request: u32, now: Instant) -> ConnId {
    let dial = dial_of(p.checkout(&KEY, request, false, now));
    let out = p.dialed(&KEY, dial, Ok(false), now);
    assert_eq!(out.handoffs.len(), 1);
    p.leave(&KEY, request);
    dial
}

#[test]
fn a_new_connection_is_its_dialers_and_not_reused() {
    let now = Instant::now();
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, false, now));
    let out = p.dialed(&KEY, dial, Ok(false), now);
    assert_eq!(
        out.handoffs,
        [(
            1,
            Handoff {
                conn: dial,
                own: true,
                reused: false,
                idle_for: None
            }
        )]
    );
}

#[test]
fn an_idle_connection_is_reused_with_its_idle_time() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let conn = connect(&mut p, 1, t0);
    assert_eq!(p.release(&KEY, conn, t0), (None, vec![]));
    let handoff = used(p.checkout(&KEY, 2, false, t0 + Duration::from_millis(30)));
    assert_eq!(handoff.conn, conn);
    assert!(handoff.reused && !handoff.own);
    assert_eq!(handoff.idle_for, Some(Duration::from_millis(30)));
}

#[test]
fn the_newest_idle_connection_is_handed_out_first() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let a = connect(&mut p, 1, t0);
    let b = connect(&mut p, 2, t0);
    p.release(&KEY, a, t0);
    p.release(&KEY, b, t0 + Duration::from_millis(1));
    assert_eq!(used(p.checkout(&KEY, 3, false, t0)).conn, b);
    assert_eq!(used(p.checkout(&KEY, 4, false, t0)).conn, a);
}

#[test]
fn a_connection_freed_while_a_request_dials_goes_to_it_and_its_dial_to_the_pool() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let c0 = connect(&mut p, 0, t0);
    let d1 = dial_of(p.checkout(&KEY, 1, false, t0));
    // Request 0 frees its connection while request 1's dial is still in DNS.
    let (handoff, evicted) = p.release(&KEY, c0, t0);
    assert!(evicted.is_empty());
    let (request, handoff) = handoff.expect("the waiting request gets it");
    assert_eq!(request, 1);
    assert_eq!(
        handoff,
        Handoff {
            conn: c0,
            own: false,
            reused: true,
            idle_for: None
        }
    );
    p.leave(&KEY, 1);
    // Its dial ends later, for the pool: nobody waits, so it goes idle, never used.
    let out = p.dialed(&KEY, d1, Ok(false), t0 + Duration::from_millis(50));
    assert!(out.handoffs.is_empty() && out.failed.is_empty());
    let later = used(p.checkout(&KEY, 2, false, t0 + Duration::from_millis(80)));
    assert_eq!(later.conn, d1);
    assert!(
        !later.reused && !later.own,
        "Go: Reused = false, WasIdle = true"
    );
    assert_eq!(later.idle_for, Some(Duration::from_millis(30)));
}

#[test]
fn a_dial_whose_owner_left_goes_to_the_longest_waiting_request_without_idle_time() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let d1 = dial_of(p.checkout(&KEY, 1, false, t0));
    let _d2 = dial_of(p.checkout(&KEY, 2, false, t0));
    p.leave(&KEY, 1);
    let out = p.dialed(&KEY, d1, Ok(false), t0);
    assert_eq!(
        out.handoffs,
        [(
            2,
            Handoff {
                conn: d1,
                own: false,
                reused: false,
                idle_for: None
            }
        )]
    );
}

#[test]
fn concurrent_requests_that_may_speak_h2_share_one_dial_and_one_connection() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, true, t0));
    for request in 2..=64 {
        assert_eq!(
            p.checkout(&KEY, request, true, t0),
            Checkout::Wait { dial: None }
        );
    }
    let out = p.dialed(&KEY, dial, Ok(true), t0);
    assert_eq!(out.handoffs.len(), 64);
    assert!(out.handoffs.iter().all(|(_, h)| h.conn == dial));
    let own: Vec<u32> = out
        .handoffs
        .iter()
        .filter(|(_, h)| h.own)
        .map(|(r, _)| *r)
        .collect();
    assert_eq!(own, [1]);
    assert!(!out.handoffs[0].1.reused);
    assert!(out.handoffs[1..].iter().all(|(_, h)| h.reused));
    // Later requests use it at once.
    let later = used(p.checkout(&KEY, 65, true, t0));
    assert_eq!(later.conn, dial);
    assert!(later.reused && later.idle_for.is_none());
}

#[test]
fn requests_that_waited_for_h2_dial_for_themselves_when_the_origin_answers_http1() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, true, t0));
    for request in 2..=3 {
        assert_eq!(
            p.checkout(&KEY, request, true, t0),
            Checkout::Wait { dial: None }
        );
    }
    let out = p.dialed(&KEY, dial, Ok(false), t0);
    assert_eq!(out.handoffs.len(), 1);
    assert_eq!(out.handoffs[0].0, 1);
    let redial: Vec<u32> = out.dials.iter().map(|(r, _)| *r).collect();
    assert_eq!(redial, [2, 3]);
    // Their new dials are not shared (HTTP/1.1 now) and each goes to its own request.
    let (_, d2) = out.dials[0];
    let out = p.dialed(&KEY, d2, Ok(false), t0);
    assert_eq!(out.handoffs.len(), 1);
    assert_eq!(out.handoffs[0].0, 2);
    assert!(out.handoffs[0].1.own);
}

#[test]
fn a_failed_dial_fails_its_owner_and_the_requests_that_joined_it_only() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, true, t0));
    assert_eq!(p.checkout(&KEY, 2, true, t0), Checkout::Wait { dial: None });
    let other = dial_of(p.checkout(&"http://b:80", 3, false, t0));
    let out = p.dialed(&KEY, dial, Err(()), t0);
    assert_eq!(out.failed, [1, 2]);
    assert!(out.handoffs.is_empty());
    let out = p.dialed(&"http://b:80", other, Ok(false), t0);
    assert_eq!(out.handoffs[0].0, 3);
}

#[test]
fn a_failed_dial_whose_owner_left_fails_nobody() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, false, t0));
    p.leave(&KEY, 1);
    assert_eq!(p.dialed(&KEY, dial, Err(()), t0), Dialed::default());
}

#[test]
fn the_idle_list_keeps_at_most_max_idle_per_host_dropping_the_oldest() {
    let t0 = Instant::now();
    let mut p = pool(2, None);
    let conns: Vec<ConnId> = (1..=3).map(|r| connect(&mut p, r, t0)).collect();
    assert_eq!(p.release(&KEY, conns[0], t0).1, vec![]);
    assert_eq!(p.release(&KEY, conns[1], t0).1, vec![]);
    assert_eq!(p.release(&KEY, conns[2], t0).1, vec![conns[0]]);
    assert_eq!(p.idle_count(), 2);
}

#[test]
fn with_no_idle_allowed_a_freed_connection_is_closed() {
    let t0 = Instant::now();
    let mut p = pool(0, None);
    let conn = connect(&mut p, 1, t0);
    assert_eq!(p.release(&KEY, conn, t0).1, vec![conn]);
    assert_eq!(p.idle_count(), 0);
}

#[test]
fn connections_idle_past_the_timeout_expire_and_younger_ones_stay() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(90);
    let mut p = pool(usize::MAX, Some(timeout));
    let old = connect(&mut p, 1, t0);
    let young = connect(&mut p, 2, t0);
    p.release(&KEY, old, t0);
    p.release(&KEY, young, t0 + Duration::from_secs(10));
    assert_eq!(p.expire(t0 + timeout - Duration::from_millis(1)), vec![]);
    assert_eq!(p.expire(t0 + timeout), vec![old]);
    assert_eq!(used(p.checkout(&KEY, 3, false, t0 + timeout)).conn, young);
}

#[test]
fn a_closed_connection_is_never_handed_out() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let conn = connect(&mut p, 1, t0);
    p.release(&KEY, conn, t0);
    p.closed(&KEY, conn);
    assert!(matches!(
        p.checkout(&KEY, 2, false, t0),
        Checkout::Wait { dial: Some(_) }
    ));
    // Nor is a closed HTTP/2 connection.
    let mut p = pool(usize::MAX, None);
    let dial = dial_of(p.checkout(&KEY, 1, true, t0));
    p.dialed(&KEY, dial, Ok(true), t0);
    p.closed(&KEY, dial);
    assert!(matches!(
        p.checkout(&KEY, 2, true, t0),
        Checkout::Wait { dial: Some(_) }
    ));
    // A release after the close is ignored.
    assert_eq!(p.release(&KEY, dial, t0), (None, vec![]));
}

#[test]
fn a_second_h2_connection_replaces_the_first_which_is_handed_out_no_more() {
    let t0 = Instant::now();
    let mut p = pool(usize::MAX, None);
    let first = dial_of(p.checkout(&KEY, 1, true, t0));
    p.dialed(&KEY, first, Ok(true), t0);
    let second = dial_of(p.dial_for(&KEY, 2, true));
    let out = p.dialed(&KEY, second, Ok(true), t0);
    assert_eq!(out.evicted, [first]);
    assert_eq!(out.handoffs.len(), 1);
    assert_eq!(used(p.checkout(&KEY, 3, true, t0)).conn, second);
}

#[test]
fn an_h2_connection_nobody_uses_is_idle_and_expires_after_the_idle_timeout() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(90);
    let mut p = pool(usize::MAX, Some(timeout));
    let conn = dial_of(p.checkout(&KEY, 1, true, t0));
    p.dialed(&KEY, conn, Ok(true), t0);
    let second = used(p.checkout(&KEY, 2, true, t0));
    assert_eq!(second.idle_for, None, "request 1 still uses it");
    p.release(&KEY, conn, t0);
    p.release(&KEY, conn, t0 + Duration::from_secs(1));
    let third = used(p.checkout(&KEY, 3, true, t0 + Duration::from_secs(3)));
    assert_eq!(third.idle_for, Some(Duration::from_secs(2)));
    p.release(&KEY, conn, t0 + Duration::from_secs(3));
    // In use, it never expires; unused past the timeout, it does.
    assert_eq!(p.expire(t0 + Duration::from_secs(92)), vec![]);
    assert_eq!(p.expire(t0 + Duration::from_secs(93)), vec![conn]);
    assert!(matches!(
        p.checkout(&KEY, 4, true, t0 + Duration::from_secs(93)),
        Checkout::Wait { dial: Some(_) }
    ));
}

/// One step of a random schedule for the property below.
#[derive(Debug, Clone)]
enum Step {
    /// A new request asks (to origin `0` or `1`; whether it may speak HTTP/2).
    Ask { origin: usize, may_h2: bool },
    /// The `n`-th waiting request (mod their count) leaves.
    Leave(usize),
    /// The `n`-th dial in flight ends: `Ok(h2)` or `Err`.
    Dialed(usize, Result<bool, ()>),
    /// The `n`-th request holding a connection is done with it.
    Release(usize),
    /// The `n`-th open connection closes.
    Close(usize),
    /// Time passes, in seconds.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, any::<bool>()).prop_map(|(origin, may_h2)| Step::Ask { origin, may_h2 }),
        1 => any::<usize>().prop_map(Step::Leave),
        3 => (any::<usize>(), prop_oneof![4 => any::<bool>().prop_map(Ok), 1 => Just(Err(()))])
            .prop_map(|(n, made)| Step::Dialed(n, made)),
        3 => any::<usize>().prop_map(Step::Release),
        1 => any::<usize>().prop_map(Step::Close),
        1 => (0..120u64).prop_map(Step::Wait),
    ]
}

/// What the pool has told requests, checked against what a pool may do.
#[derive(Default)]
struct Model {
    /// Requests waiting, with their origin and whether they may speak HTTP/2.
    waiting: Vec<(u32, usize, bool)>,
    /// Dials in flight: id, origin.
    dials: Vec<(ConnId, usize)>,
    /// Connections held: request, origin, connection, HTTP/2.
    held: Vec<(u32, usize, ConnId, bool)>,
    /// Connections handed out at least once.
    served: std::collections::HashSet<ConnId>,
    /// HTTP/2 connections.
    h2: std::collections::HashSet<ConnId>,
    /// Connections that closed, expired or were evicted: never handed out again.
    gone: std::collections::HashSet<ConnId>,
    /// Open connections: id, origin.
    open: Vec<(ConnId, usize)>,
}

const ORIGINS: [&str; 2] = ["http://a:80", "https://b:443"];

impl Model {
    fn take(&mut self, request: u32, origin: usize, handoff: Handoff) {
        let conn = handoff.conn;
        assert!(
            !self.gone.contains(&conn),
            "{conn:?} was closed, then handed out"
        );
        assert_eq!(
            handoff.reused,
            self.served.contains(&conn),
            "reused is Go's"
        );
        let h2 = self.h2.contains(&conn);
        if !h2 {
            assert!(
                self.held.iter().all(|h| h.2 != conn),
                "an HTTP/1.1 connection handed to two requests at once"
            );
        }
        assert!(self.open.contains(&(conn, origin)), "wrong origin");
        self.served.insert(conn);
        self.waiting.retain(|w| w.0 != request);
        self.held.push((request, origin, conn, h2));
    }

    fn forget(&mut self, conns: &[ConnId]) {
        for conn in conns {
            self.gone.insert(*conn);
            self.open.retain(|o| o.0 != *conn);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever the order of asks, leaves, dial results, releases, closes and time: an
    /// HTTP/1.1 connection serves one request at a time, a closed or expired connection
    /// is never handed out again, `reused` is true exactly for a connection handed out
    /// before, the idle list keeps its limit, and once every dial has ended and every
    /// connection is released, no request is left waiting.
    #[test]
    fn the_checkout_decisions_keep_the_pool_s_promises(steps in prop::collection::vec(step(), 1..60)) {
        let max_idle = 2;
        let mut p: Checkouts<&'static str, u32> = Checkouts::new(Limits {
            idle_timeout: Some(Duration::from_secs(90)),
            max_idle_per_host: max_idle,
        });
        let mut m = Model::default();
        let mut now = Instant::now();
        let mut next = 1u32;
        let dialed = |p: &mut Checkouts<&'static str, u32>, m: &mut Model, at: usize, made: Result<bool, ()>, now| {
            let (id, origin) = m.dials.remove(at);
            let out = p.dialed(&ORIGINS[origin], id, made, now);
            if let Ok(h2) = made {
                m.open.push((id, origin));
                if h2 {
                    m.h2.insert(id);
                }
            }
            for (request, handoff) in out.handoffs {
                m.take(request, origin, handoff);
            }
            for request in out.failed {
                assert!(m.waiting.iter().any(|w| w.0 == request), "failed a request not waiting");
                m.waiting.retain(|w| w.0 != request);
            }
            m.forget(&out.evicted);
            for (request, id) in out.dials {
                assert!(m.waiting.iter().any(|w| w.0 == request));
                m.dials.push((id, origin));
            }
        };
        let release = |p: &mut Checkouts<&'static str, u32>, m: &mut Model, at: usize, now| {
            let (_, origin, conn, _) = m.held.remove(at);
            let (handoff, evicted) = p.release(&ORIGINS[origin], conn, now);
            m.forget(&evicted);
            if let Some((request, handoff)) = handoff {
                m.take(request, origin, handoff);
            }
        };
        for step in steps {
            match step {
                Step::Ask { origin, may_h2 } => {
                    let request = next;
                    next += 1;
                    let may_h2 = may_h2 && origin == 1;
                    match p.checkout(&ORIGINS[origin], request, may_h2, now) {
                        Checkout::Use(handoff) => {
                            m.waiting.push((request, origin, may_h2));
                            m.take(request, origin, handoff);
                        }
                        Checkout::Wait { dial } => {
                            m.waiting.push((request, origin, may_h2));
                            if let Some(id) = dial {
                                m.dials.push((id, origin));
                            }
                        }
                    }
                }
                Step::Leave(n) if !m.waiting.is_empty() => {
                    let (request, origin, _) = m.waiting.remove(n % m.waiting.len());
                    p.leave(&ORIGINS[origin], request);
                }
                Step::Dialed(n, made) if !m.dials.is_empty() => {
                    let at = n % m.dials.len();
                    dialed(&mut p, &mut m, at, made, now);
                }
                Step::Release(n) if !m.held.is_empty() => {
                    let at = n % m.held.len();
                    release(&mut p, &mut m, at, now);
                }
                Step::Close(n) if !m.open.is_empty() => {
                    let (conn, origin) = m.open[n % m.open.len()];
                    p.closed(&ORIGINS[origin], conn);
                    m.forget(&[conn]);
                }
                Step::Wait(secs) => {
                    now += Duration::from_secs(secs);
                    let expired = p.expire(now);
                    for conn in &expired {
                        assert!(
                            m.held.iter().all(|h| h.2 != *conn || m.h2.contains(conn)),
                            "an HTTP/1.1 connection in use expired"
                        );
                    }
                    m.forget(&expired);
                }
                _ => {}
            }
            prop_assert!(p.idle_count() <= max_idle * ORIGINS.len());
        }
        // Wind down: every dial connects (HTTP/1.1), every held connection is released.
        while !m.dials.is_empty() || !m.held.is_empty() {
            if !m.dials.is_empty() {
                dialed(&mut p, &mut m, 0, Ok(false), now);
            } else {
                release(&mut p, &mut m, 0, now);
            }
        }
        prop_assert!(m.waiting.is_empty(), "requests left waiting: {:?}", m.waiting);
    }
}
