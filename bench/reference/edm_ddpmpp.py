"""EDM's DDPM++ denoiser, `EDMPrecond(SongUNet(...))`, rebuilt in plain PyTorch for inference.

Mirrors NVlabs/edm `training/networks.py` (as of 008a4e5; its one change since the first commit,
b2a26c9, is in the fused up-sampling path, which DDPM++ does not use): the classes `Linear`, `Conv2d`,
`GroupNorm`, `UNetBlock`, `PositionalEmbedding`, `SongUNet` and `EDMPrecond`, and the attention
maths of `AttentionOp.forward`. Module and parameter names are EDM's, so `state_dict()` has EDM's
keys, shapes and order (Linear weights [out, in], Conv2d weights [out, in, kh, kw], and the
`resample_filter` buffers of the up/down convolutions, which EDM's state_dict also holds).
Written from reading that file; the weights' initialisation is not reproduced (weights are
always loaded or redrawn). Checked once against EDM's own classes (run from a scratch copy of
the EDM repository, built as train.py builds them): same state_dict keys, shapes and order, and the
fixture outputs of make_fixtures_edm.py agree to 2e-6 (outputs up to 2.9 in size).

    net = EDMPrecond(img_resolution=32, img_channels=3, label_dim=10, model_type='SongUNet',
                     model_channels=128, channel_mult=[2, 2, 2], augment_dim=9, ...)
    D = net(x, sigma, class_labels)          # x [N, C, H, W], sigma [N], class_labels [N, label_dim]

EDMPrecond kwargs: img_resolution, img_channels, label_dim (0), use_fp16 (accepted, ignored: always
float32), sigma_min (0), sigma_max (inf), sigma_data (0.5), model_type ('SongUNet' only; EDM's
own default is 'DhariwalUNet', so it must be given), and the SongUNet kwargs below.

SongUNet kwargs (EDM's defaults): img_resolution, in_channels, out_channels, label_dim (0),
augment_dim (0: `map_augment`, a bias-free Linear, only used when augment_labels are given, never
at inference), model_channels (128), channel_mult ([1,2,2,2]), channel_mult_emb (4),
num_blocks (4), attn_resolutions ([16]), dropout (0.10, inactive at inference), label_dropout
(0, inactive at inference), embedding_type ('positional' only), channel_mult_noise (1),
encoder_type ('standard' only), decoder_type ('standard' only), resample_filter ([1,1]; any
filter works the way EDM's non-fused path does it, but only [1,1] is what DDPM++ uses).
Not supported (they raise): NCSN++ ('fourier', 'residual'/'skip' encoders, 'skip' decoder),
DhariwalUNet, VPPrecond/VEPrecond/iDDPMPrecond.

`state_dict_keys(**kwargs)` lists the (key, shape) pairs such a network has, without building it.
Like EDM's persistent classes, every module built here remembers `init_kwargs`.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

SONG_UNET_DEFAULTS = dict(
    label_dim=0, augment_dim=0, model_channels=128, channel_mult=[1, 2, 2, 2], channel_mult_emb=4,
    num_blocks=4, attn_resolutions=[16], dropout=0.10, label_dropout=0, embedding_type='positional',
    channel_mult_noise=1, encoder_type='standard', decoder_type='standard', resample_filter=[1, 1],
)
EDM_PRECOND_DEFAULTS = dict(label_dim=0, use_fp16=False, sigma_min=0, sigma_max=float('inf'), sigma_data=0.5,
                            model_type='DhariwalUNet')


class _Recorded(torch.nn.Module):
    """Remembers the constructor's keyword arguments as `init_kwargs`, like EDM's persistence."""

    def _record(self, kwargs):
        self._init_kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}

    @property
    def init_kwargs(self):
        return dict(self._init_kwargs)


class Linear(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = torch.nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        y = x.matmul(self.weight.t())
        return y if self.bias is None else y + self.bias


class Conv2d(torch.nn.Module):
    """Optional resampling by a separable FIR filter (depthwise, stride 2), then a k×k 'same' conv.
    kernel 0: resampling only, no weight. Non-fused path only (EDM fuses only in NCSN++'s encoder)."""

    def __init__(self, in_channels, out_channels, kernel, bias=True, up=False, down=False, resample_filter=(1, 1)):
        super().__init__()
        assert not (up and down)
        self.in_channels, self.out_channels, self.up, self.down = in_channels, out_channels, up, down
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, kernel, kernel)) if kernel else None
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if kernel and bias else None
        f1 = torch.tensor(list(resample_filter), dtype=torch.float32)
        f2 = torch.outer(f1, f1) / f1.sum() ** 2  # normalised to sum 1
        self.register_buffer('resample_filter', f2[None, None] if (up or down) else None)

    def forward(self, x):
        f = self.resample_filter
        if f is not None:
            pad = (f.shape[-1] - 1) // 2
            c = x.shape[1]
            if self.up:  # zero-stuffing ×2 then the filter ×4 (gain 4 keeps the mean): nearest for [1,1]
                x = F.conv_transpose2d(x, (4 * f).expand(c, 1, -1, -1), stride=2, padding=pad, groups=c)
            else:  # filter then keep every 2nd sample: 2×2 mean for [1,1]
                x = F.conv2d(x, f.expand(c, 1, -1, -1), stride=2, padding=pad, groups=c)
        if self.weight is not None:
            x = F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1)
        return x


