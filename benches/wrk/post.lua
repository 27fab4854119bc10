-- wrk script: every call posts the same body ($BODY_FILE, JSON) to $POST_PATH, with
-- "Authorization: Bearer $TOKEN" when TOKEN is set; counts the answers that are 200 and contain
-- $MATCH (reported as $COUNT_WORD, "matched" by default), and reports any other.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  path = assert(os.getenv("POST_PATH"), "POST_PATH")
  match = assert(os.getenv("MATCH"), "MATCH")
  headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  matched = 0
  other = 0
  -- Formatted once: the client takes its share of the same cores as the server.
  req = wrk.format("POST", path, headers, body)
end

function request()
  return req
end

function response(status, hdrs, resp)
  if status == 200 and string.find(resp, match, 1, true) then
    matched = matched + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local m, o = 0, 0
  for _, t in ipairs(threads) do
    m = m + t:get("matched")
    o = o + t:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("%s %d, other %d, %.0f/s, p50 %.1f ms, p99 %.1f ms\n",
    os.getenv("COUNT_WORD") or "matched", m, o, m / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
