// phoenix-cp: the control plane binary. Serves the resources of a directory of YAML files (or
// of etcd, shared by several replicas) to proxies over ADS (xDS v3, state of the world) and
// pushes every valid change.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "source/common/logging.h"
#include "source/control_plane/control_plane.h"
#include "source/control_plane/directory_store.h"
#include "source/control_plane/etcd_store.h"

namespace {

constexpr const char* kUsage =
    "usage: phoenix-cp --resources DIR [options]\n"
    "       phoenix-cp --etcd URL[,URL...] [--etcd-prefix P] [--resources DIR] [options]\n"
    "  --resources DIR          the source of truth: every DIR/*.yaml (StaticResources:\n"
    "                           listeners, clusters, route_configurations, secrets) goes to\n"
    "                           every node, DIR/nodes/<node-id>/*.yaml to that node only,\n"
    "                           DIR/clusters/<node cluster>/*.yaml and\n"
    "                           DIR/metadata/<key>=<value>/*.yaml to the nodes that say so\n"
    "                           (more specific wins; no secrets there);\n"
    "                           accepted versions are kept in DIR/.phoenix-cp/history (last\n"
    "                           50, for rollback, across restarts). With --etcd: only seeds\n"
    "                           etcd, when it has no version yet\n"
    "  --etcd URL[,URL...]      HA mode: the resources, versions, history and audit trail\n"
    "                           live in etcd (v3 API, http://HOST:PORT), shared by every\n"
    "                           phoenix-cp started on it; each pushes every change to its own\n"
    "                           proxies. An unreachable etcd is retried for 10 s at startup\n"
    "  --etcd-prefix P          the keys' prefix in etcd (default /phoenix/)\n"
    "  --listen HOST:PORT       where ADS (gRPC) listens (default 127.0.0.1:18000; port 0\n"
    "                           picks a free one, printed when ready)\n"
    "  --audit-log FILE         JSON lines, one per accepted or refused change\n"
    "                           (default DIR/audit.jsonl; with --etcd the audit is in etcd)\n"
    "  --tokens FILE            bearer tokens, '<token> <principal> <role>' per line, role\n"
    "                           admin (phoenixctl) or node:<node-id> (that proxy's ADS\n"
    "                           stream)\n"
    "  --tls-cert FILE          serve TLS with this PEM certificate chain (ADS and the admin\n"
    "  --tls-key FILE           service share the port) and its private key\n"
    "  --client-ca FILE         mutual TLS: every client must show a certificate signed by\n"
    "                           this PEM CA (needs --tls-cert and --principals or --tokens)\n"
    "  --principals FILE        roles of client certificates, '<principal> <role>' per line;\n"
    "                           the principal is the certificate's first URI SAN (a SPIFFE\n"
    "                           ID), else its first DNS SAN, else its subject CN. A call's\n"
    "                           bearer token, when it sends one, goes before its certificate.\n"
    "                           Without --tokens and --principals nothing is authenticated\n"
    "  --ca-dir DIR             mesh identity: the CA that issues sidecars' workload\n"
    "                           certificates (IdentityService on this port): DIR/root.crt\n"
    "                           and root.key (or an intermediate.crt/.key of your own);\n"
    "                           phoenix-cp keeps its intermediate there (0600). Its roots\n"
    "                           go to every node as the Secret trust_bundle\n"
    "                           (mesh-trust-bundle.yaml in the resources)\n"
    "  --ca-generate            make the root in --ca-dir on first start (a demo)\n"
    "  --ca-replica NAME        names this replica's intermediate (intermediate-NAME.crt;\n"
    "                           default: default); with --etcd required, and unique\n"
    "                           among the replicas (they rotate the root together)\n"
    "  --trust-domain NAME      SPIFFE trust domain (default phoenix.local)\n"
    "  --identities FILE        which identities each node may hold, '<node-id>\n"
    "                           spiffe://<trust-domain>/ns/<ns>/sa/<service>' per line\n"
    "                           (first: its default); without it a node may hold only\n"
    "                           spiffe://<trust-domain>/ns/default/sa/<node-id>\n"
    "  --max-validity DURATION  the longest certificate issued (default 24h; 10s..8784h)\n"
    "  -l, --log-level LEVEL    trace|debug|info|warn|error|off (default: info)\n"
    "  --version                print the version\n"
    "  -h, --help               this text\n";

// What is wrong with the combination of TLS and identity flags; null when nothing is.
const char* TlsFlagsError(const phoenix::control_plane::ControlPlaneOptions& options) {
  const auto& tls = options.tls;
  if (tls.cert.empty() != tls.key.empty()) return "--tls-cert and --tls-key go together";
  if (!tls.client_ca.empty() && tls.cert.empty()) {
    return "--client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first";
  }
  if (!options.principals_path.empty() && tls.client_ca.empty()) {
    return "--principals needs --client-ca: certificates are verified against it";
  }
  if (!tls.client_ca.empty() && options.principals_path.empty() && options.tokens_path.empty()) {
    return "--client-ca needs --principals FILE (or --tokens): the role of each principal";
  }
  return nullptr;
}

// Whether HOST:PORT listens on loopback only.
bool IsLoopback(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

// Whether NAME may name a replica's intermediate: it goes into a file name and the CA's
// subject (a CN is at most 64 bytes).
bool IsReplicaName(const std::string& name) {
  return !name.empty() && name.size() <= 32 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

}  // namespace

int main(int argc, char** argv) {
  phoenix::control_plane::ControlPlaneOptions options;
  std::string resources_dir;
  std::string audit_log_path;
  std::string etcd;
  std::string etcd_prefix = "/phoenix/";
  bool ca_replica_given = false;
  phoenix::LogLevel log_level = phoenix::LogLevel::kInfo;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "phoenix-cp: %s needs a value\n%s", name, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--resources") {
      resources_dir = value("--resources");
    } else if (arg == "--etcd") {
      etcd = value("--etcd");
    } else if (arg == "--etcd-prefix") {
      etcd_prefix = value("--etcd-prefix");
    } else if (arg == "--listen") {
      options.listen_address = value("--listen");
      if (options.listen_address.rfind(':') == std::string::npos) {
        std::fprintf(stderr, "phoenix-cp: --listen wants HOST:PORT, got '%s'\n",
                     options.listen_address.c_str());
        return 2;
      }
    } else if (arg == "--tokens") {
      options.tokens_path = value("--tokens");
    } else if (arg == "--principals") {
      options.principals_path = value("--principals");
    } else if (arg == "--tls-cert") {
      options.tls.cert = value("--tls-cert");
    } else if (arg == "--tls-key") {
      options.tls.key = value("--tls-key");
    } else if (arg == "--client-ca") {
      options.tls.client_ca = value("--client-ca");
    } else if (arg == "--ca-dir") {
      options.identity.ca_dir = value("--ca-dir");
    } else if (arg == "--ca-replica") {
      ca_replica_given = true;
      options.identity.replica = value("--ca-replica");
      if (!IsReplicaName(options.identity.replica)) {
        std::fprintf(stderr,
                     "phoenix-cp: --ca-replica wants 1 to 32 letters, digits, '-', '_' or '.', "
                     "got '%s'\n",
                     options.identity.replica.c_str());
        return 2;
      }
    } else if (arg == "--ca-generate") {
      options.identity.ca_generate = true;
    } else if (arg == "--trust-domain") {
      options.identity.trust_domain = value("--trust-domain");
    } else if (arg == "--identities") {
      options.identity.identities_path = value("--identities");
    } else if (arg == "--max-validity") {
      std::string v = value("--max-validity");
      absl::Duration duration;
      if (!absl::ParseDuration(v, &duration) || duration < absl::Seconds(10) ||
          duration > absl::Hours(8784)) {
        std::fprintf(stderr,
                     "phoenix-cp: --max-validity wants a duration from 10s to 8784h "
                     "(e.g. 24h, 90m), got '%s'\n",
                     v.c_str());
        return 2;
      }
      options.identity.max_validity = std::chrono::seconds(absl::ToInt64Seconds(duration));
    } else if (arg == "--audit-log") {
      audit_log_path = value("--audit-log");
    } else if (arg == "-l" || arg == "--log-level") {
      std::string v = value("--log-level");
      if (!phoenix::ParseLogLevel(v, &log_level)) {
        std::fprintf(stderr, "phoenix-cp: unknown log level '%s'\n", v.c_str());
        return 2;
      }
    } else if (arg == "--version") {
      std::printf("phoenix-cp %s\n", PHOENIX_VERSION);
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "phoenix-cp: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (resources_dir.empty() && etcd.empty()) {
    std::fprintf(stderr, "phoenix-cp: --resources DIR or --etcd URL is required\n%s", kUsage);
    return 2;
  }
  if (const char* wrong = TlsFlagsError(options)) {
    std::fprintf(stderr, "phoenix-cp: %s\n", wrong);
    return 2;
  }
  if (options.identity.ca_dir.empty() &&
      (options.identity.ca_generate || !options.identity.identities_path.empty())) {
    std::fprintf(stderr, "phoenix-cp: --ca-generate and --identities need --ca-dir DIR\n");
    return 2;
  }
  if (!options.identity.ca_dir.empty() && options.tokens_path.empty() &&
      options.principals_path.empty() && !IsLoopback(options.listen_address)) {
    std::fprintf(stderr,
                 "phoenix-cp: --ca-dir without --tokens or --principals would sign any "
                 "identity for anyone who can reach %s: authenticate the nodes, or listen on "
                 "loopback only\n",
                 options.listen_address.c_str());
    return 2;
  }
  if (!etcd.empty() && !options.identity.ca_dir.empty() && !ca_replica_given) {
    std::fprintf(stderr,
                 "phoenix-cp: --etcd with --ca-dir needs --ca-replica NAME, unique among the "
                 "replicas: they share the CA's rotation under those names\n");
    return 2;
  }
  if (!etcd.empty() && !audit_log_path.empty()) {
    std::fprintf(stderr,
                 "phoenix-cp: with --etcd the audit trail is kept in etcd: drop "
                 "--audit-log\n");
    return 2;
  }
  std::unique_ptr<phoenix::control_plane::ResourceStore> store;
  if (etcd.empty()) {
    if (audit_log_path.empty()) audit_log_path = resources_dir + "/audit.jsonl";
    store = std::make_unique<phoenix::control_plane::DirectoryStore>(
        resources_dir, audit_log_path, std::chrono::milliseconds(100));
  } else {
    auto client = phoenix::control_plane::EtcdClient::Create(
        phoenix::control_plane::SplitEndpoints(etcd), std::chrono::milliseconds(2000));
    if (!client.ok()) {
      std::fprintf(stderr, "phoenix-cp: %s\n", std::string(client.status().message()).c_str());
      return 2;
    }
    if (etcd_prefix.empty()) etcd_prefix = "/phoenix/";
    store = std::make_unique<phoenix::control_plane::EtcdStore>(*std::move(client), etcd_prefix);
    options.seed_dir = resources_dir;
  }
  phoenix::SetLogLevel(log_level);

  // SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  phoenix::control_plane::ControlPlane control_plane(options, std::move(store));
  if (auto status = control_plane.Start(); !status.ok()) {
    std::fprintf(stderr, "phoenix-cp: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  if (!options.tls.client_ca.empty()) {
    PHX_LOG(kInfo, "phoenix-cp: mutual TLS: clients need a certificate signed by ",
            options.tls.client_ca);
  } else if (!options.tls.cert.empty()) {
    PHX_LOG(kInfo, "phoenix-cp: TLS with ", options.tls.cert);
  }
  auto or_none = [](const std::string& path) { return path.empty() ? "none" : path; };
  if (control_plane.authenticating()) {
    PHX_LOG(kInfo, "phoenix-cp: tokens: ", or_none(options.tokens_path),
            ", principals: ", or_none(options.principals_path),
            ": admin calls need role admin, ADS streams their node's role");
  } else {
    PHX_LOG(kWarn,
            "phoenix-cp: no --tokens or --principals: admin calls and ADS streams are not "
            "authenticated (node ids are self-declared); fine on a local machine only");
  }
  std::string host = options.listen_address.substr(0, options.listen_address.rfind(':'));
  PHX_LOG(kInfo, "phoenix-cp: resources from ", control_plane.store().description());
  std::fprintf(stderr, "phoenix-cp: serving ADS on %s:%d, version %llu\n", host.c_str(),
               control_plane.port(), static_cast<unsigned long long>(control_plane.version()));
  std::fflush(stderr);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  PHX_LOG(kInfo, "phoenix-cp: signal ", signal_number, ": stopping");
  control_plane.Stop();
  return 0;
}
