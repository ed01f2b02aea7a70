//! Machine-readable output: the `--json` object (schema in docs/JSON.md) and the Chrome
//! trace-event file of `--trace-out`.

use std::time::Duration;

use serde_json::{json, Value};

use nettrace::Family;

use crate::collect::{Answer, Hop};
use crate::run::{HopReport, Report};

/// Version of the `--json` schema; bumped when a field changes meaning or goes away.
const SCHEMA_VERSION: u32 = 2;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn ms_opt(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(ms(d)))
}

/// The `--json` object.
pub(crate) fn json(report: &Report) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "mode": report.mode,
        "hops": report.hops.iter().map(hop).collect::<Vec<_>>(),
        "error": report.error.as_ref().map(|e| json!({
            "kind": e.kind,
            "message": e.message,
            "exit_code": e.code,
        })),
    })
}

fn hop(report: &HopReport) -> Value {
    let h = &report.hop;
    let rel = |at: Option<Duration>| ms_opt(h.since_start(at));
    json!({
        "method": report.method,
        "url": report.url,
        "status": report.status,
        "http_version": report.version,
        "reused": h.reused,
        "remote_addr": h.remote.map(|a| a.to_string()),
        "local_addr": h.local.map(|a| a.to_string()),
        "body_bytes": report.body_bytes,
        "timed_out_ms": rel(h.timed_out),
        "headers": report.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "timings_ms": match &report.timings {
            // A request: the library's curl-compatible timings.
            Some(t) => json!({
                "dns_answer_ipv6": ms_opt(t.dns_answer_ipv6),
                "dns_answer_ipv4": ms_opt(t.dns_answer_ipv4),
                "namelookup": ms_opt(t.namelookup),
                "connect": ms_opt(t.connect),
                "appconnect": ms_opt(t.appconnect),
                "pretransfer": ms_opt(t.pretransfer),
                "starttransfer": ms_opt(t.starttransfer),
                "total": ms_opt(t.total),
            }),
            // A dial, or a request cut short: from the events.
            None => json!({
                "dns_answer_ipv6": rel(answered_at(h, Family::Ipv6)),
                "dns_answer_ipv4": rel(answered_at(h, Family::Ipv4)),
                "namelookup": rel(h.dns.as_ref().filter(|d| d.error.is_none()).and_then(|d| d.end)),
                "connect": rel(h.connected_at()),
                "appconnect": rel(h.tls.as_ref().filter(|t| t.error.is_none()).and_then(|t| t.end)),
                "pretransfer": rel(h.got_conn),
                "starttransfer": rel(h.first_byte),
                "total": null,
            }),
        },
        "dns": h.dns.as_ref().map(|d| json!({
            "host": d.host,
            "addrs": d.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "coalesced": d.coalesced,
            "error": d.error,
            "start_ms": rel(Some(d.start)),
            "end_ms": rel(d.end),
            "answers": d.answers.iter().map(|a| json!({
                "family": a.family_name(),
                "type": a.record_type(),
                "addrs": a.addrs.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                "coalesced": a.coalesced,
                "error": a.error,
                "cancelled": a.cancelled,
                "at_ms": rel(Some(a.at)),
            })).collect::<Vec<_>>(),
        })),
        "attempts": h.attempts.iter().map(|a| json!({
            "attempt": a.attempt,
            "addr": a.addr.to_string(),
            "outcome": a.outcome.as_ref().map(|o| o.name()),
            "error": a.outcome.as_ref().and_then(|o| o.error()),
            "start_ms": rel(Some(a.start)),
            "end_ms": rel(a.end),
        })).collect::<Vec<_>>(),
        "tls": h.tls.as_ref().map(|t| json!({
            "server_name": t.server_name,
            "version": t.version,
            "alpn": t.alpn,
            "cipher": t.cipher,
            "error": t.error,
            "start_ms": rel(Some(t.start)),
            "end_ms": rel(t.end),
        })),
    })
}

/// When the hop's lookup got `family`'s answer, if it did.
fn answered_at(h: &Hop, family: Family) -> Option<Duration> {
    h.dns.as_ref()?.answer(family).and_then(Answer::answered_at)
}

