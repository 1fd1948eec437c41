//! The agent's configuration file (TOML). Unknown keys are errors; every
//! error names the file, the line and what was expected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cm_net::tls::{PemFile, Purpose};
use cm_net::{CertProblem, Identity, Role, TlsError};
use serde::Deserialize;

use crate::core::{CoreConfig, Intervals};
use crate::status::{Limit, Thresholds};

/// `agent.toml`. See `docs/agent.example.toml` for every key with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The name this host reports; the kernel host name when absent.
    pub host: Option<String>,
    /// UDP address to serve on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    pub tls: TlsPaths,
    #[serde(default)]
    pub intervals: IntervalSeconds,
    #[serde(default)]
    pub systemd: SystemdSection,
    #[serde(default)]
    pub collectors: CollectorSwitches,
    #[serde(default)]
    pub thresholds: ThresholdSection,
    /// Backup jobs run by systemd units (the NixOS module fills these in from
    /// `services.restic.backups` and `services.borgbackup.jobs`).
    #[serde(default)]
    pub backups: Vec<BackupEntry>,
    #[serde(default)]
    pub privileged: PrivilegedSection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Alert rules: the built-in status rules and `[[alerts.rules]]`.
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// Where alerts are notified: routes of target URLs.
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// The file this was read from, for errors.
    #[serde(skip)]
    pub source: PathBuf,
}

/// `/metrics` for Prometheus: off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// TCP address to serve `/metrics` on, e.g. `127.0.0.1:9130`.
    pub listen: Option<SocketAddr>,
    /// HTTPS with the agent's certificate, and a client certificate from the
    /// fleet CA (role dashboard or operator) required of every scraper.
    pub tls: bool,
}

/// History: every series of every snapshot, kept in SQLite in the state directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySection {
    pub enable: bool,
    /// Where `history.sqlite` lives. Unset: `--state-dir`, else systemd's
    /// `$STATE_DIRECTORY`, else /var/lib/cm-agent as root, else
    /// `$XDG_STATE_HOME/cm-agent`.
    pub state_dir: Option<PathBuf>,
    /// How long raw samples are kept (`48h`).
    pub retention_raw: String,
    /// How long per-minute rollups are kept (`30d`).
    pub retention_minutes: String,
    /// How long per-hour rollups are kept (`2y`).
    pub retention_hours: String,
    /// The most the file may hold, in bytes (pages in use); the finest tier
    /// is kept for less time when it would grow past this.
    pub max_bytes: u64,
    /// The least history a forecast is made from (`7d`).
    pub forecast_min_span: String,
}

impl Default for HistorySection {
    fn default() -> Self {
        Self {
            enable: true,
            state_dir: None,
            retention_raw: "48h".into(),
            retention_minutes: "30d".into(),
            retention_hours: "2y".into(),
            max_bytes: cm_history::Retention::default().max_bytes,
            forecast_min_span: "7d".into(),
        }
    }
}

impl HistorySection {
    /// The retention this section asks for, or the key that is wrong.
    pub fn retention(&self, path: &Path) -> Result<cm_history::Retention, ConfigError> {
        let span = |key: &str, v: &str| {
            cm_history::time::parse_span(v).map_err(|e| ConfigError(format!("{}: history.{key} = {e}", path.display())))
        };
        let raw_ms = span("retention_raw", &self.retention_raw)?;
        if raw_ms < cm_history::store::MIN_RAW_MS {
            return Err(ConfigError(format!(
                "{}: history.retention_raw = {:?}: expected at least 25h: a day's per-minute and per-hour rollups are made from its raw samples when it ends",
                path.display(),
                self.retention_raw
            )));
        }
        Ok(cm_history::Retention {
            raw_ms,
            minutes_ms: span("retention_minutes", &self.retention_minutes)?,
            hours_ms: span("retention_hours", &self.retention_hours)?,
            max_bytes: self.max_bytes,
        })
    }

    /// The forecasts' least span, or the key that is wrong.
    pub fn forecast_min_span_ms(&self, path: &Path) -> Result<i64, ConfigError> {
        cm_history::time::parse_span(&self.forecast_min_span)
            .map_err(|e| ConfigError(format!("{}: history.forecast_min_span = {e}", path.display())))
    }
}

