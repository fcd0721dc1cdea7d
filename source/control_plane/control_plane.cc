#include "source/control_plane/control_plane.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "source/common/logging.h"
#include "source/config/yaml_loader.h"
#include "source/control_plane/resource_text.h"
#include "source/tls/certificate.h"

namespace phoenix::control_plane {
namespace {
constexpr const char* kWho = "files";  // A change made in the directory itself.
}  // namespace

ControlPlane::ControlPlane(ControlPlaneOptions options)
    : options_(std::move(options)), audit_(options_.audit_log_path) {}

ControlPlane::~ControlPlane() { Stop(); }

absl::Status ControlPlane::Start() {
  auto auth = Authenticator::Load(options_.tokens_path, options_.principals_path);
  if (!auth.ok()) return auth.status();
  auth_ = *std::move(auth);
  auto credentials = MakeServerCredentials(options_.tls);
  if (!credentials.ok()) return credentials.status();
  // Fingerprint first: a change made while loading is then seen by the first poll.
  DirectoryFingerprint fingerprint = FingerprintResourceFiles(options_.resources_dir);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto outcome = store_.Offer(LoadResourceFiles(options_.resources_dir));
    if (outcome.kind == SnapshotStore::Outcome::Kind::kRefused) return outcome.error;
    RememberLocked();
    if (auto s =
            audit_.RecordAccepted(absl::Now(), kWho, store_.current()->version(), outcome.changes);
        !s.ok()) {
      return s;
    }
  }
  admin_ = std::make_unique<AdminService>(*this, *auth_);
  server_ = std::make_unique<AdsServer>(store_.current(), auth_.get());
  auto port = server_->Start(options_.listen_address, *credentials, {admin_.get()});
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
  RememberLocked();
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

namespace phoenix::control_plane {

absl::StatusOr<std::vector<ResourceDiffText>> ControlPlane::Plan(
    const std::vector<IncomingFile>& files) {
  std::lock_guard<std::mutex> lock(mu_);
  auto current = store_.current();
  auto plan = PlanChange(options_.resources_dir, files, current.get());
  if (!plan.ok()) return plan.status();
  return DescribeChanges(current.get(), *plan->candidate, plan->changes);
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::Apply(const std::vector<IncomingFile>& files,
                                                          const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  return CommitLocked(files, who, /*replace_all=*/false, "");
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::Rollback(uint64_t version,
                                                             const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = history_.find(version);
  if (it == history_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "version ", version, " is not kept: phoenix-cp keeps the last ", kHistoryVersions,
        " versions since it started (", history_.empty() ? 0 : history_.begin()->first, " to ",
        history_.empty() ? 0 : history_.rbegin()->first, ")"));
  }
  std::vector<IncomingFile> files = it->second;  // Copied: committing adds to history_.
  return CommitLocked(files, who, /*replace_all=*/true,
                      absl::StrCat("# rollback to version ", version, "\n"));
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::RotateCertificate(
    const std::string& name, const std::string& node, const std::string& certificate_chain,
    const std::string& private_key, const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  auto current = store_.current();
  // Where the Secret is defined: the common files, or nodes/<id>/ folders.
  std::vector<std::pair<std::string, const Resource*>> found;  // (node, resource)
  auto look = [&](const ResourcesByType& set, const std::string& at) {
    if (!node.empty() && at != node) return;
    auto secrets = set.find(ResourceType::kSecret);
    if (secrets == set.end()) return;
    if (auto it = secrets->second.find(name); it != secrets->second.end()) {
      found.emplace_back(at, &it->second);
    }
  };
  look(current->common(), "");
  for (const auto& [at, set] : current->per_node()) look(set, at);
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no Secret named '", name, "'"));
  if (found.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Secret '", name, "' is defined for several nodes: say which with --node"));
  }
  const std::string path = found[0].second->file;
  config::v1::StaticResources resources;
  config::SourceMap map(path);
  if (auto s = config::LoadYamlFile(path, &resources, &map); !s.ok()) return s;
  config::v1::Secret* secret = nullptr;
  for (auto& candidate : *resources.mutable_secrets()) {
    if (candidate.name() == name) secret = &candidate;
  }
  if (secret == nullptr || !secret->has_tls_certificate()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Secret '", name, "' in ", path, " holds no tls_certificate to rotate"));
  }
  secret->mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string(
      certificate_chain);
  secret->mutable_tls_certificate()->mutable_private_key()->set_inline_string(private_key);
  // The proxy's own loader: the key must be the certificate's and the certificate valid now
  // (the snapshot's validation checks only the secrets a TLS context refers to).
  if (auto loaded = tls::LoadCertificate(secret->tls_certificate()); !loaded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Secret '", name, "': ", loaded.status().message()));
  }
  std::string relative = std::filesystem::relative(path, options_.resources_dir).string();
  std::string text =
      absl::StrCat("# Rewritten by phoenix-cp: certificate of Secret ", name, " rotated by ", who,
                   "\n", RenderMessage(resources, TextFormat::kYaml));
  return CommitLocked({{relative, text}}, who, /*replace_all=*/false,
                      absl::StrCat("# certificate rotation of Secret ", name, "\n"));
}

absl::StatusOr<AdminBackend::Applied> ControlPlane::CommitLocked(
    const std::vector<IncomingFile>& files, const std::string& who, bool replace_all,
    const std::string& note) {
  // mu_ is held throughout: the watcher's Reload waits, then finds the files it would read
  // already in force (unchanged), so the change is audited once, as `who`.
  auto before = store_.current();
  auto plan = PlanChange(options_.resources_dir, files, before.get(), replace_all);
  if (!plan.ok()) {
    if (auto s = audit_.RecordRefused(absl::Now(), who, std::string(plan.status().message()));
        !s.ok()) {
      PHX_LOG(kError, "phoenix-cp: audit log: ", s.message());
    }
    PHX_LOG(kWarn, "phoenix-cp: refused a change by ", who, ":\n", plan.status().message());
    return plan.status();
  }
  Applied applied;
  applied.version = before ? before->version() : 0;
  if (plan->changes.empty()) return applied;  // Nothing to write.
  if (auto s = WriteIncomingFiles(options_.resources_dir, files); !s.ok()) return s;
  if (replace_all) {
    if (auto s = RemoveOtherFiles(options_.resources_dir, files); !s.ok()) return s;
  }
  auto outcome = store_.Offer(LoadResourceFiles(options_.resources_dir));
  if (outcome.kind == SnapshotStore::Outcome::Kind::kRefused) {
    // The directory changed under us in a way that does not load: say so, serve the old.
    return absl::AbortedError(absl::StrCat(
        "the files were written but the directory no longer loads: ", outcome.error.message()));
  }
  auto after = store_.current();
  applied.version = after->version();
  if (outcome.kind == SnapshotStore::Outcome::Kind::kUnchanged) return applied;
  RememberLocked();
  applied.diffs = DescribeChanges(before.get(), *after, outcome.changes);
  if (auto s = audit_.RecordAccepted(absl::Now(), who, after->version(), outcome.changes,
                                     note + JoinDiffs(applied.diffs));
      !s.ok()) {
    PHX_LOG(kError, "phoenix-cp: audit log: ", s.message());
  }
  PHX_LOG(kInfo, "phoenix-cp: version ", after->version(), ": ", outcome.changes.size(),
          " resource change(s) by ", who);
  server_->Publish(after);
  return applied;
}

void ControlPlane::RememberLocked() {
  auto files = ReadIncomingFiles(options_.resources_dir);
  if (!files.ok()) {
    PHX_LOG(kWarn, "phoenix-cp: version ", store_.current()->version(),
            " cannot be rolled back to: ", files.status().message());
    return;
  }
  history_[store_.current()->version()] = *std::move(files);
  while (history_.size() > kHistoryVersions) history_.erase(history_.begin());
}

std::shared_ptr<const ResourceSnapshot> ControlPlane::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.current();
}

std::vector<ProxyStatus> ControlPlane::Proxies() const {
  return server_ ? server_->Proxies() : std::vector<ProxyStatus>{};
}

absl::StatusOr<std::vector<std::string>> ControlPlane::AuditLines() const {
  return audit_.ReadLines();
}

}  // namespace phoenix::control_plane
