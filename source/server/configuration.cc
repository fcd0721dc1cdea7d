#include "source/server/configuration.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "source/common/strings.h"
#include "source/config/yaml_loader.h"
#include "source/network/tcp_connection.h"
#include "source/router/router_filter.h"
#include "source/server/filter_registrations.h"
#include "source/server/transport_socket_registrations.h"

namespace phoenix::server {
namespace {

std::chrono::milliseconds ToMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
}

std::shared_ptr<const http::ConnectionManagerConfig> BuildConnectionManager(
    const config::v1::Listener& listener, const std::string& path, StatsStore& stats,
    const upstream::ClusterMap& clusters, config::ConfigErrors& errors) {
  const auto& proto = listener.http_connection_manager();
  std::string hpath = path + ".http_connection_manager";
  auto hcm = std::make_shared<http::ConnectionManagerConfig>();
  hcm->stat_prefix = proto.stat_prefix().empty() ? listener.name() : proto.stat_prefix();
  if (proto.max_request_headers_kb() != 0) {
    if (proto.max_request_headers_kb() > 8192) {
      errors.Add(hpath + ".max_request_headers_kb", "must be at most 8192");
    }
    hcm->limits.max_request_headers_bytes = proto.max_request_headers_kb() * 1024;
  }
  if (proto.max_headers_count() != 0) hcm->limits.max_headers_count = proto.max_headers_count();
  if (proto.max_request_uri_kb() != 0) {
    hcm->limits.max_request_uri_bytes = proto.max_request_uri_kb() * 1024;
  }
  if (proto.has_request_headers_timeout()) {
    hcm->request_headers_timeout = ToMs(proto.request_headers_timeout());
  }
  if (proto.has_idle_timeout()) hcm->idle_timeout = ToMs(proto.idle_timeout());
  if (hcm->request_headers_timeout.count() <= 0) {
    errors.Add(hpath + ".request_headers_timeout", "must be positive");
  }
  if (hcm->idle_timeout.count() <= 0) errors.Add(hpath + ".idle_timeout", "must be positive");
  hcm->xff_num_trusted_hops = proto.xff_num_trusted_hops();
  hcm->generate_request_id = !proto.skip_request_id_generation();
  hcm->path_normalization.normalize = !proto.has_normalize_path() || proto.normalize_path();
  hcm->path_normalization.merge_slashes = !proto.has_merge_slashes() || proto.merge_slashes();
  hcm->path_normalization.reject_escaped_slashes =
      proto.path_with_escaped_slashes_action() == config::v1::HttpConnectionManager::REJECT_REQUEST;
  if (listener.per_connection_buffer_limit_bytes() != 0) {
    hcm->buffer_limit = listener.per_connection_buffer_limit_bytes();
  }
  auto route_table =
      std::make_shared<router::RouteTable>(proto.route_config(), hpath + ".route_config", errors);
  hcm->route_config = route_table;
  for (const auto& [field_path, cluster] : route_table->ReferencedClusters()) {
    if (clusters.find(cluster) == clusters.end()) {
      errors.Add(field_path, absl::StrCat("unknown cluster '", cluster, "'"));
    }
  }
  const http::FilterFactoryContext filter_context{stats, hcm->stat_prefix};
  if (proto.http_filters().empty()) {
    hcm->filters.push_back(http::FilterRegistry::Find(router::RouterFilter::kName)
                               ->builder(google::protobuf::Any(), filter_context, hpath, errors));
  }
  for (int i = 0; i < proto.http_filters_size(); ++i) {
    const auto& filter = proto.http_filters(i);
    std::string fpath = absl::StrCat(hpath, ".http_filters[", i, "]");
    const auto* entry = http::FilterRegistry::Find(filter.name());
    if (entry == nullptr) {
      std::string message = absl::StrCat("unknown filter '", filter.name(), "'");
      std::string suggestion = config::NearestName(filter.name(), http::FilterRegistry::Names());
      if (!suggestion.empty()) absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
      errors.Add(fpath + ".name", message);
      continue;
    }
    bool last = i == proto.http_filters_size() - 1;
    if (entry->terminal != last) {
      errors.Add(fpath + ".name", entry->terminal ? "the router must be the last filter"
                                                  : "the last filter must be the router");
    }
    if (auto factory = entry->builder(filter.typed_config(), filter_context,
                                      fpath + ".typed_config", errors)) {
      hcm->filters.push_back(std::move(factory));
    }
  }
  for (int i = 0; i < proto.access_log_size(); ++i) {
    const auto& log = proto.access_log(i);
    std::string lpath = absl::StrCat(hpath, ".access_log[", i, "]");
    if (!log.format().empty())
      errors.Add(lpath + ".format", "custom formats are not supported yet");
    auto file = AccessLogFile::Open(log.path().empty() ? "/dev/stdout" : log.path());
    if (!file.ok()) {
      errors.Add(lpath + ".path", StdView(file.status().message()));
      continue;
    }
    hcm->access_logs.push_back(*std::move(file));
  }
  hcm->stats = std::make_unique<http::ConnectionManagerStats>(stats, hcm->stat_prefix);
  return hcm;
}

}  // namespace

