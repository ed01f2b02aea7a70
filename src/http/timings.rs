//! [`Timings`]: curl-compatible phase times of one request, and the recorder that makes
//! them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{StatusCode, Version};
use tokio::time::Instant;

use super::trace::{GotConn, HttpTrace};
use crate::pool::RecordedOutcome;

/// How long each phase of one request took, as curl's `-w` variables report them:
/// cumulative durations from the start of the request.
///
/// The request starts when its future is first polled (`get_conn`). Then:
///
/// | field | curl | ends when |
/// |---|---|---|
/// | `dns_answer_ipv6` | — | the lookup's AAAA answer arrived |
/// | `dns_answer_ipv4` | — | the lookup's A answer arrived |
/// | `namelookup` | `time_namelookup` | the DNS lookup of a new connection ended |
/// | `connect` | `time_connect` | its TCP connection was established |
/// | `appconnect` | `time_appconnect` | its TLS handshake was done |
/// | `pretransfer` | `time_pretransfer` | the request got its connection and is about to be sent |
/// | `starttransfer` | `time_starttransfer` | the response head arrived |
/// | `total` | `time_total` | the response body was read to its end |
///
/// The lookup asks for AAAA and A records in parallel (RFC 8305 §3), and each family's
/// answer ([`DnsAnswer`](crate::DnsAnswer)) has its own time: the later of the two is
/// usually `namelookup`. A family's time is `None` when it never answered: the dial
/// connected, failed or was dropped before it came (its `DnsAnswer` then has the
/// [`Cancelled`](crate::ResolveErrorKind::Cancelled) error kind), or the dial asks for
/// one family only. An answer that is an error (a name with no AAAA records, say) still
/// has its time.
///
/// A phase that did not happen is `None`: no lookup for an IP literal, no TLS for
/// `http`, and none of the first three on a reused connection (curl prints those as the
/// few microseconds it took to pick the connection; `None` says what happened).
/// `total` is `None` until the body has been read (or dropped) and `starttransfer`
/// until the head arrived. When a request gets a new connection that another request
/// started dialing earlier, phases that ended before this request started count as 0.
///
/// # Examples
///
/// ```
/// let timings = nettrace::Timings::default();
/// assert!(timings.total.is_none() && !timings.reused);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Until the request had a connection, when it waited for one it did not dial itself
    /// (curl `time_queue`): an HTTP/2 connection another request was dialing, or an
    /// HTTP/1.1 one another request freed. `None` when it took an idle connection at once
    /// or used its own new one.
    pub queue: Option<Duration>,
    /// Until the lookup's AAAA (IPv6) answer arrived; `None` if it never did.
    pub dns_answer_ipv6: Option<Duration>,
    /// Until the lookup's A (IPv4) answer arrived; `None` if it never did.
    pub dns_answer_ipv4: Option<Duration>,
    /// Until the name was resolved (curl `time_namelookup`).
    pub namelookup: Option<Duration>,
    /// Until the TCP connection was made (curl `time_connect`).
    pub connect: Option<Duration>,
    /// Until the TLS handshake was done (curl `time_appconnect`).
    pub appconnect: Option<Duration>,
    /// Until the request was about to be sent on its connection (curl `time_pretransfer`).
    pub pretransfer: Option<Duration>,
    /// Until the response head arrived (curl `time_starttransfer`).
    pub starttransfer: Option<Duration>,
    /// Until the response body ended (curl `time_total`).
    pub total: Option<Duration>,
    /// Whether the connection had served an earlier request.
    pub reused: bool,
    /// Every connection attempt of the new connection's dial, in attempt order; empty on
    /// a reused connection.
    pub attempts: Vec<AttemptTiming>,
    /// The peer's address.
    pub remote_addr: Option<SocketAddr>,
    /// The local address.
    pub local_addr: Option<SocketAddr>,
    /// The TLS version, as `"TLSv1.3"`.
    pub tls_version: Option<&'static str>,
    /// The TLS cipher suite, as its IANA name.
    pub tls_cipher: Option<&'static str>,
    /// The ALPN protocol TLS negotiated.
    pub alpn: Option<Vec<u8>>,
    /// The HTTP version of the response.
    pub http_version: Option<Version>,
    /// The response status.
    pub status: Option<StatusCode>,
}

