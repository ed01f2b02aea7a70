//! Dropped dials close every socket they opened. A binary of its own, so no other test
//! opens or closes descriptors while this one counts them.

#![allow(unreachable_pub)]

// Only the helpers needed: the DNS server's self-tests must not run beside this one.
#[allow(dead_code)]
#[path = "support/net.rs"]
mod net;
#[allow(dead_code)]
#[path = "support/record.rs"]
mod record;

use std::time::Duration;

use futures_util::FutureExt;
use nettrace::{Dialer, StaticResolver};

use net::{open_fds, BlackHole, Live};
use record::{Event, Outcome, Recorder};

#[tokio::test]
async fn two_hundred_dropped_dials_leave_no_descriptor_open() {
    let hole_v4 = BlackHole::on("127.0.0.8").await;
    let hole_v4b = BlackHole::on_port("127.0.0.9", hole_v4.addr.port()).await;
    let live = Live::on("127.0.0.10").await;
    let dialer = Dialer::builder()
        .resolver(
            StaticResolver::new().insert("hole.test", [hole_v4.addr.ip(), hole_v4b.addr.ip()]),
        )
        .attempt_delay(Duration::from_millis(10))
        .build();
    // Warm up: the first dial may open descriptors that live for the whole process
    // (the runtime's, the resolver's).
    drop(dialer.dial(&live.addr.to_string()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = open_fds();

    let rec = Recorder::new();
    let mut dials: Vec<_> = (0..200)
        .map(|i| {
            let target = if i % 2 == 0 {
                hole_v4.addr.to_string()
            } else {
                format!("hole.test:{}", hole_v4.addr.port())
            };
            Box::pin(nettrace::with_trace(rec.trace(), dialer.dial(&target)))
        })
        .collect();
    for dial in &mut dials {
        assert!(dial.now_or_never().is_none());
    }
    // Let the name-based dials start their second attempt.
    tokio::time::sleep(Duration::from_millis(30)).await;
    for dial in &mut dials {
        assert!(dial.now_or_never().is_none());
    }
    assert!(open_fds() >= before + 200, "the attempts hold sockets");
    drop(dials);

    let starts = rec.count(|e| matches!(e, Event::ConnectStart(..)));
    let dones = rec.count(|e| matches!(e, Event::ConnectDone(..)));
    let cancelled = rec.count(|e| matches!(e, Event::ConnectDone(_, _, Outcome::Cancelled)));
    assert!(starts >= 300, "{starts} starts");
    assert_eq!(starts, dones);
    assert_eq!(dones, cancelled);
    assert_eq!(
        rec.count(|e| matches!(e, Event::DnsStart(_))),
        rec.count(|e| matches!(e, Event::DnsDone { .. }))
    );
    assert_eq!(open_fds(), before, "every socket was closed");
}
