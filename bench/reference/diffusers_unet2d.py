"""A diffusers-compatible `UNet2DModel` (DDPM-style configurations) and DDPMScheduler schedule, in plain torch.

Written for issue 20 ("bring your own teacher") as the PyTorch reference of what the TypeScript importer must
compute. Nothing here imports diffusers; the structure follows diffusers' code, read at
huggingface/diffusers 58eb52c0 (src/diffusers/models/unets/unet_2d.py, unets/unet_2d_blocks.py, resnet.py,
downsampling.py, upsampling.py, embeddings.py, attention_processor.py, modeling_utils.py,
schedulers/scheduling_ddpm.py). Module / parameter names equal diffusers' `state_dict()` keys, and modules are
created in the same order as diffusers creates them (so the same `torch.manual_seed` gives the same default init).

    model = UNet2DModel(json.load(open('config.json')))
    model.load_state_dict(load_weights('diffusion_pytorch_model.safetensors'))
    eps = model(x, timesteps)                      # x [B, C, H, W], timesteps [B] (int or float) or a scalar
    ac = alphas_cumprod(json.load(open('scheduler_config.json')))   # float32 [num_train_timesteps]

Supported: down blocks DownBlock2D / AttnDownBlock2D, up blocks UpBlock2D / AttnUpBlock2D, mid block UNetMidBlock2D
(or None), positional time embedding, resnet_time_scale_shift 'default' or 'scale_shift', conv down/up sampling,
class_embed_type None (with or without num_class_embeds) / 'timestep' / 'identity'.
"""
import json
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

# diffusers.models.activations.ACT2CLS
_ACT = {'swish': nn.SiLU, 'silu': nn.SiLU, 'mish': nn.Mish, 'gelu': nn.GELU, 'relu': nn.ReLU}

# UNet2DModel.__init__ defaults (unet_2d.py)
DEFAULTS = dict(
    sample_size=None, in_channels=3, out_channels=3, center_input_sample=False, time_embedding_type='positional',
    time_embedding_dim=None, freq_shift=0, flip_sin_to_cos=True,
    down_block_types=('DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'),
    mid_block_type='UNetMidBlock2D',
    up_block_types=('AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'),
    block_out_channels=(224, 448, 672, 896), layers_per_block=2, mid_block_scale_factor=1, downsample_padding=1,
    downsample_type='conv', upsample_type='conv', dropout=0.0, act_fn='silu', attention_head_dim=8,
    norm_num_groups=32, attn_norm_num_groups=None, norm_eps=1e-5, resnet_time_scale_shift='default',
    add_attention=True, class_embed_type=None, num_class_embeds=None, num_train_timesteps=None,
)


def resolve_config(config):
    """diffusers' defaults overlaid with `config` (keys starting with '_' dropped; unknown keys rejected)."""
    cfg = dict(DEFAULTS)
    for k, v in config.items():
        if k.startswith('_'):
            continue
        if k not in DEFAULTS:
            raise ValueError(f'unsupported UNet2DModel config field {k!r}')
        cfg[k] = v
    return cfg


