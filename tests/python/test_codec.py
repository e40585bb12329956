"""Tests for pybridge's CBOR value codec (pybridge/cbor_enc.c, cbor_dec.c).

_hornbeam.encode/decode are thin wrappers over hb_encode/hb_decode. numpy and
cbor2 are required, not optional: the codec's typed arrays and its interop with
other CBOR implementations are part of what is tested here.
"""
import collections
import enum
import math
import random
import struct

import cbor2
import numpy as np
import pytest

import _hornbeam

enc = _hornbeam.encode
dec = _hornbeam.decode
TUPLE_TAG = 0x48420001


def rt(x):
    return dec(enc(x))


def head(major, n):
    """The shortest CBOR head, built by hand (independent of the codec)."""
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)


def typed(tag, data):
    return head(6, tag) + head(2, len(data)) + data


# ---- scalars ---------------------------------------------------------------

INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
        2**64 + 1, 2**200]
INTS += [-x for x in INTS] + [-(x + 1) for x in INTS]


@pytest.mark.parametrize("x", INTS)
def test_int_round_trip(x):
    y = rt(x)
    assert type(y) is int and y == x


@pytest.mark.parametrize("x,hexed", [
    (0, "00"), (23, "17"), (24, "1818"), (256, "190100"), (-1, "20"), (-25, "3818"),
    (2**63, "1b8000000000000000"), (2**64 - 1, "1bffffffffffffffff"),
    (-2**63, "3b7fffffffffffffff"), (-2**64, "3bffffffffffffffff"),
    (2**64, "c249010000000000000000"), (-2**64 - 1, "c349010000000000000000"),
    (2**200, "c2581a01" + "00" * 25),
])
def test_int_encoding(x, hexed):
    assert enc(x).hex() == hexed


def test_bool_none():
    assert enc(None) == b"\xf6" and enc(True) == b"\xf5" and enc(False) == b"\xf4"
    for x in (None, True, False):
        assert rt(x) is x
    assert dec(b"\xf7") is None  # undefined


def test_int_subclasses():
    class Color(enum.IntEnum):
        RED = 1
        BIG = 2**70

    class Perm(enum.IntFlag):
        R = 4

    class MyInt(int):
        def __invert__(self):
            return 42

    assert rt(Color.RED) == 1 and type(rt(Color.RED)) is int
    assert rt(Color.BIG) == 2**70
    assert rt(Perm.R) == 4
    assert rt(MyInt(-2**64 - 5)) == -2**64 - 5
    assert rt(MyInt(-2**100)) == -2**100


FLOATS = [0.0, 1.5, -2.25, 1e308, 5e-324, 2.0**-1074, 1 / 3, math.pi, math.inf, -math.inf]


@pytest.mark.parametrize("x", FLOATS)
def test_float_round_trip(x):
    y = rt(x)
    assert type(y) is float and y == x
    assert enc(x) == b"\xfb" + struct.pack(">d", x)


def test_float_special():
    assert math.isnan(rt(math.nan))
    assert math.copysign(1.0, rt(-0.0)) == -1.0

    class F(float):
        pass

    assert rt(F(2.5)) == 2.5 and type(rt(F(2.5))) is float


@pytest.mark.parametrize("hexed,expected", [
    ("f90000", 0.0), ("f93c00", 1.0), ("f9c400", -4.0), ("f97bff", 65504.0),
    ("f90001", 2.0**-24), ("f903ff", 1023 * 2.0**-24), ("f90400", 2.0**-14),
    ("f97c00", math.inf), ("f9fc00", -math.inf),
    ("fa47c35000", 100000.0), ("fa00000001", 2.0**-149), ("fa7f800000", math.inf),
    ("fb3ff8000000000000", 1.5),
])
def test_float_decode_widths(hexed, expected):
    y = dec(bytes.fromhex(hexed))
    assert type(y) is float and y == expected


def test_float_decode_nan_and_negative_zero():
    for h in ("f97e00", "f97c01", "fa7fc00000", "fb7ff8000000000000"):
        assert math.isnan(dec(bytes.fromhex(h)))
    z = dec(bytes.fromhex("f98000"))
    assert z == 0.0 and math.copysign(1.0, z) == -1.0


