//! The Happy Eyeballs race of one dial (RFC 8305 §3–§5) as a state machine free of I/O,
//! of tokio and of the clock.
//!
//! The dial future feeds it what happened — a family's answer arrived, an attempt
//! connected or failed — with the time as an argument, and carries out what it asks:
//! start attempt N to an address, fail attempt N (its time is up), or end the dial. It
//! also says when it next needs to be asked ([`Race::poll_timeout`]). Tests drive it with
//! made-up instants.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::trace::Family;

/// The least time serial mode gives one attempt of a dial with a deadline, unless less
/// than that is left (Go's `partialDeadline`).
const SANE_MINIMUM: Duration = Duration::from_secs(2);

/// The settings of one race.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// RFC 8305 Connection Attempt Delay; `None` makes one attempt at a time.
    pub(crate) attempt_delay: Option<Duration>,
    /// RFC 8305 Resolution Delay: how long an A answer waits for the AAAA answer.
    pub(crate) resolution_delay: Duration,
    /// The limit of one attempt.
    pub(crate) attempt_timeout: Option<Duration>,
    /// When the whole dial must end.
    pub(crate) deadline: Option<Instant>,
}

/// What the dial should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Start attempt `attempt` (0, 1, 2, … in order) to `addr`.
    Start { attempt: usize, addr: SocketAddr },
    /// Attempt `attempt` reached its time limit: fail it with `TimedOut`. The race already
    /// counts it as failed.
    TimedOut { attempt: usize },
    /// The race is over.
    Done(End),
}

/// How a race ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// This attempt connected; every other attempt in flight is to be cancelled.
    Connected(usize),
    /// Every address answered was tried and failed, and no answer is still due.
    Exhausted,
    /// The deadline passed; every attempt in flight is to be cancelled.
    TimedOut,
}

#[derive(Debug)]
struct InFlight {
    attempt: usize,
    /// When the attempt's own limit is reached.
    deadline: Option<Instant>,
}

/// One dial's race.
#[derive(Debug)]
pub(crate) struct Race {
    config: Config,
    /// Every address received, in the order to prefer them (RFC 6724, or the resolver's).
    known: Vec<SocketAddr>,
    /// The addresses of the attempts started, in attempt order.
    started: Vec<SocketAddr>,
    /// Families whose answer is still due: `[ipv6, ipv4]`.
    due: [bool; 2],
    /// When an A answer came while AAAA was still due, before any attempt: the Resolution
    /// Delay counts from then.
    ipv4_first_at: Option<Instant>,
    in_flight: Vec<InFlight>,
    last_start: Option<Instant>,
    /// Attempts that timed out, to report.
    timed_out: VecDeque<usize>,
    end: Option<End>,
    /// Whether `Done` was handed out.
    ended: bool,
}

impl Race {
    /// A race waiting for the answers of `awaiting` (`Any` for both families).
    pub(crate) fn new(config: Config, awaiting: Family) -> Race {
        Race {
            config,
            known: Vec::new(),
            started: Vec::new(),
            due: [
                awaiting != Family::Ipv4, // AAAA
                awaiting != Family::Ipv6, // A
            ],
            ipv4_first_at: None,
            in_flight: Vec::new(),
            last_start: None,
            timed_out: VecDeque::new(),
            end: None,
            ended: false,
        }
    }

    /// A race over addresses known at once (an IP literal, a static answer).
    pub(crate) fn with_addrs(config: Config, addrs: Vec<SocketAddr>) -> Race {
        let mut race = Race::new(config, Family::Any);
        race.due = [false, false];
        race.known = addrs;
        race
    }

    /// `family`'s answer arrived at `now`. `known` is every address received so far, of
    /// both families, in the order to prefer them; it must keep the addresses given before.
    /// An answer for a family not awaited is ignored.
    pub(crate) fn answer(&mut self, family: Family, known: Vec<SocketAddr>, now: Instant) {
        let slot = match family {
            Family::Ipv6 => 0,
            Family::Ipv4 => 1,
            Family::Any => unreachable!("an answer is of one family"),
        };
        if !self.due[slot] || self.end.is_some() {
            return;
        }
        self.due[slot] = false;
        debug_assert!(self.started.iter().all(|a| known.contains(a)));
        self.known = known;
        if family == Family::Ipv4 && self.due[0] && self.last_start.is_none() {
            self.ipv4_first_at.get_or_insert(now);
        }
    }

    /// Attempt `attempt` connected.
    pub(crate) fn connected(&mut self, attempt: usize) {
        if self.end.is_none() && self.remove(attempt) {
            self.end = Some(End::Connected(attempt));
        }
    }

    /// Attempt `attempt` failed.
    pub(crate) fn failed(&mut self, attempt: usize) {
        self.remove(attempt);
    }

    fn remove(&mut self, attempt: usize) -> bool {
        let Some(i) = self.in_flight.iter().position(|a| a.attempt == attempt) else {
            return false;
        };
        self.in_flight.remove(i);
        true
    }

    /// Whether an answer is still due.
    pub(crate) fn awaiting(&self, family: Family) -> bool {
        match family {
            Family::Ipv6 => self.due[0],
            Family::Ipv4 => self.due[1],
            Family::Any => self.due[0] || self.due[1],
        }
    }

    /// The addresses of the attempts started so far, in attempt order.
    pub(crate) fn started(&self) -> &[SocketAddr] {
        &self.started
    }

