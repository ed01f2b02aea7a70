//! [`DialError`]: why a dial failed, with every attempt's error kept.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::resolve::ResolveError;

/// Why a [`Dialer::dial`](crate::Dialer::dial) failed.
///
/// Every failed attempt's address and error are kept, in attempt order, in [`Attempts`]. A `DialError` converts into an
/// [`io::Error`] (for connectors), keeping itself as the inner error.
///
/// # Examples
///
/// ```
/// use nettrace::{DialError, Dialer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// match Dialer::new().dial("no-port-here").await {
///     Err(DialError::InvalidAddress { input, reason, .. }) => {
///         assert_eq!(input, "no-port-here");
///         assert_eq!(reason, "missing port");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The address given to dial is not `host:port`, `[v6]:port` or a valid host and port.
    /// Found before any hook fired or any packet was sent.
    #[error("invalid address {input:?}: {reason}")]
    #[non_exhaustive]
    InvalidAddress {
        /// The address as given (shortened to its first 256 bytes).
        input: String,
        /// Why it is not valid.
        reason: &'static str,
    },
    /// The host name could not be resolved.
    #[error("could not resolve {:?}", .0.name())]
    Resolve(#[source] ResolveError),
    /// The host resolved, but to no address the dialer may use (none at all, or none of
    /// the allowed family, or none of the local address's family), or the address given
    /// is of a family the dialer may not use.
    #[error("{host:?} has no address to connect to: {reason}")]
    #[non_exhaustive]
    NoAddresses {
        /// The host (or the IP address) that was given.
        host: String,
        /// Why none was left.
        reason: &'static str,
    },
    /// Every connection attempt failed.
    #[error("every connection attempt failed: {attempts}")]
    #[non_exhaustive]
    AllAttemptsFailed {
        /// Each attempt's address and error, in attempt order; never empty. Its
        /// `source()` is the first attempt's error, whose kind is the kind of the
        /// `io::Error` this converts into.
        #[source]
        attempts: Attempts,
    },
    /// The dial took longer than the dialer's timeout.
    #[error("dial timed out after {after:?} ({})", plural(.started.len(), "attempt started", "attempts started"))]
    #[non_exhaustive]
    Timeout {
        /// The timeout that expired.
        after: Duration,
        /// The addresses of the attempts started before it expired, in attempt order.
        started: Vec<SocketAddr>,
        /// The attempts that had already failed, in attempt order.
        failed: Vec<(SocketAddr, io::Error)>,
    },
}

/// The failed attempts of a [`DialError::AllAttemptsFailed`]: each address with its
/// error, in attempt order.
///
/// It derefs to a slice of `(SocketAddr, io::Error)`. As an error it displays the
/// addresses, and its [`source`](std::error::Error::source) is the first attempt's error.
///
/// # Examples
///
/// ```
/// use nettrace::{DialError, Dialer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let port = {
/// #     let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// #     l.local_addr().unwrap().port()
/// # }; // bound, then dropped: nothing listens there
/// let err = Dialer::new().dial_host("127.0.0.1", port).await.unwrap_err();
/// if let DialError::AllAttemptsFailed { attempts, .. } = err {
///     for (addr, err) in attempts.iter() {
///         println!("{addr}: {err}");
///     }
///     assert_eq!(attempts.len(), 1);
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Attempts(Vec<(SocketAddr, io::Error)>);

impl Attempts {
    /// Returns the attempts as a vector.
    pub fn into_vec(self) -> Vec<(SocketAddr, io::Error)> {
        self.0
    }
}

impl std::ops::Deref for Attempts {
    type Target = [(SocketAddr, io::Error)];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (addr, _)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Attempts {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.first().map(|(_, err)| err as _)
    }
}

impl DialError {
    pub(crate) fn invalid(input: &str, reason: &'static str) -> DialError {
        DialError::InvalidAddress {
            input: crate::resolve::error::shorten(input).to_owned(),
            reason,
        }
    }

