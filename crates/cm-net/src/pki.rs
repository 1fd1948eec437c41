//! The fleet PKI: one CA per fleet, and certificates that carry a host name
//! (DNS subject alternative name) and a role (subject `O=cm-dashboard`,
//! `OU=<role>`). The role is in the subject rather than in a URI name because
//! common TLS libraries (Python's service_identity among them) misread URI
//! names that are not `scheme:host`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use thiserror::Error;

pub use cm_proto::Role;

/// The subject organization that says "the OU is a cm role".
const ORGANIZATION: &str = "cm-dashboard";

/// Why a PKI operation failed.
#[derive(Debug, Error)]
pub enum PkiError {
    #[error(transparent)]
    UnknownRole(#[from] cm_proto::role::UnknownRole),
    // Not a `source`: the message already says it, and chains would say it twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{} already exists; refusing to overwrite a key", .0.display())]
    Exists(PathBuf),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{name:?} is not a host name: {why} (a DNS name: letters, digits and '-', in labels joined by dots, like srv01 or lab.example.org)")]
    Name { name: String, why: &'static str },
    #[error("{0}")]
    Invalid(String),
}

/// Checks that `name` can be a certificate's host name and a TLS server
/// name: a DNS name of letters, digits and hyphens (and underscores, which
/// TLS accepts and some host names have), not an IP address. It also names
/// the certificate's files, so nothing else is let through.
pub fn check_name(name: &str) -> Result<(), PkiError> {
    let bad = |why| Err(PkiError::Name { name: name.to_owned(), why });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 253 {
        return bad("it is longer than 253 characters");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return bad("it is an IP address");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("it has an empty label (two dots, or a dot at an end)");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return bad("it has a character other than a letter, a digit, '-', '_' or '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    if name.rsplit('.').next().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit())) {
        return bad("its last label is all digits, as an IP address's is");
    }
    Ok(())
}

/// The command that issues `name` a certificate with `role`, for messages
/// that say what to do (`DIR` is where the fleet CA is kept).
pub fn issue_command(name: &str, role: Role) -> String {
    format!("`cm-agent pki issue --ca DIR --name {name} --role {role}`")
}

/// The command that renews `name`'s certificate, keeping its key.
pub fn renew_command(name: &str) -> String {
    format!("`cm-agent pki renew --ca DIR --name {name}`")
}

/// A moment as messages print it: `2026-01-31 12:00 UTC`.
pub fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// A UNIX time (seconds) as messages print it.
pub fn format_unix(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs.min(i64::MAX as u64) as i64)
        .map_or_else(|_| format!("{secs} s after 1970"), format_time)
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Creates a fleet CA valid for `days` (at least 1).
pub fn new_ca(name: &str, days: u32) -> Result<Pem, PkiError> {
    if days == 0 {
        return Err(PkiError::Invalid("a CA must be valid for at least 1 day".into()));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    (params.not_before, params.not_after) =
        (now - time::Duration::minutes(10), now + time::Duration::days(i64::from(days)));
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// Issues a certificate for host or user `name` with `role`, signed by `ca`,
/// valid from now for `days` (at least 1), with a new key.
pub fn issue(ca: &Pem, name: &str, role: Role, days: u32) -> Result<Pem, PkiError> {
    renew(ca, name, role, days, None)
}

/// As [`issue`], for `days` from now; with `key` (PEM) the certificate is
/// for that existing key, which the answer carries unchanged, instead of a
/// new one.
pub fn renew(ca: &Pem, name: &str, role: Role, days: u32, key: Option<&str>) -> Result<Pem, PkiError> {
    if days == 0 {
        return Err(PkiError::Invalid("a certificate must be valid for at least 1 day".into()));
    }
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree by a few minutes.
    let (not_before, not_after) = (now - time::Duration::minutes(10), now + time::Duration::days(i64::from(days)));
    let key = match key {
        Some(pem) => KeyPair::from_pem(pem).map_err(|e| PkiError::Invalid(format!("the key to keep: {e}")))?,
        None => KeyPair::generate()?,
    };
    sign(ca, name, role, not_before, not_after, key)
}

/// A certificate valid from `not_before` to `not_after` exactly, with a new
/// key: for tests of certificates that have expired or are not valid yet.
pub fn issue_between(
    ca: &Pem,
    name: &str,
    role: Role,
    not_before: std::time::SystemTime,
    not_after: std::time::SystemTime,
) -> Result<Pem, PkiError> {
    sign(ca, name, role, not_before.into(), not_after.into(), KeyPair::generate()?)
}

fn sign(
    ca: &Pem,
    name: &str,
    role: Role,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    key: KeyPair,
) -> Result<Pem, PkiError> {
    check_name(name)?;
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let ca_params = CertificateParams::from_ca_cert_pem(&ca.cert)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.distinguished_name.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name.push(DnType::OrganizationalUnitName, role.as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // RFC 5280 wants it, and strict verifiers (Python's cryptography) insist.
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = match role {
        // Agents serve, and dial their neighbours when relaying.
        Role::Agent => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        Role::Dashboard | Role::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    (params.not_before, params.not_after) = (not_before, not_after);
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The cm role in its subject, if it has one.
    pub role: Option<Role>,
    /// Its DNS names.
    pub names: Vec<String>,
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
}

/// Reads the first certificate of a PEM text: its role, names and validity.
pub fn describe_pem(pem: &str) -> Result<Certificate, PkiError> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| PkiError::Invalid("no PEM certificate in it".into()))?;
    describe(&der)
}

/// Reads a certificate (DER): its role, names and validity.
pub fn describe(der: &[u8]) -> Result<Certificate, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Invalid(format!("unreadable certificate: {e}")))?;
    let (role, names) = identity(der)?;
    Ok(Certificate {
        role,
        names,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// The role and host names a peer certificate (DER) carries.
pub fn identity(der: &[u8]) -> Result<(Option<Role>, Vec<String>), PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Invalid(format!("unreadable peer certificate: {e}")))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    let subject = cert.subject();
    let ours = subject.iter_organization().any(|o| o.as_str() == Ok(ORGANIZATION));
    let role = match subject.iter_organizational_unit().next().map(|ou| ou.as_str()) {
        Some(Ok(ou)) if ours => Some(ou.parse()?),
        _ => None,
    };
    Ok((role, names))
}

/// Writes `content` to `path` readable by its owner only (keys), refusing to
/// overwrite an existing key.
pub fn write_private(path: &Path, content: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists(path.to_owned())
        } else {
            PkiError::Io { path: path.to_owned(), error: e }
        }
    })?;
    f.write_all(content.as_bytes()).map_err(|error| PkiError::Io { path: path.to_owned(), error })
}

/// Writes a public file (a certificate).
pub fn write_public(path: &Path, content: &str) -> Result<(), PkiError> {
    std::fs::write(path, content).map_err(|error| PkiError::Io { path: path.to_owned(), error })
}

/// Replaces `path` (or creates it) with `content`: written beside it, then
/// renamed over it, so that a reader finds the old file or the new one,
/// never half of one. `private` files are readable by their owner only.
pub fn replace(path: &Path, content: &str, private: bool) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |error| PkiError::Io { path: path.to_owned(), error };
    let name = path.file_name().ok_or_else(|| io(std::io::ErrorKind::InvalidInput.into()))?;
    let next = path.with_file_name(format!(".{}.new", name.to_string_lossy()));
    let _ = std::fs::remove_file(&next); // left by an interrupted run
    let mode = if private { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&next)
        .map_err(|error| PkiError::Io { path: next.clone(), error })?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|error| PkiError::Io { path: next.clone(), error })?;
    std::fs::rename(&next, path).map_err(io)
}

