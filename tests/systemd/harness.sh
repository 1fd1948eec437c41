#!/usr/bin/env bash
# A real systemd (Debian bookworm) booted as PID 1 of a container, for the
# services tests. The agent runs outside and reads the container's system bus
# at /proc/PID/root/run/dbus/system_bus_socket.
#
#   harness.sh rootfs              build the root filesystem once (cached in $CM_HARNESS_DIR)
#   harness.sh start NAME          boot a container with the units in units/ (or in
#                                  $CM_HARNESS_UNITS, if set) and the files in
#                                  $CM_HARNESS_FILES, if set; prints its PID 1
#   harness.sh wait NAME [SECS]    until systemd reports running or degraded
#   harness.sh exec NAME CMD...    run CMD inside the container
#   harness.sh stop NAME           power it off and remove its cgroups
#
# Needs root. The host may run any init: the container gets a private cgroup
# namespace whose v1 controller hierarchies (and the cgroup2 mount) are rooted
# at sub-cgroups of this process's own, so systemd inside can account memory,
# CPU and tasks per unit without touching the host's cgroups.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${CM_HARNESS_DIR:-/var/tmp/cm-harness}
ROOTFS=$DIR/rootfs
MIRROR=${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# cpu and cpuacct are separate hierarchies on some hosts while systemd expects
# them together: cpuacct is mounted at both names inside (CPUUsageNSec works,
# CPUQuota= does not, which these tests do not need).
CONTROLLERS="cpuacct memory pids blkio devices freezer cpuset"

die() { echo "harness: $*" >&2; exit 1; }

# This process's cgroup directory in hierarchy $1 (a directory under /sys/fs/cgroup).
own_cgroup() {
  local key=$1
  case $1 in unified) key='' ;; systemd) key='name=systemd' ;; esac
  echo "/sys/fs/cgroup/$1$(awk -F: -v k="$key" '$2 == k { print $3 }' /proc/self/cgroup | sed 's|/$||')"
}

rootfs_ready() {
  # nss-systemd resolves dynamic users (DynamicUser=) for dbus-daemon, as on NixOS.
  [ -x "$ROOTFS/lib/systemd/systemd" ] && [ -e "$ROOTFS/usr/share/doc/libnss-systemd" ]
}

rootfs() {
  rootfs_ready && return 0
  mkdir -p "$DIR"
  # Tests boot containers in parallel: one builds the root filesystem while the
  # others wait for it on this lock, then find it built. The lock is this
  # subshell's alone: no container started later holds it.
  (
    flock 9
    if ! rootfs_ready; then build_rootfs; fi
  ) 9>"$DIR/rootfs.lock"
}

