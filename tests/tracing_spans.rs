//! `NetTrace::tracing()` (and `HttpTrace::tracing()`): the span tree a dial makes, seen by
//! a recording `tracing` layer and by the OpenTelemetry SDK's in-memory exporter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;
use nettrace::{Dialer, Family, NetTrace, StaticResolver};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::dns::slow_v4_name;
use crate::support::net::{fallback_pair, BlackHole, Live};
use crate::support::record::{Event as Truth, Outcome, Recorder};

/// One span as the recording layer saw it.
#[derive(Debug, Clone)]
struct Rec {
    name: &'static str,
    /// Index of the parent in the recording.
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
    /// The messages of the events recorded in this span, in order.
    events: Vec<String>,
    /// The other fields of those events, in the same order.
    event_fields: Vec<BTreeMap<String, String>>,
    closed: bool,
    /// The order in which the spans closed: 0 for the first to close.
    close_order: Option<usize>,
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
    closes: usize,
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
            event_fields: Vec::new(),
            closed: false,
            close_order: None,
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
        rec.spans[index].event_fields.push(fields);
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut rec = self.0.lock().unwrap();
        if let Some(index) = rec.live.remove(&id.into_u64()) {
            rec.spans[index].closed = true;
            rec.spans[index].close_order = Some(rec.closes);
            rec.closes += 1;
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
    assert_eq!(dns[0].field("dns.answers"), Some("::1,127.0.0.1"));
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
    let dialer = Dialer::builder()
        .resolver(crate::support::dns::Never)
        .build();
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
    let server = slow_v4_name("shared.test", Duration::from_millis(50)).await;
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

/// `ConnectionRefused` -> `connection_refused`, as the spans name error kinds.
fn snake(kind: &dyn std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn joined(addrs: &[IpAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    addrs.join(",")
}

/// A lookup as the spans should tell it: name, outcome, and each family's answer
/// (family, addresses, error type) in the order they came.
type LookupStory = (String, String, Vec<(String, String, Option<String>)>);

/// An attempt as the spans should tell it: peer address, outcome, error type.
type AttemptStory = (String, String, Option<String>);

/// Checks the network spans under `parent` against the events `truth` recorded, dial by
/// dial: one `dns.lookup` per lookup, with each family's answer as a `dns.answer` event,
/// and one `tcp.connect` per attempt, each with its own dial's address and outcome; the
/// attempt spans closed in the order their done events fired; every span closed.
fn assert_pairs_with(rec: &Recording, truth: &Recorder, parent: usize) {
    let mut want_lookups: BTreeMap<u64, LookupStory> = BTreeMap::new();
    let mut want_attempts: BTreeMap<(u64, usize), AttemptStory> = BTreeMap::new();
    let mut done_order = Vec::new();
    for (dial, event) in truth.with_ids() {
        let dial = dial.as_u64();
        match event {
            Truth::DnsStart(host) => {
                let fresh = (host, "none".to_owned(), Vec::new());
                assert!(want_lookups.insert(dial, fresh).is_none(), "two lookups");
            }
            Truth::DnsAnswer {
                family,
                addrs,
                error,
                ..
            } => {
                let family = match family {
                    Family::Ipv6 => "ipv6",
                    _ => "ipv4",
                };
                let answer = (family.to_owned(), joined(&addrs), error.map(|k| snake(&k)));
                want_lookups.get_mut(&dial).unwrap().2.push(answer);
            }
            Truth::DnsDone { error, .. } => {
                let outcome = match error {
                    None => "resolved",
                    Some(nettrace::ResolveErrorKind::Cancelled) => "cancelled",
                    Some(_) => "failed",
                };
                want_lookups.get_mut(&dial).unwrap().1 = outcome.to_owned();
            }
            Truth::ConnectStart(addr, attempt) => {
                let fresh = (addr.ip().to_string(), "none".to_owned(), None);
                let again = want_attempts.insert((dial, attempt), fresh);
                assert!(again.is_none(), "attempt {attempt} of dial {dial} twice");
            }
            Truth::ConnectDone(_, attempt, outcome) => {
                let story = want_attempts.get_mut(&(dial, attempt)).unwrap();
                (story.1, story.2) = match outcome {
                    Outcome::Connected => ("connected".to_owned(), None),
                    Outcome::Failed(kind) => ("failed".to_owned(), Some(snake(&kind))),
                    Outcome::Cancelled => ("cancelled".to_owned(), None),
                };
                done_order.push((dial, attempt));
            }
        }
    }
    assert_eq!(
        done_order.len(),
        want_attempts.len(),
        "a ConnectStart without its done"
    );

    let number = |span: &Rec, field: &str| -> u64 {
        let value = span.field(field);
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} = {value:?} in {span:#?}"))
    };
    let text = |span: &Rec, field: &str| span.field(field).unwrap_or("none").to_owned();
    let mut got_lookups = BTreeMap::new();
    for span in rec.children(parent, "dns.lookup") {
        let answers = span
            .events
            .iter()
            .zip(&span.event_fields)
            .map(|(message, fields)| {
                assert_eq!(message, "dns.answer");
                let field = |name: &str| fields.get(name).cloned();
                (
                    field("nettrace.dns.family").unwrap(),
                    field("dns.answers").unwrap(),
                    field("error.type"),
                )
            })
            .collect();
        let story = (
            text(&span, "dns.question.name"),
            text(&span, "nettrace.outcome"),
            answers,
        );
        let again = got_lookups.insert(number(&span, "nettrace.dial_id"), story);
        assert!(again.is_none(), "two lookup spans for one dial");
    }
    assert_eq!(got_lookups, want_lookups);

    let mut connects = rec.children(parent, "tcp.connect");
    let mut got_attempts = BTreeMap::new();
    for span in &connects {
        let key = (
            number(span, "nettrace.dial_id"),
            number(span, "nettrace.attempt") as usize,
        );
        let story = (
            text(span, "network.peer.address"),
            text(span, "nettrace.outcome"),
            span.field("error.type").map(str::to_owned),
        );
        let host = &want_lookups[&key.0].0;
        assert_eq!(span.field("server.address"), Some(host.as_str()));
        assert!(
            got_attempts.insert(key, story).is_none(),
            "two spans for {key:?}"
        );
    }
    assert_eq!(got_attempts, want_attempts);
    connects.sort_by_key(|span| span.close_order);
    let close_order: Vec<(u64, usize)> = connects
        .iter()
        .map(|s| {
            let attempt = number(s, "nettrace.attempt") as usize;
            (number(s, "nettrace.dial_id"), attempt)
        })
        .collect();
    assert_eq!(close_order, done_order, "spans closed out of order");
    rec.assert_all_closed();
}

/// A live listener on `127.0.0.1:P` whose port `P` is free on `::1`, so `[::1]:P` refuses.
async fn live_with_refused_v6() -> Live {
    for _ in 0..20 {
        let live = Live::on("127.0.0.1").await;
        if std::net::TcpListener::bind(("::1", live.addr.port())).is_ok() {
            return live;
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

#[tokio::test]
async fn twenty_concurrent_dials_of_one_name_under_one_parent_span_pair_exactly() {
    let rec = Recording::default();
    let _default = rec.install();
    let truth = Recorder::new();
    let live = live_with_refused_v6().await;
    let port = live.addr.port();
    let dialer = Dialer::builder()
        .resolver(resolving("twenty.test", &[ip("::1"), ip("127.0.0.1")]))
        // Only a failure moves a dial on to its next address.
        .attempt_delay(Duration::from_secs(2))
        .build();
    // One trace, one name, one task, one parent span: only the dial ids tell the dials
    // apart.
    let shared = NetTrace::tracing();
    let mut dials: Vec<Option<Pin<Box<_>>>> = (0..20)
        .map(|_| {
            let dial = dialer.dial_host("twenty.test", port);
            Some(Box::pin(nettrace::with_trace(shared.clone(), dial)))
        })
        .collect();
    let work = async move {
        // Dials 0..10 start: their attempt 0 goes to [::1]:P, where nothing listens.
        for dial in dials[..10].iter_mut().flatten() {
            std::future::poll_fn(|cx| {
                let _ = dial.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
        }
        // The odd ones among them are dropped half way.
        for dial in dials[..10].iter_mut().skip(1).step_by(2) {
            *dial = None;
        }
        // Now [::1]:P listens: the attempt 0 of dials 10..20 connects there, to the
        // same address as the attempt 0 of dials 0..10.
        let v6 = Live::on_port("::1", port).await;
        let results = futures_util::future::join_all(dials.into_iter().flatten()).await;
        (results, v6)
    };
    let parent = tracing::info_span!("parent");
    let (results, _v6) = nettrace::with_trace(truth.trace(), work)
        .instrument(parent.clone())
        .await;
    drop(parent);
    assert_eq!(results.len(), 15);
    for result in results {
        result.unwrap();
    }

    let parent = rec.one("parent");
    assert_eq!(rec.children(parent, "dns.lookup").len(), 20);
    assert_eq!(
        rec.spans().len(),
        1 + rec.children(parent, "dns.lookup").len() + rec.children(parent, "tcp.connect").len(),
        "every span under the parent"
    );
    assert_pairs_with(&rec, &truth, parent);

    // The scenario can catch a mix-up: attempts to one address with one index, of dials of
    // one name, ended in different ways.
    let v6 = std::net::SocketAddr::new(ip("::1"), port);
    let mut first_to_v6 = BTreeSet::new();
    let mut all = BTreeSet::new();
    for event in truth.events() {
        if let Truth::ConnectDone(addr, attempt, outcome) = event {
            let name = format!("{outcome:?}");
            if addr == v6 && attempt == 0 {
                first_to_v6.insert(name.clone());
            }
            all.insert(name);
        }
    }
    assert!(first_to_v6.len() >= 2, "{first_to_v6:?}");
    assert!(first_to_v6.contains("Connected"), "{first_to_v6:?}");
    assert_eq!(all.len(), 3, "connected, failed and cancelled: {all:?}");
}

#[tokio::test]
async fn spans_end_with_their_outcome_when_another_hook_panics() {
    let rec = Recording::default();
    let _default = rec.install();
    // 127.0.0.2:P refuses, 127.0.0.1:P accepts.
    let live = Live::on("127.0.0.1").await;
    let port = live.addr.port();
    let dialer = Dialer::builder()
        .resolver(resolving("panic.test", &[ip("127.0.0.2"), ip("127.0.0.1")]))
        .build();
    type Panicky = fn(NetTrace) -> NetTrace;
    let cases: [(&str, Panicky); 5] = [
        ("dns_start", |t| t.on_dns_start(|_| panic!("dns_start"))),
        ("dns_answer", |t| t.on_dns_answer(|_| panic!("dns_answer"))),
        ("dns_done", |t| t.on_dns_done(|_| panic!("dns_done"))),
        ("connect_start", |t| {
            t.on_connect_start(|_| panic!("connect_start"))
        }),
        ("connect_done", |t| {
            t.on_connect_done(|_| panic!("connect_done"))
        }),
    ];
    for (hook, panicky) in cases {
        let truth = Recorder::new();
        // Hooks run innermost first: the panicking one, then the spans, then the truth.
        let dial = dialer.dial_host("panic.test", port);
        let dial = nettrace::with_trace(panicky(NetTrace::new()), dial);
        let dial = nettrace::with_trace(NetTrace::tracing(), dial);
        let dial = nettrace::with_trace(truth.trace(), dial);
        let case = tracing::info_span!("case", hook);
        let result = AssertUnwindSafe(dial.instrument(case.clone()))
            .catch_unwind()
            .await;
        drop(case);
        let panic = result.expect_err("the hook's panic reaches the caller");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&hook));

        let spans = rec.spans();
        let case = (0..spans.len())
            .rfind(|&i| spans[i].name == "case")
            .unwrap();
        assert_eq!(spans[case].field("hook"), Some(hook));
        assert_eq!(rec.children(case, "dns.lookup").len(), 1, "{hook}");
        assert_pairs_with(&rec, &truth, case);
        for span in &spans[case + 1..] {
            assert!(
                span.field("nettrace.outcome").is_some(),
                "{hook}: {span:#?}"
            );
        }
    }
}

mod otel {
    use opentelemetry::trace::{SpanId, Status};
    use opentelemetry::Value;

    use super::*;
    use crate::support::otel::{attr, text as string, Exported};

    #[tokio::test]
    async fn exported_spans_carry_the_conventions_and_the_user_span_as_parent() {
        let exported = Exported::install();

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

        let spans = exported.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "DNS lookup svc.test".to_owned(),
                format!("socket connect 127.0.0.2:{port}"),
                format!("socket connect 127.0.0.1:{port}"),
                "checkout".to_owned(),
            ]
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
        // The first request waited for a connection it set up: the setup's lookup and
        // attempt hang under the setup, by the id of its dial.
        let waits = rec.children(first, "http.wait_for_connection");
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].field("nettrace.outcome"), Some("got_conn"));
        let setup = rec.child_indices(first, "http.connection_setup");
        assert_eq!(setup.len(), 1, "{spans:#?}");
        let setup = setup[0];
        assert_eq!(spans[setup].field("nettrace.outcome"), Some("connected"));
        let dns = rec.children(setup, "dns.lookup");
        assert_eq!(dns.len(), 1);
        assert_eq!(dns[0].field("dns.question.name"), Some("web.test"));
        let attempts = rec.children(setup, "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("connected"));
        assert_eq!(attempts[0].field("server.address"), Some("web.test"));
        let dial = spans[setup].field("nettrace.dial_id");
        assert_eq!(attempts[0].field("nettrace.dial_id"), dial);
        assert_eq!(dns[0].field("nettrace.dial_id"), dial);
        assert!(rec.children(first, "dns.lookup").is_empty());
        // The second reused it: no wait, no network spans.
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
        drop(client);
        tokio::task::yield_now().await;

        let user = rec.one("user");
        let requests = rec.children(user, "http.request");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].field("nettrace.outcome"), Some("failed"));
        assert_eq!(requests[0].field("error.type"), Some("connection_error"));
        assert_eq!(requests[0].field("http.response.status_code"), None);
        let request = rec.one("http.request");
        let setup = rec.child_indices(request, "http.connection_setup");
        assert_eq!(setup.len(), 1);
        let spans = rec.spans();
        assert_eq!(spans[setup[0]].field("nettrace.outcome"), Some("failed"));
        let waits = rec.children(request, "http.wait_for_connection");
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].field("nettrace.outcome"), Some("abandoned"));
        let attempts = rec.children(setup[0], "tcp.connect");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].field("nettrace.outcome"), Some("failed"));
        assert_eq!(attempts[0].field("error.type"), Some("connection_refused"));
        rec.assert_all_closed();
    }

    #[tokio::test]
    async fn a_request_dropped_before_its_response_ends_with_no_response() {
        let rec = Recording::default();
        let _default = rec.install();
        let server = HttpServer::plain("127.0.0.1").await;
        server.set_delay(Duration::from_secs(5));
        let client = client("slow.test", server.addr());
        let url = format!("http://slow.test:{}/", server.addr().port());
        let request = Request::get(&url).body(Empty::new()).unwrap();
        let send = client
            .send(request, HttpTrace::tracing())
            .instrument(tracing::info_span!("user"));
        let dropped = tokio::time::timeout(Duration::from_millis(300), send).await;
        assert!(dropped.is_err(), "the server holds its answer for 5 s");

        let user = rec.one("user");
        let requests = rec.children(user, "http.request");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].field("nettrace.outcome"), Some("no_response"));
        assert_eq!(requests[0].field("error.type"), None);
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
        let setup = rec.child_indices(request, "http.connection_setup");
        assert_eq!(setup.len(), 1, "{spans:#?}");
        let setup = setup[0];
        let handshakes = rec.children(setup, "tls.handshake");
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
        assert_eq!(rec.children(setup, "tcp.connect").len(), 1);
        rec.assert_all_closed();
    }
}
