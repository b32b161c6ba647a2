--[[ commsease.resty.http -- one HTTP/1.1 POST over an nginx cosocket (OpenResty).

syntax: status, body, headers = http.request(job, o)
        on failure: nil, terr   where terr = { sent = true|false, message = "...", code = N }
        (code: libcurl's CURLcode for the same failure, as the blocking client's
        transport errors carry it; _M.CODES names them)

job: { method =, url = "http[s]://host[:port]/path", headers = { name = value },
       body =, timeout = seconds for the whole attempt }
o (all optional): connect_timeout (seconds, default 5), ssl_verify (default true),
  server_name (SNI and the name the certificate is checked against; default the
  URL's host, so an https URL with an IP address fails verification unless given),
  pool_size (default 32), keepalive_timeout (seconds, default 60), max_answer (bytes,
  default 1 MiB)

- Connections are kept alive in the worker's cosocket pool (setkeepalive), one pool
  per scheme, host, port and TLS name; TLS goes through sslhandshake with the peer
  verified against lua_ssl_trusted_certificate (ssl_verify = false turns that off).
- Answers are read with Content-Length, chunked, or until the peer closes. At most
  max_answer bytes of body are kept: a longer answer comes back cut at max_answer + 1
  bytes (so commsease.parse reports it as over the cap) and its connection is closed.
- Redirects are not followed: a 3xx is an answer like any other.
- sent = false only when nothing of the request was written (DNS, connect and TLS
  failures, a bad URL); from the first byte written on, any failure is sent = true.
- One deadline (job.timeout) bounds the whole attempt, so a peer that drips bytes
  cannot hold it longer.
]]
local ngx = ngx
local tcp = ngx.socket.tcp
local now = ngx.now
local update_time = ngx.update_time
local concat = table.concat
local tonumber, tostring, pairs = tonumber, tostring, pairs
local find, sub, lower, match = string.find, string.sub, string.lower, string.match
local floor = math.floor

local _M = {}

-- libcurl's numbers (CURLcode) for the failures this client can meet, so that a
-- transport error's code means here what it means from the blocking client
local CODES = {
  unsupported = 1,   -- CURLE_UNSUPPORTED_PROTOCOL: not http(s), or not an HTTP/1.x answer
  url = 3,           -- CURLE_URL_MALFORMAT
  resolve = 6,       -- CURLE_COULDNT_RESOLVE_HOST (cosockets: no resolver, or no such name)
  connect = 7,       -- CURLE_COULDNT_CONNECT
  weird = 8,         -- CURLE_WEIRD_SERVER_REPLY: a head this client cannot read
  partial = 18,      -- CURLE_PARTIAL_FILE: the peer closed inside the body
  timeout = 28,      -- CURLE_OPERATION_TIMEDOUT
  tls = 35,          -- CURLE_SSL_CONNECT_ERROR: the TLS handshake failed
  argument = 43,     -- CURLE_BAD_FUNCTION_ARGUMENT: a header that would split the request
  nothing = 52,      -- CURLE_GOT_NOTHING: the peer closed before a byte of the answer
  send = 55,         -- CURLE_SEND_ERROR
  recv = 56,         -- CURLE_RECV_ERROR: reset, a broken chunked body
  verify = 60,       -- CURLE_PEER_FAILED_VERIFICATION: certificate or name not accepted
}
_M.CODES = CODES

_M.MAX_ANSWER = 1024 * 1024
local MAX_HEADER_LINES = 100
local MAX_LINE = 16384

-- url -> scheme, host, port, path (nil, message when unusable)
local parsed = {}
local function parse_url(url)
  local p = parsed[url]
  if p then return p end
  local scheme, rest = match(url, "^(https?)://(.*)$")
  if not scheme then
    return nil, "not an http:// or https:// URL", match(url, "^%a[%w+.-]*://") and CODES.unsupported or CODES.url
  end
  local authority, path = match(rest, "^([^/?#]*)(.*)$")
  if path == "" then path = "/" end
  if find(authority, "@", 1, true) then return nil, "user:password@ in the URL is not supported", CODES.url end
  local host, port
  if sub(authority, 1, 1) == "[" then
    host, port = match(authority, "^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = match(authority, "^([^:@]+):?(%d*)$")
  end
  if not host or host == "" then return nil, "no host in the URL", CODES.url end
  port = tonumber(port ~= "" and port or (scheme == "https" and 443 or 80))
  if port < 1 or port > 65535 then return nil, "bad port in the URL", CODES.url end
  local default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local hosthdr = find(host, ":", 1, true) and ("[" .. host .. "]") or host
  if not default then hosthdr = hosthdr .. ":" .. port end
  p = {scheme = scheme, host = host, port = port, path = path, host_header = hosthdr}
  -- bounded: a client has at most 8 endpoints; other URLs are not kept
  local n = (parsed.n or 0)
  if n < 64 then parsed[url] = p; parsed.n = n + 1 end
  return p
end
_M.parse_url = parse_url

local function fail(sock, sent, message, code)
  if sock then sock:close() end
  return nil, {sent = sent, message = message, code = code}
end

-- the code of a cosocket read or write error: a timeout, the peer closing (closed:
-- the code for that stage), anything else (a reset) a receive failure
local function io_code(err, closed)
  if err == "timeout" then return CODES.timeout end
  if err == "closed" then return closed or CODES.recv end
  return CODES.recv
end
-- in the head (a line too long is an answer this client cannot read), in the body
local function head_code(err)
  if find(tostring(err), "^line longer") then return CODES.weird end
  return io_code(err)
end
local function body_code(err)
  if find(tostring(err), "^line longer") then return CODES.recv end
  return io_code(err, CODES.partial)
end

-- remaining milliseconds before the deadline, nil once it passed
local function left_ms(deadline)
  update_time()
  local ms = floor((deadline - now()) * 1000)
  if ms < 1 then return nil end
  return ms
end

-- The answer is read into a buffer of our own with receiveany, the deadline checked
-- before every read: a cosocket's read timeout restarts whenever a byte arrives, so a
-- peer dripping bytes would otherwise hold a line or a body read for ever.
-- rd = { sock =, deadline =, buf = unread bytes, pos = first unread }
local function fill(rd, max)
  local ms = left_ms(rd.deadline)
  if not ms then return nil, "timeout" end
  rd.sock:settimeout(ms)
  local data, err = rd.sock:receiveany(max or 65536)
  if not data then return nil, err end
  rd.got = true -- a byte of the answer came
  if rd.pos > #rd.buf then rd.buf = data
  else rd.buf = sub(rd.buf, rd.pos) .. data end
  rd.pos = 1
  return true
end

-- one line without its CRLF
local function read_line(rd)
  while true do
    local i = find(rd.buf, "\r\n", rd.pos, true)
    if i then
      local line = sub(rd.buf, rd.pos, i - 1)
      rd.pos = i + 2
      return line
    end
    if #rd.buf - rd.pos + 1 > MAX_LINE then return nil, "line longer than " .. MAX_LINE .. " bytes" end
    local ok, err = fill(rd)
    if not ok then return nil, err end
  end
end

-- n bytes appended to parts
local function read_n(rd, n, parts)
  local have = #rd.buf - rd.pos + 1
  if have >= n then
    parts[#parts + 1] = sub(rd.buf, rd.pos, rd.pos + n - 1)
    rd.pos = rd.pos + n
    return true
  end
  if have > 0 then parts[#parts + 1] = sub(rd.buf, rd.pos) end
  n = n - have
  rd.buf, rd.pos = "", 1
  while n > 0 do
    local ms = left_ms(rd.deadline)
    if not ms then return nil, "timeout" end
    rd.sock:settimeout(ms)
    local data, err = rd.sock:receiveany(n > 65536 and 65536 or n)
    if not data then return nil, err end
    parts[#parts + 1] = data
    n = n - #data
  end
  return true
end

local function build_request(job, p)
  local body = job.body or ""
  local out = {(job.method or "POST"), " ", p.path, " HTTP/1.1\r\nHost: ", p.host_header,
               "\r\nContent-Length: ", #body, "\r\n"}
  local n = #out
  for k, v in pairs(job.headers or {}) do
    local lk = lower(k)
    if lk ~= "host" and lk ~= "content-length" and lk ~= "transfer-encoding"
        and lk ~= "connection" then
      v = tostring(v)
      if find(k, "[%c: ]") or find(v, "[\r\n%z]") then
        return nil, "header " .. k .. " holds a control character"
      end
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = k, ": ", v, "\r\n"
      n = n + 4
    end
  end
  out[n + 1] = "\r\n"
  out[n + 2] = body
  return concat(out)
end

function _M.request(job, o)
  o = o or {}
  local p, perr, pcode = parse_url(job.url or "")
  if not p then return nil, {sent = false, message = perr, code = pcode} end
  local req, rerr = build_request(job, p)
  if not req then return nil, {sent = false, message = rerr, code = CODES.argument} end
  update_time()
  local timeout = job.timeout or 5
  local deadline = now() + timeout
  local cap = o.max_answer or _M.MAX_ANSWER
  local verify = o.ssl_verify ~= false
  -- the name checked against the certificate: an IP literal too (OpenSSL then finds no
  -- matching DNS name and the handshake fails), never no name at all
  local sni = o.server_name or p.host
  local tls = p.scheme == "https"

  local sock = tcp()
  local cto = o.connect_timeout or 5
  if cto > timeout then cto = timeout end
  sock:settimeout(floor(cto * 1000 + 0.5))
  local pool = p.scheme .. ":" .. p.host .. ":" .. p.port
  if tls then pool = pool .. ":" .. (sni or "") .. (verify and ":v" or ":nv") end
  local ok, err = sock:connect(p.host, p.port, {pool = pool, pool_size = o.pool_size or 32})
  if not ok then
    local code = err == "timeout" and CODES.timeout
      or find(tostring(err), "resolve", 1, true) and CODES.resolve or CODES.connect
    return fail(sock, false, "connect: " .. tostring(err), code)
  end
  local reused = sock:getreusedtimes() or 0
  if tls and reused == 0 then
    local ms = left_ms(deadline)
    if not ms then return fail(sock, false, "timeout before the TLS handshake", CODES.timeout) end
    sock:settimeout(ms)
    local sess, herr = sock:sslhandshake(false, sni, verify)
    if not sess then
      -- a verification failure comes as OpenSSL's "NN: reason" or as a name mismatch
      herr = tostring(herr)
      local code = herr == "timeout" and CODES.timeout
        or (match(herr, "^%d+: ") or find(herr, "certificate", 1, true)) and CODES.verify or CODES.tls
      return fail(sock, false, "TLS handshake: " .. herr, code)
    end
  end

  -- from here on, anything may have reached the peer
  local ms = left_ms(deadline)
  if not ms then return fail(sock, false, "timeout before sending", CODES.timeout) end
  sock:settimeout(ms)
  local bytes, serr = sock:send(req)
  if not bytes then
    return fail(sock, true, "send: " .. tostring(serr) .. (reused > 0 and " (kept-alive connection)" or ""),
                serr == "timeout" and CODES.timeout or CODES.send)
  end

  local rd = {sock = sock, deadline = deadline, buf = "", pos = 1}
  local note = reused > 0 and " (kept-alive connection)" or ""
  -- status line; 1xx answers are skipped
  local status, minor, line, lerr
  repeat
    line, lerr = read_line(rd)
    if not line then
      local code = lerr == "closed" and not rd.got and CODES.nothing or head_code(lerr)
      return fail(sock, true, "reading the status line: " .. tostring(lerr) .. note, code)
    end
    local m, st = match(line, "^HTTP/1%.(%d) (%d%d%d)")
    status, minor = tonumber(st), tonumber(m)
    if not status then return fail(sock, true, "not an HTTP/1.x status line", CODES.unsupported) end
    if status < 200 then
      local n1 = 0
      repeat -- a 1xx answer's headers, up to its empty line
        local h, herr = read_line(rd)
        if not h then return fail(sock, true, "reading a 1xx answer: " .. tostring(herr), head_code(herr)) end
        n1 = n1 + 1
        if n1 > MAX_HEADER_LINES then return fail(sock, true, "too many header lines", CODES.weird) end
      until h == ""
    end
  until status >= 200

  local headers = {}
  local clen, chunked, close = nil, false, minor == 0
  local lines = 0
  while true do
    local h, herr = read_line(rd)
    if not h then return fail(sock, true, "reading the headers: " .. tostring(herr), head_code(herr)) end
    if h == "" then break end
    lines = lines + 1
    if lines > MAX_HEADER_LINES then return fail(sock, true, "too many header lines", CODES.weird) end
    local k, v = match(h, "^([^:%s]+):[ \t]*(.-)[ \t]*$")
    if not k then return fail(sock, true, "malformed header line", CODES.weird) end
    local lk = lower(k)
    local prev = headers[lk]
    headers[lk] = prev and (prev .. ", " .. v) or v
    if lk == "content-length" then
      local n = match(v, "^%d+$") and #v <= 15 and tonumber(v)
      if not n or (clen and clen ~= n) then return fail(sock, true, "bad Content-Length", CODES.weird) end
      clen = n
    elseif lk == "transfer-encoding" then
      if lower(match(v, "([^,%s]+)%s*$") or "") == "chunked" then chunked = true else close = true end
    elseif lk == "connection" then
      local lv = lower(v)
      if find(lv, "close", 1, true) then close = true
      elseif minor == 0 and find(lv, "keep-alive", 1, true) then close = false end
    end
  end

  local parts = {}
  local over = false
  if status == 204 or status == 304 then clen, chunked = 0, false end -- no body
  if chunked then
    local total = 0
    while true do
      local szl, cerr = read_line(rd)
      if not szl then return fail(sock, true, "reading a chunk size: " .. tostring(cerr), body_code(cerr)) end
      local hex = match(szl, "^(%x+)[ \t]*;?")
      local size = hex and #hex <= 8 and tonumber(hex, 16)
      if not size then return fail(sock, true, "malformed chunk size", CODES.recv) end
      if size == 0 then
        repeat -- trailers
          local t, terr = read_line(rd)
          if not t then return fail(sock, true, "reading the trailers: " .. tostring(terr), body_code(terr)) end
        until t == ""
        break
      end
      local want = size
      if total + want > cap then want = cap + 1 - total; over = true end
      local okr, cerr2 = read_n(rd, want, parts)
      if not okr then return fail(sock, true, "reading a chunk: " .. tostring(cerr2), body_code(cerr2)) end
      total = total + want
      if over then break end
      local crlf, cerr3 = read_line(rd)
      if crlf ~= "" then
        return fail(sock, true, "reading a chunk: " .. (crlf and "no CRLF after the data" or tostring(cerr3)),
                    crlf and CODES.recv or body_code(cerr3))
      end
    end
  elseif clen then
    local want = clen
    if want > cap then want = cap + 1; over = true end
    local okr, berr = read_n(rd, want, parts)
    if not okr then
      return fail(sock, true, "reading the body (" .. clen .. " bytes announced): " .. tostring(berr),
                  body_code(berr))
    end
  else
    -- until the peer closes
    close = true
    local total = #rd.buf - rd.pos + 1
    if total > 0 then parts[1] = sub(rd.buf, rd.pos) end
    while total <= cap do
      local left = left_ms(deadline)
      if not left then return fail(sock, true, "reading the body: timeout", CODES.timeout) end
      sock:settimeout(left)
      local data, berr = sock:receiveany(65536)
      if not data then
        if berr == "closed" then break end
        return fail(sock, true, "reading the body: " .. tostring(berr), io_code(berr))
      end
      parts[#parts + 1] = data
      total = total + #data
    end
    if total > cap then
      local body = concat(parts)
      sock:close()
      return status, sub(body, 1, cap + 1), headers
    end
  end
  if rd.pos <= #rd.buf then close = true end -- bytes beyond the answer: not reusable

  if close or over then
    sock:close()
  else
    sock:setkeepalive(floor((o.keepalive_timeout or 60) * 1000), o.pool_size or 32)
  end
  return status, concat(parts), headers
end

return _M
