#include "source/filters/access_policy/access_policy.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "source/common/logging.h"
#include "source/http/filter_registry.h"

namespace phoenix::filters {
namespace {

class AccessPolicyFilterFactory : public http::FilterFactory {
 public:
  explicit AccessPolicyFilterFactory(std::shared_ptr<const AccessPolicy> policy)
      : policy_(std::move(policy)) {}
  std::unique_ptr<http::StreamFilter> Create() const override {
    return std::make_unique<AccessPolicyFilter>(policy_);
  }
  void Explain(const http::RequestHeaders& request, const std::string& client_ip,
               http::PolicyExplanation& explanation) const override {
    policy_->Explain(request, client_ip, explanation);
  }

 private:
  std::shared_ptr<const AccessPolicy> policy_;
};

}  // namespace

bool CidrRange::ParseAddress(std::string_view text, in6_addr* out) {
  std::string s(text);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memset(out, 0, sizeof(*out));
    out->s6_addr[10] = 0xff;
    out->s6_addr[11] = 0xff;
    std::memcpy(&out->s6_addr[12], &v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool CidrRange::Parse(const std::string& text, CidrRange* out) {
  size_t slash = text.find('/');
  std::string address = text.substr(0, slash);
  bool v4 = address.find(':') == std::string::npos;
  if (!ParseAddress(address, &out->prefix_)) return false;
  int max = v4 ? 32 : 128;
  int length = max;
  if (slash != std::string::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &length) || length < 0 || length > max)) {
    return false;
  }
  out->length_ = v4 ? length + 96 : length;
  // Clear host bits so Contains() can compare whole bytes.
  for (int bit = out->length_; bit < 128; ++bit) {
    out->prefix_.s6_addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return true;
}

bool CidrRange::Contains(const in6_addr& address) const {
  int full = length_ / 8;
  if (std::memcmp(address.s6_addr, prefix_.s6_addr, full) != 0) return false;
  int rest = length_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.s6_addr[full] & mask) == prefix_.s6_addr[full];
}

AccessMatcher::AccessMatcher(const config::v1::AccessMatch& proto, const std::string& path,
                             config::ConfigErrors& errors)
    : exact_methods_(proto.exact_methods()) {
  for (const auto& method : proto.methods()) methods_.push_back(absl::AsciiStrToUpper(method));
  if (proto.has_path()) {
    path_ = std::make_unique<router::StringMatcher>(proto.path(), path + ".path", errors);
  }
  for (int i = 0; i < proto.headers_size(); ++i) {
    headers_.emplace_back(proto.headers(i), absl::StrCat(path, ".headers[", i, "]"), errors);
  }
  for (int i = 0; i < proto.query_parameters_size(); ++i) {
    query_parameters_.emplace_back(proto.query_parameters(i),
                                   absl::StrCat(path, ".query_parameters[", i, "]"), errors);
  }
  for (int i = 0; i < proto.source_cidrs_size(); ++i) {
    CidrRange range;
    if (!CidrRange::Parse(proto.source_cidrs(i), &range)) {
      errors.Add(absl::StrCat(path, ".source_cidrs[", i, "]"),
                 absl::StrCat("'", proto.source_cidrs(i), "' is not a CIDR range"));
    }
    source_cidrs_.push_back(range);
  }
  for (int i = 0; i < proto.and_rules_size(); ++i) {
    and_rules_.emplace_back(proto.and_rules(i), absl::StrCat(path, ".and_rules[", i, "]"), errors);
  }
  for (int i = 0; i < proto.or_rules_size(); ++i) {
    or_rules_.emplace_back(proto.or_rules(i), absl::StrCat(path, ".or_rules[", i, "]"), errors);
  }
  if (proto.has_not_rule()) {
    not_rule_ = std::make_unique<AccessMatcher>(proto.not_rule(), path + ".not_rule", errors);
  }
}

bool AccessMatcher::Match(const http::RequestHeaders& request, const in6_addr* client) const {
  if (!methods_.empty()) {
    bool found = false;
    for (const auto& method : methods_) {
      if (method == request.method ||
          (!exact_methods_ && method == "GET" && request.method == "HEAD")) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (path_ != nullptr && !path_->Match(request.PathWithoutQuery())) return false;
  for (const auto& header : headers_) {
    if (!header.Match(request)) return false;
  }
  if (!query_parameters_.empty()) {
    std::string_view query = request.Query();
    for (const auto& parameter : query_parameters_) {
      if (!parameter.Match(query)) return false;
    }
  }
  if (!source_cidrs_.empty()) {
    if (client == nullptr) return false;
    bool inside = false;
    for (const auto& range : source_cidrs_) inside = inside || range.Contains(*client);
    if (!inside) return false;
  }
  for (const auto& rule : and_rules_) {
    if (!rule.Match(request, client)) return false;
  }
  if (!or_rules_.empty()) {
    bool any = false;
    for (const auto& rule : or_rules_) any = any || rule.Match(request, client);
    if (!any) return false;
  }
  if (not_rule_ != nullptr && not_rule_->Match(request, client)) return false;
  return true;
}

AccessPolicy::AccessPolicy(const config::v1::AccessPolicy& proto, StatsStore& stats,
                           const std::string& stat_prefix, const std::string& path,
                           config::ConfigErrors& errors)
    : default_deny_(proto.has_default_action() &&
                    proto.default_action() == config::v1::AccessPolicy::DENY) {
  std::string prefix = absl::StrCat("http.", stat_prefix, ".access_policy.");
  for (int i = 0; i < proto.rules_size(); ++i) {
    const auto& rule = proto.rules(i);
    std::string rpath = absl::StrCat(path, ".rules[", i, "]");
    if (rule.name().empty()) errors.Add(rpath + ".name", "a rule needs a name (stats use it)");
    for (const auto& other : rules_) {
      if (other->name == rule.name() && !rule.name().empty()) {
        errors.Add(rpath + ".name", absl::StrCat("rule name '", rule.name(), "' is used twice"));
      }
    }
    bool deny = rule.action() == config::v1::AccessPolicy::DENY;
    rules_.push_back(std::make_unique<Rule>(Rule{
        rule.name(), deny, rule.shadow(), AccessMatcher(rule.match(), rpath + ".match", errors),
        &stats.counter(absl::StrCat(prefix, rule.name(), rule.shadow() ? ".shadow_" : ".",
                                    deny ? "denied" : "allowed"))}));
  }
  default_decided_ =
      &stats.counter(absl::StrCat(prefix, "default_", default_deny_ ? "denied" : "allowed"));
  denied_ = &stats.counter(absl::StrCat(prefix, "denied"));
}

AccessPolicy::Decision AccessPolicy::Evaluate(const http::RequestHeaders& request,
                                              const std::string& client_ip, bool count) const {
  in6_addr client;
  const in6_addr* client_ptr = CidrRange::ParseAddress(client_ip, &client) ? &client : nullptr;
  for (const auto& rule : rules_) {
    if (!rule->match.Match(request, client_ptr)) continue;
    if (count) rule->matched->Inc();
    if (rule->shadow) {
      if (count) {
        PHX_LOG(kDebug, "access policy: shadow rule '", rule->name, "' would ",
                rule->deny ? "deny " : "allow ", request.method, " ", request.path);
      }
      continue;
    }
    if (rule->deny && count) denied_->Inc();
    return Decision{rule->deny, rule.get()};
  }
  if (count) {
    default_decided_->Inc();
    if (default_deny_) denied_->Inc();
  }
  return Decision{default_deny_, nullptr};
}

void AccessPolicy::Explain(const http::RequestHeaders& request, const std::string& client_ip,
                           http::PolicyExplanation& explanation) const {
  in6_addr client;
  const in6_addr* client_ptr = CidrRange::ParseAddress(client_ip, &client) ? &client : nullptr;
  for (const auto& rule : rules_) {
    if (!rule->match.Match(request, client_ptr)) continue;
    if (rule->shadow) {
      explanation.lines.push_back(absl::StrCat("access_policy: shadow rule '", rule->name,
                                               "' matches (would ", rule->deny ? "deny" : "allow",
                                               "; not enforced)"));
    }
  }
  Decision decision = Evaluate(request, client_ip, /*count=*/false);
  std::string by = decision.rule != nullptr ? absl::StrCat("rule '", decision.rule->name, "'")
                                            : std::string("the default action");
  explanation.lines.push_back(
      absl::StrCat("access_policy: ", decision.deny ? "DENY" : "allow", " by ", by));
  if (decision.deny) {
    explanation.denied_by = decision.rule != nullptr ? decision.rule->name : "default";
  }
}

http::FilterStatus AccessPolicyFilter::DecodeHeaders(http::RequestHeaders& headers, bool) {
  AccessPolicy::Decision decision = policy_->Evaluate(headers, callbacks_->stream_info().client_ip);
  if (!decision.deny) return http::FilterStatus::kContinue;
  // The body says nothing about which rule: that goes to stats and the access log only.
  callbacks_->SendLocalReply(403, "forbidden\n", "DENY");
  return http::FilterStatus::kStop;
}

void RegisterAccessPolicyFilter() {
  http::FilterRegistry::Register(
      AccessPolicyFilter::kName,
      [](const google::protobuf::Any& typed_config, const http::FilterFactoryContext& context,
         const std::string& path, config::ConfigErrors& errors) -> http::FilterFactoryPtr {
        config::v1::AccessPolicy proto;
        if (!typed_config.UnpackTo(&proto)) {
          errors.Add(path, "needs typed_config of type phoenix.config.v1.AccessPolicy");
          return nullptr;
        }
        auto policy =
            std::make_shared<AccessPolicy>(proto, context.stats, context.stat_prefix, path, errors);
        return std::make_shared<AccessPolicyFilterFactory>(std::move(policy));
      });
}

}  // namespace phoenix::filters
