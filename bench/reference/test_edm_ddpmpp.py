"""Self-test of edm_ddpmpp.py, export_edm.py and the committed EDM fixtures. Plain asserts:

    /usr/bin/python3 bench/reference/test_edm_ddpmpp.py
"""
import json
import math
import os
import sys
import tempfile

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edm_ddpmpp  # noqa: E402
import export_edm  # noqa: E402
import make_fixtures_edm  # noqa: E402
import st_io  # noqa: E402

# EDMPrecond(img_resolution=32, img_channels=1, label_dim=10, model_type='SongUNet', model_channels=4,
# channel_mult=[2, 2], num_blocks=1, attn_resolutions=[16], augment_dim=9, DDPM++ settings).state_dict(),
# written out by hand from NVlabs/edm training/networks.py (008a4e5, same as 0a2ff34 for DDPM++): SongUNet.__init__ (mapping
# layers; `enc` loop: level 0 `_conv` then `_block{idx}` with in→out = cout→model_channels*mult, later
# levels `_down` then blocks; `dec` loop: last level `_in0` (attention=True always) and `_in1`, other
# levels `_up`, then num_blocks+1 blocks over cin = cout + skips.pop(), attention only on idx == num_blocks;
# `_aux_norm`/`_aux_conv` at level 0), UNetBlock.__init__ (children norm0, conv0, affine, norm1, conv1,
# skip if in != out or up/down with kernel 1 because resample_proj=True, norm2/qkv/proj when attention),
# Conv2d.__init__ (weight [out, in, k, k], bias, and a `resample_filter` buffer [1, 1, 2, 2] only when up
# or down: a None buffer is not in state_dict), Linear (weight [out, in]; map_augment has bias=False),
# PositionalEmbedding (no parameters). noise_channels = 4*1, emb_channels = 4*4 = 16.
EXPECTED = """
model.map_label.weight 4,10
model.map_label.bias 4
model.map_augment.weight 4,9
model.map_layer0.weight 16,4
model.map_layer0.bias 16
model.map_layer1.weight 16,16
model.map_layer1.bias 16
model.enc.32x32_conv.weight 4,1,3,3
model.enc.32x32_conv.bias 4
model.enc.32x32_block0.norm0.weight 4
model.enc.32x32_block0.norm0.bias 4
model.enc.32x32_block0.conv0.weight 8,4,3,3
model.enc.32x32_block0.conv0.bias 8
model.enc.32x32_block0.affine.weight 8,16
model.enc.32x32_block0.affine.bias 8
model.enc.32x32_block0.norm1.weight 8
model.enc.32x32_block0.norm1.bias 8
model.enc.32x32_block0.conv1.weight 8,8,3,3
model.enc.32x32_block0.conv1.bias 8
model.enc.32x32_block0.skip.weight 8,4,1,1
model.enc.32x32_block0.skip.bias 8
model.enc.16x16_down.norm0.weight 8
model.enc.16x16_down.norm0.bias 8
model.enc.16x16_down.conv0.weight 8,8,3,3
model.enc.16x16_down.conv0.bias 8
model.enc.16x16_down.conv0.resample_filter 1,1,2,2
model.enc.16x16_down.affine.weight 8,16
model.enc.16x16_down.affine.bias 8
model.enc.16x16_down.norm1.weight 8
model.enc.16x16_down.norm1.bias 8
model.enc.16x16_down.conv1.weight 8,8,3,3
model.enc.16x16_down.conv1.bias 8
model.enc.16x16_down.skip.weight 8,8,1,1
model.enc.16x16_down.skip.bias 8
model.enc.16x16_down.skip.resample_filter 1,1,2,2
model.enc.16x16_block0.norm0.weight 8
model.enc.16x16_block0.norm0.bias 8
model.enc.16x16_block0.conv0.weight 8,8,3,3
model.enc.16x16_block0.conv0.bias 8
model.enc.16x16_block0.affine.weight 8,16
model.enc.16x16_block0.affine.bias 8
model.enc.16x16_block0.norm1.weight 8
model.enc.16x16_block0.norm1.bias 8
model.enc.16x16_block0.conv1.weight 8,8,3,3
model.enc.16x16_block0.conv1.bias 8
model.enc.16x16_block0.norm2.weight 8
model.enc.16x16_block0.norm2.bias 8
model.enc.16x16_block0.qkv.weight 24,8,1,1
model.enc.16x16_block0.qkv.bias 24
model.enc.16x16_block0.proj.weight 8,8,1,1
model.enc.16x16_block0.proj.bias 8
model.dec.16x16_in0.norm0.weight 8
model.dec.16x16_in0.norm0.bias 8
model.dec.16x16_in0.conv0.weight 8,8,3,3
model.dec.16x16_in0.conv0.bias 8
model.dec.16x16_in0.affine.weight 8,16
model.dec.16x16_in0.affine.bias 8
model.dec.16x16_in0.norm1.weight 8
model.dec.16x16_in0.norm1.bias 8
model.dec.16x16_in0.conv1.weight 8,8,3,3
model.dec.16x16_in0.conv1.bias 8
model.dec.16x16_in0.norm2.weight 8
model.dec.16x16_in0.norm2.bias 8
model.dec.16x16_in0.qkv.weight 24,8,1,1
model.dec.16x16_in0.qkv.bias 24
model.dec.16x16_in0.proj.weight 8,8,1,1
model.dec.16x16_in0.proj.bias 8
model.dec.16x16_in1.norm0.weight 8
model.dec.16x16_in1.norm0.bias 8
model.dec.16x16_in1.conv0.weight 8,8,3,3
model.dec.16x16_in1.conv0.bias 8
model.dec.16x16_in1.affine.weight 8,16
model.dec.16x16_in1.affine.bias 8
model.dec.16x16_in1.norm1.weight 8
model.dec.16x16_in1.norm1.bias 8
model.dec.16x16_in1.conv1.weight 8,8,3,3
model.dec.16x16_in1.conv1.bias 8
model.dec.16x16_block0.norm0.weight 16
model.dec.16x16_block0.norm0.bias 16
model.dec.16x16_block0.conv0.weight 8,16,3,3
model.dec.16x16_block0.conv0.bias 8
model.dec.16x16_block0.affine.weight 8,16
model.dec.16x16_block0.affine.bias 8
model.dec.16x16_block0.norm1.weight 8
model.dec.16x16_block0.norm1.bias 8
model.dec.16x16_block0.conv1.weight 8,8,3,3
model.dec.16x16_block0.conv1.bias 8
model.dec.16x16_block0.skip.weight 8,16,1,1
model.dec.16x16_block0.skip.bias 8
model.dec.16x16_block1.norm0.weight 16
model.dec.16x16_block1.norm0.bias 16
model.dec.16x16_block1.conv0.weight 8,16,3,3
model.dec.16x16_block1.conv0.bias 8
model.dec.16x16_block1.affine.weight 8,16
model.dec.16x16_block1.affine.bias 8
model.dec.16x16_block1.norm1.weight 8
model.dec.16x16_block1.norm1.bias 8
model.dec.16x16_block1.conv1.weight 8,8,3,3
model.dec.16x16_block1.conv1.bias 8
model.dec.16x16_block1.skip.weight 8,16,1,1
model.dec.16x16_block1.skip.bias 8
model.dec.16x16_block1.norm2.weight 8
model.dec.16x16_block1.norm2.bias 8
model.dec.16x16_block1.qkv.weight 24,8,1,1
model.dec.16x16_block1.qkv.bias 24
model.dec.16x16_block1.proj.weight 8,8,1,1
model.dec.16x16_block1.proj.bias 8
model.dec.32x32_up.norm0.weight 8
model.dec.32x32_up.norm0.bias 8
model.dec.32x32_up.conv0.weight 8,8,3,3
model.dec.32x32_up.conv0.bias 8
model.dec.32x32_up.conv0.resample_filter 1,1,2,2
model.dec.32x32_up.affine.weight 8,16
model.dec.32x32_up.affine.bias 8
model.dec.32x32_up.norm1.weight 8
model.dec.32x32_up.norm1.bias 8
model.dec.32x32_up.conv1.weight 8,8,3,3
model.dec.32x32_up.conv1.bias 8
model.dec.32x32_up.skip.weight 8,8,1,1
model.dec.32x32_up.skip.bias 8
model.dec.32x32_up.skip.resample_filter 1,1,2,2
model.dec.32x32_block0.norm0.weight 16
model.dec.32x32_block0.norm0.bias 16
model.dec.32x32_block0.conv0.weight 8,16,3,3
model.dec.32x32_block0.conv0.bias 8
model.dec.32x32_block0.affine.weight 8,16
model.dec.32x32_block0.affine.bias 8
model.dec.32x32_block0.norm1.weight 8
model.dec.32x32_block0.norm1.bias 8
model.dec.32x32_block0.conv1.weight 8,8,3,3
model.dec.32x32_block0.conv1.bias 8
model.dec.32x32_block0.skip.weight 8,16,1,1
model.dec.32x32_block0.skip.bias 8
model.dec.32x32_block1.norm0.weight 12
model.dec.32x32_block1.norm0.bias 12
model.dec.32x32_block1.conv0.weight 8,12,3,3
model.dec.32x32_block1.conv0.bias 8
model.dec.32x32_block1.affine.weight 8,16
model.dec.32x32_block1.affine.bias 8
model.dec.32x32_block1.norm1.weight 8
model.dec.32x32_block1.norm1.bias 8
model.dec.32x32_block1.conv1.weight 8,8,3,3
model.dec.32x32_block1.conv1.bias 8
model.dec.32x32_block1.skip.weight 8,12,1,1
model.dec.32x32_block1.skip.bias 8
model.dec.32x32_aux_norm.weight 8
model.dec.32x32_aux_norm.bias 8
model.dec.32x32_aux_conv.weight 1,8,3,3
model.dec.32x32_aux_conv.bias 1
"""


