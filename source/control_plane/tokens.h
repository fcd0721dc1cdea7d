#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace phoenix::control_plane {

// Who a request comes from, as its bearer token says.
struct Principal {
  std::string name;
  bool admin = false;            // Role "admin": the admin service.
  std::string node_id;           // Role "node:<id>": the ADS stream of that node only.
  bool unauthenticated = false;  // No --tokens: anyone may do anything (local default).
};

// The bearer tokens phoenix-cp accepts (--tokens FILE), one per line:
//   <token> <principal> <role>       role: admin | node:<node-id>
// '#' starts a comment; blank lines are skipped. A first step before mTLS: the file is the
// whole of the identity store.
class TokenTable {
 public:
  // Errors name `filename`:line.
  static absl::StatusOr<TokenTable> Parse(std::string_view text, const std::string& filename);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The principal holding `token`; null when none does.
  const Principal* Find(std::string_view token) const;
  size_t size() const { return tokens_.size(); }

 private:
  std::map<std::string, Principal, std::less<>> tokens_;
};

// The token of an `authorization` metadata value "Bearer <token>" ("" when it is not one).
std::string_view BearerToken(std::string_view authorization);

// Decides who may call what. Without a token table every call is allowed (the embedded
// local default); with one, the admin service needs an admin token and an ADS stream a node
// token whose node is the one it asks for.
class Authenticator {
 public:
  explicit Authenticator(std::optional<TokenTable> tokens) : tokens_(std::move(tokens)) {}

  bool enabled() const { return tokens_.has_value(); }
  // `authorization` is the request's metadata value ("" when absent). UNAUTHENTICATED for a
  // missing or unknown token, PERMISSION_DENIED for a token of another role.
  absl::StatusOr<Principal> ForAdmin(std::string_view authorization) const;
  absl::StatusOr<Principal> ForNode(std::string_view authorization) const;
  // Whether a stream authenticated as `principal` may receive the resources of `node_id`.
  static absl::Status MayServe(const Principal& principal, const std::string& node_id);

 private:
  absl::StatusOr<Principal> Identify(std::string_view authorization) const;

  std::optional<TokenTable> tokens_;
};

}  // namespace phoenix::control_plane
