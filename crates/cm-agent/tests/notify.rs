//! Notifications sent to real servers: the mail and web servers of
//! tests/notify/receiver.py, and ports where nothing listens.
//!
//! Without python3 and aiosmtpd these say SKIPPED, unless
//! CM_REQUIRE_NOTIFY_SERVERS=1 (CI), where they fail.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cm_agent::notify::{self, Item, Kind, Message, SendError, Target};
use cm_proto::{AlertEvent, AlertState, Status};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Receiver {
    child: Child,
    smtp: u16,
    http: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) -> Option<Receiver> {
    if std::env::var_os("CM_REQUIRE_NOTIFY_SERVERS").is_some_and(|v| v == "1") {
        panic!("CM_REQUIRE_NOTIFY_SERVERS=1 but {why}");
    }
    println!("SKIPPED: {why}");
    None
}

/// The receiver, its mail server taking user `cm` with password `good`;
/// `None` (SKIPPED) when python3 or aiosmtpd is missing.
fn receiver(tag: &str) -> Option<Receiver> {
    let dir = std::env::temp_dir().join(format!("cm-notify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("received.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/notify/receiver.py");
    let spawned = Command::new("python3")
        .arg(&script)
        .args(["--user", "cm", "--password", "good", "--log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return skip(&format!("python3 does not run: {e}")),
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("the receiver said nothing in 20 s");
        }
    };
    if line.starts_with("missing aiosmtpd") {
        let _ = child.wait();
        return skip(&line);
    }
    let port = |key: &str| -> u16 {
        let value = line.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or_else(|| panic!("{line}"));
        value.parse().unwrap()
    };
    assert!(line.starts_with("listening "), "{line}");
    let (smtp, http) = (port("smtp="), port("http="));
    Some(Receiver { child, smtp, http, log, dir })
}

impl Receiver {
    /// The first message received for which `pred` holds.
    fn wait_for(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let found = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(&pred);
            if let Some(found) = found {
                return found;
            }
            assert!(Instant::now() < deadline, "no message {what} received: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn secret(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn alert(id: &str) -> Message {
    let event = AlertEvent {
        ts_ms: 1_796_193_000_000,
        rule: "fs-full".into(),
        instance: "/srv".into(),
        state: AlertState::Firing,
        severity: Status::Critical,
        value: Some(92.0),
        reason: "used 92% (critical at 90%)".into(),
    };
    notify::compose("srv01", &[Item { kind: Kind::Alert, event }], id)
}

fn target(url: &str) -> Target {
    Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn an_email_arrives_with_its_subject_message_id_and_recipients() {
    let Some(r) = receiver("mail") else { return };
    let t = target(&format!("smtp://127.0.0.1:{}/?to=ops@example.org,oncall@example.org&tls=none", r.smtp));
    notify::send(&t, &alert("mail-1"), TIMEOUT).unwrap();
    let got = r.wait_for("by mail", |m| m["kind"] == "smtp");
    assert_eq!(got["mail_from"], "cm-agent@srv01");
    assert_eq!(got["rcpt_tos"], serde_json::json!(["ops@example.org", "oncall@example.org"]));
    let data = got["data"].as_str().unwrap();
    assert!(data.contains("Subject: [cm] srv01: 1 firing (crit: fs-full /srv)\r\n"), "{data}");
    assert!(data.contains("Message-ID: <mail-1@cm-agent>\r\n"), "{data}");
    assert!(data.contains("To: ops@example.org, oncall@example.org\r\n"), "{data}");
    assert!(data.contains("used 92% (critical at 90%)"), "{data}");
}

#[test]
fn auth_with_the_right_password_sends_and_a_wrong_one_is_refused() {
    let Some(r) = receiver("auth") else { return };
    let good = r.secret("good", "good\n");
    let url = |file: &Path| {
        format!(
            "smtp://cm@127.0.0.1:{}/?to=ops@example.org&tls=none&from=cm@example.org&password_file={}",
            r.smtp,
            file.display()
        )
    };
    notify::send(&target(&url(&good)), &alert("auth-1"), TIMEOUT).unwrap();
    r.wait_for("after AUTH", |m| m["mail_from"] == "cm@example.org");

    let bad = r.secret("bad", "wrong\n");
    let e = notify::send(&target(&url(&bad)), &alert("auth-2"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Auth { code: 535, .. }), "{e:?}");
    assert!(e.to_string().contains("the server refused the password for cm: 535"), "{e}");
    assert!(e.is_permanent());

    let e = notify::send(&target(&url(&r.dir.join("absent"))), &alert("auth-3"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Secret { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("cannot read {}", r.dir.join("absent").display())), "{e}");
}

#[test]
fn a_webhook_and_ntfy_receive_their_json() {
    let Some(r) = receiver("http") else { return };
    let hook = target(&format!("generic+http://127.0.0.1:{}/hook", r.http));
    notify::send(&hook, &alert("hook-1"), TIMEOUT).unwrap();
    let got = r.wait_for("by webhook", |m| m["path"] == "/hook");
    assert_eq!(got["headers"]["x-cm-message-id"], "hook-1");
    let body: serde_json::Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!((body["host"].as_str(), body["severity"].as_str()), (Some("srv01"), Some("critical")));
    assert_eq!(body["alerts"][0]["rule"], "fs-full");

    let token = r.secret("ntfy-token", "tk_test\n");
    let ntfy = target(&format!("ntfy://127.0.0.1:{}/ops?scheme=http&token_file={}", r.http, token.display()));
    notify::send(&ntfy, &alert("ntfy-1"), TIMEOUT).unwrap();
    let got = r.wait_for("by ntfy", |m| m["path"] == "/");
    assert_eq!(got["headers"]["authorization"], "Bearer tk_test");
    let body: serde_json::Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!((body["topic"].as_str(), body["priority"].as_u64()), (Some("ops"), Some(4)));
    assert_eq!(body["title"], "[cm] srv01: 1 firing (crit: fs-full /srv)");
}

#[test]
fn http_500_is_transient_and_401_is_permanent() {
    let Some(r) = receiver("status") else { return };
    let e =
        notify::send(&target(&format!("http://127.0.0.1:{}/status/500", r.http)), &alert("s"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Http { status: 500, .. }), "{e:?}");
    assert!(!e.is_permanent());
    assert!(e.to_string().contains("HTTP 500: refused by the test receiver with 500"), "{e}");
    let e =
        notify::send(&target(&format!("http://127.0.0.1:{}/status/401", r.http)), &alert("s"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Http { status: 401, .. }), "{e:?}");
    assert!(e.is_permanent());
}

#[test]
fn a_port_where_nothing_listens_is_connection_refused() {
    let port = common::free_tcp_port();
    for url in [format!("smtp://127.0.0.1:{port}/?to=a@example.org&tls=none"), format!("http://127.0.0.1:{port}/hook")]
    {
        let e = notify::send(&target(&url), &alert("r"), TIMEOUT).unwrap_err();
        assert!(matches!(e, SendError::Refused { .. }), "{url}: {e:?}");
        assert!(e.to_string().contains("connection refused at 127.0.0.1:"), "{e}");
        assert!(!e.is_permanent());
    }
}

#[test]
fn tls_against_a_plain_server_fails_as_tls_and_says_so() {
    let Some(r) = receiver("tls") else { return };
    let starttls = target(&format!("smtp://127.0.0.1:{}/?to=a@example.org&tls=starttls", r.smtp));
    let e = notify::send(&starttls, &alert("t"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
    let implicit = target(&format!("smtp://127.0.0.1:{}/?to=a@example.org&tls=implicit", r.smtp));
    let e = notify::send(&implicit, &alert("t"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("TLS failed with 127.0.0.1:"), "{e}");
    let https = target(&format!("https://127.0.0.1:{}/hook", r.http));
    let e = notify::send(&https, &alert("t"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Tls { .. }), "{e:?}");
}

#[test]
fn a_server_that_never_answers_is_a_timeout() {
    // The kernel completes the connection into the backlog; nobody reads or greets.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let t = target(&format!("smtp://127.0.0.1:{port}/?to=a@example.org&tls=none"));
    let started = Instant::now();
    let e = notify::send(&t, &alert("t"), Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, SendError::Timeout { secs: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("no answer within 1 s"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn notify_test_says_ok_for_a_working_route_and_fail_with_the_reason_for_a_dead_one() {
    let Some(r) = receiver("cli") else { return };
    let dead = common::free_tcp_port();
    let config = r.dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "host = \"srv01\"\n[notify]\n\
             [[notify.routes]]\nname = \"ops\"\nurls = [\"smtp://127.0.0.1:{}/?to=ops@example.org&tls=none\", \"http://127.0.0.1:{}/hook\"]\n\
             [[notify.routes]]\nname = \"dead\"\nurls = [\"smtp://127.0.0.1:{dead}/?to=ops@example.org&tls=none\"]\n",
            r.smtp, r.http
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = common::agent_bin().args(["notify", "test"]).args(args).arg(&config).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stdout, _) = run(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("ok   ops smtp://127.0.0.1:{}/?to=ops@example.org&tls=none", r.smtp), "{stdout}");
    assert_eq!(lines[1], format!("ok   ops http://127.0.0.1:{}/hook", r.http), "{stdout}");
    assert!(
        lines[2].starts_with(&format!(
            "FAIL dead smtp://127.0.0.1:{dead}/?to=ops@example.org&tls=none: connection refused"
        )),
        "{stdout}"
    );
    let mail = r.wait_for("from notify test", |m| m["kind"] == "smtp");
    assert!(mail["data"].as_str().unwrap().contains("Subject: [cm] srv01: test notification on route ops"), "{mail}");
    r.wait_for("from notify test", |m| m["path"] == "/hook");

    let (code, stdout, _) = run(&["--route", "ops"]);
    assert_eq!((code, stdout.lines().count()), (Some(0), 2), "{stdout}");
    let out = common::agent_bin().args(["notify", "test", "--route", "ops", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "--config FILE as well as CONFIG");

    let (code, _, stderr) = run(&["--route", "pager"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--route pager: no route has this name (routes: ops, dead)"), "{stderr}");

    std::fs::write(&config, "[notify]\n[[notify.routes]]\nname = \"ops\"\nurls = [\"smtp://h/\"]\n").unwrap();
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("notify.routes[0] (ops).urls[0]: no recipient"), "{stderr}");
}
