//! Reading metrics through the OpenTelemetry SDK's in-memory metric exporter. (Also
//! compiled into the library's own unit tests, by path.)

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// An SDK meter provider whose metrics are read on demand (cumulative temporality).
pub struct Metrics {
    provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        Metrics { provider, exporter }
    }

    pub fn meter(&self) -> Meter {
        self.provider.meter("nettrace-test")
    }

    /// Everything recorded so far.
    pub fn collect(&self) -> Collected {
        self.provider.force_flush().expect("flush");
        let mut all = self.exporter.get_finished_metrics().expect("metrics");
        Collected(all.pop().expect("one export at least"))
    }
}

/// One export.
pub struct Collected(ResourceMetrics);

/// Whether every `(key, value)` of `want` is among `attributes` (values as text).
fn matches<'a>(attributes: impl Iterator<Item = &'a KeyValue>, want: &[(&str, &str)]) -> bool {
    let attributes: Vec<&KeyValue> = attributes.collect();
    want.iter().all(|(key, value)| {
        attributes
            .iter()
            .any(|kv| kv.key.as_str() == *key && kv.value.as_str() == *value)
    })
}

impl Collected {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.0
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .find(|m| m.name() == name)
    }

    pub fn unit(&self, name: &str) -> String {
        self.metric(name).expect(name).unit().to_owned()
    }

    /// The attributes of every data point of `name`, as `key=value` texts, sorted.
    pub fn points(&self, name: &str) -> Vec<Vec<String>> {
        let text = |attrs: Vec<&KeyValue>| {
            let mut attrs: Vec<String> = attrs
                .into_iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            attrs.sort();
            attrs
        };
        let mut points: Vec<Vec<String>> = match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::I64(MetricData::Sum(sum))) => sum
                .data_points()
                .map(|p| text(p.attributes().collect()))
                .collect(),
            Some(AggregatedMetrics::U64(MetricData::Sum(sum))) => sum
                .data_points()
                .map(|p| text(p.attributes().collect()))
                .collect(),
            Some(AggregatedMetrics::F64(MetricData::Histogram(h))) => h
                .data_points()
                .map(|p| text(p.attributes().collect()))
                .collect(),
            Some(other) => panic!("{name}: {other:?}"),
            None => Vec::new(),
        };
        points.sort();
        points
    }

    /// The sum of an `i64` sum (up-down counter) over the data points whose attributes
    /// include `want`; 0 if none.
    pub fn i64_sum(&self, name: &str, want: &[(&str, &str)]) -> i64 {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::I64(MetricData::Sum(sum))) => sum
                .data_points()
                .filter(|p| matches(p.attributes(), want))
                .map(|p| p.value())
                .sum(),
            Some(other) => panic!("{name} is not an i64 sum: {other:?}"),
            None => 0,
        }
    }

    /// The sum of a `u64` counter over the data points whose attributes include `want`.
    pub fn u64_sum(&self, name: &str, want: &[(&str, &str)]) -> u64 {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::U64(MetricData::Sum(sum))) => sum
                .data_points()
                .filter(|p| matches(p.attributes(), want))
                .map(|p| p.value())
                .sum(),
            Some(other) => panic!("{name} is not a u64 sum: {other:?}"),
            None => 0,
        }
    }

    /// The count and sum of an `f64` histogram over the data points whose attributes
    /// include `want`.
    pub fn histogram(&self, name: &str, want: &[(&str, &str)]) -> (u64, f64) {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::F64(MetricData::Histogram(h))) => h
                .data_points()
                .filter(|p| matches(p.attributes(), want))
                .fold((0, 0.0), |(n, s), p| (n + p.count(), s + p.sum())),
            Some(other) => panic!("{name} is not an f64 histogram: {other:?}"),
            None => (0, 0.0),
        }
    }
}
