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
    receiver_with(tag, &[])
}

/// The receiver with more arguments (`--smtp-port N`, `--http-status N`).
fn receiver_with(tag: &str, args: &[&str]) -> Option<Receiver> {
    let dir = std::env::temp_dir().join(format!("cm-notify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("received.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/notify/receiver.py");
    let spawned = Command::new("python3")
        .arg(&script)
        .args(["--user", "cm", "--password", "good", "--log"])
        .arg(&log)
        .args(args)
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
    /// Every message received so far.
    fn received(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The first message received for which `pred` holds.
    fn wait_for(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.wait_within(TIMEOUT, what, pred)
    }

    fn wait_within(&self, limit: Duration, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + limit;
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

    // A user with no password file is no login: it names the sender.
    let t = target(&format!("smtp://cm@127.0.0.1:{}/?to=ops@example.org&tls=none", r.smtp));
    notify::send(&t, &alert("mail-2"), TIMEOUT).unwrap();
    let got = r.wait_for("from cm@srv01", |m| m["kind"] == "smtp" && m["data"].as_str().unwrap().contains("mail-2"));
    assert_eq!(got["mail_from"], "cm@srv01");
}

#[test]
fn a_refused_recipient_does_not_keep_the_mail_from_the_others() {
    let Some(r) = receiver("rcpt") else { return };
    let t = target(&format!("smtp://127.0.0.1:{}/?to=unknown@example.org,ops@example.org&tls=none", r.smtp));
    let sent = notify::send(&t, &alert("rcpt-1"), TIMEOUT).unwrap();
    let refused: Vec<String> = sent.refused.iter().map(ToString::to_string).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("unknown@example.org") && refused[0].contains("550"), "{}", refused[0]);
    let got = r.wait_for("for the one it has", |m| m["kind"] == "smtp");
    assert_eq!(got["rcpt_tos"], serde_json::json!(["ops@example.org"]));

    // Nobody left to take it: that is a failure, and a lasting one.
    let t = target(&format!("smtp://127.0.0.1:{}/?to=unknown@example.org&tls=none", r.smtp));
    let e = notify::send(&t, &alert("rcpt-2"), TIMEOUT).unwrap_err();
    assert!(matches!(e, SendError::Recipient { code: 550, .. }) && e.is_permanent(), "{e:?}");
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
            "host = \"srv01\"\n[tls]\nca = \"/run/secrets/ca.pem\"\ncert = \"/run/secrets/srv01.pem\"\nkey = \"/run/secrets/srv01.key\"\n[notify]\n\
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

    let tls =
        "[tls]\nca = \"/run/secrets/ca.pem\"\ncert = \"/run/secrets/srv01.pem\"\nkey = \"/run/secrets/srv01.key\"\n";
    std::fs::write(&config, format!("{tls}[notify]\n[[notify.routes]]\nname = \"ops\"\nurls = [\"smtp://h/\"]\n"))
        .unwrap();
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("notify.routes[0] (ops).urls[0]: no recipient"), "{stderr}");
}

// The agent's alerts, notified end to end: a real `cm-agent run`, its
// notifier thread, its outbox, and the receiver's real servers.

/// A rule every machine fires at its first snapshot: it has memory.
const FIRES_AT_ONCE: &str = "[alerts.builtin]\nenable = false\n[[alerts.rules]]\nname = \"has-memory\"\nseries = \"memory.total_bytes\"\nwarn = 1\n";

/// Mounts a tmpfs of `size` at a new directory for `tag` (root only);
/// unmounted when dropped. `None` (SKIPPED) where none can be mounted.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("cm-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "cm-test"]).arg(&dir).status();
        if !status.is_ok_and(|s| s.success()) {
            println!("SKIPPED: cannot mount a tmpfs here (it needs root)");
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A snapshot of the agent's for which `done` holds.
fn snapshot_where(
    agent: &common::Agent,
    what: &str,
    done: impl Fn(&cm_proto::HostSnapshot) -> bool,
) -> cm_proto::HostSnapshot {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(common::snapshot_matching(agent, what, 4 * TIMEOUT, done))
}

fn count(r: &Receiver, kind: &str, needle: &str) -> usize {
    let text = |m: &serde_json::Value| if kind == "smtp" { m["data"].to_string() } else { m["body"].to_string() };
    r.received().iter().filter(|m| m["kind"] == kind && text(m).contains(needle)).count()
}

#[test]
fn a_filesystem_over_its_threshold_is_mailed_and_posted_once_and_its_resolution_once() {
    let Some(r) = receiver("fill") else { return };
    let Some(fs) = Tmpfs::mount("fill", "1m") else { return };
    let setup = common::Setup::new("notify-fill", 0.3, None, |_| {});
    let mount = fs.0.display().to_string();
    setup.append(&format!(
        r#"
[alerts.builtin]
enable = false
[[alerts.rules]]
name = "scratch-full"
series = "fs.{mount}.used_percent"
warn = 50
clear = 40
[notify]
group_wait = "1s"
[[notify.routes]]
name = "ops"
urls = ["smtp://127.0.0.1:{}/?to=ops@example.org&tls=none", "http://127.0.0.1:{}/hook"]
"#,
        r.smtp, r.http
    ));
    let agent = setup.run();
    std::fs::write(fs.0.join("fill"), vec![1u8; 700 * 1024]).unwrap();
    r.wait_for("firing by mail", |m| m["kind"] == "smtp" && m["data"].to_string().contains("1 firing"));
    r.wait_for("firing by webhook", |m| m["kind"] == "http" && m["body"].to_string().contains("firing"));
    std::fs::remove_file(fs.0.join("fill")).unwrap();
    r.wait_for("resolved by mail", |m| m["kind"] == "smtp" && m["data"].to_string().contains("resolved"));
    r.wait_for("resolved by webhook", |m| m["kind"] == "http" && m["body"].to_string().contains("resolved"));
    // Everything the agent had to say has been said: no target has anything waiting.
    snapshot_where(&agent, "an empty outbox", |s| s.notifiers.len() == 2 && s.notifiers.iter().all(|n| n.queued == 0));
    let messages = r.received();
    assert_eq!(
        messages.iter().filter(|m| m["kind"] == "smtp").count(),
        2,
        "one firing, one resolved mail: {messages:?}"
    );
    assert_eq!(
        messages.iter().filter(|m| m["kind"] == "http").count(),
        2,
        "one firing, one resolved post: {messages:?}"
    );
    assert_eq!(count(&r, "smtp", "scratch-full"), 2);
    let hook = r.wait_for("the webhook's JSON", |m| m["kind"] == "http");
    let body: serde_json::Value = serde_json::from_str(hook["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["host"], "srv01");
    assert_eq!(body["alerts"][0]["rule"], "scratch-full");
    assert_eq!(body["alerts"][0]["instance"], format!("fs.{mount}.used_percent"));
}

#[test]
fn a_mail_queued_while_the_server_is_down_is_sent_once_after_an_agent_restart() {
    // The mail server's port, with nothing listening on it yet.
    let port = common::free_tcp_port();
    let setup = common::Setup::new("notify-down", 0.3, None, |_| {});
    setup.append(&format!(
        r#"
{FIRES_AT_ONCE}[notify]
group_wait = "1s"
[[notify.routes]]
name = "ops"
urls = ["smtp://127.0.0.1:{port}/?to=ops@example.org&tls=none"]
"#
    ));
    let mut agent = setup.run();
    agent.wait_log("that the mail server is down", |l| l.contains("notify ops: smtp://") && l.contains("refused"));
    let snap = snapshot_where(&agent, "the notifier's error", |s| s.notifiers.iter().any(|n| n.error.is_some()));
    assert_eq!(snap.notifiers[0].queued, 1);
    assert!(snap.notifiers[0].retry_ms.is_some());
    let (status, _) = agent.stop();
    assert!(status.success());

    let agent = setup.run();
    let port_arg = port.to_string();
    let Some(r) = receiver_with("down", &["--smtp-port", &port_arg]) else { return };
    // The restarted agent may have tried once before the server was up: its next try is within 15 s.
    r.wait_within(4 * TIMEOUT, "the queued mail", |m| m["kind"] == "smtp");
    snapshot_where(&agent, "the mail marked sent", |s| {
        s.notifiers.first().is_some_and(|n| n.queued == 0 && n.last_sent_ms.is_some())
    });
    assert_eq!(r.received().len(), 1, "sent exactly once, and the restart told nothing new: {:?}", r.received());
    assert!(r.received()[0]["data"].to_string().contains("has-memory"));
}

#[test]
fn a_refused_password_and_an_unreachable_webhook_are_log_lines_and_notifier_errors_not_a_crash() {
    let Some(r) = receiver("bad") else { return };
    let setup = common::Setup::new("notify-bad", 0.3, None, |_| {});
    let wrong = r.secret("wrong", "not-the-password\n");
    let dead = common::free_tcp_port();
    setup.append(&format!(
        r#"
{FIRES_AT_ONCE}[notify]
group_wait = "1s"
[[notify.routes]]
name = "ops"
urls = ["smtp://cm@127.0.0.1:{}/?to=ops@example.org&tls=none&password_file={}", "http://127.0.0.1:{dead}/hook"]
"#,
        r.smtp,
        wrong.display()
    ));
    let agent = setup.run();
    let log = agent.wait_log("the refused password", |l| l.contains("notify ops: smtp://") && l.contains("password"));
    agent.wait_log("the dead webhook", |l| l.contains("notify ops: http://") && l.contains("refused"));
    let snap = snapshot_where(&agent, "both notifier errors", |s| {
        s.notifiers.len() == 2 && s.notifiers.iter().all(|n| n.error.is_some())
    });
    let smtp = snap.notifiers.iter().find(|n| n.target.starts_with("smtp://")).unwrap();
    assert!(smtp.error.as_deref().unwrap().contains("refused the password for cm"), "{smtp:?}\n{log}");
    assert!(smtp.error.as_deref().unwrap().contains("535"), "{smtp:?}");
    assert!(!smtp.target.contains("not-the-password"));
    // Still serving, and the alert is still in the snapshot.
    assert!(snap.alerts.iter().any(|a| a.rule == "has-memory"));
    assert!(r.received().is_empty());
}
