//! [reqwest](https://docs.rs/reqwest) integration: a [`Resolver`] that reports every lookup
//! reqwest makes, and a [`ConnectLayer`] that reports every connection it sets up.
//!
//! reqwest dials by itself and takes no custom connector, but it takes a resolver
//! ([`ClientBuilder::dns_resolver`]) and a tower layer around its connector
//! ([`ClientBuilder::connector_layer`]). With both, a request sent inside
//! [`with_trace`](crate::with_trace) reports:
//!
//! - its lookup: [`DnsStart`](crate::DnsStart), one [`DnsAnswer`](crate::DnsAnswer) per
//!   address family and [`DnsDone`](crate::DnsDone), with `coalesced` set when concurrent
//!   requests shared the lookup;
//! - its connection setup (DNS, TCP and TLS as one phase):
//!   [`ConnectionSetupStart`](crate::ConnectionSetupStart) and
//!   [`ConnectionSetupDone`](crate::ConnectionSetupDone), with the peer address.
//!
//! What it cannot report: each Happy Eyeballs attempt and the TLS handshake's phases,
//! since hyper-util's `HttpConnector` inside reqwest makes them (use
//! [`HttpClient`](https://docs.rs/nettrace/latest/nettrace/struct.HttpClient.html), feature
//! `http`, for those). A request that reuses a pooled connection reports nothing.
//!
//! # Connects that finish in the background
//!
//! reqwest (through hyper-util's pool) starts a connect for a request that finds no idle
//! connection, and keeps waiting for an idle one meanwhile. If an idle connection frees up
//! first, the request takes it and the connect goes on in a background task, to be pooled.
//! Both the lookup and the connection setup captured the request's trace when they
//! started, so they keep reporting to it from there: their `DnsDone` and
//! `ConnectionSetupDone` may come *after* that request's response. Each start still has
//! exactly one done.
//!
//! [`ClientBuilder::dns_resolver`]: ::reqwest::ClientBuilder::dns_resolver
//! [`ClientBuilder::connector_layer`]: ::reqwest::ClientBuilder::connector_layer
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use nettrace::reqwest::{ConnectLayer, Resolver};
//! use nettrace::{NetTrace, StaticResolver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let port = listener.local_addr()?.port();
//! # tokio::spawn(async move {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     let (mut stream, _) = listener.accept().await.unwrap();
//! #     let mut buf = [0; 1024];
//! #     let _ = stream.read(&mut buf).await;
//! #     stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
//! # });
//! let resolver = StaticResolver::new().insert("api.test", ["127.0.0.1".parse()?]);
//! let client = reqwest::Client::builder()
//!     .dns_resolver(Arc::new(Resolver::new(resolver)))
//!     .connector_layer(ConnectLayer::new())
//!     .build()?;
//!
//! let trace = NetTrace::new()
//!     .on_dns_done(|e| println!("{} -> {:?}", e.host, e.addrs))
//!     .on_connection_setup_done(|e| println!("connected to {:?}", e.peer));
//! let url = format!("http://api.test:{port}/");
//! let response = nettrace::with_trace(trace, client.get(url).send()).await?;
//! assert_eq!(response.text().await?, "ok");
//! # Ok(())
//! # }
//! ```

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::resolve::{CoalescingResolver, HickoryResolver, Resolve};
use crate::scope::{current, Scoped, TraceExt};
use crate::trace::{ConnectOutcome, DialId, Panics, SetupReport};

/// The error type reqwest's connector and resolver use.
type BoxError = Box<dyn Error + Send + Sync>;

/// A [`reqwest::dns::Resolve`] that looks names up through the
/// crate's singleflight resolver and reports each lookup to the trace in scope.
///
/// Each time reqwest asks it for a name is one lookup with a [`DialId`] of its own:
/// [`DnsStart`](crate::DnsStart), a [`DnsAnswer`](crate::DnsAnswer) per family and
/// [`DnsDone`](crate::DnsDone), each exactly once, to the trace in scope when reqwest
/// first polls the lookup — the trace of the request that needs the connection. Concurrent
/// lookups of one name (all clones of one `Resolver`, so all requests of one client) share
/// one query to the wrapped resolver, and each reports `coalesced`. A lookup reqwest drops
/// (the request was dropped) reports its `DnsDone` with an error of kind
/// [`Cancelled`](crate::ResolveErrorKind::Cancelled).
///
/// The addresses go to reqwest with port 0, which reqwest replaces with the URL's port.
/// A failed lookup fails the request with reqwest's `is_connect()` error, with the
/// [`ResolveError`](crate::ResolveError) among its causes
/// ([`source`](std::error::Error::source)).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use nettrace::reqwest::Resolver;
/// use nettrace::HickoryResolver;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dns = "127.0.0.1:5353".parse()?;
/// let client = reqwest::Client::builder()
///     .dns_resolver(Arc::new(Resolver::new(HickoryResolver::with_name_servers(&[dns]))))
///     .build()?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Resolver {
    resolver: CoalescingResolver,
}

