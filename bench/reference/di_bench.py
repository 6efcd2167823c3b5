#!/usr/bin/python3
"""PyTorch reference for `pnpm bench`: the same models and the same Diff-Instruct iteration as the
TypeScript packages, timed on the CPU.

    /usr/bin/python3 bench/reference/di_bench.py --model toy|unet [--preset mnist-tiny|mnist-small]
        [--what both|teacher|di] [--objective ikl|sid] --batch B --threads T
        (--steps S | --seconds SEC [--min-steps M]) --warmup W

prints one JSON object on stdout:
    {"model", "preset", "batch", "threads", "what", "objective", "msPerDiIteration",
     "msPerTeacherStep", "teacherSteps", "diSteps", "params", "peakRssMiB", "torch"}
(progress on stderr; the ms and steps of a step kind not timed (`--what`) are null). `--seconds`
times as many steps as fill about SEC seconds at the pace of the warm-up steps (at least M, default
2), instead of `--steps`. peakRssMiB is this process's own peak resident memory
(resource.getrusage). `--list-params` prints the denoiser's parameters instead, as
{name: shape} in the TypeScript layout (dense [in, out], conv [kh, kw, in, out]), to compare with
`initDenoiser(config, null).params`.

What it replicates (see bench/reference/README.md):
- toy: the EDM denoiser around the MLP of packages/models/src/mlp.ts (dim 2, hidden [256, 256, 256],
  embedDim 64, unconditional, sigmaData 1.4 as in bench/run.ts), data ring8; the generator is
  `tweedieGenerator(teacher, 2.5)`;
- unet: the EDM denoiser around the UNet of packages/models/src/unet.ts, preset 'mnist-tiny' or
  'mnist-small' (`--preset`, packages/models/src/presets.ts), sigmaData 0.5, 10 classes (one-hot
  labels), same generator;
- one teacher step = packages/trainer/src/teacher.ts (DSM loss, dropout and 10 % label dropout,
  Adam (0.9, 0.999) at 1e-3, EMA half-life 200);
- one Diff-Instruct iteration = packages/trainer/src/diffInstruct.ts (fake-score DSM step on
  detached generator samples, generator step through the IKL surrogate with both score networks
  under no_grad, Adam (0, 0.99) at 1e-4 for both, gradient norm, EMA half-life 100);
- `--objective sid`: the generator step through SiD's loss instead (packages/divergences/src/sid.ts
  `sidLoss`, α 1.2, the trainer's default weighting 'sigma2'): it back-propagates through both
  denoisers into x_t, whose weights are frozen (requires_grad False) but not run under no_grad.
"""

import argparse
import copy
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Layers (packages/models/src/mlp.ts, unet.ts, precond.ts)
# ---------------------------------------------------------------------------------------------

OUT_INIT_SCALE = 0.1  # last layers of residual branches and of the network (mlp.ts, unet.ts)
FREQ_MIN, FREQ_MAX = 0.5, 32.0  # noise-level Fourier features (mlp.ts)
SKIP_SCALE = math.sqrt(0.5)


def dense(fan_in, fan_out, gain=1.0, bias=True):
    """y = x·W + b, W ~ N(0, gain²/fan_in), b = 0 (addDense)."""
    layer = nn.Linear(fan_in, fan_out, bias=bias)
    nn.init.normal_(layer.weight, std=gain / math.sqrt(fan_in))
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def conv(k, cin, cout, gain=1.0):
    """k×k 'same' conv (stride 1), W ~ N(0, gain²/(k²·cin)), b = 0 (addConv)."""
    c = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.normal_(c.weight, std=gain / math.sqrt(k * k * cin))
    nn.init.zeros_(c.bias)
    return c


def label_table(num_classes, embed_dim):
    """map_label: one-hot [N, C] · table [C, E], table ~ N(0, 1), no bias."""
    layer = nn.Linear(num_classes, embed_dim, bias=False)
    nn.init.normal_(layer.weight, std=1.0)
    return layer


class NoiseFeatures(nn.Module):
    """[cos(f_k·c_noise), sin(f_k·c_noise)], f_k log-spaced in [0.5, 32] (noiseFeatures)."""

    def __init__(self, embed_dim):
        super().__init__()
        half = embed_dim // 2
        k = torch.arange(half, dtype=torch.float64)
        f = FREQ_MIN * (FREQ_MAX / FREQ_MIN) ** (k / max(half - 1, 1))
        self.register_buffer('freqs', f.to(torch.float32), persistent=False)

    def forward(self, c_noise):
        phase = c_noise[:, None] * self.freqs[None, :]
        return torch.cat([phase.cos(), phase.sin()], dim=1)