STRINGS = ["", "a", "hello", "héllo wörld ✓ 😀 \u0000 \uffff", "x" * 100_000, "ü" * 70_000]


@pytest.mark.parametrize("s", STRINGS)
def test_str_round_trip(s):
    assert rt(s) == s
    assert enc(s) == head(3, len(s.encode())) + s.encode()


def test_str_subclass_and_surrogates():
    class S(str):
        pass

    assert rt(S("abc")) == "abc" and type(rt(S("abc"))) is str
    with pytest.raises(UnicodeEncodeError):
        enc("\ud800")
    with pytest.raises(UnicodeEncodeError):
        enc(["ok", {"k": "\udfff"}])


def test_bytes_like():
    for b in (b"", b"\x00\xff", bytes(range(256)) * 300):
        assert rt(b) == b and type(rt(b)) is bytes
        assert enc(b) == head(2, len(b)) + b
    assert rt(bytearray(b"abc")) == b"abc"
    assert rt(memoryview(b"abcdef")) == b"abcdef"
    assert rt(memoryview(b"abcdef")[::2]) == b"ace"
    assert rt(memoryview(np.arange(4, dtype="<u2"))) == np.arange(4, dtype="<u2").tobytes()

    class B(bytes):
        pass

    assert rt(B(b"zz")) == b"zz"


# ---- containers --------------------------------------------------------------

def test_containers_round_trip():
    for x in ([], (), {}, [[]], [()], ((),), [1, [2, (3, [4, ()])], "x"], {"a": {"b": {"c": []}}}):
        y = rt(x)
        assert y == x

    x = [1, (2, [3, (4,)]), {"t": (5, 6)}]
    y = rt(x)
    assert type(y) is list and type(y[1]) is tuple and type(y[1][1]) is list
    assert type(y[1][1][1]) is tuple and type(y[2]["t"]) is tuple
    assert enc((1, 2)).hex() == "da48420001820102"
    assert enc([1, 2]).hex() == "820102"


def test_container_subclasses():
    Point = collections.namedtuple("Point", "x y")
    assert rt(Point(1, 2)) == (1, 2) and type(rt(Point(1, 2))) is tuple

    class L(list):
        pass

    assert rt(L([1, 2])) == [1, 2] and type(rt(L([1, 2]))) is list
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    assert rt(od) == {"b": 1, "a": 2} and type(rt(od)) is dict
    assert rt(collections.defaultdict(int, {1: 2})) == {1: 2}


def test_dict_keys():
    d = {1: "int", -5: "neg", 2**70: "big", "s": "str", b"b": "bytes", (1, "a", (2, b"x")): "tuple",
         2.5: "float", None: "none", (): "empty tuple"}
    assert rt(d) == d
    y = rt({(1, (2, 3)): 0})
    assert list(y) == [(1, (2, 3))]
    # A plain CBOR array in key position becomes a (hashable) tuple.
    assert dec(bytes.fromhex("a1820102f6")) == {(1, 2): None}
    assert dec(bytes.fromhex("a1818201020a")) == {((1, 2),): 10}


def test_nesting_limit():
    x = 0
    for _ in range(128):
        x = [x]
    assert rt(x) == x
    with pytest.raises(ValueError, match="^hornbeam: value nested deeper than 128 levels$"):
        enc([x])
    t = 0
    for _ in range(128):
        t = (t,)
    assert rt(t) == t
    d = 0
    for _ in range(128):
        d = {"k": d}
    assert rt(d) == d
    with pytest.raises(ValueError):
        enc({"k": d})
    assert dec(b"\x81" * 128 + b"\x00") == x
    with pytest.raises(ValueError, match="^hornbeam: "):
        dec(b"\x81" * 129 + b"\x00")


def test_self_reference():
    a = [1]
    a.append(a)
    with pytest.raises(ValueError, match="^hornbeam: value nested deeper than 128 levels$"):
        enc(a)
    d = {}
    d["d"] = d
    with pytest.raises(ValueError, match="nested deeper"):
        enc(d)


