#include "source/upstream/health_checker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "source/common/duration.h"
#include "source/common/logging.h"
#include "source/http/http1_codec.h"
#include "source/http/http2_codec.h"

namespace phoenix::upstream {

// The checks of one host: one probe at a time, on a timer. An HTTP probe speaks what the
// cluster's requests speak, through the same codecs: HTTP/2 for protocol HTTP2, or for AUTO
// when the handshake agreed on h2; HTTP/1.1 otherwise.
class HealthChecker::HostCheck : public network::ConnectionCallbacks,
                                 public http::Http2ClientConnectionCallbacks,
                                 public http::ResponseDecoder,
                                 public http::StreamCallbacks {
 public:
  HostCheck(HealthChecker& parent, HostSharedPtr host, const config::v1::HealthCheck& config)
      : parent_(parent),
        host_(std::move(host)),
        config_(config),
        random_(std::random_device{}()),
        interval_timer_(parent.dispatcher_.CreateTimer([this] { Probe(); })),
        timeout_timer_(parent.dispatcher_.CreateTimer([this] { Done(false, "timeout"); })) {
    ScheduleNext();
  }

  ~HostCheck() override {
    codec_.reset();
    if (connection_ != nullptr) connection_->Close();
  }

  const Host* host() const { return host_.get(); }
  bool checked() const { return checked_; }
  // Probes now unless a probe is out (warming).
  void ProbeNow() {
    if (in_flight_) return;
    interval_timer_->Disable();
    Probe();
  }

  // network::ConnectionCallbacks
  void OnData(const char* data, size_t length) override {
    if (codec_ != nullptr) codec_->Dispatch(data, length);
  }

  void OnEvent(network::ConnectionEvent event) override {
    switch (event) {
      case network::ConnectionEvent::kConnected:
        if (config_.has_tcp_health_check()) {
          Done(true, "connected");
          return;
        }
        SendRequest();
        return;
      case network::ConnectionEvent::kConnectFailed:
        Done(false, "connect failed");
        return;
      case network::ConnectionEvent::kConnectTimeout:
        Done(false, "connect timeout");
        return;
      case network::ConnectionEvent::kRemoteClose:
        Done(false, "connection closed");
        return;
    }
  }

  // http::Http2ClientConnectionCallbacks (an HTTP/1 codec calls OnProtocolError only)
  void OnProtocolError(std::string_view) override { Done(false, "bad response"); }
  void OnStreamEnded() override {}
  void OnGoAway() override {}

  // http::ResponseDecoder: the status decides; the rest is not read.
  void DecodeHeaders(http::ResponseHeadersPtr headers, bool) override {
    Done(ExpectedStatus(headers->status), absl::StrCat("status ", headers->status));
  }
  void DecodeData(std::string_view, bool) override {}
  void DecodeTrailers(http::HeaderMap) override {}

  // http::StreamCallbacks
  void OnResetStream(http::StreamResetReason) override { Done(false, "stream reset"); }
  void OnAboveWriteBufferHighWatermark() override {}
  void OnBelowWriteBufferLowWatermark() override {}

 private:
  void SendRequest() {
    const config::v1::Cluster& cluster = parent_.cluster_->proto();
    bool http2 = cluster.protocol() == config::v1::Cluster::HTTP2 ||
                 (cluster.protocol() == config::v1::Cluster::AUTO &&
                  connection_->application_protocol() == "h2");
    if (http2) {
      std::string_view scheme =
          parent_.cluster_->transport_socket_factory().ImplementsSecureTransport() ? "https"
                                                                                   : "http";
      codec_ = std::make_unique<http::Http2ClientCodec>(*connection_, *this,
                                                        parent_.cluster_->http2_options(), scheme);
    } else {
      codec_ = std::make_unique<http::Http1ClientCodec>(*connection_, *this);
    }
    http::RequestHeaders request;
    request.method = "GET";
    const auto& http_check = config_.http_health_check();
    request.path = http_check.path().empty() ? "/" : http_check.path();
    request.authority = http_check.host().empty() ? parent_.cluster_->name() : http_check.host();
    request.protocol = codec_->protocol();
    request.headers.Add("user-agent", "phoenix-health-check");
    http::RequestEncoder& encoder = codec_->NewStream(*this);
    encoder.stream().SetCallbacks(this);
    encoder.EncodeHeaders(request, /*end_stream=*/true);
  }

  bool ExpectedStatus(int status) const {
    const auto& ranges = config_.http_health_check().expected_statuses();
    if (ranges.empty()) return status >= 200 && status < 300;
    for (const auto& range : ranges) {
      if (status >= static_cast<int>(range.start()) && status < static_cast<int>(range.end())) {
        return true;
      }
    }
    return false;
  }

  void ScheduleNext() {
    std::chrono::milliseconds interval =
        ToMillisecondsOr(config_.interval(), std::chrono::seconds(5));
    int64_t jitter = ToMilliseconds(config_.interval_jitter()).count();
    if (jitter > 0) interval += std::chrono::milliseconds(random_() % (jitter + 1));
    interval_timer_->Enable(interval);
  }

  void Probe() {
    in_flight_ = true;
    std::chrono::milliseconds timeout =
        ToMillisecondsOr(config_.timeout(), std::chrono::seconds(1));
    connection_ = network::TcpConnection::Connect(
        parent_.dispatcher_, host_->address().get(), timeout, 64 * 1024, this,
        parent_.cluster_->transport_socket_factory().Create());
    timeout_timer_->Enable(timeout);
  }

  void Done(bool healthy, std::string_view detail) {
    if (!in_flight_) return;
    in_flight_ = false;
    timeout_timer_->Disable();
    if (connection_ != nullptr) {
      connection_->Close();
      // We may be inside one of their callbacks. The codec goes first: it refers to the
      // connection.
      if (codec_ != nullptr) parent_.dispatcher_.DeferredDelete(std::move(codec_));
      parent_.dispatcher_.DeferredDelete(std::move(connection_));
    }
    const ClusterStats& stats = parent_.cluster_->stats();
    uint32_t unhealthy = config_.unhealthy_threshold() == 0 ? 3 : config_.unhealthy_threshold();
    uint32_t healthy_needed = config_.healthy_threshold() == 0 ? 2 : config_.healthy_threshold();
    if (healthy) {
      stats.health_check.success.Inc();
      failures_ = 0;
      if (++successes_ >= healthy_needed && host_->failed_active_hc.load()) {
        host_->failed_active_hc.store(false);
        PHX_LOG(kInfo, "health check: ", parent_.cluster_->name(), " ", host_->address_string(),
                " is healthy again");
      }
    } else {
      stats.health_check.failure.Inc();
      successes_ = 0;
      if (++failures_ >= unhealthy && !host_->failed_active_hc.load()) {
        host_->failed_active_hc.store(true);
        PHX_LOG(kWarn, "health check: ", parent_.cluster_->name(), " ", host_->address_string(),
                " is unhealthy (", AbslView(detail), ")");
      }
    }
    bool first = !checked_;
    checked_ = true;
    if (first && parent_.on_warm_) {
      // Warming: the first result alone decides.
      host_->failed_active_hc.store(!healthy);
      if (healthy) successes_ = healthy_needed;
    }
    ScheduleNext();
    if (first) parent_.OnFirstResult();
  }

  HealthChecker& parent_;
  HostSharedPtr host_;
  const config::v1::HealthCheck& config_;
  std::minstd_rand random_;
  std::unique_ptr<Timer> interval_timer_;
  std::unique_ptr<Timer> timeout_timer_;
  std::unique_ptr<network::TcpConnection> connection_;
  std::unique_ptr<http::ClientConnection> codec_;  // HTTP probes, once connected.
  bool in_flight_ = false;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  bool checked_ = false;  // Has a result.
};

HealthChecker::HealthChecker(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster)
    : dispatcher_(dispatcher), cluster_(std::move(cluster)) {
  OnHostsChanged();
}

void HealthChecker::OnHostsChanged() {
  const auto& config = cluster_->proto().health_checks(0);
  HostVectorConstSharedPtr hosts = cluster_->hosts();
  std::vector<std::unique_ptr<HostCheck>> next;
  for (const auto& host : *hosts) {
    auto kept = std::find_if(checks_.begin(), checks_.end(), [&](const auto& check) {
      return check != nullptr && check->host() == host.get();
    });
    next.push_back(kept != checks_.end() ? std::move(*kept)
                                         : std::make_unique<HostCheck>(*this, host, config));
  }
  checks_.swap(next);  // The checks of hosts that left end here.
  if (on_warm_) {
    for (auto& check : checks_) {
      if (!check->checked()) check->ProbeNow();
    }
    OnFirstResult();  // The hosts left may all be checked.
  }
}

void HealthChecker::Warm(std::function<void()> on_warm) {
  on_warm_ = std::move(on_warm);
  for (auto& check : checks_) {
    if (!check->checked()) check->ProbeNow();
  }
  OnFirstResult();
}

bool HealthChecker::warm() const {
  return std::all_of(checks_.begin(), checks_.end(),
                     [](const auto& check) { return check->checked(); });
}

void HealthChecker::OnFirstResult() {
  if (!on_warm_ || !warm()) return;
  dispatcher_.Post(std::move(on_warm_));
  on_warm_ = nullptr;
}

HealthChecker::~HealthChecker() = default;

}  // namespace phoenix::upstream
