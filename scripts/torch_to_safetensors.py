#!/usr/bin/env python3
"""Converts a PyTorch state dict saved by `torch.save` — the legacy (pre-zip)
format or the zip format of torch >= 1.6 — into a safetensors file, with the
standard library only: no torch.

The zip format holds `<name>/data.pkl` (the state dict pickled with each
storage as a persistent id) and each storage's raw bytes in `<name>/data/<key>`.

The legacy format is five things one after another: three small pickles (a
magic number, the protocol version, sizes of C types), the state dict
pickled with each tensor's storage as a persistent id ('storage', type, key,
location, size), a pickled list of the storage keys, and then, per key in
that order, the number of elements (8 bytes, little endian) followed by the
storage's raw bytes. Tensors are views into storages (offset, size, stride);
each is copied out in row-major order, whatever its stride.

    torch_to_safetensors.py IN.pth OUT.safetensors   # convert (either format)
    torch_to_safetensors.py --manifest IN.pth        # name dtype shape sha256, one per line

The manifest's sha256 is over the tensor's bytes in row-major order, as
`tensor.contiguous().numpy().tobytes()` gives them, so it can be checked
against torch.load of the same file (scripts/weights/*.manifest).
"""
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

MAGIC = 0x1950A86A20F9469CFC6C
# storage type -> (safetensors dtype, bytes per element)
STORAGES = {
    "FloatStorage": ("F32", 4),
    "DoubleStorage": ("F64", 8),
    "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}


class LegacyError(Exception):
    pass


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGES:
            return name
        raise LegacyError(f"unsupported object in the pickle: {module}.{name} (only plain tensors in a dict are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise LegacyError(f"unexpected persistent id {pid!r}")
        kind, key = pid[1], pid[2]
        if kind not in STORAGES:
            raise LegacyError(f"storage type {kind} is not supported")
        return (kind, key)


def read_state_dict(path):
    """name -> (dtype, shape, row-major bytes) of a torch.save file of either format."""
    if zipfile.is_zipfile(path):
        return read_zip(path)
    return read_legacy(path)


def read_zip(path):
    """The zip format: name -> (dtype, shape, row-major bytes), in the file's order."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise LegacyError(f"{path}: a zip file without one data.pkl: not a torch.save file")
        prefix = pkl[0][: -len("data.pkl")]
        order = [n for n in names if n == prefix + "byteorder"]
        if order and z.read(order[0]).strip() != b"little":
            raise LegacyError(f"{path}: big-endian files are not supported")
        state = _Unpickler(io.BytesIO(z.read(pkl[0]))).load()
        if not isinstance(state, dict):
            raise LegacyError(f"{path}: holds a {type(state).__name__}, not a state dict")
        return _tensors(path, state, lambda key: z.read(f"{prefix}data/{key}"))


def read_legacy(path):
    """name -> (dtype, shape, row-major bytes), in the file's order."""
    with open(path, "rb") as f:
        try:
            magic = pickle.load(f)
        except Exception as e:
            raise LegacyError(f"{path}: not a legacy torch.save file ({e}); a zip-format file loads directly") from e
        if magic != MAGIC:
            raise LegacyError(f"{path}: wrong magic number: not a legacy torch.save file")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise LegacyError(f"{path}: big-endian files are not supported")
        state = _Unpickler(f).load()
        if not isinstance(state, dict):
            raise LegacyError(f"{path}: holds a {type(state).__name__}, not a state dict")
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            storages[key] = f.read(count * _element_size_of(state, key))
        rest = f.read(1)
        if rest:
            raise LegacyError(f"{path}: bytes after the last storage: not a file this reader understands")
    return _tensors(path, state, storages.__getitem__)


def _tensors(path, state, storage_bytes):
    """name -> (dtype, shape, row-major bytes) of a state dict whose
    storages' bytes `storage_bytes(key)` gives."""
    out = collections.OrderedDict()
    for name, t in state.items():
        if not isinstance(t, _Tensor):
            raise LegacyError(f"{path}: entry {name} is not a tensor")
        kind, key = t.storage
        dtype, width = STORAGES[kind]
        out[name] = (dtype, list(t.size), _row_major(storage_bytes(key), width, t.offset, t.size, t.stride))
    return out


def _element_size_of(state, key):
    for t in state.values():
        if isinstance(t, _Tensor) and t.storage[1] == key:
            return STORAGES[t.storage[0]][1]
    raise LegacyError(f"storage {key} is used by no tensor")


def _row_major(data, width, offset, size, stride):
    n = 1
    for s in size:
        n *= s
    if n == 0:
        return b""
    # Contiguous already: one slice.
    expect, contiguous = 1, True
    for s, st in zip(reversed(size), reversed(stride)):
        if s != 1 and st != expect:
            contiguous = False
            break
        expect *= s
    if contiguous:
        return bytes(data[offset * width:(offset + n) * width])
    view = memoryview(data)
    out = bytearray(n * width)
    # Element offsets of every index, in row-major order, one dimension at a time.
    offsets = [offset]
    for s, st in zip(size, stride):
        offsets = [o + i * st for o in offsets for i in range(s)]
    for k, o in enumerate(offsets):
        out[k * width:(k + 1) * width] = view[o * width:(o + 1) * width]
    return bytes(out)


def write_safetensors(tensors, path):
    header, offset = {}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, data in tensors.values():
            f.write(data)
    os.replace(tmp, path)


def manifest(tensors):
    return "".join(
        f"{name}\t{dtype}\t{'x'.join(map(str, shape)) or 'scalar'}\t{hashlib.sha256(data).hexdigest()}\n"
        for name, (dtype, shape, data) in tensors.items()
    )


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "--manifest":
            sys.stdout.write(manifest(read_state_dict(argv[2])))
        elif len(argv) == 3:
            write_safetensors(read_state_dict(argv[1]), argv[2])
        else:
            sys.exit(__doc__)
    except LegacyError as e:
        sys.exit(f"torch_to_safetensors: {e}")


if __name__ == "__main__":
    main(sys.argv)
