mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use cm_collect::nixos::collect;
use cm_collect::{CollectError, SysRoot};
use cm_proto::{NixosState, Status};
use common::*;

fn state(tree: &str) -> NixosState {
    collect(&root(&format!("nixos/{tree}"))).unwrap().unwrap_or_else(|| panic!("{tree}: not NixOS"))
}

/// The mtime of the link itself, not of what it points at.
fn link_mtime_ms(path: &Path) -> u64 {
    let modified = std::fs::symlink_metadata(path).unwrap().modified().unwrap();
    modified.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn same_generation_needs_no_reboot() {
    let s = state("same-generation");
    assert_eq!(s.generation, Some(42));
    assert!(s.current_system.starts_with("/nix/store/"), "{}", s.current_system);
    assert!(s.current_system.ends_with("-nixos-system-srv01-24.05.20240612.1d3aeb5"), "{}", s.current_system);
    assert_eq!(s.booted_system.as_deref(), Some(s.current_system.as_str()));
    assert_eq!((s.reboot_needed, s.reboot_reasons.len(), s.status), (false, 0, Status::Ok));
    assert_eq!(s.version.as_deref(), Some("24.05.20240612.1d3aeb5"));
    assert_eq!(s.configuration_revision, None, "a channel-built system sets no configuration revision");
    let link = testdata("nixos/same-generation/nix/var/nix/profiles/system-42-link");
    assert_eq!(s.generation_ms, Some(link_mtime_ms(&link)));
}

#[test]
fn a_new_kernel_not_yet_booted_needs_a_reboot_that_names_both_versions() {
    let s = state("new-kernel");
    assert_eq!(s.generation, Some(42));
    assert!(s.booted_system.as_deref().unwrap().ends_with("-nixos-system-srv01-24.05.20240601.805a384"));
    assert!(s.reboot_needed);
    assert_eq!(s.status, Status::Warning);
    assert_eq!(
        s.reboot_reasons,
        ["kernel 6.6.30 -> 6.6.32", "initrd linux-6.6.30 -> linux-6.6.32", "kernel modules 6.6.30 -> 6.6.32"]
    );
}

#[test]
fn the_configuration_revision_and_generation_are_the_running_systems_not_the_newest_built() {
    let s = state("configuration-revision");
    assert_eq!(s.configuration_revision.as_deref(), Some("4f2c1e9d0b6a8e73c51f2a9d6e0b7c8a1f3d5e29"));
    assert_eq!(s.generation, Some(7), "the profile already points at 8 (nixos-rebuild boot), 7 runs");
    assert_eq!(s.version.as_deref(), Some("25.05.20250610.7c43f08"));
    let link = testdata("nixos/configuration-revision/nix/var/nix/profiles/system-7-link");
    assert_eq!(s.generation_ms, Some(link_mtime_ms(&link)));
    assert!(!s.reboot_needed, "it runs what it booted");
}

#[test]
fn a_host_that_is_not_nixos_has_no_nixos_state() {
    assert_eq!(collect(&root("nixos/not-nixos")).unwrap(), None, "Nix installed on Debian");
    assert_eq!(collect(&root("debian-vm")).unwrap(), None, "a capture of /proc and /sys only");
}

/// A NixOS tree of one system, built at test time, to break in one way each.
struct Scratch {
    dir: PathBuf,
}

const SYSTEM: &str = "/nix/store/a9a28d49b2016784d93b76da7zc9d4b7-nixos-system-x-24.05";

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = scratch(&format!("nixos-{name}"));
        write(&dir, &format!("{SYSTEM}/nixos-version")[1..], "24.05");
        let s = Scratch { dir };
        s.link("/run/current-system", SYSTEM);
        s.link("/run/booted-system", SYSTEM);
        s.link("/nix/var/nix/profiles/system-3-link", SYSTEM);
        s.link("/nix/var/nix/profiles/system", "system-3-link");
        s
    }

    fn link(&self, at: &str, target: &str) {
        let path = self.path(at);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        symlink(target, path).unwrap();
    }

    fn path(&self, at: &str) -> PathBuf {
        self.dir.join(at.trim_start_matches('/'))
    }

    fn collect(&self) -> Result<Option<NixosState>, CollectError> {
        collect(&SysRoot::at(&self.dir))
    }

    /// The error, which must name `path` (in the tree) and say `what`.
    fn error_names(&self, path: &str, what: &str) {
        let err = self.collect().unwrap_err();
        assert!(matches!(err, CollectError::Layout { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(&self.path(path).display().to_string()), "{text}");
        assert!(text.contains(what), "{text}");
    }
}

#[test]
fn the_generation_date_is_the_links_own_mtime() {
    let s = Scratch::new("date");
    let at = |secs: i64| rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 },
        last_modification: rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 },
    };
    let link = s.path("/nix/var/nix/profiles/system-3-link");
    rustix::fs::utimensat(rustix::fs::CWD, &link, &at(1_718_217_605), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
    rustix::fs::utimensat(rustix::fs::CWD, s.path(SYSTEM), &at(1), rustix::fs::AtFlags::empty()).unwrap();
    let state = s.collect().unwrap().unwrap();
    assert_eq!((state.generation, state.generation_ms), (Some(3), Some(1_718_217_605_000)));
}

