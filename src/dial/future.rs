//! [`Dial`]: the future of one dial — lookup, then the attempt race.

use std::fmt;
use std::future::Future;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::addr::Target;
use super::attempt::{Attempt, Opened};
use super::plan::{interleave, Plan, Step};
use super::{DialError, Dialer};
use crate::resolve::Lookup;
use crate::scope::current;
use crate::trace::{ConnectOutcome, NetTrace};

/// The future of a dial, returned by [`Dialer::dial`] and [`Dialer::dial_host`].
///
/// It is `Send`, `Unpin` and `'static`. See [`Dialer::dial`] for its errors and what
/// dropping it does.
///
/// # Examples
///
/// ```
/// use nettrace::{Dial, Dialer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// # let port = listener.local_addr().unwrap().port();
/// let dial: Dial = Dialer::new().dial_host("127.0.0.1", port);
/// let stream = tokio::spawn(dial).await.unwrap().unwrap();
/// # drop(stream);
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Dial {
    dialer: Dialer,
    /// Captured at the first poll.
    trace: Option<NetTrace>,
    /// The overall timeout, armed at the first poll.
    deadline: Option<Pin<Box<Sleep>>>,
    state: State,
}

enum State {
    /// Not polled yet: the parsed target.
    Init(Result<Target, DialError>),
    Resolving {
        lookup: Lookup,
        host: Box<str>,
        port: u16,
    },
    Connecting(Race),
    Done,
}

/// The attempt race.
struct Race {
    plan: Plan,
    /// The attempts in flight, in attempt order.
    attempts: Vec<Attempt>,
    /// The attempts that failed, kept in attempt order (not the order they failed in).
    failed: Vec<(usize, SocketAddr, io::Error)>,
    /// Wakes the dial when the next attempt is due; made on first need.
    timer: Option<Pin<Box<Sleep>>>,
    /// The attempt whose `ConnectStart` hooks are running: if one panics, the drop still
    /// owes it a `ConnectDone`.
    starting: Option<(usize, SocketAddr)>,
}

/// Why addresses were left out (the `NoAddresses` reason).
const EXCLUDED: &str = "excluded by the address family filter or the local address's family";

impl Race {
    /// Keeps a failed attempt's error, in attempt order, and returns it.
    fn failure(&mut self, index: usize, addr: SocketAddr, err: io::Error) -> &io::Error {
        let at = self.failed.partition_point(|(i, _, _)| *i < index);
        self.failed.insert(at, (index, addr, err));
        &self.failed[at].2
    }

    fn into_failures(self) -> Vec<(SocketAddr, io::Error)> {
        self.failed
            .into_iter()
            .map(|(_, addr, err)| (addr, err))
            .collect()
    }
}

impl Dial {
    pub(super) fn new(dialer: Dialer, target: Result<Target, DialError>) -> Dial {
        Dial {
            dialer,
            trace: None,
            deadline: None,
            state: State::Init(target),
        }
    }

    fn connect_start(&self, addr: SocketAddr, attempt: usize) {
        if let Some(trace) = &self.trace {
            trace.connect_start(addr, attempt);
        }
    }

    fn connect_done(&self, addr: SocketAddr, attempt: usize, outcome: ConnectOutcome<'_>) {
        connect_done(&self.trace, addr, attempt, outcome);
    }

    /// Ends the dial: drops the lookup (which reports itself) or cancels every attempt
    /// in flight, reporting each as `Cancelled`, in attempt order.
    fn finish(&mut self) -> State {
        let state = mem::replace(&mut self.state, State::Done);
        if let State::Connecting(race) = &state {
            for attempt in &race.attempts {
                self.connect_done(attempt.addr, attempt.index, ConnectOutcome::Cancelled);
            }
            if let Some((index, addr)) = race.starting {
                self.connect_done(addr, index, ConnectOutcome::Cancelled);
            }
        }
        state
    }

    fn timed_out(&mut self) -> DialError {
        let after = self.dialer.options().timeout.unwrap_or_default();
        match self.finish() {
            State::Connecting(race) => DialError::Timeout {
                after,
                started: race.plan.started_addrs().to_vec(),
                failed: race.into_failures(),
            },
            _ => DialError::Timeout {
                after,
                started: Vec::new(),
                failed: Vec::new(),
            },
        }
    }

    fn start_race(&mut self, addrs: Vec<SocketAddr>) {
        let options = self.dialer.options();
        let delay = options.happy_eyeballs.then_some(options.attempt_delay);
        self.state = State::Connecting(Race {
            plan: Plan::new(addrs, delay),
            attempts: Vec::with_capacity(1),
            failed: Vec::new(),
            timer: None,
            starting: None,
        });
    }

