'use strict';
// A client of phoenix-cp's admin service (api/phoenix/service/admin/v1/admin.proto) that is
// not phoenixctl: grpc-js with the .proto loaded at run time, to show the wire is standard.
//
//   node admin_client.js --target HOST:PORT [--token TOKEN] [--method Status]
//                        [--ca FILE [--cert FILE --key FILE]]
//
// Calls the method with an empty request and prints the response as one JSON line (int64s as
// strings, enums as names); on failure prints {"code": N, "details": "..."} and exits 1.
// --ca speaks TLS verifying the server against that CA; --cert and --key are the client
// certificate (mutual TLS). Exits 2 (usage on stderr) for bad arguments.

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const REPO = path.resolve(__dirname, '..', '..', '..');
const USAGE = 'usage: node admin_client.js --target HOST:PORT [--token TOKEN] [--method M]' +
  ' [--ca FILE [--cert FILE --key FILE]]\n';

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        token: { type: 'string' },
        method: { type: 'string', default: 'Status' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`admin_client.js: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (!values.target) {
    process.stderr.write(`admin_client.js: --target is required\n${USAGE}`);
    process.exit(2);
  }
  const definition = protoLoader.loadSync('phoenix/service/admin/v1/admin.proto', {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [path.join(REPO, 'api'), '/usr/include'],
  });
  const Admin = grpc.loadPackageDefinition(definition)
    .phoenix.service.admin.v1.ControlPlaneAdminService;
  const read = (file) => (file ? fs.readFileSync(file) : null);
  const credentials = values.ca
    ? grpc.credentials.createSsl(read(values.ca), read(values.key), read(values.cert))
    : grpc.credentials.createInsecure();
  const client = new Admin(values.target, credentials);
  if (typeof client[values.method] !== 'function') {
    process.stderr.write(`admin_client.js: no method ${values.method}\n${USAGE}`);
    process.exit(2);
  }
  const metadata = new grpc.Metadata();
  if (values.token) metadata.add('authorization', `Bearer ${values.token}`);
  const deadline = new Date(Date.now() + 10000);
  client[values.method]({}, metadata, { deadline }, (error, response) => {
    if (error) {
      process.stdout.write(JSON.stringify({ code: error.code, details: error.details }) + '\n',
        () => process.exit(1));
      return;
    }
    process.stdout.write(JSON.stringify(response) + '\n', () => process.exit(0));
  });
}

main();
