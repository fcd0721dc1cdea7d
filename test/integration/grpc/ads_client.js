'use strict';
// A real xDS client (grpc-js) for phoenix-cp's Aggregated Discovery Service (ads.proto):
//
//   node ads_client.js --target HOST:PORT --node ID [--node-cluster C] [--node-metadata k=v,...]
//                      [--types Listener,Cluster,...]
//                      [--resource-names a,b] [--nack-type T [--nack-version V]]
//                      [--token TOKEN] [--ca FILE [--cert FILE --key FILE]]
//
// Opens one StreamAggregatedResources stream and sends a first DiscoveryRequest for each type
// of --types (default: Listener, RouteConfiguration, Cluster, Secret), the first one carrying
// the node, with --resource-names if given (default: wildcard). Each response is printed as
// one JSON line on stdout and answered as a proxy does: an ACK (version_info and nonce of the
// response), or, for a response of --nack-type (whose version is --nack-version, when given),
// a NACK (the last version ACKed of that type, the nonce, error_detail "rejected by
// ads_client.js"). Response lines:
//   {"type_url", "type", "version_info", "nonce", "resources": [names]}
// When the stream ends: {"status": code, "details": "..."}, then exit 0. Closing stdin
// half-closes the stream (the client is done). --token sends `authorization: Bearer TOKEN`
// (phoenix-cp --tokens). --ca speaks TLS (grpc-js's own, over Node's OpenSSL), verifying the
// server against that CA; --cert and --key are its client certificate (mutual TLS). Exits 2
// (usage on stderr) for bad arguments.

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const REPO = path.resolve(__dirname, '..', '..', '..');
const TYPE_PREFIX = 'type.googleapis.com/phoenix.config.v1.';
const ALL_TYPES = ['Listener', 'RouteConfiguration', 'Cluster', 'Secret'];
const USAGE = 'usage: node ads_client.js --target HOST:PORT --node ID [--types T,...]' +
  ' [--resource-names a,b] [--nack-type T [--nack-version V]] [--token TOKEN]' +
  ' [--ca FILE [--cert FILE --key FILE]]\n';

function usage(message) {
  process.stderr.write(`ads_client.js: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        node: { type: 'string' },
        'node-cluster': { type: 'string' },
        'node-metadata': { type: 'string' },
        types: { type: 'string' },
        'resource-names': { type: 'string' },
        'nack-type': { type: 'string' },
        'nack-version': { type: 'string' },
        token: { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
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
  if (values.node === undefined) usage('--node is required');
  const types = values.types ? values.types.split(',') : ALL_TYPES;
  for (const t of types) if (!ALL_TYPES.includes(t)) usage(`unknown type ${JSON.stringify(t)}`);
  if (values['nack-type'] && !ALL_TYPES.includes(values['nack-type'])) {
    usage(`unknown --nack-type ${JSON.stringify(values['nack-type'])}`);
  }
  return {
    target: values.target,
    node: values.node,
    nodeCluster: values['node-cluster'] || 'ads-client',
    nodeMetadata: values['node-metadata'] || '',
    types,
    names: values['resource-names'] ? values['resource-names'].split(',') : [],
    nackType: values['nack-type'],
    nackVersion: values['nack-version'],
    token: values.token,
    credentials: credentials(values),
  };
}

// Plaintext, or TLS with --ca (and a client certificate with --cert and --key).
function credentials(values) {
  if (!values.ca) return grpc.credentials.createInsecure();
  const read = (file) => (file ? fs.readFileSync(file) : null);
  return grpc.credentials.createSsl(read(values.ca), read(values.key), read(values.cert));
}

// The name of a Listener/Cluster/RouteConfiguration/Secret: field 1 (a string) of each, read
// from the Any's bytes without knowing the message.
function resourceName(bytes) {
  let i = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++];
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
      shift += 7;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const length = varint();
      if (field === 1) return Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      i += length;
    } else return '';
  }
  return '';
}

function main() {
  const opts = parse();
  const definition = protoLoader.loadSync('phoenix/service/discovery/v1/ads.proto', {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [path.join(REPO, 'api'), '/usr/include'],
  });
  const Ads = grpc.loadPackageDefinition(definition)
    .phoenix.service.discovery.v1.AggregatedDiscoveryService;
  const client = new Ads(opts.target, opts.credentials);
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.add('authorization', `Bearer ${opts.token}`);
  const call = client.StreamAggregatedResources(metadata);
  const acked = {}; // type_url -> the last version ACKed

  call.on('data', (response) => {
    const names = response.resources.map((any) => resourceName(any.value));
    const type = response.type_url.startsWith(TYPE_PREFIX)
      ? response.type_url.slice(TYPE_PREFIX.length) : response.type_url;
    process.stdout.write(JSON.stringify({
      type_url: response.type_url,
      type,
      version_info: response.version_info,
      nonce: response.nonce,
      resources: names,
    }) + '\n');
    const nack = opts.nackType === type &&
      (opts.nackVersion === undefined || opts.nackVersion === response.version_info);
    const request = {
      type_url: response.type_url,
      response_nonce: response.nonce,
      resource_names: opts.names,
      version_info: nack ? (acked[response.type_url] || '') : response.version_info,
    };
    if (nack) request.error_detail = { code: 3, message: 'rejected by ads_client.js' };
    else acked[response.type_url] = response.version_info;
    call.write(request);
  });
  call.on('error', () => {}); // The status event reports it.
  call.on('status', (status) => {
    process.stdout.write(JSON.stringify({ status: status.code, details: status.details }) + '\n',
      () => process.exit(0));
  });

  opts.types.forEach((type, index) => {
    const request = { type_url: TYPE_PREFIX + type, resource_names: opts.names };
    if (index === 0) {
      request.node = { id: opts.node, cluster: opts.nodeCluster };
      if (opts.nodeMetadata) {
        // k=v,k2=v2 as a google.protobuf.Struct of string values.
        const fields = {};
        for (const pair of opts.nodeMetadata.split(',')) {
          const at = pair.indexOf('=');
          fields[pair.slice(0, at)] = { stringValue: pair.slice(at + 1) };  // protobufjs's Value wrapper: camelCase.
        }
        request.node.metadata = { fields };
      }
    }
    call.write(request);
  });

  process.stdin.on('data', () => {});
  process.stdin.on('end', () => call.end());
}

main();
