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
#[path = "cli/writeout.rs"]
mod writeout;

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

    // Certificate not verified (a CA that did not sign the server's certificate): 60, as
    // curl.
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
    assert_eq!(run.code, 60, "{}", run.stderr);
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
    assert!(run.stderr.contains("(1 attempt started)"), "{}", run.stderr);
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
    // It ends at the limit (counted from the URL's start, so a little under 500 ms
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

/// Runs nettrace (with `extra` flags) against the slow-body server on a pseudo-terminal
/// (`script`), and returns what the terminal showed; `None` where `script` is missing.
async fn on_a_terminal(extra: &str) -> Option<String> {
    let addr = slow_body_server().await;
    let command = format!(
        "{} http://{addr}/slow --no-color{extra}",
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
        return None;
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{text}");
    Some(text)
}

#[tokio::test]
async fn a_progress_line_on_a_terminal_for_a_download_over_a_second() {
    let Some(text) = on_a_terminal("").await else {
        return;
    };
    // Drawn in place (after a carriage return), with bytes, share and rate, then cleared.
    assert!(text.contains(" of 10 B "), "{text:?}");
    assert!(text.contains("B/s"), "{text:?}");
    assert!(text.contains("\r\x1b[K"), "{text:?}");
    assert!(text.contains("Content transfer"), "{text:?}");
}

#[tokio::test]
async fn silent_keeps_the_progress_line_off_a_terminal() {
    let Some(text) = on_a_terminal(" -s").await else {
        return;
    };
    // The waterfall on stdout stays; the progress line does not come.
    assert!(text.contains("Content transfer"), "{text:?}");
    assert!(!text.contains("B/s"), "{text:?}");
    assert!(!text.contains("\r\x1b[K"), "{text:?}");
}

#[tokio::test]
async fn max_time_counts_for_each_url_and_a_cut_url_keeps_its_trace() {
    // Three requests of 600 ms each under -m 1.2: 1.8 s in all, but each within its own
    // limit (curl's -m is per transfer).
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(600));
    let url = format!("http://{}/each", server.addr());
    let started = Instant::now();
    let run = nettrace(&[&url, &url, &url, "-m", "1.2", "--json"]).await;
    assert!(started.elapsed() >= Duration::from_millis(1800));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for v in &lines {
        assert!(v["error"].is_null(), "{v}");
        assert_eq!(v["hops"][0]["status"], 200, "{v}");
    }

    // The first URL is cut short by -m and keeps its trace; the second still runs, and
    // the exit code is the last URL's.
    let slow = slow_body_server().await;
    let fast = HttpServer::plain("127.0.0.1").await;
    let slow_url = format!("http://{slow}/slow");
    let fast_url = format!("http://{}/fast", fast.addr());
    let run = nettrace(&[&slow_url, &fast_url, "-m", "0.5", "--json"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let cut = &lines[0];
    assert_eq!(cut["mode"], "http", "{cut}");
    assert_eq!(cut["error"]["exit_code"], 28, "{cut}");
    assert_eq!(cut["hops"][0]["url"], slow_url, "{cut}");
    let at = cut["hops"][0]["timed_out_ms"].as_f64().unwrap();
    assert!((400.0..1400.0).contains(&at), "{cut}");
    assert!(lines[1]["error"].is_null(), "{}", lines[1]);
    assert_eq!(lines[1]["hops"][0]["status"], 200, "{}", lines[1]);

    // The other way round the exit code is the cut URL's, and the waterfall marks it.
    let run = nettrace(&[&fast_url, &slow_url, "-m", "0.5"]).await;
    assert_eq!(run.code, 28, "{}{}", run.stdout, run.stderr);
    let slow_part = &run.stdout[run.stdout.find(&format!("GET {slow_url}")).unwrap()..];
    assert!(
        phase_line(slow_part, "Content transfer").contains("timed out"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("operation timed out after 0.5 s (--max-time)"),
        "{}",
        run.stderr
    );
}

/// Runs curl with `args`; `None` (and a note) when curl is not installed, so that only the
/// comparison is skipped, never the test.
async fn curl(args: &[&str]) -> Option<Run> {
    let output = match Command::new("curl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("curl is not installed: the comparison with curl is skipped");
            return None;
        }
        Err(err) => panic!("run curl: {err}"),
    };
    Some(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// An HTTP/1.1-only server (no h2c, no HTTP/2 preface) that answers every request with
/// what it received: the method, then each header as "name: value" in order, an empty
/// line, and the body. It counts connections.
async fn echo_server(ip: &str) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    echo_server_speaking(ip, false).await
}

/// [`echo_server`]; with `h2c`, it also speaks HTTP/2 with prior knowledge.
async fn echo_server_speaking(
    ip: &str,
    h2c: bool,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        use http_body_util::BodyExt;
                        let mut text = format!("{}\n", req.method());
                        for (name, value) in req.headers() {
                            text.push_str(&format!(
                                "{name}: {}\n",
                                String::from_utf8_lossy(value.as_bytes())
                            ));
                        }
                        text.push('\n');
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut out = text.into_bytes();
                        out.extend_from_slice(&body);
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(out))))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                if h2c {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(io, service)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (addr, connections)
}

/// A temporary directory for one test, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("nettrace-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The lines of an echoed request whose header name is `name`.
fn echoed<'a>(echo: &'a str, name: &str) -> Vec<&'a str> {
    let head = echo.split("\n\n").next().unwrap_or_default();
    head.lines()
        .filter(|l| l.split(':').next() == Some(name))
        .collect()
}

