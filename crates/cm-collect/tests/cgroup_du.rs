mod common;

use std::process::Command;
use std::time::Duration;

use cm_collect::cgroup::{parse_flat_keyed, read_counters};
use cm_collect::du::{measure, Budget};
use common::*;

#[test]
fn cgroup_v2_counters_of_a_scope() {
    let cg = "/system.slice/docker-1c8fa019edd4b9d4b2856f4932c55929c5c118c808ed5faee9a135ca6e84b039.scope";
    let c = read_counters(&root("cgroup-docker"), cg);
    assert_eq!((c.oom_kills, c.throttled_periods, c.throttled_usec), (Some(1), Some(4), Some(10)));
}

#[test]
fn cgroup_v1_counters_fall_back_to_the_memory_and_cpu_hierarchies() {
    // /docker exists in the v1 memory hierarchy (memory.oom_control without oom_kill
    // on this older kernel) and the cpu hierarchy root has cpu.stat.
    let c = read_counters(&root("cgroup-docker"), "/docker");
    assert_eq!(c.oom_kills, None, "kernels before 4.13 do not count OOM kills in v1");
    let root_cg = read_counters(&root("cgroup-docker"), "/");
    assert_eq!((root_cg.throttled_periods, root_cg.throttled_usec), (Some(0), Some(0)));
    let missing = read_counters(&root("cgroup-docker"), "/system.slice/nothing.service");
    assert_eq!(missing, Default::default());
}

#[test]
fn flat_keyed_garbage_names_the_line() {
    assert_eq!(parse_flat_keyed("oom 1\noom_kill 2\n").unwrap()[1], ("oom_kill".into(), 2));
    assert_eq!(parse_flat_keyed("oom 1\noom_kill lots\n").unwrap_err().line, 2);
    assert!(parse_flat_keyed("a b c").is_err());
}

fn du_bytes(path: &std::path::Path) -> u64 {
    let out = Command::new("du").args(["-s", "-x", "-B1"]).arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn usage_matches_du_and_counts_hard_links_once() {
    let dir = scratch("du");
    for i in 0..20 {
        write(&dir, &format!("data/sub{}/file{i}", i % 4), &"x".repeat(10_000 * (i + 1)));
    }
    std::fs::hard_link(dir.join("data/sub0/file0"), dir.join("data/link-to-file0")).unwrap();
    std::fs::write(dir.join("data/big"), vec![7u8; 3 << 20]).unwrap();
    std::fs::hard_link(dir.join("data/big"), dir.join("data/sub1/big-again")).unwrap();
    std::os::unix::fs::symlink("/usr", dir.join("data/usr-link")).unwrap();
    let u = measure(&dir.join("data"), Budget::default()).unwrap();
    assert_eq!(u.bytes, du_bytes(&dir.join("data")));
    // 2.1 MB of small files and 3 MiB counted once, though linked twice.
    assert!(u.bytes > 5 << 20 && u.bytes < 6 << 20, "{u:?}");
    assert!(!u.partial);
    assert_eq!(u.unreadable, 0);
}

#[test]
fn a_tree_over_budget_is_partial_and_bounded() {
    let dir = scratch("du-many");
    for i in 0..3000 {
        write(&dir, &format!("many/d{}/f{i}", i % 30), "x");
    }
    let u = measure(&dir.join("many"), Budget { time: Duration::from_secs(60), entries: 1000 }).unwrap();
    assert!(u.partial);
    assert_eq!(u.entries, 1000);
    let all = measure(&dir.join("many"), Budget::default()).unwrap();
    assert!(!all.partial && all.entries == 3000 + 30 + 1 && all.bytes > u.bytes);
}

#[test]
fn a_missing_directory_is_an_error() {
    assert!(measure(std::path::Path::new("/nonexistent/cm/state"), Budget::default()).is_err());
}

#[test]
fn a_dynamic_users_state_directory_link_is_followed_links_below_it_are_not() {
    // systemd: /var/lib/NAME -> private/NAME for DynamicUser= services.
    let dir = std::env::temp_dir().join(format!("cm-du-dynamic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("private/vault")).unwrap();
    std::fs::write(dir.join("private/vault/data"), vec![7u8; 1 << 20]).unwrap();
    std::os::unix::fs::symlink("private/vault", dir.join("vault")).unwrap();
    std::os::unix::fs::symlink("/usr", dir.join("private/vault/elsewhere")).unwrap();
    let u = measure(&dir.join("vault"), Budget::default()).unwrap();
    assert!(u.bytes >= 1 << 20, "{u:?}");
    assert!(u.bytes < 2 << 20, "the link below the root was not followed: {u:?}");
}
