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
pub use self::error::{ResolveError, ResolveErrorKind};
pub use self::fixed::StaticResolver;
pub use self::hickory::{HickoryResolver, HickoryResolverBuilder};

/// The future a [`Resolve`] implementation returns.
pub type Resolving = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send>>;

/// Resolves a host name to its addresses.
///
/// Implementations return the addresses in the order connections should be tried; the
/// dialer starts with the family of the first one. They are called only with names that
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
}

impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve(&self, host: &str) -> Resolving {
        (**self).resolve(host)
    }
}

impl<R: Resolve + ?Sized> Resolve for Box<R> {
    fn resolve(&self, host: &str) -> Resolving {
        (**self).resolve(host)
    }
}
