// Drives a GraphQL mutation with a different pair of ids in every request, for
// scripts/bench-compare's Q5: a fixed body (all a load tool such as oha sends)
// would record the same influence again and be refused. Built on autocannon.
//   node load-distinct.mjs URL CONNECTIONS SECONDS QUERYFILE PAIRSFILE START [HEADER...]
// QUERYFILE holds {"query": ..., "variables": {...}}; each request sets
// variables.from and variables.to from the next line "FROM TO" of PAIRSFILE,
// starting at line START. Prints one JSON line: rps, p50 and p99 in ms,
// errors (transport errors, non-2xx answers and answers carrying GraphQL
// errors), requests, and `next`, the first unused line (past the end, pairs repeat).
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const [url, connections, seconds, queryFile, pairsFile, start, ...headerArgs] = process.argv.slice(2);
const template = JSON.parse(readFileSync(queryFile, "utf8"));
const pairs = readFileSync(pairsFile, "utf8").trim().split("\n").map((line) => line.split(" "));
const headers = { "content-type": "application/json" };
for (const header of headerArgs) {
  const at = header.indexOf(":");
  headers[header.slice(0, at).trim().toLowerCase()] = header.slice(at + 1).trim();
}
let next = Number(start);
let graphqlErrors = 0;
let firstError = null;
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: "POST",
  headers,
  requests: [
    {
      setupRequest: (request) => {
        // Past the end the pairs come round again: a real server then refuses them (counted as
        // errors), and the floor, which answers anything, never runs short.
        const [from, to] = pairs[next++ % pairs.length];
        return { ...request, body: JSON.stringify({ ...template, variables: { ...template.variables, from, to } }) };
      },
      onResponse: (status, body) => {
        if (status === 200 && body.includes('"errors"')) {
          graphqlErrors++;
          firstError ??= body.slice(0, 300);
        }
      },
    },
  ],
});
console.log(
  JSON.stringify({
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx + graphqlErrors,
    requests: result.requests.total,
    next,
    firstError,
  }),
);
