//! Traces one HTTP request and prints curl-style timings.
//!
//! ```text
//! cargo run --example http --features http,tls                 # offline: a loopback server
//! cargo run --example http --features http,tls -- https://example.com/
//! ```
//!
//! With no argument it starts a hyper server on 127.0.0.1 that takes 100 ms to answer,
//! and requests it by a name a `StaticResolver` maps there, twice: the second request
//! reuses the kept-alive connection.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use nettrace::{
    Connector, Dialer, HttpClient, StaticResolver, Timings, TimingsRecorder, TlsConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dialer, urls) = match std::env::args().nth(1) {
        Some(url) => (Dialer::new(), vec![url]),
        None => {
            let addr = serve_locally().await?;
            let resolver = StaticResolver::new().insert("demo.test", [addr.ip()]);
            let url = format!("http://demo.test:{}/", addr.port());
            (
                Dialer::builder().resolver(resolver).build(),
                vec![url.clone(), url],
            )
        }
    };
    let connector = Connector::new(dialer).tls(TlsConfig::builder().build()?);
    let client: HttpClient<Empty<Bytes>> = HttpClient::new(connector);

    for url in urls {
        let recorder = TimingsRecorder::new();
        let request = http::Request::get(&url).body(Empty::new())?;
        let response = client.send(request, recorder.trace()).await?;
        let status = response.status();
        let size = response.into_body().collect().await?.to_bytes().len();
        println!("GET {url} -> {status}, {size} bytes");
        print(&recorder.timings());
        println!();
    }
    Ok(())
}

fn print(t: &Timings) {
    let ms = |d: Option<Duration>| match d {
        Some(d) => format!("{:>9.3} ms", d.as_secs_f64() * 1000.0),
        None => format!("{:>12}", "-"),
    };
    println!(
        "  connection      {}",
        if t.reused { "reused" } else { "new" }
    );
    for a in &t.attempts {
        println!(
            "  attempt #{} {:<22} {:?} at {}",
            a.attempt,
            a.addr,
            a.outcome,
            ms(Some(a.start))
        );
    }
    println!("  namelookup    {}", ms(t.namelookup));
    println!("  connect       {}", ms(t.connect));
    println!("  appconnect    {}", ms(t.appconnect));
    println!("  pretransfer   {}", ms(t.pretransfer));
    println!("  starttransfer {}", ms(t.starttransfer));
    println!("  total         {}", ms(t.total));
    if let Some(version) = t.tls_version {
        println!("  tls           {version} {}", t.tls_cipher.unwrap_or("-"));
    }
}

/// Serves `hello` after 100 ms on 127.0.0.1, HTTP/1.1 with keep-alive.
async fn serve_locally() -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("hello"))))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(addr)
}
