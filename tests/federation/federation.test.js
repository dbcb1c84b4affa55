// pvgraph as an Apollo Federation v2 subgraph, with Apollo's own libraries:
// the real pvgraph binary and a reference budget subgraph serve their SDLs
// through `_service`, `@apollo/composition` composes them, `@apollo/gateway`
// serves the supergraph, and queries that need both services get answers
// equal to what each service says on its own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { parse } from 'graphql';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';

import * as budget from './budget.js';
import { compose, data, serve, serviceSdl, startGateway, startPvgraph } from './harness.js';

let pvgraph;
let budgetService;
let gateway;
let supergraphSdl;

const checkedInSdl = () => readFileSync(new URL('../../schema/subgraph.graphql', import.meta.url), 'utf8');

before(async () => {
  pvgraph = await startPvgraph();
  budgetService = await serve({ schema: budget.schema(), plugins: [ApolloServerPluginInlineTraceDisabled()] });
  const subgraphs = [
    { name: 'pvgraph', url: pvgraph.url, sdl: await serviceSdl(pvgraph.url) },
    { name: 'budget', url: budgetService.url, sdl: await serviceSdl(budgetService.url) },
  ];
  supergraphSdl = compose(subgraphs);
  gateway = await startGateway(supergraphSdl);
});

after(async () => {
  await gateway?.stop();
  await budgetService?.stop();
  await pvgraph?.stop();
});

test('pvgraph serves the checked-in subgraph SDL through _service', async () => {
  assert.equal(await serviceSdl(pvgraph.url), checkedInSdl());
});

test('the supergraph joins Experiment from both subgraphs by its key', () => {
  const experiment = parse(supergraphSdl).definitions.find((d) => d.name?.value === 'Experiment');
  const joins = experiment.directives
    .filter((d) => d.name.value === 'join__type')
    .map((d) => Object.fromEntries(d.arguments.map((a) => [a.name.value, a.value.value])));
  assert.deepEqual(joins.map((j) => [j.graph, j.key]).sort(), [
    ['BUDGET', 'id'],
    ['PVGRAPH', 'id'],
  ]);
  const fields = experiment.fields.map((f) => f.name.value);
  for (const field of ['title', 'hypothesis', 'produced', 'guidedBy', 'budget', 'costPerLearning']) {
    assert.ok(fields.includes(field), `Experiment.${field} is in the supergraph`);
  }
});

test('experiments from pvgraph carry their budget and cost per learning from the budget service', async () => {
  const own = await data(pvgraph.url, '{ experiments(first: 100) { nodes { id title status produced { id title } } } }');
  const joined = await data(
    gateway.url,
    `{ experiments(first: 100) { nodes {
         id title status produced { id title }
         budget { amountUsd fiscalYear fundedBy } costPerLearning
       } } }`,
  );
  const expected = own.experiments.nodes.map((experiment) => {
    const line = budget.budgetLines.find((l) => l.experiment === experiment.id);
    return {
      ...experiment,
      budget: line ? { amountUsd: line.amountUsd, fiscalYear: line.fiscalYear, fundedBy: line.fundedBy } : null,
      costPerLearning: line && experiment.produced.length ? line.amountUsd / experiment.produced.length : null,
    };
  });
  assert.deepEqual(joined.experiments.nodes, expected);

  // Every budget line met its experiment, and each of those produced learnings.
  const budgeted = joined.experiments.nodes.filter((e) => e.budget);
  assert.equal(budgeted.length, budget.budgetLines.length);
  assert.ok(budgeted.every((e) => e.costPerLearning > 0), JSON.stringify(budgeted, null, 2));
});

test("budget lines from the budget service carry pvgraph's experiments and learnings", async () => {
  const joined = await data(
    gateway.url,
    `{ budgetLines {
         id amountUsd
         experiment { id title status guidedBy { title } }
         justifiedBy { id title embedding producedBy { title } }
       } }`,
  );
  const ids = budget.budgetLines.flatMap((l) => [l.experiment, ...l.justifiedBy]);
  const own = await data(
    pvgraph.url,
    `query($ids: [ID!]!) { nodes(ids: $ids) {
       ... on Experiment { id title status guidedBy { title } }
       ... on Learning { id title embedding producedBy { title } }
     } }`,
    { ids },
  );
  const byId = new Map(own.nodes.map((node) => [node.id, node]));
  assert.equal(byId.size, ids.length, 'pvgraph holds every node the budget refers to');

  const expected = budget.budgetLines.map((line) => ({
    id: line.id,
    amountUsd: line.amountUsd,
    experiment: byId.get(line.experiment),
    justifiedBy: line.justifiedBy.map((id) => byId.get(id)),
  }));
  assert.deepEqual(joined.budgetLines, expected);
  assert.ok(joined.budgetLines.every((l) => l.experiment.title && l.justifiedBy.every((j) => j.title)));
});

test("composition refuses a subgraph that redefines pvgraph's fields, and says why", async () => {
  const rival = `
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
    type Learning @key(fields: "id") { id: ID! title: String! }
    type Query { rivalLearnings: [Learning!]! }`;
  assert.throws(
    () =>
      compose([
        { name: 'pvgraph', url: pvgraph.url, sdl: checkedInSdl() },
        { name: 'rival', url: 'http://127.0.0.1:9/graphql', sdl: rival },
      ]),
    /composition failed:[\s\S]*Learning\.title/,
  );
});
