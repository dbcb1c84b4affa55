// The trace explorer: find a node with `search`, then draw the `trace` from
// it or the `paths` from it to a second node with Cytoscape.js. Nodes are
// coloured by kind; INFLUENCED edges carry their `how` and are as wide as the
// evidence is strong; inferred links are dashed, hypothetical ones dotted.
'use strict';

const KIND_COLOURS = {
  Organisation: '#6b7280',
  Value: '#7c3aed',
  Principle: '#2563eb',
  Barrier: '#dc2626',
  Experiment: '#ea580c',
  Learning: '#16a34a',
  Source: '#a16207',
};
const STRENGTH_WIDTHS = { STRONG: 7, MODERATE: 4.5, WEAK: 2.5, UNTESTED: 1.5 };

const NODE_FIELDS = 'fragment Shown on Node { __typename id title description organisationSlug assertion }';
const EDGE_FIELDS =
  'fragment Link on Relationship { kind fromId toId assertion how strength on contribution systemCondition }';
const SEARCH = 'query Search($text: String!) { search(text: $text, first: 10) { node { __typename id title } } }';
const TRACE = `query Trace($from: ID!, $direction: TraceDirection!, $maxDepth: Int) {
  trace(from: $from, direction: $direction, maxDepth: $maxDepth) {
    truncation nodes { node { ...Shown } } edges { ...Link }
  }
} ${NODE_FIELDS} ${EDGE_FIELDS}`;
const PATHS = `query Paths($from: ID!, $to: ID!, $direction: TraceDirection!, $maxDepth: Int) {
  paths(from: $from, to: $to, direction: $direction, maxDepth: $maxDepth) {
    nodes { ...Shown } edges { ...Link }
  }
} ${NODE_FIELDS} ${EDGE_FIELDS}`;

const $ = (id) => document.getElementById(id);
const picked = { from: null, to: null };

/** Runs one GraphQL operation against this server; errors come back as thrown messages. */
async function graphql(query, variables) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data;
}

/** The query GraphiQL opens for one node. */
function nodeQuery(id) {
  return `query Node {
  node(id: ${JSON.stringify(id)}) {
    __typename id title description organisationSlug assertion
    links { kind fromId toId assertion how strength on }
  }
}
`;
}

const cy = cytoscape({
  container: $('graph'),
  wheelSensitivity: 0.3,
  style: [
    {
      selector: 'node',
      style: {
        'background-color': 'data(colour)',
        label: 'data(title)',
        'font-size': 10,
        'text-wrap': 'wrap',
        'text-max-width': 130,
        'text-valign': 'bottom',
        'text-margin-y': 4,
        width: 22,
        height: 22,
      },
    },
    { selector: 'node.start', style: { 'border-width': 3, 'border-color': '#111' } },
    { selector: ':selected', style: { 'border-width': 4, 'border-color': '#f59e0b', 'line-color': '#f59e0b' } },
    {
      selector: 'edge',
      style: {
        width: 1.5,
        'line-color': '#9ca3af',
        'target-arrow-color': '#9ca3af',
        'target-arrow-shape': 'triangle',
        'curve-style': 'bezier',
        label: 'data(label)',
        'font-size': 8,
        color: '#444',
        'text-rotation': 'autorotate',
        'text-background-color': '#fff',
        'text-background-opacity': 0.85,
      },
    },
    {
      selector: 'edge[kind = "INFLUENCED"]',
      style: { width: 'data(width)', 'line-color': '#15803d', 'target-arrow-color': '#15803d' },
    },
    { selector: 'edge[assertion = "INFERRED"]', style: { 'line-style': 'dashed' } },
    { selector: 'edge[assertion = "HYPOTHETICAL"]', style: { 'line-style': 'dotted' } },
  ],
});

/** Replaces the graph with these nodes and relationships, laid out from `start`. */
function draw(nodes, edges, start) {
  const seen = new Map(nodes.map((node) => [node.id, node]));
  const links = new Map(edges.map((edge) => [`${edge.kind}:${edge.fromId}->${edge.toId}`, edge]));
  cy.elements().remove();
  cy.add([...seen.values()].map((node) => ({ group: 'nodes', data: { ...node, colour: KIND_COLOURS[node.__typename] } })));
  cy.add(
    [...links].map(([id, edge]) => ({
      group: 'edges',
      data: {
        ...edge,
        id,
        source: edge.fromId,
        target: edge.toId,
        label: words(edge.kind === 'INFLUENCED' ? edge.how : edge.kind),
        width: STRENGTH_WIDTHS[edge.strength] ?? 1.5,
      },
    })),
  );
  cy.getElementById(start).addClass('start');
  // Levels of a big trace hold too many nodes for a row to label: rings give them room.
  const circle = seen.size > 15;
  cy.layout({ name: 'breadthfirst', roots: [start], directed: false, circle, spacingFactor: 1.15, padding: 24 }).run();
  return { nodes: cy.nodes().length, edges: cy.edges().length };
}

