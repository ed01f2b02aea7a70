//! What a connection remembers of its own making, for the [`Timings`](crate::Timings) of
//! the request that dialed it.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::trace::{ConnectOutcome, Family, NetTrace};
use crate::ResolveErrorKind;

/// How one connection attempt of a dial went.
#[derive(Debug, Clone)]
pub(crate) struct AttemptRecord {
    pub(crate) addr: SocketAddr,
    pub(crate) attempt: usize,
    pub(crate) started: Instant,
    pub(crate) ended: Option<Instant>,
    pub(crate) outcome: Option<RecordedOutcome>,
}

/// An owned [`ConnectOutcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordedOutcome {
    Connected,
    Failed(io::ErrorKind, String),
    Cancelled,
}

/// The dial (and TLS handshake) that made a connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct DialTimeline {
    pub(crate) dns_done: Option<Instant>,
    /// When the AAAA answer came (records or an error from the resolver).
    pub(crate) dns_answer_ipv6: Option<Instant>,
    /// When the A answer came.
    pub(crate) dns_answer_ipv4: Option<Instant>,
    pub(crate) connected: Option<Instant>,
    pub(crate) tls_done: Option<Instant>,
    pub(crate) attempts: Vec<AttemptRecord>,
}

impl DialTimeline {
    /// A trace that records into `timeline`; composed inside the caller's trace for the
    /// duration of one connect.
    pub(crate) fn recorder(timeline: &Arc<Mutex<DialTimeline>>) -> NetTrace {
        let (a, b, c, e) = (
            timeline.clone(),
            timeline.clone(),
            timeline.clone(),
            timeline.clone(),
        );
        let trace = NetTrace::new()
            .on_dns_answer(move |ev| {
                // A family the dial stopped waiting for never answered.
                if ev
                    .error
                    .is_some_and(|err| err.kind() == ResolveErrorKind::Cancelled)
                {
                    return;
                }
                with(&e, |t| {
                    let slot = match ev.family {
                        Family::Ipv6 => &mut t.dns_answer_ipv6,
                        _ => &mut t.dns_answer_ipv4,
                    };
                    slot.get_or_insert(Instant::now());
                })
            })
            .on_dns_done(move |_| with(&a, |t| t.dns_done = Some(Instant::now())))
            .on_connect_start(move |e| {
                with(&b, |t| {
                    t.attempts.push(AttemptRecord {
                        addr: e.addr,
                        attempt: e.attempt,
                        started: Instant::now(),
                        ended: None,
                        outcome: None,
                    })
                })
            })
            .on_connect_done(move |e| {
                with(&c, |t| {
                    let now = Instant::now();
                    let outcome = match e.outcome {
                        ConnectOutcome::Connected => {
                            t.connected = Some(now);
                            RecordedOutcome::Connected
                        }
                        ConnectOutcome::Failed(err) => {
                            RecordedOutcome::Failed(err.kind(), err.to_string())
                        }
                        _ => RecordedOutcome::Cancelled,
                    };
                    if let Some(a) = t.attempts.iter_mut().find(|a| a.attempt == e.attempt) {
                        a.ended = Some(now);
                        a.outcome = Some(outcome);
                    }
                })
            });
        #[cfg(feature = "tls")]
        let trace = {
            let d = timeline.clone();
            trace.on_tls_handshake_done(move |e| {
                if e.error.is_none() {
                    with(&d, |t| t.tls_done = Some(Instant::now()));
                }
            })
        };
        trace
    }
}

fn with(timeline: &Mutex<DialTimeline>, f: impl FnOnce(&mut DialTimeline)) {
    f(&mut timeline.lock().unwrap_or_else(PoisonError::into_inner));
}
