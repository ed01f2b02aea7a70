//! Exports one traced dial and one traced HTTP request to an OpenTelemetry SDK pipeline
//! and prints the spans and the metrics it got.
//!
//! ```text
//! cargo run --example otel --features tracing,metrics,http
//! ```
//!
//! It needs no network: the name `happy-eyeballs.test` resolves (through a
//! `StaticResolver`) to `[::1]:P`, a black hole whose accept queue is full so connects to
//! it hang like connects to a dead host, and `127.0.0.1:P`, a live listener. The dial runs
//! inside an application span, `checkout`; `NetTrace::tracing()` turns its lookup and its
//! two connection attempts into `tracing` spans, and `tracing-opentelemetry` hands them to
//! the SDK, here with an in-memory exporter in place of an OTLP one. `NetTrace::metrics`
//! records the same lookup and attempts as OpenTelemetry metrics (`dns.lookup.duration`,
//! `nettrace.connect.attempts`, `nettrace.connect.duration`) on an SDK meter provider,
//! also exported in memory, then printed.
//!
//! Then an `HttpClient` sends a GET to a hyper server on `127.0.0.1`: `HttpTrace::tracing()`
//! makes the request span (`GET`, kind client) with `HTTP wait_for_connection` and `HTTP
//! connection_setup` under it, the lookup and the attempt under the setup; the client's
//! `metrics(&meter)` records `http.client.open_connections` and, when the connection
//! closes, `http.client.connection.duration`.

#[path = "support/scenario.rs"]
mod scenario;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use nettrace::{Connector, Dialer, HttpClient, HttpTrace, NetTrace, StaticResolver};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use scenario::Scenario;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The pipeline: tracing -> tracing-opentelemetry -> SDK tracer -> exporter.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let telemetry = tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-example"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(telemetry))?;
    // Metrics: SDK meter provider -> periodic reader -> exporter (read at the end).
    let metric_exporter = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metric_exporter.clone()).build())
        .build();
    let metrics = NetTrace::metrics(&meters.meter("otel-example"));

    let peers = Scenario::start().await;
    let dialer = peers.dialer();

    let checkout = tracing::info_span!("checkout", "app.cart" = 42);
    let dial = dialer.dial_host(scenario::NAME, peers.live.port());
    // Two traces, composed by nesting their scopes: spans and metrics of the same dial.
    let dial = nettrace::with_trace(NetTrace::tracing(), dial);
    let stream = nettrace::with_trace(metrics, dial)
        .instrument(checkout)
        .await?;
    println!("connected to {}", stream.peer_addr()?);

    // An HTTP request, traced and metered: the client's pool records its connections.
    let server = http_server().await?;
    let dialer = Dialer::builder()
        .resolver(StaticResolver::new().insert("api.test", [server.ip()]))
        .build();
    let client: HttpClient<Empty<Bytes>> = HttpClient::builder(Connector::new(dialer))
        .metrics(&meters.meter("otel-example"))
        .pool_idle_timeout(Duration::from_millis(50))
        .build();
    let request =
        http::Request::get(format!("http://api.test:{}/", server.port())).body(Empty::new())?;
    let handler = tracing::info_span!("handler", "app.route" = "/checkout");
    let response = client
        .send(request, HttpTrace::tracing())
        .instrument(handler)
        .await?;
    let body = response.into_body().collect().await?.to_bytes();
    println!("GET answered {:?}\n", String::from_utf8_lossy(&body));
    // Past the idle timeout the pool closes the connection: its duration is recorded.
    tokio::time::sleep(Duration::from_millis(200)).await;

    provider.force_flush()?;
    let spans = exporter.get_finished_spans()?;
    let first = spans.iter().map(|s| s.start_time).min();
    print_tree(
        &spans,
        SpanId::INVALID,
        first.unwrap_or(SystemTime::UNIX_EPOCH),
        0,
    );
    provider.shutdown()?;

    meters.force_flush()?;
    println!("\nmetrics:");
    if let Some(last) = metric_exporter.get_finished_metrics()?.last() {
        print_metrics(last);
    }
    meters.shutdown()?;
    Ok(())
}

/// A hyper HTTP/1.1 server on `127.0.0.1:0` answering every request with `hello`.
async fn http_server() -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                    Bytes::from_static(b"hello"),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}

/// Prints every data point of every metric: its attributes, then a counter's value or a
/// histogram's count and sum.
fn print_metrics(exported: &ResourceMetrics) {
    for metric in exported.scope_metrics().flat_map(|scope| scope.metrics()) {
        println!("  {} ({})", metric.name(), metric.unit());
        let attributes = |kvs: Vec<&opentelemetry::KeyValue>| {
            let kvs: Vec<String> = kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            kvs.join(" ")
        };
        match metric.data() {
            AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                for point in sum.data_points() {
                    let attrs = attributes(point.attributes().collect());
                    println!("    {attrs}: {}", point.value());
                }
            }
            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                for point in sum.data_points() {
                    let attrs = attributes(point.attributes().collect());
                    println!("    {attrs}: {}", point.value());
                }
            }
            AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                for point in histogram.data_points() {
                    let attrs = attributes(point.attributes().collect());
                    println!(
                        "    {attrs}: count {} sum {:.6} s",
                        point.count(),
                        point.sum()
                    );
                }
            }
            other => println!("    {other:?}"),
        }
    }
}

/// Prints the spans under `parent`, in start order, with their attributes; times count
/// from `epoch`.
fn print_tree(spans: &[SpanData], parent: SpanId, epoch: SystemTime, depth: usize) {
    let mut children: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent)
        .collect();
    children.sort_by_key(|s| s.start_time);
    let indent = "  ".repeat(depth);
    let ms = |from: SystemTime, to: SystemTime| {
        to.duration_since(from)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0
    };
    for span in children {
        println!(
            "{indent}{}  ({:?})  +{:.3} ms .. +{:.3} ms  status {:?}",
            span.name,
            span.span_kind,
            ms(epoch, span.start_time),
            ms(epoch, span.end_time),
            span.status,
        );
        let mut attributes: Vec<_> = span
            .attributes
            .iter()
            // tracing-opentelemetry's own bookkeeping: code location, thread, busy/idle, target.
            .filter(|kv| {
                let key = kv.key.as_str();
                !key.starts_with("code.")
                    && !key.starts_with("thread.")
                    && !key.ends_with("_ns")
                    && key != "target"
            })
            .collect();
        attributes.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        for kv in attributes {
            println!("{indent}    {} = {}", kv.key, kv.value);
        }
        print_tree(spans, span.span_context.span_id(), epoch, depth + 1);
    }
}
