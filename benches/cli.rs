//! The `nettrace` command side by side with curl, in one run on loopback: start-up
//! (`--help`), a bare TCP dial (curl: `telnet://` to a server that closes at once), and a 100 MiB plain-HTTP download to `-o /dev/null` from a
//! server this bench starts. Prints each one's median time over interleaved rounds and the
//! median of the per-round ratios nettrace ÷ curl (target: ≤ 1.00 for start-up and the
//! dial, ≤ 1.05 for the download).
//!
//! Run with `cargo bench --bench cli --features cli` (inside a loopback-only network
//! namespace: `unshare -n sh -c 'ip link set lo up && cargo bench …'`). Rounds:
//! `NETTRACE_BENCH_ROUNDS` (default 15); download size: `NETTRACE_BENCH_MIB` (default 100).
//! Without curl on the PATH it prints nettrace's times only.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Serves `GET` with `mib` MiB of zeros and a Content-Length, one thread per connection.
fn start_server(mib: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                // Read the request head; nobody sends a body.
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let chunk = vec![0u8; 1 << 20];
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\r\n",
                    mib << 20
                );
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..mib {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Accepts connections and closes them at once: something to dial.
fn start_closer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// Runs a command to its end, output discarded, and returns how long it took.
fn time(program: &str, args: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let elapsed = start.elapsed();
    assert!(status.success(), "{program} {args:?}: {status}");
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `rounds` interleaved runs of each; prints the medians and the ratio.
fn compare(name: &str, rounds: usize, ours: &[&str], curl: Option<&[&str]>) {
    let nettrace = env!("CARGO_BIN_EXE_nettrace");
    // One untimed run of each warms the page cache.
    time(nettrace, ours);
    let Some(curl) = curl else {
        let t: Vec<f64> = (0..rounds)
            .map(|_| time(nettrace, ours).as_secs_f64())
            .collect();
        println!(
            "{name:<28} nettrace {:>9.2} ms   (no curl)",
            median(t) * 1e3
        );
        return;
    };
    time("curl", curl);
    let (mut t_ours, mut t_curl) = (Vec::new(), Vec::new());
    // support::paired rotates which goes first each round; its ratio is curl ÷ nettrace.
    let ratios = support::paired(
        rounds,
        &mut [
            &mut || {
                let t = time("curl", curl);
                t_curl.push(t.as_secs_f64());
                t
            },
            &mut || {
                let t = time(nettrace, ours);
                t_ours.push(t.as_secs_f64());
                t
            },
        ],
    );
    println!(
        "{name:<28} nettrace {:>9.2} ms   curl {:>9.2} ms   nettrace ÷ curl {:.3}",
        median(t_ours) * 1e3,
        median(t_curl) * 1e3,
        1.0 / ratios[0]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is ignored: the three always run.
    let rounds: usize = std::env::var("NETTRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let mib: usize = std::env::var("NETTRACE_BENCH_MIB")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let has_curl = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let curl = |args: &'static [&'static str]| has_curl.then_some(args);
    println!("nettrace vs curl, medians of {rounds} interleaved rounds");

    compare(
        "start-up (--help)",
        rounds,
        &["--help"],
        curl(&["-q", "--help"]),
    );

    // A dial: `nettrace dial` against curl's telnet://, which connects, sees the server
    // close and exits.
    let target = start_closer().to_string();
    let telnet = format!("telnet://{target}");
    let connect_only = ["-q", "-s", &telnet];
    compare(
        "dial (TCP connect)",
        rounds,
        &["dial", &target],
        has_curl.then_some(&connect_only[..]),
    );

    let addr = start_server(mib);
    let url = format!("http://{addr}/big");

    let download = ["-q", "-s", "--noproxy", "*", "-o", "/dev/null", &url];
    compare(
        &format!("{mib} MiB download"),
        rounds,
        &[&url, "-o", "/dev/null"],
        has_curl.then_some(&download[..]),
    );
}
