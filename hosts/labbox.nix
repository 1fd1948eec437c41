# A lab machine: a borg backup job, and no SMART (its disks sit behind a RAID card).
{
  imports = [ ./common.nix ];
  networking.hostName = "labbox";

  services.cm-agent = {
    openFirewall = true;
    settings.collectors.smart = false;
    settings.intervals.storage = 60;
  };

  services.borgbackup.jobs.lab = {
    paths = [ "/home" ];
    repo = "borg@srv01:/srv/borg/labbox";
    encryption.mode = "none";
    startAt = "daily";
  };
}
