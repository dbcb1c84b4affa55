// Drives a GraphQL mutation with a different pair of ids in every request, for
// scripts/bench-compare's Q5: a fixed body (all a load tool such as oha sends)
// would record the same influence again and be refused. Built on autocannon.
//   node load-distinct.mjs URL CONNECTIONS SECONDS QUERYFILE PAIRSFILE START [HEADER...]
// QUERYFILE holds {"query": ..., "variables": {...}}; each request sets
// variables.from and variables.to from the next line "FROM TO" of PAIRSFILE,
// starting at line START. Prints one JSON line: rps, p50 and p99 in ms,
// errors (transport errors, non-2xx answers and answers carrying GraphQL
// errors), requests, `next`, the first unused line, and `ranOut`: whether the
// pairs ran out first, which ends the run early (a pair sent twice would be
// refused by a real server, an error of the harness's, not the server's).
// With REPEAT_PAIRS=1 (the floor, which answers anything) they go round again.
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
const repeat = process.env.REPEAT_PAIRS === "1";
let ranOut = false;
// Answers to requests that had a pair of their own, and when the pairs ran out: a run cut short
// reports its own rate over that time, not autocannon's, which counts the requests sent after.
let answered = 0;
const startedAt = Date.now();
let ranOutAt = null;
// autocannon sets up the first requests while it is made, before `instance` is assigned.
let instance = null;
instance = autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: "POST",
  headers,
  requests: [
    {
      setupRequest: (request) => {
        if (next >= pairs.length && !ranOut && !repeat) {
          ranOut = true;
          ranOutAt = Date.now();
          instance?.stop();
        }
        // A request set up while the run stops goes round the pairs again; its answer is not
        // counted.
        const [from, to] = pairs[next++ % pairs.length];
        return { ...request, body: JSON.stringify({ ...template, variables: { ...template.variables, from, to } }) };
      },
      onResponse: (status, body) => {
        if (ranOut) {
          return;
        }
        answered++;
        if (status === 200 && body.includes('"errors"')) {
          graphqlErrors++;
          firstError ??= body.slice(0, 300);
        }
      },
    },
  ],
});
if (ranOut) {
  instance.stop();
}
const result = await instance;
console.log(
  JSON.stringify({
    rps: ranOut ? answered / Math.max((ranOutAt - startedAt) / 1000, 0.001) : result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx + graphqlErrors,
    requests: ranOut ? answered : result.requests.total,
    next: repeat ? next % pairs.length : Math.min(next, pairs.length),
    ranOut,
    firstError,
  }),
);
