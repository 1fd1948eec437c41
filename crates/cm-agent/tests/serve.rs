//! `cm-agent run` on loopback: subscribers, refusals, bad frames, shutdown.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cm_net::client::{subscribe, ClientError};
use cm_net::{pki, tls, Identity, Role};
use cm_proto::history::{HistoryRequest, Resolution};
use cm_proto::Message;

mod common;

use common::{agent_bin, ok, Agent};

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_dashboard_gets_a_welcome_then_snapshots() {
    let agent = Agent::start("ok");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    assert_eq!(sub.welcome.host, "srv01");
    assert_eq!((sub.welcome.major, sub.welcome.interval_ms), (1, 300));
    let a = sub.next_snapshot().await.unwrap().unwrap();
    let b = sub.next_snapshot().await.unwrap().unwrap();
    assert_eq!(a.host, "srv01");
    assert!(b.seq > a.seq, "{} then {}", a.seq, b.seq);
    assert!(a.memory.is_some() && a.cpu.is_some());
}

#[tokio::test]
async fn refusals_are_clear_on_both_sides() {
    let mut agent = Agent::start("refuse");
    // An agent certificate may not subscribe.
    let endpoint = tls::client(&agent.identity("srv02")).unwrap();
    match subscribe(&endpoint, agent.addr, "srv01", Role::Agent, T).await {
        Err(ClientError::Refused { reason, .. }) => {
            assert!(reason.contains("role agent may not subscribe"), "{reason}")
        }
        other => panic!("expected a refusal, got {:?}", other.map(|s| s.welcome)),
    }
    // No certificate at all.
    let ca = std::fs::read_to_string(agent.dir.join("ca.pem")).unwrap();
    let anonymous = tls::client(&Identity::anonymous(&ca).unwrap()).unwrap();
    let err = subscribe(&anonymous, agent.addr, "srv01", Role::Dashboard, T).await.err().expect("refused");
    assert!(err.to_string().contains("certificate"), "{err}");
    // The dashboard dialled srv02 but reached srv01's agent.
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let err = subscribe(&endpoint, agent.addr, "srv02", Role::Dashboard, T).await.err().expect("refused");
    assert!(err.to_string().contains("presents a certificate for srv01, not srv02"), "{err}");
    // The first refusal from an address is logged at once; the others from it
    // are summed up (at the latest when the agent stops), so retries cannot flood the log.
    agent.wait_log("refusing srv02", |l| {
        l.starts_with("cm-agent: refused srv02 (127.0.0.1:") && l.contains("may not subscribe")
    });
    settle(&agent, &endpoint).await;
    let (_, log) = agent.stop();
    let summary =
        log.lines().find(|l| l.starts_with("cm-agent: 2 more from 127.0.0.1 in the last minute")).expect(&log);
    assert!(summary.contains("refused this agent's certificate"), "the dashboard refused the agent: {summary}");
}

