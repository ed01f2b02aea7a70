//! [`ResolveError`]: why a name could not be resolved.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The cause behind a [`ResolveError`], shared so the error can be handed to every caller
/// of a coalesced lookup.
type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// A host name could not be resolved.
///
/// [`kind`](ResolveError::kind) says what went wrong, [`name`](ResolveError::name) which
/// name it was, and the underlying error (from hickory, for example) stays behind
/// [`source`](std::error::Error::source). Cloning is cheap, so one failed lookup can be
/// reported to every caller that shared it.
///
/// # Examples
///
/// ```
/// use nettrace::{ResolveError, ResolveErrorKind};
///
/// let err = ResolveError::new(ResolveErrorKind::NotFound, "nowhere.test");
/// assert_eq!(err.kind(), ResolveErrorKind::NotFound);
/// assert_eq!(err.to_string(), "no such host \"nowhere.test\"");
/// ```
#[derive(Clone, thiserror::Error)]
#[error("{}", self.message())]
pub struct ResolveError {
    kind: ResolveErrorKind,
    name: Box<str>,
    detail: Option<Box<str>>,
    #[source]
    source: Option<Source>,
}

/// What kind of failure a [`ResolveError`] is.
///
/// # Examples
///
/// ```
/// use nettrace::ResolveErrorKind;
///
/// let retry = |kind| matches!(kind, ResolveErrorKind::TimedOut | ResolveErrorKind::ServerFailure);
/// assert!(retry(ResolveErrorKind::TimedOut));
/// assert!(!retry(ResolveErrorKind::NotFound));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResolveErrorKind {
    /// The name is not a valid host name; no query was sent.
    InvalidName,
    /// The name does not exist (NXDOMAIN) or has no address records.
    NotFound,
    /// No answer arrived in time.
    TimedOut,
    /// The server answered with a failure (SERVFAIL, REFUSED, …).
    ServerFailure,
    /// The caller went away before the lookup finished.
    Cancelled,
    /// Anything else: an I/O or protocol error talking to the servers.
    Other,
}

impl ResolveError {
    /// Creates an error of `kind` for `name`, with no further cause.
    ///
    /// Custom [`Resolve`](crate::Resolve) implementations use it, and
    /// [`with_source`](ResolveError::with_source) to keep their own error.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{ResolveError, ResolveErrorKind};
    ///
    /// let err = ResolveError::new(ResolveErrorKind::TimedOut, "slow.test");
    /// assert_eq!(err.name(), "slow.test");
    /// ```
    pub fn new(kind: ResolveErrorKind, name: &str) -> ResolveError {
        ResolveError {
            kind,
            name: shorten(name).into(),
            detail: None,
            source: None,
        }
    }

    /// Attaches the underlying error, available through
    /// [`source`](std::error::Error::source).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// use std::io;
    /// use nettrace::{ResolveError, ResolveErrorKind};
    ///
    /// let cause = io::Error::new(io::ErrorKind::ConnectionRefused, "dns server down");
    /// let err = ResolveError::new(ResolveErrorKind::Other, "a.test").with_source(cause);
    /// assert_eq!(err.source().unwrap().to_string(), "dns server down");
    /// ```
    pub fn with_source<E>(mut self, source: E) -> ResolveError
    where
        E: StdError + Send + Sync + 'static,
    {
        self.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn invalid(name: &str, why: &'static str) -> ResolveError {
        let mut err = ResolveError::new(ResolveErrorKind::InvalidName, name);
        err.detail = Some(why.into());
        err
    }

    pub(crate) fn cancelled(name: &str) -> ResolveError {
        ResolveError::new(ResolveErrorKind::Cancelled, name)
    }

    /// Returns what kind of failure this is.
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{ResolveError, ResolveErrorKind};
    ///
    /// let err = ResolveError::new(ResolveErrorKind::ServerFailure, "a.test");
    /// assert_eq!(err.kind(), ResolveErrorKind::ServerFailure);
    /// ```
    pub fn kind(&self) -> ResolveErrorKind {
        self.kind
    }

    /// Returns the name whose lookup failed, as the caller gave it (shortened to its first
    /// 256 bytes when it was longer).
    ///
    /// # Examples
    ///
    /// ```
    /// use nettrace::{ResolveError, ResolveErrorKind};
    ///
    /// let err = ResolveError::new(ResolveErrorKind::NotFound, "gone.test");
    /// assert_eq!(err.name(), "gone.test");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    fn message(&self) -> String {
        let name = &self.name;
        match self.kind {
            ResolveErrorKind::InvalidName => match &self.detail {
                Some(why) => format!("invalid host name {name:?}: {why}"),
                None => format!("invalid host name {name:?}"),
            },
            ResolveErrorKind::NotFound => format!("no such host {name:?}"),
            ResolveErrorKind::TimedOut => format!("lookup of {name:?} timed out"),
            ResolveErrorKind::ServerFailure => format!("dns server failed to resolve {name:?}"),
            ResolveErrorKind::Cancelled => format!("lookup of {name:?} was cancelled"),
            ResolveErrorKind::Other => format!("lookup of {name:?} failed"),
        }
    }
}

/// Longest input kept in an error, so a hostile input cannot make errors huge.
const MAX_INPUT_IN_ERROR: usize = 256;

/// `input`, cut to its first 256 bytes (on a character boundary) for keeping in an error.
pub(crate) fn shorten(input: &str) -> &str {
    if input.len() <= MAX_INPUT_IN_ERROR {
        return input;
    }
    let mut end = MAX_INPUT_IN_ERROR;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    &input[..end]
}

impl fmt::Debug for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResolveError");
        d.field("kind", &self.kind).field("name", &self.name);
        if let Some(detail) = &self.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn messages_are_lower_case_and_name_the_host() {
        let cases = [
            (ResolveErrorKind::NotFound, "no such host \"a.test\""),
            (ResolveErrorKind::TimedOut, "lookup of \"a.test\" timed out"),
            (
                ResolveErrorKind::ServerFailure,
                "dns server failed to resolve \"a.test\"",
            ),
            (
                ResolveErrorKind::Cancelled,
                "lookup of \"a.test\" was cancelled",
            ),
            (ResolveErrorKind::Other, "lookup of \"a.test\" failed"),
        ];
        for (kind, message) in cases {
            assert_eq!(ResolveError::new(kind, "a.test").to_string(), message);
        }
        assert_eq!(
            ResolveError::invalid("a b", "contains ' '").to_string(),
            "invalid host name \"a b\": contains ' '"
        );
    }

    #[test]
    fn long_names_are_shortened_on_a_char_boundary() {
        let name = "é".repeat(200);
        let err = ResolveError::new(ResolveErrorKind::NotFound, &name);
        assert_eq!(err.name().len(), 256);
        assert!(name.starts_with(err.name()));
    }

    #[test]
    fn source_is_kept_not_flattened() {
        let err = ResolveError::new(ResolveErrorKind::Other, "a.test")
            .with_source(io::Error::other("socket closed"));
        assert!(!err.to_string().contains("socket closed"));
        let copy = err.clone();
        assert_eq!(copy.source().unwrap().to_string(), "socket closed");
    }
}
