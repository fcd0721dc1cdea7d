#pragma once

#include <string>
#include <string_view>

namespace phoenix::control_plane {

// A unified diff of two texts, line by line: hunks headed "@@ -a,b +c,d @@" with `context`
// unchanged lines around each change, lines prefixed ' ', '-' or '+'. "" when equal. Meant for
// config-sized texts (a resource's YAML): past a few thousand lines a side it shows the whole
// old text removed and the new one added rather than spend quadratic time.
std::string UnifiedDiff(std::string_view before, std::string_view after, int context = 3);

}  // namespace phoenix::control_plane
