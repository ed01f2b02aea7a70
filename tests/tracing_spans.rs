//! `NetTrace::tracing()` (and `HttpTrace::tracing()`): the span tree a dial makes, seen by
//! a recording `tracing` layer and by the OpenTelemetry SDK's in-memory exporter.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nettrace::{Dialer, NetTrace, Resolve, Resolving, StaticResolver};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::dns::{DnsServer, Entry};
use crate::support::net::{fallback_pair, BlackHole, Live};

/// One span as the recording layer saw it.
#[derive(Debug, Clone)]
struct Rec {
    name: &'static str,
    /// Index of the parent in the recording.
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
    /// The messages of the events recorded in this span, in order.
    events: Vec<String>,
    closed: bool,
}

impl Rec {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A layer that records every span (fields, parent, events, close) in creation order.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Recorded>>);

#[derive(Default)]
struct Recorded {
    spans: Vec<Rec>,
    /// Open span ids to their index; the registry reuses ids of closed spans.
    live: HashMap<u64, usize>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Recording
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // Ours and the tests' own; not those of hyper, h2 or hickory.
        let target = attrs.metadata().target();
        if target != "nettrace" && !target.starts_with("tests") {
            return;
        }
        let mut rec = self.0.lock().unwrap();
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .and_then(|parent| rec.live.get(&parent.id().into_u64()).copied());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let index = rec.spans.len();
        rec.spans.push(Rec {
            name: attrs.metadata().name(),
            parent,
            fields,
            events: Vec::new(),
            closed: false,
        });
        rec.live.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut rec = self.0.lock().unwrap();
        let Some(&index) = rec.live.get(&id.into_u64()) else {
            return;
        };
        values.record(&mut Fields(&mut rec.spans[index].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut rec = self.0.lock().unwrap();
        let Some(&index) = rec.live.get(&span.id().into_u64()) else {
            return;
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        rec.spans[index].events.push(message);
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut rec = self.0.lock().unwrap();
        if let Some(index) = rec.live.remove(&id.into_u64()) {
            rec.spans[index].closed = true;
        }
    }
}

impl Recording {
    /// Installs a registry with this layer as the thread's default subscriber.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(tracing_subscriber::registry().with(self.clone()))
    }

    fn spans(&self) -> Vec<Rec> {
        self.0.lock().unwrap().spans.clone()
    }

    /// The index of the only span called `name`.
    fn one(&self, name: &str) -> usize {
        let spans = self.spans();
        let found: Vec<usize> = (0..spans.len())
            .filter(|&i| spans[i].name == name)
            .collect();
        assert_eq!(found.len(), 1, "spans called {name}: {spans:#?}");
        found[0]
    }

    /// The children of span `parent` called `name`, in creation order.
    fn children(&self, parent: usize, name: &str) -> Vec<Rec> {
        let spans = self.spans();
        self.child_indices(parent, name)
            .into_iter()
            .map(|i| spans[i].clone())
            .collect()
    }

    /// The indices of the children of span `parent` called `name`, in creation order.
    fn child_indices(&self, parent: usize, name: &str) -> Vec<usize> {
        let spans = self.spans();
        (0..spans.len())
            .filter(|&i| spans[i].parent == Some(parent) && spans[i].name == name)
            .collect()
    }

    fn assert_all_closed(&self) {
        let spans = self.spans();
        let open: Vec<&Rec> = spans.iter().filter(|s| !s.closed).collect();
        assert!(open.is_empty(), "spans left open: {open:#?}");
    }
}

fn resolving(name: &str, addrs: &[IpAddr]) -> StaticResolver {
    StaticResolver::new().insert(name, addrs.iter().copied())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Black holes on `[::1]:P` and `127.0.0.1:P`: every connect to either hangs.
async fn hole_pair() -> (BlackHole, BlackHole) {
    for _ in 0..20 {
        let v6 = BlackHole::on("::1").await;
        let port = v6.addr.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return (v6, BlackHole::on_port("127.0.0.1", port).await);
        }
    }
    panic!("no port free on both ::1 and 127.0.0.1");
}

/// A resolver that never answers.
struct Never;

impl Resolve for Never {
    fn resolve(&self, _host: &str) -> Resolving {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn happy_eyeballs_dial_is_one_lookup_span_and_one_span_per_attempt() {
    let rec = Recording::default();
    let _default = rec.install();
    let (hole, live) = fallback_pair().await;
    let port = live.addr.port();
    let dialer = Dialer::builder()
        .resolver(resolving("he.test", &[hole.addr.ip(), live.addr.ip()]))
        .attempt_delay(Duration::from_millis(50))
        .build();

    let user = tracing::info_span!("user.request");
    let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial_host("he.test", port));
    let stream = dial.instrument(user.clone()).await.unwrap();
    drop(user);
    assert_eq!(stream.peer_addr().unwrap(), live.addr);

    let user = rec.one("user.request");
    assert_eq!(rec.spans().len(), 4, "{:#?}", rec.spans());
    let dns = rec.children(user, "dns.lookup");
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].field("dns.question.name"), Some("he.test"));
    assert_eq!(dns[0].field("nettrace.outcome"), Some("resolved"));
    assert_eq!(dns[0].field("nettrace.coalesced"), Some("false"));
    assert_eq!(dns[0].field("nettrace.dns.answers"), Some("::1,127.0.0.1"));
    assert_eq!(dns[0].field("error.type"), None);

