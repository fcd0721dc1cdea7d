#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "phoenix/config/v1/grpc_stats.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"

namespace phoenix::filters {

// The counters of one gRPC method (or of every method counted as "other").
struct GrpcMethodStats {
  Counter* total;
  Counter* success;                    // grpc-status 0.
  Counter* failure;                    // Any other status, or none (the stream was reset).
  std::array<Counter*, 17> by_status;  // grpc-status 0..16.
};

// A compiled GrpcStats, shared by every request of a listener's config snapshot (and so by
// every worker): which methods are counted apart, and their counters.
class GrpcStatsConfig {
 public:
  GrpcStatsConfig(const config::v1::GrpcStats& proto, StatsStore& stats, std::string stat_prefix,
                  const std::string& path, config::ConfigErrors& errors);

  // The counters for `path` ("/<service>/<method>"): its own if it is allowed, else "other".
  GrpcMethodStats& For(std::string_view path) const;

 private:
  GrpcMethodStats& Create(std::string_view service, std::string_view method) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const StatsScope scope_;  // http.<stat_prefix>.grpc.
  const bool all_methods_;
  const uint32_t max_methods_;
  mutable absl::Mutex mutex_;
  // "service/method" -> its counters: the allow-list from the start, or methods as they come.
  mutable absl::flat_hash_map<std::string, std::unique_ptr<GrpcMethodStats>> methods_
      ABSL_GUARDED_BY(mutex_);
  GrpcMethodStats* other_ = nullptr;
};

// The HTTP filter: for a gRPC request, counts the call once its status is known (in the
// response head of a Trailers-Only response, or its trailers; a reset counts as a failure).
class GrpcStatsFilter : public http::StreamFilter {
 public:
  static constexpr const char* kName = "phoenix.filters.http.grpc_stats";
  PHX_FREE_LIST_ALLOCATED(GrpcStatsFilter)

  explicit GrpcStatsFilter(std::shared_ptr<const GrpcStatsConfig> config)
      : config_(std::move(config)) {}
  http::FilterStatus DecodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void EncodeHeaders(http::ResponseHeaders& headers, bool end_stream) override;
  void EncodeTrailers(http::HeaderMap& trailers) override;
  void OnDestroy() override;

 private:
  // Counts the call with `status` (-1: none known).
  void Record(int status);

  std::shared_ptr<const GrpcStatsConfig> config_;
  GrpcMethodStats* stats_ = nullptr;  // Null: not a gRPC call, or already counted.
};

void RegisterGrpcStatsFilter();

}  // namespace phoenix::filters
