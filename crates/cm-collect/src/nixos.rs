//! NixOS state: which generation of the system profile the host runs, which
//! system it booted, whether it needs a reboot to run all of the current one,
//! its NixOS version and configuration revision.
//!
//! The layout, and where each fact comes from (testdata/nixos/SOURCE.txt has
//! the commits read):
//! - `/run/current-system` is an absolute link to the store path of the active
//!   system (activation-script.nix: `ln -sfn "$(readlink -f "$systemConfig")"`);
//!   a host without it is not NixOS.
//! - `/run/booted-system` links the system the host booted (stage-2-init.sh).
//! - `/nix/var/nix/profiles/system` links `system-N-link`, which links a
//!   system; a generation's date is its link's own mtime (Nix's profiles.cc).
//! - A system directory holds `nixos-version` (the label, top-level.nix) and
//!   the links `kernel`, `initrd` and `kernel-modules` (kernel.nix); the one
//!   folder under `kernel-modules/lib/modules` is the kernel release.
//! - A reboot is needed when those three links of the booted system point
//!   elsewhere than the current system's: what `system.autoUpgrade.allowReboot`
//!   compares (auto-upgrade.nix).
//! - `system.configurationRevision` lives only in the `nixos-version` program
//!   (tools.nix), `sw/bin/nixos-version`, as the JSON it prints for `--json`.
//!
//! Links are read with `read_link` and resolved inside the [`SysRoot`], never
//! canonicalized on the machine, so a captured tree whose links point at
//! `/nix/store/...` is read from its own `nix/store`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use cm_proto::{NixosState, Status};

use crate::error::CollectError;
use crate::sysroot::SysRoot;

/// The active system.
pub const CURRENT_SYSTEM: &str = "/run/current-system";
/// The system the host booted.
pub const BOOTED_SYSTEM: &str = "/run/booted-system";
/// The system profile; its generations are `system-N-link` beside it.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";

/// The `nixos-version` program is a short shell script; anything much larger
/// at that path is not the program this module knows how to read.
const MAX_VERSION_PROGRAM_BYTES: u64 = 64 * 1024;

/// What one system directory (a `system.build.toplevel`) holds, as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemDir {
    /// Its store path, e.g. `/nix/store/…-nixos-system-srv01-24.05.20240612.1d3aeb5`.
    pub store_path: String,
    /// Where its `kernel` link points, as `readlink` prints it; `None` without one (a container).
    pub kernel: Option<String>,
    /// Where its `initrd` link points; `None` without one.
    pub initrd: Option<String>,
    /// Where its `kernel-modules` link points; `None` without one.
    pub kernel_modules: Option<String>,
    /// The folder under `kernel-modules/lib/modules`: the kernel release, e.g. `6.6.32`.
    pub kernel_release: Option<String>,
    /// Its `nixos-version` file, trimmed.
    pub nixos_version: String,
}

/// A generation of the system profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    /// N in `system-N-link`.
    pub number: u64,
    /// The link's own mtime, milliseconds since the Unix epoch.
    pub created_ms: Option<u64>,
}

