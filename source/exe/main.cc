// phoenix: the sidecar proxy binary.
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "source/common/logging.h"
#include "source/common/stats.h"
#include "source/config/snapshot.h"
#include "source/server/child_process.h"
#include "source/server/filter_registrations.h"
#include "source/server/policy_check.h"
#include "source/server/server.h"
#include "source/server/transport_socket_registrations.h"

namespace {

// What a mistake on the command line prints.
constexpr const char* kUsage = "usage: phoenix -c FILE [options]   (phoenix --help for more)\n";

// --help: the manual page, short.
constexpr const char* kManual =
    "NAME\n"
    "    phoenix - L7 sidecar proxy (HTTP/1.1, HTTP/2, gRPC, TLS)\n"
    "\n"
    "SYNOPSIS\n"
    "    phoenix -c FILE [--mode serve|validate|check-policy] [--cases FILE]\n"
    "            [--concurrency N] [-l LEVEL]\n"
    "    phoenix --version | --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Serves the listeners, routes and clusters of one YAML bootstrap file (the proto3\n"
    "    JSON mapping of phoenix.config.v1.Bootstrap), or those a control plane pushes when\n"
    "    the file has dynamic_resources. Config errors name file:line:column and the field.\n"
    "\n"
    "OPTIONS\n"
    "    -c, --config-path FILE   the bootstrap config\n"
    "    --mode MODE              serve (the default); validate: load and check the config,\n"
    "                             print OK or the errors, exit 0/1, start nothing;\n"
    "                             check-policy: run the request cases of --cases FILE against\n"
    "                             the config's policies and routes, exit 1 on any mismatch\n"
    "    --cases FILE             cases for check-policy (phoenix.config.v1.PolicyCheckCases)\n"
    "    --concurrency N          worker threads (default: the number of cores)\n"
    "    -l, --log-level LEVEL    trace|debug|info|warn|error|off (default: info)\n"
    "    --version                print the version\n"
    "    -h, --help               this text\n"
    "\n"
    "SIGNALS\n"
    "    SIGHUP    re-read the config file; a bad file is refused, the config in force stays\n"
    "    SIGTERM   drain: stop accepting, finish in-flight requests (drain_timeout), exit 0;\n"
    "              a second SIGTERM or SIGINT exits at once\n"
    "    SIGUSR1   reopen every log file at its path (after an external logrotate)\n"
    "\n"
    "ADMIN (admin.address, 127.0.0.1:9901 by default)\n"
    "    /ready /stats /stats/prometheus /clusters /config_dump /server_info /apps\n"
    "    POST /reload /healthcheck/fail /healthcheck/ok /certs/reload\n"
    "\n"
    "FILES\n"
    "    /etc/phoenix/phoenix.yaml          the packaged service's config\n"
    "    /usr/share/phoenix/examples/       example configs\n"
    "    /var/log/phoenix/                  the packaged service's access logs\n"
    "\n"
    "ENVIRONMENT\n"
    "    NOTIFY_SOCKET   set by systemd (Type=notify): phoenix reports READY=1 once it\n"
    "                    serves, RELOADING=1 around SIGHUP and STOPPING=1 when it drains\n"
    "\n"
    "EXIT STATUS\n"
    "    0 served and drained, or the config is valid; 1 the config or a check failed;\n"
    "    2 a command-line mistake\n"
    "\n"
    "SEE ALSO\n"
    "    phoenix-cp(1), phoenixctl(1), systemctl(1)\n";

int Validate(const std::string& path) {
  phoenix::config::SourceMap source_map(path);
  auto bootstrap = phoenix::config::LoadBootstrapFile(path, &source_map);
  if (!bootstrap.ok()) {
    std::fprintf(stderr, "%s\n", std::string(bootstrap.status().message()).c_str());
    return 1;
  }
  phoenix::StatsStore stats;
  phoenix::server::RegisterBuiltinFilters();
  phoenix::server::RegisterBuiltinTransportSockets();
  // With a control plane, listeners and clusters arrive later and one type at a time.
  auto snapshot = phoenix::config::BuildSnapshot(*bootstrap, &source_map, stats, nullptr, 1,
                                                 bootstrap->has_dynamic_resources()
                                                     ? phoenix::config::SourceKind::kDynamic
                                                     : phoenix::config::SourceKind::kStatic);
  if (!snapshot.ok()) {
    std::fprintf(stderr, "%s\n", std::string(snapshot.status().message()).c_str());
    return 1;
  }
  std::printf("OK: %s: %d listener(s), %zu cluster(s)\n", path.c_str(),
              bootstrap->static_resources().listeners_size(), (*snapshot)->clusters.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A supervised app's instance starts as phoenix itself, to die with phoenix (never returns).
  phoenix::server::RunExecTrampolineIfAsked(argc, argv);
  phoenix::server::Options options;
  std::string cases_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "phoenix: %s needs a value\n%s", name, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "-c" || arg == "--config-path") {
      options.config_path = value("--config-path");
    } else if (arg == "--mode") {
      options.mode = value("--mode");
      if (options.mode != "serve" && options.mode != "validate" && options.mode != "check-policy") {
        std::fprintf(stderr, "phoenix: unknown mode '%s' (serve, validate, check-policy)\n",
                     options.mode.c_str());
        return 2;
      }
    } else if (arg == "--cases") {
      cases_path = value("--cases");
    } else if (arg == "--concurrency") {
      std::string v = value("--concurrency");
      if (!absl::SimpleAtoi(v, &options.concurrency) || options.concurrency < 1 ||
          options.concurrency > 256) {
        std::fprintf(stderr, "phoenix: --concurrency wants 1-256, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (arg == "-l" || arg == "--log-level") {
      std::string v = value("--log-level");
      if (!phoenix::ParseLogLevel(v, &options.log_level)) {
        std::fprintf(stderr, "phoenix: unknown log level '%s'\n", v.c_str());
        return 2;
      }
    } else if (arg == "--version") {
      std::printf("phoenix %s\n", PHOENIX_VERSION);
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", kManual);
      return 0;
    } else {
      std::fprintf(stderr, "phoenix: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (options.config_path.empty()) {
    std::fprintf(stderr, "phoenix: -c FILE is required\n%s", kUsage);
    return 2;
  }
  phoenix::SetLogLevel(options.log_level);
  if (options.mode == "validate") return Validate(options.config_path);
  if (options.mode == "check-policy") {
    if (cases_path.empty()) {
      std::fprintf(stderr, "phoenix: check-policy needs --cases FILE\n");
      return 2;
    }
    return phoenix::server::RunPolicyCheck(options.config_path, cases_path);
  }
  phoenix::server::Server server(options);
  return server.Run();
}
