//! `tracing` spans for every DNS lookup, connection attempt and TLS handshake:
//! [`NetTrace::tracing`], and with feature `http`, [`HttpTrace::tracing`].
//!
//! The hooks of a trace are shared by every dial made under it, and every event carries
//! the id of its dial. So each trace keeps its open spans in a map keyed by exactly what
//! pairs a start with its done — the dial for a lookup and for a handshake, the dial and
//! attempt index for a connection attempt — and the name each dial looked up, for the
//! `server.address` of its attempts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::field::Empty;
use tracing::{Level, Span};

use crate::semconv::{connect_outcome, network_type, snake_case};
use crate::trace::{
    ConnectDone, ConnectOutcome, ConnectStart, DialId, DnsAnswer, DnsDone, DnsStart, Family,
    NetTrace,
};

/// The target of every span and event made here, for filters: `nettrace=info`.
const TARGET: &str = "nettrace";

// Integers are recorded as `i64`: tracing-opentelemetry makes integer attributes of
// those, but strings of `u64` values.

/// How many dials a trace remembers the looked-up name of. A dial's name is forgotten
/// when the dial ends in a way its events show (an attempt connected or was cancelled,
/// or the lookup failed); only dials whose every attempt failed, and lookups made
/// outside a dial, stay until newer ones push them out, oldest first.
const NAMES_KEPT: usize = 1024;

