#include "source/http/connection_manager.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "source/common/logging.h"
#include "source/common/strings.h"
#include "source/http/grpc.h"

namespace phoenix::http {
namespace {

// What an overloaded proxy's 503 carries: try again in a second.
const HeaderMap& RetryAfterOneSecond() {
  static const HeaderMap* headers = [] {
    auto* map = new HeaderMap();
    map->Add("retry-after", "1");
    return map;
  }();
  return *headers;
}

// A random (version 4) UUID, formatted without printf machinery into the 36 bytes at `id`:
// this runs per request.
// The eight lowercase hex digits of `x`, most significant first, computed for all eight at
// once: each nibble is spread into a byte of its own, then mapped to '0'-'9' or 'a'-'f'.
void WriteHex32(uint32_t x, char* out) {
  uint64_t v = x;
  v = (v | (v << 16)) & 0x0000ffff0000ffffULL;
  v = (v | (v << 8)) & 0x00ff00ff00ff00ffULL;
  v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0fULL;  // Byte k holds nibble k (k = 0: lowest).
  v = __builtin_bswap64(v);                    // The most significant nibble first.
  uint64_t letters = ((v + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  v += 0x3030303030303030ULL + letters * ('a' - '0' - 10);
  std::memcpy(out, &v, 8);
}

void WriteRequestId(uint64_t high, uint64_t low, char* id) {
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // RFC 4122 variant
  char hex[32];
  WriteHex32(static_cast<uint32_t>(high >> 32), hex);
  WriteHex32(static_cast<uint32_t>(high), hex + 8);
  WriteHex32(static_cast<uint32_t>(low >> 32), hex + 16);
  WriteHex32(static_cast<uint32_t>(low), hex + 24);
  // 8-4-4-4-12
  std::memcpy(id, hex, 8);
  id[8] = '-';
  std::memcpy(id + 9, hex + 8, 4);
  id[13] = '-';
  std::memcpy(id + 14, hex + 12, 4);
  id[18] = '-';
  std::memcpy(id + 19, hex + 16, 4);
  id[23] = '-';
  std::memcpy(id + 24, hex + 20, 12);
}

}  // namespace

std::string ClientCertElement(const network::TlsInfo& tls) {
  std::string element;
  // Subjects, and any value holding a separator, are quoted with '"' and '\\' escaped, so
  // that no certificate field can forge another XFCC field or element.
  auto field = [&](std::string_view key, std::string_view value, bool quote) {
    if (value.empty()) return;
    absl::StrAppend(&element, element.empty() ? "" : ";", AbslView(key), "=");
    if (!quote && value.find_first_of(";,=\"\\") == std::string_view::npos) {
      absl::StrAppend(&element, AbslView(value));
      return;
    }
    element.push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') element.push_back('\\');
      element.push_back(c);
    }
    element.push_back('"');
  };
  field("By", tls.local_uri_san, false);
  field("Hash", tls.peer->sha256, false);
  field("Subject", tls.peer->subject, true);
  field("URI", tls.peer->uri_san, false);
  field("DNS", tls.peer->dns_san, false);
  return element;
}

std::string ClientAddress(const std::string_view* xff, std::string_view peer,
                          uint32_t trusted_hops) {
  if (trusted_hops == 0 || xff == nullptr) return std::string(peer);
  std::vector<absl::string_view> entries = absl::StrSplit(AbslView(*xff), ',');
  if (entries.size() < trusted_hops) return std::string(peer);
  return std::string(absl::StripAsciiWhitespace(entries[entries.size() - trusted_hops]));
}

ConnectionManagerStats::ConnectionManagerStats(StatsStore& store, const std::string& prefix)
    : ConnectionManagerStats(HttpStatsScope(store, prefix)) {}

// One request/response exchange: the codec's decoder for the request, owner of the request
// head and the filter instances, and the FilterCallbacks those filters talk to. Its response
// leaves through the stream's encoder.
class ConnectionManager::ActiveStream : public FilterCallbacks,
                                        public RequestDecoder,
                                        public StreamCallbacks {
 public:
  PHX_FREE_LIST_ALLOCATED(ActiveStream)

  ActiveStream(ConnectionManager& parent, std::shared_ptr<const ConnectionManagerConfig> config,
               ResponseEncoder& encoder)
      : parent_(parent), config_(std::move(config)), encoder_(encoder) {
    encoder_.stream().SetCallbacks(this);
    KeepAlive();
    info_.start_us = dispatcher().time_source().MonotonicUs();
    // The wall clock only stamps access-log lines.
    if (!config_->access_logs.empty()) {
      info_.start_wall_us = dispatcher().time_source().SystemUs();
    }
    filters_.reserve(config_->filters.size());
    for (const auto& factory : config_->filters) {
      filters_.push_back(factory->Create());
      filters_.back()->SetCallbacks(*this);
    }
    config_->stats->downstream_rq_total.Inc();
    config_->stats->downstream_rq_active.Inc();
  }

  ~ActiveStream() override {
    for (auto& filter : filters_) filter->OnDestroy();
    Log();  // A request cut short (the client went away) is logged too, flagged DC.
    config_->stats->downstream_rq_active.Dec();
    if (upgrade_counted_) config_->stats->downstream_cx_upgrades_active.Dec();
  }

  // RequestDecoder
  void DecodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    headers_ = std::move(headers);
    request_complete_ = end_stream;
    (headers_->protocol == Protocol::kHttp2 ? config_->stats->downstream_rq_http2_total
                                            : config_->stats->downstream_rq_http1_total)
        .Inc();
    PrepareRequestHeaders();
    if (parent_.worker_.shedding_load()) {
      config_->stats->downstream_rq_overload.Inc();
      SendLocalReply(503, "overloaded\n", "OL", &RetryAfterOneSecond());
      return;
    }
    if (!NormalizePath(headers_->path, config_->path_normalization)) {
      config_->stats->downstream_rq_invalid_path.Inc();
      SendLocalReply(400, "bad request\n", "DPE");
      return;
    }
    if (!headers_->upgrade.empty() && !AllowUpgrade()) {
      // As Envoy: an upgrade its route does not allow is refused, not served as a plain request
      // (the client would read that answer as a failed handshake anyway).
      config_->stats->downstream_rq_ws_on_non_ws_route.Inc();
      SendLocalReply(403, "upgrade not allowed\n", "");
      return;
    }
    headers_end_stream_ = end_stream;
    RunDecodeHeaders(0);
  }

