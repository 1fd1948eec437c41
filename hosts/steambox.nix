# A gaming workstation with an NVIDIA card.
{ config, ... }:
{
  imports = [ ./common.nix ];
  networking.hostName = "steambox";

  services.cm-agent = {
    openFirewall = true;
    settings.collectors.nvidia = true;
  };

  nixpkgs.config.allowUnfree = true;
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.nvidia.open = true;
  hardware.nvidia.package = config.boot.kernelPackages.nvidiaPackages.stable;
}
