//! Reading spans exported to the OpenTelemetry SDK's in-memory exporter.

use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

/// The value of `span`'s attribute `key`, if it has one.
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// `span`'s attribute `key` as text.
pub fn text(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// `span`'s attribute `key` as an integer; panics if it is another type.
pub fn int(span: &SpanData, key: &str) -> Option<i64> {
    attr(span, key).map(|v| match v {
        Value::I64(n) => *n,
        other => panic!("{key} = {other:?} is not an integer"),
    })
}

/// The spans whose parent is `parent`, in the order they ended.
pub fn children<'a>(spans: &'a [SpanData], parent: &SpanData) -> Vec<&'a SpanData> {
    let id = parent.span_context.span_id();
    spans.iter().filter(|s| s.parent_span_id == id).collect()
}

/// The only span called `name`.
pub fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "spans called {name:?}: {:#?}", names(spans));
    found[0]
}

/// Every span's name, in the order they ended.
pub fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

/// Whether `span` is a root.
pub fn is_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID
}

/// An OpenTelemetry SDK pipeline (tracing -> tracing-opentelemetry -> SDK -> in-memory
/// exporter), installed as this thread's default subscriber while it lives.
pub struct Exported {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _default: tracing::subscriber::DefaultGuard,
}

impl Exported {
    pub fn install() -> Exported {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("nettrace-test")));
        Exported {
            exporter,
            _provider: provider,
            _default: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Every span that has ended, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap()
    }
}
