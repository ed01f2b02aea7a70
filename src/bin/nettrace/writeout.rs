//! `-w/--write-out FORMAT`: curl's variables, escapes and `%{json}`, plus ours
//! (`%{num_attempts}`, `%{attempts}`).
//!
//! [`format`] is a pure function of the format string and a [`Values`]; [`Values::from_report`]
//! fills the values from a run's [`Report`], with curl's units (seconds with six decimals)
//! and curl's answers where a thing did not happen (`0.000000`, `000`, `""`, `null`).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use crate::collect::{Hop, Outcome};
use crate::run::{HopReport, Report};

/// Where a piece of the output goes: `%{stderr}` and `%{stdout}` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// What a format string turned into.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// The text, in order, with the stream each piece goes to.
    pub(crate) pieces: Vec<(Stream, String)>,
    /// One line per unknown variable, as curl warns.
    pub(crate) warnings: Vec<String>,
}

/// One connection attempt, for `%{attempts}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptValue {
    pub(crate) addr: SocketAddr,
    /// `connected`, `refused`, `timed out`, `cancelled`, … .
    pub(crate) outcome: String,
}

/// Every value a format can ask for, for one URL (all its redirects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Values {
    /// The URL as given.
    pub(crate) url: String,
    /// The URL of the last request (after redirects).
    pub(crate) url_effective: String,
    /// The index of the URL on the command line, from 0.
    pub(crate) urlnum: usize,
    /// The method of the last request; empty for a dial.
    pub(crate) method: String,
    /// `HTTP` or `HTTPS` (curl's spelling); `None` for a dial.
    pub(crate) scheme: Option<String>,
    /// The last response's status; 0 when none came.
    pub(crate) http_code: u16,
    /// As curl prints it: `1`, `1.1`, `2`, `3`, or `0` when none came.
    pub(crate) http_version: String,
    /// The last response's headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Where a redirect that was not followed leads.
    pub(crate) redirect_url: Option<String>,
    pub(crate) num_redirects: usize,
    /// New connections made (a reused one does not count).
    pub(crate) num_connects: usize,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) local: Option<SocketAddr>,
    /// Body bytes of the last response.
    pub(crate) size_download: u64,
    /// Header bytes of every response, status lines included (rebuilt from the parsed
    /// headers: the same count as curl's for HTTP/1.1 with the usual reason phrases).
    pub(crate) size_header: u64,
    /// OpenSSL's verify result numbers, as curl reports them: 0 when verified (or plain).
    pub(crate) ssl_verify_result: u64,
    pub(crate) exitcode: u8,
    pub(crate) errormsg: Option<String>,
    /// The `-o` file.
    pub(crate) filename_effective: Option<String>,
    pub(crate) times: Times,
    pub(crate) attempts: Vec<AttemptValue>,
}

/// curl's `time_*` values; each from the start of the URL's first request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) namelookup: Duration,
    pub(crate) connect: Duration,
    pub(crate) appconnect: Duration,
    pub(crate) pretransfer: Duration,
    pub(crate) posttransfer: Duration,
    pub(crate) starttransfer: Duration,
    pub(crate) total: Duration,
    pub(crate) redirect: Duration,
    /// Waiting for a free connection slot: we never queue a request, so 0 as in curl.
    pub(crate) queue: Duration,
}

/// A value, shaped for both the text and the JSON output.
enum Value {
    Text(String),
    /// A string that curl prints as `null` in JSON and as nothing in text.
    Maybe(Option<String>),
    Number(u64),
    Seconds(Duration),
    /// `http_code`: three digits in text, a number in JSON.
    Code(u16),
}

