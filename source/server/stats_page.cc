#include "source/server/stats_page.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "source/common/stats_format.h"

namespace phoenix::server {

AdminResponse StatsPage(const StatsStore& stats, std::string_view query, bool prometheus) {
  StatsSelection selection;
  std::string format = prometheus ? "prometheus" : "text";
  std::shared_ptr<RE2> filter;
  for (const auto& [key, value] : ParseAdminQuery(query)) {
    if (key == "filter") {
      RE2::Options options;
      options.set_log_errors(false);
      filter = std::make_shared<RE2>(value, options);
      if (!filter->ok()) {
        return {400, "text/plain",
                absl::StrCat("filter: not a valid RE2 regex: ", filter->error(), "\n")};
      }
    } else if (key == "usedonly") {
      selection.used_only = true;
    } else if (key == "format" && !prometheus &&
               (value == "json" || value == "prometheus" || value == "text")) {
      format = value;
    } else {
      return {400, "text/plain",
              prometheus ? "parameters: filter=<regex>, usedonly\n"
                         : "parameters: filter=<regex>, usedonly, format=text|json|prometheus\n"};
    }
  }
  if (filter != nullptr) {
    selection.filter = [filter](std::string_view name) {
      return RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *filter);
    };
  }
  if (format == "json") return {200, "application/json", RenderStatsJson(stats, selection)};
  if (format == "prometheus") {
    return {200, "text/plain; version=0.0.4", RenderStatsPrometheus(stats, selection)};
  }
  return {200, "text/plain", RenderStatsText(stats, selection)};
}

}  // namespace phoenix::server
