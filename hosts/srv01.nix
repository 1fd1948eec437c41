# A home server: services with state, a nightly restic backup, open to the LAN.
{ pkgs, ... }:
{
  imports = [ ./common.nix ];
  networking.hostName = "srv01";

  services.cm-agent = {
    openFirewall = true;
    watch = [ "vaultwarden.service" ];
    extraPaths."gitea.service" = [ "/srv/gitea" ];
    # Its own rules, beside the fleet's (hosts/fleet.nix); /srv is its own
    # filesystem on the real machine.
    alerts.rules = {
      srv-full = {
        series = "fs./srv.used_percent";
        warn = 80;
        crit = 90;
        clear = 75;
        for = "5m";
      };
      # The nightly restic job (below) has not succeeded for a day and more.
      b2-backup-stale = {
        backup = "b2";
        noSuccessFor = "26h";
        severity = "critical";
      };
    };
  };

  services.gitea.enable = true;
  services.vaultwarden.enable = true;

  # Becomes a backup entry in the agent's configuration by itself.
  services.restic.backups.b2 = {
    repository = "b2:srv01-backups:/";
    passwordFile = "/run/secrets/restic-password";
    paths = [
      "/var/lib/gitea"
      "/var/lib/vaultwarden"
    ];
    timerConfig.OnCalendar = "04:00";
  };

  environment.systemPackages = [ pkgs.restic ];
}