/// The curl `-w` variables these timings answer, one `name: seconds` line each, in the
/// order the phases end: `time_queue`, `time_namelookup`, `time_connect`,
/// `time_appconnect`, `time_pretransfer`, `time_starttransfer`, `time_total`. Seconds have
/// six decimals, as curl's `%{time_namelookup}`; a phase that did not happen (`None`)
/// prints `0.000000`, as curl prints `time_appconnect` for plain `http` (on a reused
/// connection curl prints the few microseconds it took to pick the connection for
/// `time_namelookup` and `time_connect`; these timings print 0). No newline at the end.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let mut timings = nettrace::Timings::default();
/// timings.namelookup = Some(Duration::from_micros(123));
/// timings.total = Some(Duration::from_millis(1500));
/// let text = timings.to_string();
/// assert_eq!(text.lines().nth(1), Some("time_namelookup: 0.000123"));
/// assert_eq!(text.lines().last(), Some("time_total: 1.500000"));
/// ```
impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = [
            ("time_queue", self.queue),
            ("time_namelookup", self.namelookup),
            ("time_connect", self.connect),
            ("time_appconnect", self.appconnect),
            ("time_pretransfer", self.pretransfer),
            ("time_starttransfer", self.starttransfer),
            ("time_total", self.total),
        ];
        for (i, (name, time)) in lines.into_iter().enumerate() {
            let time = time.unwrap_or_default();
            let newline = if i == 0 { "" } else { "\n" };
            write!(
                f,
                "{newline}{name}: {}.{:06}",
                time.as_secs(),
                time.subsec_micros()
            )?;
        }
        Ok(())
    }
}

/// One connection attempt, within [`Timings::attempts`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptTiming {
    /// The address dialed.
    pub addr: SocketAddr,
    /// The attempt's index within its dial.
    pub attempt: usize,
    /// When it started, from the start of the request.
    pub start: Duration,
    /// When it ended, from the start of the request.
    pub end: Option<Duration>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// How an attempt in [`Timings::attempts`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It connected; the request used it.
    Connected,
    /// It failed.
    Failed {
        /// The kind of the error.
        kind: io::ErrorKind,
        /// The error's message.
        message: String,
    },
    /// It lost the race or was abandoned.
    Cancelled,
    /// It had not ended when the timings were taken.
    Unfinished,
}

/// Records one request's events and turns them into [`Timings`]. Thread-safe: hooks may
/// fire from the connection's task while the request's task reads the timings.
///
/// # Examples
///
/// ```
/// let recorder = nettrace::TimingsRecorder::new();
/// let trace = recorder.trace(); // give it to `HttpClient::send`
/// # drop(trace);
/// assert_eq!(recorder.timings(), nettrace::Timings::default());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TimingsRecorder {
    state: Arc<Mutex<Recorded>>,
}

#[derive(Debug, Default)]
struct Recorded {
    start: Option<Instant>,
    got_conn: Option<(Instant, GotConn)>,
    first_byte: Option<(Instant, StatusCode, Version)>,
    finished: Option<Instant>,
}

impl TimingsRecorder {
    /// Returns an empty recorder.
    pub fn new() -> TimingsRecorder {
        TimingsRecorder::default()
    }

    /// Returns a trace that records into this recorder; add your own hooks to it if you
    /// like. Use it for one request.
    pub fn trace(&self) -> HttpTrace {
        // One hook object, called by the client directly: no closure per hook.
        HttpTrace::recording(self.clone())
    }

    pub(crate) fn started(&self) {
        self.with(|r| r.start = Some(Instant::now()));
    }

