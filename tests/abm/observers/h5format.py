"""Test helper: what an HDF5 file holds at the byte level (format versions, chunk indexes).

Reads the structures of the HDF5 file format specification (version 3.0) that matter to the run
files' tests: the superblock's version and file-consistency flags, the messages of version-2
object headers (and their continuation chunks), a chunked dataset's extensible-array index.
Only for files written with the 1.10 format or later (superblock 2+, object headers v2).
"""

from __future__ import annotations

import os
import struct
from collections import defaultdict

import h5py

LAYOUT = 0x08  # data layout message
CONTINUATION = 0x10  # object header continuation message
SIZE_OF_OFFSETS = 8  # what h5py writes (checked in superblock())


def superblock(path: str | os.PathLike) -> tuple[int, int]:
    """(version, file-consistency flags) of the superblock at the start of ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(13)
    assert head[:8] == b"\x89HDF\r\n\x1a\n", f"{path}: no HDF5 superblock at 0"
    assert head[8] < 2 or head[9] == SIZE_OF_OFFSETS
    return head[8], head[11]


def _open(path: str | os.PathLike) -> h5py.File:
    """Open ``path`` read-only; in SWMR mode when it is flagged open for writing."""
    return h5py.File(path, "r", swmr=bool(superblock(path)[1] & 0x05))


def header_messages(data: bytes, addr: int) -> list[tuple[int, int, int]]:
    """(type, version byte, data offset) of each message of the v2 object header at ``addr``."""
    assert data[addr : addr + 4] == b"OHDR", f"no v2 object header at {addr}"
    version, flags = data[addr + 4], data[addr + 5]
    assert version == 2
    j = addr + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    size = int.from_bytes(data[j : j + width], "little")
    blocks = [(j + width, j + width + size)]
    out = []
    while blocks:
        j, end = blocks.pop(0)
        while j + 4 <= end:
            mtype, msize, _ = data[j], struct.unpack_from("<H", data, j + 1)[0], data[j + 3]
            j += 4 + (2 if flags & 0x04 else 0)
            if msize:
                out.append((mtype, data[j], j))
            if mtype == CONTINUATION:
                at, length = struct.unpack_from("<QQ", data, j)
                assert data[at : at + 4] == b"OCHK"
                blocks.append((at + 4, at + length - 4))  # less signature and checksum
            j += msize
    return out


def message_versions(path: str | os.PathLike) -> dict[int, set[int]]:
    """{message type: versions} over the object headers of every group and dataset."""
    data = open(path, "rb").read()
    versions: dict[int, set[int]] = defaultdict(set)
    with _open(path) as f:
        objects = [f]
        f.visititems(lambda _name, obj: objects.append(obj))
        for obj in objects:
            for mtype, version, _ in header_messages(data, h5py.h5o.get_info(obj.id).addr):
                versions[mtype].add(version)
    return dict(versions)


def chunk_index_block(path: str | os.PathLike, dataset: str) -> int:
    """File address of the extensible-array index block of the chunked ``dataset``.

    Datasets with one unlimited dimension (all the growing datasets of run.h5) index their
    chunks with an extensible array: layout message v4 -> header ``EAHD`` -> block ``EAIB``.
    """
    data = open(path, "rb").read()
    with _open(path) as f:
        addr = h5py.h5o.get_info(f[dataset].id).addr
    (j,) = [j for t, _, j in header_messages(data, addr) if t == LAYOUT]
    version, layout_class, _flags, rank, width = data[j : j + 5]
    assert (version, layout_class) == (4, 2), "not a chunked layout message v4"
    j += 5 + rank * width
    assert data[j] == 4, f"{dataset}: chunk index type {data[j]}, not an extensible array"
    header = struct.unpack_from("<Q", data, j + 1 + 5)[0]
    assert data[header : header + 4] == b"EAHD"
    block = struct.unpack_from("<Q", data, header + 12 + 6 * 8)[0]
    assert data[block : block + 4] == b"EAIB"
    return block


def damage_chunk_index(path: str | os.PathLike, dataset: str) -> None:
    """Overwrite bytes of ``dataset``'s chunk index block (its checksum then fails)."""
    block = chunk_index_block(path, dataset)
    with open(path, "r+b") as fh:
        fh.seek(block + 6)
        fh.write(b"\xa5" * 24)
