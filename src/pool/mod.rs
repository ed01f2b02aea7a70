//! The [`HttpClient`](crate::HttpClient)'s connection pool: it knows which request caused
//! which dial, so each request's trace tells that request's story.
//!
//! [`checkout`] decides (no I/O, no clock); this module holds the connections, runs the
//! dials in tasks of their own (a dial outlives a request that stopped waiting for it),
//! and hands connections to the requests the decisions name. See docs/ARCHITECTURE.md.

mod checkout;
mod detach;
mod error;
mod record;
mod request;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use http::uri::{Authority, Scheme};
use http::Uri;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::checkout::{Checkout, Checkouts, ConnId, Handoff, Limits};
pub(crate) use self::detach::Detach;
pub use self::error::{HttpError, HttpErrorKind};
pub(crate) use self::record::{DialTimeline, RecordedOutcome};
pub use self::request::RequestId;
use crate::connector::{ConnectionInfo, Connector, ConnectorStream};
use crate::trace::{ConnectOutcome, NetTrace, Panics, SetupReport};

/// The origin a connection serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    scheme: Scheme,
    authority: Authority,
}

impl Key {
    pub(crate) fn of(uri: &Uri) -> Result<Key, HttpError> {
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| HttpError::invalid_uri("the URI has no scheme"))?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| HttpError::invalid_uri("the URI has no host"))?;
        Ok(Key { scheme, authority })
    }

    /// The host, without an IPv6 address's brackets.
    fn host(&self) -> &str {
        let host = self.authority.host();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port, the scheme's default when the URI has none.
    fn port(&self) -> u16 {
        self.authority
            .port_u16()
            .unwrap_or(scheme_port(Some(&self.scheme)))
    }
}

/// The scheme's default port: 443 for `https`, else 80.
fn scheme_port(scheme: Option<&Scheme>) -> u16 {
    if scheme == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    }
}

/// The default port of `uri`'s scheme.
pub(crate) fn default_port(uri: &Uri) -> u16 {
    scheme_port(uri.scheme())
}

/// `uri`'s port, the scheme's default when it has none.
pub(crate) fn port_of(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or_else(|| default_port(uri))
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Records `http.client.open_connections` and `http.client.connection.duration`.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<crate::metrics::PoolMetrics>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_idle_per_host: usize,
    pub(crate) http2_only: bool,
    pub(crate) http1_title_case_headers: bool,
    pub(crate) http1_preserve_header_case: bool,
    /// Set TCP_NODELAY on each new connection before the HTTP handshake.
    pub(crate) nodelay: bool,
}

impl Default for Config {
    fn default() -> Self {
        // hyper-util's legacy `Client` defaults.
        Config {
            #[cfg(feature = "metrics")]
            metrics: None,
            idle_timeout: Some(Duration::from_secs(90)),
            max_idle_per_host: usize::MAX,
            http2_only: false,
            http1_title_case_headers: false,
            http1_preserve_header_case: false,
            nodelay: true,
        }
    }
}

/// How a request's dials report: to its trace through a switch, recording the timeline
/// its [`Timings`](crate::Timings) read.
#[derive(Clone)]
pub(crate) struct DialReport {
    /// The request's network trace (the client's, the scope's and its own, composed).
    pub(crate) net: NetTrace,
    /// The switches of the dials started for it, closed when it ends.
    pub(crate) gates: Arc<Mutex<Gates>>,
    /// Whether to record timelines (the request has an HTTP trace).
    pub(crate) record: bool,
    /// A hook's panic in one of its dials, for the request to continue.
    pub(crate) panic: Arc<Mutex<Option<crate::trace::Panic>>>,
}

impl DialReport {
    /// The first panic of a hook in one of this request's dials, if any.
    pub(crate) fn take_panic(&self) -> Option<crate::trace::Panic> {
        self.panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The request ended: each of its dials still going is detached from its trace, and
    /// a dial started for it later reports nothing to it.
    pub(crate) fn end(&self, panics: &mut Panics) {
        let gates = {
            let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
            gates.ended = true;
            std::mem::take(&mut gates.list)
        };
        for gate in gates {
            gate.detach(panics);
        }
    }

    /// A switch for a new dial of this request; `None` once the request has ended (a
    /// request that joined an HTTP/2 dial is given a dial of its own from another task,
    /// which may come just after it ended).
    fn gate(&self) -> Option<Detach> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if gates.ended {
            return None;
        }
        let gate = Detach::new(self.net.clone());
        gates.list.push(gate.clone());
        Some(gate)
    }
}

