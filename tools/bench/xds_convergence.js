'use strict';
// The load side of tools/bench/xds_convergence.sh (benchmark, not a test): ONE node process
// holding N ADS streams (grpc-js) to phoenix-cp, each a simulated proxy with its own node id
// (sidecar-0 .. sidecar-N-1) subscribed to every type (Secret, Cluster, ClusterLoadAssignment,
// RouteConfiguration, Listener, wildcard) and ACKing every response at once, as a proxy does.
// It is not N proxy processes: the streams share this process's event loop (and, with
// --streams-per-connection > 1, HTTP/2 connections).
//
//   node xds_convergence.js --target HOST:PORT --cp-pid PID --phoenixctl PATH --work DIR
//                           [--cp-log FILE] [--streams N] [--changes K]
//                           [--streams-per-connection S] [--timeout SECS]
//   node xds_convergence.js --print-routes K     the route file of change K (0: the initial)
//
// Connections: streams are spread over ceil(N / S) grpc-js channels, each with
// 'grpc.use_local_subchannel_pool' so that each channel has its own subchannel, i.e. its own
// TCP + HTTP/2 connection (grpc-js otherwise shares one connection between channels to the
// same target). S = 1 (the default) is one connection per stream, as N real proxies would have.
//
// Phases, with phoenix-cp's VmRSS (/proc/PID/status) and CPU time (utime + stime of
// /proc/PID/stat, every thread) read between them:
//   1. connect: open the N streams, wait until each has ACKed its first response of all 5 types;
//   2. K changes, one after another: write routes.yaml of change k into DIR, then, the clock
//      started just before, run `phoenixctl --server TARGET apply -f DIR/routes.yaml -o json`
//      (the user path: phoenix-cp validates, writes the file and pushes); per stream, the
//      convergence time is from that start to the moment this stream writes its ACK of the
//      RouteConfiguration version apply reported. The next change starts once all N streams
//      have ACKed it. With --cp-log (phoenix-cp's stderr at log level info), the time phoenix-cp
//      logged the new version (just before it pushes) is shown too.
//   3. `phoenixctl status -o json` must show every node running the last version (the ACKs
//      reached phoenix-cp), asked again until it does (10 s at most).
// Prints the figures on stdout, then one line `RESULT {json}` that xds_convergence.sh turns
// into its summary table. Exit 1 if a stream failed, a change did not converge within
// --timeout seconds (default 120) or phoenix-cp's status disagrees.

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const { performance } = require('node:perf_hooks');

const REPO = path.resolve(__dirname, '..', '..');
const NODE_MODULES = path.join(REPO, 'test', 'integration', 'grpc', 'node_modules');
const grpc = require(path.join(NODE_MODULES, '@grpc', 'grpc-js'));
const protoLoader = require(path.join(NODE_MODULES, '@grpc', 'proto-loader'));

const TYPE_PREFIX = 'type.googleapis.com/phoenix.config.v1.';
// A proxy's order: what others refer to first.
const TYPES = ['Secret', 'Cluster', 'ClusterLoadAssignment', 'RouteConfiguration', 'Listener'];
const ROUTES = TYPE_PREFIX + 'RouteConfiguration';
const CLK_TCK = 100; // USER_HZ: /proc's tick on Linux.

// The route configuration of change k ("main", referred to by the listener's rds): a few
// routes; each change edits one direct response body and one response header, nothing else.
function routesYaml(k) {
  return `# xds_convergence bench, change ${k}
route_configurations:
- name: main
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - name: healthz
      match: { path: /healthz }
      direct_response: { status: 200, body: { inline_string: ok } }
    - name: version
      match: { path: /version }
      direct_response: { status: 200, body: { inline_string: "change ${k}" } }
    - name: api
      match: { prefix: /api/ }
      route: { cluster: app, prefix_rewrite: /, timeout: 5s }
      response_headers_to_add:
      - header: { key: x-config-change, value: "${k}" }
    - name: static
      match: { prefix: /static/, case_sensitive: false }
      route: { cluster: app, timeout: 2s }
    - name: default
      match: { prefix: / }
      route: { cluster: app }
`;
}

