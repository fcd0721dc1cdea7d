#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/dispatcher.h"

namespace phoenix::network {

// Which addresses a name resolves to.
enum class DnsLookupFamily {
  kV4Only,
  kV6Only,
  kAuto,  // IPv6 addresses if the name has any, else IPv4.
};

// A resolution in progress. Destroying it cancels it: its callback is never called.
class DnsQuery {
 public:
  virtual ~DnsQuery() = default;
};

// Looks names up without blocking the calling loop, so that clusters can name their endpoints
// (STRICT_DNS, LOGICAL_DNS). An interface so that tests can answer by hand.
class DnsResolver {
 public:
  // The addresses found (port 0), in the order the resolver gave them, or why there are none.
  using Callback = std::function<void(absl::StatusOr<std::vector<sockaddr_storage>>)>;

  virtual ~DnsResolver() = default;
  // Resolves `name`; `callback` runs later on the resolver's loop, never inside this call,
  // unless the returned query is destroyed first.
  virtual std::unique_ptr<DnsQuery> Resolve(const std::string& name, DnsLookupFamily family,
                                            Callback callback) = 0;
};

// The system resolver (getaddrinfo: /etc/hosts, then DNS), run on libuv's thread pool by
// uv_getaddrinfo, so the loop it belongs to never waits for it.
class UvDnsResolver : public DnsResolver {
 public:
  explicit UvDnsResolver(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  std::unique_ptr<DnsQuery> Resolve(const std::string& name, DnsLookupFamily family,
                                    Callback callback) override;

 private:
  Dispatcher& dispatcher_;
};

// Keeps the addresses of `family` among `addresses`, in order, without duplicates; for kAuto
// the IPv6 ones if there are any, else the IPv4 ones.
std::vector<sockaddr_storage> FilterAddresses(const std::vector<sockaddr_storage>& addresses,
                                              DnsLookupFamily family);

}  // namespace phoenix::network
