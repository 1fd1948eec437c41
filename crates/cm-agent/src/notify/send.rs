//! Sending one message to one target, blocking: the notifier runs it on its
//! own thread. What each service is sent is built by pure functions
//! ([`http_request`]) so it is tested without a network.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cm_proto::Status;
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;

use super::message::Message;
use super::url::{Discord, Gotify, GotifyToken, Ntfy, Smtp, Target, Tls};

/// Why a message did not reach a target; each names the target (redacted).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{target}: connection refused at {addr}: nothing listens there; is the server up, and is the port right?")]
    Refused { target: String, addr: String },
    #[error("{target}: no answer within {secs} s from {addr}: the server is slow or a firewall drops the traffic")]
    Timeout { target: String, addr: String, secs: u64 },
    #[error("{target}: cannot connect to {addr}: {reason}")]
    Connect { target: String, addr: String, reason: String },
    #[error("{target}: TLS failed with {addr}: {reason}")]
    Tls { target: String, addr: String, reason: String },
    #[error(
        "{target}: the server refused the password for {user}: {code} {text}; check the user and the password file"
    )]
    Auth { target: String, user: String, code: u16, text: String },
    #[error("{target}: the server refused the recipient {address}: {code} {text}")]
    Recipient { target: String, address: String, code: u16, text: String },
    #[error("{target}: the server answered {code} {text} to {step}")]
    Smtp { target: String, step: &'static str, code: u16, text: String },
    #[error("{target}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http { target: String, status: u16, body: String },
    #[error("{target}: cannot read {path}: {reason}")]
    Secret { target: String, path: PathBuf, reason: String },
    #[error("{target}: {reason}")]
    Other { target: String, reason: String },
}

impl SendError {
    /// Whether trying again cannot help (a refused password or recipient, an
    /// HTTP 4xx other than 408 and 429); everything else may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Auth { code, .. } | SendError::Recipient { code, .. } | SendError::Smtp { code, .. } => {
                *code >= 500
            }
            SendError::Http { status, .. } => (400..500).contains(status) && !matches!(status, 408 | 429),
            _ => false,
        }
    }

    /// Whether the target refused this message for good, for what it is
    /// (too large, malformed to it), and would take another: sending it
    /// again cannot help, and it must not hold up the ones after it.
    pub fn refuses_the_message(&self) -> bool {
        match self {
            SendError::Http { status, .. } => matches!(status, 400 | 413 | 415 | 422),
            SendError::Smtp { step, code, .. } => *step == "the message" && matches!(code, 552 | 554),
            _ => false,
        }
    }
}

/// Sends `msg` to `target`, giving each network step `timeout`.
pub fn send(target: &Target, msg: &Message, timeout: Duration) -> Result<Sent, SendError> {
    if let Target::Smtp(smtp) = target {
        return send_smtp(target, smtp, msg, timeout);
    }
    let secret = match secret_file(target) {
        Some(path) => Some(read_secret(target, path)?),
        None => None,
    };
    match http_request(target, msg, secret.as_deref()) {
        Some(request) => send_http(target, &request, timeout).map(|()| Sent::default()),
        None => Ok(Sent::default()),
    }
}

/// A message its target took.
#[derive(Debug, Default)]
pub struct Sent {
    /// Recipients the mail server refused for good while it took the
    /// others: one who left does not keep the mail from everyone else.
    pub refused: Vec<SendError>,
}

/// The file an HTTP target's secret is in.
fn secret_file(target: &Target) -> Option<&Path> {
    match target {
        Target::Ntfy(n) => n.token_file.as_deref().or(n.password_file.as_deref()),
        Target::Gotify(Gotify { token: GotifyToken::File(p), .. }) => Some(p),
        _ => None,
    }
}