impl Resolver {
    /// Wraps `resolver` in a new singleflight group.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::reqwest::Resolver;
    /// use nettrace::StaticResolver;
    ///
    /// let resolver = Resolver::new(StaticResolver::new().insert("db.test", ["127.0.0.1".parse().unwrap()]));
    /// # drop(resolver);
    /// ```
    pub fn new(resolver: impl Resolve) -> Resolver {
        Resolver {
            resolver: CoalescingResolver::new(resolver),
        }
    }
}

impl Default for Resolver {
    /// Wraps [`HickoryResolver::system()`]: the system's DNS configuration and hosts file.
    fn default() -> Resolver {
        Resolver::new(HickoryResolver::system())
    }
}

impl From<CoalescingResolver> for Resolver {
    /// Uses `resolver`'s singleflight group, so that lookups made through reqwest and
    /// through a [`Dialer`](crate::Dialer) built with the same group share queries.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::reqwest::Resolver;
    /// use nettrace::{CoalescingResolver, StaticResolver};
    ///
    /// let shared = CoalescingResolver::new(StaticResolver::new());
    /// let resolver = Resolver::from(shared.clone());
    /// # drop(resolver);
    /// ```
    fn from(resolver: CoalescingResolver) -> Resolver {
        Resolver { resolver }
    }
}

impl ::reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: ::reqwest::dns::Name) -> ::reqwest::dns::Resolving {
        // The lookup fires its events to the trace in scope at its first poll, which is
        // reqwest's first poll of this future.
        let lookup = self.resolver.lookup(name.as_str());
        Box::pin(async move {
            let addrs = lookup.await?;
            let addrs: ::reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A tower layer for [`ClientBuilder::connector_layer`] that reports each connection
/// reqwest sets up to the trace in scope.
///
/// Each time reqwest's connector is asked for a new connection fires
/// [`ConnectionSetupStart`](crate::ConnectionSetupStart) with a [`DialId`] of its own
/// and the host and port asked for, then exactly one
/// [`ConnectionSetupDone`](crate::ConnectionSetupDone): `Connected` with the peer
/// address reqwest reports (the proxy's when a proxy is used), `Failed` with reqwest's error, or
/// `Cancelled` when the setup was dropped. A setup spans the lookup, the TCP connect
/// (with Happy Eyeballs) and the TLS handshake for `https`, so its duration is the time
/// the request spent getting its connection. With feature `tracing`,
/// [`NetTrace::tracing`](crate::NetTrace) turns each into an `HTTP connection_setup` span.
///
/// The trace is read when reqwest calls the connector (in the task that sends the
/// request), and the connect keeps it wherever it runs: see the [module
/// docs](self#connects-that-finish-in-the-background).
///
/// Put it last (innermost), after any `connect_timeout` or concurrency layer, so that the
/// setup it reports is the connect itself. reqwest seals its request type; the host and
/// port are read from its `Debug` form, and are `None` should that ever change.
///
/// [`ClientBuilder::connector_layer`]: ::reqwest::ClientBuilder::connector_layer
///
/// # Examples
///
/// ```
/// use nettrace::reqwest::ConnectLayer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest::Client::builder()
///     .connector_layer(ConnectLayer::new())
///     .build()?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectLayer {
    _private: (),
}

impl ConnectLayer {
    /// A new layer; it has no options.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = nettrace::reqwest::ConnectLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> ConnectLayer {
        ConnectLayer::default()
    }
}

impl<S> tower_layer::Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;

    fn layer(&self, inner: S) -> ConnectService<S> {
        ConnectService { inner }
    }
}

/// The connector service [`ConnectLayer`] wraps reqwest's connector in.
///
/// # Examples
///
/// ```
/// use nettrace::reqwest::{ConnectLayer, ConnectService};
/// use tower_layer::Layer;
///
/// let service: ConnectService<()> = ConnectLayer::new().layer(());
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ConnectService<S> {
    inner: S,
}

impl<S, R> Service<R> for ConnectService<S>
where
    S: Service<R>,
    S::Response: Connection,
    S::Error: Into<BoxError>,
    R: fmt::Debug,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ConnectionSetup<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> ConnectionSetup<S::Future> {
        let pending = current().map(|trace| {
            let target = Target::of(&request);
            SetupReport::start(trace, DialId::next(), target.host(), target.port)
        });
        // The inner connect (reqwest's, and the lookup in it) runs with the trace read
        // now, also if hyper-util moves it to a background task.
        ConnectionSetup {
            future: Some(self.inner.call(request).in_current_trace()),
            pending,
        }
    }
}

/// The host and port a connector was asked for.
#[derive(Debug, Default)]
struct Target {
    host: Option<Box<str>>,
    port: Option<u16>,
}

