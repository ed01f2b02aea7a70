//! `tracing` spans for every DNS lookup, connection attempt and TLS handshake:
//! [`NetTrace::tracing`], and with feature `http`, [`HttpTrace::tracing`].
//!
//! The hooks of a trace are shared by every dial made under it, and an event only says
//! which host, address and attempt index it is about. So each trace keeps its open spans
//! in a map keyed by what pairs a start with its done — the host for a lookup, the
//! address and attempt index for a connection attempt, the address and server name for a
//! handshake — and, for the rare case of several open spans under one key (concurrent
//! dials of the same thing), it also notes where each span started: the tokio task and
//! the `tracing` span that was current. A done event closes the open span that started
//! in the same place, or else the oldest one under its key.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

use tracing::field::Empty;
use tracing::Span;

use crate::trace::{ConnectDone, ConnectOutcome, ConnectStart, DnsDone, DnsStart, NetTrace};

/// The target of every span and event made here, for filters: `nettrace=info`.
const TARGET: &str = "nettrace";

// Integers are recorded as `i64`: tracing-opentelemetry makes integer attributes of
// those, but strings of `u64` values.

/// How many dials a trace remembers the looked-up name of, to name the server of their
/// later connection attempts.
const NAMES_KEPT: usize = 64;

impl NetTrace {
    /// Returns a trace that turns each DNS lookup, each connection attempt and (with
    /// feature `tls`) each TLS handshake into a [`tracing`](https://docs.rs/tracing) span,
    /// a child of the span that is current when the lookup, attempt or handshake starts.
    ///
    /// With [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) these spans
    /// reach OpenTelemetry as they are: every field is named after the OpenTelemetry
    /// semantic conventions where one exists, and `nettrace.*` otherwise.
    ///
    /// | span | fields |
    /// |---|---|
    /// | `dns.lookup` | `dns.question.name`; at its end `nettrace.outcome` (`"resolved"`, `"failed"` or `"cancelled"`), `nettrace.coalesced`, `nettrace.dns.answers` (the addresses, comma-separated) or `error.type` (the [`ResolveErrorKind`](crate::ResolveErrorKind) in snake case, such as `"not_found"`) |
    /// | `tcp.connect` | `server.address` (the name the dial looked up, else the IP address), `server.port`, `network.peer.address`, `network.peer.port`, `network.transport` (`"tcp"`), `network.type` (`"ipv4"` or `"ipv6"`), `nettrace.attempt`; at its end `nettrace.outcome` (`"connected"`, `"failed"` or `"cancelled"`) and on failure `error.type` (the [`io::ErrorKind`](std::io::ErrorKind) in snake case, such as `"connection_refused"`) |
    /// | `tls.handshake` | `server.address` (the server name), `server.port`, `network.peer.address`, `network.peer.port`, `tls.protocol.name` (`"tls"`); at its end `nettrace.outcome` (`"established"`, `"failed"` or `"cancelled"`), `tls.established`, and `tls.protocol.version` (`"1.3"`), `tls.cipher`, `tls.next_protocol` (ALPN) or `error.type` |
    ///
    /// A failure also sets `otel.status_code = "error"` and `otel.status_description` (the
    /// error message), which `tracing-opentelemetry` turns into the span's status. An
    /// attempt that lost the race is `"cancelled"`, not an error. Spans have level
    /// `INFO` and target `nettrace`.
    ///
    /// Every span closes: the crate fires each done hook exactly once, also when a dial is
    /// dropped half way (then the pending lookup and attempts end as `"cancelled"`).
    ///
    /// # Concurrent dials
    ///
    /// One trace may serve many concurrent dials. A done event is matched to its start by
    /// host (lookups), by address and attempt index (connection attempts) or by address and
    /// server name (handshakes); when several open spans share that key it picks the one
    /// that started on the same tokio task under the same current span, then on the same
    /// task, then under the same span, then the oldest. Dials that can only be told apart
    /// by time — the same name or address, on one task, under one span — may therefore
    /// swap their ends (end times and outcomes); each span keeps its parent and the
    /// fields it started with. Likewise, the `server.address` of a dial's later attempts
    /// (not of its first) is the name of the latest dial started in the same place with
    /// that address among its answers. Give concurrent dials
    /// their own span (for example with
    /// [`tracing::Instrument`](https://docs.rs/tracing/latest/tracing/trait.Instrument.html))
    /// and they never mix. So one trace can be installed anywhere: around one dial, or
    /// once around a whole task that dials many times.
    ///
    /// Should a done event never come (a hook that panicked, for example), its span ends
    /// when the trace is dropped, with no outcome.
    ///
    /// # Examples
    ///
    /// Export a dial to an OpenTelemetry SDK pipeline (here an in-memory exporter):
    ///
    /// ```
    /// use nettrace::{Dialer, NetTrace, StaticResolver};
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use tracing::Instrument;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let port = listener.local_addr()?.port();
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("example")));
    /// let _default = tracing::subscriber::set_default(subscriber);
    ///
    /// let dialer = Dialer::builder()
    ///     .resolver(StaticResolver::new().insert("db.test", ["127.0.0.1".parse()?]))
    ///     .build();
    /// let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial_host("db.test", port));
    /// let stream = dial.instrument(tracing::info_span!("checkout")).await?;
    /// # drop(stream);
    ///
    /// let spans = exporter.get_finished_spans()?;
    /// let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    /// assert_eq!(names, ["dns.lookup", "tcp.connect", "checkout"]);
    /// let connect = &spans[1];
    /// assert_eq!(connect.parent_span_id, spans[2].span_context.span_id());
    /// let outcome = connect.attributes.iter().find(|kv| kv.key.as_str() == "nettrace.outcome");
    /// assert_eq!(outcome.unwrap().value.as_str(), "connected");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub fn tracing() -> NetTrace {
        Spans::new(Parent::Current).into_trace()
    }
}

