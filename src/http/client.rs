//! [`HttpClient`]: requests on the crate's own pool, each with its own [`HttpTrace`].

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::trace::{GetConn, GotConn, HttpTrace, RequestId, WaitForConn};
use crate::connector::Connector;
use crate::pool::{default_port, port_of, Config, DialReport, HttpError, Key, Lease, Pool, Sender};
use crate::trace::{Fired, Panic, Panics};

/// An HTTP client whose requests each tell their own story: every request may carry an
/// [`HttpTrace`], and it sees only its own events — the dial it started, the connection
/// it got, none after it ended.
///
/// It runs on a pool of its own (see the [`HttpClientBuilder`] for its settings): a
/// request takes an idle connection, the shared HTTP/2 connection of its origin, or
/// whichever is ready first of its own new dial and a connection another request frees.
/// Requests that may speak HTTP/2 (`https` with ALPN offering `h2`) wait for one
/// connection instead of each dialing one. [`GotConn`] follows Go's rules for `reused`,
/// `was_idle` and `idle_time`.
///
/// Cloning is cheap; clones share the pool. It is a
/// [`tower_service::Service`] of `Request<B>`.
///
/// # Examples
///
/// ```
/// use http_body_util::{BodyExt, Empty};
/// use nettrace::{Connector, Dialer, HttpClient, TimingsRecorder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let addr = listener.local_addr()?;
/// # tokio::spawn(async move {
/// #     let (stream, _) = listener.accept().await.unwrap();
/// #     let service = hyper::service::service_fn(|_req| async {
/// #         Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi"))))
/// #     });
/// #     hyper::server::conn::http1::Builder::new()
/// #         .serve_connection(hyper_util::rt::TokioIo::new(stream), service).await.unwrap();
/// # });
/// let client = HttpClient::new(Connector::new(Dialer::new()));
/// let recorder = TimingsRecorder::new();
/// let request = http::Request::get(format!("http://{addr}/")).body(Empty::<bytes::Bytes>::new())?;
/// let response = client.send(request, recorder.trace()).await?;
/// let body = response.into_body().collect().await?.to_bytes();
///
/// let timings = recorder.timings();
/// assert_eq!(body, "hi");
/// assert!(timings.namelookup.is_none(), "an IP literal needs no lookup");
/// assert!(timings.connect <= timings.starttransfer);
/// assert!(timings.total.is_some());
/// # Ok(())
/// # }
/// ```
pub struct HttpClient<B: 'static> {
    pool: Pool<TracedBody<B>>,
    default: Option<HttpTrace>,
}

impl<B> Clone for HttpClient<B> {
    fn clone(&self) -> Self {
        HttpClient {
            pool: self.pool.clone(),
            default: self.default.clone(),
        }
    }
}

impl<B> fmt::Debug for HttpClient<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// Settings of an [`HttpClient`] and its pool, with hyper-util's `Builder` names and
/// defaults.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http_body_util::Empty;
/// use nettrace::{Connector, Dialer, HttpClient, HttpTrace};
///
/// let client: HttpClient<Empty<bytes::Bytes>> = HttpClient::builder(Connector::new(Dialer::new()))
///     .pool_idle_timeout(Duration::from_secs(30))
///     .pool_max_idle_per_host(8)
///     // Every request is traced with these hooks, and with its own trace if it has one.
///     .trace(HttpTrace::new().on_got_conn(|e| println!("{}: reused={}", e.request, e.reused)))
///     .build();
/// # drop(client);
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct HttpClientBuilder {
    connector: Connector,
    config: Config,
    trace: Option<HttpTrace>,
}

