//! The hook set: [`NetTrace`] and the events its hooks receive.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::resolve::ResolveError;

type DnsStartHook = Arc<dyn Fn(&DnsStart<'_>) + Send + Sync>;
type DnsDoneHook = Arc<dyn Fn(&DnsDone<'_>) + Send + Sync>;
type ConnectStartHook = Arc<dyn Fn(&ConnectStart) + Send + Sync>;
type ConnectDoneHook = Arc<dyn Fn(&ConnectDone<'_>) + Send + Sync>;
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
    dns_done: Vec<DnsDoneHook>,
    connect_start: Vec<ConnectStartHook>,
    connect_done: Vec<ConnectDoneHook>,
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
            && h.dns_done.is_empty()
            && h.connect_start.is_empty()
            && h.connect_done.is_empty()
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
                dns_done: concat(&inner.dns_done, &outer.dns_done),
                connect_start: concat(&inner.connect_start, &outer.connect_start),
                connect_done: concat(&inner.connect_done, &outer.connect_done),
                #[cfg(feature = "tls")]
                tls_start: concat(&inner.tls_start, &outer.tls_start),
                #[cfg(feature = "tls")]
                tls_done: concat(&inner.tls_done, &outer.tls_done),
            }),
        }
    }

    pub(crate) fn dns_start(&self, host: &str) {
        let event = DnsStart { host };
        for hook in &self.hooks.dns_start {
            hook(&event);
        }
    }

    pub(crate) fn dns_done(
        &self,
        host: &str,
        addrs: &[IpAddr],
        coalesced: bool,
        error: Option<&ResolveError>,
    ) {
        let event = DnsDone {
            host,
            addrs,
            coalesced,
            error,
        };
        for hook in &self.hooks.dns_done {
            hook(&event);
        }
    }

    pub(crate) fn connect_start(&self, addr: SocketAddr, attempt: usize) {
        let event = ConnectStart { addr, attempt };
        for hook in &self.hooks.connect_start {
            hook(&event);
        }
    }

    pub(crate) fn connect_done(
        &self,
        addr: SocketAddr,
        attempt: usize,
        outcome: ConnectOutcome<'_>,
    ) {
        let event = ConnectDone {
            addr,
            attempt,
            outcome,
        };
        for hook in &self.hooks.connect_done {
            hook(&event);
        }
    }
}

#[cfg(feature = "tls")]
impl NetTrace {
    pub(crate) fn tls_start(&self, event: &TlsHandshakeStart<'_>) {
        for hook in &self.hooks.tls_start {
            hook(event);
        }
    }

    pub(crate) fn tls_done(&self, event: &TlsHandshakeDone<'_>) {
        for hook in &self.hooks.tls_done {
            hook(event);
        }
    }
}

/// Runs `fire` (which calls hooks) from a `Drop`. While the thread unwinds from another
/// panic — tokio drops a task's future inside its panic guard — a second panic from a
/// hook would abort the process, so it is caught and dropped: the hooks still fire, and
/// every start still gets its done.
pub(crate) fn fire_from_drop(fire: impl FnOnce()) {
    if std::thread::panicking() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(fire));
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
            .field("dns_done", &h.dns_done.len())
            .field("connect_start", &h.connect_start.len())
            .field("connect_done", &h.connect_done.len())
            .finish()
    }
}

/// A DNS lookup is about to start, or to join a lookup of the same name already in flight.
///
/// # Examples
///
/// ```
/// let trace = nettrace::NetTrace::new().on_dns_start(|e: &nettrace::DnsStart<'_>| {
///     assert!(!e.host.is_empty());
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DnsStart<'a> {
    /// The name being looked up, as the caller gave it.
    pub host: &'a str,
}

/// A DNS lookup has ended; fired exactly once for every [`DnsStart`].
///
/// # Examples
///
/// ```
/// let trace = nettrace::NetTrace::new().on_dns_done(|e: &nettrace::DnsDone<'_>| {
///     // Either addresses or an error, never both.
///     assert!(e.error.is_none() || e.addrs.is_empty());
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DnsDone<'a> {
    /// The name that was looked up.
    pub host: &'a str,
    /// The addresses found, in the order the resolver returned them; empty on error.
    pub addrs: &'a [IpAddr],
    /// `true` if this caller's result was shared with at least one other caller of the
    /// same lookup (the caller that started it included), as Go's `DNSDoneInfo.Coalesced`.
    pub coalesced: bool,
    /// Why the lookup failed, if it did. A caller that went away before the lookup ended
    /// sees an error whose kind is [`ResolveErrorKind::Cancelled`](crate::ResolveErrorKind::Cancelled).
    pub error: Option<&'a ResolveError>,
}

