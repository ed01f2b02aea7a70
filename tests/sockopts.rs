//! Socket options (hyper-util `HttpConnector` parity): each is set on a real dial to a
//! loopback listener and read back from the returned stream.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use nettrace::{DialError, Dialer, StaticResolver};
use socket2::SockRef;
use tokio::net::TcpStream;

use crate::support::net::{live_pair, Live};
use crate::support::record::{Event, Outcome, Recorder};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn local_ip(stream: &TcpStream) -> IpAddr {
    stream.local_addr().unwrap().ip()
}

/// The attempts of a dial that failed because every attempt did.
fn attempts(err: DialError) -> Vec<(SocketAddr, io::Error)> {
    match err {
        DialError::AllAttemptsFailed { attempts, .. } => attempts.into_vec(),
        other => panic!("expected AllAttemptsFailed, got {other:?}"),
    }
}

/// The connect events only: the dial's DNS events are not what these tests are about.
fn connects(rec: &Recorder) -> Vec<Event> {
    rec.events()
        .into_iter()
        .filter(|e| matches!(e, Event::ConnectStart(..) | Event::ConnectDone(..)))
        .collect()
}

/// What Linux makes of a requested `SO_SNDBUF`/`SO_RCVBUF`: capped at the sysctl
/// maximum, then doubled for its bookkeeping.
#[cfg(target_os = "linux")]
fn linux_buffer(requested: usize, max_sysctl: &str) -> usize {
    let max: usize = std::fs::read_to_string(max_sysctl)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    2 * requested.min(max)
}

#[tokio::test]
async fn buffer_sizes_are_set_before_connect() {
    let live = Live::on("127.0.0.1").await;
    let plain = Dialer::new().dial(&live.addr.to_string()).await.unwrap();
    let plain = SockRef::from(&plain);
    let (plain_send, plain_recv) = (
        plain.send_buffer_size().unwrap(),
        plain.recv_buffer_size().unwrap(),
    );

    let (send, recv) = (48 * 1024, 40 * 1024);
    for ip in ["127.0.0.1", "::1"] {
        let live = Live::on(ip).await;
        let dialer = Dialer::builder()
            .send_buffer_size(Some(send))
            .recv_buffer_size(Some(recv))
            .build();
        let stream = dialer.dial(&live.addr.to_string()).await.unwrap();
        let sock = SockRef::from(&stream);
        let (got_send, got_recv) = (
            sock.send_buffer_size().unwrap(),
            sock.recv_buffer_size().unwrap(),
        );
        assert!(
            got_send >= send && got_recv >= recv,
            "{got_send} {got_recv}"
        );
        assert_ne!(got_send, plain_send, "SO_SNDBUF left at the default");
        assert_ne!(got_recv, plain_recv, "SO_RCVBUF left at the default");
        #[cfg(target_os = "linux")]
        {
            assert_eq!(got_send, linux_buffer(send, "/proc/sys/net/core/wmem_max"));
            assert_eq!(got_recv, linux_buffer(recv, "/proc/sys/net/core/rmem_max"));
        }
    }
}

#[tokio::test]
async fn keepalive_idle_interval_and_retries_combine() {
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder()
        .keepalive(Some(Duration::from_secs(42)))
        .keepalive_interval(Some(Duration::from_secs(7)))
        .keepalive_retries(Some(4))
        .build();
    let stream = dialer.dial(&live.addr.to_string()).await.unwrap();
    let sock = SockRef::from(&stream);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(42));
    assert_eq!(
        sock.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(7)
    );
    assert_eq!(sock.tcp_keepalive_retries().unwrap(), 4);
}

