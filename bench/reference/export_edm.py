"""Export an EDM network pickle (NVlabs/edm) to safetensors, with torch and json only.

Run it from inside an EDM checkout (its `dnnlib` and `torch_utils` must be importable: unpickling
an EDM snapshot rebuilds the network from the source code stored in the pickle, and that code
imports them), keeping this file next to `st_io.py`:

    cd edm && python /path/to/bench/reference/export_edm.py network-snapshot.pkl out.safetensors [--dtype F32|F16|BF16]
    [--edm-root DIR]   # where dnnlib/ and torch_utils/ are, if not the current folder

It writes `pickle.load(f)['ema'].state_dict()` (EDM's own key names, every floating tensor cast to
--dtype, F32 by default; this includes the constant `resample_filter` buffers of the up/down
convolutions) and, in the file's `__metadata__`:

    format      "edm"
    edm_kwargs  JSON: {"class_name": "EDMPrecond", "img_resolution", "img_channels", "label_dim",
                "use_fp16", "sigma_min", "sigma_max", "sigma_data", "model_type": "SongUNet",
                "model_kwargs": {every SongUNet kwarg, defaults filled in: "img_resolution",
                "in_channels", "out_channels", "label_dim", "augment_dim", "model_channels",
                "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions", "dropout",
                "label_dropout", "embedding_type", "channel_mult_noise", "encoder_type",
                "decoder_type", "resample_filter"}}
                Non-finite floats (EDMPrecond's default sigma_max = inf) are written as null.

`export(net, path, dtype)` works on any module with `init_kwargs` and a `.model` with
`init_kwargs` (EDM's persistent classes, or bench/reference/edm_ddpmpp.py's); `edm_kwargs(net)`
gives the dict alone.
"""
import argparse
import inspect
import json
import math
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

# The precond's own kwargs; everything else in its init_kwargs goes on to the model.
_PRECOND_KEYS = ('img_resolution', 'img_channels', 'label_dim', 'use_fp16', 'sigma_min', 'sigma_max', 'sigma_data',
                 'model_type')


def _defaults(obj):
    """The keyword defaults of obj's constructor, looking through wrappers whose __init__ is (*args, **kwargs)
    (EDM's persistence decorator subclasses the real class)."""
    for cls in type(obj).__mro__:
        init = cls.__dict__.get('__init__')
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        if any(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params):
            return {p.name: p.default for p in params
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}
    return {}


def _plain(v):
    """JSON-safe: tuples to lists, numpy/torch scalars to numbers, non-finite floats to None."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, 'item') and callable(v.item) and getattr(v, 'ndim', 0) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def edm_kwargs(net):
    """The kwargs that rebuild `net` (an EDMPrecond-like module with `.model`), defaults filled in."""
    pk = {**_defaults(net), **dict(net.init_kwargs)}
    mk = {**_defaults(net.model), **dict(net.model.init_kwargs)}
    out = {'class_name': type(net).__name__}
    out.update({k: pk[k] for k in _PRECOND_KEYS if k in pk})
    out['model_type'] = pk.get('model_type', type(net.model).__name__)
    out['model_kwargs'] = mk
    return _plain(out)


def export(net, path, dtype='F32'):
    """Write net.state_dict() (floats cast to dtype) and its kwargs to a safetensors file; returns the metadata."""
    if dtype not in ('F32', 'F16', 'BF16'):
        raise ValueError(f'export_edm: dtype {dtype!r} is not one of F32, F16, BF16')
    tensors = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    metadata = {'format': 'edm', 'edm_kwargs': json.dumps(edm_kwargs(net), sort_keys=True, allow_nan=False)}
    st_io.save(path, tensors, metadata, dtype)
    return metadata


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('pkl', help="EDM network pickle (e.g. network-snapshot-*.pkl or edm-cifar10-32x32-*.pkl)")
    ap.add_argument('out', help='output .safetensors')
    ap.add_argument('--dtype', default='F32', choices=['F32', 'F16', 'BF16'])
    ap.add_argument('--edm-root', default='.', help='folder holding dnnlib/ and torch_utils/ (default: the current one)')
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.abspath(a.edm_root))
    with open(a.pkl, 'rb') as f:
        net = pickle.load(f)['ema']
    meta = export(net.eval(), a.out, a.dtype)
    n = sum(v.numel() for v in net.state_dict().values())
    print(f'{a.out}: {len(net.state_dict())} tensors, {n} values, {a.dtype}; edm_kwargs {meta["edm_kwargs"]}')


if __name__ == '__main__':
    main()
