"""Seconds per training step in fp32 and under bf16 autocast, for each family's speedrun recipe.

    python -m benchmarks.bench_precision               # 2 threads, 20 timed steps per case
    python -m benchmarks.bench_precision --threads 1 --steps 50

Each case is the training scripts' own step on random data at batch 128 (the DCGAN: `gan_step` on the
speedrun's networks, channels-last as train_gan runs them; the flow: its loss on the default U-Net; the
VAE: its negative ELBO with the default Gaussian decoder, Adam for all). `--precision auto` picks bf16
where the hardware computes it natively (training/common.py `resolve_precision`); this prints whether this
CPU has the AMX tiles or AVX-512 BF16 instructions that make it so, and the ratio for each family.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from genmodels.dcgan import DCGANConfig, Discriminator, Generator
from genmodels.flow import FlowConfig, FlowModel
from genmodels.vae import VAE, VAEConfig
from training.common import MEMORY_FORMAT
from training.train_gan import Players, gan_step

BATCH = 128


def autocast(precision: str):
    return (lambda: torch.autocast("cpu", torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext


def dcgan_step(precision: str):
    """The speedrun's DCGAN (widths 32, fully connected 256 / 256), one D step and one G step."""
    config = DCGANConfig(gen_width=32, disc_width=32, gen_hidden=256, disc_hidden=256)
    generator, discriminator = Generator(config), Discriminator(config)
    for module in (generator, discriminator):
        module.to(memory_format=MEMORY_FORMAT)
    opt_g, opt_d = (
        torch.optim.Adam(module.parameters(), 5e-4, betas=(0.5, 0.999)) for module in (generator, discriminator)
    )
    players = Players(generator, discriminator, discriminator, opt_g, opt_d)
    real = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    return lambda: gan_step(players, real, torch.randn(BATCH, config.latent_dim), autocast=autocast(precision))


def flow_step(precision: str):
    """The flow script's default U-Net (widths 16/32/64), its loss at random times and labels."""
    model = FlowModel(FlowConfig(channels=[16, 32, 64]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x0 = torch.rand(BATCH, 1, 28, 28) * 2 - 1

    def step() -> None:
        noise, t, labels = torch.randn_like(x0), torch.rand(BATCH), torch.randint(0, 10, (BATCH,))
        with autocast(precision)():
            loss = model.loss(x0, noise, t, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def vae_step(precision: str):
    """The VAE script's default model (32-d latent, Gaussian decoder), its negative ELBO."""
    model = VAE(VAEConfig(latent_dim=32, likelihood="gaussian"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(BATCH, 1, 28, 28) * 2 - 1

    def step() -> None:
        with autocast(precision)():
            logits, mu, logvar = model(x)
        loss, _, _ = model.negative_elbo(logits.float(), x, mu.float(), logvar.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def seconds_per_step(step, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the speedrun's: 2)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per case")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    flags = {name: getattr(torch.cpu, f"_is_{name}_supported", lambda: False)() for name in ("amx_tile", "avx512_bf16")}
    print(
        f"torch {torch.__version__}, {args.threads} threads, "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in flags.items())
    )
    print("| family | fp32 (ms/step) | bf16 (ms/step) | fp32 / bf16 |")
    print("|---|---|---|---|")
    for name, make in (("dcgan", dcgan_step), ("flow", flow_step), ("vae", vae_step)):
        times = {}
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            times[precision] = seconds_per_step(make(precision), args.steps)
        ratio = times["fp32"] / times["bf16"]
        print(f"| {name} | {times['fp32'] * 1e3:.1f} | {times['bf16'] * 1e3:.1f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
