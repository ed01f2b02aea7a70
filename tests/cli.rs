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
    let output = Command::new(env!("CARGO_BIN_EXE_nettrace"))
        .args(args)
        .env_remove("NO_COLOR")
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
        lines[1].trim_start().starts_with("DNS lookup"),
        "{}",
        run.stdout
    );
    assert!(lines[2].contains("TCP connect #0") && lines[2].contains("connected"));
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
    assert_eq!(v["schema_version"], 1);
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
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dial_mode_traces_a_bare_connection() {
    let live = Live::on("127.0.0.1").await;
    let run = nettrace(&["dial", &live.addr.to_string()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("TCP connect #0"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("connected to {}", live.addr)),
        "{}",
        run.stdout
    );

    let json = nettrace(&["dial", &live.addr.to_string(), "--json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["mode"], "dial");
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
