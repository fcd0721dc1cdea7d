#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "source/common/stats.h"
#include "source/http/header_map.h"
#include "source/http/route_config.h"
#include "source/network/connection.h"

namespace phoenix {
class Dispatcher;
}  // namespace phoenix

namespace phoenix::http {

// Per-request facts the access log and stats need.
struct StreamInfo {
  uint64_t start_us = 0;      // Monotonic clock when the request headers arrived.
  int64_t start_wall_us = 0;  // Wall clock, for the log timestamp.
  int response_code = 0;
  std::string response_flags;   // "NR", "UF", ... comma-free, joined with ','.
  uint64_t bytes_received = 0;  // Request body bytes.
  uint64_t bytes_sent = 0;      // Response body bytes.
  std::string upstream_host;
  // The client policies key on: the socket peer, or the xff_num_trusted_hops-th address from
  // the right of x-forwarded-for as it arrived.
  std::string client_ip;
  std::string route_name;
  // The policy rule that decided the request (an access_policy rule's name, allow or deny);
  // empty when none did. Owned by the policy, which outlives the stream's log line.
  std::string_view policy_rule;
  // What TLS established on the downstream connection (peer principal, version); null on
  // plaintext.
  const network::TlsInfo* tls = nullptr;

  // The mTLS peer's verified identity; "" when the client showed no certificate.
  std::string_view peer_principal() const {
    return tls != nullptr && tls->peer != nullptr ? std::string_view(tls->peer->principal)
                                                  : std::string_view();
  }
  void AddFlag(std::string_view flag);
};

enum class FilterStatus {
  kContinue,  // Pass to the next filter.
  // This filter took over: it answered, it is the terminal filter, or it holds the request
  // and will call FilterCallbacks::ContinueDecoding() later.
  kStop,
};

// What the connection manager offers the filters of one request.
class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;
  virtual Dispatcher& dispatcher() = 0;
  virtual uint64_t Random() = 0;
  virtual StreamInfo& stream_info() = 0;
  // The route picked for this request (null: none matched). Computed once, lazily.
  virtual const Route* route() = 0;
  virtual const std::string& downstream_address() = 0;
  // Answers the request from the proxy with a short body and ends it; `headers` (may be
  // null) go with it. A gRPC request gets the same answer as a gRPC status: HTTP 200 with
  // grpc-status and grpc-message in one HEADERS (Trailers-Only).
  virtual void SendLocalReply(int status, std::string_view body, std::string_view flag,
                              const HeaderMap* headers) = 0;
  void SendLocalReply(int status, std::string_view body, std::string_view flag) {
    SendLocalReply(status, body, flag, nullptr);
  }
  // Response path (from the router): through the encoder side of the filters, then the codec.
  virtual void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void EncodeData(std::string_view data, bool end_stream) = 0;
  virtual void EncodeTrailers(HeaderMap trailers) = 0;
  // A filter that returned kStop from DecodeHeaders (and did not answer) resumes the request
  // with this, on the worker's thread; body bytes that arrived meanwhile follow.
  virtual void ContinueDecoding() = 0;
  // Back-pressure on the downstream connection (stop/resume reading the request body).
  virtual void ReadDisableDownstream(bool disable) = 0;
  // Abandons the request: closes the downstream connection (used after the response
  // has started and the upstream failed).
  virtual void ResetStream() = 0;
};

// An HTTP filter: sees the request on the way in (decode) and the response on the way out
// (encode). Filters are created per request by a registered factory.
class StreamFilter {
 public:
  virtual ~StreamFilter() = default;
  virtual void SetCallbacks(FilterCallbacks& callbacks) { callbacks_ = &callbacks; }

  virtual FilterStatus DecodeHeaders(RequestHeaders& headers, bool end_stream) = 0;
  virtual FilterStatus DecodeData(std::string_view data, bool end_stream) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus DecodeTrailers(HeaderMap& trailers) { return FilterStatus::kContinue; }
  virtual void EncodeHeaders(ResponseHeaders& headers, bool end_stream) {}
  // The response's trailers (which end it) on their way out.
  virtual void EncodeTrailers(HeaderMap& trailers) {}
  // The downstream connection's write buffer is full / drained again.
  virtual void OnDownstreamAboveWriteBufferHighWatermark() {}
  virtual void OnDownstreamBelowWriteBufferLowWatermark() {}
  // The request is over (completed or reset); release upstream resources.
  virtual void OnDestroy() {}

 protected:
  FilterCallbacks* callbacks_ = nullptr;
};

// Where a listener's HTTP stats live: "http.<stat_prefix>.<stat>", labelled
// http_conn_manager_prefix in Prometheus. The connection manager's and its filters' stats.
inline StatsScope HttpStatsScope(StatsStore& store, std::string_view stat_prefix) {
  return StatsScope(store, "http.").Labelled("http_conn_manager_prefix", stat_prefix);
}

}  // namespace phoenix::http
