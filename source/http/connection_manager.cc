#include "source/http/connection_manager.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "source/common/logging.h"

namespace phoenix::http {
namespace {

std::string_view HostOnly(std::string_view address) {
  // "1.2.3.4:56" -> "1.2.3.4", "[::1]:56" -> "::1"
  if (!address.empty() && address[0] == '[') {
    size_t end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  size_t colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

std::string FormatTimestamp(int64_t wall_us) {
  time_t seconds = wall_us / 1000000;
  tm utc;
  gmtime_r(&seconds, &utc);
  char buffer[32];
  strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%03dZ", buffer, static_cast<int>((wall_us / 1000) % 1000));
}

std::string_view OrDash(std::string_view s) { return s.empty() ? std::string_view("-") : s; }

// A random (version 4) UUID, formatted without printf machinery: this runs per request.
std::string NewRequestId(uint64_t high, uint64_t low) {
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    uint64_t word = i < 16 ? high : low;
    id[pos++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xf];
  }
  return id;
}

}  // namespace

std::string ClientAddress(const std::string* xff, std::string_view peer, uint32_t trusted_hops) {
  if (trusted_hops == 0 || xff == nullptr) return std::string(peer);
  std::vector<absl::string_view> entries = absl::StrSplit(*xff, ',');
  if (entries.size() < trusted_hops) return std::string(peer);
  return std::string(absl::StripAsciiWhitespace(entries[entries.size() - trusted_hops]));
}

ConnectionManagerStats::ConnectionManagerStats(StatsStore& store, const std::string& prefix)
    : ConnectionManagerStats(StatsScope(store, absl::StrCat("http.", prefix, "."))) {}

// One request/response exchange: owns the request head and the filter instances, and is
// the FilterCallbacks those filters talk to.
class ConnectionManager::ActiveStream : public FilterCallbacks {
 public:
  PHX_FREE_LIST_ALLOCATED(ActiveStream)

  ActiveStream(ConnectionManager& parent, std::shared_ptr<const ConnectionManagerConfig> config,
               RequestHeadersPtr headers)
      : parent_(parent), config_(std::move(config)), headers_(std::move(headers)) {
    info_.start_us = dispatcher().time_source().MonotonicUs();
    info_.start_wall_us = dispatcher().time_source().SystemUs();
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
  }

  void DecodeHeaders(bool end_stream) {
    request_complete_ = end_stream;
    PrepareRequestHeaders();
    if (!NormalizePath(headers_->path, config_->path_normalization)) {
      config_->stats->downstream_rq_invalid_path.Inc();
      SendLocalReply(400, "bad request\n", "DPE");
      return;
    }
    headers_end_stream_ = end_stream;
    RunDecodeHeaders(0);
  }

  void DecodeData(std::string_view data, bool end_stream) {
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

  void DecodeTrailers(HeaderMap& trailers) {
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

  void SendLocalReply(int status, std::string_view body, std::string_view flag) override {
    if (response_started_) {
      ResetStream();
      return;
    }
    if (!flag.empty()) info_.AddFlag(flag);
    if (flag == "NR") config_->stats->no_route.Inc();
    auto headers = std::make_unique<ResponseHeaders>();
    headers->status = status;
    if (!body.empty()) headers->headers.Add("content-type", "text/plain");
    headers->headers.Add("content-length", absl::StrCat(body.size()));
    EncodeHeaders(std::move(headers), body.empty());
    if (!body.empty()) EncodeData(body, true);
  }

  void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    if (response_started_) return;
    response_started_ = true;
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->EncodeHeaders(*headers, end_stream);
    }
    info_.response_code = headers->status;
    if (parent_.draining_ || parent_.worker_.draining()) parent_.codec_->DisableKeepAlive();
    parent_.codec_->EncodeHeaders(*headers, end_stream);
    if (end_stream) Complete();
  }

  void EncodeData(std::string_view data, bool end_stream) override {
    if (response_complete_) return;
    info_.bytes_sent += data.size();
    parent_.codec_->EncodeData(data, end_stream);
    if (end_stream) Complete();
  }

