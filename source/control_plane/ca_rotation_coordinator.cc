#include "source/control_plane/ca_rotation_coordinator.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "source/common/logging.h"
#include "source/control_plane/certificate_holders.h"

namespace phoenix::control_plane {
namespace {

constexpr char kRotationRecord[] = "ca/rotation";
constexpr char kReplicasPrefix[] = "ca/replicas/";
constexpr char kIntermediatesPrefix[] = "ca/intermediates/";
// How often (in ticks) the driver reads the audit trail again while a rotation is in progress.
constexpr uint64_t kAuditEveryTicks = 10;
// The layout of "ca/rotation"; a replica that finds another stops issuing rather than guess.
constexpr char kRotationFormat[] = "1";

// A record's text: "key: value" lines, each value C-escaped (PEM spans lines).
using Fields = std::map<std::string, std::string>;

std::string EncodeFields(const Fields& fields) {
  std::string text;
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&text, key, ": ", absl::CEscape(value), "\n");
  }
  return text;
}

Fields DecodeFields(const std::string& text) {
  Fields fields;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) continue;
    std::string value;
    if (absl::CUnescape(line.substr(colon + 2), &value)) {
      fields[std::string(line.substr(0, colon))] = value;
    }
  }
  return fields;
}

std::string Field(const Fields& fields, const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

int64_t NumberField(const Fields& fields, const std::string& key) {
  int64_t n = 0;
  return absl::SimpleAtoi(Field(fields, key), &n) ? n : 0;
}

std::vector<std::string> ListField(const Fields& fields, const std::string& key) {
  return absl::StrSplit(Field(fields, key), ',', absl::SkipEmpty());
}

std::string RandomInstance() {
  std::random_device device;
  return absl::StrFormat("%08x%08x", device(), device());
}

const std::string kNone = MeshCa::PhaseName(MeshCa::RotationPhase::kNone);
const std::string kAddingRoot = MeshCa::PhaseName(MeshCa::RotationPhase::kAddingRoot);
const std::string kIssuingFromNew = MeshCa::PhaseName(MeshCa::RotationPhase::kIssuingFromNew);

bool InProgress(const std::optional<SharedRotation>& rotation) {
  return rotation && rotation->phase != kNone;
}

}  // namespace

std::string SharedRotation::Encode() const {
  return EncodeFields({{"format", kRotationFormat},
                       {"phase", phase},
                       {"old_root_serial", old_root_serial},
                       {"new_root_serial", new_root_serial},
                       {"new_root_pem", new_root_pem},
                       {"driver", driver},
                       {"bundle_version", absl::StrCat(bundle_version)},
                       {"old_certificates_expire", absl::StrCat(old_certificates_expire)}});
}

std::optional<SharedRotation> SharedRotation::Decode(const std::string& text) {
  Fields fields = DecodeFields(text);
  if (Field(fields, "format") != kRotationFormat) return std::nullopt;
  SharedRotation rotation;
  rotation.phase = Field(fields, "phase");
  rotation.old_root_serial = Field(fields, "old_root_serial");
  rotation.new_root_serial = Field(fields, "new_root_serial");
  rotation.new_root_pem = Field(fields, "new_root_pem");
  rotation.driver = Field(fields, "driver");
  rotation.bundle_version = static_cast<uint64_t>(NumberField(fields, "bundle_version"));
  rotation.old_certificates_expire =
      static_cast<time_t>(NumberField(fields, "old_certificates_expire"));
  if ((rotation.phase != kNone && rotation.phase != kAddingRoot &&
       rotation.phase != kIssuingFromNew) ||
      rotation.new_root_serial.empty() || rotation.new_root_pem.empty() ||
      rotation.driver.empty()) {
    return std::nullopt;
  }
  return rotation;
}

