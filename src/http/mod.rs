//! Per-request HTTP tracing: hooks in the shape of Go's `httptrace.ClientTrace`, a client
//! that fires them, and curl-compatible [`Timings`].

mod client;
mod timings;
mod trace;

pub(crate) use self::client::current_request;
pub use self::client::{HttpClient, ResponseBody, ResponseFuture};
pub use self::timings::{AttemptOutcome, AttemptTiming, Timings, TimingsRecorder};
pub use self::trace::{GetConn, GotConn, GotFirstResponseByte, HttpTrace, WroteRequest};
