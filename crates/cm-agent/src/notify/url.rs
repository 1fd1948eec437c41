//! Notification targets written as URLs, in the style of shoutrrr:
//! `smtp://`, `ntfy://`, `gotify://`, `discord://` and plain `https://`
//! webhooks. Parsing reads no files: secrets named by `password_file` and
//! `token_file` are read when a message is sent, so they stay out of the
//! configuration (and out of the Nix store).

use std::fmt::Write as _;
use std::path::PathBuf;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use url::{Host, Url};

/// Where notifications are sent, as parsed from one URL.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Smtp(Smtp),
    Ntfy(Ntfy),
    Gotify(Gotify),
    Discord(Discord),
    Webhook(Webhook),
}

/// How an SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS (submission, port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: for a relay on loopback or the LAN.
    Plain,
}

/// `smtp://[user@]host[:port]/?to=a@x,b@y[&from=..][&tls=..][&password_file=..]`
#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// The login, whose password is in `password_file`; without one, no
    /// login, and the user names the sender (`USER@HOST`) unless `from` does.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The sender; `None`: the user when it is a mail address, else
    /// `cm-agent@HOST` with the name of the host the message is about.
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// `ntfy://[user@]host[:port]/topic[?scheme=http][&token_file=..][&password_file=..][&priority=..]`
#[derive(Debug, Clone, PartialEq)]
pub struct Ntfy {
    /// `https://host[:port]`: messages are published as JSON to its root.
    pub base: String,
    pub topic: String,
    /// Basic authentication with the password in `password_file`.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// An access token (`tk_...`), sent as a bearer token.
    pub token_file: Option<PathBuf>,
    /// 1 (min) to 5 (max); `None`: 4 for a critical message, else 3.
    pub priority: Option<u8>,
}

/// `gotify://host[:port][/path]/TOKEN[?scheme=http]` or `gotify://host/?token_file=..`
#[derive(Debug, Clone, PartialEq)]
pub struct Gotify {
    /// `https://host[:port][/path]`, without a trailing slash.
    pub base: String,
    pub token: GotifyToken,
    /// Gotify's 0 to 10; `None`: 8 for a critical message, 5 for a warning, else 2.
    pub priority: Option<u8>,
}

/// An application token: in the URL, or in a file read at send time.
#[derive(Clone, PartialEq)]
pub enum GotifyToken {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for GotifyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GotifyToken::Inline(_) => f.write_str("Inline(***)"),
            GotifyToken::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// `discord://TOKEN@WEBHOOK_ID`
#[derive(Clone, PartialEq)]
pub struct Discord {
    pub webhook_id: String,
    pub token: String,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord").field("webhook_id", &self.webhook_id).field("token", &"***").finish()
    }
}

/// `https://...` (or `generic+https://...`): the message as JSON, POSTed.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
}

impl std::fmt::Debug for Webhook {
    /// The query may carry a token: it is left out, as in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &redact_query(&self.url)).finish()
    }
}

impl Target {
    /// Parses a target URL; the error says what is wrong, without repeating
    /// the URL (it may hold a token).
    pub fn parse(text: &str) -> Result<Target, String> {
        let text = text.trim();
        let (scheme, _) = text.split_once("://").ok_or("expected a URL such as smtp://host/?to=you@example.org")?;
        let scheme = scheme.to_ascii_lowercase();
        if let Some(inner) = scheme.strip_prefix("generic+") {
            if inner != "http" && inner != "https" {
                return Err(format!("{scheme}: expected generic+http or generic+https"));
            }
            return webhook(&text["generic+".len()..]);
        }
        match scheme.as_str() {
            "http" | "https" => webhook(text),
            "smtp" => smtp(&parse_url(text)?),
            "ntfy" => ntfy(&parse_url(text)?),
            "gotify" => gotify(&parse_url(text)?),
            "discord" => discord(&parse_url(text)?),
            other => Err(format!("unknown scheme {other:?}: expected smtp, ntfy, gotify, discord, http or https")),
        }
    }

