//! The traced [`Dialer`]: parse, resolve (shared), then race connection attempts as RFC
//! 8305 Happy Eyeballs describes.

pub(crate) mod addr;
mod attempt;
mod error;
mod future;
mod race;
mod sort;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::resolve::{CoalescingResolver, HickoryResolver, Resolve};
use crate::trace::Family;

pub use self::error::{Attempts, DialError};
pub use self::future::Dial;

/// The RFC 8305 §8 recommended Connection Attempt Delay.
const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// The RFC 8305 §8 recommended Resolution Delay.
const DEFAULT_RESOLUTION_DELAY: Duration = Duration::from_millis(50);
/// RFC 8305 §5: the delay should not be less than 10 ms ...
const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// ... and should not be more than 2 s.
const MAX_ATTEMPT_DELAY: Duration = Duration::from_secs(2);

/// Opens TCP connections, reporting every lookup and connection attempt to the trace in
/// scope.
///
/// A dial parses its target, looks the host up (IP literals skip this) through a
/// [`CoalescingResolver`] shared by all clones of the dialer, and races connection
/// attempts as [RFC 8305](https://www.rfc-editor.org/rfc/rfc8305) describes:
///
/// - §3: a resolver that answers per family (as [`HickoryResolver`] does) lets the race
///   start on the AAAA answer, or [`resolution_delay`](DialerBuilder::resolution_delay)
///   after an A answer that came first; addresses that arrive later join the untried part
///   of the race, and when every attempt so far failed while an answer is still due, the
///   dial waits for it.
/// - §4: the addresses are ordered by RFC 6724 §6 (a joint answer, such as a
///   [`StaticResolver`](crate::StaticResolver)'s, keeps the resolver's order), then the
///   families alternate, starting with the family of the most preferred address.
/// - §5: each attempt starts [`attempt_delay`](DialerBuilder::attempt_delay) after the
///   previous one, or at once when every attempt in flight has failed; the first to
///   connect wins and the others are cancelled (their sockets closed).
///
/// Attempts are polled inside the dial future — nothing is spawned — so hooks run on the
/// dialing task, and none runs after the dial has returned. If the dial future is dropped
/// early, the pending `DnsAnswer`, `DnsDone` and `ConnectDone` (`Cancelled`) hooks fire
/// from its drop: every start is matched by exactly one done. A hook that panics costs no
/// other hook its event: the dial ends, every pending done fires, and then the panic
/// continues to the caller.
///
/// Cloning is cheap; clones share options and resolver.
///
/// # Examples
///
/// ```
/// use nettrace::{Dialer, NetTrace};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let addr = listener.local_addr()?.to_string();
/// let trace = NetTrace::new()
///     .on_connect_start(|e| println!("attempt {} to {}", e.attempt, e.addr))
///     .on_connect_done(|e| println!("attempt {} done: {:?}", e.attempt, e.outcome));
///
/// let dialer = Dialer::new();
/// let stream = nettrace::with_trace(trace, dialer.dial(&addr)).await?;
/// assert_eq!(stream.peer_addr()?.to_string(), addr);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Dialer {
    options: Arc<Options>,
    resolver: CoalescingResolver,
}

/// The options of a [`Dialer`].
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_delay: Duration,
    pub(crate) resolution_delay: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) happy_eyeballs: bool,
    pub(crate) family: Family,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_retries: Option<u32>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) recv_buffer_size: Option<usize>,
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub(crate) tcp_user_timeout: Option<Duration>,
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    pub(crate) mark: Option<u32>,
    pub(crate) local: LocalBind,
    pub(crate) bind_device: Option<String>,
    pub(crate) reuse_address: bool,
}

/// The local address an attempt binds before connecting: set by
/// [`DialerBuilder::local_addr`] or [`DialerBuilder::local_addrs`], whichever was called
/// last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum LocalBind {
    /// No bind: the system chooses when connecting.
    #[default]
    Unbound,
    /// Every attempt binds this address and port; only its family is dialed.
    Addr(SocketAddr),
    /// An attempt binds the address of its destination's family, port 0; a family
    /// without one is dialed unbound.
    PerFamily(Option<Ipv4Addr>, Option<Ipv6Addr>),
}

