// graphChanged through the graphql-ws client that frontends use, against the
// real pvgraph binary: node events and relationship events with both ends and
// the edge's properties.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, mutate } from './server.js';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

const EVENTS = `subscription($kinds: [NodeKind!]) {
  graphChanged(kinds: $kinds) {
    type
    node { id title }
    relationship { kind fromId toId from { id } to { id title } how systemCondition on strength assertion }
  }
}`;

/** Subscribes and collects events; resolves `take(n)` once n have arrived. */
function subscribe(client, variables) {
  const events = [];
  const waiting = [];
  const acknowledged = new Promise((resolve) => client.on('connected', resolve));
  const dispose = client.subscribe(
    { query: EVENTS, variables },
    {
      next: (result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        events.push(result.data.graphChanged);
        for (const w of waiting.splice(0)) w();
      },
      error: (e) => {
        throw new Error(`the subscription failed: ${JSON.stringify(e)}`);
      },
      complete: () => {},
    },
  );
  const take = async (n) => {
    while (events.length < n) await new Promise((resolve) => waiting.push(resolve));
    return events.slice(0, n);
  };
  return { acknowledged, take, dispose };
}

test('node and relationship events reach a graphql-ws client', async () => {
  const client = createClient({ url: server.ws, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  try {
    const events = subscribe(client, {});
    await events.acknowledged;
    // Let the subscription register before the first write.
    await new Promise((resolve) => setTimeout(resolve, 300));

    await mutate(server.url, `mutation { createLearning(input: { organisation: "kc", title: "Through the client",
      statement: "s", kind: PROCESS, capturedOn: "2024-01-01" }) { id } }`);
    await mutate(server.url, `mutation { updateLearning(id: "kc:learning:through-the-client",
      input: { title: "Through the client, revised" }) { id } }`);
    await mutate(server.url, `mutation { recordInfluence(input: { from: "kc:learning:through-the-client",
      to: "kc:value:equity", how: CHANGED_PRACTICE, systemCondition: PRACTICES, on: "2024-03-01",
      strength: MODERATE }) { kind } }`);
    await mutate(server.url, `mutation { unlink(from: "kc:learning:through-the-client",
      kind: INFLUENCED, to: "kc:value:equity") { kind } }`);
    await mutate(server.url, `mutation { deleteNode(id: "kc:learning:through-the-client") { id } }`);

    const [created, updated, linked, unlinked, deleted] = await events.take(5);
    assert.deepEqual(created, {
      type: 'NODE_CREATED',
      node: { id: 'kc:learning:through-the-client', title: 'Through the client' },
      relationship: null,
    });
    assert.equal(updated.type, 'NODE_UPDATED');
    assert.equal(updated.node.title, 'Through the client, revised');
    const influence = {
      kind: 'INFLUENCED',
      fromId: 'kc:learning:through-the-client',
      toId: 'kc:value:equity',
      from: { id: 'kc:learning:through-the-client' },
      to: { id: 'kc:value:equity', title: 'Equity' },
      how: 'CHANGED_PRACTICE',
      systemCondition: 'PRACTICES',
      on: '2024-03-01',
      strength: 'MODERATE',
      assertion: 'INFERRED',
    };
    assert.deepEqual(linked, { type: 'RELATIONSHIP_CREATED', node: null, relationship: influence });
    assert.deepEqual(unlinked, { type: 'RELATIONSHIP_DELETED', node: null, relationship: influence });
    assert.equal(deleted.type, 'NODE_DELETED');
    assert.equal(deleted.node.id, 'kc:learning:through-the-client');
    events.dispose();
  } finally {
    await client.dispose();
  }
});

test('a deleted node takes its relationships along, reported with both ends', async () => {
  const client = createClient({ url: server.ws, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  try {
    const events = subscribe(client, { kinds: ['LEARNING'] });
    await events.acknowledged;
    await new Promise((resolve) => setTimeout(resolve, 300));
    await mutate(server.url, `mutation { createLearning(input: { organisation: "kc", title: "Short lived",
      statement: "s", kind: MINDSET, capturedOn: "2024-01-01" }) { id } }`);
    await mutate(server.url, `mutation { recordInfluence(input: { from: "kc:learning:short-lived",
      to: "kc:value:equity", how: SHIFTED_MINDSET, systemCondition: MENTAL_MODELS, on: "2024-02-01",
      strength: WEAK }) { kind } }`);
    await mutate(server.url, `mutation { deleteNode(id: "kc:learning:short-lived") { id } }`);
    const [, , unlinked, deleted] = await events.take(4);
    assert.equal(unlinked.type, 'RELATIONSHIP_DELETED');
    assert.deepEqual(unlinked.relationship.from, { id: 'kc:learning:short-lived' });
    assert.equal(unlinked.relationship.to.title, 'Equity');
    assert.equal(unlinked.relationship.how, 'SHIFTED_MINDSET');
    assert.equal(deleted.type, 'NODE_DELETED');
    events.dispose();
  } finally {
    await client.dispose();
  }
});
