//! `HttpTrace::tracing()`: one `http.request` span per request, the network spans as its
//! children.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Uri, Version};
use tracing::field::Empty;
use tracing::{Level, Span};

use super::{OtelName, Parent, Spans, TARGET};
use crate::http::{
    GetConn, GotConn, GotFirstResponseByte, HttpTrace, RequestId, WaitForConn, WroteRequest,
};

impl HttpTrace {
    /// Returns an HTTP trace that makes a span for the request, from the moment it asks
    /// for a connection until its response body has been read (or dropped), with the
    /// spans of getting its connection as children. Use it for one request at a time.
    ///
    /// With `tracing-opentelemetry`, the spans follow the OpenTelemetry HTTP client and
    /// connection-setup conventions (1.44):
    ///
    /// | `tracing` name | OpenTelemetry name, kind | fields |
    /// |---|---|---|
    /// | `http.request` | `{method}` (`HTTP` for a method the conventions do not know), CLIENT | `http.request.method` (`_OTHER` and `http.request.method_original` for an unknown one), `url.full` (credentials and signature query values as `REDACTED`), `url.scheme`, `server.address`, `server.port`, `nettrace.request_id`; as the request proceeds `network.peer.address`, `network.peer.port`, `nettrace.reused`, `http.response.status_code`, `network.protocol.name` (`"http"`), `network.protocol.version` (`"1.1"`, `"2"`), and at its end `nettrace.outcome`: `"complete"` (the body was read to its end), `"incomplete"` (the body was dropped early or failed), `"failed"` (the request failed: `error.type` is then `"timeout"`, `"name_resolution_error"`, `"connection_error"`, `"secure_connection_error"`, `"http_protocol_error"` or `"invalid_uri"`, as .NET's `HttpRequestError` names them, and the span's status is error) or `"no_response"` (the request was dropped before the response head arrived; the span then ends when the request lets go of its trace) |
    /// | `http.wait_for_connection` | `HTTP wait_for_connection {server.address}:{server.port}`, INTERNAL | `server.address`, `server.port`, `nettrace.request_id`, `nettrace.dialing` (the request dials a connection of its own while it waits); from [`WaitForConn`](crate::WaitForConn) to the request's [`GotConn`](crate::GotConn), `nettrace.outcome` `"got_conn"`, or `"abandoned"` when the request ended first |
    /// | `http.connection_setup` | `HTTP connection_setup {server.address}:{server.port}`, INTERNAL | the connection the request dials, with its lookup, attempts and TLS handshake as children (see [`NetTrace::tracing`](crate::NetTrace::tracing)); a dial the request started but did not use ends `"detached"` when the request ends |
    ///
    /// The request's span is a child of the span current when the request is first
    /// polled; the others hang under it, and the network spans under their setup by
    /// the id of its dial. A status of 400 or more sets `error.type` to the status code
    /// and `otel.status_code = "error"`, as the HTTP client conventions say. The request
    /// span also gets the events `got_conn`, `wrote_request` and
    /// `got_first_response_byte`, at level `INFO`. Events of another request than the
    /// one in flight (the trace shared by mistake) are not recorded into it.
    ///
    /// Do not also install [`NetTrace::tracing`](crate::NetTrace::tracing) around the
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
    /// let names: Vec<String> = spans.iter().map(|s| s.name.to_string()).collect();
    /// let at = |what: &str| format!("{what} 127.0.0.1:{}", addr.port());
    /// assert_eq!(
    ///     names,
    ///     [
    ///         at("socket connect"),
    ///         at("HTTP connection_setup"),
    ///         at("HTTP wait_for_connection"),
    ///         "GET".to_owned(),
    ///     ]
    /// );
    /// // request <- connection setup <- socket connect, by ids.
    /// assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    /// assert_eq!(spans[1].parent_span_id, spans[3].span_context.span_id());
    /// assert_eq!(spans[3].span_kind, opentelemetry::trace::SpanKind::Client);
    /// let status = spans[3]
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
        let (a, b, c, d, w) = (
            request.clone(),
            request.clone(),
            request.clone(),
            request.clone(),
            request.clone(),
        );
        HttpTrace::new()
            .on_get_conn(move |e| a.get_conn(e))
            .on_wait_for_conn(move |e| w.wait_for_conn(e))
            .net(net)
            .on_got_conn(move |e| b.got_conn(e))
            .on_wrote_request(move |e| c.wrote_request(e))
            .on_got_first_response_byte(move |e| d.first_byte(e))
            .on_finished(move |e| request.finished(e.complete, e.error))
    }
}

/// The request in flight and its spans. The HTTP hooks own them; the network hooks only
/// look at the request's span, so it closes when the request is done with its trace even
/// if a connect it started goes on in the background.
#[derive(Default)]
pub(super) struct RequestSpan {
    current: Mutex<Option<Current>>,
}

struct Current {
    request: RequestId,
    span: Span,
    /// `http.wait_for_connection`, from `WaitForConn` to `GotConn`.
    wait: Option<Span>,
}

