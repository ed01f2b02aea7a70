//! [`Dial`]: the future of one dial, a thin driver of its [`Race`]: it feeds the race each
//! family's answer and each attempt's result, and turns the race's outputs into sockets
//! and hooks.

use std::fmt;
use std::future::Future;
use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::addr::Target;
use super::attempt::{Attempt, Opened};
use super::race::{Config, End, Output, Race};
use super::{DialError, Dialer};
use crate::resolve::{FamilyAnswer, Resolution};
use crate::scope::current;
use crate::trace::{ConnectDone, ConnectOutcome, ConnectStart, DialId, Family, NetTrace, Panics};

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
    id: DialId,
    /// Captured at the first poll.
    trace: Option<NetTrace>,
    state: State,
}

enum State {
    /// Not polled yet: the parsed target.
    Init(Result<Target, DialError>),
    Running(Box<Running>),
    Done,
}

/// A dial under way: its lookup (none for an IP literal), its race and its attempts.
struct Running {
    race: Race,
    host: Box<str>,
    port: u16,
    resolution: Option<Resolution>,
    /// Whether the addresses keep the resolver's order (a joint answer, a literal).
    ordered: bool,
    /// The usable addresses received, in the order they came, each with the source
    /// address the system would use for it (found once, for the RFC 6724 order).
    received: Vec<(IpAddr, Option<IpAddr>)>,
    /// Whether an answer held addresses the family filter left out.
    excluded: bool,
    /// The attempts in flight, in attempt order.
    attempts: Vec<Attempt>,
    /// The attempts that failed, in attempt order (not the order they failed in).
    failed: Vec<(usize, SocketAddr, io::Error)>,
    /// Wakes the dial when the race next needs it; made on first need.
    timer: Option<Pin<Box<Sleep>>>,
    /// An attempt whose `ConnectStart` hook panicked: not opened, owed its `ConnectDone`.
    unopened: Option<(usize, SocketAddr)>,
}

/// Why addresses were left out (the `NoAddresses` reason).
const EXCLUDED: &str = "excluded by the address family filter or the local address's family";

impl Dial {
    pub(super) fn new(dialer: Dialer, target: Result<Target, DialError>) -> Dial {
        Dial {
            dialer,
            id: DialId::next(),
            trace: None,
            state: State::Init(target),
        }
    }

    /// The id every event of this dial carries.
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::new();
    /// let (a, b) = (dialer.dial("127.0.0.1:1"), dialer.dial("127.0.0.1:1"));
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> DialId {
        self.id
    }

    /// Sets the dial up at its first poll: captures the trace, and starts the lookup.
    fn begin(
        &mut self,
        target: Target,
        now: Instant,
        panics: &mut Panics,
    ) -> Result<(), DialError> {
        self.trace = current();
        let options = self.dialer.options();
        let config = Config {
            attempt_delay: options.happy_eyeballs.then_some(options.attempt_delay),
            resolution_delay: options.resolution_delay,
            attempt_timeout: options.attempt_timeout,
            deadline: options.timeout.map(|t| now + t),
        };
        let running = match target {
            Target::Addr(addr) => {
                if !options.allows(addr.ip()) {
                    return Err(DialError::NoAddresses {
                        host: addr.ip().to_string(),
                        reason: EXCLUDED,
                    });
                }
                Running::new(Race::with_addrs(config, vec![addr]), "", addr.port(), None)
            }
            Target::Name(host, port) => {
                let awaiting = match (options.family, options.local) {
                    (Family::Any, super::LocalBind::Addr(local)) => Family::of(local.ip()),
                    (family, _) => family,
                };
                let mut resolution =
                    self.dialer
                        .resolver()
                        .resolution(&host, self.id, self.trace.clone());
                panics.keep(resolution.start());
                let race = Race::new(config, awaiting);
                Running::new(race, &host, port, Some(resolution))
            }
        };
        self.state = State::Running(Box::new(running));
        Ok(())
    }