class ScoreNet(nn.Module):
    """The embedding shared by both raw networks, with their parameter names (map_label, map_layer0/1):
    emb = SiLU(W₁·SiLU(W₀·(Fourier(c_noise) + label·W_label)))."""

    def __init__(self, embed_dim, num_classes):
        super().__init__()
        self.features = NoiseFeatures(embed_dim)
        self.map_label = label_table(num_classes, embed_dim) if num_classes > 0 else None
        self.map_layer0 = dense(embed_dim, embed_dim)
        self.map_layer1 = dense(embed_dim, embed_dim)

    def embed(self, c_noise, label):
        emb = self.features(c_noise)
        if label is not None:
            emb = emb + self.map_label(label)
        emb = F.silu(self.map_layer0(emb))
        return F.silu(self.map_layer1(emb))


class MlpHidden(nn.Module):
    """h ← SiLU(h·W + b + emb·W_emb)."""

    def __init__(self, fan_in, width, embed_dim):
        super().__init__()
        lin = dense(fan_in, width)
        self.weight, self.bias = lin.weight, lin.bias
        self.emb = dense(embed_dim, width, bias=False)

    def forward(self, h, emb):
        return F.silu(F.linear(h, self.weight, self.bias) + self.emb(emb))


class MlpScore(ScoreNet):
    """mlpScore: the raw network F(x_in, c_noise, label) of the toy denoiser."""

    def __init__(self, dim, hidden, embed_dim, num_classes):
        super().__init__(embed_dim, num_classes)
        widths = [dim] + list(hidden)
        self.layers = nn.ModuleList(MlpHidden(a, b, embed_dim) for a, b in zip(widths[:-1], widths[1:]))
        self.out = dense(widths[-1], dim, OUT_INIT_SCALE)

    def forward(self, x_in, c_noise, label=None):
        emb = self.embed(c_noise, label)
        h = x_in
        for layer in self.layers:
            h = layer(h, emb)
        return self.out(h)


def groups_for(c):
    """The largest divisor of c that is ≤ min(32, c/4), at least 1 (groupsFor)."""
    for g in range(min(32, c // 4), 1, -1):
        if c % g == 0:
            return g
    return 1


def group_norm(c):
    return nn.GroupNorm(groups_for(c), c, eps=1e-5)


class UnetBlock(nn.Module):
    """EDM UNetBlock with adaptive scale/shift, optional 2× resampling and single-head attention."""

    def __init__(self, cin, cout, embed_dim, resample, attn, dropout):
        super().__init__()
        self.resample = resample
        self.norm0 = group_norm(cin)
        self.conv0 = conv(3, cin, cout)
        self.affine = dense(embed_dim, 2 * cout)
        self.norm1 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = conv(3, cout, cout, OUT_INIT_SCALE)
        self.skip = conv(1, cin, cout) if cin != cout else None
        self.attn = attn
        if attn:
            self.norm2 = group_norm(cout)
            self.qkv = conv(1, cout, 3 * cout)
            self.proj = conv(1, cout, cout, OUT_INIT_SCALE)

    def _resample(self, x):
        if self.resample == 'up':
            return F.interpolate(x, scale_factor=2, mode='nearest')
        if self.resample == 'down':
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x, emb):
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        h = self.conv1(self.dropout(h))
        skip = self._resample(x)
        if self.skip is not None:
            skip = self.skip(skip)
        x = (h + skip) * SKIP_SCALE
        if self.attn:
            n, c, hh, ww = x.shape
            q, k, v = self.qkv(self.norm2(x)).reshape(n, 3, c, hh * ww).unbind(1)  # [N, C, HW] each
            w = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # [N, query, key]
            a = torch.bmm(v, w.transpose(1, 2)).reshape(n, c, hh, ww)
            x = (self.proj(a) + x) * SKIP_SCALE
        return x


class UnetScore(ScoreNet):
    """unetScore: EDM SongUNet/DDPM++ style, the block plan of unet.ts `plan`, NCHW."""

    def __init__(self, resolution, channels, model_channels, channel_mult, num_blocks, attn_resolutions,
                 dropout, embed_dim, num_classes):
        super().__init__(embed_dim, num_classes)
        mc, r = model_channels, resolution
        self.enc = nn.ModuleDict()
        self.dec = nn.ModuleDict()
        self.enc[f'{r}x{r}_conv'] = conv(3, channels, mc)
        self.dec_takes_skip = {}

        def block(cin, cout, resample, attn):
            return UnetBlock(cin, cout, embed_dim, resample, attn, dropout)

        skips = [mc]
        cout = mc
        for level, mult in enumerate(channel_mult):
            res = r >> level
            if level > 0:
                self.enc[f'{res}x{res}_down'] = block(cout, cout, 'down', False)
                skips.append(cout)
            for i in range(num_blocks):
                cin, cout = cout, mc * mult
                self.enc[f'{res}x{res}_block{i}'] = block(cin, cout, None, res in attn_resolutions)
                skips.append(cout)
        for level in reversed(range(len(channel_mult))):
            res = r >> level
            if level == len(channel_mult) - 1:
                self.dec[f'{res}x{res}_in0'] = block(cout, cout, None, True)
                self.dec[f'{res}x{res}_in1'] = block(cout, cout, None, False)
            else:
                self.dec[f'{res}x{res}_up'] = block(cout, cout, 'up', False)
            for i in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), mc * channel_mult[level]
                name = f'{res}x{res}_block{i}'
                self.dec[name] = block(cin, cout, None, res in attn_resolutions)
                self.dec_takes_skip[name] = True
        self.dec['out_norm'] = group_norm(cout)
        self.dec['out_conv'] = conv(3, cout, channels, OUT_INIT_SCALE)
        self.conv_in_name = f'{r}x{r}_conv'

    def forward(self, x_in, c_noise, label=None):
        emb = self.embed(c_noise, label)
        h = self.enc[self.conv_in_name](x_in)
        skips = [h]
        for name, b in self.enc.items():
            if name == self.conv_in_name:
                continue
            h = b(h, emb)
            skips.append(h)
        for name, b in self.dec.items():
            if name in ('out_norm', 'out_conv'):
                continue
            if name in self.dec_takes_skip:
                h = torch.cat([h, skips.pop()], dim=1)
            h = b(h, emb)
        return self.dec['out_conv'](F.silu(self.dec['out_norm'](h)))