/// The switches of one request's dials.
#[derive(Default)]
pub(crate) struct Gates {
    list: Vec<Detach>,
    /// The request has ended.
    ended: bool,
}

/// A connection given to a request. Dropping it gives an HTTP/1.1 connection back to the
/// pool.
pub(crate) struct Lease<B: 'static> {
    pub(crate) meta: Arc<Meta>,
    pub(crate) handoff: Handoff,
    pub(crate) sender: Option<Sender<B>>,
    pool: Weak<Inner<B>>,
}

pub(crate) enum Sender<B> {
    H1(http1::SendRequest<B>),
    H2(http2::SendRequest<B>),
}

/// What the pool knows of one connection.
#[derive(Debug)]
pub(crate) struct Meta {
    id: ConnId,
    key: Key,
    pub(crate) info: ConnectionInfo,
    /// The dial's timeline, when that request was traced.
    pub(crate) timeline: Option<DialTimeline>,
}

struct Slot<B> {
    meta: Arc<Meta>,
    h1: Option<http1::SendRequest<B>>,
    h2: Option<http2::SendRequest<B>>,
    /// Counted open (active or idle) until the slot drops.
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::ConnectionMetrics>,
}

impl<B> Slot<B> {
    /// Active while some request uses it, idle otherwise.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn set_active(&mut self, active: bool) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &mut self.metrics {
            use crate::metrics::ConnState;
            metrics.set_state(if active {
                ConnState::Active
            } else {
                ConnState::Idle
            });
        }
    }
}

type Reply<B> = oneshot::Sender<Result<Lease<B>, Refused>>;

/// Why a waiting request got no connection.
enum Refused {
    /// The dial it waited on failed.
    Failed(HttpError),
    /// The connection handed to it closed first: it asks again.
    Closed,
}

struct Waiting<B: 'static> {
    reply: Reply<B>,
    uri: Uri,
    report: Option<DialReport>,
}

struct State<B: 'static> {
    checkouts: Checkouts<Key, RequestId>,
    slots: HashMap<ConnId, Slot<B>>,
    waiting: HashMap<RequestId, Waiting<B>>,
    reaper: bool,
}

struct Inner<B: 'static> {
    connector: Connector,
    config: Config,
    state: Mutex<State<B>>,
}

/// The pool; cloning is cheap and shares it.
pub(crate) struct Pool<B: 'static> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Pool<B> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

/// A request's place in the queue; leaving it (drop) takes it out, and gives back a
/// connection handed to it meanwhile.
struct Queued<B: 'static> {
    pool: Arc<Inner<B>>,
    key: Key,
    request: RequestId,
    reply: Option<oneshot::Receiver<Result<Lease<B>, Refused>>>,
}

impl<B: 'static> Drop for Queued<B> {
    fn drop(&mut self) {
        // Answered: the pool took it out of the queue when it replied.
        let Some(mut reply) = self.reply.take() else {
            return;
        };
        let mut state = self.pool.lock();
        state.checkouts.leave(&self.key, self.request);
        state.waiting.remove(&self.request);
        drop(state);
        reply.close();
        // A connection handed over after the last poll goes back (its drop).
        drop(reply.try_recv());
    }
}

