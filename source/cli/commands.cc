#include "source/cli/commands.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "source/cli/file_collector.h"

namespace phoenix::cli {
namespace {

namespace admin = service::admin::v1;

std::string Json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

// `text` as a JSON string literal.
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

int Failed(const AdminClient& client, const grpc::Status& status, std::ostream& err) {
  err << "phoenixctl: " << client.Explain(status) << "\n";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return kExitUnreachable;
    default:
      return kExitRefused;
  }
}

void PrintDiffs(const google::protobuf::RepeatedPtrField<admin::ResourceDiff>& diffs,
                std::ostream& out) {
  for (const auto& diff : diffs) {
    out << "# " << diff.action() << " " << diff.type() << " " << diff.name()
        << (diff.node().empty() ? "" : absl::StrCat(" (node ", diff.node(), ")")) << "\n"
        << diff.diff();
  }
}

// The exit code of a validate or diff: refused when the files had errors, which go to `err`
// (with -o json they are in the output already).
int ReportInvalid(const CliOptions& options,
                  const google::protobuf::RepeatedPtrField<std::string>& errors,
                  std::ostream& err) {
  if (errors.empty()) return kExitOk;
  if (options.output != "json") {
    err << "phoenixctl: invalid:\n" << absl::StrJoin(errors, "\n") << "\n";
  }
  return kExitRefused;
}

template <typename Request>
bool AddFiles(const CliOptions& options, Request& request, std::ostream& err) {
  auto files = CollectFiles(options.files, options.node);
  if (!files.ok()) {
    err << "phoenixctl: " << files.status().message() << "\n";
    return false;
  }
  for (auto& file : *files) *request.add_files() = std::move(file);
  return true;
}

int Validate(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::ValidateRequest request;
  if (!AddFiles(options, request, err)) return kExitRefused;
  admin::ValidateResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Validate(context.get(), request, &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
  } else if (response.errors().empty()) {
    out << "valid: " << request.files_size() << " file(s)\n";
  }
  return ReportInvalid(options, response.errors(), err);
}

int Diff(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::DiffRequest request;
  if (!AddFiles(options, request, err)) return kExitRefused;
  admin::DiffResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Diff(context.get(), request, &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
  } else if (response.errors().empty()) {
    if (response.diffs().empty()) out << "no changes (version " << response.version() << ")\n";
    PrintDiffs(response.diffs(), out);
  }
  return ReportInvalid(options, response.errors(), err);
}

// What Apply, Delete and Rollback print: the diffs and the version.
int ReportApplied(const CliOptions& options, const grpc::Status& status,
                  const admin::ApplyResponse& response, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      err << "phoenixctl: " << options.command << " refused, nothing was written:\n"
          << status.error_message() << "\n";
      return kExitRefused;
    }
    return Failed(client, status, err);
  }
  if (options.output == "json") {
    out << Json(response) << "\n";
  } else if (!response.changed()) {
    out << "no changes (version " << response.version() << ")\n";
  } else {
    PrintDiffs(response.diffs(), out);
    out << "applied: version " << response.version() << "\n";
  }
  return kExitOk;
}

int Apply(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::ApplyRequest request;
  if (!AddFiles(options, request, err)) return kExitRefused;
  admin::ApplyResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Apply(context.get(), request, &response);
  return ReportApplied(options, status, response, client, out, err);
}

int Rollback(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::RollbackRequest request;
  request.set_version(std::stoull(options.args[0]));
  admin::ApplyResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Rollback(context.get(), request, &response);
  return ReportApplied(options, status, response, client, out, err);
}

int Delete(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::DeleteRequest request;
  for (const std::string& path : options.args) {
    // A bare name with --node is that node's file.
    bool bare = path.find('/') == std::string::npos;
    request.add_paths(bare && !options.node.empty() ? "nodes/" + options.node + "/" + path : path);
  }
  if (!options.files.empty()) {
    auto files = CollectFiles(options.files, options.node);
    if (!files.ok()) {
      err << "phoenixctl: " << files.status().message() << "\n";
      return kExitRefused;
    }
    for (const auto& file : *files) request.add_paths(file.path());
  }
  admin::ApplyResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Delete(context.get(), request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    err << "phoenixctl: delete refused, nothing was removed: " << status.error_message() << "\n";
    return kExitRefused;
  }
  return ReportApplied(options, status, response, client, out, err);
}

int RotateCertificate(const CliOptions& options, AdminClient& client, std::ostream& out,
                      std::ostream& err) {
  admin::RotateCertificateRequest request;
  request.set_name(options.args[1]);
  request.set_node(options.node);
  for (auto [path, field] : {std::pair{&options.cert, request.mutable_certificate_chain()},
                             std::pair{&options.key, request.mutable_private_key()}}) {
    std::ifstream in(*path);
    if (!in) {
      err << "phoenixctl: " << *path << ": cannot read it\n";
      return kExitRefused;
    }
    std::stringstream text;
    text << in.rdbuf();
    *field = text.str();
  }
  admin::ApplyResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().RotateCertificate(context.get(), request, &response);
  return ReportApplied(options, status, response, client, out, err);
}