    /// The URL with its secrets left out, for logs and the snapshot.
    pub fn redacted(&self) -> String {
        match self {
            Target::Smtp(s) => {
                let mut out =
                    format!("smtp://{}{}:{}/?to={}", user_at(&s.user), bracket(&s.host), s.port, s.to.join(","));
                if let Some(from) = &s.from {
                    let _ = write!(out, "&from={from}");
                }
                let tls = match s.tls {
                    Tls::StartTls => "starttls",
                    Tls::Implicit => "implicit",
                    Tls::Plain => "none",
                };
                let _ = write!(out, "&tls={tls}");
                if let Some(p) = &s.password_file {
                    let _ = write!(out, "&password_file={}", p.display());
                }
                out
            }
            Target::Ntfy(n) => {
                let (scheme, rest) = n.base.split_once("://").unwrap_or(("https", &n.base));
                let mut query = Vec::new();
                if scheme == "http" {
                    query.push("scheme=http".to_string());
                }
                if let Some(p) = &n.token_file {
                    query.push(format!("token_file={}", p.display()));
                }
                if let Some(p) = &n.password_file {
                    query.push(format!("password_file={}", p.display()));
                }
                if let Some(p) = n.priority {
                    query.push(format!("priority={p}"));
                }
                let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
                format!("ntfy://{}{rest}/{}{query}", user_at(&n.user), n.topic)
            }
            Target::Gotify(g) => {
                let (scheme, rest) = g.base.split_once("://").unwrap_or(("https", &g.base));
                let mut query = Vec::new();
                if scheme == "http" {
                    query.push("scheme=http".to_string());
                }
                let path = match &g.token {
                    GotifyToken::Inline(_) => "/***".to_string(),
                    GotifyToken::File(p) => {
                        query.push(format!("token_file={}", p.display()));
                        "/".to_string()
                    }
                };
                if let Some(p) = g.priority {
                    query.push(format!("priority={p}"));
                }
                let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
                format!("gotify://{rest}{path}{query}")
            }
            Target::Discord(d) => format!("discord://***@{}", d.webhook_id),
            Target::Webhook(w) => redact_query(&w.url),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if url.password().is_some() {
        return Err("a password in the URL: put it in a file and name it with password_file= \
                    (or token_file=), so secrets stay out of the configuration"
            .into());
    }
    Ok(url)
}

/// The host as a connection takes it: an IPv6 address without its brackets.
fn host(url: &Url) -> Result<String, String> {
    match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => Ok(d.to_string()),
        Some(Host::Ipv4(a)) => Ok(a.to_string()),
        Some(Host::Ipv6(a)) => Ok(a.to_string()),
        _ => Err("no host: expected SCHEME://HOST/...".into()),
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn user_at(user: &Option<String>) -> String {
    const USERINFO: &AsciiSet = &CONTROLS.add(b'@').add(b':').add(b'/').add(b'%').add(b' ');
    user.as_ref().map_or_else(String::new, |u| format!("{}@", utf8_percent_encode(u, USERINFO)))
}

fn user(url: &Url) -> Result<Option<String>, String> {
    if url.username().is_empty() {
        return Ok(None);
    }
    let decoded = percent_decode_str(url.username()).decode_utf8().map_err(|_| "the user name is not UTF-8")?;
    Ok(Some(decoded.into_owned()))
}

/// The query's parameters; one that this scheme does not know is an error.
fn params(url: &Url, known: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        if !known.contains(&k.as_ref()) {
            return Err(format!("unknown parameter {k:?} (known: {})", known.join(", ")));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("parameter {k:?} given twice"));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn file_param(params: &[(String, String)], key: &str) -> Result<Option<PathBuf>, String> {
    match param(params, key) {
        None => Ok(None),
        Some(p) if p.starts_with('/') => Ok(Some(PathBuf::from(p))),
        Some(p) => Err(format!("{key}={p:?}: expected an absolute path")),
    }
}

fn scheme_param(params: &[(String, String)]) -> Result<&'static str, String> {
    match param(params, "scheme") {
        None | Some("https") => Ok("https"),
        Some("http") => Ok("http"),
        Some(other) => Err(format!("scheme={other:?}: expected http or https")),
    }
}

fn base(url: &Url, scheme: &str) -> Result<String, String> {
    let host = bracket(&host(url)?);
    Ok(match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

fn smtp(url: &Url) -> Result<Target, String> {
    let params = params(url, &["to", "from", "tls", "password_file"])?;
    let to: Vec<String> = param(&params, "to")
        .ok_or("no recipient: add ?to=you@example.org (several: to=a@x,b@y)")?
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if to.is_empty() {
        return Err("to= is empty: expected one or more addresses, comma-separated".into());
    }
    for address in &to {
        check_address("to", address)?;
    }
    let from = param(&params, "from").map(str::to_string);
    if let Some(from) = &from {
        check_address("from", from)?;
    }
    let tls = match param(&params, "tls") {
        None => None,
        Some("starttls") => Some(Tls::StartTls),
        Some("implicit") => Some(Tls::Implicit),
        Some("none") => Some(Tls::Plain),
        Some(other) => return Err(format!("tls={other:?}: expected starttls, implicit or none")),
    };
    let (tls, port) = match (tls, url.port()) {
        (Some(tls), Some(port)) => (tls, port),
        (None, Some(465)) => (Tls::Implicit, 465),
        (None, Some(port)) => (Tls::StartTls, port),
        (Some(Tls::Implicit), None) => (Tls::Implicit, 465),
        (Some(Tls::Plain), None) => (Tls::Plain, 25),
        (Some(Tls::StartTls) | None, None) => (Tls::StartTls, 587),
    };
    if port == 0 {
        return Err("port 0: expected the server's port (587, 465, 25...)".into());
    }
    let user = user(url)?;
    let password_file = file_param(&params, "password_file")?;
    if user.is_none() && password_file.is_some() {
        return Err("password_file= without a user: write smtp://USER@host/...".into());
    }
    Ok(Target::Smtp(Smtp { host: host(url)?, port, tls, user, password_file, from, to }))
}

fn check_address(key: &str, address: &str) -> Result<(), String> {
    address.parse::<lettre::Address>().map(|_| ()).map_err(|e| format!("{key}={address:?}: not a mail address ({e})"))
}

fn ntfy(url: &Url) -> Result<Target, String> {
    let params = params(url, &["scheme", "token_file", "password_file", "priority"])?;
    let topic = url.path().trim_matches('/');
    if topic.is_empty() || topic.contains('/') {
        return Err("expected one topic: ntfy://host/TOPIC".into());
    }
    let priority = match param(&params, "priority") {
        None => None,
        Some(p) => Some(ntfy_priority(p)?),
    };
    let user = user(url)?;
    let password_file = file_param(&params, "password_file")?;
    let token_file = file_param(&params, "token_file")?;
    match (&user, &password_file, &token_file) {
        (Some(_), None, _) => return Err("a user without password_file=: name the file that holds the password".into()),
        (None, Some(_), _) => return Err("password_file= without a user: write ntfy://USER@host/topic".into()),
        (Some(_), Some(_), Some(_)) => return Err("both a user and token_file=: choose one".into()),
        _ => {}
    }
    Ok(Target::Ntfy(Ntfy {
        base: base(url, scheme_param(&params)?)?,
        topic: topic.to_string(),
        user,
        password_file,
        token_file,
        priority,
    }))
}

fn ntfy_priority(p: &str) -> Result<u8, String> {
    Ok(match p {
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => return Err(format!("priority={p:?}: expected 1 to 5 (min, low, default, high, max)")),
    })
}

fn gotify(url: &Url) -> Result<Target, String> {
    let params = params(url, &["scheme", "token_file", "priority"])?;
    if url.username() != "" {
        return Err("gotify takes no user: the token is the last part of the path, or in token_file=".into());
    }
    // With token_file=, a path that ends in / is where Gotify is served
    // (gotify://host/gotify/?token_file=...); one that does not ends in a token.
    let raw = url.path();
    let path = raw.trim_end_matches('/');
    let token_file = file_param(&params, "token_file")?;
    let (prefix, token) = match (path.rsplit_once('/'), token_file) {
        (_, Some(file)) if raw.ends_with('/') => (path.to_string(), GotifyToken::File(file)),
        (Some((_, t)), Some(_)) if !t.is_empty() => {
            return Err("a token in the path and token_file=: choose one (end a path to Gotify with /)".into())
        }
        (_, Some(file)) => (path.to_string(), GotifyToken::File(file)),
        (Some((prefix, t)), None) if !t.is_empty() => (prefix.to_string(), GotifyToken::Inline(t.to_string())),
        _ => return Err("no token: expected gotify://host/TOKEN or gotify://host/?token_file=/run/secrets/...".into()),
    };
    let priority = match param(&params, "priority") {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= 10 => Some(n),
            _ => return Err(format!("priority={p:?}: expected 0 to 10")),
        },
    };
    Ok(Target::Gotify(Gotify { base: format!("{}{prefix}", base(url, scheme_param(&params)?)?), token, priority }))
}

fn discord(url: &Url) -> Result<Target, String> {
    params(url, &[])?;
    let token = url.username();
    let webhook_id = host(url)?;
    if token.is_empty() {
        return Err("no token: expected discord://TOKEN@WEBHOOK_ID".into());
    }
    if !webhook_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the webhook id (after the @) is not a number: expected discord://TOKEN@WEBHOOK_ID".into());
    }
    if !matches!(url.path(), "" | "/") {
        return Err("expected discord://TOKEN@WEBHOOK_ID, with no path".into());
    }
    Ok(Target::Discord(Discord { webhook_id, token: token.to_string() }))
}

fn webhook(text: &str) -> Result<Target, String> {
    let url = parse_url(text)?;
    host(&url)?;
    Ok(Target::Webhook(Webhook { url: url.to_string() }))
}

/// `https://host/path?a=***`: query values often carry tokens.
fn redact_query(text: &str) -> String {
    let Ok(mut url) = Url::parse(text) else { return "(unparsable URL)".into() };
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    if keys.is_empty() {
        return url.to_string();
    }
    url.set_query(None);
    let mut out = url.to_string();
    out.push('?');
    out.push_str(&keys.iter().map(|k| format!("{k}=***")).collect::<Vec<_>>().join("&"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp_of(text: &str) -> Smtp {
        match Target::parse(text) {
            Ok(Target::Smtp(s)) => s,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn err(text: &str) -> String {
        Target::parse(text).expect_err(text)
    }

    #[test]
    fn smtp_defaults_to_submission_with_starttls() {
        let s = smtp_of("smtp://mail.example.org/?to=ops@example.org");
        assert_eq!((s.host.as_str(), s.port, s.tls), ("mail.example.org", 587, Tls::StartTls));
        assert_eq!((s.user, s.password_file, s.from), (None, None, None));
        assert_eq!(s.to, ["ops@example.org"]);
    }

    #[test]
    fn smtp_port_465_is_implicit_tls_and_implicit_is_465() {
        assert_eq!(smtp_of("smtp://h:465/?to=a@x.org").tls, Tls::Implicit);
        assert_eq!(smtp_of("smtp://h/?to=a@x.org&tls=implicit").port, 465);
        let plain = smtp_of("smtp://127.0.0.1/?to=a@x.org&tls=none");
        assert_eq!((plain.port, plain.tls), (25, Tls::Plain));
        assert_eq!(smtp_of("smtp://h:2525/?to=a@x.org").tls, Tls::StartTls);
    }

    #[test]
    fn smtp_takes_a_user_a_password_file_a_sender_and_recipients() {
        let s = smtp_of(
            "smtp://cm%40example.org@smtp.example.org:465/?to=a@x.org,%20b@y.org&from=cm@example.org&password_file=/run/secrets/smtp",
        );
        assert_eq!(s.user.as_deref(), Some("cm@example.org"));
        assert_eq!(s.password_file, Some(PathBuf::from("/run/secrets/smtp")));
        assert_eq!(s.to, ["a@x.org", "b@y.org"]);
        assert_eq!(s.from.as_deref(), Some("cm@example.org"));
        assert_eq!(
            Target::Smtp(s).redacted(),
            "smtp://cm%40example.org@smtp.example.org:465/?to=a@x.org,b@y.org&from=cm@example.org&tls=implicit&password_file=/run/secrets/smtp"
        );
    }

    #[test]
    fn a_user_without_a_password_file_is_no_login_and_names_the_sender() {
        // As the agent's example relay takes it: no AUTH on a trusted network.
        let s = smtp_of("smtp://cm@127.0.0.1:2525/?to=ops@example.org&tls=none");
        assert_eq!((s.user.as_deref(), s.password_file.as_ref(), s.tls), (Some("cm"), None, Tls::Plain));
        assert_eq!(Target::Smtp(s).redacted(), "smtp://cm@127.0.0.1:2525/?to=ops@example.org&tls=none");
    }

    #[test]
    fn a_password_in_the_url_is_refused_with_the_way_out() {
        let e = err("smtp://cm:hunter2@h/?to=a@x.org");
        assert!(e.contains("password_file"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(err("https://u:p@example.org/hook").contains("password_file"));
    }

    #[test]
    fn smtp_errors_say_what_is_missing() {
        assert!(err("smtp://h/").contains("no recipient"));
        assert!(err("smtp://h/?to=").contains("empty"));
        assert!(err("smtp://h/?to=not-an-address").contains("not a mail address"));
        assert!(err("smtp://h/?to=a@x.org&tls=ssl").contains("starttls, implicit or none"));
        assert!(err("smtp://h:99999/?to=a@x.org").contains("not a URL"));
        assert!(err("smtp://h:0/?to=a@x.org").contains("port 0"));
        assert!(err("smtp://h/?to=a@x.org&password_file=/p").contains("without a user"));
        assert!(err("smtp://u@h/?to=a@x.org&password_file=p").contains("absolute path"));
        assert!(err("smtp://h/?to=a@x.org&cc=b@x.org").contains("unknown parameter \"cc\""));
        assert!(err("smtp:///?to=a@x.org").contains("no host"));
    }

    #[test]
    fn unknown_schemes_and_non_urls_are_refused() {
        assert!(err("slack://x").contains("unknown scheme \"slack\""));
        assert!(err("mail.example.org").contains("expected a URL"));
        assert!(err("generic+ftp://x").contains("generic+http"));
    }

    #[test]
    fn ntfy_publishes_to_the_hosts_root_over_https_unless_told() {
        let Ok(Target::Ntfy(n)) = Target::parse("ntfy://ntfy.sh/cm-alerts") else { panic!() };
        assert_eq!((n.base.as_str(), n.topic.as_str(), n.priority), ("https://ntfy.sh", "cm-alerts", None));
        let t = Target::parse("ntfy://127.0.0.1:8080/ops?scheme=http&token_file=/run/t&priority=high").unwrap();
        let Target::Ntfy(n) = &t else { panic!() };
        assert_eq!((n.base.as_str(), n.priority), ("http://127.0.0.1:8080", Some(4)));
        assert_eq!(n.token_file, Some(PathBuf::from("/run/t")));
        assert_eq!(t.redacted(), "ntfy://127.0.0.1:8080/ops?scheme=http&token_file=/run/t&priority=4");
        assert!(err("ntfy://h/").contains("one topic"));
        assert!(err("ntfy://h/a/b").contains("one topic"));
        assert!(err("ntfy://h/t?priority=9").contains("1 to 5"));
        assert!(err("ntfy://h/t?scheme=ftp").contains("http or https"));
        assert!(err("ntfy://u@h/t").contains("password_file"));
    }

    #[test]
    fn gotify_token_in_the_path_or_a_file_and_never_in_the_redacted_form() {
        let t = Target::parse("gotify://push.example.org/sub/AbCdEf123?priority=7").unwrap();
        let Target::Gotify(g) = &t else { panic!() };
        assert_eq!(g.base, "https://push.example.org/sub");
        assert_eq!(g.token, GotifyToken::Inline("AbCdEf123".into()));
        assert_eq!(g.priority, Some(7));
        assert_eq!(t.redacted(), "gotify://push.example.org/sub/***?priority=7");
        assert!(!format!("{t:?}").contains("AbCdEf123"));
        let t = Target::parse("gotify://h:8080/?scheme=http&token_file=/run/g").unwrap();
        let Target::Gotify(g) = &t else { panic!() };
        assert_eq!((g.base.as_str(), &g.token), ("http://h:8080", &GotifyToken::File("/run/g".into())));
        assert_eq!(t.redacted(), "gotify://h:8080/?scheme=http&token_file=/run/g");
        let Target::Gotify(g) = Target::parse("gotify://h/gotify/?token_file=/run/g").unwrap() else { panic!() };
        assert_eq!((g.base.as_str(), &g.token), ("https://h/gotify", &GotifyToken::File("/run/g".into())));
        assert!(err("gotify://h/tok?token_file=/run/g").contains("choose one"));
        assert!(err("gotify://h/").contains("no token"));
        assert!(err("gotify://h/T?token_file=/x").contains("choose one"));
        assert!(err("gotify://h/T?priority=11").contains("0 to 10"));
    }

    #[test]
    fn discord_takes_shoutrrrs_token_at_id_form() {
        let t = Target::parse("discord://s3cr3t-T0k_en@123456789012345678").unwrap();
        let Target::Discord(d) = &t else { panic!() };
        assert_eq!((d.webhook_id.as_str(), d.token.as_str()), ("123456789012345678", "s3cr3t-T0k_en"));
        assert_eq!(t.redacted(), "discord://***@123456789012345678");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(err("discord://123456").contains("no token"));
        assert!(err("discord://tok@hooks").contains("not a number"));
    }

    #[test]
    fn webhooks_plain_or_generic_keep_their_url_and_hide_query_values() {
        let t = Target::parse("https://hooks.example.org/cm?key=abc&x=1").unwrap();
        assert_eq!(t, Target::Webhook(Webhook { url: "https://hooks.example.org/cm?key=abc&x=1".into() }));
        assert_eq!(t.redacted(), "https://hooks.example.org/cm?key=***&x=***");
        assert!(!format!("{t:?}").contains("abc"), "{t:?}");
        let t = Target::parse("generic+http://127.0.0.1:9000/alerts").unwrap();
        assert_eq!(t, Target::Webhook(Webhook { url: "http://127.0.0.1:9000/alerts".into() }));
        assert_eq!(t.redacted(), "http://127.0.0.1:9000/alerts");
        assert!(err("https://").contains("not a URL"), "{}", err("https://"));
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets_to_connect_and_keep_them_to_print() {
        let s = smtp_of("smtp://[::1]:2525/?to=a@x.org&tls=none");
        assert_eq!(s.host, "::1");
        assert_eq!(Target::Smtp(s).redacted(), "smtp://[::1]:2525/?to=a@x.org&tls=none");
    }
}