function parse() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'cp-pid': { type: 'string' },
      phoenixctl: { type: 'string' },
      work: { type: 'string' },
      streams: { type: 'string', default: '100' },
      changes: { type: 'string', default: '5' },
      'streams-per-connection': { type: 'string', default: '1' },
      timeout: { type: 'string', default: '120' },
      'print-routes': { type: 'string' },
      'cp-log': { type: 'string' },
    },
    strict: true,
  });
  if (values['print-routes'] !== undefined) {
    process.stdout.write(routesYaml(Number(values['print-routes'])));
    process.exit(0);
  }
  for (const k of ['target', 'cp-pid', 'phoenixctl', 'work']) {
    if (!values[k]) {
      process.stderr.write(`xds_convergence.js: --${k} is required\n`);
      process.exit(2);
    }
  }
  return {
    target: values.target,
    cpPid: Number(values['cp-pid']),
    phoenixctl: values.phoenixctl,
    work: values.work,
    streams: Number(values.streams),
    changes: Number(values.changes),
    perConnection: Math.max(1, Number(values['streams-per-connection'])),
    timeoutMs: Number(values.timeout) * 1000,
    cpLog: values['cp-log'],
  };
}

// phoenix-cp's footprint: RSS (KiB), peak RSS (KiB), CPU time (ms, all threads), sockets.
function cpUsage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number((status.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
  let sockets = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch (e) { /* closed meanwhile */ }
  }
  return {
    rssKib: kib('VmRSS'), hwmKib: kib('VmHWM'), cpuMs: (ticks * 1000) / CLK_TCK,
    threads: kib('Threads'), sockets,
  };
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1], min: sorted[0] };
}

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

// Resolves when check() holds; check is run now and after every ACK (wake()).
let waiter = null;
function wake() { if (waiter && waiter.check()) { const w = waiter; waiter = null; w.resolve(true); } }
function waitFor(check, timeoutMs) {
  return new Promise((resolve) => {
    if (check()) { resolve(true); return; }
    const timer = setTimeout(() => { waiter = null; resolve(false); }, timeoutMs);
    waiter = { check, resolve: (v) => { clearTimeout(timer); resolve(v); } };
  });
}

// When phoenix-cp committed each version: its log line `<RFC 3339 time> [info] phoenix-cp:
// version V: ...` (1 ms resolution, the same wall clock as Date.now()).
function commitTimes(logFile) {
  const times = new Map();
  if (!logFile) return times;
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    const m = line.match(/^(\S+) \[info\] phoenix-cp: version (\d+): /);
    if (m) times.set(m[2], Date.parse(m[1]));
  }
  return times;
}

