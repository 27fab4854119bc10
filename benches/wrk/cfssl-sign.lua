-- wrk script: every call posts the same authenticated sign request ($BODY_FILE) to CFSSL's
-- /api/v1/cfssl/authsign; counts the answers that carry a certificate.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  signed = 0
  other = 0
end

function request()
  return wrk.format("POST", "/api/v1/cfssl/authsign", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, resp)
  if status == 200 and string.find(resp, '"certificate":"-----BEGIN CERTIFICATE', 1, true) then
    signed = signed + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, o = 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("signed")
    o = o + t:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("signed %d in %.2f s: %.0f certificates/s; failed %d; p50 %.1f ms, p99 %.1f ms\n",
    s, seconds, s / seconds, o, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
