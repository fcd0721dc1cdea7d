'use strict';
// The gRPC origin of the integration tests: grpc-js serving phoenix.test.Echo (echo.proto)
// over plain-text HTTP/2 (h2c) on 127.0.0.1.
//
//   node server.js [--port N] [--host H] [--stats-file PATH]
//
// --port 0 (the default) lets the kernel pick. Once listening it prints one line to stdout,
// {"port": N}, and nothing else there. Every call it finishes is one JSON line on stderr.
//
// --stats-file PATH: rewritten (written aside, then renamed: a reader never sees half a file)
// whenever a call arrives, finishes or is cancelled, before the server answers, so a client
// that has its status reads stats that already count its call:
//   {"pid": P, "port": N, "active": calls in progress,
//    "calls": {"Unary": arrived, ...},
//    "status": {"Unary": {"0": 3, "14": 1}, ...}    (finished calls by the status they got)
//    "cancelled": {"Unary": n, ...}}                (calls the client or the proxy cancelled)
//
// What each method does with the request fields is in echo.proto. On top of that, every
// answer carries the trailer x-echo-attempt (the how-manieth call with this message it is)
// and every successful one the initial metadata x-echo-method. A failure before any reply is
// sent as gRPC's Trailers-Only response (one HEADERS frame with the status).
//
// SIGTERM/SIGINT: stop accepting, give calls in progress 1 s, exit 0.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { grpc, METHODS, loadEcho, metadataToObject } = require('./echo.js');

function usage(message) {
  process.stderr.write(`server.js: ${message}\n` +
    'usage: node server.js [--port N] [--host 127.0.0.1] [--stats-file PATH]\n');
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'stats-file': { type: 'string' },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (!/^\d+$/.test(args.port) || Number(args.port) > 65535) usage(`bad --port ${args.port}`);

// ---------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------

const stats = { pid: process.pid, port: null, active: 0, calls: {}, status: {}, cancelled: {} };
for (const m of METHODS) {
  stats.calls[m] = 0;
  stats.status[m] = {};
  stats.cancelled[m] = 0;
}
const attempts = new Map(); // message -> calls that carried it (fail_times)

function writeStats() {
  const file = args['stats-file'];
  if (!file) return;
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(stats) + '\n');
  fs.renameSync(tmp, file);
}

function log(record) {
  process.stderr.write(JSON.stringify(record) + '\n');
}

// ---------------------------------------------------------------------------------------
// One call
// ---------------------------------------------------------------------------------------

// What the server saw of the request: its metadata, plus pseudo keys (never metadata names).
function peerHeaders(call, arrived) {
  const seen = metadataToObject(call.metadata);
  seen[':authority'] = call.getHost();
  seen[':path'] = call.getPath();
  seen[':peer'] = call.getPeer();
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (Number.isFinite(deadlineMs)) seen[':deadline-ms'] = Math.max(0, deadlineMs - arrived);
  return JSON.stringify(seen);
}

class Call {
  constructor(method, call) {
    this.method = method;
    this.call = call;
    this.arrived = Date.now();
    this.peerHeaders = peerHeaders(call, this.arrived);
    this.done = false;
    this.timers = new Set();
    this.waiting = new Set(); // what sleep() and drained() wait on, released when the call is over
    this.attempt = 0;
    this.message = undefined;
    stats.calls[method] += 1;
    stats.active += 1;
    writeStats();
    call.on('cancelled', () => {
      if (this.done) return;
      this.settle();
      stats.cancelled[method] += 1;
      writeStats();
      this.log({ cancelled: true });
    });
  }

  // Counts this call against its message; true when it must fail (fail_code, fail_times).
  shouldFail(request) {
    this.message = request.message;
    this.attempt = (attempts.get(request.message) || 0) + 1;
    attempts.set(request.message, this.attempt);
    return request.fail_code !== 0 && (request.fail_times <= 0 || this.attempt <= request.fail_times);
  }

  reply(message, index) {
    return { message, index, peer_headers: this.peerHeaders };
  }

  trailers() {
    const md = new grpc.Metadata();
    md.set('x-echo-attempt', String(this.attempt));
    return md;
  }

  sendHeaders() {
    const md = new grpc.Metadata();
    md.set('x-echo-method', this.method);
    this.call.sendMetadata(md);
  }