/// N in a generation link's name `system-N-link`, as Nix's `parseName` reads it.
pub fn parse_generation_link(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("system-")?.strip_suffix("-link")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `system.configurationRevision` from the text of a system's `nixos-version`
/// program: the JSON object it prints for `--json`, held in a heredoc. `None`
/// when the revision is not set or the text is not such a program.
pub fn parse_configuration_revision(program: &str) -> Option<String> {
    let mut lines = program.lines();
    while let Some(line) = lines.next() {
        let Some((_, after)) = line.split_once("<<") else { continue };
        let delimiter = after.trim().trim_start_matches('-').trim().trim_matches(|c| c == '\'' || c == '"');
        if delimiter.is_empty() {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != delimiter).collect();
        let Ok(serde_json::Value::Object(json)) = serde_json::from_str(&body.join("\n")) else { continue };
        if !json.contains_key("nixosVersion") {
            continue;
        }
        return json
            .get("configurationRevision")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
    }
    None
}

/// The name part of a store path: `linux-6.6.32` for
/// `/nix/store/<hash>-linux-6.6.32/bzImage`.
pub fn store_name(path: &str) -> Option<&str> {
    let entry = path.strip_prefix("/nix/store/")?.split('/').next()?;
    let (hash, name) = entry.split_once('-')?;
    (hash.len() == 32 && !name.is_empty()).then_some(name)
}

/// The state of a host whose current system is `current`, booted from
/// `booted` (`None` when the host does not say), running `generation` of the
/// system profile (`None` when the current system is none of its generations).
pub fn nixos_state(
    current: &SystemDir,
    booted: Option<&SystemDir>,
    generation: Option<Generation>,
    configuration_revision: Option<String>,
) -> NixosState {
    let reboot_reasons = booted.map(|b| reboot_reasons(b, current)).unwrap_or_default();
    let reboot_needed = !reboot_reasons.is_empty();
    let status = match booted {
        None => Status::Unknown,
        Some(_) if reboot_needed => Status::Warning,
        Some(_) => Status::Ok,
    };
    NixosState {
        generation: generation.map(|g| g.number),
        generation_ms: generation.and_then(|g| g.created_ms),
        current_system: current.store_path.clone(),
        booted_system: booted.map(|b| b.store_path.clone()),
        reboot_needed,
        reboot_reasons,
        version: Some(current.nixos_version.clone()).filter(|v| !v.is_empty()),
        configuration_revision,
        status,
    }
}

/// What differs between the booted and the current system's kernel, initrd
/// and kernel modules, in that order: `kernel 6.6.30 -> 6.6.32`, or
/// `initrd linux-6.6.32 rebuilt` when only the build changed.
pub fn reboot_reasons(booted: &SystemDir, current: &SystemDir) -> Vec<String> {
    let kernel = |s: &SystemDir| {
        let k = s.kernel.as_deref()?;
        Some(store_name(k).map_or(k, |n| n.strip_prefix("linux-").unwrap_or(n)).to_owned())
    };
    let initrd = |s: &SystemDir| {
        let i = s.initrd.as_deref()?;
        Some(store_name(i).map_or(i, |n| n.strip_prefix("initrd-").unwrap_or(n)).to_owned())
    };
    let modules = |s: &SystemDir| {
        let m = s.kernel_modules.as_deref()?;
        Some(s.kernel_release.clone().unwrap_or_else(|| store_name(m).unwrap_or(m).to_owned()))
    };
    let entries = [
        ("kernel", &booted.kernel, &current.kernel, kernel(booted), kernel(current)),
        ("initrd", &booted.initrd, &current.initrd, initrd(booted), initrd(current)),
        ("kernel modules", &booted.kernel_modules, &current.kernel_modules, modules(booted), modules(current)),
    ];
    entries
        .into_iter()
        .filter(|(_, was, now, _, _)| was != now)
        .map(|(what, _, _, was, now)| match (was, now) {
            (Some(was), Some(now)) if was == now => format!("{what} {now} rebuilt"),
            (was, now) => {
                format!("{what} {} -> {}", was.as_deref().unwrap_or("none"), now.as_deref().unwrap_or("none"))
            }
        })
        .collect()
}

/// Reads the host's NixOS state; `Ok(None)` when it is not NixOS (no
/// `/run/current-system`). A NixOS layout with parts missing or of the wrong
/// kind is an error naming the path.
pub fn collect(root: &SysRoot) -> Result<Option<NixosState>, CollectError> {
    let Some(current) = read_system(root, CURRENT_SYSTEM)? else { return Ok(None) };
    let booted = read_system(root, BOOTED_SYSTEM)?;
    let generation = read_generation(root, &current.store_path)?;
    let revision = read_configuration_revision(root, &current.store_path)?;
    Ok(Some(nixos_state(&current, booted.as_ref(), generation, revision)))
}

/// The system that `link` (`/run/current-system`, `/run/booted-system`)
/// points at; `None` when there is no such link.
pub fn read_system(root: &SysRoot, link: &str) -> Result<Option<SystemDir>, CollectError> {
    let full = root.path(link);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CollectError::Read { path: full, source }),
    };
    if !meta.file_type().is_symlink() {
        return Err(layout(full, "is not a symbolic link to a system in /nix/store"));
    }
    let store_path = root.resolve(link)?;
    let dir = root.path_of(&store_path);
    if !dir.is_dir() {
        let message = format!("points at {}, which is not there ({} is missing)", store_path.display(), dir.display());
        return Err(layout(full, message));
    }
    let version_file = dir.join("nixos-version");
    let nixos_version = match std::fs::read_to_string(&version_file) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let message = format!("points at {}, which has no nixos-version: not a NixOS system", store_path.display());
            return Err(layout(full, message));
        }
        Err(source) => return Err(CollectError::Read { path: version_file, source }),
    };
    let kernel_modules = read_link_text(&dir.join("kernel-modules"))?;
    let kernel_release = match kernel_modules {
        Some(_) => {
            let modules = root.resolve(&format!("{}/kernel-modules/lib/modules", store_path.display()))?;
            only_folder(&root.path_of(&modules))
        }
        None => None,
    };
    Ok(Some(SystemDir {
        store_path: store_path.to_string_lossy().into_owned(),
        kernel: read_link_text(&dir.join("kernel"))?,
        initrd: read_link_text(&dir.join("initrd"))?,
        kernel_modules,
        kernel_release,
        nixos_version,
    }))
}