build_rootfs() {
  rm -rf "$ROOTFS" "$ROOTFS.tmp"
  if ! command -v mmdebstrap >/dev/null && ! command -v debootstrap >/dev/null; then
    # Waits for another apt-get holding dpkg's lock rather than failing at once.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
      --no-install-recommends mmdebstrap >/dev/null
  fi
  local pkgs=systemd,systemd-sysv,dbus,libnss-systemd
  if command -v mmdebstrap >/dev/null; then
    mmdebstrap --quiet --variant=minbase --include=$pkgs bookworm "$ROOTFS.tmp" "$MIRROR"
  else
    debootstrap --variant=minbase --include=$pkgs bookworm "$ROOTFS.tmp" "$MIRROR" >/dev/null
  fi
  mkdir -p "$ROOTFS.tmp/etc/systemd/system.conf.d"
  printf '[Manager]\nDefaultCPUAccounting=yes\nDefaultMemoryAccounting=yes\nDefaultTasksAccounting=yes\nDefaultIOAccounting=yes\n' \
    > "$ROOTFS.tmp/etc/systemd/system.conf.d/accounting.conf"
  # There is no console in this container: gettys would only fail and restart.
  chroot "$ROOTFS.tmp" systemctl mask console-getty.service getty@tty1.service systemd-firstboot.service >/dev/null 2>&1 || true
  rm -rf "$ROOTFS.tmp"/var/cache/apt/archives/*.deb
  mv "$ROOTFS.tmp" "$ROOTFS"
}

# Runs as PID 1's parent inside the new namespaces: builds the container's
# filesystem and becomes systemd.
inside() {
  local d=$DIR/$1 R=$DIR/$1/merged c
  mount --make-rprivate /
  mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$R"
  mount -t proc proc "$R/proc"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$R/sys/fs/cgroup"
  for c in $CONTROLLERS; do
    mkdir "$R/sys/fs/cgroup/$c"
    mount -t cgroup -o "nosuid,nodev,noexec,$c" cgroup "$R/sys/fs/cgroup/$c"
  done
  mkdir "$R/sys/fs/cgroup/cpu" "$R/sys/fs/cgroup/unified" "$R/sys/fs/cgroup/systemd"
  mount -t cgroup -o nosuid,nodev,noexec,cpuacct cgroup "$R/sys/fs/cgroup/cpu"
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup/unified"
  mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup "$R/sys/fs/cgroup/systemd"
  mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"
  for c in null zero full random urandom tty; do touch "$R/dev/$c"; mount --bind "/dev/$c" "$R/dev/$c"; done
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
  ln -s pts/ptmx "$R/dev/ptmx"
  touch "$R/dev/console"; mount --bind "$d/console.log" "$R/dev/console"
  mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
  hostname "$1"
  echo "$1" > "$R/etc/hostname"
  tr -d - < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
  cd "$R" && mkdir -p .oldroot && pivot_root . .oldroot && cd /
  umount -l /.oldroot && rmdir /.oldroot
  exec env -i container=cm-harness /lib/systemd/systemd < /dev/null > /dev/console 2>&1
}

start() {
  local name=$1 d=$DIR/$1 h cg dirs="" unit
  rootfs
  stop "$name" >/dev/null 2>&1 || true
  rm -rf "$d"; mkdir -p "$d/upper/etc/systemd/system/multi-user.target.wants" "$d/work" "$d/merged"
  : > "$d/console.log"
  for unit in "${CM_HARNESS_UNITS:-$HERE/units}"/*; do
    cp "$unit" "$d/upper/etc/systemd/system/"
    if grep -q '^WantedBy=multi-user.target' "$unit"; then
      ln -s "/etc/systemd/system/$(basename "$unit")" "$d/upper/etc/systemd/system/multi-user.target.wants/"
    fi
  done
  # Extra files for the container's root (CM_HARNESS_FILES=DIR), e.g. a unit
  # generated elsewhere and the program it runs.
  if [ -n "${CM_HARNESS_FILES:-}" ]; then
    cp -a "$CM_HARNESS_FILES"/. "$d/upper/"
  fi
  for h in $CONTROLLERS systemd unified; do
    cg="$(own_cgroup "$h")/cm-$name"
    mkdir -p "$cg"
    if [ "$h" = cpuset ]; then
      cat "$(dirname "$cg")/cpuset.cpus" > "$cg/cpuset.cpus"
      cat "$(dirname "$cg")/cpuset.mems" > "$cg/cpuset.mems"
    fi
    dirs="$dirs $cg"
  done
  echo "$dirs" > "$d/cgroups"
  # Enter the sub-cgroups first, then unshare: the new cgroup namespace is rooted there.
  # shellcheck disable=SC2016
  setsid bash -c 'set -e; for c in $1; do echo $$ > "$c/cgroup.procs"; done; shift; exec "$@"' _ "$dirs" \
    unshare --pid --mount --uts --ipc --cgroup --net --fork --kill-child \
      env CM_HARNESS_DIR="$DIR" bash "$HERE/harness.sh" __inside "$name" > "$d/unshare.log" 2>&1 < /dev/null &
  local launcher=$! pid="" i
  for i in $(seq 1 200); do
    # The launcher has become unshare; its one child becomes systemd.
    pid=$(cat /proc/"$launcher"/task/*/children 2>/dev/null | tr ' ' '\n' | head -1 || true)
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ] && break
    pid=""; sleep 0.05
  done
  [ -n "$pid" ] || die "container $name did not start: $(cat "$d/unshare.log")"
  echo "$pid" > "$d/pid"
  echo "$pid"
}

pid_of() { cat "$DIR/$1/pid" 2>/dev/null || die "container $1 is not running"; }

run_inside() { local n=$1; shift; nsenter -t "$(pid_of "$n")" -a -r -w "$@"; }

wait_up() {
  local state="" i
  for i in $(seq 1 $((${2:-60} * 10))); do
    state=$(run_inside "$1" systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) return 0 ;; esac
    sleep 0.1
  done
  die "container $1 not up after ${2:-60} s (state: $state)"
}

stop() {
  local d=$DIR/$1 pid cg
  pid=$(cat "$d/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -s SIGRTMIN+4 "$pid"   # systemd: start poweroff.target
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  for cg in $(cat "$d/cgroups" 2>/dev/null); do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # The overlay lived in the container's mount namespace, gone with it.
  rm -rf "$d"
}

case ${1:-} in
  rootfs) rootfs ;;
  start) start "${2:?name}" ;;
  wait) wait_up "${2:?name}" "${3:-60}" ;;
  exec) n=${2:?name}; shift 2; run_inside "$n" "$@" ;;
  stop) stop "${2:?name}" ;;
  __inside) inside "$2" ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
