#!/usr/bin/env python3
"""Write the committed seed corpus under fuzz/seeds/<target>/.

    python3 fuzz/make_seeds.py                 # spec vectors only
    python3 fuzz/make_seeds.py --capture LABEL PORT  # plus raw replies of a running server

The capture mode sends commands over a raw socket to a throwaway server on 127.0.0.1:PORT
(LABEL prefixes the seed names, e.g. valkey8 or redis7)
(started with --save '' --enable-debug-command yes) and saves the exact reply bytes.
"""
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# RESP2/RESP3 vectors from the specifications: every type, nulls, streamed forms,
# attributes, pushes, plus pipelines and a few malformed shapes.
SPEC = {
    "simple": b"+OK\r\n",
    "simple-empty": b"+\r\n",
    "error": b"-ERR unknown command 'x'\r\n",
    "error-moved": b"-MOVED 3999 127.0.0.1:6381\r\n",
    "int": b":1000\r\n",
    "int-neg": b":-42\r\n",
    "int-max": b":9223372036854775807\r\n",
    "int-min": b":-9223372036854775808\r\n",
    "bulk": b"$5\r\nhello\r\n",
    "bulk-empty": b"$0\r\n\r\n",
    "bulk-crlf-inside": b"$4\r\na\r\nb\r\n",
    "bulk-null": b"$-1\r\n",
    "array": b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
    "array-empty": b"*0\r\n",
    "array-null": b"*-1\r\n",
    "array-mixed": b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
    "array-nested": b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
    "array-with-null": b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n",
    "null": b"_\r\n",
    "bool-true": b"#t\r\n",
    "bool-false": b"#f\r\n",
    "double": b",1.23\r\n",
    "double-exp": b",1.5e-10\r\n",
    "double-int": b",10\r\n",
    "double-inf": b",inf\r\n",
    "double-neg-inf": b",-inf\r\n",
    "double-nan": b",nan\r\n",
    "bignum": b"(3492890328409238509324850943850943825024385\r\n",
    "bignum-neg": b"(-3492890328409238509324850943850943825024385\r\n",
    "bulk-error": b"!21\r\nSYNTAX invalid syntax\r\n",
    "verbatim": b"=15\r\ntxt:Some string\r\n",
    "map": b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    "map-any-keys": b"%2\r\n*1\r\n:1\r\n#t\r\n_\r\n,1.5\r\n",
    "set": b"~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
    "attribute": (
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
        b"*2\r\n:2039123\r\n:9543892\r\n"
    ),
    "attribute-in-array": b"*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
    "push": b">4\r\n+pubsub\r\n+message\r\n+somechannel\r\n+this is the message\r\n",
    "push-invalidate": b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n",
    "streamed-string": b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",
    "streamed-array": b"*?\r\n:1\r\n:2\r\n:3\r\n.\r\n",
    "streamed-map": b"%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
    "streamed-set": b"~?\r\n+a\r\n.\r\n",
    "pipeline": b"+OK\r\n:1\r\n$3\r\nfoo\r\n*1\r\n_\r\n",
    # Malformed and hostile shapes.
    "bad-type": b"?foo\r\n",
    "bad-int": b":12a\r\n",
    "bare-lf": b"+OK\n",
    "cr-no-lf": b"+OK\rX",
    "bulk-no-crlf": b"$3\r\nfooXX",
    "bulk-huge": b"$4294967296\r\n",
    "bulk-len-overflow": b"$99999999999999999999999\r\n",
    "array-huge": b"*10000000\r\n",
    "deep": b"*1\r\n" * 200 + b":1\r\n",
    "bulk-neg2": b"$-2\r\n",
    "verbatim-short": b"=3\r\ntxt\r\n",
    "push-nested": b"*1\r\n>1\r\n+x\r\n",
    "end-outside": b".\r\n",
    "chunk-outside": b";3\r\nabc\r\n",
    "streamed-map-odd": b"%?\r\n+a\r\n.\r\n",
    "incomplete": b"*3\r\n$3\r\nfoo\r\n:4",
}

# Inputs for the roundtrip builder (see build_value in src/lib.rs): a chunk-size byte, then
# choices. Tags: 0 nil, 1 simple, 2 error, 3 int, 4 bulk, 5 bool, 6 double, 7 bignum,
# 8 verbatim, 9 array, 10 set, 11 map, 12 attribute, 13 push.
ROUNDTRIP = {
    "nested": bytes([0, 9, 5, 1, 3]) + b"abc" + bytes([3] + [1] * 8 + [6, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 4, 2]) + b"xy" + bytes([11, 2, 5, 1, 7, 0, 3, 1, 2, 3]),
    "push-attr": bytes([7, 12, 1, 1, 2]) + b"kv" + bytes([1, 1]) + b"w" + bytes([13, 7]) + b"message" + bytes([2, 8, 3]) + b"txt" + bytes([5]) + b"hello",
    "doubles": bytes([0x61, 9, 4, 6, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 6, 0x80] + [0] * 7 + [6, 0x7f, 0xf0] + [0] * 6 + [6] + [0] * 7 + [1]),
    "error-crlf": bytes([0x23, 2, 12]) + b"ERR a\r\nb c\n",
    "all-tags": bytes([0x45, 9, 14] + list(range(15)) * 3),
    "command": bytes([0, 0, 3]) + b"SET" + bytes([1]) + b"k" + bytes([5]) + b"v\r\nv\x00",
}

