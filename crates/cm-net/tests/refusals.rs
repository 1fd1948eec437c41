//! What a dashboard is told when it cannot subscribe: which side refused
//! which certificate and why, in the fleet's terms, or that nothing answered.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use cm_net::client::{subscribe, ClientError};
use cm_net::pki::{self, Pem};
use cm_net::{tls, CertProblem, Identity, Role};

const T: Duration = Duration::from_secs(5);

/// A certificate and key that trust the CA `trusted`.
fn identity(trusted: &Pem, own: &Pem) -> Identity {
    Identity::from_pem(&trusted.cert, &own.cert, &own.key).unwrap()
}

/// Serves TLS as `server` (an agent's certificate, or not) and holds every
/// connection that gets through until the client leaves.
fn serve(server: &Identity) -> SocketAddr {
    let endpoint = tls::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    conn.closed().await;
                }
            });
        }
    });
    addr
}

struct Fleet {
    ca: Pem,
    laptop: Identity,
}

impl Fleet {
    fn new() -> Self {
        let ca = pki::new_ca("test fleet", 30).unwrap();
        let laptop = identity(&ca, &pki::issue(&ca, "laptop", Role::Dashboard, 30).unwrap());
        Fleet { ca, laptop }
    }

    fn agent(&self, name: &str) -> Identity {
        identity(&self.ca, &pki::issue(&self.ca, name, Role::Agent, 30).unwrap())
    }

