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
    #[error("{0}")]
    Invalid(String),
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree by a few minutes.
    params.not_before = now - time::Duration::minutes(10);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Creates a fleet CA valid for `days`.
pub fn new_ca(name: &str, days: u32) -> Result<Pem, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// Issues a certificate for host or user `name` with `role`, signed by `ca`,
/// valid for `days` (0 gives a certificate that has already expired, for tests).
pub fn issue(ca: &Pem, name: &str, role: Role, days: u32) -> Result<Pem, PkiError> {
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
    if days == 0 {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(2);
        params.not_after = now - time::Duration::days(1);
    } else {
        validity(&mut params, days);
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
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
