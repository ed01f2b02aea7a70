//! Parsing of the URL argument and of `--resolve` entries. Depends on `http` and `std`
//! only, so the `cli_args` fuzz target (fuzz/) includes this file as it is.

use std::net::IpAddr;

use http::Uri;

/// A URL; `http://` is assumed when it has no scheme, as curl does. Only `http` and
/// `https` are accepted, and there must be a host.
pub(crate) fn url(url: &str) -> Result<Uri, String> {
    let bad = |why: &str| format!("bad URL {url:?}: {why}");
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("only http:// and https:// are supported")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// A curl `--resolve` entry, `HOST:PORT:ADDR`, where ADDR may be a bracketed IPv6 address.
pub(crate) fn resolve_entry(entry: &str) -> Result<(&str, IpAddr), String> {
    let bad = || format!("--resolve wants HOST:PORT:ADDR, not {entry:?}");
    let (host, rest) = entry.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    Ok((host, addr.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url("example.test/x").unwrap().scheme_str(), Some("http"));
        assert_eq!(url("https://[::1]:8443/").unwrap().port_u16(), Some(8443));
        for bad in ["", "ftp://a.test/", "http://", "http://[::1/", "::::"] {
            assert!(url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_entries() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            resolve_entry("a.test:443:127.0.0.1").unwrap(),
            ("a.test", ip("127.0.0.1"))
        );
        assert_eq!(
            resolve_entry("a.test:443:[::1]").unwrap(),
            ("a.test", ip("::1"))
        );
        assert_eq!(
            resolve_entry("a.test:443:::1").unwrap(),
            ("a.test", ip("::1"))
        );
        for bad in [
            "",
            "a.test",
            "a.test:443",
            ":443:127.0.0.1",
            "a:x:127.0.0.1",
            "a:1:nope",
        ] {
            assert!(resolve_entry(bad).is_err(), "{bad:?}");
        }
    }
}
