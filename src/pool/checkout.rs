//! The pool's decisions, free of I/O and clock: which connection a request gets, when it
//! dials, when it waits, and where a connection goes when it is made or freed.
//!
//! Connections and dials are named by ids; the I/O layer (`pool::mod`) holds the sockets
//! and hands out what this machine decides. Times are passed in.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// A connection (or the dial that is making it: a dial's connection takes its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// What a request is told when it asks for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checkout {
    /// Use this connection now.
    Use(Handoff),
    /// Wait for a handoff; when `dial` is set, start that dial for this request first.
    Wait { dial: Option<ConnId> },
}

/// A connection given to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handoff {
    pub(crate) conn: ConnId,
    /// The request's own dial made it (it is new to the request).
    pub(crate) own: bool,
    /// An earlier request was given this connection (Go's `Reused`).
    pub(crate) reused: bool,
    /// How long it had sat in the idle list, when it came from there (Go's `WasIdle` and
    /// `IdleTime`); `None` when it came straight from a dial or another request.
    pub(crate) idle_for: Option<Duration>,
}

/// Where a finished dial's result went.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Dialed<R> {
    /// Requests given the new connection (several for HTTP/2, at most one for HTTP/1.1).
    pub(crate) handoffs: Vec<(R, Handoff)>,
    /// Requests that waited on this dial alone and get its error.
    pub(crate) failed: Vec<R>,
    /// Idle connections closed to respect the idle limit.
    pub(crate) evicted: Vec<ConnId>,
    /// Dials to start now, each for the request named: requests that waited for a dial
    /// that might have spoken HTTP/2 and did not.
    pub(crate) dials: Vec<(R, ConnId)>,
}

/// Settings the decisions depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_idle_per_host: usize,
}

#[derive(Debug)]
struct Origin<R> {
    /// Free HTTP/1.1 connections, oldest first; the newest is handed out first.
    idle: Vec<(ConnId, Instant)>,
    /// The HTTP/2 connection every request shares.
    h2: Option<ConnId>,
    dials: Vec<DialState<R>>,
    /// Requests waiting for a connection, in arrival order.
    waiters: VecDeque<Waiter<R>>,
}

#[derive(Debug)]
struct DialState<R> {
    id: ConnId,
    /// The request that started it.
    owner: R,
    /// It may end in HTTP/2 (ALPN offers h2): requests wait for it instead of dialing.
    may_h2: bool,
}

#[derive(Debug)]
struct Waiter<R> {
    request: R,
    /// The dial it waits on (its own, or the HTTP/2 one it joined).
    on: Option<ConnId>,
}

#[derive(Debug)]
struct Conn {
    served: usize,
    /// Requests using it now.
    in_use: usize,
    /// Since when nobody has used it (HTTP/2; an idle HTTP/1.1 connection is in the idle
    /// list instead).
    unused_since: Option<Instant>,
}

/// Every origin's connections, dials and waiting requests.
#[derive(Debug)]
pub(crate) struct Checkouts<K, R> {
    limits: Limits,
    origins: HashMap<K, Origin<R>>,
    conns: HashMap<ConnId, Conn>,
    next: u64,
}

