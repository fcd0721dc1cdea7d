'use strict';
// The load side of tools/bench/identity.sh (benchmark, not a test). Two modes:
//
//   node identity_client.js sign --target HOST:PORT --cp-pid PID --nodes-dir DIR --nodes N
//                                [--requests R] [--concurrency C]
//     phoenix-cp's IdentityService/CreateCertificate under load: C requests in flight (each
//     worker on its own grpc-js channel, so its own TCP connection), R requests per phase,
//     nodes bench-0 .. bench-N-1 taken in turn. DIR/bench-I.csr is node I's CSR (its default
//     identity), DIR/bench-I.proof the DER ECDSA-SHA256 signature of that file's bytes by its
//     key, and its bearer token is bench-token-I (identity.sh writes all of them).
//       warm-up: one first issuance per node (not measured); keeps each node's chain;
//       issue:   R first issuances (bearer token);
//       renew:   R renewals (presented chain + proof, no token), each node presenting the
//                chain it got last, as a sidecar does.
//     phoenix-cp's CPU time (utime + stime of /proc/PID/stat, all threads) and VmRSS are read
//     around each phase. Every answer must be OK with a serial, else exit 1.
//
//   node identity_client.js start --phoenix BIN --work DIR --target HOST:PORT --starts K
//                                 [--pin CPU]
//     K times: write a bootstrap for node start-k (token start-token-k) with
//     workload_identity: {} and ADS at TARGET, spawn phoenix, poll its admin /certs every 5 ms
//     until workload_identity.serial is there (spawn -> serial), then stop it (SIGTERM) and
//     read its log: the timestamps of "workload identity: asking" and "... valid until".
//     The pid of the phoenix running is kept in DIR/sidecar.pid (identity.sh's cleanup).
//
// Prints the figures on stdout, then one line `RESULT {json}` for identity.sh's table.

const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const { performance } = require('node:perf_hooks');

const REPO = path.resolve(__dirname, '..', '..');
const NODE_MODULES = path.join(REPO, 'test', 'integration', 'grpc', 'node_modules');
const CLK_TCK = 100; // USER_HZ: /proc's tick on Linux.

function die(msg) {
  process.stderr.write(`identity_client.js: ${msg}\n`);
  process.exit(1);
}

