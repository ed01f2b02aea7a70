//! Reading spans exported to the OpenTelemetry SDK's in-memory exporter.

use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;

/// The value of `span`'s attribute `key`, if it has one.
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}
