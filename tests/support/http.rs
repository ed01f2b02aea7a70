//! Loopback HTTP/1.1 + HTTP/2 servers (plain and TLS) and a throwaway CA.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The names every [`TestCa`] server certificate covers.
pub const DEFAULT_NAMES: [&str; 5] = [
    "localhost",
    "example.test",
    "*.example.test",
    "127.0.0.1",
    "::1",
];

/// A private CA and a server certificate it signed for "localhost",
/// "example.test", "*.example.test", 127.0.0.1, ::1 and any extra names.
pub struct TestCa {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    server_der: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    /// A fresh CA and server certificate with the default names.
    pub fn new() -> TestCa {
        TestCa::with_names(&[])
    }

    /// Like [`TestCa::new`], plus the extra SANs given (IP literals become IP SANs).
    pub fn with_names(names: &[&str]) -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "nettrace test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let mut sans: Vec<String> = DEFAULT_NAMES.map(String::from).to_vec();
        for name in names {
            if !sans.iter().any(|s| s == name) {
                sans.push(name.to_string());
            }
        }
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let server = params.signed_by(&key, &ca).unwrap();

        TestCa {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            server_der: server.der().clone(),
            server_key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// The CA certificate, for client trust stores.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A rustls (ring) server config presenting the server certificate,
    /// offering `alpn` in the order given.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_der.clone()],
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

#[derive(Default)]
struct State {
    delay: Mutex<Duration>,
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// A hyper server (HTTP/1.1 and HTTP/2) on loopback. Every request gets
/// `200 OK`, body `hello from <path>` and header `x-http-version`.
/// Dropping it stops the accept loop and every connection.
pub struct HttpServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Plain HTTP on `ip`:0.
    pub async fn plain(ip: &str) -> HttpServer {
        HttpServer::start(SocketAddr::new(ip.parse().unwrap(), 0), None).await
    }

    /// Plain HTTP on exactly `addr`.
    pub async fn plain_on(addr: SocketAddr) -> HttpServer {
        HttpServer::start(addr, None).await
    }

    /// HTTPS on `ip`:0 with `ca`'s server certificate, offering `alpn`.
    pub async fn tls(ip: &str, ca: &TestCa, alpn: &[&[u8]]) -> HttpServer {
        let acceptor = TlsAcceptor::from(ca.server_config(alpn));
        HttpServer::start(SocketAddr::new(ip.parse().unwrap(), 0), Some(acceptor)).await
    }

    async fn start(addr: SocketAddr, tls: Option<TlsAcceptor>) -> HttpServer {
        assert!(addr.ip().is_loopback(), "test servers bind loopback only");
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, aborting every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while conns.try_join_next().is_some() {}
                st.connections.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                let (st, tls) = (st.clone(), tls.clone());
                conns.spawn(async move {
                    match tls {
                        None => serve(stream, st).await,
                        // A failed handshake just drops this connection.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, st).await;
                            }
                        }
                    }
                });
            }
        });
        HttpServer { addr, state, task }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wait `d` inside the service before answering each request (default 0).
    pub fn set_delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    /// TCP connections accepted so far (counted before any TLS handshake).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (counted on arrival, before the delay).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection; the auto builder picks HTTP/1.1 or HTTP/2 by preface.