  void DecodeData(std::string_view data, bool end_stream) override {
    KeepAlive();
    request_complete_ = end_stream;
    info_.bytes_received += data.size();
    if (response_complete_) return;
    if (paused_) {
      // A filter holds the request (e.g. queued for an in-flight slot): keep the body until it
      // lets go, and stop reading once a buffer's worth is waiting.
      buffered_body_.append(data);
      buffered_end_ = end_stream;
      if (!buffer_read_disabled_ && buffered_body_.size() > config_->buffer_limit) {
        buffer_read_disabled_ = true;
        ReadDisableDownstream(true);
      }
      return;
    }
    PassData(data, end_stream);
  }

  void DecodeTrailers(HeaderMap trailers) override {
    KeepAlive();
    request_complete_ = true;
    if (response_complete_) return;
    if (paused_) {
      buffered_trailers_ = std::make_unique<HeaderMap>(std::move(trailers));
      return;
    }
    PassTrailers(trailers);
  }

  void OnDownstreamWatermark(bool above) {
    for (auto& filter : filters_) {
      if (above) {
        filter->OnDownstreamAboveWriteBufferHighWatermark();
      } else {
        filter->OnDownstreamBelowWriteBufferLowWatermark();
      }
    }
  }

  void OnReset() {
    if (!response_complete_) info_.AddFlag("DC");
  }

  void OnDrainTimeout() {
    if (response_complete_) return;
    if (!response_started_) {
      SendLocalReply(503, "draining\n", "DRAIN");
      return;
    }
    info_.AddFlag("DRAIN");  // Logged with the status it already sent, as it goes.
  }

