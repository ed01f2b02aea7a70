//! [`HttpTrace`]: HTTP-level hooks, in the shape of Go's `httptrace.ClientTrace`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri, Version};

use crate::connector::ConnectionInfo;
pub use crate::pool::RequestId;
use crate::trace::{call_each, Fired, NetTrace};

type Hook<E> = Arc<dyn Fn(&E) + Send + Sync>;
type GetConnHook = Arc<dyn Fn(&GetConn<'_>) + Send + Sync>;
type WaitHook = Arc<dyn Fn(&WaitForConn<'_>) + Send + Sync>;

/// Hooks for one HTTP request, fired by [`HttpClient::send`](crate::HttpClient::send):
/// getting a connection, the network events of making one (through the [`NetTrace`] it
/// holds), writing the request and the first byte of the response.
///
/// Like [`NetTrace`], each `on_*` method adds a hook; cloning is cheap and never shares
/// later additions. Hooks may be called from the connection's task (on another thread
/// than the request's), so they are `Send + Sync`; for one request they are called one
/// at a time, in order.
///
/// # Examples
///
/// ```
/// use nettrace::{HttpTrace, NetTrace};
///
/// let trace = HttpTrace::new()
///     .on_get_conn(|e| println!("get conn {}", e.host_port))
///     .net(NetTrace::new().on_dns_start(|e| println!("dns {}", e.host)))
///     .on_got_conn(|e| println!("got conn reused={} idle={:?}", e.reused, e.idle_time))
///     .on_wrote_request(|_| println!("request written"))
///     .on_got_first_response_byte(|e| println!("first byte: {}", e.status));
/// # drop(trace);
/// ```
#[derive(Clone, Default)]
pub struct HttpTrace {
    pub(crate) net: NetTrace,
    pub(crate) hooks: Arc<HttpHooks>,
}

#[derive(Clone, Default)]
pub(crate) struct HttpHooks {
    pub(crate) get_conn: Vec<GetConnHook>,
    pub(crate) wait_for_conn: Vec<WaitHook>,
    pub(crate) got_conn: Vec<Hook<GotConn>>,
    pub(crate) wrote_request: Vec<Hook<WroteRequest>>,
    pub(crate) first_byte: Vec<Hook<GotFirstResponseByte>>,
    /// Crate-internal: the response body ended (or was dropped); for `Timings::total`.
    pub(crate) finished: Vec<Hook<Finished>>,
    /// Recorders, called directly before the hooks above.
    pub(crate) recorders: Vec<super::TimingsRecorder>,
}

/// A request is about to get a connection: from the pool or a new one.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GetConn<'a> {
    /// The request.
    pub request: RequestId,
    /// The `host:port` the connection is for.
    pub host_port: &'a str,
    /// The request's method.
    pub method: &'a Method,
    /// The request's URI, as given to the client.
    pub uri: &'a Uri,
}

/// No connection was ready for the request: it waits for one — a new one it dials, one
/// another request is dialing (HTTP/2), or one another request frees (HTTP/1.1). The wait
/// ends at its [`GotConn`] (or when the request ends without one).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WaitForConn<'a> {
    /// The request.
    pub request: RequestId,
    /// The `host:port` the connection is for.
    pub host_port: &'a str,
    /// Whether the request dials a connection of its own (it takes whichever is ready
    /// first); `false` when it waits for another request's dial to offer HTTP/2.
    pub dialing: bool,
}

/// A request got its connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GotConn {
    /// The request.
    pub request: RequestId,
    /// Whether an earlier request used this connection (curl's and Go's "reused").
    pub reused: bool,
    /// Whether the connection was idle in the pool before this request took it.
    pub was_idle: bool,
    /// How long it had been idle, if it was.
    pub idle_time: Option<Duration>,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The local address.
    pub local_addr: SocketAddr,
    pub(crate) info: ConnectionInfo,
    /// The timeline of the dial that made the connection, when it was this request's.
    pub(crate) dial: Option<crate::pool::DialTimeline>,
    /// The request waited for a connection it did not dial (curl's `time_queue`).
    pub(crate) queued: bool,
}

/// The request (head and body) has been handed to the connection to send.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WroteRequest {
    /// The request.
    pub request: RequestId,
}

/// The response head has arrived.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GotFirstResponseByte {
    /// The request.
    pub request: RequestId,
    /// The response status.
    pub status: StatusCode,
    /// The HTTP version of the response.
    pub version: Version,
}

/// Crate-internal: the request has ended, with its response body or in failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finished {
    /// Whether the whole body was read (rather than dropped early, or no response).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) complete: bool,
    /// The request failed: `HttpError`'s `error.type` name.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) error: Option<&'static str>,
}

impl HttpTrace {
    /// Returns a trace with no hooks.
    pub fn new() -> HttpTrace {
        HttpTrace::default()
    }