impl<B> Pool<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub(crate) fn new(connector: Connector, config: Config) -> Pool<B> {
        let limits = Limits {
            idle_timeout: config.idle_timeout,
            max_idle_per_host: config.max_idle_per_host,
        };
        Pool {
            inner: Arc::new(Inner {
                connector,
                config,
                state: Mutex::new(State {
                    checkouts: Checkouts::new(limits),
                    slots: HashMap::new(),
                    waiting: HashMap::new(),
                    reaper: false,
                }),
            }),
        }
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.inner.connector
    }

    /// Gets a connection to `uri`'s origin for `request`: an idle one, the shared HTTP/2
    /// one, or the first that is ready of its own new dial and any another request frees.
    /// `waiting` is called (outside any lock) when none is ready now, with whether the
    /// request dials. `fresh` skips idle and shared connections (a retry).
    pub(crate) async fn checkout(
        &self,
        uri: &Uri,
        key: Key,
        request: RequestId,
        report: Option<&DialReport>,
        fresh: bool,
        waiting: impl FnOnce(bool),
    ) -> Result<Lease<B>, HttpError> {
        let mut waiting = Some(waiting);
        // A connection closing between its making and its handoff is a race; one that
        // keeps happening is a server that hangs up at once.
        let mut closed = 0;
        loop {
            if closed == 3 {
                return Err(HttpError::closed_before_use());
            }
            let queued = self.queue(uri, &key, request, report, fresh, &mut waiting);
            let mut queued = match queued {
                Ok(lease) => return Ok(lease),
                Err(queued) => queued,
            };
            let reply = queued
                .reply
                .as_mut()
                .expect("a queued request has its channel");
            let result = match reply.await {
                Ok(answer) => {
                    queued.reply = None;
                    answer
                }
                // The pool let go of the channel without an answer: ask again (the
                // queue's drop takes the request out first).
                Err(_) => Err(Refused::Closed),
            };
            match result {
                Ok(lease) => return Ok(lease),
                Err(Refused::Failed(err)) => return Err(err),
                Err(Refused::Closed) => closed += 1,
            }
        }
    }

    /// Takes a connection ready now, or queues the request (starting its dial if the
    /// decision says so); `waiting` is called, once, the first time it queues.
    fn queue(
        &self,
        uri: &Uri,
        key: &Key,
        request: RequestId,
        report: Option<&DialReport>,
        fresh: bool,
        waiting: &mut Option<impl FnOnce(bool)>,
    ) -> Result<Lease<B>, Queued<B>> {
        // Requests share a dial that may end in HTTP/2 instead of each dialing.
        let shared = self.inner.config.http2_only || self.inner.connector.may_negotiate_h2(uri);
        let (reply, dial) = {
            let mut state = self.inner.lock();
            let now = Instant::now();
            state.expire(now);
            loop {
                let decision = if fresh {
                    state.checkouts.dial_for(key, request, shared)
                } else {
                    state.checkouts.checkout(key, request, shared, now)
                };
                match decision {
                    Checkout::Use(handoff) => {
                        if let Some(lease) = state.lease(&self.inner, handoff) {
                            return Ok(lease);
                        }
                        // It closed meanwhile: never handed out; ask again.
                    }
                    Checkout::Wait { dial } => {
                        let (tx, rx) = oneshot::channel();
                        state.waiting.insert(
                            request,
                            Waiting {
                                reply: tx,
                                uri: uri.clone(),
                                report: report.cloned(),
                            },
                        );
                        break (rx, dial);
                    }
                }
            }
        };
        let queued = Queued {
            pool: self.inner.clone(),
            key: key.clone(),
            request,
            reply: Some(reply),
        };
        // Before the dial starts, so the wait comes before the dial's first event; a
        // hook that panics still lets the dial start (others may wait on it).
        let waited = waiting
            .take()
            .map(|hook| std::panic::catch_unwind(AssertUnwindSafe(|| hook(dial.is_some()))));
        if let Some(id) = dial {
            Inner::spawn_dial(&self.inner, key.clone(), id, uri.clone(), report.cloned());
        }
        if let Some(Err(panic)) = waited {
            std::panic::resume_unwind(panic);
        }
        Err(queued)
    }
}

impl<B: 'static> Inner<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B: 'static> State<B> {
    /// Makes the lease for a handoff, or forgets a connection that has closed.
    fn lease(&mut self, inner: &Arc<Inner<B>>, handoff: Handoff) -> Option<Lease<B>> {
        let slot = self.slots.get_mut(&handoff.conn)?;
        let sender = match (&slot.h2, slot.h1.take()) {
            (Some(h2), _) if !h2.is_closed() => Some(Sender::H2(h2.clone())),
            (None, Some(h1)) if !h1.is_closed() => Some(Sender::H1(h1)),
            _ => None,
        };
        let Some(sender) = sender else {
            let key = slot.meta.key.clone();
            self.slots.remove(&handoff.conn);
            self.checkouts.closed(&key, handoff.conn);
            return None;
        };
        slot.set_active(true);
        Some(Lease {
            meta: slot.meta.clone(),
            handoff,
            sender: Some(sender),
            pool: Arc::downgrade(inner),
        })
    }

    fn expire(&mut self, now: Instant) {
        for id in self.checkouts.expire(now) {
            self.slots.remove(&id);
        }
    }

    /// Hands `handoff` to the waiting `request`; if it is gone, the connection goes back.
    fn deliver(&mut self, inner: &Arc<Inner<B>>, request: RequestId, handoff: Handoff) {
        let Some(lease) = self.lease(inner, handoff) else {
            // The connection closed before it could be handed over: the request asks
            // again (its place in the queue is gone with the handoff).
            if let Some(waiting) = self.waiting.remove(&request) {
                let _ = waiting.reply.send(Err(Refused::Closed));
            }
            return;
        };
        let unclaimed = match self.waiting.remove(&request) {
            Some(waiting) => waiting.reply.send(Ok(lease)).err().and_then(Result::ok),
            None => Some(lease),
        };
        // The request is gone: the connection goes back (taken out of the lease first,
        // so the lease's drop does not take the pool's lock again).
        if let Some(mut lease) = unclaimed {
            let sender = lease.sender.take();
            self.give_back(inner, &lease.meta, sender);
        }
    }

