// /explore on the King County seed, as an analyst uses it: search, pick a
// node, draw its trace and its paths to another; the picture holds what the
// API answers, clicking a node shows it, and its link opens GraphiQL.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { assertOnlyLocal, graphql, pvgraphAndChromium, recordingPage, screenshots } from './pvgraph.mjs';

const live = pvgraphAndChromium();

const LEARNING = 'kc:learning:right-risk-review-makes-risk-discussable';
const PRINCIPLE = 'kc:principle:take-the-right-risks';

/** Searches the page for `text` and picks the hit titled `title` for `slot` ("From" or "To"). */
async function pick(page, text, title, slot) {
  await page.getByLabel('Find a node').fill(text);
  await page.getByRole('button', { name: 'Search' }).click();
  const hit = page.locator('#hits li', { hasText: title });
  await hit.getByRole('button', { name: slot, exact: true }).click();
}

/** What the picture holds: node ids and edge kinds, sorted. */
function drawnGraph(page) {
  return page.evaluate(() => ({
    nodes: window.explorer.cy.nodes().map((n) => n.id()).sort(),
    edges: window.explorer.cy.edges().map((e) => `${e.data('kind')} ${e.data('fromId')} -> ${e.data('toId')}`).sort(),
  }));
}

async function titleOf(id) {
  const { data } = await graphql(live.server, 'query($id: ID!) { node(id: $id) { title } }', { id });
  return data.node.title;
}

test('a trace drawn on /explore holds the nodes and relationships the API answers', async () => {
  const { server, browser } = live;
  const { page, requests, problems } = await recordingPage(browser);
  await page.goto(`${server.url}/explore`);
  await pick(page, 'right-risk review', await titleOf(LEARNING), 'From');
  await page.getByLabel('Direction').selectOption('DOWNSTREAM');
  await page.getByLabel('Depth').fill('4');
  await page.getByRole('button', { name: 'Draw' }).click();
  await page.getByRole('status').filter({ hasText: 'Drew' }).waitFor();

  const { data } = await graphql(
    server,
    `query($from: ID!) { trace(from: $from, direction: DOWNSTREAM, maxDepth: 4) {
       nodes { node { id } } edges { kind fromId toId } } }`,
    { from: LEARNING },
  );
  const expected = {
    nodes: data.trace.nodes.map((n) => n.node.id).sort(),
    edges: data.trace.edges.map((e) => `${e.kind} ${e.fromId} -> ${e.toId}`).sort(),
  };
  assert.ok(expected.nodes.length > 3, 'the seed gives this learning a trace worth drawing');
  assert.deepEqual(await drawnGraph(page), expected);
  await page
    .getByRole('status')
    .filter({ hasText: `Drew ${expected.nodes.length} nodes and ${expected.edges.length} relationships` })
    .waitFor();

  // INFLUENCED edges carry their `how`, are wider the stronger they are, and dashed when inferred.
  const influences = await page.evaluate(() =>
    window.explorer.cy.edges('[kind = "INFLUENCED"]').map((e) => ({
      label: e.data('label'),
      how: e.data('how'),
      dashed: e.style('line-style') === 'dashed',
      width: parseFloat(e.style('width')),
      strength: e.data('strength'),
      inferred: e.data('assertion') === 'INFERRED',
    })),
  );
  assert.ok(influences.length > 0, 'the trace has influences');
  for (const edge of influences) {
    assert.equal(edge.label, edge.how.toLowerCase().replaceAll('_', ' '));
    assert.equal(edge.dashed, edge.inferred);
  }
  const rank = ['UNTESTED', 'WEAK', 'MODERATE', 'STRONG'];
  for (const a of influences) {
    for (const b of influences.filter((b) => rank.indexOf(b.strength) > rank.indexOf(a.strength))) {
      assert.ok(b.width > a.width, `a ${b.strength} edge is drawn wider than a ${a.strength} one`);
    }
  }
  assert.ok(new Set(influences.map((e) => e.strength)).size > 1, 'the trace shows influences of several strengths');
  await page.screenshot({ path: join(screenshots, 'explore-trace.png') });

  // Clicking the start shows it, and its link opens GraphiQL with its query.
  const position = await page.evaluate((id) => {
    const node = window.explorer.cy.getElementById(id);
    const box = document.getElementById('graph').getBoundingClientRect();
    return { x: box.left + node.renderedPosition('x'), y: box.top + node.renderedPosition('y') };
  }, LEARNING);
  await page.mouse.click(position.x, position.y);
  const details = page.getByRole('region', { name: 'Selected' });
  await details.getByText(LEARNING).waitFor();
  await page.screenshot({ path: join(screenshots, 'explore-details.png') });
  await details.getByRole('link', { name: 'Open its query in GraphiQL' }).click();
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() =>
    document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes('"links"'),
  );
  const shown = await page
    .locator('.result-window .CodeMirror')
    .evaluate((editor) => JSON.parse(editor.CodeMirror.getValue()));
  assert.equal(shown.data.node.id, LEARNING);

  assertOnlyLocal(requests, server);
  assert.deepEqual(problems, [], 'the page logged no errors');
  await page.close();
});

test('the paths between two picked nodes are drawn as the API answers them', async () => {
  const { server, browser } = live;
  const { page, problems } = await recordingPage(browser);
  await page.goto(`${server.url}/explore`);
  await pick(page, 'right-risk review', await titleOf(LEARNING), 'From');
  await pick(page, 'take the right risks', await titleOf(PRINCIPLE), 'To');
  await page.getByLabel('Depth').fill('6');
  await page.getByRole('button', { name: 'Draw' }).click();
  await page.getByRole('status').filter({ hasText: 'Drew' }).waitFor();

  const { data } = await graphql(
    server,
    `query($from: ID!, $to: ID!) { paths(from: $from, to: $to, maxDepth: 6) {
       nodes { id } edges { kind fromId toId } } }`,
    { from: LEARNING, to: PRINCIPLE },
  );
  assert.ok(data.paths.length > 0, 'the seed links the learning to the principle');
  const unique = (items) => [...new Set(items)].sort();
  assert.deepEqual(await drawnGraph(page), {
    nodes: unique(data.paths.flatMap((p) => p.nodes.map((n) => n.id))),
    edges: unique(data.paths.flatMap((p) => p.edges.map((e) => `${e.kind} ${e.fromId} -> ${e.toId}`))),
  });
  await page.screenshot({ path: join(screenshots, 'explore-paths.png') });
  assert.deepEqual(problems, [], 'the page logged no errors');
  await page.close();
});