/// The timeline in the Chrome trace-event format: one complete ("X") event per phase on
/// named tracks ("dns", "attempt 0 [::1]:443", "tls", "http"; each connection attempt on
/// its own, so overlapping attempts show side by side), times from the run's first event.
pub(crate) fn chrome_trace(report: &Report) -> Value {
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": "nettrace" },
    })];
    let zero = report
        .hops
        .iter()
        .filter_map(|h| h.hop.start)
        .min()
        .unwrap_or_default();
    let many = report.hops.len() > 1;
    for (i, hop_report) in report.hops.iter().enumerate() {
        let h: &Hop = &hop_report.hop;
        // Tracks of hop i: http, dns, tls, then one per attempt.
        let base = i * 1000 + 1;
        let (http, dns, tls) = (base, base + 1, base + 2);
        let attempt_track = |attempt: usize| base + 3 + attempt;
        let mut tracks: Vec<(usize, String)> = Vec::new();
        let mut push = |name: String,
                        cat: &str,
                        tid: usize,
                        start: Duration,
                        end: Option<Duration>,
                        args: Value| {
            let start = start.saturating_sub(zero);
            let end = end.map_or(start, |e| e.saturating_sub(zero));
            events.push(json!({
                "name": name,
                "cat": cat,
                "ph": "X",
                "pid": 1,
                "tid": tid,
                "ts": start.as_micros() as u64,
                "dur": end.saturating_sub(start).as_micros() as u64,
                "args": args,
            }));
        };
        let end = h.done.or(h.timed_out).or(h.first_byte).or(h.connected_at());
        if let Some(start) = h.start {
            push(
                format!("{} {}", hop_report.method, hop_report.url),
                "request",
                http,
                start,
                end,
                json!({ "status": hop_report.status, "reused": h.reused, "timed_out": h.timed_out.is_some() }),
            );
            tracks.push((http, "http".into()));
        }
        if let Some(d) = &h.dns {
            push(
                format!("DNS {}", d.host),
                "dns",
                dns,
                d.start,
                d.end,
                json!({ "addrs": d.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(), "coalesced": d.coalesced, "error": d.error }),
            );
            // Each family's answer, nested in the lookup on its track.
            for a in &d.answers {
                push(
                    format!("{} {}", a.record_type(), d.host),
                    "dns",
                    dns,
                    d.start,
                    Some(a.at),
                    json!({ "addrs": a.addrs.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(), "error": a.error, "cancelled": a.cancelled }),
                );
            }
            tracks.push((dns, "dns".into()));
        }
        for a in &h.attempts {
            push(
                format!("connect #{} {}", a.attempt, a.addr),
                "connect",
                attempt_track(a.attempt),
                a.start,
                a.end,
                json!({ "outcome": a.outcome.as_ref().map(|o| o.name()), "error": a.outcome.as_ref().and_then(|o| o.error()) }),
            );
            tracks.push((
                attempt_track(a.attempt),
                format!("attempt {} {}", a.attempt, a.addr),
            ));
        }
        if let Some(t) = &h.tls {
            push(
                "TLS handshake".into(),
                "tls",
                tls,
                t.start,
                t.end,
                json!({ "version": t.version, "alpn": t.alpn, "cipher": t.cipher, "error": t.error }),
            );
            tracks.push((tls, "tls".into()));
        }
        if let Some(sent) = h.got_conn {
            push(
                "server processing".into(),
                "http",
                http,
                sent,
                h.first_byte.or(h.timed_out),
                json!({}),
            );
        }
        if let Some(first) = h.first_byte {
            push(
                "content transfer".into(),
                "http",
                http,
                first,
                h.done.or(h.timed_out),
                json!({ "bytes": hop_report.body_bytes }),
            );
        }
        // Name each track, and keep them in the order above.
        for (tid, name) in tracks {
            let name = if many {
                format!("{name} (hop {})", i + 1)
            } else {
                name
            };
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "args": { "name": name },
            }));
            events.push(json!({
                "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
                "args": { "sort_index": tid },
            }));
        }
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}
