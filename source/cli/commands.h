#pragma once

#include <ostream>

#include "source/cli/admin_client.h"
#include "source/cli/options.h"

namespace phoenix::cli {

// phoenixctl's exit codes, for scripts.
enum ExitCode : int {
  kExitOk = 0,
  kExitRefused = 1,  // Invalid files, a refused apply, a resource not found.
  kExitUsage = 2,
  kExitUnreachable = 3,  // phoenix-cp not reachable, or the call not allowed.
};

// Runs one command against phoenix-cp's admin service: results on `out` (text, or JSON with
// -o json), errors on `err` ("phoenixctl: ..." lines). Returns the exit code.
int RunCommand(const CliOptions& options, AdminClient& client, std::ostream& out,
               std::ostream& err);

}  // namespace phoenix::cli
