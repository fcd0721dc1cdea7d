// Fuzzes the configuration path: phoenix::config::LoadYamlString into a Bootstrap (YAML
// syntax, the proto3-JSON mapping, Duration/wrapper/Any conversion, the source map), and for
// a config that loads, phoenix::config::BuildSnapshot with a fresh StatsStore (clusters,
// listeners, route tables, filters) -- everything `phoenix --mode validate` does; no socket
// is bound (the server binds after the snapshot is built). Access log paths other than
// /dev/stdout and /dev/stderr are pointed at /dev/null so no file is created. A snapshot that
// builds is then asked to explain one request per listener (as /policy/explain does).
//
// Input: YAML text.
//
// Invariants checked:
//  - no exception escapes the loader; a failed load or build explains itself (non-empty
//    message);
//  - building the same bootstrap again, with the first snapshot as the previous one,
//    succeeds too and reuses every cluster (what a no-op reload does).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "phoenix/config/v1/policy_check.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/config/snapshot.h"
#include "source/config/yaml_loader.h"
#include "source/server/filter_registrations.h"
#include "source/server/policy_check.h"
#include "source/server/transport_socket_registrations.h"
#include "test/fuzz/fuzz_util.h"

namespace phoenix::fuzz {
namespace {

void NoFilesystemSideEffects(config::v1::Bootstrap& bootstrap) {
  for (auto& listener : *bootstrap.mutable_static_resources()->mutable_listeners()) {
    for (auto& log : *listener.mutable_http_connection_manager()->mutable_access_log()) {
      if (log.path() != "/dev/stdout" && log.path() != "/dev/stderr") log.set_path("/dev/null");
    }
  }
}

}  // namespace
}  // namespace phoenix::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace phoenix;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  config::SourceMap source_map("fuzz.yaml");
  config::v1::Bootstrap bootstrap;
  absl::Status loaded = config::LoadYamlString(yaml, &bootstrap, &source_map);
  if (!loaded.ok()) {
    FUZZ_CHECK(!loaded.message().empty());
    return 0;
  }
  fuzz::NoFilesystemSideEffects(bootstrap);

  StatsStore stats;
  server::RegisterBuiltinFilters();
  server::RegisterBuiltinTransportSockets();
  auto snapshot =
      config::BuildSnapshot(bootstrap, &source_map, stats, nullptr, 1, config::SourceKind::kStatic);
  if (!snapshot.ok()) {
    FUZZ_CHECK(!snapshot.status().message().empty());
    return 0;
  }
  const config::ConfigSnapshot& first = **snapshot;
  FUZZ_CHECK(first.listeners.size() ==
             static_cast<size_t>(bootstrap.static_resources().listeners_size()));

  auto reloaded =
      config::BuildSnapshot(bootstrap, nullptr, stats, &first, 2, config::SourceKind::kStatic);
  FUZZ_CHECK(reloaded.ok());
  FUZZ_CHECK((*reloaded)->clusters.size() == first.clusters.size());
  for (const auto& [name, cluster] : first.clusters) {
    auto it = (*reloaded)->clusters.find(name);
    FUZZ_CHECK(it != (*reloaded)->clusters.end() && it->second == cluster);
  }

  config::v1::PolicyCheckRequest request;
  request.set_path("/a/../b?x=1");
  request.set_host("example.com");
  (*request.mutable_headers())["user-agent"] = "fuzz";
  for (const auto& listener : first.listeners) {
    FUZZ_CHECK(listener.filter_chains != nullptr);
    const auto& hcm = listener.filter_chains->Select().connection_manager;
    FUZZ_CHECK(hcm != nullptr);
    server::PolicyOutcome outcome = server::ExplainRequest(*hcm, 1, request);
    FUZZ_CHECK(!outcome.Summary().empty());
  }
  return 0;
}
