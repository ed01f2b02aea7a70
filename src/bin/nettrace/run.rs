//! Runs a traced request or dial from the flags, and classifies failures.

use std::error::Error as StdError;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nettrace::{
    ConnectError, Connector, DialError, Dialer, Family, HickoryResolver, HttpClient, Resolve,
    ResolveErrorKind, StaticResolver, TimingsRecorder, TlsConfig,
};

use crate::args::{CommonArgs, HttpArgs};
use crate::collect::{Collector, Hop};

/// Why a run failed, with the exit code that says so.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::new(2, "usage", message)
    }
}

/// What one run did: its hops (one per request, or the dial), and how it ended.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) hops: Vec<HopReport>,
    pub(crate) error: Option<Failure>,
    /// The collector of the last hop while it is under way, so that a run cut short by
    /// `--max-time` still shows what that hop did.
    pub(crate) pending: Option<Collector>,
}

impl Report {
    /// Records how the run ended; a timeout marks the phase it cut short (at `at`, from
    /// the run's start, or at the last event when `None`).
    fn end(&mut self, failure: Failure, at: Option<Duration>) {
        if let Some(collector) = self.pending.take() {
            if let Some(last) = self.hops.last_mut() {
                last.hop = collector.hop();
            }
        }
        if failure.code == 28 {
            if let Some(last) = self.hops.last_mut() {
                last.hop.time_out(at);
            }
        }
        self.error = Some(failure);
    }
}

/// `--max-time`: the limit, from the run's start; 0 means none, as in curl.
fn max_time(common: &CommonArgs) -> Result<Option<(Duration, f64)>, Failure> {
    match common.max_time {
        None | Some(0.0) => Ok(None),
        Some(secs) => Ok(Some((seconds(secs, "--max-time")?, secs))),
    }
}

/// Runs `work` within `--max-time`, counted from `origin`. When time runs out, `work` is
/// dropped, and what it wrote into the report so far stays.
async fn within(
    common: &CommonArgs,
    origin: Instant,
    work: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), (Failure, Option<Duration>)> {
    let limit = max_time(common).map_err(|f| (f, None))?;
    let Some((limit, secs)) = limit else {
        return work.await.map_err(|f| (f, None));
    };
    match tokio::time::timeout_at((origin + limit).into(), work).await {
        Ok(result) => result.map_err(|f| (f, None)),
        Err(_) => Err((
            Failure::new(
                28,
                "timeout",
                format!("operation timed out after {secs} s (--max-time)"),
            ),
            Some(limit),
        )),
    }
}

#[derive(Debug, Default)]
pub(crate) struct HopReport {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) hop: Hop,
    pub(crate) status: Option<u16>,
    pub(crate) reason: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body_bytes: u64,
    /// The library's curl-compatible timings of a request (none for a dial).
    pub(crate) timings: Option<nettrace::Timings>,
}

/// The flags that shape a dialer.
pub(crate) fn dialer(common: &CommonArgs) -> Result<Dialer, Failure> {
    let base: Box<dyn Resolve> = match &common.dns_server {
        Some(server) => {
            let addr: SocketAddr = server.parse().map_err(|_| {
                Failure::usage(format!("--dns-server wants IP:PORT, not {server:?}"))
            })?;
            Box::new(HickoryResolver::with_name_servers(&[addr]))
        }
        None => Box::new(HickoryResolver::system()),
    };
    let mut overrides = StaticResolver::new();
    for entry in &common.resolve {
        let (host, addr) = crate::parse::resolve_entry(entry).map_err(Failure::usage)?;
        overrides = overrides.insert(host, [addr]);
    }
    // TCP_NODELAY on, as curl does: small request writes must not wait for the
    // server's delayed ACK.
    let mut builder = Dialer::builder()
        .resolver(overrides.fallback(base))
        .nodelay(true);
    if common.ipv4 {
        builder = builder.family(Family::Ipv4);
    } else if common.ipv6 {
        builder = builder.family(Family::Ipv6);
    }
    if let Some(secs) = common.connect_timeout {
        builder = builder.timeout(seconds(secs, "--connect-timeout")?);
    }
    if let Some(ms) = common.attempt_delay {
        builder = builder.attempt_delay(Duration::from_millis(ms));
    }
    if let Some(secs) = common.attempt_timeout {
        builder = builder.attempt_timeout(seconds(secs, "--attempt-timeout")?);
    }
    Ok(builder.build())
}

pub(crate) fn seconds(secs: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| Failure::usage(format!("{flag} wants a number of seconds, not {secs}")))
}

/// Dials `target` and reports the connection.
pub(crate) async fn dial(target: &str, common: &CommonArgs, origin: Instant) -> Report {
    let mut report = Report {
        mode: "dial",
        ..Report::default()
    };
    if let Err((failure, at)) = within(
        common,
        origin,
        dial_hop(target, common, origin, &mut report),
    )
    .await
    {
        report.end(failure, at);
    }
    report
}

