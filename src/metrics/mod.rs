//! OpenTelemetry metrics through the `opentelemetry` API crate: [`NetTrace::metrics`] for
//! lookups and connection attempts, and the pool's connection metrics (`PoolMetrics`).

mod pool;
/// The tests' reader of the SDK's in-memory metric exporter.
#[cfg(test)]
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/support/metrics.rs"]
mod sdk;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;

// The HTTP client's pool is their user.
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use self::pool::{ConnState, ConnectionMetrics, PoolMetrics};
use crate::semconv::{connect_outcome, network_type, snake_case};
use crate::trace::{
    ConnectDone, ConnectOutcome, ConnectStart, DialId, DnsDone, DnsStart, NetTrace,
};

/// Bucket boundaries, in seconds, for lookups and connection attempts: the ones the
/// conventions advise for `dns.lookup.duration`.
const SHORT_SECONDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

impl NetTrace {
    /// Returns a trace that records every DNS lookup and every connection attempt as
    /// OpenTelemetry metrics on `meter`.
    ///
    /// | instrument | kind, unit | attributes |
    /// |---|---|---|
    /// | `dns.lookup.duration` | histogram, `s` | `dns.question.name`; when the lookup found no address, `error.type`: the [`ResolveErrorKind`](crate::ResolveErrorKind) in snake case (`"not_found"`, `"timed_out"`, and `"cancelled"` when the dial stopped waiting) |
    /// | `nettrace.connect.attempts` | counter, `{attempt}` | `nettrace.outcome` (`"connected"`, `"failed"` or `"cancelled"`), `network.type` (`"ipv4"` or `"ipv6"`); on failure `error.type`: the [`io::ErrorKind`](std::io::ErrorKind) in snake case (`"connection_refused"`) |
    /// | `nettrace.connect.duration` | histogram, `s` | as `nettrace.connect.attempts`; one value per attempt, from its [`ConnectStart`] to its [`ConnectDone`] |
    ///
    /// `dns.lookup.duration` follows the OpenTelemetry semantic conventions (1.44); the
    /// `nettrace.*` instruments are this crate's own. The histograms advise the bucket
    /// boundaries the conventions give for `dns.lookup.duration` (5 ms to 10 s).
    ///
    /// This is an ordinary trace: it composes with any other (nested
    /// [`with_trace`](crate::with_trace) scopes, or `HttpTrace::net`), and one trace may
    /// serve any number of concurrent dials, since events carry the id of their dial. A
    /// lookup or attempt is recorded once, when it ends; installing the same trace twice
    /// around one dial still records it once. Only the `opentelemetry` API is used: the
    /// meter's provider (the SDK, an exporter, views) is the application's choice, and
    /// with no provider installed the instruments are no-ops.
    ///
    /// # Examples
    ///
    /// Count a dial's attempts with the SDK's in-memory exporter:
    ///
    /// ```
    /// use nettrace::{Dialer, NetTrace, StaticResolver};
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    /// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let port = listener.local_addr()?.port();
    /// let exporter = InMemoryMetricExporter::default();
    /// let provider = SdkMeterProvider::builder()
    ///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
    ///     .build();
    /// let trace = NetTrace::metrics(&provider.meter("example"));
    ///
    /// let dialer = Dialer::builder()
    ///     .resolver(StaticResolver::new().insert("db.test", ["127.0.0.1".parse()?]))
    ///     .build();
    /// nettrace::with_trace(trace, dialer.dial_host("db.test", port)).await?;
    ///
    /// provider.force_flush()?;
    /// let exported = exporter.get_finished_metrics()?;
    /// let attempts = exported
    ///     .iter()
    ///     .flat_map(|r| r.scope_metrics())
    ///     .flat_map(|s| s.metrics())
    ///     .find(|m| m.name() == "nettrace.connect.attempts")
    ///     .unwrap();
    /// let AggregatedMetrics::U64(MetricData::Sum(sum)) = attempts.data() else {
    ///     panic!("a counter")
    /// };
    /// assert_eq!(sum.data_points().map(|p| p.value()).sum::<u64>(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(meter: &Meter) -> NetTrace {
        let recorder = Arc::new(Recorder::new(meter));
        let (a, b, c, d) = (
            recorder.clone(),
            recorder.clone(),
            recorder.clone(),
            recorder,
        );
        NetTrace::new()
            .on_dns_start(move |e| a.dns_start(e))
            .on_dns_done(move |e| b.dns_done(e))
            .on_connect_start(move |e| c.connect_start(e))
            .on_connect_done(move |e| d.connect_done(e))
    }
}