// One replica's report ("ca/replicas/<name>").
struct CaRotationCoordinator::Report {
  std::string name;
  std::string instance;
  uint64_t sequence = 0;   // Bumped by every write: an unchanged one still shows it is alive.
  bool left = false;       // It stopped.
  std::string phase;       // Its CA's rotation phase.
  std::string ready_root;  // The new root it holds an intermediate under ("": none).
  std::string csr;         // The CSR of an intermediate under csr_root it waits for.
  std::string csr_root;
  bool operator_intermediate = false;  // Its intermediate is the operator's: it cannot rotate.
  uint64_t bundle_version = 0;         // The shared bundle version its lists are against.
  time_t latest_old = 0;               // The latest not-after it issued under the old root.
  std::vector<std::string> acked;
  std::vector<std::string> waiting;
  // The driver's: nodes holding a valid certificate connected to no replica (audit trail).
  std::vector<std::string> not_connected;
  std::string error;    // Why it cannot follow the shared rotation ("": it does).
  time_t seen_ago = 0;  // Not in the record: how long since this replica saw it change.

  static Report Decode(const std::string& name, const std::string& text) {
    Fields fields = DecodeFields(text);
    Report report;
    report.name = name;
    report.instance = Field(fields, "instance");
    report.sequence = static_cast<uint64_t>(NumberField(fields, "sequence"));
    report.left = Field(fields, "left") == "1";
    report.phase = Field(fields, "phase");
    report.ready_root = Field(fields, "ready_root");
    report.csr = Field(fields, "csr");
    report.csr_root = Field(fields, "csr_root");
    report.operator_intermediate = Field(fields, "operator_intermediate") == "1";
    report.bundle_version = static_cast<uint64_t>(NumberField(fields, "bundle_version"));
    report.latest_old = static_cast<time_t>(NumberField(fields, "latest_old"));
    report.acked = ListField(fields, "acked");
    report.waiting = ListField(fields, "waiting");
    report.not_connected = ListField(fields, "not_connected");
    report.error = Field(fields, "error");
    return report;
  }
  // Without the sequence: what tells whether it changed.
  Fields Content() const {
    return {{"instance", instance},
            {"left", left ? "1" : "0"},
            {"phase", phase},
            {"ready_root", ready_root},
            {"csr", csr},
            {"csr_root", csr_root},
            {"operator_intermediate", operator_intermediate ? "1" : "0"},
            {"bundle_version", absl::StrCat(bundle_version)},
            {"latest_old", absl::StrCat(latest_old)},
            {"acked", absl::StrJoin(acked, ",")},
            {"waiting", absl::StrJoin(waiting, ",")},
            {"not_connected", absl::StrJoin(not_connected, ",")},
            {"error", error}};
  }
};

CaRotationCoordinator::CaRotationCoordinator(MeshCa& ca, SharedRecords& records, AuditReader audit,
                                             Options options)
    : ca_(ca),
      records_(records),
      audit_(std::move(audit)),
      options_(std::move(options)),
      instance_(RandomInstance()) {}

CaRotationCoordinator::View CaRotationCoordinator::view() const {
  std::lock_guard<std::mutex> lock(view_mu_);
  return view_;
}

absl::StatusOr<std::map<std::string, std::string>> CaRotationCoordinator::Read() {
  auto records = records_.List("ca/");
  if (!records.ok()) return records.status();
  // Two live replicas given one name would overwrite each other's reports.
  auto mine = records->find(kReplicasPrefix + options_.replica);
  if (!last_report_.empty() && mine != records->end() &&
      Report::Decode(options_.replica, mine->second).instance != instance_) {
    return absl::FailedPreconditionError(
        absl::StrCat("another phoenix-cp replica is named '", options_.replica,
                     "' too: give each --ca-replica its own name"));
  }
  rotation_text_.reset();
  rotation_.reset();
  if (auto it = records->find(kRotationRecord); it != records->end()) {
    rotation_ = SharedRotation::Decode(it->second);
    if (!rotation_) {
      return absl::DataLossError(absl::StrCat(
          kRotationRecord, " in etcd does not parse (another phoenix-cp version wrote it?): ",
          "this replica issues nothing until it does; run every replica on one version"));
    }
    rotation_text_ = it->second;
  }
  return records;
}

