#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "source/control_plane/resource_files.h"

namespace phoenix::control_plane {

// Notices changes to the resource directory by polling the files' modification times and
// sizes (one stat per file every interval): simpler than inotify over nodes/<id>/ folders that
// come and go, and cheap for a directory of config files. Calls `on_change` on its own
// thread.
class DirectoryWatcher {
 public:
  DirectoryWatcher(std::string dir, DirectoryFingerprint initial,
                   std::chrono::milliseconds interval, std::function<void()> on_change);
  ~DirectoryWatcher();  // Stops the thread.

 private:
  void Run();

  const std::string dir_;
  DirectoryFingerprint last_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> on_change_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace phoenix::control_plane
