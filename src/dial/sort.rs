//! Destination address selection: [RFC 6724 §6](https://www.rfc-editor.org/rfc/rfc6724#section-6)
//! with the default policy table of §2.1, as Go's `net/addrselect.go` and glibc's
//! `getaddrinfo` order the addresses of a name.
//!
//! The ordering itself is free of I/O: the caller says which source address the system would
//! use for each destination. [`system_source`] is the one call that asks the kernel.
//!
//! Rules 3 (avoid deprecated addresses), 4 (prefer home addresses) and 7 (prefer native
//! transport) need facts about the local interfaces that a socket does not tell us, so they
//! are skipped, as Go skips them. Rule 9 (longest matching prefix) compares IPv6 destinations
//! only: applied to IPv4 it ranks addresses by their numeric closeness to a private source
//! address, which says nothing about the route (Go issues 13283 and 18518).

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// The port `system_source` connects its UDP socket to. Any port works, as connecting a UDP
/// socket only picks a route and sends nothing; 9 is `discard`, as in Go.
const PROBE_PORT: u16 = 9;

/// Sorts `addrs` into the order RFC 6724 §6 prefers, applying rules 1, 2, 5, 6, 8, 9 and 10
/// (see the module docs for the rules left out). The sort is stable: addresses no rule tells
/// apart keep their order (rule 10).
///
/// `source_of(dst)` is the source address the system would use to reach `dst`, or `None` when
/// it has no route (rule 1 puts those last). It is called once per address.
pub(crate) fn sort_destinations(
    addrs: &mut [IpAddr],
    source_of: impl Fn(IpAddr) -> Option<IpAddr>,
) {
    if addrs.len() < 2 {
        return;
    }
    let mut keyed: Vec<(Rank, IpAddr)> = addrs
        .iter()
        .map(|&dst| (Rank::new(dst, source_of(dst)), dst))
        .collect();
    // `sort_by_key` is stable, which is rule 10.
    keyed.sort_by_key(|&(rank, _)| rank);
    for (slot, (_, dst)) in addrs.iter_mut().zip(keyed) {
        *slot = dst;
    }
}

/// The source address the system would use to reach `dst`, or `None` when it has no route.
///
/// Found by connecting an unbound UDP socket to `dst` and reading its local address, as Go's
/// `srcAddrs` does: `connect` on a UDP socket only selects the route and the source address;
/// no packet is sent. An IPv6 link-local `dst` has no zone here, so it finds no route.
pub(crate) fn system_source(dst: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match dst {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    socket.connect(SocketAddr::new(dst, PROBE_PORT)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// A destination's rank: the comparisons of RFC 6724 §6, in rule order, so that comparing
/// two ranks lexicographically is the rules' "prefer DA / prefer DB / go on". A smaller rank
/// is preferred.
///
/// Each rule compares a property of one destination (and its source) against the same
/// property of the other, so the rules fit into a per-address key — and the key makes the
/// order total, which `sort_by_key` requires. The one pairwise condition, rule 9's "both
/// IPv6", never decides between an IPv4 and an IPv6 destination: the policy table gives
/// precedence 35 to IPv4 (as `::ffff:0:0/96`) and to no IPv6 address, so rule 6 has already
/// told them apart (`no_ipv6_address_shares_the_ipv4_precedence` checks this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// Rule 1: a destination with a source comes before one without.
    Usable {
        /// Rule 2: prefer matching scope (`false` sorts first, hence the negation).
        scope_mismatch: bool,
        /// Rule 5: prefer matching label.
        label_mismatch: bool,
        /// Rule 6: prefer higher precedence.
        precedence: Reverse<u8>,
        /// Rule 8: prefer smaller scope.
        scope: Scope,
        /// Rule 9: prefer the longest prefix shared with the source (IPv6 only; 0 for IPv4).
        common_prefix: Reverse<u32>,
    },
    /// Rule 1: no route; all such destinations are equal and keep their order.
    Unusable,
}

impl Rank {
    fn new(dst: IpAddr, source: Option<IpAddr>) -> Rank {
        let Some(source) = source else {
            return Rank::Unusable;
        };
        let dst = dst.to_canonical();
        let source = source.to_canonical();
        let (dst_policy, source_policy) = (classify(dst), classify(source));
        Rank::Usable {
            scope_mismatch: classify_scope(dst) != classify_scope(source),
            label_mismatch: dst_policy.label != source_policy.label,
            precedence: Reverse(dst_policy.precedence),
            scope: classify_scope(dst),
            common_prefix: Reverse(match dst {
                IpAddr::V4(_) => 0,
                IpAddr::V6(_) => common_prefix_len(source, dst),
            }),
        }
    }
}

/// A row of the policy table (RFC 6724 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    prefix: Ipv6Addr,
    prefix_len: u8,
    precedence: u8,
    label: u8,
}

impl Policy {
    const fn new(prefix: Ipv6Addr, prefix_len: u8, precedence: u8, label: u8) -> Policy {
        Policy {
            prefix,
            prefix_len,
            precedence,
            label,
        }
    }

    fn contains(&self, addr: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix_len))
            .unwrap_or(0);
        (addr.to_bits() ^ self.prefix.to_bits()) & mask == 0
    }
}

