//! [`HttpClient`]: hyper-util's client over the traced [`Connector`], one [`HttpTrace`]
//! per request.

use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Buf;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{capture_connection, CaptureConnection, Connected};
use hyper_util::client::legacy::{Builder, Client, Error};
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::trace::{GotConn, HttpTrace};
use crate::connector::{ConnectionInfo, Connector};
use crate::scope::{with_trace, Scoped};

/// An HTTP client — hyper-util's legacy `Client` over a traced [`Connector`] — whose
/// requests can each carry an [`HttpTrace`].
///
/// Cloning is cheap; clones share the connection pool.
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
pub struct HttpClient<B> {
    inner: Client<Connector, TracedBody<B>>,
}

impl<B> Clone for HttpClient<B> {
    fn clone(&self) -> Self {
        HttpClient {
            inner: self.inner.clone(),
        }
    }
}

impl<B> fmt::Debug for HttpClient<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl<B> HttpClient<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Returns a client with hyper-util's default pool settings, spawning connections on
    /// tokio, speaking HTTP/1.1 and (when TLS negotiates it) HTTP/2.
    pub fn new(connector: Connector) -> HttpClient<B> {
        HttpClient::from_builder(&Client::builder(TokioExecutor::new()), connector)
    }

    /// Returns a client configured by a hyper-util `Builder` (pool, HTTP/2 only, …).
    pub fn from_builder(builder: &Builder, connector: Connector) -> HttpClient<B> {
        HttpClient {
            inner: builder.build(connector),
        }
    }

    /// Sends `request`, reporting it to `trace`, and its connection's network events to
    /// `trace`'s [`NetTrace`](crate::NetTrace) composed with the one in scope.
    ///
    /// # Errors
    ///
    /// hyper-util's error: connecting failed (its source is a
    /// [`ConnectError`](crate::ConnectError)), or sending or receiving failed.
    pub fn send(&self, request: Request<B>, trace: HttpTrace) -> ResponseFuture {
        self.start(request, Some(trace))
    }

    /// Sends `request` with no HTTP-level trace (the network events still reach the
    /// [`NetTrace`](crate::NetTrace) in scope).
    ///
    /// # Errors
    ///
    /// As [`send`](HttpClient::send).
    pub fn request(&self, request: Request<B>) -> ResponseFuture {
        self.start(request, None)
    }

    fn start(&self, mut request: Request<B>, trace: Option<HttpTrace>) -> ResponseFuture {
        let Some(trace) = trace else {
            let request = request.map(|inner| TracedBody {
                inner,
                shared: None,
            });
            return ResponseFuture {
                // An empty trace: the one in scope applies unchanged.
                inner: with_trace(crate::NetTrace::new(), self.inner.request(request)),
                shared: None,
                host_port: String::new(),
                state: State::Idle,
            };
        };
        // Only `get_conn` hooks read it; the recorder does not.
        let host_port = if trace.hooks.get_conn.is_empty() {
            String::new()
        } else {
            host_port(request.uri())
        };
        let capture = capture_connection(&mut request);
        let net = trace.net.clone();
        static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(Shared {
            trace,
            capture,
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            has_conn: AtomicBool::new(false),
            state: Mutex::default(),
        });
        let body = shared.clone();
        let request = request.map(|inner| TracedBody {
            inner,
            shared: Some(body),
        });
        ResponseFuture {
            inner: with_trace(net, self.inner.request(request)),
            shared: Some(shared),
            host_port,
            state: State::Idle,
        }
    }
}

fn host_port(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    // `Uri::host` keeps an IPv6 address's brackets; `join` adds none then.
    crate::dial::addr::join(host, port)
}

/// What one traced request shares between its future, its request body (polled by the
/// connection's task) and its response body.
struct Shared {
    trace: HttpTrace,
    capture: CaptureConnection,
    /// Names this request to the connections it dials (see `current_request`).
    token: u64,
    /// Set once `got_conn` has fired, so the request's task stops looking; a retry on
    /// another connection is noticed by the body and the response instead.
    has_conn: AtomicBool,
    state: Mutex<ReqState>,
}

#[derive(Default)]
struct ReqState {
    conn: Option<ConnectionInfo>,
    wrote: bool,
    released: bool,
}

