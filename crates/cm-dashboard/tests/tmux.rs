//! Drives the real `cm-dashboard` binary in a tmux pane the way a person would:
//! look at the screen, press keys, resize, quit, and check the shell afterwards.
//!
//! Skipped (loudly) when tmux is not installed, unless CM_REQUIRE_TMUX=1, which
//! CI sets so the test cannot silently vanish there.

mod common;

use std::process::Command;

use common::Tmux;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}

/// MemTotal as the RAM line prints it, three significant digits: `/23.5 GiB`, `/7.60 GiB`.
fn memory_total_label() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let gib = kib / (1024.0 * 1024.0);
    if gib < 9.995 {
        format!("/{gib:.2} GiB")
    } else if gib < 99.95 {
        format!("/{gib:.1} GiB")
    } else {
        format!("/{gib:.0} GiB")
    }
}

fn terminal_is_sane(t: &Tmux) {
    // The marker is computed so that the typed command line does not match it.
    t.keys(&[
        "clear; stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e -echo -e icanon -e echo; echo shell-$((6*7))",
        "Enter",
    ]);
    let screen = t.wait_for("shell-42", |_| true);
    let has = |flag: &str| screen.lines().any(|l| l.trim() == flag);
    assert!(has("icanon") && has("echo") && !has("-icanon") && !has("-echo"), "terminal left in raw mode:\n{screen}");
}

#[test]
fn shows_this_host_opens_help_copes_with_resize_and_quits_cleanly() {
    let Some(t) = Tmux::start("keys", 110, 35) else { return };
    t.keys(&[&format!("{} ; echo exit=$?", env!("CARGO_BIN_EXE_cm-dashboard")), "Enter"]);
    let host = hostname();
    let total = memory_total_label();
    let screen = t.wait_for(&format!("cm-dashboard ── {host} ── local"), |s| s.contains(&total));
    assert!(screen.contains("RAM "), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");

    t.keys(&["?"]);
    t.wait_for("refresh now", |s| s.contains("close help"));
    t.keys(&["Escape"]);
    t.wait_for("Storage", |s| !s.contains("close help"));

    t.run(&["resize-window", "-t", "t", "-x", "20", "-y", "5"]);
    t.wait_for("need 40x10", |s| s.contains(&host));
    t.run(&["resize-window", "-t", "t", "-x", "110", "-y", "35"]);
    t.wait_for("Storage", |_| true);

    t.keys(&["r"]);
    t.keys(&["q"]);
    t.wait_for("exit=0", |_| true);
    terminal_is_sane(&t);
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some(t) = Tmux::start("term", 100, 30) else { return };
    t.keys(&[&format!("{} ; echo exit=$?", env!("CARGO_BIN_EXE_cm-dashboard")), "Enter"]);
    t.wait_for("Storage", |_| true);
    let pid = t.child_pid();
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    t.wait_for("exit=0", |_| true);
    terminal_is_sane(&t);
}