    /// An HTTP/1.1 connection is free again: to the next waiting request or the idle list.
    fn give_back(&mut self, inner: &Arc<Inner<B>>, meta: &Meta, sender: Option<Sender<B>>) {
        let (id, key) = (meta.id, &meta.key);
        match sender {
            Some(Sender::H1(h1)) if !h1.is_closed() => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.h1 = Some(h1);
                }
            }
            Some(Sender::H2(_)) => {
                self.checkouts.release(key, id, Instant::now());
                self.mark_if_unused(id);
                return;
            }
            _ => {
                self.slots.remove(&id);
                self.checkouts.closed(key, id);
                return;
            }
        }
        let (handoff, evicted) = self.checkouts.release(key, id, Instant::now());
        for id in evicted {
            self.slots.remove(&id);
        }
        match handoff {
            Some((request, handoff)) => self.deliver(inner, request, handoff),
            None => self.mark_if_unused(id),
        }
    }

    /// Marks `id` idle when no request uses it.
    fn mark_if_unused(&mut self, id: ConnId) {
        if self.checkouts.in_use(id) == Some(0) {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.set_active(false);
            }
        }
    }
}

impl<B: 'static> Lease<B> {
    /// The connection turned out closed: the pool forgets it.
    pub(crate) fn discard(mut self) {
        self.sender = None;
        if let Some(pool) = self.pool.upgrade() {
            let mut state = pool.lock();
            state.slots.remove(&self.meta.id);
            state.checkouts.closed(&self.meta.key, self.meta.id);
        }
    }
}

impl<B: 'static> Drop for Lease<B> {
    fn drop(&mut self) {
        if self.sender.is_none() {
            return;
        }
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let sender = self.sender.take();
        pool.lock().give_back(&pool, &self.meta, sender);
    }
}

