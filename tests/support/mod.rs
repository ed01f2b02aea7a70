//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod dns;
pub mod http;
pub mod net;
pub mod record;
