//! TLS handshake errors as a person reads them, and curl's exit code for them.
//!
//! rustls's `Display` falls back to `Debug` for many errors (`invalid peer certificate:
//! Other(OtherError(CaUsedAsEndEntity))`, presented names as `DnsName("…")`): this turns
//! those into words.

use std::io;

use rustls::{CertificateError, Error as TlsError};

/// What went wrong in a handshake that failed with `err` (the connector's `io::Error`,
/// whose inner error is the rustls error when there is one).
pub(crate) fn describe(err: &io::Error) -> String {
    match err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
        Some(tls) => tls_error(tls),
        None => match err.get_ref() {
            Some(inner) => inner.to_string(),
            None => err.to_string(),
        },
    }
}

/// Whether the handshake failed because the server's certificate was not accepted
/// (curl's exit 60, "peer failed verification"), rather than for another reason (35).
pub(crate) fn is_verification_failure(err: &io::Error) -> bool {
    matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()),
        Some(TlsError::InvalidCertificate(_) | TlsError::NoCertificatesPresented)
    )
}

fn tls_error(err: &TlsError) -> String {
    match err {
        TlsError::InvalidCertificate(cert) => {
            format!("invalid peer certificate: {}", certificate(cert))
        }
        TlsError::AlertReceived(alert) => {
            format!("received fatal alert: {}", words(&format!("{alert:?}")))
        }
        TlsError::PeerIncompatible(why) => {
            format!("peer is incompatible: {}", words(&format!("{why:?}")))
        }
        TlsError::PeerMisbehaved(why) => {
            format!("peer misbehaved: {}", words(&format!("{why:?}")))
        }
        TlsError::InvalidMessage(why) => {
            format!("received a corrupt message: {}", words(&format!("{why:?}")))
        }
        other => other.to_string(),
    }
}

fn certificate(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "unknown issuer (no trusted CA signed it; --cacert names one to trust)".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<String> = presented.iter().map(|n| unwrap_debug(n)).collect();
            let valid = if names.is_empty() {
                "no name".to_owned()
            } else {
                names.join(", ")
            };
            format!(
                "it is not valid for {}, only for {valid}",
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => "it is not valid for the name asked for".into(),
        CertificateError::Other(other) => words(&other.to_string()),
        other => {
            let text = other.to_string();
            if text == format!("{other:?}") {
                words(&text)
            } else {
                text
            }
        }
    }
}

/// `DnsName("a.test")` → `a.test`, `IpAddress(127.0.0.1)` → `127.0.0.1`; anything else
/// as it is.
fn unwrap_debug(text: &str) -> String {
    match text.split_once('(') {
        Some((kind, rest)) if kind.chars().all(|c| c.is_ascii_alphanumeric()) => rest
            .strip_suffix(')')
            .unwrap_or(rest)
            .trim_matches('"')
            .to_owned(),
        _ => text.to_owned(),
    }
}

/// A `Debug` name as words: `CaUsedAsEndEntity` → `ca used as end entity`; a wrapper
/// such as `Other(…)` is dropped for what it wraps; anything that is not an identifier is
/// left as it is.
fn words(text: &str) -> String {
    let mut inner = text;
    while let Some((_, rest)) = inner.split_once('(') {
        inner = rest.trim_end_matches(')');
    }
    let inner = inner.trim_matches('"');
    if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut prev_lower = false;
    for c in inner.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_become_words() {
        assert_eq!(words("CaUsedAsEndEntity"), "ca used as end entity");
        assert_eq!(
            words("Other(OtherError(CaUsedAsEndEntity))"),
            "ca used as end entity"
        );
        assert_eq!(words("HandshakeFailure"), "handshake failure");
        assert_eq!(
            words("certificate expired: at 5"),
            "certificate expired: at 5"
        );
        assert_eq!(unwrap_debug("DnsName(\"a.test\")"), "a.test");
        assert_eq!(unwrap_debug("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(unwrap_debug("a.test"), "a.test");
    }

    #[test]
    fn rustls_errors_read_as_text() {
        let io = |e: TlsError| io::Error::new(io::ErrorKind::InvalidData, e);
        let unknown = io(CertificateError::UnknownIssuer.into());
        assert!(describe(&unknown).starts_with("invalid peer certificate: unknown issuer"));
        assert!(is_verification_failure(&unknown));
        let ca = io(
            CertificateError::Other(rustls::OtherError(std::sync::Arc::new(io::Error::other(
                "CaUsedAsEndEntity",
            ))))
            .into(),
        );
        assert_eq!(
            describe(&ca),
            "invalid peer certificate: ca used as end entity"
        );
        let alert = io(TlsError::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        ));
        assert_eq!(describe(&alert), "received fatal alert: handshake failure");
        assert!(!is_verification_failure(&alert));
        let timeout = io::Error::new(io::ErrorKind::TimedOut, "tls handshake timed out");
        assert_eq!(describe(&timeout), "tls handshake timed out");
    }
}
