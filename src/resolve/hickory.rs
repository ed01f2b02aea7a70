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
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::TokioResolver;

use super::{name, FamilyResolving, Resolve, ResolveError, ResolveErrorKind, Resolving};

/// Resolves names with [hickory-resolver](https://docs.rs/hickory-resolver), asking for
/// AAAA and A records at the same time and returning IPv6 addresses first.
///
/// The resolver is built on its first lookup, inside the runtime that makes it, so
/// creating one is cheap and never fails. A configuration that cannot be read shows up as
/// the error of that lookup, and the next lookup reads it again: only a built resolver is
/// kept. Cloning is cheap and clones share one cache.
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
    /// Set by the first build that succeeds; a failed build is not kept, so a
    /// configuration fixed after a failure is read on the next lookup.
    resolver: OnceLock<TokioResolver>,
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

    fn resolver(&self) -> Result<&TokioResolver, NetError> {
        self.resolver_with(HickoryResolverBuilder::make)
    }

    /// The built resolver, building it with `make` if no build has succeeded yet.
    /// Lookups that start together before the first success may each build one; the
    /// first stored is kept and shared.
    fn resolver_with(
        &self,
        make: impl FnOnce(&HickoryResolverBuilder) -> Result<TokioResolver, NetError>,
    ) -> Result<&TokioResolver, NetError> {
        if let Some(resolver) = self.inner.resolver.get() {
            return Ok(resolver);
        }
        let built = make(&self.inner.config)?;
        Ok(self.inner.resolver.get_or_init(|| built))
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
    /// Both families, asked in parallel; IPv6 addresses first.
    fn resolve(&self, host: &str) -> Resolving {
        self.resolve_by_family(host).joined()
    }

    /// The AAAA and A queries, asked in parallel, each answered as it arrives (RFC 8305
    /// §3); the hosts file and search domains apply to both, as to `lookup_ip`.
    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        FamilyResolving::split(
            self.lookup_family(host, RecordType::AAAA),
            self.lookup_family(host, RecordType::A),
        )
    }
}

impl HickoryResolver {
    fn lookup_family(&self, host: &str, record_type: RecordType) -> Resolving {
        let this = self.clone();
        let host = host.to_owned();
        Box::pin(async move {
            name::validate(&host)?;
            let resolver = this
                .resolver()
                .map_err(|e| ResolveError::new(ResolveErrorKind::Other, &host).with_source(e))?;
            match resolver.lookup(host.as_str(), record_type).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|record| record.data.ip_addr())
                    .collect::<Vec<IpAddr>>()),
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn a_failed_build_is_not_kept_and_the_next_lookup_builds_again() {
        let resolver = HickoryResolver::with_name_servers(&["127.0.0.1:53".parse().unwrap()]);
        let builds = Cell::new(0);
        let failing = |_: &HickoryResolverBuilder| {
            builds.set(builds.get() + 1);
            Err(NetError::from("no resolv.conf"))
        };
        let working = |config: &HickoryResolverBuilder| {
            builds.set(builds.get() + 1);
            config.make()
        };

        let err = resolver.resolver_with(failing).unwrap_err();
        assert!(err.to_string().contains("no resolv.conf"), "{err}");
        assert!(format!("{resolver:?}").contains("built: false"));

        assert!(
            resolver.resolver_with(working).is_ok(),
            "the next lookup builds again"
        );
        assert_eq!(builds.get(), 2);
        assert!(format!("{resolver:?}").contains("built: true"));

        // Once built, the resolver is kept: no more builds, even by a clone.
        assert!(resolver.clone().resolver_with(failing).is_ok());
        assert_eq!(builds.get(), 2);
    }
}
