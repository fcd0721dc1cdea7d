#include "source/upstream/success_rate_ejector.h"

#include <cmath>
#include <vector>

#include "source/common/duration.h"
#include "source/common/logging.h"

namespace phoenix::upstream {

SuccessRateEjector::SuccessRateEjector(Dispatcher& dispatcher,
                                       std::shared_ptr<const ClusterInfo> cluster)
    : time_source_(dispatcher.time_source()), cluster_(std::move(cluster)) {
  interval_ =
      ToMillisecondsOr(cluster_->proto().outlier_detection().interval(), std::chrono::seconds(10));
  timer_ = dispatcher.CreateTimer([this] {
    Evaluate();
    timer_->Enable(interval_);
  });
  timer_->Enable(interval_);
}

void SuccessRateEjector::Evaluate() {
  const auto& proto = cluster_->proto().outlier_detection();
  uint32_t volume =
      proto.has_success_rate_request_volume() ? proto.success_rate_request_volume() : 100;
  uint32_t minimum_hosts =
      proto.has_success_rate_minimum_hosts() ? proto.success_rate_minimum_hosts() : 5;
  double factor =
      (proto.has_success_rate_stdev_factor() ? proto.success_rate_stdev_factor() : 1900) / 1000.0;
  std::vector<std::pair<Host*, double>> rates;
  HostVectorConstSharedPtr hosts = cluster_->hosts();
  for (const auto& host : *hosts) {
    uint32_t requests = host->interval_requests.exchange(0);
    uint32_t successes = host->interval_successes.exchange(0);
    if (requests >= volume && volume > 0) {
      rates.emplace_back(host.get(), static_cast<double>(successes) / requests);
    }
  }
  if (rates.size() < minimum_hosts || rates.empty()) return;
  double mean = 0;
  for (const auto& [host, rate] : rates) mean += rate;
  mean /= rates.size();
  double variance = 0;
  for (const auto& [host, rate] : rates) variance += (rate - mean) * (rate - mean);
  double threshold = mean - factor * std::sqrt(variance / rates.size());
  uint64_t now = time_source_.MonotonicMs();
  for (const auto& [host, rate] : rates) {
    if (rate < threshold && !host->Ejected(now) && Eject(*cluster_, *host, now)) {
      PHX_LOG(kWarn, "outlier detection: ejected ", cluster_->name(), " ", host->address_string(),
              " (success rate ", static_cast<int>(rate * 100), "%, threshold ",
              static_cast<int>(threshold * 100), "%)");
    }
  }
}

}  // namespace phoenix::upstream
