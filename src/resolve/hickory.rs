//! [`HickoryResolver`]: DNS resolution with hickory-resolver on tokio.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::TokioResolver;

use super::{name, Resolve, ResolveError, ResolveErrorKind, Resolving};

/// Resolves names with [hickory-resolver](https://docs.rs/hickory-resolver), asking for
/// AAAA and A records at the same time and returning IPv6 addresses first.
///
/// The resolver is built on its first lookup, inside the runtime that makes it, so
/// creating one is cheap and never fails; a configuration that cannot be read shows up as
/// the error of every lookup. Cloning is cheap and clones share one cache.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nettrace::HickoryResolver;
///
/// // The system's configuration (/etc/resolv.conf) and hosts file.
/// let system = HickoryResolver::system();
///
/// // Given servers, with a shorter timeout.
/// let custom = HickoryResolver::builder()
///     .name_servers(&["127.0.0.1:5353".parse().unwrap()])
///     .timeout(Duration::from_secs(1))
///     .attempts(1)
///     .build();
/// # drop((system, custom));
/// ```
#[derive(Clone)]
pub struct HickoryResolver {
    inner: Arc<Inner>,
}

struct Inner {
    config: HickoryResolverBuilder,
    resolver: OnceLock<Result<TokioResolver, Arc<NetError>>>,
}

/// Builds a [`HickoryResolver`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let resolver = nettrace::HickoryResolver::builder()
///     .timeout(Duration::from_millis(500))
///     .build();
/// # drop(resolver);
/// ```
#[derive(Clone, Debug, Default)]
pub struct HickoryResolverBuilder {
    name_servers: Option<Vec<SocketAddr>>,
    timeout: Option<Duration>,
    attempts: Option<usize>,
}

impl HickoryResolver {
    /// Returns a resolver using the system's configuration (`/etc/resolv.conf` on Unix) and
    /// its hosts file, like [`builder().build()`](HickoryResolver::builder).
    ///
    /// # Examples
    ///
    /// ```
    /// let resolver = nettrace::HickoryResolver::system();
    /// # drop(resolver);
    /// ```
    pub fn system() -> HickoryResolver {
        HickoryResolver::builder().build()
    }

    /// Returns a resolver that asks only `servers`, over UDP and then TCP (for truncated
    /// answers), at the ports given. The hosts file is not read.
    ///
    /// # Examples
    ///
    /// ```
    /// let resolver = nettrace::HickoryResolver::with_name_servers(&[
    ///     "127.0.0.1:5353".parse().unwrap(),
    /// ]);
    /// # drop(resolver);
    /// ```
    pub fn with_name_servers(servers: &[SocketAddr]) -> HickoryResolver {
        HickoryResolver::builder().name_servers(servers).build()
    }

    /// Returns a builder that starts from the system's configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// let resolver = nettrace::HickoryResolver::builder().attempts(3).build();
    /// # drop(resolver);
    /// ```
    pub fn builder() -> HickoryResolverBuilder {
        HickoryResolverBuilder::default()
    }

    fn resolver(&self) -> Result<&TokioResolver, Arc<NetError>> {
        self.inner
            .resolver
            .get_or_init(|| self.inner.config.make().map_err(Arc::new))
            .as_ref()
            .map_err(Arc::clone)
    }
}

impl HickoryResolverBuilder {
    /// Asks only `servers` (UDP, then TCP for truncated answers) instead of the system's
    /// name servers, and does not read the hosts file.
    ///
    /// Default is the system's configuration and hosts file.
    #[must_use]
    pub fn name_servers(mut self, servers: &[SocketAddr]) -> HickoryResolverBuilder {
        self.name_servers = Some(servers.to_vec());
        self
    }

    /// How long to wait for an answer to one query before trying again or giving up.
    ///
    /// Default is the system's `options timeout:` setting, or 5 seconds.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> HickoryResolverBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// How many times a query that failed or timed out is tried again.
    ///
    /// Default is the system's `options attempts:` setting, or 2.
    #[must_use]
    pub fn attempts(mut self, attempts: usize) -> HickoryResolverBuilder {
        self.attempts = Some(attempts);
        self
    }

    /// Returns the resolver. It reads the system configuration on its first lookup.
    pub fn build(self) -> HickoryResolver {
        HickoryResolver {
            inner: Arc::new(Inner {
                config: self,
                resolver: OnceLock::new(),
            }),
        }
    }

    fn make(&self) -> Result<TokioResolver, NetError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match &self.name_servers {
            Some(servers) => {
                let servers = servers.iter().map(|addr| name_server(*addr)).collect();
                let mut builder = TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    provider,
                );
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder
            }
            None => {
                let mut builder = TokioResolver::builder(provider)?;
                builder.options_mut().use_hosts_file = ResolveHosts::Always;
                builder
            }
        };
        let options = builder.options_mut();
        options.ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
        options.try_tcp_on_error = true;
        if let Some(timeout) = self.timeout {
            options.timeout = timeout;
        }
        if let Some(attempts) = self.attempts {
            options.attempts = attempts;
        }
        builder.build()
    }
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let mut config = NameServerConfig::udp_and_tcp(addr.ip());
    config.connections = vec![udp, tcp];
    config
}

impl Resolve for HickoryResolver {
    fn resolve(&self, host: &str) -> Resolving {
        let this = self.clone();
        let host = host.to_owned();
        Box::pin(async move {
            name::validate(&host)?;
            let resolver = this
                .resolver()
                .map_err(|e| ResolveError::new(ResolveErrorKind::Other, &host).with_source(e))?;
            match resolver.lookup_ip(host.as_str()).await {
                Ok(lookup) => Ok(lookup.iter().collect::<Vec<IpAddr>>()),
                Err(err) => Err(ResolveError::new(classify(&err), &host).with_source(err)),
            }
        })
    }
}

fn classify(err: &NetError) -> ResolveErrorKind {
    match err {
        _ if err.is_no_records_found() => ResolveErrorKind::NotFound,
        NetError::Timeout => ResolveErrorKind::TimedOut,
        NetError::Dns(DnsError::ResponseCode(_)) => ResolveErrorKind::ServerFailure,
        _ => ResolveErrorKind::Other,
    }
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryResolver")
            .field("config", &self.inner.config)
            .field("built", &self.inner.resolver.get().is_some())
            .finish()
    }
}
