//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod dns;
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod net;
#[cfg(feature = "tracing")]
pub mod otel;
pub mod record;