impl<B> Inner<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Starts dial `id` in a task of its own: it goes on for the pool if
    /// the request stops waiting.
    fn spawn_dial(
        inner: &Arc<Inner<B>>,
        key: Key,
        id: ConnId,
        uri: Uri,
        report: Option<DialReport>,
    ) {
        let pool = inner.clone();
        // A request that has ended hears nothing of it.
        let gated = report.and_then(|r| Some((r.gate()?, r)));
        let (trace, timeline) = match &gated {
            Some((gate, report)) => {
                let timeline = report
                    .record
                    .then(|| Arc::new(Mutex::new(DialTimeline::default())));
                let trace = match &timeline {
                    Some(t) => DialTimeline::recorder(t).compose(&gate.trace()),
                    None => gate.trace(),
                };
                (trace, timeline)
            }
            None => (NetTrace::new(), None),
        };
        let panic_slot = gated.map(|(_, r)| r.panic);
        let dial = async move {
            // A hook that panics ends this dial (the panic goes on in the request's task),
            // never the pool's bookkeeping: the requests waiting on it get an error.
            let made = match AssertUnwindSafe(pool.make(&uri, &key)).catch_unwind().await {
                Ok(made) => made,
                Err(panic) => {
                    if let Some(slot) = &panic_slot {
                        slot.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(panic);
                    }
                    Err(HttpError::hook_panicked())
                }
            };
            let timeline = timeline
                .map(|t| std::mem::take(&mut *t.lock().unwrap_or_else(PoisonError::into_inner)));
            pool.dialed(key, id, made, timeline);
        };
        tokio::spawn(crate::scope::with_trace(trace, dial));
    }

    /// Connects (dial, TLS) and runs the HTTP handshake, between the connection-setup
    /// events.
    async fn make(self: &Arc<Self>, uri: &Uri, key: &Key) -> Result<Made<B>, HttpError> {
        let connect = self.connector.connect(uri.clone());
        let (dial, connect) = match connect {
            Ok(pair) => pair,
            Err(err) => return Err(HttpError::connect(Arc::new(err))),
        };
        let mut setup = crate::scope::current()
            .map(|trace| SetupReport::start(trace, dial, Some(key.host()), Some(key.port())));
        let made = match connect.await {
            Ok(stream) => self.handshake(stream).await,
            Err(err) => Err(HttpError::connect(Arc::new(err))),
        };
        let io_err;
        let outcome = match &made {
            Ok(_) => ConnectOutcome::Connected,
            Err(err) => {
                io_err = std::io::Error::other(err.to_string());
                ConnectOutcome::Failed(&io_err)
            }
        };
        let peer = made.as_ref().ok().map(|m| m.info.remote_addr());
        if let Some(setup) = &mut setup {
            if let Err(panic) = setup.done(peer, outcome) {
                std::panic::resume_unwind(panic);
            }
        }
        made
    }

    async fn handshake(&self, stream: ConnectorStream) -> Result<Made<B>, HttpError> {
        if self.config.nodelay {
            // Without it, a small write (an HTTP/2 SETTINGS ack) can hold the next one
            // (the request's HEADERS) for the peer's delayed ACK, ~40 ms on Linux.
            let _ = stream.tcp().set_nodelay(true);
        }
        let info = stream.info().clone();
        let h2 = self.config.http2_only || info.alpn() == Some(b"h2");
        if h2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .handshake(stream)
                .await
                .map_err(|e| HttpError::handshake(Arc::new(e)))?;
            return Ok(Made {
                info,
                sender: Sender::H2(sender),
                driver: Box::pin(async move {
                    let _ = conn.await;
                }),
            });
        }
        let mut builder = http1::Builder::new();
        builder
            .title_case_headers(self.config.http1_title_case_headers)
            .preserve_header_case(self.config.http1_preserve_header_case);
        let (sender, conn) = builder
            .handshake(stream)
            .await
            .map_err(|e| HttpError::handshake(Arc::new(e)))?;
        Ok(Made {
            info,
            sender: Sender::H1(sender),
            driver: Box::pin(async move {
                let _ = conn.await;
            }),
        })
    }

    /// A dial ended: the new connection (or the error) goes where the decisions say.
    fn dialed(
        self: &Arc<Self>,
        key: Key,
        id: ConnId,
        made: Result<Made<B>, HttpError>,
        timeline: Option<DialTimeline>,
    ) {
        let now = Instant::now();
        let mut state = self.lock();
        let made = match made {
            Ok(made) => made,
            Err(err) => {
                let out = state.checkouts.dialed(&key, id, Err(()), now);
                for request in out.failed {
                    if let Some(waiting) = state.waiting.remove(&request) {
                        let _ = waiting.reply.send(Err(Refused::Failed(err.clone())));
                    }
                }
                return;
            }
        };
        let h2 = matches!(made.sender, Sender::H2(_));
        let meta = Arc::new(Meta {
            id,
            key: key.clone(),
            info: made.info,
            timeline,
        });
        let (h1, h2_sender) = match made.sender {
            Sender::H1(s) => (Some(s), None),
            Sender::H2(s) => (None, Some(s)),
        };
        #[cfg(feature = "metrics")]
        let metrics = self.config.metrics.as_ref().map(|m| {
            let idle = crate::metrics::ConnState::Idle;
            m.opened(key.scheme.as_str(), key.host(), key.port(), idle)
        });
        state.slots.insert(
            id,
            Slot {
                meta,
                h1,
                h2: h2_sender,
                #[cfg(feature = "metrics")]
                metrics,
            },
        );
        // The connection's own task: when it ends (the peer closed, an error), the pool
        // forgets the connection at once.
        let weak = Arc::downgrade(self);
        let driver = made.driver;
        let closed_key = key.clone();
        tokio::spawn(async move {
            driver.await;
            if let Some(pool) = weak.upgrade() {
                let mut state = pool.lock();
                state.slots.remove(&id);
                state.checkouts.closed(&closed_key, id);
            }
        });
        let out = state.checkouts.dialed(&key, id, Ok(h2), now);
        for id in out.evicted {
            state.slots.remove(&id);
        }
        for (request, handoff) in out.handoffs {
            state.deliver(self, request, handoff);
        }
        state.mark_if_unused(id);
        let redials: Vec<_> = out
            .dials
            .into_iter()
            .filter_map(|(request, id)| {
                let waiting = state.waiting.get(&request)?;
                Some((id, waiting.uri.clone(), waiting.report.clone()))
            })
            .collect();
        self.start_reaper(&mut state);
        drop(state);
        for (id, uri, report) in redials {
            Inner::spawn_dial(self, key.clone(), id, uri, report);
        }
    }

    /// Closes idle connections past the idle timeout even when no request comes.
    fn start_reaper(self: &Arc<Self>, state: &mut State<B>) {
        let Some(timeout) = self.config.idle_timeout else {
            return;
        };
        if std::mem::replace(&mut state.reaper, true) {
            return;
        }
        let weak = Arc::downgrade(self);
        let period = (timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else {
                    return;
                };
                pool.lock().expire(Instant::now());
            }
        });
    }
}

/// A connection made and shaken hands with.
struct Made<B: 'static> {
    info: ConnectionInfo,
    sender: Sender<B>,
    driver: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