  // The codec refused the rest of this request (a malformed body) and answered `status`
  // itself when no response was under way (`answered`). Logged as such when it goes.
  void OnCodecRefused(int status, bool answered) {
    if (response_complete_) return;
    if (answered) info_.response_code = status;
    info_.AddFlag("DPE");
    response_complete_ = true;
  }

  // StreamCallbacks: what the codec says of this stream alone (HTTP/2).
  void OnResetStream(StreamResetReason reason) override {
    // The client gave up on this stream; nothing more goes to its encoder.
    if (response_complete_) return;
    idle_.Disarm();
    info_.AddFlag("DC");
    response_started_ = true;
    response_complete_ = true;
    Log();
    parent_.RemoveStream(*this);
  }
  void OnAboveWriteBufferHighWatermark() override { OnDownstreamWatermark(true); }
  void OnBelowWriteBufferLowWatermark() override { OnDownstreamWatermark(false); }

  // FilterCallbacks
  void ContinueDecoding() override {
    if (!paused_ || response_started_) return;
    paused_ = false;
    RunDecodeHeaders(stopped_at_ + 1);
    if (paused_ || response_complete_) return;
    if (!buffered_body_.empty() || buffered_end_) {
      std::string body = std::move(buffered_body_);
      buffered_body_.clear();
      PassData(body, buffered_end_ && buffered_trailers_ == nullptr);
    }
    if (buffered_trailers_ != nullptr) PassTrailers(*buffered_trailers_);
    buffered_trailers_.reset();
    if (buffer_read_disabled_) {
      buffer_read_disabled_ = false;
      ReadDisableDownstream(false);
    }
  }
  Dispatcher& dispatcher() override { return parent_.worker_.dispatcher(); }
  uint64_t Random() override { return parent_.worker_.Random(); }
  StreamInfo& stream_info() override { return info_; }
  const std::string& downstream_address() override { return parent_.connection_->peer_address(); }
  const Route* route() override {
    if (!route_resolved_) {
      route_resolved_ = true;
      route_ = config_->route_config->RouteFor(*headers_);
      if (route_ != nullptr) info_.route_name = route_->name();
    }
    return route_;
  }

  using FilterCallbacks::SendLocalReply;
  void SendLocalReply(int status, std::string_view body, std::string_view flag,
                      const HeaderMap* extra) override {
    if (response_started_) {
      ResetStream();
      return;
    }
    if (!flag.empty()) info_.AddFlag(flag);
    if (flag == "NR") config_->stats->no_route.Inc();
    auto headers = std::make_unique<ResponseHeaders>();
    if (extra != nullptr) headers->headers = *extra;
    if (headers_ != nullptr && IsGrpcRequest(*headers_)) {
      // A gRPC client reads its outcome from grpc-status, never from the HTTP status.
      headers->status = 200;
      headers->headers.Add("content-type", "application/grpc");
      headers->headers.Add("grpc-status",
                           absl::StrCat(static_cast<int>(GrpcStatusForHttpStatus(status))));
      headers->headers.Add("grpc-message", GrpcMessage(body));
      EncodeHeaders(std::move(headers), true);
      return;
    }
    headers->status = status;
    if (!body.empty()) headers->headers.Add("content-type", "text/plain");
    headers->headers.Add("content-length", absl::StrCat(body.size()));
    EncodeHeaders(std::move(headers), body.empty());
    if (!body.empty()) EncodeData(body, true);
  }