/// Subscribes once more from `endpoint` (laptop's) and waits until the agent
/// says so: the agent has then read what that endpoint sent before, such as
/// the close of a connection it refused.
async fn settle(agent: &Agent, endpoint: &quinn::Endpoint) {
    let before = agent.log().matches("(dashboard) subscribed").count();
    let _sub = subscribe(endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    agent.wait_count("(dashboard) subscribed", before);
}

/// Opens a raw stream to the agent as the dashboard and sends `bytes`.
async fn raw(agent: &Agent, bytes: &[u8]) -> (quinn::Connection, quinn::RecvStream) {
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let conn = endpoint.connect(agent.addr, "srv01").unwrap().await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    (conn, recv)
}

fn frame(msg: &Message) -> Vec<u8> {
    cm_proto::frame::encode_frame(msg).unwrap()
}

#[tokio::test]
async fn bad_input_closes_that_connection_and_the_agent_serves_on() {
    let agent = Agent::start("bad");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut good = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();

    // A newer major version is refused with both versions named.
    let hello2 = Message::Hello { major: 2, minor: 0, role: "dashboard".into(), subscribe: true };
    let (conn, recv) = raw(&agent, &frame(&hello2)).await;
    let mut frames = cm_net::FramedRecv::new(recv, 1 << 20);
    match frames.next().await {
        Ok(Some(Message::Refused { reason })) => {
            assert_eq!(reason, "protocol 2.0 is not supported: this agent speaks 1.3")
        }
        other => panic!("{other:?}"),
    }
    let reason = tokio::time::timeout(T, conn.closed()).await.unwrap();
    assert!(reason.to_string().contains("3"), "version close code: {reason}");

    for (what, bytes) in [
        ("random bytes", b"\x00\x00\x00\x08\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8".to_vec()),
        ("oversized frame", [&(10u32 << 20).to_be_bytes()[..], b"xxxx"].concat()),
        ("unexpected message", frame(&Message::Refused { reason: "I am not an agent".into() })),
        ("empty frame", vec![0, 0, 0, 0]),
    ] {
        let (conn, _recv) = raw(&agent, &bytes).await;
        let reason = tokio::time::timeout(T, conn.closed()).await.unwrap_or_else(|_| panic!("{what}: not closed"));
        assert!(reason.to_string().contains("protocol error"), "{what}: {reason}");
    }
    // The well-behaved subscriber never noticed.
    let before = good.next_snapshot().await.unwrap().unwrap().seq;
    let after = good.next_snapshot().await.unwrap().unwrap().seq;
    assert!(after > before);
    let mut agent = agent;
    let (status, log) = agent.stop();
    assert!(status.success(), "{status:?}");
    assert!(log.contains("refused laptop (127.0.0.1:") && log.contains("protocol 2.0 is not supported"), "{log}");
    assert!(log.contains("cm-agent: 4 more from 127.0.0.1 in the last minute, the last: closed laptop"), "{log}");
}

#[tokio::test]
async fn a_subscriber_that_finishes_after_hello_stalls_nothing() {
    let mut agent = Agent::start("fin");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let hello = Message::Hello { major: 1, minor: 1, role: "dashboard".into(), subscribe: true };
    let conn = endpoint.connect(agent.addr, "srv01").unwrap().await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(&frame(&hello)).await.unwrap();
    send.finish().unwrap();
    let mut frames = cm_net::FramedRecv::new(recv, 1 << 20);
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(Some(Message::Welcome { .. }))));
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(Some(Message::Snapshot(_)))));
    // The finished client keeps its subscription, and everyone else is served.
    let mut other = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    let a = other.next_snapshot().await.unwrap().unwrap().seq;
    let b = other.next_snapshot().await.unwrap().unwrap().seq;
    assert!(b > a);
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(Some(Message::Patch(_)))));
    let (status, log) = agent.stop();
    assert!(status.success() && log.contains("cm-agent: stopped"), "{status:?} {log}");
}

#[tokio::test]
async fn hello_without_subscribing_is_welcomed_and_the_stream_ends() {
    let agent = Agent::start("nosub");
    let hello = Message::Hello { major: 1, minor: 1, role: "dashboard".into(), subscribe: false };
    let (_conn, recv) = raw(&agent, &frame(&hello)).await;
    let mut frames = cm_net::FramedRecv::new(recv, 1 << 20);
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(Some(Message::Welcome { .. }))));
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(None)), "nothing follows");
}

