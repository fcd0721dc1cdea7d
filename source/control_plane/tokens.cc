#include "source/control_plane/tokens.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

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

// `name` with `role` ("admin" or "node:<id>").
absl::StatusOr<Principal> WithRole(const std::string& name, const std::string& role) {
  Principal principal;
  principal.name = name;
  if (role == "admin") {
    principal.admin = true;
  } else if (role.rfind("node:", 0) == 0 && role.size() > 5) {
    principal.node_id = role.substr(5);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown role '", role, "' (admin or node:<node-id>)"));
  }
  return principal;
}

}  // namespace

absl::Status ForEachLine(
    std::string_view text, const std::string& filename, size_t count, const char* shape,
    const std::function<absl::Status(const std::vector<std::string>&)>& handle) {
  std::istringstream in{std::string(text)};
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> words = Words(line);
    if (words.empty()) continue;
    absl::Status status = words.size() == count ? handle(words) : absl::InvalidArgumentError(shape);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(filename, ":", line_number, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTableFile(const std::string& path, const char* what) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot read the ", what));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text, const std::string& filename) {
  TokenTable table;
  absl::Status parsed =
      ForEachLine(text, filename, 3, "want '<token> <principal> <role>'",
                  [&](const std::vector<std::string>& words) -> absl::Status {
                    auto principal = WithRole(words[1], words[2]);
                    if (!principal.ok()) return principal.status();
                    if (!table.tokens_.emplace(words[0], *std::move(principal)).second) {
                      return absl::InvalidArgumentError("the same token is on an earlier line");
                    }
                    return absl::OkStatus();
                  });
  if (!parsed.ok()) return parsed;
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  auto text = ReadTableFile(path, "token file");
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const Principal* TokenTable::Find(std::string_view token) const {
  auto it = tokens_.find(token);
  return it == tokens_.end() ? nullptr : &it->second;
}

absl::StatusOr<PrincipalTable> PrincipalTable::Parse(std::string_view text,
                                                     const std::string& filename) {
  PrincipalTable table;
  absl::Status parsed =
      ForEachLine(text, filename, 2, "want '<principal> <role>'",
                  [&](const std::vector<std::string>& words) -> absl::Status {
                    auto principal = WithRole(words[0], words[1]);
                    if (!principal.ok()) return principal.status();
                    if (!table.principals_.emplace(words[0], *std::move(principal)).second) {
                      return absl::InvalidArgumentError("the same principal is on an earlier line");
                    }
                    return absl::OkStatus();
                  });
  if (!parsed.ok()) return parsed;
  return table;
}

absl::StatusOr<PrincipalTable> PrincipalTable::Load(const std::string& path) {
  auto text = ReadTableFile(path, "principals file");
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const Principal* PrincipalTable::Find(std::string_view name) const {
  auto it = principals_.find(name);
  return it == principals_.end() ? nullptr : &it->second;
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

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(
    const std::string& tokens_path, const std::string& principals_path) {
  std::optional<TokenTable> tokens;
  if (!tokens_path.empty()) {
    auto table = TokenTable::Load(tokens_path);
    if (!table.ok()) return table.status();
    tokens = *std::move(table);
  }
  std::optional<PrincipalTable> principals;
  if (!principals_path.empty()) {
    auto table = PrincipalTable::Load(principals_path);
    if (!table.ok()) return table.status();
    principals = *std::move(table);
  }
  return std::make_unique<Authenticator>(std::move(tokens), std::move(principals));
}

absl::StatusOr<Principal> Authenticator::IdentifyToken(std::string_view authorization) const {
  std::string_view token = BearerToken(authorization);
  if (token.empty()) {
    return absl::UnauthenticatedError("no bearer token (authorization: Bearer <token>)");
  }
  const Principal* principal = tokens_->Find(token);
  if (principal == nullptr) return absl::UnauthenticatedError("unknown token");
  return *principal;
}

absl::StatusOr<Principal> Authenticator::Identify(const CallerCredentials& credentials) const {
  if (!enabled()) {
    Principal anyone;
    anyone.name = "anonymous";
    anyone.admin = true;
    anyone.unauthenticated = true;
    return anyone;
  }
  // A token names its principal explicitly, so it goes first.
  if (tokens_ && (!credentials.authorization.empty() || !principals_)) {
    return IdentifyToken(credentials.authorization);
  }
  if (credentials.certificate_principal.empty()) {
    return absl::UnauthenticatedError(
        tokens_ ? "no bearer token (authorization: Bearer <token>) and no client certificate"
                : "no client certificate");
  }
  const Principal* principal = principals_->Find(credentials.certificate_principal);
  if (principal == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the client certificate of ", credentials.certificate_principal, " has no role"));
  }
  return *principal;
}

absl::StatusOr<Principal> Authenticator::ForAdmin(const CallerCredentials& credentials) const {
  auto principal = Identify(credentials);
  if (principal.ok() && !principal->admin) {
    return absl::PermissionDeniedError(absl::StrCat(
        principal->name, " is not an admin (its role is node:", principal->node_id, ")"));
  }
  return principal;
}

absl::StatusOr<Principal> Authenticator::ForNode(const CallerCredentials& credentials) const {
  auto principal = Identify(credentials);
  if (principal.ok() && !principal->unauthenticated && principal->node_id.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(principal->name, " has no node role: ADS needs role node:<node-id>"));
  }
  return principal;
}

namespace {

template <typename Map>
bool AnyHasNodeRole(const Map& principals, const std::string& node_id) {
  return std::any_of(principals.begin(), principals.end(),
                     [&](const auto& entry) { return entry.second.node_id == node_id; });
}

}  // namespace

bool TokenTable::HasNodeRole(const std::string& node_id) const {
  return AnyHasNodeRole(tokens_, node_id);
}

bool PrincipalTable::HasNodeRole(const std::string& node_id) const {
  return AnyHasNodeRole(principals_, node_id);
}

bool Authenticator::HasNodeRole(const std::string& node_id) const {
  return (tokens_ && tokens_->HasNodeRole(node_id)) ||
         (principals_ && principals_->HasNodeRole(node_id));
}

absl::Status Authenticator::MayServe(const Principal& principal, const std::string& node_id) {
  if (principal.unauthenticated || principal.node_id == node_id) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(principal.name, " may only ask for node ",
                                                  principal.node_id, ", not ", node_id));
}

}  // namespace phoenix::control_plane
