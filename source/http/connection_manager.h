#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/common/access_log.h"
#include "source/common/dispatcher.h"
#include "source/common/stats.h"
#include "source/common/timeout_queue.h"
#include "source/http/access_log_format.h"
#include "source/http/codec.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"
#include "source/http/path_normalizer.h"
#include "source/http/route_config.h"
#include "source/network/connection.h"

namespace phoenix::http {

class ConnectionManager;

// http.<stat_prefix>.<stat>
#define PHX_CONNECTION_MANAGER_STATS(COUNTER, GAUGE, HISTOGRAM)                                  \
  COUNTER(downstream_cx_total, "Client connections accepted")                                    \
  COUNTER(downstream_cx_http1_total, "Client connections that spoke HTTP/1.1")                   \
  COUNTER(downstream_cx_http2_total, "Client connections that spoke HTTP/2")                     \
  GAUGE(downstream_cx_active, "Client connections now open")                                     \
  COUNTER(downstream_cx_protocol_error, "Client connections closed for a protocol error")        \
  COUNTER(downstream_cx_idle_timeout, "Client connections closed for idling")                    \
  COUNTER(downstream_rq_total, "Requests received")                                              \
  COUNTER(downstream_rq_http1_total, "Requests received over HTTP/1.1")                          \
  COUNTER(downstream_rq_http2_total, "Requests received over HTTP/2")                            \
  GAUGE(downstream_rq_active, "Requests in progress")                                            \
  COUNTER(downstream_rq_timeout, "Requests answered 408: their headers came too slowly")         \
  COUNTER(downstream_rq_idle_timeout, "Streams closed by stream_idle_timeout")                   \
  COUNTER(no_route, "Requests that matched no route")                                            \
  COUNTER(downstream_rq_invalid_path, "Requests answered 400: the path was unsafe to normalize") \
  COUNTER(downstream_rq_overload,                                                                \
          "Requests answered 503 (OL) while the overload manager sheds load")                    \
  COUNTER(downstream_cx_upgrades_total, "Upgrades let through (WebSocket)")                      \
  GAUGE(downstream_cx_upgrades_active, "Upgraded connections now open")                          \
  COUNTER(downstream_rq_ws_on_non_ws_route, "Upgrades answered 403: the route allows none")      \
  HISTOGRAM(downstream_rq_time, "Time from a request's first byte to its response's last")

// What is counted for one listener's HTTP traffic, shared by every worker.
struct ConnectionManagerStats {
  PHX_STATS(ConnectionManagerStats, PHX_CONNECTION_MANAGER_STATS,
            downstream_rq_class(scope.StatusClassCounters("downstream_rq_",
                                                          "Responses by status class")));
  // Registered as http.<prefix>.<stat>.
  ConnectionManagerStats(StatsStore& store, const std::string& prefix);
  std::array<Counter*, 5> downstream_rq_class;  // downstream_rq_1xx..5xx
};

// What the upstream learns of the client's certificate (x-forwarded-client-cert); the values
// of HttpConnectionManager.ForwardClientCertDetails.
enum class ForwardClientCert {
  kSanitize,
  kForwardOnly,
  kAppendForward,
  kSanitizeSet,
  kAlwaysForwardOnly,
};

// This hop's x-forwarded-client-cert element for a client that showed a verified
// certificate (`tls.peer` not null): By, Hash, Subject, URI and DNS, in Envoy's format.
std::string ClientCertElement(const network::TlsInfo& tls);

// Everything one listener's HTTP connection manager needs, compiled from the config.
// Immutable; part of a config snapshot.
struct ConnectionManagerConfig {
  std::string stat_prefix;
  // Which protocol the listener speaks (fixed, or detected per connection).
  std::shared_ptr<const ServerCodecFactory> codec_factory;
  std::chrono::milliseconds request_headers_timeout{10000};
  std::chrono::milliseconds idle_timeout{300000};
  std::chrono::milliseconds stream_idle_timeout{300000};  // 0: none.
  uint32_t xff_num_trusted_hops = 0;
  ForwardClientCert forward_client_cert = ForwardClientCert::kSanitizeSet;
  bool generate_request_id = true;
  PathNormalizationOptions path_normalization;
  size_t buffer_limit = 1024 * 1024;
  // The upgrades (lowercase, "websocket") upgrade_configs enables unless a route says
  // otherwise.
  std::vector<std::string> upgrade_types;
  RouteConfigConstSharedPtr route_config;
  std::vector<FilterFactoryPtr> filters;
  // One listener access_log entry: where its lines go and how they read.
  struct AccessLog {
    std::shared_ptr<AccessLogFile> file;
    std::shared_ptr<const AccessLogFormatter> formatter;
  };
  std::vector<AccessLog> access_logs;
  // The response headers any access log format reads (%RESP(x)%): kept per stream.
  std::vector<std::string> access_log_response_headers;
  std::unique_ptr<ConnectionManagerStats> stats;
};

// The client address policies key on: `peer`, unless `trusted_hops` proxies are trusted, then
// the trusted_hops-th x-forwarded-for entry from the right (never the client-controlled left).
std::string ClientAddress(const std::string_view* xff, std::string_view peer,
                          uint32_t trusted_hops);

// What a connection manager needs from the worker that owns it.
class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual Dispatcher& dispatcher() = 0;
  virtual bool draining() const = 0;
  // The overload manager sheds load: new requests are answered 503 (OL) and their
  // connections closed.
  virtual bool shedding_load() const = 0;
  virtual uint64_t Random() = 0;
  // The connection is finished; the worker may delete it (called deferred, never inside
  // the connection's own callbacks).
  virtual void OnConnectionClosed(ConnectionManager* connection) = 0;
};

