"""Fixtures for importing EDM's DDPM++ networks: packages/models/fixtures/import/edm-ddpmpp/.

    /usr/bin/python3 bench/reference/make_fixtures_edm.py [--out DIR]

A small random-weight EDMPrecond(SongUNet) in the DDPM++ configuration (bench/reference/edm_ddpmpp.py):
1 channel, 32×32, model_channels 4, channel_mult [2, 2] (the shape of CIFAR-10 DDPM++'s [2, 2, 2]:
the first block widens 4 → 8 through a 1×1 skip), num_blocks 1, attention at 16×16,
label_dim 10, augment_dim 9 (as EDM's CIFAR-10 networks: `map_augment` is stored but unused at
inference). Every parameter is redrawn (seeded) so that no layer is zero; written through
export_edm.export as F32, F16 and BF16 plus an F16 sharded copy, and for each dtype an io file
with the denoiser's output on fixed inputs, computed in float32 with that file's (rounded) weights.
Deterministic: the same bytes on every run (one thread, fixed seeds).
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edm_ddpmpp  # noqa: E402
import export_edm  # noqa: E402
import st_io  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEFAULT_OUT = os.path.join(ROOT, 'packages', 'models', 'fixtures', 'import', 'edm-ddpmpp')

CONFIG = dict(
    img_resolution=32, img_channels=1, label_dim=10, model_type='SongUNet',
    embedding_type='positional', encoder_type='standard', decoder_type='standard', channel_mult_noise=1,
    resample_filter=[1, 1], model_channels=4, channel_mult=[2, 2], num_blocks=1, attn_resolutions=[16],
    dropout=0.13, augment_dim=9, use_fp16=False,
)
SIGMAS = [0.002, 0.05, 0.5, 2.0, 10.0, 80.0]
LABELS = [3, 0, 9, 3, 7, 1]
DTYPES = {'f32': 'F32', 'f16': 'F16', 'bf16': 'BF16'}
TORCH_DTYPE = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def build(seed=20):
    torch.manual_seed(seed)
    net = edm_ddpmpp.EDMPrecond(**CONFIG).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.named_parameters():  # buffers (resample_filter) stay as they are
            if name.endswith('norm0.weight') or name.endswith('norm1.weight') or name.endswith('norm2.weight') \
                    or name.endswith('aux_norm.weight'):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return net


def inputs(seed=21):
    g = torch.Generator().manual_seed(seed)
    b = len(SIGMAS)
    sigma = torch.tensor(SIGMAS, dtype=torch.float32)
    x = 0.5 * torch.randn(b, 1, 32, 32, generator=g) + sigma.view(-1, 1, 1, 1) * torch.randn(b, 1, 32, 32, generator=g)
    labels = torch.nn.functional.one_hot(torch.tensor(LABELS), 10).to(torch.float32)
    return x, sigma, labels


def rounded(net, dtype):
    """A copy of net with every floating tensor rounded to dtype and widened back to float32."""
    twin = edm_ddpmpp.EDMPrecond(**CONFIG).eval()
    sd = {k: v.to(TORCH_DTYPE[dtype]).to(torch.float32) for k, v in net.state_dict().items()}
    twin.load_state_dict(sd)
    return twin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=DEFAULT_OUT)
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    net = build()
    x, sigma, labels = inputs()
    for variant, dtype in DTYPES.items():
        export_edm.export(net, os.path.join(a.out, f'weights.{variant}.safetensors'), dtype)
        tensors, meta = st_io.load(os.path.join(a.out, f'weights.{variant}.safetensors'))
        twin = edm_ddpmpp.from_edm_kwargs(json.loads(meta['edm_kwargs'])).eval()
        twin.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
        with torch.no_grad():
            out = twin(x, sigma, labels)
            ref = rounded(net, dtype)(x, sigma, labels)
        assert torch.equal(out, ref), variant
        st_io.save(os.path.join(a.out, f'io.{variant}.safetensors'),
                   {'x': x, 'sigma': sigma, 'class_labels': labels, 'out': out},
                   {'weights': f'weights.{variant}.safetensors', 'layout': 'NCHW'})
        print(f'{variant}: |out| mean {out.abs().mean():.4f}, per-sigma std {[round(float(o.std()), 4) for o in out]}')
    shard_dir = os.path.join(a.out, 'sharded')
    shutil.rmtree(shard_dir, ignore_errors=True)
    os.makedirs(shard_dir)
    sd = {k: v.detach() for k, v in net.state_dict().items()}
    meta = {'format': 'edm', 'edm_kwargs': json.dumps(export_edm.edm_kwargs(net), sort_keys=True, allow_nan=False)}
    st_io.save_sharded(shard_dir, 'model', sd, max_shard_bytes=14_000, metadata=meta, dtype='F16')
    print('shards:', sorted(os.listdir(shard_dir)))


if __name__ == '__main__':
    main()