impl NetTrace {
    /// Returns a trace that turns each DNS lookup, each connection attempt and (with
    /// feature `tls`) each TLS handshake into a [`tracing`](https://docs.rs/tracing) span.
    ///
    /// With [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) these spans
    /// reach OpenTelemetry as the connection-setup spans of the semantic conventions
    /// (1.44, after .NET's `HttpClient`): each sets `otel.name`, which becomes the
    /// OpenTelemetry span name, and `otel.kind = "internal"`; every field is named after
    /// the conventions where one exists, and `nettrace.*` otherwise.
    ///
    /// | `tracing` name | OpenTelemetry name | fields |
    /// |---|---|---|
    /// | `dns.lookup` | `DNS lookup {dns.question.name}` | `dns.question.name`, `nettrace.dial_id`; at its end `nettrace.outcome` (`"resolved"`, `"failed"` or `"cancelled"`), `nettrace.coalesced`, `dns.answers` (the addresses, comma-separated: `tracing` fields have no arrays) or `error.type` (the [`ResolveErrorKind`](crate::ResolveErrorKind) in snake case, such as `"not_found"`) |
    /// | `tcp.connect` | `socket connect {network.peer.address}:{network.peer.port}` | `network.peer.address`, `network.peer.port`, `network.transport` (`"tcp"`), `network.type` (`"ipv4"` or `"ipv6"`), `server.address` (the name the dial looked up, else the IP address), `server.port`, `nettrace.dial_id`, `nettrace.attempt`; at its end `nettrace.outcome` (`"connected"`, `"failed"` or `"cancelled"`) and on failure `error.type` (the [`io::ErrorKind`](std::io::ErrorKind) in snake case, such as `"connection_refused"`) |
    /// | `tls.handshake` | `TLS client handshake {server.address}` | `server.address` (the server name), `server.port`, `network.peer.address`, `network.peer.port`, `tls.protocol.name` (`"tls"`), `nettrace.dial_id`; at its end `nettrace.outcome` (`"established"`, `"failed"` or `"cancelled"`), `tls.established`, and `tls.protocol.version` (`"1.3"`), `tls.cipher`, `tls.next_protocol` (ALPN) or `error.type` |
    /// | `http.connection_setup` | `HTTP connection_setup {server.address}:{server.port}` | `server.address`, `server.port` (the host and port asked for), `nettrace.dial_id`; at its end `nettrace.outcome` (as for `tcp.connect`), `network.peer.address` and `network.peer.port` when the client reports the peer, or on failure `error.type`. From [`ConnectionSetupStart`](crate::ConnectionSetupStart) |
    ///
    /// Each address family's answer ([`DnsAnswer`]) is an event `dns.answer` in its
    /// `dns.lookup` span, with `nettrace.dns.family` (`"ipv6"` for AAAA, `"ipv4"` for A),
    /// `dns.answers` (that family's addresses, comma-separated), `nettrace.coalesced`, and
    /// when the family has no answer `error.type` (as above; `"cancelled"` when the dial
    /// stopped waiting for it) and `error.message`.
    ///
    /// A failure also sets `otel.status_code = "error"` and `otel.status_description` (the
    /// error message), which `tracing-opentelemetry` turns into the span's status. An
    /// attempt that lost the race is `"cancelled"`, not an error. Spans and events have
    /// level `INFO` and target `nettrace`. `nettrace.dial_id` is the number of the
    /// [`DialId`] of the dial the span belongs to.
    ///
    /// # Parents
    ///
    /// Parents come from ids, never from guesses. A lookup, attempt or handshake of dial
    /// `D` is a child of the `http.connection_setup` span of `D` while one is open (an
    /// HTTP client fired a [`ConnectionSetupStart`](crate::ConnectionSetupStart) with
    /// dial `D`). Otherwise it is a child of the caller's span: the span current when it
    /// starts, which is the span the dial runs in (`dial.instrument(span)`), since a dial
    /// calls every hook on its own task, inside its own poll. A connection setup is a
    /// child of the span current at its start.
    ///
    /// Every span closes with its outcome: the crate fires each done hook exactly once,
    /// also when a dial is dropped half way (then the pending lookup and attempts end as
    /// `"cancelled"`), and a hook that panics costs no other hook its event. A span whose
    /// done never came all the same (the subscriber itself panicked, say) ends when the
    /// trace is dropped, with no outcome.
    ///
    /// # Concurrent dials
    ///
    /// One trace may serve any number of concurrent dials, on any tasks, under any span:
    /// events carry the id of their dial, so each done ends exactly the span its start
    /// opened, and each attempt's `server.address` is the name its own dial looked up.
    /// So one trace can be installed anywhere: around one dial, or once around a whole
    /// task that dials many times. Installing the same trace twice around one dial
    /// (nested [`with_trace`](crate::with_trace) scopes) still makes each span once.
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
    /// let dial = dialer.dial_host("db.test", port);
    /// let id = dial.id();
    /// let dial = nettrace::with_trace(NetTrace::tracing(), dial);
    /// let stream = dial.instrument(tracing::info_span!("checkout")).await?;
    /// # drop(stream);
    ///
    /// let spans = exporter.get_finished_spans()?;
    /// let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    /// let connect_name = format!("socket connect 127.0.0.1:{port}");
    /// assert_eq!(names, ["DNS lookup db.test", &connect_name, "checkout"]);
    /// let connect = &spans[1];
    /// assert_eq!(connect.span_kind, opentelemetry::trace::SpanKind::Internal);
    /// assert_eq!(connect.parent_span_id, spans[2].span_context.span_id());
    /// let attr = |key: &str| connect.attributes.iter().find(|kv| kv.key.as_str() == key);
    /// assert_eq!(attr("nettrace.outcome").unwrap().value.as_str(), "connected");
    /// let dial_id = opentelemetry::Value::I64(id.as_u64() as i64);
    /// assert_eq!(attr("nettrace.dial_id").unwrap().value, dial_id);
    /// // The lookup's span holds one `dns.answer` event per address family.
    /// assert_eq!(spans[0].events.len(), 2);
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

// B-trees rather than hash maps: a handful of entries each, whose keys a B-tree compares
// faster than SipHash hashes them.
#[derive(Default)]
struct Open {
    spans: BTreeMap<Key, OpenSpan>,
    /// The name each dial looked up, by dial (ids grow with time: the first is the
    /// oldest). At most [`NAMES_KEPT`].
    names: BTreeMap<DialId, Arc<str>>,
}

/// What pairs a start event with its done event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Dns(DialId),
    Connect(DialId, usize),
    #[cfg(feature = "tls")]
    Tls(DialId),
    Setup(DialId),
}