impl LocalBind {
    /// The address an attempt to `dest` binds, if any.
    pub(crate) fn for_dest(self, dest: SocketAddr) -> Option<SocketAddr> {
        match (self, dest) {
            (LocalBind::Unbound, _) => None,
            (LocalBind::Addr(local), _) => Some(local),
            (LocalBind::PerFamily(v4, _), SocketAddr::V4(_)) => {
                v4.map(|ip| SocketAddr::new(ip.into(), 0))
            }
            (LocalBind::PerFamily(_, v6), SocketAddr::V6(_)) => {
                v6.map(|ip| SocketAddr::new(ip.into(), 0))
            }
        }
    }
}

impl Options {
    /// Whether an attempt to `ip` may be made: the family filter allows it and, with a
    /// single local address ([`DialerBuilder::local_addr`]), it is of that address's
    /// family.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        self.family.allows(ip)
            && match self.local {
                LocalBind::Addr(local) => local.is_ipv4() == ip.is_ipv4(),
                LocalBind::Unbound | LocalBind::PerFamily(..) => true,
            }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: None,
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            resolution_delay: DEFAULT_RESOLUTION_DELAY,
            attempt_timeout: None,
            happy_eyeballs: true,
            family: Family::Any,
            nodelay: false,
            keepalive: None,
            keepalive_interval: None,
            keepalive_retries: None,
            send_buffer_size: None,
            recv_buffer_size: None,
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            tcp_user_timeout: None,
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            mark: None,
            local: LocalBind::Unbound,
            bind_device: None,
            reuse_address: false,
        }
    }
}

impl Dialer {
    /// Returns a dialer with the default options, resolving through
    /// [`HickoryResolver::system()`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::new();
    /// # drop(dialer);
    /// ```
    pub fn new() -> Dialer {
        Dialer::builder().build()
    }

    /// Returns a builder to set the dialer's options.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .timeout(Duration::from_secs(10))
    ///     .attempt_delay(Duration::from_millis(100))
    ///     .nodelay(true)
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn builder() -> DialerBuilder {
        DialerBuilder::default()
    }

    /// Connects to `addr`: `host:port`, `ipv4:port` or `[ipv6]:port` (an IPv6 address may
    /// carry a zone: `[fe80::1%eth0]:80`).
    ///
    /// The address is checked at once but reported when the future is first polled,
    /// which is also when the trace in scope is captured.
    ///
    /// # Errors
    ///
    /// The future fails with [`DialError::InvalidAddress`] (before any hook or network
    /// use) for a malformed address, [`DialError::Resolve`] or
    /// [`DialError::NoAddresses`] when the host does not resolve to a usable address,
    /// [`DialError::AllAttemptsFailed`] when every attempt failed, and
    /// [`DialError::Timeout`] when the dialer's timeout expired first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes every socket it opened and fires the pending
    /// `DnsDone` and `ConnectDone` (`Cancelled`) hooks.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), nettrace::DialError> {
    /// # let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    /// # let port = listener.local_addr().unwrap().port();
    /// let stream = nettrace::Dialer::new().dial(&format!("[::1]:{port}")).await?;
    /// # drop(stream);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dial(&self, addr: &str) -> Dial {
        let target = addr::parse(addr).map_err(|why| DialError::invalid(addr, why));
        Dial::new(self.clone(), target)
    }

    /// Connects to `port` on `host`: a name, or an IP literal (IPv6 with or without
    /// brackets).
    ///
    /// # Errors
    ///
    /// As [`dial`](Dialer::dial).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), nettrace::DialError> {
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let port = listener.local_addr().unwrap().port();
    /// let stream = nettrace::Dialer::new().dial_host("127.0.0.1", port).await?;
    /// # drop(stream);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dial_host(&self, host: &str, port: u16) -> Dial {
        let target = addr::from_parts(host, port)
            .map_err(|why| DialError::invalid(&addr::join(host, port), why));
        Dial::new(self.clone(), target)
    }

    /// Returns the coalescing resolver this dialer (and its clones) looks names up with.
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::new();
    /// assert_eq!(dialer.resolver().in_flight(), 0);
    /// ```
    pub fn resolver(&self) -> &CoalescingResolver {
        &self.resolver
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }
}