#[tokio::test]
async fn extra_streams_and_junk_frames_are_never_buffered() {
    let agent = Agent::start("streams");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let conn = endpoint.connect(agent.addr, "srv01").unwrap().await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    let hello = Message::Hello { major: 1, minor: 1, role: "dashboard".into(), subscribe: true };
    send.write_all(&frame(&hello)).await.unwrap();
    let mut frames = cm_net::FramedRecv::new(recv, 1 << 20);
    assert!(matches!(tokio::time::timeout(T, frames.next()).await.unwrap(), Ok(Some(Message::Welcome { .. }))));
    let before = agent.rss_kib();
    // Eight more streams with 1 MiB each: each is a history stream whose
    // first bytes announce a frame above the limit, so each is answered with
    // an error and never buffered; at most four are open at once.
    let mut answered = 0;
    for _ in 0..8 {
        if let Ok(Ok((mut s, r))) = tokio::time::timeout(Duration::from_millis(300), conn.open_bi()).await {
            let _ = tokio::time::timeout(Duration::from_millis(300), s.write_all(&vec![0x55; 1 << 20])).await;
            let mut end = cm_net::FramedRecv::new(r, 1 << 20);
            if let Ok(Ok(Some(Message::HistoryEnd(e)))) = tokio::time::timeout(T, end.next()).await {
                assert!(e.error.as_deref().is_some_and(|e| e.contains("exceeds the limit")), "{e:?}");
                answered += 1;
            }
        }
    }
    assert!(answered >= 4, "{answered} junk history streams answered");
    // 8 MiB of frames of a kind from the future on the subscription stream:
    // each is read and skipped, none is kept.
    let mut body = Vec::new();
    let pad = ciborium::Value::Text("x".repeat(60 * 1024));
    ciborium::into_writer(&ciborium::Value::Map(vec![("type".into(), "ack".into()), ("pad".into(), pad)]), &mut body)
        .unwrap();
    let mut junk = (body.len() as u32).to_be_bytes().to_vec();
    junk.extend(&body);
    for _ in 0..(8 << 20) / junk.len() {
        tokio::time::timeout(T, send.write_all(&junk)).await.expect("the agent reads on").unwrap();
    }
    // The subscription goes on (snapshots keep coming), and memory did not grow with the junk.
    assert!(tokio::time::timeout(T, frames.next()).await.unwrap().unwrap().is_some());
    let after = agent.rss_kib();
    assert!(after < before + 4096, "RSS grew from {before} KiB to {after} KiB");
}

