//! `nettrace`: shows where the time goes while an HTTP request or a TCP connection is
//! made — the DNS lookup, every Happy Eyeballs attempt, TLS, server processing and the
//! transfer — as a waterfall, JSON, or a Chrome trace.
//!
//! A thin layer over the `nettrace` library: flags map onto `Dialer`, `Connector`,
//! `TlsConfig` and `HttpClient`, and the hooks' events onto the output.

mod args;
mod collect;
mod demo;
mod export;
mod parse;
mod render;
mod run;
mod writeout;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use crate::args::{Cli, Command, CommonArgs, HttpArgs};
use crate::run::{Failure, Report};

/// Writes one line to stderr; a closed stderr is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        say!("nettrace: internal error: {info}");
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            say!("nettrace: could not start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    let origin = Instant::now();
    let (report, common, http_args) = match cli.command {
        Some(Command::Dial { target, common }) => {
            let common = common.merged(&cli.common);
            let report = limited(&common, run::dial(&target, &common, origin)).await;
            (report, common, HttpArgs::default())
        }
        Some(Command::Demo { common }) => {
            let mut common = common.merged(&cli.common);
            let demo = match demo::start().await {
                Ok(demo) => demo,
                Err(err) => {
                    say!("nettrace: the demo could not start: {err:#}");
                    return 1;
                }
            };
            common.dns_server = Some(demo.dns.to_string());
            let http_args = HttpArgs {
                ca_pem: Some(demo.ca_pem.clone()),
                ..HttpArgs::default()
            };
            if !common.json {
                let preface = format!(
                    "demo: {} resolves (DNS server {}) to ::1, a black hole, and 127.0.0.1, an HTTPS server\n\n",
                    demo::NAME,
                    demo.dns
                );
                if let Err(err) = std::io::stdout().write_all(preface.as_bytes()) {
                    // Nobody reads the output: nothing left to do.
                    return if err.kind() == std::io::ErrorKind::BrokenPipe {
                        0
                    } else {
                        23
                    };
                }
            }
            let report = limited(&common, run::http(&demo.url, &http_args, &common, origin)).await;
            (report, common, http_args)
        }
        None => {
            let url = cli.url.unwrap_or_default();
            let report =
                limited(&cli.common, run::http(&url, &cli.http, &cli.common, origin)).await;
            (report, cli.common, cli.http)
        }
    };
    output(&report, &common, &http_args)
}

/// Runs `work` within `--max-time`.
async fn limited(common: &CommonArgs, work: impl std::future::Future<Output = Report>) -> Report {
    let Some(secs) = common.max_time else {
        return work.await;
    };
    let limit = match run::seconds(secs, "--max-time") {
        Ok(limit) => limit,
        Err(failure) => {
            return Report {
                error: Some(failure),
                ..Report::default()
            }
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(report) => report,
        Err(_) => Report {
            error: Some(Failure::new(
                28,
                "timeout",
                format!("operation timed out after {secs} s (--max-time)"),
            )),
            ..Report::default()
        },
    }
}

/// Prints the report and returns the exit code.
fn output(report: &Report, common: &CommonArgs, http: &HttpArgs) -> u8 {
    let code = report.error.as_ref().map_or(0, |e| e.code);
    if let Some(path) = &common.trace_out {
        let trace = export::chrome_trace(report);
        if let Err(err) = std::fs::write(path, trace.to_string()) {
            say!("nettrace: could not write {}: {err}", path.display());
            return 23;
        }
    }
    let body_on_stdout = http.output.as_deref() == Some("-");
    // With -w, stdout carries what curl's would (the body with -o -, then -w's text).
    let waterfall_on_stderr = body_on_stdout || common.write_out.is_some();
    let text = if common.json {
        format!("{}\n", export::json(report))
    } else {
        let color = !common.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && if waterfall_on_stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
        render::waterfall(report, render::Style { color }, http.head)
    };
    let mut written = if waterfall_on_stderr {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
    };
    if let (Ok(()), Some(format)) = (&written, &common.write_out) {
        written = writeout::print(format, report, 0, http.output.as_deref());
    }
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return 0;
        }
        return 23;
    }
    match &report.error {
        Some(failure) if failure.kind == "broken_pipe" => 0,
        Some(failure) if !common.json => {
            say!("nettrace: {}", failure.message);
            code
        }
        _ => code,
    }
}
