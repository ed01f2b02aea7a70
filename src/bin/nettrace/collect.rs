//! Collects every hook of one request (or dial) with its time, and turns them into a
//! [`Hop`]: the phases the output formats draw.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, DialId, Family, HttpTrace, NetTrace, ResolveErrorKind};

/// `-v`: every event is also printed to stderr as it happens.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns `-v` on for every collector of the run.
pub(crate) fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

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
        cancelled: bool,
    },
    ConnectStart(SocketAddr, usize),
    ConnectDone(SocketAddr, usize, Outcome),
    TlsStart(String),
    TlsDone {
        version: Option<String>,
        alpn: Option<String>,
        cipher: Option<String>,
        error: Option<String>,
        cancelled: bool,
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
    /// The attempt reached its own limit (`--attempt-timeout`), or the run's
    /// (`--connect-timeout`, `--max-time`) ended it.
    TimedOut,
    /// It lost the race, or the dial ended for another reason.
    Cancelled,
}

impl Outcome {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Failed(_) => "failed",
            Outcome::TimedOut => "timed_out",
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
#[derive(Clone, Debug)]
pub(crate) struct Collector {
    origin: Instant,
    events: Arc<Mutex<Vec<(Duration, Event)>>>,
    /// `-v`: the request head, printed once the request is written.
    request_head: Arc<Mutex<Option<RequestHead>>>,
}

/// What `-v` prints of a request: `> GET / HTTP/1.1` and the headers.
#[derive(Debug, Clone)]
struct RequestHead {
    method: String,
    target: String,
    version: http::Version,
    headers: Vec<String>,
    /// The body's length when known and no Content-Length was given: hyper adds the
    /// header then, so `-v` shows it as curl's does.
    body_len: Option<u64>,
}

impl Collector {
    /// `origin` is time zero of the whole run, shared by every hop.
    pub(crate) fn new(origin: Instant) -> Collector {
        Collector {
            origin,
            events: Arc::default(),
            request_head: Arc::default(),
        }
    }

    fn push(&self, event: Event) {
        let at = self.origin.elapsed();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if verbose() {
            let lines = self.describe(&events, at, &event);
            drop(events);
            say_lines(&lines);
            events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        }
        events.push((at, event));
    }

