//! Traces reqwest requests: each one's DNS lookup (shared or not) and connection setup.
//!
//! ```text
//! cargo run --example reqwest --features reqwest
//! ```
//!
//! Runs offline: a hyper server on 127.0.0.1 and the tests' DNS server on 127.0.0.1 (its
//! answers take 30 ms). It sends one request, the same again (it reuses the connection,
//! so it reports nothing), three at once to a cold name (one shared lookup), and one to a
//! name that does not exist.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use nettrace::reqwest::{ConnectLayer, Resolver};
use nettrace::{ConnectOutcome, NetTrace};

// The tests' DNS server; it allows its own unused items.
#[path = "../tests/support/dns.rs"]
mod dns;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = serve_locally().await?;
    let dns = dns::DnsServer::start().await;
    let slow = Duration::from_millis(30);
    for name in ["api.test", "burst.test"] {
        let entry = dns::Entry::new()
            .a("127.0.0.1")
            .a_delay(slow)
            .aaaa_delay(slow);
        dns.insert(name, entry);
    }
    dns.insert("gone.test", dns::Entry::new().reply(dns::Reply::NxDomain));
    println!("http server {server}, dns server {}\n", dns.addr());

    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(Resolver::new(dns.resolver())))
        .connector_layer(ConnectLayer::new())
        .no_proxy()
        .build()?;
    let url = |name: &str| format!("http://{name}:{}/", server.port());

    println!("GET api.test (a new connection):");
    get(&client, "first", url("api.test")).await;
    println!("\nGET api.test again (the pooled connection: nothing to report):");
    get(&client, "second", url("api.test")).await;
    println!("\n3 x GET burst.test at once (one lookup, shared):");
    tokio::join!(
        get(&client, "a", url("burst.test")),
        get(&client, "b", url("burst.test")),
        get(&client, "c", url("burst.test")),
    );
    println!("\nGET gone.test (NXDOMAIN):");
    get(&client, "gone", url("gone.test")).await;
    Ok(())
}

/// Sends one GET with a trace that prints each event, `tag`ged, in ms since the start.
async fn get(client: &reqwest::Client, tag: &'static str, url: String) {
    let start = Instant::now();
    let ms = move || start.elapsed().as_secs_f64() * 1e3;
    let trace = NetTrace::new()
        .on_dns_start(move |e| {
            println!("  [{tag}] {:6.1} ms  {} dns start {}", ms(), e.dial, e.host)
        })
        .on_dns_done(move |e| match e.error {
            None => println!(
                "  [{tag}] {:6.1} ms  {} dns done {:?} coalesced={}",
                ms(),
                e.dial,
                e.addrs,
                e.coalesced
            ),
            Some(err) => println!("  [{tag}] {:6.1} ms  {} dns failed: {err}", ms(), e.dial),
        })
        .on_connection_setup_start(move |e| {
            let host = e.host.unwrap_or("?");
            let port = e.port.unwrap_or(0);
            println!(
                "  [{tag}] {:6.1} ms  {} setup start {host}:{port}",
                ms(),
                e.dial
            );
        })
        .on_connection_setup_done(move |e| match e.outcome {
            ConnectOutcome::Connected => {
                let peer = e.peer.map_or("?".into(), |p| p.to_string());
                println!(
                    "  [{tag}] {:6.1} ms  {} setup done: connected to {peer}",
                    ms(),
                    e.dial
                );
            }
            ConnectOutcome::Failed(err) => {
                println!("  [{tag}] {:6.1} ms  {} setup failed: {err}", ms(), e.dial)
            }
            _ => println!("  [{tag}] {:6.1} ms  {} setup abandoned", ms(), e.dial),
        });
    let response = nettrace::with_trace(trace, async {
        let response = client.get(url).send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok::<_, reqwest::Error>(status)
    })
    .await;
    match response {
        Ok(status) => println!("  [{tag}] {:6.1} ms  response {status}", ms()),
        Err(err) => println!(
            "  [{tag}] {:6.1} ms  error (is_connect={}): {err}",
            ms(),
            err.is_connect()
        ),
    }
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers "hello".
async fn serve_locally() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        b"hello",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
