//! Fuzzes the `nettrace` CLI's URL argument and `--resolve HOST:PORT:ADDR` parsing, by
//! including the binary's parsing module as it is (it needs only `http` and `std`).
//!
//! Besides never panicking: an accepted URL has an http or https scheme and a host, and
//! an accepted `--resolve` entry gives back a host that is part of the input.

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
        }
        Err(why) => assert!(why.starts_with("bad URL"), "{input:?}: {why}"),
    }
    match parse::resolve_entry(input) {
        Ok((host, _addr)) => assert!(!host.is_empty() && input.starts_with(host), "{input:?}"),
        Err(why) => assert!(why.starts_with("--resolve wants"), "{input:?}: {why}"),
    }
});