impl<R> Default for Origin<R> {
    fn default() -> Self {
        Origin {
            idle: Vec::new(),
            h2: None,
            dials: Vec::new(),
            waiters: VecDeque::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, R: Copy + Eq> Checkouts<K, R> {
    pub(crate) fn new(limits: Limits) -> Self {
        Checkouts {
            limits,
            origins: HashMap::new(),
            conns: HashMap::new(),
            next: 1,
        }
    }

    /// A request asks for a connection to `key`. `may_h2`: a new connection may
    /// negotiate HTTP/2, so it waits for a dial in flight that may, rather than dialing.
    pub(crate) fn checkout(&mut self, key: &K, request: R, may_h2: bool, now: Instant) -> Checkout {
        let origin = self.origins.entry(key.clone()).or_default();
        if let Some(conn) = origin.h2 {
            // Idle when no stream is open on it, as Go's HTTP/2 transport reports it.
            let idle_for = self.conns.get(&conn).and_then(|c| {
                c.unused_since
                    .filter(|_| c.in_use == 0)
                    .map(|since| now.saturating_duration_since(since))
            });
            return Checkout::Use(self.hand(conn, false, idle_for));
        }
        if let Some((conn, since)) = origin.idle.pop() {
            let idle_for = now.saturating_duration_since(since);
            return Checkout::Use(self.hand(conn, false, Some(idle_for)));
        }
        if may_h2 {
            if let Some(dial) = origin.dials.iter().find(|d| d.may_h2) {
                let on = Some(dial.id);
                origin.waiters.push_back(Waiter { request, on });
                return Checkout::Wait { dial: None };
            }
        }
        self.dial_for(key, request, may_h2)
    }

    /// Starts a new dial for `request`, whatever the pool holds (a retry wants a new
    /// connection), and queues the request.
    pub(crate) fn dial_for(&mut self, key: &K, request: R, may_h2: bool) -> Checkout {
        let origin = self.origins.entry(key.clone()).or_default();
        let id = ConnId(self.next);
        self.next += 1;
        origin.dials.push(DialState {
            id,
            owner: request,
            may_h2,
        });
        origin.waiters.push_back(Waiter {
            request,
            on: Some(id),
        });
        Checkout::Wait { dial: Some(id) }
    }

    fn hand(&mut self, conn: ConnId, own: bool, idle_for: Option<Duration>) -> Handoff {
        let state = self
            .conns
            .get_mut(&conn)
            .expect("a handed connection is known");
        let reused = state.served > 0;
        state.served += 1;
        state.in_use += 1;
        state.unused_since = None;
        Handoff {
            conn,
            own,
            reused,
            idle_for,
        }
    }

    /// The request no longer waits (it got a connection, failed or was dropped). A dial it
    /// started goes on for the pool.
    pub(crate) fn leave(&mut self, key: &K, request: R) {
        if let Some(origin) = self.origins.get_mut(key) {
            origin.waiters.retain(|w| w.request != request);
        }
    }

    /// A dial ended: `Ok(h2)` with a connection (HTTP/2 or not), or `Err` with nothing.
    pub(crate) fn dialed(
        &mut self,
        key: &K,
        dial: ConnId,
        made: Result<bool, ()>,
        now: Instant,
    ) -> Dialed<R> {
        let mut out = Dialed {
            handoffs: Vec::new(),
            failed: Vec::new(),
            evicted: Vec::new(),
            dials: Vec::new(),
        };
        let Some(origin) = self.origins.get_mut(key) else {
            return out;
        };
        let Some(at) = origin.dials.iter().position(|d| d.id == dial) else {
            return out;
        };
        let state = origin.dials.remove(at);
        let h2 = match made {
            Err(()) => {
                out.failed = origin
                    .waiters
                    .iter()
                    .filter(|w| w.on == Some(dial))
                    .map(|w| w.request)
                    .collect();
                origin.waiters.retain(|w| w.on != Some(dial));
                return out;
            }
            Ok(h2) => h2,
        };
        self.conns.insert(
            dial,
            Conn {
                served: 0,
                in_use: 0,
                unused_since: None,
            },
        );
        let origin = self.origins.get_mut(key).expect("looked up above");
        if h2 {
            // A second HTTP/2 connection (a retry's new dial) replaces the first, which
            // serves its streams in flight and is handed out no more.
            if let Some(old) = origin.h2.replace(dial) {
                self.conns.remove(&old);
                out.evicted.push(old);
            }
            // Everyone waiting for this origin shares it; the owner first.
            let mut waiters: Vec<R> = origin.waiters.drain(..).map(|w| w.request).collect();
            if let Some(at) = waiters.iter().position(|r| *r == state.owner) {
                let owner = waiters.remove(at);
                waiters.insert(0, owner);
            }
            for request in waiters {
                let own = request == state.owner;
                let handoff = self.hand(dial, own, None);
                out.handoffs.push((request, handoff));
            }
            return out;
        }
        // HTTP/1.1: its owner if it still waits, else the longest waiting request, else
        // the idle list.
        let taker = origin
            .waiters
            .iter()
            .position(|w| w.request == state.owner)
            .or(if origin.waiters.is_empty() {
                None
            } else {
                Some(0)
            });
        match taker {
            Some(at) => {
                let waiter = origin.waiters.remove(at).expect("position is in range");
                let own = waiter.request == state.owner;
                let handoff = self.hand(dial, own, None);
                out.handoffs.push((waiter.request, handoff));
            }
            None => out.evicted = self.park(key, dial, now),
        }
        // Requests that joined this dial for HTTP/2 now dial for themselves, over
        // HTTP/1.1 as this origin just answered.
        let origin = self.origins.get_mut(key).expect("looked up above");
        for waiter in origin.waiters.iter_mut().filter(|w| w.on == Some(dial)) {
            let id = ConnId(self.next);
            self.next += 1;
            origin.dials.push(DialState {
                id,
                owner: waiter.request,
                may_h2: false,
            });
            waiter.on = Some(id);
            out.dials.push((waiter.request, id));
        }
        out
    }

    /// A request is done with `conn`. An HTTP/1.1 connection is free again: the longest
    /// waiting request gets it, or it goes to the idle list. An HTTP/2 connection stays
    /// shared, idle from now when no request uses it. Returns the handoff, if any, and
    /// idle connections closed to respect the idle limit.
    pub(crate) fn release(
        &mut self,
        key: &K,
        conn: ConnId,
        now: Instant,
    ) -> (Option<(R, Handoff)>, Vec<ConnId>) {
        let Some(origin) = self.origins.get_mut(key) else {
            return (None, Vec::new());
        };
        let Some(state) = self.conns.get_mut(&conn) else {
            return (None, Vec::new());
        };
        state.in_use = state.in_use.saturating_sub(1);
        if origin.h2 == Some(conn) {
            // Shared: it stays where it is, idle from now if nobody uses it.
            if state.in_use == 0 {
                state.unused_since = Some(now);
            }
            return (None, Vec::new());
        }
        if let Some(waiter) = origin.waiters.pop_front() {
            let handoff = self.hand(conn, false, None);
            return (Some((waiter.request, handoff)), Vec::new());
        }
        (None, self.park(key, conn, now))
    }

    fn park(&mut self, key: &K, conn: ConnId, now: Instant) -> Vec<ConnId> {
        let origin = self
            .origins
            .get_mut(key)
            .expect("a parked connection's origin exists");
        origin.idle.push((conn, now));
        let excess = origin
            .idle
            .len()
            .saturating_sub(self.limits.max_idle_per_host);
        let evicted: Vec<ConnId> = origin.idle.drain(..excess).map(|(id, _)| id).collect();
        for id in &evicted {
            self.conns.remove(id);
        }
        evicted
    }

    /// A connection closed (the server hung up, or it failed): it is never handed out
    /// again.
    pub(crate) fn closed(&mut self, key: &K, conn: ConnId) {
        self.conns.remove(&conn);
        if let Some(origin) = self.origins.get_mut(key) {
            origin.idle.retain(|(id, _)| *id != conn);
            if origin.h2 == Some(conn) {
                origin.h2 = None;
            }
        }
        self.prune(key);
    }

    /// Closes connections idle for longer than the idle timeout; returns them.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<ConnId> {
        let Some(timeout) = self.limits.idle_timeout else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        for origin in self.origins.values_mut() {
            if let Some(h2) = origin.h2 {
                let unused = self.conns.get(&h2).and_then(|c| c.unused_since);
                if unused.is_some_and(|since| now.saturating_duration_since(since) >= timeout) {
                    origin.h2 = None;
                    expired.push(h2);
                }
            }
            origin.idle.retain(|(id, since)| {
                let keep = now.saturating_duration_since(*since) < timeout;
                if !keep {
                    expired.push(*id);
                }
                keep
            });
        }
        for id in &expired {
            self.conns.remove(id);
        }
        self.origins.retain(|_, o| !o.is_empty());
        expired
    }

    fn prune(&mut self, key: &K) {
        if self.origins.get(key).is_some_and(Origin::is_empty) {
            self.origins.remove(key);
        }
    }

    /// How many requests use `conn` now (`None`: not an open connection).
    pub(crate) fn in_use(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.in_use)
    }

    /// How many connections are idle, for all origins.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.origins.values().map(|o| o.idle.len()).sum()
    }
}

impl<R> Origin<R> {
    fn is_empty(&self) -> bool {
        self.idle.is_empty()
            && self.h2.is_none()
            && self.dials.is_empty()
            && self.waiters.is_empty()
    }
}

#[cfg(test)]
#[path = "checkout_tests.rs"]
mod tests;