/** `REVISED_PRINCIPLE` as "revised principle". */
function words(name) {
  return name ? name.toLowerCase().replaceAll('_', ' ') : '';
}

function status(text, failed = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', failed);
}

function mode() {
  return document.querySelector('input[name=mode]:checked').value;
}

function showPicks() {
  $('from').textContent = picked.from ? picked.from.title : 'pick a node above';
  $('to').textContent = picked.to ? picked.to.title : 'pick a second node above';
  $('path-options').hidden = mode() !== 'path';
  $('draw-button').disabled = !picked.from || (mode() === 'path' && !picked.to);
}

function pick(slot, node) {
  picked[slot] = node;
  if (slot === 'to') document.querySelector('input[name=mode][value=path]').checked = true;
  showPicks();
}

function button(text, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = text;
  element.addEventListener('click', onClick);
  return element;
}

$('search').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('search-text').value.trim();
  $('hits').replaceChildren();
  try {
    const { search } = await graphql(SEARCH, { text });
    status(search.length ? `${search.length} found` : `Nothing matches “${text}”`);
    for (const { node } of search) {
      const item = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = `${node.title} `;
      label.append(Object.assign(document.createElement('small'), { textContent: node.__typename }));
      item.append(label, button('From', () => pick('from', node)), button('To', () => pick('to', node)));
      $('hits').append(item);
    }
  } catch (error) {
    status(error.message, true);
  }
});

document.querySelectorAll('input[name=mode]').forEach((input) => input.addEventListener('change', showPicks));

$('draw').addEventListener('submit', async (event) => {
  event.preventDefault();
  const variables = {
    from: picked.from.id,
    direction: $('direction').value,
    maxDepth: Number($('depth').value) || undefined,
  };
  try {
    let drawn;
    let note = '';
    if (mode() === 'trace') {
      const { trace } = await graphql(TRACE, variables);
      drawn = draw(
        trace.nodes.map((n) => n.node),
        trace.edges,
        variables.from,
      );
      note = trace.truncation.join(' ');
    } else {
      const { paths } = await graphql(PATHS, { ...variables, to: picked.to.id });
      drawn = draw(paths.flatMap((p) => p.nodes), paths.flatMap((p) => p.edges), variables.from);
      if (!paths.length) note = 'No path within that depth and direction.';
    }
    status(`Drew ${drawn.nodes} nodes and ${drawn.edges} relationships. ${note}`.trim());
  } catch (error) {
    status(error.message, true);
  }
});

cy.on('tap', 'node', (event) => {
  const node = event.target.data();
  $('details').hidden = false;
  $('details-title').textContent = node.title;
  showFields({
    Kind: node.__typename,
    Id: node.id,
    Organisation: node.organisationSlug,
    Assertion: words(node.assertion),
    Description: node.description,
  });
  $('details-query').hidden = false;
  $('details-query').href = `/?query=${encodeURIComponent(nodeQuery(node.id))}`;
});

cy.on('tap', 'edge', (event) => {
  const edge = event.target.data();
  $('details').hidden = false;
  $('details-title').textContent = words(edge.kind);
  showFields({
    From: cy.getElementById(edge.fromId).data('title'),
    To: cy.getElementById(edge.toId).data('title'),
    How: words(edge.how),
    Strength: words(edge.strength),
    Assertion: words(edge.assertion),
    'System condition': words(edge.systemCondition),
    On: edge.on,
    Contribution: edge.contribution,
  });
  $('details-query').hidden = true;
});

function showFields(fields) {
  $('details-fields').replaceChildren(
    ...Object.entries(fields)
      .filter(([, value]) => value)
      .flatMap(([name, value]) => [
        Object.assign(document.createElement('dt'), { textContent: name }),
        Object.assign(document.createElement('dd'), { textContent: value }),
      ]),
  );
}

$('legend').replaceChildren(
  ...Object.entries(KIND_COLOURS).map(([kind, colour]) => {
    const item = document.createElement('li');
    const dot = document.createElement('i');
    dot.style.background = colour;
    item.append(dot, kind);
    return item;
  }),
);

showPicks();
// For tests and the console: the drawn graph.
window.explorer = { cy };