/// The generation of the system profile whose system is `store_path`: the
/// profile's own generation when it is that one (the usual case), else the
/// generation link beside it that points there (after `nixos-rebuild boot` the
/// profile is a generation ahead). `None` without a profile, or when no
/// generation is that system (after `nixos-rebuild test`).
pub fn read_generation(root: &SysRoot, store_path: &str) -> Result<Option<Generation>, CollectError> {
    let profile = root.path(SYSTEM_PROFILE);
    let target = match std::fs::read_link(&profile) {
        Ok(target) => target,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            return Err(layout(profile, "is not a symbolic link to a system-N-link generation"))
        }
        Err(source) => return Err(CollectError::Read { path: profile, source }),
    };
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(number) = parse_generation_link(name) else {
        let message = format!("points at {}, which is not a system-N-link generation", target.display());
        return Err(layout(profile, message));
    };
    let folder = Path::new(SYSTEM_PROFILE).parent().expect("the profile path has a folder");
    let mut candidates = vec![(number, folder.join(name))];
    let mut others: Vec<(u64, PathBuf)> = std::fs::read_dir(root.path_of(folder))
        .map_err(|source| CollectError::Read { path: root.path_of(folder), source })?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let n = parse_generation_link(&name).filter(|n| *n != number)?;
            Some((n, folder.join(name)))
        })
        .collect();
    // Newest first: after `nixos-rebuild boot` the running system is usually the one before.
    others.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    candidates.extend(others);
    for (number, link) in candidates {
        let link = link.to_string_lossy();
        if root.resolve(&link)? != Path::new(store_path) {
            continue;
        }
        let created_ms = std::fs::symlink_metadata(root.path(&link))
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64);
        return Ok(Some(Generation { number, created_ms }));
    }
    Ok(None)
}

/// `system.configurationRevision` of the system at `store_path`, from its
/// `sw/bin/nixos-version` program (read, never run). `None` when the system
/// has no such program (`system.disableInstallerTools`) or the revision is not set.
pub fn read_configuration_revision(root: &SysRoot, store_path: &str) -> Result<Option<String>, CollectError> {
    let program = root.path_of(&root.resolve(&format!("{store_path}/sw/bin/nixos-version"))?);
    match std::fs::metadata(&program) {
        Ok(meta) if meta.len() <= MAX_VERSION_PROGRAM_BYTES => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CollectError::Read { path: program, source }),
    }
    let bytes = std::fs::read(&program).map_err(|source| CollectError::Read { path: program, source })?;
    Ok(parse_configuration_revision(&String::from_utf8_lossy(&bytes)))
}

/// Where the link at `path` points, as `readlink` prints it; `None` when there is nothing there.
fn read_link_text(path: &Path) -> Result<Option<String>, CollectError> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(Some(target.to_string_lossy().into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            Err(layout(path.to_owned(), "is not a symbolic link, as every system directory has it"))
        }
        Err(source) => Err(CollectError::Read { path: path.to_owned(), source }),
    }
}

/// The name of the one folder in `dir` (aggregateModules allows no other); `None` otherwise.
fn only_folder(dir: &Path) -> Option<String> {
    let mut names = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()?.file_name().into_string().ok());
    let first = names.next()?;
    names.next().is_none().then_some(first)
}

