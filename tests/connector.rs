//! The hyper connector on its own: URI checks and the trace captured in `call()`.

use std::sync::{Arc, Mutex};

use nettrace::{ConnectError, Connector, Dialer, NetTrace};
use tower_service::Service;

use crate::support::net::Live;

#[tokio::test]
async fn bad_uris_are_typed_errors() {
    let mut connector = Connector::new(Dialer::new());
    for (uri, why) in [
        ("ftp://127.0.0.1/", "scheme"),
        ("/just/a/path", "no scheme"),
        ("unix://localhost/", "scheme"),
    ] {
        let err = connector.call(uri.parse().unwrap()).await.unwrap_err();
        match &err {
            ConnectError::InvalidUri { reason, .. } => {
                assert!(reason.contains(why), "{uri}: {err}")
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
    #[cfg(not(feature = "tls"))]
    {
        let err = connector
            .call("https://127.0.0.1/".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("tls"), "{err}");
    }
    #[cfg(feature = "tls")]
    {
        let err = connector
            .call("https://127.0.0.1/".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS configuration"), "{err}");
    }
}

#[tokio::test]
async fn the_trace_is_taken_in_call_and_kept_in_a_spawned_connect() {
    let live = Live::on("127.0.0.1").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let trace = NetTrace::new().on_connect_start(move |e| log.lock().unwrap().push(e.addr));
    let mut connector = Connector::new(Dialer::new());
    let uri: http::Uri = format!("http://{}/", live.addr).parse().unwrap();

    // call() inside the scope; the future then runs in another task, with no scope.
    #[allow(clippy::async_yields_async)]
    let connecting = nettrace::with_trace(trace, async { connector.call(uri) }).await;
    let stream = tokio::spawn(connecting).await.unwrap().unwrap();

    assert_eq!(stream.info().remote_addr(), live.addr);
    assert_eq!(*seen.lock().unwrap(), [live.addr]);
    use hyper_util::client::legacy::connect::Connection;
    let connected = stream.connected();
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    let info = extensions
        .get::<nettrace::ConnectionInfo>()
        .expect("info is an extra");
    assert_eq!(info.remote_addr(), live.addr);
    assert_eq!(info.local_addr(), stream.info().local_addr());
}

/// A peer that accepts TCP and never speaks: the handshake ends at the connector's limit,
/// and the trace sees one start and one done carrying the timeout.
#[cfg(feature = "tls")]
#[tokio::test]
async fn a_silent_peer_fails_the_tls_handshake_at_its_timeout() {
    use std::io;
    use std::time::{Duration, Instant};

    use nettrace::TlsConfig;

    use crate::support::http::TestCa;

    #[derive(Debug, PartialEq)]
    enum Tls {
        Start(std::net::SocketAddr),
        Done(Option<io::ErrorKind>),
    }

    let silent = Live::on("127.0.0.1").await;
    let ca = TestCa::new();
    let tls = TlsConfig::builder()
        .webpki_roots(false)
        .add_root_certificate(ca.ca_der())
        .build()
        .unwrap();
    let limit = Duration::from_millis(300);
    let mut connector = Connector::new(Dialer::new())
        .tls(tls)
        .tls_handshake_timeout(limit);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (start, done) = (seen.clone(), seen.clone());
    let trace = NetTrace::new()
        .on_tls_handshake_start(move |e| start.lock().unwrap().push(Tls::Start(e.addr)))
        .on_tls_handshake_done(move |e| {
            done.lock()
                .unwrap()
                .push(Tls::Done(e.error.map(io::Error::kind)))
        });
    let uri: http::Uri = format!("https://{}/", silent.addr).parse().unwrap();

    let began = Instant::now();
    // The trace is read in `call`, so `call` runs inside the scope.
    let connect = nettrace::with_trace(trace, async { connector.call(uri).await });
    let result = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .expect("the handshake limit ends the connect well within 5 s");
    let took = began.elapsed();

    let err = result.expect_err("a silent peer cannot complete a handshake");
    assert!(took >= limit, "failed after {took:?}, before the limit");
    match &err {
        ConnectError::Tls {
            server_name,
            source,
            ..
        } => {
            assert_eq!(server_name, "127.0.0.1");
            assert_eq!(source.kind(), io::ErrorKind::TimedOut, "{source}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Tls::Start(silent.addr),
            Tls::Done(Some(io::ErrorKind::TimedOut))
        ]
    );
}
