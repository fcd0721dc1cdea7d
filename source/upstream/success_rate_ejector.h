#pragma once

#include <memory>

#include "source/common/dispatcher.h"
#include "source/upstream/cluster.h"

namespace phoenix::upstream {

// Success-rate outlier ejection for one cluster, on the main thread's loop: every interval it
// compares each host's success rate in that interval (counted by ReportOutcome on the
// workers) with the others' and ejects the statistical outliers (Envoy's algorithm).
class SuccessRateEjector {
 public:
  SuccessRateEjector(Dispatcher& dispatcher, std::shared_ptr<const ClusterInfo> cluster);

 private:
  void Evaluate();

  TimeSource& time_source_;
  std::shared_ptr<const ClusterInfo> cluster_;
  std::chrono::milliseconds interval_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace phoenix::upstream
