//! The `http.connection_setup` span: one connection set up by an HTTP client that dials by
//! itself (reqwest), from [`ConnectionSetupStart`] to [`ConnectionSetupDone`].

use tracing::field::Empty;

use super::{dial_id, failed, Key, OtelName, Spans, TARGET};
use crate::semconv::{connect_outcome, snake_case};
use crate::trace::{ConnectOutcome, ConnectionSetupDone, ConnectionSetupStart};

impl Spans {
    pub(super) fn setup_start(&self, e: &ConnectionSetupStart<'_>) {
        let key = Key::Setup(e.dial);
        if self.starting(key, e.dial).is_none() {
            return;
        }
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.parent(),
            "http.connection_setup",
            // The OpenTelemetry name .NET's HttpClient gives the same span.
            "otel.name" = %OtelName("HTTP connection_setup", e.host, e.port),
            "otel.kind" = "internal",
            "server.address" = e.host,
            "server.port" = e.port.map(i64::from),
            "network.peer.address" = Empty,
            "network.peer.port" = Empty,
            "nettrace.dial_id" = dial_id(e.dial),
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        self.open(key, span);
    }

    pub(super) fn setup_done(&self, e: &ConnectionSetupDone<'_>) {
        let Some(span) = self.lock().take(Key::Setup(e.dial)) else {
            return;
        };
        if let Some(peer) = e.peer {
            span.record("network.peer.address", tracing::field::display(peer.ip()));
            span.record("network.peer.port", i64::from(peer.port()));
        }
        span.record("nettrace.outcome", connect_outcome(&e.outcome));
        if let ConnectOutcome::Failed(err) = e.outcome {
            failed(&span, snake_case(&err.kind()), err);
        }
    }
}
