//! The HTTP client's connection metrics, recorded by its pool: `http.client.open_connections`
//! and `http.client.connection.duration`.

// The HTTP client's pool is the user of these: without it, only the tests are.
#![cfg_attr(not(any(test, feature = "http")), allow(dead_code))]

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::metrics::{Histogram, Meter, UpDownCounter};
use opentelemetry::KeyValue;

/// Bucket boundaries, in seconds, the conventions advise for
/// `http.client.connection.duration`.
const CONNECTION_SECONDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// What a pooled connection is doing, as `http.connection.state` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Serving at least one request.
    Active,
    /// In the pool, serving none.
    Idle,
}

impl ConnState {
    fn as_str(self) -> &'static str {
        match self {
            ConnState::Active => "active",
            ConnState::Idle => "idle",
        }
    }
}

/// The pool's instruments on one meter. Cheap to clone.
///
/// | instrument | kind, unit | attributes |
/// |---|---|---|
/// | `http.client.open_connections` | up-down counter, `{connection}` | `server.address`, `server.port`, `url.scheme`, `http.connection.state` (`"active"` or `"idle"`) |
/// | `http.client.connection.duration` | histogram, `s` | `server.address`, `server.port`, `url.scheme`; one value per connection, from its opening to its closing |
///
/// Both as the OpenTelemetry HTTP client conventions (1.44) name them. The pool calls
/// [`PoolMetrics::opened`] when a connection joins it, changes the returned
/// [`ConnectionMetrics`]'s state as requests take and release the connection, and drops
/// it when the connection closes, which records the connection's lifetime.
#[derive(Clone)]
pub(crate) struct PoolMetrics {
    instruments: Arc<Instruments>,
}

struct Instruments {
    open: UpDownCounter<i64>,
    duration: Histogram<f64>,
}

impl PoolMetrics {
    pub(crate) fn new(meter: &Meter) -> PoolMetrics {
        let open = meter
            .i64_up_down_counter("http.client.open_connections")
            .with_unit("{connection}")
            .with_description(
                "Number of outbound HTTP connections that are currently active or idle on the client.",
            )
            .build();
        let duration = meter
            .f64_histogram("http.client.connection.duration")
            .with_unit("s")
            .with_description(
                "The duration of the successfully established outbound HTTP connections.",
            )
            .with_boundaries(CONNECTION_SECONDS.to_vec())
            .build();
        PoolMetrics {
            instruments: Arc::new(Instruments { open, duration }),
        }
    }

    /// A connection to `scheme://host:port` (`host` without brackets) is open, in
    /// `state`: counts it in `http.client.open_connections` until the returned value is
    /// dropped.
    pub(crate) fn opened(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        state: ConnState,
    ) -> ConnectionMetrics {
        let origin = [
            KeyValue::new("server.address", Arc::<str>::from(host)),
            KeyValue::new("server.port", i64::from(port)),
            KeyValue::new("url.scheme", Arc::<str>::from(scheme)),
        ];
        let connection = ConnectionMetrics {
            instruments: self.instruments.clone(),
            origin,
            state,
            opened: Instant::now(),
        };
        connection.count(state, 1);
        connection
    }
}

impl fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}

/// One open connection, as the pool's metrics count it. Dropping it closes it: it leaves
/// `http.client.open_connections` and its lifetime goes to
/// `http.client.connection.duration`.
pub(crate) struct ConnectionMetrics {
    instruments: Arc<Instruments>,
    /// `server.address`, `server.port`, `url.scheme`.
    origin: [KeyValue; 3],
    state: ConnState,
    opened: Instant,
}

impl ConnectionMetrics {
    /// The connection is now `state`: moves it from its old state's count to the new
    /// one's. Setting the state it is in changes nothing.
    pub(crate) fn set_state(&mut self, state: ConnState) {
        if state != self.state {
            self.count(self.state, -1);
            self.count(state, 1);
            self.state = state;
        }
    }

    /// The state it is counted in.
    #[cfg(test)]
    pub(crate) fn state(&self) -> ConnState {
        self.state
    }

    fn count(&self, state: ConnState, delta: i64) {
        let [address, port, scheme] = self.origin.clone();
        let state = KeyValue::new("http.connection.state", state.as_str());
        self.instruments
            .open
            .add(delta, &[address, port, scheme, state]);
    }
}

impl Drop for ConnectionMetrics {
    fn drop(&mut self) {
        self.count(self.state, -1);
        let lifetime = self.opened.elapsed().as_secs_f64();
        self.instruments.duration.record(lifetime, &self.origin);
    }
}

impl fmt::Debug for ConnectionMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionMetrics")
            .field("origin", &self.origin)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::metrics::sdk::Metrics;

    const ORIGIN: [(&str, &str); 3] = [
        ("server.address", "web.test"),
        ("server.port", "8080"),
        ("url.scheme", "http"),
    ];

    fn state(state: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut attrs = ORIGIN.to_vec();
        attrs.push(("http.connection.state", state));
        attrs
    }

    #[test]
    fn open_connections_follow_each_connection_state_and_close() {
        let sdk = Metrics::new();
        let pool = PoolMetrics::new(&sdk.meter());

        let mut first = pool.opened("http", "web.test", 8080, ConnState::Active);
        let second = pool.opened("http", "web.test", 8080, ConnState::Active);
        let other = pool.opened("https", "::1", 443, ConnState::Idle);
        first.set_state(ConnState::Idle);
        first.set_state(ConnState::Idle);
        assert_eq!(first.state(), ConnState::Idle);
        let got = sdk.collect();
        assert_eq!(
            got.i64_sum("http.client.open_connections", &state("active")),
            1
        );
        assert_eq!(
            got.i64_sum("http.client.open_connections", &state("idle")),
            1
        );
        let other_idle = [
            ("server.address", "::1"),
            ("server.port", "443"),
            ("url.scheme", "https"),
            ("http.connection.state", "idle"),
        ];
        assert_eq!(got.i64_sum("http.client.open_connections", &other_idle), 1);
        assert_eq!(got.unit("http.client.open_connections"), "{connection}");
        assert_eq!(
            got.histogram("http.client.connection.duration", &[]),
            (0, 0.0)
        );

        first.set_state(ConnState::Active);
        drop(second);
        let got = sdk.collect();
        assert_eq!(
            got.i64_sum("http.client.open_connections", &state("active")),
            1
        );
        assert_eq!(
            got.i64_sum("http.client.open_connections", &state("idle")),
            0
        );

        drop((first, other));
        let got = sdk.collect();
        assert_eq!(got.i64_sum("http.client.open_connections", &[]), 0);
        let (count, sum) = got.histogram("http.client.connection.duration", &ORIGIN);
        assert_eq!(count, 2);
        assert!(sum >= 0.0);
        assert_eq!(got.histogram("http.client.connection.duration", &[]).0, 3);
        assert_eq!(got.unit("http.client.connection.duration"), "s");
    }

    #[test]
    fn a_connection_records_its_lifetime_in_seconds() {
        let sdk = Metrics::new();
        let pool = PoolMetrics::new(&sdk.meter());
        let before = Instant::now();
        let connection = pool.opened("http", "web.test", 8080, ConnState::Idle);
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(connection);
        let longest = before.elapsed().as_secs_f64();
        let (count, sum) = sdk
            .collect()
            .histogram("http.client.connection.duration", &ORIGIN);
        assert_eq!(count, 1);
        assert!((0.020..=longest).contains(&sum), "{sum} s");
    }
}
