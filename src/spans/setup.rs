//! The `http.connection_setup` span: one connection set up by an HTTP client that dials by
//! itself (reqwest), from [`ConnectionSetupStart`] to [`ConnectionSetupDone`].

use tracing::field::Empty;

use super::{dial_id, failed, snake_case, Key, Spans, TARGET};
use crate::trace::{ConnectOutcome, ConnectionSetupDone, ConnectionSetupStart};

impl Spans {
    pub(super) fn setup_start(&self, e: &ConnectionSetupStart<'_>) {
        let key = Key::Setup(e.dial);
        if self.is_open(key) {
            return;
        }
        // The OpenTelemetry name .NET's HttpClient gives the same span.
        let name = match (e.host, e.port) {
            (Some(host), Some(port)) => format!("HTTP connection_setup {host}:{port}"),
            _ => "HTTP connection_setup".to_owned(),
        };
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.parent(),
            "http.connection_setup",
            "otel.name" = name,
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
        self.open(key, &span);
    }

    pub(super) fn setup_done(&self, e: &ConnectionSetupDone<'_>) {
        let Some(span) = self.lock().take(Key::Setup(e.dial)) else {
            return;
        };
        if let Some(peer) = e.peer {
            span.record("network.peer.address", tracing::field::display(peer.ip()));
            span.record("network.peer.port", i64::from(peer.port()));
        }
        match e.outcome {
            ConnectOutcome::Connected => {
                span.record("nettrace.outcome", "connected");
            }
            ConnectOutcome::Failed(err) => {
                span.record("nettrace.outcome", "failed");
                failed(&span, snake_case(&err.kind()), err);
            }
            _ => {
                span.record("nettrace.outcome", "cancelled");
            }
        }
    }
}