async fn dial_hop(
    target: &str,
    common: &CommonArgs,
    origin: Instant,
    report: &mut Report,
) -> Result<(), Failure> {
    let dialer = dialer(common)?;
    let collector = Collector::new(origin);
    collector.start();
    report.hops.push(HopReport {
        method: "DIAL".into(),
        url: target.to_owned(),
        ..HopReport::default()
    });
    report.pending = Some(collector.clone());
    let result = nettrace::with_trace(collector.net_trace(), dialer.dial(target)).await;
    collector.done();
    report.pending = None;
    let hop = report.hops.last_mut().expect("pushed above");
    hop.hop = collector.hop();
    let stream = result.map_err(|err| dial_failure(&err))?;
    hop.hop.remote = stream.peer_addr().ok();
    hop.hop.local = stream.local_addr().ok();
    Ok(())
}

/// Sends the request (following redirects with -L), each hop traced.
pub(crate) async fn http(
    url: &str,
    args: &HttpArgs,
    common: &CommonArgs,
    origin: Instant,
) -> Report {
    let mut report = Report {
        mode: "http",
        ..Report::default()
    };
    let work = http_hops(url, args, common, origin, &mut report);
    if let Err((failure, at)) = within(common, origin, work).await {
        report.end(failure, at);
    }
    report
}

async fn http_hops(
    url: &str,
    args: &HttpArgs,
    common: &CommonArgs,
    origin: Instant,
    report: &mut Report,
) -> Result<(), Failure> {
    let client = client(args, common)?;
    let body = match &args.data {
        Some(data) => Some(match data.strip_prefix('@') {
            Some(path) => Bytes::from(std::fs::read(path).map_err(|e| {
                Failure::new(26, "read_error", format!("could not read {path:?}: {e}"))
            })?),
            None => Bytes::from(data.clone()),
        }),
        None => None,
    };
    let mut method = match (&args.method, args.head, &body) {
        (Some(m), _, _) => Method::from_bytes(m.as_bytes())
            .map_err(|_| Failure::usage(format!("{m:?} is not an HTTP method")))?,
        (None, true, _) => Method::HEAD,
        (None, false, Some(_)) => Method::POST,
        (None, false, None) => Method::GET,
    };
    let mut body = body;
    let mut uri = parse_url(url)?;
    let mut output = Output::open(args.output.as_deref())?;
    let mut redirects = 0;
    loop {
        let request = build_request(&method, &uri, &args.headers, body.clone())?;
        let collector = Collector::new(origin);
        collector.request_head(&request);
        let recorder = TimingsRecorder::new();
        let trace = recorder.trace().and(collector.http_trace());
        report.hops.push(HopReport {
            method: method.to_string(),
            url: uri.to_string(),
            ..HopReport::default()
        });
        report.pending = Some(collector.clone());
        let response = client.send(request, trace).await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                // `end` takes the hop's events from `pending`.
                return Err(request_failure(&err));
            }
        };
        collector.response_head(&response);
        let hop = report.hops.last_mut().expect("pushed above");
        hop.status = Some(response.status().as_u16());
        hop.reason = response.status().canonical_reason().map(str::to_owned);
        hop.version = Some(format!("{:?}", response.version()));
        hop.headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let status = response.status();
        let mut progress = crate::progress::Progress::new(response.headers());
        let mut body_stream = response.into_body();
        let follow = args.follow && status.is_redirection() && location.is_some();
        while let Some(frame) = body_stream.frame().await {
            let frame = frame.map_err(|e| {
                Failure::new(56, "recv_error", chain("receiving the body failed", &e))
            })?;
            if let Ok(data) = frame.into_data() {
                hop.body_bytes += data.len() as u64;
                progress.update(hop.body_bytes);
                if !follow {
                    output.write(&data)?;
                }
            }
        }
        progress.finish();
        collector.done();
        report.pending = None;
        hop.hop = collector.hop();
        hop.timings = Some(recorder.timings());
        if !follow {
            return Ok(());
        }
        redirects += 1;
        if redirects > args.max_redirs {
            return Err(Failure::new(
                47,
                "too_many_redirects",
                format!("more than {} redirects", args.max_redirs),
            ));
        }
        uri = resolve_location(&uri, location.as_deref().unwrap_or("/"))?;
        // As curl: a 303, or a 301/302 after a POST, turns the request into a GET.
        if status == 303 || ((status == 301 || status == 302) && method == Method::POST) {
            method = Method::GET;
            body = None;
        }
    }
}

fn client(args: &HttpArgs, common: &CommonArgs) -> Result<HttpClient<Full<Bytes>>, Failure> {
    let mut tls = TlsConfig::builder();
    if args.insecure {
        tls = tls.danger_accept_invalid_certs(true);
    }
    if let Some(path) = &args.cacert {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                77,
                "cacert",
                format!("could not read {}: {e}", path.display()),
            )
        })?;
        tls = tls.webpki_roots(false).add_root_pem(&pem);
    }
    if let Some(pem) = &args.ca_pem {
        tls = tls.add_root_pem(pem);
    }
    if args.http1 {
        tls = tls.http1_only();
    } else if args.http2 {
        tls = tls.http2_only();
    }
    let tls = tls
        .build()
        .map_err(|e| Failure::new(77, "cacert", chain("bad --cacert", &e)))?;
    let connector = Connector::new(dialer(common)?).tls(tls);
    let mut builder = Client::builder(TokioExecutor::new());
    if args.http2 {
        builder.http2_only(true);
    }
    Ok(HttpClient::from_builder(&builder, connector))
}