impl HttpClientBuilder {
    /// How long an idle connection stays in the pool; `None` keeps it until the server
    /// closes it. Default 90 seconds.
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.idle_timeout = timeout.into();
        self
    }

    /// At most this many idle connections per origin; the oldest closes first. Default
    /// no limit.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.config.max_idle_per_host = max;
        self
    }

    /// Speak HTTP/2 on every connection, with prior knowledge for `http` (h2c). Requests
    /// to one origin then share one connection.
    pub fn http2_only(mut self, enabled: bool) -> Self {
        self.config.http2_only = enabled;
        self
    }

    /// Write HTTP/1.1 header names in title case (`Content-Length`).
    pub fn http1_title_case_headers(mut self, enabled: bool) -> Self {
        self.config.http1_title_case_headers = enabled;
        self
    }

    /// Keep the case of HTTP/1.1 header names as given.
    pub fn http1_preserve_header_case(mut self, enabled: bool) -> Self {
        self.config.http1_preserve_header_case = enabled;
        self
    }

    /// Records the pool's connection metrics through `meter`, as the OpenTelemetry HTTP
    /// client conventions name them: `http.client.open_connections` (an up-down counter
    /// by `http.connection.state`, `active` or `idle`) and `http.client.connection.duration`
    /// (a histogram of each connection's lifetime, in seconds), with `server.address`,
    /// `server.port` and `url.scheme`. Lookups and connection attempts have their own
    /// metrics: [`NetTrace::metrics`](crate::NetTrace::metrics).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::Empty;
    /// use nettrace::{Connector, Dialer, HttpClient};
    ///
    /// let meter = opentelemetry::global::meter("my-service");
    /// let client: HttpClient<Empty<bytes::Bytes>> =
    ///     HttpClient::builder(Connector::new(Dialer::new())).metrics(&meter).build();
    /// # drop(client);
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.config.metrics = Some(crate::metrics::PoolMetrics::new(meter));
        self
    }

    /// Sets TCP_NODELAY on every connection the client makes (Nagle's algorithm off), as
    /// Go's `net/http`, curl and reqwest do; default on. Off keeps what the
    /// [`Dialer`](crate::Dialer) set ([`DialerBuilder::nodelay`](crate::DialerBuilder::nodelay)).
    pub fn nodelay(mut self, enabled: bool) -> Self {
        self.config.nodelay = enabled;
        self
    }

    /// Traces every request with `trace` (a client-wide default); a request's own trace
    /// ([`HttpClient::send`]) runs after it.
    pub fn trace(mut self, trace: HttpTrace) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Returns the client.
    pub fn build<B>(self) -> HttpClient<B>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        HttpClient {
            pool: Pool::new(self.connector, self.config),
            default: self.trace,
        }
    }
}

impl HttpClient<()> {
    /// Returns a builder for a client with other settings than [`HttpClient::new`]'s.
    pub fn builder(connector: Connector) -> HttpClientBuilder {
        HttpClientBuilder {
            connector,
            config: Config::default(),
            trace: None,
        }
    }
}

impl<B> HttpClient<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Returns a client with the default pool settings, speaking HTTP/1.1 and (when TLS
    /// negotiates it) HTTP/2.
    pub fn new(connector: Connector) -> HttpClient<B> {
        HttpClient::builder(connector).build()
    }

    /// Returns the connector.
    pub fn connector(&self) -> &Connector {
        self.pool.connector()
    }

    /// Sends `request`, reporting it to `trace` (after the client-wide trace, if any), and
    /// its connection's network events to `trace`'s [`NetTrace`](crate::NetTrace)
    /// composed with the one in scope.
    ///
    /// # Errors
    ///
    /// [`HttpError`]: a bad URI, the connection could not be made, or sending or
    /// receiving the head failed.
    pub fn send(&self, request: Request<B>, trace: HttpTrace) -> ResponseFuture {
        let trace = match &self.default {
            Some(default) => default.clone().and(trace),
            None => trace,
        };
        self.start(request, Some(trace))
    }

    /// Sends `request` with the client-wide trace only (the network events also reach the
    /// [`NetTrace`](crate::NetTrace) in scope).
    ///
    /// # Errors
    ///
    /// As [`send`](HttpClient::send).
    pub fn request(&self, request: Request<B>) -> ResponseFuture {
        self.start(request, self.default.clone())
    }

    fn start(&self, request: Request<B>, trace: Option<HttpTrace>) -> ResponseFuture {
        ResponseFuture {
            inner: Box::pin(run(self.pool.clone(), request, trace)),
        }
    }
}

/// The request's context. The trace in scope is read here, at the first poll, in the
/// request's task; the dial runs in a task of its own and gets it from here.
fn context(trace: Option<HttpTrace>) -> Arc<Ctx> {
    let scope = crate::scope::current();
    let net = match (&trace, scope) {
        // The request's hooks first, then the scope's, as nested scopes compose.
        (Some(t), Some(s)) => Some(t.net.compose(&s)),
        (Some(t), None) => (!t.net.is_empty()).then(|| t.net.clone()),
        (None, s) => s,
    };
    let report = match (&trace, net) {
        (None, None) => None,
        (t, net) => Some(DialReport {
            net: net.unwrap_or_default(),
            gates: Arc::default(),
            record: t.is_some(),
            panic: Arc::default(),
        }),
    };
    Arc::new(Ctx {
        id: RequestId::next(),
        trace,
        report,
        state: Mutex::default(),
    })
}

