#include "source/filters/grpc_stats/grpc_stats.h"

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"
#include "source/http/grpc.h"

namespace phoenix::filters {
namespace {

constexpr uint32_t kDefaultMaxMethods = 100;

class GrpcStatsFilterFactory : public http::FilterFactory {
 public:
  explicit GrpcStatsFilterFactory(std::shared_ptr<const GrpcStatsConfig> config)
      : config_(std::move(config)) {}
  std::unique_ptr<http::StreamFilter> Create() const override {
    return std::make_unique<GrpcStatsFilter>(config_);
  }

 private:
  std::shared_ptr<const GrpcStatsConfig> config_;
};

// Service and method of a gRPC path "/<service>/<method>"; false for anything else.
bool SplitGrpcPath(std::string_view path, std::string_view* service, std::string_view* method) {
  if (path.size() < 4 || path[0] != '/') return false;
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1 || slash + 1 == path.size()) return false;
  *service = path.substr(1, slash - 1);
  *method = path.substr(slash + 1);
  // A stat name part: no further slash, query, or character a name should not hold.
  for (char c : path.substr(1)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/';
    if (!ok) return false;
  }
  return method->find('/') == std::string_view::npos;
}

}  // namespace

GrpcStatsConfig::GrpcStatsConfig(const config::v1::GrpcStats& proto, StatsStore& stats,
                                 std::string stat_prefix, const std::string& path,
                                 config::ConfigErrors& errors)
    : scope_(http::HttpStatsScope(stats, stat_prefix).Nested("grpc")),
      all_methods_(proto.stats_for_all_methods()),
      max_methods_(proto.has_max_methods() ? proto.max_methods() : kDefaultMaxMethods) {
  absl::MutexLock lock(&mutex_);
  const auto& services = proto.individual_method_stats_allowlist().services();
  for (int i = 0; i < services.size(); ++i) {
    const auto& service = services[i];
    if (service.name().empty()) {
      errors.Add(absl::StrCat(path, ".individual_method_stats_allowlist.services[", i, "].name"),
                 "a service needs its name");
    }
    for (const std::string& method : service.method_names()) Create(service.name(), method);
  }
  other_ = &Create("other", "other");
}

GrpcMethodStats& GrpcStatsConfig::Create(std::string_view service, std::string_view method) const {
  auto stats = std::make_unique<GrpcMethodStats>();
  StatsScope scope = scope_.Labelled("grpc_service", service).Labelled("grpc_method", method);
  stats->total = &scope.counter("total", "gRPC calls");
  stats->success = &scope.counter("success", "gRPC calls that ended with grpc-status 0");
  stats->failure = &scope.counter("failure", "gRPC calls that failed or were reset");
  for (size_t code = 0; code < stats->by_status.size(); ++code) {
    std::string status = absl::StrCat(code);
    stats->by_status[code] = &scope.LabelledCounter(
        status, "status", StatTag{"grpc_status", status}, "gRPC calls by grpc-status");
  }
  GrpcMethodStats& created = *stats;
  methods_[absl::StrCat(AbslView(service), "/", AbslView(method))] = std::move(stats);
  return created;
}

GrpcMethodStats& GrpcStatsConfig::For(std::string_view path) const {
  std::string_view service, method;
  if (!SplitGrpcPath(path, &service, &method)) return *other_;
  std::string_view key = path.substr(1);
  {
    absl::ReaderMutexLock lock(&mutex_);
    auto it = methods_.find(AbslView(key));
    if (it != methods_.end()) return *it->second;
    // +1: "other/other" is in the map too.
    if (!all_methods_ || methods_.size() >= max_methods_ + 1) return *other_;
  }
  absl::MutexLock lock(&mutex_);
  auto it = methods_.find(AbslView(key));
  if (it != methods_.end()) return *it->second;
  if (methods_.size() >= max_methods_ + 1) return *other_;
  return Create(service, method);
}

http::FilterStatus GrpcStatsFilter::DecodeHeaders(http::RequestHeaders& headers, bool) {
  if (http::IsGrpcRequest(headers)) stats_ = &config_->For(headers.PathWithoutQuery());
  return http::FilterStatus::kContinue;
}

void GrpcStatsFilter::EncodeHeaders(http::ResponseHeaders& headers, bool end_stream) {
  if (stats_ == nullptr || !end_stream) return;
  // Trailers-Only: the status is in the head. An HTTP error without one stands for the
  // status a gRPC client would see (gRPC over HTTP/2, "HTTP to gRPC Status Code Mapping").
  std::optional<int> status = http::GrpcStatusOf(headers.headers);
  Record(status                  ? *status
         : headers.status == 200 ? static_cast<int>(http::GrpcStatus::kUnknown)
                                 : static_cast<int>(http::GrpcStatusForHttpStatus(headers.status)));
}

void GrpcStatsFilter::EncodeTrailers(http::HeaderMap& trailers) {
  if (stats_ == nullptr) return;
  std::optional<int> status = http::GrpcStatusOf(trailers);
  Record(status ? *status : static_cast<int>(http::GrpcStatus::kUnknown));
}

void GrpcStatsFilter::OnDestroy() {
  if (stats_ != nullptr) Record(-1);  // Reset, or ended without a status.
}

void GrpcStatsFilter::Record(int status) {
  GrpcMethodStats& stats = *stats_;
  stats_ = nullptr;
  stats.total->Inc();
  (status == 0 ? stats.success : stats.failure)->Inc();
  if (status >= 0 && status < static_cast<int>(stats.by_status.size())) {
    stats.by_status[status]->Inc();
  }
}

void RegisterGrpcStatsFilter() {
  http::FilterRegistry::Register(
      GrpcStatsFilter::kName,
      [](const google::protobuf::Any& typed_config, const http::FilterFactoryContext& context,
         const std::string& path, config::ConfigErrors& errors) -> http::FilterFactoryPtr {
        config::v1::GrpcStats proto;
        if (!typed_config.type_url().empty() && !typed_config.UnpackTo(&proto)) {
          errors.Add(path, "needs typed_config of type phoenix.config.v1.GrpcStats");
          return nullptr;
        }
        auto config = std::make_shared<GrpcStatsConfig>(proto, context.stats, context.stat_prefix,
                                                        path, errors);
        return std::make_shared<GrpcStatsFilterFactory>(std::move(config));
      });
}

}  // namespace phoenix::filters