class EdmDenoiser(nn.Module):
    """edmPrecond: D(x; σ) = c_skip·x + c_out·F(c_in·x; ln(σ)/4)."""

    def __init__(self, net, sigma_data):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    def forward(self, x, sigma, label=None):
        sd = self.sigma_data
        s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
        s2 = s * s + sd * sd
        c_skip = sd * sd / s2
        c_out = s * sd / s2.sqrt()
        c_in = s2.rsqrt()
        c_noise = sigma.log() / 4
        return c_skip * x + c_out * self.net(c_in * x, c_noise, label)


class TweedieGenerator(nn.Module):
    """tweedieGenerator(teacher, σ*): x = D(σ*·z; σ*) with a copy of the teacher's weights."""

    def __init__(self, denoiser, sigma_star):
        super().__init__()
        self.denoiser = denoiser
        self.sigma_star = sigma_star

    def forward(self, z, label=None):
        sigma = torch.full((z.shape[0],), self.sigma_star, dtype=z.dtype)
        return self.denoiser(z * self.sigma_star, sigma, label)


# ---------------------------------------------------------------------------------------------
# Losses (packages/divergences/src/dsm.ts, ikl.ts)
# ---------------------------------------------------------------------------------------------


def per_sample(sigma, x):
    return sigma.reshape(-1, *([1] * (x.dim() - 1)))


def dsm_loss(denoiser, x0, sigma, noise, label, sigma_data):
    """mean λ(σ)·(D(x0 + σn; σ) − x0)², λ = (σ² + σ_d²)/(σ·σ_d)²."""
    s = per_sample(sigma, x0)
    d = denoiser(x0 + s * noise, sigma, label)
    sd2 = sigma_data * sigma_data
    weight = (s * s + sd2) / (s * s * sd2)
    return (weight * (d - x0).square()).mean()


