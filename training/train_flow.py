"""Train the class-conditional flow-matching model on Fashion-MNIST (see genmodels/flow.py).

python -m training.train_flow                          # 20 epochs into runs/flow
python -m training.train_flow --resume                 # continue after a kill
python -m training.train_flow --dry-run --out /tmp/flow
torchrun --nproc_per_node=2 -m training.train_flow     # two processes (gloo on CPU, nccl on GPUs)
python -m training.train_flow --minutes 10 --out runs/flow-10min    # a 10-minute budget

Each step draws, for a batch of training images x_0, noise e and times t = sigmoid(n), n ~ N(0, 1)
(logit-normal: most steps at middle times, where the velocity is hardest to predict), replaces 10% of
the labels by "no class" (classifier-free guidance), and regresses v(x_t, t, y) on e - x_0. The saved
checkpoint is an exponential moving average of the weights (EMA), which samples better than the raw
weights of any single step; by default it warms up, following the weights closely at first, which short
runs need. The learning rate warms up to 2e-3 (the speedrun's 10-minute winner; the bundled model and
the 60-minute recipe were trained at 1e-3), then follows a cosine down to 10%. With `--images` (pictures
without classes) every label is "no class": the model learns to draw them unconditionally.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import torch
from torch import nn

from genmodels.data import to_tensor
from genmodels.flow import FlowConfig, FlowModel, FlowSampling
from genmodels.hub import card_tags, save_atomic
from genmodels.latent import seed_to_z
from training.common import (
    add_ema_arguments,
    ema_average,
    epoch_generator,
    finish,
    learning_rate,
    load_split,
    make_parser,
    parse_classes,
    seed_everything,
    start_run,
)

TEST_IMAGES = 2000  # test images behind the per-epoch validation loss


class TrainingPass(nn.Module):
    """The flow-matching loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: FlowModel):
        super().__init__()
        self.model = model

    def forward(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.loss(x0, noise, t, labels)


def draw(generator: torch.Generator, num: int, label_dropout: float, labels: torch.Tensor, null: int):
    """Noise (num, 1, 28, 28), logit-normal times (num,) and labels with some set to "no class", on the CPU."""
    noise = torch.randn(num, 1, 28, 28, generator=generator)
    t = torch.sigmoid(torch.randn(num, generator=generator))
    dropped = torch.rand(num, generator=generator) < label_dropout
    return noise, t, torch.where(dropped, torch.full_like(labels, null), labels)


def load_guide(folder: str | None, model: FlowModel) -> FlowModel | None:
    """The guide network from a flow checkpoint folder (--guide), checked against `model`, or a SystemExit
    saying why not."""
    if folder is None:
        return None
    try:
        guide = FlowModel.from_pretrained(folder)
        model.with_guide(guide)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--guide {folder}: {exc}") from exc
    return guide


def as_checkpoint(model: FlowModel, guide: FlowModel | None) -> FlowModel:
    """`model` as saved: with the guide network and its config inside when there is one."""
    return model if guide is None else model.with_guide(guide)


@torch.inference_mode()
def validation_loss(model: FlowModel, x0: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """The loss on test images with fixed noise, times and labels (no dropout): comparable across epochs."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    total = 0.0
    for start in range(0, len(x0), batch_size):
        x = x0[start : start + batch_size]
        noise, t, y = draw(generator, len(x), 0.0, labels[start : start + batch_size], model.null_label)
        total += model.loss(x.to(device), noise.to(device), t.to(device), y.to(device)).item() * len(x)
    return total / len(x0)


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0], epochs=20, batch_size=128, lr=2e-3, out="runs/flow")
    parser.add_argument("--channels", default="16,32,64", help="U-Net widths at 28, 14 and 7 pixels, comma-separated")
    parser.add_argument("--blocks", type=int, default=FlowConfig.blocks, help="residual blocks per resolution")
    add_ema_arguments(parser, "the weights")
    parser.add_argument(
        "--label-dropout", type=float, default=FlowConfig.label_dropout, help="share of 'no class' labels"
    )
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    parser.add_argument(
        "--sample-steps", type=int, default=FlowSampling.steps, help="the checkpoint's default ODE steps for sampling"
    )
    parser.add_argument(
        "--sample-guidance", type=float, default=FlowSampling.guidance, help="the checkpoint's default guidance"
    )
    parser.add_argument(
        "--sample-guidance-below",
        type=float,
        default=FlowSampling.guidance_below,
        help="guidance above 1 acts only where t <= this (1 = the whole path)",
    )
    guides = parser.add_mutually_exclusive_group()
    guides.add_argument(
        "--guide",
        default=None,
        metavar="FOLDER",
        help="a smaller flow checkpoint, trained for less time, saved into this one to guide it (autoguidance)",
    )
    guides.add_argument(
        "--guide-at",
        type=float,
        default=None,
        metavar="SECONDS",
        help="guide the checkpoint with this run's own average as it was after SECONDS of training (kept in "
        "OUT/guide): autoguidance without a second network to train",
    )
    parser.add_argument(
        "--autoguidance", type=float, default=FlowSampling.autoguidance, help="the checkpoint's autoguidance weight"
    )
    parser.add_argument(
        "--autoguidance-below",
        type=float,
        default=FlowSampling.autoguidance_below,
        help="autoguidance acts only where t <= this",
    )
    args = parser.parse_args(argv)

    # 1. Model, its moving average and optimiser; the guide only joins the saved checkpoint.
    seed_everything(args.seed)
    config = FlowConfig(
        channels=[int(width) for width in args.channels.split(",")],
        blocks=args.blocks,
        label_dropout=args.label_dropout,
        sampling=asdict(
            FlowSampling(
                steps=args.sample_steps,
                guidance=args.sample_guidance,
                guidance_below=args.sample_guidance_below,
                autoguidance=args.autoguidance,
                autoguidance_below=args.autoguidance_below,
            )
        ),
    )
    model = FlowModel(config)
    guide = load_guide(args.guide, model)
    if args.guide_at is not None and not 0 < args.guide_at < (args.minutes or math.inf) * 60:
        raise SystemExit(
            f"--guide-at must fall within the training, after 0 s and before the budget, got {args.guide_at}"
        )
    ema = ema_average(model, args.ema, args.ema_warmup)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    # GroupNorm is slower in channels-last on the CPU (74 vs 62 images/s), so this family stays contiguous.
    run = start_run(args, {"flow": model, "ema": ema}, {"flow": optimizer}, memory_format=torch.contiguous_format)
    device = run.device
    train_pass = run.wrap(TrainingPass(model))

    # 2. Data in memory; fixed noise and labels (one class per row) for the per-epoch sample grid.
    train = load_split(args, "train")
    train_images = run.images_on_device(train.images)  # (N, 28, 28) uint8
    null = torch.tensor(config.num_classes)
    train_labels = torch.where(train.labels < 0, null, train.labels).to(train_images.device)  # --images: none
    test = load_split(args, "test")
    test_x = to_tensor(test.images[:TEST_IMAGES])
    test_labels = torch.where(test.labels < 0, null, test.labels)[:TEST_IMAGES]
    fixed_z = seed_to_z(args.seed, 64, model.latent_dim, device=device)
    fixed_labels = (torch.arange(64) // 8 % config.num_classes).to(device)
    if args.classes:  # the grid's rows cycle through the classes it learns
        learned = torch.tensor(parse_classes(args.classes))
        fixed_labels = learned[(torch.arange(64) // 8) % len(learned)].to(device)
    if args.images:
        fixed_labels = None  # no class: what the model learned from the pictures
    steps_per_epoch = len(train_images) // (args.batch_size * run.dist.world_size)

    run.keep = lambda folder: as_checkpoint(ema.module, guide).save_pretrained(folder)  # --keep-at
    own_guide = run.folder / "guide"  # --guide-at: the average as it was then, once the clock passes it
    if args.guide_at is not None and (own_guide / "model.safetensors").exists():  # --resume after it
        guide = FlowModel.from_pretrained(own_guide)

    def take_guide() -> FlowModel | None:
        """The guide of --guide-at once the training clock has passed it (rank 0; the others save nothing)."""
        if args.guide_at is None or guide is not None or run.elapsed() < args.guide_at or not run.dist.main:
            return guide
        save_atomic(ema.module, own_guide)
        print(f"Guide: the average after {run.elapsed():.0f} s of training, in {own_guide}", flush=True)
        return FlowModel.from_pretrained(own_guide)

    def current_samples() -> torch.Tensor:
        """What the run would save if it stopped now: the average's images from the fixed noise."""
        averaged: FlowModel = ema.module
        averaged.eval()
        return averaged.decode(fixed_z, fixed_labels)

    trained = run.training()
    steps_taken = 0
    while run.training():
        model.train()
        rng = epoch_generator(args, run.epoch, run.dist.rank)
        loss_sum, steps = 0.0, run.epoch_batches(len(train_images), args.batch_size, rng)
        progress = run.progress(steps)
        for steps_taken, index in enumerate(progress, start=1):
            if run.snapshot_due():
                run.snapshot(current_samples())
            x0 = to_tensor(train_images[index.to(train_images.device)])  # (B, 1, 28, 28)
            noise, t, labels = draw(
                rng, len(index), config.label_dropout, train_labels[index].cpu(), config.num_classes
            )
            for group in optimizer.param_groups:  # from the global step, so a resumed run follows the schedule
                group["lr"] = learning_rate(run.step, run.total_steps(steps_per_epoch), args.lr)
            with run.autocast():
                loss = train_pass(x0, run.to_device(noise), run.to_device(t), run.to_device(labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            ema.update_parameters(model)

            run.stepped()
            guide = take_guide()
            loss_sum += loss.item()
            run.track(loss=loss.item())
            progress.set_postfix(loss=f"{loss.item():.4f}")
            if run.out_of_budget():
                break

        # 3. End of epoch (or budget): the EMA model's samples and validation loss, atomic checkpoint of the EMA weights.
        run.epoch += 1
        averaged: FlowModel = ema.module
        samples = current_samples()
        run.save_samples(samples)
        metrics = {
            "train_loss": round(loss_sum / max(1, steps_taken), 5),
            "test_loss": round(validation_loss(averaged, test_x, test_labels), 5),
            "test_loss_raw": round(validation_loss(model, test_x, test_labels), 5),
            "lr": round(optimizer.param_groups[0]["lr"], 6),
        }
        run.log(metrics)
        run.save(as_checkpoint(averaged, guide), {"flow": model, "ema": ema}, {"flow": optimizer})
        if not run.training():
            run.snapshot(samples, test_loss=metrics["test_loss"])
    if not trained:  # a finished run resumed with new sampling defaults or a guide: its checkpoint again
        run.save(as_checkpoint(ema.module, guide), {"flow": model, "ema": ema}, {"flow": optimizer})

    widths = "/".join(str(width) for width in config.channels)
    sampling = model.sampling
    autoguided = ""
    if guide is not None:
        guide_widths = "/".join(str(width) for width in guide.config.channels)
        autoguided = (
            f"Autoguidance {sampling.autoguidance:g} where t <= {sampling.autoguidance_below:g}, from a guide of "
            f"{sum(p.numel() for p in guide.parameters()) / 1e6:.2f}M parameters (widths {guide_widths}) "
            "saved inside the checkpoint"
        )
        own = f": this run's own average after {args.guide_at:g} s of training. " if args.guide_at else ". "
        autoguided += own
    elif args.guide_at is not None:
        print(f"--guide-at {args.guide_at:g}: the training ended before it, so the checkpoint has no guide.")
    finish(
        run,
        family="flow",
        title="Class-conditional flow matching for Fashion-MNIST",
        summary=f"A {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M-parameter U-Net (widths {widths}) "
        "predicting the rectified-flow velocity v(x_t, t, y), trained with logit-normal times, 10% label "
        "dropout for classifier-free guidance and an EMA of the weights (the checkpoint). Samples integrate "
        f"the ODE from the random seed's noise with {sampling.steps} Heun steps (the last one Euler's) at guidance "
        f"{sampling.guidance:g} where t <= {sampling.guidance_below:g}. {autoguided}"
        "Test losses are the flow-matching loss on 2,000 test images with fixed noise.",
        tags=card_tags(FlowModel),
        load_snippet='from genmodels.flow import FlowModel\n\nflow = FlowModel.from_pretrained("FOLDER_OR_REPO_ID")\n'
        f'images = flow.sample(16, seed=0, label="Sneaker", steps={sampling.steps}, guidance={sampling.guidance:g})  # (16, 1, 28, 28)',
    )


if __name__ == "__main__":
    main()
