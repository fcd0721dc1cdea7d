#pragma once

#include <functional>
#include <memory>
#include <string>

#include "google/protobuf/any.pb.h"
#include "source/common/stats.h"
#include "source/config/config_errors.h"
#include "source/http/filter.h"

namespace phoenix::http {

// Makes one filter instance per request. Built once per config snapshot.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<StreamFilter> Create() const = 0;
};

using FilterFactoryPtr = std::shared_ptr<const FilterFactory>;

// What a filter factory may use while it is built from config.
struct FilterFactoryContext {
  StatsStore& stats;
  // The listener's stat prefix: filter stats live under http.<stat_prefix>.<filter>.*.
  std::string stat_prefix;
};

// Filters register by name; a listener's http_filters list names them. Adding a filter is a
// new folder plus one Register() call in source/filters/registrations.cc.
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