#[tokio::test]
async fn history_is_answered_in_chunks_and_only_to_a_dashboard() {
    // Three hours of a series at 2 s, stored before the agent starts: 5400 points.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let start = (now - 3 * 3_600_000) / 60_000 * 60_000;
    let agent = Agent::start_with("history", |dir| {
        let (mut store, _) = cm_history::Store::open(&dir.join("state"), Default::default(), start).unwrap();
        for i in 0..5400 {
            let sample = cm_proto::series::Sample { name: "test.steps".into(), value: (i % 100) as f64 };
            store.record(start + i * 2_000, &[sample]).unwrap();
        }
    });
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let session = cm_net::client::hello(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    assert_eq!(session.welcome.minor, 3);
    let ask = |series: &str, resolution| HistoryRequest {
        series: vec![series.into()],
        // Times are stored to 0.1 s: a second of margin takes in the first sample.
        from_ms: start - 1_000,
        to_ms: now + 60_000,
        resolution,
        max_points: 0,
        events: false,
    };
    // On a raw stream, to count the frames: every one within 64 KiB.
    let (mut send, recv) = session.conn.open_bi().await.unwrap();
    send.write_all(&frame(&Message::HistoryRequest(ask("test.*", Resolution::Raw)))).await.unwrap();
    send.finish().unwrap();
    let mut frames = cm_net::FramedRecv::new(recv, 64 * 1024);
    let (mut chunks, mut values) = (0, Vec::new());
    loop {
        match tokio::time::timeout(T, frames.next()).await.unwrap().unwrap() {
            Some(Message::HistoryChunk(c)) => {
                chunks += 1;
                values.extend(c.points.iter().map(|p| p.mean));
            }
            Some(Message::HistoryEnd(end)) => {
                assert_eq!((end.series, end.points, end.error), (1, 5400, None));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(chunks >= 6, "5400 points in {chunks} chunks");
    assert_eq!(values, (0..5400).map(|i| (i % 100) as f64).collect::<Vec<_>>(), "every value as stored");
    // What the agent itself records is there too, from the first interval on.
    let mem_total = {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        kib * 1024.0
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = cm_net::client::history(&session.conn, &ask("memory.total_bytes", Resolution::Raw), T).await.unwrap();
        if let Some((_, _, points)) = a.series.first().filter(|(_, _, p)| p.len() >= 2) {
            assert!(points.iter().all(|p| p.mean == mem_total), "memory.total_bytes is /proc/meminfo's MemTotal");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no memory history: {a:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Rollups: 3 h at minutes, each minute of 30 samples.
    let a = cm_net::client::history(&session.conn, &ask("test.steps", Resolution::Minute), T).await.unwrap();
    assert_eq!(a.series[0].2.len(), 180);
    assert!(a.series[0].2.iter().all(|p| p.count == 30));
    // An agent's certificate is welcomed without subscribing, but reads no history.
    let other = tls::client(&agent.identity("srv02")).unwrap();
    let peer = cm_net::client::hello(&other, agent.addr, "srv01", Role::Agent, T).await.unwrap();
    let err = cm_net::client::history(&peer.conn, &ask("test.*", Resolution::Raw), T).await.expect_err("refused");
    assert!(err.to_string().contains("reset") || err.to_string().contains("stopped"), "{err}");
    // A client without a certificate never gets as far as a stream.
    let ca = std::fs::read_to_string(agent.dir.join("ca.pem")).unwrap();
    let anonymous = tls::client(&Identity::anonymous(&ca).unwrap()).unwrap();
    assert!(cm_net::client::hello(&anonymous, agent.addr, "srv01", Role::Dashboard, T).await.is_err());
}

#[tokio::test]
async fn a_peer_supplied_reason_is_logged_escaped_on_one_line() {
    let mut agent = Agent::start("escape");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    sub.conn.close(0u32.into(), b"bye\ncm-agent: stopped\x1b[2J");
    endpoint.wait_idle().await; // the close has left
    agent.wait_log("for the peer leaving", |l| l.contains(" left: "));
    let (_, log) = agent.stop();
    let left = log.lines().find(|l| l.contains(" left: ")).unwrap();
    assert!(left.contains("closed by peer: bye\\ncm-agent: stopped\\u{1b}[2J (code 0)"), "{left}");
    assert_eq!(log.matches("cm-agent: stopped").count(), 2, "one real, one escaped inside the reason: {log}");
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    let mut agent = Agent::start("term");
    let (status, log) = agent.stop();
    assert!(status.success(), "{status:?}");
    assert!(log.contains("cm-agent: stopped"), "{log}");
}

#[test]
fn pki_refuses_to_overwrite_keys_and_unknown_roles() {
    let dir = std::env::temp_dir().join(format!("cm-pki-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    ok(agent_bin().args(["pki", "init", "--dir", d]));
    let again = agent_bin().args(["pki", "init", "--dir", d]).output().unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("ca.key already exists; refusing to overwrite the fleet CA's key"), "{err}");
    let bad = agent_bin().args(["pki", "issue", "--ca", d, "--name", "x", "--role", "admin"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected agent, dashboard or operator"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(Path::new(d).join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let own = pki::issue(
        &pki::Pem { cert: pem.clone(), key: std::fs::read_to_string(dir.join("ca.key")).unwrap() },
        "h",
        Role::Operator,
        1,
    )
    .unwrap();
    assert!(Identity::from_pem(&pem, &own.cert, &own.key).unwrap().role() == Some(Role::Operator));
}

#[test]
fn pki_names_are_host_names_days_at_least_one_and_certificates_renew() {
    let dir = std::env::temp_dir().join(format!("cm-pki-renew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    ok(agent_bin().args(["pki", "init", "--dir", d]));
    let failing = |args: &[&str]| {
        let out = agent_bin().args(["pki"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = failing(&["issue", "--ca", d, "--name", "srv 09", "--role", "agent"]);
    assert!(err.contains("invalid value 'srv 09' for '--name <NAME>': \"srv 09\" is not a host name"), "{err}");
    let err = failing(&["issue", "--ca", d, "--name", "srv09", "--role", "agent", "--days", "0"]);
    assert!(err.contains("'--days <DAYS>': at least 1: a certificate valid for 0 days has expired already"), "{err}");
    assert!(!dir.join("srv09.pem").exists() && !dir.join("srv 09.pem").exists());

    ok(agent_bin().args(["pki", "issue", "--ca", d, "--name", "srv09", "--role", "agent", "--days", "1"]));
    let (cert, key) = (dir.join("srv09.pem"), dir.join("srv09.key"));
    let first = (std::fs::read_to_string(&cert).unwrap(), std::fs::read_to_string(&key).unwrap());
    let err = failing(&["issue", "--ca", d, "--name", "srv09", "--role", "agent"]);
    assert!(
        err.contains(&format!(
            "srv09.key already exists; refusing to overwrite a key: to renew srv09's certificate, run `cm-agent pki renew --ca {d} --name srv09`"
        )),
        "{err}"
    );
    // Renewed: a later end, the same role and key.
    let said = ok(agent_bin().args(["pki", "renew", "--ca", d, "--name", "srv09", "--days", "90"]));
    let renewed = std::fs::read_to_string(&cert).unwrap();
    let c = pki::describe_pem(&renewed).unwrap();
    assert_eq!((c.role, c.names.as_slice()), (Some(Role::Agent), ["srv09".to_string()].as_slice()));
    assert!(c.not_after > pki::describe_pem(&first.0).unwrap().not_after);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), first.1);
    assert!(said.contains(&format!("renewed for 90 days (until {})", pki::format_time(c.not_after))), "{said}");
    assert!(said.contains(&format!("kept the key {}: only the certificate changed", key.display())), "{said}");
    assert!(Identity::load(&dir.join("ca.pem"), &cert, &key).unwrap().keys_match() == Some(true));
    // With --new-key, both are new and go together.
    let said = ok(agent_bin().args(["pki", "renew", "--ca", d, "--name", "srv09", "--new-key"]));
    assert!(said.contains(&format!("replaced the key {}, as asked", key.display())), "{said}");
    assert_ne!(std::fs::read_to_string(&key).unwrap(), first.1);
    assert!(Identity::load(&dir.join("ca.pem"), &cert, &key).unwrap().keys_match() == Some(true));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Nothing to renew.
    let err = failing(&["renew", "--ca", d, "--name", "srv10"]);
    assert!(
        err.contains("srv10.pem: No such file or directory (os error 2): renewing takes the role from it; give --role"),
        "{err}"
    );
    let help = ok(agent_bin().args(["pki", "init", "--help"]));
    assert!(
        help.contains("--dir <DIR>    Where ca.pem and ca.key go")
            && help.contains("--days <DAYS>  How long the CA is valid"),
        "{help}"
    );
}

#[test]
fn check_config_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("cm-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agent.toml");
    std::fs::write(&file, "listen = \"[::]:6130\"\nlisen = 1\n").unwrap();
    let out = agent_bin().args(["check-config", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}: line 2: unknown field `lisen`", file.display())), "{err}");
    // The example's certificates are not on this machine: its settings are checked alone.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/agent.example.toml");
    let out = ok(agent_bin().args(["check-config", "--no-files", example]));
    assert!(out.ends_with(": ok (the settings; the files they name were not checked)\n"), "{out}");
    let out = agent_bin().args(["check-config", example]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.example.toml: tls.ca = /run/secrets/cm/ca.pem: no such file"), "{err}");
}

/// `cm-agent check-config FILE` on `toml`, in `dir`: its status and what it said.
fn check_config(dir: &Path, toml: &str) -> (bool, String) {
    let file = dir.join("check.toml");
    std::fs::write(&file, toml).unwrap();
    let out = agent_bin().args(["check-config", file.to_str().unwrap()]).output().unwrap();
    let said = String::from_utf8_lossy(if out.status.success() { &out.stdout } else { &out.stderr }).into_owned();
    (out.status.success(), said)
}

#[test]
fn check_config_checks_the_certificate_files_and_names_their_keys() {
    let setup = common::Setup::new("check-files", 1.0, None, |_| {});
    let d = setup.dir.display().to_string();
    let file = setup.dir.join("check.toml").display().to_string();
    let config = |host: &str, ca: &str, cert: &str, key: &str| {
        format!("host = \"{host}\"\n[tls]\nca = \"{d}/{ca}\"\ncert = \"{d}/{cert}\"\nkey = \"{d}/{key}\"\n")
    };
    let (good, said) = check_config(&setup.dir, &config("srv01", "ca.pem", "srv01.pem", "srv01.key"));
    assert!(good && said == format!("{file}: ok\n"), "{said}");

    let cases = [
        (
            config("srv01", "ca.pem", "gone.pem", "srv01.key"),
            format!("{file}: tls.cert = {d}/gone.pem: no such file"),
        ),
        (
            config("srv01", "ca.pem", "srv01.key", "srv01.key"),
            format!("{file}: tls.cert = {d}/srv01.key: no PEM certificate in it"),
        ),
        (
            config("srv01", "ca.pem", "laptop.pem", "laptop.key"),
            format!(
                "{file}: tls.cert = {d}/laptop.pem is a dashboard's certificate; an agent needs one with role agent: \
                 issue it with `cm-agent pki issue --ca DIR --name srv01 --role agent`"
            ),
        ),
        (
            config("srv01", "ca.pem", "srv01.pem", "srv02.key"),
            format!(
                "{file}: tls.key = {d}/srv02.key is not the key of tls.cert = {d}/srv01.pem: use the key that was issued with that certificate"
            ),
        ),
        (
            config("srv03", "ca.pem", "srv01.pem", "srv01.key"),
            format!(
                "{file}: tls.cert = {d}/srv01.pem is for srv01, not srv03 (host): dashboards dialling srv03 will refuse this agent; \
                 issue it one with `cm-agent pki issue --ca DIR --name srv03 --role agent`, or set host = \"srv01\" if this host is srv01"
            ),
        ),
    ];
    for (toml, want) in cases {
        let (good, said) = check_config(&setup.dir, &toml);
        assert!(!good, "{toml} passed");
        assert_eq!(said.trim_end(), format!("cm-agent: {want}"));
    }

    // Another fleet's CA, and out of date: both are said, each on its line.
    let other = pki::new_ca("test fleet", 30).unwrap();
    let (now, day) = (std::time::SystemTime::now(), Duration::from_secs(86_400));
    let old = pki::issue_between(&other, "srv01", Role::Agent, now - 30 * day, now - day).unwrap();
    std::fs::write(setup.dir.join("old.pem"), &old.cert).unwrap();
    std::fs::write(setup.dir.join("old.key"), &old.key).unwrap();
    let ended = pki::format_time(pki::describe_pem(&old.cert).unwrap().not_after);
    let (good, said) = check_config(&setup.dir, &config("srv01", "ca.pem", "old.pem", "old.key"));
    assert!(!good);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "cm-agent: {file}: tls.cert = {d}/old.pem is not signed by the CA in tls.ca = {d}/ca.pem: dashboards that trust that CA \
                 will refuse this agent; issue it one from that CA with `cm-agent pki issue --ca DIR --name srv01 --role agent`"
            ),
            format!(
                "{file}: tls.cert = {d}/old.pem expired on {ended}: dashboards will refuse this agent; renew it with \
                 `cm-agent pki renew --ca DIR --name srv01`"
            ),
        ]
    );
}

#[test]
fn an_agent_whose_certificate_is_for_another_host_says_so_and_serves() {
    let setup = common::Setup::new("other-name", 0.3, None, |_| {});
    let text = std::fs::read_to_string(&setup.config).unwrap().replace("host = \"srv01\"", "host = \"srv03\"");
    std::fs::write(&setup.config, text).unwrap();
    let agent = setup.run(); // it serves
    let log = agent.log();
    let cert = setup.dir.join("srv01.pem");
    let said = format!(
        "cm-agent: {}: tls.cert = {} is for srv01, not srv03 (host): dashboards dialling srv03 will refuse this agent",
        setup.config.display(),
        cert.display()
    );
    let line = log.lines().position(|l| l.starts_with(&said)).unwrap_or_else(|| panic!("{log}"));
    let serving = log.lines().position(|l| l.starts_with("cm-agent: serving srv03 on ")).unwrap();
    assert!(line < serving, "said at start: {log}");
}

#[tokio::test]
async fn a_dashboard_refusing_the_agent_is_said_once_with_who_refused_whom() {
    let mut agent = Agent::start("dash-refuses");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    // A dashboard that lists srv03 at srv01's address, retrying as it does.
    for _ in 0..5 {
        let err = subscribe(&endpoint, agent.addr, "srv03", Role::Dashboard, T).await.err().expect("refused");
        assert!(matches!(err, ClientError::AgentCertificate { .. }), "{err:?}");
    }
    let said = "refused this agent's certificate: it dialled srv03, and this agent's certificate (tls.cert) is for srv01: \
                if this host is srv03, issue it a certificate with `cm-agent pki issue --ca DIR --name srv03 --role agent`; \
                if not, the dashboard has this host's address under srv03";
    agent.wait_log("the dashboard's refusal", |l| {
        l.starts_with("cm-agent: the dashboard at 127.0.0.1:") && l.ends_with(said)
    });
    settle(&agent, &endpoint).await;
    let (_, log) = agent.stop();
    assert_eq!(log.matches(said).count(), 2, "once as it happened, once in the summary: {log}");
    let summary = log.lines().find(|l| l.starts_with("cm-agent: 4 more from 127.0.0.1 in the last minute, the last: "));
    assert!(summary.is_some_and(|l| l.ends_with(said)), "{log}");
    assert!(!log.contains("aborted by peer") && !log.contains("DnsName"), "{log}");
}

#[tokio::test]
async fn the_agent_says_which_certificate_it_refused_and_why() {
    let mut agent = Agent::start("agent-refuses");
    let ca = pki::Pem {
        cert: std::fs::read_to_string(agent.dir.join("ca.pem")).unwrap(),
        key: std::fs::read_to_string(agent.dir.join("ca.key")).unwrap(),
    };
    let (now, day) = (std::time::SystemTime::now(), Duration::from_secs(86_400));
    let old = pki::issue_between(&ca, "laptop", Role::Dashboard, now - 30 * day, now - day).unwrap();
    let ended = pki::format_time(pki::describe_pem(&old.cert).unwrap().not_after);
    let endpoint = tls::client(&Identity::from_pem(&ca.cert, &old.cert, &old.key).unwrap()).unwrap();
    let err = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.err().expect("refused");
    assert!(matches!(err, ClientError::CertificateRefused { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("refused this dashboard's certificate (tls.cert): it expired on {ended}")),
        "{err}"
    );
    let said = format!("its certificate expired on {ended}");
    agent.wait_log("the refusal", |l| l.starts_with("cm-agent: refused 127.0.0.1:") && l.ends_with(&said));
    let (_, log) = agent.stop();
    assert!(!log.contains("invalid peer certificate") && !log.contains("(UNIX)"), "{log}");
}

#[test]
fn a_port_in_use_is_said_once_with_its_likely_cause() {
    let setup = common::Setup::new("port", 0.3, None, |_| {});
    let _first = setup.run();
    let second = agent_bin().args(["run", "--config", setup.config.to_str().unwrap()]).output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    let port = setup.addr.port();
    assert_eq!(
        err.trim_end(),
        format!(
            "cm-agent: {}: listen = {}: UDP port {port} is in use already, most likely by another cm-agent \
             (`ss -ulpn 'sport = :{port}'` names the program): stop it, or set listen to another port",
            setup.config.display(),
            setup.addr
        )
    );
}

/// The Python client in tests/python, written from docs/PROTOCOL.md with
/// aioquic and cbor2, against the real agent.
#[test]
fn a_client_written_from_the_protocol_document_in_python() {
    let probe = Command::new("python3").args(["-c", "import aioquic, cbor2"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            std::env::var("CM_REQUIRE_PYTHON_CLIENT").as_deref() != Ok("1"),
            "python3 with aioquic and cbor2 is required (CM_REQUIRE_PYTHON_CLIENT=1)"
        );
        eprintln!("SKIPPED: pip install aioquic cbor2 to run the Python protocol client");
        return;
    }
    let agent = Agent::start("python");
    let client = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/cm_client.py");
    let d = agent.dir.display().to_string();
    let port = agent.addr.port().to_string();
    let out = Command::new("python3")
        .args([
            client,
            "srv01",
            "127.0.0.1",
            &port,
            &format!("{d}/ca.pem"),
            &format!("{d}/laptop.pem"),
            &format!("{d}/laptop.key"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["welcome"]["host"], "srv01");
    assert_eq!(v["snapshot"]["host"], "srv01");
    assert!(v["snapshot"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    let after = &v["after_update"];
    assert!(after["seq"].as_u64() > v["snapshot"]["seq"].as_u64(), "the patches applied in Python: {after}");
    assert_eq!(after["memory"]["total_bytes"], v["snapshot"]["memory"]["total_bytes"]);
    assert!(after["cpu"]["load1"].is_number(), "{after}");
    let history = &v["history"];
    assert_eq!(history["end"]["error"], serde_json::Value::Null, "{history}");
    let points = history["points"].as_array().unwrap();
    assert!(points.len() >= 3, "one point per interval so far: {history}");
    let total = v["snapshot"]["memory"]["total_bytes"].as_f64();
    assert!(points.iter().all(|p| p[1].as_f64() == total), "{history}");

    let refused =
        Command::new("python3").args([client, "srv01", "127.0.0.1", &port, &format!("{d}/ca.pem")]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no certificates"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    agent.wait_log("refusing the Python client", |l| {
        l.contains("refused 127.0.0.1:") && l.ends_with("it showed no certificate")
    });
}

#[tokio::test]
async fn sighup_reloads_certificates_without_dropping_subscribers() {
    let agent = Agent::start("hup");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut old = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    old.next_snapshot().await.unwrap().unwrap();

    // The fleet moves to a new CA: the agent's files are replaced, then SIGHUP.
    let d = agent.dir.display().to_string();
    let new_ca = pki::new_ca("new fleet", 30).unwrap();
    let srv = pki::issue(&new_ca, "srv01", Role::Agent, 30).unwrap();
    let laptop = pki::issue(&new_ca, "laptop", Role::Dashboard, 30).unwrap();
    std::fs::write(format!("{d}/ca.pem"), &new_ca.cert).unwrap();
    std::fs::write(format!("{d}/srv01.pem"), &srv.cert).unwrap();
    std::fs::write(format!("{d}/srv01.key"), &srv.key).unwrap();
    assert!(Command::new("kill").args(["-HUP", &agent.child.id().to_string()]).status().unwrap().success());
    agent.wait_log("reloading", |l| l.contains("reloaded certificates"));

    // The established subscription goes on.
    let a = old.next_snapshot().await.unwrap().unwrap().seq;
    let b = old.next_snapshot().await.unwrap().unwrap().seq;
    assert!(b > a);
    // New connections need the new CA.
    let new_id = Identity::from_pem(&new_ca.cert, &laptop.cert, &laptop.key).unwrap();
    let endpoint = tls::client(&new_id).unwrap();
    let mut fresh = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    assert!(fresh.next_snapshot().await.unwrap().is_some());

    // A broken file keeps the working certificates.
    std::fs::write(format!("{d}/srv01.key"), "not a key").unwrap();
    assert!(Command::new("kill").args(["-HUP", &agent.child.id().to_string()]).status().unwrap().success());
    agent.wait_log("keeping the old certificates", |l| l.contains("kept the old certificates"));
    let mut again = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    assert!(again.next_snapshot().await.unwrap().is_some());
}
