//! The dashboard's fleet configuration (TOML). Without one, the dashboard
//! runs in local mode.

use std::path::{Path, PathBuf};

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

impl DashboardConfig {
    /// Parses `text` read from `path`; errors name the file and line.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let config: DashboardConfig =
            toml::from_str(text).map_err(|e| cm_agent::config::describe_toml_error(path, text, &e))?;
        let mut seen = std::collections::HashSet::new();
        for h in &config.hosts {
            if !seen.insert(&h.name) {
                return Err(format!("{}: host {:?} is listed twice", path.display(), h.name));
            }
        }
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &text)
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

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../docs/dashboard.example.toml");
        let c = DashboardConfig::parse(Path::new("example"), text).unwrap();
        assert_eq!(c.hosts.len(), 3);
    }
}