    /// Moves the race on until it waits for I/O or time; returns how it ended, if it did.
    fn drive(&mut self, cx: &mut Context<'_>, panics: &mut Panics) -> Option<End> {
        let State::Running(run) = &mut self.state else {
            unreachable!("driven while running");
        };
        let (trace, id, options) = (&self.trace, self.id, self.dialer.options());
        loop {
            let now = Instant::now();
            let mut progress = false;

            // Answers that arrived.
            if let Some(mut resolution) = run.resolution.take() {
                while let Poll::Ready(Some(answer)) = resolution.poll_answer(cx, panics) {
                    run.answer(answer, options, now);
                    progress = true;
                }
                run.resolution = Some(resolution);
            }

            // Attempts that finished; the first to connect wins.
            let mut i = 0;
            while i < run.attempts.len() {
                match run.attempts[i].poll_connect(cx) {
                    Poll::Pending => i += 1,
                    Poll::Ready(Ok(())) => {
                        let index = run.attempts[i].index;
                        run.race.connected(index);
                        progress = true;
                        break;
                    }
                    Poll::Ready(Err(err)) => {
                        let attempt = run.attempts.remove(i);
                        run.race.failed(attempt.index);
                        run.fail(trace, id, attempt.index, attempt.addr, err, panics);
                        progress = true;
                    }
                }
            }

            // What the race asks for.
            // The clock is read again for each output: hooks and sockets take time, and an
            // attempt's start (from which the next one's delay counts) is when it is made.
            while let Some(output) = run.race.poll_output(Instant::now()) {
                progress = true;
                match output {
                    Output::Start { attempt, addr } => {
                        if let Some(trace) = trace {
                            let event = ConnectStart {
                                dial: id,
                                addr,
                                attempt,
                            };
                            panics.keep(trace.connect_start(&event));
                        }
                        if !panics.is_empty() {
                            run.unopened = Some((attempt, addr));
                            return None;
                        }
                        match Attempt::open(attempt, addr, options) {
                            Opened::Pending(a) => run.attempts.push(a),
                            Opened::Failed(err) => {
                                run.race.failed(attempt);
                                run.fail(trace, id, attempt, addr, err, panics);
                            }
                        }
                    }
                    Output::TimedOut { attempt } => {
                        let i = run.attempts.iter().position(|a| a.index == attempt);
                        let attempt = run
                            .attempts
                            .remove(i.expect("a timed-out attempt is in flight"));
                        let err =
                            io::Error::new(io::ErrorKind::TimedOut, "connection attempt timed out");
                        run.fail(trace, id, attempt.index, attempt.addr, err, panics);
                    }
                    Output::Done(end) => return Some(end),
                }
            }
            if !panics.is_empty() {
                return None;
            }
            if progress {
                continue;
            }
            match run.race.poll_timeout() {
                Some(at) => {
                    let timer = match &mut run.timer {
                        Some(timer) => {
                            timer.as_mut().reset(at);
                            timer
                        }
                        None => run.timer.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    if timer.as_mut().poll(cx).is_pending() {
                        return None;
                    }
                }
                None => return None,
            }
        }
    }

    /// Ends the dial: the winner (if any) is reported connected, then every other attempt in
    /// flight cancelled (in attempt order), and the lookup, if still waiting, stopped.
    fn finish(&mut self, winner: Option<usize>, panics: &mut Panics) -> Option<Box<Running>> {
        let State::Running(mut run) = mem::replace(&mut self.state, State::Done) else {
            return None;
        };
        let fire = |attempt: usize, addr, outcome, panics: &mut Panics| {
            if let Some(trace) = &self.trace {
                panics.keep(trace.connect_done(&ConnectDone {
                    dial: self.id,
                    addr,
                    attempt,
                    outcome,
                }));
            }
        };
        // The winner first, then the losers in attempt order.
        let won = run.attempts.iter().find(|a| Some(a.index) == winner);
        if let Some(attempt) = won {
            fire(
                attempt.index,
                attempt.addr,
                ConnectOutcome::Connected,
                panics,
            );
        }
        for attempt in run.attempts.iter().filter(|a| Some(a.index) != winner) {
            fire(
                attempt.index,
                attempt.addr,
                ConnectOutcome::Cancelled,
                panics,
            );
        }
        if let Some((attempt, addr)) = run.unopened.take() {
            fire(attempt, addr, ConnectOutcome::Cancelled, panics);
        }
        if let Some(resolution) = &mut run.resolution {
            resolution.stop(panics);
        }
        Some(run)
    }

    fn result(&mut self, end: End, panics: &mut Panics) -> Result<TcpStream, DialError> {
        let winner = match end {
            End::Connected(attempt) => Some(attempt),
            _ => None,
        };
        let mut run = self.finish(winner, panics).expect("the dial was running");
        match end {
            End::Connected(attempt) => {
                let i = run.attempts.iter().position(|a| a.index == attempt);
                let winner = run
                    .attempts
                    .swap_remove(i.expect("the winner is in flight"));
                Ok(winner.into_stream())
            }
            End::TimedOut => Err(DialError::Timeout {
                after: self.dialer.options().timeout.unwrap_or_default(),
                started: run.race.started().to_vec(),
                failed: run.into_failures(),
            }),
            End::Exhausted if !run.failed.is_empty() => {
                Err(DialError::all_failed(run.into_failures()))
            }
            End::Exhausted => {
                let error = run.resolution.as_mut().and_then(Resolution::take_error);
                Err(match error {
                    Some(err) if !run.excluded => DialError::Resolve(err),
                    _ => DialError::NoAddresses {
                        host: run.host.into(),
                        reason: if run.excluded {
                            EXCLUDED
                        } else {
                            "the resolver returned none"
                        },
                    },
                })
            }
        }
    }
}

impl Running {
    fn new(race: Race, host: &str, port: u16, resolution: Option<Resolution>) -> Running {
        Running {
            race,
            host: host.into(),
            port,
            ordered: resolution.is_none(),
            resolution,
            received: Vec::new(),
            excluded: false,
            attempts: Vec::with_capacity(1),
            failed: Vec::new(),
            timer: None,
            unopened: None,
        }
    }

