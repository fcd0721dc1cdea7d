#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "source/common/dispatcher.h"

namespace phoenix::server {

// Watches the certificate, key and CA files that the config in force reads, and reports a
// change once writes have settled (a certificate and its key are replaced one after the
// other). It watches their directories rather than the files, so that a file replaced by a
// rename (the atomic way, and how Kubernetes swaps the "..data" link of a mounted secret) is
// seen too. Main thread only.
class CertificateWatcher {
 public:
  CertificateWatcher(Dispatcher& dispatcher, std::function<void()> on_change,
                     std::chrono::milliseconds settle = std::chrono::milliseconds(200));
  ~CertificateWatcher();

  // Replaces the watched set with `files`.
  void Watch(const std::vector<std::string>& files);
  // Stops watching for good: closes its handles while the loop can still finish closing them.
  void Stop();

 private:
  struct Directory;

  void OnEvent(const Directory& directory, const char* name);

  Dispatcher& dispatcher_;
  std::function<void()> on_change_;
  std::chrono::milliseconds settle_;
  std::unique_ptr<Timer> settle_timer_;
  std::map<std::string, std::unique_ptr<Directory>> directories_;  // By path.
};

}  // namespace phoenix::server
