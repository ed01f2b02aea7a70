//! Runs a traced request or dial from the flags, and classifies failures.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use nettrace::{
    ConnectError, Connector, DialError, Dialer, Family, FamilyResolving, HickoryResolver,
    HttpClient, HttpError, Resolve, ResolveErrorKind, Resolving, TimingsRecorder, TlsConfig,
};

use crate::args::{CommonArgs, Data, HttpArgs};
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
    /// the collectors' origin, or at the last event when `None`).
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

/// Runs `work` within `--max-time` (`limit`, and the seconds as given), counted from
/// `start`. When time runs out, `work` is dropped, and what it wrote into the report so far
/// stays; the moment it ran out is returned from `origin`, the collectors' zero.
async fn within(
    limit: Option<(Duration, f64)>,
    start: Instant,
    origin: Instant,
    work: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), (Failure, Option<Duration>)> {
    let Some((limit, secs)) = limit else {
        return work.await.map_err(|f| (f, None));
    };
    let deadline = start + limit;
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(result) => result.map_err(|f| (f, None)),
        Err(_) => Err((
            Failure::new(
                28,
                "timeout",
                format!("operation timed out after {secs} s (--max-time)"),
            ),
            Some(deadline.saturating_duration_since(origin)),
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

/// How long each DNS query waits for an answer from a `--dns-servers` server before it is
/// asked again (c-ares's 2 s, not glibc's 5 s: a server named on the command line is
/// usually near).
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a query that got no answer is asked again: once, so each is sent
/// twice, as glibc's default `attempts:2`.
const DNS_RETRIES: usize = 1;

/// The connection flags (`CommonArgs`), checked once: dialers for each port come from it.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    /// `--resolve` entries that are left after removals, by (lower-case host, port);
    /// host "*" is any host.
    overrides: HashMap<(String, u16), Vec<IpAddr>>,
    /// Asked for every name without an entry; clones share one cache.
    base: HickoryResolver,
    family: Option<Family>,
    connect_timeout: Option<Duration>,
    attempt_delay: Option<Duration>,
    /// `--attempt-timeout`: most time for one connection attempt.
    attempt_timeout: Option<Duration>,
    /// `--max-time`: the limit for each URL (or the dial), and the seconds as given.
    max_time: Option<(Duration, f64)>,
}

impl Net {
    /// Checks the flags: a bad one is a usage error (exit 2).
    pub(crate) fn new(common: &CommonArgs) -> Result<Net, Failure> {
        let base = match &common.dns_server {
            Some(list) => {
                let servers = crate::parse::dns_servers(list).map_err(Failure::usage)?;
                HickoryResolver::builder()
                    .name_servers(&servers)
                    .timeout(DNS_TIMEOUT)
                    .attempts(DNS_RETRIES)
                    .build()
            }
            None => HickoryResolver::builder().attempts(DNS_RETRIES).build(),
        };
        let mut overrides = HashMap::new();
        for entry in &common.resolve {
            let entry = crate::parse::resolve_entry(entry).map_err(Failure::usage)?;
            let key = (host_key(entry.host), entry.port);
            if entry.addrs.is_empty() {
                overrides.remove(&key);
            } else {
                // As curl: a later entry for one HOST:PORT replaces the earlier.
                overrides.insert(key, entry.addrs);
            }
        }
        let family = if common.ipv4 {
            Some(Family::Ipv4)
        } else if common.ipv6 {
            Some(Family::Ipv6)
        } else {
            None
        };
        let connect_timeout = match common.connect_timeout {
            Some(secs) => limit(secs, "--connect-timeout")?,
            None => None,
        };
        let attempt_timeout = match common.attempt_timeout {
            Some(secs) => limit(secs, "--attempt-timeout")?,
            None => None,
        };
        // Checked here so that a bad -m is a usage error before any URL is tried.
        let max_time = match common.max_time {
            Some(secs) => limit(secs, "--max-time")?.map(|limit| (limit, secs)),
            None => None,
        };
        Ok(Net {
            overrides,
            base,
            family,
            connect_timeout,
            attempt_delay: common.attempt_delay.map(Duration::from_millis),
            attempt_timeout,
            max_time,
        })
    }

    /// A dialer for connections to `port`: only the `--resolve` entries for that port
    /// apply, as in curl.
    pub(crate) fn dialer(&self, port: u16) -> Dialer {
        let mut names = HashMap::new();
        let mut any = None;
        for ((host, p), addrs) in &self.overrides {
            if *p != port {
                continue;
            }
            if host == "*" {
                any = Some(addrs.clone());
            } else {
                names.insert(host.clone(), addrs.clone());
            }
        }
        let resolver = Overrides {
            names,
            any,
            base: self.base.clone(),
        };
        // TCP_NODELAY on, as curl does: small request writes must not wait for the
        // server's delayed ACK.
        let mut builder = Dialer::builder().resolver(resolver).nodelay(true);
        if let Some(family) = self.family {
            builder = builder.family(family);
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(delay) = self.attempt_delay {
            builder = builder.attempt_delay(delay);
        }
        if let Some(timeout) = self.attempt_timeout {
            builder = builder.attempt_timeout(timeout);
        }
        builder.build()
    }
}

/// A name as `--resolve` entries are matched: without ASCII case or a trailing dot.
fn host_key(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// The `--resolve` entries for one port in front of the DNS resolver. An entry answers
/// both families at once, in the order given (so `127.0.0.1,::1` is tried in that order).
struct Overrides {
    names: HashMap<String, Vec<IpAddr>>,
    /// A `*` entry: every name without one of its own.
    any: Option<Vec<IpAddr>>,
    base: HickoryResolver,
}

impl Overrides {
    fn find(&self, host: &str) -> Option<Vec<IpAddr>> {
        self.names
            .get(&host_key(host))
            .or(self.any.as_ref())
            .cloned()
    }
}

impl Resolve for Overrides {
    fn resolve(&self, host: &str) -> Resolving {
        match self.find(host) {
            Some(addrs) => Box::pin(std::future::ready(Ok(addrs))),
            None => self.base.resolve(host),
        }
    }

    fn resolve_by_family(&self, host: &str) -> FamilyResolving {
        match self.find(host) {
            Some(addrs) => FamilyResolving::joint(Box::pin(std::future::ready(Ok(addrs)))),
            None => self.base.resolve_by_family(host),
        }
    }
}

/// A time limit in seconds: 0 is none, as in curl; a negative number or NaN is a usage
/// error.
pub(crate) fn limit(secs: f64, flag: &str) -> Result<Option<Duration>, Failure> {
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| Failure::usage(format!("{flag} wants a number of seconds, not {secs}")))
}

/// The port of a `dial` target (`host:port`, `[v6]:port`), to pick its `--resolve`
/// entries; 0 when there is none (the dial then reports the bad target).
fn target_port(target: &str) -> u16 {
    target
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(0)
}

/// Dials `target` and reports the connection.
pub(crate) async fn dial(target: &str, common: &CommonArgs, origin: Instant) -> Report {
    let mut report = Report {
        mode: "dial",
        ..Report::default()
    };
    let net = match Net::new(common) {
        Ok(net) => net,
        Err(failure) => {
            report.error = Some(failure);
            return report;
        }
    };
    let work = dial_hop(target, &net, origin, &mut report);
    if let Err((failure, at)) = within(net.max_time, origin, origin, work).await {
        report.end(failure, at);
    }
    report
}

async fn dial_hop(
    target: &str,
    net: &Net,
    origin: Instant,
    report: &mut Report,
) -> Result<(), Failure> {
    let dialer = net.dialer(target_port(target));
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

/// Everything the HTTP flags decide, checked once, and the clients of a run: the URLs of
/// one run share them, so a later request to an origin reuses its connection.
pub(crate) struct Session {
    net: Net,
    tls: TlsConfig,
    prior_knowledge: bool,
    /// One client per port, each with that port's `--resolve` entries (the library's
    /// resolver sees only the host). The pool is keyed by origin (scheme, host, port)
    /// anyway, so this shares connections exactly as one client would.
    clients: HashMap<u16, HttpClient<Full<Bytes>>>,
    method: Method,
    headers: Vec<Header>,
    body: Option<Bytes>,
    follow: bool,
    max_redirs: u32,
    /// `-s`: no progress line.
    silent: bool,
}

/// A `-H` header: a value to send, or the removal of a default header ("Name:").
#[derive(Debug, Clone)]
struct Header {
    name: HeaderName,
    value: Option<HeaderValue>,
}

impl Session {
    /// Checks the flags and reads the request body: a bad flag is a usage error (exit
    /// 2), an unreadable `@FILE` exit 26, an unreadable `--cacert` 77.
    pub(crate) fn new(args: &HttpArgs, common: &CommonArgs) -> Result<Session, Failure> {
        let net = Net::new(common)?;
        let headers = args
            .headers
            .iter()
            .map(|h| header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let body = body(&args.bodies)?;
        let method = match (&args.method, args.head, &body) {
            (Some(m), _, _) => Method::from_bytes(m.as_bytes())
                .map_err(|_| Failure::usage(format!("{m:?} is not an HTTP method")))?,
            (None, true, _) => Method::HEAD,
            (None, false, Some(_)) => Method::POST,
            (None, false, None) => Method::GET,
        };
        Ok(Session {
            net,
            tls: tls_config(args)?,
            prior_knowledge: args.http2_prior_knowledge,
            clients: HashMap::new(),
            method,
            headers,
            body,
            follow: args.follow,
            max_redirs: args.max_redirs,
            silent: common.silent,
        })
    }

    /// The client for URLs on `port`.
    fn client(&mut self, port: u16) -> HttpClient<Full<Bytes>> {
        let (net, tls, prior_knowledge) = (&self.net, &self.tls, self.prior_knowledge);
        self.clients
            .entry(port)
            .or_insert_with(|| {
                let mut connector = Connector::new(net.dialer(port)).tls(tls.clone());
                // As curl's --connect-timeout, which covers the TLS handshake too (the
                // dial has it as well, so together they may take up to twice as long).
                if let Some(timeout) = net.connect_timeout {
                    connector = connector.tls_handshake_timeout(timeout);
                }
                HttpClient::builder(connector)
                    .http2_only(prior_knowledge)
                    .build()
            })
            .clone()
    }

    /// Sends the request to `url` (following redirects with -L), each hop traced; the
    /// body goes to `output` (`-o`: a file, "-" for stdout, or nowhere). `--max-time`
    /// counts from now, for this URL alone, as curl's is per transfer.
    pub(crate) async fn http(
        &mut self,
        url: &str,
        output: Option<&str>,
        origin: Instant,
    ) -> Report {
        let mut report = Report {
            mode: "http",
            ..Report::default()
        };
        let (limit, start) = (self.net.max_time, Instant::now());
        let work = self.hops(url, output, origin, &mut report);
        if let Err((failure, at)) = within(limit, start, origin, work).await {
            report.end(failure, at);
        }
        report
    }

    async fn hops(
        &mut self,
        url: &str,
        output: Option<&str>,
        origin: Instant,
        report: &mut Report,
    ) -> Result<(), Failure> {
        let mut method = self.method.clone();
        let mut body = self.body.clone();
        let mut uri = parse_url(url)?;
        let mut output = Output::open(output)?;
        let mut redirects = 0;
        loop {
            let request = build_request(&method, &uri, &self.headers, body.clone());
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            let client = self.client(port);
            let collector = Collector::new(origin);
            collector.request_head(&request, self.prior_knowledge);
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
            let mut progress = crate::progress::Progress::new(response.headers(), !self.silent);
            let mut body_stream = response.into_body();
            let follow = self.follow && status.is_redirection() && location.is_some();
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
            if redirects > self.max_redirs {
                return Err(Failure::new(
                    47,
                    "too_many_redirects",
                    format!("more than {} redirects", self.max_redirs),
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
}

/// The request body of the -d, --data-binary and --data-raw flags, joined with '&' as
/// curl joins them; `None` without any.
fn body(data: &[Data]) -> Result<Option<Bytes>, Failure> {
    if data.is_empty() {
        return Ok(None);
    }
    let mut body = Vec::new();
    for (i, item) in data.iter().enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        match item {
            Data::Ascii(value) | Data::Binary(value) if value.starts_with('@') => {
                let mut content = read_data_file(&value[1..])?;
                if matches!(item, Data::Ascii(_)) {
                    // curl's -d: a file's line breaks are not part of the data.
                    content.retain(|b| *b != b'\r' && *b != b'\n');
                }
                body.extend_from_slice(&content);
            }
            Data::Ascii(value) | Data::Binary(value) | Data::Raw(value) => {
                body.extend_from_slice(value.as_bytes());
            }
        }
    }
    Ok(Some(Bytes::from(body)))
}

/// The content of a data `@FILE`; `-` is stdin.
fn read_data_file(path: &str) -> Result<Vec<u8>, Failure> {
    let mut content = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut content).map(drop)
    } else {
        std::fs::read(path).map(|c| content = c)
    };
    read.map_err(|e| Failure::new(26, "read_error", format!("could not read {path:?}: {e}")))?;
    Ok(content)
}

/// Parses a `-H` header as curl: "Name: value"; "Name:" (no value) removes a default
/// header; "Name;" sends it with an empty value.
fn header(text: &str) -> Result<Header, Failure> {
    let bad = |what: &str| Failure::usage(format!("bad header {what} in {text:?}"));
    let (name, value) = match text.split_once(':') {
        Some((name, value)) => (name, Some(value.trim())),
        None => match text.strip_suffix(';') {
            Some(name) => (name, Some("")),
            None => {
                return Err(Failure::usage(format!(
                    "-H wants \"Name: value\", not {text:?}"
                )))
            }
        },
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("name"))?;
    let value = match value {
        // "Name:" with nothing after it: curl removes the header.
        Some("") if text.contains(':') => None,
        Some(value) => Some(HeaderValue::from_str(value).map_err(|_| bad("value"))?),
        None => None,
    };
    Ok(Header { name, value })
}

fn tls_config(args: &HttpArgs) -> Result<TlsConfig, Failure> {
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
    // --http2 offers h2 and http/1.1, the default; prior knowledge offers h2 only.
    if args.http1 {
        tls = tls.http1_only();
    } else if args.http2_prior_knowledge {
        tls = tls.http2_only();
    }
    tls.build()
        .map_err(|e| Failure::new(77, "cacert", chain("bad --cacert", &e)))
}

/// A URL; `http://` is assumed when it has no scheme, as curl does. A scheme other than
/// `http` and `https` is curl's "unsupported protocol" (1), not a malformed URL (3).
pub(crate) fn parse_url(url: &str) -> Result<Uri, Failure> {
    if let Some((scheme, _)) = url.split_once("://") {
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme
            && !["http", "https"]
                .iter()
                .any(|s| scheme.eq_ignore_ascii_case(s))
        {
            return Err(Failure::new(
                1,
                "unsupported_protocol",
                format!("protocol \"{scheme}\" is not supported: only http:// and https://"),
            ));
        }
    }
    crate::parse::url(url).map_err(|message| Failure::new(3, "bad_url", message))
}

fn build_request(
    method: &Method,
    uri: &Uri,
    headers: &[Header],
    body: Option<Bytes>,
) -> Request<Full<Bytes>> {
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
    // The first -H of a name replaces the default of that name; later ones add to it,
    // so a header given twice is sent twice, as curl sends it.
    let mut given: Vec<&HeaderName> = Vec::new();
    for header in headers {
        if !given.contains(&&header.name) {
            map.remove(&header.name);
            given.push(&header.name);
        }
        if let Some(value) = &header.value {
            map.append(header.name.clone(), value.clone());
        }
    }
    request
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
    parse_url(&absolute).map_err(|f| match f.code {
        3 => Failure::new(3, "bad_redirect", format!("redirect to a {}", f.message)),
        _ => Failure::new(
            f.code,
            f.kind,
            format!("redirect to {absolute:?}: {}", f.message),
        ),
    })
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

fn request_failure(err: &HttpError) -> Failure {
    if let Some(connect) = err.connect_error() {
        return connect_failure(connect);
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
            let why = crate::tls_text::describe(source);
            if source.kind() == std::io::ErrorKind::TimedOut {
                // As curl: a handshake that did not finish in time is a timeout.
                Failure::new(
                    28,
                    "timeout",
                    format!("TLS handshake with {server_name} timed out: {why}"),
                )
            } else if crate::tls_text::is_verification_failure(source) {
                Failure::new(
                    60,
                    "tls_certificate",
                    format!("TLS handshake with {server_name} failed: {why}"),
                )
            } else {
                Failure::new(
                    35,
                    "tls",
                    format!("TLS handshake with {server_name} failed: {why}"),
                )
            }
        }
        other => Failure::new(1, "connect", chain("connecting failed", other)),
    }
}

pub(crate) fn dial_failure(err: &DialError) -> Failure {
    match err {
        DialError::InvalidAddress { .. } => Failure::new(3, "bad_address", err.to_string()),
        DialError::Resolve(resolve) => {
            // A resolver that gave up waiting for its server is curl's "could not
            // resolve" (6), not a timeout of ours (those are `DialError::Timeout`).
            let code = match resolve.kind() {
                ResolveErrorKind::InvalidName => 3,
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