/// The state directory when neither `--state-dir` nor `history.state_dir` says.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").and_then(|d| {
        // systemd passes one path per StateDirectory=, separated by colons.
        d.to_str().and_then(|d| d.split(':').next()).filter(|d| !d.is_empty()).map(PathBuf::from)
    }) {
        return dir;
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/cm-agent");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("cm-agent")
}

/// Privilege separation: SMART and the walks of other services' directories
/// run in `cm-agent collect-privileged`, which writes them to `results`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivilegedSection {
    /// The file the privileged collector writes and the agent reads. Unset:
    /// the agent collects these itself (and needs the privilege).
    pub results: Option<PathBuf>,
}

/// Status thresholds; `[warning, critical]` pairs, higher is worse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdSection {
    pub memory_percent: [f64; 2],
    pub cpu_celsius: [f64; 2],
    pub gpu_celsius: [f64; 2],
    pub filesystem_percent: [f64; 2],
    pub drive_wear_percent: [f64; 2],
    /// For drives that report no temperature limits of their own.
    pub drive_celsius: [f64; 2],
    pub service_memory_percent: f64,
    pub service_restarts: u32,
    pub service_transition_seconds: u64,
}

impl Default for ThresholdSection {
    fn default() -> Self {
        let t = Thresholds::default();
        let pair = |l: Limit| [l.warning, l.critical];
        Self {
            memory_percent: pair(t.memory_percent),
            cpu_celsius: pair(t.cpu_celsius),
            gpu_celsius: pair(t.gpu_celsius),
            filesystem_percent: pair(t.filesystem_percent),
            drive_wear_percent: pair(t.drive_wear_percent),
            drive_celsius: pair(t.drive_celsius),
            service_memory_percent: t.service_memory_percent,
            service_restarts: t.service_restarts,
            service_transition_seconds: t.service_transition.as_secs(),
        }
    }
}

