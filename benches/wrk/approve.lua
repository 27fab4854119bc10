-- wrk script: each call approves the next pending request from $IDS_FILE (one id per line,
-- shared out between wrk threads); counts responses that report "issued".
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  local n = 0
  local total = tonumber(os.getenv("WRK_THREADS") or "1")
  for line in io.lines(os.getenv("IDS_FILE")) do
    if n % total == tid then
      table.insert(ids, line)
    end
    n = n + 1
  end
  pos = 0
  issued = 0
  other = 0
  token = os.getenv("APPROVER_TOKEN")
end

function request()
  pos = pos + 1
  if pos > #ids then
    -- Out of work: cheap requests that count for nothing.
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/api/v1/requests/" .. ids[pos] .. "/approve",
    { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"issued"', 1, true) then
    issued = issued + 1
  elseif body ~= "ok" then
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total, failed = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("issued")
    failed = failed + t:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("issued %d in %.2f s: %.0f certificates/s; failed %d; p50 %.1f ms, p99 %.1f ms\n",
    total, seconds, total / seconds, failed, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