def expected_keys():
    out = []
    for line in EXPECTED.strip().split('\n'):
        k, s = line.split()
        out.append((k, [int(v) for v in s.split(',')]))
    return out


def fixture_net():
    return make_fixtures_edm.build()


def test_keys():
    cfg = {k: v for k, v in make_fixtures_edm.CONFIG.items()}
    net = edm_ddpmpp.EDMPrecond(**cfg)
    got = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    exp = expected_keys()
    assert [k for k, _ in got] == [k for k, _ in exp], set(k for k, _ in got) ^ set(k for k, _ in exp)
    assert got == exp, [(a, b) for a, b in zip(got, exp) if a != b]
    listed = edm_ddpmpp.state_dict_keys(**{k: v for k, v in cfg.items() if k != 'model_type'})
    assert [(k, list(s)) for k, s in listed] == exp
    # the resample filters are EDM's constants: outer([1,1], [1,1]) / 4
    sd = net.state_dict()
    assert torch.equal(sd['model.enc.16x16_down.conv0.resample_filter'], torch.full((1, 1, 2, 2), 0.25))
    # the CIFAR-10 DDPM++ configuration of EDM's train.py (cond, augment): 56 M parameters expected
    cifar = edm_ddpmpp.state_dict_keys(img_resolution=32, img_channels=3, label_dim=10, model_channels=128,
                                       channel_mult=[2, 2, 2], augment_dim=9, dropout=0.13)
    n = sum(math.prod(s) for k, s in cifar if not k.endswith('resample_filter'))
    print(f'  CIFAR-10 DDPM++ (cond): {len(cifar)} tensors, {n} parameters')
    assert 55_000_000 < n < 57_000_000, n
    print('keys: ok', len(exp))