def score_weights(weighting, s, sigma_data, x0=None, d_teacher=None):
    """w(σ) per sample (iklWeights): 'sigma2' σ², 'uniform' 1, 'edm' σ²(σ² + σ_d²)/σ_d², 'dmd'
    σ² / mean_dims|x0 − D_teacher| (the DMD normaliser). Constants: call it under no_grad."""
    if weighting == 'sigma2':
        return s * s
    if weighting == 'uniform':
        return torch.ones_like(s)
    if weighting == 'edm':
        return s * s * (s * s + sigma_data ** 2) / sigma_data ** 2
    if weighting == 'dmd':
        scale = (x0 - d_teacher).abs().reshape(x0.shape[0], -1).mean(dim=1)
        return s * s / per_sample(scale.clamp_min(1e-12), x0)
    raise ValueError(f'unsupported weighting {weighting!r}')


def ikl_surrogate(x0, sigma, noise, teacher, fake, label, sigma_data, weighting='sigma2'):
    """Stop-gradient surrogate of (3.2): L = Σ g ⊙ x0, g = w(σ)(D_fake − D_teacher)/(σ²·N), so ∂L/∂x0 = g."""
    n = x0.shape[0]
    with torch.no_grad():
        s = per_sample(sigma, x0)
        xt = x0.detach() + s * noise
        d_teacher = teacher(xt, sigma, label)
        d_fake = fake(xt, sigma, label)
        w = score_weights(weighting, s, sigma_data, x0, d_teacher)
        g = w * (d_fake - d_teacher) / (s * s * n)
    return (g * x0).sum()


def sid_loss(x0, sigma, noise, teacher, fake, label, sigma_data, alpha=1.2, weighting='sigma2'):
    """SiD's generator loss (sidLoss), x_t = x0 + σn, f_T = D_teacher(x_t), f_F = D_fake(x_t):

        L = (1/N) Σ_i c_i Σ_dims (f_T − f_F) ⊙ ((f_T − x0) − α (f_T − f_F)),   c_i = w(σ_i)/σ_i²

    A real loss: the gradient reaches x0 directly and through x_t through both denoisers (their
    Jacobians), so neither runs under no_grad; the caller freezes their weights (requires_grad
    False), and c_i is a constant."""
    n = x0.shape[0]
    s = per_sample(sigma, x0)
    xt = x0 + s * noise
    f_t = teacher(xt, sigma, label)
    f_f = fake(xt, sigma, label)
    with torch.no_grad():
        c = score_weights(weighting, s, sigma_data, x0, f_t) / (s * s)
    d = f_t - f_f
    return (c * d * ((f_t - x0) - alpha * d)).sum() / n


# ---------------------------------------------------------------------------------------------
# Training steps (packages/trainer/src/teacher.ts, diffInstruct.ts, ema.ts)
# ---------------------------------------------------------------------------------------------


class Ema:
    """θ_ema ← β θ_ema + (1 − β) θ, β = 0.5^(1/halfLife)."""

    def __init__(self, module, half_life):
        self.beta = 0.5 ** (1 / half_life)
        self.params = [p for p in module.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self):
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p, 1 - self.beta)


def log_normal_sigma(n, p_mean=-1.2, p_std=1.2):
    return (p_mean + p_std * torch.randn(n)).exp()


def one_hot(labels, num_classes):
    """One-hot rows; a negative label gives an all-zero row (no label)."""
    out = torch.zeros(labels.shape[0], num_classes)
    keep = labels >= 0
    out[keep, labels[keep]] = 1.0
    return out


TEACHER = dict(lr=1e-3, betas=(0.9, 0.999), ema_half_life=200, label_dropout=0.1)
DI = dict(lr_generator=1e-4, lr_fake=1e-4, betas=(0.0, 0.99), ema_half_life=100, sigma_star=2.5, weighting='sigma2',
          sid_alpha=1.2)


class TeacherTrainer:
    """One step = teacher.ts: batch with replacement, label dropout, DSM with dropout, Adam, EMA."""

    def __init__(self, model, data, labels, num_classes, batch):
        self.model, self.data, self.labels, self.num_classes, self.batch = model, data, labels, num_classes, batch
        self.opt = torch.optim.Adam(model.parameters(), lr=TEACHER['lr'], betas=TEACHER['betas'], eps=1e-8)
        self.ema = Ema(model, TEACHER['ema_half_life'])

    def step(self):
        self.model.train()  # dropout active (withDropout)
        idx = torch.randint(self.data.shape[0], (self.batch,))
        x = self.data[idx]
        label = None
        if self.num_classes > 0:
            lab = self.labels[idx].clone()
            lab[torch.rand(self.batch) < TEACHER['label_dropout']] = -1
            label = one_hot(lab, self.num_classes)
        sigma = log_normal_sigma(self.batch)
        noise = torch.randn_like(x)
        loss = dsm_loss(self.model, x, sigma, noise, label, self.model.sigma_data)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update()
        return loss.item()