/// The secret in `path`, without the newline an editor leaves.
fn read_secret(target: &Target, path: &Path) -> Result<String, SendError> {
    let text = std::fs::read_to_string(path).map_err(|e| SendError::Secret {
        target: target.redacted(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(SendError::Secret {
            target: target.redacted(),
            path: path.to_path_buf(),
            reason: "it is empty".into(),
        });
    }
    Ok(secret)
}

/// One HTTP POST, as a service wants it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// What `target` (any but SMTP) is sent for `msg`; `secret` is the
/// contents of its token or password file. `None` for SMTP.
pub(crate) fn http_request(target: &Target, msg: &Message, secret: Option<&str>) -> Option<HttpRequest> {
    Some(match target {
        Target::Ntfy(n) => ntfy_request(n, msg, secret),
        Target::Gotify(g) => {
            let token = match &g.token {
                GotifyToken::Inline(t) => t.clone(),
                GotifyToken::File(_) => secret.unwrap_or_default().to_string(),
            };
            let priority = g.priority.unwrap_or(match msg.severity {
                Status::Critical => 8,
                Status::Warning => 5,
                _ => 2,
            });
            HttpRequest {
                url: format!("{}/message", g.base),
                headers: vec![("X-Gotify-Key", token)],
                body: serde_json::json!({ "title": msg.subject, "message": body_text(msg), "priority": priority }),
            }
        }
        Target::Discord(Discord { webhook_id, token }) => HttpRequest {
            url: format!("https://discord.com/api/webhooks/{webhook_id}/{token}"),
            headers: Vec::new(),
            body: serde_json::json!({ "content": discord_content(msg) }),
        },
        Target::Webhook(w) => {
            HttpRequest { url: w.url.clone(), headers: vec![("X-CM-Message-Id", msg.id.clone())], body: msg.to_json() }
        }
        Target::Smtp(_) => return None,
    })
}

/// ntfy's JSON publishing (`POST /` with the topic in the body), which
/// carries any title without header encoding.
fn ntfy_request(n: &Ntfy, msg: &Message, secret: Option<&str>) -> HttpRequest {
    let priority = n.priority.unwrap_or(if msg.severity == Status::Critical { 4 } else { 3 });
    let tag = match msg.severity {
        Status::Critical => "rotating_light",
        Status::Warning => "warning",
        _ => "white_check_mark",
    };
    let mut headers = Vec::new();
    match (secret, &n.user, &n.token_file) {
        (Some(token), _, Some(_)) => headers.push(("Authorization", format!("Bearer {token}"))),
        (Some(password), Some(user), None) => {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization", format!("Basic {basic}")));
        }
        _ => {}
    }
    HttpRequest {
        url: format!("{}/", n.base),
        headers,
        body: serde_json::json!({
            "topic": n.topic,
            "title": msg.subject,
            "message": truncate(&body_text(msg), NTFY_MAX_BYTES),
            "priority": priority,
            "tags": [tag],
        }),
    }
}

/// ntfy turns a longer message into an attachment.
const NTFY_MAX_BYTES: usize = 4000;
/// Discord refuses content longer than this, in characters.
const DISCORD_MAX_CHARS: usize = 2000;

/// The text without its first line, which repeats the subject.
fn body_text(msg: &Message) -> String {
    msg.text.split_once("\n\n").map_or_else(|| msg.text.clone(), |(_, rest)| rest.to_string())
}

fn discord_content(msg: &Message) -> String {
    let full = format!("**{}**\n{}", msg.subject, body_text(msg));
    if full.chars().count() <= DISCORD_MAX_CHARS {
        return full;
    }
    let cut: String = full.chars().take(DISCORD_MAX_CHARS - 2).collect();
    let cut = match cut.rfind('\n') {
        Some(i) if i > DISCORD_MAX_CHARS / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{cut}\n…")
}

/// `text` cut to at most `max` bytes, at a line end where one is near.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - "\n…".len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &text[..end];
    let cut = match cut.rfind('\n') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut,
    };
    format!("{cut}\n…")
}

fn send_http(target: &Target, request: &HttpRequest, timeout: Duration) -> Result<(), SendError> {
    let redacted = target.redacted();
    let addr = url::Url::parse(&request.url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| "?".into());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(format!("cm-agent/{}", crate::AGENT_VERSION))
        .build()
        .into();
    let mut post = agent.post(&request.url).header("Content-Type", "application/json");
    for (name, value) in &request.headers {
        post = post.header(*name, value);
    }
    let body = serde_json::to_vec(&request.body).expect("a JSON value always serializes");
    let mut response = post.send(&body[..]).map_err(|e| http_error(&redacted, &addr, timeout, e))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut head = Vec::new();
    let _ = response.body_mut().as_reader().take(4096).read_to_end(&mut head);
    let text = String::from_utf8_lossy(&head);
    let body: String = text.trim().chars().take(200).collect();
    Err(SendError::Http { target: redacted, status, body })
}

fn http_error(target: &str, addr: &str, timeout: Duration, e: ureq::Error) -> SendError {
    let (target, addr) = (target.to_string(), addr.to_string());
    match e {
        ureq::Error::Io(io) => io_error(target, addr, timeout, &io),
        ureq::Error::Timeout(_) => SendError::Timeout { target, addr, secs: timeout.as_secs().max(1) },
        ureq::Error::HostNotFound => {
            SendError::Connect { target, addr, reason: "the host name does not resolve (DNS)".into() }
        }
        ureq::Error::Tls(why) => SendError::Tls { target, addr, reason: why.to_string() },
        ureq::Error::Rustls(why) => SendError::Tls { target, addr, reason: why.to_string() },
        ureq::Error::ConnectionFailed => SendError::Connect { target, addr, reason: "connection failed".into() },
        other => SendError::Other { target, reason: other.to_string() },
    }
}

fn io_error(target: String, addr: String, timeout: Duration, e: &std::io::Error) -> SendError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => SendError::Refused { target, addr },
        // A socket read timeout surfaces as WouldBlock on Unix.
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            SendError::Timeout { target, addr, secs: timeout.as_secs().max(1) }
        }
        // rustls reports a failed handshake through the stream, as I/O.
        _ if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            SendError::Tls { target, addr, reason: e.to_string() }
        }
        _ => SendError::Connect { target, addr, reason: e.to_string() },
    }
}