def test_export_roundtrip():
    net = fixture_net()
    with tempfile.TemporaryDirectory() as d:
        for dtype, tdt in (('F32', torch.float32), ('F16', torch.float16), ('BF16', torch.bfloat16)):
            path = os.path.join(d, 'w.safetensors')
            meta = export_edm.export(net, path, dtype)
            tensors, meta2 = st_io.load(path)
            assert meta2 == meta
            sd = net.state_dict()
            assert list(tensors) == list(sd)
            for k, v in sd.items():
                assert tensors[k].dtype == tdt and torch.equal(tensors[k], v.to(tdt)), k
            kw = json.loads(meta2['edm_kwargs'])
            assert kw == export_edm.edm_kwargs(net)
            assert kw['class_name'] == 'EDMPrecond' and kw['model_type'] == 'SongUNet'
            assert kw['sigma_data'] == 0.5 and kw['sigma_max'] is None and kw['label_dim'] == 10
            assert kw['img_resolution'] == 32 and kw['img_channels'] == 1
            mk = kw['model_kwargs']
            for k, v in dict(embedding_type='positional', encoder_type='standard', decoder_type='standard',
                             channel_mult_noise=1, resample_filter=[1, 1], model_channels=4, channel_mult=[2, 2],
                             channel_mult_emb=4, num_blocks=1, attn_resolutions=[16], augment_dim=9,
                             in_channels=1, out_channels=1, label_dim=10, img_resolution=32).items():
                assert mk[k] == v, (k, mk[k], v)
            twin = edm_ddpmpp.from_edm_kwargs(kw)
            twin.load_state_dict({k: v.float() for k, v in tensors.items()})
            assert list(twin.state_dict()) == list(sd)
    print('export round trip: ok')