class DiffInstructTrainer:
    """One iteration = diffInstruct.ts (fakeStepsPerGeneratorStep 1, weighting 'sigma2', no clipping),
    the generator step by `objective`: 'ikl' (iklSurrogate) or 'sid' (sidLoss, α 1.2)."""

    def __init__(self, teacher, num_classes, batch, sample_shape, objective='ikl'):
        if objective not in ('ikl', 'sid'):
            raise ValueError(f'unknown objective {objective!r}')
        self.objective = objective
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.fake = copy.deepcopy(teacher).eval().requires_grad_(True)  # fake score: a copy of the teacher
        self.generator = TweedieGenerator(copy.deepcopy(teacher), DI['sigma_star']).eval().requires_grad_(True)
        self.sigma_data = teacher.sigma_data
        self.num_classes, self.batch, self.sample_shape = num_classes, batch, sample_shape
        self.gen_params = list(self.generator.parameters())
        self.opt_g = torch.optim.Adam(self.gen_params, lr=DI['lr_generator'], betas=DI['betas'], eps=1e-8)
        self.opt_f = torch.optim.Adam(self.fake.parameters(), lr=DI['lr_fake'], betas=DI['betas'], eps=1e-8)
        self.ema = Ema(self.generator, DI['ema_half_life'])

    def draw(self):
        n = self.batch
        z = torch.randn(n, *self.sample_shape)
        label = one_hot(torch.randint(self.num_classes, (n,)), self.num_classes) if self.num_classes > 0 else None
        sigma = log_normal_sigma(n)
        noise = torch.randn(n, *self.sample_shape)
        return z, label, sigma, noise

    def step(self):
        # Step 1: DSM of the fake score on detached generator samples.
        z, label, sigma, noise = self.draw()
        with torch.no_grad():
            x0 = self.generator(z, label)
        fake_loss = dsm_loss(self.fake, x0, sigma, noise, label, self.sigma_data)
        self.opt_f.zero_grad(set_to_none=True)
        fake_loss.backward()
        self.opt_f.step()
        # Step 2: the generator through the IKL surrogate (teacher and fake under no_grad), or
        # through SiD's loss (back-propagated through both, whose weights stay frozen).
        z, label, sigma, noise = self.draw()
        x0 = self.generator(z, label)
        self.opt_g.zero_grad(set_to_none=True)
        if self.objective == 'sid':
            self.fake.requires_grad_(False)  # the teacher's are frozen for good
            try:
                surrogate = sid_loss(x0, sigma, noise, self.teacher, self.fake, label, self.sigma_data,
                                     DI['sid_alpha'], DI['weighting'])
                surrogate.backward()
            finally:
                self.fake.requires_grad_(True)
        else:
            surrogate = ikl_surrogate(x0, sigma, noise, self.teacher, self.fake, label, self.sigma_data, DI['weighting'])
            surrogate.backward()
        with torch.no_grad():
            grad_norm = torch.stack([p.grad.square().sum() for p in self.gen_params]).sum().sqrt().item()
        self.opt_g.step()
        self.ema.update()
        return fake_loss.item(), surrogate.item(), grad_norm


# ---------------------------------------------------------------------------------------------
# Presets (bench/run.ts, packages/models/src/presets.ts)
# ---------------------------------------------------------------------------------------------

TOY_NET = dict(dim=2, hidden=[256, 256, 256], embed_dim=64, num_classes=0)
MNIST_TINY = dict(resolution=32, channels=1, model_channels=16, channel_mult=[1, 2, 2], num_blocks=1,
                  attn_resolutions=[8], dropout=0.1, embed_dim=64, num_classes=10)
MNIST_SMALL = dict(MNIST_TINY, model_channels=32, embed_dim=128)
UNET_PRESETS = {'mnist-tiny': MNIST_TINY, 'mnist-small': MNIST_SMALL}