impl<B> tower_service::Service<Request<B>> for HttpClient<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = HttpError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), HttpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        self.request(request)
    }
}

/// One request's trace and what it has fired, shared by its future, its request body
/// (polled by the connection's task) and its response body.
struct Ctx {
    id: RequestId,
    trace: Option<HttpTrace>,
    report: Option<DialReport>,
    state: Mutex<CtxState>,
}

#[derive(Default)]
struct CtxState {
    waited: bool,
    wrote: bool,
    ended: bool,
    /// The request failed: its `error.type`, for the end.
    error: Option<&'static str>,
    /// A `wrote_request` hook's panic in hyper's connection task, for the request's task
    /// to continue (a panic there would end the connection instead).
    panic: Option<Panic>,
}

/// Continues a hook's panic, after every hook of the event has run (and any lock is let go).
fn resume(fired: Fired) {
    if let Err(panic) = fired {
        std::panic::resume_unwind(panic);
    }
}

impl Ctx {
    /// Hooks fire under this lock: one request's hooks run one at a time, in order, and
    /// none after it ended.
    fn lock(&self) -> MutexGuard<'_, CtxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_for_conn(&self, host_port: &str, dialing: bool) {
        let mut state = self.lock();
        state.waited = true;
        let Some(trace) = &self.trace else {
            return;
        };
        let fired = trace.wait_for_conn(&WaitForConn {
            request: self.id,
            host_port,
            dialing,
        });
        drop(state);
        resume(fired);
    }

    fn got_conn<B>(&self, lease: &Lease<B>) {
        let Some(trace) = &self.trace else {
            return;
        };
        let mut state = self.lock();
        state.wrote = false;
        let handoff = lease.handoff;
        let own = handoff.own;
        let fired = trace.got_conn(&GotConn {
            request: self.id,
            reused: handoff.reused,
            was_idle: handoff.idle_for.is_some(),
            idle_time: handoff.idle_for,
            remote_addr: lease.meta.info.remote_addr(),
            local_addr: lease.meta.info.local_addr(),
            info: lease.meta.info.clone(),
            dial: if own {
                lease.meta.timeline.clone()
            } else {
                None
            },
            queued: state.waited && !own,
        });
        drop(state);
        resume(fired);
    }

    /// The body has been taken in full; called from hyper's connection task, so a hook's
    /// panic is kept for the request's task ([`Ctx::resume_kept`]).
    fn wrote(&self) {
        let mut state = self.lock();
        if let Err(panic) = self.wrote_locked(&mut state) {
            state.panic.get_or_insert(panic);
        }
    }

    fn wrote_locked(&self, state: &mut CtxState) -> Fired {
        match (&self.trace, state.wrote, state.ended) {
            (Some(trace), false, false) => {
                state.wrote = true;
                trace.wrote_request(self.id)
            }
            _ => Ok(()),
        }
    }

    /// Continues a panic a `wrote_request` hook raised in the connection's task.
    fn resume_kept(&self) {
        let kept = self.lock().panic.take();
        if let Some(panic) = kept {
            std::panic::resume_unwind(panic);
        }
    }

    /// The response head arrived: the request was written, if the body has not said so
    /// yet (hyper may not look at an empty body before it writes the head).
    fn responded(&self, status: http::StatusCode, version: http::Version) {
        let Some(trace) = &self.trace else {
            return;
        };
        let mut state = self.lock();
        let mut panics = Panics::default();
        panics.keep(self.wrote_locked(&mut state));
        panics.keep(trace.first_byte(self.id, status, version));
        drop(state);
        panics.resume();
    }

    /// The request ended: `complete` when its body was read to the end or given up on
    /// (`None`: no response). Its dials still going are detached.
    fn end(&self, complete: Option<bool>) {
        let mut state = self.lock();
        if std::mem::replace(&mut state.ended, true) {
            return;
        }
        let mut panics = Panics::default();
        if let Some(report) = &self.report {
            report.end(&mut panics);
        }
        if let Some(trace) = &self.trace {
            match (complete, state.error) {
                (Some(complete), _) => panics.keep(trace.finished(complete, None)),
                (None, Some(error)) => panics.keep(trace.finished(false, Some(error))),
                // Dropped before a response: no end to tell.
                (None, None) => {}
            }
        }
        drop(state);
        panics.resume();
    }

    /// The request fails with `err`: its end (when the future returns) says so.
    fn failed(&self, err: HttpError) -> HttpError {
        self.lock().error = Some(err.type_name());
        err
    }
}