def timestep_embedding(timesteps, dim, flip_sin_to_cos, downscale_freq_shift, scale=1.0, max_period=10000):
    """embeddings.get_timestep_embedding: all in float32."""
    assert timesteps.dim() == 1
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / (half - downscale_freq_shift)
    emb = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    """embeddings.TimestepEmbedding: linear_1 -> SiLU -> linear_2."""

    def __init__(self, in_channels, time_embed_dim, act_fn='silu'):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.act = _ACT[act_fn]()
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    """resnet.ResnetBlock2D (pre-norm, no up/down)."""

    def __init__(self, in_channels, out_channels, temb_channels, eps, groups, act_fn, output_scale_factor=1.0,
                 time_embedding_norm='default'):
        super().__init__()
        self.output_scale_factor = output_scale_factor
        self.time_embedding_norm = time_embedding_norm
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
        if time_embedding_norm == 'default':
            self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        elif time_embedding_norm == 'scale_shift':
            self.time_emb_proj = nn.Linear(temb_channels, 2 * out_channels)
        else:
            raise ValueError(f'unsupported resnet_time_scale_shift {time_embedding_norm!r}')
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.nonlinearity = _ACT[act_fn]()
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0) \
            if in_channels != out_channels else None

    def forward(self, x, temb):
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        t = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
        if self.time_embedding_norm == 'default':
            h = self.norm2(h + t)
        else:
            scale, shift = torch.chunk(t, 2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(self.nonlinearity(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.output_scale_factor


class Attention(nn.Module):
    """attention_processor.Attention as built with _from_deprecated_attn_block=True (spatial self-attention),
    run like AttnProcessor: group_norm -> q,k,v -> softmax(q k^T * dim_head^-0.5) (softmax in float32) v -> to_out.0
    -> + residual -> / rescale_output_factor."""

    def __init__(self, channels, heads, dim_head, rescale_output_factor, eps, norm_num_groups):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        self.rescale_output_factor = rescale_output_factor
        self.group_norm = nn.GroupNorm(norm_num_groups, channels, eps=eps, affine=True) \
            if norm_num_groups is not None else None
        inner = heads * dim_head
        self.to_q = nn.Linear(channels, inner, bias=True)
        self.to_k = nn.Linear(channels, inner, bias=True)
        self.to_v = nn.Linear(channels, inner, bias=True)
        self.to_out = nn.ModuleList([nn.Linear(inner, channels, bias=True), nn.Dropout(0.0)])

    def forward(self, x):
        residual = x
        b, c, hgt, wid = x.shape
        h = x.view(b, c, hgt * wid).transpose(1, 2)                       # [B, N, C]
        if self.group_norm is not None:
            h = self.group_norm(h.transpose(1, 2)).transpose(1, 2)
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)               # [B, N, heads*dim_head]

        def split(t):  # channel index = head * dim_head + d
            return t.reshape(b, -1, self.heads, self.dim_head).permute(0, 2, 1, 3)

        q, k, v = split(q), split(k), split(v)                            # [B, heads, N, d]
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        probs = scores.float().softmax(dim=-1).to(q.dtype)                # upcast_softmax=True
        o = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, -1, self.heads * self.dim_head)
        o = self.to_out[1](self.to_out[0](o))
        o = o.transpose(-1, -2).reshape(b, c, hgt, wid)
        return (o + residual) / self.rescale_output_factor


class Downsample2D(nn.Module):
    """downsampling.Downsample2D(use_conv=True, name='op'): 3x3 stride-2 conv; padding 0 pads (0,1,0,1) first."""

    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1), mode='constant', value=0)
        return self.conv(x)


