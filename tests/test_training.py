"""Each training script end to end under --dry-run; resume; the written checkpoint loads."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from genmodels.registry import load_model
from tests.conftest import SCRIPTS, needs_data

ROOT = Path(__file__).resolve().parent.parent


def train(script: str, out: Path, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m training.<script> --dry-run --out OUT FLAGS` from the repository root."""
    command = [sys.executable, "-m", f"training.{script}", "--dry-run", "--out", str(out), "--device", "cpu", *flags]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


@needs_data
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_dry_run_writes_a_loadable_checkpoint_and_resumes(name, tmp_path):
    script = SCRIPTS[name]
    first = train(script, tmp_path, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1]
    model = load_model(name, source=tmp_path / "checkpoint")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    card = (tmp_path / "checkpoint" / "README.md").read_text()
    # The card gives the exact command this test ran, flag for flag, so the run can be repeated.
    ran = f"python -m training.{script} --dry-run --out {tmp_path} --device cpu --epochs 1"
    assert ran in card and "fashion_mnist" in card
    if name != "classifier":
        assert (tmp_path / "samples" / "epoch_001.png").is_file()

    again = train(script, tmp_path, "--epochs", "2")
    assert again.returncode != 0 and "--resume" in again.stderr, "a finished run is never overwritten silently"

    resumed = train(script, tmp_path, "--epochs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]


@needs_data
@pytest.mark.parametrize("flags", [(), ("--muon", "--gen-hidden", "32", "--disc-hidden", "32")])
def test_resumed_gan_run_matches_an_uninterrupted_one(flags, tmp_path):
    """Also with Muon for the linear layers (the discriminator's; the generator has none): its momentum
    is saved and restored beside Adam's, and the generator's average beside the weights. (Without the
    default --lr-decay: a run of --epochs 1 decays to 0 in one epoch, by design, so it is not the first
    half of a run of two.)"""
    flags = ("--no-lr-decay", *flags)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train("train_gan", straight, "--epochs", "2", *flags).returncode == 0
    assert train("train_gan", split, "--epochs", "1", *flags).returncode == 0
    assert train("train_gan", split, "--epochs", "2", "--resume", *flags).returncode == 0
    a = load_file(straight / "checkpoint" / "model.safetensors")
    b = load_file(split / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    with safe_open(str(split / "state.safetensors"), framework="pt") as handle:
        optimizers = {key.removeprefix("optim/") for key in handle.metadata() if key.startswith("optim/")}
    expected = {"generator", "discriminator"} | ({"discriminator-muon"} if "--muon" in flags else set())
    assert optimizers == expected


def test_resume_without_state_explains(tmp_path):
    result = train("train_vae", tmp_path, "--resume")
    assert result.returncode != 0 and "no training state" in result.stderr


@needs_data
def test_push_without_token_fails_clearly_and_keeps_the_checkpoint(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no stored token there
    result = train("train_vae", tmp_path / "run", "--epochs", "1", "--push-to-hub", "someone/vae", env=env)
    assert result.returncode != 0
    assert "token" in result.stderr and "checkpoint is safe" in result.stderr
    assert torch.isfinite(load_model("vae", source=tmp_path / "run" / "checkpoint").sample(2, seed=0)).all()


def parser_of(script: str) -> argparse.ArgumentParser:
    """The argument parser a training script's main() builds (caught as it parses)."""
    module = importlib.import_module(f"training.{script}")
    caught = {}

    def catch(self, args=None, namespace=None):
        caught["parser"] = self
        raise SystemExit(0)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch), pytest.raises(SystemExit):
        module.main([])
    return caught["parser"]


@pytest.mark.parametrize("script", list(SCRIPTS.values()))
def test_every_flag_has_help_and_a_kebab_case_name(script):
    flags = {action.option_strings[-1]: action.help for action in parser_of(script)._actions if action.option_strings}
    shared = [
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--device",
        "--out",
        "--resume",
        "--dry-run",
        "--push-to-hub",
    ]
    assert set(shared) <= set(flags)
    for flag, text in flags.items():
        assert re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", flag), f"{script} {flag}: kebab-case"
        assert text and len(text.split()) >= 2, f"{script} {flag} has no help text"


@needs_data
def test_conditional_gan_starts_as_the_dcgan_of_a_finished_run(tmp_path):
    """--init-from: the cGAN's generator and discriminator start as the DCGAN run's, labels ignored."""
    from genmodels.cgan import CGANConfig, ConditionalGenerator, ProjectionDiscriminator
    from genmodels.checkpoint import load_training_state
    from genmodels.dcgan import DCGANConfig, Discriminator, Generator
    from training.train_gan import start_from_unconditional

    sizes = ["--gen-width", "8", "--disc-width", "8", "--gen-hidden", "16", "--disc-hidden", "32", "--latent-dim", "10"]
    done = train("train_gan", tmp_path / "dcgan", *sizes)
    assert done.returncode == 0, done.stderr
    state = tmp_path / "dcgan" / "state.safetensors"

    dcgan_config = DCGANConfig(latent_dim=10, gen_width=8, disc_width=8, gen_hidden=16, disc_hidden=32)
    generator, discriminator = Generator(dcgan_config), Discriminator(dcgan_config)
    load_training_state(state, {"generator": generator, "discriminator": discriminator}, {})
    config = CGANConfig(latent_dim=10, gen_width=8, disc_width=8, gen_hidden=16, disc_hidden=32)
    conditional, projection = ConditionalGenerator(config), ProjectionDiscriminator(config)
    start_from_unconditional(state, conditional, projection)
    for module in (generator, discriminator, conditional, projection):
        module.eval()
    z, images = torch.randn(6, 10), torch.rand(6, 1, 28, 28) * 2 - 1
    for label in range(3):
        labels = torch.full((6,), label)
        torch.testing.assert_close(conditional(z, labels), generator(z))
        torch.testing.assert_close(projection(images, labels), discriminator(images), rtol=1e-4, atol=1e-4)

    resumed = train("train_gan", tmp_path / "cgan", "--conditional", "--init-from", str(tmp_path / "dcgan"), *sizes)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "cgan" / "checkpoint" / "model.safetensors").exists()
    mismatched = train("train_gan", tmp_path / "wide", "--conditional", "--init-from", str(tmp_path / "dcgan"))
    assert mismatched.returncode != 0 and "does not match" in mismatched.stderr
    unconditional = train("train_gan", tmp_path / "plain", "--init-from", str(tmp_path / "dcgan"))
    assert unconditional.returncode != 0 and "--conditional" in unconditional.stderr


def trained_with(name: str, out: Path, *flags: str) -> torch.nn.Module:
    """A one-epoch dry run of `name`'s script with `flags`: it succeeds, logs finite metrics, and its
    checkpoint loads (strictly) with finite weights. Returns the loaded model."""
    done = train(SCRIPTS[name], out, "--epochs", "1", *flags)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(math.isfinite(value) and abs(value) < 1e6 for value in metrics.values()), metrics
    model = load_model(name, source=out / "checkpoint")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return model


@needs_data
@pytest.mark.parametrize("name", ["dcgan", "vae"])
def test_bf16_autocast_path_trains_and_says_so(name, tmp_path):
    """The GPU fast path's mixed precision, exercised on the CPU (torch.autocast supports bf16 there)."""
    model = trained_with(name, tmp_path, "--precision", "bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters()), "fp32 weights"
    assert "precision: bf16" in (tmp_path / "checkpoint" / "README.md").read_text()


def test_the_average_of_the_weights_warms_up_by_default():
    """The GAN's and the flow's default (which the Train tab's jobs run): an average of decay 0.999 whose
    decay grows from 0, so a minutes-long run saves weights it learned, not its initial ones."""
    from training import common

    parser = argparse.ArgumentParser()
    common.add_ema_arguments(parser, "the weights")
    args = parser.parse_args([])
    assert args.ema == 0.999 and args.ema_warmup is True
    for warmup, expected in ((True, 2 / 11), (False, 0.999)):  # update 1's decay: min(0.999, 2 / 11) with warm-up
        layer = torch.nn.Linear(1, 1, bias=False)
        average = common.ema_average(layer, args.ema, warmup)
        with torch.no_grad():
            layer.weight.fill_(1.0)
            average.update_parameters(layer)  # torch's first update copies the weights: 1
            layer.weight.fill_(0.0)
            average.update_parameters(layer)  # then decay * 1 + (1 - decay) * 0
        assert average.module.weight.item() == pytest.approx(expected), warmup


def test_auto_precision_is_bf16_where_the_hardware_computes_it(monkeypatch):
    """--precision auto: bf16 on a CPU with AMX tiles or AVX-512 BF16 (as /proc/cpuinfo's flags say), fp32 on
    one with neither; an explicit choice is kept."""
    from training import common

    cpu = torch.device("cpu")
    if Path("/proc/cpuinfo").is_file():
        flags = set(Path("/proc/cpuinfo").read_text().split())
        assert common.cpu_has_bf16() == bool({"amx_tile", "avx512_bf16"} & flags)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(common, "cpu_has_bf16", lambda native=native: native)
        assert common.resolve_precision("auto", cpu) == expected
        assert common.resolve_precision("fp32", cpu) == "fp32" and common.resolve_precision("bf16", cpu) == "bf16"


@needs_data
def test_compile_path_trains_and_saves_plain_weights(tmp_path):
    """--compile on the CPU: the compiled modules train, and the checkpoint loads without torch.compile."""
    trained_with("dcgan", tmp_path, "--compile", "--precision", "fp32")  # loads strictly: no "_orig_mod." names


def test_encoder_feature_loss_is_the_weighted_distance_of_classifier_feature_maps():
    """train_encoder's loss = the two pixel terms + the latent term + w |F(G(E(x))) - F(x)|^2, each
    recomputed here from the modules (F: the classifier's two conv blocks, BatchNorm in eval mode)."""
    from genmodels.classifier import Classifier, ClassifierConfig
    from genmodels.dcgan import DCGANConfig, Generator
    from genmodels.encoder import Encoder, EncoderConfig
    from training.train_encoder import TrainingPass

    torch.manual_seed(0)
    generator = Generator(DCGANConfig(latent_dim=8, gen_width=8, disc_width=8)).eval()
    classifier = Classifier(ClassifierConfig(width=4, feature_dim=16)).eval()
    encoder = Encoder(EncoderConfig(latent_dim=8, width=4, hidden=16)).eval()
    x, z = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 8)
    with torch.no_grad():
        plain, real = TrainingPass(encoder, generator, classifier, 0.05, 0.0)(x, z, None)
        weighted, _ = TrainingPass(encoder, generator, classifier, 0.05, 0.3)(x, z, None)
        generated = generator(z)
        guesses = encoder(torch.cat([x, generated]))
        reconstructed = generator(guesses)
        pixels = (reconstructed - torch.cat([x, generated])).pow(2)
        conv = torch.nn.Sequential(classifier.body[0], classifier.body[1])  # (B, 8, 7, 7)
        distance = (conv(reconstructed[:4]) - conv(x)).pow(2).mean()
    torch.testing.assert_close(real, pixels[:4].mean())
    torch.testing.assert_close(plain, pixels[:4].mean() + pixels[4:].mean() + 0.05 * (guesses[4:] - z).pow(2).mean())
    torch.testing.assert_close(weighted - plain, 0.3 * distance)
    assert distance > 0


@needs_data
def test_the_encoder_script_trains_one_for_the_cgan(tmp_path):
    """--generator cgan: an encoder of the cGAN's latent that takes the class, registered as cgan-encoder."""
    done = train("train_encoder", tmp_path, "--epochs", "1", "--generator", "cgan")
    assert done.returncode == 0, done.stderr
    encoder = load_model("cgan-encoder", source=tmp_path / "checkpoint")
    assert encoder.config.num_classes == 10 and encoder.latent_dim == load_model("cgan").latent_dim
    card = (tmp_path / "checkpoint" / "README.md").read_text()
    assert "cgan generator" in card and "0.1 |F(G(E(x))) - F(x)|^2" in card
    assert "encoder(images, labels)" in card, "the card's snippet gives the classes"


@needs_data
def test_a_flow_run_keeps_its_guide_inside_and_a_finished_run_takes_new_sampling_defaults(tmp_path):
    guide_run, run = tmp_path / "guide", tmp_path / "flow"
    done = train("train_flow", guide_run, "--epochs", "1", "--channels", "8,8,16", "--ema", "0")
    assert done.returncode == 0, done.stderr
    done = train("train_flow", run, "--epochs", "1", "--guide", str(guide_run / "checkpoint"))
    assert done.returncode == 0, done.stderr
    guide, model = load_model("flow", source=guide_run / "checkpoint"), load_model("flow", source=run / "checkpoint")
    assert model.guide is not None and model.guide.config.channels == [8, 8, 16]
    assert all(torch.equal(model.guide.state_dict()[key], value) for key, value in guide.state_dict().items())
    weights = load_file(run / "checkpoint" / "model.safetensors")

    # Resumed when finished, with another weight: the same network, the checkpoint's config rewritten.
    done = train(
        "train_flow", run, "--epochs", "1", "--resume", "--guide", str(guide_run / "checkpoint"), "--autoguidance", "2"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "checkpoint" / "config.json").read_text())["sampling"]["autoguidance"] == 2.0
    again = load_file(run / "checkpoint" / "model.safetensors")
    assert again.keys() == weights.keys() and all(torch.equal(again[key], weights[key]) for key in weights)
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]

    missing = train("train_flow", tmp_path / "other", "--guide", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "--guide" in missing.stderr


class TenthClock:
    """A perf_counter that moves 100 ms per reading: a dry run passes points of a few seconds of training."""

    now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.1
        return self.now


@needs_data
def test_guide_at_guides_the_checkpoint_with_the_runs_own_earlier_average(tmp_path, monkeypatch, capsys):
    """--guide-at 1: OUT/guide holds the average as it was after 1 s of training, the checkpoint carries it
    as its guide (same widths, earlier weights), and a resumed run keeps it; bad values get a sentence."""
    from training import common, train_flow

    monkeypatch.setattr(common, "time", TenthClock())
    argv = ["--dry-run", "--device", "cpu", "--eval-samples", "0", "--batch-size", "16", "--out", str(tmp_path)]
    train_flow.main([*argv, "--epochs", "1", "--guide-at", "1", "--keep-at", "1", "--channels", "8,8,16"])
    own = load_file(tmp_path / "guide" / "model.safetensors")
    # --keep-at 1 kept the checkpoint after 1 s, at the step that took the guide (its network is the guide)
    # or the one after (a clock reading later within a step): then it already carries the guide.
    kept = load_file(tmp_path / "at" / "00001s" / "model.safetensors")
    kept_guide = {key[len("guide.") :]: value for key, value in kept.items() if key.startswith("guide.")}
    kept = kept_guide or kept
    assert kept.keys() == own.keys() and all(torch.equal(kept[key], own[key]) for key in own)
    saved = load_file(tmp_path / "checkpoint" / "model.safetensors")
    guide = {key[len("guide.") :]: value for key, value in saved.items() if key.startswith("guide.")}
    network = {key: value for key, value in saved.items() if not key.startswith("guide.")}
    assert guide.keys() == own.keys() == network.keys()
    assert all(torch.equal(guide[key], own[key]) for key in own), "the checkpoint's guide is OUT/guide"
    assert not all(torch.equal(guide[key], network[key]) for key in own), "taken before the end"
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["guide"]["channels"] == config["channels"] == [8, 8, 16]
    assert "own average after 1 s of training" in (tmp_path / "checkpoint" / "README.md").read_text()

    train_flow.main([*argv, "--epochs", "2", "--resume", "--guide-at", "1", "--channels", "8,8,16"])
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    again = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert all(torch.equal(again[f"guide.{key}"], own[key]) for key in own), "the resumed run keeps its guide"
    assert not all(torch.equal(again[key], network[key]) for key in network), "while its network trained on"

    for bad in (["--guide-at", "0"], ["--guide-at", "300", "--minutes", "5"]):
        with pytest.raises(SystemExit, match="--guide-at must fall within the training"):
            train_flow.main([*argv, *bad, "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit):
        train_flow.main([*argv, "--guide-at", "1", "--guide", "x", "--out", str(tmp_path / "bad")])
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists(), "nothing written for a bad command"


@needs_data
@pytest.mark.parametrize("script", ["train_vae", "train_gan", "train_flow"])
def test_a_budget_stops_the_run_in_time_with_its_schedule_at_the_end(script, tmp_path):
    """--minutes: the run stops within the budget plus a few seconds, plans its steps, snapshots as it goes."""
    flags = ["--minutes", "0.15", "--snapshot-seconds", "1", "--threads", "1", "--eval-samples", "0"]
    flags += ["--lr-decay"] if script == "train_gan" else []
    flags += ["--lr", "3e-3"] if script == "train_flow" else []  # the schedule is checked against this rate
    result = train(script, tmp_path, *flags)
    assert result.returncode == 0, result.stderr
    planned = int(re.findall(r"planned (\d+) steps", result.stdout)[-1])  # (re-planned at the first epoch end)
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    # (no stopped_s when the budget ran out during an epoch's evaluation: the steps had stopped before it)
    assert "stopped_s" not in last or last["stopped_s"] <= 0.15 * 60 + 2, "steps stop within the budget + 2 s"
    assert last["wall_time_s"] <= 0.15 * 60 + 15, "...and the last epoch's evaluation and grid follow at once"
    # It stopped at its planned step or, when evaluations and snapshots took longer than planned, at the budget.
    assert last["step"] == planned or (last["step"] < planned and last["wall_time_s"] >= 0.15 * 60)
    # Snapshots from step 0 (the initial noise) to the end, each with its grid.
    assert lines[0]["step"] == 0 and lines[-1]["step"] == last["step"]
    assert all((tmp_path / "snapshots" / line["snapshot"]).is_file() for line in lines)
    # ...and at least one between them: the interval itself (a second, or ten times a slow snapshot's cost,
    # which depends on the machine) is checked by hand in the test below.
    assert len(lines) >= 3 and all(a["elapsed_s"] < b["elapsed_s"] for a, b in zip(lines, lines[1:]))
    if script == "train_flow":  # the cosine follows the plan and reaches its floor (a tenth of --lr) at its end
        from training.common import learning_rate

        if last["step"] > 20:  # planned before its last step (a loaded machine may end a 9 s run in warm-up)
            assert last["lr"] == pytest.approx(learning_rate(last["step"] - 1, planned, 3e-3), abs=1e-6)
        assert learning_rate(planned, planned, 3e-3) == pytest.approx(3e-4)  # a tenth of 3e-3, by hand


def test_snapshots_come_every_snapshot_seconds_or_ten_times_a_slow_snapshots_cost(monkeypatch, tmp_path):
    """--snapshot-seconds 1: the first snapshot at once; one that took 0.05 s (with its images) keeps the
    1 s interval; one that took 0.3 s stretches it to 0.3 / 0.1 = 3 s, so snapshots cost a tenth of the run."""
    from training import common

    class Clock:
        now = 100.0

        def perf_counter(self) -> float:
            return self.now

    monkeypatch.setattr(common, "time", Clock())
    args = argparse.Namespace(minutes=None, dry_run=False, snapshot_seconds=1.0, batch_size=4)
    run = common.Run(args=args, device=torch.device("cpu"), folder=tmp_path, started=100.0)
    images = torch.zeros(2, 1, 28, 28)

    def take(cost: float) -> None:
        Clock.now += cost
        run.snapshot(images)

    assert run.snapshot_due()  # the first, at once
    take(2.0)  # (its one-off warm-ups are not counted)
    Clock.now += 0.99
    assert not run.snapshot_due()
    Clock.now += 0.01
    assert run.snapshot_due()
    take(0.05)
    Clock.now += 1.0
    assert run.snapshot_due()
    take(0.3)
    Clock.now += 2.99
    assert not run.snapshot_due()
    Clock.now += 0.01
    assert run.snapshot_due()
    assert len((tmp_path / "live.jsonl").read_text().splitlines()) == 3
    assert sorted(path.name for path in (tmp_path / "snapshots").iterdir()) == ["step_0000000.png"]  # same step


def test_each_epoch_end_replans_at_the_epochs_pace_counting_the_epoch_ends(monkeypatch, capsys):
    """A plan to step 561 made at 0.1 s per step; at step 101 an epoch's 100 steps after its first took
    0.1 s each and its end (evaluation, grid, checkpoint) 2 s. By hand: a step of a 100-step epoch now
    costs 0.1 + 2 / 100 = 0.12 s, so the 460 steps left (46 s) become int(46 / 0.12) = 383: the plan
    ends at step 484, and assumes 0.12 s per step from now on."""
    from training import common

    class Clock:
        now = 13.0

        def perf_counter(self) -> float:
            return self.now

    monkeypatch.setattr(common, "time", Clock())
    args = argparse.Namespace(minutes=1.0, dry_run=False, snapshot_seconds=0.0)
    run = common.Run(args=args, device=torch.device("cpu"), folder=Path("."), started=0.0)
    run.step, run.epoch_first_step, run.last_step_at, run.steps_per_epoch = 101, (1.0, 1), 11.0, 100
    run.planned_steps, run.step_seconds = 561, 0.1
    run.replan()
    assert run.planned_steps == 484 and run.step_seconds == pytest.approx(0.12)
    assert "planned 484 steps (an epoch end takes 2.0 s)" in capsys.readouterr().out
    Clock.now = 20.0
    run.replan()  # a second save in the same epoch (a VAE's mixture prior): no steps timed, the plan stays
    assert run.planned_steps == 484


@needs_data
def test_a_budgeted_run_resumes_on_its_saved_plan_exactly(tmp_path, monkeypatch):
    """A budgeted run killed after its first epoch and resumed ends like one never stopped: same plan,
    same steps, same weights (the plan is saved with the state, not re-made)."""
    from training import common, train_vae

    class Clock:
        """The runs' clock, advancing 10 ms per reading: the same pace, so the same plan, in both runs."""

        now = 0.0

        def perf_counter(self) -> float:
            self.now += 0.01
            return self.now

    monkeypatch.setattr(common, "time", Clock())
    argv = ["--dry-run", "--device", "cpu", "--minutes", "0.02", "--eval-samples", "0", "--batch-size", "16"]
    train_vae.main([*argv, "--out", str(tmp_path / "straight")])

    class Killed(Exception):
        pass

    saved = common.Run.save

    def save_then_die(self, *args):
        saved(self, *args)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(common.Run, "save", save_then_die)
        with pytest.raises(Killed):
            train_vae.main([*argv, "--out", str(tmp_path / "split")])
    train_vae.main([*argv, "--out", str(tmp_path / "split"), "--resume"])
    straight = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors")
    split = load_file(tmp_path / "split" / "checkpoint" / "model.safetensors")
    assert straight.keys() == split.keys()
    for key in straight:
        assert torch.equal(straight[key], split[key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) >= 2, "the run was interrupted between epochs"


def test_the_app_stops_a_run_with_the_file_the_scripts_look_for():
    from training import common, jobs

    assert jobs.STOP_FILE == common.STOP_FILE and jobs.EVALUATING == common.EVALUATING


@needs_data
def test_keep_at_keeps_the_checkpoint_of_each_point_of_the_training_clock(tmp_path, monkeypatch):
    """--keep-at 1,2: OUT/at/00001s and 00002s hold the checkpoint as it was then (loadable, taken at or
    after its point and before the end); bad points get a sentence."""
    from genmodels.registry import load_model
    from training import common, train_vae

    monkeypatch.setattr(common, "time", TenthClock())
    argv = ["--dry-run", "--device", "cpu", "--eval-samples", "0", "--batch-size", "16", "--out", str(tmp_path)]
    train_vae.main([*argv, "--epochs", "1", "--keep-at", "2,1"])
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    for point in (1, 2):
        folder = tmp_path / "at" / f"{point:05d}s"
        taken = json.loads((folder / "kept.json").read_text())
        assert point <= taken["seconds"] and taken["step"] < last["step"], (point, taken, last)
        assert (
            load_model("vae", "cpu", folder).latent_dim == load_model("vae", "cpu", tmp_path / "checkpoint").latent_dim
        )
    assert not list((tmp_path / "at").glob(".*")), "no half-written folder left"
    before = {path: path.read_bytes() for path in (tmp_path / "at").rglob("*") if path.is_file()}
    train_vae.main([*argv, "--epochs", "2", "--resume", "--keep-at", "2,1"])
    after = {path: path.read_bytes() for path in (tmp_path / "at").rglob("*") if path.is_file()}
    assert after == before, "a resumed run leaves the points it kept before as they were"
    for bad in ("soon", "-5"):
        with pytest.raises(SystemExit, match="--keep-at"):
            train_vae.main([*argv, "--keep-at", bad, "--out", str(tmp_path / bad)])
