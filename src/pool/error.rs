//! [`HttpError`]: why a request sent by an [`HttpClient`](crate::HttpClient) failed (the
//! pool makes most of them, so it lives here).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::connector::ConnectError;

/// Why a request sent by an [`HttpClient`](crate::HttpClient) failed.
///
/// [`kind`](HttpError::kind) says which step failed; [`connect_error`](HttpError::connect_error)
/// gives the [`ConnectError`] (and through it the [`DialError`](crate::DialError)) when
/// the connection could not be made. The error chain ([`source`](StdError::source)) leads
/// to the cause.
///
/// # Examples
///
/// ```
/// use http_body_util::Empty;
/// use nettrace::{Connector, Dialer, HttpClient, HttpErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client: HttpClient<Empty<bytes::Bytes>> = HttpClient::new(Connector::new(Dialer::new()));
/// let request = http::Request::get("ftp://127.0.0.1/").body(Empty::new()).unwrap();
/// let err = client.request(request).await.unwrap_err();
/// assert_eq!(err.kind(), HttpErrorKind::InvalidUri);
/// # }
/// ```
pub struct HttpError {
    kind: HttpErrorKind,
    source: Source,
}

/// Which step of a request failed; see [`HttpError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The URI has no host, or a scheme other than `http` and `https`, or `https` with no
    /// TLS configuration.
    InvalidUri,
    /// The connection could not be made: the lookup, every attempt or the TLS handshake
    /// failed. [`HttpError::connect_error`] has the details. Requests that waited for the
    /// same HTTP/2 connection share this error.
    Connect,
    /// The connection was made but the HTTP handshake (the HTTP/2 preface) failed.
    Handshake,
    /// Sending the request or receiving the response head failed.
    Request,
}

#[derive(Clone)]
enum Source {
    None(&'static str),
    Connect(Arc<ConnectError>),
    Hyper(Arc<hyper::Error>),
}

impl HttpError {
    pub(crate) fn invalid_uri(reason: &'static str) -> HttpError {
        HttpError {
            kind: HttpErrorKind::InvalidUri,
            source: Source::None(reason),
        }
    }

    /// A hook panicked during the dial; the panic continues in the request that
    /// started it, the requests that joined the dial get this error.
    pub(crate) fn hook_panicked() -> HttpError {
        HttpError {
            kind: HttpErrorKind::Connect,
            source: Source::None("a trace hook panicked during the dial"),
        }
    }

    /// Three connections in a row closed before the request could use them.
    pub(crate) fn closed_before_use() -> HttpError {
        HttpError {
            kind: HttpErrorKind::Connect,
            source: Source::None(
                "the connection closed before the request could use it, three times",
            ),
        }
    }

    pub(crate) fn connect(err: Arc<ConnectError>) -> HttpError {
        let kind = match &*err {
            ConnectError::InvalidUri { .. } => HttpErrorKind::InvalidUri,
            _ => HttpErrorKind::Connect,
        };
        HttpError {
            kind,
            source: Source::Connect(err),
        }
    }

    pub(crate) fn handshake(err: Arc<hyper::Error>) -> HttpError {
        HttpError {
            kind: HttpErrorKind::Handshake,
            source: Source::Hyper(err),
        }
    }

    pub(crate) fn request(err: hyper::Error) -> HttpError {
        HttpError {
            kind: HttpErrorKind::Request,
            source: Source::Hyper(Arc::new(err)),
        }
    }

    /// Which step failed.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// The connector's error, when the connection could not be made.
    pub fn connect_error(&self) -> Option<&ConnectError> {
        match &self.source {
            Source::Connect(err) => Some(err),
            _ => None,
        }
    }

    /// The hyper error, when the HTTP exchange failed.
    pub fn hyper_error(&self) -> Option<&hyper::Error> {
        match &self.source {
            Source::Hyper(err) => Some(err),
            _ => None,
        }
    }

    /// A low-cardinality name for what failed, as OpenTelemetry's `error.type` wants it
    /// (the names of .NET's `HttpRequestError`, which the connection-setup conventions
    /// come from): `"timeout"`, `"name_resolution_error"`, `"connection_error"`,
    /// `"secure_connection_error"`, `"http_protocol_error"` or `"invalid_uri"`.
    pub(crate) fn type_name(&self) -> &'static str {
        if self.is_timeout() {
            return "timeout";
        }
        match (&self.kind, self.connect_error()) {
            (HttpErrorKind::InvalidUri, _) => "invalid_uri",
            (_, Some(ConnectError::InvalidUri { .. })) => "invalid_uri",
            (
                _,
                Some(ConnectError::Dial(
                    crate::DialError::Resolve(_) | crate::DialError::NoAddresses { .. },
                )),
            ) => "name_resolution_error",
            #[cfg(feature = "tls")]
            (_, Some(ConnectError::Tls { .. })) => "secure_connection_error",
            (HttpErrorKind::Connect, _) => "connection_error",
            _ => "http_protocol_error",
        }
    }

    /// Whether the failure was a timeout (of the dial or the TLS handshake).
    pub fn is_timeout(&self) -> bool {
        let mut source: Option<&(dyn StdError + 'static)> = self.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return true;
                }
            }
            if let Some(crate::DialError::Timeout { .. }) = cause.downcast_ref() {
                return true;
            }
            source = cause.source();
        }
        false
    }
}

impl Clone for HttpError {
    fn clone(&self) -> Self {
        HttpError {
            kind: self.kind,
            source: self.source.clone(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.source) {
            (HttpErrorKind::InvalidUri, Source::None(reason)) => {
                write!(f, "invalid request URI: {reason}")
            }
            (_, Source::None(reason)) => f.write_str(reason),
            (HttpErrorKind::InvalidUri, _) => f.write_str("invalid request URI"),
            (HttpErrorKind::Connect, _) => f.write_str("connecting failed"),
            (HttpErrorKind::Handshake, _) => f.write_str("the HTTP handshake failed"),
            _ => f.write_str("the request failed"),
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpError");
        d.field("kind", &self.kind);
        match &self.source {
            Source::None(reason) => d.field("reason", reason),
            Source::Connect(err) => d.field("source", err),
            Source::Hyper(err) => d.field("source", err),
        };
        d.finish()
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.source {
            Source::None(_) => None,
            Source::Connect(err) => Some(&**err),
            Source::Hyper(err) => Some(&**err),
        }
    }
}