/// The SMTP step an error happened in, which decides what it means.
enum Step<'a> {
    Connect,
    StartTls,
    Auth(&'a str),
    Mail,
    Rcpt(&'a str),
    Data,
}

fn smtp_error(
    target: &Target,
    addr: &str,
    timeout: Duration,
    step: Step<'_>,
    e: lettre::transport::smtp::Error,
) -> SendError {
    let (target, addr) = (target.redacted(), addr.to_string());
    if let Some(code) = e.status() {
        let code: u16 = code.to_string().parse().unwrap_or(0);
        let text = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
        return match step {
            Step::Auth(user) => SendError::Auth { target, user: user.to_string(), code, text },
            Step::Rcpt(address) => SendError::Recipient { target, address: address.to_string(), code, text },
            Step::Connect => SendError::Smtp { target, step: "the connection", code, text },
            Step::StartTls => SendError::Smtp { target, step: "STARTTLS", code, text },
            Step::Mail => SendError::Smtp { target, step: "MAIL FROM", code, text },
            Step::Data => SendError::Smtp { target, step: "the message", code, text },
        };
    }
    if e.is_tls() {
        let reason = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
        return SendError::Tls { target, addr, reason };
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_error(target, addr, timeout, io);
        }
        source = s.source();
    }
    if let Step::Auth(user) = step {
        return SendError::Other { target, reason: format!("cannot log in as {user}: {e}") };
    }
    SendError::Other { target, reason: e.to_string() }
}

/// A TLS failure with SMTP says which `tls=` goes with which port.
fn tls_hint(e: SendError) -> SendError {
    match e {
        SendError::Tls { target, addr, reason } => SendError::Tls {
            target,
            addr,
            reason: format!(
                "{reason} (tls=implicit is for port 465, starttls for 587, none for a relay on a trusted network)"
            ),
        },
        other => other,
    }
}

