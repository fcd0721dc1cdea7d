#include "source/server/autoscaler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace phoenix::server {

void Autoscaler::Reset() {
  above_since_.reset();
  below_since_.reset();
}

Autoscaler::Decision Autoscaler::Sample(MonotonicTime now, uint64_t requests_total,
                                        int64_t in_flight, uint32_t ready, uint32_t running,
                                        uint32_t min_instances, uint32_t max_instances) {
  bool first = !last_time_.has_value();
  double seconds = first ? 0 : std::chrono::duration<double>(now - *last_time_).count();
  if (!first && seconds <= 0) return {};
  if (!first) {
    uint64_t delta = requests_total >= last_total_ ? requests_total - last_total_ : 0;
    last_rps_ = static_cast<double>(delta) / seconds;
  }
  last_time_ = now;
  last_total_ = requests_total;
  if (first || ready == 0) {
    // Nothing to judge by yet (no rate, or no instance taking traffic).
    Reset();
    return {};
  }
  double rps_per = last_rps_ / ready;
  double in_flight_per = static_cast<double>(in_flight) / ready;
  uint32_t limit = config_.max_in_flight_per_instance;
  bool over_rate = rps_per > config_.target_rps_per_instance;
  bool over_in_flight = limit != 0 && in_flight_per > limit;
  std::string figures = absl::StrFormat(
      "%.1f rps over %u ready instance(s) = %.1f per instance (target %g), %d in flight", last_rps_,
      ready, rps_per, config_.target_rps_per_instance, static_cast<int>(in_flight));
  if ((over_rate || over_in_flight) && running < max_instances) {
    below_since_.reset();
    if (!above_since_) above_since_ = now;
    if (now - *above_since_ >= config_.scale_up_window) {
      Reset();
      return {
          Action::kScaleUp,
          absl::StrCat(figures, over_in_flight && !over_rate ? " (over the in-flight limit)" : "",
                       " for ", config_.scale_up_window.count(), " ms")};
    }
    return {};
  }
  above_since_.reset();
  // Would one fewer still be within both?
  bool fewer_fits = running > min_instances && ready > 1 &&
                    last_rps_ / (ready - 1) <= config_.target_rps_per_instance &&
                    (limit == 0 || static_cast<double>(in_flight) / (ready - 1) <= limit);
  if (!fewer_fits) {
    below_since_.reset();
    return {};
  }
  if (!below_since_) below_since_ = now;
  if (now - *below_since_ >= config_.scale_down_window) {
    Reset();
    return {Action::kScaleDown, absl::StrCat(figures, ": one fewer is enough for ",
                                             config_.scale_down_window.count(), " ms")};
  }
  return {};
}

}  // namespace phoenix::server
