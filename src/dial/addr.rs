//! Parsing of the dial target: `host:port`, `[v6]:port`, or a host and a port.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::resolve::name;

/// What to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An address; no lookup needed and no DNS hooks.
    Addr(SocketAddr),
    /// A name to look up, and the port.
    Name(Box<str>, u16),
}

/// Parses `host:port` or `[v6]:port` (the IPv6 address may carry a `%zone`).
pub(crate) fn parse(input: &str) -> Result<Target, &'static str> {
    if input.is_empty() {
        return Err("empty address");
    }
    if input.contains("://") {
        return Err("expected host:port, not a URL");
    }
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("missing ']'")?;
        let port = after.strip_prefix(':').ok_or(if after.is_empty() {
            "missing port"
        } else {
            "expected ':' after ']'"
        })?;
        let port = parse_port(port)?;
        return match parse_v6(inside)? {
            Some(addr) => Ok(Target::Addr(with_port(addr, port))),
            None => Err("brackets must hold an IPv6 address"),
        };
    } else {
        input.rsplit_once(':').ok_or("missing port")?
    };
    if host.contains(':') {
        let ipv6_like = host
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b'%');
        return Err(if ipv6_like {
            "an IPv6 address must be in brackets, as in [::1]:80"
        } else {
            "more than one ':' (host:port wanted)"
        });
    }
    target(host, parse_port(port)?)
}

/// Builds a target from a separate host (a name, an IPv4 or IPv6 literal, the latter
/// with or without brackets) and port.
pub(crate) fn from_parts(host: &str, port: u16) -> Result<Target, &'static str> {
    if port == 0 {
        return Err("port 0 cannot be dialed");
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.contains(':') {
        return match parse_v6(bare)? {
            Some(addr) => Ok(Target::Addr(with_port(addr, port))),
            None => Err("neither a host name nor an IPv6 address (a ':' in the host)"),
        };
    }
    target(host, port)
}

/// Joins a host and a port for display, as Go's `net.JoinHostPort`: `host:port`, or
/// `[host]:port` when the host holds a ':' (an IPv6 address, or a mistake such as a port
/// in the host), so the port always follows the last ':' and reads unambiguously. A host
/// already in brackets (`[::1]`) is kept as it is.
pub(crate) fn join(host: &str, port: u16) -> String {
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn target(host: &str, port: u16) -> Result<Target, &'static str> {
    if host.is_empty() {
        return Err("missing host");
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Addr(SocketAddr::new(ip, port)));
    }
    name::check(host)?;
    Ok(Target::Name(host.into(), port))
}

fn parse_port(port: &str) -> Result<u16, &'static str> {
    if port.is_empty() {
        return Err("missing port");
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("port is not a number");
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be dialed"),
        Ok(port) => Ok(port),
        Err(_) => Err("port is greater than 65535"),
    }
}

/// Parses an IPv6 address with an optional `%zone` (an interface name or index).
/// Returns `None` if `text` is not an IPv6 address at all.
fn parse_v6(text: &str) -> Result<Option<SocketAddrV6>, &'static str> {
    let (ip, zone) = match text.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (text, None),
    };
    let Ok(ip) = ip.parse::<Ipv6Addr>() else {
        return Ok(None);
    };
    let scope_id = match zone {
        None => 0,
        Some("") => return Err("empty zone after '%'"),
        Some(zone) => zone_index(zone)?,
    };
    Ok(Some(SocketAddrV6::new(ip, 0, 0, scope_id)))
}

fn with_port(mut addr: SocketAddrV6, port: u16) -> SocketAddr {
    addr.set_port(port);
    SocketAddr::V6(addr)
}

fn zone_index(zone: &str) -> Result<u32, &'static str> {
    if let Ok(index) = zone.parse::<u32>() {
        return Ok(index);
    }
    interface_index(zone)
}

