//! Mutual TLS on loopback: who gets in and who does not.

use std::net::SocketAddr;
use std::time::Duration;

use cm_net::pki::{self, Pem};
use cm_net::{tls, Identity, Role};

struct Fleet {
    ca: Pem,
}

impl Fleet {
    fn new() -> Self {
        Self { ca: pki::new_ca("test fleet", 30).unwrap() }
    }

    fn identity(&self, name: &str, role: Role, days: u32) -> Identity {
        let own = pki::issue(&self.ca, name, role, days).unwrap();
        Identity::from_pem(&self.ca.cert, &own.cert, &own.key).unwrap()
    }
}

/// Starts an agent-like server for `name`; returns its address and a task that
/// yields the role of the first client that completes the handshake, or the
/// server side's handshake error.
fn serve(fleet: &Fleet, name: &str) -> (SocketAddr, tokio::task::JoinHandle<Result<Option<Role>, String>>) {
    let endpoint = tls::server(&fleet.identity(name, Role::Agent, 30), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let incoming = endpoint.accept().await.ok_or("endpoint closed")?;
        let conn = incoming.await.map_err(|e| e.to_string())?;
        let (role, _) = tls::peer(&conn).map_err(|e| e.to_string())?;
        // Keep the connection open until the client has seen the handshake through.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        Ok(role)
    });
    (addr, task)
}

async fn dial(client: &Identity, addr: SocketAddr, name: &str) -> Result<quinn::Connection, String> {
    let endpoint = tls::client(client).unwrap();
    let connecting = endpoint.connect(addr, name).map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(Duration::from_secs(5), connecting).await.map_err(|_| "timed out")?;
    let conn = conn.map_err(|e| e.to_string())?;
    // With TLS 1.3 the client may finish before the server has checked its
    // certificate: a refused client learns it on its first use of the connection.
    match tokio::time::timeout(Duration::from_millis(500), conn.closed()).await {
        Ok(reason) => Err(reason.to_string()),
        Err(_) => Ok(conn),
    }
}

#[tokio::test]
async fn a_dashboard_from_the_fleet_ca_gets_in_with_its_role() {
    let fleet = Fleet::new();
    let (addr, server) = serve(&fleet, "srv01");
    let conn = dial(&fleet.identity("laptop", Role::Dashboard, 30), addr, "srv01").await.unwrap();
    assert_eq!(server.await.unwrap(), Ok(Some(Role::Dashboard)));
    let (role, names) = tls::peer(&conn).unwrap();
    assert_eq!((role, names), (Some(Role::Agent), vec!["srv01".to_string()]));
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let fleet = Fleet::new();
    let (addr, server) = serve(&fleet, "srv01");
    let err = dial(&Identity::anonymous(&fleet.ca.cert).unwrap(), addr, "srv01").await.unwrap_err();
    assert!(err.contains("certificate"), "client sees: {err}");
    let server_err = server.await.unwrap().unwrap_err();
    assert!(server_err.contains("certificate"), "server sees: {server_err}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let fleet = Fleet::new();
    let other = Fleet::new();
    let (addr, server) = serve(&fleet, "srv01");
    // The stranger trusts our CA (so it accepts the server), but its own certificate is not ours.
    let own = pki::issue(&other.ca, "laptop", Role::Dashboard, 30).unwrap();
    let stranger = Identity::from_pem(&fleet.ca.cert, &own.cert, &own.key).unwrap();
    let err = dial(&stranger, addr, "srv01").await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    // Both CAs are called "test fleet": the signature is what gives the stranger away.
    let server_err = server.await.unwrap().unwrap_err();
    assert!(server_err.contains("invalid peer certificate"), "server sees: {server_err}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let fleet = Fleet::new();
    let (addr, server) = serve(&fleet, "srv01");
    let (now, day) = (std::time::SystemTime::now(), Duration::from_secs(86_400));
    let old = pki::issue_between(&fleet.ca, "laptop", Role::Dashboard, now - 2 * day, now - day).unwrap();
    let expired = Identity::from_pem(&fleet.ca.cert, &old.cert, &old.key).unwrap();
    assert!(dial(&expired, addr, "srv01").await.is_err());
    let server_err = server.await.unwrap().unwrap_err();
    assert!(server_err.to_lowercase().contains("expired"), "server sees: {server_err}");
}

#[tokio::test]
async fn the_dashboard_refuses_an_agent_that_is_not_the_host_it_dialled() {
    let fleet = Fleet::new();
    let (addr, _server) = serve(&fleet, "srv02");
    let err = dial(&fleet.identity("laptop", Role::Dashboard, 30), addr, "srv01").await.unwrap_err();
    assert!(err.contains("NotValidForName") || err.contains("not valid for name"), "{err}");
}
