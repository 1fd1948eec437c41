//! Mutual TLS over QUIC: every peer shows a certificate from the fleet CA.
//! One crypto provider (ring) everywhere, TLS 1.3 only, ALPN `cm/1`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use thiserror::Error;

use crate::pki::{self, PkiError, Role};
use crate::refusal::CertProblem;

/// The protocol identifier negotiated in TLS: the major version travels here.
pub const ALPN: &[u8] = b"cm/1";

/// Which of an identity's three files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    Ca,
    Cert,
    Key,
}

impl std::fmt::Display for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PemFile::Ca => "CA certificate",
            PemFile::Cert => "certificate",
            PemFile::Key => "key",
        })
    }
}

/// Why a TLS or QUIC setup failed.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A PEM file (named by its path when it came from one) that holds no
    /// usable certificate or key.
    #[error("{}: {message}", path.as_ref().map_or_else(|| file.to_string(), |p| p.display().to_string()))]
    Pem { file: PemFile, path: Option<std::path::PathBuf>, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    // Not a `source`: the message already says it, and chains would say it twice.
    #[error("cannot open UDP socket on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str, file: PemFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::Pem { file, path: None, message };
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bad = |message: String| TlsError::Pem { file: PemFile::Key, path: None, message };
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no PEM private key in it".into()))
}

/// What a peer presents: the fleet CA to check others against, and its own
/// certificate and key (`None` only to test that such clients are refused).
#[derive(Debug, Clone)]
pub struct Identity {
    ca: Vec<CertificateDer<'static>>,
    own: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl Identity {
    /// From PEM text; an error says which of the three is wrong.
    pub fn from_pem(ca: &str, cert: &str, key_pem: &str) -> Result<Self, TlsError> {
        Ok(Self { ca: certs(ca, PemFile::Ca)?, own: Some((certs(cert, PemFile::Cert)?, Arc::new(key(key_pem)?))) })
    }

    /// From PEM files; errors name the file.
    pub fn load(ca: &Path, cert: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let ca_pem = pki::read(ca)?;
        let cert_pem = pki::read(cert)?;
        let key_pem = pki::read(key_path)?;
        Self::from_pem(&ca_pem, &cert_pem, &key_pem).map_err(|e| match e {
            TlsError::Pem { file, message, .. } => {
                let path = match file {
                    PemFile::Ca => ca,
                    PemFile::Cert => cert,
                    PemFile::Key => key_path,
                };
                TlsError::Pem { file, path: Some(path.to_owned()), message }
            }
            other => other,
        })
    }

    /// A client that trusts the fleet CA but shows no certificate.
    pub fn anonymous(ca: &str) -> Result<Self, TlsError> {
        Ok(Self { ca: certs(ca, PemFile::Ca)?, own: None })
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in &self.ca {
            roots.add(c.clone())?;
        }
        Ok(roots)
    }

    /// The role in this identity's own certificate.
    pub fn role(&self) -> Option<Role> {
        self.own_certificate()?.role
    }

    /// What this identity's own certificate says about itself.
    pub fn own_certificate(&self) -> Option<pki::Certificate> {
        let (chain, _) = self.own.as_ref()?;
        pki::describe(chain.first()?).ok()
    }

    /// Whether the key is the one the certificate was issued for (a peer
    /// would refuse the handshake otherwise). `None` when the key's kind
    /// cannot say.
    pub fn keys_match(&self) -> Option<bool> {
        let (chain, key) = self.own.as_ref()?;
        let signer = provider().key_provider.load_private_key(key.clone_key()).ok()?;
        match rustls::sign::CertifiedKey::new(chain.clone(), signer).keys_match() {
            Ok(()) => Some(true),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Some(false),
            Err(_) => None,
        }
    }

    /// What a peer checking this identity's own certificate at `now` would
    /// refuse it for: its CA (among this identity's), its dates, its use,
    /// and for `Purpose::Serve` the host name dashboards dial. Each is
    /// checked on its own, so that an expired certificate for another host
    /// says both.
    pub fn own_problems(&self, purpose: Purpose<'_>, now: std::time::SystemTime) -> Vec<CertProblem> {
        use rustls::client::danger::ServerCertVerifier;
        let Some((chain, _)) = self.own.as_ref() else { return vec![CertProblem::Missing] };
        let Some(cert) = self.own_certificate() else {
            return vec![CertProblem::Other("the certificate cannot be read".into())];
        };
        let secs = |t: time::OffsetDateTime| t.unix_timestamp().max(0) as u64;
        let (not_before, not_after) = (secs(cert.not_before), secs(cert.not_after));
        let now_secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut problems = Vec::new();
        // The signature and the use, checked at a moment the certificate is
        // valid, so that an expired one is not taken for a stranger's.
        let at = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            now_secs.clamp(not_before.saturating_add(1), not_after.saturating_sub(1).max(not_before)),
        ));
        let (leaf, intermediates) = (&chain[0], &chain[1..]);
        let checked = match self.roots().map(Arc::new) {
            Err(e) => Err(rustls::Error::General(e.to_string())),
            Ok(roots) => match purpose {
                Purpose::Serve(host) => {
                    let name = cert.names.first().map_or(host, String::as_str);
                    match (
                        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider()).build(),
                        rustls::pki_types::ServerName::try_from(name.to_owned()),
                    ) {
                        (Ok(verifier), Ok(name)) => {
                            verifier.verify_server_cert(leaf, intermediates, &name, &[], at).map(|_| ())
                        }
                        (Err(e), _) => Err(rustls::Error::General(e.to_string())),
                        (_, Err(e)) => Err(rustls::Error::General(format!("{name:?}: {e}"))),
                    }
                }
                Purpose::Dial => match WebPkiClientVerifier::builder_with_provider(roots, provider()).build() {
                    Ok(verifier) => verifier.verify_client_cert(leaf, intermediates, at).map(|_| ()),
                    Err(e) => Err(rustls::Error::General(e.to_string())),
                },
            },
        };
        match checked.map_err(|e| CertProblem::from_rustls(&e)) {
            // Names are checked below, against the host rather than the certificate's own.
            Ok(()) | Err(CertProblem::WrongName { .. }) => {}
            Err(problem) => problems.push(problem),
        }
        if now_secs < not_before {
            problems.push(CertProblem::NotYetValid { not_before: Some(not_before) });
        } else if now_secs > not_after {
            problems.push(CertProblem::Expired { not_after: Some(not_after) });
        }
        if let Purpose::Serve(host) = purpose {
            if !cert.names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
                problems.push(CertProblem::WrongName { expected: host.to_owned(), presented: cert.names });
            }
        }
        problems
    }
}