/// A connection attempt is about to start; fired before its socket is created.
///
/// # Examples
///
/// ```
/// let trace = nettrace::NetTrace::new().on_connect_start(|e: &nettrace::ConnectStart| {
///     eprintln!("attempt {} to {}", e.attempt, e.addr);
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConnectStart {
    /// The address being dialed.
    pub addr: SocketAddr,
    /// The index of this attempt within its dial: 0, 1, 2, …
    pub attempt: usize,
}

/// A connection attempt has ended; fired exactly once for every [`ConnectStart`].
///
/// # Examples
///
/// ```
/// use nettrace::{ConnectDone, ConnectOutcome};
///
/// let trace = nettrace::NetTrace::new().on_connect_done(|e: &ConnectDone<'_>| {
///     let won = matches!(e.outcome, ConnectOutcome::Connected);
///     eprintln!("attempt {} to {}: won={won}", e.attempt, e.addr);
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConnectDone<'a> {
    /// The address that was dialed.
    pub addr: SocketAddr,
    /// The index of the attempt, the same as in its [`ConnectStart`].
    pub attempt: usize,
    /// How the attempt ended.
    pub outcome: ConnectOutcome<'a>,
}

/// How a connection attempt ended.
///
/// # Examples
///
/// ```
/// use nettrace::ConnectOutcome;
///
/// fn describe(outcome: &ConnectOutcome<'_>) -> String {
///     match outcome {
///         ConnectOutcome::Connected => "connected".into(),
///         ConnectOutcome::Failed(err) => format!("failed: {err}"),
///         ConnectOutcome::Cancelled => "cancelled".into(),
///         _ => "other".into(),
///     }
/// }
/// assert_eq!(describe(&ConnectOutcome::Cancelled), "cancelled");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ConnectOutcome<'a> {
    /// The attempt connected; its stream is the one the dial returns.
    Connected,
    /// The attempt failed with this error.
    Failed(&'a io::Error),
    /// The attempt was abandoned: another attempt won the race, the dial timed out, or the
    /// dial future was dropped.
    Cancelled,
}

/// A TLS handshake is about to start on a connected socket.
///
/// # Examples
///
/// ```
/// let trace = nettrace::NetTrace::new()
///     .on_tls_handshake_start(|e: &nettrace::TlsHandshakeStart<'_>| {
///         assert!(!e.server_name.is_empty());
///     });
/// # drop(trace);
/// ```
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TlsHandshakeStart<'a> {
    /// The name the certificate is checked against (a host name or an IP address).
    pub server_name: &'a str,
    /// The address of the connected peer.
    pub addr: SocketAddr,
}

/// A TLS handshake has ended; fired exactly once for every [`TlsHandshakeStart`].
///
/// On success `version`, `cipher` and (if negotiated) `alpn` are set and `error` is
/// `None`; on failure `error` says why. A handshake abandoned because the connect was
/// dropped reports an error of kind [`io::ErrorKind::Interrupted`].
///
/// # Examples
///
/// ```
/// let trace = nettrace::NetTrace::new()
///     .on_tls_handshake_done(|e: &nettrace::TlsHandshakeDone<'_>| {
///         if e.error.is_none() {
///             eprintln!("{} {} alpn={:?}", e.version.unwrap(), e.cipher.unwrap(), e.alpn);
///         }
///     });
/// # drop(trace);
/// ```
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TlsHandshakeDone<'a> {
    /// The name the certificate was checked against.
    pub server_name: &'a str,
    /// The address of the peer.
    pub addr: SocketAddr,
    /// The negotiated protocol version, as `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: Option<&'a str>,
    /// The negotiated ALPN protocol, such as `b"h2"` or `b"http/1.1"`.
    pub alpn: Option<&'a [u8]>,
    /// The negotiated cipher suite, as its IANA name (`"TLS13_AES_128_GCM_SHA256"`).
    pub cipher: Option<&'a str>,
    /// Why the handshake failed, if it did. A certificate that does not verify shows up
    /// here with its rustls error as the source.
    pub error: Option<&'a io::Error>,
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

    #[test]
    fn compose_runs_inner_then_outer_and_changes_neither() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = recorder(&log, "inner");
        let outer = recorder(&log, "outer");
        let both = inner.compose(&outer);
        both.dns_start("a");
        both.connect_done("127.0.0.1:1".parse().unwrap(), 3, ConnectOutcome::Cancelled);
        inner.dns_start("b");
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
    fn adding_to_a_clone_leaves_the_original() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let original = recorder(&log, "orig");
        let l = log.clone();
        let extended = original
            .clone()
            .on_dns_start(move |_| l.lock().unwrap().push("extra".into()));
        original.dns_start("x");
        extended.dns_start("y");
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
        trace.dns_start("x");
        trace.dns_done("x", &[], false, None);
        trace.connect_start("[::1]:1".parse().unwrap(), 7);
        trace.connect_done("[::1]:1".parse().unwrap(), 7, ConnectOutcome::Connected);
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
            "NetTrace { dns_start: 2, dns_done: 0, connect_start: 0, connect_done: 0 }"
        );
    }
}