// The current config of one listener on one worker. Swapped on reload; each request
// keeps the config it started with.
struct ListenerState {
  std::shared_ptr<const ConnectionManagerConfig> config;
  // Its listener or filter chain is gone from the config: connections under it drain.
  bool retired = false;
};

// Serves one downstream connection whatever its protocol: the codec (made by the listener's
// ServerCodecFactory) turns bytes into streams; each stream runs through the filter chain
// (the router last) and its response goes back through the stream's encoder. Keeps the
// connection alive between requests and enforces the header and idle timeouts.
class ConnectionManager : public network::ConnectionCallbacks,
                          public ServerConnectionCallbacks,
                          private TimeoutQueue::Entry {
 public:
  ConnectionManager(WorkerContext& worker, std::shared_ptr<ListenerState> listener,
                    std::unique_ptr<network::Connection> connection);
  ~ConnectionManager() override;

  // Finish the current streams, then close; close now if idle.
  void StartDrain();
  // Ends keep-alive gently: the connection closes after its next response (HTTP/1) or stops
  // taking streams (HTTP/2 GOAWAY); an idle one stays until then.
  void DrainAfterNextResponse();
  // The listener (filter chain) state the connection serves under.
  const ListenerState* listener_state() const { return listener_.get(); }
  // The drain timeout passed: each stream still in progress is cut, answered 503 if its
  // response has not started, and logged with flag DRAIN. The connection closes after.
  void CutByDrainTimeout();

  // network::ConnectionCallbacks
  void OnData(const char* data, size_t length) override;
  void OnEvent(network::ConnectionEvent event) override;
  void OnAboveWriteBufferHighWatermark() override;
  void OnBelowWriteBufferLowWatermark() override;

  // ServerConnectionCallbacks
  void OnRequestBegin() override;
  RequestDecoder& NewStream(ResponseEncoder& encoder) override;
  void OnProtocolError(int status, std::string_view details, bool answered) override;
  void OnStreamRefused(int status, const RequestHeaders& head) override;

 private:
  class ActiveStream;

  // `stream` is over (its response complete, or reset): delete it after this event.
  void RemoveStream(ActiveStream& stream);
  // Every stream is done: close, or wait for the next request.
  void OnStreamsDone();
  // Deferred by OnStreamsDone(): parses a pipelined request, or drops the idle codec.
  void ResumeAfterStream();
  void Close(bool flush);
  // The access log line of a request the codec refused before it became a stream.
  // `head` is what was parsed of the request, if anything.
  void LogRefusal(int status, const RequestHeaders* head = nullptr);
  static void WriteAccessLogs(const ConnectionManagerConfig& config,
                              const AccessLogContext& context);
  // One timeout at a time: waiting for a request head, or idle between requests.
  enum class Waiting { kNothing, kRequestHeaders, kNextRequest };
  void WaitFor(Waiting what);
  void OnTimeout() override;
  // After parsing: a request head begun but not complete starts the headers timeout.
  void ArmHeadTimeoutIfPending();
  // Makes the codec of the protocol chosen for this connection; the first one is counted.
  void CreateCodec();
  void CreateFirstCodec();
  // A detecting listener's first bytes: picks the protocol once they tell, then parses them.
  void DetectProtocol(const char* data, size_t length);

  WorkerContext& worker_;
  std::shared_ptr<ListenerState> listener_;
  std::shared_ptr<const ConnectionManagerConfig> config_;  // The one the connection began with.
  std::unique_ptr<network::Connection> connection_;
  // The peer's host (a view into its address, which never changes), once a request needs it.
  std::optional<std::string_view> peer_host_;
  // The protocol's factory, chosen once per connection (null until a detecting listener's
  // first bytes tell which).
  const ServerCodecFactory* codec_factory_ = nullptr;
  std::unique_ptr<ServerConnection> codec_;  // Null while idle, if the codec allows it.
  // The first bytes of a detecting listener's connection, while they do not tell yet.
  std::unique_ptr<std::string> first_bytes_;
  // The streams in progress: at most one for HTTP/1, so kept inline.
  absl::InlinedVector<std::unique_ptr<ActiveStream>, 1> streams_;
  Waiting waiting_ = Waiting::kNothing;
  bool head_started_ = false;  // The codec began a request head during this parse.
  bool closed_ = false;
  bool draining_ = false;
};

}  // namespace phoenix::http
