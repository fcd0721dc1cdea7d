#include "source/control_plane/tokens.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {
namespace {

// The whitespace-separated words of `line`.
std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

}  // namespace

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text, const std::string& filename) {
  TokenTable table;
  std::istringstream in{std::string(text)};
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> words = Words(line);
    if (words.empty()) continue;
    auto error = [&](std::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(filename, ":", line_number, ": ", std::string(what)));
    };
    if (words.size() != 3) return error("want '<token> <principal> <role>'");
    Principal principal;
    principal.name = words[1];
    const std::string& role = words[2];
    if (role == "admin") {
      principal.admin = true;
    } else if (role.rfind("node:", 0) == 0 && role.size() > 5) {
      principal.node_id = role.substr(5);
    } else {
      return error(absl::StrCat("unknown role '", role, "' (admin or node:<node-id>)"));
    }
    if (!table.tokens_.emplace(words[0], std::move(principal)).second) {
      return error("the same token is on an earlier line");
    }
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot read the token file"));
  std::stringstream text;
  text << file.rdbuf();
  return Parse(text.str(), path);
}

const Principal* TokenTable::Find(std::string_view token) const {
  auto it = tokens_.find(token);
  return it == tokens_.end() ? nullptr : &it->second;
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.size() <= kPrefix.size()) return {};
  for (size_t i = 0; i < kPrefix.size(); ++i) {  // The scheme is case-insensitive.
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
      return {};
    }
  }
  return authorization.substr(kPrefix.size());
}

absl::StatusOr<Principal> Authenticator::Identify(std::string_view authorization) const {
  if (!tokens_) {
    Principal anyone;
    anyone.name = "anonymous";
    anyone.admin = true;
    anyone.unauthenticated = true;
    return anyone;
  }
  std::string_view token = BearerToken(authorization);
  if (token.empty()) {
    return absl::UnauthenticatedError("no bearer token (authorization: Bearer <token>)");
  }
  const Principal* principal = tokens_->Find(token);
  if (principal == nullptr) return absl::UnauthenticatedError("unknown token");
  return *principal;
}

absl::StatusOr<Principal> Authenticator::ForAdmin(std::string_view authorization) const {
  auto principal = Identify(authorization);
  if (principal.ok() && !principal->admin) {
    return absl::PermissionDeniedError(absl::StrCat(
        principal->name, " is not an admin (its token is for node ", principal->node_id, ")"));
  }
  return principal;
}

absl::StatusOr<Principal> Authenticator::ForNode(std::string_view authorization) const {
  auto principal = Identify(authorization);
  if (principal.ok() && !principal->unauthenticated && principal->node_id.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(principal->name, " holds no node token: ADS needs role node:<node-id>"));
  }
  return principal;
}

absl::Status Authenticator::MayServe(const Principal& principal, const std::string& node_id) {
  if (principal.unauthenticated || principal.node_id == node_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(principal.name, " may only ask for node ",
                                                  principal.node_id, ", not ", node_id));
}

}  // namespace phoenix::control_plane
