# Not a module: the declarations of alert rules and notification routes that
# services.cm-agent (modules/agent.nix) and cm.fleet (modules/fleet.nix)
# share, and how they become the agent's `[alerts]` and `[notify]` tables.
#
# Every value that the agent has a default for is `null` here, and a `null`
# is left out of the TOML: the defaults live once, in the agent (see
# docs/agent.example.toml), and a host that configures no alert gets the
# same file as before.
{ lib }:

let
  inherit (lib) mkOption types;

  # A span as the agent reads it: 90s, 10m, 48h, 30d, 2w, 2y.
  span = types.strMatching "[0-9]+(\\.[0-9]+)?(ms|s|m|min|h|d|w|y)";

  nullOr = t: description: mkOption {
    type = types.nullOr t;
    default = null;
    inherit description;
  };

  # Leaves out what is unset, and tables and lists left empty.
  present = lib.filterAttrs (_: v: v != null && v != { } && v != [ ]);

  rule = types.submodule {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Whether the agent gets this rule. `false` drops a rule the fleet declares from one host (this option is the module's, not a TOML key).";
      };
      series = nullOr types.str "The series name or glob the rule reads (`fs./srv.used_percent`, `fs.*.used_percent`; docs/SERIES.md).";
      warn = nullOr types.number "Warning threshold.";
      crit = nullOr types.number "Critical threshold.";
      clear = nullOr types.number "Resolves only below this (above it with `below`); `null`: the threshold that fired.";
      below = nullOr types.bool "Fire when the value is below `warn`/`crit` instead of above; `null`: the agent's default, `false`.";
      for = nullOr span "Pending this long before firing; `null`: the agent's default, `0s`.";
      keepFiringFor = nullOr span "Held this long after clearing (TOML `keep_firing_for`); `null`: the agent's default, `0s`.";
      match = nullOr (types.enum [
        "any"
        "all"
      ]) "Over the instances a glob matches: one alert per instance (`any`), or one while all of them are over (`all`); `null`: the agent's default, `any`.";
      route = nullOr types.str "The route its notifications go to, a name in `notify.routes`; `null`: the default route.";
      notify = nullOr types.bool "`false`: evaluated and shown, never notified; `null`: the agent's default, `true`.";
      severity = nullOr (types.enum [
        "warning"
        "critical"
      ]) "Severity of a condition, forecast or absence rule (they have no thresholds); `null`: the agent's default, `warning`.";
      condition = nullOr types.str "Combines other rules by name with `and`, `or`, `not` and parentheses (`scratch-full and not backup-running`).";
      fullWithin = nullOr span "Forecast rule (TOML `full_within`): fires when the forecast date of `series` is within this span.";
      absentFor = nullOr span "Absence rule (TOML `absent_for`): fires when no series matching `series` was reported for this span.";
      backup = nullOr types.str "Dead-man's switch: the backup jobs (name or glob, `restic-*`) watched with `noSuccessFor`.";
      noSuccessFor = nullOr span "Dead-man's switch (TOML `no_success_for`): fires when a job matching `backup` had no successful run for this span.";
    };
  };

  route = types.submodule {
    options = {
      urls = mkOption {
        type = types.nonEmptyListOf types.str;
        example = [
          "smtp://cm@mail.example.org:587/?to=ops@example.org&from=cm@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
          "ntfy://ntfy.example.org/cm-alerts"
        ];
        description = ''
          Where the route's notifications go, one URL per target (SMTP, ntfy...).
          These URLs are in the world-readable Nix store: a password or token
          is never in them, `password_file=` or `token_file=` names a file the
          agent reads when it sends. Give it the file with
          {option}`services.cm-agent.notify.credentials`.
        '';
      };
      repeat = nullOr span "How often a firing alert is notified again; `0s` never repeats; `null`: the agent's default, `4h`.";
      sendResolved = nullOr types.bool "Whether to notify when an alert resolves (TOML `send_resolved`); `null`: the agent's default, `true`.";
    };
  };