class Upsample2D(nn.Module):
    """upsampling.Upsample2D(use_conv=True): nearest x2 then 3x3 conv (padding 1)."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class DownBlock(nn.Module):
    """DownBlock2D (attn=False) / AttnDownBlock2D (attn=True)."""

    def __init__(self, attn, num_layers, in_channels, out_channels, temb_channels, add_downsample, eps, act_fn,
                 groups, attention_head_dim, downsample_padding, time_norm, downsample_type):
        super().__init__()
        resnets, attentions = [], []
        if attn and attention_head_dim is None:
            attention_head_dim = out_channels
        for i in range(num_layers):  # created resnet_i, attn_i, resnet_i+1, ... as diffusers does
            resnets.append(ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb_channels, eps,
                                         groups, act_fn, 1.0, time_norm))
            if attn:
                attentions.append(Attention(out_channels, out_channels // attention_head_dim, attention_head_dim,
                                            1.0, eps, groups))
        if attn:
            self.attentions = nn.ModuleList(attentions)
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(resnets)
        if add_downsample:
            if attn and (downsample_type or 'conv') != 'conv':
                raise ValueError(f'unsupported downsample_type {downsample_type!r}')
            self.downsamplers = nn.ModuleList([Downsample2D(out_channels, downsample_padding)])
        else:
            self.downsamplers = None

    def forward(self, x, temb):
        outs = ()
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
            outs += (x,)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            outs += (x,)
        return x, outs


class UpBlock(nn.Module):
    """UpBlock2D (attn=False) / AttnUpBlock2D (attn=True)."""

    def __init__(self, attn, num_layers, in_channels, prev_output_channel, out_channels, temb_channels, add_upsample,
                 eps, act_fn, groups, attention_head_dim, time_norm, upsample_type):
        super().__init__()
        resnets, attentions = [], []
        if attn and attention_head_dim is None:
            attention_head_dim = out_channels
        for i in range(num_layers):
            res_skip = in_channels if i == num_layers - 1 else out_channels
            res_in = prev_output_channel if i == 0 else out_channels
            resnets.append(ResnetBlock2D(res_in + res_skip, out_channels, temb_channels, eps, groups, act_fn, 1.0,
                                         time_norm))
            if attn:
                attentions.append(Attention(out_channels, out_channels // attention_head_dim, attention_head_dim,
                                            1.0, eps, groups))
        if attn:
            self.attentions = nn.ModuleList(attentions)
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(resnets)
        if add_upsample:
            if attn and (upsample_type or 'conv') != 'conv':
                raise ValueError(f'unsupported upsample_type {upsample_type!r}')
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels)])
        else:
            self.upsamplers = None

    def forward(self, x, res_samples, temb):
        for i, resnet in enumerate(self.resnets):
            skip, res_samples = res_samples[-1], res_samples[:-1]   # pop from the end
            x = resnet(torch.cat([x, skip], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNetMidBlock2D(nn.Module):
    """unet_2d_blocks.UNetMidBlock2D with num_layers=1: resnet, attention, resnet."""

    def __init__(self, channels, temb_channels, eps, act_fn, output_scale_factor, time_norm, attention_head_dim,
                 groups, attn_groups, add_attention):
        super().__init__()
        if attn_groups is None:
            attn_groups = groups if time_norm == 'default' else None
        if attention_head_dim is None:
            attention_head_dim = channels
        resnets = [ResnetBlock2D(channels, channels, temb_channels, eps, groups, act_fn, output_scale_factor,
                                 time_norm)]
        attn = Attention(channels, channels // attention_head_dim, attention_head_dim, output_scale_factor, eps,
                         attn_groups) if add_attention else None
        resnets.append(ResnetBlock2D(channels, channels, temb_channels, eps, groups, act_fn, output_scale_factor,
                                     time_norm))
        self.add_attention = add_attention
        self.attentions = nn.ModuleList([attn] if attn is not None else [])
        self.resnets = nn.ModuleList(resnets)

    def forward(self, x, temb):
        x = self.resnets[0](x, temb)
        if self.add_attention:
            x = self.attentions[0](x)
        return self.resnets[1](x, temb)


class UNet2DModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = resolve_config(config)
        boc = list(c['block_out_channels'])
        if c['time_embedding_type'] != 'positional':
            raise ValueError(f"unsupported time_embedding_type {c['time_embedding_type']!r}")
        if len(c['down_block_types']) != len(c['up_block_types']) or len(boc) != len(c['down_block_types']):
            raise ValueError('block_out_channels, down_block_types and up_block_types must have the same length')
        if c['resnet_time_scale_shift'] not in ('default', 'scale_shift'):
            raise ValueError(f"unsupported resnet_time_scale_shift {c['resnet_time_scale_shift']!r}")
        if c['norm_num_groups'] is None:
            raise ValueError('norm_num_groups None is not supported')
        act, eps, groups, tn = c['act_fn'], c['norm_eps'], c['norm_num_groups'], c['resnet_time_scale_shift']
        hd = c['attention_head_dim']
        time_embed_dim = c['time_embedding_dim'] or boc[0] * 4

        self.conv_in = nn.Conv2d(c['in_channels'], boc[0], kernel_size=3, padding=(1, 1))
        self.time_embedding = TimestepEmbedding(boc[0], time_embed_dim)
        cet, nce = c['class_embed_type'], c['num_class_embeds']
        if cet is None and nce is not None:
            self.class_embedding = nn.Embedding(nce, time_embed_dim)
        elif cet == 'timestep':
            self.class_embedding = TimestepEmbedding(boc[0], time_embed_dim)
        elif cet == 'identity':
            self.class_embedding = nn.Identity()
        elif cet is None:
            self.class_embedding = None
        else:
            raise ValueError(f'unsupported class_embed_type {cet!r}')

        self.down_blocks = nn.ModuleList([])
        out_ch = boc[0]
        for i, t in enumerate(c['down_block_types']):
            t = t[7:] if t.startswith('UNetRes') else t
            if t not in ('DownBlock2D', 'AttnDownBlock2D'):
                raise ValueError(f'unsupported down block type {t!r}')
            in_ch, out_ch = out_ch, boc[i]
            self.down_blocks.append(DownBlock(
                t == 'AttnDownBlock2D', c['layers_per_block'], in_ch, out_ch, time_embed_dim, i != len(boc) - 1, eps,
                act, groups, hd if hd is not None else out_ch, c['downsample_padding'], tn, c['downsample_type']))

        if c['mid_block_type'] is None:
            self.mid_block = None
        elif c['mid_block_type'] == 'UNetMidBlock2D':
            self.mid_block = UNetMidBlock2D(boc[-1], time_embed_dim, eps, act, c['mid_block_scale_factor'], tn,
                                            hd if hd is not None else boc[-1], groups, c['attn_norm_num_groups'],
                                            c['add_attention'])
        else:
            raise ValueError(f"unsupported mid_block_type {c['mid_block_type']!r}")

        self.up_blocks = nn.ModuleList([])
        rev = list(reversed(boc))
        out_ch = rev[0]
        for i, t in enumerate(c['up_block_types']):
            t = t[7:] if t.startswith('UNetRes') else t
            if t not in ('UpBlock2D', 'AttnUpBlock2D'):
                raise ValueError(f'unsupported up block type {t!r}')
            prev, out_ch = out_ch, rev[i]
            in_ch = rev[min(i + 1, len(boc) - 1)]
            self.up_blocks.append(UpBlock(
                t == 'AttnUpBlock2D', c['layers_per_block'] + 1, in_ch, prev, out_ch, time_embed_dim,
                i != len(boc) - 1, eps, act, groups, hd if hd is not None else out_ch, tn, c['upsample_type']))

        self.conv_norm_out = nn.GroupNorm(num_channels=boc[0], num_groups=groups, eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], c['out_channels'], kernel_size=3, padding=1)

    def forward(self, sample, timestep, class_labels=None):
        c = self.config
        if c['center_input_sample']:
            sample = 2 * sample - 1.0
        t = timestep
        if not torch.is_tensor(t):
            t = torch.tensor([t], dtype=torch.long)
        elif t.dim() == 0:
            t = t[None]
        t = t * torch.ones(sample.shape[0], dtype=t.dtype)
        t_emb = timestep_embedding(t, c['block_out_channels'][0], c['flip_sin_to_cos'], c['freq_shift'])
        emb = self.time_embedding(t_emb.to(sample.dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError('class_labels should be provided when doing class conditioning')
            if c['class_embed_type'] == 'timestep':
                class_labels = timestep_embedding(class_labels, c['block_out_channels'][0], c['flip_sin_to_cos'],
                                                  c['freq_shift'])
            emb = emb + self.class_embedding(class_labels).to(emb.dtype)

        sample = self.conv_in(sample)
        skips = (sample,)
        for block in self.down_blocks:
            sample, res = block(sample, emb)
            skips += res
        if self.mid_block is not None:
            sample = self.mid_block(sample, emb)
        for block in self.up_blocks:
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            sample = block(sample, res, emb)
        return self.conv_out(self.conv_act(self.conv_norm_out(sample)))


# ----------------------------------------------------------------------------------------------------------------
# weights

_LEGACY = {'query': 'to_q', 'key': 'to_k', 'value': 'to_v', 'proj_attn': 'to_out.0'}
# an attention module of a UNet2DModel: mid_block.attentions.N or {down,up}_blocks.N.attentions.M
_ATTN_PATH = r'(?:mid_block|(?:down|up)_blocks\.\d+)\.attentions\.\d+'
_LEGACY_RE = re.compile(rf'^({_ATTN_PATH})\.(query|key|value|proj_attn)\.(weight|bias)$')


def rename_legacy_keys(state_dict):
    """ModelMixin._fix_state_dict_keys_on_load for a UNet2DModel: inside every deprecated-attention-block module
    (all Attention modules of UNet2DModel: mid_block.attentions.*, *_blocks.*.attentions.*), query -> to_q,
    key -> to_k, value -> to_v, proj_attn -> to_out.0 (weight and bias); group_norm keeps its name. Keys already in
    the new form pass through. Returns a new dict (same order, renamed in place). diffusers applies this only to
    non-sharded checkpoints."""
    out = {}
    for k, v in state_dict.items():
        m = _LEGACY_RE.match(k)
        out[f'{m.group(1)}.{_LEGACY[m.group(2)]}.{m.group(3)}' if m else k] = v
    return out


def to_legacy_keys(state_dict):
    """The inverse of rename_legacy_keys (to write old-style checkpoints for tests)."""
    inv = {v: k for k, v in _LEGACY.items()}
    rx = re.compile(rf'^({_ATTN_PATH})\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$')
    out = {}
    for k, v in state_dict.items():
        m = rx.match(k)
        out[f'{m.group(1)}.{inv[m.group(2)]}.{m.group(3)}' if m else k] = v
    return out


def load_weights(path):
    """A float32 state dict from a .safetensors file or a sharded `*.safetensors.index.json`, legacy attention keys
    renamed. F16/BF16 tensors are widened to float32 exactly."""
    import st_io
    if path.endswith('.index.json'):
        with open(path) as f:
            index = json.load(f)
        folder, sd, done = os.path.dirname(path), {}, {}
        for name, file in index['weight_map'].items():
            if file not in done:
                done[file] = st_io.load(os.path.join(folder, file))[0]
            sd[name] = done[file][name]
    else:
        sd = st_io.load(path)[0]
    return {k: v.float() if v.is_floating_point() else v for k, v in rename_legacy_keys(sd).items()}


# ----------------------------------------------------------------------------------------------------------------
# DDPMScheduler schedule (scheduling_ddpm.py)

def betas_for_alpha_bar(num_diffusion_timesteps, max_beta=0.999, alpha_transform_type='cosine'):
    """Python floats (float64), each beta capped at max_beta, then float32 -- as diffusers."""
    if alpha_transform_type == 'cosine':
        def alpha_bar(t):
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    elif alpha_transform_type == 'laplace':
        def alpha_bar(t):
            lmb = -0.5 * math.copysign(1, 0.5 - t) * math.log(1 - 2 * math.fabs(0.5 - t) + 1e-6)
            snr = math.exp(lmb)
            return math.sqrt(snr / (1 + snr))
    elif alpha_transform_type == 'exp':
        def alpha_bar(t):
            return math.exp(t * -12.0)
    else:
        raise ValueError(alpha_transform_type)
    betas = []
    for i in range(num_diffusion_timesteps):
        t1, t2 = i / num_diffusion_timesteps, (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return torch.tensor(betas, dtype=torch.float32)


def rescale_zero_terminal_snr(betas):
    alphas_bar_sqrt = torch.cumprod(1.0 - betas, dim=0).sqrt()
    a0, aT = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt -= aT
    alphas_bar_sqrt *= a0 / (a0 - aT)
    alphas_bar = alphas_bar_sqrt ** 2
    alphas = torch.cat([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1 - alphas


SCHEDULER_DEFAULTS = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule='linear',
                          trained_betas=None, rescale_betas_zero_snr=False)


def betas(config):
    """DDPMScheduler.__init__'s betas (float32) from a scheduler_config dict."""
    c = dict(SCHEDULER_DEFAULTS)
    c.update({k: v for k, v in config.items() if k in SCHEDULER_DEFAULTS})
    n, s = c['num_train_timesteps'], c['beta_schedule']
    if c['trained_betas'] is not None:
        b = torch.tensor(c['trained_betas'], dtype=torch.float32)
    elif s == 'linear':
        b = torch.linspace(c['beta_start'], c['beta_end'], n, dtype=torch.float32)
    elif s == 'scaled_linear':
        b = torch.linspace(c['beta_start'] ** 0.5, c['beta_end'] ** 0.5, n, dtype=torch.float32) ** 2
    elif s == 'squaredcos_cap_v2':
        b = betas_for_alpha_bar(n)
    elif s == 'laplace':
        b = betas_for_alpha_bar(n, alpha_transform_type='laplace')
    elif s == 'sigmoid':
        b = torch.sigmoid(torch.linspace(-6, 6, n)) * (c['beta_end'] - c['beta_start']) + c['beta_start']
    else:
        raise NotImplementedError(f'beta_schedule {s!r}')
    if c['rescale_betas_zero_snr']:
        b = rescale_zero_terminal_snr(b)
    return b


def alphas_cumprod(config):
    """torch.cumprod(1 - betas, 0) in float32, as DDPMScheduler.alphas_cumprod."""
    return torch.cumprod(1.0 - betas(config), dim=0)