/// What an identity's certificate is for, to check it against.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// An agent serving dashboards that dial it by this name.
    Serve(&'a str),
    /// A dashboard (or operator) dialling agents.
    Dial,
}

/// Streams a client may open at once: the session and four history requests.
pub const SERVER_STREAMS: u8 = 5;
/// Bytes a client may have in flight on one stream: one largest client frame
/// (64 KiB body and its 4-byte length) and a little.
pub const STREAM_WINDOW: u32 = 68 * 1024;
/// Bytes a client may have in flight on its whole connection.
pub const CONNECTION_WINDOW: u32 = 128 * 1024;

/// TLS for the agent's `/metrics` over TCP (ALPN `http/1.1`): the agent's
/// certificate, and a client certificate from the fleet CA required, as
/// Prometheus' `tls_config` presents one. The role is the caller's to check.
pub fn http_server_config(identity: &Identity) -> Result<rustls::ServerConfig, TlsError> {
    server_tls(identity, b"http/1.1")
}

/// TLS 1.3 with this identity's certificate, requiring a client certificate
/// from the fleet CA, offering `alpn`.
fn server_tls(identity: &Identity, alpn: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = identity.own.clone().ok_or_else(|| TlsError::Quic("a server needs a certificate".into()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(identity.roots()?), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key.clone_key())?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    Ok(tls)
}

/// A QUIC server endpoint that requires a client certificate from the fleet CA.
pub fn server(identity: &Identity, addr: SocketAddr) -> Result<quinn::Endpoint, TlsError> {
    let config = server_config(identity)?;
    quinn::Endpoint::server(config, addr).map_err(|error| TlsError::Bind { addr, error })
}

/// The server side's QUIC and TLS settings for `identity`; give a new one to a
/// running endpoint (`set_server_config`) to change certificates without
/// dropping established connections.
pub fn server_config(identity: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    let tls = server_tls(identity, ALPN)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    // What one peer can make the agent hold: five streams (the session and
    // history requests), one client frame in flight on each but at most
    // CONNECTION_WINDOW on all, no datagrams, and little for handshakes not
    // yet accepted.
    let transport = Arc::get_mut(&mut config.transport).expect("fresh transport config");
    transport.max_concurrent_bidi_streams(SERVER_STREAMS.into());
    transport.max_concurrent_uni_streams(0u8.into());
    transport.stream_receive_window(STREAM_WINDOW.into());
    transport.receive_window(CONNECTION_WINDOW.into());
    transport.datagram_receive_buffer_size(None);
    transport.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
    config.max_incoming(64);
    config.incoming_buffer_size(64 * 1024);
    config.incoming_buffer_size_total(1 << 20);
    Ok(config)
}

/// How long a dashboard waits for a packet from an agent before it takes
/// the connection for lost (agents send keep-alives every 2 s).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// A QUIC client endpoint that checks servers against the fleet CA and the
/// host name it dials, and shows its own certificate.
pub fn client(identity: &Identity) -> Result<quinn::Endpoint, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(identity.roots()?);
    let mut tls = match &identity.own {
        Some((chain, key)) => builder.with_client_auth_cert(chain.clone(), key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
    transport.max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("6 s fits")));
    config.transport_config(Arc::new(transport));
    // A dashboard dials its whole fleet at once, and the answers arrive
    // together: the default receive buffer (about 200 KiB on Linux) drops
    // some of them. Linux doubles the figure for its bookkeeping (4 MiB) and
    // caps it at net.core.rmem_max.
    const RECEIVE_BUFFER_BYTES: usize = 2 << 20;
    let bind = |addr: SocketAddr| -> std::io::Result<std::net::UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            let _ = socket.set_only_v6(false); // IPv4 hosts too, where the system allows
        }
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES); // a smaller buffer still works
        socket.bind(&addr.into())?;
        Ok(socket.into())
    };
    let v6: SocketAddr = "[::]:0".parse().expect("literal address");
    let v4: SocketAddr = "0.0.0.0:0".parse().expect("literal address");
    let (socket, addr) = match bind(v6) {
        Ok(s) => (s, v6),
        // Hosts without IPv6.
        Err(_) => (bind(v4).map_err(|error| TlsError::Bind { addr: v4, error })?, v4),
    };
    let runtime = quinn::default_runtime()
        .ok_or_else(|| TlsError::Bind { addr, error: std::io::Error::other("no async runtime") })?;
    let mut endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .map_err(|error| TlsError::Bind { addr, error })?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// The role and names of the peer of an established connection.
pub fn peer(conn: &quinn::Connection) -> Result<(Option<Role>, Vec<String>), PkiError> {
    let chain = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| PkiError::Invalid("the peer showed no certificate".into()))?;
    let leaf = chain.first().ok_or_else(|| PkiError::Invalid("the peer showed an empty chain".into()))?;
    pki::identity(leaf)
}
