//! [`CoalescingResolver`]: shares concurrent lookups of one name and fires the DNS hooks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::mem;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{ready, Context, Poll};

use futures_util::future::{FutureExt, Shared};

use super::{name, FamilyKind, FamilyResolving, HickoryResolver, Resolve, ResolveError, Resolving};
use crate::scope::{current, without_trace};
use crate::trace::{DialId, DnsAnswer, DnsDone, DnsStart, Family, Fired, NetTrace, Panics};

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
    shares: Shares,
    flight: Arc<Flight>,
}

/// The shared answers of one lookup.
#[derive(Clone)]
enum Shares {
    /// One answer for both families, in the resolver's order.
    Joint(SharedLookup),
    /// `[AAAA, A]`, each when it comes.
    Split([SharedLookup; 2]),
}

/// The callers of one lookup. The counters change only under the group's lock.
#[derive(Default)]
struct Flight {
    /// Callers that ever joined.
    joined: AtomicUsize,
    /// Callers still waiting.
    waiting: AtomicUsize,
    /// Shared answers not yet complete; at zero the lookup leaves the map.
    unanswered: AtomicUsize,
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
        Lookup {
            resolution: Resolution::new(self.group.clone(), host, DialId::next(), None),
            polled: false,
        }
    }

    /// One dial's lookup of `host` (a name, already validated), reporting to `trace` with
    /// the dial's id. Nothing happens until [`Resolution::start`].
    pub(crate) fn resolution(
        &self,
        host: &str,
        dial: DialId,
        trace: Option<NetTrace>,
    ) -> Resolution {
        Resolution::new(self.group.clone(), host, dial, trace)
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
    fn join(self: &Arc<Group>, host: &str) -> (Shares, Arc<Flight>) {
        let key = key(host);
        if let Some(joined) = self.join_in_flight(&key) {
            return joined;
        }
        // The resolver is asked outside the lock (it is user code), inside the hidden
        // scope; its futures run on their first poll. Should another caller have started
        // the same lookup meanwhile, that one is joined and these futures, never polled,
        // are dropped.
        let resolving = crate::scope::hidden(|| self.resolver.resolve_by_family(host));
        let flight = Arc::new(Flight::default());
        let shares = self.share(resolving, &key, &flight);
        let mut flights = self.lock();
        if let Some(in_flight) = flights.get(&key) {
            in_flight.flight.joined.fetch_add(1, Ordering::Relaxed);
            in_flight.flight.waiting.fetch_add(1, Ordering::Relaxed);
            return (in_flight.shares.clone(), in_flight.flight.clone());
        }
        flight.joined.store(1, Ordering::Relaxed);
        flight.waiting.store(1, Ordering::Relaxed);
        flights.insert(
            key,
            InFlight {
                shares: shares.clone(),
                flight: flight.clone(),
            },
        );
        (shares, flight)
    }

    fn join_in_flight(&self, key: &str) -> Option<(Shares, Arc<Flight>)> {
        let flights = self.lock();
        let in_flight = flights.get(key)?;
        in_flight.flight.joined.fetch_add(1, Ordering::Relaxed);
        in_flight.flight.waiting.fetch_add(1, Ordering::Relaxed);
        Some((in_flight.shares.clone(), in_flight.flight.clone()))
    }

    /// The shared answers. Each, on completion, counts itself; the last one removes the
    /// lookup from the map, so nobody joins a finished lookup and every caller then reads
    /// the final `joined` count.
    fn share(
        self: &Arc<Group>,
        resolving: FamilyResolving,
        key: &str,
        flight: &Arc<Flight>,
    ) -> Shares {
        let share = |lookup: Resolving| -> SharedLookup {
            let group: Weak<Group> = Arc::downgrade(self);
            let (key, flight) = (Box::<str>::from(key), flight.clone());
            let lookup = async move {
                let answer = without_trace(lookup).await;
                if flight.unanswered.fetch_sub(1, Ordering::AcqRel) == 1 {
                    if let Some(group) = group.upgrade() {
                        group.remove(&key, &flight);
                    }
                }
                answer.map(Arc::from)
            };
            let lookup: Pin<Box<dyn Future<Output = Answer> + Send>> = Box::pin(lookup);
            lookup.shared()
        };
        match resolving.kind {
            FamilyKind::Joint(lookup) => {
                flight.unanswered.store(1, Ordering::Relaxed);
                Shares::Joint(share(lookup))
            }
            FamilyKind::Split { ipv6, ipv4 } => {
                flight.unanswered.store(2, Ordering::Relaxed);
                Shares::Split([share(ipv6), share(ipv4)])
            }
        }
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
        // Dropping the last handle drops the resolver's futures: do it outside the lock.
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

/// One family's answer, as a dial receives it.
#[derive(Debug)]
pub(crate) struct FamilyAnswer {
    pub(crate) family: Family,
    /// This family's addresses; empty on error.
    pub(crate) addrs: Vec<IpAddr>,
    /// Whether the resolver's order is to be kept (a joint answer) rather than sorted.
    pub(crate) ordered: bool,
}

/// One caller's part in a shared lookup: fires `DnsStart`, one `DnsAnswer` per family and
/// `DnsDone`, each exactly once, and hands the dial each family's answer as it comes.
pub(crate) struct Resolution {
    group: Arc<Group>,
    host: Box<str>,
    dial: DialId,
    trace: Option<NetTrace>,
    state: State,
    /// Every address received: for a joint answer in its order, else IPv6 then IPv4.
    received: Vec<IpAddr>,
    /// The first error a family answered with.
    error: Option<ResolveError>,
    /// Answers taken from a joint share, not yet handed out.
    ready: VecDeque<FamilyAnswer>,
}

enum State {
    /// Not started.
    Idle,
    /// Waiting for answers; `DnsDone` (and the `DnsAnswer`s of `pending`) are owed.
    Waiting {
        flight: Arc<Flight>,
        /// A joint share, or the `[AAAA, A]` shares still unanswered.
        joint: Option<SharedLookup>,
        families: [Option<SharedLookup>; 2],
    },
    Done,
}

const FAMILIES: [Family; 2] = [Family::Ipv6, Family::Ipv4];

impl Resolution {
    fn new(group: Arc<Group>, host: &str, dial: DialId, trace: Option<NetTrace>) -> Resolution {
        Resolution {
            group,
            host: host.into(),
            dial,
            trace,
            state: State::Idle,
            received: Vec::new(),
            error: None,
            ready: VecDeque::new(),
        }
    }

    /// Fires `DnsStart` and joins (or starts) the shared lookup. Even if a hook panics,
    /// the lookup is joined, so `DnsDone` is owed.
    pub(crate) fn start(&mut self) -> Fired {
        let fired = match &self.trace {
            Some(trace) => trace.dns_start(&DnsStart {
                dial: self.dial,
                host: &self.host,
            }),
            None => Ok(()),
        };
        let (shares, flight) = self.group.join(&self.host);
        self.state = match shares {
            Shares::Joint(joint) => State::Waiting {
                flight,
                joint: Some(joint),
                families: [None, None],
            },
            Shares::Split([v6, v4]) => State::Waiting {
                flight,
                joint: None,
                families: [Some(v6), Some(v4)],
            },
        };
        fired
    }

    /// The next family's answer, with its `DnsAnswer` fired (and `DnsDone` after the
    /// last); `Ready(None)` once every family has answered. Hook panics go to `panics`.
    pub(crate) fn poll_answer(
        &mut self,
        cx: &mut Context<'_>,
        panics: &mut Panics,
    ) -> Poll<Option<FamilyAnswer>> {
        loop {
            if let Some(answer) = self.ready.pop_front() {
                return Poll::Ready(Some(answer));
            }
            let State::Waiting {
                flight,
                joint,
                families,
            } = &mut self.state
            else {
                return Poll::Ready(None);
            };
            if let Some(shared) = joint {
                let answer = ready!(Pin::new(shared).poll(cx));
                *joint = None;
                let coalesced = flight.joined.load(Ordering::Relaxed) > 1;
                let (addrs, error) = match answer {
                    Ok(addrs) => (addrs.to_vec(), None),
                    Err(err) => (Vec::new(), Some(err)),
                };
                // Both families at once; the family of the first address first.
                let first_v4 = addrs.first().is_some_and(IpAddr::is_ipv4);
                let order = if first_v4 { [1, 0] } else { [0, 1] };
                for i in order {
                    let family = FAMILIES[i];
                    let mine: Vec<IpAddr> = addrs
                        .iter()
                        .copied()
                        .filter(|ip| Family::of(*ip) == family)
                        .collect();
                    panics.keep(self.fire_answer(family, &mine, coalesced, error.as_ref()));
                    self.ready.push_back(FamilyAnswer {
                        family,
                        addrs: mine,
                        ordered: true,
                    });
                }
                self.received = addrs;
                if self.error.is_none() {
                    self.error = error;
                }
                panics.keep(self.finish(coalesced));
                continue;
            }
            let mut answered = None;
            for (i, slot) in families.iter_mut().enumerate() {
                if let Some(shared) = slot {
                    if let Poll::Ready(answer) = Pin::new(shared).poll(cx) {
                        *slot = None;
                        answered = Some((i, answer));
                        break;
                    }
                }
            }
            let Some((i, answer)) = answered else {
                return Poll::Pending;
            };
            let last = families.iter().all(Option::is_none);
            let coalesced = flight.joined.load(Ordering::Relaxed) > 1;
            let family = FAMILIES[i];
            let (addrs, error) = match answer {
                Ok(addrs) => (addrs.to_vec(), None),
                Err(err) => (Vec::new(), Some(err)),
            };
            panics.keep(self.fire_answer(family, &addrs, coalesced, error.as_ref()));
            if family == Family::Ipv6 {
                self.received.splice(0..0, addrs.iter().copied());
            } else {
                self.received.extend(&addrs);
            }
            if self.error.is_none() {
                self.error = error;
            }
            if last {
                panics.keep(self.finish(coalesced));
            }
            return Poll::Ready(Some(FamilyAnswer {
                family,
                addrs,
                ordered: false,
            }));
        }
    }

    /// Stops waiting: the families still due answer `Cancelled`, then `DnsDone` fires with
    /// what was received. Does nothing if the lookup is over (or never started).
    pub(crate) fn stop(&mut self, panics: &mut Panics) {
        let State::Waiting {
            flight,
            joint,
            families,
        } = &mut self.state
        else {
            return;
        };
        // A caller that leaves before any answer shared none (as Go reports a caller that
        // left); one that had an answer shared it when another caller had joined.
        let had_answer = joint.is_none() && families.iter().any(Option::is_none);
        let coalesced = had_answer && flight.joined.load(Ordering::Relaxed) > 1;
        let due: Vec<Family> = if joint.is_some() {
            FAMILIES.to_vec()
        } else {
            (0..2)
                .filter(|i| families[*i].is_some())
                .map(|i| FAMILIES[i])
                .collect()
        };
        let cancelled = ResolveError::cancelled(&self.host);
        for family in due {
            panics.keep(self.fire_answer(family, &[], false, Some(&cancelled)));
        }
        if self.error.is_none() {
            self.error = Some(cancelled);
        }
        panics.keep(self.finish(coalesced));
    }

    /// Every address received so far.
    pub(crate) fn received(&self) -> &[IpAddr] {
        &self.received
    }

    /// Why no address was received, once the lookup is over.
    pub(crate) fn take_error(&mut self) -> Option<ResolveError> {
        self.error.take()
    }

    fn fire_answer(
        &self,
        family: Family,
        addrs: &[IpAddr],
        coalesced: bool,
        error: Option<&ResolveError>,
    ) -> Fired {
        let Some(trace) = &self.trace else {
            return Ok(());
        };
        trace.dns_answer(&DnsAnswer {
            dial: self.dial,
            host: &self.host,
            family,
            addrs,
            coalesced,
            error,
        })
    }

    /// Leaves the group and fires `DnsDone`: the addresses received, or the first error
    /// when there are none.
    fn finish(&mut self, coalesced: bool) -> Fired {
        if let State::Waiting { flight, .. } = mem::replace(&mut self.state, State::Done) {
            // Dropping the shares first lets the last leaver cancel the lookup.
            self.group.leave(&self.host, &flight);
        }
        let Some(trace) = &self.trace else {
            return Ok(());
        };
        let error = if self.received.is_empty() {
            self.error.as_ref()
        } else {
            None
        };
        trace.dns_done(&DnsDone {
            dial: self.dial,
            host: &self.host,
            addrs: &self.received,
            coalesced,
            error,
        })
    }
}

impl Drop for Resolution {
    fn drop(&mut self) {
        let mut panics = Panics::default();
        self.stop(&mut panics);
        panics.resume();
    }
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Waiting { .. } => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Resolution")
            .field("host", &self.host)
            .field("dial", &self.dial)
            .field("state", &state)
            .finish_non_exhaustive()
    }
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
    resolution: Resolution,
    polled: bool,
}

impl Future for Lookup {
    type Output = Result<Vec<IpAddr>, ResolveError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let resolution = &mut this.resolution;
        let mut panics = Panics::default();
        if !this.polled {
            this.polled = true;
            resolution.trace = current();
            if let Some(ip) = ip_literal(&resolution.host) {
                return Poll::Ready(Ok(vec![ip]));
            }
            if let Err(err) = name::validate(&resolution.host) {
                return Poll::Ready(Err(err));
            }
            panics.keep(resolution.start());
            if !panics.is_empty() {
                resolution.stop(&mut panics);
                panics.resume();
                unreachable!("a kept panic resumes");
            }
        }
        let answer = loop {
            match resolution.poll_answer(cx, &mut panics) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => break Poll::Ready(()),
                Poll::Pending => break Poll::Pending,
            }
        };
        if !panics.is_empty() {
            resolution.stop(&mut panics);
            panics.resume();
        }
        ready!(answer);
        match resolution.take_error() {
            Some(err) if resolution.received().is_empty() => Poll::Ready(Err(err)),
            _ => Poll::Ready(Ok(resolution.received().to_vec())),
        }
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("resolution", &self.resolution)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{ip_literal, key};

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

    #[test]
    fn one_trailing_dot_and_case_do_not_make_another_name() {
        assert_eq!(key("X.test."), key("x.test"));
        assert_ne!(key("x.test.."), key("x.test"));
    }
}
