"""Fixtures for importing a diffusers UNet2DModel + DDPMScheduler (issue 20, "bring your own teacher").

    /usr/bin/python3 bench/reference/make_fixtures_diffusers.py [out_dir]

writes packages/models/fixtures/import/diffusers-unet2d/ (see the README.md written there). Deterministic: re-running
gives identical bytes. Safetensors go through st_io only.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import diffusers_unet2d as du  # noqa: E402

OUT = os.path.join(HERE, '..', '..', 'packages', 'models', 'fixtures', 'import', 'diffusers-unet2d')
SEED = 20
STD = 0.2
BASE = 'diffusion_pytorch_model'

# A tiny DDPM-style UNet. The non-default values (downsample_padding 0, flip_sin_to_cos false, freq_shift 1,
# norm_eps 1e-6) are those of google/ddpm-cifar10-32's config, so the importer's non-default paths are exercised.
CONFIG = {
    '_class_name': 'UNet2DModel',
    '_diffusers_version': '0.30.0',
    'act_fn': 'silu',
    'add_attention': True,
    'attention_head_dim': 4,
    'block_out_channels': [4, 8],
    'center_input_sample': False,
    'class_embed_type': None,
    'down_block_types': ['DownBlock2D', 'AttnDownBlock2D'],
    'downsample_padding': 0,
    'downsample_type': 'conv',
    'dropout': 0.0,
    'flip_sin_to_cos': False,
    'freq_shift': 1,
    'in_channels': 1,
    'layers_per_block': 1,
    'mid_block_scale_factor': 1,
    'norm_eps': 1e-06,
    'norm_num_groups': 2,
    'num_class_embeds': None,
    'out_channels': 1,
    'resnet_time_scale_shift': 'default',
    'sample_size': 32,
    'time_embedding_type': 'positional',
    'up_block_types': ['AttnUpBlock2D', 'UpBlock2D'],
    'upsample_type': 'conv',
}

SCHEDULER = {
    '_class_name': 'DDPMScheduler',
    '_diffusers_version': '0.30.0',
    'beta_end': 0.02,
    'beta_schedule': 'linear',
    'beta_start': 0.0001,
    'clip_sample': True,
    'num_train_timesteps': 1000,
    'prediction_type': 'epsilon',
    'trained_betas': None,
    'variance_type': 'fixed_large',
}

TIMESTEPS = [0, 1, 10, 250, 500, 999]
META = {'format': 'pt'}


def random_state_dict(model, seed=SEED, std=STD):
    """Every parameter re-drawn: GroupNorm weights 1 + std*N(0,1), everything else std*N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, p in model.state_dict().items():
        r = torch.randn(p.shape, generator=g, dtype=torch.float32) * std
        is_norm_weight = name.endswith('.weight') and p.dim() == 1 and ('norm' in name.split('.')[-2])
        sd[name] = r + 1.0 if is_norm_weight else r
    return sd


def rounded(sd, dtype):
    return {k: v.to(dtype).float() for k, v in sd.items()}


def run(model, sd, x, t):
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        return model(x, t).float().contiguous()


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write('\n')


def main(out=OUT):
    torch.set_num_threads(1)  # a fixed reduction order
    os.makedirs(os.path.join(out, 'sharded'), exist_ok=True)
    os.makedirs(os.path.join(out, 'legacy'), exist_ok=True)
    write_json(os.path.join(out, 'config.json'), CONFIG)
    write_json(os.path.join(out, 'scheduler_config.json'), SCHEDULER)

    model = du.UNet2DModel(CONFIG).eval()
    sd = random_state_dict(model)

    st_io.save(os.path.join(out, f'{BASE}.safetensors'), sd, META, dtype='F32')
    st_io.save(os.path.join(out, f'{BASE}.f16.safetensors'), sd, META, dtype='F16')
    st_io.save(os.path.join(out, f'{BASE}.bf16.safetensors'), sd, META, dtype='BF16')
    n_f16 = sum(v.numel() * 2 for v in sd.values())
    st_io.save_sharded(os.path.join(out, 'sharded'), BASE, sd, max_shard_bytes=n_f16 * 2 // 5, metadata=META,
                       dtype='F16')
    st_io.save(os.path.join(out, 'legacy', f'{BASE}.safetensors'), du.to_legacy_keys(sd), META, dtype='F32')

    g = torch.Generator().manual_seed(SEED + 1)
    b = len(TIMESTEPS)
    x = torch.randn(b, CONFIG['in_channels'], CONFIG['sample_size'], CONFIG['sample_size'], generator=g)
    t = torch.tensor(TIMESTEPS, dtype=torch.int32)
    t_emb = du.timestep_embedding(t, CONFIG['block_out_channels'][0], CONFIG['flip_sin_to_cos'], CONFIG['freq_shift'])

    outs = {}
    for variant, dt in (('f32', torch.float32), ('f16', torch.float16), ('bf16', torch.bfloat16)):
        eps = run(model, rounded(sd, dt), x, t)
        outs[variant] = eps
        tensors = {'x': x, 'timestep': t, 'eps': eps}
        meta = {'variant': variant, 'weights': {'f32': f'{BASE}.safetensors (also legacy/)',
                                                'f16': f'{BASE}.f16.safetensors (also sharded/)',
                                                'bf16': f'{BASE}.bf16.safetensors'}[variant],
                'layout': 'NCHW', 'timestep': 'int32 DDPM step index'}
        if variant == 'f32':
            tensors['t_emb'] = t_emb  # the sinusoidal projection (time_proj output), [B, block_out_channels[0]]
        st_io.save(os.path.join(out, f'io.{variant}.safetensors'), tensors, meta)

    st_io.save(os.path.join(out, 'schedule.safetensors'),
               {'betas': du.betas(SCHEDULER), 'alphas_cumprod': du.alphas_cumprod(SCHEDULER)},
               {'from': 'scheduler_config.json (DDPMScheduler, float32 as diffusers)'})
    return sd, x, t, outs


if __name__ == '__main__':
    sd, x, t, outs = main(sys.argv[1] if len(sys.argv) > 1 else OUT)
    e = outs['f32']
    print('params', sum(v.numel() for v in sd.values()), 'tensors', len(sd))
    print('eps std', float(e.std()), 'per-sample std', [round(float(s), 4) for s in e.flatten(1).std(1)])
    for k in ('f16', 'bf16'):
        print(k, 'max |eps - eps_f32|', float((outs[k] - e).abs().max()))
