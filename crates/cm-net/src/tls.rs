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

/// The protocol identifier negotiated in TLS: the major version travels here.
pub const ALPN: &[u8] = b"cm/1";

/// Why a TLS or QUIC setup failed.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{what}: {message}")]
    Pem { what: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    #[error("cannot open UDP socket on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { what: what.into(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { what: what.into(), message: "no PEM certificate in it".into() });
    }
    Ok(certs)
}

fn key(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| TlsError::Pem { what: what.into(), message: e.to_string() })?
        .ok_or_else(|| TlsError::Pem { what: what.into(), message: "no PEM private key in it".into() })
}

/// What a peer presents: the fleet CA to check others against, and its own
/// certificate and key (`None` only to test that such clients are refused).
#[derive(Debug, Clone)]
pub struct Identity {
    ca: Vec<CertificateDer<'static>>,
    own: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl Identity {
    /// From PEM text.
    pub fn from_pem(ca: &str, cert: &str, key_pem: &str) -> Result<Self, TlsError> {
        Ok(Self {
            ca: certs(ca, "CA certificate")?,
            own: Some((certs(cert, "certificate")?, Arc::new(key(key_pem, "key")?))),
        })
    }

    /// From PEM files; errors name the file.
    pub fn load(ca: &Path, cert: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| pki::read(p);
        let named = |p: &Path, e: TlsError| match e {
            TlsError::Pem { message, .. } => TlsError::Pem { what: p.display().to_string(), message },
            other => other,
        };
        let ca_pem = read(ca)?;
        let cert_pem = read(cert)?;
        let key_pem = read(key_path)?;
        Ok(Self {
            ca: certs(&ca_pem, "").map_err(|e| named(ca, e))?,
            own: Some((
                certs(&cert_pem, "").map_err(|e| named(cert, e))?,
                Arc::new(key(&key_pem, "").map_err(|e| named(key_path, e))?),
            )),
        })
    }

    /// A client that trusts the fleet CA but shows no certificate.
    pub fn anonymous(ca: &str) -> Result<Self, TlsError> {
        Ok(Self { ca: certs(ca, "CA certificate")?, own: None })
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
        let (chain, _) = self.own.as_ref()?;
        pki::identity(chain.first()?).ok()?.0
    }
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
    let (chain, key) = identity.own.clone().ok_or_else(|| TlsError::Quic("a server needs a certificate".into()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(identity.roots()?), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key.clone_key())?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// A QUIC server endpoint that requires a client certificate from the fleet CA.
pub fn server(identity: &Identity, addr: SocketAddr) -> Result<quinn::Endpoint, TlsError> {
    let config = server_config(identity)?;
    quinn::Endpoint::server(config, addr).map_err(|source| TlsError::Bind { addr, source })
}

/// The server side's QUIC and TLS settings for `identity`; give a new one to a
/// running endpoint (`set_server_config`) to change certificates without
/// dropping established connections.
pub fn server_config(identity: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    let (chain, key) = identity.own.clone().ok_or_else(|| TlsError::Quic("a server needs a certificate".into()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(identity.roots()?), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
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
    transport.max_idle_timeout(Some(std::time::Duration::from_secs(6).try_into().expect("6 s fits")));
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
        Err(_) => (bind(v4).map_err(|source| TlsError::Bind { addr: v4, source })?, v4),
    };
    let runtime = quinn::default_runtime()
        .ok_or_else(|| TlsError::Bind { addr, source: std::io::Error::other("no async runtime") })?;
    let mut endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .map_err(|source| TlsError::Bind { addr, source })?;
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