@pytest.mark.parametrize("x,name", [
    (set(), "set"), ({1, 2}, "set"), (frozenset(), "frozenset"), (object(), "object"),
    (1j, "complex"), (range(3), "range"), (Ellipsis, "ellipsis"), (len, "builtin_function_or_method"),
    ([1, {2: {3}}], "set"), ({frozenset(): 1}, "frozenset"), ((1, [object()]), "object"),
])
def test_unsupported_type(x, name):
    with pytest.raises(TypeError) as ei:
        enc(x)
    msg = str(ei.value)
    assert msg.startswith(f"hornbeam: cannot convert object of type '{name}' (supported: None, bool, int, float")
    assert "numpy.ndarray" in msg


def test_unsupported_type_qualname():
    class Outer:
        class Inner:
            pass

    with pytest.raises(TypeError, match=r"type 'test_unsupported_type_qualname.<locals>.Outer.Inner'"):
        enc(Outer.Inner())


# ---- numpy -------------------------------------------------------------------

DTYPES = [("uint8", 64), ("uint16", 69), ("uint32", 70), ("uint64", 71), ("int8", 72), ("int16", 77),
          ("int32", 78), ("int64", 79), ("float16", 84), ("float32", 85), ("float64", 86)]


def sample(dtype, n):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (np.arange(n, dtype=dt) - n // 2) / dt.type(4)
    info = np.iinfo(dt)
    vals = [info.min, info.max, 0, 1, info.max - 1] * (n // 5 + 1)
    return np.array(vals[:n], dtype=dt)


@pytest.mark.parametrize("dtype,tag", DTYPES)
def test_ndarray_1d(dtype, tag):
    a = sample(dtype, 7)
    data = enc(a)
    assert data == typed(tag, a.tobytes())
    assert data == cbor2.dumps(cbor2.CBORTag(tag, a.tobytes()))
    b = dec(data)
    assert isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == (7,)
    assert b.tobytes() == a.tobytes()
    assert b.flags.c_contiguous and b.flags.writeable and b.flags.owndata


@pytest.mark.parametrize("dtype,tag", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 3, 4), (0, 3), (2, 0, 4), (1, 1, 1, 1)])
def test_ndarray_shapes(dtype, tag, shape):
    n = int(np.prod(shape))
    a = sample(dtype, n).reshape(shape)
    b = rt(a)
    assert b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes()
    if len(shape) != 1:
        dims = head(4, len(shape)) + b"".join(head(0, d) for d in shape)
        assert enc(a) == head(6, 40) + b"\x82" + dims + typed(tag, a.tobytes())


def test_ndarray_hand_built_multidim():
    a = np.arange(6, dtype="<i4").reshape(2, 3)
    expect = bytes.fromhex("d828" "82" "820203" "d84e" "5818") + a.tobytes()
    assert enc(a) == expect
    assert np.array_equal(dec(expect), a)
    zero_d = np.array(2.5)
    expect = bytes.fromhex("d828" "82" "80" "d856" "48") + struct.pack("<d", 2.5)
    assert enc(zero_d) == expect
    z = dec(expect)
    assert z.shape == () and z.dtype == np.float64 and z[()] == 2.5


def test_ndarray_non_contiguous():
    base = np.arange(60, dtype=np.int64).reshape(3, 4, 5)
    for view in (base[::2], base.T, base[:, 1], base[..., ::-1], base[1, ::2, 1:4], base.T[0]):
        assert not view.flags.c_contiguous or view.ndim == 0
        b = rt(view)
        assert b.flags.c_contiguous and b.shape == view.shape and np.array_equal(b, view)
        assert enc(view) == enc(np.ascontiguousarray(view))
    f = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.array_equal(rt(f), f)


def test_ndarray_big_endian_input():
    # Big-endian arrays are sent as little-endian; the decoded dtype is the native one.
    for dt in (">i2", ">u4", ">i8", ">f2", ">f4", ">f8"):
        a = np.arange(10, dtype=dt)
        b = rt(a)
        assert b.dtype == a.dtype.newbyteorder("<") and b.dtype.isnative
        assert np.array_equal(a, b)
        assert enc(a) == enc(a.astype(a.dtype.newbyteorder("<")))
    m = np.arange(24, dtype=">f8").reshape(4, 6)[::2, ::3]
    assert np.array_equal(rt(m), m) and rt(m).dtype == np.float64
    s = np.array(7, dtype=">i4")
    assert rt(s).shape == () and rt(s)[()] == 7 and rt(s).dtype == np.int32


