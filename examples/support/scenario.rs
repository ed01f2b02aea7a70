//! The loopback scenario the examples share: the name `happy-eyeballs.test` resolves to
//! `[::1]:P`, a black hole (a listener whose accept queue is full, so connects to it hang
//! like connects to a dead host), and `127.0.0.1:P`, a live listener. The peers are the
//! tests' own (`tests/support/net.rs`).

use std::net::SocketAddr;

use nettrace::{Dialer, StaticResolver};

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/support/net.rs"]
mod net;

/// The name the scenario's dialer resolves.
pub(crate) const NAME: &str = "happy-eyeballs.test";

pub(crate) struct Scenario {
    pub(crate) hole: SocketAddr,
    pub(crate) live: SocketAddr,
    _peers: (net::BlackHole, net::Live),
}

impl Scenario {
    /// Starts the peers and prints what they are.
    pub(crate) async fn start() -> Scenario {
        let (hole, live) = net::fallback_pair().await;
        println!(
            "scenario: {NAME} -> {} (black hole), {} (live)\n",
            hole.addr, live.addr
        );
        Scenario {
            hole: hole.addr,
            live: live.addr,
            _peers: (hole, live),
        }
    }

    /// A dialer (default options) that resolves [`NAME`] to the two peers, IPv6 first.
    pub(crate) fn dialer(&self) -> Dialer {
        Dialer::builder()
            .resolver(StaticResolver::new().insert(NAME, [self.hole.ip(), self.live.ip()]))
            .build()
    }
}
