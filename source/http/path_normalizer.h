#pragma once

#include <string>

namespace phoenix::http {

// How request paths are made canonical before any route or policy sees them.
struct PathNormalizationOptions {
  // Decode %XX of unreserved characters (A-Z a-z 0-9 - . _ ~), upper-case the hex of the
  // rest, and resolve "." and ".." segments (RFC 3986 6.2.2 and 5.2.4).
  bool normalize = true;
  // Collapse runs of '/' into one.
  bool merge_slashes = true;
  // Reject (true) or keep undecoded (false) %2F, %5C and literal '\'.
  bool reject_escaped_slashes = true;
};

// Which spellings of a normalized path the app behind a virtual host serves as the same
// resource (its framework's routing), as the virtual host declares them. Routes and policies
// then treat those spellings as one path.
struct PathSemantics {
  bool case_insensitive = false;       // /Admin is /admin
  bool ignore_trailing_slash = false;  // /admin/ is /admin
  bool ignore_path_params = false;     // /admin;jsessionid=1 is /admin
  bool any() const { return case_insensitive || ignore_trailing_slash || ignore_path_params; }
  // 0-7, one per combination.
  int index() const {
    return (case_insensitive ? 1 : 0) | (ignore_trailing_slash ? 2 : 0) |
           (ignore_path_params ? 4 : 0);
  }
  bool operator==(const PathSemantics&) const = default;
};
// Every spelling a typical framework serves alike: what a DENY rule covers by default.
inline constexpr PathSemantics kTypicalFrameworkPaths{true, true, true};

// Normalizes the path part of `target` ("/a/./b?q=1" -> "/a/b?q=1") in place; the query is
// left as sent and a "#fragment" is dropped. Returns false if the request must be rejected:
// malformed %-encoding, an escaped slash under the reject policy, a segment that some servers
// read as a dot segment ("..;x"), or a path that does not start with '/'.
//
// ';' parameters stay part of their segment ("/a;x/b" is not "/a/b").
bool NormalizePath(std::string& target, const PathNormalizationOptions& options);

}  // namespace phoenix::http