  void EncodeTrailers(HeaderMap trailers) override {
    if (response_complete_) return;
    parent_.codec_->EncodeTrailers(trailers);
    Complete();
  }

  void ReadDisableDownstream(bool disable) override {
    if (!parent_.closed_) parent_.connection_->ReadDisable(disable);
  }

  void ResetStream() override {
    info_.AddFlag("UR");
    Log();
    parent_.Close(/*flush=*/true);
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

  // The headers every request gets before any filter sees it.
  void PrepareRequestHeaders() {
    HeaderMap& h = headers_->headers;
    if (!config_->access_logs.empty()) {
      // Filters may rewrite these; the log shows what the client sent.
      original_method_ = headers_->method;
      original_path_ = headers_->path;
      original_authority_ = headers_->authority;
    }
    std::string_view peer = HostOnly(parent_.connection_->peer_address());
    info_.client_ip = ClientAddress(h.Get("x-forwarded-for"), peer, config_->xff_num_trusted_hops);
    if (const std::string* xff = h.Get("x-forwarded-for")) {
      std::string value = absl::StrCat(*xff, ", ", AbslView(peer));
      h.Set("x-forwarded-for", value);
    } else {
      h.Add("x-forwarded-for", peer);
    }
    if (config_->xff_num_trusted_hops == 0 || h.Get("x-forwarded-proto") == nullptr) {
      h.Set("x-forwarded-proto", "http");
    }
    if (config_->generate_request_id && h.Get("x-request-id") == nullptr) {
      h.Add("x-request-id", NewRequestId(parent_.worker_.Random(), parent_.worker_.Random()));
    }
  }

  void Complete() {
    if (response_complete_) return;
    response_complete_ = true;
    Log();
    parent_.OnStreamComplete();
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
    std::string line = absl::StrFormat(
        "[%s] \"%s %s HTTP/1.%d\" %d %s %d %d %d \"%s\" \"%s\" \"%s\" \"%s\" \"%s\"\n",
        FormatTimestamp(info_.start_wall_us), original_method_, original_path_,
        headers_->http_minor, code, info_.response_flags.empty() ? "-" : info_.response_flags,
        info_.bytes_received, info_.bytes_sent, static_cast<int64_t>(ms), AbslView(OrDash(xff)),
        AbslView(OrDash(ua)), AbslView(OrDash(request_id)), AbslView(OrDash(original_authority_)),
        AbslView(OrDash(info_.upstream_host)));
    for (const auto& log : config_->access_logs) log->Log(line);
  }

  ConnectionManager& parent_;
  std::shared_ptr<const ConnectionManagerConfig> config_;
  RequestHeadersPtr headers_;
  std::vector<std::unique_ptr<StreamFilter>> filters_;
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
  std::string original_method_;
  std::string original_path_;
  std::string original_authority_;
};

ConnectionManager::ConnectionManager(WorkerContext& worker, std::shared_ptr<ListenerState> listener,
                                     std::unique_ptr<network::Connection> connection)
    : worker_(worker),
      listener_(std::move(listener)),
      config_(listener_->config),
      connection_(std::move(connection)),
      codec_(std::make_unique<Http1ServerCodec>(*connection_, *this, config_->limits)) {
  connection_->SetCallbacks(this);
  config_->stats->downstream_cx_total.Inc();
  config_->stats->downstream_cx_active.Inc();
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
  if (closed_ || stream_ != nullptr) return;
  if (waiting_ == Waiting::kNextRequest || codec_ == nullptr || codec_->idle()) {
    // Idle between requests, or connected and never sent a byte.
    config_->stats->downstream_cx_idle_timeout.Inc();
    Close(/*flush=*/true);
    return;
  }
  config_->stats->downstream_rq_timeout.Inc();
  OnProtocolError(408, "request headers timeout");
}

ConnectionManager::~ConnectionManager() {
  stream_.reset();
  config_->stats->downstream_cx_active.Dec();
}

void ConnectionManager::StartDrain() {
  draining_ = true;
  if (codec_ == nullptr) {
    Close(/*flush=*/true);
    return;
  }
  codec_->DisableKeepAlive();
  if (stream_ == nullptr && codec_->idle()) Close(/*flush=*/true);
}

void ConnectionManager::OnData(const char* data, size_t length) {
  if (codec_ == nullptr) {
    codec_ = std::make_unique<Http1ServerCodec>(*connection_, *this, config_->limits);
  }
  codec_->Dispatch(data, length);
}

void ConnectionManager::OnEvent(network::ConnectionEvent event) {
  if (event != network::ConnectionEvent::kRemoteClose) return;
  if (stream_ != nullptr) stream_->OnReset();
  Close(/*flush=*/false);
}

void ConnectionManager::OnAboveWriteBufferHighWatermark() {
  if (stream_ != nullptr) stream_->OnDownstreamWatermark(true);
}

void ConnectionManager::OnBelowWriteBufferLowWatermark() {
  if (stream_ != nullptr) stream_->OnDownstreamWatermark(false);
}

void ConnectionManager::OnRequestBegin() {
  if (waiting_ != Waiting::kRequestHeaders) WaitFor(Waiting::kRequestHeaders);
}

void ConnectionManager::OnRequestHeaders(RequestHeadersPtr headers, bool end_stream) {
  if (closed_) return;
  WaitFor(Waiting::kNothing);
  // Each request runs on the listener's newest config; the connection keeps its limits.
  stream_ = std::make_unique<ActiveStream>(*this, listener_->config, std::move(headers));
  stream_->DecodeHeaders(end_stream);
}

void ConnectionManager::OnRequestData(std::string_view data, bool end_stream) {
  if (stream_ != nullptr) stream_->DecodeData(data, end_stream);
}

void ConnectionManager::OnRequestTrailers(HeaderMap trailers) {
  if (stream_ != nullptr) stream_->DecodeTrailers(trailers);
}

void ConnectionManager::OnProtocolError(int status, std::string_view details) {
  config_->stats->downstream_cx_protocol_error.Inc();
  PHX_LOG(kDebug, "downstream ", AbslView(connection_->peer_address()),
          " protocol error: ", AbslView(details));
  WaitFor(Waiting::kNothing);
  if (stream_ != nullptr && codec_->response_started()) {
    Close(/*flush=*/true);
    return;
  }
  stream_.reset();
  // A short generic answer; details go to the debug log only.
  std::string body = absl::StrCat(AbslView(ReasonPhrase(status)), "\n");
  absl::AsciiStrToLower(&body);
  std::string response =
      absl::StrCat("HTTP/1.1 ", status, " ", AbslView(ReasonPhrase(status)),
                   "\r\ncontent-type: text/plain\r\ncontent-length: ", body.size(),
                   "\r\nconnection: close\r\n\r\n", body);
  connection_->Write(response);
  config_->stats->downstream_rq_class[status / 100 - 1]->Inc();
  Close(/*flush=*/true);
}

void ConnectionManager::OnStreamComplete() {
  worker_.dispatcher().DeferredDelete(std::move(stream_));
  if (!codec_->keep_alive() || draining_) {
    Close(/*flush=*/true);
    return;
  }
  WaitFor(Waiting::kNextRequest);
  // Parse any pipelined request outside the current call stack.
  // Safe to capture `this`: the manager is only ever deleted by deferred work queued after
  // this (deferred callbacks run in order).
  worker_.dispatcher().Defer([this] {
    if (closed_ || codec_ == nullptr) return;
    if (codec_->idle() && stream_ == nullptr) {
      // Nothing pipelined: drop the parser until the next request's first byte, so an idle
      // keep-alive connection costs little more than its socket.
      codec_.reset();
      return;
    }
    codec_->ResumeAfterResponse();
  });
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
  if (stream_ != nullptr) worker_.dispatcher().DeferredDelete(std::move(stream_));
  worker_.dispatcher().Defer(
      [worker = &worker_, self = this] { worker->OnConnectionClosed(self); });
}

}  // namespace phoenix::http
