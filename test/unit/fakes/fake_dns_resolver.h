#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "source/network/dns_resolver.h"

namespace phoenix::fakes {

// A resolver a test answers by hand: Resolve() records the query; Answer()/Fail() complete
// the oldest one pending for a name.
class FakeDnsResolver : public network::DnsResolver {
 public:
  struct Pending {
    std::string name;
    network::DnsLookupFamily family;
    Callback callback;  // Null once the query was destroyed.
  };

  std::unique_ptr<network::DnsQuery> Resolve(const std::string& name,
                                             network::DnsLookupFamily family,
                                             Callback callback) override {
    auto pending = std::make_shared<Pending>(Pending{name, family, std::move(callback)});
    pending_.push_back(pending);
    ++resolves_;
    return std::make_unique<Query>(pending);
  }

  // Queries still waiting for an answer (not cancelled).
  size_t PendingCount(const std::string& name) const {
    size_t count = 0;
    for (const auto& p : pending_) count += p->name == name && p->callback != nullptr;
    return count;
  }
  size_t resolves() const { return resolves_; }

  // Answers the oldest query for `name` with IPv4 (or IPv6) addresses; false if none waits.
  bool Answer(const std::string& name, const std::vector<std::string>& ips) {
    std::vector<sockaddr_storage> addresses;
    for (const std::string& ip : ips) addresses.push_back(Parse(ip));
    return Complete(name, std::move(addresses));
  }
  bool Fail(const std::string& name) {
    return Complete(name, absl::UnavailableError("unknown node or service"));
  }

  static sockaddr_storage Parse(const std::string& ip) {
    sockaddr_storage address{};
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    if (inet_pton(AF_INET, ip.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      return address;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr), 1) << ip;
    in6->sin6_family = AF_INET6;
    return address;
  }

 private:
  class Query : public network::DnsQuery {
   public:
    explicit Query(std::shared_ptr<Pending> pending) : pending_(std::move(pending)) {}
    ~Query() override { pending_->callback = nullptr; }

   private:
    std::shared_ptr<Pending> pending_;
  };

  bool Complete(const std::string& name, absl::StatusOr<std::vector<sockaddr_storage>> result) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if ((*it)->name != name || (*it)->callback == nullptr) continue;
      Callback callback = std::move((*it)->callback);
      (*it)->callback = nullptr;
      pending_.erase(it);
      callback(std::move(result));
      return true;
    }
    return false;
  }

  std::vector<std::shared_ptr<Pending>> pending_;
  size_t resolves_ = 0;
};

}  // namespace phoenix::fakes
