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