    /// Returns what to do at `now`, if anything; call until it returns `None`. A `Start`
    /// is taken as done: the attempt is in flight from `now`.
    pub(crate) fn poll_output(&mut self, now: Instant) -> Option<Output> {
        if self.ended {
            return None;
        }
        if self.end.is_none() {
            self.advance(now);
        }
        if let Some(attempt) = self.timed_out.pop_front() {
            return Some(Output::TimedOut { attempt });
        }
        if let Some(end) = self.end {
            self.ended = true;
            return Some(Output::Done(end));
        }
        let addr = self.next_addr(now)?;
        let attempt = self.started.len();
        self.started.push(addr);
        self.last_start = Some(now);
        let deadline = self.attempt_deadline(now);
        self.in_flight.push(InFlight { attempt, deadline });
        Some(Output::Start { attempt, addr })
    }

    /// The next instant at which [`poll_output`](Race::poll_output) has something new to
    /// say without any other input; `None` when only an input can move the race.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        let attempts = self.in_flight.iter().filter_map(|a| a.deadline);
        let next_start = match self.next_start() {
            Due::At(at) => Some(at),
            // `poll_output` was called until it had nothing to say, so nothing is due at
            // once (an address due now was started).
            Due::Now | Due::Never => None,
        };
        [self.config.deadline, next_start]
            .into_iter()
            .flatten()
            .chain(attempts)
            .min()
    }

    /// Applies the deadlines that have passed by `now`.
    fn advance(&mut self, now: Instant) {
        if self.config.deadline.is_some_and(|d| d <= now) {
            self.end = Some(End::TimedOut);
            return;
        }
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].deadline.is_some_and(|d| d <= now) {
                let attempt = self.in_flight.remove(i).attempt;
                self.timed_out.push_back(attempt);
            } else {
                i += 1;
            }
        }
        if self.in_flight.is_empty()
            && !self.awaiting(Family::Any)
            && self.started.len() == self.known.len()
        {
            self.end = Some(End::Exhausted);
        }
    }

    /// The address to start now, if one is due.
    fn next_addr(&self, now: Instant) -> Option<SocketAddr> {
        let due = match self.next_start() {
            Due::Now => true,
            Due::At(at) => at <= now,
            Due::Never => false,
        };
        due.then(|| self.untried_in_order()[0])
    }

    /// When the next attempt is due, if there is an address to try.
    fn next_start(&self) -> Due {
        if self.started.len() == self.known.len() {
            return Due::Never;
        }
        let Some(last) = self.last_start else {
            // RFC 8305 §3: start on the AAAA answer; on an A answer first, wait up to the
            // Resolution Delay for AAAA.
            return match self.ipv4_first_at {
                Some(at) if self.due[0] => Due::At(at + self.config.resolution_delay),
                _ => Due::Now,
            };
        };
        if self.in_flight.is_empty() {
            // Every attempt so far failed (or an answer came after they did): at once.
            return Due::Now;
        }
        // RFC 8305 §5: the next attempt one Connection Attempt Delay after the previous.
        match self.config.attempt_delay {
            Some(delay) => Due::At(last + delay),
            None => Due::Never,
        }
    }

    /// The untried addresses in the order to try them: preference order, the families
    /// interleaved (RFC 8305 §4, First Address Family Count 1), starting with the family
    /// not used by the last attempt (or, before any, the family of the most preferred).
    fn untried_in_order(&self) -> Vec<SocketAddr> {
        let untried: Vec<SocketAddr> = self
            .known
            .iter()
            .copied()
            .filter(|a| !self.started.contains(a))
            .collect();
        let first_v6 = match self.started.last() {
            Some(last) => last.is_ipv4(),
            None => untried.first().is_some_and(SocketAddr::is_ipv6),
        };
        interleave(&untried, first_v6)
    }

    /// The limit of an attempt that starts `now`: its own timeout, or in serial mode with a
    /// deadline, its share of the time left.
    fn attempt_deadline(&self, now: Instant) -> Option<Instant> {
        if let Some(timeout) = self.config.attempt_timeout {
            return Some(now + timeout);
        }
        let deadline = self.config.deadline?;
        if self.config.attempt_delay.is_some() {
            return None;
        }
        // Go's partialDeadline: the time left shared among the addresses left (this one
        // included), but not below 2 s unless less than that is left.
        let left = deadline.saturating_duration_since(now);
        let remaining = (self.known.len() + 1 - self.started.len()).max(1);
        let share = left / u32::try_from(remaining).unwrap_or(u32::MAX);
        let share = if share < SANE_MINIMUM {
            left.min(SANE_MINIMUM)
        } else {
            share
        };
        Some(now + share)
    }
}

/// When the next attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Now,
    At(Instant),
    Never,
}

/// `addrs` with the families alternating (RFC 8305 §4, First Address Family Count 1),
/// starting with IPv6 if `first_v6` (or with the other family when it has none), each
/// family keeping its order.
pub(crate) fn interleave(addrs: &[SocketAddr], first_v6: bool) -> Vec<SocketAddr> {
    let mut primary = addrs.iter().filter(|a| a.is_ipv6() == first_v6);
    let mut secondary = addrs.iter().filter(|a| a.is_ipv6() != first_v6);
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        match (primary.next(), secondary.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out
}

#[cfg(test)]
#[path = "race_tests.rs"]
mod tests;