absl::StatusOr<config::v1::Bootstrap> LoadBootstrapFile(const std::string& path,
                                                        config::SourceMap* source_map) {
  config::v1::Bootstrap bootstrap;
  absl::Status status = config::LoadYamlFile(path, &bootstrap, source_map);
  if (!status.ok()) return status;
  return bootstrap;
}

absl::StatusOr<std::shared_ptr<ConfigSnapshot>> BuildSnapshot(
    const config::v1::Bootstrap& bootstrap, const config::SourceMap* source_map, StatsStore& stats,
    const ConfigSnapshot* previous, uint64_t version) {
  RegisterBuiltinFilters();
  RegisterBuiltinTransportSockets();

  config::ConfigErrors errors(source_map);
  auto snapshot = std::make_shared<ConfigSnapshot>();
  snapshot->version = version;
  snapshot->bootstrap = bootstrap;
  if (bootstrap.has_drain_timeout()) snapshot->drain_timeout = ToMs(bootstrap.drain_timeout());

  const auto& admin = bootstrap.admin().address().socket_address();
  std::string admin_ip = admin.address().empty() ? "127.0.0.1" : admin.address();
  uint32_t admin_port = bootstrap.admin().has_address() ? admin.port_value() : 9901;
  if (!upstream::ParseSocketAddress(admin_ip, admin_port, &snapshot->admin_address)) {
    errors.Add("admin.address.socket_address", "invalid admin address");
  }

  const auto& resources = bootstrap.static_resources();
  std::set<std::string> cluster_names;
  for (int i = 0; i < resources.clusters_size(); ++i) {
    const auto& proto = resources.clusters(i);
    std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    if (!proto.name().empty() && !cluster_names.insert(proto.name()).second) {
      errors.Add(path + ".name", absl::StrCat("duplicate cluster name '", proto.name(), "'"));
      continue;
    }
    if (previous != nullptr) {
      auto it = previous->clusters.find(proto.name());
      if (it != previous->clusters.end() &&
          google::protobuf::util::MessageDifferencer::Equals(it->second->proto(), proto)) {
        snapshot->clusters[proto.name()] = it->second;
        continue;
      }
    }
    if (auto info = upstream::ClusterInfo::Create(proto, stats, path, errors)) {
      snapshot->clusters[proto.name()] = std::move(info);
    }
  }

  std::set<std::string> listener_names, listener_addresses;
  if (resources.listeners().empty()) {
    errors.Add("static_resources.listeners", "at least one listener is required");
  }
  for (int i = 0; i < resources.listeners_size(); ++i) {
    const auto& proto = resources.listeners(i);
    std::string path = absl::StrCat("static_resources.listeners[", i, "]");
    ListenerConfig listener;
    listener.name = proto.name();
    if (proto.name().empty()) {
      errors.Add(path + ".name", "a listener needs a name");
    } else if (!listener_names.insert(proto.name()).second) {
      errors.Add(path + ".name", absl::StrCat("duplicate listener name '", proto.name(), "'"));
    }
    const auto& socket = proto.address().socket_address();
    if (!upstream::ParseSocketAddress(socket.address(), socket.port_value(), &listener.sockaddr)) {
      errors.Add(path + ".address.socket_address.address",
                 absl::StrCat("'", socket.address(), "' is not an IP address"));
    } else if (socket.port_value() == 0 || socket.port_value() > 65535) {
      errors.Add(path + ".address.socket_address.port_value", "port must be 1-65535");
    } else {
      listener.address = network::FormatAddress(reinterpret_cast<sockaddr*>(&listener.sockaddr));
      if (!listener_addresses.insert(listener.address).second) {
        errors.Add(path + ".address", absl::StrCat("address ", listener.address, " is used twice"));
      }
    }
    listener.connection_manager =
        BuildConnectionManager(proto, path, stats, snapshot->clusters, errors);
    snapshot->listeners.push_back(std::move(listener));
  }
  if (!errors.empty()) return errors.ToStatus();
  return snapshot;
}

}  // namespace phoenix::server