/// The open spans of one trace.
struct Spans {
    parent: Parent,
    open: Mutex<Open>,
}

/// Where new spans hang.
enum Parent {
    /// Under the span current at the start event.
    Current,
    /// Under an HTTP request's span while it is open, else under the current span.
    #[cfg(feature = "http")]
    Request(std::sync::Weak<RequestSpan>),
}

#[derive(Default)]
struct Open {
    spans: HashMap<Key, Vec<OpenSpan>>,
    /// The lookup each thread has just finished. A dial starts its first attempt in the
    /// same poll as its lookup ends, with no other event of its trace in between, so an
    /// attempt 0 that finds one here belongs to the dial of that lookup.
    just_resolved: HashMap<ThreadId, Resolved>,
    /// The names of recent dials, oldest first, for their later attempts.
    names: VecDeque<Named>,
}

/// What pairs a start event with its done event.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Dns(Box<str>),
    Connect(SocketAddr, usize),
    #[cfg(feature = "tls")]
    Tls(SocketAddr, Box<str>),
}

struct OpenSpan {
    span: Span,
    at: Place,
}

/// Where an event fired: the tokio task and the parent span.
#[derive(Clone, PartialEq, Eq)]
struct Place {
    task: Option<tokio::task::Id>,
    parent: Option<tracing::Id>,
}

struct Resolved {
    host: Box<str>,
    addrs: Box<[IpAddr]>,
}

/// The name a dial looked up, and where its first attempt started.
struct Named {
    at: Place,
    name: Resolved,
}

impl Place {
    fn here(parent: &Span) -> Place {
        Place {
            task: tokio::task::try_id(),
            parent: parent.id(),
        }
    }

    /// How well a span that started at `self` matches an event at `other`.
    fn score(&self, other: &Place) -> u8 {
        2 * u8::from(self.task.is_some() && self.task == other.task)
            + u8::from(self.parent.is_some() && self.parent == other.parent)
    }
}

impl Open {
    fn insert(&mut self, key: Key, span: Span, at: Place) {
        self.spans
            .entry(key)
            .or_default()
            .push(OpenSpan { span, at });
    }

    /// Removes the open span under `key` that started where the done event fires, or the
    /// oldest one.
    fn take(&mut self, key: &Key, at: &Place) -> Option<Span> {
        let list = self.spans.get_mut(key)?;
        let best = (0..list.len())
            .min_by_key(|&i| (std::cmp::Reverse(list[i].at.score(at)), i))
            .expect("lists in the map are never empty");
        let open = list.remove(best);
        if list.is_empty() {
            self.spans.remove(key);
        }
        Some(open.span)
    }