impl Shared {
    /// Hooks are fired under this lock, so one request's hooks run one at a time and in
    /// order even when the connection's task and the request's task race.
    fn lock(&self) -> MutexGuard<'_, ReqState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fires `got_conn` as soon as hyper-util has picked the connection, and again if it
    /// retries the request on another one (a pooled connection that closed under it).
    fn got_conn(&self, state: &mut ReqState) -> bool {
        let info = self
            .capture
            .connection_metadata()
            .as_ref()
            .and_then(info_of);
        let Some(info) = info else {
            return state.conn.is_some();
        };
        let now = Instant::now();
        match &state.conn {
            Some(current) if current.same(&info) => return true,
            Some(old) => {
                old.state().release(now);
                state.wrote = false;
            }
            None => {}
        }
        let (used_before, idle_time) = info.state().acquire(now);
        // A connection this request dialed is new to it, even if a concurrent HTTP/2
        // request got onto it first; any other connection is reused.
        let reused = match info.state().dial.made_by {
            Some(maker) => maker != self.token,
            None => used_before,
        };
        let event = GotConn {
            reused,
            was_idle: idle_time.is_some(),
            idle_time,
            remote_addr: info.remote_addr(),
            local_addr: info.local_addr(),
            info: info.clone(),
        };
        state.conn = Some(info);
        self.has_conn.store(true, Ordering::Release);
        self.trace.got_conn(&event);
        true
    }

    /// The request has been handed over in full (the body says so from the connection's
    /// task, again on each connection a retry moves it to).
    fn wrote(&self) {
        let mut state = self.lock();
        self.wrote_locked(&mut state);
    }

    fn wrote_locked(&self, state: &mut ReqState) {
        if self.got_conn(state) && !state.wrote {
            state.wrote = true;
            self.trace.wrote_request();
        }
    }

    /// The response head arrived: the request was written, if the body has not said so
    /// yet (hyper may not look at an empty body before it writes the head).
    fn responded(&self, status: http::StatusCode, version: http::Version) {
        let mut state = self.lock();
        if !state.wrote {
            self.wrote_locked(&mut state);
        }
        self.trace.first_byte(status, version);
    }

    /// The request is done with its connection.
    fn release(&self, complete: Option<bool>) {
        let mut state = self.lock();
        if state.released {
            return;
        }
        state.released = true;
        if let Some(info) = &state.conn {
            info.state().release(Instant::now());
        }
        if let Some(complete) = complete {
            self.trace.finished(complete);
        }
    }
}

thread_local! {
    /// The token of the traced request being polled on this thread, for the connector
    /// to stamp on the connections it dials for it.
    static CURRENT_REQUEST: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The traced request whose future is being polled right now, if any.
pub(crate) fn current_request() -> Option<u64> {
    CURRENT_REQUEST.try_with(Cell::get).ok().flatten()
}

/// Polls `f` with `token` as the current request, restoring the previous one after.
fn as_request<R>(token: Option<u64>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = CURRENT_REQUEST.try_with(|c| c.set(self.0));
        }
    }
    let previous = CURRENT_REQUEST
        .try_with(|c| c.replace(token))
        .ok()
        .flatten();
    let _restore = Restore(previous);
    f()
}

fn info_of(connected: &Connected) -> Option<ConnectionInfo> {
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    extensions.remove::<ConnectionInfo>()
}

/// The request body, watched for the moment hyper has taken all of it.
struct TracedBody<B> {
    inner: B,
    shared: Option<Arc<Shared>>,
}

impl<B: Body + Unpin> Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Some(shared), Poll::Ready(None)) = (&this.shared, &frame) {
            shared.wrote();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if let (true, Some(shared)) = (end, &self.shared) {
            shared.wrote();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The future of one request sent by an [`HttpClient`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ResponseFuture {
    inner: Scoped<hyper_util::client::legacy::ResponseFuture>,
    shared: Option<Arc<Shared>>,
    host_port: String,
    state: State,
}

#[derive(PartialEq, Eq)]
enum State {
    Idle,
    Waiting,
    Done,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.state == State::Idle {
            this.state = State::Waiting;
            if let Some(shared) = &this.shared {
                shared.trace.get_conn(&this.host_port);
            }
        }
        let token = this.shared.as_ref().map(|s| s.token);
        let inner = &mut this.inner;
        let result = as_request(token, || Pin::new(inner).poll(cx));
        if let Some(shared) = &this.shared {
            if !shared.has_conn.load(Ordering::Acquire) {
                shared.got_conn(&mut shared.lock());
            }
        }
        let result = match result {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        this.state = State::Done;
        let shared = this.shared.take();
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                if let Some(shared) = shared {
                    shared.release(None);
                }
                return Poll::Ready(Err(err));
            }
        };
        if let Some(shared) = &shared {
            shared.responded(response.status(), response.version());
        }
        let response = response.map(|inner| {
            let mut body = ResponseBody { inner, shared };
            body.check_end();
            body
        });
        Poll::Ready(Ok(response))
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            crate::trace::fire_from_drop(|| shared.release(None));
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("host_port", &self.host_port)
            .finish_non_exhaustive()
    }
}

/// The body of a response received by an [`HttpClient`]; it reports the end of the
/// transfer (curl's `total`) to the request's trace.
pub struct ResponseBody {
    inner: Incoming,
    shared: Option<Arc<Shared>>,
}

impl ResponseBody {
    fn check_end(&mut self) {
        if self.inner.is_end_stream() {
            self.finish(true);
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(shared) = self.shared.take() {
            shared.release(Some(complete));
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
