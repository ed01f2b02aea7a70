//! See every DNS lookup and every connection attempt while a TCP connection is made.
//!
//! `nettrace` is the Rust analog of Go's `net/http/httptrace` hooks for the network
//! layer: install a [`NetTrace`] for a task with [`with_trace`], and every dial made by a
//! [`Dialer`] inside that task reports its DNS lookup — including whether it was shared
//! with other callers — and each connection attempt of its RFC 8305 Happy Eyeballs race.
//!
//! # Example
//!
//! A name that resolves to two loopback addresses; the first refuses, the second accepts:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use nettrace::{ConnectOutcome, Dialer, NetTrace, StaticResolver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await?;
//! # let port = listener.local_addr()?.port();
//! let events = Arc::new(Mutex::new(Vec::new()));
//! let (dns, start, done) = (events.clone(), events.clone(), events.clone());
//! let trace = NetTrace::new()
//!     .on_dns_done(move |e| dns.lock().unwrap().push(format!("dns {:?}", e.addrs)))
//!     .on_connect_start(move |e| start.lock().unwrap().push(format!("try {}", e.addr.ip())))
//!     .on_connect_done(move |e| {
//!         let won = matches!(e.outcome, ConnectOutcome::Connected);
//!         done.lock().unwrap().push(format!("{} {}", e.addr.ip(), if won { "won" } else { "lost" }));
//!     });
//!
//! // 127.0.0.1 refuses (nothing listens on that port there); 127.0.0.2 accepts.
//! let dialer = Dialer::builder()
//!     .resolver(StaticResolver::new().insert(
//!         "service.test",
//!         ["127.0.0.1".parse()?, "127.0.0.2".parse()?],
//!     ))
//!     .build();
//! let stream = nettrace::with_trace(trace, dialer.dial_host("service.test", port)).await?;
//!
//! assert_eq!(stream.peer_addr()?.ip().to_string(), "127.0.0.2");
//! assert_eq!(
//!     *events.lock().unwrap(),
//!     [
//!         "dns [127.0.0.1, 127.0.0.2]",
//!         "try 127.0.0.1",
//!         "127.0.0.1 lost",
//!         "try 127.0.0.2",
//!         "127.0.0.2 won",
//!     ]
//! );
//! # Ok(())
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
//! A [`Dial`] captures the trace when it is first polled and calls every hook on the
//! dialing task, never after it has returned; a dial dropped half way reports its pending
//! `DnsAnswer`, `DnsDone` and `ConnectDone` (`Cancelled`) from its drop. Every event
//! carries the [`DialId`] of its dial, so a trace shared by many dials pairs each done
//! with its start exactly.
//!
//! # Panicking hooks
//!
//! Each hook call is isolated: a hook that panics costs no other hook (of this trace or of
//! an enclosing scope) its event. The dial then ends, every pending done fires in order,
//! and the first panic continues to the caller. From a drop the same happens, except that
//! a panic while the thread is already unwinding is not raised a second time.
//!
//! # Feature flags
//!
//! Hooks, scopes, name resolution (hickory-resolver on tokio) and the [`Dialer`] are
//! always present; the default build has no optional feature. Each integration is an
//! additive feature:
//!
//! - `hyper`: `Connector`, a `tower_service::Service<http::Uri>` for
//!   hyper-util's legacy `Client`, built on a [`Dialer`].
//! - `tls` (implies `hyper`): `TlsConfig` for `https` URIs — rustls
//!   with the *ring* provider, webpki roots or your own CAs, ALPN `h2`/`http/1.1` — and
//!   the TLS handshake hooks on [`NetTrace`].
//! - `http` (implies `hyper`): `HttpClient`,
//!   `HttpTrace` (Go `httptrace`-style hooks) and curl-compatible
//!   `Timings`.
//! - `reqwest`: `nettrace::reqwest`: a `Resolver` for reqwest's
//!   `ClientBuilder::dns_resolver` (every lookup, coalesced, to the request's trace) and a
//!   `ConnectLayer` for its `connector_layer` (every connection setup). reqwest is taken
//!   with `default-features = false`, so no TLS stack comes with it; see
//!   `docs/GUIDE.md`.
//! - `tracing`: `NetTrace::tracing()` (and, with `http`, `HttpTrace::tracing()`): every
//!   lookup, connection attempt, TLS handshake and request as a `tracing` span with
//!   OpenTelemetry semantic-convention fields.
//! - `metrics`: `NetTrace::metrics(&Meter)`: every lookup and connection attempt as
//!   OpenTelemetry metrics (`dns.lookup.duration`, `nettrace.connect.attempts`,
//!   `nettrace.connect.duration`), through the `opentelemetry` API crate only.
//! - `cli`: the `nettrace` binary (`cargo run --features cli -- demo`); its dependencies
//!   (clap, anyhow, serde_json, rcgen, hickory-proto) build only with this feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "hyper")]
mod connector;
mod dial;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "http")]
mod pool;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod resolve;
mod scope;
#[cfg(any(feature = "tracing", feature = "metrics"))]
mod semconv;
#[cfg(feature = "tracing")]
mod spans;
#[cfg(feature = "tls")]
mod tls;
mod trace;

