#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

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

}  // namespace phoenix
