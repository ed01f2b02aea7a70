//! `nettrace demo`: everything on loopback, no network needed. A DNS server answers
//! `demo.nettrace.test` with `::1` (first) and `127.0.0.1`; `[::1]:P` is a black hole (a
//! listener whose accept queue is full, so connects hang like to a dead host) and
//! `127.0.0.1:P` serves HTTPS with a certificate from a CA made at start.

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub(crate) const NAME: &str = "demo.nettrace.test";

/// The running demo peers; dropping it stops nothing by itself (the process exits).
pub(crate) struct Demo {
    pub(crate) url: String,
    pub(crate) dns: SocketAddr,
    pub(crate) ca_pem: String,
    _hole: Socket,
    _fillers: Vec<TcpStream>,
}

pub(crate) async fn start() -> anyhow::Result<Demo> {
    let dns = serve_dns().await?;
    let (ca_pem, tls) = certificates()?;
    for _ in 0..20 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let Ok((hole, fillers)) =
            black_hole(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)).await
        else {
            continue;
        };
        tokio::spawn(serve_https(listener, tls.clone()));
        return Ok(Demo {
            url: format!("https://{NAME}:{port}/hello"),
            dns,
            ca_pem,
            _hole: hole,
            _fillers: fillers,
        });
    }
    bail!("no port free on both 127.0.0.1 and ::1 for the demo")
}

/// Answers `demo.nettrace.test` over UDP: AAAA `::1`, A `127.0.0.1`; NXDOMAIN otherwise.
async fn serve_dns() -> anyhow::Result<SocketAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = socket.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(reply) = answer(&buf[..n]) {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    });
    Ok(addr)
}

fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let mut response = Message::new(request.id, MessageType::Response, request.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_query(question.clone());
    let name = question.name.to_ascii().to_ascii_lowercase();
    if name.trim_end_matches('.') != NAME {
        response.metadata.response_code = ResponseCode::NXDomain;
        return response.to_vec().ok();
    }
    let rdata = match question.query_type {
        RecordType::A => Some(RData::A(A(Ipv4Addr::LOCALHOST))),
        RecordType::AAAA => Some(RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
        _ => None,
    };
    if let Some(rdata) = rdata {
        response.add_answer(Record::from_rdata(question.name.clone(), 60, rdata));
    }
    response.to_vec().ok()
}

/// A CA and a server certificate for the demo name; returns the CA's PEM and the
/// server's TLS configuration.
fn certificates() -> anyhow::Result<(String, Arc<rustls::ServerConfig>)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "nettrace demo CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let mut params = CertificateParams::new(vec![NAME.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, NAME);
    let key = KeyPair::generate()?;
    let server = params.signed_by(&key, &ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .context("demo certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((ca.pem(), Arc::new(config)))
}

/// Serves HTTPS (h2 or HTTP/1.1 by ALPN): 5 ms of "work", then a short greeting.
async fn serve_https(listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(|_request| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                    b"hello from the nettrace demo\n",
                ))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A listener with `listen(0)` whose accept queue is then filled, so the kernel drops
/// every further SYN.
async fn black_hole(addr: SocketAddr) -> anyhow::Result<(Socket, Vec<TcpStream>)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    socket.listen(0)?;
    let mut fillers = Vec::new();
    while let Ok(filler) =
        tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
    {
        fillers.push(filler?);
        if fillers.len() > 16 {
            bail!("the accept queue of {addr} never filled");
        }
    }
    Ok((socket, fillers))
}
