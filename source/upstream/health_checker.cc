#include "source/upstream/health_checker.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/duration.h"
#include "source/common/logging.h"

namespace phoenix::upstream {

// The checks of one host: one probe at a time, on a timer.
class HealthChecker::HostCheck : public network::ConnectionCallbacks {
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
    if (connection_ != nullptr) connection_->Close();
  }

  void OnData(const char* data, size_t length) override {
    response_.append(data, std::min(length, size_t{512}));
    size_t line_end = response_.find("\r\n");
    if (line_end == std::string::npos) {
      if (response_.size() >= 512) Done(false, "bad response");
      return;
    }
    // "HTTP/1.1 200 OK"
    int status = 0;
    std::string line = response_.substr(0, line_end);
    size_t space = line.find(' ');
    if (space == std::string::npos || !line.starts_with("HTTP/1.") ||
        !absl::SimpleAtoi(line.substr(space + 1, 3), &status)) {
      Done(false, "bad response");
      return;
    }
    Done(ExpectedStatus(status), absl::StrCat("status ", status));
  }

  void OnEvent(network::ConnectionEvent event) override {
    switch (event) {
      case network::ConnectionEvent::kConnected:
        if (config_.has_tcp_health_check()) {
          Done(true, "connected");
          return;
        }
        request_ = absl::StrCat(
            "GET ",
            config_.http_health_check().path().empty() ? "/" : config_.http_health_check().path(),
            " HTTP/1.1\r\nhost: ",
            config_.http_health_check().host().empty() ? parent_.cluster_->name()
                                                       : config_.http_health_check().host(),
            "\r\nuser-agent: phoenix-health-check\r\nconnection: close\r\n\r\n");
        static_cast<network::Connection&>(*connection_).Write(request_);
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

 private:
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
    response_.clear();
    in_flight_ = true;
    std::chrono::milliseconds timeout =
        ToMillisecondsOr(config_.timeout(), std::chrono::seconds(1));
    connection_ = network::TcpConnection::Connect(
        parent_.dispatcher_, host_->address(), timeout, 64 * 1024, this,
        parent_.cluster_->transport_socket_factory().Create());
    timeout_timer_->Enable(timeout);
  }

  void Done(bool healthy, std::string_view detail) {
    if (!in_flight_) return;
    in_flight_ = false;
    timeout_timer_->Disable();
    if (connection_ != nullptr) {
      connection_->Close();
      // We may be inside one of its callbacks.
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
    ScheduleNext();
  }

  HealthChecker& parent_;
  HostSharedPtr host_;
  const config::v1::HealthCheck& config_;
  std::minstd_rand random_;
  std::unique_ptr<Timer> interval_timer_;
  std::unique_ptr<Timer> timeout_timer_;
  std::unique_ptr<network::TcpConnection> connection_;
  std::string request_;
  std::string response_;
  bool in_flight_ = false;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

HealthChecker::HealthChecker(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster)
    : dispatcher_(dispatcher), cluster_(std::move(cluster)) {
  const auto& config = cluster_->proto().health_checks(0);
  for (const auto& host : cluster_->hosts()) {
    checks_.push_back(std::make_unique<HostCheck>(*this, host, config));
  }
}

HealthChecker::~HealthChecker() = default;

}  // namespace phoenix::upstream
