// The GraphQL over HTTP specification, as the graphql-http package audits a
// server: no MUST and no SHOULD may fail.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { startServer } from './server.js';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

test('graphql-http server audits: no failed MUST or SHOULD', async () => {
  const failures = [];
  let ran = 0;
  for (const audit of serverAudits({ url: () => server.url })) {
    const result = await audit.fn();
    ran += 1;
    if (result.status === 'ok') continue;
    const required = audit.name.startsWith('MUST') || audit.name.startsWith('SHOULD');
    const line = `${result.status} ${audit.id} ${audit.name}: ${result.reason}`;
    console.log(line);
    if (required) failures.push(line);
  }
  assert.ok(ran > 50, `only ${ran} audits ran`);
  assert.deepEqual(failures, []);
});