class GroupNorm(torch.nn.Module):
    """min(32, C // 4) groups, affine per channel."""

    def __init__(self, num_channels, eps=1e-5):
        super().__init__()
        self.num_groups = min(32, num_channels // 4)
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(num_channels))
        self.bias = torch.nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class UNetBlock(torch.nn.Module):
    """SongUNet's block: num_heads 1, skip_scale sqrt(1/2), eps 1e-6, resample_proj, adaptive_scale False."""

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False,
                 resample_filter=(1, 1), eps=1e-6, skip_scale=math.sqrt(0.5)):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_heads = 1 if attention else 0
        self.skip_scale = skip_scale
        self.norm0 = GroupNorm(in_channels, eps=eps)
        self.conv0 = Conv2d(in_channels, out_channels, 3, up=up, down=down, resample_filter=resample_filter)
        self.affine = Linear(emb_channels, out_channels)  # adaptive_scale=False: an additive C-vector
        self.norm1 = GroupNorm(out_channels, eps=eps)
        self.conv1 = Conv2d(out_channels, out_channels, 3)
        self.skip = None
        if out_channels != in_channels or up or down:  # resample_proj=True: always a 1×1 conv here
            self.skip = Conv2d(in_channels, out_channels, 1, up=up, down=down, resample_filter=resample_filter)
        if self.num_heads:
            self.norm2 = GroupNorm(out_channels, eps=eps)
            self.qkv = Conv2d(out_channels, 3 * out_channels, 1)
            self.proj = Conv2d(out_channels, out_channels, 1)

    def forward(self, x, emb):
        h = self.conv0(F.silu(self.norm0(x)))
        h = F.silu(self.norm1(h + self.affine(emb)[:, :, None, None]))
        h = self.conv1(h)  # dropout: identity at inference
        h = (h + (x if self.skip is None else self.skip(x))) * self.skip_scale
        if self.num_heads:
            n, c, hh, ww = h.shape
            heads = self.num_heads
            # qkv channels are interleaved per channel: index (head, c, {q,k,v}) = head*(3C/heads) + 3c + j
            qkv = self.qkv(self.norm2(h)).reshape(n * heads, c // heads, 3, hh * ww)
            q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [N*heads, C/heads, HW]
            logits = torch.einsum('bcq,bck->bqk', q, k) / np.sqrt(c // heads)
            w = torch.softmax(logits, dim=2)  # over keys
            a = torch.einsum('bqk,bck->bcq', w, v).reshape(n, c, hh, ww)
            h = (self.proj(a) + h) * self.skip_scale
        return h


class PositionalEmbedding(torch.nn.Module):
    """[cos(x·f_i) | sin(x·f_i)], f_i = (1/max_positions)^(i / (C/2 − endpoint)), i < C/2. No parameters."""

    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.num_channels, self.max_positions, self.endpoint = num_channels, max_positions, endpoint

    def forward(self, x):
        half = self.num_channels // 2
        i = torch.arange(half, dtype=torch.float32, device=x.device)
        freqs = (1.0 / self.max_positions) ** (i / (half - (1 if self.endpoint else 0)))
        arg = torch.outer(x, freqs.to(x.dtype))
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


def _check_ddpmpp(kw):
    if kw['embedding_type'] != 'positional':
        raise ValueError(f"edm_ddpmpp: embedding_type {kw['embedding_type']!r} is not supported (only 'positional')")
    if kw['encoder_type'] != 'standard':
        raise ValueError(f"edm_ddpmpp: encoder_type {kw['encoder_type']!r} is not supported (only 'standard')")
    if kw['decoder_type'] != 'standard':
        raise ValueError(f"edm_ddpmpp: decoder_type {kw['decoder_type']!r} is not supported (only 'standard')")


def _layout(img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0, model_channels=128,
            channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4, attn_resolutions=(16,), dropout=0.10,
            label_dropout=0, embedding_type='positional', channel_mult_noise=1, encoder_type='standard',
            decoder_type='standard', resample_filter=(1, 1)):
    """The network as data: (emb_channels, noise_channels, enc, dec); enc/dec are lists of
    (name, kind, spec) in EDM's registration order. Shared by SongUNet and state_dict_keys."""
    _check_ddpmpp(dict(embedding_type=embedding_type, encoder_type=encoder_type, decoder_type=decoder_type))
    emb_channels = model_channels * channel_mult_emb
    noise_channels = model_channels * channel_mult_noise
    enc, dec = [], []
    cout = in_channels
    for level, mult in enumerate(channel_mult):
        res = img_resolution >> level
        if level == 0:
            enc.append((f'{res}x{res}_conv', 'conv', dict(cin=cout, cout=model_channels, k=3)))
            cout = model_channels
        else:
            enc.append((f'{res}x{res}_down', 'block', dict(cin=cout, cout=cout, down=True)))
        for idx in range(num_blocks):
            cin, cout = cout, model_channels * mult
            enc.append((f'{res}x{res}_block{idx}', 'block', dict(cin=cin, cout=cout, attention=res in attn_resolutions)))
    skips = [spec['cout'] for _, _, spec in enc]
    for level, mult in reversed(list(enumerate(channel_mult))):
        res = img_resolution >> level
        if level == len(channel_mult) - 1:
            dec.append((f'{res}x{res}_in0', 'block', dict(cin=cout, cout=cout, attention=True)))
            dec.append((f'{res}x{res}_in1', 'block', dict(cin=cout, cout=cout)))
        else:
            dec.append((f'{res}x{res}_up', 'block', dict(cin=cout, cout=cout, up=True)))
        for idx in range(num_blocks + 1):
            cin, cout = cout + skips.pop(), model_channels * mult
            dec.append((f'{res}x{res}_block{idx}', 'block',
                        dict(cin=cin, cout=cout, attention=idx == num_blocks and res in attn_resolutions)))
        if level == 0:
            dec.append((f'{res}x{res}_aux_norm', 'norm', dict(cin=cout)))
            dec.append((f'{res}x{res}_aux_conv', 'conv', dict(cin=cout, cout=out_channels, k=3)))
    return emb_channels, noise_channels, enc, dec


class SongUNet(_Recorded):
    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0, model_channels=128,
                 channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4, attn_resolutions=(16,), dropout=0.10,
                 label_dropout=0, embedding_type='positional', channel_mult_noise=1, encoder_type='standard',
                 decoder_type='standard', resample_filter=(1, 1)):
        super().__init__()
        kw = dict(label_dim=label_dim, augment_dim=augment_dim, model_channels=model_channels,
                  channel_mult=channel_mult, channel_mult_emb=channel_mult_emb, num_blocks=num_blocks,
                  attn_resolutions=attn_resolutions, dropout=dropout, label_dropout=label_dropout,
                  embedding_type=embedding_type, channel_mult_noise=channel_mult_noise, encoder_type=encoder_type,
                  decoder_type=decoder_type, resample_filter=resample_filter)
        self._record(dict(img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels, **kw))
        emb_channels, noise_channels, enc, dec = _layout(img_resolution, in_channels, out_channels, **kw)
        rf = kw['resample_filter']
        self.label_dropout = kw['label_dropout']
        self.map_noise = PositionalEmbedding(noise_channels, endpoint=True)
        self.map_label = Linear(kw['label_dim'], noise_channels) if kw['label_dim'] else None
        self.map_augment = Linear(kw['augment_dim'], noise_channels, bias=False) if kw['augment_dim'] else None
        self.map_layer0 = Linear(noise_channels, emb_channels)
        self.map_layer1 = Linear(emb_channels, emb_channels)

        def make(kind, s):
            if kind == 'conv':
                return Conv2d(s['cin'], s['cout'], s['k'])
            if kind == 'norm':
                return GroupNorm(s['cin'], eps=1e-6)
            return UNetBlock(s['cin'], s['cout'], emb_channels, up=s.get('up', False), down=s.get('down', False),
                             attention=s.get('attention', False), resample_filter=rf)

        self.enc = torch.nn.ModuleDict([(name, make(kind, s)) for name, kind, s in enc])
        self.dec = torch.nn.ModuleDict([(name, make(kind, s)) for name, kind, s in dec])

    def forward(self, x, noise_labels, class_labels, augment_labels=None):
        emb = self.map_noise(noise_labels)
        half = emb.shape[1] // 2
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=1)  # EDM's flip: [sin | cos]
        if self.map_label is not None:  # label dropout: training only
            emb = emb + self.map_label(class_labels * np.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer0(emb))
        emb = F.silu(self.map_layer1(emb))

        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
            skips.append(x)

        out, normed = None, None
        for name, block in self.dec.items():
            if name.endswith('aux_norm'):
                normed = block(x)
            elif name.endswith('aux_conv'):
                y = block(F.silu(normed))
                out = y if out is None else out + y
            else:
                if x.shape[1] != block.in_channels:  # EDM concatenates on a channel mismatch
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return out