    let attempts = rec.children(user, "tcp.connect");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let port = port.to_string();
    for (attempt, (index, peer, family, outcome)) in attempts.iter().zip([
        ("0", "::1", "ipv6", "cancelled"),
        ("1", "127.0.0.1", "ipv4", "connected"),
    ]) {
        assert_eq!(attempt.field("nettrace.attempt"), Some(index));
        assert_eq!(attempt.field("server.address"), Some("he.test"));
        assert_eq!(attempt.field("server.port"), Some(&*port));
        assert_eq!(attempt.field("network.peer.address"), Some(peer));
        assert_eq!(attempt.field("network.peer.port"), Some(&*port));
        assert_eq!(attempt.field("network.transport"), Some("tcp"));
        assert_eq!(attempt.field("network.type"), Some(family));
        assert_eq!(attempt.field("nettrace.outcome"), Some(outcome));
        assert_eq!(attempt.field("error.type"), None);
    }
    rec.assert_all_closed();
}

#[tokio::test]
async fn a_dropped_dial_closes_every_span() {
    let rec = Recording::default();
    let _default = rec.install();

    // Dropped while both attempts hang.
    let (v6, v4) = hole_pair().await;
    let dialer = Dialer::builder()
        .resolver(resolving("dead.test", &[v6.addr.ip(), v4.addr.ip()]))
        .attempt_delay(Duration::from_millis(20))
        .build();
    let user = tracing::info_span!("connecting");
    let dial = nettrace::with_trace(
        NetTrace::tracing(),
        dialer.dial_host("dead.test", v6.addr.port()),
    );
    let late =
        tokio::time::timeout(Duration::from_millis(200), dial.instrument(user.clone())).await;
    assert!(late.is_err(), "a black hole answered");
    drop(user);
    let user = rec.one("connecting");
    let dns = rec.children(user, "dns.lookup");
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].field("nettrace.outcome"), Some("resolved"));
    let attempts = rec.children(user, "tcp.connect");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert!(attempts
        .iter()
        .all(|a| a.field("nettrace.outcome") == Some("cancelled") && a.closed));

    // Dropped while the lookup hangs.
    let dialer = Dialer::builder().resolver(Never).build();
    let user = tracing::info_span!("resolving");
    let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial("slow.test:80"));
    let late = tokio::time::timeout(Duration::from_millis(50), dial.instrument(user.clone())).await;
    assert!(late.is_err());
    drop(user);
    let user = rec.one("resolving");
    let dns = rec.children(user, "dns.lookup");
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].field("dns.question.name"), Some("slow.test"));
    assert_eq!(dns[0].field("nettrace.outcome"), Some("cancelled"));
    assert_eq!(dns[0].field("error.type"), None);
    assert!(rec.children(user, "tcp.connect").is_empty());

    rec.assert_all_closed();
}

