//! Prints a timestamped timeline of one traced dial.
//!
//! ```text
//! cargo run --example dial                 # offline: an embedded loopback scenario
//! cargo run --example dial -- HOST:PORT    # a real dial, resolved by the system
//! ```
//!
//! With no argument it needs no network: the name `happy-eyeballs.test` resolves (through
//! a `StaticResolver`) to `[::1]:P`, a black hole whose accept queue is full so connects
//! to it hang like connects to a dead host, and `127.0.0.1:P`, a live listener. The dial
//! tries IPv6 first, waits the 250 ms Connection Attempt Delay, starts IPv4 alongside it,
//! connects, and cancels the IPv6 attempt.

#[path = "support/scenario.rs"]
mod scenario;

use std::time::Instant;

use nettrace::{ConnectOutcome, Dialer, NetTrace};
use scenario::Scenario;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Times are counted from just before the dial starts.
    let (dialer, target, _peers) = match std::env::args().nth(1) {
        Some(target) => (Dialer::new(), target, None),
        None => {
            let peers = Scenario::start().await;
            let target = format!("{}:{}", scenario::NAME, peers.live.port());
            (peers.dialer(), target, Some(peers))
        }
    };

    let started = Instant::now();
    let at = move || format!("{:>9.3} ms", started.elapsed().as_secs_f64() * 1000.0);
    let trace = NetTrace::new()
        .on_dns_start(move |e| println!("{}  dns start      {}", at(), e.host))
        .on_dns_done(move |e| match e.error {
            None => println!(
                "{}  dns done       {} -> {:?}{}",
                at(),
                e.host,
                e.addrs,
                if e.coalesced { " (shared)" } else { "" }
            ),
            Some(err) => println!("{}  dns failed     {err}", at()),
        })
        .on_connect_start(move |e| println!("{}  connect start  #{} {}", at(), e.attempt, e.addr))
        .on_connect_done(move |e| {
            let outcome = match e.outcome {
                ConnectOutcome::Connected => "connected".to_owned(),
                ConnectOutcome::Failed(err) => format!("failed: {err}"),
                ConnectOutcome::Cancelled => "cancelled".to_owned(),
                _ => "ended".to_owned(),
            };
            println!(
                "{}  connect done   #{} {} {outcome}",
                at(),
                e.attempt,
                e.addr
            );
        });

    match nettrace::with_trace(trace, dialer.dial(&target)).await {
        Ok(stream) => {
            println!(
                "\nconnected to {} from {}",
                stream.peer_addr()?,
                stream.local_addr()?
            );
            Ok(())
        }
        Err(err) => {
            println!("\ndial failed: {err}");
            std::process::exit(1);
        }
    }
}