def test_precond_limits():
    net = fixture_net().eval()
    x, _, labels = make_fixtures_edm.inputs()
    with torch.no_grad():
        for s in (1e-4, 0.3, 7.0, 1e4):
            sigma = torch.full((x.shape[0],), s)
            d = net(x, sigma, labels)
            f = net.model(x / math.sqrt(0.25 + s * s), torch.full((x.shape[0],), math.log(s) / 4), labels)
            c_skip, c_out = 0.25 / (s * s + 0.25), s * 0.5 / math.sqrt(s * s + 0.25)
            assert torch.allclose(d, c_skip * x + c_out * f, atol=1e-5, rtol=1e-5), s
            if s == 1e4:  # c_skip ~ 2.5e-9, c_out -> sigma_data
                assert torch.allclose(d, 0.5 * f, atol=1e-5) and f.abs().mean() > 0.1
            if s == 1e-4:  # c_skip -> 1, c_out -> sigma
                assert (d - x).abs().max() < 1e-4 * f.abs().max() * 1.01
        # class labels matter; a missing label means the zero vector
        other = torch.roll(labels, 1, dims=1)
        sigma = torch.full((x.shape[0],), 2.0)
        assert (net(x, sigma, labels) - net(x, sigma, other)).abs().mean() > 1e-3
        zero = net(x, sigma, torch.zeros_like(labels))
        assert torch.equal(net(x, sigma, None), zero)
    print('precond limits: ok')


