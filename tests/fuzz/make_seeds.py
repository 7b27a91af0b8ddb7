#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (tests/fuzz/corpus/<target>/).

Small hand-made valid inputs, one file each; binary formats (msgpack, the log record, WebSocket
frames) are encoded here so that the seeds stay reviewable as source. Run from anywhere:
`python3 tests/fuzz/make_seeds.py` (idempotent; it rewrites the generated files).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# -- a minimal msgpack encoder (seeds only) ---------------------------------------------------


def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


PLAY = {"type": "play", "device_id": "tv-1", "profile_id": "p-1", "ts": 1732233600000,
        "title_id": "t-42", "position_ms": 0}
ERROR = {"type": "error", "device_id": "tv-1", "ts": "2024-11-22T00:00:05Z", "code": "E42"}
CLICK = {"id": "c-1", "type": "click", "device_id": "web-3", "ts": 1732233600123,
         "player": {"codec": "h264", "bitrate": 4500}, "tags": ["a", "b"], "ratio": 0.25,
         "ok": True, "none": None}
BAD = {"type": "play", "ts": 5}  # no device_id: rejected by index

JSON_SEEDS = {
    "one_event.json": '{"type":"play","device_id":"tv-1","profile_id":"p-1","ts":1732233600000,"title_id":"t-42","position_ms":0}',
    "array.json": '[{"type":"play","device_id":"tv-1","profile_id":"p-1","ts":1732233600000,"title_id":"t-42","position_ms":0},\n'
                  ' {"type":"error","device_id":"tv-1","ts":"2024-11-22T00:00:05Z","code":"E42"}]',
    "batch_id.json": '{"events":[{"id":"c-1","type":"click","device_id":"web-3","ts":1732233600123,"player":{"codec":"h264","bitrate":4500},"tags":["a","b"],"ratio":0.25,"ok":true,"none":null}],"batch":17}',
    "batch_string_id.json": '{"batch":"abc","events":[{"type":"play","ts":5},{"type":"stop","device_id":"d","ts":"2024-02-29T23:59:59.123+01:00"}]}',
    "escapes.json": '[{"type":"billing","device_id":"d\\u00e9\\n\\"q\\"","ts":1,"amount":-12.5e3,"big":18446744073709551615,"neg":-9223372036854775808,"s":"\\ud83d\\ude00"}]',
    "malformed.json": '[{"type":"play","device_id":"tv-1","ts":1,}',
}

for name, text in JSON_SEEDS.items():
    write("json", name, text)

write("msgpack", "one_event.mp", mp(PLAY))
write("msgpack", "array.mp", mp([PLAY, ERROR, CLICK, BAD]))
write("msgpack", "batch.mp", mp({"events": [CLICK, PLAY], "batch": 17}))
write("msgpack", "batch_string_id.mp", mp({"batch": "abc", "events": [ERROR]}))
write("msgpack", "binary_attr.mp", mp([dict(PLAY, blob=b"\x00\x01\xff", f=1.5, n=-7)]))

# -- log records: one msgpack array per event, of 7 (9 when forwarded) -------------------------


def log_event(id_, type_, device, profile, ts, ingest, attrs):
    return (b"\x97" + mp(id_) + mp(type_) + mp(device) + (mp(profile) if profile else b"\xc0")
            + mp(ts) + mp(ingest) + mp(attrs))


attrs_play = mp({"title_id": "t-42", "position_ms": 0})
attrs_click = mp({"player": {"codec": "h264", "bitrate": 4500}, "tags": ["a", "b"], "ok": True})
write("log_record", "one.rec", log_event("e-1", "play", "tv-1", "p-1", 1732233600000, 1732233600001, attrs_play))
write("log_record", "three.rec",
      log_event("e-1", "play", "tv-1", "p-1", 1, 2, attrs_play)
      + log_event("e-2", "click", "web-3", None, 3, 4, attrs_click)
      + log_event("e-3", "error", "tv-1", "p-2", 5, 6, b""))


# A forwarded event (cluster) is the 7 fields then origin and origin_offset: an array of 9.
def forwarded_event(id_, type_, device, profile, ts, ingest, attrs, origin, origin_offset):
    return b"\x99" + log_event(id_, type_, device, profile, ts, ingest, attrs)[1:] + mp(origin) + mp(origin_offset)


write("log_record", "forwarded.rec",
      log_event("e-1", "play", "tv-1", "p-1", 1, 2, attrs_play)
      + forwarded_event("e-2", "click", "web-3", None, 3, 4, attrs_click, "node-2", 17)
      + forwarded_event("e-3", "stop", "tv-1", "p-2", 5, 6, b"", "node-3", 2**40))

# -- HTTP requests ------------------------------------------------------------------------------


def post(path, ctype, body, extra=""):
    if isinstance(body, str):
        body = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


write("http", "post_json.http", post("/v1/events", "application/json", JSON_SEEDS["array.json"],
                                     "User-Agent: Mozilla/5.0 (SMART-TV; Tizen)\r\nX-Forwarded-For: 203.0.113.9\r\n"))
