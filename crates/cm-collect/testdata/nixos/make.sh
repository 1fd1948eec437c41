#!/bin/sh
# Lays out the NixOS trees that the nixos collector's tests read, as a NixOS
# host has them: /run/current-system and /run/booted-system as absolute links
# into /nix/store, the system profile as system -> system-N-link -> store path,
# and in each system directory the entries nixpkgs puts there. SOURCE.txt says
# where each of these facts comes from.
#
# Usage: make.sh [DIR]   (default: the folder this script is in)
# The trees are committed; a test checks that they are what this script lays out.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
tree=

# A store path's hash: 32 characters of Nix's base-32 alphabet (0-9, a-z
# without e, o, t, u), made from the name (and a salt for two builds of one
# name) so that every run lays out the same paths.
hash() { printf '%s' "$*" | sha256sum | cut -c1-32 | tr e z; }
store() { echo "/nix/store/$(hash "$@")-$1"; }

put() { mkdir -p "$(dirname "$tree$1")" && printf '%s' "$2" >"$tree$1"; }
link() { mkdir -p "$(dirname "$tree$1")" && ln -sfn "$2" "$tree$1"; }
# touch -h: the date of the link itself, which is what Nix reports.
date_link() { touch -h -d "@$2" "$tree$1"; }

# A stand-in for the nixos-version program that
# nixos/modules/installer/tools/tools.nix builds from nixos-version.sh, with
# the values it substitutes: only the parts the collector reads, in their shape
# (the JSON from builtins.toJSON, keys sorted, configurationRevision present
# only when system.configurationRevision is set).
version_script() {
    label=$1 codename=$2 nixpkgs=$3 rev=$4
    if [ -n "$rev" ]; then
        json="{\"configurationRevision\":\"$rev\",\"nixosVersion\":\"$label\",\"nixpkgsRevision\":\"$nixpkgs\"}"
        revision_case="echo \"$rev\""
    else
        json="{\"nixosVersion\":\"$label\",\"nixpkgsRevision\":\"$nixpkgs\"}"
        revision_case="echo \"\$0: configuration revision is unknown\" >&2; exit 1"
    fi
    cat <<SCRIPT
#! $(store bash-5.2p26)/bin/bash
case "\$1" in
  --configuration-revision)
    $revision_case
    ;;
  --json)
    cat <<'EOF'
$json
EOF
    ;;
  *)
    echo "$label ($codename)"
    ;;
esac
SCRIPT
}

# system NAME LABEL CODENAME KERNEL NIXPKGS_REV [CONFIGURATION_REV]
# Lays out one system.build.toplevel with its kernel, modules, initrd and
# nixos-version program, and prints its store path.
system() {
    name=$1 label=$2 codename=$3 kver=$4 nixpkgs=$5 rev=${6:-}
    sys=$(store "nixos-system-$name-$label")
    kernel=$(store "linux-$kver")
    # The kernel's modules output, and system.modulesTree: aggregateModules (a
    # buildEnv) of it and boot.extraModulePackages, renamed after the kernel.
    # With one package, buildEnv links that package's lib/ instead of copying it.
    modules=$(store "linux-$kver-modules")
    tree_modules=$(store "linux-$kver-modules" "modulesTree $name-$label")
    initrd=$(store "initrd-linux-$kver" "$name-$label")
    sw=$(store system-path "$name-$label")
    version=$(store nixos-version "$name-$label")

    put "$kernel/bzImage" "(kernel image left out)"
    put "$modules/lib/modules/$kver/modules.order" "kernel/fs/ext4/ext4.ko
"
    link "$tree_modules/lib" "$modules/lib"
    put "$initrd/initrd" "(initrd image left out)"
    put "$version/bin/nixos-version" "$(version_script "$label" "$codename" "$nixpkgs" "$rev")
"
    chmod 755 "$tree$version/bin/nixos-version"
    link "$sw/bin/nixos-version" "$version/bin/nixos-version"

    link "$sys/kernel" "$kernel/bzImage"
    link "$sys/kernel-modules" "$tree_modules"
    link "$sys/initrd" "$initrd/initrd"
    link "$sys/sw" "$sw"
    put "$sys/kernel-params" "loglevel=4"
    put "$sys/nixos-version" "$label"
    put "$sys/system" "x86_64-linux"
    echo "$sys"
}

# generation N STORE_PATH UNIX_SECONDS
generation() {
    link "/nix/var/nix/profiles/system-$1-link" "$2"
    date_link "/nix/var/nix/profiles/system-$1-link" "$3"
}

begin() {
    tree=$out/$1
    rm -rf "$tree"
    mkdir -p "$tree"
}

# srv01 on the nixos-24.05 channel: generation 42 is current and booted.
srv01() {
    old=$(system srv01 24.05.20240601.805a384 Uakari 6.6.30 805a384895c696f802a9bf5bf4720f37385df547)
    new=$(system srv01 24.05.20240612.1d3aeb5 Uakari 6.6.32 1d3aeb5a193b9ff13f63f4d9cc169fb88129f860)
    generation 41 "$old" 1717233120 # 2024-06-01 09:12:00 UTC
    generation 42 "$new" 1718217605 # 2024-06-12 18:40:05 UTC
    link /nix/var/nix/profiles/system system-42-link
    link /run/current-system "$new"
}

begin same-generation
srv01
link /run/booted-system "$new"

# The same host after `nixos-rebuild switch` to 42 while it still runs the
# kernel of 41: booted 41, current 42.
begin new-kernel
srv01
link /run/booted-system "$old"

# steambox, configured by a flake that sets system.configurationRevision:
# it booted and runs generation 7; `nixos-rebuild boot` has since made 8
# (another revision, another kernel) the profile's generation for the next boot.
begin configuration-revision
g7=$(system steambox 25.05.20250610.7c43f08 Warbler 6.12.32 7c43f080a7f28b2774f3b3f43234ca11661bf334 \
    4f2c1e9d0b6a8e73c51f2a9d6e0b7c8a1f3d5e29)
g8=$(system steambox 25.05.20250701.a1b2c3d Warbler 6.12.35 a1b2c3d4e5f60718293a4b5c6d7e8f9012345678 \
    9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d)
generation 7 "$g7" 1749567600 # 2025-06-10 15:00:00 UTC
generation 8 "$g8" 1751367600 # 2025-07-01 11:00:00 UTC
link /nix/var/nix/profiles/system system-8-link
link /run/current-system "$g7"
link /run/booted-system "$g7"

# Debian with Nix installed (a user profile, no NixOS system).
begin not-nixos
put /etc/os-release 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
'
env=$(store user-environment)
put "$env/manifest.nix" "[ ]"
link /nix/var/nix/profiles/default default-1-link
link /nix/var/nix/profiles/default-1-link "$env"
put /run/systemd/system/.keep ""