impl Target {
    /// Reads the URI out of `request`: an `http::Uri`, or reqwest's sealed wrapper around
    /// one, whose `Debug` form is `Unnameable(<uri>)`.
    fn of(request: &dyn fmt::Debug) -> Target {
        let text = format!("{request:?}");
        let uri = match (text.find('('), text.strip_suffix(')')) {
            (Some(open), Some(inner)) => &inner[open + 1..],
            _ => &text,
        };
        let Ok(uri) = uri.parse::<http::Uri>() else {
            return Target::default();
        };
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        });
        // `[::1]` -> `::1`, as `server.address` wants it.
        let host = uri.host().map(|host| {
            let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            bare.unwrap_or(host).into()
        });
        Target { host, port }
    }

    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

pin_project! {
    /// The future of one connection setup, returned by [`ConnectService`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops reqwest's connect (its pending lookup reports `DnsDone`
    /// cancelled), then reports [`ConnectionSetupDone`](crate::ConnectionSetupDone) with
    /// [`ConnectOutcome::Cancelled`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ConnectionSetup<F> {
        // `None` once dropped, so that the connect's own events come before our done.
        #[pin]
        future: Option<Scoped<F>>,
        // `Some` until the done has fired; `None` when no trace was in scope. Dropped
        // (firing the done as cancelled) after the connect, so its events come first.
        pending: Option<SetupReport>,
    }

    impl<F> PinnedDrop for ConnectionSetup<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            this.future.set(None);
            this.pending.take();
        }
    }
}

impl<F, T, E> Future for ConnectionSetup<F>
where
    F: Future<Output = Result<T, E>>,
    T: Connection,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this
            .future
            .as_pin_mut()
            .expect("`ConnectionSetup` polled after completion");
        let output = ready!(future.poll(cx)).map_err(Into::into);
        let Some(mut pending) = this.pending.take() else {
            return Poll::Ready(output);
        };
        let fired = match output {
            Ok(conn) => {
                let fired = pending.done(peer(&conn), ConnectOutcome::Connected);
                match fired {
                    Ok(()) => return Poll::Ready(Ok(conn)),
                    Err(panic) => Err(panic),
                }
            }
            Err(err) => {
                let err = as_io(err);
                let fired = pending.done(None, ConnectOutcome::Failed(&err));
                match fired {
                    Ok(()) => return Poll::Ready(Err(from_io(err))),
                    Err(panic) => Err(panic),
                }
            }
        };
        let mut panics = Panics::default();
        panics.keep(fired);
        panics.resume();
        unreachable!("a kept panic resumes");
    }
}

impl<F> fmt::Debug for ConnectionSetup<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSetup")
            .field("dial", &self.pending.as_ref().map(SetupReport::dial))
            .finish_non_exhaustive()
    }
}

/// The peer address the connection reports, as reqwest's `Response::remote_addr` reads it.
fn peer(conn: &impl Connection) -> Option<SocketAddr> {
    let mut extensions = http::Extensions::new();
    conn.connected().get_extras(&mut extensions);
    extensions.get::<HttpInfo>().map(HttpInfo::remote_addr)
}

/// `err` as an `io::Error` for [`ConnectOutcome::Failed`]: of the kind of the first
/// `io::Error` among its causes (else `Other`), with `err` itself inside.
fn as_io(err: BoxError) -> io::Error {
    let mut kind = io::ErrorKind::Other;
    let mut cause: Option<&(dyn Error + 'static)> = Some(&*err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            kind = io.kind();
            break;
        }
        cause = e.source();
    }
    io::Error::new(kind, err)
}

/// The error [`as_io`] wrapped, as reqwest gave it.
fn from_io(err: io::Error) -> BoxError {
    // `as_io` always puts an error inside.
    err.into_inner()
        .unwrap_or_else(|| "connection setup failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Unnameable(http::Uri);

    #[test]
    fn the_target_is_read_from_the_uri_or_its_sealed_wrapper() {
        let of = |req: &dyn fmt::Debug| {
            let t = Target::of(req);
            (t.host.map(String::from), t.port)
        };
        let uri: http::Uri = "http://api.test:8080/x".parse().unwrap();
        assert_eq!(of(&uri), (Some("api.test".into()), Some(8080)));
        let wrapped = Unnameable("https://[::1]/".parse().unwrap());
        assert_eq!(of(&wrapped), (Some("::1".into()), Some(443)));
        let wrapped = Unnameable("http://127.0.0.1/".parse().unwrap());
        assert_eq!(of(&wrapped), (Some("127.0.0.1".into()), Some(80)));
        assert_eq!(of(&"not a uri"), (None, None));
    }

    #[test]
    fn a_failure_keeps_its_error_and_takes_the_kind_of_its_io_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error")]
        struct Wrapper(#[source] io::Error);

        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = as_io(Box::new(Wrapper(refused)));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(err.to_string(), "tcp connect error");
        let back = from_io(err);
        assert!(back.downcast_ref::<Wrapper>().is_some());

        let err = as_io("no io cause".into());
        assert_eq!(err.kind(), io::ErrorKind::Other);
    }
}
