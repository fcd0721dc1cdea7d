#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace phoenix {

// A monotonically increasing count shared by all threads (relaxed atomics).
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (active connections, config version).
class Gauge {
 public:
  void Inc() { value_.fetch_add(1, std::memory_order_relaxed); }
  void Dec() { value_.fetch_sub(1, std::memory_order_relaxed); }
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A fixed-bucket latency histogram in milliseconds. Recording is two relaxed increments;
// quantiles are estimated by interpolating inside the bucket.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {
      0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
  static constexpr size_t kBuckets = kBounds.size() + 1;  // Last one is +Inf.

  void Record(double ms);
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const;
  // Cumulative counts per bucket (Prometheus style).
  std::array<uint64_t, kBuckets> Cumulative() const;
  double Quantile(double q) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

// Owns every stat by name. Stats live as long as the store, so a worker can keep a
// reference across config changes. Lookup takes a mutex: resolve names once, off the
// request path, and keep the reference.
class StatsStore {
 public:
  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  Histogram& histogram(std::string_view name);

  // Sorted by name.
  std::map<std::string, uint64_t> Counters() const;
  std::map<std::string, int64_t> Gauges() const;
  std::map<std::string, const Histogram*> Histograms() const;

  std::string RenderText() const;
  std::string RenderPrometheus() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_ ABSL_GUARDED_BY(mu_);
};

// The first member of a PHX_STATS struct, so that every generated initializer can start with a
// comma. Takes no space.
struct StatsListBegin {};

// Where a group of stats lives: a store and a name prefix ("cluster.app."), so the group's
// code names its stats as it knows them ("upstream_rq_total").
class StatsScope {
 public:
  StatsScope(StatsStore& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}

  Counter& counter(std::string_view name) const;
  Gauge& gauge(std::string_view name) const;
  Histogram& histogram(std::string_view name) const;
  // The counters <stem>1xx .. <stem>5xx, indexed by status / 100 - 1.
  std::array<Counter*, 5> StatusClassCounters(std::string_view stem) const;
  // The scope of `name` inside this one: "cluster.app." -> "cluster.app.health_check.".
  StatsScope Nested(std::string_view name) const;

 private:
  StatsStore& store_;
  std::string prefix_;
};

}  // namespace phoenix

// Stats structs are declared once, as a list (Envoy's style), and the list makes both the
// members and the constructor that registers them, so no stat can be declared and left
// unregistered, or registered under a name that drifted from its member's:
//
//   #define PHX_FOO_STATS(COUNTER, GAUGE, HISTOGRAM) COUNTER(rq_total) GAUGE(rq_active)
//
//   struct FooStats {
//     PHX_STATS(FooStats, PHX_FOO_STATS, rq_class(scope.StatusClassCounters("rq_")));
//     std::array<Counter*, 5> rq_class;
//   };
//
// declares `Counter& rq_total; Gauge& rq_active;` and `explicit FooStats(const StatsScope&
// scope)`, which registers each as the scope's prefix + its name ("http.ingress.rq_total").
// Members a list cannot say (an array of counters, a nested group of stats) are declared after
// it; the arguments after LIST initialize them and may use `scope`.
#define PHX_STATS(Name, LIST, ...)                                                          \
  explicit Name(const ::phoenix::StatsScope& scope)                                         \
      : phx_stats_begin_()                                                                  \
            LIST(PHX_STATS_INIT_COUNTER_, PHX_STATS_INIT_GAUGE_, PHX_STATS_INIT_HISTOGRAM_) \
                __VA_OPT__(, ) __VA_ARGS__ {}                                               \
  [[no_unique_address]] ::phoenix::StatsListBegin phx_stats_begin_;                         \
  LIST(PHX_STATS_COUNTER_MEMBER_, PHX_STATS_GAUGE_MEMBER_, PHX_STATS_HISTOGRAM_MEMBER_)

#define PHX_STATS_COUNTER_MEMBER_(name) ::phoenix::Counter& name;
#define PHX_STATS_GAUGE_MEMBER_(name) ::phoenix::Gauge& name;
#define PHX_STATS_HISTOGRAM_MEMBER_(name) ::phoenix::Histogram& name;
#define PHX_STATS_INIT_COUNTER_(name) , name(scope.counter(#name))
#define PHX_STATS_INIT_GAUGE_(name) , name(scope.gauge(#name))
#define PHX_STATS_INIT_HISTOGRAM_(name) , name(scope.histogram(#name))