  void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    if (response_started_) return;
    response_started_ = true;
    if (!end_stream) KeepAlive();
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->EncodeHeaders(*headers, end_stream);
    }
    info_.response_code = headers->status;
    for (const std::string& name : config_->access_log_response_headers) {
      if (const std::string_view* value = headers->headers.Get(name)) {
        logged_response_headers_.emplace_back(name, *value);
      }
    }
    if (parent_.draining_ || parent_.worker_.draining() || parent_.worker_.shedding_load()) {
      parent_.codec_->Shutdown();  // No keep-alive: HTTP/1 says close, HTTP/2 goes away.
    }
    encoder_.EncodeHeaders(*headers, end_stream);
    if (end_stream) Complete();
  }

  void EncodeData(std::string_view data, bool end_stream) override {
    if (response_complete_) return;
    if (!end_stream) KeepAlive();  // The last piece completes the stream instead.
    info_.bytes_sent += data.size();
    encoder_.EncodeData(data, end_stream);
    if (end_stream) Complete();
  }

  void EncodeTrailers(HeaderMap trailers) override {
    if (response_complete_) return;
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->EncodeTrailers(trailers);
    }
    encoder_.EncodeTrailers(trailers);
    Complete();
  }

  void ReadDisableDownstream(bool disable) override {
    // HTTP/1: the connection's reads; HTTP/2: this stream's flow-control window.
    if (!parent_.closed_ && !response_complete_) encoder_.stream().ReadDisable(disable);
  }

  void ResetStream() override {
    if (response_complete_) return;
    idle_.Disarm();
    info_.AddFlag("UR");
    Log();
    response_complete_ = true;
    encoder_.stream().ResetStream();
    parent_.RemoveStream(*this);
  }

  bool response_complete() const { return response_complete_; }

 private:
  // Runs the request head through filters[from..]. A filter that stops before the last one
  // pauses the request until it calls ContinueDecoding() (or answers it).
  void RunDecodeHeaders(size_t from) {
    for (size_t i = from; i < filters_.size(); ++i) {
      stopped_at_ = i;
      if (filters_[i]->DecodeHeaders(*headers_, headers_end_stream_) == FilterStatus::kStop) {
        paused_ = !response_started_ && i + 1 < filters_.size();
        return;
      }
      if (response_started_) return;
    }
    // No filter took the request (no router configured): nothing can answer it.
    SendLocalReply(404, "", "NR");
  }

  void PassData(std::string_view data, bool end_stream) {
    for (size_t i = 0; i <= stopped_at_ && i < filters_.size(); ++i) {
      if (filters_[i]->DecodeData(data, end_stream) == FilterStatus::kStop) return;
    }
  }

  void PassTrailers(HeaderMap& trailers) {
    for (size_t i = 0; i <= stopped_at_ && i < filters_.size(); ++i) {
      if (filters_[i]->DecodeTrailers(trailers) == FilterStatus::kStop) return;
    }
  }

  // upgrade_configs: the route's word on this upgrade type, else the connection manager's.
  // An allowed one is counted as Envoy does, from here to the stream's end.
  bool AllowUpgrade() {
    const Route* r = route();
    std::optional<bool> by_route =
        r != nullptr ? r->UpgradeEnabled(headers_->upgrade) : std::nullopt;
    bool allowed =
        by_route.value_or(std::find(config_->upgrade_types.begin(), config_->upgrade_types.end(),
                                    headers_->upgrade) != config_->upgrade_types.end());
    if (!allowed) return false;
    upgrade_counted_ = true;
    config_->stats->downstream_cx_upgrades_total.Inc();
    config_->stats->downstream_cx_upgrades_active.Inc();
    return true;
  }

  // x-forwarded-client-cert as the listener's forward_client_cert_details says.
  void ForwardClientCert(HeaderMap& h) {
    const network::TlsInfo* tls = parent_.connection_->tls_info();
    info_.tls = tls;
    bool verified = tls != nullptr && tls->peer != nullptr;
    bool keep = false;
    bool add = false;
    switch (config_->forward_client_cert) {
      case http::ForwardClientCert::kSanitize:
        break;
      case http::ForwardClientCert::kForwardOnly:
        keep = verified;
        break;
      case http::ForwardClientCert::kAppendForward:
        keep = add = verified;
        break;
      case http::ForwardClientCert::kSanitizeSet:
        add = verified;
        break;
      case http::ForwardClientCert::kAlwaysForwardOnly:
        return;
    }
    const std::string_view* incoming = h.Get(WellKnownHeader::kXForwardedClientCert);
    if (!add) {
      if (incoming != nullptr && !keep) h.Remove("x-forwarded-client-cert");
      return;
    }
    std::string element = ClientCertElement(*tls);
    if (incoming != nullptr && keep) {
      element = absl::StrCat(AbslView(*incoming), ",", element);
    }
    h.Set("x-forwarded-client-cert", element);
  }

  // The headers every request gets before any filter sees it.
  void PrepareRequestHeaders() {
    HeaderMap& h = headers_->headers;
    if (!config_->access_logs.empty()) {
      // Filters may rewrite these; the log shows what the client sent.
      original_method_ = headers_->method;
      original_path_ = headers_->path;
      original_authority_ = headers_->authority;
    }
    ForwardClientCert(h);
    if (!parent_.peer_host_) parent_.peer_host_ = AddressHost(parent_.connection_->peer_address());
    std::string_view peer = *parent_.peer_host_;
    const std::string_view* xff = h.Get(WellKnownHeader::kXForwardedFor);
    info_.client_ip = ClientAddress(xff, peer, config_->xff_num_trusted_hops);
    if (xff != nullptr) {
      h.SetStored("x-forwarded-for", h.arena().Join({*xff, ", ", peer}));
    } else {
      h.AddStored("x-forwarded-for", h.arena().Copy(peer), WellKnownHeader::kXForwardedFor);
    }
    if (h.Get(WellKnownHeader::kXForwardedProto) == nullptr) {
      h.AddStored("x-forwarded-proto", "http", WellKnownHeader::kXForwardedProto);
    } else if (config_->xff_num_trusted_hops == 0) {
      h.SetStored("x-forwarded-proto", "http");
    }
    if (config_->generate_request_id && h.Get(WellKnownHeader::kXRequestId) == nullptr) {
      char* id = h.arena().Allocate(36);
      WriteRequestId(parent_.worker_.Random(), parent_.worker_.Random(), id);
      h.AddStored("x-request-id", std::string_view(id, 36), WellKnownHeader::kXRequestId);
    }
  }

  void Complete() {
    if (response_complete_) return;
    response_complete_ = true;
    idle_.Disarm();
    Log();
    parent_.RemoveStream(*this);
  }

  void Log() {
    if (logged_) return;
    logged_ = true;
    const ConnectionManagerStats& stats = *config_->stats;
    int code = info_.response_code;
    if (code >= 100 && code < 600) stats.downstream_rq_class[code / 100 - 1]->Inc();
    double ms = (dispatcher().time_source().MonotonicUs() - info_.start_us) / 1000.0;
    stats.downstream_rq_time.Record(ms);
    if (config_->access_logs.empty()) return;
    std::string_view ua, xff, request_id;
    headers_->Lookup("user-agent", &ua);
    headers_->Lookup("x-forwarded-for", &xff);
    headers_->Lookup("x-request-id", &request_id);
    AccessLogContext fields;
    fields.start_wall_us = info_.start_wall_us;
    fields.method = original_method_;
    fields.path = original_path_;
    fields.protocol = headers_->protocol;
    fields.code = code;
    fields.flags = info_.response_flags;
    fields.bytes_received = info_.bytes_received;
    fields.bytes_sent = info_.bytes_sent;
    fields.duration_ms = static_cast<int64_t>(ms);
    fields.xff = xff;
    fields.user_agent = ua;
    fields.request_id = request_id;
    fields.authority = original_authority_;
    fields.upstream_host = info_.upstream_host;
    fields.downstream_address = parent_.connection_->peer_address();
    fields.route_name = info_.route_name;
    fields.tls = info_.tls;
    fields.principal = info_.peer_principal();
    fields.policy_rule = info_.policy_rule;
    fields.request = headers_.get();
    fields.response_headers = &logged_response_headers_;
    parent_.WriteAccessLogs(*config_, fields);
  }

  // stream_idle_timeout: restarted by every event of the stream, either way.
  void KeepAlive() {
    if (idle_queue_ != nullptr) idle_queue_->Arm(idle_);
  }
  void OnIdleTimeout() {
    if (response_complete_ || parent_.closed_) return;
    config_->stats->downstream_rq_idle_timeout.Inc();
    if (!response_started_) {
      SendLocalReply(408, "stream timeout\n", "SI");
      return;
    }
    info_.AddFlag("SI");
    ResetStream();
  }
  // The stream's idle timeout: an entry in the worker's queue for that duration.
  class IdleTimeout : public TimeoutQueue::Entry {
   public:
    explicit IdleTimeout(ActiveStream& stream) : stream_(stream) {}
    void OnTimeout() override { stream_.OnIdleTimeout(); }

   private:
    ActiveStream& stream_;
  };

  ConnectionManager& parent_;
  std::shared_ptr<const ConnectionManagerConfig> config_;
  ResponseEncoder& encoder_;
  IdleTimeout idle_{*this};
  // The worker's queue for stream_idle_timeout (null: none), looked up once per stream.
  TimeoutQueue* const idle_queue_ =
      config_->stream_idle_timeout.count() > 0
          ? &parent_.worker_.dispatcher().TimeoutQueueFor(config_->stream_idle_timeout)
          : nullptr;
  RequestHeadersPtr headers_;
  // Inline: a typical chain (policy, rate limit, router) costs no allocation per request.
  absl::InlinedVector<std::unique_ptr<StreamFilter>, 4> filters_;
  StreamInfo info_;
  const Route* route_ = nullptr;
  bool route_resolved_ = false;
  size_t stopped_at_ = 0;
  bool headers_end_stream_ = false;
  bool paused_ = false;  // A filter before the last one holds the request.
  std::string buffered_body_;
  bool buffered_end_ = false;
  std::unique_ptr<HeaderMap> buffered_trailers_;
  bool buffer_read_disabled_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool logged_ = false;
  // The response header values the access log formats read (%RESP(x)%).
  std::vector<std::pair<std::string, std::string>> logged_response_headers_;
  bool upgrade_counted_ = false;  // In downstream_cx_upgrades_active.
  std::string original_method_;
  std::string original_path_;
  std::string original_authority_;
};

