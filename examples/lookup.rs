//! Traces eight concurrent lookups of one name: one query, eight callers, each told that
//! its answer was shared. Runs offline: the name is answered by a `StaticResolver` that
//! takes 50 ms, like a slow DNS server.
//!
//! ```text
//! cargo run --example lookup
//! ```

use std::time::{Duration, Instant};

use nettrace::{CoalescingResolver, NetTrace, Resolve, Resolving, StaticResolver};

/// A resolver that answers from a map after a delay, and counts its lookups.
struct Slow {
    map: StaticResolver,
    lookups: std::sync::atomic::AtomicUsize,
}

impl Resolve for Slow {
    fn resolve(&self, host: &str) -> Resolving {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = self.map.resolve(host);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer.await
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let trace = NetTrace::new()
        .on_dns_start(move |e| println!("{:>8.3?}  dns start  {}", started.elapsed(), e.host))
        .on_dns_done(move |e| {
            println!(
                "{:>8.3?}  dns done   {} -> {:?} coalesced={}",
                started.elapsed(),
                e.host,
                e.addrs,
                e.coalesced
            )
        });

    let slow = std::sync::Arc::new(Slow {
        map: StaticResolver::new().insert(
            "service.test",
            ["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        ),
        lookups: Default::default(),
    });
    let resolver = CoalescingResolver::new(slow.clone());

    let callers =
        (0..8).map(|_| nettrace::with_trace(trace.clone(), resolver.lookup("service.test")));
    let results = futures_util::future::join_all(callers).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "{ok} of {} callers answered by {} lookup(s)",
        results.len(),
        slow.lookups.load(std::sync::atomic::Ordering::Relaxed)
    );
}
