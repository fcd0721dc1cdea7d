'use strict';
// What server.js and client.js share: the Echo service loaded from echo.proto, and metadata
// as a plain JSON object.

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const METHODS = ['Unary', 'ServerStream', 'ClientStream', 'Bidi'];

// keepCase: the fields keep their proto names (delay_ms, peer_headers), in the messages the
// code handles and in the JSON the client prints. defaults: unset int32 fields read as 0.
function loadEcho() {
  const definition = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).phoenix.test.Echo;
}

// {key: value}: repeated values joined with ", " (as HTTP joins repeated header fields),
// binary (-bin) values as base64.
function metadataToObject(metadata) {
  const out = {};
  if (!metadata) return out;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    out[key] = values.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : String(v))).join(', ');
  }
  return out;
}

module.exports = { grpc, METHODS, loadEcho, metadataToObject };
