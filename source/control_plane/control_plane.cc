#include "source/control_plane/control_plane.h"

#include "absl/strings/str_cat.h"
#include "source/common/logging.h"

namespace phoenix::control_plane {
namespace {
constexpr const char* kWho = "files";  // No authentication yet: the directory changed.
}  // namespace

ControlPlane::ControlPlane(ControlPlaneOptions options)
    : options_(std::move(options)), audit_(options_.audit_log_path) {}

ControlPlane::~ControlPlane() { Stop(); }

absl::Status ControlPlane::Start() {
  // Fingerprint first: a change made while loading is then seen by the first poll.
  DirectoryFingerprint fingerprint = FingerprintResourceFiles(options_.resources_dir);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto outcome = store_.Offer(LoadResourceFiles(options_.resources_dir));
    if (outcome.kind == SnapshotStore::Outcome::Kind::kRefused) return outcome.error;
    if (auto s =
            audit_.RecordAccepted(absl::Now(), kWho, store_.current()->version(), outcome.changes);
        !s.ok()) {
      return s;
    }
  }
  server_ = std::make_unique<AdsServer>(store_.current());
  auto port = server_->Start(options_.listen_address);
  if (!port.ok()) return port.status();
  port_ = *port;
  watcher_ = std::make_unique<DirectoryWatcher>(options_.resources_dir, std::move(fingerprint),
                                                options_.poll_interval, [this] { Reload(); });
  return absl::OkStatus();
}

void ControlPlane::Stop() {
  watcher_.reset();
  if (server_) server_->Shutdown();
}

uint64_t ControlPlane::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.current() ? store_.current()->version() : 0;
}

void ControlPlane::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  auto outcome = store_.Offer(LoadResourceFiles(options_.resources_dir));
  switch (outcome.kind) {
    case SnapshotStore::Outcome::Kind::kUnchanged:
      PHX_LOG(kDebug, "phoenix-cp: ", options_.resources_dir, " changed, its resources did not");
      return;
    case SnapshotStore::Outcome::Kind::kRefused: {
      std::string error(outcome.error.message());
      PHX_LOG(kError, "phoenix-cp: refused the change to ", options_.resources_dir,
              " (still serving version ", store_.current()->version(), "):\n", error);
      if (auto s = audit_.RecordRefused(absl::Now(), kWho, error); !s.ok()) {
        PHX_LOG(kError, "phoenix-cp: audit log: ", s.message());
      }
      return;
    }
    case SnapshotStore::Outcome::Kind::kAccepted:
      break;
  }
  auto snapshot = store_.current();
  if (auto s = audit_.RecordAccepted(absl::Now(), kWho, snapshot->version(), outcome.changes);
      !s.ok()) {
    PHX_LOG(kError, "phoenix-cp: audit log: ", s.message());
  }
  PHX_LOG(kInfo, "phoenix-cp: version ", snapshot->version(), ": ", outcome.changes.size(),
          " resource change(s)");
  server_->Publish(std::move(snapshot));
}

}  // namespace phoenix::control_plane
