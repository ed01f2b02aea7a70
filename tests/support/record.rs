//! A recording trace: every event, in order, with the time it fired.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, NetTrace, ResolveErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    DnsStart(String),
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
    events: Arc<Mutex<Vec<(Duration, Event)>>>,
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

    fn push(&self, event: Event) {
        let at = self.start.elapsed();
        self.events.lock().unwrap().push((at, event));
    }

    /// A trace that records into this recorder.
    pub fn trace(&self) -> NetTrace {
        let (a, b, c, d) = (self.clone(), self.clone(), self.clone(), self.clone());
        NetTrace::new()
            .on_dns_start(move |e| a.push(Event::DnsStart(e.host.to_owned())))
            .on_dns_done(move |e| {
                b.push(Event::DnsDone {
                    host: e.host.to_owned(),
                    addrs: e.addrs.to_vec(),
                    coalesced: e.coalesced,
                    error: e.error.map(|err| err.kind()),
                })
            })
            .on_connect_start(move |e| c.push(Event::ConnectStart(e.addr, e.attempt)))
            .on_connect_done(move |e| {
                let outcome = match e.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) => Outcome::Failed(err.kind()),
                    ConnectOutcome::Cancelled => Outcome::Cancelled,
                    _ => unreachable!("new outcome"),
                };
                d.push(Event::ConnectDone(e.addr, e.attempt, outcome))
            })
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn timed(&self) -> Vec<(Duration, Event)> {
        self.events.lock().unwrap().clone()
    }

    /// When the first event matching `pred` fired.
    pub fn time_of(&self, pred: impl Fn(&Event) -> bool) -> Option<Duration> {
        self.timed()
            .into_iter()
            .find(|(_, e)| pred(e))
            .map(|(t, _)| t)
    }

    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events().iter().filter(|e| pred(e)).count()
    }
}
