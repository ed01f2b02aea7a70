//! [`CoalescingResolver`]: shares concurrent lookups of one name and fires the DNS hooks.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{ready, Context, Poll};

use futures_util::future::{FutureExt, Shared};

use super::{name, HickoryResolver, Resolve, ResolveError};
use crate::scope::{current, without_trace};
use crate::trace::NetTrace;

type Answer = Result<Arc<[IpAddr]>, ResolveError>;
type SharedLookup = Shared<Pin<Box<dyn Future<Output = Answer> + Send>>>;

/// A resolver front that shares concurrent lookups of the same name and reports every
/// caller's lookup to the trace in scope.
///
/// Concurrent [`lookup`](CoalescingResolver::lookup)s of one name (ignoring ASCII case)
/// through one `CoalescingResolver` and its clones share a single lookup by the wrapped
/// [`Resolve`]r — Go's `singleflight`. Each caller still gets its own
/// [`DnsStart`](crate::DnsStart) and exactly one [`DnsDone`](crate::DnsDone), whose
/// `coalesced` is `true` when the result was shared with at least one other caller (the
/// one that started the lookup included).
///
/// A caller that goes away does not cancel a lookup others still wait for; when the last
/// one leaves, the lookup is dropped. A caller that goes away gets its `DnsDone` at once,
/// with an error of kind [`Cancelled`](crate::ResolveErrorKind::Cancelled).
///
/// IP literals (`127.0.0.1`, `::1`, `[::1]`, and `fe80::1%eth0`, whose zone an `IpAddr`
/// cannot keep) are returned as they are, with no hooks; invalid names fail before any
/// hook or query. The wrapped resolver runs [`without_trace`](crate::without_trace), so its
/// own connections never appear in the caller's trace.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use nettrace::{CoalescingResolver, NetTrace, Resolve, Resolving};
///
/// /// Answers every name after 10 ms, like a DNS server on a slow link.
/// struct Slow;
///
/// impl Resolve for Slow {
///     fn resolve(&self, _host: &str) -> Resolving {
///         Box::pin(async {
///             tokio::time::sleep(Duration::from_millis(10)).await;
///             Ok(vec!["127.0.0.1".parse().unwrap()])
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let resolver = CoalescingResolver::new(Slow);
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let trace = NetTrace::new().on_dns_done(move |e| log.lock().unwrap().push(e.coalesced));
///
/// let (a, b) = nettrace::with_trace(trace, async {
///     tokio::join!(resolver.lookup("api.test"), resolver.lookup("api.test"))
/// })
/// .await;
/// assert_eq!(a.unwrap(), b.unwrap());
/// // Both callers shared one lookup, and both are told so.
/// assert_eq!(*seen.lock().unwrap(), [true, true]);
/// # }
/// ```
#[derive(Clone)]
pub struct CoalescingResolver {
    group: Arc<Group>,
}

struct Group {
    resolver: Arc<dyn Resolve>,
    flights: Mutex<HashMap<Box<str>, InFlight>>,
}

/// A lookup in flight, as the map holds it.
struct InFlight {
    shared: SharedLookup,
    flight: Arc<Flight>,
}

/// The callers of one lookup. Both counters only change under the group's lock.
#[derive(Default)]
struct Flight {
    /// Callers that ever joined.
    joined: AtomicUsize,
    /// Callers still waiting.
    waiting: AtomicUsize,
}

impl CoalescingResolver {
    /// Wraps `resolver`.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{CoalescingResolver, HickoryResolver};
    ///
    /// let resolver = CoalescingResolver::new(HickoryResolver::system());
    /// # drop(resolver);
    /// ```
    pub fn new(resolver: impl Resolve) -> CoalescingResolver {
        CoalescingResolver::from_arc(Arc::new(resolver))
    }

    pub(crate) fn from_arc(resolver: Arc<dyn Resolve>) -> CoalescingResolver {
        CoalescingResolver {
            group: Arc::new(Group {
                resolver,
                flights: Mutex::default(),
            }),
        }
    }

