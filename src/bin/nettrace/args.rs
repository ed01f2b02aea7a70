//! Command-line flags, mapped onto the library by `run.rs`.

use std::path::PathBuf;

use clap::{ArgMatches, Args, Parser, Subcommand};

/// Exit codes, as curl numbers them where curl has one.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0   success (also when stdout is closed early, as by `| head`)
  1   unsupported protocol (not http:// or https://), or another failure
  2   bad command-line usage
  3   malformed URL or address
  6   could not resolve the host
  7   could not connect (every attempt failed)
  23  could not write the output file
  26  could not read a -d/--data-binary @FILE
  28  timed out (--connect-timeout, --max-time, the TLS handshake's limit, or every
      attempt hit --attempt-timeout); the waterfall still shows where the time went
  35  TLS handshake failed
  47  too many redirects
  56  the connection failed while the response was received
  60  the server's certificate could not be verified
  77  could not read the --cacert file
With several URLs, the exit code is the last URL's, as curl's.";

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

    /// The URLs to request, one after the other (http:// or https://; http:// is assumed
    /// when absent). They share one connection pool, as curl's do: a later request to
    /// the same origin reuses the connection.
    #[arg(required = true, value_name = "URL")]
    pub(crate) urls: Vec<String>,

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

    /// Extra request header, "Name: value" (repeatable; a name given twice is sent twice).
    /// It replaces a default header of that name (User-Agent, Accept); "Name:" removes
    /// one, "Name;" sends it empty, as curl.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,

    /// Request body (sends POST unless -X says otherwise); @FILE reads it from FILE (@-:
    /// stdin) without its CR and LF bytes, as curl. Repeated -d/--data-* are joined
    /// with '&'.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub(crate) data: Vec<String>,

    /// Like -d, but @FILE is sent as it is (CR and LF kept).
    #[arg(long = "data-binary", value_name = "DATA")]
    pub(crate) data_binary: Vec<String>,

    /// Like -d, but the value is taken literally (a leading @ is no file).
    #[arg(long = "data-raw", value_name = "DATA")]
    pub(crate) data_raw: Vec<String>,

    /// The request bodies of -d, --data-binary and --data-raw, in the order given (filled
    /// from the matches, see `Cli::parse_all`).
    #[arg(skip)]
    pub(crate) bodies: Vec<Data>,

    /// Write the response body to FILE ("-" for stdout); by default it is discarded.
    /// With several URLs, the first -o is for the first URL, and so on, as curl.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Vec<String>,

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
    #[arg(long = "http1.1", conflicts_with_all = ["http2", "http2_prior_knowledge"])]
    pub(crate) http1: bool,

    /// Use HTTP/2 when the server agrees: https:// offers h2 and http/1.1 by ALPN (the
    /// default already); http:// stays HTTP/1.1 (curl would try an h2c Upgrade, which
    /// nettrace does not send).
    #[arg(long = "http2")]
    pub(crate) http2: bool,

    /// Speak HTTP/2 at once, without asking: h2c over http://, ALPN h2 only over https://.
    /// Fails against a server that speaks only HTTP/1.1.
    #[arg(long = "http2-prior-knowledge", conflicts_with = "http2")]
    pub(crate) http2_prior_knowledge: bool,

    /// A CA to trust besides the others (the demo's own).
    #[arg(skip)]
    pub(crate) ca_pem: Option<String>,
}

