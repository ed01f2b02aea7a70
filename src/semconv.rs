//! Attribute values shared by the `tracing` spans and the OpenTelemetry metrics, spelled
//! as the OpenTelemetry semantic conventions (1.44) spell them.

use std::fmt;
use std::net::IpAddr;

use crate::trace::ConnectOutcome;

/// `network.type`: `"ipv4"` or `"ipv6"`.
pub(crate) fn network_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

/// `nettrace.outcome` of a connection attempt (and of a connection setup).
pub(crate) fn connect_outcome(outcome: &ConnectOutcome<'_>) -> &'static str {
    match outcome {
        ConnectOutcome::Connected => "connected",
        ConnectOutcome::Failed(_) => "failed",
        ConnectOutcome::Cancelled => "cancelled",
        ConnectOutcome::Detached => "detached",
    }
}

/// An `error.type` value: an error kind enum variant's name in snake case
/// (`ConnectionRefused` -> `connection_refused`), low in cardinality as the conventions
/// want it.
pub(crate) fn snake_case(kind: &dyn fmt::Debug) -> String {
    let name = format!("{kind:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn snake_case_names() {
        assert_eq!(
            snake_case(&io::ErrorKind::ConnectionRefused),
            "connection_refused"
        );
        assert_eq!(snake_case(&crate::ResolveErrorKind::NotFound), "not_found");
        assert_eq!(snake_case(&io::ErrorKind::Other), "other");
    }

    #[test]
    fn outcomes_and_network_types() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_outcome(&ConnectOutcome::Connected), "connected");
        assert_eq!(connect_outcome(&ConnectOutcome::Failed(&refused)), "failed");
        assert_eq!(connect_outcome(&ConnectOutcome::Cancelled), "cancelled");
        assert_eq!(connect_outcome(&ConnectOutcome::Detached), "detached");
        assert_eq!(network_type("::1".parse().unwrap()), "ipv6");
        assert_eq!(network_type("127.0.0.1".parse().unwrap()), "ipv4");
    }
}