    /// Looks up `host`, sharing the lookup with concurrent callers, and reports it to the
    /// trace in scope when the returned future is first polled.
    ///
    /// # Errors
    ///
    /// The future fails with a [`ResolveError`]: of kind
    /// [`InvalidName`](crate::ResolveErrorKind::InvalidName) at once if `host` cannot be a
    /// host name, otherwise with the wrapped resolver's error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future reports its `DnsDone` (cancelled) and leaves the shared lookup,
    /// which is cancelled only if no other caller waits for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{CoalescingResolver, ResolveErrorKind, StaticResolver};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let resolver = CoalescingResolver::new(StaticResolver::new());
    /// // IP literals need no lookup.
    /// assert_eq!(resolver.lookup("::1").await.unwrap(), ["::1".parse::<std::net::IpAddr>().unwrap()]);
    /// let err = resolver.lookup("bad name").await.unwrap_err();
    /// assert_eq!(err.kind(), ResolveErrorKind::InvalidName);
    /// # }
    /// ```
    pub fn lookup(&self, host: &str) -> Lookup {
        Lookup::new(self.group.clone(), host, None, true)
    }

    /// Like [`lookup`](CoalescingResolver::lookup), reporting to `trace` instead of the
    /// trace in scope.
    pub(crate) fn lookup_traced(&self, host: &str, trace: Option<NetTrace>) -> Lookup {
        Lookup::new(self.group.clone(), host, trace, false)
    }

    /// Returns how many distinct names are being looked up right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let resolver = nettrace::CoalescingResolver::new(nettrace::StaticResolver::new());
    /// assert_eq!(resolver.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.group.lock().len()
    }
}

impl Default for CoalescingResolver {
    /// Wraps [`HickoryResolver::system()`].
    fn default() -> CoalescingResolver {
        CoalescingResolver::new(HickoryResolver::system())
    }
}

impl fmt::Debug for CoalescingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescingResolver")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, InFlight>> {
        // No user code runs under this lock, and every update leaves the map consistent,
        // so a poisoned lock is still good.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the lookup of `host` in flight, or starts one.
    fn join(self: &Arc<Group>, host: &str) -> (SharedLookup, Arc<Flight>) {
        let key = key(host);
        let mut flights = self.lock();
        if let Some(in_flight) = flights.get(&key) {
            in_flight.flight.joined.fetch_add(1, Ordering::Relaxed);
            in_flight.flight.waiting.fetch_add(1, Ordering::Relaxed);
            return (in_flight.shared.clone(), in_flight.flight.clone());
        }
        let flight = Arc::new(Flight::default());
        flight.joined.store(1, Ordering::Relaxed);
        flight.waiting.store(1, Ordering::Relaxed);
        let shared = self.start(host, key.clone(), flight.clone());
        flights.insert(
            key,
            InFlight {
                shared: shared.clone(),
                flight: flight.clone(),
            },
        );
        (shared, flight)
    }

    /// The shared lookup: it calls the resolver on its first poll (not under the lock),
    /// and on completion removes itself from the map, so nobody joins a finished lookup
    /// and every caller reads the final `joined` count.
    fn start(self: &Arc<Group>, host: &str, key: Box<str>, flight: Arc<Flight>) -> SharedLookup {
        let group: Weak<Group> = Arc::downgrade(self);
        let resolver = self.resolver.clone();
        let host = host.to_owned();
        let lookup = async move {
            // `resolve` itself runs inside the hidden scope too, not only its future.
            let answer = without_trace(async { resolver.resolve(&host).await }).await;
            if let Some(group) = group.upgrade() {
                group.remove(&key, &flight);
            }
            answer.map(Arc::from)
        };
        let lookup: Pin<Box<dyn Future<Output = Answer> + Send>> = Box::pin(lookup);
        lookup.shared()
    }

    /// A waiting caller left; the last one to leave cancels the lookup.
    fn leave(&self, host: &str, flight: &Arc<Flight>) {
        let key = key(host);
        let removed = {
            let mut flights = self.lock();
            if flight.waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
                take_if_same(&mut flights, &key, flight)
            } else {
                None
            }
        };
        // Dropping the last handle drops the resolver's future: do it outside the lock.
        drop(removed);
    }

    fn remove(&self, key: &str, flight: &Arc<Flight>) {
        let removed = take_if_same(&mut self.lock(), key, flight);
        drop(removed);
    }
}

fn take_if_same(
    flights: &mut HashMap<Box<str>, InFlight>,
    key: &str,
    flight: &Arc<Flight>,
) -> Option<InFlight> {
    match flights.get(key) {
        Some(in_flight) if Arc::ptr_eq(&in_flight.flight, flight) => flights.remove(key),
        _ => None,
    }
}

