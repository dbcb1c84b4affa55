// pvgraph's GraphiQL: queries over HTTP and subscriptions over a WebSocket
// (graphql-transport-ws), both to this server. It opens with the README's
// example queries as tabs; `?query=` (and `?variables=`) opens a query of
// one's own in the first tab, as the explorer's links do.
'use strict';

const examples = JSON.parse(document.getElementById('examples').textContent);
const params = new URLSearchParams(window.location.search);
const given = params.get('query');
const root = document.getElementById('graphiql');
const endpoint = new URL(root.dataset.endpoint, window.location.href);
const socket = new URL(endpoint);
socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

const fetcher = GraphiQL.createFetcher({
  url: endpoint.href,
  wsClient: graphqlWs.createClient({ url: socket.href, lazy: true }),
});

const tabs = examples.map(({ query }) => ({ query }));
if (given) tabs.unshift({ query: given, variables: params.get('variables') ?? undefined });

ReactDOM.createRoot(root).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultTabs: tabs,
    // With tabs kept from an earlier visit GraphiQL ignores defaultTabs; this opens the given query then.
    query: given ?? undefined,
    variables: given ? params.get('variables') ?? undefined : undefined,
  }),
);