struct OpenSpan {
    span: Span,
    /// The families whose answer is already an event of this (lookup) span, one bit
    /// each: a trace installed twice sees each answer twice.
    answered: u8,
}

/// What a start event needs to know of the spans open already, read under one lock.
struct Starting {
    /// The `HTTP connection_setup` span of the dial, while one is open.
    setup: Option<Span>,
    /// The name the dial looked up, if it did.
    name: Option<Arc<str>>,
}

impl Open {
    /// Keeps `span` under `key`, unless a span is open there already: the same trace
    /// installed twice around one dial sees every event twice, and makes one span. A
    /// span not kept is handed back, to be dropped outside the lock.
    #[must_use]
    fn insert(&mut self, key: Key, span: Span) -> Option<Span> {
        match self.spans.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => Some(span),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(OpenSpan { span, answered: 0 });
                None
            }
        }
    }

    fn take(&mut self, key: Key) -> Option<Span> {
        self.spans.remove(&key).map(|open| open.span)
    }

    /// The lookup span of `dial`, if `family`'s answer is not in it yet.
    fn answer_span(&mut self, dial: DialId, family: Family) -> Option<Span> {
        let open = self.spans.get_mut(&Key::Dns(dial))?;
        let bit = match family {
            Family::Ipv6 => 1,
            Family::Ipv4 => 2,
            _ => 4,
        };
        if open.answered & bit != 0 {
            return None;
        }
        open.answered |= bit;
        Some(open.span.clone())
    }

    fn name(&mut self, dial: DialId, host: &str) {
        self.names.insert(dial, host.into());
        if self.names.len() > NAMES_KEPT {
            self.names.pop_first();
        }
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
        let (a, b, c, d, e) = (
            spans.clone(),
            spans.clone(),
            spans.clone(),
            spans.clone(),
            spans.clone(),
        );
        let trace = NetTrace::new()
            .on_dns_start(move |ev| a.dns_start(ev))
            .on_dns_answer(move |ev| b.dns_answer(ev))
            .on_dns_done(move |ev| c.dns_done(ev))
            .on_connect_start(move |ev| d.connect_start(ev))
            .on_connect_done(move |ev| e.connect_done(ev))
            .on_connection_setup_start({
                let spans = spans.clone();
                move |ev| spans.setup_start(ev)
            })
            .on_connection_setup_done({
                let spans = spans.clone();
                move |ev| spans.setup_done(ev)
            });
        #[cfg(feature = "tls")]
        let trace = {
            let (f, g) = (spans.clone(), spans);
            trace
                .on_tls_handshake_start(move |ev| f.tls_start(ev))
                .on_tls_handshake_done(move |ev| g.tls_done(ev))
        };
        trace
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // No user code runs under this lock (spans are made, recorded and dropped
        // outside it; under it they are only cloned, which a subscriber does by
        // counting) and every update leaves the maps consistent.
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

    /// What a new span under `key` for `dial` needs, or `None` if a span is open under
    /// `key` already (the trace is installed twice).
    fn starting(&self, key: Key, dial: DialId) -> Option<Starting> {
        let open = self.lock();
        if open.spans.contains_key(&key) {
            return None;
        }
        Some(Starting {
            setup: open.spans.get(&Key::Setup(dial)).map(|o| o.span.clone()),
            name: open.names.get(&dial).cloned(),
        })
    }

    /// The parent of a new span of a dial: the `HTTP connection_setup` span of that dial
    /// while one is open (its [`ConnectionSetupStart`](crate::ConnectionSetupStart) carried
    /// the same id), else [`Spans::parent`].
    fn parent_of(&self, start: &mut Starting) -> Span {
        start.setup.take().unwrap_or_else(|| self.parent())
    }

    /// Keeps `span` open under `key`; a disabled span is not kept.
    fn open(&self, key: Key, span: Span) {
        if !span.is_disabled() {
            let rejected = self.lock().insert(key, span);
            drop(rejected);
        }
    }

    fn dns_start(&self, e: &DnsStart<'_>) {
        let key = Key::Dns(e.dial);
        let Some(mut start) = self.starting(key, e.dial) else {
            return;
        };
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.parent_of(&mut start),
            "dns.lookup",
            "otel.name" = %format_args!("DNS lookup {}", e.host),
            "otel.kind" = "internal",
            "dns.question.name" = e.host,
            "nettrace.dial_id" = dial_id(e.dial),
            "nettrace.outcome" = Empty,
            "nettrace.coalesced" = Empty,
            "dns.answers" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        let rejected = {
            let mut open = self.lock();
            open.name(e.dial, e.host);
            (!span.is_disabled()).then(|| open.insert(key, span))
        };
        drop(rejected);
    }

    fn dns_answer(&self, e: &DnsAnswer<'_>) {
        let Some(span) = self.lock().answer_span(e.dial, e.family) else {
            return;
        };
        let error_type = e.error.map(|err| snake_case(&err.kind()));
        tracing::event!(
            target: TARGET,
            parent: &span,
            Level::INFO,
            {
                "nettrace.dns.family" = family_name(e.family),
                "dns.answers" = %Joined(e.addrs),
                "nettrace.coalesced" = e.coalesced,
                "error.type" = error_type.as_deref(),
                "error.message" = e.error.map(tracing::field::display),
            },
            "dns.answer"
        );
    }

    fn dns_done(&self, e: &DnsDone<'_>) {
        let span = {
            let mut open = self.lock();
            if e.error.is_some() {
                // No address: the dial makes no attempt.
                open.names.remove(&e.dial);
            }
            open.take(Key::Dns(e.dial))
        };
        let Some(span) = span else {
            return;
        };
        span.record("nettrace.coalesced", e.coalesced);
        match e.error {
            None => {
                span.record("nettrace.outcome", "resolved");
                span.record("dns.answers", tracing::field::display(Joined(e.addrs)));
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
        let key = Key::Connect(e.dial, e.attempt);
        let Some(mut start) = self.starting(key, e.dial) else {
            return;
        };
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.parent_of(&mut start),
            "tcp.connect",
            "otel.name" = %OtelName("socket connect", Some(e.addr.ip()), Some(e.addr.port())),
            "otel.kind" = "internal",
            "server.address" = Empty,
            "server.port" = i64::from(e.addr.port()),
            "network.peer.address" = %e.addr.ip(),
            "network.peer.port" = i64::from(e.addr.port()),
            "network.transport" = "tcp",
            "network.type" = network_type(e.addr.ip()),
            "nettrace.dial_id" = dial_id(e.dial),
            "nettrace.attempt" = i64::try_from(e.attempt).unwrap_or(i64::MAX),
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        if span.is_disabled() {
            return;
        }
        // An IP literal is not looked up: its dial has no name.
        match start.name {
            Some(name) => span.record("server.address", &*name),
            None => span.record("server.address", tracing::field::display(e.addr.ip())),
        };
        self.open(key, span);
    }

    fn connect_done(&self, e: &ConnectDone<'_>) {
        let span = {
            let mut open = self.lock();
            if !matches!(e.outcome, ConnectOutcome::Failed(_)) {
                // The dial is ending: it starts no attempt after a win or a cancel.
                open.names.remove(&e.dial);
            }
            open.take(Key::Connect(e.dial, e.attempt))
        };
        let Some(span) = span else {
            return;
        };
        span.record("nettrace.outcome", connect_outcome(&e.outcome));
        if let ConnectOutcome::Failed(err) = e.outcome {
            failed(&span, snake_case(&err.kind()), err);
        }
    }
}

#[cfg(feature = "tls")]
impl Spans {
    fn tls_start(&self, e: &crate::TlsHandshakeStart<'_>) {
        let key = Key::Tls(e.dial);
        let Some(mut start) = self.starting(key, e.dial) else {
            return;
        };
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.parent_of(&mut start),
            "tls.handshake",
            "otel.name" = %format_args!("TLS client handshake {}", e.server_name),
            "otel.kind" = "internal",
            "server.address" = e.server_name,
            "server.port" = i64::from(e.addr.port()),
            "network.peer.address" = %e.addr.ip(),
            "network.peer.port" = i64::from(e.addr.port()),
            "tls.protocol.name" = "tls",
            "tls.protocol.version" = Empty,
            "tls.cipher" = Empty,
            "tls.next_protocol" = Empty,
            "tls.established" = Empty,
            "nettrace.dial_id" = dial_id(e.dial),
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        self.open(key, span);
    }

    fn tls_done(&self, e: &crate::TlsHandshakeDone<'_>) {
        let Some(span) = self.lock().take(Key::Tls(e.dial)) else {
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

fn dial_id(dial: DialId) -> i64 {
    i64::try_from(dial.as_u64()).unwrap_or(i64::MAX)
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv6 => "ipv6",
        Family::Ipv4 => "ipv4",
        Family::Any => "any",
    }
}

/// Marks `span` as failed with `error_type`, for OpenTelemetry too.
fn failed(span: &Span, error_type: String, err: &dyn fmt::Display) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "error");
    span.record("otel.status_description", tracing::field::display(err));
}

/// An OpenTelemetry span name: `{what} {host}:{port}`, or `{what}` alone when the host
/// or the port is not known. Formatted only if a subscriber records it.
struct OtelName<H>(&'static str, Option<H>, Option<u16>);

impl<H: fmt::Display> fmt::Display for OtelName<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.1, self.2) {
            (Some(host), Some(port)) => write!(f, "{} {host}:{port}", self.0),
            _ => f.write_str(self.0),
        }
    }
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
mod setup;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_addresses() {
        let addrs: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(Joined(&addrs).to_string(), "127.0.0.1,::1");
    }

    #[test]
    fn spans_pair_by_key_and_a_second_start_under_a_key_is_ignored() {
        let mut open = Open::default();
        let (a, b) = (DialId::next(), DialId::next());
        assert!(open.insert(Key::Connect(a, 0), Span::none()).is_none());
        assert!(open.insert(Key::Connect(b, 0), Span::none()).is_none());
        assert!(open.insert(Key::Connect(a, 0), Span::none()).is_some());
        assert_eq!(open.spans.len(), 2);
        assert!(open.take(Key::Connect(b, 0)).is_some());
        assert!(open.take(Key::Connect(b, 0)).is_none());
        assert!(open.take(Key::Connect(a, 1)).is_none());
        assert!(open.take(Key::Connect(a, 0)).is_some());
        assert!(open.spans.is_empty());
    }

    #[test]
    fn each_family_answers_once_into_its_lookup() {
        let mut open = Open::default();
        let dial = DialId::next();
        assert!(open.answer_span(dial, Family::Ipv6).is_none(), "no lookup");
        assert!(open.insert(Key::Dns(dial), Span::none()).is_none());
        assert!(open.answer_span(dial, Family::Ipv6).is_some());
        assert!(open.answer_span(dial, Family::Ipv6).is_none(), "a repeat");
        assert!(open.answer_span(dial, Family::Ipv4).is_some());
        assert!(open.answer_span(DialId::next(), Family::Ipv4).is_none());
    }

    #[test]
    fn names_are_kept_per_dial_and_the_oldest_go_first() {
        let mut open = Open::default();
        let first = DialId::next();
        open.name(first, "first.test");
        let ids: Vec<DialId> = (0..NAMES_KEPT).map(|_| DialId::next()).collect();
        for (i, id) in ids.iter().enumerate() {
            open.name(*id, &format!("h{i}.test"));
        }
        assert_eq!(open.names.len(), NAMES_KEPT);
        assert!(!open.names.contains_key(&first));
        assert_eq!(open.names.get(&ids[0]).map(|n| &**n), Some("h0.test"));
        assert_eq!(
            open.names.get(&ids[NAMES_KEPT - 1]).map(|n| n.to_string()),
            Some(format!("h{}.test", NAMES_KEPT - 1))
        );
    }
}
