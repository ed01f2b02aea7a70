//! [`ConnectorStream`]: the connection a [`Connector`](crate::Connector) hands to hyper.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Facts about a connection made by a [`Connector`](crate::Connector).
///
/// hyper-util copies it into the extensions of every response received on the
/// connection, so a response tells where it came from.
///
/// # Examples
///
/// ```
/// # async fn example(response: http::Response<hyper::body::Incoming>) {
/// if let Some(info) = response.extensions().get::<nettrace::ConnectionInfo>() {
///     println!("from {} via {}", info.remote_addr(), info.local_addr());
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    inner: Arc<InfoInner>,
}

#[derive(Debug)]
struct InfoInner {
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    alpn: Option<Vec<u8>>,
    tls_version: Option<&'static str>,
    tls_cipher: Option<&'static str>,
}

impl ConnectionInfo {
    /// The address of the peer.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The ALPN protocol negotiated by TLS (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.inner.alpn.as_deref()
    }

    /// The TLS version (`"TLSv1.3"`), or `None` for a plain connection.
    pub fn tls_version(&self) -> Option<&'static str> {
        self.inner.tls_version
    }

    /// The TLS cipher suite, as its IANA name, or `None` for a plain connection.
    pub fn tls_cipher(&self) -> Option<&'static str> {
        self.inner.tls_cipher
    }
}

/// The stream a [`Connector`](crate::Connector) returns: a TCP connection, possibly
/// wrapped in TLS. It implements hyper's I/O traits and hyper-util's `Connection`.
///
/// # Examples
///
/// ```
/// use hyper_util::client::legacy::connect::Connection;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let uri: http::Uri = format!("http://{}/", listener.local_addr()?).parse()?;
/// let mut connector = nettrace::Connector::new(nettrace::Dialer::new());
/// let stream: nettrace::ConnectorStream = connector.call(uri).await?;
/// assert!(stream.info().tls_version().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ConnectorStream {
    io: Io,
    info: ConnectionInfo,
}

#[derive(Debug)]
enum Io {
    Plain(TokioIo<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl ConnectorStream {
    pub(crate) fn plain(stream: TcpStream) -> io::Result<ConnectorStream> {
        let info = ConnectionInfo {
            inner: Arc::new(InfoInner {
                remote_addr: stream.peer_addr()?,
                local_addr: stream.local_addr()?,
                alpn: None,
                tls_version: None,
                tls_cipher: None,
            }),
        };
        Ok(ConnectorStream {
            io: Io::Plain(TokioIo::new(stream)),
            info,
        })
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(
        stream: tokio_rustls::client::TlsStream<TcpStream>,
    ) -> io::Result<ConnectorStream> {
        let (tcp, session) = stream.get_ref();
        let info = ConnectionInfo {
            inner: Arc::new(InfoInner {
                remote_addr: tcp.peer_addr()?,
                local_addr: tcp.local_addr()?,
                alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                tls_version: session
                    .protocol_version()
                    .and_then(crate::tls::version_name),
                tls_cipher: session
                    .negotiated_cipher_suite()
                    .and_then(|suite| suite.suite().as_str()),
            }),
        };
        Ok(ConnectorStream {
            io: Io::Tls(Box::new(TokioIo::new(stream))),
            info,
        })
    }

    /// Returns facts about this connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The TCP socket under any TLS.
    pub fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(io) => io.inner(),
            #[cfg(feature = "tls")]
            Io::Tls(io) => io.inner().get_ref().0,
        }
    }
}

impl Connection for ConnectorStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.info.clone());
        if self.info.alpn() == Some(b"h2") {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for ConnectorStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl Write for ConnectorStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_flush(cx),
            #[cfg(feature = "tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(io) => io.is_write_vectored(),
            #[cfg(feature = "tls")]
            Io::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }
}