in
{
  inherit span;

  # The options under `<prefix>.alerts`; `where` says, in descriptions, who
  # takes them.
  alertsOptions = where: {
    builtin = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Whether the built-in status rules (failed unit, drive verdict, memory, filesystem, temperatures, backups) alert ${where}.";
      };
      for = nullOr span "How long a built-in status stays bad before its alert fires; `null`: the agent's default, `1m`.";
      keepFiringFor = nullOr span "How long a built-in alert is held after its status clears (TOML `keep_firing_for`); `null`: the agent's default, `2m`.";
      route = nullOr types.str "The route built-in alerts go to; `null`: the default route.";
    };
    flapWindow = nullOr span "The window in which an alert's state changes are counted (TOML `flap_window`); `null`: the agent's default, `10m`.";
    flapChanges = nullOr types.ints.positive "State changes within `flapWindow` from which an alert is flapping (TOML `flap_changes`); `null`: the agent's default, 4 (at least 2).";
    rules = mkOption {
      type = types.attrsOf rule;
      default = { };
      example = lib.literalExpression ''
        {
          scratch-full = {
            series = "fs./srv/scratch.used_percent";
            warn = 50;
            crit = 90;
            clear = 40;
            for = "30s";
          };
          backup-stale = {
            backup = "restic-*";
            noSuccessFor = "26h";
            severity = "critical";
          };
        }
      '';
      description = ''
        Alert rules ${where}, by name (the name is the rule's `name` in the
        TOML, and what a `condition` refers to). An attribute set rather than a
        list: names are unique by construction, and a rule the fleet declares
        can be changed or dropped on one host by its name.
      '';
    };
  };

  # The options under `<prefix>.notify`.
  notifyOptions = where: {
    defaultRoute = nullOr types.str "The route of alerts that name none (TOML `default_route`). Needed with more than one route: attribute sets have no order, so there is no \"first route\".";
    groupWait = nullOr span "How long alerts are gathered into one notification (TOML `group_wait`); `null`: the agent's default, `30s`.";
    routes = mkOption {
      type = types.attrsOf route;
      default = { };
      example = lib.literalExpression ''
        {
          ops.urls = [
            "smtp://cm@mail.example.org:587/?to=ops@example.org&from=cm@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
            "ntfy://ntfy.example.org/cm-alerts"
          ];
        }
      '';
      description = "Notification routes ${where}, by name.";
    };
    credentials = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        smtp-password = "/run/secrets/smtp-password";
      };
      description = ''
        Secret files the agent reads when it sends ${where}, by credential
        name. Each becomes systemd's `LoadCredential=NAME:PATH` on
        `cm-agent.service`, so that the agent (an unprivileged user) reads the
        file as `/run/credentials/cm-agent.service/NAME`, which is what a
        route's URL names: `password_file=/run/credentials/cm-agent.service/smtp-password`.
        PATH is read by systemd (as root) when the service starts, and must
        exist then: a missing file stops the agent from starting; a new one
        (a rotated password) needs a restart of `cm-agent.service`. PATH is a
        path to a secret (agenix, sops-nix), never in the Nix store.
      '';
    };
  };

  # `[alerts]` and `[notify]` as the agent reads them, from the options
  # above; empty tables are left out.
  toSettings =
    { alerts, notify }:
    let
      ruleToml =
        name: r:
        present {
          inherit name;
          inherit (r)
            series
            warn
            crit
            clear
            below
            for
            match
            route
            notify
            severity
            condition
            backup
            ;
          keep_firing_for = r.keepFiringFor;
          full_within = r.fullWithin;
          absent_for = r.absentFor;
          no_success_for = r.noSuccessFor;
        };
      routeToml =
        name: r:
        present {
          inherit name;
          inherit (r) urls repeat;
          send_resolved = r.sendResolved;
        };
      alertsToml = present {
        builtin = present {
          # true is the agent's default
          enable = if alerts.builtin.enable then null else false;
          inherit (alerts.builtin) for route;
          keep_firing_for = alerts.builtin.keepFiringFor;
        };
        flap_window = alerts.flapWindow;
        flap_changes = alerts.flapChanges;
        rules = lib.mapAttrsToList ruleToml (lib.filterAttrs (_: r: r.enable) alerts.rules);
      };
      notifyToml = present {
        default_route = notify.defaultRoute;
        group_wait = notify.groupWait;
        routes = lib.mapAttrsToList routeToml notify.routes;
      };
    in
    present {
      alerts = alertsToml;
      notify = notifyToml;
    };
}