/// Every variable `%{json}` lists, in curl's (alphabetical) order; besides these,
/// `json`, `stderr`, `stdout` and `onerror` shape the output and `%header{NAME}` reads a
/// header.
const VARIABLES: &[&str] = &[
    "attempts",
    "content_type",
    "errormsg",
    "exitcode",
    "filename_effective",
    "http_code",
    "http_version",
    "local_ip",
    "local_port",
    "method",
    "num_attempts",
    "num_connects",
    "num_headers",
    "num_redirects",
    "redirect_url",
    "remote_ip",
    "remote_port",
    "response_code",
    "scheme",
    "size_download",
    "size_header",
    "speed_download",
    "ssl_verify_result",
    "time_appconnect",
    "time_connect",
    "time_namelookup",
    "time_posttransfer",
    "time_pretransfer",
    "time_queue",
    "time_redirect",
    "time_starttransfer",
    "time_total",
    "url",
    "url_effective",
    "urlnum",
];

impl Values {
    fn get(&self, name: &str) -> Option<Value> {
        let t = &self.times;
        let ip =
            |a: Option<SocketAddr>| Value::Text(a.map(|a| a.ip().to_string()).unwrap_or_default());
        let port = |a: Option<SocketAddr>| Value::Number(a.map_or(0, |a| u64::from(a.port())));
        Some(match name {
            "attempts" => Value::Text(
                self.attempts
                    .iter()
                    .map(|a| format!("{} {}", a.addr, a.outcome))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            "content_type" => Value::Maybe(self.header("content-type").map(str::to_owned)),
            "errormsg" => Value::Maybe(self.errormsg.clone()),
            "exitcode" => Value::Number(self.exitcode.into()),
            "filename_effective" => Value::Maybe(self.filename_effective.clone()),
            "http_code" | "response_code" => Value::Code(self.http_code),
            "http_version" => Value::Text(self.http_version.clone()),
            "local_ip" => ip(self.local),
            "local_port" => port(self.local),
            "method" => Value::Text(self.method.clone()),
            "num_attempts" => Value::Number(self.attempts.len() as u64),
            "num_connects" => Value::Number(self.num_connects as u64),
            "num_headers" => Value::Number(self.headers.len() as u64),
            "num_redirects" => Value::Number(self.num_redirects as u64),
            "redirect_url" => Value::Maybe(self.redirect_url.clone()),
            "remote_ip" => ip(self.remote),
            "remote_port" => port(self.remote),
            "scheme" => Value::Maybe(self.scheme.clone()),
            "size_download" => Value::Number(self.size_download),
            "size_header" => Value::Number(self.size_header),
            "speed_download" => Value::Number(per_second(self.size_download, t.total)),
            "ssl_verify_result" => Value::Number(self.ssl_verify_result),
            "time_appconnect" => Value::Seconds(t.appconnect),
            "time_connect" => Value::Seconds(t.connect),
            "time_namelookup" => Value::Seconds(t.namelookup),
            "time_posttransfer" => Value::Seconds(t.posttransfer),
            "time_pretransfer" => Value::Seconds(t.pretransfer),
            "time_queue" => Value::Seconds(t.queue),
            "time_redirect" => Value::Seconds(t.redirect),
            "time_starttransfer" => Value::Seconds(t.starttransfer),
            "time_total" => Value::Seconds(t.total),
            "url" => Value::Text(self.url.clone()),
            "url_effective" => Value::Text(self.url_effective.clone()),
            "urlnum" => Value::Number(self.urlnum as u64),
            _ => return None,
        })
    }

    /// The last value of a response header, by case-insensitive name.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every variable as one JSON object, as curl's `%{json}`.
    fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, name) in VARIABLES.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, name);
            out.push(':');
            match self.get(name).expect("every listed variable has a value") {
                Value::Text(s) => json_string(&mut out, &s),
                Value::Maybe(Some(s)) => json_string(&mut out, &s),
                Value::Maybe(None) => out.push_str("null"),
                Value::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Code(c) => {
                    let _ = write!(out, "{c}");
                }
                Value::Seconds(d) => seconds(&mut out, d),
            }
        }
        out.push('}');
        out
    }

    /// The values of one URL's run: its hops (the request and each redirect), or the dial.
    pub(crate) fn from_report(report: &Report, urlnum: usize, output: Option<&str>) -> Values {
        let dial = report.mode == "dial";
        let mut values = Values {
            urlnum,
            exitcode: report.error.as_ref().map_or(0, |e| e.code),
            errormsg: report.error.as_ref().map(|e| e.message.clone()),
            ssl_verify_result: report
                .error
                .as_ref()
                .map_or(0, |e| verify_result(e.code, &e.message)),
            filename_effective: output.filter(|o| *o != "-").map(str::to_owned),
            http_version: "0".into(),
            ..Values::default()
        };
        let (Some(first), Some(last)) = (report.hops.first(), report.hops.last()) else {
            return values;
        };
        values.url = first.url.clone();
        values.url_effective = last.url.clone();
        values.num_redirects = report.hops.len() - 1;
        values.remote = last.hop.remote;
        values.local = last.hop.local;
        if !dial {
            values.method = last.method.clone();
            values.scheme = last
                .url
                .split_once("://")
                .map(|(scheme, _)| scheme.to_ascii_uppercase());
            values.http_code = last.status.unwrap_or(0);
            values.http_version = last.version.as_deref().map_or("0", curl_version).to_owned();
            values.headers = last.headers.clone();
            values.size_download = last.body_bytes;
            values.size_header = report.hops.iter().map(header_size).sum();
            if (300..400).contains(&values.http_code) {
                values.redirect_url = values
                    .header("location")
                    .map(|location| absolute(&last.url, location));
            }
        }
        let origin = first.hop.start.unwrap_or_default();
        let mut times = Times::default();
        for hop in &report.hops {
            let https = hop.url.starts_with("https://");
            let p = phases(hop, https && !dial);
            // As curl: each phase is counted from its own request's start and summed over
            // the redirects.
            times.namelookup += p.namelookup.unwrap_or_default();
            times.connect += p.connect.unwrap_or_default();
            times.appconnect += p.appconnect.unwrap_or_default();
            times.pretransfer += p.pretransfer.unwrap_or_default();
            times.posttransfer += p.posttransfer.unwrap_or_default();
            times.starttransfer += p.starttransfer.unwrap_or_default();
            if hop.hop.connected_at().is_some() {
                values.num_connects += 1;
            }
            values
                .attempts
                .extend(hop.hop.attempts.iter().map(|a| AttemptValue {
                    addr: a.addr,
                    outcome: attempt_outcome(a.outcome.as_ref()),
                }));
        }
        if report.hops.len() > 1 {
            times.redirect = last.hop.start.unwrap_or_default().saturating_sub(origin);
        }
        times.total = last_event(&last.hop)
            .unwrap_or_default()
            .saturating_sub(origin);
        values.times = times;
        values
    }
}

