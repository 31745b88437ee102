-- wrk: POST the JSON in $BODY (with $AUTH as the Authorization header). With $PATHS (paths
-- separated by spaces) each request goes to the next path of its thread's share, so requests
-- spread over many conversations (a conversation takes one turn at a time).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("AUTH")

local paths = {}
for p in (os.getenv("PATHS") or ""):gmatch("%S+") do
  paths[#paths + 1] = p
end
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
function request()
  if #paths == 0 then
    return wrk.format()
  end
  n = n + 1
  return wrk.format(nil, paths[((n * 2 + (tid or 0)) % #paths) + 1])
end