def test_layers():
    """The pieces the TypeScript port reimplements, against direct formulas."""
    pe = edm_ddpmpp.PositionalEmbedding(8, endpoint=True)
    t = torch.tensor([0.3, -1.2])
    fr = torch.tensor([1.0, 1e-4 ** (1 / 3), 1e-4 ** (2 / 3), 1e-4])
    assert torch.allclose(pe(t), torch.cat([torch.cos(t[:, None] * fr), torch.sin(t[:, None] * fr)], 1), atol=1e-6)
    net = fixture_net().eval()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8, 16, 16, generator=g)
    down = net.model.enc['16x16_down']
    assert torch.allclose(down.conv0(x), F.conv2d(F.avg_pool2d(x, 2), down.conv0.weight, down.conv0.bias, padding=1),
                          atol=1e-5)
    assert torch.allclose(down.skip(x), F.conv2d(F.avg_pool2d(x, 2), down.skip.weight, down.skip.bias), atol=1e-5)
    up = net.model.dec['32x32_up']
    near = F.interpolate(x, scale_factor=2, mode='nearest')
    assert torch.allclose(up.conv0(x), F.conv2d(near, up.conv0.weight, up.conv0.bias, padding=1), atol=1e-5)
    assert torch.allclose(up.skip(x), F.conv2d(near, up.skip.weight, up.skip.bias), atol=1e-5)
    # attention: qkv output channel 3c+j is (q, k, v)[j] of channel c (one head); softmax over keys, / sqrt(C)
    blk = net.model.enc['16x16_block0']
    seen = {}
    blk.qkv.register_forward_hook(lambda m, i, o: seen.__setitem__('qkv', o))
    blk.proj.register_forward_hook(lambda m, i, o: seen.__setitem__('a', i[0]))
    emb = torch.randn(2, 16, generator=g)
    with torch.no_grad():
        blk(x, emb)
    qkv = seen['qkv'].flatten(2)
    q, k, v = qkv[:, 0::3], qkv[:, 1::3], qkv[:, 2::3]
    w = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(8), dim=2)  # [N, HWq, HWk]
    assert torch.allclose(seen['a'].flatten(2), v @ w.transpose(1, 2), atol=1e-5)
    print('layers: ok')


def test_fixtures():
    folder = make_fixtures_edm.DEFAULT_OUT
    outs = {}
    for variant in ('f32', 'f16', 'bf16'):
        tensors, meta = st_io.load(os.path.join(folder, f'weights.{variant}.safetensors'))
        io, _ = st_io.load(os.path.join(folder, f'io.{variant}.safetensors'))
        net = edm_ddpmpp.from_edm_kwargs(json.loads(meta['edm_kwargs'])).eval()
        net.load_state_dict({k: v.float() for k, v in tensors.items()})
        with torch.no_grad():
            out = net(io['x'], io['sigma'], io['class_labels'])
        assert torch.allclose(out, io['out'], atol=1e-5), variant
        outs[variant] = io['out']
        s = io['sigma'].view(-1, 1, 1, 1)
        f = (io['out'] - 0.25 / (s * s + 0.25) * io['x']) / (s * 0.5 / (s * s + 0.25).sqrt())
        assert f.abs().mean() > 0.1, variant
        fm = f.flatten(1)
        for i in range(len(fm)):
            for j in range(i):
                assert (fm[i] - fm[j]).abs().mean() > 0.01, (variant, i, j)
    assert not torch.equal(outs['f32'], outs['f16']) and not torch.equal(outs['f16'], outs['bf16'])
    assert torch.allclose(outs['f32'], outs['f16'], atol=0.05)
    # the shards hold exactly the F16 file's tensors
    index = json.load(open(os.path.join(folder, 'sharded', 'model.safetensors.index.json')))
    f16, _ = st_io.load(os.path.join(folder, 'weights.f16.safetensors'))
    got = {}
    for shard in sorted(set(index['weight_map'].values())):
        t, m = st_io.load(os.path.join(folder, 'sharded', shard))
        assert json.loads(m['edm_kwargs'])['model_type'] == 'SongUNet'
        got.update(t)
    assert list(got) == list(f16) and all(torch.equal(got[k], f16[k]) for k in f16)
    # determinism: regenerating gives the same bytes
    with tempfile.TemporaryDirectory() as d:
        import subprocess
        subprocess.run([sys.executable, os.path.join(HERE, 'make_fixtures_edm.py'), '--out', d], check=True,
                       stdout=subprocess.DEVNULL)
        for root, _, files in os.walk(d):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), d)
                with open(os.path.join(root, name), 'rb') as a, open(os.path.join(folder, rel), 'rb') as b:
                    assert a.read() == b.read(), rel
    print('fixtures: ok')


if __name__ == '__main__':
    torch.set_num_threads(1)
    test_keys()
    test_export_roundtrip()
    test_precond_limits()
    test_layers()
    test_fixtures()
    print('all ok')
