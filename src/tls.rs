//! [`TlsConfig`]: HTTPS for the [`Connector`](crate::Connector), with traced handshakes.
//!
//! rustls with the *ring* provider: it builds with a C compiler alone (aws-lc-rs wants
//! CMake on several platforms), and it is what hyper-rustls and reqwest offer too.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;

use crate::scope::current;
use crate::trace::{DialId, Fired, NetTrace, Panics, TlsHandshakeDone, TlsHandshakeStart};

/// TLS settings for [`Connector::tls`](crate::Connector::tls): which roots to trust and
/// which HTTP versions to offer by ALPN.
///
/// Cloning is cheap.
///
/// # Examples
///
/// ```
/// use nettrace::TlsConfig;
///
/// # fn main() -> Result<(), nettrace::TlsConfigError> {
/// // The Mozilla roots (webpki-roots), offering h2 and http/1.1.
/// let default = TlsConfig::builder().build()?;
///
/// // Only a private CA, HTTP/1.1 only.
/// # let pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
/// let private = TlsConfig::builder()
///     .webpki_roots(false)
///     .add_root_pem(pem)
///     .http1_only()
///     .build();
/// assert!(private.is_err(), "that PEM holds no certificate");
/// # drop(default);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
}

/// Builds a [`TlsConfig`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TlsConfigBuilder {
    no_webpki_roots: bool,
    roots: Vec<CertificateDer<'static>>,
    pems: Vec<String>,
    insecure: bool,
    alpn: Alpn,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Alpn {
    #[default]
    Both,
    Http1,
    Http2,
}

/// A [`TlsConfig`] could not be built.
///
/// # Examples
///
/// ```
/// let err = nettrace::TlsConfig::builder()
///     .add_root_pem("not a certificate")
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().starts_with("no certificate"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM given to `add_root_pem` holds no certificate, or a malformed one.
    #[error("no certificate in the PEM data given as root (item {index})")]
    #[non_exhaustive]
    Pem {
        /// Which `add_root_pem` call, counting from 0.
        index: usize,
    },
    /// rustls refused a root certificate.
    #[error("rustls refused a root certificate")]
    Root(#[source] rustls::Error),
    /// No root to trust: webpki roots turned off and none added.
    #[error("no root certificates to trust")]
    NoRoots,
}

impl TlsConfig {
    /// Returns a builder that trusts the Mozilla roots (webpki-roots) and offers h2 and
    /// http/1.1 by ALPN.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Uses a rustls configuration as it is, except that ALPN protocols h2 and http/1.1
    /// are offered if it offers none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    /// let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let tls = nettrace::TlsConfig::from_rustls(Arc::new(config));
    /// # drop(tls);
    /// ```
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConfig {
        if !config.alpn_protocols.is_empty() {
            return TlsConfig { config };
        }
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsConfig {
            config: Arc::new(config),
        }
    }

    /// Whether the handshake offers HTTP/2 by ALPN (the HTTP client then waits for one
    /// connection per origin instead of dialing one per request).
    #[cfg(feature = "http")]
    pub(crate) fn offers_h2(&self) -> bool {
        self.config.alpn_protocols.iter().any(|p| p == b"h2")
    }

    /// Runs the handshake on `tcp`, reporting it to the trace in scope; after `timeout`
    /// (`None` is no limit) it fails with an error of kind `TimedOut` and closes `tcp`.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        dial: DialId,
        name: ServerName<'static>,
        timeout: Option<Duration>,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let addr = tcp.peer_addr()?;
        let server_name = name.to_str();
        let mut report = Report {
            trace: current(),
            dial,
            server_name: &server_name,
            addr,
            done: false,
        };
        if let Err(panic) = report.start() {
            // Every hook saw the start; the handshake does not run, its done still fires,
            // then the hook's panic continues.
            let err = io::Error::new(io::ErrorKind::Interrupted, "tls handshake abandoned");
            let mut panics = Panics::default();
            panics.keep(Err(panic));
            panics.keep(report.done(None, None, None, Some(&err)));
            panics.resume();
            unreachable!("a kept panic resumes");
        }
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let connect = connector.connect(name.clone(), tcp);
        let result = match timeout {
            None => connect.await,
            // On expiry the handshake future is dropped, and the socket with it.
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("tls handshake timed out after {limit:?}"),
                    ))
                }),
        };
        let fired = match &result {
            Ok(stream) => {
                let session = stream.get_ref().1;
                let version = session.protocol_version().and_then(version_name);
                let cipher = session
                    .negotiated_cipher_suite()
                    .and_then(|suite| suite.suite().as_str());
                report.done(version, session.alpn_protocol(), cipher, None)
            }
            Err(err) => report.done(None, None, None, Some(err)),
        };
        if let Err(panic) = fired {
            std::panic::resume_unwind(panic);
        }
        result
    }
}

