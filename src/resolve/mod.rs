//! Name resolution: the [`Resolve`] trait, its implementations, and the coalescing,
//! tracing front the dialer looks names up through.

mod coalesce;
pub(crate) mod error;
mod fixed;
mod hickory;
pub(crate) mod name;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

pub use self::coalesce::{CoalescingResolver, Lookup};
pub(crate) use self::coalesce::{FamilyAnswer, Resolution};
pub use self::error::{ResolveError, ResolveErrorKind};
pub use self::fixed::StaticResolver;
pub use self::hickory::{HickoryResolver, HickoryResolverBuilder};

/// The future a [`Resolve`] implementation returns.
pub type Resolving = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send>>;

/// Resolves a host name to its addresses.
///
/// A resolver answers in one of two ways. The one-shot [`resolve`](Resolve::resolve)
/// returns every address at once, in the order connections should be tried (the dialer
/// starts with the family of the first one). A resolver that asks for AAAA and A records
/// separately can also implement [`resolve_by_family`](Resolve::resolve_by_family), so a
/// dial starts as soon as RFC 8305 §3 allows instead of waiting for the slower answer; the
/// dialer then orders the addresses itself (RFC 6724 §6). The default
/// `resolve_by_family` delivers `resolve`'s answer to both families at once.
///
/// Implementations are called only with names that
/// passed validation (never with an IP literal), and fire no hooks themselves: tracing and
/// sharing of concurrent lookups are done by [`CoalescingResolver`] around them.
///
/// # Examples
///
/// A resolver that answers every name with the same address:
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use nettrace::{Resolve, Resolving};
///
/// #[derive(Debug)]
/// struct AlwaysLoopback;
///
/// impl Resolve for AlwaysLoopback {
///     fn resolve(&self, _host: &str) -> Resolving {
///         Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let addrs = AlwaysLoopback.resolve("anything.test").await.unwrap();
/// assert_eq!(addrs, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
/// # }
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// Looks up the addresses of `host`.
    ///
    /// # Errors
    ///
    /// A [`ResolveError`] saying why `host` has no addresses. Returning `Ok` with an empty
    /// list is allowed; the dialer reports it as having no addresses.
    fn resolve(&self, host: &str) -> Resolving;

    /// Looks up the addresses of `host`, each family's as it arrives.
    ///
    /// The default answers both families at once with [`resolve`](Resolve::resolve)'s
    /// result, whose order the dialer keeps.
    ///
    /// # Examples
    ///
    /// A resolver whose AAAA answer is slower than its A answer:
    ///
    /// ```
    /// use std::time::Duration;
    /// use nettrace::{FamilyResolving, Resolve, Resolving};
    ///
    /// struct SlowAaaa;
    ///
    /// impl Resolve for SlowAaaa {
    ///     fn resolve(&self, host: &str) -> Resolving {
    ///         self.resolve_by_family(host).joined()
    ///     }
    ///
    ///     fn resolve_by_family(&self, _host: &str) -> FamilyResolving {
    ///         FamilyResolving::split(
    ///             Box::pin(async {
    ///                 tokio::time::sleep(Duration::from_millis(20)).await;
    ///                 Ok(vec!["::1".parse().unwrap()])
    ///             }),
    ///             Box::pin(async { Ok(vec!["127.0.0.1".parse().unwrap()]) }),
    ///         )
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let addrs = SlowAaaa.resolve("api.test").await.unwrap();
    /// assert_eq!(addrs.len(), 2);
    /// # }
    /// ```
    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        FamilyResolving::joint(self.resolve(host))
    }
}

impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve(&self, host: &str) -> Resolving {
        (**self).resolve(host)
    }

    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        (**self).resolve_by_family(host)
    }
}

impl<R: Resolve + ?Sized> Resolve for Box<R> {
    fn resolve(&self, host: &str) -> Resolving {
        (**self).resolve(host)
    }

    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        (**self).resolve_by_family(host)
    }
}

/// A lookup's answers by address family, as [`Resolve::resolve_by_family`] returns them.
///
/// # Examples
///
/// ```
/// use nettrace::FamilyResolving;
///
/// let both = FamilyResolving::joint(Box::pin(async { Ok(vec!["127.0.0.1".parse().unwrap()]) }));
/// # drop(both);
/// ```
#[must_use = "a lookup does nothing unless polled"]
pub struct FamilyResolving {
    pub(crate) kind: FamilyKind,
}

pub(crate) enum FamilyKind {
    /// One answer for both families, in the order to try them.
    Joint(Resolving),
    /// The AAAA answer, then the A answer, each when it comes.
    Split { ipv6: Resolving, ipv4: Resolving },
}

impl FamilyResolving {
    /// One answer for both families; the dialer keeps its order.
    pub fn joint(lookup: Resolving) -> FamilyResolving {
        FamilyResolving {
            kind: FamilyKind::Joint(lookup),
        }
    }

    /// The AAAA (`ipv6`) and A (`ipv4`) answers, polled together, each used when it comes;
    /// the dialer orders the addresses by RFC 6724 §6. A family with no records answers
    /// with an error of kind [`NotFound`](ResolveErrorKind::NotFound) or an empty list.
    pub fn split(ipv6: Resolving, ipv4: Resolving) -> FamilyResolving {
        FamilyResolving {
            kind: FamilyKind::Split { ipv6, ipv4 },
        }
    }

    /// Both answers as one: IPv6 addresses first, then IPv4; an error only when neither
    /// family has an address (the IPv4 error if both failed). For implementing
    /// [`Resolve::resolve`] from a split lookup.
    pub fn joined(self) -> Resolving {
        match self.kind {
            FamilyKind::Joint(lookup) => lookup,
            FamilyKind::Split { ipv6, ipv4 } => Box::pin(async move {
                let (v6, v4) = futures_util::future::join(ipv6, ipv4).await;
                match (v6, v4) {
                    (Err(_), Err(err)) => Err(err),
                    (v6, v4) => {
                        let mut all = v6.unwrap_or_default();
                        all.extend(v4.unwrap_or_default());
                        Ok(all)
                    }
                }
            }),
        }
    }
}

impl std::fmt::Debug for FamilyResolving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            FamilyKind::Joint(_) => "joint",
            FamilyKind::Split { .. } => "split",
        };
        f.debug_struct("FamilyResolving")
            .field("kind", &kind)
            .finish()
    }
}
