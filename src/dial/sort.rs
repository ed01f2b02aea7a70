//! RFC 6724 §6 destination address selection (placeholder: IPv6 first, stable).

use std::net::IpAddr;

/// Sorts `addrs` by preference.
pub(crate) fn sort_destinations(
    addrs: &mut [IpAddr],
    _source_of: impl Fn(IpAddr) -> Option<IpAddr>,
) {
    addrs.sort_by_key(|ip| ip.is_ipv4());
}

/// The source address the system would use for `dst`.
pub(crate) fn system_source(_dst: IpAddr) -> Option<IpAddr> {
    None
}