#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub use crate::connector::{ConnectError, Connecting, ConnectionInfo, Connector, ConnectorStream};
pub use crate::dial::{Attempts, Dial, DialError, Dialer, DialerBuilder};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use crate::http::{
    AttemptOutcome, AttemptTiming, GetConn, GotConn, GotFirstResponseByte, HttpClient,
    HttpClientBuilder, HttpError, HttpErrorKind, HttpTrace, RequestId, ResponseBody,
    ResponseFuture, Timings, TimingsRecorder, WaitForConn, WroteRequest,
};
pub use crate::resolve::{
    CoalescingResolver, FamilyResolving, HickoryResolver, HickoryResolverBuilder, Lookup, Resolve,
    ResolveError, ResolveErrorKind, Resolving, StaticResolver,
};
pub use crate::scope::{current, with_trace, without_trace, Scoped, TraceExt};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use crate::tls::{TlsConfig, TlsConfigBuilder, TlsConfigError};
pub use crate::trace::{
    ConnectDone, ConnectOutcome, ConnectStart, ConnectionSetupDone, ConnectionSetupStart, DialId,
    DnsAnswer, DnsDone, DnsStart, Family, NetTrace,
};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use crate::trace::{TlsHandshakeDone, TlsHandshakeStart};

/// Internals exposed only for the crate's own benchmarks and fuzz targets. Not part of
/// the API: anything here may change or disappear in any release.
#[doc(hidden)]
pub mod __private {
    use std::net::SocketAddr;

    /// Fires one `ConnectStart` through the trace in scope, exactly as a dial attempt does.
    #[inline]
    pub fn fire_connect_start(dial: crate::DialId, addr: SocketAddr, attempt: usize) {
        if let Some(trace) = crate::current() {
            let event = crate::ConnectStart {
                dial,
                addr,
                attempt,
            };
            if let Err(panic) = trace.connect_start(&event) {
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// A new dial id, as a dial takes at its creation.
    pub fn next_dial_id() -> crate::DialId {
        crate::DialId::next()
    }

    /// Parses a dial target (`host:port`, `[v6]:port`) exactly as [`Dialer::dial`] does,
    /// without resolving or connecting: the entry point of the `parse_target` fuzz target.
    ///
    /// [`Dialer::dial`]: crate::Dialer::dial
    ///
    /// # Errors
    ///
    /// The reason the input is not a valid target, as [`DialError::InvalidAddress`] gives
    /// it.
    ///
    /// [`DialError::InvalidAddress`]: crate::DialError::InvalidAddress
    pub fn __parse_target(input: &str) -> Result<(), &'static str> {
        crate::dial::addr::parse(input).map(drop)
    }
}

/// Compiles and runs the README's examples as doctests, so they cannot rot. (Some use
/// the `http`, `tls`, `tracing` and `metrics` features.)
#[cfg(all(
    doctest,
    feature = "http",
    feature = "tls",
    feature = "tracing",
    feature = "metrics"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Compiles the guide's examples as doctests, and runs those that stay on loopback. (Its
/// sections need features `http` and `reqwest`.)
#[cfg(all(doctest, feature = "http", feature = "reqwest"))]
#[doc = include_str!("../docs/GUIDE.md")]
pub struct GuideDoctests;