absl::Status CaRotationCoordinator::Start(time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ == 0) started_ = now;
  auto records = Read();
  if (!records.ok()) return records.status();
  if (InProgress(rotation_)) {
    return absl::FailedPreconditionError(
        absl::StrCat("a root rotation (to ", rotation_->new_root_serial, ", driven by replica ",
                     rotation_->driver, ") is in progress"));
  }
  for (const Report& report : LiveReports(*records, Report(), now)) {
    if (report.phase != kNone || !report.csr.empty() || !report.error.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replica ", report.name, " has not finished the last rotation or renewal yet (",
          report.error.empty() ? report.phase : report.error, "): try again once it has"));
    }
    if (report.operator_intermediate) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replica ", report.name,
          " signs with an intermediate the operator gave it: give every replica one under a "
          "new root instead"));
    }
  }
  std::optional<std::string> seen = rotation_text_;
  if (absl::Status started = ca_.StartRotation(); !started.ok()) return started;
  MeshCa::RotationStatus local = ca_.rotation();
  SharedRotation rotation;
  rotation.phase = MeshCa::PhaseName(local.phase);
  rotation.old_root_serial = local.old_root_serial;
  rotation.new_root_serial = local.new_root_serial;
  rotation.new_root_pem = ca_.NewRootPem();
  rotation.driver = options_.replica;
  std::string text = rotation.Encode();
  if (absl::Status put = records_.PutIf(kRotationRecord, seen, text); !put.ok()) {
    // The put may have happened although its answer was lost: ask again before dropping the
    // new root (whose key is here alone).
    auto again = records_.List(kRotationRecord);
    if (!again.ok()) {
      return absl::UnavailableError(
          absl::StrCat("etcd did not say whether the rotation was shared (", put.message(),
                       "); phoenix-cp settles it when etcd answers: see phoenixctl ca status"));
    }
    auto it = again->find(kRotationRecord);
    if (it == again->end() || it->second != text) {
      if (absl::Status dropped = ca_.AbandonRotation(); !dropped.ok()) {
        PHX_LOG(kError, "phoenix-cp: mesh CA: ", dropped.message());
      }
      return put;
    }
  }
  rotation_text_ = text;
  rotation_ = rotation;
  std::lock_guard<std::mutex> view_lock(view_mu_);
  view_.rotation = rotation;
  view_.driving = true;
  view_.publishes_bundle = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> CaRotationCoordinator::Abort(time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ == 0) started_ = now;
  auto records = Read();
  if (!records.ok()) return records.status();
  if (!InProgress(rotation_)) {
    return absl::FailedPreconditionError("no root rotation is in progress");
  }
  if (rotation_->phase != kAddingRoot) {
    return absl::FailedPreconditionError(
        "certificates under the new root exist already: the rotation can only finish now");
  }
  if (ca_.CurrentRootSerial() != rotation_->old_root_serial) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this replica's root is not the rotation's old root ", rotation_->old_root_serial));
  }
  std::string dropped = rotation_->new_root_serial;
  SharedRotation back;
  back.phase = kNone;
  back.old_root_serial = rotation_->old_root_serial;
  back.new_root_serial = rotation_->old_root_serial;
  back.new_root_pem = ca_.CurrentRootPem();
  back.driver = options_.replica;
  if (absl::Status put = PutRotation(back); !put.ok()) return put;
  if (absl::Status followed = Follow(*records); !followed.ok()) {
    PHX_LOG(kError, "phoenix-cp: mesh CA: ", followed.message());
  }
  return dropped;
}

absl::Status CaRotationCoordinator::BundlePublished(uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!rotation_ || rotation_->driver != options_.replica || rotation_->phase != kAddingRoot ||
      rotation_->bundle_version == version) {
    return absl::OkStatus();
  }
  SharedRotation next = *rotation_;
  next.bundle_version = version;
  return PutRotation(next);
}

