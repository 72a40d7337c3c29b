"""Train the DCGAN (or, with --conditional, the class-conditional GAN) on Fashion-MNIST.

    python -m training.train_gan                                  # 15 epochs into runs/dcgan
    python -m training.train_gan --minutes 5 --out runs/dcgan-5min  # a 5-minute budget: FIDc 25 (speedrun)
    python -m training.train_gan --conditional                    # the cGAN into runs/cgan
    python -m training.train_gan --epochs 30 --out runs/dcgan-30  # longer run elsewhere
    python -m training.train_gan --resume                         # continue after a kill
    python -m training.train_gan --dry-run --out /tmp/gan         # a few steps, in seconds
    python -m training.train_gan --conditional --init-from runs/dcgan  # the cGAN, started from the DCGAN

The defaults are the speedrun's winner (docs/speedrun.md, DCGAN ladder row 9): widths 32 with fully
connected layers of 256 after z and 256 before D's logit, Adam at 1e-3 / beta1 0.5 decayed linearly to 0
over the run, an EMA of the generator with warm-up, bf16 autocast where the CPU computes it natively. The
bundled DCGAN's D has 1,024 there (`--disc-hidden 1024`, its card). The tutorial's plain DCGAN is
`--gen-width 64 --disc-width 64 --gen-hidden 0 --disc-hidden 0 --lr 2e-4 --no-lr-decay --ema 0`.

Loss `--loss bce` (Goodfellow et al. 2014), with the non-saturating generator loss the tutorial's code uses:
    D maximises log D(x) + log(1 - D(G(z)))   -> BCE(D(x), 1) + BCE(D(G(z)), 0)
    G maximises log D(G(z))                    -> BCE(D(G(z)), 1)
Loss `--loss hinge` (Lim and Ye 2017; Miyato et al. 2018), usually with `--spectral-norm`:
    D minimises relu(1 - D(x)) + relu(1 + D(G(z))),   G minimises -D(G(z)).
`--lr-decay` (on by default) lowers both learning rates linearly to 0 over the run, so training ends in
small steps. `--ema 0.999` (the default; 0 turns it off) keeps an exponential moving average of the
generator's weights (Karras et al. 2018; Yazici et al. 2019) and saves that average as the checkpoint: it
smooths out the oscillation of adversarial training at no cost to the training itself. `--ema-warmup` (on
by default) lets the average follow the weights closely at first (decay (1 + n) / (10 + n) at update n,
up to --ema), so a short run's average is not still the initial noise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.cgan import CGANConfig, ConditionalGenerator, ProjectionDiscriminator
from genmodels.checkpoint import load_training_state
from genmodels.data import CLASS_NAMES, to_tensor
from genmodels.dcgan import DCGANConfig, Discriminator, Generator
from genmodels.hub import card_tags
from genmodels.latent import seed_to_z
from training.common import (
    JointOptimizer,
    add_ema_arguments,
    ema_average,
    epoch_generator,
    finish,
    load_split,
    make_parser,
    optimizers_for,
    parse_classes,
    seed_everything,
    start_run,
)


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0], epochs=15, batch_size=128, lr=1e-3, out=None)
    parser.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (DCGAN paper: 0.5)")
    parser.add_argument(
        "--lr-d", type=float, default=None, help="discriminator learning rate (default: --lr; TTUR when different)"
    )
    parser.add_argument("--latent-dim", type=int, default=DCGANConfig.latent_dim, help="size of z")
    parser.add_argument("--gen-width", type=int, default=32, help="generator width (the tutorial's: 64)")
    parser.add_argument("--disc-width", type=int, default=32, help="discriminator width (the tutorial's: 64)")
    parser.add_argument("--gen-hidden", type=int, default=256, help="fully connected layer after z (0 = none)")
    parser.add_argument(
        "--disc-hidden", type=int, default=256, help="fully connected layer before D's logit (0 = none)"
    )
    parser.add_argument("--loss", choices=("bce", "hinge"), default="bce", help="adversarial loss")
    parser.add_argument("--spectral-norm", action="store_true", help="spectral normalisation in the discriminator")
    add_ema_arguments(parser, "the generator's weights")
    parser.add_argument(
        "--lr-decay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decay both learning rates linearly to 0 over the run",
    )
    parser.add_argument(
        "--muon",
        action="store_true",
        help="torch.optim.Muon for the discriminator's linear layers' weights (--disc-hidden; the generator has none)",
    )
    parser.add_argument("--conditional", action="store_true", help="train the class-conditional GAN (cgan)")
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="RUN",
        help="--conditional: start from this finished DCGAN run folder (same widths), labels ignored at first",
    )
    args = parser.parse_args(argv)
    args.out = args.out or ("runs/cgan" if args.conditional else "runs/dcgan")
    if args.conditional and args.images:
        parser.error("--images: the conditional GAN learns classes; your own pictures have none (drop --conditional)")

    # 1. Models and optimisers, initialised from the random seed.
    seed_everything(args.seed)
    if args.conditional:
        config = CGANConfig(
            latent_dim=args.latent_dim,
            gen_width=args.gen_width,
            disc_width=args.disc_width,
            gen_hidden=args.gen_hidden,
            disc_hidden=args.disc_hidden,
        )
        generator, discriminator = ConditionalGenerator(config), ProjectionDiscriminator(config)
        if args.init_from and not args.resume:
            start_from_unconditional(Path(args.init_from) / "state.safetensors", generator, discriminator)
    else:
        if args.init_from:
            parser.error("--init-from starts a conditional GAN from a DCGAN run: add --conditional")
        config = DCGANConfig(
            latent_dim=args.latent_dim,
            gen_width=args.gen_width,
            disc_width=args.disc_width,
            spectral_norm=args.spectral_norm,
            gen_hidden=args.gen_hidden,
            disc_hidden=args.disc_hidden,
        )
        generator, discriminator = Generator(config), Discriminator(config)

    def condition(labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The extra argument of G and D: the labels for the conditional GAN, nothing otherwise."""
        return (labels.to(device, non_blocking=True),) if args.conditional else ()

    lr_d = args.lr if args.lr_d is None else args.lr_d
    parts_g = optimizers_for(
        "generator",
        generator,
        lambda ps: torch.optim.Adam(ps, lr=args.lr, betas=(args.beta1, 0.999)),
        args.muon,
        args.lr,
    )
    parts_d = optimizers_for(
        "discriminator",
        discriminator,
        lambda ps: torch.optim.Adam(ps, lr=lr_d, betas=(args.beta1, 0.999)),
        args.muon,
        lr_d,
    )
    opt_g, opt_d = JointOptimizer(parts_g), JointOptimizer(parts_d)
    modules = {"generator": generator, "discriminator": discriminator}
    average = None
    if args.ema > 0:
        # torch's own EMA over the weights; BatchNorm's statistics are recomputed before each save.
        average = ema_average(generator, args.ema, args.ema_warmup)
        modules["ema"] = average
    optimizers = {**parts_g, **parts_d}
    run = start_run(args, modules, optimizers)
    device = run.device
    saved = average.module if average is not None else generator  # what the checkpoint holds

    def keep(folder: Path) -> None:
        """--keep-at: the checkpoint as it would be saved now (an average gets its standing statistics)."""
        kept = copy.deepcopy(saved)
        if average is not None:
            standing_statistics(kept, config.latent_dim, args.conditional, seed=args.seed + run.epoch, device=device)
        kept.eval().save_pretrained(folder)

    run.keep = keep

    # What trains: the same modules, DDP-wrapped across processes (SyncBatchNorm on GPUs) and compiled
    # with --compile; gan_step sends the generator's loss through the bare discriminator.
    train_g = run.wrap(generator, sync_batchnorm=True)
    train_d = run.wrap(discriminator, sync_batchnorm=True)
    players = Players(train_g, train_d, discriminator, opt_g, opt_d)

    # 2. Data stays uint8 in memory (on the GPU if there is one); each batch is converted on the fly.
    train = load_split(args, "train")
    images, labels = run.images_on_device(train.images), train.labels  # (N, 28, 28) uint8, (N,)
    fixed_z = seed_to_z(args.seed, 64, config.latent_dim, device=device)
    fixed_labels = (torch.arange(64) // 8) % len(CLASS_NAMES)  # one class per row of the grid
    steps_per_epoch = (len(images) // run.dist.world_size) // args.batch_size
    if args.conditional and args.classes:  # the grid's rows cycle through the classes it learns
        learned = torch.tensor(parse_classes(args.classes))
        fixed_labels = learned[(torch.arange(64) // 8) % len(learned)]

    def current_samples(batches: int = 40) -> torch.Tensor:
        """What the run would save if it stopped now, from the fixed latents (the grid)."""
        if average is not None:  # the average's BatchNorm statistics as saved: recomputed from samples
            standing_statistics(
                saved, config.latent_dim, args.conditional, args.seed + run.epoch, device, batches=batches
            )
        saved.eval()
        with torch.inference_mode():
            images = saved(fixed_z, *condition(fixed_labels))
        generator.train()
        return images

    # 3. Alternate one discriminator step and one generator step per batch.
    steps_taken = 0
    while run.training():
        generator.train()
        discriminator.train()
        rng = epoch_generator(args, run.epoch, run.dist.rank)
        totals = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}
        steps = run.epoch_batches(len(images), args.batch_size, rng)
        progress = run.progress(steps)
        for steps_taken, index in enumerate(progress, start=1):
            if run.snapshot_due():  # (BatchNorm statistics of the average from fewer samples: a preview)
                run.snapshot(current_samples(batches=4))
            if args.lr_decay:  # from the global step, so a resumed run follows the same schedule
                total_steps = run.total_steps(steps_per_epoch)
                for optimizer, lr in ((opt_g, args.lr), (opt_d, lr_d)):
                    for group in optimizer.param_groups:
                        group["lr"] = lr * max(0.0, 1.0 - run.step / total_steps)
            real = to_tensor(images[index.to(images.device)])  # (B, 1, 28, 28)
            z = run.to_device(torch.randn(len(index), config.latent_dim, generator=rng))
            fake_labels = torch.randint(0, len(CLASS_NAMES), (len(index),), generator=rng)
            loss_d, loss_g, logits_real, logits_fake = gan_step(
                players,
                real,
                z,
                condition(labels[index]),
                condition(fake_labels),
                args.loss,
                run.autocast,
            )
            if average is not None:
                average.update_parameters(generator)

            run.stepped()
            values = {
                "loss_d": loss_d.item(),
                "loss_g": loss_g.item(),
                "d_real": torch.sigmoid(logits_real).mean().item(),
                "d_fake": torch.sigmoid(logits_fake).mean().item(),
            }
            for key, value in values.items():
                totals[key] += value
            run.track(**values)
            progress.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
            if run.out_of_budget():
                break

        # 4. End of epoch (or of the budget): samples from fixed noise, one metrics line, atomic checkpoint.
        run.epoch += 1
        samples = current_samples()
        saved.eval()
        run.save_samples(samples)
        metrics = {key: round(value / max(1, steps_taken), 4) for key, value in totals.items()}
        run.log(metrics)
        run.save(saved, modules, optimizers)
        if not run.training():
            run.snapshot(samples)

    # Finishing is idempotent: the averaged generator gets its standing statistics (same seed as the
    # last epoch's) and is written again, so resuming a finished run repairs what an older version wrote.
    if average is not None and run.epoch > 0:
        standing_statistics(saved, config.latent_dim, args.conditional, seed=args.seed + run.epoch, device=device)
        with torch.inference_mode():
            run.save_samples(saved(fixed_z, *condition(fixed_labels)))
        run.save(saved, modules, optimizers)

    if args.conditional:
        finish(
            run,
            family="cgan",
            title="Class-conditional GAN for Fashion-MNIST",
            summary="A DCGAN-style generator fed [z, class embedding] and trained against the DCGAN "
            f"discriminator with a projection head (Miyato and Koyama 2018) with the {args.loss} loss"
            + recipe(args, lr_d)
            + ". Each row of the sample grid is one class.",
            tags=card_tags(ConditionalGenerator),
            load_snippet="from genmodels.cgan import ConditionalGenerator\n\n"
            'generator = ConditionalGenerator.from_pretrained("FOLDER_OR_REPO_ID")\n'
            'sneakers = generator.sample(num=16, seed=0, label="Sneaker")  # (16, 1, 28, 28) in [-1, 1]',
        )
        return
    finish(
        run,
        family="dcgan",
        title="DCGAN generator for Fashion-MNIST",
        summary="A DCGAN (Radford et al. 2016) generator sized for 28x28 grayscale, trained adversarially "
        f"with the {args.loss} loss"
        + recipe(args, lr_d)
        + f". z ~ N(0, I) of size {config.latent_dim} -> image in [-1, 1].",
        tags=card_tags(Generator),
        load_snippet='from genmodels.dcgan import Generator\n\ngenerator = Generator.from_pretrained("FOLDER_OR_REPO_ID")\n'
        "images = generator.sample(num=16, seed=0)  # (16, 1, 28, 28) in [-1, 1]",
    )


def recipe(args, lr_d: float) -> str:
    """The model card's clauses for the options a run used beyond the plain recipe."""
    clauses = []
    if args.gen_hidden or args.disc_hidden:
        clauses.append(
            f"fully connected layers of {args.gen_hidden} (G) and {args.disc_hidden} (D) units as in InfoGAN"
        )
    if args.spectral_norm and not args.conditional:
        clauses.append("spectral normalisation in the discriminator")
    if args.init_from:
        clauses.append(f"started from the DCGAN run in {args.init_from}")
    if lr_d != args.lr:
        clauses.append(f"a discriminator learning rate of {lr_d} against the generator's {args.lr} (TTUR)")
    if args.lr_decay:
        clauses.append("learning rates decayed linearly to 0")
    text = "".join(f", {clause}" for clause in clauses)
    return text + (f" and an exponential moving average of its weights (decay {args.ema})" if args.ema else "")


def start_from_unconditional(
    state_path: Path, generator: ConditionalGenerator, discriminator: ProjectionDiscriminator
) -> None:
    """Load a DCGAN run's generator and discriminator into the conditional pair, as a starting point.

    The layers correspond one to one: the generator's first layer gains input rows for the class
    embedding, set to zero; the discriminator's 7x7 convolution over the 7x7 map is its linear layer,
    and the projection's class embedding starts at zero. So the pair starts as exactly that DCGAN,
    ignoring the labels, and training only has to add the conditioning (a transfer start, as in
    Wang et al. 2018, "Transferring GANs"). Optimiser states start fresh.
    """
    c = generator.config
    sizes = ("latent_dim", "gen_width", "disc_width", "image_channels", "gen_hidden", "disc_hidden")
    config = DCGANConfig(**{name: getattr(c, name) for name in sizes})
    dcgan = {"generator": Generator(config), "discriminator": Discriminator(config)}
    try:
        load_training_state(state_path, dcgan, {})
        generator.load_state_dict(_conditional_generator_state(dcgan["generator"].state_dict(), generator))
        discriminator.load_state_dict(
            _projection_discriminator_state(dcgan["discriminator"].state_dict(), discriminator)
        )
    except (ValueError, RuntimeError, KeyError) as exc:
        raise SystemExit(
            f"--init-from: {state_path} does not match this conditional GAN (it must be a DCGAN run; use its "
            f"--gen-width, --disc-width, --gen-hidden, --disc-hidden and --latent-dim): {exc}"
        ) from exc


def _conditional_generator_state(dcgan: dict[str, torch.Tensor], generator: ConditionalGenerator) -> dict:
    """The DCGAN generator's weights with zero input rows for the class embedding."""
    state = dict(dcgan)
    first = generator.state_dict()["net.0.weight"]  # (latent + embed, out, 1, 1); the DCGAN's is (latent, out, 1, 1)
    extra = first.shape[0] - state["net.0.weight"].shape[0]
    state["net.0.weight"] = torch.cat([state["net.0.weight"], first.new_zeros(extra, *first.shape[1:])])
    state["embed.weight"] = generator.embed.weight.detach().clone()
    return state


def _projection_discriminator_state(dcgan: dict[str, torch.Tensor], discriminator: ProjectionDiscriminator) -> dict:
    """The DCGAN discriminator's weights (the same body and head), with the projection at zero."""
    return {**dcgan, "embed.weight": torch.zeros_like(discriminator.embed.weight)}


@dataclass
class Players:
    """The two networks as trained (possibly DDP-wrapped or compiled), the bare discriminator, optimisers."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    bare_discriminator: torch.nn.Module
    opt_g: JointOptimizer
    opt_d: JointOptimizer


def gan_step(
    players: Players,
    real: torch.Tensor,
    z: torch.Tensor,
    real_condition: tuple[torch.Tensor, ...] = (),
    fake_condition: tuple[torch.Tensor, ...] = (),
    loss: str = "bce",
    autocast=contextlib.nullcontext,
) -> tuple[torch.Tensor, ...]:
    """One discriminator step, then one generator step, on a batch of real images and latents.

    The generator's loss goes through the bare discriminator with its parameters frozen: their
    gradients would be thrown away, so they are not computed (nor, with several processes, averaged).
    Returns the detached (loss_d, loss_g, logits_real, logits_fake).
    """
    with autocast():
        fake = players.generator(z, *fake_condition)
        # Discriminator: push D(x) up and D(G(z)) down.
        logits_real = players.discriminator(real, *real_condition)
        logits_fake = players.discriminator(fake.detach(), *fake_condition)
        loss_d = discriminator_loss(loss, logits_real.float(), logits_fake.float())
    players.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    players.opt_d.step()

    # Generator: push D(G(z)) up.
    players.bare_discriminator.requires_grad_(False)
    try:
        with autocast():
            loss_g = generator_loss(loss, players.bare_discriminator(fake, *fake_condition).float())
        players.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        players.opt_g.step()
    finally:
        players.bare_discriminator.requires_grad_(True)
    return loss_d.detach(), loss_g.detach(), logits_real.detach(), logits_fake.detach()


@torch.no_grad()
def standing_statistics(
    generator: torch.nn.Module, latent_dim: int, conditional: bool, seed: int, device: torch.device, batches: int = 40
) -> None:
    """Recompute the BatchNorm running statistics of an averaged generator from fresh samples.

    Averaged weights do not match running statistics gathered with the training weights, which washes
    out the EMA generator's images; BigGAN's "standing statistics" fix this by re-estimating them:
    cumulative averages over `batches` batches of 256 samples, drawn from a seeded CPU generator.
    """
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(batches):
        z = torch.randn(256, latent_dim, generator=rng).to(device)
        extra = (torch.randint(0, len(CLASS_NAMES), (256,), generator=rng).to(device),) if conditional else ()
        generator(z, *extra)
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


def discriminator_loss(kind: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on real and generated logits (see the module docstring)."""
    if kind == "hinge":
        return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()
    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    return real + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))


def generator_loss(kind: str, logits_fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for its images."""
    if kind == "hinge":
        return -logits_fake.mean()
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


if __name__ == "__main__":
    main()
