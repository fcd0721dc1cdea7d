#include "source/filters/access_policy/access_policy.h"

#include "absl/strings/ascii.h"
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
               std::string_view principal, const http::PathSemantics* app_paths,
               http::PolicyExplanation& explanation) const override {
    policy_->Explain(request, client_ip, principal, app_paths, explanation);
  }
  std::vector<ProbePath> ProbePaths() const override { return policy_->strict_deny_paths(); }

 private:
  std::shared_ptr<const AccessPolicy> policy_;
};

}  // namespace

AccessPolicy::AccessPolicy(const config::v1::AccessPolicy& proto, StatsStore& stats,
                           const std::string& stat_prefix, const std::string& path,
                           config::ConfigErrors& errors)
    : default_deny_(proto.has_default_action() &&
                    proto.default_action() == config::v1::AccessPolicy::DENY) {
  StatsScope scope = http::HttpStatsScope(stats, stat_prefix).Nested("access_policy");
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
    const auto& term = rule.match().path();
    if (deny && rule.strict() && !rule.shadow() && rule.match().has_path() && !term.ignore_case() &&
        (term.has_exact() || term.has_prefix())) {
      strict_deny_paths_.push_back({rule.name(), term.has_exact() ? term.exact() : term.prefix()});
    }
    // Fail closed: a deny covers every form the app serves alike; an allow never widens.
    matchers::PathForms forms = rule.strict() ? matchers::PathForms::kAsWritten
                                : deny        ? matchers::PathForms::kWiden
                                              : matchers::PathForms::kWidenUnderNot;
    rules_.push_back(std::make_unique<Rule>(Rule{
        rule.name(), deny, rule.shadow(), rule.strict(),
        matchers::RequestMatcher(rule.match(), rpath + ".match", errors, forms),
        &scope.Labelled("rule_name", rule.name(), "rule")
             .counter(absl::StrCat(rule.shadow() ? "shadow_" : "", deny ? "denied" : "allowed"),
                      rule.shadow() ? "Requests a shadow rule would have decided"
                                    : "Requests a rule decided")}));
  }
  default_decided_ = &scope.counter(absl::StrCat("default_", default_deny_ ? "denied" : "allowed"),
                                    "Requests no rule matched, decided by the default action");
  denied_ = &scope.counter("denied", "Requests the policy denied");
}

AccessPolicy::Decision AccessPolicy::Evaluate(const http::RequestHeaders& request,
                                              const std::string& client_ip,
                                              std::string_view principal,
                                              const http::PathSemantics* app_paths,
                                              bool count) const {
  in6_addr client;
  const in6_addr* client_ptr =
      matchers::CidrRange::ParseAddress(client_ip, &client) ? &client : nullptr;
  for (const auto& rule : rules_) {
    if (!rule->match.Match(request, {client_ptr, principal, app_paths})) continue;
    if (count) rule->matched->Inc();
    if (rule->shadow) {
      if (count) {
        PHX_LOG(kInfo, "access policy: shadow rule '", rule->name, "' would ",
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
                           std::string_view principal, const http::PathSemantics* app_paths,
                           http::PolicyExplanation& explanation) const {
  in6_addr client;
  const in6_addr* client_ptr =
      matchers::CidrRange::ParseAddress(client_ip, &client) ? &client : nullptr;
  for (const auto& rule : rules_) {
    if (!rule->match.Match(request, {client_ptr, principal, app_paths})) continue;
    if (rule->shadow) {
      explanation.lines.push_back(absl::StrCat("access_policy: shadow rule '", rule->name,
                                               "' matches (would ", rule->deny ? "deny" : "allow",
                                               "; not enforced)"));
    }
  }
  Decision decision = Evaluate(request, client_ip, principal, app_paths, /*count=*/false);
  std::string by = decision.rule != nullptr ? absl::StrCat("rule '", decision.rule->name, "'")
                                            : std::string("the default action");
  explanation.lines.push_back(
      absl::StrCat("access_policy: ", decision.deny ? "DENY" : "allow", " by ", by));
  bool folded = false;
  if (decision.rule != nullptr &&
      decision.rule->match.Match(request, {client_ptr, principal, app_paths}, &folded) && folded) {
    std::string_view path = request.PathWithoutQuery();
    bool declared =
        app_paths != nullptr && app_paths->any() && (decision.rule->strict || !decision.rule->deny);
    explanation.lines.push_back(absl::StrCat(
        "access_policy: rule '", decision.rule->name, "' matched the path in its folded form ",
        declared ? matchers::FoldPath(path, *app_paths) : matchers::FoldPath(path), " (",
        matchers::DescribeFolding(path), "), ",
        declared ? "as the virtual host's app_path_semantics declare the app serves it"
                 : "as the app would serve it; strict: true matches only as written"));
  }
  if (decision.deny) {
    explanation.denied_by = decision.rule != nullptr ? decision.rule->name : "default";
  }
}

http::FilterStatus AccessPolicyFilter::DecodeHeaders(http::RequestHeaders& headers, bool) {
  http::StreamInfo& info = callbacks_->stream_info();
  const http::Route* route = callbacks_->route();
  AccessPolicy::Decision decision =
      policy_->Evaluate(headers, info.client_ip, info.peer_principal(),
                        route != nullptr ? &route->app_path_semantics() : nullptr);
  if (decision.rule != nullptr) info.policy_rule = decision.rule->name;
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
