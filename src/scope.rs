//! The task-local scope a [`NetTrace`] is installed in.
//!
//! A scope is a future wrapper that, for the duration of each poll of the inner future,
//! puts its trace in a thread-local slot and restores the previous value afterwards — the
//! same technique as [`tokio::task::LocalKey::scope`]. The trace therefore follows the
//! future across threads and never leaks to other tasks polled on the same thread.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::trace::NetTrace;

thread_local! {
    static CURRENT: Cell<Option<NetTrace>> = const { Cell::new(None) };
}

/// Runs `future` with `trace` installed, composed with any trace already in scope.
///
/// The scope covers every poll of `future` (and its drop), so everything it awaits sees
/// the trace. When scopes nest, the inner trace's hooks run first, then the outer's; the
/// traces themselves are never changed, and installing the same trace twice calls its
/// hooks twice. The outer trace is read when the returned future is first polled.
///
/// Task-locals do not cross [`tokio::spawn`]: carry the trace into spawned work with
/// [`TraceExt::in_current_trace`].
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = seen.clone();
/// let trace = nettrace::NetTrace::new().on_dns_start(move |_| {
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
///
/// let in_scope = nettrace::with_trace(trace, async { nettrace::current().is_some() }).await;
/// assert!(in_scope);
/// assert!(nettrace::current().is_none());
/// # }
/// ```
pub fn with_trace<F: Future>(trace: NetTrace, future: F) -> Scoped<F> {
    Scoped::new(Some(trace), true, future)
}

/// Runs `future` with no trace in scope, hiding any outer trace.
///
/// Use it for work that must not show up in the caller's trace, such as the connections a
/// resolver makes to its DNS servers.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let trace = nettrace::NetTrace::new().on_connect_start(|_| {});
/// let hidden = nettrace::with_trace(trace, async {
///     nettrace::without_trace(async { nettrace::current().is_none() }).await
/// })
/// .await;
/// assert!(hidden);
/// # }
/// ```
pub fn without_trace<F: Future>(future: F) -> Scoped<F> {
    Scoped::new(None, false, future)
}

/// Returns the trace in scope for the current task: every enclosing [`with_trace`]
/// composed into one, or `None` when there is none.
///
/// Outside any scope this costs one thread-local read and never panics, also outside a
/// tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(nettrace::current().is_none());
/// let trace = nettrace::NetTrace::new().on_dns_start(|_| {});
/// nettrace::with_trace(trace, async {
///     assert!(nettrace::current().is_some());
/// })
/// .await;
/// # }
/// ```
pub fn current() -> Option<NetTrace> {
    CURRENT
        .try_with(|slot| {
            let trace = slot.take();
            let copy = trace.clone();
            slot.set(trace);
            copy
        })
        .ok()
        .flatten()
}

/// Extension methods that carry the current trace into other tasks.
///
/// # Examples
///
/// ```
/// use nettrace::TraceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let trace = nettrace::NetTrace::new().on_dns_start(|_| {});
/// nettrace::with_trace(trace, async {
///     // A plain spawn loses the trace; `in_current_trace` carries it along.
///     let lost = tokio::spawn(async { nettrace::current().is_some() });
///     let kept = tokio::spawn(async { nettrace::current().is_some() }.in_current_trace());
///     assert!(!lost.await.unwrap());
///     assert!(kept.await.unwrap());
/// })
/// .await;
/// # }
/// ```
pub trait TraceExt: Future + Sized {
    /// Captures the trace in scope now (or its absence) and runs `self` with exactly that
    /// trace, wherever and whenever it is polled.
    ///
    /// This is what to wrap a future in before handing it to [`tokio::spawn`], in the
    /// style of `tracing::Instrument::in_current_span`.
    fn in_current_trace(self) -> Scoped<Self> {
        Scoped::new(current(), false, self)
    }
}

impl<F: Future> TraceExt for F {}