/// One request's phases, from its start.
#[derive(Default)]
struct Phases {
    namelookup: Option<Duration>,
    connect: Option<Duration>,
    appconnect: Option<Duration>,
    pretransfer: Option<Duration>,
    posttransfer: Option<Duration>,
    starttransfer: Option<Duration>,
}

fn phases(report: &HopReport, https: bool) -> Phases {
    let hop = &report.hop;
    let rel = |at: Option<Duration>| hop.since_start(at);
    let mut p = match &report.timings {
        // A request that got its response: the library's curl-compatible timings.
        Some(t) => Phases {
            // An IP literal is not looked up: curl's time is then when connecting began.
            namelookup: t.namelookup.or_else(|| t.attempts.first().map(|a| a.start)),
            connect: t.connect,
            appconnect: t.appconnect,
            pretransfer: t.pretransfer,
            posttransfer: rel(hop.wrote),
            starttransfer: t.starttransfer,
        },
        // A dial, or a request that failed: what the hooks saw.
        None => Phases {
            namelookup: rel(hop.dns.as_ref().and_then(|d| d.end))
                .or_else(|| rel(hop.attempts.first().map(|a| a.start))),
            connect: rel(hop.connected_at()),
            appconnect: rel(hop
                .tls
                .as_ref()
                .filter(|t| t.error.is_none())
                .and_then(|t| t.end)),
            pretransfer: rel(hop.got_conn),
            posttransfer: rel(hop.wrote),
            starttransfer: rel(hop.first_byte),
        },
    };
    if hop.reused {
        // As curl on a reused connection: the lookup "ends" when the connection is
        // picked, and there is no connect nor handshake.
        p.namelookup = p.pretransfer;
        p.connect = None;
        p.appconnect = None;
    }
    if !https {
        p.appconnect = None;
    }
    p
}