async fn serve<S>(io: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move {
            state.requests.fetch_add(1, Ordering::SeqCst);
            let delay = *state.delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let body = format!("hello from {}", req.uri().path());
            let resp = Response::builder()
                .header("x-http-version", format!("{:?}", req.version()))
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A GET of `url` with an empty body.
pub fn get(url: &str) -> Request<http_body_util::Empty<Bytes>> {
    Request::get(url)
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// Lines a test's hooks write, one per event, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

#[cfg(test)]
mod selftest {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    use rustls::pki_types::ServerName;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::{client::TlsStream, TlsConnector};

    type Http = Client<HttpConnector, Empty<Bytes>>;

    /// GET `url`, returning (x-http-version, body).
    async fn get(client: &Http, url: String) -> (String, String) {
        parts(client.get(url.parse().unwrap()).await.unwrap()).await
    }

    /// Splits a 200 response into (x-http-version, body).
    async fn parts(resp: Response<Incoming>) -> (String, String) {
        assert_eq!(resp.status(), 200);
        let version = resp.headers()["x-http-version"]
            .to_str()
            .unwrap()
            .to_string();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (version, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn tls_connect(
        addr: SocketAddr,
        root: CertificateDer<'static>,
        name: &str,
        alpn: &[u8],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = ServerName::try_from(name.to_string()).unwrap();
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    #[tokio::test]
    async fn plain_http1_h2_delay_and_chosen_port() {
        let srv = HttpServer::plain("127.0.0.1").await;
        let h1: Http = Client::builder(TokioExecutor::new()).build_http();
        for _ in 0..2 {
            let got = get(&h1, format!("http://{}/a/b", srv.addr())).await;
            assert_eq!(got, ("HTTP/1.1".into(), "hello from /a/b".into()));
        }
        assert_eq!((srv.connections(), srv.requests()), (1, 2));

        let h2: Http = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let got = get(&h2, format!("http://{}/two", srv.addr())).await;
        assert_eq!(got, ("HTTP/2.0".into(), "hello from /two".into()));
        assert_eq!((srv.connections(), srv.requests()), (2, 3));

        srv.set_delay(Duration::from_millis(300));
        let start = Instant::now();
        get(&h1, format!("http://{}/slow", srv.addr())).await;
        assert!(start.elapsed() >= Duration::from_millis(300));

        let addr = std::net::TcpListener::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let srv6 = HttpServer::plain_on(addr).await;
        assert_eq!(srv6.addr(), addr);
        let got = get(&h1, format!("http://{addr}/v6")).await;
        assert_eq!(got.1, "hello from /v6");
    }

    #[tokio::test]
    async fn tls_alpn_names_and_bad_handshakes() {
        let ca = TestCa::with_names(&["extra.test"]);
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let srv = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
        let addr = srv.addr();

        // Failed handshakes (untrusted CA, plaintext) leave the server running.
        let other = TestCa::new().ca_der();
        assert!(tls_connect(addr, other, "localhost", b"h2").await.is_err());
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = tcp.read_to_end(&mut Vec::new()).await;

        let tls = tls_connect(addr, ca.ca_der(), "localhost", b"h2").await;
        let tls = tls.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get("https://localhost/h2").body(Empty::<Bytes>::new());
        let got = parts(h2.send_request(req.unwrap()).await.unwrap()).await;
        assert_eq!(got, ("HTTP/2.0".into(), "hello from /h2".into()));

        for name in ["a.example.test", "extra.test", "127.0.0.1", "::1"] {
            let tls = tls_connect(addr, ca.ca_der(), name, b"http/1.1").await;
            let tls = tls.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::get("/tls").header("host", "localhost");
            let resp = h1
                .send_request(req.body(Empty::<Bytes>::new()).unwrap())
                .await;
            let got = parts(resp.unwrap()).await;
            assert_eq!(got, ("HTTP/1.1".into(), "hello from /tls".into()));
        }
        assert_eq!((srv.connections(), srv.requests()), (7, 5));
    }

    #[tokio::test]
    async fn drop_closes_listener_and_connections() {
        let srv = HttpServer::plain("127.0.0.1").await;
        let addr = srv.addr();
        let mut held = TcpStream::connect(addr).await.unwrap();
        held.write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        assert!(held.read(&mut buf).await.unwrap() > 0);
        drop(srv);
        let mut rest = Vec::new();
        let eof = tokio::time::timeout(Duration::from_secs(5), held.read_to_end(&mut rest));
        assert!(eof.await.is_ok(), "connection not closed on drop");
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
