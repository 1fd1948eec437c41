//! `cm-dashboard export`: a range of history from one host of the fleet, over
//! the wire (or, without a fleet, from the local mode's store), written as CSV
//! or JSON by `cm_history::export`.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cm_history::export::Format;
use cm_proto::history::{Answer, HistoryRequest, Resolution};

use crate::config::DashboardConfig;

/// The time range asked for, as typed.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// The last `span` (`7d`, `48h`) up to now.
    Since(String),
    /// From one time to another (RFC 3339 or a date); the end defaults to now.
    Between { from: String, to: Option<String> },
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The host, as the fleet config names it.
    pub host: Option<String>,
    /// Series names or globs (`fs.*.used_percent`).
    pub series: Vec<String>,
    pub when: When,
    pub resolution: Resolution,
    pub format: Format,
}

/// How long the agent has to answer the dial, and then the request.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

impl Export {
    /// The request for `[from, to)`, worked out at `now_ms`; the errors name
    /// the flag and what it expects.
    pub fn request(&self, now_ms: i64) -> Result<HistoryRequest> {
        let (from_ms, to_ms) = match &self.when {
            When::Since(span) => {
                let span = cm_history::time::parse_span(span).map_err(|e| anyhow!("--since {e}"))?;
                (now_ms - span, now_ms)
            }
            When::Between { from, to } => {
                let from_ms = cm_history::time::parse_time(from).map_err(|e| anyhow!("--from {e}"))?;
                let to_ms = match to {
                    Some(t) => cm_history::time::parse_time(t).map_err(|e| anyhow!("--to {e}"))?,
                    None => now_ms,
                };
                if to_ms <= from_ms {
                    bail!(
                        "--from {} is not before --to {}",
                        cm_history::time::rfc3339(from_ms),
                        cm_history::time::rfc3339(to_ms)
                    );
                }
                (from_ms, to_ms)
            }
        };
        if self.series.len() > cm_proto::history::MAX_SELECTORS {
            bail!(
                "{} series asked for; one export takes at most {}",
                self.series.len(),
                cm_proto::history::MAX_SELECTORS
            );
        }
        Ok(HistoryRequest {
            series: self.series.clone(),
            from_ms,
            to_ms,
            resolution: self.resolution,
            max_points: 0,
            events: false,
        })
    }

    /// Asks the fleet's host for `request` and checks the answer.
    pub fn from_fleet(&self, config: &DashboardConfig, config_path: &Path, request: &HistoryRequest) -> Result<Answer> {
        let known = || config.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ");
        let Some(name) = &self.host else {
            bail!("which host? say --host NAME; {} has: {}", config_path.display(), known());
        };
        let Some(host) = config.hosts.iter().find(|h| h.name == *name) else {
            bail!("no host {name:?} in {}; it has: {}", config_path.display(), known());
        };
        let identity = cm_net::Identity::load(&config.tls.ca, &config.tls.cert, &config.tls.key)
            .with_context(|| format!("loading the certificates named in {}", config_path.display()))?;
        let role = identity.role().unwrap_or(cm_net::Role::Dashboard);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let endpoint = cm_net::tls::client(&identity).context("opening the dashboard's endpoint")?;
            let target = host.target();
            let addr = tokio::net::lookup_host(&target)
                .await
                .with_context(|| format!("cannot resolve {target}"))?
                .next()
                .ok_or_else(|| anyhow!("{target} has no address"))?;
            let session = cm_net::client::hello(&endpoint, addr, &host.name, role, DIAL_TIMEOUT)
                .await
                .with_context(|| format!("dialling {name} at {target}"))?;
            let w = &session.welcome;
            if w.minor < crate::remote::HISTORY_MINOR {
                bail!(
                    "{name}'s agent {} speaks protocol {}.{}: it keeps no history to export (that needs 1.{}); upgrade cm-agent there",
                    w.agent_version,
                    w.major,
                    w.minor,
                    crate::remote::HISTORY_MINOR
                );
            }
            let answer = cm_net::client::history(&session.conn, request, ANSWER_TIMEOUT)
                .await
                .with_context(|| format!("asking {name} for its history"));
            session.conn.close(cm_net::code::DONE.into(), b"export done");
            let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
            checked(answer?, name, request)
        })
    }

    /// Reads `request` from the local mode's store in `dir`.
    pub fn from_local(&self, dir: Option<&Path>, request: &HistoryRequest, now_ms: i64) -> Result<Answer> {
        let this = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
        if let Some(host) = self.host.as_deref().filter(|h| *h != this && *h != "localhost") {
            bail!(
                "no fleet configuration (--config FILE, $XDG_CONFIG_HOME/cm-dashboard/dashboard.toml or \
                 /etc/cm-dashboard/dashboard.toml): without one, export reads this machine's ({this}) history, not {host}'s"
            );
        }
        let dir = dir.ok_or_else(|| anyhow!("no local history: neither XDG_DATA_HOME nor HOME is set"))?;
        let reader = cm_history::Reader::open(dir)
            .with_context(|| "reading the local history (cm-dashboard keeps it while it runs without a fleet)")?;
        let answer = reader.range(request, now_ms)?;
        checked(answer, &this, request)
    }
}