#[tokio::test]
async fn concurrent_dials_to_the_same_address_end_their_own_spans() {
    let rec = Recording::default();
    let _default = rec.install();
    let (hole, live) = fallback_pair().await;
    let port = live.addr.port();
    let addrs = [hole.addr.ip(), live.addr.ip()];
    let dialer = Dialer::builder()
        .resolver(resolving("a.test", &addrs).insert("b.test", addrs))
        .attempt_delay(Duration::from_millis(300))
        .build();
    // One trace for both dials, on one task: their attempt 0 both go to [::1]:P.
    let trace = NetTrace::tracing();

    let a = nettrace::with_trace(trace.clone(), dialer.dial_host("a.test", port))
        .instrument(tracing::info_span!("a"));
    let b_rec = rec.clone();
    let b = async move {
        let dial = nettrace::with_trace(trace, dialer.dial_host("b.test", port));
        let late = tokio::time::timeout(Duration::from_millis(50), dial).await;
        assert!(late.is_err(), "a black hole answered");
        // B's attempt has just been cancelled; A's, to the same address, goes on.
        let b = b_rec.one("b");
        let b_attempts = b_rec.children(b, "tcp.connect");
        assert_eq!(b_attempts.len(), 1);
        assert_eq!(b_attempts[0].field("nettrace.outcome"), Some("cancelled"));
        assert!(b_attempts[0].closed);
        let a = b_rec.one("a");
        let a_attempts = b_rec.children(a, "tcp.connect");
        assert_eq!(a_attempts.len(), 1);
        assert!(!a_attempts[0].closed, "B's cancel closed A's attempt");
        assert_eq!(a_attempts[0].field("nettrace.outcome"), None);
    }
    .instrument(tracing::info_span!("b"));
    let (stream, ()) = tokio::join!(a, b);
    assert_eq!(stream.unwrap().peer_addr().unwrap(), live.addr);

    let a = rec.one("a");
    let outcomes: Vec<_> = rec
        .children(a, "tcp.connect")
        .iter()
        .map(|s| s.field("nettrace.outcome").unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["cancelled", "connected"]);
    assert_eq!(rec.children(a, "dns.lookup").len(), 1);
    assert_eq!(rec.children(rec.one("b"), "dns.lookup").len(), 1);
    rec.assert_all_closed();
}

#[tokio::test]
async fn coalesced_lookups_over_dns_stay_with_their_own_dial() {
    let rec = Recording::default();
    let _default = rec.install();
    let server = DnsServer::start().await;
    let delay = Duration::from_millis(50);
    server.insert(
        "shared.test",
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder().resolver(server.resolver()).build();
    let trace = NetTrace::tracing();
    let dial = |name: &'static str| {
        nettrace::with_trace(
            trace.clone(),
            dialer.dial_host("shared.test", live.addr.port()),
        )
        .instrument(tracing::info_span!("caller", name))
    };

    let (first, second) = tokio::join!(dial("first"), dial("second"));
    first.unwrap();
    second.unwrap();

    let spans = rec.spans();
    let callers: Vec<usize> = (0..spans.len())
        .filter(|&i| spans[i].name == "caller")
        .collect();
    assert_eq!(callers.len(), 2);
    for caller in callers {
        let dns = rec.children(caller, "dns.lookup");
        assert_eq!(dns.len(), 1, "{spans:#?}");
        assert_eq!(dns[0].field("nettrace.coalesced"), Some("true"));
        assert_eq!(dns[0].field("nettrace.outcome"), Some("resolved"));
        let attempts = rec.children(caller, "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("server.address"), Some("shared.test"));
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("connected"));
    }
    rec.assert_all_closed();
}