int Get(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::GetRequest request;
  request.set_type(options.args[0]);
  if (options.args.size() > 1) request.set_name(options.args[1]);
  request.set_node(options.node);
  request.set_format(options.output == "json" ? admin::GetRequest::JSON : admin::GetRequest::YAML);
  admin::GetResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Get(context.get(), request, &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    // The resources themselves, so `jq '.[].resource.name'` works.
    out << "[";
    for (int i = 0; i < response.resources_size(); ++i) {
      const auto& r = response.resources(i);
      out << (i ? ",\n " : "\n ") << "{\"type\": " << Quote(r.type())
          << ", \"name\": " << Quote(r.name()) << ", \"node\": " << Quote(r.node())
          << ", \"file\": " << Quote(r.file()) << ", \"resource\": " << r.text() << "}";
    }
    out << "\n]\n";
    return kExitOk;
  }
  for (int i = 0; i < response.resources_size(); ++i) {
    const auto& r = response.resources(i);
    if (i) out << "---\n";
    out << "# " << r.type() << " " << r.name() << " from " << r.file()
        << (r.node().empty() ? "" : absl::StrCat(" (node ", r.node(), " only)")) << "\n"
        << r.text();
  }
  return kExitOk;
}

std::string Since(const google::protobuf::Timestamp& timestamp, absl::Time now) {
  absl::Time time =
      absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone()), " (",
                      absl::FormatDuration(absl::Trunc(now - time, absl::Seconds(1))), " ago)");
}

int Status(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::StatusResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Status(context.get(), admin::StatusRequest(), &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
    return kExitOk;
  }
  out << "phoenix-cp at " << client.server() << ": version " << response.version() << ", "
      << response.proxies_size() << " prox" << (response.proxies_size() == 1 ? "y" : "ies")
      << " connected\n";
  absl::Time now = absl::Now();
  for (const auto& proxy : response.proxies()) {
    out << "node " << proxy.node_id() << "  " << proxy.peer()
        << (proxy.principal().empty() ? "" : absl::StrCat("  as ", proxy.principal()))
        << "  connected " << Since(proxy.connected_since(), now) << "\n";
    for (const auto& type : proxy.types()) {
      out << "  " << type.type() << ": ACKed "
          << (type.acked_version().empty() ? "-" : type.acked_version());
      if (!type.pending_version().empty()) out << ", sent " << type.pending_version();
      if (!type.last_nack_version().empty()) {
        out << ", last NACK of " << type.last_nack_version() << ": " << type.last_nack_error();
      }
      out << "\n";
    }
  }
  return kExitOk;
}

int Audit(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::AuditRequest request;
  if (!options.since.empty()) {
    auto since = ParseSince(options.since, absl::Now());
    if (!since.ok()) {
      err << "phoenixctl: " << since.status().message() << "\n";
      return kExitUsage;
    }
    *request.mutable_since() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*since));
  }
  admin::AuditResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Audit(context.get(), request, &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
    return kExitOk;
  }
  for (const auto& entry : response.entries()) {
    out << entry.time() << "  " << entry.who() << "  ";
    if (entry.has_issued()) {
      out << "issued " << entry.issued().identity() << " to node " << entry.node() << ", serial "
          << entry.issued().serial() << ", until " << entry.issued().not_after() << "\n";
      continue;
    }
    if (!entry.node().empty() && !entry.refused().empty()) {
      out << "refused a certificate" << (entry.identity().empty() ? "" : " for ")
          << entry.identity() << " to node " << entry.node() << ": " << entry.refused() << "\n";
      continue;
    }
    if (!entry.refused().empty()) {
      std::string first = entry.refused().substr(0, entry.refused().find('\n'));
      out << "refused: " << first << "\n";
      continue;
    }
    std::vector<std::string> changes;
    for (const auto& change : entry.changes()) {
      changes.push_back(
          absl::StrCat(change.action(), " ", change.type(), "/", change.name(),
                       change.node().empty() ? "" : absl::StrCat(" @", change.node())));
    }
    out << "version " << entry.version() << ": " << absl::StrJoin(changes, ", ") << "\n";
  }
  return kExitOk;
}