#[cfg(unix)]
fn interface_index(name: &str) -> Result<u32, &'static str> {
    let name = std::ffi::CString::new(name).map_err(|_| "zone contains a NUL byte")?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err("no network interface has that zone name"),
        index => Ok(index),
    }
}

#[cfg(not(unix))]
fn interface_index(_name: &str) -> Result<u32, &'static str> {
    Err("zone must be a numeric interface index on this platform")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Target {
        Target::Addr(s.parse().unwrap())
    }

    #[test]
    fn parses_good_targets() {
        assert_eq!(parse("127.0.0.1:80"), Ok(addr("127.0.0.1:80")));
        assert_eq!(parse("[::1]:443"), Ok(addr("[::1]:443")));
        assert_eq!(
            parse("example.com:443"),
            Ok(Target::Name("example.com".into(), 443))
        );
        assert_eq!(
            parse("localhost.:1"),
            Ok(Target::Name("localhost.".into(), 1))
        );
        assert_eq!(parse("[fe80::1%2]:80"), Ok(addr("[fe80::1%2]:80")));
        assert_eq!(parse("[fe80::1%lo]:80"), Ok(addr("[fe80::1%1]:80")));
        assert_eq!(from_parts("::1", 80), Ok(addr("[::1]:80")));
        assert_eq!(from_parts("[::1]", 80), Ok(addr("[::1]:80")));
        assert_eq!(from_parts("127.0.0.9", 80), Ok(addr("127.0.0.9:80")));
        assert_eq!(
            from_parts("a.test", 80),
            Ok(Target::Name("a.test".into(), 80))
        );
    }

    #[test]
    fn join_brackets_every_host_with_a_colon() {
        assert_eq!(join("a.test", 80), "a.test:80");
        assert_eq!(join("127.0.0.1", 80), "127.0.0.1:80");
        assert_eq!(join("::1", 80), "[::1]:80");
        assert_eq!(join("fe80::1%eth0", 80), "[fe80::1%eth0]:80");
        assert_eq!(join("[::1]", 80), "[::1]:80");
        // Malformed hosts stay whole, in brackets, so the port is still told apart.
        assert_eq!(join("[::1", 80), "[[::1]:80");
        assert_eq!(join("::1]", 80), "[::1]]:80");
        assert_eq!(join("a.test:80", 443), "[a.test:80]:443");
        assert_eq!(join("", 80), ":80");
    }

    #[test]
    fn rejects_bad_targets_with_a_reason() {
        let long = format!("{}:80", "a".repeat(300));
        let cases: &[(&str, &str)] = &[
            ("", "empty address"),
            ("host", "missing port"),
            ("host:", "missing port"),
            (":80", "missing host"),
            ("host:99999", "greater than 65535"),
            ("host:0", "port 0"),
            ("host:http", "not a number"),
            ("host:-1", "not a number"),
            ("host:+80", "not a number"),
            ("[::1", "missing ']'"),
            ("[::1]", "missing port"),
            ("[::1]80", "expected ':'"),
            ("::1:80", "in brackets"),
            ("http://example.com:80", "not a URL"),
            ("example.com:80:90", "more than one ':'"),
            ("[127.0.0.1]:80", "must hold an IPv6"),
            ("[example.com]:80", "must hold an IPv6"),
            ("[fe80::1%]:80", "empty zone"),
            ("[fe80::1%no-such-if0]:80", "no network interface"),
            ("exa mple.com:80", "white space"),
            (" example.com:80", "white space"),
            ("example.com:80 ", "not a number"),
            ("a..b:80", "empty label"),
            (&long, "longer than 253 bytes"),
            ("bad_host!:80", "not allowed"),
        ];
        for (input, why) in cases {
            let err = parse(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err:?} lacks {why:?}");
        }
        assert!(from_parts("", 80).is_err());
        assert!(from_parts("a.test", 0).is_err());
        assert!(from_parts("::zz", 80).is_err());
    }
}