    pub(crate) fn all_failed(attempts: Vec<(SocketAddr, io::Error)>) -> DialError {
        debug_assert!(!attempts.is_empty());
        DialError::AllAttemptsFailed {
            attempts: Attempts(attempts),
        }
    }

    /// The `io::ErrorKind` that best describes this error.
    fn io_kind(&self) -> io::ErrorKind {
        match self {
            DialError::InvalidAddress { .. } => io::ErrorKind::InvalidInput,
            DialError::Resolve(_) | DialError::NoAddresses { .. } => io::ErrorKind::NotFound,
            // The first attempt's, as `source()` gives it, so the kind and the cause agree.
            DialError::AllAttemptsFailed { attempts, .. } => attempts
                .first()
                .map_or(io::ErrorKind::Other, |(_, e)| e.kind()),
            DialError::Timeout { .. } => io::ErrorKind::TimedOut,
        }
    }
}

impl From<DialError> for io::Error {
    /// Keeps the `DialError` as the inner error, with the kind that fits it best: the
    /// first attempt's kind when every attempt failed (the attempt whose error
    /// [`Attempts`] gives as its `source()`), `TimedOut` for a timeout,
    /// `InvalidInput` for a bad address and `NotFound` when the host has no address.
    fn from(err: DialError) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

/// `1 attempt started`, `2 attempts started`.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_message_counts_attempts_in_english() {
        let timeout = |n: usize| DialError::Timeout {
            after: Duration::from_secs(1),
            started: vec!["127.0.0.1:1".parse().unwrap(); n],
            failed: Vec::new(),
        };
        assert_eq!(
            timeout(0).to_string(),
            "dial timed out after 1s (0 attempts started)"
        );
        assert_eq!(
            timeout(1).to_string(),
            "dial timed out after 1s (1 attempt started)"
        );
        assert_eq!(
            timeout(2).to_string(),
            "dial timed out after 1s (2 attempts started)"
        );
    }
    use std::error::Error;

    #[test]
    fn all_failed_names_every_address_and_keeps_every_error() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = DialError::all_failed(vec![
            ("[::1]:80".parse().unwrap(), refused()),
            (
                "127.0.0.1:80".parse().unwrap(),
                io::Error::from(io::ErrorKind::TimedOut),
            ),
        ]);
        assert_eq!(
            err.to_string(),
            "every connection attempt failed: [::1]:80, 127.0.0.1:80"
        );
        let source = err.source().unwrap();
        assert_eq!(source.to_string(), "[::1]:80, 127.0.0.1:80");
        let first = source
            .source()
            .unwrap()
            .downcast_ref::<io::Error>()
            .unwrap();
        assert_eq!(first.kind(), io::ErrorKind::ConnectionRefused);
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        let inner = io.get_ref().unwrap().downcast_ref::<DialError>().unwrap();
        assert!(
            matches!(inner, DialError::AllAttemptsFailed { attempts, .. } if attempts.len() == 2)
        );
    }

    #[test]
    fn the_io_kind_is_the_kind_of_the_first_attempt_the_source_gives() {
        let err = DialError::all_failed(vec![
            (
                "[::1]:80".parse().unwrap(),
                io::Error::from(io::ErrorKind::TimedOut),
            ),
            (
                "127.0.0.1:80".parse().unwrap(),
                io::Error::from(io::ErrorKind::ConnectionRefused),
            ),
            (
                "127.0.0.2:80".parse().unwrap(),
                io::Error::from(io::ErrorKind::ConnectionReset),
            ),
        ]);
        let cause = err
            .source()
            .and_then(Error::source)
            .and_then(|e| e.downcast_ref::<io::Error>())
            .unwrap()
            .kind();
        assert_eq!(cause, io::ErrorKind::TimedOut);
        assert_eq!(io::Error::from(err).kind(), cause);
    }

    #[test]
    fn invalid_input_is_shortened_on_a_char_boundary() {
        let input = "ü".repeat(300);
        match DialError::invalid(&input, "why") {
            DialError::InvalidAddress { input: kept, .. } => {
                assert!(kept.len() <= 256 && input.starts_with(&kept));
            }
            other => panic!("{other:?}"),
        }
    }
}