#[tokio::test]
async fn keepalive_interval_or_retries_alone_turn_keepalive_on() {
    let live = Live::on("::1").await;
    let plain = Dialer::new().dial(&live.addr.to_string()).await.unwrap();
    let plain = SockRef::from(&plain);
    assert!(!plain.keepalive().unwrap());
    let system_idle = plain.tcp_keepalive_time().unwrap();
    let system_interval = plain.tcp_keepalive_interval().unwrap();
    let system_retries = plain.tcp_keepalive_retries().unwrap();
    // The values below must differ from the system's, or they would prove nothing.
    assert_ne!(system_interval, Duration::from_secs(7));
    assert_ne!(system_retries, 4);

    let interval = Dialer::builder()
        .keepalive_interval(Some(Duration::from_secs(7)))
        .build();
    let stream = interval.dial(&live.addr.to_string()).await.unwrap();
    let sock = SockRef::from(&stream);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), system_idle);
    assert_eq!(
        sock.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(7)
    );
    assert_eq!(sock.tcp_keepalive_retries().unwrap(), system_retries);

    let retries = Dialer::builder().keepalive_retries(Some(4)).build();
    let stream = retries.dial(&live.addr.to_string()).await.unwrap();
    let sock = SockRef::from(&stream);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), system_idle);
    assert_eq!(sock.tcp_keepalive_interval().unwrap(), system_interval);
    assert_eq!(sock.tcp_keepalive_retries().unwrap(), 4);

    // `None` for all three leaves keepalive off, even after being set.
    let off = Dialer::builder()
        .keepalive_retries(Some(4))
        .keepalive_retries(None)
        .build();
    let stream = off.dial(&live.addr.to_string()).await.unwrap();
    assert!(!SockRef::from(&stream).keepalive().unwrap());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn tcp_user_timeout_is_set() {
    let live = Live::on("127.0.0.1").await;
    let plain = Dialer::new().dial(&live.addr.to_string()).await.unwrap();
    assert_eq!(SockRef::from(&plain).tcp_user_timeout().unwrap(), None);

    let timeout = Duration::from_millis(12_345);
    let dialer = Dialer::builder().tcp_user_timeout(Some(timeout)).build();
    for ip in ["127.0.0.1", "::1"] {
        let live = Live::on(ip).await;
        let stream = dialer.dial(&live.addr.to_string()).await.unwrap();
        assert_eq!(
            SockRef::from(&stream).tcp_user_timeout().unwrap(),
            Some(timeout)
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn mark_is_set_or_fails_the_attempt_without_cap_net_admin() {
    let live = Live::on("127.0.0.1").await;
    let plain = Dialer::new().dial(&live.addr.to_string()).await.unwrap();
    assert_eq!(SockRef::from(&plain).mark().unwrap(), 0);

    // Whether this process may set a mark (CAP_NET_ADMIN) decides which outcome is right.
    let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let allowed = match probe.set_mark(1) {
        Ok(()) => true,
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => false,
        Err(err) => panic!("probing SO_MARK: {err}"),
    };

    let dialer = Dialer::builder().mark(Some(0x2a)).build();
    let rec = Recorder::new();
    let dialed = nettrace::with_trace(rec.trace(), dialer.dial(&live.addr.to_string())).await;
    if allowed {
        let stream = dialed.unwrap();
        assert_eq!(SockRef::from(&stream).mark().unwrap(), 0x2a);
    } else {
        let attempts = attempts(dialed.unwrap_err());
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].0, live.addr);
        assert_eq!(attempts[0].1.raw_os_error(), Some(libc::EPERM));
        assert_eq!(
            connects(&rec),
            [
                Event::ConnectStart(live.addr, 0),
                Event::ConnectDone(
                    live.addr,
                    0,
                    Outcome::Failed(io::ErrorKind::PermissionDenied)
                ),
            ]
        );
    }
}

#[tokio::test]
async fn local_addrs_bind_the_address_of_the_destination_family() {
    let live4 = Live::on("127.0.0.1").await;
    let live6 = Live::on("::1").await;
    let dialer = Dialer::builder()
        .local_addrs(Some(v4("127.0.0.3")), None)
        .build();

    let stream = dialer.dial(&live4.addr.to_string()).await.unwrap();
    assert_eq!(local_ip(&stream), v4("127.0.0.3"));
    assert_ne!(stream.local_addr().unwrap().port(), 0);

    // No IPv6 local address: IPv6 is still dialed, unbound.
    let stream = dialer.dial(&live6.addr.to_string()).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live6.addr);
    assert_eq!(local_ip(&stream), v6("::1"));

    // And the other way round: IPv4 unbound when only IPv6 has a local address.
    let v6_only = Dialer::builder().local_addrs(None, Some(v6("::1"))).build();
    let stream = v6_only.dial(&live4.addr.to_string()).await.unwrap();
    assert_eq!(local_ip(&stream), v4("127.0.0.1"));
    let stream = v6_only.dial(&live6.addr.to_string()).await.unwrap();
    assert_eq!(local_ip(&stream), v6("::1"));
}

