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
mod progress;
mod render;
mod run;
mod tls_text;
mod writeout;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use crate::args::{Cli, Command, CommonArgs, HttpArgs};
use crate::run::{Report, Session};

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
    let cli = Cli::parse_all();
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
    match cli.command {
        Some(Command::Dial { target, common }) => {
            let common = common.merged(&cli.common);
            collect::set_verbose(common.verbose);
            let report = run::dial(&target, &common, origin).await;
            finish(vec![report], &common, &HttpArgs::default())
        }
        Some(Command::Demo { common }) => {
            let mut common = common.merged(&cli.common);
            collect::set_verbose(common.verbose);
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
            urls(std::slice::from_ref(&demo.url), &http_args, &common, origin).await
        }
        None => {
            collect::set_verbose(cli.common.verbose);
            urls(&cli.urls, &cli.http, &cli.common, origin).await
        }
    }
}

/// Requests each URL in turn with one [`Session`] (one pool), printing each report as
/// its URL ends. The exit code is the last URL's, as curl's.
async fn urls(urls: &[String], http: &HttpArgs, common: &CommonArgs, origin: Instant) -> u8 {
    let mut session = match Session::new(http, common) {
        Ok(session) => session,
        Err(failure) => {
            let report = Report {
                error: Some(failure),
                ..Report::default()
            };
            return finish(vec![report], common, http);
        }
    };
    let mut reports = Vec::new();
    let mut code = 0;
    for (i, url) in urls.iter().enumerate() {
        let output = http.output.get(i).map(String::as_str);
        let report = session.http(url, output, origin).await;
        match print(&report, common, Target { urlnum: i, output }, http.head) {
            Printed::Code(c) => code = c,
            Printed::Stop(c) => {
                reports.push(report);
                code = c;
                break;
            }
        }
        reports.push(report);
    }
    match trace_out(reports, common) {
        Some(failed) => failed,
        None => code,
    }
}

/// Prints the reports of a run with one target and returns the exit code.
fn finish(reports: Vec<Report>, common: &CommonArgs, http: &HttpArgs) -> u8 {
    let mut code = 0;
    for (urlnum, report) in reports.iter().enumerate() {
        let output = http.output.get(urlnum).map(String::as_str);
        match print(report, common, Target { urlnum, output }, http.head) {
            Printed::Code(c) => code = c,
            Printed::Stop(c) => {
                code = c;
                break;
            }
        }
    }
    trace_out(reports, common).unwrap_or(code)
}

/// Writes `--trace-out` with the hops of every report, in order; `Some(23)` if it could
/// not be written.
fn trace_out(reports: Vec<Report>, common: &CommonArgs) -> Option<u8> {
    let path = common.trace_out.as_ref()?;
    let mut all = Report::default();
    for report in reports {
        all.mode = report.mode;
        all.hops.extend(report.hops);
        all.error = report.error.or(all.error);
    }
    let trace = export::chrome_trace(&all);
    match std::fs::write(path, trace.to_string()) {
        Ok(()) => None,
        Err(err) => {
            if common.show_errors() {
                say!("nettrace: could not write {}: {err}", path.display());
            }
            Some(23)
        }
    }
}

/// How printing a report ended.
enum Printed {
    /// With this exit code; go on with the next URL.
    Code(u8),
    /// With this exit code, and nobody reads the output any more: stop.
    Stop(u8),
}

/// What one report is printed with: its URL's number and `-o` output.
struct Target<'a> {
    urlnum: usize,
    output: Option<&'a str>,
}

/// Prints one report: the waterfall, or one line of JSON, `-w`'s text, and the error
/// message.
fn print(report: &Report, common: &CommonArgs, target: Target<'_>, head: bool) -> Printed {
    let code = report.error.as_ref().map_or(0, |e| e.code);
    let body_on_stdout = target.output == Some("-");
    // With -w, stdout carries what curl's would (the body with -o -, then -w's text).
    let waterfall_on_stderr = body_on_stdout || common.write_out.is_some();
    let text = if common.json {
        // One compact object per line, so several URLs make JSON Lines.
        format!("{}\n", export::json(report))
    } else {
        let color = !common.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && if waterfall_on_stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
        let width = render::terminal_width(if body_on_stdout { 2 } else { 1 });
        render::waterfall(report, render::Style { color, width }, head)
    };
    let mut written = if waterfall_on_stderr {
        // -s: nothing but errors (with -S) on stderr.
        if common.silent {
            Ok(())
        } else {
            std::io::stderr().write_all(text.as_bytes())
        }
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
    };
    if let (Ok(()), Some(format)) = (&written, &common.write_out) {
        written = writeout::print(format, report, target.urlnum, target.output);
    }
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Printed::Stop(0);
        }
        return Printed::Stop(23);
    }
    match &report.error {
        Some(failure) if failure.kind == "broken_pipe" => Printed::Stop(0),
        Some(failure) if !common.json && common.show_errors() => {
            say!("nettrace: {}", failure.message);
            Printed::Code(code)
        }
        _ => Printed::Code(code),
    }
}
