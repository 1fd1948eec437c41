//! Why a TLS handshake between fleet peers failed, read once for everyone
//! who reports it (the dashboard's errors, the agent's log, the checks of a
//! configuration's own certificate).
//!
//! rustls says why in its own terms (`BadSignature`, `DnsName("srv01")`,
//! UNIX times), and QUIC carries only the alert number and that text to the
//! other side. Both are turned here into a [`CertProblem`], which the
//! callers put into sentences that say who refused whom and what to do.

/// What is wrong with a certificate, as the side that checked it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// None was shown.
    Missing,
    /// It is for other names than the one dialled.
    WrongName { expected: String, presented: Vec<String> },
    /// It is not signed by a CA the checking side trusts.
    OtherCa,
    /// Its validity ended, at this UNIX time when known.
    Expired { not_after: Option<u64> },
    /// Its validity has not begun yet, until this UNIX time when known.
    NotYetValid { not_before: Option<u64> },
    /// It is not made for this use (its extended key usage).
    WrongUse { required: Use },
    /// Anything else, in the TLS library's words.
    Other(String),
}

/// What a certificate is used for, as its extended key usage says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// serverAuth: an agent's.
    Serving,
    /// clientAuth: a dashboard's, an operator's (and an agent's).
    Dialling,
}

/// A failed handshake: whose certificate was refused, or why it never got
/// that far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// This side refused the peer's certificate.
    RefusedTheirs(CertProblem),
    /// The peer refused this side's certificate.
    RefusedOurs(CertProblem),
    /// No protocol in common (ALPN `cm/1`): another major version, or
    /// another program on that port.
    NoCommonProtocol { by_peer: bool },
}

/// TLS alerts (RFC 8446 section 6) that say why.
mod alert {
    pub const BAD_CERTIFICATE: u8 = 42;
    pub const UNSUPPORTED_CERTIFICATE: u8 = 43;
    pub const CERTIFICATE_EXPIRED: u8 = 45;
    pub const UNKNOWN_CA: u8 = 48;
    pub const DECRYPT_ERROR: u8 = 51;
    pub const CERTIFICATE_REQUIRED: u8 = 116;
    pub const NO_APPLICATION_PROTOCOL: u8 = 120;
}

/// The QUIC error codes that carry a TLS alert: CRYPTO_ERROR, 0x100 + alert.
fn alert_of(code: u64) -> Option<u8> {
    (code & !0xff == 0x100).then_some((code & 0xff) as u8)
}

/// What a failed connection says about the handshake; `None` when it was not
/// refused at the TLS level (a time-out, a reset, an application close).
pub fn classify(e: &quinn::ConnectionError) -> Option<Handshake> {
    let (alert, text, by_peer) = match e {
        // This side's TLS stack refused, and closed the connection saying so.
        quinn::ConnectionError::TransportError(t) => (alert_of(u64::from(t.code))?, t.reason.clone(), false),
        // The peer's did.
        quinn::ConnectionError::ConnectionClosed(c) => {
            (alert_of(u64::from(c.error_code))?, String::from_utf8_lossy(&c.reason).into_owned(), true)
        }
        _ => return None,
    };
    if alert == alert::NO_APPLICATION_PROTOCOL {
        return Some(Handshake::NoCommonProtocol { by_peer });
    }
    let problem = CertProblem::from_alert(alert, &text);
    Some(if by_peer { Handshake::RefusedOurs(problem) } else { Handshake::RefusedTheirs(problem) })
}

