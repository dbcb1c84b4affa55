-- POSTs the GraphQL request in $BODY and counts responses that carry errors.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"

local errors = 0
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms requests=%d graphql_errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests, errors))
end
