//! The waterfall: one line per phase, with its duration, a bar on a shared time axis and
//! the cumulative time, in the manner of httpstat.

use std::fmt::Write as _;
use std::time::Duration;

use nettrace::Family;

use crate::collect::{Answer, Dns, Hop, Outcome};
use crate::run::{HopReport, Report};

/// The widest and narrowest time bar.
const BAR_MAX: usize = 30;
const BAR_MIN: usize = 10;
/// The detail column is never narrower than this; lines then exceed very narrow
/// terminals rather than become unreadable.
const DETAIL_MIN: usize = 16;
/// A detail longer than this many lines is elided.
const DETAIL_LINES: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Good,
    Bad,
    Muted,
}

struct Row {
    label: String,
    detail: String,
    start: Duration,
    end: Option<Duration>,
    tone: Tone,
}

/// ANSI colours, or none, and the width to fit.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
    /// Columns of the terminal (see [`terminal_width`]).
    pub(crate) width: usize,
}

impl Style {
    fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Plain => return text.to_owned(),
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Muted => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn dim(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The width to draw for: `COLUMNS` when set to a number, else the width of the terminal
/// on `fd` (1 for stdout, 2 for stderr), else 80.
pub(crate) fn terminal_width(fd: i32) -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return columns;
    }
    tty_width(fd).unwrap_or(80)
}

#[cfg(unix)]
fn tty_width(fd: i32) -> Option<usize> {
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct we pass; on a descriptor
    // that is not a terminal it fails and leaves it alone.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn tty_width(_fd: i32) -> Option<usize> {
    None
}