impl ThresholdSection {
    fn thresholds(&self) -> Thresholds {
        let limit = |[warning, critical]: [f64; 2]| Limit { warning, critical };
        Thresholds {
            memory_percent: limit(self.memory_percent),
            cpu_celsius: limit(self.cpu_celsius),
            gpu_celsius: limit(self.gpu_celsius),
            filesystem_percent: limit(self.filesystem_percent),
            drive_wear_percent: limit(self.drive_wear_percent),
            drive_celsius: limit(self.drive_celsius),
            service_memory_percent: self.service_memory_percent,
            service_restarts: self.service_restarts,
            service_transition: Duration::from_secs(self.service_transition_seconds),
        }
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let pairs = [
            ("memory_percent", self.memory_percent),
            ("cpu_celsius", self.cpu_celsius),
            ("gpu_celsius", self.gpu_celsius),
            ("filesystem_percent", self.filesystem_percent),
            ("drive_wear_percent", self.drive_wear_percent),
            ("drive_celsius", self.drive_celsius),
        ];
        for (name, [warning, critical]) in pairs {
            if warning > critical {
                return Err(ConfigError(format!(
                    "{}: thresholds.{name} = [{warning}, {critical}]: expected [warning, critical] with warning <= critical",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// Collectors that can be turned off (the others are cheap and always on).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSwitches {
    /// Drive health through smartctl (needs CAP_SYS_RAWIO and CAP_SYS_ADMIN).
    pub smart: bool,
    /// NVIDIA GPUs through nvidia-smi (AMD and Intel need nothing).
    pub nvidia: bool,
    /// The nvidia-smi to run (default: `nvidia-smi` from PATH).
    pub nvidia_smi: Option<String>,
}

impl Default for CollectorSwitches {
    fn default() -> Self {
        Self { smart: true, nvidia: true, nvidia_smi: None }
    }
}

/// One backup job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupEntry {
    pub name: String,
    /// `restic`, `borg`...
    #[serde(default)]
    pub kind: String,
    /// The service that runs it.
    pub unit: String,
    /// The timer that starts it (default: the service's own `.timer`).
    pub timer: Option<String>,
}

fn default_listen() -> SocketAddr {
    "[::]:6130".parse().expect("literal address")
}

/// Certificate files (paths, so secrets stay out of the Nix store).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsPaths {
    /// `tls.cert = PATH`, as errors name a file.
    pub fn key_of(&self, file: PemFile) -> String {
        let (key, path) = match file {
            PemFile::Ca => ("ca", &self.ca),
            PemFile::Cert => ("cert", &self.cert),
            PemFile::Key => ("key", &self.key),
        };
        format!("tls.{key} = {}", path.display())
    }

    /// Reads and parses the three files named in `source`; an error names
    /// the file, the key and the path (`agent.toml: tls.cert = /x.pem: ...`).
    /// A key that is not the certificate's is an error too.
    pub fn identity(&self, source: &Path) -> Result<Identity, ConfigError> {
        let at = |file: PemFile, why: &dyn std::fmt::Display| {
            ConfigError(format!("{}: {}: {why}", source.display(), self.key_of(file)))
        };
        let read = |file: PemFile, path: &Path| {
            std::fs::read_to_string(path).map_err(|e| {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file".to_string(),
                    std::io::ErrorKind::PermissionDenied => {
                        format!("this user (uid {}) may not read it", rustix::process::geteuid().as_raw())
                    }
                    _ => e.to_string(),
                };
                at(file, &why)
            })
        };
        let ca = read(PemFile::Ca, &self.ca)?;
        let cert = read(PemFile::Cert, &self.cert)?;
        let key = read(PemFile::Key, &self.key)?;
        let identity = Identity::from_pem(&ca, &cert, &key).map_err(|e| match e {
            TlsError::Pem { file, message, .. } => at(file, &message),
            other => ConfigError(format!("{}: [tls]: {other}", source.display())),
        })?;
        if identity.keys_match() == Some(false) {
            return Err(ConfigError(format!(
                "{}: {} is not the key of {}: use the key that was issued with that certificate",
                source.display(),
                self.key_of(PemFile::Key),
                self.key_of(PemFile::Cert)
            )));
        }
        Ok(identity)
    }
}

/// Collector intervals in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntervalSeconds {
    pub cpu: f64,
    pub memory: f64,
    pub storage: f64,
    pub gpu: f64,
    pub smart: f64,
    pub services: f64,
}

impl Default for IntervalSeconds {
    fn default() -> Self {
        let d = Intervals::default();
        Self {
            cpu: d.cpu.as_secs_f64(),
            memory: d.memory.as_secs_f64(),
            storage: d.storage.as_secs_f64(),
            gpu: d.gpu.as_secs_f64(),
            smart: d.smart.as_secs_f64(),
            services: d.services.as_secs_f64(),
        }
    }
}

/// Which systemd units to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdSection {
    pub enable: bool,
    pub patterns: Vec<String>,
    pub units: Vec<String>,
    /// Extra directories to measure per unit: `gitea.service = ["/srv/gitea"]`.
    pub extra_paths: BTreeMap<String, Vec<PathBuf>>,
}

impl Default for SystemdSection {
    fn default() -> Self {
        let d = cm_collect::systemd::SystemdConfig::default();
        Self { enable: true, patterns: d.patterns, units: d.units, extra_paths: d.extra_paths }
    }
}

/// A configuration problem, with where it is.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::error::Error for ConfigError {}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `FILE: line N: what was expected`, for a TOML file that did not parse into
/// its configuration struct.
pub fn describe_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map_or(String::new(), |l| format!(": line {l}"));
    format!("{}{at}: {}", path.display(), e.message())
}

