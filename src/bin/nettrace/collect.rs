//! Collects every hook of one request (or dial) with its time, and turns them into a
//! [`Hop`]: the phases the output formats draw.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, DialId, Family, HttpTrace, NetTrace, ResolveErrorKind};

/// One hook firing.
#[derive(Debug, Clone)]
enum Event {
    GetConn,
    DnsStart(DialId, String),
    DnsAnswer(DialId, Answer),
    DnsDone {
        dial: DialId,
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<String>,
    },
    ConnectStart(SocketAddr, usize),
    ConnectDone(SocketAddr, usize, Outcome),
    TlsStart(String),
    TlsDone {
        version: Option<String>,
        alpn: Option<String>,
        cipher: Option<String>,
        error: Option<String>,
    },
    GotConn {
        reused: bool,
        remote: SocketAddr,
        local: SocketAddr,
    },
    Wrote,
    FirstByte,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Connected,
    Failed(String),
    Cancelled,
}

impl Outcome {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed(err) => Some(err),
            _ => None,
        }
    }
}

/// One address family's answer to the lookup.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) family: Family,
    /// When it came, or when the dial stopped waiting for it.
    pub(crate) at: Duration,
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) coalesced: bool,
    pub(crate) error: Option<String>,
    /// The dial stopped waiting before this family answered.
    pub(crate) cancelled: bool,
}

impl Answer {
    /// The record type: "AAAA" or "A".
    pub(crate) fn record_type(&self) -> &'static str {
        match self.family {
            Family::Ipv6 => "AAAA",
            _ => "A",
        }
    }

    pub(crate) fn family_name(&self) -> &'static str {
        match self.family {
            Family::Ipv6 => "ipv6",
            _ => "ipv4",
        }
    }

    /// When the family answered; `None` if it never did.
    pub(crate) fn answered_at(&self) -> Option<Duration> {
        (!self.cancelled).then_some(self.at)
    }
}

/// Records events into one shared, time-stamped list.
#[derive(Clone)]
pub(crate) struct Collector {
    origin: Instant,
    events: Arc<Mutex<Vec<(Duration, Event)>>>,
}

impl Collector {
    /// `origin` is time zero of the whole run, shared by every hop.
    pub(crate) fn new(origin: Instant) -> Collector {
        Collector {
            origin,
            events: Arc::default(),
        }
    }