def build(model, preset='mnist-tiny'):
    """The teacher denoiser, its dataset (data, labels), the number of classes, one sample's shape."""
    if model == 'toy':
        teacher = EdmDenoiser(MlpScore(**TOY_NET), sigma_data=1.4)
        # getTarget('ring8').sample(20000): 8 Gaussians (std 0.1) on a circle of radius 2
        comp = torch.randint(8, (20000,)).to(torch.float32) * (2 * math.pi / 8)
        data = 2.0 * torch.stack([comp.cos(), comp.sin()], dim=1) + 0.1 * torch.randn(20000, 2)
        return teacher, data, None, 0, [2]
    if model == 'unet':
        teacher = EdmDenoiser(UnetScore(**UNET_PRESETS[preset]), sigma_data=0.5)
        data = torch.rand(256, 1, 32, 32) * 2 - 1  # as runMnistRows: uniform in [-1, 1], labels i % 10
        labels = torch.arange(256) % 10
        return teacher, data, labels, 10, [1, 32, 32]
    raise ValueError(f'unknown model {model!r}')


def ts_layout(shape):
    """A PyTorch parameter shape in the TypeScript layout: dense [in, out], conv [kh, kw, in, out]."""
    s = list(shape)
    if len(s) == 2:
        return [s[1], s[0]]
    if len(s) == 4:
        return [s[2], s[3], s[1], s[0]]
    return s


def time_steps(label, fn, steps, warmup, seconds=None, min_steps=2):
    """ms per call of fn over `steps` calls after `warmup` calls; with `seconds`, as many calls as fill
    about that many seconds at the warm-up's pace (at least min_steps). Returns (ms, steps)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    if seconds is not None:
        warm_ms = (time.perf_counter() - t0) * 1000 / max(warmup, 1)
        steps = max(min_steps, min(500, round(seconds * 1000 / warm_ms)))
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    ms = (time.perf_counter() - t0) * 1000 / steps
    print(f'{label}: {ms:.2f} ms/step over {steps} steps', file=sys.stderr)
    return ms, steps


def peak_rss_mib():
    """This process's peak resident memory (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', choices=['toy', 'unet'], required=True)
    ap.add_argument('--preset', choices=sorted(UNET_PRESETS), default='mnist-tiny', help='the UNet of --model unet')
    ap.add_argument('--what', choices=['both', 'teacher', 'di'], default='both', help='which step kinds to time')
    ap.add_argument('--objective', choices=['ikl', 'sid'], default='ikl', help="the Diff-Instruct generator step's loss")
    ap.add_argument('--batch', type=int, default=None, help='default: 512 (toy), 32 (unet), as bench/run.ts')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=None, help='timed iterations; default 20 (toy), 5 (unet)')
    ap.add_argument('--seconds', type=float, default=None, help='time about this many seconds of steps instead of --steps')
    ap.add_argument('--min-steps', type=int, default=2, help='with --seconds: at least this many timed steps')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--list-params', action='store_true', help='print {name: shape} (TypeScript layout) and exit')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    batch = args.batch or (512 if args.model == 'toy' else 32)
    steps = args.steps or (20 if args.model == 'toy' else 5)
    preset = args.preset if args.model == 'unet' else None

    teacher, data, labels, num_classes, sample_shape = build(args.model, args.preset)
    if args.list_params:
        print(json.dumps({n: ts_layout(p.shape) for n, p in teacher.named_parameters()}))
        return
    params = sum(p.numel() for p in teacher.parameters())
    print(f'{args.model}{f" {preset}" if preset else ""}: {params:,} parameters, batch {batch}, '
          f'{torch.get_num_threads()} thread(s), torch {torch.__version__}', file=sys.stderr)

    timing = dict(steps=steps, warmup=args.warmup, seconds=args.seconds, min_steps=args.min_steps)
    teacher_ms = teacher_steps = di_ms = di_steps = None
    if args.what in ('both', 'teacher'):
        tt = TeacherTrainer(teacher, data, labels, num_classes, batch)
        teacher_ms, teacher_steps = time_steps('teacher DSM step', tt.step, **timing)
        del tt
    if args.what in ('both', 'di'):
        di = DiffInstructTrainer(teacher, num_classes, batch, sample_shape, args.objective)
        di_ms, di_steps = time_steps(f'Diff-Instruct iteration ({args.objective})', di.step, **timing)

    print(json.dumps({
        'model': args.model,
        'preset': preset,
        'batch': batch,
        'threads': args.threads,
        'what': args.what,
        'objective': args.objective,
        'msPerDiIteration': di_ms,
        'msPerTeacherStep': teacher_ms,
        'teacherSteps': teacher_steps,
        'diSteps': di_steps,
        'params': params,
        'peakRssMiB': peak_rss_mib(),
        'torch': torch.__version__,
    }))


if __name__ == '__main__':
    main()
