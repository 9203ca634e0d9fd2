-- wrk script for the overload scenario: counts responses by status (200, 503, other) in each
-- thread, and at the end prints one line "BENCH_JSON {...}" with the summary, the counts and the
-- latency percentiles (microseconds) of ALL responses (wrk's histogram does not split by status;
-- the bench's probe client measures 503 latency separately).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  c200 = 0
  c503 = 0
  cother = 0
end

function response(status, headers, body)
  if status == 200 then
    c200 = c200 + 1
  elseif status == 503 then
    c503 = c503 + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local n200, n503, nother = 0, 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + t:get("c200")
    n503 = n503 + t:get("c503")
    nother = nother + t:get("cother")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"status":{"200":%d,"503":%d,"other":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    n200, n503, nother,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