impl Default for Dialer {
    fn default() -> Dialer {
        Dialer::new()
    }
}

/// Builds a [`Dialer`]; every option has a default, so `Dialer::builder().build()` is a
/// working dialer.
///
/// Socket options (`nodelay`, the keepalive settings, buffer sizes, `tcp_user_timeout`,
/// `mark`, `bind_device`, `reuse_address`, the local address) are set on each attempt's
/// socket before `connect`. An option the system rejects fails that attempt with the
/// system's error, before any packet is sent: its `ConnectDone` reports the error, the
/// race goes on with the other addresses, and if none connects the error is kept in
/// [`DialError::AllAttemptsFailed`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nettrace::{Dialer, Family, StaticResolver};
///
/// let dialer = Dialer::builder()
///     .resolver(StaticResolver::new().insert("db.test", ["127.0.0.1".parse().unwrap()]))
///     .timeout(Duration::from_secs(5))
///     .attempt_delay(Duration::from_millis(150))
///     .family(Family::Any)
///     .nodelay(true)
///     .keepalive(Some(Duration::from_secs(30)))
///     .recv_buffer_size(Some(256 * 1024))
///     .build();
/// # drop(dialer);
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct DialerBuilder {
    options: Options,
    resolver: Option<Arc<dyn Resolve>>,
}

impl std::fmt::Debug for DialerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialerBuilder")
            .field("options", &self.options)
            .field("custom_resolver", &self.resolver.is_some())
            .finish()
    }
}

impl DialerBuilder {
    /// Resolves names with `resolver`. Concurrent lookups of one name by this dialer and
    /// its clones are shared (see [`CoalescingResolver`]).
    ///
    /// Default is [`HickoryResolver::system()`], built on its first lookup.
    pub fn resolver(mut self, resolver: impl Resolve) -> DialerBuilder {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Limits the whole dial, name lookup included; when it expires the dial fails with
    /// [`DialError::Timeout`] and every attempt in flight is cancelled.
    ///
    /// A zero duration means no limit, as in Go's `Dialer.Timeout` and curl's
    /// `--connect-timeout 0`.
    ///
    /// Default is no limit (the operating system's connect timeout still applies to each
    /// attempt).
    pub fn timeout(mut self, timeout: Duration) -> DialerBuilder {
        self.options.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Sets the RFC 8305 Connection Attempt Delay: how long to wait for an attempt before
    /// starting the next one alongside it. Clamped to 10 milliseconds ..= 2 seconds, as
    /// RFC 8305 §5 requires.
    ///
    /// Default is 250 milliseconds.
    pub fn attempt_delay(mut self, delay: Duration) -> DialerBuilder {
        self.options.attempt_delay = delay.clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY);
        self
    }

    /// Sets the RFC 8305 §3 Resolution Delay: when the A answer comes before the AAAA
    /// answer, how long the dial waits for AAAA before it starts with the IPv4 addresses.
    /// When AAAA comes first the dial starts at once; addresses that come later join the
    /// untried part of the race. Zero starts on the first answer.
    ///
    /// Default is 50 milliseconds (RFC 8305 §8).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .resolution_delay(Duration::from_millis(20))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn resolution_delay(mut self, delay: Duration) -> DialerBuilder {
        self.options.resolution_delay = delay;
        self
    }