absl::Status CaRotationCoordinator::PutRotation(const SharedRotation& next) {
  std::string text = next.Encode();
  if (absl::Status put = records_.PutIf(kRotationRecord, rotation_text_, text); !put.ok()) {
    return put;  // Another replica wrote it first (or etcd is away): read again next round.
  }
  rotation_text_ = text;
  rotation_ = next;
  std::lock_guard<std::mutex> view_lock(view_mu_);
  view_.rotation = next;
  return absl::OkStatus();
}

absl::Status CaRotationCoordinator::CatchUp(time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ == 0) started_ = now;
  auto records = Read();
  if (!records.ok()) return records.status();
  absl::Status followed = Follow(*records);
  if (followed.ok()) ca_.AllowIssuingUntil(now + options_.fence.count());
  return followed;
}

void CaRotationCoordinator::Leave() {
  std::lock_guard<std::mutex> lock(mu_);
  if (last_report_.empty()) return;
  Report gone;
  gone.instance = instance_;
  gone.left = true;
  Fields fields = gone.Content();
  fields["sequence"] = absl::StrCat(++report_sequence_);
  if (!records_.Put(kReplicasPrefix + options_.replica, EncodeFields(fields)).ok()) {
    PHX_LOG(kWarn, "phoenix-cp: mesh CA: could not tell the other replicas this one stops");
  }
  last_report_.clear();
}

// Brings this replica's CA in line with the shared rotation.
absl::Status CaRotationCoordinator::Follow(const std::map<std::string, std::string>& records) {
  MeshCa::RotationStatus local = ca_.rotation();
  if (!rotation_) {
    // A rotation started here that never became the shared one (its put failed).
    if (local.phase == MeshCa::RotationPhase::kAddingRoot) return ca_.AbandonRotation();
    return absl::OkStatus();
  }
  const SharedRotation& shared = *rotation_;
  const std::string& to = shared.new_root_serial;
  if (local.phase != MeshCa::RotationPhase::kNone &&
      local.new_root_serial == shared.old_root_serial) {
    // The rotation before this one, which this replica has not finished yet.
    if (!ca_.HasIntermediateUnder(local.new_root_serial)) {
      return absl::FailedPreconditionError(
          absl::StrCat("this replica still waits for its intermediate under root ",
                       local.new_root_serial, " from the rotation before"));
    }
    if (absl::Status finished = ca_.FinishRotation(); !finished.ok()) return finished;
    local = ca_.rotation();
  }
  if (local.phase != MeshCa::RotationPhase::kNone && local.new_root_serial != to) {
    if (local.phase != MeshCa::RotationPhase::kAddingRoot) {
      return absl::FailedPreconditionError(
          absl::StrCat("this replica issues under root ", local.new_root_serial,
                       " but the replicas rotate to ", to, ": its --ca-dir is not theirs"));
    }
    if (absl::Status dropped = ca_.AbandonRotation(); !dropped.ok()) return dropped;
    local = ca_.rotation();
  }
  if (local.phase == MeshCa::RotationPhase::kNone) {
    std::vector<std::string> roots = tls::CertificateSerials(ca_.TrustBundle());
    auto has = [&](const std::string& serial) {
      return std::find(roots.begin(), roots.end(), serial) != roots.end();
    };
    if (!has(to)) {
      if (!has(shared.old_root_serial)) {
        return absl::FailedPreconditionError(
            absl::StrCat("this replica's root (", absl::StrJoin(roots, ", "),
                         ") is neither the old nor the new root of the replicas' rotation (",
                         shared.old_root_serial, " -> ", to,
                         "): give it their root.crt and an intermediate under it"));
      }
      if (absl::Status joined = ca_.JoinRotation(shared.new_root_pem); !joined.ok()) {
        return joined;
      }
    }
  }
  if (shared.phase != kAddingRoot) {
    if (absl::Status moved = ca_.FollowToIssuingFromNew(shared.old_certificates_expire);
        !moved.ok()) {
      return moved;
    }
  }
  // An intermediate signed for this replica's request (in a rotation, or a renewal).
  if (auto pending = ca_.PendingIntermediate()) {
    auto it = records.find(kIntermediatesPrefix + options_.replica);
    if (it != records.end()) {
      Fields answer = DecodeFields(it->second);
      if (Field(answer, "root") == pending->root_serial &&
          Field(answer, "csr") == pending->csr_pem) {
        if (absl::Status accepted =
                ca_.AcceptIntermediate(pending->root_serial, Field(answer, "cert"));
            !accepted.ok()) {
          PHX_LOG(kError, "phoenix-cp: mesh CA: the intermediate signed for this replica: ",
                  accepted.message());
        }
      }
    }
  }
  if (shared.phase == kNone && ca_.rotation().phase != MeshCa::RotationPhase::kNone &&
      ca_.HasIntermediateUnder(to)) {
    return ca_.FinishRotation();
  }
  return absl::OkStatus();
}

