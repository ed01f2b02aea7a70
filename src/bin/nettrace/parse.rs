//! Parsing of the URL argument and of `--resolve` entries. Depends on `http` and `std`
//! only, so the `cli_args` fuzz target (fuzz/) includes this file as it is.

use std::net::{IpAddr, SocketAddr};

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
    // `http` keeps a port it cannot read as a u16 (`:99999`) and then reports none,
    // which would mean port 80: reject it, as curl does. An empty port (`host:/`) is the
    // scheme's default, as in curl.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(_, after)| after),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    if let Some(port) = after_host.strip_prefix(':') {
        if !port.is_empty() && port_number(port).is_none() {
            return Err(bad(&format!(
                "the port {port:?} is not a number from 0 to 65535"
            )));
        }
    }
    Ok(uri)
}

/// A curl `--resolve` entry: `[+]HOST:PORT:ADDR[,ADDR]...` adds addresses for HOST at
/// PORT only (`*` for any host), `-HOST:PORT` removes an earlier entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolveEntry<'a> {
    /// The name as given (`*` for any name).
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// Empty for a removal (`-HOST:PORT`).
    pub(crate) addrs: Vec<IpAddr>,
}

/// Parses a `--resolve` entry the way curl does: HOST is everything before the first
/// colon; each ADDR may be an IPv6 address in brackets (`[::1]`) or bare (`::1`); empty
/// items in the list are skipped, but at least one address is needed. A leading `+`
/// (curl: entries that time out) changes nothing for a single run.
pub(crate) fn resolve_entry(entry: &str) -> Result<ResolveEntry<'_>, String> {
    let bad = |why: &str| {
        format!("--resolve wants HOST:PORT:ADDR[,ADDR]... or -HOST:PORT, not {entry:?}: {why}")
    };
    let (remove, spec) = match entry.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, entry.strip_prefix('+').unwrap_or(entry)),
    };
    let (host, rest) = spec.split_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let (port, addrs) = match rest.split_once(':') {
        Some((port, addrs)) => (port, Some(addrs)),
        None => (rest, None),
    };
    let port = port_number(port).ok_or_else(|| bad("the port is not a number from 0 to 65535"))?;
    if remove {
        return match addrs {
            None => Ok(ResolveEntry {
                host,
                port,
                addrs: Vec::new(),
            }),
            Some(_) => Err(bad("a removal (-HOST:PORT) takes no addresses")),
        };
    }
    let addrs = addrs.ok_or_else(|| bad("no address"))?;
    let mut parsed = Vec::new();
    for item in addrs.split(',').filter(|a| !a.is_empty()) {
        let addr = match item.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or_else(|| bad(&format!("unclosed bracket in {item:?}")))?,
            None => item,
        };
        parsed.push(
            addr.parse()
                .map_err(|_| bad(&format!("{item:?} is not an IP address")))?,
        );
    }
    if parsed.is_empty() {
        return Err(bad("no address"));
    }
    Ok(ResolveEntry {
        host,
        port,
        addrs: parsed,
    })
}

/// A port: decimal digits only (no sign, no spaces), 0 to 65535.
fn port_number(port: &str) -> Option<u16> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

/// The DNS servers of `--dns-servers`, a comma-separated list as curl's: each `IP`,
/// `IP:PORT`, `[IPV6]` or `[IPV6]:PORT` (a bare IPv6 address takes no port); port 53
/// when none is given.
pub(crate) fn dns_servers(list: &str) -> Result<Vec<SocketAddr>, String> {
    let bad = |item: &str| {
        format!("--dns-servers wants IP[:PORT],... (IPv6 as [IP]:PORT), not {item:?} in {list:?}")
    };
    let mut servers = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let server = if let Ok(ip) = item.parse::<IpAddr>() {
            SocketAddr::new(ip, 53)
        } else if let Ok(addr) = item.parse::<SocketAddr>() {
            addr
        } else if let Some(ip) = item.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            SocketAddr::new(
                ip.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| bad(item))?
                    .into(),
                53,
            )
        } else {
            return Err(bad(item));
        };
        servers.push(server);
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url("example.test/x").unwrap().scheme_str(), Some("http"));
        assert_eq!(url("https://[::1]:8443/").unwrap().port_u16(), Some(8443));
        assert_eq!(url("http://a.test:0/").unwrap().port_u16(), Some(0));
        assert_eq!(url("http://a.test:65535/").unwrap().port_u16(), Some(65535));
        // An empty port is the default one, as in curl.
        assert_eq!(url("http://a.test:/").unwrap().port_u16(), None);
        for bad in [
            "",
            "ftp://a.test/",
            "http://",
            "http://[::1/",
            "::::",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:65536/",
            "http://a.test:+80/",
            "http://a.test:8x/",
            "http://[::1]:99999/",
            "http://u@a.test:99999/",
        ] {
            assert!(url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_entries() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let entry = |host, port, addrs: &[&str]| ResolveEntry {
            host,
            port,
            addrs: addrs.iter().map(|a| ip(a)).collect(),
        };
        for (given, want) in [
            ("a.test:443:127.0.0.1", entry("a.test", 443, &["127.0.0.1"])),
            ("a.test:443:[::1]", entry("a.test", 443, &["::1"])),
            ("a.test:443:::1", entry("a.test", 443, &["::1"])),
            (
                "a.test:8080:127.0.0.1,[::1],::2",
                entry("a.test", 8080, &["127.0.0.1", "::1", "::2"]),
            ),
            ("a.test:1:,127.0.0.3,", entry("a.test", 1, &["127.0.0.3"])),
            ("+a.test:1:127.0.0.1", entry("a.test", 1, &["127.0.0.1"])),
            ("*:1:127.0.0.1", entry("*", 1, &["127.0.0.1"])),
            ("-a.test:1", entry("a.test", 1, &[])),
        ] {
            assert_eq!(resolve_entry(given).unwrap(), want, "{given:?}");
        }
        for bad in [
            "",
            "a.test",
            "a.test:443",
            "a.test:443:",
            "a.test:443:,",
            ":443:127.0.0.1",
            "a:x:127.0.0.1",
            "a:99999:127.0.0.1",
            "a:-1:127.0.0.1",
            "a:1:nope",
            "a:1:127.0.0.1,nope",
            "a:1:[::1",
            "a:1:[127.0.0.1]x",
            "-a.test:1:127.0.0.1",
            "-a.test",
        ] {
            let err = resolve_entry(bad).unwrap_err();
            assert!(err.starts_with("--resolve wants"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn dns_server_lists() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            dns_servers("127.0.0.1:5353").unwrap(),
            [addr("127.0.0.1:5353")]
        );
        assert_eq!(
            dns_servers("127.0.0.1,::1,[::1]:5353,[::2]").unwrap(),
            [
                addr("127.0.0.1:53"),
                addr("[::1]:53"),
                addr("[::1]:5353"),
                addr("[::2]:53")
            ]
        );
        for bad in [
            "",
            "a.test",
            "127.0.0.1:x",
            "127.0.0.1,",
            "[127.0.0.1]",
            "[::1]x",
        ] {
            assert!(dns_servers(bad).is_err(), "{bad:?}");
        }
    }
}