#[tokio::test]
async fn an_ip_literal_is_its_own_server_address() {
    let rec = Recording::default();
    let _default = rec.install();
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder()
        .resolver(resolving("named.test", &[live.addr.ip()]))
        .build();
    let user = tracing::info_span!("user");
    let both = async {
        dialer
            .dial_host("named.test", live.addr.port())
            .await
            .unwrap();
        dialer.dial(&live.addr.to_string()).await.unwrap();
    };
    nettrace::with_trace(NetTrace::tracing(), both)
        .instrument(user.clone())
        .await;
    drop(user);

    let user = rec.one("user");
    assert_eq!(
        rec.children(user, "dns.lookup").len(),
        1,
        "a literal is not looked up"
    );
    let names: Vec<_> = rec
        .children(user, "tcp.connect")
        .iter()
        .map(|s| s.field("server.address").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["named.test", "127.0.0.1"]);
    rec.assert_all_closed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_trace() {
    let rec = Recording::default();
    let dispatch = rec.dispatch();
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder()
        .resolver(resolving("many.test", &[live.addr.ip()]))
        .build();
    let trace = NetTrace::tracing();

    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let dial = nettrace::with_trace(
                trace.clone(),
                dialer.dial_host("many.test", live.addr.port()),
            );
            let work = async move {
                let stream = dial.instrument(tracing::info_span!("task", task)).await;
                tokio::task::yield_now().await;
                stream
            };
            tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(
                work,
                dispatch.clone(),
            ))
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let spans = rec.spans();
    let roots: Vec<usize> = (0..spans.len())
        .filter(|&i| spans[i].name == "task")
        .collect();
    assert_eq!(roots.len(), 64);
    for root in roots {
        assert_eq!(rec.children(root, "dns.lookup").len(), 1);
        let attempts = rec.children(root, "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("connected"));
        assert_eq!(attempts[0].field("server.address"), Some("many.test"));
    }
    assert_eq!(spans.len(), 64 * 3);
    rec.assert_all_closed();
}

#[tokio::test]
async fn without_a_subscriber_the_trace_costs_a_dial_nothing() {
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder()
        .resolver(resolving("quiet.test", &[live.addr.ip()]))
        .build();
    let trace = NetTrace::tracing();
    for _ in 0..3 {
        let dial = dialer.dial_host("quiet.test", live.addr.port());
        nettrace::with_trace(trace.clone(), dial).await.unwrap();
    }
}

mod otel {
    use opentelemetry::trace::{SpanId, Status, TracerProvider as _};
    use opentelemetry::Value;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

    use super::*;

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    fn string(span: &SpanData, key: &str) -> Option<String> {
        attr(span, key).map(|v| v.as_str().into_owned())
    }

    #[tokio::test]
    async fn exported_spans_carry_the_conventions_and_the_user_span_as_parent() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("nettrace-test")));
        let _default = tracing::subscriber::set_default(subscriber);

        // 127.0.0.2:P refuses (nothing listens there), 127.0.0.1:P accepts.
        let live = Live::on("127.0.0.1").await;
        let port = live.addr.port();
        let dialer = Dialer::builder()
            .resolver(resolving("svc.test", &[ip("127.0.0.2"), ip("127.0.0.1")]))
            .build();
        let user = tracing::info_span!("checkout");
        let dial = nettrace::with_trace(NetTrace::tracing(), dialer.dial_host("svc.test", port));
        dial.instrument(user.clone()).await.unwrap();
        drop(user);

        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            ["dns.lookup", "tcp.connect", "tcp.connect", "checkout"]
        );
        let (dns, refused, connected, user) = (&spans[0], &spans[1], &spans[2], &spans[3]);
        assert_eq!(user.parent_span_id, SpanId::INVALID);
        for span in [dns, refused, connected] {
            assert_eq!(span.parent_span_id, user.span_context.span_id());
            assert_eq!(span.span_context.trace_id(), user.span_context.trace_id());
        }

        assert_eq!(
            string(dns, "dns.question.name").as_deref(),
            Some("svc.test")
        );
        assert_eq!(attr(dns, "nettrace.coalesced"), Some(&Value::Bool(false)));
        assert_eq!(string(dns, "nettrace.outcome").as_deref(), Some("resolved"));
        assert_eq!(dns.status, Status::Unset);

        let port = i64::from(port);
        for (span, index, peer, outcome) in [
            (refused, 0, "127.0.0.2", "failed"),
            (connected, 1, "127.0.0.1", "connected"),
        ] {
            assert_eq!(string(span, "server.address").as_deref(), Some("svc.test"));
            assert_eq!(attr(span, "server.port"), Some(&Value::I64(port)));
            assert_eq!(string(span, "network.peer.address").as_deref(), Some(peer));
            assert_eq!(attr(span, "network.peer.port"), Some(&Value::I64(port)));
            assert_eq!(string(span, "network.type").as_deref(), Some("ipv4"));
            assert_eq!(attr(span, "nettrace.attempt"), Some(&Value::I64(index)));
            assert_eq!(string(span, "nettrace.outcome").as_deref(), Some(outcome));
        }
        assert_eq!(
            string(refused, "error.type").as_deref(),
            Some("connection_refused")
        );
        assert!(
            matches!(&refused.status, Status::Error { description } if !description.is_empty()),
            "{:?}",
            refused.status
        );
        assert_eq!(attr(connected, "error.type"), None);
        assert_eq!(connected.status, Status::Unset);
        // Only what we set: no `otel.*` field leaks through as an attribute.
        assert!(refused
            .attributes
            .iter()
            .all(|kv| !kv.key.as_str().starts_with("otel.")));
    }
}