    /// Hands one family's answer to the race, with every usable address received so far
    /// in the order to prefer them.
    fn answer(&mut self, answer: FamilyAnswer, options: &super::Options, now: Instant) {
        self.ordered = answer.ordered;
        for ip in answer.addrs {
            if !options.allows(ip) {
                self.excluded = true;
                continue;
            }
            // A joint answer keeps its order: no source needed.
            let source = if answer.ordered {
                None
            } else {
                super::sort::system_source(ip)
            };
            self.received.push((ip, source));
        }
        let mut ips: Vec<IpAddr> = self.received.iter().map(|(ip, _)| *ip).collect();
        if !self.ordered {
            let received = &self.received;
            super::sort::sort_destinations(&mut ips, |dst| {
                received
                    .iter()
                    .find(|(ip, _)| *ip == dst)
                    .and_then(|(_, src)| *src)
            });
        }
        let known = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect();
        self.race.answer(answer.family, known, now);
    }

    /// Keeps a failed attempt's error, in attempt order, and reports it.
    fn fail(
        &mut self,
        trace: &Option<NetTrace>,
        dial: DialId,
        index: usize,
        addr: SocketAddr,
        err: io::Error,
        panics: &mut Panics,
    ) {
        let at = self.failed.partition_point(|(i, _, _)| *i < index);
        self.failed.insert(at, (index, addr, err));
        if let Some(trace) = trace {
            panics.keep(trace.connect_done(&ConnectDone {
                dial,
                addr,
                attempt: index,
                outcome: ConnectOutcome::Failed(&self.failed[at].2),
            }));
        }
    }

    fn into_failures(self) -> Vec<(SocketAddr, io::Error)> {
        self.failed
            .into_iter()
            .map(|(_, addr, err)| (addr, err))
            .collect()
    }
}

impl Future for Dial {
    type Output = Result<TcpStream, DialError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut panics = Panics::default();
        if let State::Init(_) = this.state {
            let State::Init(target) = mem::replace(&mut this.state, State::Done) else {
                unreachable!();
            };
            if let Err(err) = target.and_then(|t| this.begin(t, Instant::now(), &mut panics)) {
                return Poll::Ready(Err(err));
            }
        }
        if let State::Done = this.state {
            panic!("`Dial` polled after completion");
        }
        let end = if panics.is_empty() {
            this.drive(cx, &mut panics)
        } else {
            None
        };
        if !panics.is_empty() {
            // A hook panicked: every pending done still fires, then the first panic
            // continues to the caller.
            this.finish(None, &mut panics);
            panics.resume();
            unreachable!("a kept panic resumes");
        }
        let Some(end) = end else {
            return Poll::Pending;
        };
        let result = this.result(end, &mut panics);
        panics.resume();
        Poll::Ready(result)
    }
}

impl Drop for Dial {
    fn drop(&mut self) {
        // Reports the attempts in flight as cancelled, and stops a lookup in flight.
        let mut panics = Panics::default();
        self.finish(None, &mut panics);
        panics.resume();
    }
}

impl fmt::Debug for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Init(_) => "init",
            State::Running(run) if run.race.started().is_empty() => "resolving",
            State::Running(_) => "connecting",
            State::Done => "done",
        };
        f.debug_struct("Dial")
            .field("id", &self.id)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