def test_ndarray_inside_containers():
    x = {"a": np.arange(3, dtype=np.uint8), "b": [np.zeros((2, 2), np.float32), (np.int16(-3),)]}
    y = rt(x)
    assert np.array_equal(y["a"], x["a"]) and y["a"].dtype == np.uint8
    assert np.array_equal(y["b"][0], x["b"][0]) and y["b"][0].dtype == np.float32
    assert y["b"][1] == (-3,)


def test_ndarray_subclass():
    class Sub(np.ndarray):
        pass

    a = np.arange(4, dtype=np.int32).view(Sub)
    assert np.array_equal(rt(a), a)
    r = np.arange(4, dtype=np.uint16)
    r.flags.writeable = False
    assert np.array_equal(rt(r), r)


@pytest.mark.parametrize("tag,dtype", [
    (64, "|u1"), (65, ">u2"), (66, ">u4"), (67, ">u8"), (68, "|u1"), (69, "<u2"), (70, "<u4"),
    (71, "<u8"), (72, "|i1"), (73, ">i2"), (74, ">i4"), (75, ">i8"), (77, "<i2"), (78, "<i4"),
    (79, "<i8"), (80, ">f2"), (81, ">f4"), (82, ">f8"), (84, "<f2"), (85, "<f4"), (86, "<f8"),
])
def test_decode_typed_array_tags(tag, dtype):
    dt = np.dtype(dtype)
    a = np.arange(5).astype(dt)
    b = dec(typed(tag, a.tobytes()))
    assert b.dtype.str == dt.str and np.array_equal(a, b)
    m = dec(head(6, 40) + b"\x82" + b"\x82\x01\x05" + typed(tag, a.tobytes()))
    assert m.shape == (1, 5) and m.dtype.str == dt.str and np.array_equal(m[0], a)
    e = dec(typed(tag, b""))
    assert e.shape == (0,) and e.dtype.str == dt.str


@pytest.mark.parametrize("x,expected", [
    (np.float32(1.5), 1.5), (np.float16(-2.0), -2.0), (np.float64(0.1), 0.1),
    (np.int8(-3), -3), (np.int64(3), 3), (np.uint64(2**64 - 1), 2**64 - 1), (np.int64(-2**63), -2**63),
    (np.bool_(True), True), (np.bool_(False), False), (np.str_("hi"), "hi"), (np.bytes_(b"by"), b"by"),
])
def test_numpy_scalars(x, expected):
    y = rt(x)
    assert y == expected and type(y) is type(expected)


@pytest.mark.parametrize("a,name", [
    (np.array([True, False]), "bool"),
    (np.zeros(2, np.complex128), "complex128"),
    (np.array([1, "x"], dtype=object), "object"),
    (np.array(["abc"]), "<U3"),
    (np.array([b"ab"]), "|S2"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64[D]"),
    (np.array([1], dtype="timedelta64[s]"), "timedelta64[s]"),
    (np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]), "[('a', '<i4'), ('b', '<f8')]"),
    (np.zeros(2, dtype=np.longdouble), str(np.dtype(np.longdouble))),
    (np.zeros((2, 2), dtype=bool), "bool"),
])
def test_ndarray_unsupported_dtype(a, name):
    with pytest.raises(TypeError) as ei:
        enc([1, {"x": a}])
    msg = str(ei.value)
    assert msg.startswith(f"hornbeam: cannot convert numpy.ndarray of dtype {name}; "), msg


@pytest.mark.parametrize("x", [np.complex128(1j), np.longdouble(1.5), np.datetime64("2020-01-01")])
def test_numpy_scalar_unsupported(x):
    with pytest.raises(TypeError, match=f"^hornbeam: cannot convert object of type '{type(x).__qualname__}'"):
        enc(x)


# ---- interop with cbor2 ----------------------------------------------------------

JSONISH = [
    None, True, False, 0, 1, -1, 23, 24, -24, -25, 1000, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
    -2**63, -2**63 - 1, -2**64, -2**64 - 1, 2**200, -2**200, 0.0, 1.5, -1e300, math.inf, "", "ü✓😀",
    "x" * 1000, b"", b"\x00" * 300, [], {}, [1, "two", 3.0, None, [True, False]],
    {"a": 1, "b": [1, 2, {"c": None}], "d": {"e": {"f": "g"}}, "h": b"bytes"},
    {1: "int key", "s": 2, b"k": 3}, [{"k": [list(range(30))]}] * 5,
]