/// The whole report as text.
pub(crate) fn waterfall(report: &Report, style: Style, show_headers: bool) -> String {
    let mut out = String::new();
    for (i, hop) in report.hops.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_hop(&mut out, hop, report.mode, style, show_headers);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The columns' widths for one hop's rows.
struct Columns {
    label: usize,
    detail: usize,
    took: usize,
    bar: usize,
    end: usize,
}

const HEAD_PHASE: &str = "phase";
const HEAD_DETAIL: &str = "detail";
const HEAD_TOOK: &str = "duration";
const HEAD_END: &str = "ends at";

impl Columns {
    /// Fits the columns into `width`: the bar shrinks first, then the detail wraps.
    fn fit(width: usize, label: usize, detail: usize, took: usize, end: usize) -> Columns {
        let label = label.max(HEAD_PHASE.len());
        let took = took.max(HEAD_TOOK.len());
        let end = end.max(HEAD_END.len());
        // "  label  detail  took  |bar|  end"
        let fixed = 2 + label + 2 + 2 + took + 2 + 2 + 2 + end;
        let room = width.saturating_sub(fixed);
        let detail = detail.max(HEAD_DETAIL.len());
        let (detail, bar) = if room >= detail + BAR_MIN {
            (detail, (room - detail).min(BAR_MAX))
        } else if room >= DETAIL_MIN + BAR_MIN {
            (room - BAR_MIN, BAR_MIN)
        } else {
            // No room for a bar: the detail takes its place ("  |" and "|").
            ((room + 4).max(DETAIL_MIN), 0)
        };
        Columns {
            label,
            detail,
            took,
            bar,
            end,
        }
    }
}

fn render_hop(out: &mut String, report: &HopReport, mode: &str, style: Style, show_headers: bool) {
    let hop = &report.hop;
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("{} {}", report.method, report.url))
    );
    let rows = rows(hop, report);
    let Some(origin) = hop.start else {
        let _ = writeln!(out, "  (nothing happened)");
        return;
    };
    let last = rows
        .iter()
        .filter_map(|r| r.end.or(Some(r.start)))
        .chain(hop.done)
        .chain(hop.timed_out)
        .max()
        .unwrap_or(origin);
    let span = last.saturating_sub(origin).max(Duration::from_micros(1));
    let timing = |row: &Row| {
        let from = row.start.saturating_sub(origin);
        let to = row.end.unwrap_or(last).saturating_sub(origin);
        let took = if row.end.is_some() {
            ms(to.saturating_sub(from))
        } else {
            "…".to_owned()
        };
        (from, to, took)
    };
    let columns = Columns::fit(
        style.width,
        rows.iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(0),
        rows.iter()
            .map(|r| r.detail.chars().count())
            .max()
            .unwrap_or(0),
        rows.iter()
            .map(|r| timing(r).2.chars().count())
            .max()
            .unwrap_or(0),
        rows.iter()
            .map(|r| ms(timing(r).1).len())
            .max()
            .unwrap_or(0),
    );
    let bar_width = columns.bar;
    // The header names the columns; the timeline's runs from 0 to the hop's last event.
    let scale = ms(span);
    let axis = if bar_width == 0 {
        String::new()
    } else if bar_width >= scale.len() + 2 {
        format!("   0{:>w$} ", scale, w = bar_width - 1)
    } else {
        format!("   {:<bar_width$} ", "timeline")
    };
    let _ = writeln!(
        out,
        "{}",
        style.dim(&format!(
            "  {:<lw$}  {:<dw$}  {:>tw$}{axis}  {:>ew$}",
            HEAD_PHASE,
            HEAD_DETAIL,
            HEAD_TOOK,
            HEAD_END,
            lw = columns.label,
            dw = columns.detail,
            tw = columns.took,
            ew = columns.end,
        ))
    );
    for row in &rows {
        let (from, to, took) = timing(row);
        let bar = if bar_width == 0 {
            String::new()
        } else {
            let a = (from.as_secs_f64() / span.as_secs_f64() * bar_width as f64).floor() as usize;
            let b = ((to.as_secs_f64() / span.as_secs_f64() * bar_width as f64).ceil() as usize)
                .max(a + 1);
            let (a, b) = (a.min(bar_width - 1), b.min(bar_width));
            let bar = format!(
                "{}{}{}",
                " ".repeat(a),
                "█".repeat(b - a),
                " ".repeat(bar_width - b)
            );
            format!("  |{}|", style.paint(row.tone, &bar))
        };
        let detail = wrap(&row.detail, columns.detail, DETAIL_LINES);
        let first = detail.first().map_or("", String::as_str);
        let _ = writeln!(
            out,
            "  {:<lw$}  {}{}  {:>tw$}{bar}  {:>ew$}",
            row.label,
            style.paint(row.tone, first),
            " ".repeat(columns.detail.saturating_sub(first.chars().count())),
            took,
            ms(to),
            lw = columns.label,
            tw = columns.took,
            ew = columns.end,
        );
        for more in detail.iter().skip(1) {
            let _ = writeln!(
                out,
                "  {:lw$}  {}",
                "",
                style.paint(row.tone, more),
                lw = columns.label
            );
        }
    }
    match mode {
        "dial" => {
            if let (Some(remote), Some(local)) = (hop.remote, hop.local) {
                let at = hop.connected_at().map(|t| ms(t.saturating_sub(origin)));
                let _ = writeln!(
                    out,
                    "{}",
                    style.paint(
                        Tone::Good,
                        &format!(
                            "connected to {remote} from {local} in {}",
                            at.unwrap_or_default()
                        )
                    )
                );
            }
        }
        _ => {
            if let Some(status) = report.status {
                let line = format!(
                    "{} {} {}",
                    report.version.as_deref().unwrap_or("HTTP"),
                    status,
                    report.reason.as_deref().unwrap_or("")
                );
                let tone = if status < 400 { Tone::Good } else { Tone::Bad };
                let _ = writeln!(out, "{}", style.paint(tone, line.trim_end()));
                if show_headers {
                    for (name, value) in &report.headers {
                        let _ = writeln!(out, "{name}: {value}");
                    }
                }
            }
        }
    }
}

/// `text` in lines of at most `width` characters, broken between words; a word wider
/// than a line, or text beyond `max_lines`, is elided with "…".
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(2);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut elided = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let word: String = if word.chars().count() > width {
            let mut short: String = word.chars().take(width - 1).collect();
            short.push('…');
            short
        } else {
            word.to_owned()
        };
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            if lines.len() == max_lines {
                elided = true;
                break;
            }
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !elided && !line.is_empty() {
        lines.push(line);
    }
    if elided {
        if let Some(last) = lines.last_mut() {
            // Room for " …" at the end of the last line, cut between words.
            while last.chars().count() + 2 > width {
                match last.rfind(' ') {
                    Some(i) => last.truncate(i),
                    None => {
                        *last = last.chars().take(width - 2).collect();
                    }
                }
            }
            last.push_str(" …");
        }
    }
    lines
}

