"""Class-conditional flow matching (rectified flow) for 28x28 grayscale: noise -> image by an ODE.

Training (Liu et al. 2022; Lipman et al. 2022): a clean image x_0, noise e ~ N(0, I) and a time t
in [0, 1] give the point on the straight path between them,
    x_t = (1 - t) x_0 + t e,
whose velocity dx_t/dt = e - x_0 is the regression target of the network v(x_t, t, y):
    L = E || v(x_t, t, y) - (e - x_0) ||^2.
t is drawn logit-normal (Esser et al. 2024), and the label y is replaced by a "no class" token 10% of
the time, so one network predicts both the conditional and the unconditional velocity.

Sampling integrates dx/dt = v from t = 1 (the noise drawn from the random seed) to t = 0 (the image), here with Heun's
second-order method; classifier-free guidance (Ho and Salimans 2022) extrapolates from the
unconditional towards the conditional velocity, v = v_u + w (v_c - v_u), both from one batched
forward pass. A weight above 1 acts only on the less noisy part of the path, t <= `guidance_below`
(Kynkaanniemi et al. 2024, "guidance in a limited interval"), and elsewhere is 1, the conditional
velocity alone, at half the cost: guiding the noisiest steps mostly pushes every sample of a class
towards one prototype. Weights up to 1 (mixing in less of the class) act on the whole path.
Autoguidance (Karras et al. 2024) extrapolates away from a guide, a smaller flow trained for less
time and saved inside the checkpoint, whose errors point where the model's own are, where
t <= `autoguidance_below`: it sharpens the images without pulling them towards their class.
The latent of this family is the starting noise (B, 784): seeds, slerp and latent arithmetic apply
to it as to a GAN's z, and integrating backwards from an image gives its latent.

Editing (`realize`, `inpaint`) starts or steers the same ODE: SDEdit (Meng et al. 2021) noises an
image to t = strength along its straight path and integrates from there; RePaint (Lugmayr et al. 2022)
holds the kept pixels on their path while the rest is sampled, re-noising each step to let the two agree.

The velocity network is a small U-Net (Ronneberger et al. 2015, as in DDPM): residual blocks whose
normalisation is scaled and shifted by the time and class embedding, self-attention at 7x7.
"""

import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from .data import CLASS_NAMES, class_index
from .hub import HubModelMixin
from .latent import seed_to_z
from .limits import MAX_GUIDANCE, MAX_RESAMPLE, MAX_SAMPLING_STEPS, check_strength

IMAGE_SHAPE = (1, 28, 28)
INVERSION_ITERATIONS = 3  # fixed-point iterations that undo sampling's last step when inverting
INPAINT_STEPS = 12  # ODE steps of inpainting (one image: cheap, and the two parts need steps to agree)
INPAINT_RESAMPLE = 2  # RePaint's resampling: each step redone this many more times after noising back
REALIZE_STRENGTH = 0.5  # SDEdit's default t0 (python -m benchmarks.bench_realize)


@dataclass(frozen=True)
class FlowSampling:
    """How a flow checkpoint samples unless asked otherwise: its config.json's "sampling", read by the
    page, the CLI and the tests; frozen (`FlowModel.with_sampling` makes a model with other settings)."""

    steps: int = 6  # ODE steps (Heun: 2 evaluations each, the last step 1)
    guidance: float = 3.7  # classifier-free guidance weight (1 = conditional only, 0 = unconditional)
    guidance_below: float = 0.4  # guidance above 1 only where t <= this (1 = the whole path from the noise)
    autoguidance: float = 1.75  # autoguidance weight where the model has a guide (1 = the model alone)
    autoguidance_below: float = 0.5  # autoguidance only where t <= this


SAMPLING_FIELDS = tuple(field.name for field in fields(FlowSampling))


