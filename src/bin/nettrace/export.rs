//! Machine-readable output: the `--json` object (schema in docs/JSON.md) and the Chrome
//! trace-event file of `--trace-out`.

use std::time::Duration;

use serde_json::{json, Value};

use nettrace::Family;

use crate::collect::{Answer, Hop};
use crate::run::{HopReport, Report};

/// Version of the `--json` schema; bumped when a field changes meaning or goes away.
const SCHEMA_VERSION: u32 = 1;

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
            // A dial: lookup and connect only.
            None => json!({
                "dns_answer_ipv6": rel(answered_at(h, Family::Ipv6)),
                "dns_answer_ipv4": rel(answered_at(h, Family::Ipv4)),
                "namelookup": rel(h.dns.as_ref().and_then(|d| d.end)),
                "connect": rel(h.connected_at()),
                "appconnect": null,
                "pretransfer": null,
                "starttransfer": null,
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

/// The timeline in the Chrome trace-event format: one complete ("X") event per phase,
/// each connection attempt on its own track so overlapping attempts show side by side.
pub(crate) fn chrome_trace(report: &Report) -> Value {
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": "nettrace" },
    })];
    for (i, hop_report) in report.hops.iter().enumerate() {
        let h: &Hop = &hop_report.hop;
        let mut push = |name: String,
                        cat: &str,
                        tid: usize,
                        start: Duration,
                        end: Option<Duration>,
                        args: Value| {
            let end = end.unwrap_or(start);
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
        let base = i * 100;
        if let (Some(start), end) = (h.start, h.done.or(h.first_byte).or(h.connected_at())) {
            push(
                format!("{} {}", hop_report.method, hop_report.url),
                "request",
                base,
                start,
                end,
                json!({ "status": hop_report.status, "reused": h.reused }),
            );
        }
        if let Some(d) = &h.dns {
            push(
                format!("DNS {}", d.host),
                "dns",
                base + 1,
                d.start,
                d.end,
                json!({ "addrs": d.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(), "coalesced": d.coalesced, "error": d.error }),
            );
            // Each family's answer, nested in the lookup on its track.
            for a in &d.answers {
                push(
                    format!("{} {}", a.record_type(), d.host),
                    "dns",
                    base + 1,
                    d.start,
                    Some(a.at),
                    json!({ "addrs": a.addrs.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(), "error": a.error, "cancelled": a.cancelled }),
                );
            }
        }
        for a in &h.attempts {
            push(
                format!("connect #{} {}", a.attempt, a.addr),
                "connect",
                base + 2 + a.attempt,
                a.start,
                a.end,
                json!({ "outcome": a.outcome.as_ref().map(|o| o.name()), "error": a.outcome.as_ref().and_then(|o| o.error()) }),
            );
        }
        if let Some(t) = &h.tls {
            push(
                "TLS handshake".into(),
                "tls",
                base + 1,
                t.start,
                t.end,
                json!({ "version": t.version, "alpn": t.alpn, "cipher": t.cipher, "error": t.error }),
            );
        }
        if let Some(sent) = h.got_conn {
            push(
                "server processing".into(),
                "http",
                base + 1,
                sent,
                h.first_byte,
                json!({}),
            );
        }
        if let Some(first) = h.first_byte {
            push(
                "content transfer".into(),
                "http",
                base + 1,
                first,
                h.done,
                json!({ "bytes": hop_report.body_bytes }),
            );
        }
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}