    /// Notes that this thread has just resolved `host`; any other event on this thread
    /// forgets it.
    fn resolved(&mut self, host: &str, addrs: &[IpAddr]) {
        let resolved = Resolved {
            host: host.into(),
            addrs: addrs.into(),
        };
        self.just_resolved.insert(thread::current().id(), resolved);
    }

    fn take_resolved(&mut self) -> Option<Resolved> {
        if self.just_resolved.is_empty() {
            return None;
        }
        self.just_resolved.remove(&thread::current().id())
    }

    /// The server name of attempt `attempt` to `ip`, starting at `at`: for a first
    /// attempt, the name this thread has just resolved to `ip`, if any (an IP literal
    /// has none); for a later one, the name of the latest dial started at `at` whose
    /// lookup gave `ip`.
    fn server_name(&mut self, at: &Place, attempt: usize, ip: IpAddr) -> Option<Box<str>> {
        let resolved = self.take_resolved();
        if attempt > 0 {
            return self
                .names
                .iter()
                .rev()
                .find(|n| n.at == *at && n.name.addrs.contains(&ip))
                .map(|n| n.name.host.clone());
        }
        let name = resolved.filter(|r| r.addrs.contains(&ip))?;
        let host = name.host.clone();
        if self.names.len() == NAMES_KEPT {
            self.names.pop_front();
        }
        self.names.push_back(Named {
            at: at.clone(),
            name,
        });
        Some(host)
    }
}

impl Spans {
    fn new(parent: Parent) -> Spans {
        Spans {
            parent,
            open: Mutex::default(),
        }
    }

    fn into_trace(self) -> NetTrace {
        let spans = Arc::new(self);
        let (a, b, c, d) = (spans.clone(), spans.clone(), spans.clone(), spans.clone());
        let trace = NetTrace::new()
            .on_dns_start(move |e| a.dns_start(e))
            .on_dns_done(move |e| b.dns_done(e))
            .on_connect_start(move |e| c.connect_start(e))
            .on_connect_done(move |e| d.connect_done(e));
        #[cfg(feature = "tls")]
        let trace = {
            let (e, f) = (spans.clone(), spans);
            trace
                .on_tls_handshake_start(move |ev| e.tls_start(ev))
                .on_tls_handshake_done(move |ev| f.tls_done(ev))
        };
        trace
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // No user code runs under this lock and every update leaves the maps consistent.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn parent(&self) -> Span {
        match &self.parent {
            Parent::Current => Span::current(),
            #[cfg(feature = "http")]
            Parent::Request(request) => request
                .upgrade()
                .and_then(|request| request.span())
                .unwrap_or_else(Span::current),
        }
    }

    /// Removes the span `key` names for a done event firing here.
    fn take(&self, key: impl FnOnce() -> Key) -> Option<Span> {
        let at = Place::here(&self.parent());
        let mut open = self.lock();
        open.take_resolved();
        if open.spans.is_empty() {
            return None;
        }
        open.take(&key(), &at)
    }