@dataclass
class FlowConfig:
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # U-Net widths at 28, 14 and 7 px
    blocks: int = 1  # residual blocks per resolution on the way down (one more on the way up)
    embed_dim: int = 128  # size of the time + class embedding that modulates every block
    groups: int = 8  # GroupNorm groups
    attention_heads: int = 4  # self-attention at the 7x7 resolution (0 = none)
    num_classes: int = len(CLASS_NAMES)  # one more embedding, index num_classes, means "no class"
    label_dropout: float = 0.1  # training: share of labels replaced by "no class" (for guidance)
    guide: dict | None = None  # the FlowConfig of a smaller, shorter-trained flow for autoguidance (None: none)
    sampling: dict = field(default_factory=lambda: asdict(FlowSampling()))  # a FlowSampling, as saved


def upgraded_config(config: dict) -> dict:
    """A flow config.json written before the sampling settings had their own "sampling" object (they were
    fields of the config itself), in today's form; today's configs unchanged."""
    if not isinstance(config, dict) or not any(name in config for name in SAMPLING_FIELDS):
        return config
    config = dict(config)
    sampling = {name: config.pop(name) for name in SAMPLING_FIELDS if name in config}
    config["sampling"] = {**asdict(FlowSampling()), **config.get("sampling", {}), **sampling}
    if isinstance(config.get("guide"), dict):
        config["guide"] = upgraded_config(config["guide"])
    return config


