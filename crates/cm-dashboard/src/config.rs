//! The dashboard's fleet configuration (TOML). Without one, the dashboard
//! runs in local mode. Every error names the file, and the line or the key.

use std::path::{Path, PathBuf};

use cm_net::tls::{PemFile, Purpose};
use cm_net::{pki, CertProblem, Role};
use serde::Deserialize;

/// Certificate files, as for the agent; the certificate comes from
/// `cm-agent pki issue --role dashboard` (or operator).
pub use cm_agent::config::TlsPaths;

/// `dashboard.toml`: the dashboard's certificate and the hosts to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    pub tls: TlsPaths,
    #[serde(default)]
    pub hosts: Vec<HostConfig>,
}

/// One host of the fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The name in the agent's certificate; the dashboard refuses any other.
    pub name: String,
    /// Where to reach it (name or IP address); the name when absent.
    pub address: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    /// A group: server, workstation, lab...
    #[serde(default)]
    pub role: String,
}

fn default_port() -> u16 {
    6130
}

impl HostConfig {
    /// `address:port`, with IPv6 literals bracketed.
    pub fn target(&self) -> String {
        let addr = self.address.as_deref().unwrap_or(&self.name);
        if addr.contains(':') && !addr.starts_with('[') {
            format!("[{addr}]:{}", self.port)
        } else {
            format!("{addr}:{}", self.port)
        }
    }
}

/// Set to `1` to check a fleet file's settings without the files they name
/// (`cm-dashboard --check-config` in a build, the NixOS module's, where the
/// certificates are not there yet).
pub const SKIP_FILE_CHECKS: &str = "CM_DASHBOARD_SKIP_FILE_CHECKS";

/// The port in an `address` that has one (`10.0.0.5:6130`, `[fd00::5]:6130`,
/// `srv01:6130`), with the address without it; a bare IPv6 address has none.
fn port_in(address: &str) -> Option<(String, u16)> {
    if let Ok(with_port) = address.parse::<std::net::SocketAddr>() {
        return Some((with_port.ip().to_string(), with_port.port()));
    }
    let (host, port) = address.rsplit_once(':')?;
    (!host.contains(':')).then(|| Some((host.to_owned(), port.parse().ok()?))).flatten()
}