void CaRotationCoordinator::SignIntermediates(const std::map<std::string, std::string>& records) {
  const std::string prefix = kReplicasPrefix;
  for (const auto& [name, text] : records) {
    if (name.rfind(prefix, 0) != 0) continue;
    Report report = Report::Decode(name.substr(prefix.size()), text);
    if (report.left || report.csr.empty() || !ca_.HoldsRootKey(report.csr_root)) continue;
    std::string record = kIntermediatesPrefix + report.name;
    if (auto it = records.find(record); it != records.end()) {
      Fields done = DecodeFields(it->second);
      if (Field(done, "root") == report.csr_root && Field(done, "csr") == report.csr) continue;
    }
    auto cert = ca_.SignIntermediate(report.name, report.csr_root, report.csr);
    if (!cert.ok()) {
      PHX_LOG(kError, "phoenix-cp: mesh CA: cannot sign replica ", report.name,
              "'s intermediate: ", cert.status().message());
      continue;
    }
    absl::Status put = records_.Put(
        record, EncodeFields({{"root", report.csr_root}, {"csr", report.csr}, {"cert", *cert}}));
    if (put.ok()) {
      PHX_LOG(kInfo, "phoenix-cp: mesh CA: signed replica ", report.name,
              "'s intermediate under root ", report.csr_root);
    }
  }
}

std::vector<CaRotationCoordinator::Report> CaRotationCoordinator::LiveReports(
    const std::map<std::string, std::string>& records, const Report& mine, time_t now) {
  std::vector<Report> live;
  if (!mine.name.empty()) live.push_back(mine);
  const std::string prefix = kReplicasPrefix;
  for (const auto& [name, text] : records) {
    if (name.rfind(prefix, 0) != 0 || name == prefix + options_.replica) continue;
    Observed& observed = observed_[name];
    if (observed.report != text) {
      observed.report = text;
      observed.changed_at = now;
    }
    Report report = Report::Decode(name.substr(prefix.size()), text);
    report.seen_ago = now - observed.changed_at;
    if (report.left || report.seen_ago > options_.replica_timeout.count()) continue;
    live.push_back(std::move(report));
  }
  return live;
}

void CaRotationCoordinator::ReadAuditIfDue(time_t now) {
  std::string key = absl::StrCat(rotation_->new_root_serial, "/", rotation_->phase);
  if (progress_.key != key) {
    progress_ = PhaseProgress();
    progress_.key = key;
  }
  if (progress_.audit_tick != 0 && tick_ - progress_.audit_tick < kAuditEveryTicks) return;
  auto lines = audit_();
  if (!lines.ok()) {
    PHX_LOG(kWarn, "phoenix-cp: mesh CA: the rotation waits: cannot read the audit trail: ",
            lines.status().message());
    return;
  }
  CertificateHolders holders;
  holders.AddFromAuditLines(*lines);
  progress_.holders = holders.Current(now);
  progress_.latest_old = holders.LatestNotUnder(rotation_->new_root_serial);
  progress_.audit_tick = tick_;
}

