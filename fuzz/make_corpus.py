#!/usr/bin/env python3
# make_corpus.py - writes the seed corpus of the protocol fuzzer: one valid message of each type (and a few
# near misses). Run it again after changing the protocol (src/multiapp/protocol.hpp has the layout).
import os
import struct
import sys

MAGIC, VERSION = 0x444C4B53, 1
REGISTER, UNREGISTER, QUERY, REGISTERED, UNREGISTERED, STATE, ERROR = 1, 2, 3, 0x81, 0x82, 0x83, 0x84


def msg(mtype, body, magic=MAGIC, version=VERSION):
    return struct.pack("<IHHII", magic, version, mtype, len(body), 0) + body


def register(cls, name, demand, pid):
    return struct.pack("<BBHI", cls, len(name), demand, pid) + name


seeds = {
    "register_lc": msg(REGISTER, register(0, b"memcached", 2, 4242)),
    "register_be": msg(REGISTER, register(1, b"batch.job-7_x", 64, 1)),
    "register_longest_name": msg(REGISTER, register(1, b"n" * 32, 1, 99)),
    "unregister": msg(UNREGISTER, struct.pack("<II", 3, 7)),
    "query": msg(QUERY, b""),
    "registered": msg(REGISTERED, struct.pack("<IIBBBBII", 2, 5, 1, 3, 19, 16, 1, 0xDEADBEEF) + struct.pack("<3H", 0, 1, 7)),
    "registered_no_cores": msg(REGISTERED, struct.pack("<IIBBBBII", 0, 1, 0, 0, 19, 16, 1, 1)),
    "unregistered": msg(UNREGISTERED, struct.pack("<II", 3, 7)),
    "state": msg(STATE, struct.pack("<IIIHBB", 321, 0xABCD, 1, 2, 4, 18)),
    "error": msg(ERROR, struct.pack("<HH", 22, 26) + b"all 16 app slots are taken"),
    "near_bad_version": msg(QUERY, b"", version=2),
    "near_trailing": msg(REGISTER, register(0, b"app", 1, 1) + b"\0"),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
