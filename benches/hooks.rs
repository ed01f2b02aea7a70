//! The cost of firing one event: no trace in scope, one no-op trace, four nested no-op
//! traces, against a plain `Arc<dyn Fn>` call measured in the same run.
//!
//! Run with `cargo bench --bench hooks`.

use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use nettrace::{with_trace, NetTrace};

mod support;

type Timed = Pin<Box<dyn Future<Output = Duration>>>;
type PlainHook = Arc<dyn Fn(&(SocketAddr, usize)) + Send + Sync>;

fn fire_loop(iters: u64) -> Duration {
    let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
    let dial = nettrace::__private::next_dial_id();
    let start = Instant::now();
    for i in 0..iters {
        nettrace::__private::fire_connect_start(dial, black_box(addr), black_box(i as usize));
    }
    start.elapsed()
}

fn in_scopes(depth: usize, iters: u64) -> Duration {
    let mut fut: Timed = Box::pin(async move { fire_loop(iters) });
    for _ in 0..depth {
        let noop = NetTrace::new().on_connect_start(|e| {
            black_box(e);
        });
        fut = Box::pin(with_trace(noop, fut));
    }
    fut.now_or_never().expect("no await inside")
}

fn hooks(c: &mut Criterion) {
    let mut group = c.benchmark_group("fire_connect_start");
    group.bench_function("baseline_arc_dyn_fn", |b| {
        let hook: PlainHook = Arc::new(|e| {
            black_box(e);
        });
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                let hook = black_box(&hook);
                hook(&(black_box(addr), black_box(i as usize)));
            }
            start.elapsed()
        })
    });
    group.bench_function("no_trace", |b| b.iter_custom(fire_loop));
    group.bench_function("one_noop_trace", |b| b.iter_custom(|n| in_scopes(1, n)));
    group.bench_function("four_nested_traces", |b| b.iter_custom(|n| in_scopes(4, n)));
    group.finish();
    support::print_time_ratios(
        "fire_connect_start",
        "baseline_arc_dyn_fn",
        &["no_trace", "one_noop_trace", "four_nested_traces"],
    );
}

criterion_group!(benches, hooks);
criterion_main!(benches);
