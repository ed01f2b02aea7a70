//! See every DNS lookup and every connection attempt while a TCP connection is made.
//!
//! `nettrace` is the Rust analog of Go's `net/http/httptrace` hooks for the network
//! layer: install a [`NetTrace`] for a task with [`with_trace`], and every lookup made
//! through a [`CoalescingResolver`] inside that task reports its start and end — including
//! whether it was shared with other callers — to the trace's hooks.
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use nettrace::{CoalescingResolver, NetTrace, StaticResolver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let events = Arc::new(Mutex::new(Vec::new()));
//! let (start, done) = (events.clone(), events.clone());
//! let trace = NetTrace::new()
//!     .on_dns_start(move |e| start.lock().unwrap().push(format!("lookup {}", e.host)))
//!     .on_dns_done(move |e| done.lock().unwrap().push(format!("found {:?}", e.addrs)));
//!
//! let resolver = CoalescingResolver::new(
//!     StaticResolver::new().insert("service.test", ["127.0.0.1".parse().unwrap()]),
//! );
//! let addrs = nettrace::with_trace(trace, resolver.lookup("service.test")).await.unwrap();
//!
//! assert_eq!(addrs, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
//! assert_eq!(*events.lock().unwrap(), ["lookup service.test", "found [127.0.0.1]"]);
//! # }
//! ```
//!
//! # Scopes and tasks
//!
//! A trace is task-local: it applies to the future given to [`with_trace`] and everything
//! that future awaits, on whatever thread it runs. It does not follow work handed to
//! [`tokio::spawn`]; wrap such work with [`TraceExt::in_current_trace`]. Nested scopes
//! compose (inner hooks first), and [`without_trace`] hides every outer trace.
//!
//! # Feature flags
//!
//! The default build has no optional features: hooks, scopes and name resolution
//! (hickory-resolver on tokio) are always present. Integrations for hyper, HTTP timings,
//! TLS, `tracing` and a command-line tool are planned as additive features.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod dial;
mod resolve;
mod scope;
mod trace;

pub use crate::dial::{Attempts, Dial, DialError, Dialer, DialerBuilder, Family};
pub use crate::resolve::{
    CoalescingResolver, HickoryResolver, HickoryResolverBuilder, Lookup, Resolve, ResolveError,
    ResolveErrorKind, Resolving, StaticResolver,
};
pub use crate::scope::{current, with_trace, without_trace, Scoped, TraceExt};
pub use crate::trace::{ConnectDone, ConnectOutcome, ConnectStart, DnsDone, DnsStart, NetTrace};

/// Internals exposed only for the crate's own benchmarks. Not part of the API: anything
/// here may change or disappear in any release.
#[doc(hidden)]
pub mod __private {
    use std::net::SocketAddr;

    /// Fires one `ConnectStart` through the trace in scope, exactly as a dial attempt does.
    #[inline]
    pub fn fire_connect_start(addr: SocketAddr, attempt: usize) {
        if let Some(trace) = crate::current() {
            trace.connect_start(addr, attempt);
        }
    }
}

/// Compiles and runs the README's examples as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
