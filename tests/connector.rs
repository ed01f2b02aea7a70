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
