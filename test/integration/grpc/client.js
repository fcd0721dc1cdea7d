'use strict';
// A one-shot gRPC client (grpc-js, plain-text HTTP/2) for phoenix.test.Echo (echo.proto):
//
//   node client.js --target 127.0.0.1:PORT --method Unary|ServerStream|ClientStream|Bidi
//                  --message M [--count N] [--delay-ms N] [--fail-code N] [--fail-times N]
//                  [--deadline-ms N] [--cancel-after-ms N] [--metadata k=v ...]
//
// Every request carries message, count, delay_ms, fail_code and fail_times. ServerStream
// sends one request; ClientStream sends --count requests (default 1) then half-closes; Bidi
// plays ping-pong: a request, waits for its reply, the next one, ..., --count in all, then
// half-closes (so a proxy that holds requests back until the end of the stream shows up as a
// deadline). --metadata may repeat; a key ending in -bin takes a base64 value.
//
// Prints exactly one JSON line on stdout once the call has a status, whatever it is, and exits
// 0:
//   {"code": 0, "details": "OK", "replies": [{"message", "index", "peer_headers"}, ...],
//    "trailers": {...}, "headers": {...}, "elapsed_ms": N}
// code/details are what the application sees (grpc-js turns an OK status without the reply a
// unary call needs into UNIMPLEMENTED "No message received"). headers is the response's
// initial metadata, trailers its trailing metadata (both as echo.js metadataToObject).
// Exits 2 (usage on stderr) for bad arguments. Retries of grpc-js itself are off: what is
// retried is retried by the proxy.

const { parseArgs } = require('node:util');
const { grpc, METHODS, loadEcho, metadataToObject } = require('./echo.js');

const USAGE = 'usage: node client.js --target HOST:PORT --method ' + METHODS.join('|') +
  ' --message M [--count N] [--delay-ms N] [--fail-code N] [--fail-times N]' +
  ' [--deadline-ms N] [--cancel-after-ms N] [--metadata k=v ...]\n';

function usage(message) {
  process.stderr.write(`client.js: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        method: { type: 'string' },
        message: { type: 'string' },
        count: { type: 'string' },
        'delay-ms': { type: 'string' },
        'fail-code': { type: 'string' },
        'fail-times': { type: 'string' },
        'deadline-ms': { type: 'string' },
        'cancel-after-ms': { type: 'string' },
        metadata: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    usage(e.message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (!values.target) usage('--target is required');
  if (!METHODS.includes(values.method)) usage(`--method must be one of ${METHODS.join(', ')}`);
  if (values.message === undefined) usage('--message is required');
  const int = (name, fallback) => {
    const text = values[name];
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || Number(text) > 2147483647) {
      usage(`--${name} wants a non-negative integer, not ${JSON.stringify(text)}`);
    }
    return Number(text);
  };
  const metadata = new grpc.Metadata();
  for (const pair of values.metadata || []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) usage(`--metadata wants key=value, not ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    try {
      metadata.add(key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value);
    } catch (e) {
      usage(`--metadata ${JSON.stringify(pair)}: ${e.message}`);
    }
  }
  return {
    target: values.target,
    method: values.method,
    request: {
      message: values.message,
      count: int('count', 1),
      delay_ms: int('delay-ms', 0),
      fail_code: int('fail-code', 0),
      fail_times: int('fail-times', 0),
    },
    deadlineMs: int('deadline-ms', undefined),
    cancelAfterMs: int('cancel-after-ms', undefined),
    metadata,
  };
}

function main() {
  const opts = parse();
  const Echo = loadEcho();
  const client = new Echo(opts.target, grpc.credentials.createInsecure(), {
    'grpc.enable_retries': 0,
  });
  const started = Date.now();
  const callOptions = {};
  if (opts.deadlineMs !== undefined) callOptions.deadline = new Date(started + opts.deadlineMs);

  const replies = [];
  let headers = {};
  let status = null;       // the 'status' event
  let callbackError = null; // what a unary-response callback got instead of a reply
  let streamDone = false;   // no more 'data' can come
  let cancelTimer = null;
  let printed = false;

  function maybeFinish() {
    if (printed || status === null || !streamDone) return;
    printed = true;
    if (cancelTimer) clearTimeout(cancelTimer);
    const final = callbackError || status;
    const line = JSON.stringify({
      code: final.code,
      details: final.details,
      replies,
      trailers: metadataToObject(status.metadata),
      headers,
      elapsed_ms: Date.now() - started,
    });
    client.close();
    process.stdout.write(line + '\n', () => process.exit(0));
  }

  const onReply = (err, reply) => {
    if (err) callbackError = err;
    else if (reply) replies.push(reply);
  };

  let call;
  switch (opts.method) {
    case 'Unary':
      call = client.Unary(opts.request, opts.metadata, callOptions, onReply);
      streamDone = true; // the callback runs before the 'status' event
      break;
    case 'ClientStream':
      call = client.ClientStream(opts.metadata, callOptions, onReply);
      streamDone = true;
      for (let i = 0; i < opts.request.count; i++) call.write(opts.request);
      call.end();
      break;
    case 'ServerStream':
      call = client.ServerStream(opts.request, opts.metadata, callOptions);
      call.on('data', (reply) => replies.push(reply));
      break;
    case 'Bidi': {
      call = client.Bidi(opts.metadata, callOptions);
      let sent = 0;
      const sendNext = () => {
        if (status !== null) return;
        if (sent < opts.request.count) {
          call.write(opts.request);
          sent += 1;
        } else if (sent === opts.request.count) {
          call.end();
          sent += 1;
        }
      };
      call.on('data', (reply) => {
        replies.push(reply);
        sendNext();
      });
      sendNext();
      break;
    }
    default:
      usage(`unknown method ${opts.method}`);
  }

  if (opts.method === 'ServerStream' || opts.method === 'Bidi') {
    // The 'status' event may come before the last 'data': the stream's end settles it.
    const done = () => {
      streamDone = true;
      maybeFinish();
    };
    call.on('end', done);
    call.on('error', done); // the status (with the code) comes as the 'status' event
    call.on('close', done);
  }
  call.on('metadata', (md) => {
    headers = metadataToObject(md);
  });
  call.on('status', (s) => {
    status = s;
    maybeFinish();
  });
  if (opts.cancelAfterMs !== undefined) {
    cancelTimer = setTimeout(() => call.cancel(), opts.cancelAfterMs);
  }
}

main();
