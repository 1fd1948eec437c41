# A client with a certificate from another CA is refused, and the agent says so.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
  foreign = common.pki {
    name = "another fleet";
    certs = [
      {
        name = "intruder";
        role = "operator";
      }
    ];
  };
  foreignConfig = pkgs.writeText "intruder.toml" ''
    [tls]
    ca = "${common.fleetPki}/ca.pem"
    cert = "${foreign}/intruder.pem"
    key = "/run/intruder.key"

    [[hosts]]
    name = "agent1"
  '';
in
{
  name = "cm-foreign-ca";

  # The modules add this flake's overlay to nixpkgs.
  node.pkgsReadOnly = false;

  nodes = {
    agent1 = common.agentNode "agent1" { };
    intruder = {
      imports = [ self.nixosModules.default ];
      environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
    };
  };

  testScript = ''
    start_all()
    agent1.wait_for_unit("cm-agent.service")
    agent1.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")
    intruder.wait_for_unit("multi-user.target")
    intruder.succeed("install -m 0600 ${foreign}/intruder.key /run/intruder.key")

    with subtest("refused on both sides"):
        intruder.fail("cm-dashboard --once --json --wait 5 --config ${foreignConfig}")
        agent1.wait_until_succeeds("journalctl -u cm-agent | grep -q 'refused'")
  '';
}
