//! The events hooks receive, and the ids that pair them.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::resolve::ResolveError;

/// The dial an event belongs to.
///
/// Every network event carries the id of its dial, so a consumer pairs a start with its
/// done exactly, however many dials share one trace. Ids come from a process-wide counter:
/// unique within the process, increasing in the order dials (and lookups made outside a
/// dial) were created. The number is for pairing and display only; it means nothing else.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use nettrace::{DialId, NetTrace};
///
/// // How many attempts each dial made, however many dials share the trace.
/// let attempts: Arc<Mutex<HashMap<DialId, usize>>> = Arc::default();
/// let seen = attempts.clone();
/// let trace = NetTrace::new().on_connect_start(move |e| {
///     *seen.lock().unwrap().entry(e.dial).or_default() += 1;
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DialId(u64);

impl DialId {
    /// A new id, never returned before in this process.
    pub(crate) fn next() -> DialId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        DialId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (the first id is 1).
    ///
    /// # Examples
    ///
    /// ```
    /// let dial = nettrace::Dialer::new().dial("127.0.0.1:1");
    /// assert!(dial.id().as_u64() > 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for DialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dial#{}", self.0)
    }
}

/// An address family; a [`Dialer`](crate::Dialer)'s family filter and the family of a
/// [`DnsAnswer`].
///
/// # Examples
///
/// ```
/// use nettrace::{Dialer, Family};
///
/// let v4_only = Dialer::builder().family(Family::Ipv4).build();
/// assert_eq!(Family::of("::1".parse().unwrap()), Family::Ipv6);
/// # drop(v4_only);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Both IPv4 and IPv6 (only as a filter).
    #[default]
    Any,
    /// IPv4: A records.
    Ipv4,
    /// IPv6: AAAA records.
    Ipv6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Whether the filter `self` lets `ip` through.
    pub(crate) fn allows(self, ip: IpAddr) -> bool {
        self == Family::Any || self == Family::of(ip)
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
    /// The dial this lookup is for (a lookup made outside a dial has an id of its own).
    pub dial: DialId,
    /// The name being looked up, as the caller gave it.
    pub host: &'a str,
}

/// One address family's answer to a DNS lookup: fired once for AAAA and once for A in
/// every lookup, as each arrives, before any [`ConnectStart`] to its addresses.
///
/// A resolver that answers both families at once (such as a
/// [`StaticResolver`](crate::StaticResolver)) gives two answers at the same moment. When
/// the dial stops waiting for a family (it connected, failed or was dropped first), that
/// family's answer fires then, with an error of kind
/// [`Cancelled`](crate::ResolveErrorKind::Cancelled).
///
/// # Examples
///
/// ```
/// use nettrace::{DnsAnswer, Family};
///
/// let trace = nettrace::NetTrace::new().on_dns_answer(|e: &DnsAnswer<'_>| {
///     let kind = if e.family == Family::Ipv6 { "AAAA" } else { "A" };
///     eprintln!("{} {kind}: {:?} {:?}", e.host, e.addrs, e.error.map(|err| err.kind()));
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DnsAnswer<'a> {
    /// The dial this lookup is for, as in its [`DnsStart`].
    pub dial: DialId,
    /// The name being looked up.
    pub host: &'a str,
    /// [`Family::Ipv6`] (AAAA) or [`Family::Ipv4`] (A).
    pub family: Family,
    /// This family's addresses, in the resolver's order; empty on error.
    pub addrs: &'a [IpAddr],
    /// `true` if another caller had joined this lookup when the answer arrived.
    pub coalesced: bool,
    /// Why this family has no addresses, if the resolver said so (a name with no AAAA
    /// records, for example).
    pub error: Option<&'a ResolveError>,
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
    /// The dial this lookup was for, as in its [`DnsStart`].
    pub dial: DialId,
    /// The name that was looked up.
    pub host: &'a str,
    /// Every address received, in the order the answers gave them; empty on error.
    pub addrs: &'a [IpAddr],
    /// `true` if this caller's result was shared with at least one other caller of the
    /// same lookup (the caller that started it included), as Go's `DNSDoneInfo.Coalesced`.
    /// A caller that stopped waiting before any family answered shared nothing: `false`.
    pub coalesced: bool,
    /// Why the lookup found no address, if it did not. A caller that went away before the lookup ended
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
    /// The dial this attempt belongs to.
    pub dial: DialId,
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
    /// The dial this attempt belonged to, as in its [`ConnectStart`].
    pub dial: DialId,
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
    /// The attempt (or connection setup) was still going when the request that started it
    /// ended; it goes on for the [`HttpClient`](crate::HttpClient)'s pool, reported to no
    /// request. Fired only by the HTTP client, when a request lets go of a dial it did not
    /// use.
    Detached,
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
    /// The dial that made the connection.
    pub dial: DialId,
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
    /// The dial that made the connection, as in its [`TlsHandshakeStart`].
    pub dial: DialId,
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

/// An HTTP client is about to set up a new connection (DNS, TCP and any TLS, as one
/// phase), for a client that dials by itself; fired by `nettrace::reqwest::ConnectLayer`
/// (feature `reqwest`).
///
/// A setup has a [`DialId`] of its own. The lookups it makes through
/// `nettrace::reqwest::Resolver` have ids of their own, and fire between this event and
/// its [`ConnectionSetupDone`].
///
/// # Examples
///
/// ```
/// use nettrace::ConnectionSetupStart;
///
/// let trace = nettrace::NetTrace::new().on_connection_setup_start(|e: &ConnectionSetupStart<'_>| {
///     eprintln!("{}: connecting to {:?}:{:?}", e.dial, e.host, e.port);
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConnectionSetupStart<'a> {
    /// The id of this connection setup.
    pub dial: DialId,
    /// The host the client asked to connect to (a name or an IP address), when known.
    pub host: Option<&'a str>,
    /// The port the client asked to connect to (the scheme's default if the URL has
    /// none), when known.
    pub port: Option<u16>,
}

/// A connection setup has ended; fired exactly once for every [`ConnectionSetupStart`].
///
/// # Examples
///
/// ```
/// use nettrace::{ConnectOutcome, ConnectionSetupDone};
///
/// let trace = nettrace::NetTrace::new().on_connection_setup_done(|e: &ConnectionSetupDone<'_>| {
///     match e.outcome {
///         ConnectOutcome::Connected => eprintln!("{}: connected to {:?}", e.dial, e.peer),
///         ConnectOutcome::Failed(err) => eprintln!("{}: failed: {err}", e.dial),
///         _ => eprintln!("{}: abandoned", e.dial),
///     }
/// });
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConnectionSetupDone<'a> {
    /// The id of this connection setup, as in its [`ConnectionSetupStart`].
    pub dial: DialId,
    /// The host, as in its [`ConnectionSetupStart`].
    pub host: Option<&'a str>,
    /// The port, as in its [`ConnectionSetupStart`].
    pub port: Option<u16>,
    /// The address of the peer the connection was made to, when the client reports it.
    pub peer: Option<SocketAddr>,
    /// How the setup ended: [`Connected`](ConnectOutcome::Connected),
    /// [`Failed`](ConnectOutcome::Failed) with the client's error, or
    /// [`Cancelled`](ConnectOutcome::Cancelled) when the setup was dropped before it ended.
    pub outcome: ConnectOutcome<'a>,
}
