#include "source/common/stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
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

bool StatSample::Used() const {
  switch (type) {
    case StatType::kCounter:
      return counter != 0;
    case StatType::kGauge:
      return gauge != 0;
    case StatType::kHistogram:
      return histogram->Count() != 0;
  }
  return false;
}

StatsScope::StatsScope(StatsStore& store, std::string prefix)
    : store_(&store), prefix_(std::move(prefix)), family_prefix_(prefix_) {}

StatName StatsScope::Name(std::string_view name, std::string_view help) const {
  return StatName{absl::StrCat(prefix_, AbslView(name)),
                  absl::StrCat(family_prefix_, AbslView(name)), tags_, std::string(help)};
}

Counter& StatsScope::counter(std::string_view name, std::string_view help) const {
  return store_->counter(Name(name, help));
}

Gauge& StatsScope::gauge(std::string_view name, std::string_view help) const {
  return store_->gauge(Name(name, help));
}

Histogram& StatsScope::histogram(std::string_view name, std::string_view help) const {
  return store_->histogram(Name(name, help));
}

Counter& StatsScope::LabelledCounter(std::string_view name, std::string_view family, StatTag tag,
                                     std::string_view help) const {
  StatName stat = Name(name, help);
  stat.family = absl::StrCat(family_prefix_, AbslView(family));
  stat.tags.push_back(std::move(tag));
  return store_->counter(stat);
}

std::array<Counter*, 5> StatsScope::StatusClassCounters(std::string_view stem,
                                                        std::string_view help) const {
  std::array<Counter*, 5> counters;
  for (int i = 0; i < 5; ++i) {
    std::string status_class = absl::StrCat(i + 1, "xx");
    counters[i] = &LabelledCounter(absl::StrCat(AbslView(stem), status_class),
                                   absl::StrCat(AbslView(stem), "xx"),
                                   StatTag{"response_code_class", status_class}, help);
  }
  return counters;
}

StatsScope StatsScope::Nested(std::string_view name) const {
  StatsScope nested = *this;
  absl::StrAppend(&nested.prefix_, AbslView(name), ".");
  absl::StrAppend(&nested.family_prefix_, AbslView(name), ".");
  return nested;
}

StatsScope StatsScope::Labelled(std::string_view label, std::string_view value,
                                std::string_view family_segment) const {
  StatsScope labelled = *this;
  absl::StrAppend(&labelled.prefix_, AbslView(value), ".");
  if (!family_segment.empty())
    absl::StrAppend(&labelled.family_prefix_, AbslView(family_segment), ".");
  labelled.tags_.push_back(StatTag{std::string(label), std::string(value)});
  return labelled;
}

template <typename T>
T& StatsStore::GetOrCreate(Registry<T>& registry, const StatName& name) {
  auto it = registry.find(name.name);
  if (it == registry.end()) {
    auto registered = std::make_unique<Registered<T>>();
    registered->name = name;
    it = registry.emplace(name.name, std::move(registered)).first;
  }
  return it->second->stat;
}

namespace {

StatName Unlabelled(std::string_view name, std::string_view help) {
  return StatName{std::string(name), std::string(name), {}, std::string(help)};
}

}  // namespace

Counter& StatsStore::counter(std::string_view name, std::string_view help) {
  return counter(Unlabelled(name, help));
}

Gauge& StatsStore::gauge(std::string_view name, std::string_view help) {
  return gauge(Unlabelled(name, help));
}

Histogram& StatsStore::histogram(std::string_view name, std::string_view help) {
  return histogram(Unlabelled(name, help));
}

Counter& StatsStore::counter(const StatName& name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(counters_, name);
}

Gauge& StatsStore::gauge(const StatName& name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(gauges_, name);
}

Histogram& StatsStore::histogram(const StatName& name) {
  absl::MutexLock lock(&mu_);
  return GetOrCreate(histograms_, name);
}

std::map<std::string, uint64_t> StatsStore::Counters() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [name, c] : counters_) out.emplace(name, c->stat.Value());
  return out;
}

std::map<std::string, int64_t> StatsStore::Gauges() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [name, g] : gauges_) out.emplace(name, g->stat.Value());
  return out;
}

std::map<std::string, const Histogram*> StatsStore::Histograms() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, const Histogram*> out;
  for (const auto& [name, h] : histograms_) out.emplace(name, &h->stat);
  return out;
}

std::vector<StatSample> StatsStore::Samples() const {
  std::vector<StatSample> samples;
  {
    absl::MutexLock lock(&mu_);
    samples.reserve(counters_.size() + gauges_.size() + histograms_.size());
    for (const auto& [name, c] : counters_) {
      samples.push_back({&c->name, StatType::kCounter, c->stat.Value(), 0, nullptr});
    }
    for (const auto& [name, g] : gauges_) {
      samples.push_back({&g->name, StatType::kGauge, 0, g->stat.Value(), nullptr});
    }
    for (const auto& [name, h] : histograms_) {
      samples.push_back({&h->name, StatType::kHistogram, 0, 0, &h->stat});
    }
  }
  std::sort(samples.begin(), samples.end(),
            [](const StatSample& a, const StatSample& b) { return a.name->name < b.name->name; });
  return samples;
}

}  // namespace phoenix
