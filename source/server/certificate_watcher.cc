#include "source/server/certificate_watcher.h"

#include "source/common/logging.h"

namespace phoenix::server {

// One watched directory and the names in it that matter.
struct CertificateWatcher::Directory {
  CertificateWatcher* watcher = nullptr;
  uv_fs_event_t* handle = nullptr;
  std::set<std::string> names;

  ~Directory() {
    if (handle == nullptr) return;
    uv_fs_event_stop(handle);
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  }
};

CertificateWatcher::CertificateWatcher(Dispatcher& dispatcher, std::function<void()> on_change,
                                       std::chrono::milliseconds settle)
    : dispatcher_(dispatcher), on_change_(std::move(on_change)), settle_(settle) {
  settle_timer_ = dispatcher_.CreateTimer([this] { on_change_(); });
}

CertificateWatcher::~CertificateWatcher() = default;

void CertificateWatcher::Watch(const std::vector<std::string>& files) {
  std::map<std::string, std::set<std::string>> wanted;
  for (const std::string& file : files) {
    size_t slash = file.rfind('/');
    std::string directory = slash == std::string::npos ? "." : file.substr(0, slash);
    if (directory.empty()) directory = "/";
    wanted[directory].insert(slash == std::string::npos ? file : file.substr(slash + 1));
  }
  std::map<std::string, std::unique_ptr<Directory>> next;
  for (auto& [path, names] : wanted) {
    auto it = directories_.find(path);
    std::unique_ptr<Directory> directory;
    if (it != directories_.end()) {
      directory = std::move(it->second);
    } else {
      directory = std::make_unique<Directory>();
      directory->watcher = this;
      directory->handle = new uv_fs_event_t;
      uv_fs_event_init(dispatcher_.loop(), directory->handle);
      directory->handle->data = directory.get();
      int rc = uv_fs_event_start(
          directory->handle,
          [](uv_fs_event_t* handle, const char* name, int, int status) {
            auto* dir = static_cast<Directory*>(handle->data);
            if (status == 0 && dir != nullptr) dir->watcher->OnEvent(*dir, name);
          },
          path.c_str(), 0);
      if (rc != 0) {
        PHX_LOG(kWarn, "certificates: cannot watch ", path, " (", uv_strerror(rc),
                "): rotate with POST /certs/reload");
      }
    }
    directory->names = std::move(names);
    next[path] = std::move(directory);
  }
  directories_.swap(next);  // Directories no longer wanted close here.
}

void CertificateWatcher::Stop() {
  directories_.clear();
  settle_timer_.reset();
}

void CertificateWatcher::OnEvent(const Directory& directory, const char* name) {
  std::string changed = name != nullptr ? name : "";
  // "..data" and friends: a Kubernetes secret volume swapping all its files at once.
  if (!changed.empty() && directory.names.count(changed) == 0 && changed.rfind("..", 0) != 0) {
    return;
  }
  if (settle_timer_ != nullptr) settle_timer_->Enable(settle_);  // One rebuild once writes stop.
}

}  // namespace phoenix::server