    fn poll_race(&mut self, cx: &mut Context<'_>) -> Poll<Result<TcpStream, DialError>> {
        loop {
            // Start every attempt that is due.
            loop {
                let State::Connecting(race) = &mut self.state else {
                    unreachable!("poll_race outside the race");
                };
                match race.plan.step(Instant::now()) {
                    Step::Start { attempt, addr } => {
                        race.starting = Some((attempt, addr));
                        self.connect_start(addr, attempt);
                        let opened = Attempt::open(attempt, addr, self.dialer.options());
                        let State::Connecting(race) = &mut self.state else {
                            unreachable!();
                        };
                        race.starting = None;
                        match opened {
                            Opened::Pending(a) => race.attempts.push(a),
                            Opened::Failed(err) => {
                                race.plan.failed();
                                let err = race.failure(attempt, addr, err);
                                connect_done(
                                    &self.trace,
                                    addr,
                                    attempt,
                                    ConnectOutcome::Failed(err),
                                );
                            }
                        }
                    }
                    Step::WaitUntil(at) => {
                        let timer = match &mut race.timer {
                            Some(timer) => {
                                timer.as_mut().reset(at);
                                timer
                            }
                            None => race.timer.insert(Box::pin(tokio::time::sleep_until(at))),
                        };
                        if timer.as_mut().poll(cx).is_pending() {
                            break;
                        }
                    }
                    Step::Wait => break,
                    Step::Exhausted => {
                        let State::Connecting(race) = self.finish() else {
                            unreachable!();
                        };
                        return Poll::Ready(Err(DialError::all_failed(race.into_failures())));
                    }
                }
            }

            // Poll every attempt in flight.
            let mut failures = false;
            let mut i = 0;
            loop {
                let State::Connecting(race) = &mut self.state else {
                    unreachable!();
                };
                let Some(attempt) = race.attempts.get_mut(i) else {
                    break;
                };
                match attempt.poll_connect(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(Ok(())) => {
                        let winner = race.attempts.remove(i);
                        self.connect_done(winner.addr, winner.index, ConnectOutcome::Connected);
                        self.finish();
                        return Poll::Ready(Ok(winner.into_stream()));
                    }
                    Poll::Ready(Err(err)) => {
                        let loser = race.attempts.remove(i);
                        race.plan.failed();
                        let err = race.failure(loser.index, loser.addr, err);
                        connect_done(
                            &self.trace,
                            loser.addr,
                            loser.index,
                            ConnectOutcome::Failed(err),
                        );
                        failures = true;
                    }
                }
            }
            if !failures {
                return Poll::Pending;
            }
            // A failure may let the next attempt start at once: go round again.
        }
    }
}

fn connect_done(
    trace: &Option<NetTrace>,
    addr: SocketAddr,
    attempt: usize,
    outcome: ConnectOutcome<'_>,
) {
    if let Some(trace) = trace {
        trace.connect_done(addr, attempt, outcome);
    }
}

impl Future for Dial {
    type Output = Result<TcpStream, DialError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let State::Init(_) = this.state {
            this.trace = current();
            if let Some(timeout) = this.dialer.options().timeout {
                this.deadline = Some(Box::pin(tokio::time::sleep(timeout)));
            }
        }
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() && !matches!(this.state, State::Done) {
                return Poll::Ready(Err(this.timed_out()));
            }
        }
        loop {
            match &mut this.state {
                State::Init(_) => {
                    let State::Init(target) = mem::replace(&mut this.state, State::Done) else {
                        unreachable!();
                    };
                    match target {
                        Err(err) => return Poll::Ready(Err(err)),
                        Ok(Target::Addr(addr)) => {
                            if !this.dialer.options().allows(addr.ip()) {
                                return Poll::Ready(Err(DialError::NoAddresses {
                                    host: addr.ip().to_string(),
                                    reason: EXCLUDED,
                                }));
                            }
                            this.start_race(vec![addr]);
                        }
                        Ok(Target::Name(host, port)) => {
                            let lookup = this
                                .dialer
                                .resolver()
                                .lookup_traced(&host, this.trace.clone());
                            this.state = State::Resolving { lookup, host, port };
                        }
                    }
                }
                State::Resolving { lookup, host, port } => {
                    let answer = ready!(Pin::new(lookup).poll(cx));
                    let (host, port) = (mem::take(host), *port);
                    this.state = State::Done;
                    let ips = match answer {
                        Ok(ips) => ips,
                        Err(err) => return Poll::Ready(Err(DialError::Resolve(err))),
                    };
                    let options = this.dialer.options();
                    let found = !ips.is_empty();
                    let usable: Vec<_> = ips.into_iter().filter(|ip| options.allows(*ip)).collect();
                    if usable.is_empty() {
                        return Poll::Ready(Err(DialError::NoAddresses {
                            host: host.into(),
                            reason: if found {
                                EXCLUDED
                            } else {
                                "the resolver returned none"
                            },
                        }));
                    }
                    this.start_race(interleave(&usable, port));
                }
                State::Connecting(_) => return this.poll_race(cx),
                State::Done => panic!("`Dial` polled after completion"),
            }
        }
    }
}

impl Drop for Dial {
    fn drop(&mut self) {
        // Reports the attempts in flight as cancelled; a lookup in flight reports its own
        // `DnsDone` when dropped here.
        crate::trace::fire_from_drop(|| {
            self.finish();
        });
    }
}

impl fmt::Debug for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Init(_) => "init",
            State::Resolving { .. } => "resolving",
            State::Connecting(_) => "connecting",
            State::Done => "done",
        };
        f.debug_struct("Dial")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_kept_in_attempt_order() {
        let mut race = Race {
            plan: Plan::new(Vec::new(), None),
            attempts: Vec::new(),
            failed: Vec::new(),
            timer: None,
            starting: None,
        };
        let addr = |i: u8| SocketAddr::from(([127, 0, 0, i], 80));
        for i in [2u8, 0, 3, 1] {
            let err = io::Error::other(format!("attempt {i}"));
            let kept = race.failure(usize::from(i), addr(i), err);
            assert_eq!(kept.to_string(), format!("attempt {i}"));
        }
        let order: Vec<SocketAddr> = race.into_failures().into_iter().map(|(a, _)| a).collect();
        assert_eq!(order, [addr(0), addr(1), addr(2), addr(3)]);
    }
}