int Explain(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::ExplainRequest request;
  request.set_node(options.node);
  request.set_listener(options.listener);
  auto* walked = request.mutable_request();
  walked->set_method(options.args.size() == 2 ? absl::AsciiStrToUpper(options.args[0]) : "GET");
  walked->set_path(options.args.back());
  walked->set_host(options.host);
  walked->set_principal(options.principal);
  walked->set_source_address(options.source);
  for (const auto& [name, value] : options.headers) (*walked->mutable_headers())[name] = value;
  admin::ExplainResponse response;
  auto context = client.NewContext();
  grpc::Status status = client.stub().Explain(context.get(), request, &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
    return kExitOk;
  }
  out << "node " << options.node << ", listener " << response.listener() << " (version "
      << response.version() << ")\n";
  for (const auto& line : response.lines()) out << "  " << line << "\n";
  out << "outcome: " << response.outcome() << "\n";
  return kExitOk;
}

void PrintCa(const admin::CaStatusResponse& ca, absl::Time now, std::ostream& out) {
  out << "trust domain " << ca.trust_domain() << "\n"
      << "bundle roots: " << absl::StrJoin(ca.bundle_root_serials(), ", ") << " (version "
      << ca.bundle_version() << ")\n"
      << "issuing under root " << ca.issuing_root_serial() << "\n";
  if (!ca.replicas().empty()) {
    out << "replicas:\n";
    for (const auto& replica : ca.replicas()) out << "  " << replica << "\n";
  }
  if (ca.phase() == "none") {
    out << "rotation: none in progress\n";
    return;
  }
  out << "rotation: " << ca.phase() << "\n";
  if (ca.phase() == "adding_root") {
    out << "  step 1 of 3: the new root is in the bundle; proxies ACKed: "
        << ca.proxies_acked_size() << ", waiting for: "
        << (ca.proxies_waiting().empty() ? "none" : absl::StrJoin(ca.proxies_waiting(), ", "))
        << "\n";
  } else {
    absl::Time expire = absl::FromUnixSeconds(ca.old_certificates_expire().seconds());
    out << "  step 2 of 3: issuing under the new root; the old root leaves the bundle when its "
           "last certificate expires, "
        << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expire, absl::UTCTimeZone()) << " (in "
        << absl::FormatDuration(
               absl::Trunc(std::max(expire - now, absl::ZeroDuration()), absl::Seconds(1)))
        << ")\n";
  }
}

admin::CaRotateRequest RotateRequest(bool abort) {
  admin::CaRotateRequest request;
  request.set_abort(abort);
  return request;
}

int Ca(const CliOptions& options, AdminClient& client, std::ostream& out, std::ostream& err) {
  admin::CaStatusResponse response;
  auto context = client.NewContext();
  grpc::Status status =
      options.args[0] == "rotate"
          ? client.stub().CaRotate(context.get(), RotateRequest(options.abort), &response)
          : client.stub().CaStatus(context.get(), admin::CaStatusRequest(), &response);
  if (!status.ok()) return Failed(client, status, err);
  if (options.output == "json") {
    out << Json(response) << "\n";
    return kExitOk;
  }
  if (options.args[0] == "rotate")
    out << (options.abort ? "rotation abandoned\n" : "rotation started\n");
  PrintCa(response, absl::Now(), out);
  if (!options.wait) return kExitOk;
  // Follows the rotation: a line per change of step or of who is waited for.
  std::string shown = response.phase() + absl::StrJoin(response.proxies_waiting(), ",");
  while (response.phase() != "none") {
    absl::SleepFor(absl::Seconds(1));
    auto poll = client.NewContext();
    status = client.stub().CaStatus(poll.get(), admin::CaStatusRequest(), &response);
    if (!status.ok()) return Failed(client, status, err);
    std::string now_shown = response.phase() + absl::StrJoin(response.proxies_waiting(), ",");
    if (now_shown == shown) continue;
    shown = now_shown;
    out << absl::FormatTime("%H:%M:%S ", absl::Now(), absl::UTCTimeZone());
    if (response.phase() == "none") {
      out << "step 3 of 3: the old root left the bundle; rotation done\n";
      PrintCa(response, absl::Now(), out);
    } else {
      PrintCa(response, absl::Now(), out);
    }
    out.flush();
  }
  return kExitOk;
}

}  // namespace

int RunCommand(const CliOptions& options, AdminClient& client, std::ostream& out,
               std::ostream& err) {
  const std::string& c = options.command;
  if (c == "validate") return Validate(options, client, out, err);
  if (c == "diff") return Diff(options, client, out, err);
  if (c == "apply") return Apply(options, client, out, err);
  if (c == "rollback") return Rollback(options, client, out, err);
  if (c == "delete") return Delete(options, client, out, err);
  if (c == "certs") return RotateCertificate(options, client, out, err);
  if (c == "get") return Get(options, client, out, err);
  if (c == "status") return Status(options, client, out, err);
  if (c == "audit") return Audit(options, client, out, err);
  if (c == "explain") return Explain(options, client, out, err);
  if (c == "ca") return Ca(options, client, out, err);
  err << "phoenixctl: unknown command '" << c << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace phoenix::cli
