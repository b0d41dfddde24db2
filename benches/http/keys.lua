-- wrk script: every request carries one valid key, spread over all the keys.
-- Each wrk thread reads the key file ($KW_BENCH_KEYS, one full key a line), builds one
-- request per key once (Authorization: Bearer <key>), shuffles them, and sends them in turn.
-- done() prints one JSON line (prefix "RESULT ") with the counts and wrk's latency figures.
local requests = {}
local n, i = 0, 0

function init(args)
  math.randomseed(os.time() * 1000 + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 1000)
  for key in io.lines(os.getenv("KW_BENCH_KEYS")) do
    n = n + 1
    requests[n] = wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. key })
  end
  for j = n, 2, -1 do -- Fisher-Yates
    local k = math.random(j)
    requests[j], requests[k] = requests[k], requests[j]
  end
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
