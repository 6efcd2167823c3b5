"""Self-test of diffusers_unet2d.py and the diffusers-unet2d fixtures (plain asserts).

    /usr/bin/python3 bench/reference/test_diffusers_unet2d.py
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import diffusers_unet2d as du  # noqa: E402

FIX = os.path.join(HERE, '..', '..', 'packages', 'models', 'fixtures', 'import', 'diffusers-unet2d')
BASE = 'diffusion_pytorch_model'


# ---- the expected state_dict of the fixture config, written out by reading diffusers' code (not by du) ----------
# config: in/out 1, block_out_channels [4, 8], layers_per_block 1, Down=[DownBlock2D, AttnDownBlock2D],
# Up=[AttnUpBlock2D, UpBlock2D], attention_head_dim 4, temb dim 4*4=16.
# ResnetBlock2D.__init__ (resnet.py) registers norm1, conv1, time_emb_proj, norm2, conv2, [conv_shortcut iff cin!=cout];
# Attention (attention_processor.py, _from_deprecated_attn_block) registers group_norm, to_q, to_k, to_v, to_out.0;
# Attn*Block2D / UNetMidBlock2D assign self.attentions before self.resnets; UNet2DModel registers conv_in,
# time_embedding, down_blocks, mid_block (placeholder None set before up_blocks), up_blocks, conv_norm_out, conv_out.

def _resnet(p, cin, cout, temb=16):
    out = [(f'{p}.norm1.weight', [cin]), (f'{p}.norm1.bias', [cin]),
           (f'{p}.conv1.weight', [cout, cin, 3, 3]), (f'{p}.conv1.bias', [cout]),
           (f'{p}.time_emb_proj.weight', [cout, temb]), (f'{p}.time_emb_proj.bias', [cout]),
           (f'{p}.norm2.weight', [cout]), (f'{p}.norm2.bias', [cout]),
           (f'{p}.conv2.weight', [cout, cout, 3, 3]), (f'{p}.conv2.bias', [cout])]
    if cin != cout:
        out += [(f'{p}.conv_shortcut.weight', [cout, cin, 1, 1]), (f'{p}.conv_shortcut.bias', [cout])]
    return out


def _attn(p, c):
    out = [(f'{p}.group_norm.weight', [c]), (f'{p}.group_norm.bias', [c])]
    for n in ('to_q', 'to_k', 'to_v', 'to_out.0'):
        out += [(f'{p}.{n}.weight', [c, c]), (f'{p}.{n}.bias', [c])]
    return out


EXPECTED = (
    [('conv_in.weight', [4, 1, 3, 3]), ('conv_in.bias', [4]),
     ('time_embedding.linear_1.weight', [16, 4]), ('time_embedding.linear_1.bias', [16]),
     ('time_embedding.linear_2.weight', [16, 16]), ('time_embedding.linear_2.bias', [16])]
    # down_blocks.0 = DownBlock2D(4 -> 4) + Downsample2D(name='op' -> .conv)
    + _resnet('down_blocks.0.resnets.0', 4, 4)
    + [('down_blocks.0.downsamplers.0.conv.weight', [4, 4, 3, 3]), ('down_blocks.0.downsamplers.0.conv.bias', [4])]
    # down_blocks.1 = AttnDownBlock2D(4 -> 8), final: no downsampler
    + _attn('down_blocks.1.attentions.0', 8)
    + _resnet('down_blocks.1.resnets.0', 4, 8)
    # mid_block = UNetMidBlock2D(8): attentions.0, resnets.0, resnets.1
    + _attn('mid_block.attentions.0', 8)
    + _resnet('mid_block.resnets.0', 8, 8) + _resnet('mid_block.resnets.1', 8, 8)
    # up_blocks.0 = AttnUpBlock2D(in 4, prev 8, out 8, 2 layers): resnet in = prev/out + skip (out, then in)
    + _attn('up_blocks.0.attentions.0', 8) + _attn('up_blocks.0.attentions.1', 8)
    + _resnet('up_blocks.0.resnets.0', 8 + 8, 8) + _resnet('up_blocks.0.resnets.1', 8 + 4, 8)
    + [('up_blocks.0.upsamplers.0.conv.weight', [8, 8, 3, 3]), ('up_blocks.0.upsamplers.0.conv.bias', [8])]
    # up_blocks.1 = UpBlock2D(in 4, prev 8, out 4, 2 layers), final: no upsampler
    + _resnet('up_blocks.1.resnets.0', 8 + 4, 4) + _resnet('up_blocks.1.resnets.1', 4 + 4, 4)
    + [('conv_norm_out.weight', [4]), ('conv_norm_out.bias', [4]),
       ('conv_out.weight', [1, 4, 3, 3]), ('conv_out.bias', [1])]
)


def config():
    with open(os.path.join(FIX, 'config.json')) as f:
        return json.load(f)


def model_with(sd):
    m = du.UNet2DModel(config()).eval()
    m.load_state_dict(sd, strict=True)
    return m


def test_keys():
    m = du.UNet2DModel(config())
    got = [(k, list(v.shape)) for k, v in m.state_dict().items()]
    assert got == EXPECTED, (set(got) ^ set(EXPECTED))
    sd, _ = st_io.load(os.path.join(FIX, f'{BASE}.safetensors'))
    assert sorted((k, list(v.shape)) for k, v in sd.items()) == sorted(EXPECTED)
    assert all(v.dtype == torch.float32 for v in sd.values())
    print('keys: ok,', len(EXPECTED), 'tensors')


def test_legacy():
    legacy, _ = st_io.load(os.path.join(FIX, 'legacy', f'{BASE}.safetensors'))
    new, _ = st_io.load(os.path.join(FIX, f'{BASE}.safetensors'))
    assert not any('.to_q.' in k or '.to_out.0.' in k for k in legacy)
    # hand-written legacy names of one attention block
    for old, cur in (('query', 'to_q'), ('key', 'to_k'), ('value', 'to_v'), ('proj_attn', 'to_out.0')):
        for wb in ('weight', 'bias'):
            assert f'mid_block.attentions.0.{old}.{wb}' in legacy
            assert f'up_blocks.0.attentions.1.{old}.{wb}' in legacy
            assert torch.equal(legacy[f'down_blocks.1.attentions.0.{old}.{wb}'],
                               new[f'down_blocks.1.attentions.0.{cur}.{wb}'])
    assert 'mid_block.attentions.0.group_norm.weight' in legacy  # group_norm keeps its name
    renamed = du.rename_legacy_keys(legacy)
    assert sorted(renamed) == sorted(new)
    assert all(torch.equal(renamed[k], new[k]) for k in new)
    assert du.rename_legacy_keys(new).keys() == new.keys()  # idempotent on current keys
    io, _ = st_io.load(os.path.join(FIX, 'io.f32.safetensors'))
    with torch.no_grad():
        a = model_with(du.load_weights(os.path.join(FIX, 'legacy', f'{BASE}.safetensors')))(io['x'], io['timestep'])
        b = model_with(new)(io['x'], io['timestep'])
    assert torch.equal(a, b) and torch.equal(a, io['eps'])
    print('legacy: ok')


def test_variants():
    f32, _ = st_io.load(os.path.join(FIX, f'{BASE}.safetensors'))
    for variant, dt, file in (('f32', torch.float32, f'{BASE}.safetensors'),
                              ('f16', torch.float16, f'{BASE}.f16.safetensors'),
                              ('bf16', torch.bfloat16, f'{BASE}.bf16.safetensors'),
                              ('f16', torch.float16, f'sharded/{BASE}.safetensors.index.json')):
        raw = st_io.load(os.path.join(FIX, file))[0] if file.endswith('.safetensors') else None
        if raw is not None:
            assert all(v.dtype == dt for v in raw.values()), file
        sd = du.load_weights(os.path.join(FIX, file))
        assert all(torch.equal(sd[k], f32[k].to(dt).float()) for k in f32), file
        io, _ = st_io.load(os.path.join(FIX, f'io.{variant}.safetensors'))
        with torch.no_grad():
            eps = model_with(sd)(io['x'], io['timestep'])
        assert eps.dtype == torch.float32 and eps.shape == io['x'].shape
        assert torch.equal(eps, io['eps']), (file, float((eps - io['eps']).abs().max()))
    index = json.load(open(os.path.join(FIX, 'sharded', f'{BASE}.safetensors.index.json')))
    assert 2 <= len(set(index['weight_map'].values())) <= 3
    io, _ = st_io.load(os.path.join(FIX, 'io.f32.safetensors'))
    t = io['timestep']
    assert len(set(t.tolist())) >= 4 and int(t.min()) == 0 and int(t.max()) == 999
    assert float(io['eps'].std()) > 0.1
    # the output depends on the timestep: same x, different t
    m = model_with(f32)
    x = io['x'][:1].repeat(len(t), 1, 1, 1)
    with torch.no_grad():
        e = m(x, t)
    for i in range(1, len(t)):
        assert float((e[i] - e[0]).abs().max()) > 1e-3, i
    print('variants: ok; |eps(t)-eps(0)| max per t:', [round(float((e[i] - e[0]).abs().max()), 4) for i in range(len(t))])


def test_every_parameter_matters():
    f32, _ = st_io.load(os.path.join(FIX, f'{BASE}.safetensors'))
    io, _ = st_io.load(os.path.join(FIX, 'io.f32.safetensors'))
    m = model_with(f32)
    g = torch.Generator().manual_seed(0)
    for k in f32:
        if k.endswith('.to_k.bias'):  # adds q.b_k, constant along the softmax axis: no effect, mathematically
            continue
        # perturbing any tensor (not by a constant: GroupNorm would cancel a uniform bias shift)
        sd = dict(f32)
        sd[k] = f32[k] + 0.5 * torch.randn(f32[k].shape, generator=g)
        m.load_state_dict(sd)
        with torch.no_grad():
            d = float((m(io['x'], io['timestep']) - io['eps']).abs().max())
        assert d > 1e-4, (k, d)
    print('every parameter matters: ok')


def test_timestep_embedding():
    # embeddings.get_timestep_embedding written out: freqs_i = exp(-ln(10000) * i / (half - shift)), [sin, cos]
    t = torch.tensor([0, 3, 999])
    for dim, flip, shift in ((4, False, 1), (8, True, 0), (7, False, 1)):
        half = dim // 2
        exp = []
        for tv in t.tolist():
            f = [math.exp(-math.log(10000) * i / (half - shift)) for i in range(half)]
            row = [math.sin(tv * a) for a in f] + [math.cos(tv * a) for a in f]
            if flip:
                row = row[half:] + row[:half]
            exp.append(row + [0.0] * (dim % 2))
        got = du.timestep_embedding(t, dim, flip, shift)
        assert torch.allclose(got, torch.tensor(exp, dtype=torch.float32), atol=2e-4), (dim, flip, shift)
    io, _ = st_io.load(os.path.join(FIX, 'io.f32.safetensors'))
    cfg = config()
    assert torch.equal(io['t_emb'], du.timestep_embedding(io['timestep'], 4, cfg['flip_sin_to_cos'], cfg['freq_shift']))
    print('timestep embedding: ok')


def test_schedule():
    with open(os.path.join(FIX, 'scheduler_config.json')) as f:
        sc = json.load(f)
    assert sc['_class_name'] == 'DDPMScheduler' and sc['beta_schedule'] == 'linear'
    n = sc['num_train_timesteps']
    # closed form, float64: prod_{j<=i} (1 - (1e-4 + j * (0.02 - 1e-4) / 999))
    ac64, p = [], 1.0
    for j in range(n):
        p *= 1.0 - (1e-4 + j * (0.02 - 1e-4) / (n - 1))
        ac64.append(p)
    ac64 = torch.tensor(ac64, dtype=torch.float64)
    sched, _ = st_io.load(os.path.join(FIX, 'schedule.safetensors'))
    ac = sched['alphas_cumprod']
    assert ac.dtype == torch.float32 and ac.shape == (n,)
    rel = float(((ac.double() - ac64) / ac64).abs().max())
    assert rel < 2e-5, rel
    assert torch.equal(ac, du.alphas_cumprod(sc))
    assert torch.equal(sched['betas'], torch.linspace(1e-4, 0.02, n, dtype=torch.float32))
    # other schedules
    sl = du.betas({'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'beta_end': 0.012})
    assert abs(float(sl[0]) - 0.00085) < 1e-9 and abs(float(sl[-1]) - 0.012) < 1e-8
    cos = du.betas({'beta_schedule': 'squaredcos_cap_v2'})
    assert float(cos[-1]) == float(torch.tensor(0.999, dtype=torch.float32)) and float(cos.max()) <= 0.999 + 1e-7
    ab = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert abs(float(cos[10]) - (1 - ab(11 / 1000) / ab(10 / 1000))) < 1e-8
    sigma = ((1 - ac.double()) / ac.double()).sqrt()
    print(f'schedule: ok (max rel err float32 vs float64 closed form {rel:.2e}; '
          f'sigma_0={float(sigma[0]):.5f}, sigma_999={float(sigma[-1]):.2f})')


def test_block_shapes():
    torch.manual_seed(0)
    r = du.ResnetBlock2D(12, 8, 16, 1e-6, 2, 'silu')
    assert [(k, list(v.shape)) for k, v in r.state_dict().items()] == \
        [(k.split('resnets.0.')[1], s) for k, s in _resnet('x.resnets.0', 12, 8)]
    y = r(torch.randn(3, 12, 5, 6), torch.randn(3, 16))
    assert y.shape == (3, 8, 5, 6)
    a = du.Attention(8, 2, 4, 1.0, 1e-6, 2)
    assert [(k, list(v.shape)) for k, v in a.state_dict().items()] == \
        [(k.split('attentions.0.')[1], s) for k, s in _attn('x.attentions.0', 8)]
    x = torch.randn(3, 8, 5, 6)
    y = a(x)
    assert y.shape == x.shape
    # attention written out per head: softmax(q_h k_h^T / sqrt(4)) v_h, heads = channel blocks of 4, + residual
    with torch.no_grad():
        h = a.group_norm(x).flatten(2).transpose(1, 2)
        q, k, v = a.to_q(h), a.to_k(h), a.to_v(h)
        o = torch.cat([torch.softmax(q[..., s:s + 4] @ k[..., s:s + 4].transpose(1, 2) / 2.0, -1) @ v[..., s:s + 4]
                       for s in (0, 4)], -1)
        ref = a.to_out[0](o).transpose(1, 2).reshape(x.shape) + x
    assert torch.allclose(y, ref, atol=1e-5)
    print('block shapes: ok')


def test_diffusers_ddpm_pipeline_slice():
    """diffusers tests/pipelines/ddpm/test_ddpm.py::test_fast_inference, replayed: the same seeded default init
    (modules created in diffusers' order), DDPMScheduler() defaults, 2 steps, generator seed 0. Its expected slice
    checks structure/init order against real diffusers (default config paths: flip_sin_to_cos True, freq_shift 0,
    downsample_padding 1, 1 attention head)."""
    torch.manual_seed(0)
    unet = du.UNet2DModel(dict(block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=4, sample_size=8,
                               in_channels=3, out_channels=3, down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                               up_block_types=('AttnUpBlock2D', 'UpBlock2D'))).eval()
    ac = du.alphas_cumprod({})
    g = torch.Generator(device='cpu').manual_seed(0)
    image = torch.randn((1, 3, 8, 8), generator=g, dtype=torch.float32)
    timesteps = [500, 0]  # set_timesteps(2), 'leading': arange(2) * 500 reversed
    for i, t in enumerate(timesteps):
        with torch.no_grad():
            eps = unet(image, torch.tensor(t))
        prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        a_t, a_prev = ac[t], (ac[prev_t] if prev_t >= 0 else torch.tensor(1.0))
        b_t, b_prev = 1 - a_t, 1 - a_prev
        cur_a = a_t / a_prev
        cur_b = 1 - cur_a
        x0 = ((image - b_t ** 0.5 * eps) / a_t ** 0.5).clamp(-1, 1)
        image = (a_prev ** 0.5 * cur_b) / b_t * x0 + cur_a ** 0.5 * b_prev / b_t * image
        if t > 0:
            noise = torch.randn(eps.shape, generator=g, dtype=eps.dtype)
            var = torch.clamp((1 - a_prev) / (1 - a_t) * cur_b, min=1e-20)  # fixed_small
            image = image + var ** 0.5 * noise
    img = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    got = img[0, -3:, -3:, -1].flatten()
    expected = [0.0, 0.9996672, 0.00329116, 1.0, 0.9995991, 1.0, 0.0060907, 0.00115037, 0.0]
    d = max(abs(float(a) - b) for a, b in zip(got, expected))
    # diffusers asserts < 1e-2; its values are printed to ~1e-7 and mostly saturated, so 1e-2 would not notice e.g.
    # a wrong flip_sin_to_cos (1.5e-4), a reversed skip order (1.2e-3) or attention scale (4.5e-4): we ask 2e-5.
    assert d < 2e-5, (got, expected)
    print(f'diffusers DDPM pipeline fast-test slice: ok (max diff {d:.2e})')


if __name__ == '__main__':
    test_keys()
    test_legacy()
    test_variants()
    test_every_parameter_matters()
    test_timestep_embedding()
    test_schedule()
    test_block_shapes()
    test_diffusers_ddpm_pipeline_slice()
    print('all ok')