/// The sender: `from=`, else the user when it is an address, else a user
/// with no login (no `password_file=`) at HOST, else `cm-agent@HOST`, for
/// the host the message is about.
fn sender(smtp: &Smtp, host: &str) -> Address {
    let named = smtp.user.as_ref().filter(|_| smtp.password_file.is_none()).map(|u| format!("{u}@{host}"));
    let candidates = [smtp.from.clone(), smtp.user.clone(), named, Some(format!("cm-agent@{host}"))];
    candidates
        .into_iter()
        .flatten()
        .find_map(|a| a.parse::<Address>().ok())
        .unwrap_or_else(|| Address::new("cm-agent", "localhost").expect("a valid constant address"))
}

/// The RFC 5322 message for `msg`; its Message-ID carries `msg.id`, so a
/// retried message can be recognised.
fn email(smtp: &Smtp, msg: &Message, from: &Address) -> Result<Vec<u8>, String> {
    let id: String =
        msg.id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let mut builder = lettre::Message::builder()
        .from(Mailbox::new(None, from.clone()))
        .subject(msg.subject.clone())
        .message_id(Some(format!("<{id}@cm-agent>")))
        .date_now()
        .header(ContentType::TEXT_PLAIN);
    for to in &smtp.to {
        let address: Address = to.parse().map_err(|e| format!("to={to:?}: {e}"))?;
        builder = builder.to(Mailbox::new(None, address));
    }
    let email = builder.body(msg.text.clone()).map_err(|e| format!("cannot build the mail: {e}"))?;
    Ok(email.formatted())
}