    fn push(&self, event: Event) {
        let at = self.origin.elapsed();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, event));
    }

    pub(crate) fn done(&self) {
        self.push(Event::Done);
    }

    pub(crate) fn start(&self) {
        self.push(Event::GetConn);
    }

    pub(crate) fn net_trace(&self) -> NetTrace {
        let c = || self.clone();
        let (a, b, d, e, f, g, h) = (c(), c(), c(), c(), c(), c(), c());
        NetTrace::new()
            .on_dns_start(move |ev| a.push(Event::DnsStart(ev.dial, ev.host.to_owned())))
            .on_dns_answer(move |ev| {
                let cancelled = ev
                    .error
                    .is_some_and(|err| err.kind() == ResolveErrorKind::Cancelled);
                h.push(Event::DnsAnswer(
                    ev.dial,
                    Answer {
                        family: ev.family,
                        // Stamped by `push`.
                        at: Duration::ZERO,
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|e| e.to_string()),
                        cancelled,
                    },
                ))
            })
            .on_dns_done(move |ev| {
                b.push(Event::DnsDone {
                    dial: ev.dial,
                    addrs: ev.addrs.to_vec(),
                    coalesced: ev.coalesced,
                    error: ev.error.map(|e| e.to_string()),
                })
            })
            .on_connect_start(move |ev| d.push(Event::ConnectStart(ev.addr, ev.attempt)))
            .on_connect_done(move |ev| {
                let outcome = match ev.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) => Outcome::Failed(err.to_string()),
                    _ => Outcome::Cancelled,
                };
                e.push(Event::ConnectDone(ev.addr, ev.attempt, outcome))
            })
            .on_tls_handshake_start(move |ev| f.push(Event::TlsStart(ev.server_name.to_owned())))
            .on_tls_handshake_done(move |ev| {
                g.push(Event::TlsDone {
                    version: ev.version.map(str::to_owned),
                    alpn: ev.alpn.map(|a| String::from_utf8_lossy(a).into_owned()),
                    cipher: ev.cipher.map(str::to_owned),
                    error: ev.error.map(crate::tls_text::describe),
                })
            })
    }

    pub(crate) fn http_trace(&self) -> HttpTrace {
        let c = || self.clone();
        let (a, b, d, e) = (c(), c(), c(), c());
        HttpTrace::new()
            .on_get_conn(move |_| a.push(Event::GetConn))
            .net(self.net_trace())
            .on_got_conn(move |ev| {
                b.push(Event::GotConn {
                    reused: ev.reused,
                    remote: ev.remote_addr,
                    local: ev.local_addr,
                })
            })
            .on_wrote_request(move |_| d.push(Event::Wrote))
            .on_got_first_response_byte(move |_| e.push(Event::FirstByte))
    }

    /// The phases recorded so far.
    pub(crate) fn hop(&self) -> Hop {
        let events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut hop = Hop::default();
        for (at, event) in events {
            match event {
                Event::GetConn => hop.start = hop.start.or(Some(at)),
                Event::DnsStart(dial, host) => {
                    hop.dns.get_or_insert(Dns {
                        dial,
                        host,
                        start: at,
                        end: None,
                        addrs: Vec::new(),
                        coalesced: false,
                        error: None,
                        answers: Vec::new(),
                    });
                }
                Event::DnsAnswer(dial, answer) => {
                    if let Some(dns) = hop.dns.as_mut().filter(|d| d.dial == dial) {
                        dns.answers.push(Answer { at, ..answer });
                    }
                }
                Event::DnsDone {
                    dial,
                    addrs,
                    coalesced,
                    error,
                } => {
                    if let Some(dns) = hop.dns.as_mut().filter(|d| d.dial == dial) {
                        dns.end = Some(at);
                        dns.addrs = addrs;
                        dns.coalesced = coalesced;
                        dns.error = error;
                    }
                }
                Event::ConnectStart(addr, attempt) => hop.attempts.push(Attempt {
                    attempt,
                    addr,
                    start: at,
                    end: None,
                    outcome: None,
                }),
                Event::ConnectDone(addr, attempt, outcome) => {
                    if let Some(a) = hop
                        .attempts
                        .iter_mut()
                        .find(|a| a.attempt == attempt && a.addr == addr)
                    {
                        a.end = Some(at);
                        a.outcome = Some(outcome);
                    }
                }
                Event::TlsStart(server_name) => {
                    hop.tls = Some(Tls {
                        server_name,
                        start: at,
                        end: None,
                        version: None,
                        alpn: None,
                        cipher: None,
                        error: None,
                    })
                }
                Event::TlsDone {
                    version,
                    alpn,
                    cipher,
                    error,
                } => {
                    if let Some(tls) = &mut hop.tls {
                        tls.end = Some(at);
                        tls.version = version;
                        tls.alpn = alpn;
                        tls.cipher = cipher;
                        tls.error = error;
                    }
                }
                Event::GotConn {
                    reused,
                    remote,
                    local,
                } => {
                    hop.got_conn = Some(at);
                    hop.reused = reused;
                    hop.remote = Some(remote);
                    hop.local = Some(local);
                }
                Event::Wrote => hop.wrote = Some(at),
                Event::FirstByte => hop.first_byte = Some(at),
                Event::Done => hop.done = Some(at),
            }
        }
        if hop.start.is_none() {
            hop.start = hop
                .dns
                .as_ref()
                .map(|d| d.start)
                .or_else(|| hop.attempts.first().map(|a| a.start));
        }
        hop
    }
}

/// The phases of one request (or dial), each time counted from the start of the run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Hop {
    pub(crate) start: Option<Duration>,
    pub(crate) dns: Option<Dns>,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) tls: Option<Tls>,
    pub(crate) got_conn: Option<Duration>,
    pub(crate) reused: bool,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) wrote: Option<Duration>,
    pub(crate) first_byte: Option<Duration>,
    pub(crate) done: Option<Duration>,
}

#[derive(Debug, Clone)]
pub(crate) struct Dns {
    /// The dial the lookup was for: the first lookup of the hop.
    pub(crate) dial: DialId,
    pub(crate) host: String,
    pub(crate) start: Duration,
    pub(crate) end: Option<Duration>,
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) coalesced: bool,
    pub(crate) error: Option<String>,
    /// Each family's answer, in the order they came.
    pub(crate) answers: Vec<Answer>,
}

impl Dns {
    /// The answer of `family`, if it came or was given up.
    pub(crate) fn answer(&self, family: Family) -> Option<&Answer> {
        self.answers.iter().find(|a| a.family == family)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) attempt: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) start: Duration,
    pub(crate) end: Option<Duration>,
    pub(crate) outcome: Option<Outcome>,
}

#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub(crate) server_name: String,
    pub(crate) start: Duration,
    pub(crate) end: Option<Duration>,
    pub(crate) version: Option<String>,
    pub(crate) alpn: Option<String>,
    pub(crate) cipher: Option<String>,
    pub(crate) error: Option<String>,
}

impl Hop {
    /// curl's cumulative times, from this hop's start.
    pub(crate) fn since_start(&self, at: Option<Duration>) -> Option<Duration> {
        Some(at?.saturating_sub(self.start?))
    }

    pub(crate) fn connected_at(&self) -> Option<Duration> {
        self.attempts
            .iter()
            .find(|a| a.outcome == Some(Outcome::Connected))
            .and_then(|a| a.end)
    }
}