/// The instruments of one [`NetTrace::metrics`] trace, and when each lookup and attempt
/// in flight started.
struct Recorder {
    dns_duration: Histogram<f64>,
    attempts: Counter<u64>,
    connect_duration: Histogram<f64>,
    started: Mutex<Started>,
}

/// Start times, keyed as the events pair: every start has exactly one done, so an entry
/// lives as long as its lookup or attempt. (B-trees: a few entries each, compared faster
/// than SipHash hashes them.)
#[derive(Default)]
struct Started {
    lookups: BTreeMap<DialId, Instant>,
    attempts: BTreeMap<(DialId, usize), Instant>,
}

impl Recorder {
    fn new(meter: &Meter) -> Recorder {
        Recorder {
            dns_duration: meter
                .f64_histogram("dns.lookup.duration")
                .with_unit("s")
                .with_description("Measures the time taken to perform a DNS lookup.")
                .with_boundaries(SHORT_SECONDS.to_vec())
                .build(),
            attempts: meter
                .u64_counter("nettrace.connect.attempts")
                .with_unit("{attempt}")
                .with_description("Connection attempts made, by how they ended.")
                .build(),
            connect_duration: meter
                .f64_histogram("nettrace.connect.duration")
                .with_unit("s")
                .with_description("Duration of each connection attempt.")
                .with_boundaries(SHORT_SECONDS.to_vec())
                .build(),
            started: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Started> {
        // Only map updates happen under this lock; each leaves the maps consistent.
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dns_start(&self, e: &DnsStart<'_>) {
        // A second start under one id (the trace installed twice) keeps the first time.
        self.lock()
            .lookups
            .entry(e.dial)
            .or_insert_with(Instant::now);
    }

    fn dns_done(&self, e: &DnsDone<'_>) {
        let Some(start) = self.lock().lookups.remove(&e.dial) else {
            return;
        };
        let name = KeyValue::new("dns.question.name", e.host.to_owned());
        let seconds = start.elapsed().as_secs_f64();
        match e.error {
            None => self.dns_duration.record(seconds, &[name]),
            Some(err) => {
                let error = KeyValue::new("error.type", snake_case(&err.kind()));
                self.dns_duration.record(seconds, &[name, error]);
            }
        }
    }

    fn connect_start(&self, e: &ConnectStart) {
        self.lock()
            .attempts
            .entry((e.dial, e.attempt))
            .or_insert_with(Instant::now);
    }

    fn connect_done(&self, e: &ConnectDone<'_>) {
        let Some(start) = self.lock().attempts.remove(&(e.dial, e.attempt)) else {
            return;
        };
        let seconds = start.elapsed().as_secs_f64();
        let outcome = KeyValue::new("nettrace.outcome", connect_outcome(&e.outcome));
        let family = KeyValue::new("network.type", network_type(e.addr.ip()));
        let failed = match e.outcome {
            ConnectOutcome::Failed(err) => Some(snake_case(&err.kind())),
            _ => None,
        };
        let with_error;
        let attributes: &[KeyValue] = match failed {
            Some(kind) => {
                with_error = [outcome, family, KeyValue::new("error.type", kind)];
                &with_error
            }
            None => &[outcome, family],
        };
        self.attempts.add(1, attributes);
        self.connect_duration.record(seconds, attributes);
    }
}