/// When the hop ended, or its last event if it did not.
fn last_event(hop: &Hop) -> Option<Duration> {
    hop.done.or_else(|| {
        [
            hop.start,
            hop.dns.as_ref().and_then(|d| d.end),
            hop.attempts
                .iter()
                .filter_map(|a| a.end.or(Some(a.start)))
                .max(),
            hop.tls.as_ref().and_then(|t| t.end),
            hop.got_conn,
            hop.wrote,
            hop.first_byte,
        ]
        .into_iter()
        .flatten()
        .max()
    })
}

fn attempt_outcome(outcome: Option<&Outcome>) -> String {
    let Some(outcome) = outcome else {
        return "unfinished".into();
    };
    let Some(error) = outcome.error() else {
        return outcome.name().into();
    };
    let error = error.to_ascii_lowercase();
    ["refused", "timed out", "unreachable", "reset"]
        .into_iter()
        .find(|word| error.contains(word))
        .unwrap_or("failed")
        .into()
}

/// curl's `http_version`: `1.1`, `2`, … from `HTTP/1.1`, `HTTP/2.0`, … .
fn curl_version(version: &str) -> &str {
    let number = version.strip_prefix("HTTP/").unwrap_or(version);
    match number.strip_suffix(".0") {
        Some(major) => major,
        None => number,
    }
}

/// The bytes of a response's head as HTTP/1.1 sends it: status line, headers, blank line.
fn header_size(hop: &HopReport) -> u64 {
    let Some(status) = hop.status else {
        return 0;
    };
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let version = hop.version.as_deref().unwrap_or("HTTP/1.1");
    let status_line = format!("{version} {status} {reason}\r\n").len();
    let headers: usize = hop
        .headers
        .iter()
        .map(|(k, v)| k.len() + 2 + v.len() + 2)
        .sum();
    (status_line + headers + 2) as u64
}

/// A `Location` made absolute against the URL that sent it.
fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = &rest[authority.len()..];
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    }
}

/// OpenSSL's `X509_V_ERR_*` number for a certificate our TLS stack refused, as curl's
/// `ssl_verify_result` reports it; 0 when nothing was refused.
fn verify_result(code: u8, message: &str) -> u64 {
    if code != 35 && code != 60 {
        return 0;
    }
    let m = message.to_ascii_lowercase();
    let known = [
        ("unknownissuer", 20),
        ("unknown issuer", 20),
        ("notvalidforname", 62),
        ("not valid for name", 62),
        ("expired", 10),
        ("notvalidyet", 9),
        ("not valid yet", 9),
        ("revoked", 23),
        // webpki tries each trusted CA whose name matches the issuer's; when none has
        // the key that signed, it says BadSignature where OpenSSL, which matches the key
        // identifiers too, finds no issuer.
        ("badsignature", 20),
        ("bad signature", 20),
    ];
    match known.iter().find(|(word, _)| m.contains(word)) {
        Some((_, n)) => *n,
        // Another certificate problem: X509_V_ERR_UNSPECIFIED.
        None if code == 60 || m.contains("certificate") => 1,
        None => 0,
    }
}

fn per_second(bytes: u64, time: Duration) -> u64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        (bytes as f64 / secs) as u64
    } else {
        0
    }
}

