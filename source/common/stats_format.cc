#include "source/common/stats_format.h"

#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/strings.h"

namespace phoenix {

bool StatsSelection::Selects(const StatSample& sample) const {
  if (used_only && !sample.Used()) return false;
  return filter == nullptr || filter(sample.name->name);
}

std::string RenderStatsText(const StatsStore& store, const StatsSelection& selection) {
  std::string out;
  for (const StatSample& sample : store.Samples()) {
    if (!selection.Selects(sample)) continue;
    absl::StrAppend(&out, sample.name->name, ": ");
    switch (sample.type) {
      case StatType::kCounter:
        absl::StrAppend(&out, sample.counter, "\n");
        break;
      case StatType::kGauge:
        absl::StrAppend(&out, sample.gauge, "\n");
        break;
      case StatType::kHistogram: {
        const Histogram& h = *sample.histogram;
        absl::StrAppend(
            &out, absl::StrFormat("P50=%.3f P90=%.3f P99=%.3f count=%d sum=%.3f\n", h.Quantile(0.5),
                                  h.Quantile(0.9), h.Quantile(0.99), h.Count(), h.Sum()));
        break;
      }
    }
  }
  return out;
}

std::string RenderStatsJson(const StatsStore& store, const StatsSelection& selection) {
  std::string out = "{\"stats\":[";
  bool first = true;
  for (const StatSample& sample : store.Samples()) {
    if (!selection.Selects(sample)) continue;
    absl::StrAppend(&out, first ? "\n" : ",\n", "{\"name\":\"", JsonEscape(sample.name->name),
                    "\",");
    first = false;
    switch (sample.type) {
      case StatType::kCounter:
        absl::StrAppend(&out, "\"value\":", sample.counter, "}");
        break;
      case StatType::kGauge:
        absl::StrAppend(&out, "\"value\":", sample.gauge, "}");
        break;
      case StatType::kHistogram: {
        const Histogram& h = *sample.histogram;
        absl::StrAppend(
            &out, absl::StrFormat(
                      "\"histogram\":{\"count\":%d,\"sum_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
                      "\"p99_ms\":%.3f}}",
                      h.Count(), h.Sum(), h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99)));
        break;
      }
    }
  }
  absl::StrAppend(&out, "\n]}\n");
  return out;
}

namespace {

// A dotted stat name as a Prometheus metric name: "cluster.upstream_rq_total" ->
// "phoenix_cluster_upstream_rq_total".
std::string MetricName(std::string_view family) {
  std::string out = "phoenix_";
  for (char c : family) out.push_back(absl::ascii_isalnum(c) || c == '_' ? c : '_');
  return out;
}

// Backslashes and newlines escaped, and with `quote` double quotes too (label values).
std::string EscapeExposition(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="1",b="2"}, plus `le` for a histogram bucket; empty when there are no labels.
std::string Labels(const std::vector<StatTag>& tags, std::string_view le = {}) {
  if (tags.empty() && le.empty()) return "";
  std::string out = "{";
  for (const StatTag& tag : tags) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, MetricName(tag.name).substr(8), "=\"", EscapeExposition(tag.value, true),
                    "\"");
  }
  if (!le.empty()) absl::StrAppend(&out, out.size() > 1 ? "," : "", "le=\"", AbslView(le), "\"");
  return out + "}";
}

const char* TypeName(StatType type) {
  switch (type) {
    case StatType::kCounter:
      return "counter";
    case StatType::kGauge:
      return "gauge";
    case StatType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// A metric family's lines, gathered from every stat of that family before any is written.
struct Family {
  StatType type;
  std::string help;
  std::string samples;
};

void AppendSamples(const std::string& metric, const StatSample& sample, std::string& out) {
  std::string labels = Labels(sample.name->tags);
  switch (sample.type) {
    case StatType::kCounter:
      absl::StrAppend(&out, metric, labels, " ", sample.counter, "\n");
      return;
    case StatType::kGauge:
      absl::StrAppend(&out, metric, labels, " ", sample.gauge, "\n");
      return;
    case StatType::kHistogram: {
      const Histogram& h = *sample.histogram;
      auto cumulative = h.Cumulative();
      // Recorded in milliseconds, exposed in seconds, Prometheus' base unit.
      for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        absl::StrAppend(&out, metric, "_bucket",
                        Labels(sample.name->tags, absl::StrCat(Histogram::kBounds[i] / 1000)), " ",
                        cumulative[i], "\n");
      }
      absl::StrAppend(&out, metric, "_bucket", Labels(sample.name->tags, "+Inf"), " ",
                      cumulative.back(), "\n");
      absl::StrAppend(&out, metric, "_sum", labels, " ", absl::StrFormat("%.6f", h.Sum() / 1000),
                      "\n");
      absl::StrAppend(&out, metric, "_count", labels, " ", cumulative.back(), "\n");
      return;
    }
  }
}

}  // namespace

std::string RenderStatsPrometheus(const StatsStore& store, const StatsSelection& selection) {
  std::map<std::string, Family> families;
  for (const StatSample& sample : store.Samples()) {
    if (!selection.Selects(sample)) continue;
    std::string metric = MetricName(sample.name->family);
    if (sample.type == StatType::kCounter && !absl::EndsWith(metric, "_total")) metric += "_total";
    if (sample.type == StatType::kHistogram) metric += "_seconds";
    auto it = families.find(metric);
    // A gauge and a counter whose names differ only in punctuation: keep both, apart.
    if (it != families.end() && it->second.type != sample.type) {
      absl::StrAppend(&metric, "_", TypeName(sample.type));
      it = families.find(metric);
    }
    if (it == families.end()) {
      std::string help = sample.name->help.empty() ? sample.name->family : sample.name->help;
      it = families.emplace(metric, Family{sample.type, std::move(help), ""}).first;
    }
    AppendSamples(metric, sample, it->second.samples);
  }
  std::string out;
  for (const auto& [metric, family] : families) {
    absl::StrAppend(&out, "# HELP ", metric, " ", EscapeExposition(family.help, false), "\n",
                    "# TYPE ", metric, " ", TypeName(family.type), "\n", family.samples);
  }
  return out;
}

}  // namespace phoenix
