#!/usr/bin/env python3
"""A pcap of N one-packet ICMP echo requests, each from a new source MAC and IPv4 address (as a
flood or a scan makes), all to 10.0.0.1: the capture-memory benchmark's input.
   usage: python3 bench/gen_distinct_sources.py OUT N"""
import struct
import sys

out, n = sys.argv[1], int(sys.argv[2])
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(n):
        src = struct.pack(">I", (0x0A << 24) + (i % (1 << 24)))
        frame = bytes([2, 0, 0, 0, 0, 1, 2, 0xAA]) + src + b"\x08\x00"
        frame += bytes([0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 1, 0, 0]) + src + bytes([10, 0, 0, 1])
        frame += bytes(8)
        f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(frame), len(frame)))
        f.write(frame)