/// One request body flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// -d/--data: @FILE loses its CR and LF bytes.
    Ascii(String),
    /// --data-binary: @FILE as it is.
    Binary(String),
    /// --data-raw: no @FILE.
    Raw(String),
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

    /// Use these addresses for HOST at PORT (and no other port), as curl:
    /// HOST:PORT:ADDR[,ADDR]... (IPv6 bare or in brackets; several addresses are raced
    /// like a DNS answer); HOST "*" is any host; -HOST:PORT drops an entry. Repeatable;
    /// a later entry for the same HOST:PORT replaces the earlier one.
    #[arg(
        long = "resolve",
        value_name = "HOST:PORT:ADDR[,ADDR]...",
        allow_hyphen_values = true
    )]
    pub(crate) resolve: Vec<String>,

    /// Ask these DNS servers instead of the system's: IP[:PORT],... (IPv6 as [IP]:PORT;
    /// port 53 by default). Each query waits 2 s for an answer and is asked twice before
    /// the host counts as unresolvable (exit 6). Without it, the system's configuration
    /// (/etc/resolv.conf; 5 s per query unless it says otherwise), also asked twice.
    #[arg(
        long = "dns-servers",
        visible_alias = "dns-server",
        value_name = "IP[:PORT],..."
    )]
    pub(crate) dns_server: Option<String>,

    /// Most time for the connection (lookup, attempts and TLS handshake), in seconds; 0
    /// is no limit (as curl). Without it, the TLS handshake alone has 10 s.
    #[arg(long = "connect-timeout", value_name = "SECONDS")]
    pub(crate) connect_timeout: Option<f64>,

    /// Most time for each URL's whole transfer, in seconds; 0 is no limit (as curl).
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS")]
    pub(crate) max_time: Option<f64>,

    /// Happy Eyeballs Connection Attempt Delay (RFC 8305), in milliseconds: 10 to 2000,
    /// default 250 (curl's name for it; curl's default is 200).
    #[arg(
        long = "happy-eyeballs-timeout-ms",
        visible_alias = "attempt-delay",
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(10..=2000)
    )]
    pub(crate) attempt_delay: Option<u64>,

    /// Most time for one connection attempt, in seconds (0: no limit); the next starts when
    /// it ends.
    #[arg(long = "attempt-timeout", value_name = "SECONDS")]
    pub(crate) attempt_timeout: Option<f64>,

    /// Print each event to stderr as it happens, in the manner of curl -v: "* Trying
    /// ADDR...", "* Connected to …", "* DNS answer AAAA …", the TLS handshake, the request
    /// ("> ") and response ("< ") headers.
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,

    /// Silent, as curl: no error message and no waterfall on stderr (the waterfall or
    /// JSON on stdout stays). The exit code still tells what happened.
    #[arg(short = 's', long = "silent")]
    pub(crate) silent: bool,

    /// With -s, still print the error message.
    #[arg(short = 'S', long = "show-error")]
    pub(crate) show_error: bool,

    /// Print one JSON object per URL (one per line) instead of the waterfall (schema:
    /// docs/JSON.md).
    #[arg(long = "json")]
    pub(crate) json: bool,

    /// Write the timeline to FILE in the Chrome trace-event format (Perfetto, chrome://tracing);
    /// with several URLs, all of them in one file.
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
        self.attempt_timeout = self.attempt_timeout.or(top.attempt_timeout);
        self.verbose |= top.verbose;
        self.json |= top.json;
        self.trace_out = self.trace_out.or_else(|| top.trace_out.clone());
        self.no_color |= top.no_color;
        self.silent |= top.silent;
        self.show_error |= top.show_error;
        self.write_out = self.write_out.or_else(|| top.write_out.clone());
        self
    }

    /// Whether an error message goes to stderr (not with -s, unless -S).
    pub(crate) fn show_errors(&self) -> bool {
        !self.silent || self.show_error
    }
}

impl Cli {
    /// Parses the command line (exiting with 2 on bad usage, as clap does), then checks
    /// what clap cannot: no URL beside a subcommand, and the bodies' order.
    pub(crate) fn parse_all() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command();
        let matches = command.get_matches_mut();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        // After a URL, clap reads `dial` or `demo` as one more URL: say what it is
        // rather than request http://dial/ (`http://dial/` written out still can).
        let subcommand = cli
            .urls
            .iter()
            .find(|u| matches!(u.as_str(), "dial" | "demo"));
        let conflict = match (&cli.command, subcommand) {
            (Some(_), _) if !cli.urls.is_empty() => Some(format!(
                "a URL ({}) cannot be given with a subcommand",
                cli.urls.join(" ")
            )),
            (None, Some(name)) => Some(format!(
                "`{name}` is a subcommand: it comes first, without a URL"
            )),
            _ => None,
        };
        if let Some(conflict) = conflict {
            command
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{conflict}; `nettrace URL...` traces requests, \
                         `nettrace dial HOST:PORT` one connection"
                    ),
                )
                .exit();
        }
        cli.http.bodies = bodies(&matches, &cli.http);
        cli
    }
}

/// The -d, --data-binary and --data-raw values in the order they were given.
fn bodies(matches: &ArgMatches, http: &HttpArgs) -> Vec<Data> {
    let mut all: Vec<(usize, Data)> = Vec::new();
    let mut add = |id: &str, values: &[String], make: fn(String) -> Data| {
        let indices = matches.indices_of(id).into_iter().flatten();
        all.extend(indices.zip(values).map(|(i, v)| (i, make(v.clone()))));
    };
    add("data", &http.data, Data::Ascii);
    add("data_binary", &http.data_binary, Data::Binary);
    add("data_raw", &http.data_raw, Data::Raw);
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, d)| d).collect()
}
