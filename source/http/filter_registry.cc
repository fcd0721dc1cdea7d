#include "source/http/filter_registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::http {

void PolicyExplanation::AddRateLimit(std::string_view filter, const std::string& name) {
  rate_limits.push_back(name);
  lines.push_back(absl::StrCat(AbslView(filter), ": limit '", name, "' applies"));
}
namespace {

std::map<std::string, FilterRegistry::Entry>& Registry() {
  static auto* registry = new std::map<std::string, FilterRegistry::Entry>();
  return *registry;
}

}  // namespace

void StreamInfo::AddFlag(std::string_view flag) {
  if (!response_flags.empty()) response_flags.push_back(',');
  response_flags.append(flag);
}

void FilterRegistry::Register(const std::string& name, Builder builder, bool terminal) {
  Registry()[name] = Entry{std::move(builder), terminal};
}

const FilterRegistry::Entry* FilterRegistry::Find(const std::string& name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : &it->second;
}

std::vector<std::string> FilterRegistry::Names() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : Registry()) names.push_back(name);
  return names;
}

}  // namespace phoenix::http
