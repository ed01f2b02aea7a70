//! `-w/--write-out` against loopback servers, side by side with curl where curl is
//! installed (without curl, each test still checks our output against known values).

use std::net::SocketAddr;
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

use super::http_server::{HttpServer, TestCa};
use super::net::{refused, Live};
use super::{nettrace, redirect_server, resolve_flag, Run};

/// curl, when installed: `-q` first (no ~/.curlrc), no proxy, silent.
async fn curl(args: &[&str]) -> Option<Run> {
    let output = Command::new("curl")
        .arg("-q")
        .args(["-s", "--noproxy", "*"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    Some(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A `time_*` value: seconds with six decimals, under 10 s.
fn secs(text: &str) -> f64 {
    let (whole, frac) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("not seconds: {text:?}"));
    assert!(
        whole.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 6,
        "not curl's format: {text:?}"
    );
    let value: f64 = text.parse().unwrap();
    assert!(value < 10.0, "implausible: {text}");
    value
}

const SHAPE: &str = "%{http_code} %{http_version} %{remote_ip} %{remote_port} %{local_ip} \
                     %{num_connects} \
                     %{size_download} %{size_header} %{num_headers} %{exitcode} \
                     %{ssl_verify_result} %{scheme} %{url_effective}\\n";

#[tokio::test]
async fn write_out_values_equal_curls_over_plain_http() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://wo.test:{}/abc", server.addr().port());
    let resolve = resolve_flag("wo.test", server.addr());
    let ours = nettrace(&[&url, "--resolve", &resolve, "-w", SHAPE]).await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    // The body is "hello from /abc"; the head is the status line, content-length, date
    // (29 bytes of value) and x-http-version, then an empty line.
    let head = 17 + 20 + 37 + 26 + 2;
    assert_eq!(
        ours.stdout,
        format!(
            "200 1.1 127.0.0.1 {} 127.0.0.1 1 15 {head} 3 0 0 HTTP {url}\n",
            server.addr().port()
        ),
        "stdout holds -w's text only; the waterfall went to stderr"
    );
    assert!(ours.stderr.contains("TCP connect #0"), "{}", ours.stderr);
    if let Some(theirs) = curl(&[&url, "--resolve", &resolve, "-o", "/dev/null", "-w", SHAPE]).await
    {
        assert_eq!(ours.stdout, theirs.stdout, "{}", theirs.stderr);
    }

    let times = "%{time_namelookup} %{time_connect} %{time_pretransfer} %{time_starttransfer} \
                 %{time_total} %{time_appconnect} %{time_redirect}";
    let ours = nettrace(&[
        &url,
        "--resolve",
        &resolve,
        "-w",
        &format!("{times} %{{time_posttransfer}} %{{time_queue}}"),
    ])
    .await;
    let t: Vec<f64> = ours.stdout.split(' ').map(secs).collect();
    let (ordered, zero) = (&t[..5], &t[5..]);
    assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "{}", ours.stdout);
    assert!(t[4] > 0.0, "{}", ours.stdout);
    assert_eq!(
        zero[..2],
        [0.0, 0.0],
        "no TLS, no redirect: {}",
        ours.stdout
    );
    // posttransfer: the request was sent after it got its connection, before the answer.
    assert!(t[2] <= zero[2] && zero[2] <= t[3], "{}", ours.stdout);
    assert_eq!(zero[3], 0.0, "time_queue: {}", ours.stdout);
    if let Some(theirs) = curl(&[&url, "--resolve", &resolve, "-o", "/dev/null", "-w", times]).await
    {
        let c: Vec<f64> = theirs.stdout.split(' ').map(secs).collect();
        assert!(c[..5].windows(2).all(|w| w[0] <= w[1]), "{}", theirs.stdout);
        assert_eq!(c[5..], [0.0, 0.0]);
    }
}

#[tokio::test]
async fn write_out_values_equal_curls_over_tls() {
    let ca = TestCa::new();
    let server = HttpServer::tls("127.0.0.1", &ca, &[b"h2", b"http/1.1"]).await;
    let dir = std::env::temp_dir().join(format!("nettrace-wo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cacert = dir.join("ca.pem");
    std::fs::write(&cacert, ca.ca_pem()).unwrap();
    let cacert = cacert.to_str().unwrap();
    let url = format!("https://localhost:{}/tls", server.addr().port());
    let resolve = resolve_flag("localhost", server.addr());
    let format = "%{http_code} %{http_version} %{remote_ip} %{remote_port} %{num_connects} \
                  %{size_download} %{ssl_verify_result} %{scheme}";
    let ours = nettrace(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        cacert,
        "-w",
        format,
    ])
    .await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    assert_eq!(
        ours.stdout,
        format!("200 2 127.0.0.1 {} 1 15 0 HTTPS", server.addr().port())
    );
    let theirs = curl(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        cacert,
        "-o",
        "/dev/null",
        "-w",
        format,
    ])
    .await;
    if let Some(theirs) = theirs {
        assert_eq!(ours.stdout, theirs.stdout, "{}", theirs.stderr);
    }

    let ours = nettrace(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        cacert,
        "-w",
        "%{time_connect} %{time_appconnect} %{time_pretransfer}",
    ])
    .await;
    let t: Vec<f64> = ours.stdout.split(' ').map(secs).collect();
    assert!(0.0 < t[0] && t[0] < t[1] && t[1] <= t[2], "{}", ours.stdout);

    // Trusting another CA of the same name: curl's verify result (no issuer found).
    let other = TestCa::new();
    let other_pem = dir.join("other.pem");
    std::fs::write(&other_pem, other.ca_pem()).unwrap();
    let format = "%{http_code} %{ssl_verify_result} %{num_connects}";
    let ours = nettrace(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        other_pem.to_str().unwrap(),
        "-w",
        format,
    ])
    .await;
    assert_eq!(ours.stdout, "000 20 1", "{}", ours.stderr);
    let theirs = curl(&[
        &url,
        "--resolve",
        &resolve,
        "--cacert",
        other_pem.to_str().unwrap(),
        "-w",
        format,
    ])
    .await;
    if let Some(theirs) = theirs {
        assert_eq!(ours.stdout, theirs.stdout, "{}", theirs.stderr);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn write_out_after_redirects_equals_curls() {
    let addr = redirect_server().await;
    let url = format!("http://{addr}/r/2");
    let format = "%{http_code} %{num_redirects} %{num_connects} %{url_effective} \
                  %{size_download} %{size_header} [%{redirect_url}]";
    let ours = nettrace(&[&url, "-L", "-w", format]).await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    // Three heads: two 302s (content-length, date, location) and the 200.
    let found = 20 + 19 + 37 + 16 + 2;
    let ok = 17 + 19 + 37 + 2;
    assert_eq!(
        ours.stdout,
        format!("200 2 1 http://{addr}/r/0 4 {} []", 2 * found + ok)
    );
    if let Some(theirs) = curl(&[&url, "-L", "-o", "/dev/null", "-w", format]).await {
        assert_eq!(ours.stdout, theirs.stdout, "{}", theirs.stderr);
    }
    let ours = nettrace(&[&url, "-L", "-w", "%{time_redirect} %{time_total}"]).await;
    let t: Vec<f64> = ours.stdout.split(' ').map(secs).collect();
    assert!(0.0 < t[0] && t[0] < t[1], "{}", ours.stdout);

    // Not followed: where it leads.
    let format = "%{http_code} %{num_redirects} %{redirect_url}";
    let ours = nettrace(&[&url, "-w", format]).await;
    assert_eq!(ours.stdout, format!("302 0 http://{addr}/r/1"));
    if let Some(theirs) = curl(&[&url, "-o", "/dev/null", "-w", format]).await {
        assert_eq!(ours.stdout, theirs.stdout, "{}", theirs.stderr);
    }
}

#[tokio::test]
async fn write_out_of_a_refused_connection() {
    let addr = refused("127.0.0.1");
    let url = format!("http://{addr}/");
    let format = "%{http_code} %{exitcode} %{num_connects} %{remote_port} [%{local_ip}]";
    let ours = nettrace(&[
        &url,
        "-w",
        &format!("{format} %{{num_attempts}} %{{attempts}}"),
    ])
    .await;
    assert_eq!(ours.code, 7, "{}", ours.stderr);
    assert_eq!(ours.stdout, format!("000 7 0 0 [] 1 {addr} refused"));
    if let Some(theirs) = curl(&[&url, "-w", format]).await {
        assert_eq!(theirs.code, 7);
        assert_eq!(format!("{} 1 {addr} refused", theirs.stdout), ours.stdout);
    }
    // The rest after %{onerror} only when the run failed.
    let ours = nettrace(&[&url, "-w", "a%{onerror}b %{errormsg}"]).await;
    assert!(
        ours.stdout.starts_with("ab could not connect"),
        "{}",
        ours.stdout
    );
}

#[tokio::test]
async fn write_out_json_has_curls_keys_and_values() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://{}/json", server.addr());
    let out = std::env::temp_dir().join(format!("nettrace-wo-body-{}", std::process::id()));
    let out = out.to_str().unwrap();
    let ours = nettrace(&[&url, "-o", out, "-w", "%{json}"]).await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    let v: Value = serde_json::from_str(&ours.stdout).expect("one JSON object");
    assert_eq!(v["http_code"], 200);
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(v["remote_port"], server.addr().port());
    assert_eq!(v["num_attempts"], 1);
    assert_eq!(v["attempts"], format!("{} connected", server.addr()));
    assert_eq!(v["filename_effective"], out);
    assert!(v["time_total"].as_f64().unwrap() > 0.0);
    let Some(theirs) = curl(&[&url, "-o", out, "-w", "%{json}"]).await else {
        return;
    };
    let c: Value = serde_json::from_str(&theirs.stdout).unwrap();
    let ours_only = [
        "attempts",
        "num_attempts",
        "time_posttransfer",
        "time_queue",
    ];
    for (key, value) in v.as_object().unwrap() {
        if ours_only.contains(&key.as_str()) {
            continue;
        }
        let theirs = c.get(key).unwrap_or_else(|| panic!("curl has no {key:?}"));
        if key.starts_with("time_") || key.starts_with("speed_") || key == "local_port" {
            assert_eq!(value.is_number(), theirs.is_number(), "{key}");
        } else {
            assert_eq!(value, theirs, "{key}");
        }
    }
    std::fs::remove_file(out).ok();
}

