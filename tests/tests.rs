//! Integration tests: one binary, one module per topic. Everything runs on loopback.

#![allow(unreachable_pub)]

mod support;

#[cfg(feature = "hyper")]
mod connector;
mod dial;
mod faults;
mod happy_eyeballs_v2;
#[cfg(all(feature = "http", feature = "tls"))]
mod http;
#[cfg(feature = "metrics")]
mod otel_metrics;
#[cfg(feature = "tracing")]
mod otel_spans;
#[cfg(all(feature = "http", feature = "tls"))]
mod pool;
mod properties;
#[cfg(feature = "reqwest")]
mod reqwest;
mod resolve;
mod send_sync;
mod sockopts;
#[cfg(feature = "tracing")]
mod tracing_spans;
