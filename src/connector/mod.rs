//! [`Connector`]: a hyper-util connector built on the traced [`Dialer`].

mod stream;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
#[cfg(feature = "tls")]
use std::time::Duration;

use http::Uri;

use crate::dial::{Dial, DialError, Dialer};
use crate::scope::TraceExt;

pub use self::stream::{ConnectionInfo, ConnectorStream};

/// A connector for [`hyper_util::client::legacy::Client`] that dials with a traced
/// [`Dialer`], so every connection the client makes reports its lookup and attempts to
/// the trace of the request that caused it.
///
/// The trace is read in [`call`](tower_service::Service::call), in the task that sends
/// the request, and the connect future carries it along: hyper-util may finish a connect
/// in a background task, and the events still reach the trace of the request that caused
/// it.
///
/// That can be late. hyper-util's legacy pool races an idle connection against a new
/// connect; when the idle one wins, the connect goes on in the background for the pool,
/// and its remaining events (`DnsDone`, `ConnectDone`, the TLS handshake) reach that
/// request's trace after the request may have ended. Every start still gets its done, and
/// each event carries its [`DialId`](crate::DialId), so a consumer can tell which dial an
/// event belongs to; but "nothing after the request ended" does not hold under this pool.
///
/// `HttpClient` (feature `http`) uses this connector on a pool of its own that knows
/// which request caused which dial: a request's trace gets only its own events, and when
/// it ends, a dial of its still going is cut off (`ConnectOutcome::Detached`) and reports
/// to no one. Use it when a trace must hold one request's story; docs/GUIDE.md, "Use it
/// in your service".
///
/// Plain `http` URIs need nothing more; `https` needs the `tls` feature and
/// [`Connector::tls`].
///
/// # Examples
///
/// ```
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use nettrace::{Connector, Dialer};
///
/// let connector = Connector::new(Dialer::new());
/// let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct Connector {
    dialer: Dialer,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
    /// `None` is no limit.
    #[cfg(feature = "tls")]
    tls_handshake_timeout: Option<Duration>,
}

/// The handshake limit of a new [`Connector`], as Go's `http.DefaultTransport`.
#[cfg(feature = "tls")]
const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a [`Connector`] could not connect.
///
/// # Examples
///
/// ```
/// use nettrace::{ConnectError, Connector, Dialer};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut connector = Connector::new(Dialer::new());
/// let err = connector.call("ftp://127.0.0.1/".parse().unwrap()).await.unwrap_err();
/// assert!(matches!(err, ConnectError::InvalidUri { .. }));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URI has no host, or a scheme other than `http` and `https`.
    #[error("cannot connect to {uri}: {reason}")]
    #[non_exhaustive]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TCP connection could not be made.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The TLS handshake failed (the rustls error, such as an unknown issuer, is the
    /// source of the `io::Error`), or did not finish within
    /// [`Connector::tls_handshake_timeout`] (the `io::Error` is then of kind
    /// [`io::ErrorKind::TimedOut`]).
    #[error("tls handshake with {server_name} failed")]
    #[non_exhaustive]
    Tls {
        /// The name the certificate was checked against.
        server_name: String,
        /// The handshake error.
        #[source]
        source: io::Error,
    },
    /// The socket failed after connecting (reading its addresses).
    #[error("connection failed after connecting")]
    Io(#[source] io::Error),
}

impl Connector {
    /// Returns a connector that dials with `dialer` and speaks plain TCP (`http` URIs).
    ///
    /// # Examples
    ///
    /// ```
    /// let connector = nettrace::Connector::new(nettrace::Dialer::new());
    /// # drop(connector);
    /// ```
    pub fn new(dialer: Dialer) -> Connector {
        Connector {
            dialer,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: Some(DEFAULT_TLS_HANDSHAKE_TIMEOUT),
        }
    }