    /// Adds the hooks of `trace` for the network events (DNS, connection attempts, TLS)
    /// of connections made for this request.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::HttpTrace::new()
    ///     .net(nettrace::NetTrace::new().on_connect_start(|e| println!("{}", e.addr)));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn net(mut self, trace: NetTrace) -> HttpTrace {
        self.net = self.net.compose(&trace);
        self
    }

    /// Adds every hook of `other`, to run after this trace's own.
    ///
    /// # Examples
    ///
    /// ```
    /// let recorder = nettrace::TimingsRecorder::new();
    /// let trace = recorder
    ///     .trace()
    ///     .and(nettrace::HttpTrace::new().on_wrote_request(|_| println!("sent")));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn and(mut self, other: HttpTrace) -> HttpTrace {
        self.net = self.net.compose(&other.net);
        let (mine, theirs) = (Arc::make_mut(&mut self.hooks), &*other.hooks);
        mine.get_conn.extend(theirs.get_conn.iter().cloned());
        mine.wait_for_conn
            .extend(theirs.wait_for_conn.iter().cloned());
        mine.got_conn.extend(theirs.got_conn.iter().cloned());
        mine.wrote_request
            .extend(theirs.wrote_request.iter().cloned());
        mine.first_byte.extend(theirs.first_byte.iter().cloned());
        mine.finished.extend(theirs.finished.iter().cloned());
        mine.recorders.extend(theirs.recorders.iter().cloned());
        self
    }

    /// Adds a hook called when the request starts and is about to get a connection.
    #[must_use]
    pub fn on_get_conn<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&GetConn<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks).get_conn.push(Arc::new(hook));
        self
    }

    /// Adds a hook called when no connection is ready for the request and it waits for
    /// one (see [`WaitForConn`]); [`on_got_conn`](HttpTrace::on_got_conn) ends the wait.
    #[must_use]
    pub fn on_wait_for_conn<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&WaitForConn<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .wait_for_conn
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called when the request has its connection (new or reused), before it
    /// is written. If the client sends the request again on a new connection (a reused
    /// one closed before the request went out, or, for an idempotent request with no
    /// body, before any response), it fires again for that connection, and
    /// `wrote_request` with it.
    #[must_use]
    pub fn on_got_conn<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&GotConn) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks).got_conn.push(Arc::new(hook));
        self
    }

    /// Adds a hook called before a TLS handshake of a connection made for this request.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn on_tls_handshake_start<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&crate::TlsHandshakeStart<'_>) + Send + Sync + 'static,
    {
        self.net = self.net.on_tls_handshake_start(hook);
        self
    }

    /// Adds a hook called when that TLS handshake has ended: version, ALPN and cipher, or
    /// the error.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn on_tls_handshake_done<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&crate::TlsHandshakeDone<'_>) + Send + Sync + 'static,
    {
        self.net = self.net.on_tls_handshake_done(hook);
        self
    }

    /// Adds a hook called when the whole request has been handed to the connection.
    #[must_use]
    pub fn on_wrote_request<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&WroteRequest) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .wrote_request
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called when the response head has arrived.
    #[must_use]
    pub fn on_got_first_response_byte<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&GotFirstResponseByte) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .first_byte
            .push(Arc::new(hook));
        self
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn on_finished<F>(mut self, hook: F) -> HttpTrace
    where
        F: Fn(&Finished) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks).finished.push(Arc::new(hook));
        self
    }

    /// A trace whose only hook is `recorder`.
    pub(crate) fn recording(recorder: super::TimingsRecorder) -> HttpTrace {
        HttpTrace {
            net: NetTrace::new(),
            hooks: Arc::new(HttpHooks {
                recorders: vec![recorder],
                ..HttpHooks::default()
            }),
        }
    }

    // Each hook runs in its own `catch_unwind`: a panicking hook costs no other hook its
    // event, then the first panic is returned for the caller to continue.

    pub(crate) fn get_conn(&self, event: &GetConn<'_>) -> Fired {
        self.hooks.recorders.iter().for_each(|r| r.started());
        call_each(&self.hooks.get_conn, |h| h(event))
    }

    pub(crate) fn wait_for_conn(&self, event: &WaitForConn<'_>) -> Fired {
        call_each(&self.hooks.wait_for_conn, |h| h(event))
    }

    pub(crate) fn got_conn(&self, event: &GotConn) -> Fired {
        self.hooks.recorders.iter().for_each(|r| r.got_conn(event));
        call_each(&self.hooks.got_conn, |h| h(event))
    }

    pub(crate) fn wrote_request(&self, request: RequestId) -> Fired {
        let event = WroteRequest { request };
        call_each(&self.hooks.wrote_request, |h| h(&event))
    }

    pub(crate) fn first_byte(
        &self,
        request: RequestId,
        status: StatusCode,
        version: Version,
    ) -> Fired {
        let event = GotFirstResponseByte {
            request,
            status,
            version,
        };
        self.hooks
            .recorders
            .iter()
            .for_each(|r| r.first_byte(status, version));
        call_each(&self.hooks.first_byte, |h| h(&event))
    }

    pub(crate) fn finished(&self, complete: bool, error: Option<&'static str>) -> Fired {
        let event = Finished { complete, error };
        if error.is_none() {
            // `Timings::total`: the body's end (or drop), not a failure.
            self.hooks.recorders.iter().for_each(|r| r.finished());
        }
        call_each(&self.hooks.finished, |h| h(&event))
    }
}

impl fmt::Debug for HttpTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &*self.hooks;
        f.debug_struct("HttpTrace")
            .field("net", &self.net)
            .field("get_conn", &h.get_conn.len())
            .field("wait_for_conn", &h.wait_for_conn.len())
            .field("got_conn", &h.got_conn.len())
            .field("wrote_request", &h.wrote_request.len())
            .field("got_first_response_byte", &h.first_byte.len())
            .field("recorders", &h.recorders.len())
            .finish()
    }
}
