//! The pool's I/O layer where a race decides: states reached by hand, on real loopback
//! connections.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::Dialer;

async fn pool_and_origin() -> (Pool<String>, TcpListener, Uri, Key) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: Uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let key = Key::of(&uri).unwrap();
    let pool = Pool::new(Connector::new(Dialer::new()), Config::default());
    (pool, listener, uri, key)
}

/// Registers `request` as waiting for a dial of its own, as a checkout does; returns the
/// dial and the request's end of the reply.
fn wait_for_a_dial(
    pool: &Pool<String>,
    uri: &Uri,
    key: &Key,
    request: RequestId,
    report: Option<DialReport>,
) -> (ConnId, oneshot::Receiver<Result<Lease<String>, Refused>>) {
    let mut state = pool.inner.lock();
    let Checkout::Wait { dial: Some(id) } =
        state
            .checkouts
            .checkout(key, request, false, Instant::now())
    else {
        panic!("an empty pool dials");
    };
    let (reply, rx) = oneshot::channel();
    state.waiting.insert(
        request,
        Waiting {
            reply,
            uri: uri.clone(),
            report,
        },
    );
    (id, rx)
}

#[tokio::test]
async fn a_request_handed_a_connection_that_closed_meanwhile_is_told_to_ask_again() {
    let (pool, listener, uri, key) = pool_and_origin().await;
    let request = RequestId::next();
    let (id, mut reply) = wait_for_a_dial(&pool, &uri, &key, request, None);

    // The dial made a connection whose task ended before the pool saw it (the server
    // hung up at once, the task ran on another thread): hyper reports it closed.
    let (stream, accepted) = tokio::join!(
        TcpStream::connect(listener.local_addr().unwrap()),
        listener.accept()
    );
    let _server_side = accepted.unwrap();
    let stream = ConnectorStream::plain(stream.unwrap()).unwrap();
    let mut made = pool.inner.handshake(stream).await.unwrap();
    drop(std::mem::replace(&mut made.driver, Box::pin(async {})));
    assert!(matches!(&made.sender, Sender::H1(h1) if h1.is_closed()));

    pool.inner.dialed(key, id, Ok(made), None);
    assert!(
        matches!(reply.try_recv(), Ok(Err(Refused::Closed))),
        "the request is answered (ask again), it does not wait forever"
    );
    assert!(pool.inner.lock().waiting.is_empty());
}

#[tokio::test]
async fn a_dial_started_for_a_request_that_has_ended_reports_nothing_to_it() {
    let (pool, listener, uri, key) = pool_and_origin().await;
    let events = Arc::new(AtomicUsize::new(0));
    let seen = events.clone();
    let report = DialReport {
        net: NetTrace::new().on_connection_setup_start(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }),
        gates: Arc::default(),
        record: true,
        panic: Arc::default(),
    };
    let request = RequestId::next();
    let (id, reply) = wait_for_a_dial(&pool, &uri, &key, request, Some(report.clone()));

    // The request ends (dropped) just before another task starts a dial for it: a
    // request that joined an HTTP/2 dial that answered HTTP/1.1 gets its own dial from
    // the task of the dial that answered.
    drop(reply);
    pool.inner.lock().checkouts.leave(&key, request);
    let mut panics = Panics::default();
    report.end(&mut panics);
    panics.resume();
    Inner::spawn_dial(&pool.inner, key, id, uri, Some(report));

    let _server_side = listener.accept().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while pool.inner.lock().checkouts.idle_count() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the dial made a connection for the pool");
    assert_eq!(
        events.load(Ordering::SeqCst),
        0,
        "no event reaches a request after it ended"
    );
}