impl RequestSpan {
    pub(super) fn span(&self) -> Option<Span> {
        self.slot().as_ref().map(|c| c.span.clone())
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // Only clones, swaps and takes happen under this lock.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the span of `request` if it is the one open, outside the lock.
    fn with(&self, request: RequestId, f: impl FnOnce(&Span)) {
        let span = self
            .slot()
            .as_ref()
            .filter(|c| c.request == request)
            .map(|c| c.span.clone());
        if let Some(span) = span {
            f(&span);
        }
    }

    fn get_conn(&self, e: &GetConn<'_>) {
        let (host, port) = split_host_port(e.host_port);
        let (method, original) = match known_method(e.method) {
            Some(method) => (method, None),
            None => ("_OTHER", Some(e.method.as_str())),
        };
        let span = tracing::info_span!(
            target: TARGET,
            "http.request",
            // `{method}`, or `HTTP` for a method the conventions do not know.
            "otel.name" = original.map_or(method, |_| "HTTP"),
            "otel.kind" = "client",
            "http.request.method" = method,
            "http.request.method_original" = original,
            "url.full" = %FullUrl(e.uri),
            "url.scheme" = e.uri.scheme_str(),
            "server.address" = host,
            "server.port" = port.map(i64::from),
            "network.peer.address" = Empty,
            "network.peer.port" = Empty,
            "network.protocol.name" = "http",
            "network.protocol.version" = Empty,
            "http.response.status_code" = Empty,
            "nettrace.request_id" = i64::try_from(e.request.as_u64()).unwrap_or(i64::MAX),
            "nettrace.reused" = Empty,
            "nettrace.outcome" = Empty,
            "error.type" = Empty,
            "otel.status_code" = Empty,
        );
        let current = (!span.is_disabled()).then_some(Current {
            request: e.request,
            span,
            wait: None,
        });
        let previous = std::mem::replace(&mut *self.slot(), current);
        if let Some(previous) = previous {
            previous.end("no_response");
        }
    }

    fn wait_for_conn(&self, e: &WaitForConn<'_>) {
        let parent = match &*self.slot() {
            Some(c) if c.request == e.request && c.wait.is_none() => c.span.clone(),
            _ => return,
        };
        let (host, port) = split_host_port(e.host_port);
        let span = tracing::info_span!(
            target: TARGET,
            parent: &parent,
            "http.wait_for_connection",
            "otel.name" = %OtelName("HTTP wait_for_connection", Some(host), port),
            "otel.kind" = "internal",
            "server.address" = host,
            "server.port" = port.map(i64::from),
            "nettrace.request_id" = i64::try_from(e.request.as_u64()).unwrap_or(i64::MAX),
            "nettrace.dialing" = e.dialing,
            "nettrace.outcome" = Empty,
        );
        let mut slot = self.slot();
        match &mut *slot {
            Some(c) if c.request == e.request && c.wait.is_none() => c.wait = Some(span),
            _ => {
                drop(slot);
                span.record("nettrace.outcome", "abandoned");
            }
        }
    }

    fn got_conn(&self, e: &GotConn) {
        let wait = match &mut *self.slot() {
            Some(c) if c.request == e.request => c.wait.take(),
            _ => None,
        };
        if let Some(wait) = wait {
            wait.record("nettrace.outcome", "got_conn");
        }
        self.with(e.request, |span| {
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

    fn wrote_request(&self, e: &WroteRequest) {
        self.with(
            e.request,
            |span| tracing::info!(target: TARGET, parent: span, "wrote_request"),
        );
    }

    fn first_byte(&self, e: &GotFirstResponseByte) {
        self.with(e.request, |span| {
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

    fn finished(&self, complete: bool, error: Option<&'static str>) {
        let current = self.slot().take();
        let Some(current) = current else {
            return;
        };
        match error {
            Some(error) => {
                current.span.record("error.type", error);
                current.span.record("otel.status_code", "error");
                current.end("failed");
            }
            None => current.end(if complete { "complete" } else { "incomplete" }),
        }
    }
}

impl Current {
    /// Ends the request's spans: a wait still open is abandoned.
    fn end(self, outcome: &str) {
        if let Some(wait) = self.wait {
            wait.record("nettrace.outcome", "abandoned");
        }
        self.span.record("nettrace.outcome", outcome);
    }
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        let current = self.current.get_mut().map(Option::take);
        if let Ok(Some(current)) = current {
            current.end("no_response");
        }
    }
}

/// The methods the HTTP conventions know, as `http.request.method` gives them; any
/// other is `_OTHER` (with `http.request.method_original`).
fn known_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => return None,
    })
}

/// `url.full` as the conventions want it: credentials in the authority become
/// `REDACTED:REDACTED`, and the values of the query parameters they list as sensitive
/// (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`) become `REDACTED`.
struct FullUrl<'a>(&'a Uri);

impl fmt::Display for FullUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            match authority.as_str().rsplit_once('@') {
                Some((_, host)) => write!(f, "REDACTED:REDACTED@{host}")?,
                None => f.write_str(authority.as_str())?,
            }
        }
        f.write_str(uri.path())?;
        if let Some(query) = uri.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _)) if SENSITIVE_QUERY_KEYS.contains(&key) => {
                        write!(f, "{key}=REDACTED")?
                    }
                    _ => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

const SENSITIVE_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

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
    fn full_urls_hide_credentials_and_signatures() {
        let full = |uri: &str| FullUrl(&uri.parse().unwrap()).to_string();
        assert_eq!(full("http://a.test:8080/x?y=1"), "http://a.test:8080/x?y=1");
        assert_eq!(
            full("https://user:pw@a.test/p?sig=abc&q=1&Signature=s"),
            "https://REDACTED:REDACTED@a.test/p?sig=REDACTED&q=1&Signature=REDACTED"
        );
        assert_eq!(full("http://[::1]:80/"), "http://[::1]:80/");
    }

    #[test]
    fn methods_the_conventions_know() {
        assert_eq!(known_method(&Method::PATCH), Some("PATCH"));
        assert_eq!(known_method(&Method::from_bytes(b"PURGE").unwrap()), None);
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a.test:80"), ("a.test", Some(80)));
        assert_eq!(split_host_port("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_host_port("noport"), ("noport", None));
    }
}
