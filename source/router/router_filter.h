#pragma once

#include <memory>
#include <string>

#include "source/common/free_list.h"
#include "source/http/filter.h"
#include "source/upstream/cluster_manager.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::router {

// The terminal HTTP filter: answers direct-response and redirect routes, and proxies the
// rest to a host of the route's cluster through that host's connection pool, streaming
// both bodies with back-pressure.
class RouterFilter : public http::StreamFilter,
                     public upstream::PoolCallbacks,
                     public upstream::UpstreamStreamCallbacks {
 public:
  static constexpr const char* kName = "phoenix.filters.http.router";
  PHX_FREE_LIST_ALLOCATED(RouterFilter)

  RouterFilter() = default;
  ~RouterFilter() override;

  // http::StreamFilter
  http::FilterStatus DecodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  http::FilterStatus DecodeData(std::string_view data, bool end_stream) override;
  http::FilterStatus DecodeTrailers(http::HeaderMap& trailers) override;
  void OnDownstreamAboveWriteBufferHighWatermark() override;
  void OnDownstreamBelowWriteBufferLowWatermark() override;
  void OnDestroy() override;

  // upstream::PoolCallbacks
  void OnPoolReady(upstream::UpstreamClient& client) override;
  void OnPoolFailure(Failure failure) override;

  // upstream::UpstreamStreamCallbacks
  void OnResponseHeaders(http::ResponseHeadersPtr headers, bool end_stream) override;
  void OnResponseData(std::string_view data, bool end_stream) override;
  void OnResponseTrailers(http::HeaderMap trailers) override;
  void OnResponseProtocolError(std::string_view details) override;
  void OnUpstreamReset() override;
  void OnUpstreamAboveWriteBufferHighWatermark() override;
  void OnUpstreamBelowWriteBufferLowWatermark() override;

 private:
  void AnswerLocally(const RouteEntry& route, const http::RequestHeaders& headers);
  void OnUpstreamFailure(int status, std::string_view body, std::string_view flag);
  void OnRouteTimeout();
  // Ends the upstream exchange: returns the connection to the pool (or closes it).
  void ReleaseUpstream(bool reusable);

  const RouteEntry* route_ = nullptr;
  std::shared_ptr<upstream::ThreadLocalCluster> cluster_;
  upstream::Http1ConnPool* pool_ = nullptr;
  upstream::Host* host_ = nullptr;
  upstream::UpstreamClient* client_ = nullptr;
  http::RequestHeaders* request_ = nullptr;
  std::string pending_body_;  // Request body that arrived before the connection was ready.
  std::unique_ptr<http::HeaderMap> pending_trailers_;
  std::unique_ptr<Timer> timeout_timer_;
  uint64_t upstream_start_us_ = 0;
  bool request_end_ = false;
  bool waiting_for_pool_ = false;
  bool response_started_ = false;
  bool done_ = false;
  bool downstream_read_disabled_ = false;
};

// Registers the router under kName.
void RegisterRouterFilter();

}  // namespace phoenix::router