function cpUsage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number((status.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14) + stime (15)
  return { rssKib: kib('VmRSS'), hwmKib: kib('VmHWM'), cpuMs: (ticks * 1000) / CLK_TCK };
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

// ---- sign ----

async function sign(opts) {
  const grpc = require(path.join(NODE_MODULES, '@grpc', 'grpc-js'));
  const protoLoader = require(path.join(NODE_MODULES, '@grpc', 'proto-loader'));
  const definition = protoLoader.loadSync('phoenix/service/identity/v1/identity.proto', {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [path.join(REPO, 'api'), '/usr/include'],
  });
  const Identity = grpc.loadPackageDefinition(definition).phoenix.service.identity.v1.IdentityService;
  // One channel per worker, each its own connection (grpc-js shares one otherwise).
  const channels = [];
  for (let i = 0; i < opts.concurrency; i++) {
    channels.push(new Identity(opts.target, grpc.credentials.createInsecure(),
      { 'grpc.use_local_subchannel_pool': 1 }));
  }
  const nodes = [];
  for (let i = 0; i < opts.nodes; i++) {
    const base = path.join(opts.nodesDir, `bench-${i}`);
    nodes.push({
      id: `bench-${i}`,
      token: `bench-token-${i}`,
      csr: fs.readFileSync(`${base}.csr`, 'utf8'),
      proof: fs.readFileSync(`${base}.proof`),
      chain: null,
    });
  }

  const call = (channel, request, token) => new Promise((resolve, reject) => {
    const md = new grpc.Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    channel.CreateCertificate(request, md, { deadline: Date.now() + 30000 }, (err, response) => {
      if (err) reject(err); else resolve(response);
    });
  });
  // R requests (node i % N for request i), C at a time; returns the per-request latencies.
  async function phase(count, renew) {
    let next = 0;
    const latencies = [];
    const worker = async (channel) => {
      while (next < count) {
        const node = nodes[next++ % nodes.length];
        const request = renew
          ? { csr: node.csr, presented_certificate_chain: node.chain, proof: node.proof }
          : { csr: node.csr, node_id: node.id };
        const t0 = performance.now();
        let response;
        try {
          response = await call(channel, request, renew ? null : node.token);
        } catch (err) {
          die(`${renew ? 'renewal' : 'issuance'} for ${node.id} failed: ${err.code} ${err.details}`);
        }
        latencies.push(performance.now() - t0);
        if (!response.serial || !response.certificate_chain) die(`no certificate for ${node.id}`);
        node.chain = response.certificate_chain;
      }
    };
    await Promise.all(channels.map(worker));
    return latencies.sort((a, b) => a - b);
  }

  // Warm-up: connections up, each node a certificate to renew later; not measured.
  await phase(nodes.length, false);
  const result = { nodes: opts.nodes, requests: opts.requests, concurrency: opts.concurrency };
  const u0 = cpUsage(opts.cpPid);
  result.rss_start_kib = u0.rssKib;
  for (const kind of ['issue', 'renew']) {
    const before = cpUsage(opts.cpPid);
    const mine0 = process.cpuUsage();
    const t0 = performance.now();
    const lat = await phase(opts.requests, kind === 'renew');
    const secs = (performance.now() - t0) / 1000;
    const after = cpUsage(opts.cpPid);
    const mine = process.cpuUsage(mine0);
    const r = {
      per_sec: opts.requests / secs,
      cpu_us: ((after.cpuMs - before.cpuMs) * 1000) / opts.requests,
      p50_ms: percentile(lat, 0.5),
      p99_ms: percentile(lat, 0.99),
      rss_kib: after.rssKib,
      // Busy shares of the phase's wall time: which side limits the rate.
      cp_busy: (after.cpuMs - before.cpuMs) / 1000 / secs,
      client_busy: (mine.user + mine.system) / 1e6 / secs,
    };
    result[kind] = r;
    console.log(`${kind}: ${opts.requests} in ${fmt(secs, 2)} s = ${fmt(r.per_sec, 0)}/s; ` +
      `phoenix-cp CPU ${fmt(r.cpu_us, 0)} us each; latency p50 ${fmt(r.p50_ms, 2)} ms, ` +
      `p99 ${fmt(r.p99_ms, 2)} ms; RSS ${fmt(after.rssKib / 1024, 1)} MiB; ` +
      `CPU busy: phoenix-cp ${fmt(100 * r.cp_busy, 0)}%, this client ${fmt(100 * r.client_busy, 0)}%`);
  }
  result.hwm_kib = cpUsage(opts.cpPid).hwmKib;
  for (const c of channels) c.close();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

// ---- start ----

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function getCerts(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/certs', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (e) { resolve(null); }
      });
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => { req.destroy(); resolve(null); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The log's own clock: "2026-12-07T09:08:02.616Z [info] ..." -> ms since the epoch.
function logTime(log, needle) {
  const line = log.split('\n').find((l) => l.includes(needle));
  return line ? Date.parse(line.slice(0, line.indexOf(' '))) : NaN;
}

async function start(opts) {
  let child = null;
  const stop = () => { if (child && child.exitCode === null) child.kill('SIGKILL'); };
  process.on('SIGTERM', () => { stop(); process.exit(1); });
  process.on('exit', stop);
  const spawnMs = [];
  const logMs = [];
  const askMs = [];
  for (let k = 0; k < opts.starts; k++) {
    const admin = await freePort();
    const boot = path.join(opts.work, `start-${k}.yaml`);
    const logFile = path.join(opts.work, `start-${k}.log`);
    fs.writeFileSync(boot, `node: { id: start-${k}, cluster: bench }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${admin} } } }
workload_identity: {}
dynamic_resources:
  lds_config: { ads: {} }
  cds_config: { ads: {} }
  ads_config:
    api_type: GRPC
    grpc_services:
    - google_grpc: { target_uri: "${opts.target}" }
      initial_metadata: [ { key: authorization, value: "Bearer start-token-${k}" } ]
    reconnect_base_interval: 0.05s
    reconnect_max_interval: 0.2s
`);
    const out = fs.openSync(logFile, 'w');
    const argv = [opts.phoenix, '-c', boot, '--concurrency', '1', '--log-level', 'info'];
    const t0 = performance.now();
    const spawnedAt = Date.now(); // the log's clock, for spawn -> "asking"
    child = opts.pin !== undefined
      ? spawn('taskset', ['-c', opts.pin, ...argv], { stdio: ['ignore', out, out] })
      : spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    fs.writeFileSync(path.join(opts.work, 'sidecar.pid'), `${child.pid}\n`);
    let elapsed = NaN;
    while (performance.now() - t0 < 10000 && child.exitCode === null) {
      const certs = await getCerts(admin);
      if (certs && certs.workload_identity && certs.workload_identity.serial) {
        elapsed = performance.now() - t0;
        break;
      }
      await sleep(5);
    }
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    stop();
    const log = fs.readFileSync(logFile, 'utf8');
    if (!Number.isFinite(elapsed)) {
      process.stderr.write(log.split('\n').slice(-10).join('\n'));
      die(`start ${k}: no workload certificate within 10 s`);
    }
    const asked = logTime(log, 'workload identity: asking');
    const valid = logTime(log, ' valid until ');
    spawnMs.push(elapsed);
    logMs.push(valid - asked);
    askMs.push(asked - spawnedAt);
    console.log(`start ${k}: spawn -> /certs serial ${fmt(elapsed, 1)} ms; ` +
      `spawn -> log asking ${fmt(asked - spawnedAt, 0)} ms; ` +
      `log asking -> valid until ${fmt(valid - asked, 0)} ms`);
  }
  const s = [...spawnMs].sort((a, b) => a - b);
  const l = [...logMs].sort((a, b) => a - b);
  const a = [...askMs].sort((x, y) => x - y);
  const result = {
    starts: opts.starts,
    spawn_p50_ms: percentile(s, 0.5), spawn_max_ms: s[s.length - 1],
    log_p50_ms: percentile(l, 0.5), log_max_ms: l[l.length - 1],
    ask_p50_ms: percentile(a, 0.5), ask_max_ms: a[a.length - 1],
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function main() {
  const mode = process.argv[2];
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      target: { type: 'string' },
      'cp-pid': { type: 'string' },
      'nodes-dir': { type: 'string' },
      nodes: { type: 'string', default: '100' },
      requests: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '8' },
      phoenix: { type: 'string' },
      work: { type: 'string' },
      starts: { type: 'string', default: '10' },
      pin: { type: 'string' },
    },
    strict: true,
  });
  if (!values.target) die('--target is required');
  if (mode === 'sign') {
    if (!values['cp-pid'] || !values['nodes-dir']) die('sign needs --cp-pid and --nodes-dir');
    await sign({
      target: values.target, cpPid: Number(values['cp-pid']), nodesDir: values['nodes-dir'],
      nodes: Number(values.nodes), requests: Number(values.requests),
      concurrency: Math.max(1, Number(values.concurrency)),
    });
  } else if (mode === 'start') {
    if (!values.phoenix || !values.work) die('start needs --phoenix and --work');
    await start({
      target: values.target, phoenix: values.phoenix, work: values.work,
      starts: Number(values.starts), pin: values.pin,
    });
  } else {
    die('usage: identity_client.js sign|start [options] (see the header)');
  }
}

main().catch((err) => die(err.stack || String(err)));
