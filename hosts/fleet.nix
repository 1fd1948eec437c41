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

  # Alerts go to one mailbox and one ntfy topic; every agent sends them
  # itself, with no dashboard open. The SMTP password is a file each host
  # has (like its certificate), handed to the agent as a credential.
  cm.fleet.notify = {
    routes.ops.urls = [
      "smtp://cm@mail.example.org:587/?to=ops@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
      "ntfy://ntfy.example.org/cm-alerts"
    ];
    credentials.smtp-password = "/run/secrets/cm/smtp-password";
  };
  # Beyond the built-in status alerts: a filesystem forecast to fill within two weeks.
  cm.fleet.alerts.rules.disk-fills-soon = {
    series = "fs.*.used_percent";
    fullWithin = "14d";
  };
}