#[tokio::test]
async fn write_out_reads_a_file_warns_and_switches_streams() {
    let server = HttpServer::plain("127.0.0.1").await;
    let url = format!("http://{}/f", server.addr());
    let file = std::env::temp_dir().join(format!("nettrace-wo-fmt-{}", std::process::id()));
    // Line ends in the file are dropped, as curl does; `\n` is the escape.
    std::fs::write(&file, "%{http_code}\\n\n%{bogus}%{stderr}E%{stdout}%%\n").unwrap();
    let arg = format!("@{}", file.display());
    let ours = nettrace(&[&url, "-w", &arg]).await;
    assert_eq!(ours.stdout, "200\n%");
    assert!(
        ours.stderr
            .contains("unknown --write-out variable: 'bogus'\n"),
        "{}",
        ours.stderr
    );
    assert!(ours.stderr.ends_with('E'), "{:?}", ours.stderr);
    if let Some(theirs) = curl(&[&url, "-o", "/dev/null", "-w", &arg]).await {
        assert_eq!(ours.stdout, theirs.stdout);
    }
    std::fs::remove_file(&file).ok();
}

#[tokio::test]
async fn write_out_of_a_dial() {
    let live = Live::on("127.0.0.1").await;
    let target: SocketAddr = live.addr;
    let run = nettrace(&[
        "dial",
        &target.to_string(),
        "-w",
        "%{remote_ip} %{remote_port} %{num_connects} %{http_code} %{time_connect}",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (head, time) = run.stdout.rsplit_once(' ').unwrap();
    assert_eq!(head, format!("127.0.0.1 {} 1 000", target.port()));
    assert!(secs(time) > 0.0);
}

#[tokio::test]
async fn write_out_runs_once_per_url_with_its_number_as_curls() {
    let server = HttpServer::plain("127.0.0.1").await;
    let first = format!("http://wo.test:{}/a", server.addr().port());
    let second = format!("http://wo.test:{}/b", server.addr().port());
    let resolve = resolve_flag("wo.test", server.addr());
    let format = "%{urlnum} %{url_effective} %{num_connects}\\n";
    let null = "/dev/null";
    let args = [
        &first,
        "-o",
        null,
        &second,
        "-o",
        null,
        "--resolve",
        &resolve,
        "-w",
        format,
    ];
    let ours = nettrace(&args).await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    // The second request reuses the first's connection: no new connect.
    assert_eq!(ours.stdout, format!("0 {first} 1\n1 {second} 0\n"));
    if let Some(theirs) = curl(&args).await {
        assert_eq!(ours.stdout, theirs.stdout);
    }
}