/// Reads a PEM file.
pub fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|error| PkiError::Io { path: path.to_owned(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_name_and_role() {
        let ca = new_ca("test fleet", 30).unwrap();
        let cert = issue(&ca, "srv01", Role::Agent, 30).unwrap();
        let der = rustls_pemfile::certs(&mut cert.cert.as_bytes()).next().unwrap().unwrap();
        let (role, names) = identity(&der).unwrap();
        assert_eq!(role, Some(Role::Agent));
        assert_eq!(names, ["srv01"]);
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::Operator.may_subscribe() && Role::Dashboard.may_subscribe() && !Role::Agent.may_subscribe());
    }

    #[test]
    fn names_must_be_dns_names() {
        for good in ["srv01", "lab-box.example.org", "a", "x1.y2", "steam_box"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("srv 09", "a character other than"),
            ("", "empty"),
            ("a..b", "empty label"),
            ("-srv", "starts or ends with '-'"),
            ("10.0.0.5", "IP address"),
            ("fd00::5", "IP address"),
            ("../etc/x", "empty label"),
            ("srv/01", "a character other than"),
            ("host.123", "all digits"),
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("is not a host name"), "{bad}: {err}");
        }
        let ca = new_ca("test fleet", 30).unwrap();
        assert!(matches!(issue(&ca, "srv 09", Role::Agent, 30), Err(PkiError::Name { .. })));
    }

    #[test]
    fn certificates_are_valid_for_a_day_at_least_and_say_until_when() {
        let ca = new_ca("test fleet", 30).unwrap();
        assert!(issue(&ca, "srv01", Role::Agent, 0).is_err());
        assert!(new_ca("x", 0).is_err());
        let cert = issue(&ca, "srv01", Role::Agent, 30).unwrap();
        let der = rustls_pemfile::certs(&mut cert.cert.as_bytes()).next().unwrap().unwrap();
        let c = describe(&der).unwrap();
        let days = (c.not_after - time::OffsetDateTime::now_utc()).whole_hours();
        assert!((29 * 24..=30 * 24).contains(&days), "{days} h");
        assert_eq!(format_unix(1_769_860_800), "2026-01-31 12:00 UTC");
    }

    #[test]
    fn renewing_keeps_the_key_unless_told_otherwise() {
        let ca = new_ca("test fleet", 30).unwrap();
        let old = issue(&ca, "srv01", Role::Agent, 1).unwrap();
        let kept = renew(&ca, "srv01", Role::Agent, 90, Some(&old.key)).unwrap();
        assert_eq!(kept.key, old.key);
        assert_ne!(kept.cert, old.cert);
        let spki = |pem: &str| {
            let der = rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            c.public_key().raw.to_vec()
        };
        assert_eq!(spki(&kept.cert), spki(&old.cert), "the same key, certified again");
        let fresh = renew(&ca, "srv01", Role::Agent, 90, None).unwrap();
        assert_ne!(spki(&fresh.cert), spki(&old.cert));
        assert!(renew(&ca, "srv01", Role::Agent, 90, Some("not a key")).is_err());
    }

    #[test]
    fn replacing_a_file_leaves_the_new_one_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cm-pki-replace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.key");
        std::fs::write(&path, "old").unwrap();
        replace(&path, "new", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "nothing left beside it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cm-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.key");
        let _ = std::fs::remove_file(&path);
        write_private(&path, "secret").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(write_private(&path, "other"), Err(PkiError::Exists(_))));
    }
}
