-- wrk script: every request carries one valid key, spread over all the keys.
-- Each wrk thread reads the key file ($KW_BENCH_KEYS, one full key a line) and builds one
-- request per key once (Authorization: Bearer <key>). By default it shuffles them and sends
-- them in turn: every key equally often. With KW_BENCH_ZIPF=s (e.g. 1.0) it sends a sequence of
-- max(keys, 500 000) requests drawn from a Zipf distribution of exponent s over the keys in a
-- random order (the key of rank r weighs 1/r^s): a few keys make most requests, as customers
-- of an API do.
-- done() prints one JSON line (prefix "RESULT ") with the counts and wrk's latency figures.
local requests = {}
local sequence = requests
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
  local s = tonumber(os.getenv("KW_BENCH_ZIPF") or "")
  if s and s > 0 then
    local cdf, total = {}, 0
    for r = 1, n do
      total = total + r ^ -s
      cdf[r] = total
    end
    sequence = {}
    local m = math.max(n, 500000)
    for j = 1, m do
      local u, lo, hi = math.random() * total, 1, n
      while lo < hi do -- the first rank whose cumulative weight reaches u
        local mid = math.floor((lo + hi) / 2)
        if cdf[mid] < u then lo = mid + 1 else hi = mid end
      end
      sequence[j] = requests[lo]
    end
    n = m
  end
end

function request()
  i = i % n + 1
  return sequence[i]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
