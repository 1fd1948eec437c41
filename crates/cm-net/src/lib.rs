//! Transport for cm-dashboard, shared by agent and dashboard: the fleet PKI,
//! mutual-TLS configurations, QUIC endpoints (ALPN `cm/1`) and framed
//! message streams.

pub mod client;
pub mod pki;
pub mod refusal;
pub mod stream;
pub mod tls;

pub use pki::Role;
pub use refusal::CertProblem;
pub use stream::{code, FramedRecv, StreamError};
pub use tls::{Identity, TlsError, ALPN};
