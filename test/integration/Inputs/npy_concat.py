"""Tools for the insert_slice layer test (stdlib only: lit hosts may lack numpy).

  npy_concat.py concat A.npy B.npy OUT.npy   float32 A and B joined on the last axis
  npy_concat.py same A.npy B.npy             exit 1 unless A and B hold the same
                                             shape and float32 values (max |A - B|)
"""
import array
import ast
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    major = data[6]
    hlen_bytes = 2 if major == 1 else 4
    hlen = int.from_bytes(data[8:8 + hlen_bytes], "little")
    start = 8 + hlen_bytes
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    values = array.array("f")
    values.frombytes(data[start + hlen:])
    return tuple(header["shape"]), values


def save(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little"))
        f.write(header.encode("latin1"))
        f.write(values.tobytes())


def main(argv):
    if argv[1] == "concat":
        (sa, a), (sb, b) = load(argv[2]), load(argv[3])
        assert sa[:-1] == sb[:-1], (sa, sb)
        na, nb = sa[-1], sb[-1]
        out = array.array("f")
        for row in range(len(a) // na if na else 0):
            out.extend(a[row * na:(row + 1) * na])
            out.extend(b[row * nb:(row + 1) * nb])
        save(argv[4], sa[:-1] + (na + nb,), out)
        return 0
    (sa, a), (sb, b) = load(argv[2]), load(argv[3])
    diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
    print("shapes %s %s, max |a - b| = %g" % (sa, sb, diff))
    return 0 if sa == sb and diff == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
