-- wrk script for the per-core bench's paced rounds: each connection waits
-- this many milliseconds after a response before it sends its next request,
-- so both proxies carry about the same load, well below either's maximum.
-- Usage: wrk -t1 -c32 -d10s --latency -s bench/pace.lua URL -- GAP_MS
local gap = 0
function init(args) gap = assert(tonumber(args[1]), "usage: wrk ... -s bench/pace.lua URL -- GAP_MS") end
function delay() return gap end