/// Ends the request when dropped, and holds its connection until then.
struct End<B: 'static> {
    ctx: Arc<Ctx>,
    lease: Option<Lease<B>>,
}

impl<B: 'static> End<B> {
    fn finish(mut self, complete: Option<bool>) {
        self.ctx.end(complete);
        // The connection goes back after the request's trace has closed.
        self.lease = None;
    }
}

impl<B: 'static> Drop for End<B> {
    fn drop(&mut self) {
        crate::trace::fire_from_drop(|| self.ctx.end(None));
    }
}

async fn run<B>(
    pool: Pool<TracedBody<B>>,
    request: Request<B>,
    trace: Option<HttpTrace>,
) -> Result<Response<ResponseBody>, HttpError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let ctx = context(trace);
    let mut end = End {
        ctx: ctx.clone(),
        lease: None,
    };
    let uri = request.uri().clone();
    // Only the hooks read it.
    let host_port = match ctx.trace {
        Some(_) => host_port(&uri),
        None => String::new(),
    };
    if let Some(trace) = &ctx.trace {
        resume(trace.get_conn(&GetConn {
            request: ctx.id,
            host_port: &host_port,
            method: request.method(),
            uri: &uri,
        }));
    }
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            let err = HttpError::invalid_uri("the scheme is not http or https");
            return Err(ctx.failed(err));
        }
    }
    let key = Key::of(&uri).map_err(|err| ctx.failed(err))?;
    let body_ctx = ctx.trace.is_some().then(|| ctx.clone());
    let mut request = request.map(|inner| TracedBody {
        inner: Some(Box::pin(inner)),
        ctx: body_ctx.clone(),
    });
    let mut added_host = false;
    let mut retried = false;
    loop {
        let lease = pool
            .checkout(
                &uri,
                key.clone(),
                ctx.id,
                ctx.report.as_ref(),
                retried,
                |dialing| ctx.wait_for_conn(&host_port, dialing),
            )
            .await;
        // A hook panicked in this request's dial: the panic goes on here, after the
        // request's trace has closed (the `End` guard's drop).
        if let Some(panic) = ctx.report.as_ref().and_then(DialReport::take_panic) {
            drop(end);
            std::panic::resume_unwind(panic);
        }
        let mut lease = lease.map_err(|err| ctx.failed(err))?;
        let sender = lease.sender.as_mut().expect("a lease has its sender");
        // An HTTP/1.1 connection must be ready for the next request; one that closed is
        // never used (the pool forgets it when the lease drops).
        if let Sender::H1(h1) = sender {
            if h1.ready().await.is_err() {
                lease.discard();
                continue;
            }
        }
        ctx.got_conn(&lease);
        // Go's rule: an idempotent request with no body, sent on a connection that had
        // served before, is sent again on a new one if the connection closes before any
        // response (the server closed an idle connection as it went out).
        let replay = (lease.handoff.reused
            && !retried
            && idempotent(request.method())
            && request.body().is_empty())
        .then(|| Replay::of(&request));
        let sender = lease.sender.as_mut().expect("a lease has its sender");
        let sent = match sender {
            Sender::H1(h1) => {
                if !request.headers().contains_key(HOST) {
                    if let Some(host) = host_header(&uri) {
                        request.headers_mut().insert(HOST, host);
                        added_host = true;
                    }
                }
                *request.uri_mut() = origin_form(&uri);
                h1.try_send_request(request).await
            }
            Sender::H2(h2) => {
                if added_host {
                    request.headers_mut().remove(HOST);
                    added_host = false;
                }
                *request.uri_mut() = uri.clone();
                h2.try_send_request(request).await
            }
        };
        // A `wrote_request` hook that panicked in the connection's task: here it goes on.
        ctx.resume_kept();
        match sent {
            Ok(response) => {
                ctx.responded(response.status(), response.version());
                end.lease = Some(lease);
                let (parts, incoming) = response.into_parts();
                let mut body = ResponseBody {
                    inner: incoming,
                    end: Some(Box::new(end)),
                };
                body.check_end();
                return Ok(Response::from_parts(parts, body));
            }
            Err(mut err) => {
                let closed = closed_under(err.error());
                match (err.take_message(), replay) {
                    // It never went out, on a connection that had served before: once
                    // more, on a new connection.
                    (Some(unsent), _) if !retried && lease.handoff.reused => request = unsent,
                    (_, Some(replay)) if closed => request = replay.request(body_ctx.clone()),
                    _ => return Err(ctx.failed(HttpError::request(err.into_error()))),
                }
                retried = true;
                lease.discard();
            }
        }
    }
}

