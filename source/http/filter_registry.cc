#include "source/http/filter_registry.h"

#include <map>

namespace phoenix::http {
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
