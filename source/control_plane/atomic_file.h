#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace phoenix::control_plane {

// Writes `content` to `path` so that a reader sees the old file or the new one, never half of
// it: into `temp` (same folder) with `mode` (past the umask), fsync, then rename over `path`.
// UNAVAILABLE, naming the file, when any step fails (and `temp` is removed).
absl::Status WriteFileAtomically(const std::string& path, const std::string& temp,
                                 const std::string& content, mode_t mode);

}  // namespace phoenix::control_plane