fn send_smtp(target: &Target, smtp: &Smtp, msg: &Message, timeout: Duration) -> Result<Sent, SendError> {
    let addr = if smtp.host.contains(':') {
        format!("[{}]:{}", smtp.host, smtp.port)
    } else {
        format!("{}:{}", smtp.host, smtp.port)
    };
    let credentials = match (&smtp.user, &smtp.password_file) {
        (Some(user), Some(path)) => Some((user.as_str(), read_secret(target, path)?)),
        _ => None,
    };
    let from = sender(smtp, &msg.host);
    let bytes = email(smtp, msg, &from).map_err(|reason| SendError::Other { target: target.redacted(), reason })?;
    let hello = ClientId::Domain(msg.host.clone());
    let fail = |step, e| tls_hint(smtp_error(target, &addr, timeout, step, e));
    let tls = match smtp.tls {
        Tls::Plain => None,
        Tls::StartTls | Tls::Implicit => {
            Some(TlsParameters::new(smtp.host.clone()).map_err(|e| fail(Step::StartTls, e))?)
        }
    };
    let implicit = if smtp.tls == Tls::Implicit { tls.as_ref() } else { None };
    let mut conn = SmtpConnection::connect((smtp.host.as_str(), smtp.port), Some(timeout), &hello, implicit, None)
        .map_err(|e| fail(Step::Connect, e))?;
    if let (Tls::StartTls, Some(params)) = (smtp.tls, &tls) {
        if !conn.can_starttls() {
            conn.abort();
            return Err(SendError::Tls {
                target: target.redacted(),
                addr,
                reason: "the server does not offer STARTTLS (tls=none for a relay on a trusted network)".into(),
            });
        }
        conn.starttls(params, &hello).map_err(|e| fail(Step::StartTls, e))?;
    }
    if let Some((user, password)) = &credentials {
        let creds = Credentials::new(user.to_string(), password.clone());
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds).map_err(|e| fail(Step::Auth(user), e))?;
    }
    conn.command(Mail::new(Some(from), Vec::new())).map_err(|e| fail(Step::Mail, e))?;
    let mut refused = Vec::new();
    for to in &smtp.to {
        let address: Address = to
            .parse()
            .map_err(|e| SendError::Other { target: target.redacted(), reason: format!("to={to:?}: {e}") })?;
        if let Err(e) = conn.command(Rcpt::new(address, Vec::new())) {
            match fail(Step::Rcpt(to), e) {
                e @ SendError::Recipient { .. } if e.is_permanent() => refused.push(e),
                e => return Err(e),
            }
        }
    }
    if !refused.is_empty() && refused.len() == smtp.to.len() {
        conn.abort();
        return Err(refused.swap_remove(0));
    }
    conn.command(Data).map_err(|e| fail(Step::Data, e))?;
    conn.message(&bytes).map_err(|e| fail(Step::Data, e))?;
    // The message is accepted: a failed goodbye is no failure to deliver.
    let _ = conn.quit();
    Ok(Sent { refused })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{compose, test_message, Item, Kind};
    use cm_proto::{AlertEvent, AlertState};

    fn critical() -> Message {
        let event = AlertEvent {
            ts_ms: 1_796_193_000_000,
            rule: "fs-full".into(),
            instance: "/srv".into(),
            state: AlertState::Firing,
            severity: Status::Critical,
            value: Some(92.0),
            reason: "used 92%".into(),
        };
        compose("srv01", &[Item { kind: Kind::Alert, event }], "m1")
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn a_webhook_gets_the_message_as_json_with_its_id_in_a_header() {
        let r = http_request(&target("https://hooks.example.org/cm"), &critical(), None).unwrap();
        assert_eq!(r.url, "https://hooks.example.org/cm");
        assert_eq!(r.headers, [("X-CM-Message-Id", "m1".to_string())]);
        assert_eq!(r.body, critical().to_json());
    }

    #[test]
    fn ntfy_gets_json_at_its_root_with_priority_tags_and_the_token() {
        let t = target("ntfy://ntfy.example.org/ops?token_file=/run/t");
        let r = http_request(&t, &critical(), Some("tk_abc")).unwrap();
        assert_eq!(r.url, "https://ntfy.example.org/");
        assert_eq!(r.headers, [("Authorization", "Bearer tk_abc".to_string())]);
        assert_eq!(r.body["topic"], "ops");
        assert_eq!(r.body["title"], "[cm] srv01: 1 firing (crit: fs-full /srv)");
        assert_eq!(r.body["priority"], 4);
        assert_eq!(r.body["tags"][0], "rotating_light");
        assert!(r.body["message"].as_str().unwrap().starts_with("FIRING critical fs-full /srv\n"));
        let basic = http_request(&target("ntfy://cm@h/ops?password_file=/p"), &critical(), Some("pw")).unwrap();
        assert_eq!(basic.headers, [("Authorization", "Basic Y206cHc=".to_string())]);
        let quiet =
            http_request(&target("ntfy://h/ops?priority=min"), &test_message("srv01", "ops", "t"), None).unwrap();
        assert_eq!((quiet.body["priority"].as_u64(), quiet.headers.len()), (Some(1), 0));
    }

    #[test]
    fn gotify_gets_its_key_in_a_header_and_a_priority_by_severity() {
        let r = http_request(&target("gotify://push.example.org/AbC"), &critical(), None).unwrap();
        assert_eq!(r.url, "https://push.example.org/message");
        assert_eq!(r.headers, [("X-Gotify-Key", "AbC".to_string())]);
        assert_eq!(r.body["priority"], 8);
        let r = http_request(&target("gotify://h/?token_file=/g"), &test_message("srv01", "ops", "t"), Some("Tok"))
            .unwrap();
        assert_eq!((r.headers[0].1.as_str(), r.body["priority"].as_u64()), ("Tok", Some(2)));
    }

    #[test]
    fn discord_content_is_cut_at_a_line_under_two_thousand_characters() {
        let r = http_request(&target("discord://tok@123"), &critical(), None).unwrap();
        assert_eq!(r.url, "https://discord.com/api/webhooks/123/tok");
        assert!(r.body["content"]
            .as_str()
            .unwrap()
            .starts_with("**[cm] srv01: 1 firing (crit: fs-full /srv)**\nFIRING"));
        let mut long = critical();
        long.text = format!("head\n\n{}", "é line of text\n".repeat(300));
        let content = discord_content(&long);
        assert!(content.chars().count() <= DISCORD_MAX_CHARS, "{}", content.chars().count());
        assert!(content.ends_with("line of text\n…"), "{content}");
    }

    #[test]
    fn truncation_keeps_utf8_whole() {
        let text = "ü".repeat(3000);
        let cut = truncate(&text, NTFY_MAX_BYTES);
        assert!(cut.len() <= NTFY_MAX_BYTES && cut.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn permanence_follows_the_code() {
        let http = |status| SendError::Http { target: String::new(), status, body: String::new() };
        assert!(http(401).is_permanent() && http(404).is_permanent());
        assert!(!http(429).is_permanent() && !http(500).is_permanent() && !http(503).is_permanent());
        let auth = |code| SendError::Auth { target: String::new(), user: "u".into(), code, text: String::new() };
        assert!(auth(535).is_permanent() && !auth(454).is_permanent());
        let rcpt =
            |code| SendError::Recipient { target: String::new(), address: "a".into(), code, text: String::new() };
        assert!(rcpt(550).is_permanent() && !rcpt(451).is_permanent());
        assert!(!SendError::Refused { target: String::new(), addr: String::new() }.is_permanent());
        let http = |status| SendError::Http { target: String::new(), status, body: String::new() };
        assert!(http(413).refuses_the_message() && http(422).refuses_the_message());
        assert!(
            !http(401).refuses_the_message() && !http(404).refuses_the_message(),
            "the target's, not the message's"
        );
        let smtp = |step, code| SendError::Smtp { target: String::new(), step, code, text: String::new() };
        assert!(smtp("the message", 552).refuses_the_message() && !smtp("MAIL FROM", 554).refuses_the_message());
    }

    #[test]
    fn the_sender_is_from_else_the_user_else_cm_agent_at_the_host() {
        let Target::Smtp(mut s) = target("smtp://h/?to=a@x.org") else { panic!() };
        assert_eq!(sender(&s, "srv01").to_string(), "cm-agent@srv01");
        s.user = Some("cm@example.org".into());
        assert_eq!(sender(&s, "srv01").to_string(), "cm@example.org");
        s.from = Some("alerts@example.org".into());
        assert_eq!(sender(&s, "srv01").to_string(), "alerts@example.org");
        s.user = Some("plainuser".into());
        s.from = None;
        assert_eq!(sender(&s, "srv01").to_string(), "plainuser@srv01", "a user with no login names the sender");
        s.password_file = Some("/run/pw".into());
        assert_eq!(sender(&s, "srv01").to_string(), "cm-agent@srv01", "a login is not a sender");
        assert_eq!(sender(&s, "bad host").to_string(), "cm-agent@localhost");
    }

    #[test]
    fn the_mail_carries_the_message_id_subject_and_recipients() {
        let Target::Smtp(s) = target("smtp://h/?to=a@x.org,b@y.org") else { panic!() };
        let text = String::from_utf8(email(&s, &critical(), &sender(&s, "srv01")).unwrap()).unwrap();
        assert!(text.contains("Message-ID: <m1@cm-agent>\r\n"), "{text}");
        assert!(text.contains("Subject: [cm] srv01: 1 firing (crit: fs-full /srv)\r\n"), "{text}");
        assert!(text.contains("To: a@x.org, b@y.org\r\n"), "{text}");
        assert!(text.contains("From: cm-agent@srv01\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("Date: "), "{text}");
    }

    #[test]
    fn a_missing_secret_file_names_its_path() {
        let t = target("ntfy://h/ops?token_file=/nonexistent/cm-token");
        let e = send(&t, &critical(), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, SendError::Secret { .. }), "{e:?}");
        assert!(e.to_string().contains("cannot read /nonexistent/cm-token"), "{e}");
    }
}
