//! A recording trace: every event, in order, with the time it fired.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, DialId, Family, NetTrace, ResolveErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    DnsStart(String),
    /// Recorded, but left out of [`Recorder::events`] (see [`Recorder::all_events`]).
    DnsAnswer {
        host: String,
        family: Family,
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<ResolveErrorKind>,
    },
    DnsDone {
        host: String,
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<ResolveErrorKind>,
    },
    ConnectStart(SocketAddr, usize),
    ConnectDone(SocketAddr, usize, Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    Failed(io::ErrorKind),
    Cancelled,
}

#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<(Duration, DialId, Event)>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn push(&self, dial: DialId, event: Event) {
        let at = self.start.elapsed();
        self.events.lock().unwrap().push((at, dial, event));
    }

    /// A trace that records into this recorder.
    pub fn trace(&self) -> NetTrace {
        let (a, b, c, d, e) = (
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
        );
        NetTrace::new()
            .on_dns_start(move |ev| a.push(ev.dial, Event::DnsStart(ev.host.to_owned())))
            .on_dns_answer(move |ev| {
                e.push(
                    ev.dial,
                    Event::DnsAnswer {
                        host: ev.host.to_owned(),
                        family: ev.family,
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|err| err.kind()),
                    },
                )
            })
            .on_dns_done(move |ev| {
                b.push(
                    ev.dial,
                    Event::DnsDone {
                        host: ev.host.to_owned(),
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|err| err.kind()),
                    },
                )
            })
            .on_connect_start(move |ev| c.push(ev.dial, Event::ConnectStart(ev.addr, ev.attempt)))
            .on_connect_done(move |ev| {
                let outcome = match ev.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) => Outcome::Failed(err.kind()),
                    ConnectOutcome::Cancelled => Outcome::Cancelled,
                    _ => unreachable!("new outcome"),
                };
                d.push(ev.dial, Event::ConnectDone(ev.addr, ev.attempt, outcome))
            })
    }

    /// Every event but the per-family `DnsAnswer`s, in order.
    pub fn events(&self) -> Vec<Event> {
        self.all_events()
            .into_iter()
            .filter(|e| !matches!(e, Event::DnsAnswer { .. }))
            .collect()
    }

    /// Every event, `DnsAnswer`s included, in order.
    pub fn all_events(&self) -> Vec<Event> {
        self.with_ids().into_iter().map(|(_, e)| e).collect()
    }

    /// Every event with the id of its dial, in order.
    pub fn with_ids(&self) -> Vec<(DialId, Event)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, dial, e)| (*dial, e.clone()))
            .collect()
    }

    pub fn timed(&self) -> Vec<(Duration, Event)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, e)| !matches!(e, Event::DnsAnswer { .. }))
            .map(|(t, _, e)| (*t, e.clone()))
            .collect()
    }

    /// When the first event matching `pred` fired (`DnsAnswer`s included).
    pub fn time_of(&self, pred: impl Fn(&Event) -> bool) -> Option<Duration> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, e)| pred(e))
            .map(|(t, _, _)| *t)
    }

    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.all_events().iter().filter(|e| pred(e)).count()
    }
}
