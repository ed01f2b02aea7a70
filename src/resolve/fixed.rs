//! [`StaticResolver`]: a fixed map from names to addresses.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{FamilyResolving, Resolve, ResolveError, ResolveErrorKind, Resolving};

/// Resolves names from a fixed map, like curl's `--resolve` or a hosts file.
///
/// Names are matched without regard to ASCII case or a trailing dot. A name that is not in
/// the map fails with [`ResolveErrorKind::NotFound`], unless a fallback resolver was set
/// with [`fallback`](StaticResolver::fallback).
///
/// # Examples
///
/// ```
/// use nettrace::{Resolve, StaticResolver};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let resolver = StaticResolver::new()
///     .insert("api.test", ["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()]);
/// let addrs = resolver.resolve("API.test.").await.unwrap();
/// assert_eq!(addrs.len(), 2);
/// assert!(resolver.resolve("other.test").await.is_err());
/// # }
/// ```
#[derive(Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
    fallback: Option<Box<dyn Resolve>>,
}

impl StaticResolver {
    /// Returns an empty map with no fallback.
    ///
    /// # Examples
    ///
    /// ```
    /// let resolver = nettrace::StaticResolver::new();
    /// # drop(resolver);
    /// ```
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Maps `name` to `addrs`, in that order, replacing any earlier entry for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    ///
    /// let resolver = nettrace::StaticResolver::new()
    ///     .insert("db.test", [Ipv4Addr::new(127, 0, 0, 2).into()]);
    /// # drop(resolver);
    /// ```
    #[must_use]
    pub fn insert(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> StaticResolver {
        self.names.insert(key(name), addrs.into_iter().collect());
        self
    }

    /// Sends names that are not in the map to `resolver` instead of failing, so a few
    /// names can be overridden while the rest resolve as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{HickoryResolver, StaticResolver};
    ///
    /// let resolver = StaticResolver::new()
    ///     .insert("api.test", ["127.0.0.1".parse().unwrap()])
    ///     .fallback(HickoryResolver::with_name_servers(&["127.0.0.1:5353".parse().unwrap()]));
    /// # drop(resolver);
    /// ```
    #[must_use]
    pub fn fallback(mut self, resolver: impl Resolve) -> StaticResolver {
        self.fallback = Some(Box::new(resolver));
        self
    }
}

fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Resolve for StaticResolver {
    fn resolve(&self, host: &str) -> Resolving {
        let found = self.names.get(&key(host)).cloned();
        match (found, &self.fallback) {
            (Some(addrs), _) => Box::pin(async move { Ok(addrs) }),
            (None, Some(fallback)) => fallback.resolve(host),
            (None, None) => {
                let err = ResolveError::new(ResolveErrorKind::NotFound, host);
                Box::pin(async move { Err(err) })
            }
        }
    }

    /// A name in the map answers both families at once, in the order given; any other
    /// goes to the fallback's own `resolve_by_family`.
    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        match (self.names.contains_key(&key(host)), &self.fallback) {
            (false, Some(fallback)) => fallback.resolve_by_family(host),
            _ => FamilyResolving::joint(self.resolve(host)),
        }
    }
}

impl std::fmt::Debug for StaticResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticResolver")
            .field("names", &self.names)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn later_insert_replaces_and_fallback_answers_the_rest() {
        let inner = StaticResolver::new().insert("b.test", ["127.0.0.3".parse().unwrap()]);
        let resolver = StaticResolver::new()
            .insert("a.test", ["127.0.0.1".parse().unwrap()])
            .insert("A.TEST", ["127.0.0.2".parse().unwrap()])
            .fallback(inner);
        let a = resolver.resolve("a.test").await.unwrap();
        assert_eq!(a, ["127.0.0.2".parse::<IpAddr>().unwrap()]);
        let b = resolver.resolve("b.test").await.unwrap();
        assert_eq!(b, ["127.0.0.3".parse::<IpAddr>().unwrap()]);
        let err = resolver.resolve("c.test").await.unwrap_err();
        assert_eq!(err.kind(), ResolveErrorKind::NotFound);
        assert_eq!(err.name(), "c.test");
    }
}