/// An OS error's message without its number ("Connection refused (os error 111)"): the
/// number stays in the JSON.
fn without_os_code(err: &str) -> &str {
    match err.rfind(" (os error ") {
        Some(i) if err.ends_with(')') => &err[..i],
        _ => err,
    }
}

/// The attempts of a failed dial in one short line: each address and error when there
/// are few, else the count, the first and last address, and each kind of error counted
/// ("40 attempts failed: 127.0.0.1:1, 127.0.0.2:1, …, 127.0.0.40:1 (connection refused ×40)").
pub(crate) fn attempts_summary(attempts: &[(std::net::SocketAddr, std::io::Error)]) -> String {
    let kind = |e: &std::io::Error| e.kind().to_string().to_lowercase();
    if attempts.len() <= 3 {
        let each: Vec<String> = attempts
            .iter()
            .map(|(addr, e)| format!("{addr} ({})", kind(e)))
            .collect();
        return each.join(", ");
    }
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for (_, e) in attempts {
        let k = kind(e);
        match kinds.iter_mut().find(|(name, _)| *name == k) {
            Some((_, n)) => *n += 1,
            None => kinds.push((k, 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    let n = attempts.len();
    format!(
        "{n} attempts failed: {}, {}, …, {} ({})",
        attempts[0].0,
        attempts[1].0,
        attempts[n - 1].0,
        kinds.join(", ")
    )
}

fn rows(hop: &Hop, report: &HopReport) -> Vec<Row> {
    let mut rows = Vec::new();
    // A phase the run's time limit cut short: ends then, and says so.
    let cut = |what: String| match hop.timed_out {
        Some(at) => (format!("{what}timed out"), Some(at), Tone::Bad),
        None => (format!("{what}in progress"), None, Tone::Muted),
    };
    if let Some(dns) = &hop.dns {
        match per_family(dns) {
            Some(answers) => {
                for answer in answers {
                    rows.push(family_row(dns, answer));
                }
            }
            None => rows.push(lookup_row(dns)),
        }
    }
    for a in &hop.attempts {
        let (detail, end, tone) = match &a.outcome {
            Some(Outcome::Connected) => ("connected".to_owned(), a.end, Tone::Good),
            Some(Outcome::Failed(err)) => (
                format!("failed: {}", without_os_code(err)),
                a.end,
                Tone::Bad,
            ),
            Some(Outcome::TimedOut) => ("timed out".to_owned(), a.end, Tone::Bad),
            Some(Outcome::Cancelled) => ("cancelled".to_owned(), a.end, Tone::Muted),
            None => cut(String::new()),
        };
        rows.push(Row {
            label: format!("TCP connect #{}", a.attempt),
            detail: format!("{}  {detail}", a.addr),
            start: a.start,
            end,
            tone,
        });
    }
    if let Some(tls) = &hop.tls {
        let (detail, end, tone) = match (&tls.error, tls.end) {
            (Some(err), _) => (format!("{}: {err}", tls.server_name), tls.end, Tone::Bad),
            (None, None) => cut(format!("{}: ", tls.server_name)),
            (None, Some(_)) => (
                [
                    tls.version.as_deref(),
                    tls.alpn.as_deref(),
                    tls.cipher.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
                tls.end,
                Tone::Plain,
            ),
        };
        rows.push(Row {
            label: "TLS handshake".into(),
            detail,
            start: tls.start,
            end,
            tone,
        });
    }
    if let (true, Some(at)) = (hop.reused, hop.got_conn) {
        rows.push(Row {
            label: "Connection".into(),
            detail: format!(
                "reused {}",
                hop.remote.map(|r| r.to_string()).unwrap_or_default()
            ),
            start: hop.start.unwrap_or(at),
            end: Some(at),
            tone: Tone::Plain,
        });
    }
    if let Some(sent) = hop.got_conn {
        let (detail, end, tone) = match hop.first_byte {
            Some(first) => (String::new(), Some(first), Tone::Plain),
            None => cut("waiting for the first byte: ".into()),
        };
        rows.push(Row {
            label: "Server processing".into(),
            detail,
            start: sent,
            end,
            tone,
        });
    }
    if let Some(first) = hop.first_byte {
        let bytes = format!("{} bytes", report.body_bytes);
        let (detail, end, tone) = match hop.done {
            Some(done) => (bytes, Some(done), Tone::Plain),
            None => cut(format!("{bytes} so far: ")),
        };
        rows.push(Row {
            label: "Content transfer".into(),
            detail,
            start: first,
            end,
            tone,
        });
    }
    rows
}

/// The lookup as one line.
fn lookup_row(dns: &Dns) -> Row {
    let detail = match &dns.error {
        Some(err) => err.clone(),
        None => {
            let shared = if dns.coalesced { " (coalesced)" } else { "" };
            format!("{} → {}{shared}", dns.host, joined(&dns.addrs))
        }
    };
    Row {
        label: "DNS lookup".into(),
        detail,
        start: dns.start,
        end: dns.end,
        tone: if dns.error.is_some() {
            Tone::Bad
        } else {
            Tone::Plain
        },
    }
}

/// Answer times closer than this count as equal: AAAA and A are asked together, and
/// their answers rarely come in the same microsecond even from one server.
const SAME_TIME: Duration = Duration::from_millis(1);

/// The AAAA and A answers, when both came (or were given up) at different times;
/// otherwise the lookup is one line.
fn per_family(dns: &Dns) -> Option<[&Answer; 2]> {
    let v6 = dns.answer(Family::Ipv6)?;
    let v4 = dns.answer(Family::Ipv4)?;
    (v6.at.abs_diff(v4.at) >= SAME_TIME).then_some([v6, v4])
}

/// One family's answer as a line: from the lookup's start until the answer came.
fn family_row(dns: &Dns, answer: &Answer) -> Row {
    let shared = if answer.coalesced { " (coalesced)" } else { "" };
    let (detail, tone) = match &answer.error {
        Some(_) if answer.cancelled => ("no answer: not waited for".to_owned(), Tone::Muted),
        Some(err) => (format!("{}: {err}", dns.host), Tone::Bad),
        None => (
            format!("{} → {}{shared}", dns.host, joined(&answer.addrs)),
            Tone::Plain,
        ),
    };
    Row {
        label: format!("DNS {}", answer.record_type()),
        detail,
        start: dns.start,
        end: Some(answer.at),
        tone,
    }
}

fn joined(addrs: &[std::net::IpAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    addrs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Attempt;

    fn dial_id() -> nettrace::DialId {
        nettrace::Dialer::new().dial("127.0.0.1:1").id()
    }

    fn answer(family: Family, at: Duration, addr: &str) -> Answer {
        Answer {
            family,
            at,
            addrs: vec![addr.parse().unwrap()],
            coalesced: false,
            error: None,
            cancelled: false,
        }
    }

    /// A report of one hop.
    fn one_hop(mode: &'static str, method: &str, url: &str, hop: Hop) -> Report {
        Report {
            mode,
            hops: vec![HopReport {
                method: method.into(),
                url: url.into(),
                hop,
                ..HopReport::default()
            }],
            error: None,
            pending: None,
        }
    }

    /// The waterfall without colour, 100 columns wide.
    fn plain(report: &Report) -> String {
        waterfall(
            report,
            Style {
                color: false,
                width: 100,
            },
            false,
        )
    }

    fn hop_with_answers(answers: Vec<Answer>) -> Report {
        let ms = Duration::from_millis;
        let hop = Hop {
            start: Some(ms(0)),
            dns: Some(Dns {
                dial: dial_id(),
                host: "a.test".into(),
                start: ms(0),
                end: Some(ms(200)),
                addrs: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                coalesced: false,
                error: None,
                cancelled: false,
                answers,
            }),
            done: Some(ms(210)),
            ..Hop::default()
        };
        one_hop("dial", "DIAL", "a.test:80", hop)
    }

    #[test]
    fn answers_at_different_times_get_a_line_each() {
        let ms = Duration::from_millis;
        let report = hop_with_answers(vec![
            answer(Family::Ipv4, ms(2), "127.0.0.1"),
            answer(Family::Ipv6, ms(200), "::1"),
        ]);
        let text = plain(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].contains("DNS AAAA") && lines[2].contains("a.test → ::1"));
        assert!(lines[2].trim_end().ends_with("200.0 ms"), "{text}");
        assert!(lines[3].contains("DNS A ") && lines[3].contains("a.test → 127.0.0.1"));
        assert!(lines[3].trim_end().ends_with("2.0 ms"), "{text}");
        assert!(!text.contains("DNS lookup"), "{text}");

        // Less than a millisecond apart: one line.
        let report = hop_with_answers(vec![
            answer(Family::Ipv4, ms(2), "127.0.0.1"),
            answer(Family::Ipv6, ms(2) + Duration::from_micros(900), "::1"),
        ]);
        let text = plain(&report);
        assert!(text.contains("DNS lookup"), "{text}");
        assert!(!text.contains("DNS A"), "{text}");
    }

    #[test]
    fn bars_and_times_line_up() {
        let ms = Duration::from_millis;
        let hop = Hop {
            start: Some(ms(0)),
            dns: Some(Dns {
                dial: dial_id(),
                host: "a.test".into(),
                start: ms(0),
                end: Some(ms(10)),
                addrs: vec!["::1".parse().unwrap()],
                coalesced: false,
                error: None,
                cancelled: false,
                answers: Vec::new(),
            }),
            attempts: vec![Attempt {
                attempt: 0,
                addr: "[::1]:80".parse().unwrap(),
                start: ms(10),
                end: Some(ms(20)),
                outcome: Some(Outcome::Connected),
            }],
            done: Some(ms(30)),
            ..Hop::default()
        };
        let report = one_hop("dial", "DIAL", "a.test:80", hop);
        let text = plain(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "DIAL a.test:80");
        assert!(lines[2].contains("DNS lookup") && lines[2].contains("a.test → ::1"));
        assert!(lines[2].contains("10.0 ms"), "{text}");
        assert!(lines[3].contains("TCP connect #0") && lines[3].contains("connected"));
        assert!(lines[3].trim_end().ends_with("20.0 ms"), "{text}");
        assert!(!text.contains('\x1b'), "no colour when asked");
    }

    #[test]
    fn wrap_breaks_between_words_and_elides_what_does_not_fit() {
        assert_eq!(wrap("a bb ccc", 4, 3), ["a bb", "ccc"]);
        assert_eq!(
            wrap("one two three four five", 9, 2),
            ["one two", "three …"]
        );
        assert_eq!(wrap("averyveryverylongword x", 8, 3), ["averyve…", "x"]);
        assert_eq!(wrap("", 10, 3), Vec::<String>::new());
        for width in 2..30 {
            for line in wrap("invalid peer certificate: UnknownIssuer (a CA)", width, 3) {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn many_failed_attempts_are_counted_by_kind() {
        use std::io::{Error, ErrorKind};
        let attempts: Vec<(std::net::SocketAddr, Error)> = (1..=40)
            .map(|i| {
                let kind = if i == 7 {
                    ErrorKind::TimedOut
                } else {
                    ErrorKind::ConnectionRefused
                };
                (format!("127.0.0.{i}:1").parse().unwrap(), Error::from(kind))
            })
            .collect();
        assert_eq!(
            attempts_summary(&attempts),
            "40 attempts failed: 127.0.0.1:1, 127.0.0.2:1, …, 127.0.0.40:1 \
             (connection refused ×39, timed out ×1)"
        );
        assert_eq!(
            attempts_summary(&attempts[..2]),
            "127.0.0.1:1 (connection refused), 127.0.0.2:1 (connection refused)"
        );
    }

    #[test]
    fn a_phase_cut_short_ends_at_the_limit_and_says_so() {
        let ms = Duration::from_millis;
        let mut hop = Hop {
            start: Some(ms(0)),
            attempts: vec![Attempt {
                attempt: 0,
                addr: "127.0.0.1:80".parse().unwrap(),
                start: ms(1),
                end: Some(ms(2)),
                outcome: Some(Outcome::Connected),
            }],
            got_conn: Some(ms(2)),
            ..Hop::default()
        };
        hop.time_out(Some(ms(100)));
        let report = one_hop("http", "GET", "http://a.test/", hop);
        let text = plain(&report);
        let waiting = text
            .lines()
            .find(|l| l.contains("Server processing"))
            .unwrap();
        assert!(
            waiting.contains("waiting for the first byte: timed out"),
            "{text}"
        );
        assert!(
            waiting.contains(" 98.0 ms ") && waiting.ends_with("100.0 ms"),
            "{text}"
        );
        assert!(text.contains("connected"), "{text}");
    }
}
