//! The chart view in a real terminal: a real agent (the cm-agent library, in
//! this process, keeping history), the real dashboard in tmux, and a tmpfs
//! this test fills in steps. The steps happen before the chart opens, so the
//! min and max the chart prints come from the agent's store; a step after it
//! opens comes live. Switching the range keeps them.
//!
//! Needs tmux, and root to mount the tmpfs; says SKIPPED without them, unless
//! CM_REQUIRE_TMUX=1 (CI, which runs as root), which makes either a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{eventually, free_port, Agent, Fleet, Tmux};

/// A 16 MiB tmpfs, unmounted on drop. Its steps are larger than the 1 MiB
/// the agent may hold back from a subscriber (docs/PROTOCOL.md, tolerances),
/// so that a step after the chart opened shows at once.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("cm-chart-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m"]).arg("tmpfs").arg(&dir).output().unwrap();
        assert!(out.status.success(), "mount: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs { dir }
    }

    /// Fills it to `eighths` × 2 MiB: 12.5 % an eighth (tmpfs counts whole
    /// pages, and file names take none).
    fn fill(&self, eighths: usize) {
        for i in 0..8 {
            let file = self.dir.join(format!("e{i}"));
            if i < eighths {
                std::fs::write(&file, vec![7u8; 2 << 20]).unwrap();
            } else if file.exists() {
                std::fs::remove_file(&file).unwrap();
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    out.is_ok_and(|uid| uid == "0")
}

/// The newest value of `series` the agent has stored, through `cm-dashboard export`.
fn stored(config: &Path, series: &str) -> Result<f64, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
        .args(["export", "--host", "srv01", series, "--since", "1h", "--resolution", "raw", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .last()
        .filter(|_| out.status.success())
        .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    last.rsplit(',').next().and_then(|v| v.parse().ok()).ok_or_else(|| text.into_owned())
}

#[test]
fn the_chart_shows_the_stored_min_and_max_of_a_tmpfs_filled_in_steps_and_switches_range() {
    if !is_root() {
        assert!(
            std::env::var("CM_REQUIRE_TMUX").as_deref() != Ok("1"),
            "root is needed to mount a tmpfs (CM_REQUIRE_TMUX=1)"
        );
        eprintln!("SKIPPED: not root, so no tmpfs can be mounted for the chart test");
        return;
    }
    let Some(t) = Tmux::start("chart", 100, 30) else { return };
    let tmpfs = Tmpfs::mount("steps");
    let series = format!("fs.{}.used_percent", tmpfs.dir.display());
    let fleet = Fleet::new("chart");
    let port = free_port();
    let _agent = Agent::start(&fleet, "srv01", port);
    let config = fleet.dashboard_config(&[("srv01", port, "server")]);

    // 0 %, 50 %, 75 %, then back to 25 %: each step waits until the agent stored it.
    for eighths in [0, 4, 6, 2] {
        tmpfs.fill(eighths);
        let want = eighths as f64 * 12.5;
        eventually(&format!("{series} stored at {want} %"), || match stored(&config, &series) {
            Ok(v) if v == want => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }

    t.keys(&[&format!("{} --config {} ; echo exit=$?", env!("CARGO_BIN_EXE_cm-dashboard"), config.display()), "Enter"]);
    t.wait_for("1 hosts: 1 connected", |_| true);
    t.keys(&["Enter"]);
    t.wait_for("cm-dashboard ── srv01 ── connected", |s| s.contains("Storage"));
    t.keys(&["g"]);
    t.wait_for("chart a series", |_| true);
    t.keys(&["-l", &format!("{}.used_percent", tmpfs.dir.display())]);
    t.wait_for(&format!(" {series}"), |_| true);
    t.keys(&["Enter"]);
    let figures = "min 0.0%  max 75.0%  last 25.0%";
    let screen = t.wait_for(figures, |s| s.contains("range [1h]") && s.contains("line mean"));
    assert!(screen.contains(&format!(" {series}  percent")), "{screen}");
    assert!(screen.contains("75.0% ┤") && screen.contains("0.0% ┤"), "the axis spans what the store holds:\n{screen}");

    t.keys(&["2"]);
    t.wait_for(figures, |s| s.contains("range  1h [24h]") && s.contains("10 min buckets"));
    t.keys(&["4"]);
    t.wait_for(figures, |s| s.contains("[30d]") && s.contains("6 h buckets"));
    t.keys(&["1"]);
    t.wait_for(figures, |s| s.contains("range [1h]") && s.contains("30 s buckets"));

    // A step while the chart is open comes from the snapshots.
    tmpfs.fill(7);
    t.wait_for("min 0.0%  max 87.5%  last 87.5%", |_| true);

    t.keys(&["Escape"]);
    t.wait_for("Storage", |s| !s.contains("range [1h]"));
    t.keys(&["q"]);
    t.wait_for("exit=0", |_| true);
}