ConnectionManager::ConnectionManager(WorkerContext& worker, std::shared_ptr<ListenerState> listener,
                                     std::unique_ptr<network::Connection> connection)
    : worker_(worker),
      listener_(std::move(listener)),
      config_(listener_->config),
      connection_(std::move(connection)) {
  connection_->SetCallbacks(this);
  config_->stats->downstream_cx_total.Inc();
  config_->stats->downstream_cx_active.Inc();
  if (!config_->codec_factory->detects()) {
    codec_factory_ = config_->codec_factory.get();
    CreateFirstCodec();
  }
  // Until its first byte a new connection is just idle; the headers timeout starts then.
  WaitFor(Waiting::kNextRequest);
}

void ConnectionManager::WaitFor(Waiting what) {
  waiting_ = what;
  switch (what) {
    case Waiting::kNothing:
      Disarm();
      return;
    case Waiting::kRequestHeaders:
      worker_.dispatcher().TimeoutQueueFor(config_->request_headers_timeout).Arm(*this);
      return;
    case Waiting::kNextRequest:
      worker_.dispatcher().TimeoutQueueFor(config_->idle_timeout).Arm(*this);
      return;
  }
}

void ConnectionManager::OnTimeout() {
  if (closed_ || !streams_.empty()) return;
  if (waiting_ == Waiting::kNextRequest || codec_ == nullptr || codec_->idle()) {
    // Idle between requests, or connected and never sent a byte. HTTP/2 says GOAWAY first.
    config_->stats->downstream_cx_idle_timeout.Inc();
    if (codec_ != nullptr) codec_->Shutdown();
    Close(/*flush=*/true);
    return;
  }
  config_->stats->downstream_rq_timeout.Inc();
  codec_->SendLocalError(408);
  OnProtocolError(408, "request headers timeout", /*answered=*/true);
}

