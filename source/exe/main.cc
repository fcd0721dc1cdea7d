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

constexpr const char* kUsage =
    "usage: phoenix -c FILE [options]\n"
    "  -c, --config-path FILE   YAML bootstrap config (proto3 JSON mapping of\n"
    "                           phoenix.config.v1.Bootstrap)\n"
    "  --mode serve|validate|check-policy\n"
    "                           validate: load and check the config, print OK or the\n"
    "                           errors, exit 0/1; start nothing (default: serve)\n"
    "                           check-policy: run the request cases of --cases FILE\n"
    "                           against the config's policies and routes; exit 1 on any\n"
    "                           mismatch\n"
    "  --cases FILE             cases for check-policy (phoenix.config.v1.PolicyCheckCases)\n"
    "  --concurrency N          worker threads (default: number of cores)\n"
    "  -l, --log-level LEVEL    trace|debug|info|warn|error|off (default: info)\n"
    "  --version                print the version\n"
    "  -h, --help               this text\n";

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
      std::printf("%s", kUsage);
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
