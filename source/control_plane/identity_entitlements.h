#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace phoenix::control_plane {

// Which workload identities each node may hold (phoenix-cp --identities FILE), one per line:
//   <node-id> <spiffe-id>         e.g. web-1 spiffe://phoenix.local/ns/shop/sa/web
// A node may have several lines; its first is its default. Without the file, a node may hold
// only spiffe://<trust-domain>/ns/default/sa/<node-id>. The node id is the authenticated one
// (its token's or certificate's), so a node cannot take another's identity.
class IdentityEntitlements {
 public:
  // No table: every node its default identity only.
  explicit IdentityEntitlements(
      std::string trust_domain,
      std::optional<std::map<std::string, std::vector<std::string>>> table = std::nullopt)
      : trust_domain_(std::move(trust_domain)), table_(std::move(table)) {}
  // Errors name `filename`:line: a malformed line, an ID outside `trust_domain`.
  static absl::StatusOr<IdentityEntitlements> Parse(std::string_view text,
                                                    const std::string& filename,
                                                    const std::string& trust_domain);
  static absl::StatusOr<IdentityEntitlements> Load(const std::string& path,
                                                   const std::string& trust_domain);

  // The identity `node_id` gets when it asks for `requested` ("": its default).
  // PERMISSION_DENIED, saying why, when it may not hold it.
  absl::StatusOr<std::string> Grant(const std::string& node_id, const std::string& requested) const;

 private:
  std::string trust_domain_;
  std::optional<std::map<std::string, std::vector<std::string>>> table_;
};

// Whether `id` is spiffe://<trust_domain>/<path> with a non-empty path of URI-safe characters.
bool IsSpiffeIdIn(const std::string& id, const std::string& trust_domain);

}  // namespace phoenix::control_plane
