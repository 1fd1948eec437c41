# A workstation.
{
  imports = [ ./common.nix ];
  networking.hostName = "simonbox";
  services.cm-agent.openFirewall = true;
}