URLS = [
    "redis://localhost",
    "redis://127.0.0.1:6380/2",
    "rediss://app:s%3Acret@cache.example:6380/2?protocol=resp2&read_timeout=1.5s",
    "valkey://user@host:1/0?client_name=app&connect_timeout=250ms&write_timeout=none",
    "valkeys://[::1]:7000?tls_server_name=x.example&tls_ca_file=%2Ftmp%2Fca.pem#insecure",
    "rediss://h?tls_client_cert_file=c.pem&tls_client_key_file=k.pem&tls_insecure=false",
    "unix:///run/valkey.sock?db=3",
    "redis+unix://:pw@/tmp/v%20k.sock?protocol=3",
    "valkey+unix:///tmp/s?name=n&read_timeout=0",
    "redis://:p%40ss@h/15?db=1",
    "REDIS://h",
    "redis://h:99999",
    "redis://h:abc",
    "redis://u:p/ss@h",
    "redis://[::1",
    "redis://h/01",
    "redis://h?read_timeout=1m&read_timeout=2s",
]

ENVS = [
    ["", "cache.internal", "6380", "app", "secret", "3", "yes"],
    ["", "[::1]", "1", "", "", "0", "off"],
    ["redis://u:p@h:1/2", "ignored", "", "", "", "", ""],
    ["", "bad host", "x", "", "pw", "-1", "maybe"],
]


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def resp_decode_seeds(name, data):
    write("decode", name, data)
    # decode_chunked: byte 0 picks the chunk sizes (1-byte, 7-byte, a split, random sizes).
    for sel in (0x00, 0x06, 0x70, 0xe7):
        write("decode_chunked", f"{name}-{sel:02x}", bytes([sel]) + data)


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def capture(port):
    """Send each command on one RESP3 connection; save each reply's raw bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)

    def roundtrip(*args, settle=0.3):
        s.sendall(command(*args))
        time.sleep(settle)
        s.settimeout(0.3)
        data = b""
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        return data

    replies = {}
    replies["hello3"] = roundtrip("HELLO", "3")
    roundtrip("FLUSHALL")
    roundtrip("HSET", "h", "f1", "v1", "f2", "v2", "f3", "3")
    roundtrip("SADD", "s", "a", "b", "c", "d")
    for i in range(50):
        roundtrip("SET", f"k{i}", "v" * i, settle=0)
    roundtrip("PING")  # drain
    replies["info"] = roundtrip("INFO")
    replies["client-list"] = roundtrip("CLIENT", "LIST")
    replies["hgetall-map"] = roundtrip("HGETALL", "h")
    replies["smembers-set"] = roundtrip("SMEMBERS", "s")
    replies["config-get-all"] = roundtrip("CONFIG", "GET", "*")
    replies["mget-big"] = roundtrip("MGET", *[f"k{i}" for i in range(60)])
    for t in ["attrib", "bignum", "verbatim", "double", "true", "false", "null", "map",
              "set", "push"]:
        replies[f"debug-protocol-{t}"] = roundtrip("DEBUG", "PROTOCOL", t)
    replies["subscribe-push"] = roundtrip("SUBSCRIBE", "ch")
    s.close()
    return replies


def main():
    for name, data in SPEC.items():
        resp_decode_seeds(name, data)
    for name, data in ROUNDTRIP.items():
        write("roundtrip", name, data)
    for i, url in enumerate(URLS):
        write("url", f"url-{i:02d}", bytes([0]) + url.encode())
        # The same URL with a spliced password (mode 2).
        tail = url.split("://", 1)[1].split("@", 1)[-1]
        write("url", f"pw-{i:02d}", bytes([2]) + b"pa%2Fss\x00" + tail.encode())
    # A URL without '@' whose "port" is the password (mode 2 with the top bit set):
    # `valkey://u:<pw><tail>` and `unix://u:<pw><tail>`.
    for i, tail in enumerate(["", "/0", "?db=1", ":6379", "#insecure", "@localhost"]):
        for scheme in (0, 1):
            mode = 0x80 | scheme << 2 | 2
            write("url", f"pw-noat-{i}-{scheme}", bytes([mode]) + b"secret\x00" + tail.encode())
    for i, env in enumerate(ENVS):
        write("url", f"env-{i}", bytes([0xff]) + "\x00".join(env).encode())
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--capture":
        label, port = args[1], int(args[2])
        for name, data in capture(port).items():
            if data:
                resp_decode_seeds(f"{label}-{name}", data)
                print(f"{label}-{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
