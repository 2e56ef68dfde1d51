#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/:
an nginx-like request, GET_VALUES, the FastCGI spec's Appendix B flows,
4-byte name-value lengths and a pair split across two PARAMS records.
Each seed follows its target's input layout (see the top of each target).
Run once, then fuzz and minimise (`cargo fuzz cmin`); the committed corpus
is the minimised one."""

import os
import struct

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA, GET_VALUES = range(1, 10)
RESPONDER, AUTHORIZER, FILTER = 1, 2, 3


def length(n):
    return bytes([n]) if n < 0x80 else struct.pack(">I", n | 0x80000000)


def pair(name, value):
    return length(len(name)) + length(len(value)) + name + value


def pairs(items):
    return b"".join(pair(n, v) for n, v in items)


def record(kind, rid, content=b"", padding=None, version=1):
    if padding is None:
        padding = -len(content) % 8
    head = struct.pack(">BBHHBB", version, kind, rid, len(content), padding, 0)
    return head + content + b"\0" * padding


def begin_body(role, keep_conn=False):
    return struct.pack(">HB5x", role, 1 if keep_conn else 0)


def end_body(app_status=0, protocol_status=0):
    return struct.pack(">IB3x", app_status, protocol_status)


NGINX_PARAMS = [
    (b"SCRIPT_FILENAME", b"/srv/www/index.php"),
    (b"QUERY_STRING", b"a=1&b=2"),
    (b"REQUEST_METHOD", b"POST"),
    (b"CONTENT_TYPE", b"application/x-www-form-urlencoded"),
    (b"CONTENT_LENGTH", b"7"),
    (b"SCRIPT_NAME", b"/index.php"),
    (b"REQUEST_URI", b"/index.php?a=1&b=2"),
    (b"DOCUMENT_ROOT", b"/srv/www"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"GATEWAY_INTERFACE", b"CGI/1.1"),
    (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"SERVER_PORT", b"80"),
    (b"HTTP_HOST", b"localhost"),
    (b"HTTP_COOKIE", b"x" * 300),
]
GET_VALUES_NAMES = pairs([(b"FCGI_MAX_CONNS", b""), (b"FCGI_MAX_REQS", b""), (b"FCGI_MPXS_CONNS", b"")])
# Appendix B, "Example" 1 to 3: the web server's side.
B_PARAMS = pairs([(b"SERVER_PORT", b"80"), (b"SERVER_ADDR", b"199.170.183.42")])
B_PARAMS_2 = pairs([(b"SERVER_PORT", b"80"), (b"SERVER_ADDR", b"199.170.183.42"), (b"X", b"y" * 130)])
LONG_PAIR = pair(b"N" * 200, b"V" * 300)


def nginx_request(rid=1):
    return (
        record(BEGIN, rid, begin_body(RESPONDER, True))
        + record(PARAMS, rid, pairs(NGINX_PARAMS))
        + record(PARAMS, rid)
        + record(STDIN, rid, b"a=1&b=2")
        + record(STDIN, rid)
    )


def decoder_seeds():
    b1 = record(BEGIN, 1, begin_body(RESPONDER)) + record(PARAMS, 1, B_PARAMS) + record(PARAMS, 1) + record(STDIN, 1)
    b1_reply = record(STDOUT, 1, b"Content-type: text/html\r\n\r\n<html>\n</html>") + record(STDOUT, 1) + record(END, 1, end_body())
    b2 = (
        record(BEGIN, 1, begin_body(RESPONDER))
        + record(PARAMS, 1, B_PARAMS)
        + record(PARAMS, 1)
        + record(STDIN, 1, b"quantity=100&item=3047936")
        + record(STDIN, 1)
    )
    b3 = (
        record(BEGIN, 1, begin_body(RESPONDER, True))
        + record(PARAMS, 1, B_PARAMS)
        + record(PARAMS, 1)
        + record(BEGIN, 2, begin_body(RESPONDER))
        + record(PARAMS, 2, B_PARAMS)
        + record(STDIN, 1)
        + record(PARAMS, 2)
        + record(STDIN, 2)
    )
    one_piece = b"\x00"
    return {
        "nginx_request": one_piece + nginx_request(),
        "nginx_request_bytewise": b"\x01\x00" + nginx_request(),
        "nginx_request_odd_chunks": b"\x03\x06\x01\x63" + nginx_request(),
        "get_values": one_piece + record(GET_VALUES, 0, GET_VALUES_NAMES),
        "appendix_b1": b"\x01\x07" + b1 + b1_reply,
        "appendix_b2": one_piece + b2,
        "appendix_b3": b"\x02\x02\x0c" + b3,
        "max_padding": one_piece + record(STDIN, 1, b"abc", padding=255) + record(STDIN, 1),
        "max_content": b"\x01\xff" + record(STDIN, 1, b"z" * 65535),
        "bad_version": one_piece + record(STDIN, 1, b"ok") + record(STDIN, 1, b"no", version=2),
        "truncated": one_piece + record(STDIN, 1, b"x" * 40)[:20],
        "unknown_type": one_piece + record(200, 0, b"?") + record(0, 7),
    }


def nv_seeds():
    # Header: byte cap (2 bytes, 0xFF..: none), pair cap (0xFF: none), piece sizes.
    none = b"\xff\xff\xff\x00"
    nginx = pairs(NGINX_PARAMS)
    return {
        "nginx_params": none + nginx,
        "nginx_params_bytewise": b"\xff\xff\xff\x01\x00" + nginx,
        "nginx_params_capped": b"\x01\x00\x05\x02\x10\x03" + nginx,
        "get_values": none + GET_VALUES_NAMES,
        "four_byte_lengths": b"\xff\xff\xff\x02\x02\x80" + LONG_PAIR + pair(b"a", b"b"),
        "long_form_short_length": none + b"\x80\x00\x00\x01\x80\x00\x00\x02" + b"abc",
        "huge_declared_length": none + b"\x01\xff\xff\xff\xffN" + b"v" * 16,
        "huge_declared_capped": b"\x10\x00\xff\x00" + b"\x01\xff\xff\xff\xffN" + b"v" * 16,
        "duplicates": none + pairs([(b"A", b"1"), (b"B", b"2"), (b"A", b"3")]),
        "many_pairs": b"\xff\xff\x40\x00" + pairs([(b"N%d" % (i % 70), b"") for i in range(100)]),
        "truncated": none + pair(b"NAME", b"VALUE")[:-2],
        "empty": none,
    }


class Ops:
    """Builds a conn_state input; mirrors `next_op` in conn_state.rs."""

    IDS = {0: 0, 1: 1, 2: 2, 3: 3, 65535: 4}

    def __init__(self, mpxs=False, max_reqs=1, byte_cap=3, pair_cap=3):
        self.out = bytearray([(max_reqs << 1) | int(mpxs), byte_cap, pair_cap])

    def op(self, code, rid, *args):
        self.out += bytes([code, self.IDS[rid]]) + b"".join(args)
        return self

    @staticmethod
    def blob(data):
        assert len(data) < 256
        return bytes([len(data)]) + data

    def begin(self, rid, role=RESPONDER, keep_conn=True):
        return self.op(0, rid, bytes([role, 1 if keep_conn else 0]))

    def params(self, rid, data):
        return self.op(1, rid, self.blob(data))

    def params_end(self, rid):
        return self.op(2, rid)

    def pair(self, rid, name, value):
        return self.op(3, rid, self.blob(name), self.blob(value))

    def stdin(self, rid, data=b""):
        return self.op(4, rid, self.blob(data))

    def data(self, rid, data=b""):
        return self.op(5, rid, self.blob(data))

    def abort(self, rid):
        return self.op(6, rid)

    def end(self, rid):
        return self.op(7, rid)

    def raw(self, kind, rid, content=b""):
        return self.op(8, rid, bytes([kind]), self.blob(content))


def conn_seeds():
    nginx = Ops().begin(1)
    for name, value in NGINX_PARAMS[:-1]:
        nginx.pair(1, name, value)
    nginx.params_end(1).stdin(1, b"a=1&b=2").stdin(1).end(1)
    nginx.begin(1).params_end(1).stdin(1).end(1)

    halves = Ops().begin(1).params(1, LONG_PAIR[:150]).params(1, LONG_PAIR[150:250])
    halves.params_end(1).stdin(1).end(1)

    b3 = Ops(mpxs=True, max_reqs=4).begin(1).params(1, B_PARAMS).params_end(1)
    b3.begin(2).params(2, B_PARAMS).stdin(1).params_end(2).stdin(2).end(1).end(2)

    filt = Ops().begin(1, FILTER).pair(1, b"FCGI_DATA_LENGTH", b"4").params_end(1)
    filt.stdin(1).data(1, b"data").data(1).end(1)

    refusals = Ops(max_reqs=2).begin(1).begin(2).begin(1, role=0).begin(3, role=4)
    refusals.end(1).begin(65535, AUTHORIZER).params_end(65535).stdin(65535).end(65535)

    overload = Ops(mpxs=True, max_reqs=2).begin(1).begin(2).begin(3).end(2).begin(3)
    aborts = Ops().begin(1).params(1, B_PARAMS).abort(1).stdin(1, b"late").abort(1).end(1)
    too_big = Ops(byte_cap=1).begin(1).params(1, B_PARAMS_2[:200]).abort(1).end(1).begin(1)
    too_many = Ops(pair_cap=1).begin(1).params(1, B_PARAMS).params_end(1).end(1)
    truncated = Ops().begin(1).params(1, B_PARAMS[:-3]).params_end(1).stdin(1).end(1)
    return {
        "nginx_request": nginx.out,
        "pair_across_records": halves.out,
        "appendix_b3_multiplexed": b3.out,
        "filter_role": filt.out,
        "refusals": refusals.out,
        "overloaded": overload.out,
        "abort": aborts.out,
        "params_too_large": too_big.out,
        "too_many_pairs": too_many.out,
        "params_truncated": truncated.out,
        "get_values": Ops().raw(GET_VALUES, 0, GET_VALUES_NAMES).out,
        "management": Ops().raw(200, 0).raw(PARAMS, 0).raw(7, 3, b"x").raw(BEGIN, 0, begin_body(1)).out,
        "stdin_before_params_end": Ops().begin(1).stdin(1, b"x").out,
    }


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, seeds in [
        ("record_decoder", decoder_seeds()),
        ("nv_parser", nv_seeds()),
        ("conn_state", conn_seeds()),
    ]:
        os.makedirs(os.path.join(root, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(root, target, name), "wb") as f:
                f.write(bytes(data))


if __name__ == "__main__":
    main()