impl DashboardConfig {
    /// Parses `text` read from `path`; errors name the file and the line or
    /// the key. The files the settings name are not read.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let config: DashboardConfig =
            toml::from_str(text).map_err(|e| cm_agent::config::describe_toml_error(path, text, &e))?;
        let file = path.display();
        if config.hosts.is_empty() {
            return Err(format!(
                "{file}: no [[hosts]]: a fleet file lists the hosts to watch (see docs/dashboard.example.toml); without a fleet file the dashboard watches this machine"
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (i, h) in config.hosts.iter().enumerate() {
            let at = format!("{file}: hosts[{i}]");
            pki::check_name(&h.name).map_err(|e| format!("{at}: name = {:?}: {e}", h.name))?;
            if let Some(first) = seen.insert(&h.name, i) {
                return Err(format!("{at}: host {:?} is listed twice (first as hosts[{first}])", h.name));
            }
            if h.port == 0 {
                return Err(format!("{at} ({}): port = 0: expected a UDP port from 1 to 65535", h.name));
            }
            match h.address.as_deref() {
                Some("") => return Err(format!("{at} ({}): address = \"\": leave it out to dial the name", h.name)),
                Some(address) => {
                    if let Some((host, port)) = port_in(address) {
                        return Err(format!(
                            "{at} ({}): address = {address:?} includes a port: write address = {host:?} and port = {port}",
                            h.name
                        ));
                    }
                }
                None => {}
            }
        }
        Ok(config)
    }

    /// Reads the certificate files and checks them as agents would: they
    /// parse, the certificate is a dashboard's or an operator's with its own
    /// key, signed by the CA in tls.ca and valid now. Every problem, one per line.
    pub fn check_files(&self, path: &Path) -> Result<(), String> {
        let identity = self.tls.identity(path).map_err(|e| e.to_string())?;
        let (file, cert) = (path.display(), self.tls.key_of(PemFile::Cert));
        let name = identity.own_certificate().and_then(|c| c.names.into_iter().next()).unwrap_or_else(|| "NAME".into());
        let role = identity.role().filter(|r| r.may_subscribe()).unwrap_or(Role::Dashboard);
        let issue = pki::issue_command(&name, role);
        match identity.role() {
            Some(Role::Dashboard | Role::Operator) => {}
            other => {
                return Err(format!(
                    "{file}: {cert} is {}; a dashboard needs role dashboard or operator (agents let no other subscribe): issue one with {issue}",
                    other.map_or("a certificate without a cm role".to_string(), |r| format!("an {r}'s certificate"))
                ))
            }
        }
        let refuse = "agents will refuse this dashboard";
        let problems: Vec<String> = identity
            .own_problems(Purpose::Dial, std::time::SystemTime::now())
            .into_iter()
            .map(|problem| match problem {
                CertProblem::OtherCa => format!(
                    "{file}: {cert} is not signed by the CA in {}: agents that trust that CA will refuse this dashboard; issue one from it with {issue}",
                    self.tls.key_of(PemFile::Ca)
                ),
                CertProblem::Expired { not_after } => format!(
                    "{file}: {cert} {}: {refuse}; renew it with {}",
                    cm_net::refusal::expired(not_after),
                    pki::renew_command(&name)
                ),
                CertProblem::NotYetValid { not_before } => format!(
                    "{file}: {cert} {} by this machine's clock: {refuse} until then; check the clock",
                    cm_net::refusal::not_yet_valid(not_before)
                ),
                CertProblem::WrongUse { .. } => format!("{file}: {cert} is not made for dialling: issue one with {issue}"),
                CertProblem::Other(text) => format!("{file}: {cert}: {text}"),
                // Dialling checks no name of its own, and the certificate is there.
                other @ (CertProblem::Missing | CertProblem::WrongName { .. }) => format!("{file}: {cert}: {other:?}"),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Reads, parses and checks a fleet file and the files it names (the
    /// settings alone when [`SKIP_FILE_CHECKS`] is `1`).
    pub fn load(path: &Path) -> Result<Self, String> {
        let files = std::env::var_os(SKIP_FILE_CHECKS).is_none_or(|v| v != "1");
        Self::load_checking(path, files)
    }

    /// As [`DashboardConfig::load`], checking the certificate files or not.
    pub fn load_checking(path: &Path, files: bool) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config = Self::parse(path, &text)?;
        if files {
            config.check_files(path)?;
        }
        Ok(config)
    }

    /// The file to use without `--config`: `$XDG_CONFIG_HOME/cm-dashboard/dashboard.toml`
    /// (`~/.config/...`), then `/etc/cm-dashboard/dashboard.toml`; `None` means local mode.
    pub fn default_path() -> Option<PathBuf> {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        let candidates = xdg.map(|d| d.join("cm-dashboard/dashboard.toml")).into_iter();
        candidates.chain(std::iter::once(PathBuf::from("/etc/cm-dashboard/dashboard.toml"))).find(|p| p.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_defaults_and_errors_with_lines() {
        let text = "[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n\n[[hosts]]\nname = \"srv01\"\nrole = \"server\"\n\n[[hosts]]\nname = \"lab\"\naddress = \"fd00::5\"\nport = 7000\n";
        let c = DashboardConfig::parse(Path::new("d.toml"), text).unwrap();
        assert_eq!(c.hosts[0].target(), "srv01:6130");
        assert_eq!(c.hosts[1].target(), "[fd00::5]:7000");
        let err = DashboardConfig::parse(Path::new("d.toml"), &text.replace("port = 7000", "prot = 7000")).unwrap_err();
        assert!(err.starts_with("d.toml: line 13: unknown field `prot`"), "{err}");
        let twice = format!("{text}[[hosts]]\nname = \"srv01\"\n");
        assert!(DashboardConfig::parse(Path::new("d.toml"), &twice).unwrap_err().contains("listed twice"));
    }

    const TLS: &str = "[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n";

    fn parse_err(hosts: &str) -> String {
        DashboardConfig::parse(Path::new("d.toml"), &format!("{TLS}{hosts}")).unwrap_err()
    }

    #[test]
    fn settings_that_cannot_work_name_their_key() {
        assert_eq!(
            parse_err(""),
            "d.toml: no [[hosts]]: a fleet file lists the hosts to watch (see docs/dashboard.example.toml); without a fleet file the dashboard watches this machine"
        );
        let host = |body: &str| format!("[[hosts]]\nname = \"srv01\"\n{body}");
        for (address, want) in [
            (
                "10.0.0.5:6130",
                r#"address = "10.0.0.5:6130" includes a port: write address = "10.0.0.5" and port = 6130"#,
            ),
            (
                "srv01.lan:7000",
                r#"address = "srv01.lan:7000" includes a port: write address = "srv01.lan" and port = 7000"#,
            ),
            (
                "[fd00::5]:6131",
                r#"address = "[fd00::5]:6131" includes a port: write address = "fd00::5" and port = 6131"#,
            ),
        ] {
            assert_eq!(
                parse_err(&host(&format!("address = {address:?}\n"))),
                format!("d.toml: hosts[0] (srv01): {want}")
            );
        }
        for fine in ["fd00::5", "[fd00::5]", "10.0.0.5", "srv01.lan"] {
            let text = format!("{TLS}{}", host(&format!("address = {fine:?}\n")));
            assert!(DashboardConfig::parse(Path::new("d.toml"), &text).is_ok(), "{fine}");
        }
        assert!(
            parse_err(&host("port = 0\n")).ends_with("hosts[0] (srv01): port = 0: expected a UDP port from 1 to 65535")
        );
        let err = parse_err("[[hosts]]\nname = \"srv 03\"\n");
        assert!(err.starts_with("d.toml: hosts[0]: name = \"srv 03\": \"srv 03\" is not a host name"), "{err}");
    }

    /// A fleet CA and certificates in a fresh directory, and a fleet file
    /// naming `cert` and `key` in it.
    fn fleet(tag: &str, cert: &str, key: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cm-dash-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = pki::new_ca("test fleet", 30).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.cert).unwrap();
        for (name, role) in [("laptop", Role::Dashboard), ("srv01", Role::Agent)] {
            let own = pki::issue(&ca, name, role, 30).unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), own.cert).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), own.key).unwrap();
        }
        let (now, day) = (std::time::SystemTime::now(), std::time::Duration::from_secs(86_400));
        let old = pki::issue_between(&ca, "old", Role::Dashboard, now - 30 * day, now - day).unwrap();
        std::fs::write(dir.join("old.pem"), old.cert).unwrap();
        std::fs::write(dir.join("old.key"), old.key).unwrap();
        let other = pki::new_ca("test fleet", 30).unwrap();
        let stranger = pki::issue(&other, "stranger", Role::Dashboard, 30).unwrap();
        std::fs::write(dir.join("stranger.pem"), stranger.cert).unwrap();
        std::fs::write(dir.join("stranger.key"), stranger.key).unwrap();
        let file = dir.join("dashboard.toml");
        let d = dir.display();
        std::fs::write(
            &file,
            format!(
                "[tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/{cert}\"\nkey = \"{d}/{key}\"\n[[hosts]]\nname = \"srv01\"\n"
            ),
        )
        .unwrap();
        (dir, file)
    }

    #[test]
    fn the_certificate_files_are_checked_as_agents_would() {
        let (_, file) = fleet("good", "laptop.pem", "laptop.key");
        assert!(DashboardConfig::load_checking(&file, true).is_ok());
        // Each expected message with DIR and FILE for the case's directory and fleet file.
        for (cert, key, want) in [
            ("gone.pem", "laptop.key", "FILE: tls.cert = DIR/gone.pem: no such file"),
            ("laptop.pem", "gone.key", "FILE: tls.key = DIR/gone.key: no such file"),
            ("laptop.key", "laptop.key", "FILE: tls.cert = DIR/laptop.key: no PEM certificate in it"),
            (
                "laptop.pem",
                "srv01.key",
                "FILE: tls.key = DIR/srv01.key is not the key of tls.cert = DIR/laptop.pem: use the key that was issued with that certificate",
            ),
            (
                "srv01.pem",
                "srv01.key",
                "FILE: tls.cert = DIR/srv01.pem is an agent's certificate; a dashboard needs role dashboard or operator (agents let no other subscribe): issue one with `cm-agent pki issue --ca DIR --name srv01 --role dashboard`",
            ),
            (
                "stranger.pem",
                "stranger.key",
                "FILE: tls.cert = DIR/stranger.pem is not signed by the CA in tls.ca = DIR/ca.pem: agents that trust that CA will refuse this dashboard; issue one from it with `cm-agent pki issue --ca DIR --name stranger --role dashboard`",
            ),
        ] {
            let (dir, file) = fleet(&format!("{cert}-{key}"), cert, key);
            let want = want
                .replace("FILE", &file.display().to_string())
                .replace("DIR/", &format!("{}/", dir.display()));
            assert_eq!(DashboardConfig::load_checking(&file, true).unwrap_err(), want);
            assert!(DashboardConfig::load_checking(&file, false).is_ok(), "the settings alone are fine");
        }
        let (_, file) = fleet("old", "old.pem", "old.key");
        let err = DashboardConfig::load_checking(&file, true).unwrap_err();
        assert!(
            err.contains("old.pem expired on ")
                && err.contains(
                    "agents will refuse this dashboard; renew it with `cm-agent pki renew --ca DIR --name old`"
                ),
            "{err}"
        );
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../docs/dashboard.example.toml");
        let c = DashboardConfig::parse(Path::new("example"), text).unwrap();
        assert_eq!(c.hosts.len(), 3);
    }
}