@pytest.mark.parametrize("x", JSONISH)
def test_cbor2_reads_ours(x):
    assert cbor2.loads(enc(x)) == x


@pytest.mark.parametrize("x", JSONISH)
def test_we_read_cbor2(x):
    assert dec(cbor2.dumps(x)) == x
    assert dec(cbor2.dumps(x, canonical=True)) == x  # shortest floats, sorted keys


def test_cbor2_misc():
    assert math.isnan(dec(cbor2.dumps(math.nan)))
    assert dec(cbor2.dumps((1, 2))) == [1, 2]  # cbor2 writes tuples as plain arrays
    assert cbor2.loads(enc((1, 2))) == cbor2.CBORTag(TUPLE_TAG, [1, 2])
    assert dec(cbor2.dumps(cbor2.CBORTag(TUPLE_TAG, [1, [2]]))) == (1, [2])
    for x in (2**64, -2**64 - 1, 2**1000, -2**1000):
        assert dec(cbor2.dumps(x)) == x and cbor2.loads(enc(x)) == x


def test_decode_non_preferred_forms():
    assert dec(bytes.fromhex("1b0000000000000001")) == 1
    assert dec(bytes.fromhex("1801")) == 1
    assert dec(bytes.fromhex("3bffffffffffffffff")) == -2**64
    assert dec(bytes.fromhex("c2430000ff")) == 255  # leading zero bytes
    assert dec(bytes.fromhex("c240")) == 0 and dec(bytes.fromhex("c340")) == -1
    assert dec(bytes.fromhex("c349010000000000000000")) == -2**64 - 1
    assert dec(bytes.fromhex("5a00000001ff")) == b"\xff"


# ---- malformed input --------------------------------------------------------------

