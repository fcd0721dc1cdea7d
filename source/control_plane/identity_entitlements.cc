#include "source/control_plane/identity_entitlements.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "source/control_plane/tokens.h"

namespace phoenix::control_plane {

bool IsSpiffeIdIn(const std::string& id, const std::string& trust_domain) {
  std::string prefix = absl::StrCat("spiffe://", trust_domain, "/");
  if (!id.starts_with(prefix) || id.size() == prefix.size()) return false;
  // The SPIFFE ID spec: segments of letters, digits, '-', '_', '.'; none empty, "." or "..".
  std::string_view path(id);
  path.remove_prefix(prefix.size());
  for (size_t start = 0; start <= path.size();) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    for (char c : segment) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.')) {
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

absl::StatusOr<IdentityEntitlements> IdentityEntitlements::Parse(std::string_view text,
                                                                 const std::string& filename,
                                                                 const std::string& trust_domain) {
  std::map<std::string, std::vector<std::string>> table;
  absl::Status parsed =
      ForEachLine(text, filename, 2, "want '<node-id> <spiffe-id>'",
                  [&](const std::vector<std::string>& words) -> absl::Status {
                    if (!IsSpiffeIdIn(words[1], trust_domain)) {
                      return absl::InvalidArgumentError(absl::StrCat(
                          "'", words[1], "' is not a SPIFFE ID of trust domain ", trust_domain,
                          " (spiffe://", trust_domain, "/ns/<namespace>/sa/<service>)"));
                    }
                    table[words[0]].push_back(words[1]);
                    return absl::OkStatus();
                  });
  if (!parsed.ok()) return parsed;
  return IdentityEntitlements(trust_domain, std::move(table));
}

absl::StatusOr<IdentityEntitlements> IdentityEntitlements::Load(const std::string& path,
                                                                const std::string& trust_domain) {
  auto text = ReadTableFile(path, "identities file");
  if (!text.ok()) return text.status();
  return Parse(*text, path, trust_domain);
}

absl::StatusOr<std::string> IdentityEntitlements::Grant(const std::string& node_id,
                                                        const std::string& requested) const {
  std::vector<std::string> allowed;
  if (table_.has_value()) {
    if (auto it = table_->find(node_id); it != table_->end()) allowed = it->second;
  } else {
    std::string own = absl::StrCat("spiffe://", trust_domain_, "/ns/default/sa/", node_id);
    if (IsSpiffeIdIn(own, trust_domain_)) allowed.push_back(own);
  }
  if (allowed.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("node ", node_id, " may hold no identity",
                                                    table_ ? " (not in the identities file)" : ""));
  }
  if (requested.empty()) return allowed.front();
  if (std::find(allowed.begin(), allowed.end(), requested) == allowed.end()) {
    return absl::PermissionDeniedError(absl::StrCat("node ", node_id, " may not hold ", requested));
  }
  return requested;
}

}  // namespace phoenix::control_plane
