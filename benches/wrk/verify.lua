-- wrk script: every call posts the same verification request ($BODY_FILE) with the verifier's
-- token ($VERIFIER_TOKEN); counts the answers that accept, and reports any other.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  token = os.getenv("VERIFIER_TOKEN")
  accepted = 0
  other = 0
end

function request()
  return wrk.format("POST", "/api/v1/verify",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, resp)
  if status == 200 and string.find(resp, '"decision":"accept"', 1, true) then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    o = o + t:get("other")
  end
  io.write(string.format("accepted %d, other %d, %.0f accepted/s, p50 %.1f ms, p99 %.1f ms\n",
    a, o, a / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