write("http", "post_msgpack.http", post("/v1/events", "application/msgpack; charset=binary", mp([PLAY, BAD])))
write("http", "post_batch.http", post("/v1/events?x=1", "Application/JSON", JSON_SEEDS["batch_id.json"]))
chunked = JSON_SEEDS["one_event.json"].encode()
write("http", "post_chunked.http",
      b"POST /v1/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      + b"%x\r\n" % 10 + chunked[:10] + b"\r\n" + b"%x\r\n" % (len(chunked) - 10) + chunked[10:] + b"\r\n0\r\n\r\n")
write("http", "post_text.http", post("/v1/events", "text/plain", "hello"))
write("http", "get_schema.http", "GET /v1/schemas/play HTTP/1.1\r\nHost: h\r\n\r\n")
write("http", "get_schemas_pipelined.http",
      "GET /v1/schemas HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/schemas/pl%61y%2F HTTP/1.1\r\nHost: h\r\n\r\n"
      "DELETE /v1/schemas HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
write("http", "get_query.http",
      "GET /v1/profiles/p%201/watch-time?from=2024-11-01&to=2024-11-22&a+b=c%26d&x HTTP/1.1\r\n"
      "Host: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
write("http", "get_trending.http", "GET /v1/trending?window=15m&k=10 HTTP/1.1\r\nHost: h\r\n\r\n")
write("http", "put_routes.http", post("/v1/admin/routes", "text/plain",
                                      '[routes.errors]\nwhen = "type == \\"error\\""\nsinks = ["errors"]\n').replace(b"POST", b"PUT", 1))
write("http", "upgrade.http",
      "GET /v1/stream HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
write("http", "get_events.http", "GET /v1/events HTTP/1.0\r\n\r\n")

# -- WebSocket frames (client to server: masked) ----------------------------------------------


def frame(opcode, payload, fin=True, key=b"\x00\x00\x00\x00"):
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


TEXT, BINARY, CONT, CLOSE, PING = 1, 2, 0, 8, 9
write("ws", "text.ws", frame(TEXT, JSON_SEEDS["array.json"]))
write("ws", "binary.ws", frame(BINARY, mp([PLAY, ERROR, BAD])))
write("ws", "batch_then_close.ws", frame(TEXT, JSON_SEEDS["batch_id.json"]) + frame(CLOSE, b"\x03\xe8bye"))
body = JSON_SEEDS["array.json"].encode()
write("ws", "fragments_and_ping.ws",
      frame(TEXT, body[:20], fin=False) + frame(PING, "p") + frame(CONT, body[20:]))
write("ws", "masked_key.ws", frame(BINARY, mp({"events": [CLICK], "batch": "b-1"}), key=b"\x12\x34\x56\x78"))
write("ws", "malformed.ws", frame(TEXT, JSON_SEEDS["malformed.json"]) + frame(TEXT, "[]"))

# -- routes (INI text) and predicates -------------------------------------------------------------

write("routes", "errors.ini",
      '[routes.errors]\nwhen = "type == \\"error\\" and attrs.code matches \\"^E[0-9]+$\\""\n'
      'sinks = ["errors", "lake"]\ndrop = ["debug"]\nhash = ["profile_id"]\npii = "hash"\n\n'
      '[routes._unmatched]\nsinks = ["analytics", "lake"]\n')
write("routes", "actions.ini",
      '[routes.10-play]\nwhen = "type in [\\"play\\", \\"pause\\"] and exists player.codec"\n'
      'sinks = ["analytics"]\nkeep = ["title_id", "player.codec", "items.sku"]\nmask = ["device_id"]\n'
      'rename = ["player.codec:video_codec"]\n\n'
      '[routes.20-all]\nwhen = "not (ts < 0) or attrs.ratio >= 0.5"\nsinks = ["archive"]\n'
      'drop = ["email", "items.sku", "profile_id"]\nmask = ["tags"]\npii = "off"\n')
write("routes", "bad_when.ini", '[routes.x]\nwhen = "type = \'error\'"\nsinks = ["errors"]\n')
write("routes", "predicate1.txt", 'type == "error" and attrs.code matches "^E[0-9]+$"')
write("routes", "predicate2.txt",
      "(profile_id != null or device_id in ['tv-1', 'web-7']) and not ts > 1732233600000 "
      "and ratio <= 0.5 and ok == true and player.bitrate >= -3.5e2 and offset < 3 and ingest_ts > 0")
write("routes", "predicate3.txt", 'email exists and message matches "card [0-9 ]+" or id == "e-3"')

# -- config files -------------------------------------------------------------------------------

for name in ("sluice.conf", "reference.conf"):
    with open(os.path.join(ROOT, "conf", name), "rb") as f:
        write("config", name, f.read())
write("config", "minimal.conf",
      '[sluice]\nnode = "n"\n[gateway]\nport = 0\nmax-batch-events = 10\n'
      '[sinks.out]\nkind = "file"\npath = "sinks/out.ndjson"\n'
      '[routes._unmatched]\nsinks = ["out"]\nmask = ["card"]\n')
write("config", "schemas.conf",
      '[schemas]\nunknown-types = "reject"\n[schemas.play]\nversion = 2\n'
      'required = ["title_id"]\n[enrich]\nenabled = true\ndevice-rules = ["tv:SmartTV|Tizen", "web:Mozilla"]\n'
      'geoip-file = ""\n[storage]\ndurability = "periodic"\nsync-interval = 250ms\n')