  // Runs fn after ms (at once for ms <= 0) unless the call is over by then.
  after(ms, fn) {
    if (this.done) return;
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.done) fn();
    }, ms);
    this.timers.add(timer);
  }

  // Resolves after ms, or as soon as the call is over (check this.done after).
  sleep(ms) {
    return new Promise((resolve) => {
      if (this.done || ms <= 0) {
        resolve();
        return;
      }
      const wake = () => {
        this.waiting.delete(wake);
        resolve();
      };
      this.waiting.add(wake);
      this.after(ms, wake);
    });
  }

  // Resolves once the stream can take more (write() returned false), or the call is over.
  drained() {
    return new Promise((resolve) => {
      if (this.done) {
        resolve();
        return;
      }
      const wake = () => {
        this.waiting.delete(wake);
        this.call.removeListener('drain', wake);
        resolve();
      };
      this.waiting.add(wake);
      this.call.once('drain', wake);
    });
  }

  settle() {
    this.done = true;
    for (const wake of [...this.waiting]) wake();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    stats.active -= 1;
  }

  // Records the status the call is about to get; false when it is already over (cancelled).
  finish(code) {
    if (this.done) return false;
    this.settle();
    const byCode = stats.status[this.method];
    byCode[code] = (byCode[code] || 0) + 1;
    writeStats();
    this.log({ code });
    return true;
  }

  failure(code) {
    return { code, details: 'failed on purpose', metadata: this.trailers() };
  }

  log(fields) {
    log({ method: this.method, message: this.message, attempt: this.attempt,
      ms: Date.now() - this.arrived, ...fields });
  }
}

// ---------------------------------------------------------------------------------------
// The four methods
// ---------------------------------------------------------------------------------------

function unary(call, callback) {
  const c = new Call('Unary', call);
  const req = call.request;
  const fail = c.shouldFail(req);
  c.after(req.delay_ms, () => {
    if (fail) {
      if (c.finish(req.fail_code)) callback(c.failure(req.fail_code));
      return;
    }
    if (!c.finish(grpc.status.OK)) return;
    c.sendHeaders();
    callback(null, c.reply(req.message, 0), c.trailers());
  });
}

async function serverStream(call) {
  const c = new Call('ServerStream', call);
  const req = call.request;
  if (c.shouldFail(req)) {
    await c.sleep(req.delay_ms);
    if (c.finish(req.fail_code)) call.emit('error', c.failure(req.fail_code));
    return;
  }
  const count = Math.max(0, req.count);
  for (let i = 0; i < count; i++) {
    await c.sleep(req.delay_ms);
    if (c.done) return;
    if (i === 0) c.sendHeaders();
    if (!call.write(c.reply(req.message, i))) await c.drained();
    if (c.done) return;
  }
  if (count === 0) {
    await c.sleep(req.delay_ms);
    if (c.done) return;
    c.sendHeaders();
  }
  if (c.finish(grpc.status.OK)) call.end(c.trailers());
}

function clientStream(call, callback) {
  const c = new Call('ClientStream', call);
  const requests = [];
  call.on('data', (req) => requests.push(req));
  call.on('error', () => {}); // the 'cancelled' event reports it
  call.on('end', () => {
    const first = requests[0] || { message: '', count: 0, delay_ms: 0, fail_code: 0, fail_times: 0 };
    const fail = c.shouldFail(first);
    c.after(first.delay_ms, () => {
      if (fail) {
        if (c.finish(first.fail_code)) callback(c.failure(first.fail_code));
        return;
      }
      if (!c.finish(grpc.status.OK)) return;
      c.sendHeaders();
      callback(null, c.reply(requests.map((r) => r.message).join(','), requests.length),
        c.trailers());
    });
  });
}

function bidi(call) {
  const c = new Call('Bidi', call);
  let index = 0;
  let failed = false;
  let queue = Promise.resolve(); // replies go out in request order, each delay_ms after its turn
  call.on('error', () => {}); // the 'cancelled' event reports it
  call.on('data', (req) => {
    if (failed || c.done) return;
    if (index === 0 && c.shouldFail(req)) {
      failed = true;
      c.sleep(req.delay_ms).then(() => {
        if (c.finish(req.fail_code)) call.emit('error', c.failure(req.fail_code));
      });
      return;
    }
    const i = index++;
    queue = queue.then(async () => {
      await c.sleep(req.delay_ms);
      if (c.done) return;
      if (i === 0) c.sendHeaders();
      if (!call.write(c.reply(req.message, i))) await c.drained();
    });
  });
  call.on('end', () => {
    queue.then(() => {
      if (failed || c.done) return;
      if (index === 0) c.sendHeaders();
      if (c.finish(grpc.status.OK)) call.end(c.trailers());
    });
  });
}

// ---------------------------------------------------------------------------------------
// Serve
// ---------------------------------------------------------------------------------------

const server = new grpc.Server();
server.addService(loadEcho().service, {
  Unary: unary, ServerStream: serverStream, ClientStream: clientStream, Bidi: bidi,
});

server.bindAsync(`${args.host}:${args.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`server.js: cannot listen on ${args.host}:${args.port}: ${err.message}\n`);
    process.exit(1);
  }
  stats.port = port;
  writeStats();
  process.stdout.write(JSON.stringify({ port }) + '\n');
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  log({ event: 'stopping', signal });
  const exit = () => {
    writeStats();
    process.exit(0);
  };
  const force = setTimeout(() => {
    server.forceShutdown();
    exit();
  }, 1000);
  server.tryShutdown(() => {
    clearTimeout(force);
    exit();
  });
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
