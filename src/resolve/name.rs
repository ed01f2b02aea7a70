//! Host name validation, done before any query is sent.

use super::ResolveError;

/// Longest host name, without its trailing dot (RFC 1035 §2.3.4 allows 255 bytes on the
/// wire, which is 253 as text).
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Checks that `name` can be a host name: 1–253 bytes (a trailing dot aside), labels of
/// 1–63 bytes made of ASCII letters, digits, `-` and `_`, not starting or ending with `-`.
///
/// The rules are those of Go's `isDomainName`: `_` is allowed because real names use it
/// (service labels), and names in other scripts must be given in their ASCII (punycode)
/// form.
pub(crate) fn validate(name: &str) -> Result<(), ResolveError> {
    check(name).map_err(|why| ResolveError::invalid(name, why))
}

/// Like [`validate`], returning only the reason.
pub(crate) fn check(name: &str) -> Result<(), &'static str> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("empty name");
    }
    if bare.len() > MAX_NAME {
        return Err("longer than 253 bytes");
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > MAX_LABEL {
            return Err("label longer than 63 bytes");
        }
        if let Some(bad) = label
            .bytes()
            .find(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
        {
            return Err(if bad.is_ascii_whitespace() {
                "contains white space"
            } else if bad.is_ascii() {
                "contains a character not allowed in a host name"
            } else {
                "contains non-ASCII characters (give the punycode form)"
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResolveErrorKind;

    #[test]
    fn accepts_ordinary_names() {
        let long_label = "a".repeat(63);
        let longest = format!("{0}.{0}.{0}.{1}", "b".repeat(63), "c".repeat(61));
        assert_eq!(longest.len(), 253);
        for name in [
            "localhost",
            "example.com",
            "example.com.",
            "EXAMPLE.com",
            "_sip._tcp.example.com",
            "xn--bcher-kva.example",
            "a-b.c",
            "1.2.3.4.in-addr.arpa",
            long_label.as_str(),
            longest.as_str(),
        ] {
            validate(name).unwrap_or_else(|e| panic!("{name:?} rejected: {e}"));
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        let long_name = format!("{}.com", "a.".repeat(130));
        let long_label = format!("{}.com", "a".repeat(64));
        let cases: &[(&str, &str)] = &[
            ("", "empty name"),
            (".", "empty name"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("a.b..", "empty label"),
            (&long_name, "longer than 253 bytes"),
            (&long_label, "label longer than 63 bytes"),
            ("a b", "contains white space"),
            ("a\tb", "contains white space"),
            ("a/b", "not allowed"),
            ("a:b", "not allowed"),
            ("a%eth0", "not allowed"),
            ("a\0b", "not allowed"),
            ("bücher.de", "non-ASCII"),
            ("-a.com", "starts or ends with '-'"),
            ("a-.com", "starts or ends with '-'"),
        ];
        for (name, why) in cases {
            let err = validate(name).expect_err(name);
            assert_eq!(err.kind(), ResolveErrorKind::InvalidName, "{name:?}");
            assert!(err.to_string().contains(why), "{name:?}: {err}");
        }
    }
}