/// The answer, or why there is none: the agent's own error, or no series
/// matching what was asked.
fn checked(answer: Answer, host: &str, request: &HistoryRequest) -> Result<Answer> {
    if let Some(why) = &answer.end.error {
        bail!("{host} could not answer: {why}");
    }
    if answer.series.is_empty() {
        bail!(
            "no series on {host} matches {} (names as in docs/SERIES.md, such as cpu.utilisation_percent or fs.*.used_percent)",
            request.series.join(" ")
        );
    }
    Ok(answer)
}

/// Writes `answer` to `out`, and says on stderr when it was cut short.
pub fn write(answer: &Answer, format: Format, out: &mut impl std::io::Write) -> Result<()> {
    cm_history::export::write(answer, format, out).context("writing the export")?;
    if answer.end.truncated {
        eprintln!(
            "cm-dashboard: a series had more than {} points; the first ones were written (narrow the range or pick a coarser --resolution)",
            cm_proto::history::MAX_POINTS_PER_SERIES
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(when: When) -> Export {
        Export {
            host: Some("srv01".into()),
            series: vec!["cpu.load1".into()],
            when,
            resolution: Resolution::Auto,
            format: Format::Csv,
        }
    }

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn ranges_from_spans_and_times_with_errors_that_name_the_flag() {
        let since = export(When::Since("7d".into())).request(NOW).unwrap();
        assert_eq!((since.from_ms, since.to_ms), (NOW - 7 * 86_400_000, NOW));
        let between = When::Between { from: "2025-11-20".into(), to: Some("2025-11-21T12:00:00Z".into()) };
        let r = export(between).request(NOW).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (1_763_596_800_000, 1_763_726_400_000));
        let open = export(When::Between { from: "2025-11-20".into(), to: None }).request(NOW).unwrap();
        assert_eq!(open.to_ms, NOW, "--to defaults to now");
        let bad = export(When::Since("soon".into())).request(NOW).unwrap_err().to_string();
        assert!(bad.starts_with("--since \"soon\": expected a span"), "{bad}");
        let bad = export(When::Between { from: "yesterday".into(), to: None }).request(NOW).unwrap_err().to_string();
        assert!(bad.starts_with("--from \"yesterday\": expected a time"), "{bad}");
        let backwards = When::Between { from: "2025-11-21".into(), to: Some("2025-11-20".into()) };
        let bad = export(backwards).request(NOW).unwrap_err().to_string();
        assert_eq!(bad, "--from 2025-11-21T00:00:00.000Z is not before --to 2025-11-20T00:00:00.000Z");
    }

    #[test]
    fn an_unknown_host_lists_the_known_ones() {
        let text =
            "[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n[[hosts]]\nname = \"srv01\"\n[[hosts]]\nname = \"lab\"\n";
        let config = DashboardConfig::parse(Path::new("d.toml"), text).unwrap();
        let mut e = export(When::Since("1h".into()));
        e.host = Some("srv99".into());
        let req = e.request(NOW).unwrap();
        let err = e.from_fleet(&config, Path::new("d.toml"), &req).unwrap_err().to_string();
        assert_eq!(err, "no host \"srv99\" in d.toml; it has: srv01, lab");
        e.host = None;
        let err = e.from_fleet(&config, Path::new("d.toml"), &req).unwrap_err().to_string();
        assert_eq!(err, "which host? say --host NAME; d.toml has: srv01, lab");
    }

    #[test]
    fn an_answer_with_an_error_or_no_series_is_an_error() {
        let req = export(When::Since("1h".into())).request(NOW).unwrap();
        let mut answer = Answer::default();
        let err = checked(answer.clone(), "srv01", &req).unwrap_err().to_string();
        assert!(err.starts_with("no series on srv01 matches cpu.load1"), "{err}");
        answer.end.error = Some("this agent keeps no history".into());
        let err = checked(answer, "srv01", &req).unwrap_err().to_string();
        assert_eq!(err, "srv01 could not answer: this agent keeps no history");
    }
}
