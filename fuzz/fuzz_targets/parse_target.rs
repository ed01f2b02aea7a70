//! Fuzzes the dial target parser (`host:port`, `[v6]:port`) through
//! `nettrace::__private::__parse_target`, which parses exactly as `Dialer::dial` does but
//! never resolves or connects.
//!
//! Besides never panicking, the parser must agree with the standard library: every
//! `ip:port` or `[v6]:port` that `std::net::SocketAddr` accepts (port 0 aside, which
//! cannot be dialed) is accepted, and every rejection says why.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use nettrace::__private::__parse_target as parse;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(input);
    if let Err(why) = parsed {
        assert!(!why.is_empty(), "{input:?} rejected without a reason");
    }
    if let Ok(addr) = input.parse::<SocketAddr>() {
        if addr.port() != 0 {
            assert_eq!(parsed, Ok(()), "{input:?} is a socket address for std");
        }
    }
});
