//! `HttpTrace::tracing()`: one `http.request` span per request, the network spans as its
//! children.

use std::sync::{Arc, Mutex, PoisonError};

use http::Version;
use tracing::field::Empty;
use tracing::{Level, Span};

use super::{Parent, Spans, TARGET};
use crate::http::{GetConn, GotConn, GotFirstResponseByte, HttpTrace};

impl HttpTrace {
    /// Returns an HTTP trace that makes an `http.request` span for the request, from
    /// the moment it asks for a connection until its response body has been read (or
    /// dropped), with the [`NetTrace::tracing`](crate::NetTrace::tracing) spans of
    /// the connection it dials — lookup, attempts, TLS handshake — as its children.
    /// Use it for one request at a time.
    ///
    /// The span is a child of the span current when the request is first polled. It
    /// has `otel.kind = "client"`, `server.address` and `server.port` (from the URI),
    /// and as the request proceeds `network.peer.address`, `network.peer.port`,
    /// `nettrace.reused` (the connection served an earlier request),
    /// `http.response.status_code`, `network.protocol.name` (`"http"`) and
    /// `network.protocol.version` (`"1.1"`, `"2"`), and at its end
    /// `nettrace.outcome`: `"complete"` (the body was read to its end),
    /// `"incomplete"` (the body was dropped early or failed) or `"no_response"` (the
    /// request failed or was dropped before the response head arrived; the span then
    /// ends when the request lets go of its trace). A status of 400 or more sets
    /// `error.type` to the status code and `otel.status_code = "error"`, as the
    /// OpenTelemetry HTTP client conventions say. It also gets the events
    /// `got_conn`, `wrote_request` and `got_first_response_byte`, at level `INFO`.
    ///
    /// The hooks do not see the request method or URL: put them on a span of your
    /// own around the request, which becomes the parent of `http.request`. Do not
    /// also install [`NetTrace::tracing`](crate::NetTrace::tracing) around the
    /// request, or every network span is made twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::{BodyExt, Empty};
    /// use nettrace::{Connector, Dialer, HttpClient, HttpTrace, TimingsRecorder};
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let addr = listener.local_addr()?;
    /// # tokio::spawn(async move {
    /// #     let (stream, _) = listener.accept().await.unwrap();
    /// #     let service = hyper::service::service_fn(|_req| async {
    /// #         Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi"))))
    /// #     });
    /// #     hyper::server::conn::http1::Builder::new()
    /// #         .serve_connection(hyper_util::rt::TokioIo::new(stream), service).await.unwrap();
    /// # });
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("example")));
    /// let _default = tracing::subscriber::set_default(subscriber);
    ///
    /// let client = HttpClient::new(Connector::new(Dialer::new()));
    /// let request = http::Request::get(format!("http://{addr}/")).body(Empty::<bytes::Bytes>::new())?;
    /// // Spans and curl-style timings together.
    /// let recorder = TimingsRecorder::new();
    /// let trace = recorder.trace().and(HttpTrace::tracing());
    /// let response = client.send(request, trace).await?;
    /// response.into_body().collect().await?;
    ///
    /// let spans = exporter.get_finished_spans()?;
    /// let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    /// let connect_name = format!("socket connect 127.0.0.1:{}", addr.port());
    /// assert_eq!(names, [&connect_name, "http.request"]);
    /// assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    /// let status = spans[1]
    ///     .attributes
    ///     .iter()
    ///     .find(|kv| kv.key.as_str() == "http.response.status_code");
    /// assert_eq!(status.unwrap().value, opentelemetry::Value::I64(200));
    /// assert!(recorder.timings().total.is_some());
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(all(feature = "http", feature = "tracing"))))]
    pub fn tracing() -> HttpTrace {
        let request = Arc::new(RequestSpan::default());
        let net = Spans::new(Parent::Request(Arc::downgrade(&request))).into_trace();
        let (a, b, c, d) = (
            request.clone(),
            request.clone(),
            request.clone(),
            request.clone(),
        );
        HttpTrace::new()
            .on_get_conn(move |e| a.get_conn(e))
            .net(net)
            .on_got_conn(move |e| b.got_conn(e))
            .on_wrote_request(move |_| c.wrote_request())
            .on_got_first_response_byte(move |e| d.first_byte(e))
            .on_finished(move |e| request.finished(e.complete))
    }
}

/// The span of the request in flight. The HTTP hooks own it; the network hooks only
/// look at it, so it closes when the request is done with its trace even if a
/// connect it started goes on in the background.
#[derive(Default)]
pub(super) struct RequestSpan {
    span: Mutex<Option<Span>>,
}

impl RequestSpan {
    pub(super) fn span(&self) -> Option<Span> {
        self.slot().clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Span>> {
        // Only clones and swaps happen under this lock.
        self.span.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the open span, outside the lock.
    fn with(&self, f: impl FnOnce(&Span)) {
        if let Some(span) = self.span() {
            f(&span);
        }
    }

    fn get_conn(&self, e: &GetConn<'_>) {
        let (host, port) = split_host_port(e.host_port);
        let span = tracing::info_span!(
            target: TARGET,
            "http.request",
            "otel.kind" = "client",
            "server.address" = host,
            "server.port" = port.map(i64::from),
            "network.peer.address" = Empty,
            "network.peer.port" = Empty,
            "network.protocol.name" = "http",
            "network.protocol.version" = Empty,
            "http.response.status_code" = Empty,
            "nettrace.reused" = Empty,
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
        );
        let previous =
            std::mem::replace(&mut *self.slot(), Some(span).filter(|s| !s.is_disabled()));
        if let Some(previous) = previous {
            previous.record("nettrace.outcome", "no_response");
        }
    }

    fn got_conn(&self, e: &GotConn) {
        self.with(|span| {
            span.record("nettrace.reused", e.reused);
            span.record(
                "network.peer.address",
                tracing::field::display(e.remote_addr.ip()),
            );
            span.record("network.peer.port", i64::from(e.remote_addr.port()));
            tracing::event!(
                target: TARGET,
                parent: span,
                Level::INFO,
                { "nettrace.reused" = e.reused },
                "got_conn"
            );
        });
    }

    fn wrote_request(&self) {
        self.with(|span| tracing::info!(target: TARGET, parent: span, "wrote_request"));
    }

    fn first_byte(&self, e: &GotFirstResponseByte) {
        self.with(|span| {
            let status = e.status.as_u16();
            span.record("http.response.status_code", i64::from(status));
            span.record("network.protocol.version", protocol_version(e.version));
            if status >= 400 {
                span.record("error.type", &*status.to_string());
                span.record("otel.status_code", "error");
            }
            tracing::event!(
                target: TARGET,
                parent: span,
                Level::INFO,
                { "http.response.status_code" = i64::from(status) },
                "got_first_response_byte"
            );
        });
    }

    fn finished(&self, complete: bool) {
        let span = self.slot().take();
        if let Some(span) = span {
            let outcome = if complete { "complete" } else { "incomplete" };
            span.record("nettrace.outcome", outcome);
        }
    }
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        let span = self.span.get_mut().map(Option::take);
        if let Ok(Some(span)) = span {
            span.record("nettrace.outcome", "no_response");
        }
    }
}

/// Splits `host:port` (IPv6 hosts in brackets) into the host, without brackets, and
/// the port.
fn split_host_port(host_port: &str) -> (&str, Option<u16>) {
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            (host, port.parse().ok())
        }
        _ => (host_port, None),
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a.test:80"), ("a.test", Some(80)));
        assert_eq!(split_host_port("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_host_port("noport"), ("noport", None));
    }
}
