#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A fixed-bucket latency histogram in milliseconds (Prometheus sees seconds). Recording is two
// relaxed increments; quantiles are estimated by interpolating inside the bucket.
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

// A label of a stat in the Prometheus exposition: a part of its dotted name that varies (a
// cluster's name, a listener's stat prefix), taken out of the metric's name as Envoy's tag
// extraction does, so that every cluster's requests are one metric family.
struct StatTag {
  std::string name;
  std::string value;
};

// How one stat is named. /stats shows `name` ("cluster.app.upstream_rq_total"); the
// Prometheus exposition shows `family` ("cluster.upstream_rq_total") with `tags` as labels
// ({cluster_name="app"}) and `help` as its # HELP line.
struct StatName {
  std::string name;
  std::string family;
  std::vector<StatTag> tags;
  std::string help;
};

enum class StatType { kCounter, kGauge, kHistogram };

// One stat as read for an admin page: its names and, by type, its value.
struct StatSample {
  const StatName* name;
  StatType type;
  uint64_t counter = 0;
  int64_t gauge = 0;
  const Histogram* histogram = nullptr;
  // Whether it was ever counted or set to other than zero (what ?usedonly keeps).
  bool Used() const;
};

// Owns every stat by name. Stats live as long as the store, so a worker can keep a
// reference across config changes. Lookup takes a mutex: resolve names once, off the
// request path, and keep the reference. A name registered again gets the same stat, with
// the labels and help of its first registration.
class StatsStore {
 public:
  // A stat with no labels: its family is its name.
  Counter& counter(std::string_view name, std::string_view help = "");
  Gauge& gauge(std::string_view name, std::string_view help = "");
  Histogram& histogram(std::string_view name, std::string_view help = "");
  Counter& counter(const StatName& name);
  Gauge& gauge(const StatName& name);
  Histogram& histogram(const StatName& name);

  // Sorted by name.
  std::map<std::string, uint64_t> Counters() const;
  std::map<std::string, int64_t> Gauges() const;
  std::map<std::string, const Histogram*> Histograms() const;
  // Every stat, sorted by name.
  std::vector<StatSample> Samples() const;

 private:
  template <typename T>
  struct Registered {
    StatName name;
    T stat;
  };
  template <typename T>
  using Registry = std::map<std::string, std::unique_ptr<Registered<T>>, std::less<>>;
  template <typename T>
  T& GetOrCreate(Registry<T>& registry, const StatName& name);

  mutable absl::Mutex mu_;
  Registry<Counter> counters_ ABSL_GUARDED_BY(mu_);
  Registry<Gauge> gauges_ ABSL_GUARDED_BY(mu_);
  Registry<Histogram> histograms_ ABSL_GUARDED_BY(mu_);
};

// The first member of a PHX_STATS struct, so that every generated initializer can start with a
// comma. Takes no space.
struct StatsListBegin {};

// Where a group of stats lives: a store, a name prefix ("cluster.app.") and the labels that
// the prefix carries ({cluster_name="app"}), so the group's code names its stats as it knows
// them ("upstream_rq_total").
class StatsScope {
 public:
  // A scope with no labels: "server." names stats "server.<stat>" everywhere.
  StatsScope(StatsStore& store, std::string prefix);

  Counter& counter(std::string_view name, std::string_view help = "") const;
  Gauge& gauge(std::string_view name, std::string_view help = "") const;
  Histogram& histogram(std::string_view name, std::string_view help = "") const;
  // A counter named <prefix><name> whose family is <prefix><family>, labelled `tag`: one of a
  // set that splits one count by a value ("grpc.svc.m.14" of "grpc.status", grpc_status=14).
  Counter& LabelledCounter(std::string_view name, std::string_view family, StatTag tag,
                           std::string_view help) const;
  // The counters <stem>1xx .. <stem>5xx, indexed by status / 100 - 1: the family <stem>xx,
  // labelled response_code_class.
  std::array<Counter*, 5> StatusClassCounters(std::string_view stem, std::string_view help) const;
  // The scope of `name` inside this one: "cluster.app." -> "cluster.app.health_check.".
  StatsScope Nested(std::string_view name) const;
  // The scope of one value of a label: "cluster." with cluster_name=app names its stats
  // "cluster.app.<stat>", of the family "cluster.<stat>" (or "cluster.<family_segment>.<stat>",
  // to keep them apart from the scope's own stats of the same name).
  StatsScope Labelled(std::string_view label, std::string_view value,
                      std::string_view family_segment = "") const;

 private:
  StatName Name(std::string_view name, std::string_view help) const;

  StatsStore* store_;
  std::string prefix_;
  std::string family_prefix_;
  std::vector<StatTag> tags_;
};

}  // namespace phoenix

// Stats structs are declared once, as a list (Envoy's style), and the list makes both the
// members and the constructor that registers them, so no stat can be declared and left
// unregistered, or registered under a name that drifted from its member's:
//
//   #define PHX_FOO_STATS(COUNTER, GAUGE, HISTOGRAM)
//     COUNTER(rq_total, "Requests received") GAUGE(rq_active, "Requests in progress")
//
//   struct FooStats {
//     PHX_STATS(FooStats, PHX_FOO_STATS,
//               rq_class(scope.StatusClassCounters("rq_", "Responses by status class")));
//     std::array<Counter*, 5> rq_class;
//   };
//
// declares `Counter& rq_total; Gauge& rq_active;` and `explicit FooStats(const StatsScope&
// scope)`, which registers each as the scope's prefix + its name ("http.ingress.rq_total"),
// with its help text for Prometheus' # HELP line.
// Members a list cannot say (an array of counters, a nested group of stats) are declared after
// it; the arguments after LIST initialize them and may use `scope`.
#define PHX_STATS(Name, LIST, ...)                                                          \
  explicit Name(const ::phoenix::StatsScope& scope)                                         \
      : phx_stats_begin_()                                                                  \
            LIST(PHX_STATS_INIT_COUNTER_, PHX_STATS_INIT_GAUGE_, PHX_STATS_INIT_HISTOGRAM_) \
                __VA_OPT__(, ) __VA_ARGS__ {}                                               \
  [[no_unique_address]] ::phoenix::StatsListBegin phx_stats_begin_;                         \
  LIST(PHX_STATS_COUNTER_MEMBER_, PHX_STATS_GAUGE_MEMBER_, PHX_STATS_HISTOGRAM_MEMBER_)

#define PHX_STATS_COUNTER_MEMBER_(name, help) ::phoenix::Counter& name;
#define PHX_STATS_GAUGE_MEMBER_(name, help) ::phoenix::Gauge& name;
#define PHX_STATS_HISTOGRAM_MEMBER_(name, help) ::phoenix::Histogram& name;
#define PHX_STATS_INIT_COUNTER_(name, help) , name(scope.counter(#name, help))
#define PHX_STATS_INIT_GAUGE_(name, help) , name(scope.gauge(#name, help))
#define PHX_STATS_INIT_HISTOGRAM_(name, help) , name(scope.histogram(#name, help))
