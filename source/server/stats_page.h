#pragma once

#include <string_view>

#include "source/common/stats.h"
#include "source/server/admin.h"

namespace phoenix::server {

// The admin's /stats (prometheus false) and /stats/prometheus (true). The query chooses which
// stats (?filter=<RE2 regex> on the dotted name, matched anywhere in it; ?usedonly: only those
// ever counted or set) and, on /stats, the format (?format=json or prometheus; text when
// absent). A bad parameter or regex gets a 400 that says what is accepted.
AdminResponse StatsPage(const StatsStore& stats, std::string_view query, bool prometheus);

}  // namespace phoenix::server