absl::Status CaRotationCoordinator::TakeOverIfDriverGone(const std::vector<Report>& live,
                                                         time_t now) {
  if (!InProgress(rotation_) || rotation_->driver == options_.replica) return absl::OkStatus();
  // Only once this replica has watched long enough to tell a silent replica from a new one.
  if (now - started_ <= options_.replica_timeout.count()) return absl::OkStatus();
  std::string first = options_.replica;
  for (const Report& report : live) {
    if (report.name == rotation_->driver) return absl::OkStatus();
    first = std::min(first, report.name);
  }
  if (first != options_.replica) return absl::OkStatus();  // That one takes over.
  SharedRotation next = *rotation_;
  PHX_LOG(kWarn, "phoenix-cp: CA rotation: replica ", next.driver, " has been silent for ",
          options_.replica_timeout.count(), " s: this replica drives the rotation now");
  next.driver = options_.replica;
  return PutRotation(next);
}

absl::Status CaRotationCoordinator::Drive(const std::vector<Report>& live, bool all_run_bundle,
                                          time_t now) {
  SharedRotation next = *rotation_;
  const std::string& to = next.new_root_serial;
  time_t latest_old = progress_.latest_old;
  for (const Report& report : live) latest_old = std::max(latest_old, report.latest_old);
  if (next.phase == kAddingRoot) {
    if (next.bundle_version == 0 || progress_.audit_tick == 0 || !all_run_bundle) {
      return absl::OkStatus();
    }
    for (const Report& report : live) {
      if (report.ready_root != to || report.bundle_version != next.bundle_version) {
        return absl::OkStatus();
      }
    }
    next.phase = kIssuingFromNew;
    next.old_certificates_expire = latest_old;
    PHX_LOG(kInfo, "phoenix-cp: CA rotation: every replica (", live.size(),
            ") holds an intermediate under root ", to,
            " and every proxy and holder runs the new bundle: issuing under it now");
  } else if (next.phase == kIssuingFromNew) {
    bool switched = std::all_of(live.begin(), live.end(),
                                [&](const Report& report) { return report.phase == next.phase; });
    if (!switched) {
      progress_.switched_tick = 0;
      return absl::OkStatus();
    }
    if (progress_.switched_tick == 0) progress_.switched_tick = tick_;
    // What the audit trail says was issued under the old root, read after every replica
    // stopped issuing under it (and what each says it issued, for records still on the way).
    if (progress_.audit_tick <= progress_.switched_tick) return absl::OkStatus();
    if (latest_old != next.old_certificates_expire) {
      next.old_certificates_expire = latest_old;
    } else {
      if (now <= latest_old + ca_.clock_skew_margin().count()) return absl::OkStatus();
      next.phase = kNone;
      PHX_LOG(kInfo, "phoenix-cp: CA rotation: every certificate under root ", next.old_root_serial,
              " has expired; it leaves the trust bundle");
    }
  } else {
    return absl::OkStatus();
  }
  return PutRotation(next);
}

