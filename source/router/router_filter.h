#pragma once

#include <memory>
#include <string>

#include "source/common/free_list.h"
#include "source/http/filter.h"
#include "source/router/route_table.h"
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
  void OnPoolFailure(PoolCallbacks::Failure failure) override;

  // upstream::UpstreamStreamCallbacks
  void OnResponseHeaders(http::ResponseHeadersPtr headers, bool end_stream) override;
  void OnResponseData(std::string_view data, bool end_stream) override;
  void OnResponseTrailers(http::HeaderMap trailers) override;
  void OnResponseProtocolError(std::string_view details) override;
  void OnUpstreamReset() override;
  void OnUpstreamAboveWriteBufferHighWatermark() override;
  void OnUpstreamBelowWriteBufferLowWatermark() override;

 private:
  // Why an upstream attempt failed.
  enum class AttemptFailure { kConnect, kReset, kProtocol, kPerTryTimeout, kStatus };

  void AnswerLocally(const RouteEntry& route, const http::RequestHeaders& headers);
  // Picks a host (avoiding ones that already failed this request) and asks its pool.
  void StartAttempt();
  // Ends the current attempt: returns the connection to the pool, or closes it.
  void EndAttempt(bool reusable);
  // Retries if the policy allows, else answers with the failure.
  void OnAttemptFailed(AttemptFailure failure, int status = 0);
  bool CanRetry(AttemptFailure failure, int status) const;
  void OnRouteTimeout();
  // The response went (or is going) downstream in full: no more attempts.
  void Finish();
  void SendRequestBody();
  // A circuit breaker is open: 503, flag UO, x-phoenix-overloaded.
  void Overflow();

  const RouteEntry* route_ = nullptr;
  std::shared_ptr<upstream::ThreadLocalCluster> cluster_;
  http::RequestHeaders* request_ = nullptr;
  bool request_end_ = false;
  bool request_has_body_ = false;
  // Request body: held while no connection is ready, and for replay while a retry is
  // still possible.
  std::string body_;
  bool keep_body_for_retry_ = false;
  std::unique_ptr<http::HeaderMap> trailers_;
  std::unique_ptr<Timer> route_timer_;
  std::unique_ptr<Timer> retry_timer_;
  uint32_t attempts_ = 0;
  uint32_t retries_left_ = 0;
  std::vector<const upstream::Host*> failed_hosts_;
  bool response_started_ = false;
  bool done_ = false;
  bool holds_retry_slot_ = false;  // A max_retries slot, from scheduling to the retry's end.
  bool downstream_read_disabled_ = false;

  // The current attempt.
  upstream::Http1ConnPool* pool_ = nullptr;
  upstream::Host* host_ = nullptr;
  upstream::UpstreamClient* client_ = nullptr;
  bool waiting_for_pool_ = false;
  bool attempt_active_ = false;
  uint64_t attempt_start_us_ = 0;
  std::unique_ptr<Timer> per_try_timer_;
};

// Registers the router under kName.
void RegisterRouterFilter();

}  // namespace phoenix::router