    fn dns_start(&self, e: &DnsStart<'_>) {
        self.lock().take_resolved();
        let parent = self.parent();
        let span = tracing::info_span!(
            target: TARGET,
            parent: &parent,
            "dns.lookup",
            "dns.question.name" = e.host,
            "nettrace.outcome" = Empty,
            "nettrace.coalesced" = Empty,
            "nettrace.dns.answers" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        if !span.is_disabled() {
            let at = Place::here(&parent);
            self.lock().insert(Key::Dns(e.host.into()), span, at);
        }
    }

    fn dns_done(&self, e: &DnsDone<'_>) {
        let Some(span) = self.take(|| Key::Dns(e.host.into())) else {
            return;
        };
        span.record("nettrace.coalesced", e.coalesced);
        match e.error {
            None => {
                self.lock().resolved(e.host, e.addrs);
                span.record("nettrace.outcome", "resolved");
                span.record(
                    "nettrace.dns.answers",
                    tracing::field::display(Joined(e.addrs)),
                );
            }
            Some(err) if err.kind() == crate::ResolveErrorKind::Cancelled => {
                span.record("nettrace.outcome", "cancelled");
            }
            Some(err) => {
                span.record("nettrace.outcome", "failed");
                failed(&span, snake_case(&err.kind()), err);
            }
        }
    }

    fn connect_start(&self, e: &ConnectStart) {
        let parent = self.parent();
        let span = tracing::info_span!(
            target: TARGET,
            parent: &parent,
            "tcp.connect",
            "server.address" = Empty,
            "server.port" = i64::from(e.addr.port()),
            "network.peer.address" = %e.addr.ip(),
            "network.peer.port" = i64::from(e.addr.port()),
            "network.transport" = "tcp",
            "network.type" = network_type(e.addr.ip()),
            "nettrace.attempt" = i64::try_from(e.attempt).unwrap_or(i64::MAX),
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        if span.is_disabled() {
            self.lock().take_resolved();
            return;
        }
        let at = Place::here(&parent);
        let host = {
            let mut open = self.lock();
            let host = open.server_name(&at, e.attempt, e.addr.ip());
            open.insert(Key::Connect(e.addr, e.attempt), span.clone(), at);
            host
        };
        match host {
            Some(host) => span.record("server.address", &*host),
            None => span.record("server.address", tracing::field::display(e.addr.ip())),
        };
    }

    fn connect_done(&self, e: &ConnectDone<'_>) {
        let Some(span) = self.take(|| Key::Connect(e.addr, e.attempt)) else {
            return;
        };
        match e.outcome {
            ConnectOutcome::Connected => {
                span.record("nettrace.outcome", "connected");
            }
            ConnectOutcome::Failed(err) => {
                span.record("nettrace.outcome", "failed");
                failed(&span, snake_case(&err.kind()), err);
            }
            ConnectOutcome::Cancelled => {
                span.record("nettrace.outcome", "cancelled");
            }
        }
    }
}

#[cfg(feature = "tls")]
impl Spans {
    fn tls_start(&self, e: &crate::TlsHandshakeStart<'_>) {
        self.lock().take_resolved();
        let parent = self.parent();
        let span = tracing::info_span!(
            target: TARGET,
            parent: &parent,
            "tls.handshake",
            "server.address" = e.server_name,
            "server.port" = i64::from(e.addr.port()),
            "network.peer.address" = %e.addr.ip(),
            "network.peer.port" = i64::from(e.addr.port()),
            "tls.protocol.name" = "tls",
            "tls.protocol.version" = Empty,
            "tls.cipher" = Empty,
            "tls.next_protocol" = Empty,
            "tls.established" = Empty,
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        if !span.is_disabled() {
            let at = Place::here(&parent);
            let key = Key::Tls(e.addr, e.server_name.into());
            self.lock().insert(key, span, at);
        }
    }

    fn tls_done(&self, e: &crate::TlsHandshakeDone<'_>) {
        let Some(span) = self.take(|| Key::Tls(e.addr, e.server_name.into())) else {
            return;
        };
        span.record("tls.established", e.error.is_none());
        match e.error {
            None => {
                span.record("nettrace.outcome", "established");
                if let Some(version) = e.version {
                    // "TLSv1.3" -> "1.3", as the conventions want it.
                    let number = version.strip_prefix("TLSv").unwrap_or(version);
                    span.record("tls.protocol.version", number);
                }
                if let Some(cipher) = e.cipher {
                    span.record("tls.cipher", cipher);
                }
                if let Some(alpn) = e.alpn {
                    span.record("tls.next_protocol", &*String::from_utf8_lossy(alpn));
                }
            }
            // The connect was dropped before the handshake ended.
            Some(err) if err.kind() == std::io::ErrorKind::Interrupted => {
                span.record("nettrace.outcome", "cancelled");
            }
            Some(err) => {
                span.record("nettrace.outcome", "failed");
                failed(&span, snake_case(&err.kind()), err);
            }
        }
    }
}

/// Marks `span` as failed with `error_type`, for OpenTelemetry too.
fn failed(span: &Span, error_type: String, err: &dyn fmt::Display) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "error");
    span.record("otel.status_description", tracing::field::display(err));
}

fn network_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

/// An enum variant's name in snake case: `ConnectionRefused` -> `connection_refused`.
fn snake_case(kind: &dyn fmt::Debug) -> String {
    let name = format!("{kind:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Displays addresses comma-separated.
struct Joined<'a>(&'a [IpAddr]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ip) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{ip}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "http")]
use self::request::RequestSpan;