/// Seconds with six decimals, as curl prints every `time_*`.
fn seconds(out: &mut String, d: Duration) {
    let _ = write!(out, "{}.{:06}", d.as_secs(), d.subsec_micros());
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Expands `fmt` with `values`, as curl's `-w` does: `%{name}`, `%header{name}`, `%%`,
/// `\n`, `\r`, `\t`; any other `%x` or `\x` is printed as it is, and an unknown variable
/// prints nothing and a warning.
pub(crate) fn format(fmt: &str, values: &Values) -> Written {
    let mut written = Written::default();
    let mut stream = Stream::Stdout;
    let mut text = String::new();
    let mut rest = fmt;
    while let Some(c) = rest.chars().next() {
        let next = rest[c.len_utf8()..].chars().next();
        match (c, next) {
            ('%', Some('%')) => {
                text.push('%');
                rest = &rest[2..];
            }
            ('%', Some(_)) if rest.starts_with("%{") || rest.starts_with("%header{") => {
                let open = rest.find('{').expect("checked above");
                let Some(close) = rest.find('}') else {
                    // curl prints an unclosed `%{` as it is, then the rest as text.
                    text.push_str(&rest[..open + 1]);
                    rest = &rest[open + 1..];
                    continue;
                };
                let name = &rest[open + 1..close];
                rest = &rest[close + 1..];
                if open > 1 {
                    // %header{NAME}
                    text.push_str(values.header(name).unwrap_or(""));
                    continue;
                }
                match name {
                    "stdout" | "stderr" => {
                        let to = if name == "stdout" {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        };
                        if to != stream && !text.is_empty() {
                            written.pieces.push((stream, std::mem::take(&mut text)));
                        }
                        stream = to;
                    }
                    // The rest is printed only when the run failed.
                    "onerror" if values.exitcode == 0 => break,
                    "onerror" => {}
                    "json" => text.push_str(&values.json()),
                    _ => match values.get(name) {
                        Some(Value::Text(s)) | Some(Value::Maybe(Some(s))) => text.push_str(&s),
                        Some(Value::Maybe(None)) => {}
                        Some(Value::Number(n)) => {
                            let _ = write!(text, "{n}");
                        }
                        Some(Value::Code(c)) => {
                            let _ = write!(text, "{c:03}");
                        }
                        Some(Value::Seconds(d)) => seconds(&mut text, d),
                        None => written
                            .warnings
                            .push(format!("unknown --write-out variable: '{name}'")),
                    },
                }
            }
            ('\\', Some(e @ ('n' | 'r' | 't'))) => {
                text.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\t',
                });
                rest = &rest[2..];
            }
            _ => {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !text.is_empty() {
        written.pieces.push((stream, text));
    }
    written
}

/// The format an `-w` argument stands for: itself, or with `@FILE` the file's lines
/// joined (their line ends dropped, as curl does), with `@-` standard input's. Read once:
/// every URL of the run uses the same.
pub(crate) fn format_text(arg: &str) -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let Some(path) = arg.strip_prefix('@') else {
            return arg.to_owned();
        };
        let mut raw = Vec::new();
        let read = if path == "-" {
            std::io::stdin().read_to_end(&mut raw)
        } else {
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut raw))
        };
        if let Err(err) = read {
            let _ = writeln!(
                std::io::stderr(),
                "nettrace: warning: could not read the --write-out format from {path:?}: {err}"
            );
        }
        String::from_utf8_lossy(&raw)
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect()
    })
}

