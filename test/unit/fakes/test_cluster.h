#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/config/yaml_loader.h"
#include "source/upstream/cluster.h"

namespace phoenix::fakes {

// A cluster "c" with one host, 127.0.0.1:`port`, plus `extra` YAML fields of Cluster: the pool
// tests' cluster. Null (and a test failure) if the YAML or the cluster is invalid.
inline std::shared_ptr<const upstream::ClusterInfo> LoopbackCluster(StatsStore& stats,
                                                                    const std::string& extra,
                                                                    uint16_t port) {
  std::string yaml =
      absl::StrCat("name: c\n", extra,
                   "\nload_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
                   "{socket_address: {address: 127.0.0.1, port_value: ",
                   port, "}}}}]}]}\n");
  config::v1::Cluster proto;
  absl::Status status = config::LoadYamlString(yaml, &proto, nullptr);
  EXPECT_TRUE(status.ok()) << status;
  if (!status.ok()) return nullptr;
  config::ConfigErrors errors;
  auto cluster = upstream::ClusterInfo::Create(proto, stats, "cluster", errors);
  EXPECT_NE(cluster, nullptr) << errors.ToStatus();
  return cluster;
}

}  // namespace phoenix::fakes