ConnectionManager::~ConnectionManager() {
  streams_.clear();
  config_->stats->downstream_cx_active.Dec();
}

void ConnectionManager::StartDrain() {
  draining_ = true;
  if (codec_ == nullptr) {
    Close(/*flush=*/true);
    return;
  }
  codec_->Shutdown();
  if (streams_.empty() && codec_->idle()) Close(/*flush=*/true);
}

void ConnectionManager::DrainAfterNextResponse() {
  draining_ = true;
  if (codec_ != nullptr) codec_->Shutdown();
}

void ConnectionManager::CutByDrainTimeout() {
  // A local reply completes its stream, which leaves streams_.
  absl::InlinedVector<ActiveStream*, 1> active;
  for (auto& stream : streams_) active.push_back(stream.get());
  for (ActiveStream* stream : active) stream->OnDrainTimeout();
  Close(/*flush=*/true);
}

void ConnectionManager::CreateCodec() { codec_ = codec_factory_->Create(*connection_, *this); }

void ConnectionManager::CreateFirstCodec() {
  CreateCodec();
  (codec_->protocol() == Protocol::kHttp2 ? config_->stats->downstream_cx_http2_total
                                          : config_->stats->downstream_cx_http1_total)
      .Inc();
}

void ConnectionManager::OnData(const char* data, size_t length) {
  if (codec_ == nullptr) {
    if (codec_factory_ == nullptr) {
      DetectProtocol(data, length);
      return;
    }
    CreateCodec();
  }
  codec_->Dispatch(data, length);
  ArmHeadTimeoutIfPending();
}

