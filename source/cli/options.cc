#include "source/cli/options.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace phoenix::cli {

const char kUsage[] =
    "usage: phoenixctl [--server HOST:PORT] [--token-file FILE]\n"
    "                  [--ca FILE [--client-cert FILE --client-key FILE]] COMMAND ...\n"
    "  apply -f FILE|DIR [--node ID]   validate, show the diff, write into phoenix-cp's\n"
    "                                  resource directory (pushed to the proxies)\n"
    "  diff -f FILE|DIR [--node ID]    what apply would change\n"
    "  validate -f FILE|DIR [--node ID]  check files without applying them\n"
    "  get listeners|routes|clusters|secrets [NAME] [--node ID] [-o yaml|json]\n"
    "  status [-o json]                each connected proxy: node, since, versions ACKed,\n"
    "                                  last NACK\n"
    "  audit [--since DURATION|RFC3339] [-o json]   the change history\n"
    "  delete PATH...|-f FILE|DIR [--node ID]   remove resource files (PATH as in the\n"
    "                                  directory: routes.yaml, nodes/ID/x.yaml; -f: the paths\n"
    "                                  apply -f would write); refused if something left still\n"
    "                                  names what they define\n"
    "  rollback VERSION [-o json]      make the resources what they were at VERSION again\n"
    "                                  (a new version; phoenix-cp keeps the last 50)\n"
    "  certs rotate NAME --cert FILE --key FILE [--node ID]   put a new certificate and key\n"
    "                                  (PEM) into Secret NAME; pushed to the proxies\n"
    "  explain --node ID [METHOD] PATH [--listener NAME] [--host H] [-H 'name: value']...\n"
    "          [--principal ID] [--source IP] [-o json]   what the node's config does with\n"
    "                                  that request: normalization, filters, route\n"
    "  ca status [-o json]             the mesh CA: roots in the trust bundle, the one\n"
    "                                  issuing, a rotation's step and who has ACKed it\n"
    "  ca rotate [--wait]              start a root rotation: the new root joins the bundle;\n"
    "                                  once every proxy ACKed it, issuing moves to it; once\n"
    "                                  the old root's certificates expired, it is dropped\n"
    "                                  (--wait: show each step until the end)\n"
    "  ca rotate --abort               abandon a rotation still adding its root\n"
    "A file goes to every node (or, with --node, to nodes/ID/); a directory is laid out like\n"
    "phoenix-cp's (*.yaml for all, nodes/<id>/*.yaml per node, clusters/<c>/*.yaml and\n"
    "metadata/<key>=<value>/*.yaml for the nodes of a cluster or metadata). Default server\n"
    "127.0.0.1:18000. TLS: --ca FILE verifies phoenix-cp's certificate against that CA\n"
    "(PEM; without it, the system's CAs); --client-cert and --client-key (PEM) are the\n"
    "certificate for a phoenix-cp that asks for one (mutual TLS). Exit codes: 0 done,\n"
    "1 refused or invalid, 2 usage, 3 phoenix-cp not reachable or the call not allowed.\n";

absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args) {
  static const std::set<std::string> kCommands = {"apply",   "diff",   "validate", "get",
                                                  "status",  "audit",  "rollback", "certs",
                                                  "explain", "delete", "ca",       "help"};
  CliOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (i + 1 >= args.size())
        return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      return args[++i];
    };
    std::string* target = nullptr;
    if (arg == "--server" || arg == "-s") {
      target = &options.server;
    } else if (arg == "--token-file") {
      target = &options.token_file;
    } else if (arg == "--ca") {
      target = &options.ca;
    } else if (arg == "--client-cert") {
      target = &options.client_cert;
    } else if (arg == "--client-key") {
      target = &options.client_key;
    } else if (arg == "--node") {
      target = &options.node;
    } else if (arg == "-o" || arg == "--output") {
      target = &options.output;
    } else if (arg == "--since") {
      target = &options.since;
    } else if (arg == "--cert") {
      target = &options.cert;
    } else if (arg == "--key") {
      target = &options.key;
    } else if (arg == "--listener") {
      target = &options.listener;
    } else if (arg == "--host") {
      target = &options.host;
    } else if (arg == "--principal") {
      target = &options.principal;
    } else if (arg == "--source") {
      target = &options.source;
    } else if (arg == "-H" || arg == "--header") {
      auto v = value();
      if (!v.ok()) return v.status();
      size_t colon = v->find(':');
      if (colon == std::string::npos || colon == 0) {
        return absl::InvalidArgumentError(absl::StrCat("-H wants 'name: value', not '", *v, "'"));
      }
      std::string name(absl::StripAsciiWhitespace(v->substr(0, colon)));
      std::string header_value(absl::StripAsciiWhitespace(v->substr(colon + 1)));
      options.headers.emplace_back(std::move(name), std::move(header_value));
      continue;
    } else if (arg == "-f" || arg == "--filename") {
      auto v = value();
      if (!v.ok()) return v.status();
      options.files.push_back(*v);
      continue;
    } else if (arg == "--wait") {
      options.wait = true;
      continue;
    } else if (arg == "--abort") {
      options.abort = true;
      continue;
    } else if (arg == "-h" || arg == "--help") {
      options.command = "help";
      continue;
    } else if (!arg.empty() && arg[0] == '-') {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'"));
    } else if (options.command.empty()) {
      if (!kCommands.contains(arg)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown command '", arg, "'"));
      }
      options.command = arg;
      continue;
    } else {
      options.args.push_back(arg);
      continue;
    }
    auto v = value();
    if (!v.ok()) return v.status();
    *target = *v;
  }
  if (options.command.empty()) return absl::InvalidArgumentError("no command given");
  const std::string& c = options.command;
  if (!options.output.empty() && options.output != "yaml" && options.output != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("-o wants yaml or json, not '", options.output, "'"));
  }
  if ((c == "apply" || c == "diff" || c == "validate") && options.files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(c, " needs -f FILE|DIR"));
  }
  if (c == "delete" && options.files.empty() == options.args.empty()) {
    return absl::InvalidArgumentError("delete wants PATH... or -f FILE|DIR (not both)");
  }
  if (c == "get" && (options.args.empty() || options.args.size() > 2)) {
    return absl::InvalidArgumentError("get wants listeners|routes|clusters|secrets [NAME]");
  }
  if (c == "rollback" && (options.args.size() != 1 ||
                          options.args[0].find_first_not_of("0123456789") != std::string::npos ||
                          options.args[0].size() > 18)) {
    return absl::InvalidArgumentError("rollback wants a VERSION (a number; see phoenixctl audit)");
  }
  if (c == "certs" && (options.args.size() != 2 || options.args[0] != "rotate" ||
                       options.cert.empty() || options.key.empty())) {
    return absl::InvalidArgumentError("certs wants: rotate NAME --cert FILE --key FILE");
  }
  if (c != "certs" && (!options.cert.empty() || !options.key.empty())) {
    return absl::InvalidArgumentError(
        "--cert and --key are for certs rotate (phoenixctl's own certificate: --client-cert "
        "and --client-key)");
  }
  if (c == "explain" && (options.node.empty() || options.args.empty() || options.args.size() > 2)) {
    return absl::InvalidArgumentError("explain wants --node ID [METHOD] PATH");
  }
  if (c != "explain" &&
      (!options.listener.empty() || !options.host.empty() || !options.principal.empty() ||
       !options.source.empty() || !options.headers.empty())) {
    return absl::InvalidArgumentError(
        "--listener, --host, --principal, --source and -H are for explain");
  }
  if (c == "ca" &&
      (options.args.size() != 1 || (options.args[0] != "status" && options.args[0] != "rotate"))) {
    return absl::InvalidArgumentError("ca wants: status | rotate [--wait | --abort]");
  }
  if (options.abort && (options.wait || !(c == "ca" && options.args[0] == "rotate"))) {
    return absl::InvalidArgumentError("--abort is for ca rotate, without --wait");
  }
  if (options.wait && !(c == "ca" && options.args[0] == "rotate")) {
    return absl::InvalidArgumentError("--wait is for ca rotate");
  }
  if (c != "get" && c != "rollback" && c != "certs" && c != "explain" && c != "delete" &&
      c != "ca" && !options.args.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", options.args[0], "'"));
  }
  if (options.client_cert.empty() != options.client_key.empty()) {
    return absl::InvalidArgumentError("--client-cert and --client-key go together");
  }
  if (!options.since.empty() && c != "audit") {
    return absl::InvalidArgumentError("--since is for audit");
  }
  return options;
}

absl::StatusOr<absl::Time> ParseSince(const std::string& text, absl::Time now) {
  absl::Duration duration;
  if (absl::ParseDuration(text, &duration) && duration >= absl::ZeroDuration()) {
    return now - duration;
  }
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &time, &error)) return time;
  return absl::InvalidArgumentError(
      absl::StrCat("--since wants a duration (90s, 15m, 2h) or an RFC 3339 time "
                   "(2026-01-02T15:04:05Z), not '",
                   text, "'"));
}

}  // namespace phoenix::cli