fn layout(path: PathBuf, message: impl Into<String>) -> CollectError {
    CollectError::Layout { path, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_A: &str = "cd1b820cb927da24d1765a578z72a3c3";
    const HASH_B: &str = "f72a262337d0b206czd35afz12322a64";

    fn system(hash: &str, kernel: &str) -> SystemDir {
        SystemDir {
            store_path: format!("/nix/store/{hash}-nixos-system-srv01-24.05"),
            kernel: Some(format!("/nix/store/{hash}-linux-{kernel}/bzImage")),
            initrd: Some(format!("/nix/store/{hash}-initrd-linux-{kernel}/initrd")),
            kernel_modules: Some(format!("/nix/store/{hash}-linux-{kernel}-modules")),
            kernel_release: Some(kernel.into()),
            nixos_version: "24.05.20240612.1d3aeb5".into(),
        }
    }

    #[test]
    fn generation_links_are_named_system_n_link() {
        assert_eq!(parse_generation_link("system-42-link"), Some(42));
        assert_eq!(parse_generation_link("system-0-link"), Some(0));
        for name in ["system", "system--link", "system-4x-link", "system-42", "default-3-link", "system-+4-link"] {
            assert_eq!(parse_generation_link(name), None, "{name}");
        }
    }

    #[test]
    fn the_booted_system_is_the_current_one_so_no_reboot() {
        let sys = system(HASH_B, "6.6.32");
        let state = nixos_state(&sys, Some(&sys), Some(Generation { number: 42, created_ms: Some(7) }), None);
        assert_eq!((state.reboot_needed, state.reboot_reasons.len(), state.status), (false, 0, Status::Ok));
        assert_eq!((state.generation, state.generation_ms), (Some(42), Some(7)));
        assert_eq!(state.booted_system.as_deref(), Some(sys.store_path.as_str()));
        assert_eq!(state.version.as_deref(), Some("24.05.20240612.1d3aeb5"));
    }

    #[test]
    fn a_new_kernel_needs_a_reboot_and_names_both_versions() {
        let (booted, current) = (system(HASH_A, "6.6.30"), system(HASH_B, "6.6.32"));
        let state = nixos_state(&current, Some(&booted), None, None);
        assert!(state.reboot_needed);
        assert_eq!(state.status, Status::Warning);
        assert_eq!(
            state.reboot_reasons,
            ["kernel 6.6.30 -> 6.6.32", "initrd linux-6.6.30 -> linux-6.6.32", "kernel modules 6.6.30 -> 6.6.32"]
        );
    }

    #[test]
    fn a_rebuilt_initrd_alone_needs_a_reboot() {
        let booted = system(HASH_B, "6.6.32");
        let current =
            SystemDir { initrd: Some(format!("/nix/store/{HASH_A}-initrd-linux-6.6.32/initrd")), ..booted.clone() };
        let state = nixos_state(&current, Some(&booted), None, None);
        assert_eq!(state.reboot_reasons, ["initrd linux-6.6.32 rebuilt"]);
    }

    #[test]
    fn an_extra_module_package_changes_the_modules_tree_but_not_the_kernel() {
        let booted = system(HASH_B, "6.6.32");
        let current =
            SystemDir { kernel_modules: Some(format!("/nix/store/{HASH_A}-linux-6.6.32-modules")), ..booted.clone() };
        assert_eq!(reboot_reasons(&booted, &current), ["kernel modules 6.6.32 rebuilt"]);
    }

    #[test]
    fn a_system_that_gained_a_kernel_says_so() {
        let container =
            SystemDir { kernel: None, initrd: None, kernel_modules: None, kernel_release: None, ..system(HASH_A, "x") };
        assert_eq!(reboot_reasons(&container, &container), Vec::<String>::new(), "containers have no kernel at all");
        let vm = system(HASH_B, "6.6.32");
        assert_eq!(reboot_reasons(&container, &vm)[0], "kernel none -> 6.6.32");
    }

    #[test]
    fn an_unknown_booted_system_is_not_judged() {
        let state = nixos_state(&system(HASH_B, "6.6.32"), None, None, None);
        assert_eq!((state.reboot_needed, state.booted_system, state.status), (false, None, Status::Unknown));
    }

    #[test]
    fn store_names_drop_the_hash_and_what_follows_the_entry() {
        assert_eq!(store_name(&format!("/nix/store/{HASH_A}-linux-6.6.32/bzImage")), Some("linux-6.6.32"));
        assert_eq!(store_name(&format!("/nix/store/{HASH_A}-kernel-modules")), Some("kernel-modules"));
        assert_eq!(store_name("/nix/store/short-linux"), None);
        assert_eq!(store_name("/boot/vmlinuz"), None);
    }

    #[test]
    fn the_revision_comes_from_the_json_heredoc_of_nixos_version() {
        let program = "#! /nix/store/x-bash/bin/bash\ncase \"$1\" in\n  --json)\n    cat <<'EOF'\n\
            {\"configurationRevision\":\"4f2c1e9d\",\"nixosVersion\":\"25.05.20250610.7c43f08\"}\nEOF\n    ;;\nesac\n";
        assert_eq!(parse_configuration_revision(program).as_deref(), Some("4f2c1e9d"));
        // Older nixos-version programs quote nothing: `cat <<EOF`.
        let unquoted = program.replace("<<'EOF'", "<<EOF");
        assert_eq!(parse_configuration_revision(&unquoted).as_deref(), Some("4f2c1e9d"));
    }

    #[test]
    fn no_revision_when_unset_or_when_the_program_is_something_else() {
        let unset = "case \"$1\" in\n  --json)\n    cat <<'EOF'\n{\"nixosVersion\":\"24.05\"}\nEOF\n    ;;\nesac\n";
        assert_eq!(parse_configuration_revision(unset), None);
        let other = "cat <<EOF\n{\"configurationRevision\":\"abc\"}\nEOF\n";
        assert_eq!(parse_configuration_revision(other), None, "JSON without nixosVersion is not nixos-version's");
        assert_eq!(parse_configuration_revision("\u{7f}ELF\0\0binary"), None);
        assert_eq!(parse_configuration_revision("cat <<EOF\nnot json"), None);
    }
}