/// The body part of an echoed request.
fn echoed_body(echo: &str) -> &str {
    echo.split_once("\n\n").map_or("", |(_, body)| body)
}

#[tokio::test]
async fn a_port_out_of_range_is_a_bad_url_as_in_curl() {
    for url in [
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:65536/",
        "http://[::1]:70000/",
        "127.0.0.1:1x/",
    ] {
        let run = nettrace(&[url]).await;
        assert_eq!(run.code, 3, "{url}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.starts_with("nettrace: bad URL"),
            "{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("TCP connect"),
            "{url} must not be dialled: {}",
            run.stdout
        );
        if let Some(curl) = curl(&["-sS", url]).await {
            assert_eq!(curl.code, 3, "curl {url}: {}", curl.stderr);
        }
    }
}

#[tokio::test]
async fn repeated_headers_are_all_sent_as_curl_sends_them() {
    let (addr, _) = echo_server("127.0.0.1").await;
    let url = format!("http://{addr}/h");
    let dir = TempDir::new("headers");
    let ours = dir.path("ours");
    let theirs = dir.path("theirs");
    let flags = [
        "-H",
        "X-Test: one",
        "-H",
        "X-Test: two",
        "-H",
        "Accept:",
        "-H",
        "X-Empty;",
        "-H",
        "User-Agent: tester",
    ];
    let mut args = vec![url.as_str(), "-o", &ours];
    args.extend(flags);
    let run = nettrace(&args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let echo = std::fs::read_to_string(&ours).unwrap();
    assert_eq!(
        echoed(&echo, "x-test"),
        ["x-test: one", "x-test: two"],
        "{echo}"
    );
    assert!(
        echoed(&echo, "accept").is_empty(),
        "Accept: removes it: {echo}"
    );
    assert_eq!(echoed(&echo, "x-empty"), ["x-empty: "], "{echo}");
    assert_eq!(
        echoed(&echo, "user-agent"),
        ["user-agent: tester"],
        "{echo}"
    );

    let mut args = vec!["-sS", url.as_str(), "-o", &theirs];
    args.extend(flags);
    if let Some(curl) = curl(&args).await {
        assert_eq!(curl.code, 0, "{}", curl.stderr);
        let theirs = std::fs::read_to_string(&theirs).unwrap();
        for name in ["x-test", "accept", "x-empty", "user-agent"] {
            assert_eq!(
                echoed(&echo, name),
                echoed(&theirs, name),
                "{name}: {theirs}"
            );
        }
    }
}

#[tokio::test]
async fn data_flags_read_files_as_curl_does() {
    let (addr, _) = echo_server("127.0.0.1").await;
    let url = format!("http://{addr}/d");
    let dir = TempDir::new("data");
    let file = dir.path("body.txt");
    std::fs::write(&file, "a=1\r\nb=2\n").unwrap();
    let at_file = format!("@{file}");
    let cases: [(&[&str], &str); 5] = [
        (&["-d", &at_file], "a=1b=2"),
        (&["--data-binary", &at_file], "a=1\r\nb=2\n"),
        (&["--data-raw", &at_file], &at_file),
        (
            &["-d", "x=1", "--data-raw", "y=2", "-d", "z=3"],
            "x=1&y=2&z=3",
        ),
        (&["--data-binary", "@-"], ""),
    ];
    for (i, (flags, want)) in cases.into_iter().enumerate() {
        let ours = dir.path(&format!("ours{i}"));
        let mut args = vec![url.as_str(), "-o", &ours];
        args.extend(flags);
        let run = nettrace(&args).await;
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        let echo = std::fs::read_to_string(&ours).unwrap();
        assert!(echo.starts_with("POST\n"), "{flags:?}: {echo}");
        assert_eq!(echoed_body(&echo), want, "{flags:?}");

        let theirs = dir.path(&format!("theirs{i}"));
        let mut args = vec!["-sS", url.as_str(), "-o", &theirs];
        args.extend(flags);
        if let Some(curl) = curl(&args).await {
            assert_eq!(curl.code, 0, "curl {flags:?}: {}", curl.stderr);
            let theirs = std::fs::read_to_string(&theirs).unwrap();
            assert_eq!(echoed_body(&theirs), want, "curl {flags:?}");
        }
    }
    let missing = format!("@{}", dir.path("missing"));
    let run = nettrace(&[&url, "-d", &missing]).await;
    assert_eq!(run.code, 26, "{}", run.stderr);
}

/// A DNS server that knows no name: every lookup the tests do not mean to make fails
/// fast instead of reaching the system's resolver.
async fn nx_dns() -> DnsServer {
    DnsServer::start().await
}

#[tokio::test]
async fn resolve_entries_apply_to_their_port_and_take_address_lists() {
    let dns = nx_dns().await;
    dns.insert("a.test", Entry::new().reply(Reply::NxDomain));
    let dns_flag = dns.addr().to_string();
    let one = HttpServer::plain("127.0.0.1").await;
    let two = HttpServer::plain("127.0.0.2").await;
    let (p1, p2) = (one.addr().port(), two.addr().port());
    let url1 = format!("http://a.test:{p1}/1");
    let url2 = format!("http://a.test:{p2}/2");

    // An entry for another port does not apply (curl: it would not either).
    let other_port = if p1 == 1 { 2 } else { 1 };
    let run = nettrace(&[
        &url1,
        "--dns-servers",
        &dns_flag,
        "--resolve",
        &format!("a.test:{other_port}:127.0.0.1"),
    ])
    .await;
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);

    // Two entries for one host, on two ports, are both kept; one run, two URLs.
    let run = nettrace(&[
        &url1,
        &url2,
        "--json",
        "--dns-servers",
        &dns_flag,
        "--resolve",
        &format!("a.test:{p1}:127.0.0.1"),
        "--resolve",
        &format!("A.TEST:{p2}:127.0.0.2"),
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(lines[0]["hops"][0]["remote_addr"], one.addr().to_string());
    assert_eq!(lines[1]["hops"][0]["remote_addr"], two.addr().to_string());

    // A later entry for the same HOST:PORT replaces the earlier; -HOST:PORT drops it.
    let run = nettrace(&[
        &url1,
        "--dns-servers",
        &dns_flag,
        "--resolve",
        &format!("a.test:{p1}:127.0.0.9"),
        "--resolve",
        &format!("a.test:{p1}:127.0.0.1"),
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = nettrace(&[
        &url1,
        "--dns-servers",
        &dns_flag,
        "--resolve",
        &format!("a.test:{p1}:127.0.0.1"),
        "--resolve",
        &format!("-a.test:{p1}"),
    ])
    .await;
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);

    // "*" is any host at that port.
    let run = nettrace(&[
        &url1,
        "--dns-servers",
        &dns_flag,
        "--resolve",
        &format!("*:{p1}:127.0.0.1"),
    ])
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // Bad entries: usage errors (2), one line that says what is wrong.
    for bad in [
        "a.test",
        "a.test:80",
        "a.test:80:",
        "a.test:99999:127.0.0.1",
        "a.test:80:127.0.0.1,nope",
        "a.test:80:[::1",
        ":80:127.0.0.1",
    ] {
        let run = nettrace(&[&url1, "--resolve", bad]).await;
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr
                .starts_with("nettrace: --resolve wants HOST:PORT:ADDR"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[tokio::test]
async fn a_resolve_address_list_sets_up_a_dual_stack_race() {
    // A server on [::1]:P while 127.0.0.1:P refuses.
    let server = loop {
        let server = HttpServer::plain("::1").await;
        if std::net::TcpListener::bind(("127.0.0.1", server.addr().port())).is_ok() {
            break server;
        }
    };
    let port = server.addr().port();
    let url = format!("http://race.test:{port}/");
    for list in ["127.0.0.1,::1", "127.0.0.1,[::1]"] {
        let entry = format!("race.test:{port}:{list}");
        let run = nettrace(&[&url, "--json", "--resolve", &entry]).await;
        assert_eq!(run.code, 0, "{list}: {}{}", run.stdout, run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        let attempts = v["hops"][0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{}", v["hops"][0]);
        // The order given is kept, as for a DNS answer from --resolve.
        assert_eq!(attempts[0]["addr"], format!("127.0.0.1:{port}"));
        assert_eq!(attempts[0]["outcome"], "failed");
        assert_eq!(attempts[1]["addr"], format!("[::1]:{port}"));
        assert_eq!(attempts[1]["outcome"], "connected");
        assert_eq!(
            v["hops"][0]["dns"]["addrs"],
            serde_json::json!(["127.0.0.1", "::1"])
        );
        if let Some(curl) = curl(&["-sS", "-o", "/dev/null", &url, "--resolve", &entry]).await {
            assert_eq!(curl.code, 0, "curl {list}: {}", curl.stderr);
        }
    }
}

/// A TCP server that accepts connections and never says a word: a TLS handshake with
/// it never ends.
async fn mute_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test]
async fn tls_failures_have_curls_exit_codes_and_read_as_text() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &ca, &[b"http/1.1"]).await;
    let dir = TempDir::new("tls-codes");
    let other_pem = dir.path("other.pem");
    std::fs::write(&other_pem, other.ca_pem()).unwrap();
    let ca_pem = dir.path("ca.pem");
    std::fs::write(&ca_pem, ca.ca_pem()).unwrap();
    let port = server.addr().port();
    let no_debug = |text: &str| {
        for debug in [
            "Other(",
            "OtherError",
            "DnsName(",
            "UnknownIssuer",
            "Context {",
        ] {
            assert!(!text.contains(debug), "Rust Debug text {debug:?} in {text}");
        }
    };

    // Not signed by a trusted CA (one with the same name signed it, so webpki reports a
    // bad signature rather than an unknown issuer): 60, as curl.
    let url = format!("https://localhost:{port}/");
    let resolve = resolve_flag("localhost", server.addr());
    let run = nettrace(&[&url, "--resolve", &resolve, "--cacert", &other_pem]).await;
    assert_eq!(run.code, 60, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("nettrace: TLS handshake with localhost failed: invalid peer certificate: bad signature"),
        "{}",
        run.stderr
    );
    no_debug(&run.stderr);
    no_debug(&run.stdout);
    let json = nettrace(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        &other_pem,
        "--json",
    ])
    .await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["error"]["exit_code"], 60);
    assert_eq!(v["error"]["kind"], "tls_certificate");
    let tls_error = v["hops"][0]["tls"]["error"].as_str().unwrap();
    assert!(tls_error.contains("bad signature"), "{tls_error}");
    no_debug(tls_error);
    if let Some(curl) = curl(&["-sS", &url, "--resolve", &resolve, "--cacert", &other_pem]).await {
        assert_eq!(curl.code, 60, "{}", curl.stderr);
    }
    // Without --cacert (the built-in roots), the issuer is unknown: 60 too.
    let run = nettrace(&[&url, "--resolve", &resolve]).await;
    assert_eq!(run.code, 60, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("invalid peer certificate: unknown issuer"),
        "{}",
        run.stderr
    );
    no_debug(&run.stderr);
    if let Some(curl) = curl(&["-sS", &url, "--resolve", &resolve]).await {
        assert_eq!(curl.code, 60, "{}", curl.stderr);
    }

    // A name the certificate does not cover: 60, with the names it does cover.
    let wrong = format!("https://wrong.test:{port}/");
    let wrong_resolve = resolve_flag("wrong.test", server.addr());
    let run = nettrace(&[&wrong, "--resolve", &wrong_resolve, "--cacert", &ca_pem]).await;
    assert_eq!(run.code, 60, "{}", run.stderr);
    assert!(
        run.stderr.contains("not valid for wrong.test"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("localhost"), "{}", run.stderr);
    no_debug(&run.stderr);
    no_debug(&run.stdout);
    if let Some(curl) = curl(&[
        "-sS",
        &wrong,
        "--resolve",
        &wrong_resolve,
        "--cacert",
        &ca_pem,
    ])
    .await
    {
        assert_eq!(curl.code, 60, "{}", curl.stderr);
    }

    // Another TLS failure (the server speaks plain HTTP): 35.
    let plain = HttpServer::plain("127.0.0.1").await;
    let url = format!("https://localhost:{}/", plain.addr().port());
    let resolve = resolve_flag("localhost", plain.addr());
    let run = nettrace(&[&url, "--resolve", &resolve, "--cacert", &ca_pem]).await;
    assert_eq!(run.code, 35, "{}", run.stderr);
    no_debug(&run.stderr);
    if let Some(curl) = curl(&["-sS", &url, "--resolve", &resolve, "--cacert", &ca_pem]).await {
        assert_eq!(curl.code, 35, "{}", curl.stderr);
    }

    // A handshake that never ends: 28 once --connect-timeout is up, as curl.
    let mute = mute_server().await;
    let url = format!("https://localhost:{}/", mute.port());
    let resolve = resolve_flag("localhost", mute);
    let started = Instant::now();
    let run = nettrace(&[&url, "--resolve", &resolve, "--connect-timeout", "0.5"]).await;
    assert_eq!(run.code, 28, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr
            .starts_with("nettrace: TLS handshake with localhost timed out"),
        "{}",
        run.stderr
    );
    if let Some(curl) = curl(&[
        "-sS",
        &url,
        "--resolve",
        &resolve,
        "--connect-timeout",
        "0.5",
    ])
    .await
    {
        assert_eq!(curl.code, 28, "{}", curl.stderr);
    }
}

#[tokio::test]
async fn http2_falls_back_on_http_and_prior_knowledge_is_its_own_flag() {
    // --http2 on http:// against an HTTP/1.1-only server works, in HTTP/1.1, as curl's.
    let (addr, _) = echo_server("127.0.0.1").await;
    let url = format!("http://{addr}/h2");
    let run = nettrace(&[&url, "--http2", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["hops"][0]["http_version"], "HTTP/1.1");
    if let Some(curl) = curl(&["-sS", "-o", "/dev/null", &url, "--http2"]).await {
        assert_eq!(curl.code, 0, "{}", curl.stderr);
    }
    // Prior knowledge against that server fails, as curl's does.
    let run = nettrace(&[&url, "--http2-prior-knowledge"]).await;
    assert_ne!(run.code, 0, "{}", run.stdout);
    if let Some(curl) = curl(&["-sS", "-o", "/dev/null", &url, "--http2-prior-knowledge"]).await {
        assert_ne!(curl.code, 0, "{}", curl.stderr);
    }
    // ... and speaks h2c to a server that can.
    let h2c = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://{}/h2c", h2c.addr());
    let run = nettrace(&[&url, "--http2-prior-knowledge", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["hops"][0]["http_version"], "HTTP/2.0");

    // Over TLS, --http2 offers h2 and http/1.1: an HTTP/1.1-only server is fine.
    let ca = TestCa::new();
    let tls = HttpServer::tls("127.0.0.1", &ca, &[b"http/1.1"]).await;
    let url = format!("https://localhost:{}/", tls.addr().port());
    let resolve = resolve_flag("localhost", tls.addr());
    let run = nettrace(&[&url, "-k", "--resolve", &resolve, "--http2", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["hops"][0]["tls"]["alpn"], "http/1.1");
    // --http1.1 and the HTTP/2 flags exclude each other.
    let run = nettrace(&[&url, "--http1.1", "--http2-prior-knowledge"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test]
async fn zero_timeouts_mean_no_limit_and_bad_values_are_usage_errors() {
    let server = HttpServer::plain("127.0.0.1").await;
    server.set_delay(Duration::from_millis(300));
    let url = format!("http://{}/slow", server.addr());
    for flags in [
        &["-m", "0"][..],
        &["--connect-timeout", "0"],
        &["-m", "0", "--connect-timeout", "0"],
    ] {
        let mut args = vec![url.as_str()];
        args.extend(flags);
        let run = nettrace(&args).await;
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        let mut args = vec!["-sS", "-o", "/dev/null", url.as_str()];
        args.extend(flags);
        if let Some(curl) = curl(&args).await {
            assert_eq!(curl.code, 0, "curl {flags:?}: {}", curl.stderr);
        }
    }
    for flags in [
        &["--attempt-delay", "0"][..],
        &["--attempt-delay", "99999"],
        &["--happy-eyeballs-timeout-ms", "9"],
        &["--happy-eyeballs-timeout-ms", "2001"],
        &["-m", "-1"],
        &["--connect-timeout", "NaN"],
        &["--dns-servers", "127.0.0.1:x"],
    ] {
        let mut args = vec![url.as_str()];
        args.extend(flags);
        let run = nettrace(&args).await;
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{flags:?}: {}", run.stdout);
    }
    for flags in [
        &["--attempt-delay", "10"][..],
        &["--happy-eyeballs-timeout-ms", "2000"],
    ] {
        let mut args = vec![url.as_str()];
        args.extend(flags);
        let run = nettrace(&args).await;
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
    }
}

#[tokio::test]
async fn dns_servers_take_a_list_and_a_silent_server_is_could_not_resolve() {
    let dns = DnsServer::start().await;
    let server = HttpServer::plain("127.0.0.1").await;
    dns.insert("listed.test", Entry::new().a("127.0.0.1"));
    dns.insert("mute.test", Entry::new().reply(Reply::Silent));
    let url = format!("http://listed.test:{}/", server.addr().port());
    let one = dns.addr().to_string();
    let two = format!("{one},{one}");
    for flags in [
        ["--dns-servers", one.as_str()],
        ["--dns-server", &one],
        ["--dns-servers", &two],
    ] {
        let run = nettrace(&[&url, flags[0], flags[1]]).await;
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
    }

    // No timeout given: the resolver gives up on its own (2 s per query, asked twice)
    // and that is "could not resolve" (6), as curl's resolver failing, not a timeout.
    let started = Instant::now();
    let run = nettrace(&["http://mute.test/", "--dns-servers", &one]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("nettrace: could not resolve host"),
        "{}",
        run.stderr
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(12),
        "{took:?}"
    );
    // With a shorter --connect-timeout, that limit ends it: a timeout (28).
    let run = nettrace(&[
        "http://mute.test/",
        "--dns-servers",
        &one,
        "--connect-timeout",
        "0.5",
    ])
    .await;
    assert_eq!(run.code, 28, "{}", run.stderr);
}

#[tokio::test]
async fn a_url_with_a_subcommand_is_a_usage_error() {
    let live = Live::on("127.0.0.1").await;
    let target = live.addr.to_string();
    for args in [
        &["http://a.test/", "dial", &target][..],
        &["http://a.test/", "demo"],
        &["dial", &target, "http://a.test/"],
    ] {
        let run = nettrace(args).await;
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
}

#[tokio::test]
async fn silent_hides_messages_and_show_error_brings_errors_back() {
    let dead = refused("127.0.0.1");
    let url = format!("http://{dead}/");
    let run = nettrace(&[&url, "-s"]).await;
    assert_eq!(run.code, 7);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = nettrace(&[&url, "-sS"]).await;
    assert_eq!(run.code, 7);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("nettrace: could not connect"),
        "{}",
        run.stderr
    );
    if let Some(curl) = curl(&[&url, "-s"]).await {
        assert_eq!((curl.code, curl.stderr.as_str()), (7, ""));
    }

    // With the body on stdout the waterfall goes to stderr; -s keeps it off.
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://{}/quiet", server.addr());
    let run = nettrace(&[&url, "-o", "-", "-s"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "hello from /quiet");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let run = nettrace(&[&url, "-o", "-"]).await;
    assert!(run.stderr.contains("TCP connect"), "{}", run.stderr);
}

#[tokio::test]
async fn several_urls_share_one_pool_and_exit_as_the_last_one() {
    let (addr, connections) = echo_server("127.0.0.1").await;
    let first = format!("http://{addr}/one");
    let second = format!("http://{addr}/two");
    let run = nettrace(&[&first, &second, "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(lines[0]["hops"][0]["url"], first);
    assert_eq!(lines[0]["hops"][0]["reused"], false);
    assert_eq!(lines[1]["hops"][0]["url"], second);
    assert_eq!(lines[1]["hops"][0]["reused"], true);
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The waterfall: one block per URL, in order.
    let run = nettrace(&[&first, &second]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let at = |needle: &str| {
        run.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {}", run.stdout))
    };
    assert!(at(&format!("GET {first}")) < at(&format!("GET {second}")));

    // The exit code is the last URL's, as curl's (a failure then a success is 0).
    let dead = format!("http://{}/", refused("127.0.0.1"));
    for (urls, want) in [
        ([dead.as_str(), first.as_str()], 0),
        ([first.as_str(), dead.as_str()], 7),
    ] {
        let run = nettrace(&urls).await;
        assert_eq!(run.code, want, "{urls:?}: {}", run.stderr);
        if let Some(curl) =
            curl(&["-s", "-o", "/dev/null", "-o", "/dev/null", urls[0], urls[1]]).await
        {
            assert_eq!(curl.code, want, "curl {urls:?}");
        }
    }

    // -o pairs with the URLs in order.
    let dir = TempDir::new("several");
    let (a, b) = (dir.path("a"), dir.path("b"));
    let run = nettrace(&[&first, &second, "-o", &a, "-o", &b]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(&a).unwrap().starts_with("GET\n"));
    assert!(std::fs::read_to_string(&b).unwrap().starts_with("GET\n"));
}

#[tokio::test]
async fn verbose_shows_the_request_headers_that_were_sent() {
    // What -v prints after "> " is what the server received (Content-Length included,
    // as curl's -v shows it), for a GET, a POST with a body and a POST with an empty one,
    // in HTTP/1.1 and in HTTP/2 (where an empty POST has `content-length: 0`).
    let (addr, _) = echo_server_speaking("127.0.0.1", true).await;
    let url = format!("http://{addr}/v");
    let dir = TempDir::new("verbose-sent");
    let h2 = "--http2-prior-knowledge";
    let cases: [&[&str]; 7] = [
        &[],
        &["-d", "a=1&b=2"],
        &["--data-binary", "@-"],
        &[h2],
        &[h2, "-d", "a=1&b=2"],
        &[h2, "--data-binary", "@-"],
        &[h2, "-X", "DELETE"],
    ];
    for (i, flags) in cases.into_iter().enumerate() {
        let out = dir.path(&format!("echo{i}"));
        let mut args = vec![url.as_str(), "-v", "-o", &out];
        args.extend(flags);
        let run = nettrace(&args).await;
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        let mut sent = run.stderr.lines().filter_map(|l| l.strip_prefix("> "));
        let request_line = sent.next().unwrap_or_default();
        let h2 = flags.contains(&"--http2-prior-knowledge");
        let version = if h2 { "HTTP/2" } else { "HTTP/1.1" };
        assert!(request_line.ends_with(version), "{flags:?}: {request_line}");
        // In HTTP/2 Host travels as :authority, which the server does not list.
        let mut shown: Vec<String> = sent
            .map(str::to_ascii_lowercase)
            .filter(|l| !(h2 && l.starts_with("host: ")))
            .collect();
        let echo = std::fs::read_to_string(&out).unwrap();
        let mut received: Vec<String> = echo
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_ascii_lowercase)
            .collect();
        shown.sort();
        received.sort();
        assert_eq!(shown, received, "{flags:?}:\n{}\n{echo}", run.stderr);
    }
}

#[tokio::test]
async fn a_scheme_other_than_http_is_an_unsupported_protocol_as_in_curl() {
    for url in ["foo://127.0.0.1:1/", "FTP://127.0.0.1:1/", "a+b.c-d://x/"] {
        let run = nettrace(&[url]).await;
        assert_eq!(run.code, 1, "{url}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with("nettrace: protocol"),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "{url} must not be dialled: {}",
            run.stdout
        );
        let json = nettrace(&[url, "--json"]).await;
        let v: Value = serde_json::from_str(&json.stdout).expect("one JSON object");
        assert_eq!(v["error"]["kind"], "unsupported_protocol");
    }
    // Not a scheme (curl: malformed, 3).
    let run = nettrace(&["://127.0.0.1/"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    if let Some(curl) = curl(&["-sS", "foo://127.0.0.1:1/"]).await {
        assert_eq!(curl.code, 1, "{}", curl.stderr);
    }

    // A redirect there with -L: 1 as well, after the hop that sent it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|_: http::Request<hyper::body::Incoming>| async {
                        let mut response = http::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = http::StatusCode::FOUND;
                        response
                            .headers_mut()
                            .insert(http::header::LOCATION, "foo://elsewhere/".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let url = format!("http://{addr}/");
    let run = nettrace(&[&url, "-L"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("HTTP/1.1 302 Found"), "{}", run.stdout);
    assert!(run.stderr.contains("foo://elsewhere/"), "{}", run.stderr);
    if let Some(curl) = curl(&["-sS", "-L", "-o", "/dev/null", &url]).await {
        assert_eq!(curl.code, 1, "{}", curl.stderr);
    }
}