    /// `-v`: the request about to be sent, printed (`> …`) when it has been written;
    /// `h2` when it goes out in HTTP/2 whatever ALPN says (prior knowledge).
    pub(crate) fn request_head<B: http_body::Body>(&self, request: &http::Request<B>, h2: bool) {
        if !verbose() {
            return;
        }
        let uri = request.uri();
        let mut headers = Vec::new();
        if let Some(authority) = uri.authority() {
            headers.push(format!("Host: {authority}"));
        }
        for (name, value) in request.headers() {
            headers.push(format!(
                "{}: {}",
                name,
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        *self.request_head.lock().unwrap_or_else(|e| e.into_inner()) = Some(RequestHead {
            method: request.method().to_string(),
            target: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            version: if h2 {
                http::Version::HTTP_2
            } else {
                request.version()
            },
            headers,
            body_len: if request.headers().contains_key(http::header::CONTENT_LENGTH) {
                None
            } else {
                request.body().size_hint().exact()
            },
        });
    }

    /// `-v`: the response head (`< HTTP/1.1 200 OK` and the headers), as it arrived.
    pub(crate) fn response_head<B>(&self, response: &http::Response<B>) {
        if !verbose() {
            return;
        }
        let status = response.status();
        let mut lines = vec![format!(
            "< {} {}{}",
            version_name(response.version()),
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        )];
        for (name, value) in response.headers() {
            lines.push(format!(
                "< {}: {}",
                name,
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        lines.push("<".to_owned());
        say_lines(&lines);
    }

    /// `-v`: the event as curl -v would print it (`* Trying …`), given the events before it.
    fn describe(&self, before: &[(Duration, Event)], at: Duration, event: &Event) -> Vec<String> {
        let start = before.first().map_or(at, |(t, _)| *t);
        let after = format!("after {}", ms(at.saturating_sub(start)));
        let host = before.iter().rev().find_map(|(_, e)| match e {
            Event::DnsStart(_, host) => Some(host.as_str()),
            _ => None,
        });
        let alpn_h2 = before
            .iter()
            .any(|(_, e)| matches!(e, Event::TlsDone { alpn: Some(alpn), .. } if alpn == "h2"));
        match event {
            Event::GetConn | Event::Done | Event::FirstByte => Vec::new(),
            Event::DnsStart(_, host) => vec![format!("* Resolving {host}...")],
            Event::DnsAnswer(_, answer) => vec![match (&answer.error, answer.cancelled) {
                (_, true) => format!(
                    "* DNS answer {} {}: not waited for ({after})",
                    answer.record_type(),
                    host.unwrap_or_default()
                ),
                (Some(err), false) => format!(
                    "* DNS answer {} {}: {err} ({after})",
                    answer.record_type(),
                    host.unwrap_or_default()
                ),
                (None, false) => format!(
                    "* DNS answer {} {}: {} ({after})",
                    answer.record_type(),
                    host.unwrap_or_default(),
                    joined(&answer.addrs)
                ),
            }],
            Event::DnsDone { addrs, error, .. } => vec![match error {
                Some(err) => format!("* Could not resolve host: {err} ({after})"),
                None => format!(
                    "* Host {} was resolved: {} ({after})",
                    host.unwrap_or_default(),
                    joined(addrs)
                ),
            }],
            Event::ConnectStart(addr, _) => vec![format!("*   Trying {addr}...")],
            Event::ConnectDone(addr, attempt, outcome) => {
                let ip = addr.ip().to_string();
                let (name, port) = (host.unwrap_or(&ip), addr.port());
                vec![match outcome {
                    Outcome::Connected => format!(
                        "* Connected to {name} ({ip}) port {port} (attempt #{attempt}, {after})"
                    ),
                    Outcome::Failed(err) => {
                        format!("* connect to {ip} port {port} failed: {err} ({after})")
                    }
                    Outcome::TimedOut => {
                        format!("* connect to {ip} port {port} timed out ({after})")
                    }
                    Outcome::Cancelled => {
                        format!("* connect to {ip} port {port} cancelled ({after})")
                    }
                }]
            }
            Event::TlsStart(server_name) => {
                vec![format!("* TLS handshake with {server_name}...")]
            }
            Event::TlsDone {
                version,
                alpn,
                cipher,
                error,
                ..
            } => match error {
                Some(err) => vec![format!("* TLS handshake failed: {err} ({after})")],
                None => {
                    let mut lines = vec![format!(
                        "* SSL connection using {} / {} ({after})",
                        version.as_deref().unwrap_or("TLS"),
                        cipher.as_deref().unwrap_or("unknown cipher")
                    )];
                    match alpn {
                        Some(alpn) => lines.push(format!("* ALPN: server accepted {alpn}")),
                        None => lines.push("* ALPN: server did not agree on a protocol".into()),
                    }
                    lines
                }
            },
            Event::GotConn { reused, remote, .. } => {
                if *reused {
                    vec![format!("* Re-using existing connection to {remote}")]
                } else {
                    Vec::new()
                }
            }
            Event::Wrote => {
                let head = self
                    .request_head
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let Some(head) = head else {
                    return Vec::new();
                };
                let version = if alpn_h2 || head.version == http::Version::HTTP_2 {
                    "HTTP/2"
                } else {
                    version_name(head.version)
                };
                let mut lines = vec![format!("> {} {} {version}", head.method, head.target)];
                lines.extend(head.headers.iter().map(|h| format!("> {h}")));
                // As hyper writes it: HTTP/1.1 sends no Content-Length for an empty body;
                // HTTP/2 sends `0` for a method whose request body has a meaning.
                let payload_method =
                    !matches!(head.method.as_str(), "GET" | "HEAD" | "DELETE" | "CONNECT");
                match head.body_len {
                    Some(len) if len > 0 || (version == "HTTP/2" && payload_method) => {
                        lines.push(format!("> content-length: {len}"));
                    }
                    _ => {}
                }
                lines.push(">".to_owned());
                lines
            }
        }
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
                    cancelled: ev
                        .error
                        .is_some_and(|err| err.kind() == ResolveErrorKind::Cancelled),
                })
            })
            .on_connect_start(move |ev| d.push(Event::ConnectStart(ev.addr, ev.attempt)))
            .on_connect_done(move |ev| {
                let outcome = match ev.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                        Outcome::TimedOut
                    }
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
                    // The handshake was abandoned (the request went away).
                    cancelled: ev
                        .error
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::Interrupted),
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
                        cancelled: false,
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
                    cancelled,
                } => {
                    if let Some(dns) = hop.dns.as_mut().filter(|d| d.dial == dial) {
                        dns.end = Some(at);
                        dns.addrs = addrs;
                        dns.coalesced = coalesced;
                        dns.error = error;
                        dns.cancelled = cancelled;
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
                        cancelled: false,
                    })
                }
                Event::TlsDone {
                    version,
                    alpn,
                    cipher,
                    error,
                    cancelled,
                } => {
                    if let Some(tls) = &mut hop.tls {
                        tls.end = Some(at);
                        tls.version = version;
                        tls.alpn = alpn;
                        tls.cipher = cipher;
                        tls.error = error;
                        tls.cancelled = cancelled;
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
    /// The run's time limit ended the hop at this moment (`--max-time`,
    /// `--connect-timeout`); the phase then under way is the one that timed out.
    pub(crate) timed_out: Option<Duration>,
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
    /// The dial stopped waiting for the lookup.
    pub(crate) cancelled: bool,
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
    /// The handshake was abandoned before it ended.
    pub(crate) cancelled: bool,
}

impl Hop {
    /// curl's cumulative times, from this hop's start.
    pub(crate) fn since_start(&self, at: Option<Duration>) -> Option<Duration> {
        Some(at?.saturating_sub(self.start?))
    }

    /// Marks the hop as ended by the run's time limit at `at` (or, when `None`, at its
    /// last event): attempts still under way, or cancelled when no attempt had
    /// connected, timed out; so did a lookup or handshake that had not ended.
    pub(crate) fn time_out(&mut self, at: Option<Duration>) {
        let last = self.last_event();
        let Some(at) = at.or(last) else {
            return;
        };
        self.timed_out = Some(at);
        let connected = self.connected_at().is_some();
        for a in &mut self.attempts {
            let unfinished = match a.outcome {
                None => true,
                Some(Outcome::Cancelled) => !connected,
                _ => false,
            };
            if unfinished {
                a.outcome = Some(Outcome::TimedOut);
                a.end = Some(a.end.unwrap_or(at).min(at).max(a.start));
            }
        }
        if let Some(dns) = &mut self.dns {
            if dns.end.is_none() || dns.cancelled {
                dns.end = Some(dns.end.unwrap_or(at).min(at).max(dns.start));
                dns.error = Some(format!("lookup of {:?} timed out", dns.host));
                dns.cancelled = false;
            }
        }
        if let Some(tls) = &mut self.tls {
            if tls.end.is_none() || tls.cancelled {
                tls.end = Some(tls.end.unwrap_or(at).min(at).max(tls.start));
                tls.error = Some("timed out".into());
                tls.cancelled = false;
            }
        }
    }

    /// The time of the latest thing recorded.
    fn last_event(&self) -> Option<Duration> {
        let dns = self.dns.iter().flat_map(|d| [Some(d.start), d.end]);
        let attempts = self.attempts.iter().flat_map(|a| [Some(a.start), a.end]);
        let tls = self.tls.iter().flat_map(|t| [Some(t.start), t.end]);
        [
            self.start,
            self.got_conn,
            self.wrote,
            self.first_byte,
            self.done,
        ]
        .into_iter()
        .chain(dns)
        .chain(attempts)
        .chain(tls)
        .flatten()
        .max()
    }

    pub(crate) fn connected_at(&self) -> Option<Duration> {
        self.attempts
            .iter()
            .find(|a| a.outcome == Some(Outcome::Connected))
            .and_then(|a| a.end)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn joined(addrs: &[IpAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    addrs.join(", ")
}

/// `HTTP/1.1`, `HTTP/2`, as curl writes them.
fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Writes `-v` lines to stderr in one go; a closed stderr is not worth a panic.
fn say_lines(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
