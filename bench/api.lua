-- wrk script: each request adds a new, unique reader through the JSON API
-- with the token in $GAZETTE_BENCH_TOKEN.
local counter = 0
local threads = {}
local token = os.getenv("GAZETTE_BENCH_TOKEN")

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = "a" .. id .. "-" .. tostring(math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local body = '{"email":"' .. prefix .. "-" .. counter .. '@example.com","name":"Reader ' .. counter .. '"}'
  return wrk.format("POST", "/api/v1/subscribers", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d non2xx=%d socket_errors=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
