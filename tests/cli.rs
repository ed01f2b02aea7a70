//! The built `nettrace` binary against loopback servers: waterfall, JSON, Chrome trace,
//! redirects, every error case, the demo.

#![allow(unreachable_pub)]

#[path = "support/dns.rs"]
mod dns;
#[path = "support/http.rs"]
mod http_server;
#[allow(dead_code)]
#[path = "support/net.rs"]
mod net;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use tokio::process::Command;

use dns::{DnsServer, Entry, Reply};
use http_server::{HttpServer, TestCa};
use net::{refused, BlackHole, Live};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn nettrace(args: &[&str]) -> Run {
    // Wide enough that no detail wraps; `fits_the_width` tests narrower ones.
    nettrace_env(args, &[("COLUMNS", "200")]).await
}

async fn nettrace_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_nettrace"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run nettrace");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!run.stderr.contains("RUST_BACKTRACE"), "{}", run.stderr);
    run
}

fn resolve_flag(name: &str, addr: SocketAddr) -> String {
    format!("{name}:{}:{}", addr.port(), addr.ip())
}

#[tokio::test]
async fn the_demo_shows_every_phase_in_under_five_seconds() {
    let started = Instant::now();
    let run = nettrace(&["demo"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{out}"))
    };
    // One line for the lookup, or (when the AAAA and A answers came 1 ms or more apart,
    // as a loaded machine may make them) one per family.
    match out.lines().find(|l| l.contains("DNS lookup")) {
        Some(dns) => assert!(dns.contains("demo.nettrace.test → ::1, 127.0.0.1"), "{out}"),
        None => {
            assert!(line("DNS AAAA").contains("demo.nettrace.test → ::1"));
            assert!(line("DNS A ").contains("demo.nettrace.test → 127.0.0.1"));
        }
    }
    assert!(line("TCP connect #0").contains("[::1]:"));
    assert!(line("TCP connect #0").contains("cancelled"));
    assert!(line("TCP connect #1").contains("127.0.0.1:"));
    assert!(line("TCP connect #1").contains("connected"));
    assert!(line("TLS handshake").contains("TLSv1.3"));
    assert!(line("TLS handshake").contains("h2"));
    assert!(line("Server processing").contains("ms"));
    assert!(line("Content transfer").contains("bytes"));
    assert!(out.contains("HTTP/2.0 200 OK"));
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[tokio::test]
async fn a_plain_request_draws_the_waterfall() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://plain.test:{}/x", server.addr().port());
    let run = nettrace(&[
        &url,
        "--resolve",
        &resolve_flag("plain.test", server.addr()),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("GET {url}"));
    assert!(
        lines[1].trim_start().starts_with("phase"),
        "a header names the columns: {}",
        run.stdout
    );
    assert!(
        lines[2].trim_start().starts_with("DNS lookup"),
        "{}",
        run.stdout
    );
    assert!(lines[3].contains("TCP connect #0") && lines[3].contains("connected"));
    assert!(
        lines.iter().any(|l| l.starts_with("HTTP/1.1 200 OK")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("TLS handshake"));
}

#[tokio::test]
async fn json_output_follows_the_schema() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://json.test:{}/j", server.addr().port());
    let run = nettrace(&[
        &url,
        "--json",
        "--resolve",
        &resolve_flag("json.test", server.addr()),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["mode"], "http");
    assert!(v["error"].is_null());
    let hop = &v["hops"][0];
    assert_eq!(hop["method"], "GET");
    assert_eq!(hop["url"], url);
    assert_eq!(hop["status"], 200);
    assert_eq!(hop["http_version"], "HTTP/1.1");
    assert_eq!(hop["reused"], false);
    assert_eq!(hop["remote_addr"], server.addr().to_string());
    assert_eq!(hop["body_bytes"], "hello from /j".len());
    let t = &hop["timings_ms"];
    let phases = [
        "namelookup",
        "connect",
        "pretransfer",
        "starttransfer",
        "total",
    ];
    let values: Vec<f64> = phases
        .iter()
        .map(|p| t[p].as_f64().unwrap_or_else(|| panic!("{p}: {t}")))
        .collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{t}");
    assert!(t["appconnect"].is_null());
    assert_eq!(hop["dns"]["host"], "json.test");
    assert_eq!(hop["dns"]["addrs"][0], "127.0.0.1");
    assert_eq!(hop["dns"]["coalesced"], false);
    assert_eq!(hop["attempts"][0]["outcome"], "connected");
    assert_eq!(hop["attempts"][0]["attempt"], 0);
    assert!(hop["tls"].is_null());
    assert!(hop["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "x-http-version"));
}

#[tokio::test]
async fn trace_out_writes_chrome_trace_events() {
    let ca = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
    let dir = std::env::temp_dir().join(format!("nettrace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cacert = dir.join("ca.pem");
    std::fs::write(&cacert, ca.ca_pem()).unwrap();
    let trace = dir.join("trace.json");
    let url = format!("https://localhost:{}/t", server.addr().port());
    let run = nettrace(&[
        &url,
        "--resolve",
        &resolve_flag("localhost", server.addr()),
        "--cacert",
        cacert.to_str().unwrap(),
        "--trace-out",
        trace.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for e in &complete {
        assert!(
            e["ts"].is_u64() && e["dur"].is_u64() && e["pid"].is_u64() && e["tid"].is_u64(),
            "{e}"
        );
    }
    let names: Vec<&str> = complete
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("DNS localhost")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("connect #0")),
        "{names:?}"
    );
    assert!(names.contains(&"TLS handshake"), "{names:?}");
    assert!(names.contains(&"server processing"), "{names:?}");
    let tls = complete
        .iter()
        .find(|e| e["name"] == "TLS handshake")
        .unwrap();
    assert_eq!(tls["args"]["alpn"], "h2");
    // Times count from the run's first event, not from the process's start.
    let first = complete.iter().map(|e| e["ts"].as_u64().unwrap()).min();
    assert_eq!(first, Some(0), "{complete:?}");
    // Each track is named, and the phases sit on their tracks.
    let track = |name: &str| {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == name)
            .unwrap_or_else(|| panic!("no track {name:?} in {events:?}"))["tid"]
            .clone()
    };
    let on = |event: &str| {
        complete
            .iter()
            .find(|e| e["name"].as_str().unwrap().starts_with(event))
            .unwrap()["tid"]
            .clone()
    };
    assert_eq!(on("DNS localhost"), track("dns"));
    assert_eq!(
        on("connect #0"),
        track(&format!("attempt 0 {}", server.addr()))
    );
    assert_eq!(on("TLS handshake"), track("tls"));
    assert_eq!(on("server processing"), track("http"));
    assert_eq!(on("GET "), track("http"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dial_mode_traces_a_bare_connection() {
    let live = Live::on("127.0.0.1").await;
    let run = nettrace(&["dial", &live.addr.to_string()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Not "CONNECT", which reads like an HTTP CONNECT.
    assert_eq!(
        run.stdout.lines().next(),
        Some(format!("DIAL {}", live.addr).as_str())
    );
    assert!(run.stdout.contains("TCP connect #0"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("connected to {}", live.addr)),
        "{}",
        run.stdout
    );

    let json = nettrace(&["dial", &live.addr.to_string(), "--json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["mode"], "dial");
    assert_eq!(v["hops"][0]["method"], "DIAL");
    assert_eq!(v["hops"][0]["attempts"][0]["outcome"], "connected");
}

/// Redirects /r/N to /r/N-1 … and answers /r/0.
async fn redirect_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let n: u32 = req
                            .uri()
                            .path()
                            .trim_start_matches("/r/")
                            .parse()
                            .unwrap_or(0);
                        let mut response = http::Response::new(Full::new(Bytes::from("done")));
                        if n > 0 {
                            *response.status_mut() = http::StatusCode::FOUND;
                            response.headers_mut().insert(
                                http::header::LOCATION,
                                format!("/r/{}", n - 1).parse().unwrap(),
                            );
                        }
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_is_traced() {
    let addr = redirect_server().await;
    let url = format!("http://{addr}/r/3");
    let run = nettrace(&[&url, "-L", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let hops = v["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 4);
    assert_eq!(hops[0]["status"], 302);
    assert_eq!(hops[3]["status"], 200);
    assert_eq!(hops[3]["url"], format!("http://{addr}/r/0"));
    assert_eq!(
        hops[1]["reused"], true,
        "the connection is kept alive across hops"
    );

    let too_many = nettrace(&[&url, "-L", "--max-redirs", "1"]).await;
    assert_eq!(too_many.code, 47, "{}", too_many.stderr);
    assert!(
        too_many
            .stderr
            .starts_with("nettrace: more than 1 redirects"),
        "{}",
        too_many.stderr
    );

    let not_followed = nettrace(&[&url]).await;
    assert_eq!(not_followed.code, 0);
    assert!(
        not_followed.stdout.contains("302 Found"),
        "{}",
        not_followed.stdout
    );
}

#[tokio::test]
async fn errors_are_one_line_with_documented_exit_codes() {
    // Bad URL: 3.
    let run = nettrace(&["http://[::1/"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("nettrace: bad URL"),
        "{}",
        run.stderr
    );

    // Unknown host (NXDOMAIN from a loopback DNS server): 6.
    let dns = DnsServer::start().await;
    dns.insert("gone.test", Entry::new().reply(Reply::NxDomain));
    let run = nettrace(&["http://gone.test/", "--dns-server", &dns.addr().to_string()]).await;
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("no such host \"gone.test\""),
        "{}",
        run.stderr
    );

    // Every attempt refused, with the addresses: 7.
    let dead = refused("127.0.0.1");
    let dead6 = SocketAddr::new("::1".parse().unwrap(), dead.port());
    let run = nettrace(&[
        &format!("http://both.test:{}/", dead.port()),
        "--resolve",
        &format!("both.test:{}:[::1]", dead.port()),
        "--resolve",
        &resolve_flag("both.test", dead),
    ])
    .await;
    assert!(run.code == 7 || run.code == 6, "{}", run.stderr);
    let only = nettrace(&["dial", &dead.to_string()]).await;
    assert_eq!(only.code, 7, "{}", only.stderr);
    assert!(only.stderr.contains(&dead.to_string()), "{}", only.stderr);
    assert!(
        only.stderr.contains("connection refused"),
        "{}",
        only.stderr
    );
    let _ = dead6;

    // TLS failure (a CA that did not sign the server's certificate): 35.
    let server_ca = TestCa::new();
    let other = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &server_ca, &[b"http/1.1"]).await;
    let pem = std::env::temp_dir().join(format!("nettrace-other-ca-{}.pem", std::process::id()));
    std::fs::write(&pem, other.ca_pem()).unwrap();
    let run = nettrace(&[
        &format!("https://localhost:{}/", server.addr().port()),
        "--resolve",
        &resolve_flag("localhost", server.addr()),
        "--cacert",
        pem.to_str().unwrap(),
    ])
    .await;
    std::fs::remove_file(&pem).ok();
    assert_eq!(run.code, 35, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("nettrace: TLS handshake with localhost failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("TLS handshake"),
        "the failed handshake is drawn: {}",
        run.stdout
    );
    // -k accepts it.
    let insecure = nettrace(&[
        &format!("https://localhost:{}/", server.addr().port()),
        "--resolve",
        &resolve_flag("localhost", server.addr()),
        "-k",
    ])
    .await;
    assert_eq!(insecure.code, 0, "{}", insecure.stderr);

    // Timeout (a black hole): 28.
    let hole = BlackHole::on("127.0.0.11").await;
    let run = nettrace(&["dial", &hole.addr.to_string(), "--connect-timeout", "0.3"]).await;
    assert_eq!(run.code, 28, "{}", run.stderr);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    let run = nettrace(&[&format!("http://{}/", hole.addr), "-m", "0.3"]).await;
    assert_eq!(run.code, 28, "{}", run.stderr);

    // Usage errors: 2.
    for args in [
        &["--resolve", "nonsense", "http://a.test/"][..],
        &["-H", "no colon", "http://127.0.0.1:1/"],
        &["--dns-server", "not-an-addr", "http://a.test/"],
        &["--no-such-flag"],
        &[],
    ] {
        let run = nettrace(args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

#[tokio::test]
async fn strange_inputs_never_panic() {
    for args in [
        &[""][..],
        &["::::"],
        &["http://"],
        &["https://:0/"],
        &["dial", ""],
        &["dial", "[::1"],
        &["dial", "host:99999"],
        &["-X", "BAD METHOD", "http://127.0.0.1:1/"],
        &["http://a.test/", "--connect-timeout", "-1"],
        &["http://a.test/", "-m", "NaN"],
        &["http://\u{1F980}.test/"],
        &["http://127.0.0.1:1/", "--attempt-delay", "0"],
    ] {
        let run = nettrace(args).await;
        assert!(
            run.code > 0 && run.code < 100,
            "{args:?} -> {}: {}",
            run.code,
            run.stderr
        );
    }
}

#[tokio::test]
async fn a_closed_stdout_is_not_an_error() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nettrace"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as `| head -0` would
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn curl_like_flags_shape_the_request() {
    let ca = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
    let url = format!("https://localhost:{}/flags", server.addr().port());
    let resolve = resolve_flag("localhost", server.addr());
    let out = std::env::temp_dir().join(format!("nettrace-body-{}", std::process::id()));

    // -d sends POST, -o writes the body, --http1.1 keeps ALPN to HTTP/1.1, -4 is fine
    // for an IPv4 address.
    let run = nettrace(&[
        &url,
        "-k",
        "--resolve",
        &resolve,
        "-d",
        "a=1",
        "-o",
        out.to_str().unwrap(),
        "--http1.1",
        "-4",
        "--json",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["hops"][0]["method"], "POST");
    assert_eq!(v["hops"][0]["http_version"], "HTTP/1.1");
    assert_eq!(v["hops"][0]["tls"]["alpn"], "http/1.1");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello from /flags");
    std::fs::remove_file(&out).ok();

    // -I sends HEAD and prints the headers under the status line. (HTTP/1.1: the test
    // server answers HEAD with a body, which HTTP/2 rightly refuses.)
    let run = nettrace(&[&url, "-k", "--resolve", &resolve, "-I", "--http1.1"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("HEAD "), "{}", run.stdout);
    assert!(
        run.stdout.contains("x-http-version: HTTP/1.1"),
        "{}",
        run.stdout
    );

    // -6 with only an IPv4 address: nothing to connect to.
    let run = nettrace(&[&url, "-k", "--resolve", &resolve, "-6"]).await;
    assert_eq!(run.code, 6, "{}", run.stderr);

    // -X and -H reach the server (it answers any method).
    let run = nettrace(&[
        &url,
        "-k",
        "--resolve",
        &resolve,
        "-X",
        "PUT",
        "-H",
        "X-Test: 1",
        "--json",
    ])
    .await;
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["hops"][0]["method"], "PUT");
    assert_eq!(v["hops"][0]["status"], 200);
}

/// The last time on a waterfall line (its cumulative time), in milliseconds.
fn cumulative_ms(line: &str) -> f64 {
    let number = line
        .trim_end()
        .strip_suffix(" ms")
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no time at the end of {line:?}"));
    number.parse().unwrap()
}

#[tokio::test]
async fn a_late_aaaa_answer_gets_its_own_line_and_json_fields() {
    // A live HTTP server on [::1]:P; 127.0.0.1:P refuses, so the dial waits for AAAA.
    let server = loop {
        let server = HttpServer::plain("::1").await;
        if std::net::TcpListener::bind(("127.0.0.1", server.addr().port())).is_ok() {
            break server;
        }
    };
    let dns = DnsServer::start().await;
    dns.insert(
        "late6.test",
        Entry::new()
            .a("127.0.0.1")
            .aaaa("::1")
            .aaaa_delay(Duration::from_millis(200)),
    );
    let url = format!("http://late6.test:{}/", server.addr().port());
    let dns_flag = dns.addr().to_string();

    let run = nettrace(&[&url, "--dns-server", &dns_flag]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let line = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in\n{out}"))
    };
    let (aaaa, a) = (line("DNS AAAA "), line("DNS A "));
    assert!(aaaa.contains("late6.test → ::1"), "{out}");
    assert!(a.contains("late6.test → 127.0.0.1"), "{out}");
    assert!(cumulative_ms(aaaa) >= 200.0, "{out}");
    assert!(cumulative_ms(a) < 200.0, "{out}");
    assert!(
        !out.contains("DNS lookup"),
        "one line per family, not both: {out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert_eq!(at(a), at(aaaa) + 1, "AAAA then A:\n{out}");
    assert!(
        line("TCP connect #0").contains("127.0.0.1:") && line("TCP connect #0").contains("failed")
    );
    assert!(
        line("TCP connect #1").contains("[::1]:") && line("TCP connect #1").contains("connected")
    );

    // A request (timings from the library's `Timings`) and a bare dial (from the events).
    let target = format!("late6.test:{}", server.addr().port());
    let request = [url.as_str(), "--json", "--dns-server", &dns_flag];
    let dial = ["dial", &target, "--json", "--dns-server", &dns_flag];
    for args in [&request[..], &dial[..]] {
        let run = nettrace(args).await;
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
        let hop = &v["hops"][0];
        let t = &hop["timings_ms"];
        let (v6, v4) = (
            t["dns_answer_ipv6"].as_f64().unwrap(),
            t["dns_answer_ipv4"].as_f64().unwrap(),
        );
        assert!(v6 >= 200.0 && v4 < 200.0, "{args:?}: {t}");
        assert!(t["namelookup"].as_f64().unwrap() >= v6, "{args:?}: {t}");
        let answers = hop["dns"]["answers"].as_array().unwrap();
        assert_eq!(answers.len(), 2, "{args:?}: {}", hop["dns"]);
        // In the order they came: A first.
        assert_eq!(answers[0]["type"], "A");
        assert_eq!(answers[0]["family"], "ipv4");
        assert_eq!(answers[0]["addrs"][0], "127.0.0.1");
        assert_eq!(answers[1]["type"], "AAAA");
        assert_eq!(answers[1]["family"], "ipv6");
        assert_eq!(answers[1]["addrs"][0], "::1");
        for answer in answers {
            assert_eq!(answer["cancelled"], false);
            assert!(answer["error"].is_null());
            assert_eq!(answer["coalesced"], false);
        }
        assert!(answers[1]["at_ms"].as_f64().unwrap() >= 200.0);
        assert!(answers[0]["at_ms"].as_f64().unwrap() < 200.0);
    }
}

/// The line of `out` whose phase is `label`.
fn phase_line<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in\n{out}"))
}

#[tokio::test]
async fn max_time_keeps_the_trace_and_marks_the_phase_it_cut_short() {
    // The server answers after 5 s; -m 0.5 cuts the wait for the first byte.
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_secs(5));
    let url = format!("http://slow.test:{}/s", server.addr().port());
    let resolve = resolve_flag("slow.test", server.addr());
    let started = Instant::now();
    let run = nettrace(&[&url, "--resolve", &resolve, "-m", "0.5"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 28, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    let out = &run.stdout;
    assert_eq!(
        out.lines().next(),
        Some(format!("GET {url}").as_str()),
        "{out}"
    );
    assert!(
        phase_line(out, "DNS lookup").contains("slow.test → 127.0.0.1"),
        "{out}"
    );
    assert!(
        phase_line(out, "TCP connect #0").contains("connected"),
        "{out}"
    );
    let waiting = phase_line(out, "Server processing");
    assert!(
        waiting.contains("waiting for the first byte: timed out"),
        "{out}"
    );
    // It ends at the limit (counted from the run's start, so a little under 500 ms
    // from the request's).
    let ended = cumulative_ms(waiting);
    assert!((400.0..1500.0).contains(&ended), "{out}");

    let run = nettrace(&[&url, "--resolve", &resolve, "-m", "0.5", "--json"]).await;
    assert_eq!(run.code, 28, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(v["mode"], "http");
    assert_eq!(v["error"]["kind"], "timeout");
    assert_eq!(v["error"]["exit_code"], 28);
    let hop = &v["hops"][0];
    assert_eq!(hop["url"], url);
    assert_eq!(hop["attempts"][0]["outcome"], "connected");
    assert_eq!(hop["dns"]["addrs"][0], "127.0.0.1");
    let timed_out = hop["timed_out_ms"].as_f64().expect("timed_out_ms");
    assert!((400.0..1500.0).contains(&timed_out), "{hop}");
    let t = &hop["timings_ms"];
    assert!(t["connect"].as_f64().is_some(), "{t}");
    assert!(t["pretransfer"].as_f64().is_some(), "{t}");
    assert!(t["starttransfer"].is_null() && t["total"].is_null(), "{t}");

    // A dial cut short by -m: the attempt under way timed out, as with
    // --connect-timeout.
    let hole = BlackHole::on("127.0.0.12").await;
    let target = hole.addr.to_string();
    for limit in [["-m", "0.3"], ["--connect-timeout", "0.3"]] {
        let run = nettrace(&["dial", &target, limit[0], limit[1]]).await;
        assert_eq!(run.code, 28, "{limit:?}: {}", run.stderr);
        let attempt = phase_line(&run.stdout, "TCP connect #0");
        assert!(attempt.contains("timed out"), "{limit:?}:\n{}", run.stdout);
        assert!(!attempt.contains("cancelled"), "{limit:?}:\n{}", run.stdout);
        let run = nettrace(&["dial", &target, limit[0], limit[1], "--json"]).await;
        let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
        assert_eq!(v["mode"], "dial", "{limit:?}");
        assert_eq!(
            v["hops"][0]["attempts"][0]["outcome"], "timed_out",
            "{limit:?}"
        );
        assert!(v["hops"][0]["timed_out_ms"].as_f64().is_some(), "{limit:?}");
    }

    // -m 0 is no limit, as in curl.
    let fast = HttpServer::plain("127.0.0.1").await;
    let run = nettrace(&[&format!("http://{}/", fast.addr()), "-m", "0"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test]
async fn an_attempt_that_reaches_its_limit_reads_timed_out() {
    // 127.0.0.13 swallows SYNs, 127.0.0.1 refuses: the first attempt times out after
    // 0.2 s and the next starts then; neither is "cancelled".
    let hole = BlackHole::on("127.0.0.13").await;
    let port = hole.addr.port();
    let dns = DnsServer::start().await;
    dns.insert("slowhost.test", Entry::new().a("127.0.0.13"));
    let target = format!("slowhost.test:{port}");
    let args = [
        "dial",
        &target,
        "--dns-server",
        &dns.addr().to_string(),
        "--attempt-timeout",
        "0.2",
        "--connect-timeout",
        "10",
    ];
    let run = nettrace(&args).await;
    assert_eq!(run.code, 28, "{}{}", run.stdout, run.stderr);
    let attempt = phase_line(&run.stdout, "TCP connect #0");
    assert!(attempt.contains("timed out"), "{}", run.stdout);
    assert!(!run.stdout.contains("cancelled"), "{}", run.stdout);
    let took = cumulative_ms(attempt);
    assert!((150.0..5000.0).contains(&took), "{}", run.stdout);
    assert!(run.stderr.contains("(timed out)"), "{}", run.stderr);

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = nettrace(&json_args).await;
    let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(v["hops"][0]["attempts"][0]["outcome"], "timed_out");
}

#[tokio::test]
async fn forty_refused_attempts_are_one_short_line() {
    let dead = refused("127.0.0.1");
    let dns = DnsServer::start().await;
    let mut entry = Entry::new();
    for i in 1..=40 {
        entry = entry.a(&format!("127.0.0.{i}"));
    }
    dns.insert("many.test", entry);
    let target = format!("many.test:{}", dead.port());
    let dns_flag = dns.addr().to_string();
    let run = nettrace(&["dial", &target, "--dns-server", &dns_flag]).await;
    assert_eq!(run.code, 7, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert!(line.chars().count() <= 160, "{} chars: {line}", line.len());
    assert!(
        line.contains("40 attempts failed: ") && line.contains("(connection refused ×40)"),
        "{line}"
    );
    // The waterfall has a line per attempt, and the JSON every attempt's error.
    for i in 0..40 {
        phase_line(&run.stdout, &format!("TCP connect #{i} "));
    }
    let run = nettrace(&["dial", &target, "--dns-server", &dns_flag, "--json"]).await;
    let v: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let attempts = v["hops"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 40);
    assert!(attempts
        .iter()
        .all(|a| a["outcome"] == "failed" && a["error"].is_string()));
}

#[tokio::test]
async fn the_waterfall_names_its_columns_and_fits_the_width() {
    // A TLS failure: the longest error line there is.
    let server_ca = TestCa::new();
    let other = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &server_ca, &[b"http/1.1"]).await;
    let pem = std::env::temp_dir().join(format!("nettrace-width-ca-{}.pem", std::process::id()));
    std::fs::write(&pem, other.ca_pem()).unwrap();
    let url = format!("https://localhost:{}/", server.addr().port());
    let resolve = resolve_flag("localhost", server.addr());
    let tls_args = [
        url.as_str(),
        "--resolve",
        &resolve,
        "--cacert",
        pem.to_str().unwrap(),
    ];
    let dead = refused("127.0.0.1").to_string();
    let dial_args = ["dial", dead.as_str()];
    for args in [&tls_args[..], &dial_args[..]] {
        let wide = nettrace(args).await;
        for width in [None, Some(60), Some(80), Some(100), Some(132)] {
            let columns = width.map(|w: usize| w.to_string());
            let env: Vec<(&str, &str)> = columns.iter().map(|c| ("COLUMNS", c.as_str())).collect();
            let run = nettrace_env(args, &env).await;
            assert_ne!(run.code, 0);
            let out = &run.stdout;
            // Not a terminal and no COLUMNS: 80.
            let width = width.unwrap_or(80);
            for line in out.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{} > {width} columns: {line:?}\n{out}",
                    line.chars().count()
                );
            }
            let header = out.lines().nth(1).unwrap();
            for name in ["phase", "detail", "duration", "ends at"] {
                assert!(header.contains(name), "{header:?}");
            }
            // Wrapped between words, never inside one: the words are those of the
            // unwrapped output.
            let words = |text: &str| -> Vec<String> {
                text.lines()
                    .skip(2)
                    .flat_map(|l| l.split(['|', ' ']))
                    .filter(|w| !w.is_empty() && !w.contains('█') && !w.contains('…'))
                    .filter(|w| w.parse::<f64>().is_err() && *w != "ms")
                    .map(str::to_owned)
                    .collect()
            };
            let all = words(&wide.stdout);
            for word in words(out) {
                assert!(all.contains(&word), "{word:?} was cut ({width}):\n{out}");
            }
        }
    }
    std::fs::remove_file(&pem).ok();
}

#[tokio::test]
async fn verbose_prints_events_as_they_happen_like_curl() {
    let server = HttpServer::plain("127.0.0.1").await;
    let port = server.addr().port();
    let dns = DnsServer::start().await;
    dns.insert("v.test", Entry::new().a("127.0.0.1"));
    let url = format!("http://v.test:{port}/v");
    let run = nettrace(&[&url, "-v", "--dns-server", &dns.addr().to_string()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{}", run.stderr))
    };
    let order = [
        at("* DNS answer A v.test: 127.0.0.1"),
        at(&format!("*   Trying 127.0.0.1:{port}...")),
        at(&format!("* Connected to v.test (127.0.0.1) port {port}")),
        at("> GET /v HTTP/1.1"),
        at(&format!("> Host: v.test:{port}")),
        at("< HTTP/1.1 200 OK"),
        at("< x-http-version: HTTP/1.1"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", run.stderr);
    // The waterfall still goes to stdout.
    assert!(phase_line(&run.stdout, "TCP connect #0").contains("connected"));
    // Without -v, stderr stays quiet.
    let quiet = nettrace(&[&url, "--dns-server", &dns.addr().to_string()]).await;
    assert_eq!(quiet.stderr, "");

    // Where curl is installed, its -v lines for the same request have the same shape.
    let target = format!("http://127.0.0.1:{port}/v");
    let Ok(curl) = Command::new("curl")
        .args(["-sv", "-o", "/dev/null", &target])
        .output()
        .await
    else {
        eprintln!("curl is not installed: comparison skipped");
        return;
    };
    let curl = String::from_utf8_lossy(&curl.stderr).into_owned();
    let ours = nettrace(&[&target, "-v"]).await.stderr;
    for line in [
        format!("*   Trying 127.0.0.1:{port}..."),
        "> GET /v HTTP/1.1".to_owned(),
        format!("> Host: 127.0.0.1:{port}"),
        "< HTTP/1.1 200 OK".to_owned(),
    ] {
        let has = |text: &str| {
            text.lines()
                .any(|l| l.trim_end().eq_ignore_ascii_case(&line))
        };
        assert!(has(&curl), "curl: no {line:?} in\n{curl}");
        assert!(has(&ours), "nettrace: no {line:?} in\n{ours}");
    }
}

/// Sends a 10-byte body one byte every 150 ms (1.5 s in all).
async fn slow_body_server() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    if stream.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn no_progress_line_when_stderr_is_not_a_terminal() {
    let addr = slow_body_server().await;
    let started = Instant::now();
    let run = nettrace(&[&format!("http://{addr}/slow")]).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the download took over a second"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(phase_line(&run.stdout, "Content transfer").contains("10 bytes"));
    assert_eq!(run.stderr, "", "no progress line on a pipe");
}

#[tokio::test]
async fn a_progress_line_on_a_terminal_for_a_download_over_a_second() {
    // `script` runs nettrace on a pseudo-terminal; where it is missing, nothing to see.
    let addr = slow_body_server().await;
    let command = format!(
        "{} http://{addr}/slow --no-color",
        env!("CARGO_BIN_EXE_nettrace")
    );
    let Ok(output) = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COLUMNS", "200")
        .stdin(Stdio::null())
        .output()
        .await
    else {
        eprintln!("script(1) is not installed: the terminal case is not checked");
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    // Drawn in place (after a carriage return), with bytes, share and rate, then cleared.
    assert!(text.contains(" of 10 B "), "{text:?}");
    assert!(text.contains("B/s"), "{text:?}");
    assert!(text.contains("\r\x1b[K"), "{text:?}");
    assert!(text.contains("Content transfer"), "{text:?}");
}
