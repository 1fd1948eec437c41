# Both binaries of the workspace: cm-agent and cm-dashboard.
{
  lib,
  stdenv,
  rustPlatform,
  coreutils,
  installShellFiles,
}:

rustPlatform.buildRustPackage {
  pname = "cm-dashboard";
  version = "0.1.0";

  # The Rust workspace and what its tests read: captures under crates/*/testdata,
  # snapshots, the example configs in docs/ and the helpers in tests/.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../rustfmt.toml
      ../crates
      ../docs
      ../tests
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;
  # The shipped binaries come from Cargo.toml's `dist` profile (fat LTO, one
  # codegen unit, optimized for size). The tests run as CI runs them, with the
  # dev profile ("debug" here) and its optimized SQLite: `release` leaves
  # dependencies unoptimized, and the history tests store a year of samples.
  buildType = "dist";
  checkType = "debug";
  cargoBuildFlags = [ "--workspace" ];
  cargoTestFlags = [ "--workspace" ];

  nativeBuildInputs = [ installShellFiles ];
  nativeCheckInputs = [ coreutils ];

  # Shell completions and manual pages (one per command), from the binaries
  # themselves: `completions SHELL` and `man --dir DIR`.
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    for bin in cm-agent cm-dashboard; do
      installShellCompletion --cmd $bin \
        --bash <($out/bin/$bin completions bash) \
        --zsh <($out/bin/$bin completions zsh) \
        --fish <($out/bin/$bin completions fish)
      mkdir -p man/$bin
      $out/bin/$bin man --dir man/$bin
      installManPage man/$bin/*.1
    done
  '';
  # These compare the agent with the machine it runs on (df, /proc/meminfo, the
  # host name); the build sandbox is not a machine worth comparing with.
  checkFlags = [
    "--skip=live_snapshot_agrees_with_proc_meminfo_loadavg_and_df"
    "--skip=once_json_prints_this_host"
    "--skip=live_statvfs_of_root_is_consistent"
  ];

  meta = {
    description = "A small, fast fleet monitor: per-host agent and keyboard-driven terminal dashboard";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "cm-dashboard";
    platforms = lib.platforms.linux;
  };
}
