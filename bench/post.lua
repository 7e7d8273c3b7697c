-- wrk script for llmgate benchmarks: POST a chat request, print machine-readable results.
--   BENCH_BODY  request body (default: a small non-streaming chat request for bench-model)
--   BENCH_AUTH  bearer token; sent as "Authorization: Bearer ..." when set
-- The done() hook prints one line starting with WRK_RESULT (latencies in microseconds).

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
  or '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f "
      .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