/// A URL; `http://` is assumed when it has no scheme, as curl does.
pub(crate) fn parse_url(url: &str) -> Result<Uri, Failure> {
    crate::parse::url(url).map_err(|message| Failure::new(3, "bad_url", message))
}

fn build_request(
    method: &Method,
    uri: &Uri,
    headers: &[String],
    body: Option<Bytes>,
) -> Result<Request<Full<Bytes>>, Failure> {
    let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    let map = request.headers_mut();
    map.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("nettrace/", env!("CARGO_PKG_VERSION"))),
    );
    map.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    if body.is_some() {
        map.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::usage(format!("-H wants \"Name: value\", not {header:?}")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Failure::usage(format!("bad header name in {header:?}")))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| Failure::usage(format!("bad header value in {header:?}")))?;
        map.insert(name, value);
    }
    Ok(request)
}

/// Resolves a `Location` against the URL that returned it.
fn resolve_location(base: &Uri, location: &str) -> Result<Uri, Failure> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let absolute = if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{scheme}://{authority}{dir}{location}")
    };
    parse_url(&absolute)
        .map_err(|f| Failure::new(3, "bad_redirect", format!("redirect to a {}", f.message)))
}

/// Where the body goes.
enum Output {
    Discard,
    Stdout,
    File(std::fs::File, String),
}

impl Output {
    fn open(path: Option<&str>) -> Result<Output, Failure> {
        match path {
            None => Ok(Output::Discard),
            Some("-") => Ok(Output::Stdout),
            Some(path) => std::fs::File::create(path)
                .map(|f| Output::File(f, path.to_owned()))
                .map_err(|e| {
                    Failure::new(23, "write_error", format!("could not create {path:?}: {e}"))
                }),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        let result = match self {
            Output::Discard => Ok(()),
            Output::Stdout => std::io::stdout().write_all(data),
            Output::File(file, _) => file.write_all(data),
        };
        result.map_err(|e| match (e.kind(), &*self) {
            (std::io::ErrorKind::BrokenPipe, _) => Failure::new(0, "broken_pipe", "stdout closed"),
            (_, Output::File(_, path)) => {
                Failure::new(23, "write_error", format!("could not write {path:?}: {e}"))
            }
            _ => Failure::new(23, "write_error", format!("could not write the body: {e}")),
        })
    }
}

/// The message of `err` and its causes, on one line.
pub(crate) fn chain(context: &str, err: &(dyn StdError + 'static)) -> String {
    let mut message = format!("{context}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn request_failure(err: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return connect_failure(connect);
        }
        source = cause.source();
    }
    Failure::new(1, "http", chain("request failed", err))
}

fn connect_failure(err: &ConnectError) -> Failure {
    match err {
        ConnectError::Dial(dial) => dial_failure(dial),
        ConnectError::InvalidUri { .. } => Failure::new(3, "bad_url", err.to_string()),
        ConnectError::Tls {
            server_name,
            source,
            ..
        } => {
            let why = source
                .get_ref()
                .map_or_else(|| source.to_string(), |inner| inner.to_string());
            Failure::new(
                35,
                "tls",
                format!("TLS handshake with {server_name} failed: {why}"),
            )
        }
        other => Failure::new(1, "connect", chain("connecting failed", other)),
    }
}

pub(crate) fn dial_failure(err: &DialError) -> Failure {
    match err {
        DialError::InvalidAddress { .. } => Failure::new(3, "bad_address", err.to_string()),
        DialError::Resolve(resolve) => {
            let code = match resolve.kind() {
                ResolveErrorKind::InvalidName => 3,
                ResolveErrorKind::TimedOut => 28,
                _ => 6,
            };
            Failure::new(
                code,
                "resolve",
                format!("could not resolve host: {resolve}"),
            )
        }
        DialError::NoAddresses { .. } => Failure::new(6, "resolve", err.to_string()),
        DialError::AllAttemptsFailed { attempts, .. } => {
            let timed_out = attempts
                .iter()
                .all(|(_, e)| e.kind() == std::io::ErrorKind::TimedOut);
            Failure::new(
                if timed_out { 28 } else { 7 },
                "connect",
                format!(
                    "could not connect: {}",
                    crate::render::attempts_summary(attempts)
                ),
            )
        }
        DialError::Timeout { after, started, .. } => Failure::new(
            28,
            "timeout",
            format!(
                "connection timed out after {} ms ({} attempt{} started)",
                after.as_millis(),
                started.len(),
                if started.len() == 1 { "" } else { "s" }
            ),
        ),
        other => Failure::new(1, "dial", other.to_string()),
    }
}
