# The operator's machine: runs an agent like every host, and the dashboard.
{
  imports = [ ./common.nix ];
  networking.hostName = "cmbox";

  services.cm-agent.openFirewall = true;

  programs.cm-dashboard = {
    enable = true;
    tls = {
      ca = "/run/secrets/cm/ca.pem";
      cert = "/run/secrets/cm/operator.pem";
      key = "/run/secrets/cm/operator.key";
    };
  };
}
