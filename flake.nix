{
  description = "cm-dashboard: a NixOS-native fleet monitor (cm-agent on every host, a terminal dashboard)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      packageFor = pkgs: pkgs.callPackage ./nix/package.nix { };
      # The example fleet: every host of hosts/ built from one declaration.
      exampleHosts = [
        "srv01"
        "cmbox"
        "labbox"
        "simonbox"
        "steambox"
      ];
    in
    {
      overlays.default = final: _prev: {
        cm-dashboard = packageFor final;
        cm-agent = (packageFor final).overrideAttrs (old: {
          meta = old.meta // {
            mainProgram = "cm-agent";
          };
        });
      };

      packages = forAllSystems (
        pkgs:
        let
          pkg = packageFor pkgs;
        in
        {
          cm-dashboard = pkg;
          cm-agent = pkg.overrideAttrs (old: {
            meta = old.meta // {
              mainProgram = "cm-agent";
            };
          });
          default = pkg;
        }
      );

      apps = forAllSystems (
        pkgs:
        let
          pkg = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        in
        {
          dashboard = {
            type = "app";
            program = "${pkg}/bin/cm-dashboard";
            meta.description = "The cm-dashboard terminal UI (this machine, or the fleet in its config)";
          };
          agent = {
            type = "app";
            program = "${pkg}/bin/cm-agent";
            meta.description = "The cm-agent daemon and its tools (snapshot, pki, check-config)";
          };
          default = self.apps.${pkgs.stdenv.hostPlatform.system}.dashboard;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = with pkgs; [
            cargo
            clippy
            rustfmt
            cargo-nextest
            tmux
            smartmontools
            nftables
            iproute2
            (python3.withPackages (p: [
              p.aioquic
              p.cbor2
            ]))
          ];
        };
      });

      # The modules default to this flake's packages for the host's platform;
      # they leave nixpkgs (and its overlays) alone.
      nixosModules = {
        agent =
          { lib, pkgs, ... }:
          {
            imports = [ ./modules/agent.nix ];
            services.cm-agent.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cm-agent;
          };
        dashboard =
          { lib, pkgs, ... }:
          {
            imports = [ ./modules/dashboard.nix ];
            programs.cm-dashboard.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cm-dashboard;
          };
        fleet = ./modules/fleet.nix;
        default = {
          imports = [
            self.nixosModules.agent
            self.nixosModules.dashboard
            self.nixosModules.fleet
          ];
        };
      };

      nixosConfigurations = lib.genAttrs exampleHosts (
        name:
        lib.nixosSystem {
          system = "x86_64-linux";
          modules = [
            self.nixosModules.default
            ./hosts/fleet.nix
            ./hosts/${name}.nix
          ];
        }
      );

      checks = forAllSystems (
        pkgs:
        let
          args = {
            inherit self pkgs;
          };
        in
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          vm-fleet = pkgs.testers.runNixOSTest (import ./checks/fleet.nix args);
          vm-foreign-ca = pkgs.testers.runNixOSTest (import ./checks/foreign-ca.nix args);
          vm-host-down = pkgs.testers.runNixOSTest (import ./checks/host-down.nix args);
          vm-alerts = pkgs.testers.runNixOSTest (import ./checks/alerts.nix args);
        }
      );
    };
}
