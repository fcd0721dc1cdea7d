#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace phoenix::control_plane {

// Calls `handle` with the words of each line of `text` that has any ('#' starts a comment);
// a line of another word count than `count` is the error `shape`. Errors name
// `filename`:line. The format of phoenix-cp's small tables (tokens, principals, identities).
absl::Status ForEachLine(
    std::string_view text, const std::string& filename, size_t count, const char* shape,
    const std::function<absl::Status(const std::vector<std::string>&)>& handle);
// The contents of `path`; NOT_FOUND naming the file and `what` it is.
absl::StatusOr<std::string> ReadTableFile(const std::string& path, const char* what);

// Who a request comes from, as its bearer token or its client certificate says.
struct Principal {
  std::string name;
  bool admin = false;            // Role "admin": the admin service.
  std::string node_id;           // Role "node:<id>": the ADS stream of that node only.
  bool unauthenticated = false;  // No identity store: anyone may do anything (local default).
};

// The bearer tokens phoenix-cp accepts (--tokens FILE), one per line:
//   <token> <principal> <role>       role: admin | node:<node-id>
// '#' starts a comment; blank lines are skipped.
class TokenTable {
 public:
  // Errors name `filename`:line.
  static absl::StatusOr<TokenTable> Parse(std::string_view text, const std::string& filename);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The principal holding `token`; null when none does.
  const Principal* Find(std::string_view token) const;
  size_t size() const { return tokens_.size(); }
  bool HasNodeRole(const std::string& node_id) const;

 private:
  std::map<std::string, Principal, std::less<>> tokens_;
};

// The roles of client-certificate principals (--principals FILE), one per line:
//   <principal> <role>               role: admin | node:<node-id>
// The principal is what the verified certificate names (see CertificatePrincipal): a SPIFFE
// ID such as spiffe://phoenix.local/ns/ops/sa/admin, else a DNS name, else the subject CN.
// A certificate is its own credential, so this file holds no secret.
class PrincipalTable {
 public:
  // Errors name `filename`:line.
  static absl::StatusOr<PrincipalTable> Parse(std::string_view text, const std::string& filename);
  static absl::StatusOr<PrincipalTable> Load(const std::string& path);

  // The principal named `name` with its role; null when it has none.
  const Principal* Find(std::string_view name) const;
  size_t size() const { return principals_.size(); }
  bool HasNodeRole(const std::string& node_id) const;

 private:
  std::map<std::string, Principal, std::less<>> principals_;
};

// The token of an `authorization` metadata value "Bearer <token>" ("" when it is not one).
std::string_view BearerToken(std::string_view authorization);

// What a call presents: its `authorization` metadata and the principal of its verified client
// certificate ("" for either when absent).
struct CallerCredentials {
  std::string authorization;
  std::string certificate_principal;
};

// Decides who may call what. Without an identity store (no tokens, no principals) every call
// is allowed (the embedded local default). With one, a caller is the principal of its bearer
// token when it sends one, else that of its client certificate; the admin service needs role
// admin, an ADS stream a node role whose node is the one it asks for.
class Authenticator {
 public:
  explicit Authenticator(std::optional<TokenTable> tokens,
                         std::optional<PrincipalTable> principals = std::nullopt)
      : tokens_(std::move(tokens)), principals_(std::move(principals)) {}
  // From the files of --tokens and --principals ("" for none).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(const std::string& tokens_path,
                                                             const std::string& principals_path);

  bool enabled() const { return tokens_.has_value() || principals_.has_value(); }
  // UNAUTHENTICATED for no credentials, an unknown token or a certificate without a role;
  // PERMISSION_DENIED for a principal of another role.
  absl::StatusOr<Principal> ForAdmin(const CallerCredentials& credentials) const;
  absl::StatusOr<Principal> ForNode(const CallerCredentials& credentials) const;
  // Whether any token or certificate principal has role node:<node_id>.
  bool HasNodeRole(const std::string& node_id) const;
  // Whether a stream authenticated as `principal` may receive the resources of `node_id`.
  static absl::Status MayServe(const Principal& principal, const std::string& node_id);

 private:
  absl::StatusOr<Principal> Identify(const CallerCredentials& credentials) const;
  absl::StatusOr<Principal> IdentifyToken(std::string_view authorization) const;

  std::optional<TokenTable> tokens_;
  std::optional<PrincipalTable> principals_;
};

}  // namespace phoenix::control_plane
