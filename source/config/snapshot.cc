#include "source/config/snapshot.h"

#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "source/common/duration.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/config/grpc_channel_credentials.h"
#include "source/config/log_rotation.h"
#include "source/config/yaml_loader.h"
#include "source/http/http1_codec.h"
#include "source/http/http2_codec.h"
#include "source/network/tcp_connection.h"
#include "source/network/transport_socket_registry.h"
#include "source/router/router_filter.h"

namespace phoenix::config {
namespace {

constexpr char kDefaultChainName[] = "default_filter_chain";

// What building a listener needs from the rest of its snapshot, and where errors go.
struct ListenerContext {
  StatsStore& stats;
  const upstream::ClusterMap& clusters;
  const std::set<std::string>& declared_clusters;  // Every cluster name, valid or not.
  const RouteConfigMap& route_configs;
  const network::SecretMap& secrets;
  SourceKind kind;
  ConfigErrors& errors;
  std::vector<std::string>& warnings;
};

// Whether binding both would clash: the same port of the same family, on the same IP or with
// either on the wildcard address.
bool SameSocket(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port &&
           (x.sin_addr.s_addr == y.sin_addr.s_addr || x.sin_addr.s_addr == INADDR_ANY ||
            y.sin_addr.s_addr == INADDR_ANY);
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
  return x.sin6_port == y.sin6_port &&
         (IN6_ARE_ADDR_EQUAL(&x.sin6_addr, &y.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&x.sin6_addr) ||
          IN6_IS_ADDR_UNSPECIFIED(&y.sin6_addr));
}

// Reports each cluster `routes` sends to that is not declared (`declared`: every cluster
// name in the config, valid or not, so that one bad cluster is one error, not one per route
// to it); from a dynamic source it may still arrive (until then its requests get 503, flag
// NC).
void CheckClusterReferences(const router::RouteTable& routes, const std::set<std::string>& declared,
                            SourceKind kind, ConfigErrors& errors) {
  if (kind == SourceKind::kDynamic) return;
  for (const auto& [field_path, cluster] : routes.ReferencedClusters()) {
    if (declared.find(cluster) == declared.end()) {
      errors.Add(field_path, absl::StrCat("unknown cluster '", cluster, "'"));
    }
  }
}

// The routes of the connection manager `proto` (at `hpath`): inline, or the route
// configuration it names.
http::RouteConfigConstSharedPtr ResolveRoutes(const v1::HttpConnectionManager& proto,
                                              const std::string& hpath,
                                              const ListenerContext& context) {
  if (!proto.has_rds()) {
    auto routes = std::make_shared<router::RouteTable>(proto.route_config(),
                                                       hpath + ".route_config", context.errors);
    CheckClusterReferences(*routes, context.declared_clusters, context.kind, context.errors);
    return routes;
  }
  const std::string& name = proto.rds().route_config_name();
  auto it = context.route_configs.find(name);
  if (it != context.route_configs.end()) return it->second;
  if (context.kind == SourceKind::kDynamic) {
    context.warnings.push_back(absl::StrCat(hpath, ": route configuration '", name,
                                            "' has not arrived; no routes (404) until it does"));
    return std::make_shared<router::RouteTable>(v1::RouteConfiguration(), hpath, context.errors);
  }
  std::string message = absl::StrCat("unknown route configuration '", name, "'");
  std::vector<std::string> names;
  for (const auto& [known, routes] : context.route_configs) names.push_back(known);
  std::string suggestion = NearestName(name, names);
  if (!suggestion.empty()) absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
  context.errors.Add(hpath + ".rds.route_config_name", message);
  return nullptr;
}

// The codecs a connection manager serves its connections with (codec_type).
std::shared_ptr<const http::ServerCodecFactory> BuildCodecFactory(
    const v1::HttpConnectionManager& proto, const http::CodecLimits& limits, size_t buffer_limit,
    StatsStore& stats, const std::string& stat_prefix, const std::string& hpath,
    ConfigErrors& errors) {
  auto http1 = std::make_shared<http::Http1ServerCodecFactory>(limits);
  if (proto.codec_type() == v1::HttpConnectionManager::HTTP1) {
    if (proto.has_http2_protocol_options()) {
      errors.Add(hpath + ".http2_protocol_options", "codec_type HTTP1 speaks no HTTP/2");
    }
    return http1;
  }
  auto http2 = std::make_shared<http::Http2ServerCodecFactory>(
      limits,
      http::Http2OptionsFromProto(proto.http2_protocol_options(), buffer_limit,
                                  hpath + ".http2_protocol_options", errors),
      stats, stat_prefix);
  if (proto.codec_type() == v1::HttpConnectionManager::HTTP2) return http2;
  return std::make_shared<http::DetectingServerCodecFactory>(std::move(http1), std::move(http2));
}

// One access_log entry of a connection manager at `path`: its file (shared per path) and
// its line format; nullopt after adding errors.
std::optional<http::ConnectionManagerConfig::AccessLog> BuildAccessLog(const v1::AccessLog& proto,
                                                                       const std::string& path,
                                                                       ConfigErrors& errors) {
  http::ConnectionManagerConfig::AccessLog log;
  if (!proto.format().empty() && !proto.json_format().empty()) {
    errors.Add(path + ".json_format", "set either format or json_format, not both");
    return std::nullopt;
  }
  if (!proto.format().empty()) {
    auto formatter = http::ParseTextAccessLogFormat(proto.format());
    if (!formatter.ok()) {
      errors.Add(path + ".format", StdView(formatter.status().message()));
      return std::nullopt;
    }
    log.formatter = *std::move(formatter);
  } else if (!proto.json_format().empty()) {
    std::map<std::string, std::string> fields(proto.json_format().begin(),
                                              proto.json_format().end());
    auto formatter = http::ParseJsonAccessLogFormat(fields);
    if (!formatter.ok()) {
      errors.Add(path + ".json_format", StdView(formatter.status().message()));
      return std::nullopt;
    }
    log.formatter = *std::move(formatter);
  } else {
    log.formatter = http::DefaultAccessLogFormatter();
  }
  auto file = AccessLogFile::Open(proto.path().empty() ? "/dev/stdout" : proto.path(),
                                  ToRotationPolicy(proto.rotation()));
  if (!file.ok()) {
    errors.Add(path + ".path", StdView(file.status().message()));
    return std::nullopt;
  }
  log.file = *std::move(file);
  return log;
}

// The connection manager `proto` (at `hpath`) of one of `listener`'s filter chains.
std::shared_ptr<const http::ConnectionManagerConfig> BuildConnectionManager(
    const v1::HttpConnectionManager& proto, const v1::Listener& listener, const std::string& hpath,
    const ListenerContext& context) {
  StatsStore& stats = context.stats;
  ConfigErrors& errors = context.errors;
  auto hcm = std::make_shared<http::ConnectionManagerConfig>();
  hcm->stat_prefix = proto.stat_prefix().empty() ? listener.name() : proto.stat_prefix();
  http::CodecLimits limits;
  if (proto.max_request_headers_kb() != 0) {
    if (proto.max_request_headers_kb() > 8192) {
      errors.Add(hpath + ".max_request_headers_kb", "must be at most 8192");
    }
    limits.max_request_headers_bytes = proto.max_request_headers_kb() * 1024;
  }
  if (proto.max_headers_count() != 0) limits.max_headers_count = proto.max_headers_count();
  if (proto.max_request_uri_kb() != 0) {
    limits.max_request_uri_bytes = proto.max_request_uri_kb() * 1024;
  }
  if (proto.has_request_headers_timeout()) {
    hcm->request_headers_timeout = ToMilliseconds(proto.request_headers_timeout());
  }
  if (proto.has_idle_timeout()) hcm->idle_timeout = ToMilliseconds(proto.idle_timeout());
  if (proto.has_stream_idle_timeout()) {
    hcm->stream_idle_timeout = ToMilliseconds(proto.stream_idle_timeout());
    if (hcm->stream_idle_timeout.count() < 0) {
      errors.Add(hpath + ".stream_idle_timeout", "must not be negative");
    }
  }
  if (hcm->request_headers_timeout.count() <= 0) {
    errors.Add(hpath + ".request_headers_timeout", "must be positive");
  }
  if (hcm->idle_timeout.count() <= 0) errors.Add(hpath + ".idle_timeout", "must be positive");
  for (int i = 0; i < proto.upgrade_configs_size(); ++i) {
    const auto& upgrade = proto.upgrade_configs(i);
    std::string type = absl::AsciiStrToLower(upgrade.upgrade_type());
    if (type != "websocket") {
      errors.Add(absl::StrCat(hpath, ".upgrade_configs[", i, "].upgrade_type"),
                 "only websocket upgrades are supported");
    }
    if (!upgrade.has_enabled() || upgrade.enabled()) hcm->upgrade_types.push_back(type);
  }
  hcm->xff_num_trusted_hops = proto.xff_num_trusted_hops();
  if (proto.has_forward_client_cert_details()) {
    hcm->forward_client_cert =
        static_cast<http::ForwardClientCert>(proto.forward_client_cert_details());
  }
  hcm->generate_request_id = !proto.skip_request_id_generation();
  hcm->path_normalization.normalize = !proto.has_normalize_path() || proto.normalize_path();
  hcm->path_normalization.merge_slashes = !proto.has_merge_slashes() || proto.merge_slashes();
  hcm->path_normalization.reject_escaped_slashes =
      proto.path_with_escaped_slashes_action() == v1::HttpConnectionManager::REJECT_REQUEST;
  if (listener.per_connection_buffer_limit_bytes() != 0) {
    hcm->buffer_limit = listener.per_connection_buffer_limit_bytes();
  }
  hcm->codec_factory =
      BuildCodecFactory(proto, limits, hcm->buffer_limit, stats, hcm->stat_prefix, hpath, errors);
  hcm->route_config = ResolveRoutes(proto, hpath, context);
  const http::FilterFactoryContext filter_context{stats, hcm->stat_prefix};
  // No filters: just the router.
  google::protobuf::RepeatedPtrField<v1::HttpFilter> router_only;
  router_only.Add()->set_name(router::RouterFilter::kName);
  const auto& http_filters = proto.http_filters().empty() ? router_only : proto.http_filters();
  for (int i = 0; i < http_filters.size(); ++i) {
    const auto& filter = http_filters[i];
    std::string fpath = absl::StrCat(hpath, ".http_filters[", i, "]");
    const auto* entry = http::FilterRegistry::Find(filter.name());
    if (entry == nullptr) {
      std::string message = absl::StrCat("unknown filter '", filter.name(), "'");
      std::string suggestion = NearestName(filter.name(), http::FilterRegistry::Names());
      if (!suggestion.empty()) absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
      errors.Add(fpath + ".name", message);
      continue;
    }
    bool last = i == http_filters.size() - 1;
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
    if (auto log = BuildAccessLog(proto.access_log(i), absl::StrCat(hpath, ".access_log[", i, "]"),
                                  errors)) {
      for (const std::string& name : log->formatter->response_headers()) {
        auto& names = hcm->access_log_response_headers;
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
      hcm->access_logs.push_back(*std::move(log));
    }
  }
  hcm->stats = std::make_unique<http::ConnectionManagerStats>(stats, hcm->stat_prefix);
  return hcm;
}

// One of `listener`'s filter chains, configured at `path`; `name` unless it names itself.
FilterChain BuildFilterChain(const v1::FilterChain& proto, const v1::Listener& listener,
                             const std::string& path, const std::string& name,
                             const ListenerContext& context) {
  FilterChain chain;
  chain.name = proto.name().empty() ? name : proto.name();
  network::TransportSocketContext transport_context{
      network::TransportSocketSide::kDownstream, &context.secrets, &context.stats, listener.name()};
  chain.transport_socket_factory = network::TransportSocketRegistry::Build(
      proto.transport_socket(), transport_context, path + ".transport_socket", context.errors);
  chain.connection_manager = BuildConnectionManager(proto.http_connection_manager(), listener,
                                                    path + ".http_connection_manager", context);
  return chain;
}

// A filter_chain_match (at `path`) is only usable with what `chain`'s transport can tell.
void CheckFilterChainMatch(const v1::FilterChainMatch& match, const FilterChain& chain,
                           const std::string& path, ConfigErrors& errors) {
  if (chain.transport_socket_factory == nullptr ||
      chain.transport_socket_factory->ImplementsSecureTransport()) {
    return;
  }
  // The server name and the ALPN list come from the TLS ClientHello: raw TCP has neither.
  if (!match.server_names().empty()) {
    errors.Add(path + ".server_names", "matching on SNI/ALPN needs a TLS transport socket");
  }
  if (!match.application_protocols().empty()) {
    errors.Add(path + ".application_protocols",
               "matching on SNI/ALPN needs a TLS transport socket");
  }
}

// The filter chains of `listener` (at `path`): its filter_chains and default_filter_chain, or
// the http_connection_manager shorthand for a default chain over raw TCP.
std::shared_ptr<const FilterChainManager> BuildFilterChains(const v1::Listener& listener,
                                                            const std::string& path,
                                                            const ListenerContext& context) {
  ConfigErrors& errors = context.errors;
  if (listener.filter_chains().empty() && !listener.has_default_filter_chain()) {
    v1::FilterChain shorthand;
    *shorthand.mutable_http_connection_manager() = listener.http_connection_manager();
    std::vector<FilterChain> chains;
    chains.push_back(BuildFilterChain(shorthand, listener, path, kDefaultChainName, context));
    return std::make_shared<FilterChainManager>(std::move(chains), nullptr);
  }
  if (listener.has_http_connection_manager()) {
    errors.Add(path + ".http_connection_manager",
               "give either http_connection_manager or filter_chains/default_filter_chain, "
               "not both");
    return nullptr;
  }
  std::vector<FilterChain> chains;
  std::unique_ptr<FilterChain> default_chain;
  std::set<std::string> names;  // Workers key per-chain state on them.
  auto add = [&](const v1::FilterChain& proto, const std::string& name) {
    std::string chain_path = absl::StrCat(path, ".", name);
    FilterChain chain = BuildFilterChain(proto, listener, chain_path, name, context);
    if (!names.insert(chain.name).second) {
      errors.Add(chain_path + ".name",
                 absl::StrCat("duplicate filter chain name '", chain.name, "'"));
    }
    return std::make_pair(std::move(chain), chain_path);
  };
  for (int i = 0; i < listener.filter_chains_size(); ++i) {
    const auto& proto = listener.filter_chains(i);
    auto [chain, chain_path] = add(proto, absl::StrCat("filter_chains[", i, "]"));
    const auto& match = proto.filter_chain_match();
    CheckFilterChainMatch(match, chain, chain_path + ".filter_chain_match", errors);
    chain.server_names.assign(match.server_names().begin(), match.server_names().end());
    chain.application_protocols.assign(match.application_protocols().begin(),
                                       match.application_protocols().end());
    chains.push_back(std::move(chain));
    for (int j = 0; j < i; ++j) {
      if (google::protobuf::util::MessageDifferencer::Equals(
              listener.filter_chains(j).filter_chain_match(), proto.filter_chain_match())) {
        errors.Add(chain_path + ".filter_chain_match",
                   absl::StrCat("same filter_chain_match as filter_chains[", j,
                                "]: no connection could tell them apart"));
        break;
      }
    }
  }
  if (listener.has_default_filter_chain()) {
    const auto& proto = listener.default_filter_chain();
    auto [chain, chain_path] = add(proto, kDefaultChainName);
    default_chain = std::make_unique<FilterChain>(std::move(chain));
    const auto& match = proto.filter_chain_match();
    if (!match.server_names().empty() || !match.application_protocols().empty()) {
      errors.Add(chain_path + ".filter_chain_match",
                 "the default chain serves every connection no other chain matches: it takes no "
                 "filter_chain_match");
    }
  }
  return std::make_shared<FilterChainManager>(std::move(chains), std::move(default_chain));
}

void ValidateWorkloadIdentity(const v1::Bootstrap& bootstrap, ConfigErrors& errors) {
  const auto& identity = bootstrap.workload_identity();
  const std::string path = "workload_identity";
  if (!bootstrap.has_dynamic_resources()) {
    errors.Add(path,
               "needs dynamic_resources.ads_config: phoenix-cp issues the certificate over it");
  }
  if (bootstrap.node().id().empty()) {
    errors.Add("node.id", "a workload identity is issued to a node: give node.id");
  }
  const std::string& id = identity.spiffe_id();
  if (!id.empty() && (!id.starts_with("spiffe://") || id.find('/', 9) == std::string::npos ||
                      id.find_first_of(" \t\r\n\"") != std::string::npos)) {
    errors.Add(path + ".spiffe_id",
               "a SPIFFE ID: spiffe://<trust-domain>/ns/<namespace>/sa/<service>");
  }
  if (identity.has_validity()) {
    auto validity = ToMilliseconds(identity.validity());
    if (validity < std::chrono::seconds(10) || validity > std::chrono::hours(24 * 366)) {
      errors.Add(path + ".validity", "between 10s and 366 days");
    }
  }
}

void ValidateDynamicResources(const v1::DynamicResources& dynamic, ConfigErrors& errors) {
  const std::string path = "dynamic_resources";
  const auto& ads = dynamic.ads_config();
  if (!dynamic.has_ads_config()) {
    errors.Add(path, "needs ads_config: the control plane's addresses");
  } else if (ads.grpc_services().empty()) {
    errors.Add(path + ".ads_config.grpc_services",
               "list the control plane's addresses: [{google_grpc: {target_uri: HOST:PORT}}]");
  }
  if (ads.api_type() != v1::ApiConfigSource::GRPC &&
      ads.api_type() != v1::ApiConfigSource::API_TYPE_UNSPECIFIED) {
    errors.Add(path + ".ads_config.api_type", "only GRPC is supported");
  }
  for (int i = 0; i < ads.grpc_services_size(); ++i) {
    if (ads.grpc_services(i).google_grpc().target_uri().empty()) {
      errors.Add(absl::StrCat(path, ".ads_config.grpc_services[", i, "].google_grpc.target_uri"),
                 "needs HOST:PORT");
    }
    ValidateChannelCredentials(ads.grpc_services(i).google_grpc(),
                               absl::StrCat(path, ".ads_config.grpc_services[", i, "].google_grpc"),
                               errors);
    const auto& metadata = ads.grpc_services(i).initial_metadata();
    for (int j = 0; j < metadata.size(); ++j) {
      const std::string& key = metadata[j].key();
      bool lowercase =
          !key.empty() && key[0] != ':' && std::all_of(key.begin(), key.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   c == '.';
          });
      if (!lowercase) {
        errors.Add(
            absl::StrCat(path, ".ads_config.grpc_services[", i, "].initial_metadata[", j, "].key"),
            "a gRPC metadata key: lowercase letters, digits, '-', '_', '.'");
      }
    }
  }
  for (const auto& [name, source] : {std::pair{"lds_config", &dynamic.lds_config()},
                                     std::pair{"cds_config", &dynamic.cds_config()}}) {
    bool set = name == std::string_view("lds_config") ? dynamic.has_lds_config()
                                                      : dynamic.has_cds_config();
    if (set && !source->has_ads()) {
      errors.Add(absl::StrCat(path, ".", name), "only {ads: {}} is supported");
    }
  }
}

}  // namespace

absl::StatusOr<v1::Bootstrap> LoadBootstrapFile(const std::string& path, SourceMap* source_map) {
  v1::Bootstrap bootstrap;
  absl::Status status = LoadYamlFile(path, &bootstrap, source_map);
  if (!status.ok()) return status;
  return bootstrap;
}

namespace {

// The endpoints of the EDS clusters: each ClusterLoadAssignment validated (IP addresses) and
// kept by cluster_name for the server to apply when it publishes the snapshot. From a file,
// an assignment no EDS cluster names, or an EDS cluster with no assignment, is a mistake; from
// a control plane, either may simply not have arrived yet.
void BuildEndpointAssignments(const v1::StaticResources& resources, ConfigSnapshot& snapshot,
                              SourceKind kind, ConfigErrors& errors) {
  std::set<std::string> wanted;
  for (const auto& [name, cluster] : snapshot.clusters) {
    if (cluster->type() == v1::Cluster::EDS) wanted.insert(cluster->eds_service_name());
  }
  for (int i = 0; i < resources.cluster_load_assignments_size(); ++i) {
    const auto& proto = resources.cluster_load_assignments(i);
    std::string path = absl::StrCat("static_resources.cluster_load_assignments[", i, "]");
    if (proto.cluster_name().empty()) {
      errors.Add(path + ".cluster_name", "name the EDS cluster (or its service_name) it is for");
      continue;
    }
    if (snapshot.endpoint_assignments.contains(proto.cluster_name())) {
      errors.Add(path + ".cluster_name",
                 absl::StrCat("duplicate ClusterLoadAssignment for '", proto.cluster_name(), "'"));
      continue;
    }
    if (kind == SourceKind::kStatic && !wanted.contains(proto.cluster_name())) {
      errors.Add(path + ".cluster_name",
                 absl::StrCat("no cluster of type EDS is named '", proto.cluster_name(), "'"));
    }
    snapshot.endpoint_assignments[proto.cluster_name()] =
        upstream::ParseIpEndpoints(proto, path, ": EDS endpoints are IP addresses", errors);
  }
  if (kind != SourceKind::kStatic) return;
  for (const auto& [name, cluster] : snapshot.clusters) {
    if (cluster->type() == v1::Cluster::EDS &&
        !snapshot.endpoint_assignments.contains(cluster->eds_service_name())) {
      errors.Add("static_resources.cluster_load_assignments",
                 absl::StrCat("cluster '", name,
                              "' is of type EDS: list a ClusterLoadAssignment "
                              "with cluster_name '",
                              cluster->eds_service_name(), "'"));
    }
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<ConfigSnapshot>> BuildSnapshot(const v1::Bootstrap& bootstrap,
                                                              const SourceMap* source_map,
                                                              StatsStore& stats,
                                                              const ConfigSnapshot* previous,
                                                              uint64_t version, SourceKind kind) {
  ConfigErrors errors(source_map);
  auto snapshot = std::make_shared<ConfigSnapshot>();
  snapshot->version = version;
  snapshot->bootstrap = bootstrap;
  if (bootstrap.has_drain_timeout()) {
    snapshot->drain_timeout = ToMilliseconds(bootstrap.drain_timeout());
  }

  const auto& admin = bootstrap.admin().address().socket_address();
  std::string admin_ip = admin.address().empty() ? "127.0.0.1" : admin.address();
  uint32_t admin_port = bootstrap.admin().has_address() ? admin.port_value() : 9901;
  if (!upstream::ParseSocketAddress(admin_ip, admin_port, &snapshot->admin_address)) {
    errors.Add("admin.address.socket_address", "invalid admin address");
  }

  if (bootstrap.has_overload_manager()) {
    BuildOverloadConfig(bootstrap.overload_manager(), "overload_manager", errors,
                        &snapshot->overload);
  }

  if (bootstrap.has_dynamic_resources()) {
    ValidateDynamicResources(bootstrap.dynamic_resources(), errors);
  }
  if (bootstrap.has_workload_identity()) ValidateWorkloadIdentity(bootstrap, errors);

  const auto& resources = bootstrap.static_resources();
  network::SecretMap secrets;
  for (int i = 0; i < resources.secrets_size(); ++i) {
    const auto& proto = resources.secrets(i);
    std::string path = absl::StrCat("static_resources.secrets[", i, "]");
    if (proto.name().empty()) {
      errors.Add(path + ".name", "a secret needs a name");
    } else if (!secrets.emplace(proto.name(), proto).second) {
      errors.Add(path + ".name", absl::StrCat("duplicate secret name '", proto.name(), "'"));
    }
  }
  std::set<std::string> cluster_names;
  std::vector<std::pair<std::string, std::string>> cluster_paths;  // For the supervisor.
  for (int i = 0; i < resources.clusters_size(); ++i) {
    const auto& proto = resources.clusters(i);
    std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    if (!proto.name().empty() && !cluster_names.insert(proto.name()).second) {
      errors.Add(path + ".name", absl::StrCat("duplicate cluster name '", proto.name(), "'"));
      continue;
    }
    cluster_paths.emplace_back(proto.name(), path);
    auto info = upstream::ClusterInfo::Create(proto, stats, path, errors, &secrets);
    if (info == nullptr) continue;
    if (previous != nullptr) {
      // Unchanged, certificates included: keep the old one (its hosts' counters, the pools).
      auto it = previous->clusters.find(proto.name());
      if (it != previous->clusters.end() &&
          google::protobuf::util::MessageDifferencer::Equals(it->second->proto(), proto) &&
          it->second->transport_socket_factory().Fingerprint() ==
              info->transport_socket_factory().Fingerprint()) {
        info = it->second;
      }
    }
    snapshot->clusters[proto.name()] = std::move(info);
  }

  BuildEndpointAssignments(resources, *snapshot, kind, errors);

  snapshot->apps = BuildSupervisorConfig(bootstrap.supervisor(), snapshot->clusters,
                                         kind == SourceKind::kStatic, cluster_paths, errors);

  std::set<std::string> route_config_names;
  for (int i = 0; i < resources.route_configurations_size(); ++i) {
    const auto& proto = resources.route_configurations(i);
    std::string path = absl::StrCat("static_resources.route_configurations[", i, "]");
    if (proto.name().empty()) {
      errors.Add(path + ".name", "a route configuration needs a name");
      continue;
    }
    if (!route_config_names.insert(proto.name()).second) {
      errors.Add(path + ".name",
                 absl::StrCat("duplicate route configuration name '", proto.name(), "'"));
      continue;
    }
    auto routes = std::make_shared<router::RouteTable>(proto, path, errors);
    CheckClusterReferences(*routes, cluster_names, kind, errors);
    snapshot->route_configs[proto.name()] = std::move(routes);
  }

  const ListenerContext context{
      stats,  snapshot->clusters, cluster_names, snapshot->route_configs, secrets, kind,
      errors, snapshot->warnings};
  std::set<std::string> listener_names, listener_addresses;
  // Listeners from a dynamic source may arrive later.
  if (resources.listeners().empty() && kind == SourceKind::kStatic) {
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
    bool port_ok = socket.port_value() != 0 && socket.port_value() <= 65535;
    if (!port_ok) {
      errors.Add(path + ".address.socket_address.port_value",
                 absl::StrCat("port ", socket.port_value(), " is out of range: use 1-65535"));
    }
    if (!upstream::ParseSocketAddress(socket.address(), port_ok ? socket.port_value() : 1,
                                      &listener.sockaddr)) {
      errors.Add(path + ".address.socket_address.address",
                 absl::StrCat("'", socket.address(), "' is not an IP address"));
    } else if (port_ok) {
      listener.address = network::FormatAddress(reinterpret_cast<sockaddr*>(&listener.sockaddr));
      if (!listener_addresses.insert(listener.address).second) {
        errors.Add(path + ".address", absl::StrCat("address ", listener.address, " is used twice"));
      } else if (SameSocket(listener.sockaddr, snapshot->admin_address)) {
        errors.Add(path + ".address",
                   absl::StrCat("address ", listener.address, " is the admin server's"));
      }
    }
    listener.filter_chains = BuildFilterChains(proto, path, context);
    snapshot->listeners.push_back(std::move(listener));
  }
  if (!errors.empty()) return errors.ToStatus();
  return snapshot;
}

}  // namespace phoenix::config