/// Whether the connection closed or failed before any response (Go's "server closed
/// idle connection" and read errors): canceled before it went out, closed before a
/// complete response, or an I/O error such as a reset.
fn closed_under(err: &hyper::Error) -> bool {
    if err.is_canceled() || err.is_incomplete_message() {
        return true;
    }
    let mut source = StdError::source(err);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Methods whose request may be sent twice (RFC 9110 §9.2.2).
fn idempotent(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// What it takes to send a request with no body again.
struct Replay {
    method: http::Method,
    uri: Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

impl Replay {
    fn of<B>(request: &Request<B>) -> Replay {
        Replay {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
        }
    }

    fn request<B>(self, ctx: Option<Arc<Ctx>>) -> Request<TracedBody<B>> {
        let mut request = Request::new(TracedBody { inner: None, ctx });
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        request
    }
}

fn host_port(uri: &Uri) -> String {
    crate::dial::addr::join(uri.host().unwrap_or_default(), port_of(uri))
}

/// The `Host` header: the host, and the port when it is not the scheme's default.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host().unwrap_or_default();
    // An explicit port that is not the scheme's default.
    let value = match uri.port_u16() {
        Some(port) if port != default_port(uri) => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// HTTP/1.1 sends the path and query alone.
fn origin_form(uri: &Uri) -> Uri {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    path.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// The request body, watched for the moment hyper has taken all of it. Boxed, so that
/// the body type need not be `Unpin` (hyper's HTTP/2 client wants `Unpin`).
struct TracedBody<B> {
    /// `None`: an empty body (a request sent again).
    inner: Option<Pin<Box<B>>>,
    ctx: Option<Arc<Ctx>>,
}

impl<B: Body> TracedBody<B> {
    /// Whether it has nothing to send (without telling the trace anything).
    fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }
}

impl<B: Body> Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = match &mut this.inner {
            Some(inner) => inner.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        };
        if let (Some(ctx), Poll::Ready(None)) = (this.ctx.as_ref(), &frame) {
            ctx.wrote();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        let end = self.is_empty();
        if let (true, Some(ctx)) = (end, &self.ctx) {
            ctx.wrote();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

type BoxResponse = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, HttpError>> + Send>>;

/// The future of one request sent by an [`HttpClient`].
///
/// # Cancel safety
///
/// Dropping it ends the request: its trace gets the pending ends of a dial it started
/// (as [`ConnectOutcome::Detached`](crate::ConnectOutcome::Detached)) and nothing after;
/// the dial goes on for the pool.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ResponseFuture {
    inner: BoxResponse,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The body of a response received by an [`HttpClient`]; its end (or drop) ends the
/// request: curl's `total`, and the connection goes back to the pool.
pub struct ResponseBody {
    inner: Incoming,
    end: Option<Box<dyn Finish>>,
}

/// Type-erased [`End`], so [`ResponseBody`] has no body type parameter.
trait Finish: Send {
    fn finish(self: Box<Self>, complete: bool);
}

impl<B: Send + 'static> Finish for End<B> {
    fn finish(self: Box<Self>, complete: bool) {
        End::finish(*self, Some(complete));
    }
}

impl ResponseBody {
    fn check_end(&mut self) {
        if self.inner.is_end_stream() {
            self.finish(true);
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(end) = self.end.take() {
            end.finish(complete);
        }
    }
}

impl Body for ResponseBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Ready(Some(Ok(data))) => {
                if data.data_ref().is_some_and(|d| d.remaining() > 0) || data.is_trailers() {
                    self.check_end();
                }
            }
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        crate::trace::fire_from_drop(|| self.finish(false));
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
