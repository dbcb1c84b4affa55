// GraphiQL as an analyst on a network with no way out uses it: the page and
// everything it loads come from pvgraph, an example tab runs and shows the
// data the API gives, and a subscription started from it receives an event.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { assertOnlyLocal, graphql, mutate, pvgraphAndChromium, recordingPage, root, screenshots } from './pvgraph.mjs';

const live = pvgraphAndChromium();

/** The text GraphiQL shows in its result panel. */
async function resultText(page) {
  return page.locator('.result-window .CodeMirror').evaluate((editor) => editor.CodeMirror.getValue());
}

/** Opens the tab whose title (the operation's name) is `title` and presses the run button. */
async function runTab(page, title) {
  await page.locator('.graphiql-tab-button', { hasText: title }).click();
  // Run only once the editor holds the tab's own operation (each is named after its tab) and
  // GraphiQL has read it: it parses the editor's text a moment after a change, and a click
  // before that sends the new text under the old operation's name. A subscription then goes
  // over HTTP, named after an operation the text does not hold, and never reaches the socket.
  await page.waitForFunction(
    (title) => {
      const editor = document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror;
      return editor?.getValue().includes(title) && editor.operationName === title;
    },
    title,
    { timeout: 15_000 },
  );
  await page.locator('.graphiql-execute-button').click();
}

test('GraphiQL opens with the example tabs and runs one, loading nothing from elsewhere', async () => {
  const { server, browser } = live;
  const { page, requests, problems } = await recordingPage(browser);
  await page.goto(server.url);
  await page.locator('.graphiql-tab-button').first().waitFor();

  const titles = await page.locator('.graphiql-tab-button').allTextContents();
  assert.deepEqual(titles, ['LearningTrace', 'PathToPrinciple', 'ValueFunnel', 'SearchAndReach', 'GraphChanged']);

  await runTab(page, 'LearningTrace');
  await page.waitForFunction(() =>
    document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes('"trace"'),
  );
  const shown = JSON.parse(await resultText(page));

  const query = await readFile(join(root, 'docs', 'examples', 'trace.graphql'), 'utf8');
  const expected = await graphql(server, query);
  assert.equal(expected.errors, undefined);
  assert.ok(expected.data.trace.nodes.length > 1, 'the trace reaches beyond its start');
  assert.deepEqual(shown, expected);

  await page.screenshot({ path: join(screenshots, 'graphiql.png') });
  assertOnlyLocal(requests, server);
  assert.deepEqual(problems, [], 'the page logged no errors');
  await page.close();
});

test('a subscription started in GraphiQL receives an event for a mutation made over HTTP', async () => {
  const { server, browser } = live;
  // A page that sent no subscribe message within 15 s is replaced by a fresh one, three times
  // at most; one that sent it must show the event. (Pages used to send none now and then: the
  // run button was pressed before GraphiQL had read the tab's operation; `runTab` now waits.)
  let page, requests, problems, sent;
  for (let tries = 1; tries <= 3 && !sent; tries += 1) {
    await page?.close();
    ({ page, requests, problems } = await recordingPage(browser));
    const subscribed = new Promise((done) =>
      page.on('websocket', (socket) =>
        socket.on('framesent', ({ payload }) => String(payload).includes('"subscribe"') && done(true)),
      ),
    );
    await page.goto(server.url);
    await runTab(page, 'GraphChanged');
    sent = await Promise.race([subscribed, new Promise((done) => setTimeout(() => done(false), 15_000))]);
  }
  assert.ok(sent, 'GraphiQL sent no subscribe message');

  // The server registers the subscription a moment after the message arrives:
  // create learnings until one shows, a few at most.
  let seen = null;
  for (let attempt = 1; attempt <= 5 && !seen; attempt += 1) {
    const title = `Seen from GraphiQL ${attempt}`;
    await mutate(
      server,
      `mutation($input: CreateLearningInput!) { createLearning(input: $input) { id } }`,
      { input: { organisation: 'kc', title, statement: 'Events reach the browser.', kind: 'PROCESS', capturedOn: '2024-01-01' } },
    );
    seen = await page
      .waitForFunction(
        (title) => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes(title) && title,
        title,
        { timeout: 3_000 },
      )
      .then((handle) => handle.jsonValue())
      .catch(() => null);
  }
  assert.ok(seen, 'no event reached GraphiQL');
  const event = JSON.parse(await resultText(page));
  assert.equal(event.data.graphChanged.type, 'NODE_CREATED');
  assert.equal(event.data.graphChanged.node.title, seen);

  await page.screenshot({ path: join(screenshots, 'graphiql-subscription.png') });
  const sockets = requests.filter((url) => url.startsWith('ws'));
  assert.deepEqual(sockets, [`${server.url.replace('http', 'ws')}/graphql`]);
  assertOnlyLocal(requests, server);
  assert.deepEqual(problems, [], 'the page logged no errors');
  await page.close();
});

test('?query= opens a query of ones own in the first tab', async () => {
  const { server, browser } = live;
  const { page } = await recordingPage(browser);
  const query = '{ node(id: "kc:value:equity") { id title } }';
  await page.goto(`${server.url}/?query=${encodeURIComponent(query)}`);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() =>
    document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes('"node"'),
  );
  assert.deepEqual(JSON.parse(await resultText(page)), await graphql(server, query));
  await page.close();
});
