//! [`RequestId`]: the id every HTTP event of one request carries.

use std::fmt;

use std::sync::atomic::{AtomicU64, Ordering};

/// The id of one request sent by an [`HttpClient`](crate::HttpClient): every HTTP event
/// of the request carries it, as every network event carries its
/// [`DialId`](crate::DialId). Unique within the process (a counter).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use nettrace::{HttpTrace, RequestId};
///
/// let seen: Arc<Mutex<Vec<RequestId>>> = Arc::default();
/// let log = seen.clone();
/// let trace = HttpTrace::new().on_got_conn(move |e| log.lock().unwrap().push(e.request));
/// # drop(trace);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// A new id, never returned before in this process.
    pub(crate) fn next() -> RequestId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RequestId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (the first id is 1).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req#{}", self.0)
    }
}
