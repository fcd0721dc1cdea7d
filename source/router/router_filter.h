#pragma once

#include <memory>
#include <string>

#include "source/common/free_list.h"
#include "source/common/timeout_queue.h"
#include "source/http/filter.h"
#include "source/router/route_table.h"
#include "source/upstream/cluster_manager.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::router {

// The terminal HTTP filter: answers direct-response and redirect routes, and proxies the
// rest to a host of the route's cluster through that host's connection pool, streaming
// both bodies with back-pressure, retrying as the route allows.
class RouterFilter : public http::StreamFilter {
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

 private:
  // The router's side of an upstream stream: hears the pool, the response and the
  // stream's events, and hands them to the router.
  class UpstreamCallbacks : public upstream::PoolCallbacks,
                            public http::ResponseDecoder,
                            public http::StreamCallbacks {
   public:
    explicit UpstreamCallbacks(RouterFilter& router) : router_(router) {}
    void OnPoolReady(http::RequestEncoder& encoder) override { router_.OnPoolReady(encoder); }
    void OnPoolFailure(Failure failure) override { router_.OnPoolFailure(failure); }
    void DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) override {
      router_.OnUpstreamHeaders(std::move(headers), end_stream);
    }
    void DecodeData(std::string_view data, bool end_stream) override {
      router_.OnUpstreamData(data, end_stream);
    }
    void DecodeTrailers(http::HeaderMap trailers) override {
      router_.OnUpstreamTrailers(std::move(trailers));
    }
    void OnResetStream(http::StreamResetReason reason) override { router_.OnUpstreamReset(reason); }
    void OnAboveWriteBufferHighWatermark() override { router_.OnUpstreamWatermark(true); }
    void OnBelowWriteBufferLowWatermark() override { router_.OnUpstreamWatermark(false); }

   private:
    RouterFilter& router_;
  };

  // Why an upstream attempt failed.
  enum class AttemptFailure {
    kConnect,
    kReset,
    kRefused,  // The upstream refused the stream before processing it (HTTP/2).
    kProtocol,
    kPerTryTimeout,
    kStatus,
    kGrpcStatus,  // A Trailers-Only gRPC response whose status the policy retries.
  };

  void OnPoolReady(http::RequestEncoder& encoder);
  void OnPoolFailure(upstream::PoolCallbacks::Failure failure);
  void OnUpstreamHeaders(http::ResponseHeadersPtr headers, bool end_stream);
  void OnUpstreamData(std::string_view data, bool end_stream);
  void OnUpstreamTrailers(http::HeaderMap trailers);
  void OnUpstreamReset(http::StreamResetReason reason);
  void OnUpstreamWatermark(bool above);

  void AnswerLocally(const RouteEntry& route, const http::RequestHeaders& headers);
  // Picks a host (avoiding ones that already failed this request) and asks its pool.
  void StartAttempt();
  // Ends the current attempt: leaves the stream to complete (and its connection to be
  // reused), or resets it.
  void EndAttempt(bool reusable);
  // Retries if the policy allows, else answers with the failure.
  void OnAttemptFailed(AttemptFailure failure, int status = 0);
  bool CanRetry(AttemptFailure failure, int status) const;
  void OnRouteTimeout();
  // max_stream_duration passed.
  void OnMaxStreamDuration();
  // Ends the request on a timeout of the whole request: 504 with `flag`, or a reset once the
  // response has started.
  void EndOnTimeout(std::string_view flag, std::string_view body);
  void DisarmTimeouts();
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
  // Request body: held while no stream is ready, and for replay while a retry is still
  // possible.
  std::string body_;
  bool keep_body_for_retry_ = false;
  std::unique_ptr<http::HeaderMap> trailers_;
  // The route timeout: one entry in the worker's queue for this duration, not a timer of
  // its own, so arming and disarming it per request is a few pointer moves.
  class RouteTimeout : public TimeoutQueue::Entry {
   public:
    explicit RouteTimeout(RouterFilter& parent) : parent_(parent) {}
    void OnTimeout() override { parent_.OnRouteTimeout(); }

   private:
    RouterFilter& parent_;
  };
  RouteTimeout route_timeout_{*this};
  // A timeout of this request's own (grpc-timeout): a timer, since its duration is per request.
  std::unique_ptr<Timer> request_timer_;
  std::unique_ptr<Timer> stream_timer_;  // max_stream_duration.
  std::unique_ptr<Timer> retry_timer_;
  uint32_t attempts_ = 0;
  uint32_t retries_left_ = 0;
  std::vector<const upstream::Host*> failed_hosts_;
  bool response_started_ = false;
  bool done_ = false;
  bool holds_retry_slot_ = false;    // A max_retries slot, from scheduling to the retry's end.
  bool refused_retry_used_ = false;  // A refused stream is sent again once, even unasked.
  bool downstream_read_disabled_ = false;
  UpstreamCallbacks upstream_{*this};

  // The current attempt.
  upstream::ConnectionPool* pool_ = nullptr;
  upstream::Host* host_ = nullptr;
  http::RequestEncoder* encoder_ = nullptr;  // Set once the pool gave a stream.
  bool waiting_for_pool_ = false;
  bool attempt_active_ = false;
  uint64_t attempt_start_us_ = 0;
  std::unique_ptr<Timer> per_try_timer_;
};

// Registers the router under kName.
void RegisterRouterFilter();

}  // namespace phoenix::router