class EDMPrecond(_Recorded):
    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, sigma_min=0, sigma_max=float('inf'),
                 sigma_data=0.5, model_type='DhariwalUNet', **model_kwargs):
        super().__init__()
        if model_type != 'SongUNet':
            raise ValueError(f'edm_ddpmpp: model_type {model_type!r} is not supported (only SongUNet)')
        self._record(dict(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                          use_fp16=use_fp16, sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=sigma_data,
                          model_type=model_type, **model_kwargs))
        self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim
        self.use_fp16, self.sigma_min, self.sigma_max, self.sigma_data = use_fp16, sigma_min, sigma_max, sigma_data
        self.model = SongUNet(img_resolution=img_resolution, in_channels=img_channels, out_channels=img_channels,
                              label_dim=label_dim, **model_kwargs)

    def forward(self, x, sigma, class_labels=None):
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
        if self.label_dim == 0:
            class_labels = None
        elif class_labels is None:
            class_labels = torch.zeros(1, self.label_dim, device=x.device)
        else:
            class_labels = class_labels.to(torch.float32).reshape(-1, self.label_dim)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (sigma ** 2 + sd2)
        c_out = sigma * self.sigma_data / (sigma ** 2 + sd2).sqrt()
        c_in = 1 / (sd2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4
        f_x = self.model(c_in * x, c_noise.flatten(), class_labels)
        return c_skip * x + c_out * f_x


def _linear_keys(prefix, cin, cout, bias=True):
    return [(f'{prefix}.weight', [cout, cin])] + ([(f'{prefix}.bias', [cout])] if bias else [])


def _conv_keys(prefix, cin, cout, k, resample=False, filter_len=2):
    keys = []
    if k:
        keys += [(f'{prefix}.weight', [cout, cin, k, k]), (f'{prefix}.bias', [cout])]
    if resample:
        keys.append((f'{prefix}.resample_filter', [1, 1, filter_len, filter_len]))
    return keys


def state_dict_keys(img_resolution, img_channels, label_dim=0, **model_kwargs):
    """[(key, shape)] of EDMPrecond(img_resolution, img_channels, label_dim, model_type='SongUNet',
    **model_kwargs).state_dict(), in state_dict order, without building the network."""
    model_kwargs = {k: v for k, v in model_kwargs.items()
                    if k not in ('use_fp16', 'sigma_min', 'sigma_max', 'sigma_data', 'model_type')}
    kw = {**SONG_UNET_DEFAULTS, **model_kwargs, 'label_dim': label_dim}
    emb_ch, noise_ch, enc, dec = _layout(img_resolution, img_channels, img_channels, **kw)
    fl = len(kw['resample_filter'])
    keys = []
    if label_dim:
        keys += _linear_keys('model.map_label', label_dim, noise_ch)
    if kw['augment_dim']:
        keys += _linear_keys('model.map_augment', kw['augment_dim'], noise_ch, bias=False)
    keys += _linear_keys('model.map_layer0', noise_ch, emb_ch) + _linear_keys('model.map_layer1', emb_ch, emb_ch)
    for part, items in (('enc', enc), ('dec', dec)):
        for name, kind, s in items:
            p = f'model.{part}.{name}'
            if kind == 'conv':
                keys += _conv_keys(p, s['cin'], s['cout'], s['k'])
            elif kind == 'norm':
                keys += [(f'{p}.weight', [s['cin']]), (f'{p}.bias', [s['cin']])]
            else:
                ci, co, rs = s['cin'], s['cout'], s.get('up', False) or s.get('down', False)
                keys += [(f'{p}.norm0.weight', [ci]), (f'{p}.norm0.bias', [ci])]
                keys += _conv_keys(f'{p}.conv0', ci, co, 3, rs, fl)
                keys += _linear_keys(f'{p}.affine', emb_ch, co)
                keys += [(f'{p}.norm1.weight', [co]), (f'{p}.norm1.bias', [co])]
                keys += _conv_keys(f'{p}.conv1', co, co, 3)
                if ci != co or rs:
                    keys += _conv_keys(f'{p}.skip', ci, co, 1, rs, fl)
                if s.get('attention'):
                    keys += [(f'{p}.norm2.weight', [co]), (f'{p}.norm2.bias', [co])]
                    keys += _conv_keys(f'{p}.qkv', co, 3 * co, 1) + _conv_keys(f'{p}.proj', co, co, 1)
    return keys


def from_edm_kwargs(kw):
    """EDMPrecond from export_edm's `edm_kwargs` dict (JSON-decoded); null sigma_max means inf."""
    if kw.get('class_name', 'EDMPrecond') != 'EDMPrecond':
        raise ValueError(f"edm_ddpmpp: class_name {kw['class_name']!r} is not supported (only EDMPrecond)")
    pk = {k: kw[k] for k in ('img_resolution', 'img_channels', 'label_dim', 'use_fp16', 'sigma_min', 'sigma_max',
                             'sigma_data', 'model_type') if k in kw}
    if 'sigma_max' in pk and pk['sigma_max'] is None:
        pk['sigma_max'] = float('inf')
    mk = {k: v for k, v in kw.get('model_kwargs', {}).items()
          if k not in ('img_resolution', 'in_channels', 'out_channels', 'label_dim')}
    return EDMPrecond(**pk, **mk)
