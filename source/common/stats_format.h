#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "source/common/stats.h"

namespace phoenix {

// Which stats an admin page shows: those whose name the filter accepts (the admin's
// ?filter=REGEX; none means all), and with ?usedonly only those ever counted or set.
struct StatsSelection {
  std::function<bool(std::string_view name)> filter;
  bool used_only = false;
  bool Selects(const StatSample& sample) const;
};

// The admin's three views of the stats. Each is a function of the store's samples alone, so
// a page can never show a stat the store does not hold.

// "name: value" lines, sorted by name; histograms as quantiles in milliseconds.
std::string RenderStatsText(const StatsStore& store, const StatsSelection& selection);

// {"stats": [{"name": ..., "value": ...}, {"name": ..., "histogram": {"count": ...,
// "sum_ms": ..., "p50_ms": ..., "p90_ms": ..., "p99_ms": ...}}]}, sorted by name.
std::string RenderStatsJson(const StatsStore& store, const StatsSelection& selection);

// Prometheus' text exposition format (0.0.4): one family per metric name, each with # HELP
// and # TYPE, its varying parts as labels (phoenix_cluster_upstream_rq_total{cluster_name=
// "app"}). Counters end in _total; latency histograms are in seconds (_seconds).
std::string RenderStatsPrometheus(const StatsStore& store, const StatsSelection& selection);

}  // namespace phoenix