impl AgentConfig {
    /// Parses `text` read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config: AgentConfig =
            toml::from_str(text).map_err(|e| ConfigError(describe_toml_error(path, text, &e)))?;
        config.check(path)?;
        config.source = path.to_owned();
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(path, &text)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        self.thresholds.check(path)?;
        self.history.retention(path)?;
        if let Some(listen) = self.metrics.listen {
            if !self.metrics.tls && !listen.ip().is_loopback() {
                return Err(ConfigError(format!(
                    "{}: metrics.listen = {listen}: plain HTTP is served on loopback only; set metrics.tls = true to serve other hosts (scrapers then present a certificate from the fleet CA)",
                    path.display()
                )));
            }
        }
        self.history.forecast_min_span_ms(path)?;
        self.alert_rules_at(path)?;
        if !self.backups.is_empty() && !self.systemd.enable {
            return Err(ConfigError(format!(
                "{}: backups are read from systemd: they need systemd.enable = true",
                path.display()
            )));
        }
        for b in &self.backups {
            if !b.unit.ends_with(".service") {
                return Err(ConfigError(format!(
                    "{}: backup {:?}: unit {:?}: expected a .service unit",
                    path.display(),
                    b.name,
                    b.unit
                )));
            }
        }
        let i = &self.intervals;
        for (name, v) in [
            ("cpu", i.cpu),
            ("memory", i.memory),
            ("storage", i.storage),
            ("gpu", i.gpu),
            ("smart", i.smart),
            ("services", i.services),
        ] {
            if !(0.1..=86_400.0).contains(&v) {
                return Err(ConfigError(format!(
                    "{}: intervals.{name} = {v}: expected seconds between 0.1 and 86400",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// The name dashboards dial this host by: `host`, else the kernel's host
    /// name (as the snapshots say).
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(|| {
            cm_collect::host::collect(&cm_collect::SysRoot::live()).map_or_else(|_| "unknown".into(), |h| h.hostname)
        })
    }

    /// The agent's certificate files, read and parsed; it must be an agent's
    /// certificate, with its own key. Errors name the key and the file.
    pub fn identity(&self) -> Result<Identity, ConfigError> {
        let identity = self.tls.identity(&self.source)?;
        match identity.role() {
            Some(Role::Agent) => Ok(identity),
            other => Err(ConfigError(format!(
                "{}: {} is {}; an agent needs one with role agent: issue it with {}",
                self.source.display(),
                self.tls.key_of(PemFile::Cert),
                other.map_or("a certificate without a cm role".to_string(), |r| format!("a {r}'s certificate")),
                cm_net::pki::issue_command(&self.host_name(), Role::Agent)
            ))),
        }
    }

    /// What dashboards dialling `host` would refuse this agent's certificate
    /// for, at `now`: one sentence each, naming the key and what to do.
    pub fn certificate_problems(&self, identity: &Identity, host: &str, now: std::time::SystemTime) -> Vec<String> {
        let cert = self.tls.key_of(PemFile::Cert);
        let file = self.source.display();
        let refuse = "dashboards will refuse this agent";
        identity
            .own_problems(Purpose::Serve(host), now)
            .into_iter()
            .map(|problem| match problem {
                CertProblem::WrongName { presented, .. } => {
                    let whose = if self.host.is_some() { "host" } else { "the kernel's host name; host sets another" };
                    let instead = presented
                        .first()
                        .map_or(String::new(), |name| format!(", or set host = {name:?} if this host is {name}"));
                    format!(
                        "{file}: {cert} is for {}, not {host} ({whose}): dashboards dialling {host} will refuse this agent; issue it one with {}{instead}",
                        CertProblem::names(&presented),
                        cm_net::pki::issue_command(host, Role::Agent)
                    )
                }
                CertProblem::OtherCa => format!(
                    "{file}: {cert} is not signed by the CA in {}: dashboards that trust that CA will refuse this agent; issue it one from that CA with {}",
                    self.tls.key_of(PemFile::Ca),
                    cm_net::pki::issue_command(host, Role::Agent)
                ),
                CertProblem::Expired { not_after } => format!(
                    "{file}: {cert} {}: {refuse}; renew it with {}",
                    cm_net::refusal::expired(not_after),
                    cm_net::pki::renew_command(host)
                ),
                CertProblem::NotYetValid { not_before } => format!(
                    "{file}: {cert} {} by this machine's clock: {refuse} until then; check the clock",
                    cm_net::refusal::not_yet_valid(not_before)
                ),
                CertProblem::WrongUse { .. } => format!(
                    "{file}: {cert} is not made for serving: {refuse}; issue it one with {}",
                    cm_net::pki::issue_command(host, Role::Agent)
                ),
                CertProblem::Missing => format!("{file}: {cert}: no certificate in it"),
                CertProblem::Other(text) => format!("{file}: {cert}: {text}"),
            })
            .collect()
    }

    /// `check-config`'s look at the files the settings name: they exist and
    /// parse, the certificate is an agent's with its own key, and dashboards
    /// dialling this host would accept it now. Every problem, one per line.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let identity = self.identity()?;
        let problems = self.certificate_problems(&identity, &self.host_name(), std::time::SystemTime::now());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems.join("\n")))
        }
    }

