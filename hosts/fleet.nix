# The example fleet, declared once. Every host in nixosConfigurations imports
# this file; each agent and the dashboard take their settings from it.
{
  cm.fleet.hosts = {
    srv01 = {
      address = "192.168.1.10";
      role = "server";
    };
    cmbox = {
      address = "192.168.1.11";
      role = "server";
    };
    labbox = {
      address = "192.168.1.30";
      role = "lab";
    };
    simonbox = {
      address = "192.168.1.20";
      role = "workstation";
    };
    steambox = {
      address = "192.168.1.21";
      role = "workstation";
    };
  };
}
