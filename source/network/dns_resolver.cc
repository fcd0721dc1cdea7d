#include "source/network/dns_resolver.h"

#include <netdb.h>
#include <uv.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace phoenix::network {
namespace {

bool SameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  size_t length = a.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  return std::memcmp(&a, &b, length) == 0;
}

// What a query and its uv_getaddrinfo request share: the request lives until libuv calls back,
// even when its query is destroyed before that, which only takes the callback away (and asks
// libuv to cancel the work if no thread has started it).
struct PendingLookup {
  DnsResolver::Callback callback;
  DnsLookupFamily family;
  uv_getaddrinfo_t* request = nullptr;  // Null once libuv called back.
};

void OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
  std::unique_ptr<uv_getaddrinfo_t> owned(request);
  std::unique_ptr<std::shared_ptr<PendingLookup>> data(
      static_cast<std::shared_ptr<PendingLookup>*>(request->data));
  std::shared_ptr<PendingLookup> pending = std::move(*data);
  pending->request = nullptr;
  std::vector<sockaddr_storage> addresses;
  for (addrinfo* info = result; info != nullptr; info = info->ai_next) {
    if (info->ai_family != AF_INET && info->ai_family != AF_INET6) continue;
    sockaddr_storage address{};
    std::memcpy(&address, info->ai_addr, std::min<size_t>(info->ai_addrlen, sizeof(address)));
    addresses.push_back(address);
  }
  if (result != nullptr) uv_freeaddrinfo(result);
  // Taken out first: the callback may destroy the query.
  DnsResolver::Callback callback = std::move(pending->callback);
  pending->callback = nullptr;
  if (callback == nullptr) return;
  if (status != 0) {
    callback(absl::UnavailableError(uv_strerror(status)));
    return;
  }
  addresses = FilterAddresses(addresses, pending->family);
  if (addresses.empty()) {
    callback(absl::NotFoundError("no address of the family asked for"));
    return;
  }
  callback(std::move(addresses));
}

// What the caller holds.
class UvQuery : public DnsQuery {
 public:
  explicit UvQuery(std::shared_ptr<PendingLookup> pending) : pending_(std::move(pending)) {}
  ~UvQuery() override {
    pending_->callback = nullptr;
    if (pending_->request != nullptr) {
      uv_cancel(reinterpret_cast<uv_req_t*>(pending_->request));
    }
  }

 private:
  std::shared_ptr<PendingLookup> pending_;
};

// A query that failed before reaching libuv: reports on the next loop iteration.
class FailedQuery : public DnsQuery {
 public:
  FailedQuery(Dispatcher& dispatcher, absl::Status status, DnsResolver::Callback callback)
      : alive_(std::make_shared<bool>(true)) {
    dispatcher.Post([alive = std::weak_ptr<bool>(alive_), status = std::move(status),
                     callback = std::move(callback)] {
      if (!alive.expired()) callback(status);
    });
  }

 private:
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::vector<sockaddr_storage> FilterAddresses(const std::vector<sockaddr_storage>& addresses,
                                              DnsLookupFamily family) {
  bool any_v6 = std::any_of(addresses.begin(), addresses.end(),
                            [](const sockaddr_storage& a) { return a.ss_family == AF_INET6; });
  int wanted = AF_INET;
  if (family == DnsLookupFamily::kV6Only || (family == DnsLookupFamily::kAuto && any_v6)) {
    wanted = AF_INET6;
  }
  std::vector<sockaddr_storage> kept;
  for (const sockaddr_storage& address : addresses) {
    if (address.ss_family != wanted) continue;
    bool seen = std::any_of(kept.begin(), kept.end(),
                            [&](const sockaddr_storage& k) { return SameAddress(k, address); });
    if (!seen) kept.push_back(address);
  }
  return kept;
}

std::unique_ptr<DnsQuery> UvDnsResolver::Resolve(const std::string& name, DnsLookupFamily family,
                                                 Callback callback) {
  addrinfo hints{};
  hints.ai_family = family == DnsLookupFamily::kV4Only   ? AF_INET
                    : family == DnsLookupFamily::kV6Only ? AF_INET6
                                                         : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  auto pending = std::make_shared<PendingLookup>();
  pending->callback = std::move(callback);
  pending->family = family;
  auto* request = new uv_getaddrinfo_t;
  request->data = new std::shared_ptr<PendingLookup>(pending);
  int status =
      uv_getaddrinfo(dispatcher_.loop(), request, &OnResolved, name.c_str(), nullptr, &hints);
  if (status != 0) {
    delete static_cast<std::shared_ptr<PendingLookup>*>(request->data);
    delete request;
    return std::make_unique<FailedQuery>(
        dispatcher_, absl::UnavailableError(absl::StrCat("getaddrinfo: ", uv_strerror(status))),
        std::move(pending->callback));
  }
  pending->request = request;
  return std::make_unique<UvQuery>(std::move(pending));
}

}  // namespace phoenix::network
