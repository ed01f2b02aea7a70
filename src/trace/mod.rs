//! The hook set: [`NetTrace`], how its hooks are called, and the events they receive.

mod event;
#[cfg(any(feature = "http", feature = "reqwest"))]
mod setup;

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

#[cfg(any(feature = "http", feature = "reqwest"))]
pub(crate) use self::setup::SetupReport;

pub use self::event::{
    ConnectDone, ConnectOutcome, ConnectStart, ConnectionSetupDone, ConnectionSetupStart, DialId,
    DnsAnswer, DnsDone, DnsStart, Family,
};
#[cfg(feature = "tls")]
pub use self::event::{TlsHandshakeDone, TlsHandshakeStart};

type DnsStartHook = Arc<dyn Fn(&DnsStart<'_>) + Send + Sync>;
type DnsAnswerHook = Arc<dyn Fn(&DnsAnswer<'_>) + Send + Sync>;
type DnsDoneHook = Arc<dyn Fn(&DnsDone<'_>) + Send + Sync>;
type ConnectStartHook = Arc<dyn Fn(&ConnectStart) + Send + Sync>;
type ConnectDoneHook = Arc<dyn Fn(&ConnectDone<'_>) + Send + Sync>;
type SetupStartHook = Arc<dyn Fn(&ConnectionSetupStart<'_>) + Send + Sync>;
type SetupDoneHook = Arc<dyn Fn(&ConnectionSetupDone<'_>) + Send + Sync>;
#[cfg(feature = "tls")]
type TlsStartHook = Arc<dyn Fn(&TlsHandshakeStart<'_>) + Send + Sync>;
#[cfg(feature = "tls")]
type TlsDoneHook = Arc<dyn Fn(&TlsHandshakeDone<'_>) + Send + Sync>;

/// A set of hooks called while a TCP connection is being made.
///
/// A `NetTrace` is installed for one task with [`with_trace`](crate::with_trace); every
/// [`Dialer`](crate)-level operation made inside that scope calls its hooks. Any hook may be
/// absent, and an absent hook costs nothing.
///
/// Cloning is cheap (a reference count). Each `on_*` method adds a hook and returns the
/// trace; several hooks for the same event run in the order they were added. Adding a hook
/// to a clone never changes the original.
///
/// # Examples
///
/// ```
/// use nettrace::{ConnectOutcome, NetTrace};
///
/// let trace = NetTrace::new()
///     .on_dns_start(|e| println!("looking up {}", e.host))
///     .on_dns_done(|e| println!("{} -> {:?} (shared: {})", e.host, e.addrs, e.coalesced))
///     .on_connect_start(|e| println!("attempt {} to {}", e.attempt, e.addr))
///     .on_connect_done(|e| match e.outcome {
///         ConnectOutcome::Connected => println!("attempt {} won", e.attempt),
///         ConnectOutcome::Failed(err) => println!("attempt {} failed: {err}", e.attempt),
///         ConnectOutcome::Cancelled => println!("attempt {} cancelled", e.attempt),
///         _ => {}
///     });
/// # drop(trace);
/// ```
#[derive(Clone)]
pub struct NetTrace {
    hooks: Arc<Hooks>,
}

impl Default for NetTrace {
    /// A trace with no hooks; it shares one empty hook set, so it allocates nothing.
    fn default() -> NetTrace {
        static EMPTY: std::sync::LazyLock<Arc<Hooks>> = std::sync::LazyLock::new(Arc::default);
        NetTrace {
            hooks: Arc::clone(&EMPTY),
        }
    }
}

/// The hooks of one trace, each list in call order.
#[derive(Clone, Default)]
struct Hooks {
    dns_start: Vec<DnsStartHook>,
    dns_answer: Vec<DnsAnswerHook>,
    dns_done: Vec<DnsDoneHook>,
    connect_start: Vec<ConnectStartHook>,
    connect_done: Vec<ConnectDoneHook>,
    setup_start: Vec<SetupStartHook>,
    setup_done: Vec<SetupDoneHook>,
    #[cfg(feature = "tls")]
    tls_start: Vec<TlsStartHook>,
    #[cfg(feature = "tls")]
    tls_done: Vec<TlsDoneHook>,
}

impl NetTrace {
    /// Returns a trace with no hooks.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new();
    /// assert!(trace.is_empty());
    /// ```
    pub fn new() -> NetTrace {
        NetTrace::default()
    }

    /// Adds a hook called before a DNS lookup starts, or joins a lookup of the same name
    /// that is already in flight.
    ///
    /// IP literals are not looked up and fire no DNS hooks.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new().on_dns_start(|e| eprintln!("dns start {}", e.host));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_dns_start<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&DnsStart<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .dns_start
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called with each address family's answer to a lookup: once for AAAA
    /// and once for A, as each arrives (see [`DnsAnswer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new()
    ///     .on_dns_answer(|e| eprintln!("{} {:?}: {:?}", e.host, e.family, e.addrs));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_dns_answer<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&DnsAnswer<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .dns_answer
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called once for every [`DnsStart`], when that lookup has finished,
    /// failed or been abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new().on_dns_done(|e| match e.error {
    ///     None => eprintln!("{} has {} addresses", e.host, e.addrs.len()),
    ///     Some(err) => eprintln!("{err}"),
    /// });
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_dns_done<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&DnsDone<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks).dns_done.push(Arc::new(hook));
        self
    }

    /// Adds a hook called before each connection attempt's socket is created.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new()
    ///     .on_connect_start(|e| eprintln!("attempt {} -> {}", e.attempt, e.addr));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_connect_start<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&ConnectStart) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .connect_start
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called once for every [`ConnectStart`], when that attempt connected,
    /// failed or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::ConnectOutcome;
    ///
    /// let trace = nettrace::NetTrace::new().on_connect_done(|e| {
    ///     if let ConnectOutcome::Failed(err) = e.outcome {
    ///         eprintln!("{} refused us: {err}", e.addr);
    ///     }
    /// });
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_connect_done<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&ConnectDone<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .connect_done
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called before an HTTP client that dials by itself sets up a new
    /// connection (see [`ConnectionSetupStart`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new()
    ///     .on_connection_setup_start(|e| eprintln!("{} to {:?}", e.dial, e.host));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_connection_setup_start<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&ConnectionSetupStart<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .setup_start
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called once for every [`ConnectionSetupStart`], when that setup has
    /// connected, failed or been abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new()
    ///     .on_connection_setup_done(|e| eprintln!("{} peer {:?}", e.dial, e.peer));
    /// # drop(trace);
    /// ```
    #[must_use]
    pub fn on_connection_setup_done<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&ConnectionSetupDone<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .setup_done
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called before a TLS handshake starts, once the TCP connection is made.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new()
    ///     .on_tls_handshake_start(|e| eprintln!("tls with {} at {}", e.server_name, e.addr));
    /// # drop(trace);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn on_tls_handshake_start<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&TlsHandshakeStart<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks)
            .tls_start
            .push(Arc::new(hook));
        self
    }

    /// Adds a hook called once for every [`TlsHandshakeStart`], when the handshake has
    /// finished, failed or been abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new().on_tls_handshake_done(|e| match e.error {
    ///     None => eprintln!("{:?} {:?}", e.version, e.cipher),
    ///     Some(err) => eprintln!("tls failed: {err}"),
    /// });
    /// # drop(trace);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn on_tls_handshake_done<F>(mut self, hook: F) -> NetTrace
    where
        F: Fn(&TlsHandshakeDone<'_>) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.hooks).tls_done.push(Arc::new(hook));
        self
    }

    /// Returns `true` if this trace has no hooks at all.
    ///
    /// # Examples
    ///
    /// ```
    /// let trace = nettrace::NetTrace::new();
    /// assert!(trace.is_empty());
    /// assert!(!trace.on_dns_start(|_| {}).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        let h = &*self.hooks;
        let tls_empty = {
            #[cfg(feature = "tls")]
            {
                h.tls_start.is_empty() && h.tls_done.is_empty()
            }
            #[cfg(not(feature = "tls"))]
            true
        };
        h.dns_start.is_empty()
            && h.dns_answer.is_empty()
            && h.dns_done.is_empty()
            && h.connect_start.is_empty()
            && h.connect_done.is_empty()
            && h.setup_start.is_empty()
            && h.setup_done.is_empty()
            && tls_empty
    }

    /// Returns a trace that calls `self`'s hooks, then `outer`'s, for every event.
    ///
    /// Neither trace is changed, and the lists stay flat, so composing any number of
    /// scopes never recurses.
    pub(crate) fn compose(&self, outer: &NetTrace) -> NetTrace {
        if outer.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return outer.clone();
        }
        let (inner, outer) = (&*self.hooks, &*outer.hooks);
        NetTrace {
            hooks: Arc::new(Hooks {
                dns_start: concat(&inner.dns_start, &outer.dns_start),
                dns_answer: concat(&inner.dns_answer, &outer.dns_answer),
                dns_done: concat(&inner.dns_done, &outer.dns_done),
                connect_start: concat(&inner.connect_start, &outer.connect_start),
                connect_done: concat(&inner.connect_done, &outer.connect_done),
                setup_start: concat(&inner.setup_start, &outer.setup_start),
                setup_done: concat(&inner.setup_done, &outer.setup_done),
                #[cfg(feature = "tls")]
                tls_start: concat(&inner.tls_start, &outer.tls_start),
                #[cfg(feature = "tls")]
                tls_done: concat(&inner.tls_done, &outer.tls_done),
            }),
        }
    }

    pub(crate) fn dns_start(&self, event: &DnsStart<'_>) -> Fired {
        call_each(&self.hooks.dns_start, |hook| hook(event))
    }

    pub(crate) fn dns_answer(&self, event: &DnsAnswer<'_>) -> Fired {
        call_each(&self.hooks.dns_answer, |hook| hook(event))
    }

    pub(crate) fn dns_done(&self, event: &DnsDone<'_>) -> Fired {
        call_each(&self.hooks.dns_done, |hook| hook(event))
    }

    pub(crate) fn connect_start(&self, event: &ConnectStart) -> Fired {
        call_each(&self.hooks.connect_start, |hook| hook(event))
    }

    pub(crate) fn connect_done(&self, event: &ConnectDone<'_>) -> Fired {
        call_each(&self.hooks.connect_done, |hook| hook(event))
    }

    #[cfg(any(feature = "http", feature = "reqwest"))]
    pub(crate) fn connection_setup_start(&self, event: &ConnectionSetupStart<'_>) -> Fired {
        call_each(&self.hooks.setup_start, |hook| hook(event))
    }

    #[cfg(any(feature = "http", feature = "reqwest"))]
    pub(crate) fn connection_setup_done(&self, event: &ConnectionSetupDone<'_>) -> Fired {
        call_each(&self.hooks.setup_done, |hook| hook(event))
    }
}

#[cfg(feature = "tls")]
impl NetTrace {
    pub(crate) fn tls_start(&self, event: &TlsHandshakeStart<'_>) -> Fired {
        call_each(&self.hooks.tls_start, |hook| hook(event))
    }

    pub(crate) fn tls_done(&self, event: &TlsHandshakeDone<'_>) -> Fired {
        call_each(&self.hooks.tls_done, |hook| hook(event))
    }
}

/// What a hook panicked with.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// The result of firing one event: every hook was called; `Err` holds the first panic.
pub(crate) type Fired = Result<(), Panic>;

/// Calls every hook, each in isolation: a panicking hook does not stop the ones after it.
/// Returns the first panic for the caller to continue once its own bookkeeping is done.
#[inline]
pub(crate) fn call_each<H>(hooks: &[H], call: impl Fn(&H)) -> Fired {
    let mut first = None;
    for hook in hooks {
        // The hook sees only a shared reference to an event that is dropped right after,
        // and the dial's state is consistent between hook calls, so nothing a panicking
        // hook leaves half-done is observed afterwards.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| call(hook))) {
            first.get_or_insert(panic);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The first panic of the hooks fired during one operation, kept until every pending event
/// has been fired.
#[derive(Default)]
#[must_use = "a kept panic must be resumed"]
pub(crate) struct Panics(Option<Panic>);

impl Panics {
    /// Keeps `fired`'s panic if it is the first.
    pub(crate) fn keep(&mut self, fired: Fired) {
        if let Err(panic) = fired {
            self.0.get_or_insert(panic);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Continues the first panic kept, if any. While the thread is already unwinding (a
    /// drop during a panic), a second panic would abort the process, so it is dropped.
    pub(crate) fn resume(self) {
        if let Some(panic) = self.0 {
            if !std::thread::panicking() {
                resume_unwind(panic);
            }
        }
    }
}

impl fmt::Debug for Panics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Panics").field(&self.0.is_some()).finish()
    }
}

/// Runs `fire` (which calls the HTTP tracer's hooks) from a `Drop`. While the thread
/// unwinds from another panic — tokio drops a task's future inside its panic guard — a
/// second panic from a hook would abort the process, so it is caught and dropped.
#[cfg(feature = "http")]
pub(crate) fn fire_from_drop(fire: impl FnOnce()) {
    if std::thread::panicking() {
        let _ = catch_unwind(AssertUnwindSafe(fire));
    } else {
        fire();
    }
}

fn concat<T: Clone>(first: &[T], second: &[T]) -> Vec<T> {
    let mut all = Vec::with_capacity(first.len() + second.len());
    all.extend_from_slice(first);
    all.extend_from_slice(second);
    all
}

impl fmt::Debug for NetTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &*self.hooks;
        f.debug_struct("NetTrace")
            .field("dns_start", &h.dns_start.len())
            .field("dns_answer", &h.dns_answer.len())
            .field("dns_done", &h.dns_done.len())
            .field("connect_start", &h.connect_start.len())
            .field("connect_done", &h.connect_done.len())
            .field("connection_setup_start", &h.setup_start.len())
            .field("connection_setup_done", &h.setup_done.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder(log: &Arc<Mutex<Vec<String>>>, tag: &'static str) -> NetTrace {
        let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
        NetTrace::new()
            .on_dns_start(move |e| {
                a.lock()
                    .unwrap()
                    .push(format!("{tag} dns_start {}", e.host))
            })
            .on_dns_done(move |e| b.lock().unwrap().push(format!("{tag} dns_done {}", e.host)))
            .on_connect_start(move |e| c.lock().unwrap().push(format!("{tag} start {}", e.attempt)))
            .on_connect_done(move |e| d.lock().unwrap().push(format!("{tag} done {}", e.attempt)))
    }

    fn dns_start(trace: &NetTrace, host: &str) -> Fired {
        trace.dns_start(&DnsStart {
            dial: DialId::next(),
            host,
        })
    }

    fn connect_done(trace: &NetTrace, attempt: usize) -> Fired {
        trace.connect_done(&ConnectDone {
            dial: DialId::next(),
            addr: "127.0.0.1:1".parse().unwrap(),
            attempt,
            outcome: ConnectOutcome::Cancelled,
        })
    }

    #[test]
    fn compose_runs_inner_then_outer_and_changes_neither() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = recorder(&log, "inner");
        let outer = recorder(&log, "outer");
        let both = inner.compose(&outer);
        dns_start(&both, "a").unwrap();
        connect_done(&both, 3).unwrap();
        dns_start(&inner, "b").unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "inner dns_start a",
                "outer dns_start a",
                "inner done 3",
                "outer done 3",
                "inner dns_start b"
            ]
        );
    }

    #[test]
    fn a_panicking_hook_costs_no_other_hook_its_event() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = NetTrace::new()
            .on_dns_start(|_| panic!("first"))
            .on_dns_start(|_| panic!("second"));
        let both = inner.compose(&recorder(&log, "outer"));
        let panic = dns_start(&both, "a").unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"first"));
        assert_eq!(*log.lock().unwrap(), ["outer dns_start a"]);

        let mut panics = Panics::default();
        panics.keep(dns_start(&both, "b"));
        panics.keep(connect_done(&both, 1));
        assert!(!panics.is_empty());
        let resumed = std::panic::catch_unwind(AssertUnwindSafe(|| panics.resume()));
        let payload = resumed.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
    }

    #[test]
    fn dial_ids_are_unique_and_increasing() {
        let ids: Vec<DialId> = (0..100).map(|_| DialId::next()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[0].to_string(), format!("dial#{}", ids[0].as_u64()));
    }

    #[test]
    fn adding_to_a_clone_leaves_the_original() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let original = recorder(&log, "orig");
        let l = log.clone();
        let extended = original
            .clone()
            .on_dns_start(move |_| l.lock().unwrap().push("extra".into()));
        dns_start(&original, "x").unwrap();
        dns_start(&extended, "y").unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["orig dns_start x", "orig dns_start y", "extra"]
        );
    }

    #[test]
    fn absent_hooks_are_skipped() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let trace = NetTrace::new().on_connect_start(move |e| l.lock().unwrap().push(e.attempt));
        let dial = DialId::next();
        let addr = "[::1]:1".parse().unwrap();
        dns_start(&trace, "x").unwrap();
        trace
            .connect_start(&ConnectStart {
                dial,
                addr,
                attempt: 7,
            })
            .unwrap();
        connect_done(&trace, 7).unwrap();
        assert_eq!(*log.lock().unwrap(), [7]);
    }

    #[test]
    fn composing_with_empty_shares_the_hooks() {
        let trace = NetTrace::new().on_dns_start(|_| {});
        let composed = trace.compose(&NetTrace::new());
        assert!(Arc::ptr_eq(&trace.hooks, &composed.hooks));
        let composed = NetTrace::new().compose(&trace);
        assert!(Arc::ptr_eq(&trace.hooks, &composed.hooks));
    }

    #[test]
    fn debug_counts_hooks() {
        let trace = NetTrace::new().on_dns_start(|_| {}).on_dns_start(|_| {});
        assert_eq!(
            format!("{trace:?}"),
            "NetTrace { dns_start: 2, dns_answer: 0, dns_done: 0, connect_start: 0, connect_done: 0, \
             connection_setup_start: 0, connection_setup_done: 0 }"
        );
    }
}
