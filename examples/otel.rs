//! Exports one traced dial to an OpenTelemetry SDK pipeline and prints the spans it got.
//!
//! ```text
//! cargo run --example otel --features tracing
//! ```
//!
//! It needs no network: the name `happy-eyeballs.test` resolves (through a
//! `StaticResolver`) to `[::1]:P`, a black hole whose accept queue is full so connects to
//! it hang like connects to a dead host, and `127.0.0.1:P`, a live listener. The dial runs
//! inside an application span, `checkout`; `NetTrace::tracing()` turns its lookup and its
//! two connection attempts into `tracing` spans, and `tracing-opentelemetry` hands them to
//! the SDK, here with an in-memory exporter in place of an OTLP one.

#[path = "support/scenario.rs"]
mod scenario;

use std::time::{Duration, SystemTime};

use nettrace::NetTrace;
use opentelemetry::trace::{SpanId, TracerProvider as _};
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

    let peers = Scenario::start().await;
    let dialer = peers.dialer();

    let checkout = tracing::info_span!("checkout", "app.cart" = 42);
    let dial = dialer.dial_host(scenario::NAME, peers.live.port());
    let stream = nettrace::with_trace(NetTrace::tracing(), dial)
        .instrument(checkout)
        .await?;
    println!("connected to {}\n", stream.peer_addr()?);

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
    Ok(())
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
            "{indent}{}  +{:.3} ms .. +{:.3} ms  status {:?}",
            span.name,
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