/// `host` as a TLS server name (a DNS name or an IP address, without brackets).
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// Fires the handshake hooks, and the `done` one from its drop if the handshake was
/// abandoned.
struct Report<'a> {
    trace: Option<NetTrace>,
    dial: DialId,
    server_name: &'a str,
    addr: std::net::SocketAddr,
    done: bool,
}

impl Report<'_> {
    fn start(&self) -> Fired {
        let Some(trace) = &self.trace else {
            return Ok(());
        };
        trace.tls_start(&TlsHandshakeStart {
            dial: self.dial,
            server_name: self.server_name,
            addr: self.addr,
        })
    }

    fn done(
        &mut self,
        version: Option<&str>,
        alpn: Option<&[u8]>,
        cipher: Option<&str>,
        error: Option<&io::Error>,
    ) -> Fired {
        self.done = true;
        let Some(trace) = &self.trace else {
            return Ok(());
        };
        trace.tls_done(&TlsHandshakeDone {
            dial: self.dial,
            server_name: self.server_name,
            addr: self.addr,
            version,
            alpn,
            cipher,
            error,
        })
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if !self.done {
            let err = io::Error::new(io::ErrorKind::Interrupted, "tls handshake abandoned");
            let mut panics = Panics::default();
            panics.keep(self.done(None, None, None, Some(&err)));
            panics.resume();
        }
    }
}

/// The name of a TLS version, as OpenSSL and curl print it.
pub(crate) fn version_name(version: ProtocolVersion) -> Option<&'static str> {
    match version {
        ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
        ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
        _ => None,
    }
}

impl TlsConfigBuilder {
    /// Whether to trust the Mozilla roots bundled by webpki-roots.
    ///
    /// Default is `true`.
    pub fn webpki_roots(mut self, enabled: bool) -> TlsConfigBuilder {
        self.no_webpki_roots = !enabled;
        self
    }

    /// Trusts this root certificate (DER) too.
    ///
    /// Default is none.
    pub fn add_root_certificate(mut self, der: CertificateDer<'static>) -> TlsConfigBuilder {
        self.roots.push(der);
        self
    }

    /// Trusts every certificate in this PEM text too; checked by
    /// [`build`](TlsConfigBuilder::build).
    ///
    /// Default is none.
    pub fn add_root_pem(mut self, pem: &str) -> TlsConfigBuilder {
        self.pems.push(pem.to_owned());
        self
    }

    /// **Turns certificate verification off**: any certificate, for any name, is
    /// accepted (handshake signatures are still checked). For tests and debugging only —
    /// it makes the connection open to anyone on the path, as curl's `--insecure` does.
    ///
    /// Default is `false`.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> TlsConfigBuilder {
        self.insecure = accept;
        self
    }

    /// Offers only `http/1.1` by ALPN.
    ///
    /// Default is to offer `h2` and `http/1.1`.
    pub fn http1_only(mut self) -> TlsConfigBuilder {
        self.alpn = Alpn::Http1;
        self
    }

    /// Offers only `h2` by ALPN.
    ///
    /// Default is to offer `h2` and `http/1.1`.
    pub fn http2_only(mut self) -> TlsConfigBuilder {
        self.alpn = Alpn::Http2;
        self
    }

    /// Returns the configuration.
    ///
    /// # Errors
    ///
    /// A PEM that holds no valid certificate, a root rustls refuses, or no roots at all.
    pub fn build(self) -> Result<TlsConfig, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let mut config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            if !self.no_webpki_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for der in self.roots {
                roots.add(der).map_err(TlsConfigError::Root)?;
            }
            for (index, pem) in self.pems.iter().enumerate() {
                let mut found = false;
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|_| TlsConfigError::Pem { index })?;
                    roots.add(cert).map_err(TlsConfigError::Root)?;
                    found = true;
                }
                if !found {
                    return Err(TlsConfigError::Pem { index });
                }
            }
            if roots.is_empty() {
                return Err(TlsConfigError::NoRoots);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = match self.alpn {
            Alpn::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::Http2 => vec![b"h2".to_vec()],
        };
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// Accepts every certificate; still checks handshake signatures with the provider's
/// algorithms.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