function runPhoenixctl(opts, ...args) {
  return new Promise((resolve) => {
    const child = spawn(opts.phoenixctl, ['--server', opts.target, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function main() {
  const opts = parse();
  const definition = protoLoader.loadSync('phoenix/service/discovery/v1/ads.proto', {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [path.join(REPO, 'api'), '/usr/include'],
  });
  const Ads = grpc.loadPackageDefinition(definition)
    .phoenix.service.discovery.v1.AggregatedDiscoveryService;

  const N = opts.streams;
  // Baseline: what K applies cost phoenix-cp with no stream connected (phoenixctl's call, the
  // validation, the file write, the directory watcher's re-read): a cost per change, not per
  // stream, taken off the changes' CPU below.
  const base0 = cpUsage(opts.cpPid).cpuMs;
  for (let k = 1; k <= opts.changes; k++) {
    const file = path.join(opts.work, 'routes.yaml');
    fs.writeFileSync(file, routesYaml(-k));
    const r = await runPhoenixctl(opts, 'apply', '-f', file, '-o', 'json');
    if (r.code !== 0) {
      console.log(`baseline: phoenixctl apply failed (exit ${r.code}): ${r.err.trim()}`);
      process.exit(1);
    }
  }
  const baselineMs = (cpUsage(opts.cpPid).cpuMs - base0) / Math.max(1, opts.changes);
  const before = cpUsage(opts.cpPid);
  const clientCpu0 = process.cpuUsage();
  const channels = [];
  for (let i = 0; i < Math.ceil(N / opts.perConnection); i++) {
    channels.push(new Ads(opts.target, grpc.credentials.createInsecure(),
      { 'grpc.use_local_subchannel_pool': 1 }));
  }

  // Per stream: the types it has ACKed at least once, when it ACKed each RouteConfiguration
  // version, and how many responses of each type it got.
  const streams = [];
  let initialDone = 0; // streams that ACKed all 5 types
  const routeAcks = new Map(); // version -> number of streams that ACKed it
  const failures = [];
  let ending = false;
  const tConnect = performance.now();
  for (let i = 0; i < N; i++) {
    const s = { id: `sidecar-${i}`, acked: new Set(), routeAckAt: new Map(), responses: {} };
    s.call = channels[Math.floor(i / opts.perConnection)].StreamAggregatedResources();
    s.call.on('data', (response) => {
      const type = response.type_url.slice(TYPE_PREFIX.length);
      s.responses[type] = (s.responses[type] || 0) + 1;
      s.call.write({ type_url: response.type_url, response_nonce: response.nonce, resource_names: [],
        version_info: response.version_info });
      const now = performance.now();
      if (response.type_url === ROUTES) {
        s.routeAckAt.set(response.version_info, now);
        routeAcks.set(response.version_info, (routeAcks.get(response.version_info) || 0) + 1);
      }
      if (!s.acked.has(type)) {
        s.acked.add(type);
        if (s.acked.size === TYPES.length) initialDone++;
      }
      wake();
    });
    s.call.on('error', () => {}); // 'status' reports it.
    s.call.on('status', (status) => {
      if (!ending) failures.push(`${s.id}: stream ended: code ${status.code} ${status.details}`);
      wake();
    });
    TYPES.forEach((type, index) => {
      const request = { type_url: TYPE_PREFIX + type, resource_names: [] };
      if (index === 0) request.node = { id: s.id, cluster: 'xds-convergence-bench' };
      s.call.write(request);
    });
    streams.push(s);
  }

  const connected = await waitFor(() => initialDone === N || failures.length > 0, opts.timeoutMs);
  const connectMs = performance.now() - tConnect;
  if (!connected || failures.length > 0) {
    console.log(`initial state: only ${initialDone}/${N} streams got all ${TYPES.length} types` +
      ` after ${fmt(connectMs / 1000, 1)} s`);
    failures.slice(0, 10).forEach((f) => console.log(`  ${f}`));
    process.exit(1);
  }
  const afterConnect = cpUsage(opts.cpPid);
  const initialRoute = [...routeAcks.keys()].sort((a, b) => Number(a) - Number(b)).pop();
  const responsesBefore = streams.map((s) => ({ ...s.responses }));

  console.log(`${N} streams (node ids sidecar-0..${N - 1}) in ONE node process, ` +
    `${channels.length} HTTP/2 connection(s) (${opts.perConnection} stream(s) each); ` +
    `phoenix-cp holds ${afterConnect.sockets} sockets, ${afterConnect.threads} threads`);
  console.log(`initial state (5 types each) ACKed by all streams in ${fmt(connectMs, 0)} ms ` +
    `(RouteConfiguration version ${initialRoute})`);

  // The changes.
  const perChange = [];
  const all = [];
  let peakRss = afterConnect.rssKib;
  const changesCpu0 = cpUsage(opts.cpPid).cpuMs;
  const changesClientCpu0 = process.cpuUsage();
  let failed = false;
  for (let k = 1; k <= opts.changes; k++) {
    const file = path.join(opts.work, 'routes.yaml');
    fs.writeFileSync(file, routesYaml(k));
    const wall0 = Date.now();
    const t0 = performance.now();
    const result = await runPhoenixctl(opts, 'apply', '-f', file, '-o', 'json');
    const applyMs = performance.now() - t0;
    let version;
    try {
      version = String(JSON.parse(result.out).version);
    } catch (e) {
      console.log(`change ${k}: phoenixctl apply failed (exit ${result.code}): ${result.err.trim()} ${result.out.trim()}`);
      failed = true;
      break;
    }
    const ok = await waitFor(() => (routeAcks.get(version) || 0) === N || failures.length > 0, opts.timeoutMs);
    const usage = cpUsage(opts.cpPid);
    peakRss = Math.max(peakRss, usage.rssKib);
    if (!ok || failures.length > 0) {
      console.log(`change ${k} (version ${version}): only ${routeAcks.get(version) || 0}/${N} streams ` +
        `ACKed it within ${opts.timeoutMs / 1000} s`);
      failed = true;
      break;
    }
    const latencies = streams.map((s) => s.routeAckAt.get(version) - t0);
    all.push(...latencies);
    const sm = summary(latencies);
    perChange.push({ change: k, version, applyMs, wall0, ...sm });
  }
  const afterChanges = cpUsage(opts.cpPid);
  const clientCpu = process.cpuUsage(clientCpu0);
  const changesClientCpu = process.cpuUsage(changesClientCpu0);
  const commits = commitTimes(opts.cpLog);
  for (const c of perChange) {
    c.commitMs = commits.has(c.version) ? commits.get(c.version) - c.wall0 : NaN;
  }

  // Which types each change pushed: a route change should push RouteConfiguration only.
  const extra = {};
  streams.forEach((s, i) => {
    for (const [type, count] of Object.entries(s.responses)) {
      const more = count - (responsesBefore[i][type] || 0);
      if (more > 0) extra[type] = (extra[type] || 0) + more;
    }
  });

  // phoenix-cp's own view (`phoenixctl status`): every stream's node runs the last version,
  // i.e. the ACKs timed here did reach it. Asked again until so (the last ACKs may be in flight).
  let confirmed = 'not checked';
  if (!failed && perChange.length > 0) {
    const last = perChange[perChange.length - 1].version;
    const deadline = performance.now() + 10000;
    for (;;) {
      const st = await runPhoenixctl(opts, 'status', '-o', 'json');
      let running = 0;
      let nodes = 0;
      try {
        const proxies = JSON.parse(st.out).proxies || [];
        nodes = proxies.length;
        running = proxies.filter((p) => p.types.some((t) => t.type === 'RouteConfiguration' &&
          t.acked_version === last && t.pending_version === '')).length;
      } catch (e) { /* reported below */ }
      confirmed = `${running}/${N} nodes (of ${nodes} connected) run RouteConfiguration version ${last}`;
      if (running === N || performance.now() > deadline) break;
    }
    if (!confirmed.startsWith(`${N}/`)) failed = true;
  }

  ending = true;
  for (const s of streams) s.call.end();
  for (const c of channels) c.close();

  if (failed) {
    console.log(`phoenixctl status: ${confirmed}`);
    failures.slice(0, 10).forEach((f) => console.log(`  ${f}`));
    process.exit(1);
  }

  console.log('');
  console.log('All times in ms from just before `phoenixctl apply` starts. commit: phoenix-cp logs the new');
  console.log('version (its log clock, 1 ms); apply: phoenixctl exited (as this busy process saw it);');
  console.log('first/p50/p99/max: the streams\' ACKs of the new RouteConfiguration version.');
  console.log('change  version  commit    apply    first      p50      p99      max');
  const col = (x) => fmt(x).padStart(7);
  for (const c of perChange) {
    console.log(`${String(c.change).padStart(6)}  ${c.version.padStart(7)}  ${col(c.commitMs)}  ${col(c.applyMs)}` +
      `  ${col(c.min)}  ${col(c.p50)}  ${col(c.p99)}  ${col(c.max)}`);
  }
  const total = summary(all);
  console.log(`   all  ${`${all.length} ACKs`.padStart(41)}  ${col(total.p50)}  ${col(total.p99)}  ${col(total.max)}` +
    `   goal p99 < 1000 ms: ${total.p99 < 1000 ? 'met' : 'NOT met'}`);
  const pushed = Object.entries(extra).map(([t, n]) => `${t} ${n}`).join(', ');
  console.log(`responses during the changes: ${pushed} (expected: RouteConfiguration ${N * opts.changes})`);
  console.log(`phoenixctl status: ${confirmed}`);

  const changeCpuMs = afterChanges.cpuMs - changesCpu0;
  const result = {
    streams: N,
    connections: channels.length,
    changes: perChange.length,
    p50: total.p50, p99: total.p99, max: total.max,
    apply_ms_median: summary(perChange.map((c) => c.applyMs)).p50,
    connect_ms: connectMs,
    rss_before_kib: before.rssKib,
    rss_connected_kib: afterConnect.rssKib,
    rss_after_changes_kib: afterChanges.rssKib,
    rss_peak_changes_kib: peakRss,
    kib_per_stream: (afterConnect.rssKib - before.rssKib) / N,
    cpu_connect_ms: afterConnect.cpuMs - before.cpuMs,
    cpu_connect_ms_per_stream: (afterConnect.cpuMs - before.cpuMs) / N,
    cpu_changes_ms: changeCpuMs,
    cpu_ms_per_stream_per_change: changeCpuMs / (N * perChange.length),
    cpu_ms_per_change_no_streams: baselineMs,
    cpu_ms_per_stream_per_change_net: (changeCpuMs - baselineMs * perChange.length) / (N * perChange.length),
    commit_ms_median: summary(perChange.map((c) => c.commitMs)).p50,
    client_cpu_ms: (clientCpu.user + clientCpu.system) / 1000,
    client_cpu_changes_ms: (changesClientCpu.user + changesClientCpu.system) / 1000,
    unexpected_pushes: Object.entries(extra).filter(([t]) => t !== 'RouteConfiguration'),
  };
  console.log(`phoenix-cp RSS: ${fmt(before.rssKib / 1024)} MiB before the streams, ` +
    `${fmt(afterConnect.rssKib / 1024)} MiB with ${N} connected (+${fmt(result.kib_per_stream)} KiB per stream), ` +
    `${fmt(afterChanges.rssKib / 1024)} MiB after the changes (peak sampled ${fmt(peakRss / 1024)} MiB)`);
  console.log(`phoenix-cp CPU: ${fmt(result.cpu_connect_ms, 0)} ms for the initial state ` +
    `(${fmt(result.cpu_connect_ms_per_stream, 2)} ms per stream); ${fmt(changeCpuMs, 0)} ms for ` +
    `${perChange.length} changes (${fmt(result.cpu_ms_per_stream_per_change, 3)} ms per stream per change; ` +
    `${fmt(result.cpu_ms_per_stream_per_change_net, 3)} net of the ${fmt(baselineMs, 0)} ms a change costs ` +
    `with no stream) [/proc tick: 10 ms]`);
  console.log(`this node process (the ${N} simulated proxies) used ${fmt(result.client_cpu_ms, 0)} ms CPU, ` +
    `${fmt(result.client_cpu_changes_ms, 0)} ms of it during the changes`);
  console.log(`RESULT ${JSON.stringify(result)}`);
  // grpc-js may keep timers for a moment after close(): do not wait for them.
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