pin_project! {
    /// A future that runs its inner future inside a trace scope.
    ///
    /// Returned by [`with_trace`], [`without_trace`] and [`TraceExt::in_current_trace`].
    /// It is `Send` when the inner future is.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let scoped: nettrace::Scoped<_> =
    ///     nettrace::with_trace(nettrace::NetTrace::new(), async { 7 });
    /// assert_eq!(scoped.await, 7);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Scoped<F> {
        trace: Option<NetTrace>,
        // Whether `trace` still has to be composed with the scope around the first poll.
        compose: bool,
        // `None` only while being dropped, so the drop runs inside the scope too.
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                enter(this.trace, || this.future.set(None));
            }
        }
    }
}

impl<F> Scoped<F> {
    fn new(trace: Option<NetTrace>, compose: bool, future: F) -> Scoped<F> {
        Scoped {
            trace,
            compose,
            future: Some(future),
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if std::mem::take(this.compose) {
            if let (Some(inner), Some(outer)) = (this.trace.as_ref(), current()) {
                *this.trace = Some(inner.compose(&outer));
            }
        }
        let future = this
            .future
            .as_pin_mut()
            .expect("`Scoped` polled after it was dropped");
        enter(this.trace, || future.poll(cx))
    }
}

impl<F> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

/// Runs `f` with the trace in `slot` installed, then puts it back in `slot`, also when `f`
/// panics.
/// Runs `f` with no trace in scope: the synchronous [`without_trace`].
pub(crate) fn hidden<R>(f: impl FnOnce() -> R) -> R {
    enter(&mut None, f)
}

fn enter<R>(slot: &mut Option<NetTrace>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        slot: &'a mut Option<NetTrace>,
        prev: Option<NetTrace>,
    }

    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let prev = self.prev.take();
            if let Ok(ours) = CURRENT.try_with(|c| c.replace(prev)) {
                *self.slot = ours;
            }
        }
    }

    // The thread-local is gone only while the thread is torn down: run without the
    // scope then, and keep the trace in `slot`.
    let Ok(prev) = CURRENT.try_with(|c| c.replace(slot.take())) else {
        return f();
    };
    let _restore = Restore { slot, prev };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use crate::ConnectOutcome;

    type Log = Arc<Mutex<Vec<String>>>;

    fn tagged(log: &Log, tag: impl Into<String>) -> NetTrace {
        let tag = tag.into();
        let (l1, t1) = (log.clone(), tag.clone());
        let (l2, t2) = (log.clone(), tag);
        NetTrace::new()
            .on_dns_start(move |e| l1.lock().unwrap().push(format!("{t1}:{}", e.host)))
            .on_connect_done(move |e| {
                l2.lock().unwrap().push(format!("{t2}:done{}", e.attempt));
            })
    }

    /// Fires one DNS start through whatever trace is in scope, as the dialer does.
    fn fire(host: &str) {
        if let Some(trace) = current() {
            let event = crate::DnsStart {
                dial: crate::DialId::next(),
                host,
            };
            trace.dns_start(&event).unwrap();
        }
    }

    #[tokio::test]
    async fn nested_scopes_run_inner_then_outer() {
        let log = Log::default();
        with_trace(tagged(&log, "outer"), async {
            fire("a");
            with_trace(tagged(&log, "inner"), async { fire("b") }).await;
            fire("c");
        })
        .await;
        assert_eq!(
            *log.lock().unwrap(),
            ["outer:a", "inner:b", "outer:b", "outer:c"]
        );
    }

    #[tokio::test]
    async fn same_trace_twice_is_called_twice() {
        let log = Log::default();
        let trace = tagged(&log, "t");
        with_trace(trace.clone(), with_trace(trace, async { fire("x") })).await;
        assert_eq!(*log.lock().unwrap(), ["t:x", "t:x"]);
    }

    #[tokio::test]
    async fn thirty_two_nested_scopes() {
        let log = Log::default();
        let mut fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(async { fire("deep") });
        for depth in (0..32).rev() {
            fut = Box::pin(with_trace(tagged(&log, depth.to_string()), fut));
        }
        fut.await;
        let expected: Vec<String> = (0..32).rev().map(|d| format!("{d}:deep")).collect();
        assert_eq!(*log.lock().unwrap(), expected);
    }

    #[tokio::test]
    async fn no_trace_in_scope_calls_nothing() {
        assert!(current().is_none());
        fire("nobody");
    }

    #[tokio::test]
    async fn without_trace_hides_outer() {
        let log = Log::default();
        with_trace(tagged(&log, "outer"), async {
            without_trace(async {
                assert!(current().is_none());
                fire("hidden");
            })
            .await;
            fire("seen");
        })
        .await;
        assert_eq!(*log.lock().unwrap(), ["outer:seen"]);
    }

    #[tokio::test]
    async fn current_returns_composed_trace() {
        let log = Log::default();
        let composed = with_trace(
            tagged(&log, "outer"),
            with_trace(tagged(&log, "inner"), async { current() }),
        )
        .await
        .expect("a trace is in scope");
        // Used outside any scope, the captured trace still calls both.
        let event = crate::DnsStart {
            dial: crate::DialId::next(),
            host: "later",
        };
        composed.dns_start(&event).unwrap();
        assert_eq!(*log.lock().unwrap(), ["inner:later", "outer:later"]);
    }

    #[tokio::test]
    async fn scope_ends_after_the_future_and_after_a_panic() {
        let log = Log::default();
        let caught = tokio::spawn(async move {
            let trace = tagged(&log, "p");
            let result = std::panic::AssertUnwindSafe(with_trace(trace, async {
                panic!("hook user panicked");
            }));
            let result = futures_util::FutureExt::catch_unwind(result).await;
            (result.is_err(), current().is_none())
        })
        .await
        .unwrap();
        assert_eq!(caught, (true, true));
    }

    #[tokio::test]
    async fn drop_of_inner_future_runs_in_scope() {
        struct FireOnDrop;
        impl Drop for FireOnDrop {
            fn drop(&mut self) {
                fire("dropped");
            }
        }
        let log = Log::default();
        let guard = FireOnDrop;
        let mut scoped = Box::pin(with_trace(tagged(&log, "d"), async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        // Poll once so the inner future owns the guard, then drop it mid-flight.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(scoped.as_mut().poll(&mut cx).is_pending());
        drop(scoped);
        assert_eq!(*log.lock().unwrap(), ["d:dropped"]);
        assert!(current().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn tasks_never_see_each_others_events() {
        let log = Log::default();
        let mut tasks = Vec::new();
        for task in 0..8 {
            let trace = tagged(&log, format!("task{task}"));
            tasks.push(tokio::spawn(with_trace(trace, async move {
                for round in 0..200 {
                    fire(&format!("task{task}"));
                    if let Some(trace) = current() {
                        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
                        let event = crate::ConnectDone {
                            dial: crate::DialId::next(),
                            addr,
                            attempt: round,
                            outcome: ConnectOutcome::Cancelled,
                        };
                        trace.connect_done(&event).unwrap();
                    }
                    // Give the scheduler a chance to move us and interleave others.
                    tokio::task::yield_now().await;
                }
            })));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 8 * 200 * 2);
        for line in log.iter() {
            let (tag, event) = line.split_once(':').unwrap();
            if !event.starts_with("done") {
                assert_eq!(tag, event, "a task saw another task's lookup");
            }
        }
        for task in 0..8 {
            let own = log
                .iter()
                .filter(|l| l.starts_with(&format!("task{task}:")))
                .count();
            assert_eq!(own, 400, "task{task} saw a wrong number of events");
        }
    }

    #[tokio::test]
    async fn in_current_trace_crosses_spawn_and_plain_spawn_does_not() {
        let log = Log::default();
        with_trace(tagged(&log, "t"), async {
            tokio::spawn(async { fire("plain") }).await.unwrap();
            tokio::spawn(async { fire("carried") }.in_current_trace())
                .await
                .unwrap();
        })
        .await;
        assert_eq!(*log.lock().unwrap(), ["t:carried"]);
    }

    #[test]
    fn works_without_a_runtime() {
        let log = Log::default();
        futures_util::FutureExt::now_or_never(with_trace(tagged(&log, "sync"), async {
            fire("x")
        }))
        .unwrap();
        assert_eq!(*log.lock().unwrap(), ["sync:x"]);
    }
}
