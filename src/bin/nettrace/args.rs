//! Command-line flags, mapped onto the library by `run.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit codes, as curl numbers them where curl has one.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0   success (also when stdout is closed early, as by `| head`)
  1   other failure
  2   bad command-line usage
  3   malformed URL or address
  6   could not resolve the host
  7   could not connect (every attempt failed)
  23  could not write the output file
  28  timed out (--connect-timeout or --max-time)
  35  TLS handshake failed
  47  too many redirects";

/// Shows where the time goes while an HTTP request or a TCP connection is made: the DNS
/// lookup, every Happy Eyeballs connection attempt, the TLS handshake, server processing
/// and the transfer.
#[derive(Debug, Parser)]
#[command(
    name = "nettrace",
    version,
    subcommand_negates_reqs = true,
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// The URL to request (http:// or https://; http:// is assumed when absent).
    #[arg(required = true)]
    pub(crate) url: Option<String>,

    #[command(flatten)]
    pub(crate) http: HttpArgs,

    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Trace a bare TCP connection to HOST:PORT (no HTTP).
    Dial {
        /// host:port, ipv4:port or [ipv6]:port.
        target: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run an offline demo on loopback: a DNS server, a black-holed IPv6 address and an
    /// HTTPS server, then trace a request to them.
    Demo {
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Flags for HTTP requests.
#[derive(Debug, Args, Default)]
pub(crate) struct HttpArgs {
    /// Request method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub(crate) method: Option<String>,

    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,

    /// Request body (sends POST unless -X says otherwise); @FILE reads it from FILE.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub(crate) data: Option<String>,

    /// Write the response body to FILE ("-" for stdout); by default it is discarded.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<String>,

    /// Send a HEAD request and print the response headers.
    #[arg(short = 'I', long = "head")]
    pub(crate) head: bool,

    /// Follow redirects (each hop is traced).
    #[arg(short = 'L', long = "location")]
    pub(crate) follow: bool,

    /// Most redirects to follow with -L.
    #[arg(long = "max-redirs", value_name = "NUM", default_value_t = 10)]
    pub(crate) max_redirs: u32,

    /// Skip certificate verification (dangerous: for tests and debugging only).
    #[arg(short = 'k', long = "insecure")]
    pub(crate) insecure: bool,

    /// Trust only the CA certificates in this PEM file.
    #[arg(long = "cacert", value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,

    /// Use HTTP/1.1 only.
    #[arg(long = "http1.1", conflicts_with = "http2")]
    pub(crate) http1: bool,

    /// Use HTTP/2 only (by ALPN over TLS, prior knowledge over plain TCP).
    #[arg(long = "http2")]
    pub(crate) http2: bool,

    /// A CA to trust besides the others (the demo's own).
    #[arg(skip)]
    pub(crate) ca_pem: Option<String>,
}

/// Flags shared by every mode.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct CommonArgs {
    /// Connect over IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub(crate) ipv4: bool,

    /// Connect over IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub(crate) ipv6: bool,

    /// Resolve HOST to ADDR (for PORT), like curl: HOST:PORT:ADDR (repeatable).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR")]
    pub(crate) resolve: Vec<String>,

    /// Ask this DNS server (IP:PORT) instead of the system's.
    #[arg(long = "dns-server", value_name = "IP:PORT")]
    pub(crate) dns_server: Option<String>,

    /// Most time for the connection (lookup and attempts), in seconds.
    #[arg(long = "connect-timeout", value_name = "SECONDS")]
    pub(crate) connect_timeout: Option<f64>,

    /// Most time for the whole operation, in seconds.
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS")]
    pub(crate) max_time: Option<f64>,

    /// Happy Eyeballs Connection Attempt Delay in milliseconds (10..=2000, default 250).
    #[arg(long = "attempt-delay", value_name = "MS")]
    pub(crate) attempt_delay: Option<u64>,

    /// Print one JSON object instead of the waterfall (schema: docs/JSON.md).
    #[arg(long = "json")]
    pub(crate) json: bool,

    /// Write the timeline to FILE in the Chrome trace-event format (Perfetto, chrome://tracing).
    #[arg(long = "trace-out", value_name = "FILE")]
    pub(crate) trace_out: Option<PathBuf>,

    /// Never colour the output (also when NO_COLOR is set).
    #[arg(long = "no-color")]
    pub(crate) no_color: bool,

    /// Print FORMAT after the run, as curl's -w: %{http_code}, %{time_total}, %{json}, …
    /// (docs/CLI.md); @FILE reads it from FILE. The waterfall then goes to stderr.
    #[arg(
        short = 'w',
        long = "write-out",
        value_name = "FORMAT",
        conflicts_with = "json"
    )]
    pub(crate) write_out: Option<String>,
}

impl CommonArgs {
    /// Merges flags given after a subcommand with those given before it.
    pub(crate) fn merged(mut self, top: &CommonArgs) -> CommonArgs {
        self.ipv4 |= top.ipv4;
        self.ipv6 |= top.ipv6;
        self.resolve.extend(top.resolve.iter().cloned());
        self.dns_server = self.dns_server.or_else(|| top.dns_server.clone());
        self.connect_timeout = self.connect_timeout.or(top.connect_timeout);
        self.max_time = self.max_time.or(top.max_time);
        self.attempt_delay = self.attempt_delay.or(top.attempt_delay);
        self.json |= top.json;
        self.trace_out = self.trace_out.or_else(|| top.trace_out.clone());
        self.no_color |= top.no_color;
        self.write_out = self.write_out.or_else(|| top.write_out.clone());
        self
    }
}