#[tokio::test]
async fn happy_eyeballs_binds_each_attempt_to_its_family_local_address() {
    let (live4, live6) = live_pair().await;
    let port = live4.addr.port();
    let resolver = || StaticResolver::new().insert("both.test", [live6.addr.ip(), live4.addr.ip()]);

    // The IPv6 attempt (first, by the resolver's order) binds 2001:db8::1, which this
    // host does not have: it fails at once, and the IPv4 attempt binds 127.0.0.3.
    let dialer = Dialer::builder()
        .resolver(resolver())
        .local_addrs(Some(v4("127.0.0.3")), Some(v6("2001:db8::1")))
        .build();
    let rec = Recorder::new();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host("both.test", port))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live4.addr);
    assert_eq!(local_ip(&stream), v4("127.0.0.3"));
    assert_eq!(
        connects(&rec),
        [
            Event::ConnectStart(live6.addr, 0),
            Event::ConnectDone(
                live6.addr,
                0,
                Outcome::Failed(io::ErrorKind::AddrNotAvailable)
            ),
            Event::ConnectStart(live4.addr, 1),
            Event::ConnectDone(live4.addr, 1, Outcome::Connected),
        ]
    );

    // The mirror image: with the IPv4 local address unusable (192.0.2.1), the IPv6
    // attempt binds ::1 and wins. IPv4 goes first here.
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("both.test", [live4.addr.ip(), live6.addr.ip()]))
        .local_addrs(Some(v4("192.0.2.1")), Some(v6("::1")))
        .build();
    let rec = Recorder::new();
    let stream = nettrace::with_trace(rec.trace(), dialer.dial_host("both.test", port))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live6.addr);
    assert_eq!(local_ip(&stream), v6("::1"));
    assert_eq!(
        connects(&rec),
        [
            Event::ConnectStart(live4.addr, 0),
            Event::ConnectDone(
                live4.addr,
                0,
                Outcome::Failed(io::ErrorKind::AddrNotAvailable)
            ),
            Event::ConnectStart(live6.addr, 1),
            Event::ConnectDone(live6.addr, 1, Outcome::Connected),
        ]
    );
}

#[tokio::test]
async fn the_later_of_local_addr_and_local_addrs_wins() {
    let live4 = Live::on("127.0.0.1").await;
    let live6 = Live::on("::1").await;
    let single: SocketAddr = "127.0.0.4:0".parse().unwrap();

    // local_addrs after local_addr: per family, so IPv6 is dialed again.
    let per_family = Dialer::builder()
        .local_addr(Some(single))
        .local_addrs(Some(v4("127.0.0.3")), None)
        .build();
    let stream = per_family.dial(&live4.addr.to_string()).await.unwrap();
    assert_eq!(local_ip(&stream), v4("127.0.0.3"));
    let stream = per_family.dial(&live6.addr.to_string()).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live6.addr);

    // local_addr after local_addrs: one address, and its family only.
    let one = Dialer::builder()
        .local_addrs(Some(v4("127.0.0.3")), Some(v6("::1")))
        .local_addr(Some(single))
        .build();
    let stream = one.dial(&live4.addr.to_string()).await.unwrap();
    assert_eq!(local_ip(&stream), single.ip());
    let err = one.dial(&live6.addr.to_string()).await.unwrap_err();
    assert!(matches!(err, DialError::NoAddresses { .. }), "{err:?}");

    // Either, given nothing, removes the other.
    for cleared in [
        Dialer::builder()
            .local_addr(Some(single))
            .local_addrs(None, None)
            .build(),
        Dialer::builder()
            .local_addrs(Some(v4("127.0.0.3")), None)
            .local_addr(None)
            .build(),
    ] {
        let stream = cleared.dial(&live4.addr.to_string()).await.unwrap();
        assert_eq!(local_ip(&stream), v4("127.0.0.1"));
        let stream = cleared.dial(&live6.addr.to_string()).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), live6.addr);
    }
}

#[tokio::test]
async fn a_local_address_the_host_lacks_fails_the_attempt_with_the_system_error() {
    // With non-local binds allowed, 192.0.2.1 would bind and this test would prove nothing.
    #[cfg(target_os = "linux")]
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_nonlocal_bind")
            .unwrap()
            .trim(),
        "0",
        "this test needs net.ipv4.ip_nonlocal_bind = 0"
    );
    let live = Live::on("127.0.0.1").await;
    let dialer = Dialer::builder()
        .local_addrs(Some(v4("192.0.2.1")), None)
        .build();
    let rec = Recorder::new();
    let err = nettrace::with_trace(rec.trace(), dialer.dial(&live.addr.to_string()))
        .await
        .unwrap_err();
    let attempts = attempts(err);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].0, live.addr);
    assert_eq!(attempts[0].1.kind(), io::ErrorKind::AddrNotAvailable);
    #[cfg(unix)]
    assert_eq!(attempts[0].1.raw_os_error(), Some(libc::EADDRNOTAVAIL));
    assert_eq!(
        connects(&rec),
        [
            Event::ConnectStart(live.addr, 0),
            Event::ConnectDone(
                live.addr,
                0,
                Outcome::Failed(io::ErrorKind::AddrNotAvailable)
            ),
        ]
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unknown_device_fails_every_attempt_with_the_system_error() {
    let (live4, live6) = live_pair().await;
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("both.test", [live6.addr.ip(), live4.addr.ip()]))
        .bind_device(Some("nonexistent0"))
        .build();
    let err = dialer
        .dial_host("both.test", live4.addr.port())
        .await
        .unwrap_err();
    let attempts = attempts(err);
    let addrs: Vec<_> = attempts.iter().map(|(addr, _)| *addr).collect();
    assert_eq!(addrs, [live6.addr, live4.addr]);
    for (_, err) in &attempts {
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
    }
}