    /// Enables `https` URIs, with this TLS configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{Connector, Dialer, TlsConfig};
    ///
    /// let connector = Connector::new(Dialer::new()).tls(TlsConfig::builder().build().unwrap());
    /// # drop(connector);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Connector {
        self.tls = Some(config);
        self
    }

    /// Limits the TLS handshake of an `https` connect, from the moment the TCP connection
    /// is made. When it expires the connect fails with [`ConnectError::Tls`] whose
    /// `io::Error` is of kind [`io::ErrorKind::TimedOut`], the socket is closed, and the
    /// `on_tls_handshake_done` hook reports that error. The TCP dial has its own limit,
    /// [`DialerBuilder::timeout`](crate::DialerBuilder::timeout).
    ///
    /// A zero duration means no limit, as in Go's `Transport.TLSHandshakeTimeout`: a peer
    /// that accepts the connection and never answers then keeps the connect pending.
    ///
    /// Default is 10 seconds (Go's `http.DefaultTransport`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use nettrace::{Connector, Dialer, TlsConfig};
    ///
    /// let connector = Connector::new(Dialer::new())
    ///     .tls(TlsConfig::builder().build().unwrap())
    ///     .tls_handshake_timeout(Duration::from_secs(3));
    /// # drop(connector);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Connector {
        self.tls_handshake_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Returns the dialer this connector uses.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Starts a connect: the dial's id (the HTTP client's pool names its connection
    /// setup events by it) and the future, which reports to the trace in scope where it
    /// is polled.
    pub(crate) fn connect(
        &self,
        uri: Uri,
    ) -> Result<
        (
            crate::DialId,
            impl Future<Output = Result<ConnectorStream, ConnectError>> + Send + 'static,
        ),
        ConnectError,
    > {
        let invalid = |reason| ConnectError::InvalidUri {
            uri: uri.to_string(),
            reason,
        };
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(invalid("the scheme is not http or https")),
            None => return Err(invalid("the URI has no scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("the URI has no host"))?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // RFC 6874: a zone in a URI is written `%25` (`[fe80::1%25eth0]`).
        let unescaped;
        let host = if host.starts_with('[') && host.contains("%25") {
            unescaped = host.replacen("%25", "%", 1);
            unescaped.as_str()
        } else {
            host
        };
        #[cfg(feature = "tls")]
        let tls = match (https, &self.tls) {
            (false, _) => None,
            (true, Some(config)) => {
                let name = crate::tls::server_name(host)
                    .ok_or_else(|| invalid("the host is not a valid TLS server name"))?;
                Some((config.clone(), name, self.tls_handshake_timeout))
            }
            (true, None) => {
                return Err(invalid("https needs a TLS configuration (Connector::tls)"))
            }
        };
        #[cfg(not(feature = "tls"))]
        if https {
            return Err(invalid("https needs the `tls` feature"));
        }
        #[cfg(not(feature = "tls"))]
        let tls: Tls = ();
        let dial = self.dialer.dial_host(host, port);
        Ok((dial.id(), establish(dial, tls)))
    }

    /// Whether a connection to `uri` may speak HTTP/2 without prior knowledge: `https`
    /// with ALPN offering `h2`.
    #[cfg(feature = "http")]
    pub(crate) fn may_negotiate_h2(&self, uri: &Uri) -> bool {
        #[cfg(feature = "tls")]
        return uri.scheme_str() == Some("https")
            && self
                .tls
                .as_ref()
                .is_some_and(crate::tls::TlsConfig::offers_h2);
        #[cfg(not(feature = "tls"))]
        return {
            let _ = uri;
            false
        };
    }
}

#[cfg(feature = "tls")]
type Tls = Option<(
    crate::tls::TlsConfig,
    rustls::pki_types::ServerName<'static>,
    Option<Duration>,
)>;
#[cfg(not(feature = "tls"))]
type Tls = ();

/// Dials, then runs the TLS handshake if asked to.
async fn establish(
    dial: Dial,
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))] tls: Tls,
) -> Result<ConnectorStream, ConnectError> {
    #[cfg(feature = "tls")]
    let id = dial.id();
    let tcp = dial.await?;
    #[cfg(feature = "tls")]
    if let Some((config, name, timeout)) = tls {
        let server_name = name.to_str().into_owned();
        return match config.handshake(tcp, id, name, timeout).await {
            Ok(stream) => ConnectorStream::tls(stream).map_err(ConnectError::Io),
            Err(source) => Err(ConnectError::Tls {
                server_name,
                source,
            }),
        };
    }
    ConnectorStream::plain(tcp).map_err(ConnectError::Io)
}

impl tower_service::Service<Uri> for Connector {
    type Response = ConnectorStream;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        // The trace is taken now, in the caller's task, and travels with the future.
        let future: BoxConnect = match self.connect(uri) {
            Ok((_, connect)) => Box::pin(connect.in_current_trace()),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        };
        Connecting { future }
    }
}

type BoxConnect = Pin<Box<dyn Future<Output = Result<ConnectorStream, ConnectError>> + Send>>;

/// The future of one [`Connector`] connect.
///
/// # Cancel safety
///
/// Dropping it closes every socket it opened and fires the pending hooks, as dropping a
/// [`Dial`](crate::Dial) does.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Connecting {
    future: BoxConnect,
}

impl Future for Connecting {
    type Output = Result<ConnectorStream, ConnectError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for Connecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connecting").finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn the_tls_handshake_timeout_is_10_seconds_by_default_and_zero_means_none() {
        let connector = Connector::new(Dialer::new());
        assert_eq!(
            connector.tls_handshake_timeout,
            Some(Duration::from_secs(10))
        );
        assert!(
            format!("{connector:?}").contains("tls_handshake_timeout: Some(10s)"),
            "{connector:?}"
        );
        let set = |d| Connector::new(Dialer::new()).tls_handshake_timeout(d);
        assert_eq!(set(Duration::ZERO).tls_handshake_timeout, None);
        assert_eq!(
            set(Duration::from_millis(300)).tls_handshake_timeout,
            Some(Duration::from_millis(300))
        );
    }
}
