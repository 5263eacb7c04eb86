#!/usr/bin/env python3
"""A plain ZeroMQ client without keys, in the Python standard library (pyzmq is not
a dependency): it speaks the ZMTP 3.0 greeting with the NULL mechanism, as any
unencrypted ZeroMQ socket does, and reports what the server answered. Run inside an
outsider's network namespace as
  zmtp_probe.py HOST PORT
it prints one JSON line: {"mechanism": the server's, "admitted": whether the server
answered our NULL handshake with a READY of its own instead of closing the connection}.
"""
import json
import socket
import struct
import sys

TIMEOUT_S = 5


def greeting(mechanism):
    # signature, version 3.0, mechanism (20 bytes, NUL-padded), as-server 0, filler.
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + mechanism.ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def null_ready():
    # A short command frame: flags 0x04, size, "\x05READY", then the Socket-Type property.
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    return bytes([0x04, len(body)]) + body


def probe(host, port):
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
        # The signature first: libzmq answers with its whole greeting only then (were
        # everything sent at once, it would close on the mechanism before flushing it).
        ours = greeting(b"NULL")
        sock.sendall(ours[:11])
        theirs = read_exactly(sock, 64)
        sock.sendall(ours[11:])
        if len(theirs) < 64:
            return {"mechanism": None, "admitted": False}
        mechanism = theirs[12:32].rstrip(b"\x00").decode("ascii", "replace")
        sock.sendall(null_ready())
        try:
            reply = sock.recv(64)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        return {"mechanism": mechanism, "admitted": b"READY" in reply}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]))))
