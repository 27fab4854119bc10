-- wrk script: GET /ocsp/{base64url request}, cycling through the requests in $PATHS_FILE (one
-- path per line; a mix of good and revoked certificates).
function init(args)
  paths = {}
  for line in io.lines(os.getenv("PATHS_FILE")) do
    table.insert(paths, line)
  end
  pos = math.random(#paths)
end

function request()
  pos = pos % #paths + 1
  return wrk.format("GET", paths[pos])
end
