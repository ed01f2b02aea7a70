//! The waterfall: one line per phase, with its duration, a bar on a shared time axis and
//! the cumulative time, in the manner of httpstat.

use std::fmt::Write as _;
use std::time::Duration;

use nettrace::Family;

use crate::collect::{Answer, Dns, Hop, Outcome};
use crate::run::{HopReport, Report};

const BAR: usize = 30;

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

/// ANSI colours, or none.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
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
        .max()
        .unwrap_or(origin);
    let span = last.saturating_sub(origin).max(Duration::from_micros(1));
    let label_width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let detail_width = rows
        .iter()
        .map(|r| r.detail.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for row in &rows {
        let from = row.start.saturating_sub(origin);
        let to = row.end.unwrap_or(last).saturating_sub(origin);
        let took = to.saturating_sub(from);
        let a = (from.as_secs_f64() / span.as_secs_f64() * BAR as f64).floor() as usize;
        let b = ((to.as_secs_f64() / span.as_secs_f64() * BAR as f64).ceil() as usize).max(a + 1);
        let (a, b) = (a.min(BAR - 1), b.min(BAR));
        let bar = format!(
            "{}{}{}",
            " ".repeat(a),
            "█".repeat(b - a),
            " ".repeat(BAR - b)
        );
        let detail: String = row.detail.chars().take(60).collect();
        let _ = writeln!(
            out,
            "  {:<lw$}  {}{}  {:>10}  |{}|  {:>10}",
            row.label,
            style.paint(row.tone, &detail),
            " ".repeat(detail_width.saturating_sub(detail.chars().count())),
            if row.end.is_some() {
                ms(took)
            } else {
                "…".to_owned()
            },
            style.paint(row.tone, &bar),
            ms(to),
            lw = label_width,
        );
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

fn rows(hop: &Hop, report: &HopReport) -> Vec<Row> {
    let mut rows = Vec::new();
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
        let (detail, tone) = match &a.outcome {
            Some(Outcome::Connected) => ("connected".to_owned(), Tone::Good),
            Some(Outcome::Failed(err)) => (format!("failed: {err}"), Tone::Bad),
            Some(Outcome::Cancelled) => ("cancelled".to_owned(), Tone::Muted),
            None => ("in progress".to_owned(), Tone::Muted),
        };
        rows.push(Row {
            label: format!("TCP connect #{}", a.attempt),
            detail: format!("{}  {detail}", a.addr),
            start: a.start,
            end: a.end,
            tone,
        });
    }
    if let Some(tls) = &hop.tls {
        let (detail, tone) = match &tls.error {
            Some(err) => (format!("{}: {err}", tls.server_name), Tone::Bad),
            None => (
                [
                    tls.version.as_deref(),
                    tls.alpn.as_deref(),
                    tls.cipher.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
                Tone::Plain,
            ),
        };
        rows.push(Row {
            label: "TLS handshake".into(),
            detail,
            start: tls.start,
            end: tls.end,
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
        rows.push(Row {
            label: "Server processing".into(),
            detail: String::new(),
            start: sent,
            end: hop.first_byte,
            tone: Tone::Plain,
        });
    }
    if let Some(first) = hop.first_byte {
        rows.push(Row {
            label: "Content transfer".into(),
            detail: format!("{} bytes", report.body_bytes),
            start: first,
            end: hop.done,
            tone: Tone::Plain,
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
                answers,
            }),
            done: Some(ms(210)),
            ..Hop::default()
        };
        Report {
            mode: "dial",
            hops: vec![HopReport {
                method: "CONNECT".into(),
                url: "a.test:80".into(),
                hop,
                ..HopReport::default()
            }],
            error: None,
        }
    }

    #[test]
    fn answers_at_different_times_get_a_line_each() {
        let ms = Duration::from_millis;
        let report = hop_with_answers(vec![
            answer(Family::Ipv4, ms(2), "127.0.0.1"),
            answer(Family::Ipv6, ms(200), "::1"),
        ]);
        let text = waterfall(&report, Style { color: false }, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("DNS AAAA") && lines[1].contains("a.test → ::1"));
        assert!(lines[1].trim_end().ends_with("200.0 ms"), "{text}");
        assert!(lines[2].contains("DNS A ") && lines[2].contains("a.test → 127.0.0.1"));
        assert!(lines[2].trim_end().ends_with("2.0 ms"), "{text}");
        assert!(!text.contains("DNS lookup"), "{text}");

        // Less than a millisecond apart: one line.
        let report = hop_with_answers(vec![
            answer(Family::Ipv4, ms(2), "127.0.0.1"),
            answer(Family::Ipv6, ms(2) + Duration::from_micros(900), "::1"),
        ]);
        let text = waterfall(&report, Style { color: false }, false);
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
        let report = Report {
            mode: "dial",
            hops: vec![HopReport {
                method: "CONNECT".into(),
                url: "a.test:80".into(),
                hop,
                ..HopReport::default()
            }],
            error: None,
        };
        let text = waterfall(&report, Style { color: false }, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "CONNECT a.test:80");
        assert!(lines[1].contains("DNS lookup") && lines[1].contains("a.test → ::1"));
        assert!(lines[1].contains("10.0 ms"), "{text}");
        assert!(lines[2].contains("TCP connect #0") && lines[2].contains("connected"));
        assert!(lines[2].trim_end().ends_with("20.0 ms"), "{text}");
        assert!(!text.contains('\x1b'), "no colour when asked");
    }
}