#[cfg(feature = "http")]
mod request;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn snake_case_names() {
        assert_eq!(
            snake_case(&io::ErrorKind::ConnectionRefused),
            "connection_refused"
        );
        assert_eq!(snake_case(&crate::ResolveErrorKind::NotFound), "not_found");
        assert_eq!(snake_case(&io::ErrorKind::Other), "other");
    }

    #[test]
    fn joined_addresses() {
        let addrs: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(Joined(&addrs).to_string(), "127.0.0.1,::1");
    }

    /// Task ids cannot be made by hand: places that differ by parent span only.
    fn place(parent: Option<u64>) -> Place {
        Place {
            task: None,
            parent: parent.map(tracing::Id::from_u64),
        }
    }

    #[test]
    fn take_prefers_the_same_place_then_the_oldest() {
        let mut open = Open::default();
        let key = || Key::Connect("127.0.0.1:1".parse().unwrap(), 0);
        open.insert(key(), Span::none(), place(Some(1)));
        open.insert(key(), Span::none(), place(Some(2)));
        open.insert(key(), Span::none(), place(Some(3)));
        // The span that started under parent 2 is taken for an event under parent 2.
        assert!(open.take(&key(), &place(Some(2))).is_some());
        let left: Vec<_> = open.spans[&key()]
            .iter()
            .map(|o| o.at.parent.clone())
            .collect();
        assert_eq!(
            left,
            [
                Some(tracing::Id::from_u64(1)),
                Some(tracing::Id::from_u64(3))
            ]
        );
        // No match: the oldest.
        assert!(open.take(&key(), &place(Some(9))).is_some());
        let left: Vec<_> = open.spans[&key()]
            .iter()
            .map(|o| o.at.parent.clone())
            .collect();
        assert_eq!(left, [Some(tracing::Id::from_u64(3))]);
        assert!(open.take(&key(), &place(None)).is_some());
        assert!(open.spans.is_empty());
        assert!(open.take(&key(), &place(None)).is_none());
    }

    #[test]
    fn a_first_attempt_takes_the_name_this_thread_just_resolved() {
        let mut open = Open::default();
        let (one, two): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        open.resolved("a.test", &[one, two]);
        assert_eq!(
            open.server_name(&place(Some(1)), 0, one).as_deref(),
            Some("a.test")
        );
        // Later attempts of that dial, from the same place.
        assert_eq!(
            open.server_name(&place(Some(1)), 1, two).as_deref(),
            Some("a.test")
        );
        assert_eq!(open.server_name(&place(Some(2)), 1, two), None);
        // A dial with no lookup (an IP literal) in the same place gets no name.
        assert_eq!(open.server_name(&place(Some(1)), 0, one), None);
        // Any other event in between forgets the lookup.
        open.resolved("b.test", &[one]);
        open.take_resolved();
        assert_eq!(open.server_name(&place(Some(1)), 0, one), None);
        // An answer without the address names nothing.
        open.resolved("c.test", &[two]);
        assert_eq!(open.server_name(&place(Some(1)), 0, one), None);
        // A newer dial in the same place wins; old ones are forgotten.
        open.resolved("d.test", &[one, two]);
        assert_eq!(
            open.server_name(&place(Some(1)), 0, one).as_deref(),
            Some("d.test")
        );
        assert_eq!(
            open.server_name(&place(Some(1)), 1, two).as_deref(),
            Some("d.test")
        );
        for i in 0..NAMES_KEPT {
            open.resolved(&format!("h{i}.test"), &[one]);
            open.server_name(&place(Some(3)), 0, one);
        }
        assert_eq!(open.names.len(), NAMES_KEPT);
        assert_eq!(open.server_name(&place(Some(1)), 1, two), None);
    }
}
