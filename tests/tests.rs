//! Integration tests: one binary, one module per topic. Everything runs on loopback.

#![allow(unreachable_pub)]

mod support;

#[cfg(feature = "hyper")]
mod connector;
mod dial;
#[cfg(all(feature = "http", feature = "tls"))]
mod http;
mod resolve;
mod send_sync;