#[cfg(feature = "http")]
mod requests {
    use std::net::SocketAddr;

    use ::http::Request;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use nettrace::{Connector, HttpClient, HttpTrace};

    use super::*;
    use crate::support::http::HttpServer;

    fn client(name: &str, addr: SocketAddr) -> HttpClient<Empty<Bytes>> {
        let dialer = Dialer::builder()
            .resolver(resolving(name, &[addr.ip()]))
            .build();
        HttpClient::new(Connector::new(dialer))
    }

    async fn get(client: &HttpClient<Empty<Bytes>>, url: &str, trace: HttpTrace) -> u16 {
        let request = Request::get(url).body(Empty::new()).unwrap();
        let response = client.send(request, trace).await.unwrap();
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        status
    }

    #[tokio::test]
    async fn the_request_span_parents_its_connection_spans() {
        let rec = Recording::default();
        let _default = rec.install();
        let server = HttpServer::plain("127.0.0.1").await;
        let port = server.addr().port();
        let client = client("web.test", server.addr());
        let url = format!("http://web.test:{port}/x");

        let user = tracing::info_span!("user");
        for _ in 0..2 {
            let status = get(&client, &url, HttpTrace::tracing())
                .instrument(user.clone())
                .await;
            assert_eq!(status, 200);
        }
        drop(user);

        let user = rec.one("user");
        let requests = rec.children(user, "http.request");
        assert_eq!(requests.len(), 2, "{:#?}", rec.spans());
        let spans = rec.spans();
        let (first, second) = match rec.child_indices(user, "http.request")[..] {
            [first, second] => (first, second),
            _ => unreachable!("two requests"),
        };
        let port = port.to_string();
        for (request, reused) in [(&requests[0], "false"), (&requests[1], "true")] {
            assert_eq!(request.field("server.address"), Some("web.test"));
            assert_eq!(request.field("server.port"), Some(&*port));
            assert_eq!(request.field("network.peer.address"), Some("127.0.0.1"));
            assert_eq!(request.field("network.peer.port"), Some(&*port));
            assert_eq!(request.field("http.response.status_code"), Some("200"));
            assert_eq!(request.field("network.protocol.name"), Some("http"));
            assert_eq!(request.field("network.protocol.version"), Some("1.1"));
            assert_eq!(request.field("nettrace.reused"), Some(reused));
            assert_eq!(request.field("nettrace.outcome"), Some("complete"));
            assert_eq!(request.field("otel.kind"), Some("client"));
            assert_eq!(request.field("error.type"), None);
            assert_eq!(
                request.events,
                ["got_conn", "wrote_request", "got_first_response_byte"]
            );
        }
        // The new connection's lookup and attempt hang under the first request.
        let dns = rec.children(first, "dns.lookup");
        assert_eq!(dns.len(), 1);
        assert_eq!(dns[0].field("dns.question.name"), Some("web.test"));
        let attempts = rec.children(first, "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("connected"));
        assert_eq!(attempts[0].field("server.address"), Some("web.test"));
        // The second reused it: no network spans.
        assert!(spans.iter().all(|s| s.parent != Some(second)));
        assert!(rec.children(user, "tcp.connect").is_empty());
        rec.assert_all_closed();
    }

    #[tokio::test]
    async fn a_failed_request_still_closes_its_span() {
        let rec = Recording::default();
        let _default = rec.install();
        let refused = crate::support::net::refused("127.0.0.1");
        let client = client("gone.test", refused);
        let url = format!("http://gone.test:{}/", refused.port());
        let request = Request::get(&url).body(Empty::new()).unwrap();
        let result = client
            .send(request, HttpTrace::tracing())
            .instrument(tracing::info_span!("user"))
            .await;
        assert!(result.is_err());
        // hyper-util lets go of the request (and its trace) once the connect failed.
        drop(client);
        tokio::task::yield_now().await;

        let user = rec.one("user");
        let requests = rec.children(user, "http.request");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].field("nettrace.outcome"), Some("no_response"));
        assert_eq!(requests[0].field("http.response.status_code"), None);
        let request = rec.one("http.request");
        let attempts = rec.children(request, "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("failed"));
        assert_eq!(attempts[0].field("error.type"), Some("connection_refused"));
        rec.assert_all_closed();
    }

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn https_adds_a_handshake_span() {
        use crate::support::http::TestCa;
        use nettrace::TlsConfig;

        let rec = Recording::default();
        let _default = rec.install();
        let ca = TestCa::new();
        let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
        let tls = TlsConfig::builder()
            .webpki_roots(false)
            .add_root_pem(&ca.ca_pem())
            .build()
            .unwrap();
        let dialer = Dialer::builder()
            .resolver(resolving("localhost", &[server.addr().ip()]))
            .build();
        let client = HttpClient::new(Connector::new(dialer).tls(tls));
        let url = format!("https://localhost:{}/tls", server.addr().port());
        let status = get(&client, &url, HttpTrace::tracing()).await;
        assert_eq!(status, 200);

        let request = rec.one("http.request");
        let spans = rec.spans();
        assert_eq!(spans[request].parent, None, "no user span: a root");
        assert_eq!(spans[request].field("network.protocol.version"), Some("2"));
        let handshakes = rec.children(request, "tls.handshake");
        assert_eq!(handshakes.len(), 1, "{spans:#?}");
        let tls = &handshakes[0];
        assert_eq!(tls.field("server.address"), Some("localhost"));
        assert_eq!(
            tls.field("server.port"),
            Some(&*server.addr().port().to_string())
        );
        assert_eq!(tls.field("network.peer.address"), Some("127.0.0.1"));
        assert_eq!(tls.field("tls.protocol.name"), Some("tls"));
        assert_eq!(tls.field("tls.protocol.version"), Some("1.3"));
        assert_eq!(tls.field("tls.next_protocol"), Some("h2"));
        assert_eq!(tls.field("tls.established"), Some("true"));
        assert_eq!(tls.field("nettrace.outcome"), Some("established"));
        assert!(tls
            .field("tls.cipher")
            .is_some_and(|c| c.starts_with("TLS13_")));
        assert_eq!(rec.children(request, "tcp.connect").len(), 1);
        rec.assert_all_closed();
    }
}