absl::Status CaRotationCoordinator::Tick(const std::vector<ConnectedProxy>& proxies, time_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ == 0) started_ = now;
  ++tick_;
  auto records = Read();
  if (!records.ok()) return records.status();
  absl::Status followed = Follow(*records);
  SignIntermediates(*records);
  bool in_progress = InProgress(rotation_);
  if (in_progress && rotation_->driver == options_.replica) ReadAuditIfDue(now);
  if (!in_progress) progress_ = PhaseProgress();

  // This replica's report: written when it changes, and as a heartbeat.
  MeshCa::RotationStatus local = ca_.rotation();
  Report mine;
  mine.name = options_.replica;
  mine.instance = instance_;
  mine.phase = MeshCa::PhaseName(local.phase);
  if (auto pending = ca_.PendingIntermediate()) {
    mine.csr = pending->csr_pem;
    mine.csr_root = pending->root_serial;
  }
  mine.operator_intermediate = ca_.operator_intermediate();
  mine.error = followed.ok() ? "" : std::string(followed.message());
  if (in_progress) {
    if (ca_.HasIntermediateUnder(rotation_->new_root_serial)) {
      mine.ready_root = rotation_->new_root_serial;
    }
    mine.bundle_version = rotation_->bundle_version;
    mine.latest_old = ca_.LatestIssuedUnder(rotation_->old_root_serial);
    for (const ConnectedProxy& proxy : proxies) {
      bool runs_it = mine.bundle_version > 0 && proxy.acked_version >= mine.bundle_version;
      (runs_it ? mine.acked : mine.waiting).push_back(proxy.node);
    }
    if (rotation_->driver == options_.replica) mine.not_connected = not_connected_;
  }
  std::string content = EncodeFields(mine.Content());
  if (content != last_report_ || now - last_report_at_ >= options_.heartbeat.count()) {
    Fields fields = mine.Content();
    fields["sequence"] = absl::StrCat(++report_sequence_);
    if (absl::Status put = records_.Put(kReplicasPrefix + options_.replica, EncodeFields(fields));
        !put.ok()) {
      return put;
    }
    last_report_ = content;
    last_report_at_ = now;
  }
  // Read and reported: issuing is safe for a while.
  if (followed.ok()) ca_.AllowIssuingUntil(now + options_.fence.count());

  // Who runs the new bundle: connected proxies as their replicas report them, and (as the
  // driver reads the audit trail) holders of a valid certificate connected nowhere.
  std::vector<Report> live = LiveReports(*records, mine, now);
  std::set<std::string> acked, waiting;
  std::vector<std::string> not_connected;
  if (in_progress) {
    for (const Report& report : live) acked.insert(report.acked.begin(), report.acked.end());
    for (const Report& report : live) {
      for (const std::string& node : report.waiting) {
        if (!acked.count(node)) waiting.insert(node);
      }
    }
    if (rotation_->phase == kAddingRoot) {
      if (rotation_->driver == options_.replica) {
        for (const std::string& holder : progress_.holders) {
          if (!acked.count(holder) && !waiting.count(holder)) not_connected.push_back(holder);
        }
        not_connected_ = not_connected;
      } else {
        for (const Report& report : live) {
          if (report.name == rotation_->driver) not_connected = report.not_connected;
        }
      }
    }
  }
  absl::Status moved = absl::OkStatus();
  if (in_progress && followed.ok()) {
    moved = TakeOverIfDriverGone(live, now);
    if (moved.ok() && rotation_->driver == options_.replica) {
      moved = Drive(live, waiting.empty() && not_connected.empty(), now);
    }
  }

  View view;
  view.rotation = rotation_;
  view.acked.assign(acked.begin(), acked.end());
  view.waiting.assign(waiting.begin(), waiting.end());
  for (const std::string& node : not_connected) view.waiting.push_back(node + " (not connected)");
  for (const Report& report : live) {
    view.replicas.push_back(absl::StrCat(
        report.name, rotation_ && rotation_->driver == report.name ? " (driver)" : "", ": ",
        report.phase,
        report.ready_root.empty() ? "" : absl::StrCat(", intermediate under ", report.ready_root),
        report.csr.empty() ? ""
                           : absl::StrCat(", waiting for its intermediate under ", report.csr_root),
        report.error.empty() ? "" : absl::StrCat(", cannot follow: ", report.error), ", seen ",
        report.seen_ago, " s ago"));
  }
  // Where this replica stands now (Drive may have moved the phase): the driver publishes the
  // bundle of a rotation in progress; once it is done, any replica where it is done does (the
  // same text everywhere), so a driver gone after the last step leaves no old root behind.
  MeshCa::RotationStatus after = ca_.rotation();
  view.driving = InProgress(rotation_) && rotation_->driver == options_.replica;
  bool in_step = rotation_ && MeshCa::PhaseName(after.phase) == rotation_->phase &&
                 (after.phase == MeshCa::RotationPhase::kNone
                      ? ca_.IssuingRootSerial() == rotation_->new_root_serial
                      : after.new_root_serial == rotation_->new_root_serial);
  view.publishes_bundle = in_step && (view.driving || rotation_->phase == kNone);
  {
    std::lock_guard<std::mutex> view_lock(view_mu_);
    view_ = std::move(view);
  }
  if (!followed.ok()) return followed;
  return moved;
}

}  // namespace phoenix::control_plane
