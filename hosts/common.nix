# What every example host needs to evaluate as a machine; a real host has its
# own hardware-configuration.nix instead.
{ lib, ... }:
{
  boot.loader.grub.device = lib.mkDefault "nodev";
  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  system.stateVersion = "25.11";
}