/// `127.0.0.1`, `::1`, `[::1]` or `fe80::1%eth0` (the zone is dropped: an `IpAddr` has
/// none; the dialer keeps it).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = bare.split_once('%').map_or(bare, |(ip, _zone)| ip);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if bare.len() == ip.len() => Some(IpAddr::V4(v4)),
        Ok(IpAddr::V6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// The map key of `host`: ASCII case ignored and one trailing dot dropped, since a
/// fully qualified `x.test.` names the same host as `x.test`. The wrapped resolver is
/// still asked with the spelling of the caller that started the lookup.
fn key(host: &str) -> Box<str> {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase().into_boxed_str()
}

/// The future of one caller's lookup, returned by [`CoalescingResolver::lookup`].
///
/// # Examples
///
/// ```
/// use nettrace::{CoalescingResolver, Lookup, StaticResolver};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let resolver = CoalescingResolver::new(StaticResolver::new());
/// let lookup: Lookup = resolver.lookup("127.0.0.1");
/// assert_eq!(lookup.await.unwrap().len(), 1);
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Lookup {
    group: Arc<Group>,
    host: Box<str>,
    trace: Option<NetTrace>,
    /// Whether to take the trace in scope at the first poll.
    capture: bool,
    state: State,
}

enum State {
    /// Not polled yet.
    Idle,
    /// `DnsStart` is being reported; only seen if a hook panics.
    Starting,
    /// Waiting for the shared lookup; `DnsDone` is owed.
    Waiting {
        shared: SharedLookup,
        flight: Arc<Flight>,
    },
    Done,
}

impl Lookup {
    fn new(group: Arc<Group>, host: &str, trace: Option<NetTrace>, capture: bool) -> Lookup {
        Lookup {
            group,
            host: host.into(),
            trace,
            capture,
            state: State::Idle,
        }
    }

    fn dns_done(&self, addrs: &[IpAddr], coalesced: bool, error: Option<&ResolveError>) {
        if let Some(trace) = &self.trace {
            trace.dns_done(&self.host, addrs, coalesced, error);
        }
    }
}

impl Future for Lookup {
    type Output = Result<Vec<IpAddr>, ResolveError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Idle => {
                    if this.capture {
                        this.trace = current();
                    }
                    if let Some(ip) = ip_literal(&this.host) {
                        this.state = State::Done;
                        return Poll::Ready(Ok(vec![ip]));
                    }
                    if let Err(err) = name::validate(&this.host) {
                        this.state = State::Done;
                        return Poll::Ready(Err(err));
                    }
                    this.state = State::Starting;
                    if let Some(trace) = &this.trace {
                        trace.dns_start(&this.host);
                    }
                    let (shared, flight) = this.group.join(&this.host);
                    this.state = State::Waiting { shared, flight };
                }
                State::Waiting { shared, flight } => {
                    let answer = ready!(Pin::new(shared).poll(cx));
                    // The lookup removed itself from the group before completing, so no
                    // caller can join any more and the count is final.
                    let coalesced = flight.joined.load(Ordering::Relaxed) > 1;
                    this.state = State::Done;
                    return Poll::Ready(match answer {
                        Ok(addrs) => {
                            this.dns_done(&addrs, coalesced, None);
                            Ok(addrs.to_vec())
                        }
                        Err(err) => {
                            this.dns_done(&[], coalesced, Some(&err));
                            Err(err)
                        }
                    });
                }
                State::Starting | State::Done => panic!("`Lookup` polled after completion"),
            }
        }
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Waiting { shared, flight } => {
                drop(shared);
                self.group.leave(&self.host, &flight);
            }
            State::Starting => {}
            State::Idle | State::Done => return,
        }
        // A caller that leaves received no result, so it shared none (as Go reports).
        crate::trace::fire_from_drop(|| {
            let err = ResolveError::cancelled(&self.host);
            self.dns_done(&[], false, Some(&err));
        });
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Starting => "starting",
            State::Waiting { .. } => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Lookup")
            .field("host", &self.host)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::ip_literal;

    #[test]
    fn ip_literals_with_brackets_and_zones() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(ip_literal("127.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(ip_literal("::1"), Some(ip("::1")));
        assert_eq!(ip_literal("[::1]"), Some(ip("::1")));
        assert_eq!(ip_literal("fe80::1%eth0"), Some(ip("fe80::1")));
        assert_eq!(ip_literal("[fe80::1%2]"), Some(ip("fe80::1")));
        assert_eq!(ip_literal("127.0.0.1%eth0"), None);
        assert_eq!(ip_literal("[127.0.0.1]"), Some(ip("127.0.0.1")));
        assert_eq!(ip_literal("example.test"), None);
    }
}
