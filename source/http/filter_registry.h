#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/any.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/http/filter.h"

namespace phoenix::http {

// What the filters of a chain would do with a request, without doing it (no stats, no
// tokens taken): for `phoenix --mode check-policy` and the admin /policy/explain.
struct PolicyExplanation {
  std::string denied_by;                 // Access rule that denies ("default": the default).
  std::vector<std::string> rate_limits;  // Limits that cover the request.
  std::vector<std::string> lines;        // Human-readable steps, in order.
};

// Makes one filter instance per request. Built once per config snapshot.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<StreamFilter> Create() const = 0;
  // Adds what this filter would decide for `request` (from `client_ip`, with the mTLS peer
  // identity `principal`, "" for none, routed to an app whose declared path semantics are
  // `app_paths`, null for none) to `explanation`.
  virtual void Explain(const RequestHeaders& request, const std::string& client_ip,
                       std::string_view principal, const PathSemantics* app_paths,
                       PolicyExplanation& explanation) const {}
  // A path this filter refuses only as written, and the rule that does: the policy check tries
  // its other spellings and warns when one gets through.
  struct ProbePath {
    std::string rule;
    std::string path;
  };
  virtual std::vector<ProbePath> ProbePaths() const { return {}; }
};

using FilterFactoryPtr = std::shared_ptr<const FilterFactory>;

// What a filter factory may use while it is built from config.
struct FilterFactoryContext {
  StatsStore& stats;
  // The listener's stat prefix: filter stats live under http.<stat_prefix>.<filter>.*.
  std::string stat_prefix;
};

// Filters register by name; a listener's http_filters list names them. Adding a filter is a
// new folder plus one Register() call in source/server/filter_registrations.cc.
class FilterRegistry {
 public:
  // Validates `typed_config` (errors under `path`) and returns the factory, or null.
  using Builder = std::function<FilterFactoryPtr(
      const google::protobuf::Any& typed_config, const FilterFactoryContext& context,
      const std::string& path, config::ConfigErrors& errors)>;
  struct Entry {
    Builder builder;
    bool terminal;  // Must be the last filter (the router).
  };

  static void Register(const std::string& name, Builder builder, bool terminal = false);
  static const Entry* Find(const std::string& name);
  static std::vector<std::string> Names();
};

}  // namespace phoenix::http
