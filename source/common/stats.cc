#include "source/common/stats.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/strings.h"

namespace phoenix {

void Histogram::Record(double ms) {
  // The first bucket whose bound is >= ms ("le"). A linear scan from the smallest: most
  // requests take milliseconds, so it stops after a compare or two, where a binary search
  // always takes four.
  size_t i = 0;
  while (i < kBounds.size() && ms > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(std::max(0.0, ms) * 1000), std::memory_order_relaxed);
}

double Histogram::Sum() const { return sum_us_.load(std::memory_order_relaxed) / 1000.0; }

std::array<uint64_t, Histogram::kBuckets> Histogram::Cumulative() const {
  std::array<uint64_t, kBuckets> out{};
  uint64_t running = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double Histogram::Quantile(double q) const {
  auto cumulative = Cumulative();
  uint64_t total = cumulative[kBuckets - 1];
  if (total == 0) return 0;
  double rank = q * total;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (cumulative[i] >= rank) {
      double lower = i == 0 ? 0 : kBounds[i - 1];
      double upper = i < kBounds.size() ? kBounds[i] : kBounds.back() * 2;
      uint64_t before = i == 0 ? 0 : cumulative[i - 1];
      uint64_t in_bucket = cumulative[i] - before;
      double frac = in_bucket == 0 ? 0 : (rank - before) / in_bucket;
      return lower + (upper - lower) * frac;
    }
  }
  return kBounds.back();
}

Counter& StatsScope::counter(std::string_view name) const {
  return store_.counter(absl::StrCat(prefix_, AbslView(name)));
}

Gauge& StatsScope::gauge(std::string_view name) const {
  return store_.gauge(absl::StrCat(prefix_, AbslView(name)));
}

Histogram& StatsScope::histogram(std::string_view name) const {
  return store_.histogram(absl::StrCat(prefix_, AbslView(name)));
}

std::array<Counter*, 5> StatsScope::StatusClassCounters(std::string_view stem) const {
  std::array<Counter*, 5> counters;
  for (int i = 0; i < 5; ++i) {
    counters[i] = &store_.counter(absl::StrCat(prefix_, AbslView(stem), i + 1, "xx"));
  }
  return counters;
}

StatsScope StatsScope::Nested(std::string_view name) const {
  return StatsScope(store_, absl::StrCat(prefix_, AbslView(name), "."));
}

namespace {

template <typename T>
T& GetOrCreate(std::map<std::string, std::unique_ptr<T>, std::less<>>& map, std::string_view name) {
  auto it = map.find(name);
  if (it == map.end()) it = map.emplace(std::string(name), std::make_unique<T>()).first;
  return *it->second;
}

// "http.ingress.downstream_rq_2xx" -> "phoenix_http_ingress_downstream_rq_2xx".
std::string PrometheusName(std::string_view name) {
  std::string out = "phoenix_";
  for (char c : name) out.push_back(absl::ascii_isalnum(c) || c == '_' ? c : '_');
  return out;
}

}  // namespace

Counter& StatsStore::counter(std::string_view name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(counters_, name);
}

Gauge& StatsStore::gauge(std::string_view name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(gauges_, name);
}

Histogram& StatsStore::histogram(std::string_view name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(histograms_, name);
}

std::map<std::string, uint64_t> StatsStore::Counters() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [name, c] : counters_) out.emplace(name, c->Value());
  return out;
}

std::map<std::string, int64_t> StatsStore::Gauges() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [name, g] : gauges_) out.emplace(name, g->Value());
  return out;
}

std::map<std::string, const Histogram*> StatsStore::Histograms() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, const Histogram*> out;
  for (const auto& [name, h] : histograms_) out.emplace(name, h.get());
  return out;
}

std::string StatsStore::RenderText() const {
  std::map<std::string, std::string> lines;
  for (const auto& [name, v] : Counters()) lines[name] = absl::StrCat(v);
  for (const auto& [name, v] : Gauges()) lines[name] = absl::StrCat(v);
  for (const auto& [name, h] : Histograms()) {
    lines[name] = absl::StrFormat("P50=%.3f P90=%.3f P99=%.3f count=%d sum=%.3f", h->Quantile(0.5),
                                  h->Quantile(0.9), h->Quantile(0.99), h->Count(), h->Sum());
  }
  std::string out;
  for (const auto& [name, value] : lines) absl::StrAppend(&out, name, ": ", value, "\n");
  return out;
}

std::string StatsStore::RenderPrometheus() const {
  std::string out;
  for (const auto& [name, v] : Counters()) {
    std::string p = PrometheusName(name);
    absl::StrAppend(&out, "# TYPE ", p, " counter\n", p, " ", v, "\n");
  }
  for (const auto& [name, v] : Gauges()) {
    std::string p = PrometheusName(name);
    absl::StrAppend(&out, "# TYPE ", p, " gauge\n", p, " ", v, "\n");
  }
  for (const auto& [name, h] : Histograms()) {
    std::string p = PrometheusName(name);
    absl::StrAppend(&out, "# TYPE ", p, " histogram\n");
    auto cumulative = h->Cumulative();
    for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      absl::StrAppend(&out, p, "_bucket{le=\"", Histogram::kBounds[i], "\"} ", cumulative[i], "\n");
    }
    absl::StrAppend(&out, p, "_bucket{le=\"+Inf\"} ", cumulative.back(), "\n");
    absl::StrAppend(&out, p, "_sum ", absl::StrFormat("%.3f", h->Sum()), "\n");
    absl::StrAppend(&out, p, "_count ", cumulative.back(), "\n");
  }
  return out;
}

}  // namespace phoenix
