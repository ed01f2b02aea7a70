//! Compile-time checks that the public types are `Send`/`Sync` where the docs say so.

use nettrace::{
    CoalescingResolver, HickoryResolver, Lookup, NetTrace, ResolveError, Scoped, StaticResolver,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn send_sync<T: Send + Sync>() {}

type SendFuture = std::future::Ready<()>;

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<NetTrace>();
    send_sync::<ResolveError>();
    send_sync::<CoalescingResolver>();
    send_sync::<HickoryResolver>();
    send_sync::<StaticResolver>();
    send::<Lookup>();
    sync::<Lookup>();
    send::<Scoped<SendFuture>>();
    sync::<Scoped<SendFuture>>();
}

#[test]
fn scoped_futures_of_send_futures_are_send() {
    fn assert_send<F: std::future::Future + Send>(_: &F) {}
    let trace = NetTrace::new();
    let resolver = CoalescingResolver::new(StaticResolver::new());
    let fut = nettrace::with_trace(trace, resolver.lookup("a.test"));
    assert_send(&fut);
    assert_send(&nettrace::without_trace(async {}));
    assert_send(&nettrace::TraceExt::in_current_trace(async {}));
}

#[test]
fn dial_future_is_send_sync_and_unpin() {
    fn unpin<T: Unpin>() {}
    send_sync::<nettrace::Dial>();
    unpin::<nettrace::Dial>();
    send_sync::<nettrace::Dialer>();
    send_sync::<nettrace::DialError>();
}

#[cfg(feature = "hyper")]
#[test]
fn connector_types_are_send() {
    fn unpin<T: Unpin>() {}
    send_sync::<nettrace::Connector>();
    send::<nettrace::Connecting>();
    send_sync::<nettrace::ConnectorStream>();
    unpin::<nettrace::ConnectorStream>();
    send_sync::<nettrace::ConnectError>();
}

#[cfg(feature = "http")]
#[test]
fn http_types_are_send() {
    type Body = http_body_util::Empty<bytes::Bytes>;
    send_sync::<nettrace::HttpClient<Body>>();
    send::<nettrace::ResponseFuture>();
    send::<nettrace::ResponseBody>();
    send_sync::<nettrace::HttpTrace>();
    send_sync::<nettrace::TimingsRecorder>();
}
