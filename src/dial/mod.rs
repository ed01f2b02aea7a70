//! The traced [`Dialer`]: parse, resolve (shared), then race connection attempts as RFC
//! 8305 Happy Eyeballs describes.

pub(crate) mod addr;
mod attempt;
mod error;
mod future;
mod plan;
// RFC 6724 destination order; the dialer wires it in next, until then only its tests use it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod sort;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::resolve::{CoalescingResolver, HickoryResolver, Resolve};

pub use self::error::{Attempts, DialError};
pub use self::future::Dial;

/// The RFC 8305 §8 recommended Connection Attempt Delay.
const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// RFC 8305 §5: the delay should not be less than 10 ms ...
const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// ... and should not be more than 2 s.
const MAX_ATTEMPT_DELAY: Duration = Duration::from_secs(2);

/// Opens TCP connections, reporting every lookup and connection attempt to the trace in
/// scope.
///
/// A dial parses its target, looks the host up (IP literals skip this) through a
/// [`CoalescingResolver`] shared by all clones of the dialer, and then races connection
/// attempts as [RFC 8305](https://www.rfc-editor.org/rfc/rfc8305) describes: address
/// families alternate, starting with the family of the first address the resolver
/// returned; each attempt starts [`attempt_delay`](DialerBuilder::attempt_delay) after the
/// previous one, or at once when every attempt in flight has failed; the first to connect
/// wins and the others are cancelled (their sockets closed).
///
/// Attempts are polled inside the dial future — nothing is spawned — so hooks run on the
/// dialing task, and none runs after the dial has returned. If the dial future is dropped
/// early, the pending `DnsDone` and `ConnectDone` (`Cancelled`) hooks fire from its drop:
/// every start is matched by exactly one done.
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

/// Which address families a [`Dialer`] connects to.
///
/// # Examples
///
/// ```
/// use nettrace::{Dialer, Family};
///
/// let v4_only = Dialer::builder().family(Family::Ipv4).build();
/// # drop(v4_only);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Both IPv4 and IPv6.
    #[default]
    Any,
    /// IPv4 addresses only.
    Ipv4,
    /// IPv6 addresses only.
    Ipv6,
}

impl Family {
    fn allows(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::Ipv4 => ip.is_ipv4(),
            Family::Ipv6 => ip.is_ipv6(),
        }
    }
}

/// The options of a [`Dialer`].
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_delay: Duration,
    pub(crate) happy_eyeballs: bool,
    pub(crate) family: Family,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) bind_device: Option<String>,
    pub(crate) reuse_address: bool,
}

impl Options {
    /// Whether an attempt to `ip` may be made: the family filter allows it and, with a
    /// local address, it is of the local address's family.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        self.family.allows(ip)
            && self
                .local_addr
                .is_none_or(|local| local.is_ipv4() == ip.is_ipv4())
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: None,
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            happy_eyeballs: true,
            family: Family::Any,
            nodelay: false,
            keepalive: None,
            local_addr: None,
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
            .map_err(|why| DialError::invalid(&format!("{host}:{port}"), why));
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

    /// Enables TCP keepalive on every attempt's socket, with this idle time before the
    /// first probe; `None` leaves keepalive off.
    ///
    /// Default is `None`.
    pub fn keepalive(mut self, idle: Option<Duration>) -> DialerBuilder {
        self.options.keepalive = idle;
        self
    }

    /// Binds every attempt's socket to this local address before connecting (port 0
    /// lets the system choose). Only addresses of the same family are then dialed.
    ///
    /// Default is `None` (the system chooses).
    pub fn local_addr(mut self, addr: Option<SocketAddr>) -> DialerBuilder {
        self.options.local_addr = addr;
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
            local_addr: Some("127.0.0.1:0".parse().unwrap()),
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
}