    /// Where and how history is kept; `None` when it is off.
    pub fn history_config(&self) -> Result<Option<crate::history::HistoryConfig>, ConfigError> {
        if !self.history.enable {
            return Ok(None);
        }
        let path = &self.source;
        Ok(Some(crate::history::HistoryConfig {
            dir: self.history.state_dir.clone().unwrap_or_else(default_state_dir),
            retention: self.history.retention(path)?,
            forecast_min_span_ms: self.history.forecast_min_span_ms(path)?,
        }))
    }

    /// The alert rules, checked; an error names the rule and the key.
    pub fn alert_rules(&self) -> Result<crate::alerts::Rules, ConfigError> {
        self.alert_rules_at(&self.source)
    }

    fn alert_rules_at(&self, path: &Path) -> Result<crate::alerts::Rules, ConfigError> {
        let delivery = self.routes_at(path)?.delivery();
        self.alerts.rules(delivery).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// The notification routes, checked; an error names the route and the key.
    pub fn routes(&self) -> Result<crate::notify::Routes, ConfigError> {
        self.routes_at(&self.source)
    }

    fn routes_at(&self, path: &Path) -> Result<crate::notify::Routes, ConfigError> {
        self.notify.validate().map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// The collector settings this file asks for, on the live machine.
    pub fn core(&self) -> CoreConfig {
        let mut core = CoreConfig::for_sysroot(cm_collect::SysRoot::live());
        core.hostname = self.host.clone();
        let s = |v: f64| Duration::from_secs_f64(v);
        core.intervals = Intervals {
            cpu: s(self.intervals.cpu),
            memory: s(self.intervals.memory),
            storage: s(self.intervals.storage),
            gpu: s(self.intervals.gpu),
            smart: s(self.intervals.smart),
            services: s(self.intervals.services),
        };
        core.systemd = self.systemd.enable.then(|| cm_collect::systemd::SystemdConfig {
            patterns: self.systemd.patterns.clone(),
            units: self.systemd.units.clone(),
            extra_paths: self.systemd.extra_paths.clone(),
            backups: self
                .backups
                .iter()
                .map(|b| cm_collect::systemd::BackupJob {
                    name: b.name.clone(),
                    kind: b.kind.clone(),
                    unit: b.unit.clone(),
                    timer: b.timer.clone(),
                })
                .collect(),
            ..Default::default()
        });
        core.thresholds = self.thresholds.thresholds();
        if !self.collectors.smart {
            core.smartctl = None;
        }
        if !self.collectors.nvidia {
            core.nvidia_smi = None;
        }
        if let (Some(smi), Some(program)) = (&mut core.nvidia_smi, &self.collectors.nvidia_smi) {
            smi.program = program.clone();
        }
        if let Some(results) = &self.privileged.results {
            // What needs privilege comes from the privileged collector.
            core.smartctl = None;
            if let Some(systemd) = &mut core.systemd {
                systemd.measure_disks = false;
            }
            core.privileged_results = Some(results.clone());
        }
        core
    }

    /// How often the privileged collector looks for new units and writes its results.
    pub const PRIVILEGED_INTERVAL: Duration = Duration::from_secs(30);

    /// What `cm-agent collect-privileged` collects: drive health and the
    /// services' directories (the systemd states come along, unused); no GPU.
    pub fn core_privileged(&self) -> CoreConfig {
        let mut core = self.core();
        core.privileged_results = None;
        core.nvidia_smi = None;
        core.smartctl = self.collectors.smart.then(Default::default);
        if let Some(systemd) = &mut core.systemd {
            systemd.measure_disks = true;
        }
        let every = Self::PRIVILEGED_INTERVAL;
        core.intervals.cpu = every;
        core.intervals.memory = every;
        core.intervals.services = every;
        core.intervals.gpu = Duration::from_secs(86_400);
        core.intervals.storage = core.intervals.storage.max(every);
        core
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(Path::new("/etc/cm-agent/agent.toml"), text)
    }

    const MINIMAL: &str = "[tls]\nca = \"/s/ca.pem\"\ncert = \"/s/h.pem\"\nkey = \"/s/h.key\"\n";

    #[test]
    fn history_spans_are_checked_and_named() {
        let err = parse(&format!("{MINIMAL}[history]\nretention_minutes = \"a month\"\n")).unwrap_err().to_string();
        assert!(err.contains("history.retention_minutes = \"a month\": expected a span"), "{err}");
        let err = parse(&format!("{MINIMAL}[history]\nretention_raw = \"12h\"\n")).unwrap_err().to_string();
        assert!(err.contains("history.retention_raw = \"12h\": expected at least 25h"), "{err}");
        let ok = parse(&format!("{MINIMAL}[history]\nretention_raw = \"3d\"\nmax_bytes = 1000000\n")).unwrap();
        let r = ok.history.retention(Path::new("x")).unwrap();
        assert_eq!((r.raw_ms, r.max_bytes), (3 * 86_400_000, 1_000_000));
    }

    #[test]
    fn defaults_fill_what_is_not_said() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.listen, "[::]:6130".parse().unwrap());
        assert_eq!(c.intervals.cpu, 2.0);
        assert!(c.systemd.enable);
        assert_eq!(c.core().intervals.smart, Duration::from_secs(1800));
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../docs/agent.example.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.host.as_deref(), Some("srv01"));
        assert_eq!(c.systemd.extra_paths["gitea.service"], [PathBuf::from("/srv/gitea")]);
    }

    #[test]
    fn thresholds_are_configurable_and_checked() {
        let c =
            parse(&format!("{MINIMAL}[thresholds]\ndrive_wear_percent = [60, 85]\nservice_restarts = 5\n")).unwrap();
        let t = c.core().thresholds;
        assert_eq!((t.drive_wear_percent.warning, t.drive_wear_percent.critical), (60.0, 85.0));
        assert_eq!(t.service_restarts, 5);
        assert_eq!(t.memory_percent.warning, 80.0, "the rest keep their defaults");
        let err = parse(&format!("{MINIMAL}[thresholds]\nmemory_percent = [95, 90]\n")).unwrap_err().to_string();
        assert!(err.contains("thresholds.memory_percent = [95, 90]: expected [warning, critical]"), "{err}");
    }

    #[test]
    fn backups_and_collector_switches() {
        let text = format!(
            "{MINIMAL}[collectors]\nsmart = false\n\n[[backups]]\nname = \"b2\"\nkind = \"restic\"\nunit = \"restic-backups-b2.service\"\n"
        );
        let c = parse(&text).unwrap();
        let core = c.core();
        assert!(core.smartctl.is_none() && core.nvidia_smi.is_some());
        let jobs = &core.systemd.unwrap().backups;
        assert_eq!(
            (jobs[0].name.as_str(), jobs[0].unit.as_str(), jobs[0].timer.as_deref()),
            ("b2", "restic-backups-b2.service", None)
        );
        let err = parse(&text.replace("restic-backups-b2.service", "restic-backups-b2.timer")).unwrap_err().to_string();
        assert!(err.contains("expected a .service unit"), "{err}");
    }

    #[test]
    fn errors_name_file_line_and_what_was_expected() {
        let err = parse(&format!("{MINIMAL}\n[intervals]\ncpu = \"fast\"\n")).unwrap_err().to_string();
        assert!(err.starts_with("/etc/cm-agent/agent.toml: line 7: "), "{err}");
        assert!(err.contains("expected"), "{err}");
        let err = parse(&format!("listne = \"[::]:1\"\n{MINIMAL}")).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("unknown field `listne`"), "{err}");
        let err = parse("listen = \"[::]:6130\"\n").unwrap_err().to_string();
        assert!(err.contains("missing field `tls`"), "{err}");
        let err = parse(&format!("{MINIMAL}[intervals]\ncpu = 0\n")).unwrap_err().to_string();
        assert!(err.contains("intervals.cpu = 0: expected seconds between 0.1 and 86400"), "{err}");
    }
}