    pub(crate) fn got_conn(&self, event: &GotConn) {
        let now = Instant::now();
        self.with(|r| r.got_conn = Some((now, event.clone())));
    }

    pub(crate) fn first_byte(&self, status: StatusCode, version: Version) {
        let now = Instant::now();
        self.with(|r| r.first_byte = Some((now, status, version)));
    }

    pub(crate) fn finished(&self) {
        let now = Instant::now();
        self.with(|r| r.finished = Some(now));
    }

    fn with(&self, f: impl FnOnce(&mut Recorded)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Returns the timings recorded so far.
    pub fn timings(&self) -> Timings {
        let r = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(start) = r.start else {
            return Timings::default();
        };
        let since = |t: Instant| t.saturating_duration_since(start);
        let mut timings = Timings {
            starttransfer: r.first_byte.as_ref().map(|(t, _, _)| since(*t)),
            status: r.first_byte.as_ref().map(|(_, s, _)| *s),
            http_version: r.first_byte.as_ref().map(|(_, _, v)| *v),
            total: r.finished.map(since),
            ..Timings::default()
        };
        if let Some((at, conn)) = &r.got_conn {
            timings.pretransfer = Some(since(*at));
            timings.reused = conn.reused;
            timings.remote_addr = Some(conn.remote_addr);
            timings.local_addr = Some(conn.local_addr);
            timings.tls_version = conn.info.tls_version();
            timings.tls_cipher = conn.info.tls_cipher();
            timings.alpn = conn.info.alpn().map(<[u8]>::to_vec);
            if conn.queued {
                // curl's `time_queue`: until it had a connection it did not dial itself.
                timings.queue = Some(since(*at));
            }
            if let Some(dial) = &conn.dial {
                timings.dns_answer_ipv6 = dial.dns_answer_ipv6.map(since);
                timings.dns_answer_ipv4 = dial.dns_answer_ipv4.map(since);
                timings.namelookup = dial.dns_done.map(since);
                timings.connect = dial.connected.map(since);
                timings.appconnect = dial.tls_done.map(since);
                timings.attempts = dial
                    .attempts
                    .iter()
                    .map(|a| AttemptTiming {
                        addr: a.addr,
                        attempt: a.attempt,
                        start: since(a.started),
                        end: a.ended.map(since),
                        outcome: match &a.outcome {
                            Some(RecordedOutcome::Connected) => AttemptOutcome::Connected,
                            Some(RecordedOutcome::Failed(kind, message)) => {
                                AttemptOutcome::Failed {
                                    kind: *kind,
                                    message: message.clone(),
                                }
                            }
                            Some(RecordedOutcome::Cancelled) => AttemptOutcome::Cancelled,
                            None => AttemptOutcome::Unfinished,
                        },
                    })
                    .collect();
            }
        }
        timings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_print_as_curl_write_out_lines_with_microseconds() {
        let timings = Timings {
            queue: Some(Duration::from_nanos(999)),
            namelookup: Some(Duration::from_micros(1_234)),
            connect: Some(Duration::from_micros(2_000_001)),
            pretransfer: Some(Duration::from_millis(2_100)),
            starttransfer: Some(Duration::from_secs(3)),
            total: Some(Duration::new(61, 999_999_999)),
            ..Timings::default()
        };
        assert_eq!(
            timings.to_string(),
            "time_queue: 0.000000\n\
             time_namelookup: 0.001234\n\
             time_connect: 2.000001\n\
             time_appconnect: 0.000000\n\
             time_pretransfer: 2.100000\n\
             time_starttransfer: 3.000000\n\
             time_total: 61.999999"
        );
    }

    #[test]
    fn timings_of_nothing_print_every_variable_as_zero() {
        let text = Timings::default().to_string();
        assert_eq!(text.lines().count(), 7);
        assert!(text.lines().all(|l| l.ends_with(": 0.000000")), "{text}");
    }
}