void ConnectionManager::DetectProtocol(const char* data, size_t length) {
  std::string_view bytes(data, length);
  if (first_bytes_ != nullptr) {
    first_bytes_->append(data, length);
    bytes = *first_bytes_;
  }
  codec_factory_ = config_->codec_factory->Detect(bytes);
  if (codec_factory_ == nullptr) {
    // Too few bytes to tell (a client writing its preface piece by piece): keep them.
    if (first_bytes_ == nullptr) first_bytes_ = std::make_unique<std::string>(bytes);
    return;
  }
  std::unique_ptr<std::string> held = std::move(first_bytes_);  // `bytes` may point into it.
  CreateFirstCodec();
  codec_->Dispatch(bytes.data(), bytes.size());
  ArmHeadTimeoutIfPending();
}

void ConnectionManager::ArmHeadTimeoutIfPending() {
  // Most heads arrive whole in the read that starts them, and their stream replaces the
  // timeout at once: arming it only for a head still incomplete when the read is parsed
  // saves a queue operation per request. Until then the idle timeout stands.
  if (!head_started_) return;
  head_started_ = false;
  if (!closed_ && streams_.empty() && waiting_ != Waiting::kRequestHeaders) {
    WaitFor(Waiting::kRequestHeaders);
  }
}

void ConnectionManager::OnEvent(network::ConnectionEvent event) {
  // kConnected: a TLS handshake finished. Anything else closed the connection (a timed-out
  // handshake too).
  if (event == network::ConnectionEvent::kConnected) return;
  for (auto& stream : streams_) stream->OnReset();
  Close(/*flush=*/false);
}

void ConnectionManager::OnAboveWriteBufferHighWatermark() {
  if (codec_ != nullptr) codec_->OnUnderlyingConnectionAboveWriteBufferHighWatermark();
  for (auto& stream : streams_) stream->OnDownstreamWatermark(true);
}

void ConnectionManager::OnBelowWriteBufferLowWatermark() {
  if (codec_ != nullptr) codec_->OnUnderlyingConnectionBelowWriteBufferLowWatermark();
  for (auto& stream : streams_) stream->OnDownstreamWatermark(false);
}

void ConnectionManager::OnRequestBegin() { head_started_ = true; }

RequestDecoder& ConnectionManager::NewStream(ResponseEncoder& encoder) {
  head_started_ = false;  // The head is complete.
  WaitFor(Waiting::kNothing);
  // Each request runs on the listener's newest config; the connection keeps its limits.
  streams_.push_back(std::make_unique<ActiveStream>(*this, listener_->config, encoder));
  return *streams_.back();
}