    /// Limits each connection attempt, in both modes. An attempt that reaches the limit
    /// fails with [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) and counts as
    /// failed: when no other attempt is in flight, the next starts at once. A zero
    /// duration means no limit.
    ///
    /// Default is no limit of its own. Without it, a dial with
    /// [`happy_eyeballs(false)`](DialerBuilder::happy_eyeballs) and a
    /// [`timeout`](DialerBuilder::timeout) gives each attempt its share of the time left,
    /// as Go does: the time left divided by the addresses left, but not less than 2
    /// seconds unless less than that is left.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .attempt_timeout(Duration::from_secs(3))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> DialerBuilder {
        self.options.attempt_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// With `false`, tries one address at a time: the next attempt starts only when the
    /// previous one has failed.
    ///
    /// Default is `true` (Happy Eyeballs).
    pub fn happy_eyeballs(mut self, enabled: bool) -> DialerBuilder {
        self.options.happy_eyeballs = enabled;
        self
    }

    /// Connects only to addresses of `family`; a host with none fails with
    /// [`DialError::NoAddresses`].
    ///
    /// Default is [`Family::Any`].
    pub fn family(mut self, family: Family) -> DialerBuilder {
        self.options.family = family;
        self
    }

    /// Sets `TCP_NODELAY` on every attempt's socket.
    ///
    /// Default is `false` (the operating system's default, Nagle's algorithm on).
    pub fn nodelay(mut self, nodelay: bool) -> DialerBuilder {
        self.options.nodelay = nodelay;
        self
    }