class FlowMatchHeun:
    """The flow's ODE solver, dx/dt = v(x, t), on a uniform grid of times (diffusers'
    FlowMatchHeunDiscreteScheduler takes the same steps; a test compares them).

    Heun's method (the trapezoid of the velocities at both ends), except the last step into the image,
    Euler's: the velocity at t = 0 exactly would be the noise of a clean image, which the network cannot
    know (logit-normal training almost never shows it t near 0) and whose guess adds speckle (as EDM).
    Each step also gives the clean image predicted at its start, x_0 = x_t - t v, exact on the straight
    path when v is the true velocity.
    """

    def timesteps(self, steps: int, start: float = 1.0, end: float = 0.0) -> list[float]:
        """`steps` + 1 equally spaced times from `start` to `end` (1 -> 0 samples, 0 -> 1 inverts)."""
        return torch.linspace(start, end, steps + 1).tolist()

    def step(self, velocity, x: torch.Tensor, t: float, t_next: float) -> tuple[torch.Tensor, torch.Tensor]:
        """x at t_next from x at t, given `velocity(x, t)`: (x at t_next, the clean image predicted at t)."""
        dt = t_next - t
        v = velocity(x, t)
        if t_next == 0.0:
            return x + dt * v, x - t * v
        return x + dt * 0.5 * (v + velocity(x + dt * v, t_next)), x - t * v

    def inverse_step(self, velocity, x: torch.Tensor, t: float, t_next: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverting, the first step, out of the image x at t (= 0): undo sampling's last (Euler) step, i.e.
        find y with y - (t_next - t) v(y, t_next) = x, by fixed-point iteration from y = x, so the
        network is not asked about t = 0 here either. (y at t_next, x)."""
        y = x
        for _ in range(INVERSION_ITERATIONS):
            y = x + (t_next - t) * velocity(y, t_next)
        return y, x


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features (B, dim) of times t (B,) in [0, 1] (Transformer positions, scaled by 1000)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, twice, the second normalisation scaled and shifted by the embedding."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.modulation = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (DDPM, ADM)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.modulation(emb)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a (B, C, H, W) map, with a residual connection."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        # (B, heads, H*W, C/heads) each
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(out.transpose(-1, -2).reshape(b, c, h, w))


class FlowModel(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["flow-matching", "rectified-flow", "diffusion", "fashion-mnist", "conditional-image-generation"],
    license="mit",
):
    """Velocity network v(x_t (B, 1, 28, 28), t (B,), labels (B,)) -> (B, 1, 28, 28), and its ODE sampler."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        channels, emb, groups = list(config.channels), config.embed_dim, config.groups
        self.time_embed = nn.Sequential(nn.Linear(channels[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_embed = nn.Embedding(config.num_classes + 1, emb)  # the last row: "no class"
        self.conv_in = nn.Conv2d(IMAGE_SHAPE[0], channels[0], 3, padding=1)

        # Down: at each resolution `blocks` residual blocks, each output kept for the skip connections.
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, width = [channels[0]], channels[0]
        for level, out in enumerate(channels):
            blocks = nn.ModuleList()
            for _ in range(config.blocks):
                blocks.append(ResBlock(width, out, emb, groups))
                width = out
                skips.append(width)
            self.down.append(blocks)
            if level < len(channels) - 1:  # 28 -> 14 -> 7
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.mid1 = ResBlock(width, width, emb, groups)
        self.attention = Attention(width, config.attention_heads, groups) if config.attention_heads else nn.Identity()
        self.mid2 = ResBlock(width, width, emb, groups)

        # Up: one more block per resolution than on the way down, each fed one skip connection.
        self.up = nn.ModuleList()
        for level, out in reversed(list(enumerate(channels))):
            blocks = nn.ModuleList()
            for _ in range(config.blocks + 1):
                blocks.append(ResBlock(width + skips.pop(), out, emb, groups))
                width = out
            self.up.append(blocks)
        self.norm_out = nn.GroupNorm(groups, width)
        self.conv_out = nn.Conv2d(width, IMAGE_SHAPE[0], 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.guide = self.build_guide(config)
        self.sampling = FlowSampling(**config.sampling)  # frozen: see `with_sampling`
        self.scheduler = FlowMatchHeun()

    @staticmethod
    def build_guide(config: FlowConfig) -> "FlowModel | None":
        """The guide network of autoguidance from `config.guide` (None without one), or a ValueError."""
        if config.guide is None:
            return None
        guide = FlowConfig(**upgraded_config(config.guide))
        if guide.guide is not None:
            raise ValueError("A flow model's guide cannot have a guide of its own.")
        if guide.num_classes != config.num_classes:
            raise ValueError(f"The guide knows {guide.num_classes} classes, the model {config.num_classes}.")
        return FlowModel(guide)

    def with_guide(self, guide: "FlowModel | None") -> "FlowModel":
        """A copy of this model's network with `guide` as its guide (None: the network alone), or a
        ValueError when the guide cannot guide it. The original keeps serving unchanged, whatever thread
        is using it."""
        config = replace(self.config, guide=None if guide is None else asdict(guide.config))
        copy = FlowModel(config).to(next(self.parameters()).device)
        weights = {k: v for k, v in self.state_dict().items() if not k.startswith("guide.")}
        if guide is not None:
            weights.update({f"guide.{k}": v for k, v in guide.state_dict().items()})
        copy.load_state_dict(weights)
        return copy.eval()

    def with_sampling(self, **changes: float) -> "FlowModel":
        """This model (the same weights, not copied) sampling with other settings (FlowSampling's fields):
        the benchmarks' and tests' way to try settings without changing the loaded model's."""
        sampling = replace(self.sampling, **changes)
        other = copy.copy(self)  # its own tables of parameters and submodules, holding the same tensors
        other._parameters, other._buffers, other._modules = (
            dict(self._parameters),
            dict(self._buffers),
            dict(self._modules),
        )
        other.config = replace(self.config, sampling=asdict(sampling))
        other.sampling = sampling
        return other

    def without_guide(self) -> "FlowModel":
        """This model's network alone, without autoguidance: itself when it has no guide, else a copy."""
        return self if self.guide is None else self.with_guide(None)

    @property
    def latent_dim(self) -> int:
        """The latent is the starting noise, one value per pixel."""
        return math.prod(IMAGE_SHAPE)

    @property
    def null_label(self) -> int:
        """The label index that means "no class" (unconditional)."""
        return self.config.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The velocity at x_t (B, 1, 28, 28), times t (B,) in [0, 1], labels (B,) (num_classes = none)."""
        emb = F.silu(self.time_embed(timestep_embedding(t, self.config.channels[0])) + self.class_embed(labels))
        h = self.conv_in(x)
        skips = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for level, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if level < len(self.up) - 1:  # 7 -> 14 -> 28; the next block's convolution mixes the copies
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        return self.conv_out(F.silu(self.norm_out(h)))

    # --- the ODE -------------------------------------------------------------------------------

    def labels_for(self, num: int, label: int | str | torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """Labels (num,) from one label (index or name), a tensor of them, or None for "no class"."""
        if isinstance(label, torch.Tensor):
            return label.to(device=device, dtype=torch.long).expand(num)
        index = self.null_label if label is None else class_index(label)
        return torch.full((num,), index, dtype=torch.long, device=device)

    def velocity(self, x: torch.Tensor, t: float, labels: torch.Tensor, guidance: float) -> torch.Tensor:
        """The guided velocity at x (B, 1, 28, 28) and time t: v_u + guidance (v_c - v_u), autoguided.

        Where t > sampling.guidance_below a guidance above 1 is cut to 1. The conditional and
        unconditional halves go through the network as one batch of 2B; without a class (all labels
        "no class") or with guidance 0 or 1, one pass of B is enough. With a guide network, where
        t <= sampling.autoguidance_below, `autoguided` adds its term to the result.
        """
        if t > self.sampling.guidance_below:
            guidance = min(guidance, 1.0)
        times = torch.full((len(x),), t, device=x.device)
        if guidance == 0.0:
            labels = torch.full_like(labels, self.null_label)
        if guidance in (0.0, 1.0) or bool((labels == self.null_label).all()):
            v = v_model = self(x, times, labels)
        else:
            both = self(
                x.repeat(2, 1, 1, 1), times.repeat(2), torch.cat([labels, torch.full_like(labels, self.null_label)])
            )
            v_model, v_unconditional = both.chunk(2)
            v = v_unconditional + guidance * (v_model - v_unconditional)
        return self.autoguided(v, x, t, labels, v_model)

    def autoguided(
        self, v: torch.Tensor, x: torch.Tensor, t: float, labels: torch.Tensor, v_model: torch.Tensor
    ) -> torch.Tensor:
        """v plus autoguidance's term (Karras et al. 2024, "Guiding a diffusion model with a bad version of
        itself"): (w - 1) (v_model - v_guide), from the model's velocity at `labels` away from the guide's,
        a smaller network trained for less time, whose errors are the model's own writ large. It sharpens
        what the model draws without pulling every sample towards its class's prototype, as guidance
        does. v itself without a guide, at weight 1 or where t > sampling.autoguidance_below."""
        weight = self.sampling.autoguidance
        if self.guide is None or weight == 1.0 or t > self.sampling.autoguidance_below:
            return v
        return v + (weight - 1.0) * (v_model - self.guide(x, torch.full((len(x),), t, device=x.device), labels))

    @torch.inference_mode()  # (on a generator: each step, on whatever thread resumes it)
    def path(
        self, x: torch.Tensor, labels: torch.Tensor, steps: int, guidance: float, start: float = 1.0, end: float = 0.0
    ) -> Iterator[tuple[float, torch.Tensor, torch.Tensor]]:
        """The ODE from t = start to t = end in `steps` equal steps, one (t, x_t, predicted x_0) per step:
        the one loop that sampling, inversion, SDEdit and the page's denoise stream run.

        start 1 -> end 0 samples (noise to image); start 0 -> end 1 inverts (image to noise), its first
        step the inverse of sampling's last (`FlowMatchHeun.inverse_step`).
        """

        def velocity(y: torch.Tensor, t: float) -> torch.Tensor:
            return self.velocity(y, t, labels, guidance)

        times = self.scheduler.timesteps(steps, start, end)
        for index, (t, t_next) in enumerate(zip(times, times[1:])):
            if end > start and index == 0:
                x, predicted = self.scheduler.inverse_step(velocity, x, t, t_next)
            else:
                x, predicted = self.scheduler.step(velocity, x, t, t_next)
            yield t_next, x, predicted

    def integrate(
        self, x: torch.Tensor, labels: torch.Tensor, steps: int, guidance: float, start: float = 1.0, end: float = 0.0
    ) -> torch.Tensor:
        """x at t = end: the last point of `path`."""
        for _, x, _ in self.path(x, labels, steps, guidance, start, end):
            pass
        return x

    def check_settings(self, steps: int | None, guidance: float | None) -> tuple[int, float]:
        """Sampling settings, None taking the checkpoint's (`sampling`), or a ValueError naming the bad one."""
        steps = self.sampling.steps if steps is None else steps
        guidance = self.sampling.guidance if guidance is None else guidance
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_SAMPLING_STEPS:
            raise ValueError(f"Steps must be a whole number between 1 and {MAX_SAMPLING_STEPS}, got {steps!r}.")
        guidance = float(guidance)
        if not math.isfinite(guidance) or not 0.0 <= guidance <= MAX_GUIDANCE:
            raise ValueError(f"Guidance must be a number between 0 and {MAX_GUIDANCE:g}, got {guidance!r}.")
        return steps, guidance

    @torch.inference_mode()
    def decode(
        self,
        z: torch.Tensor,
        label: int | str | torch.Tensor | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """Noise latents (B, 784) -> images (B, 1, 28, 28) in [-1, 1], of class `label` (None: any class)."""
        steps, guidance = self.check_settings(steps, guidance)
        x = z.reshape(len(z), *IMAGE_SHAPE).float()
        labels = self.labels_for(len(z), label, x.device)
        return self.integrate(x, labels, steps, guidance).clamp(-1, 1)

    @torch.inference_mode()
    def encode(
        self,
        x: torch.Tensor,
        label: int | str | torch.Tensor | None = None,
        steps: int | None = None,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1] -> their noise latents (B, 784): the ODE run backwards.

        Without guidance (1 = the conditional velocity alone, autoguided when the model has a guide)
        the path is the one `decode` follows at guidance 1, so decode(encode(x)) returns x up to the
        solver's error.
        """
        steps, guidance = self.check_settings(steps, guidance)
        labels = self.labels_for(len(x), label, x.device)
        return self.integrate(x.float(), labels, steps, guidance, start=0.0, end=1.0).flatten(1)

    def invert(self, x: torch.Tensor, label: int | str | torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1] -> their noise latents (B, 784): `encode` at the checkpoint's
        steps and guidance, the path `decode` follows, so decode(invert(x)) returns x up to the solver."""
        return self.encode(x, label, guidance=self.sampling.guidance)

    @torch.inference_mode()
    def sample(
        self,
        num: int,
        seed: int = 0,
        label: int | str | torch.Tensor | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """`num` images (num, 1, 28, 28) from seeds seed..seed+num-1, noise drawn on the CPU."""
        device = next(self.parameters()).device
        return self.decode(seed_to_z(seed, num, self.latent_dim, device=device), label, steps, guidance)

    # --- editing: SDEdit and RePaint ----------------------------------------------------------

    def noised(self, x: torch.Tensor, strength: float, noise: torch.Tensor) -> torch.Tensor:
        """SDEdit's start: images x (B, 1, 28, 28) moved to t = strength along their straight paths to
        `noise` (B, 784), x_t = (1 - t) x + t e, a point the sampler would pass through."""
        strength = check_strength(strength)
        return (1 - strength) * x.float() + strength * noise.reshape(x.shape).to(x.device, torch.float32)

    def realize_steps(self, strength: float, steps: int) -> int:
        """ODE steps from t = strength to 0 at the step size of `steps` from 1 to 0 (at least one)."""
        return max(1, math.ceil(check_strength(strength) * steps - 1e-9))

    @torch.inference_mode()
    def realize(
        self,
        x: torch.Tensor,
        strength: float,
        noise: torch.Tensor,
        label: int | str | torch.Tensor | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """Rough images x (B, 1, 28, 28) in [-1, 1] made realistic: SDEdit (Meng et al. 2021).

        Each image is noised to t = strength (`noised`) and the ODE integrated from there to t = 0,
        so what the noise hides the model redraws: at a low strength only details change, at 1 the
        input is forgotten and the result is the sample of `noise`; at 0 it is x itself.
        """
        steps, guidance = self.check_settings(steps, guidance)
        if check_strength(strength) == 0.0:
            return x.float().clamp(-1, 1)
        labels = self.labels_for(len(x), label, x.device)
        x_t = self.noised(x, strength, noise)
        return self.integrate(x_t, labels, self.realize_steps(strength, steps), guidance, start=strength).clamp(-1, 1)

    @torch.inference_mode()
    def inpaint(
        self,
        x: torch.Tensor,
        keep: torch.Tensor,
        noise: torch.Tensor,
        label: int | str | torch.Tensor | None = None,
        steps: int = INPAINT_STEPS,
        guidance: float | None = None,
        resample: int = INPAINT_RESAMPLE,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images x (B, 1, 28, 28) with the pixels outside `keep` (1 = keep, 0 = redraw) regenerated.

        RePaint (Lugmayr et al. 2022) on the flow's ODE: sampling from `noise`, the kept pixels are
        put back before every step where the straight path from x puts them at that time,
        (1 - t) x + t e, so the model redraws the rest around them. `resample` times per step (but the
        first and the last) the result is noised back to the step's start (the forward path, fresh
        noise from `generator`, drawn on the CPU) and the step done again, which lets the two parts
        agree. Returns the result,
        x's pixels exactly where `keep` is 1, and the model's own image at t = 0 (before the kept pixels
        are put back: how well it fits them).
        """
        steps, guidance = self.check_settings(steps, guidance)
        if isinstance(resample, bool) or not isinstance(resample, int) or not 0 <= resample <= MAX_RESAMPLE:
            raise ValueError(f"Resample must be a whole number between 0 and {MAX_RESAMPLE}, got {resample!r}.")
        x = x.float()
        keep = keep.to(x.device, torch.float32).expand_as(x)
        noise = noise.reshape(x.shape).to(x.device, torch.float32)
        labels = self.labels_for(len(x), label, x.device)

        def velocity(y: torch.Tensor, t: float) -> torch.Tensor:
            return self.velocity(y, t, labels, guidance)

        x_t = noise
        times = self.scheduler.timesteps(steps)
        for t, t_next in zip(times, times[1:]):
            # Not the first step (from t = 1 a resample is all fresh noise), nor the last, Euler's, whose
            # x_0 = x_t - t v is the mean of the images x_t may come from, a little too smooth to noise again.
            rounds = resample + 1 if 0.0 < t_next < t < 1.0 else 1
            for round_ in range(rounds):
                x_t = keep * ((1 - t) * x + t * noise) + (1 - keep) * x_t
                x_next, _ = self.scheduler.step(velocity, x_t, t, t_next)
                if round_ < rounds - 1:
                    # Back from t_next to t: x_t = a x_next + sigma e' has the path's mean and variance.
                    a = (1 - t) / (1 - t_next)
                    sigma = math.sqrt(max(t**2 - (a * t_next) ** 2, 0.0))
                    fresh = torch.randn(x.shape, generator=generator).to(x.device)
                    x_t = a * x_next + sigma * fresh
            x_t = x_next
        x_t = x_t.clamp(-1, 1)
        return keep * x + (1 - keep) * x_t, x_t

    # --- training ------------------------------------------------------------------------------

    def loss(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The rectified-flow loss: mean || v(x_t, t, y) - (e - x_0) ||^2 over pixels and batch."""
        tt = t[:, None, None, None]
        x_t = (1 - tt) * x0 + tt * noise
        return F.mse_loss(self(x_t, t, labels).float(), noise - x0)
