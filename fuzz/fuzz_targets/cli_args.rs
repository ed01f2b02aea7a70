//! Fuzzes the `nettrace` CLI's URL argument and `--resolve HOST:PORT:ADDR` parsing, by
//! including the binary's parsing module as it is (it needs only `http` and `std`).
//!
//! Besides never panicking: an accepted URL has an http or https scheme, a host and a port
//! that fits in 16 bits; an accepted `--resolve` entry gives back a host that is part of
//! the input and at least one address unless it is a removal; an accepted `--dns-servers`
//! list has one server per comma-separated item.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/nettrace/parse.rs"]
mod parse;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match parse::url(input) {
        Ok(uri) => {
            assert!(matches!(uri.scheme_str(), Some("http" | "https")), "{input:?}");
            assert!(uri.host().is_some_and(|h| !h.is_empty()), "{input:?}");
            assert!(uri.port().is_none() || uri.port_u16().is_some(), "{input:?}");
        }
        Err(why) => assert!(why.starts_with("bad URL"), "{input:?}: {why}"),
    }
    match parse::resolve_entry(input) {
        Ok(entry) => {
            assert!(!entry.host.is_empty() && input.contains(entry.host), "{input:?}");
            assert_eq!(entry.addrs.is_empty(), input.starts_with('-'), "{input:?}");
        }
        Err(why) => assert!(why.starts_with("--resolve wants"), "{input:?}: {why}"),
    }
    match parse::dns_servers(input) {
        Ok(servers) => assert_eq!(servers.len(), input.split(',').count(), "{input:?}"),
        Err(why) => assert!(why.starts_with("--dns-servers wants"), "{input:?}: {why}"),
    }
});