    async fn dial(&self, client: &Identity, addr: SocketAddr, host: &str) -> ClientError {
        let endpoint = tls::client(client).unwrap();
        match subscribe(&endpoint, addr, host, Role::Dashboard, T).await {
            Ok(_) => panic!("{host} at {addr} was welcomed"),
            Err(e) => e,
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

#[tokio::test]
async fn an_agent_with_another_hosts_certificate_is_named_with_what_to_do() {
    let fleet = Fleet::new();
    let addr = serve(&fleet.agent("srv01"));
    let err = fleet.dial(&fleet.laptop, addr, "srv03").await;
    assert!(
        matches!(&err, ClientError::AgentCertificate { problem: CertProblem::WrongName { expected, presented }, .. }
            if expected == "srv03" && presented == &["srv01"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the agent at {addr} presents a certificate for srv01, not srv03: if {addr} is srv03, issue it one with \
             `cm-agent pki issue --ca DIR --name srv03 --role agent`; if not, correct srv03's address"
        )
    );
}

#[tokio::test]
async fn an_agent_from_another_ca_is_said_to_be_so() {
    let fleet = Fleet::new();
    let other = pki::new_ca("test fleet", 30).unwrap(); // the same name: only the signature differs
    let stranger = identity(&other, &pki::issue(&other, "srv01", Role::Agent, 30).unwrap());
    let err = fleet.dial(&fleet.laptop, serve(&stranger), "srv01").await;
    assert!(matches!(&err, ClientError::AgentCertificate { problem: CertProblem::OtherCa, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("presents a certificate signed by another CA than the one in this dashboard's tls.ca"),
        "{text}"
    );
    assert!(!text.contains("BadSignature") && !text.contains("error 51"), "{text}");
}

#[tokio::test]
async fn an_agent_certificate_out_of_its_dates_says_which_date() {
    let fleet = Fleet::new();
    let now = SystemTime::now();
    let ended = now - days(1);
    let old = pki::issue_between(&fleet.ca, "srv01", Role::Agent, now - days(30), ended).unwrap();
    let err = fleet.dial(&fleet.laptop, serve(&identity(&fleet.ca, &old)), "srv01").await;
    assert!(
        matches!(&err, ClientError::AgentCertificate { problem: CertProblem::Expired { not_after: Some(t) }, .. } if *t == unix(ended)),
        "{err:?}"
    );
    let text = err.to_string();
    let expired = format!("presents a certificate that expired on {}", pki::format_unix(unix(ended)));
    assert!(text.contains(&expired), "{text}");
    assert!(text.contains("renew it with `cm-agent pki renew --ca DIR --name srv01`"), "{text}");

    let starts = now + days(1);
    let early = pki::issue_between(&fleet.ca, "srv01", Role::Agent, starts, now + days(30)).unwrap();
    let err = fleet.dial(&fleet.laptop, serve(&identity(&fleet.ca, &early)), "srv01").await;
    assert!(
        matches!(&err, ClientError::AgentCertificate { problem: CertProblem::NotYetValid { not_before: Some(t) }, .. } if *t == unix(starts)),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("is not valid until {}", pki::format_unix(unix(starts)))), "{err}");
}

#[tokio::test]
async fn a_dashboard_certificate_serving_is_not_an_agent() {
    let fleet = Fleet::new();
    let posing = identity(&fleet.ca, &pki::issue(&fleet.ca, "srv01", Role::Dashboard, 30).unwrap());
    let err = fleet.dial(&fleet.laptop, serve(&posing), "srv01").await;
    assert!(matches!(&err, ClientError::NotAnAgent { .. }), "{err:?}");
    assert!(err.to_string().contains("is not an agent: its certificate is not made for serving: issue srv01 an agent's certificate with `cm-agent pki issue --ca DIR --name srv01 --role agent`"), "{err}");
}

#[tokio::test]
async fn the_agent_refusing_this_dashboards_certificate_is_told_apart() {
    let fleet = Fleet::new();
    let addr = serve(&fleet.agent("srv01"));

    let other = pki::new_ca("test fleet", 30).unwrap();
    let stranger = identity(&fleet.ca, &pki::issue(&other, "laptop", Role::Dashboard, 30).unwrap());
    let err = fleet.dial(&stranger, addr, "srv01").await;
    assert!(matches!(&err, ClientError::CertificateRefused { problem: CertProblem::OtherCa, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the agent at {addr} refused this dashboard's certificate (tls.cert): it is not signed by the CA the agent \
             trusts; issue one from the fleet's CA with `cm-agent pki issue --ca DIR --name NAME --role dashboard`"
        )
    );

    let now = SystemTime::now();
    let ended = now - days(2);
    let old = pki::issue_between(&fleet.ca, "laptop", Role::Dashboard, now - days(30), ended).unwrap();
    let err = fleet.dial(&identity(&fleet.ca, &old), addr, "srv01").await;
    assert!(matches!(&err, ClientError::CertificateRefused { problem: CertProblem::Expired { .. }, .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("it expired on {}", pki::format_unix(unix(ended)))), "{err}");

    let anonymous = Identity::anonymous(&fleet.ca.cert).unwrap();
    let err = fleet.dial(&anonymous, addr, "srv01").await;
    assert!(matches!(&err, ClientError::CertificateRefused { problem: CertProblem::Missing, .. }), "{err:?}");
    assert!(err.to_string().contains("refused this dashboard: it showed no certificate"), "{err}");
    assert!(!err.to_string().contains("cannot reach") && !err.to_string().contains("aborted by peer"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_no_answer_and_a_bad_name_is_not_dialled() {
    let fleet = Fleet::new();
    let addr: SocketAddr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap() // closed again: nothing listens there
    };
    let endpoint = tls::client(&fleet.laptop).unwrap();
    let short = Duration::from_millis(500);
    let err = subscribe(&endpoint, addr, "srv01", Role::Dashboard, short).await.err().expect("no agent");
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no answer within 0.5 s from {addr}: the host is down, no cm-agent listens on UDP port {}, or a firewall drops it",
            addr.port()
        )
    );
    let err = subscribe(&endpoint, addr, "srv 03", Role::Dashboard, short).await.err().expect("not dialled");
    assert!(matches!(err, ClientError::Dial { .. }), "{err:?}");
    assert!(err.to_string().contains("\"srv 03\" is not a host name"), "{err}");
}

#[test]
fn an_identity_says_what_peers_would_refuse_its_own_certificate_for() {
    use cm_net::refusal::Use;
    use tls::Purpose;
    let fleet = Fleet::new();
    let now = std::time::SystemTime::now();
    let srv01 = fleet.agent("srv01");
    assert_eq!(srv01.own_problems(Purpose::Serve("srv01"), now), []);
    assert_eq!(srv01.keys_match(), Some(true));
    assert_eq!(
        srv01.own_problems(Purpose::Serve("srv03"), now),
        [CertProblem::WrongName { expected: "srv03".into(), presented: vec!["srv01".into()] }]
    );
    assert_eq!(fleet.laptop.own_problems(Purpose::Dial, now), []);
    assert_eq!(
        fleet.laptop.own_problems(Purpose::Serve("laptop"), now),
        [CertProblem::WrongUse { required: Use::Serving }],
        "a dashboard's certificate cannot serve"
    );
    // Another CA's, and out of date: both are said.
    let other = pki::new_ca("test fleet", 30).unwrap();
    let t = SystemTime::now();
    let old = pki::issue_between(&other, "srv01", Role::Agent, t - days(30), t - days(1)).unwrap();
    let stranger = identity(&fleet.ca, &old);
    assert_eq!(
        stranger.own_problems(Purpose::Serve("srv01"), now),
        [CertProblem::OtherCa, CertProblem::Expired { not_after: Some(unix(t - days(1))) }]
    );
    // A key that is not the certificate's.
    let a = pki::issue(&fleet.ca, "srv01", Role::Agent, 30).unwrap();
    let b = pki::issue(&fleet.ca, "srv01", Role::Agent, 30).unwrap();
    assert_eq!(Identity::from_pem(&fleet.ca.cert, &a.cert, &b.key).unwrap().keys_match(), Some(false));
}