    /// Enables TCP keepalive on every attempt's socket (`SO_KEEPALIVE`), with this idle
    /// time before the first probe (`TCP_KEEPIDLE`, whole seconds on Linux).
    ///
    /// With `None`, keepalive stays off unless
    /// [`keepalive_interval`](DialerBuilder::keepalive_interval) or
    /// [`keepalive_retries`](DialerBuilder::keepalive_retries) is set; then it is on with
    /// the system's idle time (two hours on Linux, `net.ipv4.tcp_keepalive_time`), as
    /// hyper-util's `HttpConnector` does.
    ///
    /// Default is `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .keepalive(Some(Duration::from_secs(60)))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn keepalive(mut self, idle: Option<Duration>) -> DialerBuilder {
        self.options.keepalive = idle;
        self
    }

    /// Sets the time between two keepalive probes when the previous one was not
    /// answered (`TCP_KEEPINTVL`, whole seconds on Linux).
    ///
    /// Setting it turns keepalive on even when [`keepalive`](DialerBuilder::keepalive)
    /// is `None` (the idle time is then the system's), as hyper-util's `HttpConnector`
    /// does. Ignored on systems where it cannot be set (OpenBSD, Solaris and Haiku among
    /// them).
    ///
    /// Default is `None` (the system's interval: 75 seconds on Linux,
    /// `net.ipv4.tcp_keepalive_intvl`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .keepalive(Some(Duration::from_secs(60)))
    ///     .keepalive_interval(Some(Duration::from_secs(10)))
    ///     .keepalive_retries(Some(3))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> DialerBuilder {
        self.options.keepalive_interval = interval;
        self
    }

    /// Sets how many unanswered keepalive probes close the connection
    /// (`TCP_KEEPCNT`, a count of probes).
    ///
    /// Setting it turns keepalive on even when [`keepalive`](DialerBuilder::keepalive)
    /// is `None` (the idle time is then the system's), as hyper-util's `HttpConnector`
    /// does. Ignored on Windows and on systems where it cannot be set (OpenBSD, Solaris
    /// and Haiku among them).
    ///
    /// Default is `None` (the system's count: 9 on Linux, `net.ipv4.tcp_keepalive_probes`).
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::builder().keepalive_retries(Some(3)).build();
    /// # drop(dialer);
    /// ```
    pub fn keepalive_retries(mut self, retries: Option<u32>) -> DialerBuilder {
        self.options.keepalive_retries = retries;
        self
    }

    /// Sets the size of every attempt's send buffer (`SO_SNDBUF`), in bytes.
    ///
    /// The system may adjust it: Linux doubles the value (for its bookkeeping), caps it
    /// at `net.core.wmem_max`, and stops tuning the buffer on its own.
    ///
    /// Default is `None` (the system's size, tuned as the connection goes).
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::builder()
    ///     .send_buffer_size(Some(64 * 1024))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn send_buffer_size(mut self, bytes: Option<usize>) -> DialerBuilder {
        self.options.send_buffer_size = bytes;
        self
    }

    /// Sets the size of every attempt's receive buffer (`SO_RCVBUF`), in bytes.
    ///
    /// It is set before `connect` because the TCP window scale is fixed by the
    /// handshake. The system may adjust it: Linux doubles the value, caps it at
    /// `net.core.rmem_max`, and stops tuning the buffer on its own.
    ///
    /// Default is `None` (the system's size, tuned as the connection goes).
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::builder()
    ///     .recv_buffer_size(Some(256 * 1024))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn recv_buffer_size(mut self, bytes: Option<usize>) -> DialerBuilder {
        self.options.recv_buffer_size = bytes;
        self
    }

    /// Sets `TCP_USER_TIMEOUT` on every attempt's socket: how long sent data may stay
    /// unacknowledged before the system closes the connection, with millisecond
    /// precision. `Some(Duration::ZERO)` means the system's behaviour.
    ///
    /// Default is `None` (the system's behaviour: retransmissions decide, about 15
    /// minutes on Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .tcp_user_timeout(Some(Duration::from_secs(30)))
    ///     .build();
    /// # drop(dialer);
    /// ```
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))
    )]
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> DialerBuilder {
        self.options.tcp_user_timeout = timeout;
        self
    }

    /// Sets the mark (`SO_MARK`, a 32-bit number for routing rules and packet
    /// filters) on every attempt's socket.
    ///
    /// Setting a mark needs `CAP_NET_ADMIN`. Without it, every attempt fails with the
    /// system's `EPERM` error (`io::ErrorKind::PermissionDenied`) before any packet is
    /// sent, and the dial fails with [`DialError::AllAttemptsFailed`].
    ///
    /// Default is `None` (no mark).
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::builder().mark(Some(0x2a)).build();
    /// # drop(dialer);
    /// ```
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))
    )]
    pub fn mark(mut self, mark: Option<u32>) -> DialerBuilder {
        self.options.mark = mark;
        self
    }

    /// Binds every attempt's socket to this local address before connecting (port 0
    /// lets the system choose). Only addresses of the same family are then dialed.
    ///
    /// Replaces what an earlier [`local_addrs`](DialerBuilder::local_addrs) set: of the
    /// two, the later call wins (`None` removes either).
    ///
    /// Default is `None` (the system chooses).
    ///
    /// # Examples
    ///
    /// ```
    /// let dialer = nettrace::Dialer::builder()
    ///     .local_addr(Some("127.0.0.1:0".parse().unwrap()))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn local_addr(mut self, addr: Option<SocketAddr>) -> DialerBuilder {
        self.options.local = addr.map_or(LocalBind::Unbound, LocalBind::Addr);
        self
    }

    /// Binds each attempt's socket to the local address of its destination's family
    /// (port 0, the system chooses the port), as hyper-util's `set_local_addresses`:
    /// an attempt to an IPv4 address binds `ipv4`, one to an IPv6 address binds `ipv6`.
    /// Addresses of a family without a local address are still dialed, unbound — unlike
    /// [`local_addr`](DialerBuilder::local_addr), which dials its family only.
    ///
    /// Replaces what an earlier [`local_addr`](DialerBuilder::local_addr) set: of the
    /// two, the later call wins (`local_addrs(None, None)` removes either).
    ///
    /// A local address the host does not have fails that attempt with the system's
    /// error (`EADDRNOTAVAIL`, `io::ErrorKind::AddrNotAvailable`) before any packet is
    /// sent; the other attempts go on.
    ///
    /// Default is `(None, None)`: every attempt unbound.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{Ipv4Addr, Ipv6Addr};
    ///
    /// let dialer = nettrace::Dialer::builder()
    ///     .local_addrs(Some(Ipv4Addr::LOCALHOST), Some(Ipv6Addr::LOCALHOST))
    ///     .build();
    /// # drop(dialer);
    /// ```
    pub fn local_addrs(mut self, ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> DialerBuilder {
        self.options.local = match (ipv4, ipv6) {
            (None, None) => LocalBind::Unbound,
            _ => LocalBind::PerFamily(ipv4, ipv6),
        };
        self
    }

    /// Binds every attempt's socket to this network interface (`SO_BINDTODEVICE`),
    /// before connecting. An unknown interface fails each attempt with the system's
    /// error.
    ///
    /// Default is `None`.
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))
    )]
    pub fn bind_device(mut self, interface: Option<&str>) -> DialerBuilder {
        self.options.bind_device = interface.map(str::to_owned);
        self
    }

    /// Sets `SO_REUSEADDR` on every attempt's socket, before it is bound.
    ///
    /// Default is `false`.
    pub fn reuse_address(mut self, reuse: bool) -> DialerBuilder {
        self.options.reuse_address = reuse;
        self
    }

    /// Returns the dialer.
    pub fn build(self) -> Dialer {
        let resolver = self
            .resolver
            .unwrap_or_else(|| Arc::new(HickoryResolver::system()));
        Dialer {
            options: Arc::new(self.options),
            resolver: CoalescingResolver::from_arc(resolver),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_delay_is_clamped() {
        let delay = |d| {
            Dialer::builder()
                .attempt_delay(d)
                .build()
                .options
                .attempt_delay
        };
        assert_eq!(delay(Duration::ZERO), MIN_ATTEMPT_DELAY);
        assert_eq!(delay(Duration::from_secs(60)), MAX_ATTEMPT_DELAY);
        assert_eq!(
            delay(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        assert_eq!(Dialer::new().options.attempt_delay, DEFAULT_ATTEMPT_DELAY);
    }

    #[test]
    fn a_zero_timeout_means_no_limit() {
        let timeout = |d| Dialer::builder().timeout(d).build().options.timeout;
        assert_eq!(timeout(Duration::ZERO), None);
        assert_eq!(
            timeout(Duration::from_millis(1)),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn local_addr_limits_the_family() {
        let options = Options {
            local: LocalBind::Addr("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        };
        assert!(options.allows("127.0.0.2".parse().unwrap()));
        assert!(!options.allows("::1".parse().unwrap()));
        let v6 = Options {
            family: Family::Ipv6,
            ..Options::default()
        };
        assert!(!v6.allows("127.0.0.1".parse().unwrap()));
        assert!(v6.allows("::1".parse().unwrap()));
    }

    #[test]
    fn local_addrs_bind_per_family_and_allow_both() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let both = LocalBind::PerFamily(Some(Ipv4Addr::new(127, 0, 0, 3)), None);
        assert_eq!(both.for_dest(v4), Some("127.0.0.3:0".parse().unwrap()));
        assert_eq!(both.for_dest(v6), None);
        let options = Options {
            local: both,
            ..Options::default()
        };
        assert!(options.allows(v4.ip()) && options.allows(v6.ip()));

        let one: SocketAddr = "127.0.0.4:5000".parse().unwrap();
        assert_eq!(LocalBind::Addr(one).for_dest(v4), Some(one));
        assert_eq!(LocalBind::Unbound.for_dest(v6), None);
    }

    #[test]
    fn the_later_local_setter_wins() {
        let one: SocketAddr = "127.0.0.4:0".parse().unwrap();
        let v4 = Some(Ipv4Addr::LOCALHOST);
        let local = |b: DialerBuilder| b.build().options.local;
        assert_eq!(
            local(
                Dialer::builder()
                    .local_addr(Some(one))
                    .local_addrs(v4, None)
            ),
            LocalBind::PerFamily(v4, None)
        );
        assert_eq!(
            local(
                Dialer::builder()
                    .local_addrs(v4, None)
                    .local_addr(Some(one))
            ),
            LocalBind::Addr(one)
        );
        assert_eq!(
            local(
                Dialer::builder()
                    .local_addr(Some(one))
                    .local_addrs(None, None)
            ),
            LocalBind::Unbound
        );
        assert_eq!(
            local(Dialer::builder().local_addrs(v4, None).local_addr(None)),
            LocalBind::Unbound
        );
    }
}