impl CertProblem {
    /// From rustls' own error, as a verifier returns it.
    pub fn from_rustls(e: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::NoCertificatesPresented => Self::Missing,
            rustls::Error::InvalidCertificate(c) => match c {
                C::BadSignature | C::UnknownIssuer => Self::OtherCa,
                C::Expired => Self::Expired { not_after: None },
                C::ExpiredContext { not_after, .. } => Self::Expired { not_after: Some(not_after.as_secs()) },
                C::NotValidYet => Self::NotYetValid { not_before: None },
                C::NotValidYetContext { not_before, .. } => {
                    Self::NotYetValid { not_before: Some(not_before.as_secs()) }
                }
                C::NotValidForNameContext { expected, presented } => Self::WrongName {
                    expected: expected.to_str().into_owned(),
                    presented: presented.iter().flat_map(|p| quoted_names(p)).collect(),
                },
                C::InvalidPurposeContext { required, .. } => Self::WrongUse { required: use_of(&required.to_string()) },
                _ => Self::from_text(&e.to_string()),
            },
            other => Self::from_text(&other.to_string()),
        }
    }

    /// From an alert number and the text that came with it (rustls' words,
    /// from this side or the peer).
    pub fn from_alert(alert: u8, text: &str) -> Self {
        match Self::from_text(text) {
            Self::Other(_) => match alert {
                alert::CERTIFICATE_REQUIRED => Self::Missing,
                alert::UNKNOWN_CA | alert::DECRYPT_ERROR => Self::OtherCa,
                // The alert alone does not tell expired from not yet valid.
                alert::CERTIFICATE_EXPIRED if text.contains("not valid yet") => Self::NotYetValid { not_before: None },
                alert::CERTIFICATE_EXPIRED => Self::Expired { not_after: None },
                alert::UNSUPPORTED_CERTIFICATE if text.contains("server") => Self::WrongUse { required: Use::Serving },
                alert::UNSUPPORTED_CERTIFICATE => Self::WrongUse { required: Use::Dialling },
                alert::BAD_CERTIFICATE if text.is_empty() => Self::Other("a bad certificate".into()),
                _ => Self::Other(text.trim_start_matches("invalid peer certificate: ").to_owned()),
            },
            known => known,
        }
    }

    /// From rustls' words alone (`invalid peer certificate: BadSignature`).
    fn from_text(text: &str) -> Self {
        let after = |marker: &str| {
            text.split_once(marker).and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        };
        if text.contains("peer sent no certificates") || text.contains("NoCertificatesPresented") {
            Self::Missing
        } else if text.contains("BadSignature") || text.contains("UnknownIssuer") {
            Self::OtherCa
        } else if text.contains("certificate expired") || text.contains("Expired") {
            Self::Expired { not_after: after("not valid after ") }
        } else if text.contains("certificate not valid yet") || text.contains("NotValidYet") {
            Self::NotYetValid { not_before: after("not valid before ") }
        } else if let Some(rest) = text.split_once("certificate not valid for name ").map(|(_, r)| r) {
            let (expected, presented) = rest.split_once(';').unwrap_or((rest, ""));
            Self::WrongName {
                expected: expected.trim().trim_matches('"').to_owned(),
                presented: quoted_names(presented),
            }
        } else if text.contains("does not allow extended key usage for ") {
            let wanted = text.split_once("usage for ").map_or("", |(_, r)| r);
            Self::WrongUse { required: use_of(wanted) }
        } else {
            Self::Other(text.trim_start_matches("invalid peer certificate: ").to_owned())
        }
    }

    /// The names in this problem's certificate, for sentences: `srv01`,
    /// `srv01 or srv02`, `no host name`.
    pub fn names(presented: &[String]) -> String {
        match presented {
            [] => "no host name".into(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// `expired on DATE` (or `has expired`), said of a certificate.
pub fn expired(not_after: Option<u64>) -> String {
    not_after.map_or_else(|| "has expired".into(), |t| format!("expired on {}", crate::pki::format_unix(t)))
}

/// `is not valid until DATE` (or `is not valid yet`), said of a certificate.
pub fn not_yet_valid(not_before: Option<u64>) -> String {
    not_before
        .map_or_else(|| "is not valid yet".into(), |t| format!("is not valid until {}", crate::pki::format_unix(t)))
}

fn use_of(text: &str) -> Use {
    if text.starts_with("server") {
        Use::Serving
    } else {
        Use::Dialling
    }
}

/// The names in rustls' list of presented names: `DnsName("srv01")` and
/// `IpAddress(..)` entries, or bare quoted names.
fn quoted_names(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_words_become_problems() {
        let cases = [
            (
                42,
                r#"invalid peer certificate: certificate not valid for name "srv03"; certificate is only valid for DnsName("srv01")"#,
                CertProblem::WrongName { expected: "srv03".into(), presented: vec!["srv01".into()] },
            ),
            (
                42,
                r#"invalid peer certificate: certificate not valid for name "srv03"; certificate is only valid for DnsName("a") or DnsName("b")"#,
                CertProblem::WrongName { expected: "srv03".into(), presented: vec!["a".into(), "b".into()] },
            ),
            (51, "invalid peer certificate: BadSignature", CertProblem::OtherCa),
            (48, "invalid peer certificate: UnknownIssuer", CertProblem::OtherCa),
            (48, "", CertProblem::OtherCa),
            (
                45,
                "invalid peer certificate: certificate expired: verification time 1796194644 (UNIX), but certificate is not valid after 1796108244 (86400 seconds ago)",
                CertProblem::Expired { not_after: Some(1796108244) },
            ),
            (
                45,
                "invalid peer certificate: certificate not valid yet: verification time 1796108244 (UNIX), but certificate is not valid before 1796194644 (86400 seconds in future)",
                CertProblem::NotYetValid { not_before: Some(1796194644) },
            ),
            (45, "", CertProblem::Expired { not_after: None }),
            (116, "peer sent no certificates", CertProblem::Missing),
            (116, "", CertProblem::Missing),
            (
                43,
                "invalid peer certificate: certificate does not allow extended key usage for server authentication, allows client authentication",
                CertProblem::WrongUse { required: Use::Serving },
            ),
            (42, "invalid peer certificate: UnhandledCriticalExtension", CertProblem::Other("UnhandledCriticalExtension".into())),
        ];
        for (alert, text, want) in cases {
            assert_eq!(CertProblem::from_alert(alert, text), want, "{alert} {text}");
        }
        assert_eq!(CertProblem::names(&["a".into(), "b".into(), "c".into()]), "a, b or c");
        assert_eq!(CertProblem::names(&[]), "no host name");
    }

    #[test]
    fn crypto_codes_say_which_side_refused() {
        let close = |alert: u8, reason: &'static [u8]| {
            quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
                error_code: quinn::TransportErrorCode::crypto(alert),
                frame_type: None,
                reason: reason.into(),
            })
        };
        let refused = close(51, b"invalid peer certificate: BadSignature");
        assert_eq!(classify(&refused), Some(Handshake::RefusedOurs(CertProblem::OtherCa)));
        assert_eq!(classify(&close(120, b"")), Some(Handshake::NoCommonProtocol { by_peer: true }));
        assert_eq!(classify(&quinn::ConnectionError::TimedOut), None);
        assert_eq!(classify(&quinn::ConnectionError::Reset), None);
    }
}