/// The default policy table of RFC 6724 §2.1, longest prefix first so that the first row
/// that contains an address is its longest match.
const POLICY_TABLE: [Policy; 9] = [
    Policy::new(Ipv6Addr::LOCALHOST, 128, 50, 0),
    Policy::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 35, 4), // IPv4-mapped
    Policy::new(Ipv6Addr::UNSPECIFIED, 96, 1, 3),                       // IPv4-compatible
    Policy::new(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, 5, 5),  // Teredo
    Policy::new(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 30, 2), // 6to4
    Policy::new(Ipv6Addr::new(0x3ffe, 0, 0, 0, 0, 0, 0, 0), 16, 1, 12), // 6bone
    Policy::new(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, 1, 11), // site-local
    Policy::new(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, 3, 13),  // ULA
    Policy::new(Ipv6Addr::UNSPECIFIED, 0, 40, 1),
];

/// The policy table row of `addr`'s longest matching prefix; IPv4 addresses are looked up as
/// IPv4-mapped IPv6 addresses.
fn classify(addr: IpAddr) -> Policy {
    let v6 = match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    // `::/0` matches everything, so the search always succeeds.
    POLICY_TABLE
        .into_iter()
        .find(|policy| policy.contains(v6))
        .unwrap_or(POLICY_TABLE[POLICY_TABLE.len() - 1])
}

/// An address scope (RFC 6724 §3.1; RFC 4291 §2.7 for the values). Smaller is narrower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Scope(u8);

impl Scope {
    const LINK_LOCAL: Scope = Scope(0x2);
    const SITE_LOCAL: Scope = Scope(0x5);
    const GLOBAL: Scope = Scope(0xe);
}

/// The scope of `addr` (canonical: IPv4-mapped addresses are IPv4). IPv4 loopback and
/// 169.254/16 are link-local (RFC 6724 §3.2); IPv4 multicast counts as global, as in Go.
fn classify_scope(addr: IpAddr) -> Scope {
    match addr {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_link_local() => Scope::LINK_LOCAL,
        IpAddr::V4(_) => Scope::GLOBAL,
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unicast_link_local() => Scope::LINK_LOCAL,
        // A multicast address carries its scope in the low four bits of its second octet.
        IpAddr::V6(v6) if v6.is_multicast() => Scope(v6.octets()[1] & 0x0f),
        // fec0::/10, site-local (RFC 3513 §2.5.6, deprecated by RFC 3879).
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfec0 => Scope::SITE_LOCAL,
        IpAddr::V6(_) => Scope::GLOBAL,
    }
}

