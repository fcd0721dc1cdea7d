#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace phoenix::cli {

// phoenixctl's command line, parsed: global flags may come before or after the command.
struct CliOptions {
  std::string server = "127.0.0.1:18000";
  std::string token_file;
  std::string ca;           // --ca: TLS, phoenix-cp's certificate verified against this CA.
  std::string client_cert;  // --client-cert/--client-key: mutual TLS with this certificate.
  std::string client_key;
  std::string command;             // apply, diff, validate, get, status, audit, rollback, certs
  std::vector<std::string> files;  // -f, repeatable: files or directories.
  std::string node;                // --node: -f FILE goes to nodes/<node>/ (apply/diff/validate).
  std::string output;              // -o: "" (text), "yaml", "json".
  std::vector<std::string> args;   // Positional words after the command (get's type, name).
  std::string since;               // audit --since
  std::string cert;                // certs rotate --cert FILE (PEM)
  std::string key;                 // certs rotate --key FILE (PEM)
  // explain: the request walked through a node's config.
  std::string listener;                                      // --listener NAME
  std::string host;                                          // --host
  std::string principal;                                     // --principal (mTLS identity)
  std::string source;                                        // --source IP
  std::vector<std::pair<std::string, std::string>> headers;  // -H 'name: value', repeatable
  bool wait = false;   // ca rotate --wait: follow the rotation to its end.
  bool abort = false;  // ca rotate --abort: abandon a rotation still adding its root.
};

// Usage errors are INVALID_ARGUMENT with a message for the user.
absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args);

// --since: a duration back from `now` ("90s", "15m", "2h", "1h30m") or an RFC 3339 time.
absl::StatusOr<absl::Time> ParseSince(const std::string& text, absl::Time now);

extern const char kUsage[];

}  // namespace phoenix::cli