/// Prints `-w`'s output for one URL's report: its text to stdout (or stderr after
/// `%{stderr}`), each warning to stderr.
pub(crate) fn print(
    arg: &str,
    report: &Report,
    urlnum: usize,
    output: Option<&str>,
) -> std::io::Result<()> {
    let values = Values::from_report(report, urlnum, output);
    let written = format(format_text(arg), &values);
    for warning in &written.warnings {
        let _ = writeln!(std::io::stderr(), "nettrace: {warning}");
    }
    for (stream, text) in &written.pieces {
        match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Stream::Stderr => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Attempt;
    use crate::run::Failure;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A request that took the usual path: lookup 1 ms, connect 3 ms, TLS 10 ms, …
    fn values() -> Values {
        Values {
            url: "https://a.test/x".into(),
            url_effective: "https://a.test/y".into(),
            urlnum: 2,
            method: "GET".into(),
            scheme: Some("HTTPS".into()),
            http_code: 200,
            http_version: "2".into(),
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("x-a".into(), "1".into()),
            ],
            redirect_url: None,
            num_redirects: 1,
            num_connects: 1,
            remote: Some(addr("[::1]:443")),
            local: Some(addr("[::1]:50000")),
            size_download: 2_000_000,
            size_header: 57,
            ssl_verify_result: 0,
            exitcode: 0,
            errormsg: None,
            filename_effective: Some("out.bin".into()),
            times: Times {
                namelookup: ms(1),
                connect: ms(3),
                appconnect: ms(10),
                pretransfer: ms(11),
                posttransfer: ms(12),
                starttransfer: Duration::from_micros(20_345),
                total: ms(2000),
                redirect: ms(5),
                queue: Duration::ZERO,
            },
            attempts: vec![
                AttemptValue {
                    addr: addr("[::1]:443"),
                    outcome: "connected".into(),
                },
                AttemptValue {
                    addr: addr("127.0.0.1:443"),
                    outcome: "cancelled".into(),
                },
            ],
        }
    }

    fn text(fmt: &str, v: &Values) -> String {
        let w = format(fmt, v);
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        w.pieces.into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn each_variable_as_curl_prints_it() {
        let v = values();
        let cases = [
            ("attempts", "[::1]:443 connected, 127.0.0.1:443 cancelled"),
            ("content_type", "text/plain"),
            ("errormsg", ""),
            ("exitcode", "0"),
            ("filename_effective", "out.bin"),
            ("http_code", "200"),
            ("http_version", "2"),
            ("local_ip", "::1"),
            ("local_port", "50000"),
            ("method", "GET"),
            ("num_attempts", "2"),
            ("num_connects", "1"),
            ("num_headers", "2"),
            ("num_redirects", "1"),
            ("redirect_url", ""),
            ("remote_ip", "::1"),
            ("remote_port", "443"),
            ("response_code", "200"),
            ("scheme", "HTTPS"),
            ("size_download", "2000000"),
            ("size_header", "57"),
            ("speed_download", "1000000"),
            ("ssl_verify_result", "0"),
            ("time_appconnect", "0.010000"),
            ("time_connect", "0.003000"),
            ("time_namelookup", "0.001000"),
            ("time_posttransfer", "0.012000"),
            ("time_pretransfer", "0.011000"),
            ("time_queue", "0.000000"),
            ("time_redirect", "0.005000"),
            ("time_starttransfer", "0.020345"),
            ("time_total", "2.000000"),
            ("url", "https://a.test/x"),
            ("url_effective", "https://a.test/y"),
            ("urlnum", "2"),
        ];
        assert_eq!(
            cases.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            VARIABLES,
            "one case per variable"
        );
        for (name, want) in cases {
            assert_eq!(text(&format!("%{{{name}}}"), &v), want, "{name}");
        }
    }

    #[test]
    fn nothing_happened_prints_curls_zeros() {
        let v = Values::from_report(&Report::default(), 0, None);
        assert_eq!(
            text(
                "%{http_code} %{http_version} [%{remote_ip}] %{remote_port} %{time_total} \
                 %{num_connects} %{size_download} [%{content_type}]",
                &v
            ),
            "000 0 [] 0 0.000000 0 0 []"
        );
    }

    #[test]
    fn escapes_and_odd_syntax_as_curl() {
        let v = values();
        assert_eq!(text("a\\nb\\tc\\rd", &v), "a\nb\tc\rd");
        // Unknown escapes and `%x` are printed as they are, `\\` included.
        assert_eq!(text("\\q \\\\ %x 100%% %", &v), "\\q \\\\ %x 100% %");
        assert_eq!(text("%{http_code", &v), "%{http_code");
        assert_eq!(text("%header{X-A}|%header{nope}|", &v), "1||");
        assert_eq!(text("é%{http_code}€", &v), "é200€");
    }

    #[test]
    fn an_unknown_variable_prints_nothing_and_warns() {
        let w = format("a%{bogus}b%{}c", &values());
        assert_eq!(w.pieces, vec![(Stream::Stdout, "abc".to_owned())]);
        assert_eq!(
            w.warnings,
            [
                "unknown --write-out variable: 'bogus'",
                "unknown --write-out variable: ''"
            ]
        );
    }

    #[test]
    fn stderr_and_stdout_switch_streams() {
        let w = format("a%{stderr}b%{stderr}c%{stdout}d", &values());
        assert_eq!(
            w.pieces,
            vec![
                (Stream::Stdout, "a".to_owned()),
                (Stream::Stderr, "bc".to_owned()),
                (Stream::Stdout, "d".to_owned())
            ]
        );
    }

    #[test]
    fn onerror_stops_unless_the_run_failed() {
        let mut v = values();
        assert_eq!(text("%{http_code}%{onerror} failed", &v), "200");
        v.exitcode = 7;
        v.errormsg = Some("could not connect".into());
        assert_eq!(
            text("%{onerror}%{exitcode}: %{errormsg}", &v),
            "7: could not connect"
        );
    }

    #[test]
    fn json_lists_every_variable_in_curls_order() {
        let mut v = values();
        v.errormsg = Some("say \"hi\"\n".into());
        let json = text("%{json}", &v);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = parsed.as_object().unwrap().keys().map(|k| &**k).collect();
        let mut sorted = VARIABLES.to_vec();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert!(
            json.starts_with("{\"attempts\":\"[::1]:443 connected"),
            "{json}"
        );
        // Numbers as curl prints them: times with six decimals, the code unpadded.
        assert!(json.contains("\"time_total\":2.000000,"), "{json}");
        assert!(json.contains("\"time_queue\":0.000000,"), "{json}");
        assert!(json.contains("\"http_code\":200,"), "{json}");
        assert!(json.contains("\"redirect_url\":null,"), "{json}");
        assert!(json.contains("\"http_version\":\"2\","), "{json}");
        assert_eq!(parsed["errormsg"], "say \"hi\"\n");
        assert_eq!(parsed["remote_port"], 443);
        assert_eq!(parsed["ssl_verify_result"], 0);
    }

    fn hop(url: &str, start: u64, reused: bool) -> HopReport {
        let mut h = HopReport {
            method: "GET".into(),
            url: url.into(),
            status: Some(200),
            reason: Some("OK".into()),
            version: Some("HTTP/1.1".into()),
            headers: vec![("content-length".into(), "4".into())],
            body_bytes: 4,
            ..HopReport::default()
        };
        let at = |n: u64| Some(ms(start + n));
        h.hop.start = at(0);
        h.hop.reused = reused;
        if !reused {
            h.hop.attempts.push(Attempt {
                attempt: 0,
                addr: addr("127.0.0.1:80"),
                start: ms(start + 1),
                end: at(2),
                outcome: Some(Outcome::Connected),
            });
        }
        h.hop.got_conn = at(3);
        h.hop.wrote = at(4);
        h.hop.first_byte = at(6);
        h.hop.done = at(7);
        h.hop.remote = Some(addr("127.0.0.1:80"));
        h.hop.local = Some(addr("127.0.0.1:5000"));
        h
    }

    #[test]
    fn from_report_sums_phases_over_redirects_as_curl() {
        let mut first = hop("http://a.test/r", 100, false);
        first.status = Some(302);
        first.headers.push(("location".into(), "/x".into()));
        first.body_bytes = 0;
        let report = Report {
            mode: "http",
            hops: vec![first, hop("http://a.test/x", 110, true)],
            error: None,
            ..Report::default()
        };
        let v = Values::from_report(&report, 0, Some("-"));
        assert_eq!(v.url, "http://a.test/r");
        assert_eq!(v.url_effective, "http://a.test/x");
        assert_eq!(v.num_redirects, 1);
        assert_eq!(
            v.num_connects, 1,
            "the second request reused the connection"
        );
        assert_eq!(v.redirect_url, None, "followed");
        assert_eq!(v.filename_effective, None, "stdout");
        assert_eq!(v.http_version, "1.1");
        assert_eq!(v.size_download, 4);
        // "HTTP/1.1 302 Found\r\n" + 2 headers, then "HTTP/1.1 200 OK\r\n" + 1 header.
        let first_head = 20 + 19 + 14 + 2;
        let second_head = 17 + 19 + 2;
        assert_eq!(v.size_header, first_head + second_head);
        let t = &v.times;
        // Connecting began at 1 ms (an IP literal, no lookup); a reused connection's
        // lookup ends when it is picked (3 ms).
        assert_eq!(t.namelookup, ms(1 + 3));
        assert_eq!(t.connect, ms(2), "only the first request connected");
        assert_eq!(t.appconnect, Duration::ZERO);
        assert_eq!(t.pretransfer, ms(3 + 3));
        assert_eq!(t.posttransfer, ms(4 + 4));
        assert_eq!(t.starttransfer, ms(6 + 6));
        assert_eq!(t.redirect, ms(10));
        assert_eq!(t.total, ms(17));
        assert_eq!(text("%{attempts}", &v), "127.0.0.1:80 connected");
    }

    #[test]
    fn from_report_of_a_failure() {
        let mut h = hop("https://a.test/", 0, false);
        h.status = None;
        h.version = None;
        h.headers.clear();
        h.body_bytes = 0;
        h.hop.attempts[0].outcome =
            Some(Outcome::Failed("Connection refused (os error 111)".into()));
        h.hop.attempts.push(Attempt {
            attempt: 1,
            addr: addr("[::1]:443"),
            start: ms(2),
            end: None,
            outcome: None,
        });
        h.hop.got_conn = None;
        h.hop.wrote = None;
        h.hop.first_byte = None;
        h.hop.done = None;
        h.hop.remote = None;
        h.hop.local = None;
        let report = Report {
            mode: "http",
            hops: vec![h],
            error: Some(Failure::new(7, "connect", "could not connect")),
            ..Report::default()
        };
        let v = Values::from_report(&report, 0, None);
        assert_eq!(
            text(
                "%{http_code} %{exitcode} %{num_connects} %{time_connect} %{time_total}",
                &v
            ),
            "000 7 0 0.000000 0.002000"
        );
        assert_eq!(
            text("%{num_attempts}: %{attempts}", &v),
            "2: 127.0.0.1:80 refused, [::1]:443 unfinished"
        );
        assert_eq!(text("%{errormsg}", &v), "could not connect");
    }

    #[test]
    fn a_refused_certificate_has_curls_verify_number() {
        assert_eq!(verify_result(0, ""), 0);
        assert_eq!(
            verify_result(60, "invalid peer certificate: UnknownIssuer"),
            20
        );
        assert_eq!(
            verify_result(35, "invalid peer certificate: UnknownIssuer"),
            20
        );
        assert_eq!(
            verify_result(60, "certificate expired: verification time 1, but …"),
            10
        );
        assert_eq!(
            verify_result(60, "invalid peer certificate: NotValidForName"),
            62
        );
        assert_eq!(verify_result(60, "something else"), 1);
        assert_eq!(
            verify_result(35, "received fatal alert: HandshakeFailure"),
            0
        );
    }

    #[test]
    fn locations_are_made_absolute() {
        assert_eq!(absolute("http://a.test/p/q?x", "r"), "http://a.test/p/r");
        assert_eq!(absolute("http://a.test:8/p", "/r"), "http://a.test:8/r");
        assert_eq!(
            absolute("https://a.test/", "//b.test/r"),
            "https://b.test/r"
        );
        assert_eq!(absolute("http://a.test", "r"), "http://a.test/r");
        assert_eq!(
            absolute("http://a.test/", "https://c.test/"),
            "https://c.test/"
        );
    }

    #[test]
    fn curl_versions() {
        assert_eq!(curl_version("HTTP/1.1"), "1.1");
        assert_eq!(curl_version("HTTP/1.0"), "1");
        assert_eq!(curl_version("HTTP/2.0"), "2");
        assert_eq!(curl_version("HTTP/3.0"), "3");
    }
}