/// CommonPrefixLen of RFC 6724 §2.2: the number of leading bits `a` and `b` share, counting
/// IPv6 addresses only up to their 64-bit prefix (not the interface id). IPv4-mapped
/// addresses compare as IPv4; addresses of different families share nothing.
fn common_prefix_len(a: IpAddr, b: IpAddr) -> u32 {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (a.to_bits() ^ b.to_bits()).leading_zeros(),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let prefix = |addr: Ipv6Addr| (addr.to_bits() >> 64) as u64;
            (prefix(a) ^ prefix(b)).leading_zeros()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    /// Sorts `dsts`, each reached from the source at the same index (`None`: no route).
    fn sorted(dsts: &[&str], sources: &[Option<&str>]) -> Vec<IpAddr> {
        assert_eq!(dsts.len(), sources.len());
        let table: Vec<(IpAddr, Option<IpAddr>)> = dsts
            .iter()
            .zip(sources)
            .map(|(dst, src)| (ip(dst), src.map(ip)))
            .collect();
        let mut addrs = ips(dsts);
        sort_destinations(&mut addrs, |dst| {
            let row = table.iter().find(|(d, _)| *d == dst);
            row.expect("source asked only for the addresses being sorted")
                .1
        });
        addrs
    }

    /// Checks one case: `dsts` sorted gives `want`, and, when `reverse`, so does `dsts`
    /// reversed (the rules decide every pair, so the input order must not matter).
    #[track_caller]
    fn check(dsts: &[&str], sources: &[&str], want: &[&str], reverse: bool) {
        let sources: Vec<Option<&str>> = sources.iter().map(|s| Some(*s)).collect();
        assert_eq!(sorted(dsts, &sources), ips(want), "in order {dsts:?}");
        if reverse {
            let dsts: Vec<&str> = dsts.iter().rev().copied().collect();
            let sources: Vec<Option<&str>> = sources.iter().rev().copied().collect();
            assert_eq!(sorted(&dsts, &sources), ips(want), "in order {dsts:?}");
        }
    }

    // Go's TestSortByRFC6724 (src/net/addrselect_test.go): the first four cases are the
    // examples of RFC 6724 §10.2.

    #[test]
    fn go_prefer_matching_scope_v6() {
        check(
            &["2001:db8:1::1", "198.51.100.121"],
            &["2001:db8:1::2", "169.254.13.78"],
            &["2001:db8:1::1", "198.51.100.121"],
            true,
        );
    }

    #[test]
    fn go_prefer_matching_scope_v4() {
        check(
            &["2001:db8:1::1", "198.51.100.121"],
            &["fe80::1", "198.51.100.117"],
            &["198.51.100.121", "2001:db8:1::1"],
            true,
        );
    }

    #[test]
    fn go_prefer_higher_precedence() {
        check(
            &["2001:db8:1::1", "10.1.2.3"],
            &["2001:db8:1::2", "10.1.2.4"],
            &["2001:db8:1::1", "10.1.2.3"],
            true,
        );
    }

    #[test]
    fn go_prefer_smaller_scope() {
        check(
            &["2001:db8:1::1", "fe80::1"],
            &["2001:db8:1::2", "fe80::2"],
            &["fe80::1", "2001:db8:1::1"],
            true,
        );
    }

    /// Go issue 13283: a 10/8 source does not make 23/8 destinations better (rule 9 is not
    /// applied to IPv4), so the resolver's order stands.
    #[test]
    fn go_issue_13283_no_prefix_rule_for_ipv4() {
        let dsts = [
            "54.83.193.112",
            "184.72.238.214",
            "23.23.172.185",
            "75.101.148.21",
            "23.23.134.56",
            "23.21.50.150",
        ];
        check(&dsts, &["10.2.3.4"; 6], &dsts, false);
    }

    // The other examples of RFC 6724 §10.2, which Go's table leaves out.

    #[test]
    fn rfc_longest_matching_prefix() {
        check(
            &["2001:db8:1::1", "2001:db8:3ffe::1"],
            &["2001:db8:1::2", "2001:db8:3f44::2"],
            &["2001:db8:1::1", "2001:db8:3ffe::1"],
            true,
        );
    }

    #[test]
    fn rfc_prefer_matching_label() {
        // Both reached from the 6to4 source; only the 6to4 destination shares its label.
        check(
            &["2002:c633:6401::1", "2001:db8:1::1"],
            &["2002:c633:6401::2", "2002:c633:6401::2"],
            &["2002:c633:6401::1", "2001:db8:1::1"],
            true,
        );
    }

    #[test]
    fn rfc_prefer_higher_precedence_v6() {
        check(
            &["2002:c633:6401::1", "2001:db8:1::1"],
            &["2002:c633:6401::2", "2001:db8:1::2"],
            &["2001:db8:1::1", "2002:c633:6401::1"],
            true,
        );
    }

    #[test]
    fn unreachable_destinations_go_last_in_their_order() {
        let got = sorted(
            &["2001:db8::9", "192.0.2.1", "2001:db8::1", "192.0.2.2"],
            &[None, Some("192.0.2.100"), None, Some("192.0.2.100")],
        );
        assert_eq!(
            got,
            ips(&["192.0.2.1", "192.0.2.2", "2001:db8::9", "2001:db8::1"])
        );
    }

    #[test]
    fn ipv4_mapped_destinations_rank_as_ipv4_and_keep_their_form() {
        // An IPv4-mapped destination is IPv4 for the rules (precedence 35, below global
        // IPv6's 40), but the sorted list keeps the address as it was given.
        let got = sorted(
            &["::ffff:198.51.100.1", "2001:db8:1::1"],
            &[Some("198.51.100.2"), Some("2001:db8:1::2")],
        );
        assert_eq!(got, ips(&["2001:db8:1::1", "::ffff:198.51.100.1"]));
    }

    #[test]
    fn source_is_asked_once_per_address_and_not_for_one() {
        let calls = std::cell::Cell::new(0);
        let mut one = ips(&["192.0.2.1"]);
        sort_destinations(&mut one, |_| {
            calls.set(calls.get() + 1);
            None
        });
        assert_eq!(calls.get(), 0);
        let mut three = ips(&["192.0.2.1", "2001:db8::1", "192.0.2.2"]);
        sort_destinations(&mut three, |_| {
            calls.set(calls.get() + 1);
            None
        });
        assert_eq!(calls.get(), 3);
        assert_eq!(three, ips(&["192.0.2.1", "2001:db8::1", "192.0.2.2"]));
    }

    // Go's TestRFC6724PolicyTableClassify.
    #[test]
    fn go_policy_table_classify() {
        let cases = [
            ("127.0.0.1", "::ffff:0:0", 96, 35, 4),
            ("2601:645:8002:a500:986f:1db8:c836:bd65", "::", 0, 40, 1),
            ("::1", "::1", 128, 50, 0),
            ("2002::ab12", "2002::", 16, 30, 2),
        ];
        for (addr, prefix, prefix_len, precedence, label) in cases {
            let want = Policy::new(prefix.parse().unwrap(), prefix_len, precedence, label);
            assert_eq!(classify(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn policy_table_is_longest_prefix_first() {
        for pair in POLICY_TABLE.windows(2) {
            assert!(pair[0].prefix_len >= pair[1].prefix_len, "{pair:?}");
        }
        // The rows that share a prefix length do not overlap, so their order is free.
        assert_eq!(classify(ip("2001::1")).label, 5);
        assert_eq!(classify(ip("2001:db8::1")).label, 1);
        assert_eq!(classify(ip("::1.2.3.4")).label, 3);
        assert_eq!(classify(ip("fd00::1")).label, 13);
        assert_eq!(classify(ip("fec0::1")).label, 11);
        assert_eq!(classify(ip("3ffe::1")).label, 12);
    }

    /// What makes `Rank` a faithful key (see its docs): rule 6 always separates IPv4 from
    /// IPv6, so rule 9's "same family" condition never has to be checked pairwise.
    #[test]
    fn no_ipv6_address_shares_the_ipv4_precedence() {
        let ipv4 = classify(ip("192.0.2.1")).precedence;
        let mapped = POLICY_TABLE.iter().filter(|p| p.precedence == ipv4);
        assert_eq!(
            mapped.collect::<Vec<_>>(),
            [&Policy::new(ip_v6("::ffff:0:0"), 96, 35, 4)]
        );
    }

    fn ip_v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // Go's TestRFC6724ClassifyScope.
    #[test]
    fn go_classify_scope() {
        let admin_local = Scope(0x4);
        let cases = [
            ("127.0.0.1", Scope::LINK_LOCAL), // RFC 6724 §3.2
            ("::1", Scope::LINK_LOCAL),       // RFC 4007 §4
            ("169.254.1.2", Scope::LINK_LOCAL),
            ("fec0::1", Scope::SITE_LOCAL),
            ("8.8.8.8", Scope::GLOBAL),
            ("ff02::", Scope::LINK_LOCAL), // IPv6 multicast
            ("ff05::", Scope::SITE_LOCAL),
            ("ff04::", admin_local),
            ("ff0e::", Scope::GLOBAL),
            // IPv4 multicast, link-local and global, as IPv4-mapped and as IPv4.
            ("::ffff:224.0.0.0", Scope::GLOBAL),
            ("::ffff:224.2.2.2", Scope::GLOBAL),
            ("224.0.0.0", Scope::GLOBAL),
            ("224.2.2.2", Scope::GLOBAL),
        ];
        for (addr, want) in cases {
            assert_eq!(classify_scope(ip(addr).to_canonical()), want, "{addr}");
        }
    }

    // Go's TestRFC6724CommonPrefixLength.
    #[test]
    fn go_common_prefix_length() {
        let cases = [
            ("fe80::1", "fe80::2", 64), // the interface id does not count
            ("fe81::1", "fe80::2", 15),
            ("127.0.0.1", "fe80::1", 0), // different families
            ("::ffff:1.2.3.4", "1.2.3.4", 32),
            ("1.2.255.255", "1.2.0.0", 16),
            ("1.2.127.255", "1.2.0.0", 17),
            ("1.2.63.255", "1.2.0.0", 18),
            ("1.2.31.255", "1.2.0.0", 19),
            ("1.2.15.255", "1.2.0.0", 20),
            ("1.2.7.255", "1.2.0.0", 21),
            ("1.2.3.255", "1.2.0.0", 22),
            ("1.2.1.255", "1.2.0.0", 23),
            ("1.2.0.255", "1.2.0.0", 24),
        ];
        for (a, b, want) in cases {
            assert_eq!(common_prefix_len(ip(a), ip(b)), want, "{a} {b}");
        }
    }

    #[test]
    fn system_source_of_loopback_is_loopback() {
        assert_eq!(system_source(ip("127.0.0.1")), Some(ip("127.0.0.1")));
        assert_eq!(system_source(ip("::1")), Some(ip("::1")));
    }

    #[test]
    fn loopback_destinations_sorted_with_system_sources() {
        // Both match scope and label; ::1's precedence (50) beats IPv4's (35).
        let mut addrs = ips(&["127.0.0.1", "::1"]);
        sort_destinations(&mut addrs, system_source);
        assert_eq!(addrs, ips(&["::1", "127.0.0.1"]));
    }
}