MALFORMED = {
    "empty": "",
    "truncated uint8": "18",
    "truncated uint16": "1901",
    "truncated uint32": "1a0000",
    "truncated uint64": "1b00000000000000",
    "truncated bytes": "43 0102",
    "truncated text": "62 61",
    "truncated array": "82 01",
    "truncated map value": "a1 01",
    "truncated inside array": "83 1818 18",
    "truncated inside map": "a1 1818 18",
    "truncated inside bytes in array": "82 42 00",
    "truncated map key": "a2 0101",
    "truncated float64": "fb 000000",
    "truncated half": "f9 00",
    "truncated tag": "d8",
    "tag without content": "c2",
    "truncated bignum": "c2 45 01",
    "indefinite bytes": "5f 4100 ff",
    "indefinite text": "7f ff",
    "indefinite array": "9f 01 ff",
    "indefinite map": "bf ff",
    "lone break": "ff",
    "uint ai 31": "1f",
    "negint ai 31": "3f",
    "tag ai 31": "df",
    "reserved ai 28": "1c",
    "reserved ai 29": "3d",
    "reserved ai 30": "5e",
    "reserved ai 28 text": "7c",
    "reserved ai 29 array": "9d",
    "reserved ai 30 map": "be",
    "reserved ai 28 tag": "dc",
    "reserved ai 28 simple": "fc",
    "huge array": "9b ffffffffffffffff",
    "huge map": "bb ffffffffffffffff",
    "huge bytes": "5b ffffffffffffffff",
    "huge text": "7b ffffffffffffffff",
    "array longer than input": "9a 7fffffff 00",
    "map longer than input": "ba 7fffffff 0000",
    "map of 2 with 3 bytes": "a2 010203",
    "array of 5 with 2 bytes": "85 0102",
    "bytes one too long": "44 010203",
    "huge bignum": "c2 5b ffffffffffffffff",
    "huge tuple": "da48420001 9b ffffffffffffffff",
    "deep arrays": "81" * 10000 + "00",
    "deep maps": "a1 00" * 5000 + "00",
    "deep tuples": "da48420001 81" * 300 + "00",
    "deep map keys": "a1" + "81" * 200 + "00 00",
    "deep mixed": "a1 00 81" * 100 + "00",
    "bad utf8": "62 c328",
    "bad utf8 ff": "61 ff",
    "utf8 surrogate": "63 eda080",
    "utf8 overlong": "62 c080",
    "utf8 above max": "64 f4908080",
    "utf8 truncated sequence": "61 c3",
    "duplicate int keys": "a2 0101 0102",
    "duplicate str keys": "a2 616101 616102",
    "duplicate equal keys 1 and 1.0": "a2 0100 f93c0000",
    "duplicate tuple keys": "a2 820102 00 da48420001820102 00",
    "map as key": "a1 a0 00",
    "map inside array key": "a1 81a0 00",
    "typed array as key": "a1 d840 4100 00",
    "md array as key": "a1 d828 82 8101 d840 4100 00",
    "unknown tag 1": "c1 00",
    "unknown tag 0": "c0 60",
    "unknown tag 32": "d820 60",
    "self-describe tag": "d9d9f7 00",
    "unknown tag 1040": "d90410 82 8101 d840 4100",
    "unknown 64-bit tag": "dbffffffffffffffff 00",
    "reserved typed tag 76": "d84c 40",
    "float128 BE": "d853 50" + "00" * 16,
    "float128 LE": "d857 50" + "00" * 16,
    "typed array not bytes": "d846 8100",
    "typed array bad length": "d845 43 000102",
    "typed array bad length f8": "d856 47" + "00" * 7,
    "tag 40 not array": "d828 00",
    "tag 40 one element": "d828 81 8101",
    "tag 40 three elements": "d828 83 8101 d840 4100 00",
    "tag 40 shape not array": "d828 82 01 d840 4100",
    "tag 40 negative dim": "d828 82 8120 d840 4100",
    "tag 40 float dim": "d828 82 81f93c00 d840 4100",
    "tag 40 plain data": "d828 82 8101 8100",
    "tag 40 wrong count": "d828 82 820202 d84e 4c" + "00" * 12,
    "tag 40 shape overflow": "d828 82 83 1b8000000000000000 1b8000000000000000 04 d840 40",
    "tag 40 shape too large": "d828 82 82 1b4000000000000000 02 d847 40",
    "tag 40 zero dim mismatch": "d828 82 820002 d840 4100",
    "tag 40 33 dims": "d828 82 9821" + "01" * 33 + "d840 4100",
    "tag 40 reserved typed": "d828 82 8101 d84c 4100",
    "tag 40 nested tag 40": "d828 82 8101 d828 82 8101 d840 4100",
    "bignum not bytes": "c2 01",
    "bignum text": "c3 6161",
    "tuple tag not array": "da48420001 01",
    "tuple tag map": "da48420001 a0",
    "simple 0": "e0",
    "simple 16": "f0",
    "simple 19": "f3",
    "simple 24 32": "f820",
    "simple 24 255": "f8ff",
    "simple 24 20": "f814",
    "trailing bytes": "00 00",
    "trailing null": "f6 f6",
    "trailing after array": "8101 01",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed(name):
    data = bytes.fromhex(MALFORMED[name].replace(" ", ""))
    with pytest.raises(ValueError) as ei:
        dec(data)
    assert ei.type is ValueError, ei.type
    assert str(ei.value).startswith("hornbeam: "), str(ei.value)


def test_malformed_messages():
    with pytest.raises(ValueError, match="^hornbeam: trailing bytes after CBOR item$"):
        dec(b"\x00\x00")
    with pytest.raises(ValueError, match="^hornbeam: duplicate map key$"):
        dec(bytes.fromhex("a2616101616102"))
    with pytest.raises(ValueError, match="55799"):
        dec(bytes.fromhex("d9d9f700"))
    with pytest.raises(ValueError, match="1040"):
        dec(bytes.fromhex("d9041000"))


def test_decode_accepts_other_buffers():
    assert dec(bytearray(b"\x82\x01\x02")) == [1, 2]
    assert dec(memoryview(b"\x82\x01\x02")) == [1, 2]


def _corpus():
    values = [x for x in JSONISH] + [
        (1, (2, [3])), {(1, 2): [b"x", 1.5]}, np.arange(6, dtype=np.int16).reshape(2, 3),
        np.arange(4, dtype=np.float32), np.array(3.5), {"arr": np.zeros((2, 0, 3), np.uint64)},
        [2**64, -2**64 - 1, 2**100], {"n": math.nan, "h": 1.0}, "ü✓",
    ]
    out = [enc(v) for v in values]
    out += [cbor2.dumps(v, canonical=True) for v in JSONISH]
    out += [bytes.fromhex(MALFORMED[k].replace(" ", "")) for k in MALFORMED if len(MALFORMED[k]) < 200]
    return [c for c in out if c]


def test_mutation_fuzz():
    """Mutated encodings must decode or raise ValueError, and what decodes must re-encode."""
    rng = random.Random(1234)
    corpus = _corpus()
    interesting = [0x00, 0x17, 0x18, 0x1b, 0x1f, 0x40, 0x5b, 0x60, 0x7b, 0x80, 0x81, 0x9b, 0x9f, 0xa1,
                   0xbb, 0xbf, 0xc2, 0xc3, 0xd8, 0xda, 0xdb, 0xf4, 0xf7, 0xf9, 0xfb, 0xff]
    for _ in range(20_000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[pos % len(data)] = rng.randrange(256)
            elif op == 1 and data:
                data[pos % len(data)] = rng.choice(interesting)
            elif op == 2:
                data[pos:pos] = bytes([rng.choice(interesting)])
            elif op == 3 and data:
                del data[pos % len(data):pos % len(data) + rng.randint(1, 3)]
            else:
                data = data[:pos]
        try:
            v = dec(bytes(data))
        except ValueError as e:
            assert type(e) is ValueError and str(e).startswith("hornbeam: "), repr(e)
            continue
        enc(v)


SCOPE_TAG = 0x48420101


def scope_cbor(*values):
    return cbor2.dumps(cbor2.CBORTag(SCOPE_TAG, list(values)))


def test_asgi_scope_tag_builds_the_scope():
    hdrs = [cbor2.CBORTag(TUPLE_TAG, [b"host", b"x"])]
    got = dec(scope_cbor("http", "1.1", "GET", "http", "/a b", b"/a%20b", b"q=1", "", hdrs,
                         ["127.0.0.1", 5000], None))
    assert list(got) == ["type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                         "query_string", "root_path", "headers", "client"]
    assert got["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert got["headers"] == [(b"host", b"x")] and got["client"] == ["127.0.0.1", 5000]
    assert got["path"] == "/a b" and got["raw_path"] == b"/a%20b"
    again = dec(scope_cbor("http", "1.1", "GET", "http", "/a b", b"/a%20b", b"q=1", "", [], None, None))
    assert again["asgi"] is not got["asgi"]  # each scope has its own, as an app may change it
    assert "client" not in again and "server" not in again


def test_asgi_scope_values_change_from_one_scope_to_the_next():
    # Each value is checked against the last one in its place: a change shows.
    seen = []
    for method, path, q in [("GET", "/", b""), ("POST", "/", b""), ("POST", "/é", b"x"), ("GET", "/", b"")]:
        s = dec(scope_cbor("http", "1.1", method, "https", path, path.encode(), q, "/r", [], None,
                           ["::1", 443]))
        seen.append((s["method"], s["path"], s["query_string"], s["server"]))
    assert seen == [("GET", "/", b"", ["::1", 443]), ("POST", "/", b"", ["::1", 443]),
                    ("POST", "/é", b"x", ["::1", 443]), ("GET", "/", b"", ["::1", 443])]


def test_asgi_scope_tag_for_a_websocket():
    s = dec(scope_cbor("websocket", "1.1", ["chat", "v2"], "ws", "/ws", b"/ws", b"", "", [], None, None))
    assert s["type"] == "websocket" and s["subprotocols"] == ["chat", "v2"] and "method" not in s


@pytest.mark.parametrize("content", [["http"] * 10, ["http"] * 12, {"type": "http"}, "http"])
def test_asgi_scope_tag_refuses_other_content(content):
    with pytest.raises(ValueError, match="ASGI scope"):
        dec(cbor2.dumps(cbor2.CBORTag(SCOPE_TAG, content)))


def test_asgi_scope_tag_is_not_a_key():
    key = cbor2.CBORTag(SCOPE_TAG, ["http"] * 11)
    data = head(5, 1) + cbor2.dumps(key) + cbor2.dumps(1)
    with pytest.raises(ValueError, match="map key"):
        dec(data)
