-- wrk script: cycles through the requests in $REQUESTS_FILE, one per line, either
--   GET /path
--   POST /path HEXBODY      (sent as application/ocsp-request)
-- Every request is formatted once, at start-up, so the load generator costs the same whatever
-- the method.

-- wrk's default resolve() opens and closes a test connection before the run. An OpenSSL 3.0
-- `openssl ocsp -multi` worker that accepts a connection closed without a request spins on it at
-- 100% CPU and serves nothing more, which would leave OpenSSL's responder one worker short and one
-- core busy for the whole run. Look the address up without the test connection.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
function init(args)
  reqs = {}
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    local method, path, hex = line:match("^(%S+)%s+(%S+)%s*(%S*)$")
    if method == "POST" then
      local body = hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
      table.insert(reqs, wrk.format("POST", path, { ["Content-Type"] = "application/ocsp-request" }, body))
    elseif method then
      table.insert(reqs, wrk.format(method, path))
    end
  end
  pos = math.random(#reqs)
end

function request()
  pos = pos % #reqs + 1
  return reqs[pos]
end