#[test]
fn a_system_activated_with_nixos_rebuild_test_is_no_generation() {
    let s = Scratch::new("test");
    let tested = "/nix/store/f72a262337d0b206czd35afz12322a64-nixos-system-x-24.05";
    write(&s.dir, &format!("{tested}/nixos-version")[1..], "24.05");
    s.link("/run/current-system", tested);
    let state = s.collect().unwrap().unwrap();
    assert_eq!((state.generation, state.generation_ms), (None, None));
    assert_eq!(state.current_system, tested);
}

#[test]
fn no_system_profile_and_no_booted_system_are_not_errors() {
    // A NixOS VM test boots its system without a profile.
    let s = Scratch::new("bare");
    std::fs::remove_file(s.path("/nix/var/nix/profiles/system")).unwrap();
    std::fs::remove_file(s.path("/run/booted-system")).unwrap();
    let state = s.collect().unwrap().unwrap();
    assert_eq!((state.generation, state.booted_system, state.status), (None, None, Status::Unknown));
}

#[test]
fn a_current_system_pointing_at_nothing_is_an_error_naming_the_link_and_its_target() {
    let s = Scratch::new("dangling");
    s.link("/run/current-system", "/nix/store/00000000000000000000000000000000-gone");
    s.error_names("/run/current-system", "/nix/store/00000000000000000000000000000000-gone");
}

#[test]
fn a_current_system_that_is_a_folder_is_an_error() {
    let s = Scratch::new("folder");
    std::fs::remove_file(s.path("/run/current-system")).unwrap();
    std::fs::create_dir_all(s.path("/run/current-system")).unwrap();
    s.error_names("/run/current-system", "not a symbolic link");
}

#[test]
fn a_system_without_nixos_version_is_an_error() {
    let s = Scratch::new("noversion");
    std::fs::remove_file(s.path(&format!("{SYSTEM}/nixos-version"))).unwrap();
    s.error_names("/run/current-system", "no nixos-version");
}

#[test]
fn a_booted_system_pointing_at_nothing_is_an_error() {
    let s = Scratch::new("booted");
    s.link("/run/booted-system", "/nix/store/00000000000000000000000000000000-gone");
    s.error_names("/run/booted-system", "not there");
}

#[test]
fn a_profile_that_is_no_generation_is_an_error_naming_it() {
    let s = Scratch::new("profile");
    s.link("/nix/var/nix/profiles/system", SYSTEM);
    s.error_names("/nix/var/nix/profiles/system", "not a system-N-link generation");
}

#[derive(Debug, PartialEq)]
enum Entry {
    Folder,
    File { bytes: Vec<u8>, executable: bool },
    Link(PathBuf),
}

fn entries(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(std::fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Folder);
                walk(base, &path, out);
            } else {
                let executable = meta.permissions().mode() & 0o111 != 0;
                out.insert(rel, Entry::File { bytes: std::fs::read(&path).unwrap(), executable });
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_committed_trees_are_what_make_sh_lays_out() {
    let out = scratch("nixos-make");
    let status = std::process::Command::new("sh").arg(testdata("nixos/make.sh")).arg(&out).status().unwrap();
    assert!(status.success(), "make.sh: {status}");
    for tree in ["same-generation", "new-kernel", "configuration-revision", "not-nixos"] {
        let (made, committed) = (entries(&out.join(tree)), entries(&testdata(&format!("nixos/{tree}"))));
        for (path, entry) in &made {
            assert_eq!(committed.get(path), Some(entry), "{tree}/{}: run make.sh again", path.display());
        }
        assert_eq!(made.len(), committed.len(), "{tree}: committed entries make.sh does not lay out");
    }
}
