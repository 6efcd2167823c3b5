"""Safetensors files with torch and json only (no `safetensors` package).

The format: 8 bytes little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the raw
little-endian tensor bytes. Dtypes here: F32, F16, BF16, I32, I64.

    save(path, {"w": tensor}, metadata={"k": "v"}, dtype="F16")   # floats cast to F16
    tensors, metadata = load(path)
    save_sharded(folder, "model", tensors, max_shard_bytes=100_000)  # model-0000i-of-0000n + index
"""
import json
import os

import torch

_TORCH = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I32': torch.int32, 'I64': torch.int64}
_NAME = {v: k for k, v in _TORCH.items()}
# element views that have a numpy counterpart (bfloat16 has none: its bits go out as int16)
_VIEW = {torch.bfloat16: torch.int16}


def _bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in _VIEW:
        t = t.view(_VIEW[t.dtype])
    return t.numpy().tobytes()


def encode(tensors, metadata=None, dtype=None):
    """The file's bytes. `dtype` ('F32', 'F16' or 'BF16') casts every floating tensor."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        if dtype is not None and t.is_floating_point():
            t = t.to(_TORCH[dtype])
        if t.dtype not in _NAME:
            raise ValueError(f'st_io: tensor {name!r} has dtype {t.dtype}, not one of {sorted(_TORCH)}')
        data = _bytes(t)
        header[name] = {'dtype': _NAME[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)  # the tensor bytes start 8-aligned
    return len(text).to_bytes(8, 'little') + text + b''.join(chunks)


def save(path, tensors, metadata=None, dtype=None):
    tmp = f'{path}.tmp'
    with open(tmp, 'wb') as f:
        f.write(encode(tensors, metadata, dtype))
    os.replace(tmp, path)


def decode(data):
    """(tensors, metadata) from a file's bytes."""
    n = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + n].decode('utf-8'))
    metadata = header.pop('__metadata__', {})
    base, out = 8 + n, {}
    for name, e in header.items():
        begin, end = e['data_offsets']
        dt = _TORCH[e['dtype']]
        raw = bytearray(data[base + begin:base + end])
        t = torch.frombuffer(raw, dtype=_VIEW.get(dt, dt)) if end > begin else torch.empty(0, dtype=_VIEW.get(dt, dt))
        out[name] = t.view(dt).reshape(e['shape']).clone()
    return out, metadata


def load(path):
    with open(path, 'rb') as f:
        return decode(f.read())


def save_sharded(folder, base, tensors, max_shard_bytes, metadata=None, dtype=None):
    """Shards `{base}-0000i-of-0000n.safetensors` of at most about max_shard_bytes each, and
    `{base}.safetensors.index.json` mapping every tensor to its shard (the Hugging Face layout)."""
    groups, cur, size = [], {}, 0
    for name, t in tensors.items():
        nbytes = t.numel() * (2 if dtype in ('F16', 'BF16') and t.is_floating_point() else t.element_size())
        if cur and size + nbytes > max_shard_bytes:
            groups.append(cur)
            cur, size = {}, 0
        cur[name] = t
        size += nbytes
    if cur:
        groups.append(cur)
    weight_map, total = {}, 0
    for i, g in enumerate(groups):
        file = f'{base}-{i + 1:05d}-of-{len(groups):05d}.safetensors'
        data = encode(g, metadata, dtype)
        with open(os.path.join(folder, file), 'wb') as f:
            f.write(data)
        total += len(data)
        weight_map.update({name: file for name in g})
    with open(os.path.join(folder, f'{base}.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=1)