void ConnectionManager::OnProtocolError(int status, std::string_view details, bool answered) {
  config_->stats->downstream_cx_protocol_error.Inc();
  PHX_LOG(kDebug, "downstream ", AbslView(connection_->peer_address()),
          " protocol error: ", AbslView(details));
  WaitFor(Waiting::kNothing);
  if (answered && streams_.empty()) {
    // Refused before it became a request: no stream counts and logs it, so the connection
    // does (flag DPE, as Envoy's downstream protocol error). Operators hunt attacks in these
    // lines.
    config_->stats->downstream_rq_class[status / 100 - 1]->Inc();
    LogRefusal(status);
  }
  for (auto& stream : streams_) stream->OnCodecRefused(status, answered);
  Close(/*flush=*/true);
}

void ConnectionManager::OnStreamRefused(int status, const RequestHeaders& head) {
  config_->stats->downstream_rq_class[status / 100 - 1]->Inc();
  LogRefusal(status, &head);
}

void ConnectionManager::LogRefusal(int status, const RequestHeaders* head) {
  const auto& access_logs = config_->access_logs;
  if (access_logs.empty()) return;
  AccessLogContext fields;
  if (head != nullptr) {
    fields.method = head->method;
    fields.path = head->path;
    fields.authority = head->authority;
    fields.request = head;
  }
  fields.start_wall_us = worker_.dispatcher().time_source().SystemUs();
  fields.protocol = codec_ != nullptr ? codec_->protocol() : Protocol::kHttp11;
  fields.code = status;
  fields.flags = "DPE";
  fields.downstream_address = connection_->peer_address();
  fields.tls = connection_->tls_info();
  fields.principal = fields.tls != nullptr && fields.tls->peer != nullptr
                         ? std::string_view(fields.tls->peer->principal)
                         : std::string_view();
  WriteAccessLogs(*config_, fields);
}

void ConnectionManager::WriteAccessLogs(const ConnectionManagerConfig& config,
                                        const AccessLogContext& context) {
  for (const auto& log : config.access_logs) log.file->Log(log.formatter->Format(context));
}

void ConnectionManager::RemoveStream(ActiveStream& stream) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->get() != &stream) continue;
    // Deleted after this event: we may be inside the stream's own call stack.
    worker_.dispatcher().DeferredDelete(std::move(*it));
    streams_.erase(it);
    break;
  }
  if (streams_.empty()) OnStreamsDone();
}

void ConnectionManager::OnStreamsDone() {
  if (closed_) return;
  if (!codec_->keep_alive() || draining_) {
    Close(/*flush=*/true);
    return;
  }
  WaitFor(Waiting::kNextRequest);
  // Parse any pipelined request outside the current call stack.
  // Safe to capture `this`: the manager is only ever deleted by deferred work queued after
  // this (deferred callbacks run in order).
  worker_.dispatcher().DeferCall(
      [](void* manager) { static_cast<ConnectionManager*>(manager)->ResumeAfterStream(); }, this);
}

void ConnectionManager::ResumeAfterStream() {
  if (closed_ || codec_ == nullptr || !streams_.empty()) return;
  if (codec_->discardable()) {
    // Nothing pipelined: drop the codec until the next request's first byte, so an idle
    // keep-alive connection costs little more than its socket.
    codec_.reset();
    return;
  }
  codec_->ResumeDispatch();
  ArmHeadTimeoutIfPending();
}

void ConnectionManager::Close(bool flush) {
  if (closed_) return;
  closed_ = true;
  WaitFor(Waiting::kNothing);
  if (flush) {
    connection_->CloseAfterFlush();
  } else {
    connection_->Close();
  }
  for (auto& stream : streams_) worker_.dispatcher().DeferredDelete(std::move(stream));
  streams_.clear();
  worker_.dispatcher().Defer(
      [worker = &worker_, self = this] { worker->OnConnectionClosed(self); });
}

}  // namespace phoenix::http
