"""Publishing: the Hugging Face Hub round trip without the network, and --share.

Pull: a loopback server (tests/hub_server.py) answers the Hub's file endpoints and `HF_ENDPOINT`
points at it, in a subprocess because huggingface_hub reads the variable at import. Push: the
upload call is replaced, and the test checks the exact files and model card handed to it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from benchmarks.bench_load import free_port, start_server
from genmodels import hub
from genmodels.dcgan import DCGANConfig, Generator
from genmodels.hub import HubRepo
from genmodels.registry import MODELS, parse_model_repos
from tests.conftest import needs_data
from tests.hub_server import HubServer

ROOT = Path(__file__).resolve().parent.parent

# Builds a Lab from GENMODELS_TEST_REPOS in a fresh interpreter and prints what it got as JSON.
LAB_SCRIPT = """
import hashlib, json, os
from genmodels.data import to_uint8
from genmodels.lab import Lab
from genmodels.registry import parse_model_repos
lab = Lab("cpu", parse_model_repos(os.environ["GENMODELS_TEST_REPOS"]))
dcgan = to_uint8(lab.generate("dcgan", seed=0, num=4)).numpy().tobytes()
print(json.dumps({"models": list(lab.models), "broken": lab.broken, "notices": lab.notices,
                  "dcgan": hashlib.sha256(dcgan).hexdigest(), "metrics": lab.metrics.get("dcgan", {})}))
"""


def checkpoint_files(model: torch.nn.Module, folder: Path) -> dict[str, bytes]:
    """The files of `model` saved as a checkpoint folder, as the Hub would serve them."""
    model.save_pretrained(folder)
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def random_generator(seed: int) -> Generator:
    torch.manual_seed(seed)
    return Generator(DCGANConfig()).eval()


def sample_digest(generator: Generator) -> str:
    from genmodels.data import to_uint8

    return hashlib.sha256(to_uint8(generator.sample(4, seed=0)).numpy().tobytes()).hexdigest()


def run_lab(repos: str, endpoint: str, hf_home: Path, offline: bool = False) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), GENMODELS_TEST_REPOS=repos, HF_HUB_DISABLE_TELEMETRY="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", LAB_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub_repos(tmp_path_factory) -> dict:
    """Repos for every case: two revisions of a DCGAN, a corrupt VAE, a pickle-only cGAN."""
    tmp = tmp_path_factory.mktemp("hub")
    main_files = checkpoint_files(random_generator(1), tmp / "main")
    v1_files = checkpoint_files(random_generator(2), tmp / "v1")
    bundled = MODELS["dcgan"].checkpoint_path
    v1_files["README.md"] = (bundled / "README.md").read_bytes()  # a card with evaluation results
    vae_config = (MODELS["vae"].checkpoint_path / "config.json").read_bytes()
    cgan_config = (MODELS["cgan"].checkpoint_path / "config.json").read_bytes()
    return {
        "lab/dcgan": {"main": main_files, "v1": v1_files},
        "lab/corrupt-vae": {"main": {"config.json": vae_config, "model.safetensors": b"\x00" * 64}},
        "lab/pickle-cgan": {"main": {"config.json": cgan_config, "pytorch_model.bin": b"\x80\x04pickle"}},
    }


# --- parsing and validation ---------------------------------------------------------------------


def test_repo_ids_and_revisions_are_validated():
    assert HubRepo.parse("me/dcgan-fashion") == HubRepo("me/dcgan-fashion")
    assert HubRepo.parse("me/dcgan@v1.0") == HubRepo("me/dcgan", "v1.0")
    assert str(HubRepo.parse("me/dcgan@" + "a" * 40)) == "me/dcgan@" + "a" * 40
    for bad in ("dcgan", "../etc/passwd", "/etc/passwd", "a/b/c", "me/..", "me/x@../../secret", "me/x@", "me/x y"):
        if bad == "me/x@":
            assert HubRepo.parse(bad).revision is None
            continue
        with pytest.raises(ValueError):
            HubRepo.parse(bad)


def test_model_repo_specs_name_the_bad_entry():
    repos = parse_model_repos("dcgan=me/g@v2, vae=me/v")
    assert repos == {"dcgan": HubRepo("me/g", "v2"), "vae": HubRepo("me/v")}
    assert parse_model_repos("") == {}
    with pytest.raises(ValueError, match="Unknown model 'gan'"):
        parse_model_repos(["gan=me/g"])
    with pytest.raises(ValueError, match="MODEL=OWNER/NAME"):
        parse_model_repos(["me/g"])
    with pytest.raises(ValueError, match="not a Hub model id"):
        parse_model_repos(["dcgan=../../etc"])
    with pytest.raises(ValueError, match="not a valid Hub model id"):
        parse_model_repos(["dcgan=../etc"])


# --- pull ---------------------------------------------------------------------------------------


def test_pull_pinned_revision_and_fallbacks(hub_repos, tmp_path):
    repos = "dcgan=lab/dcgan@v1 vae=lab/corrupt-vae cgan=lab/pickle-cgan classifier=lab/missing"
    with HubServer(hub_repos) as server:
        got = run_lab(repos, server.endpoint, tmp_path / "hf")
    assert got["models"] == list(MODELS) and got["broken"] == {}, "every model loads, from the Hub or bundled"
    assert got["dcgan"] == sample_digest(random_generator(2)), "the v1 revision, not main or the bundled one"
    assert got["metrics"]["FIDc"] > 0, "the card's evaluation results come along"
    notices = "\n".join(got["notices"])
    assert "dcgan: loaded from the Hub repo lab/dcgan@v1" in notices
    assert "vae: could not load lab/corrupt-vae" in notices and "not a valid VAE checkpoint" in notices
    assert "cgan: could not load lab/pickle-cgan" in notices and "pickled weights are never loaded" in notices
    assert "classifier: could not load lab/missing" in notices and "no such model repository" in notices
    assert not any("pytorch_model.bin" in request for request in server.requests), "pickles are never fetched"

    # The same Hub cache then serves offline, while an uncached repo falls back.
    got = run_lab("dcgan=lab/dcgan@v1 vae=lab/other", "http://127.0.0.1:9", tmp_path / "hf", offline=True)
    assert got["dcgan"] == sample_digest(random_generator(2))
    assert any("vae: could not load lab/other" in n and "HF_HUB_OFFLINE is set" in n for n in got["notices"])


def test_pull_with_the_server_down_falls_back(tmp_path):
    started = time.perf_counter()
    got = run_lab("dcgan=lab/dcgan", f"http://127.0.0.1:{free_port()}", tmp_path / "hf")
    assert time.perf_counter() - started < 20, "a closed port is seen at once, not retried for ~25 s a file"
    assert got["models"] == list(MODELS)
    assert got["dcgan"] == sample_digest(Generator.from_pretrained(str(MODELS["dcgan"].checkpoint_path)))
    assert any("cannot be reached" in notice for notice in got["notices"]), got["notices"]


def serve_app(flags: list[str], env: dict, until: str = "") -> tuple[str, str]:
    """Start `python app.py FLAGS` on a free port, return (its /config, its log) once it serves and its
    log holds `until` (a message that follows start-up; at most 30 s)."""
    port = free_port()
    with tempfile.TemporaryFile() as output:
        process = start_server(port, tuple(flags), env, output=output)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as response:
                config = response.read().decode()
            deadline = time.monotonic() + 30
            while until and until.encode() not in read_all(output) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(timeout=30)
        output.seek(0)
        return config, output.read().decode()


def read_all(file) -> bytes:
    """Everything written to `file` so far by the process it is the output of (without moving the offset
    the two share)."""
    return os.pread(file.fileno(), os.fstat(file.fileno()).st_size, 0)


def test_app_starts_on_bundled_checkpoints_and_says_so(hub_repos, tmp_path):
    """`python app.py --hub-repo` with a missing repo: the page and the log both carry the notice."""
    with HubServer(hub_repos) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
        env.update(HF_ENDPOINT=server.endpoint, HF_HOME=str(tmp_path / "hf"))
        config, log = serve_app(["--hub-repo", "dcgan=lab/nope"], env, until="could not load")
    assert "dcgan: could not load lab/nope" in config and "using the bundled checkpoint" in config
    assert "could not load lab/nope" in log


def test_share_says_whether_a_public_link_was_made(tmp_path):
    """--share: a public link, or (as on a machine without internet) a clear message and local serving."""
    config, log = serve_app(["--share"], {**os.environ, "HOME": str(tmp_path)}, until="ublic link")
    assert "Public link" in log or ("No public link" in log and "served locally only" in log), log


# --- push ---------------------------------------------------------------------------------------


class FakeApi:
    """Stands in for HfApi: records the calls and copies the files that upload_folder would send."""

    calls: list[tuple[str, dict]] = []
    uploaded: dict[str, bytes] = {}

    def __init__(self, token=None):
        assert token == "hf_test_token"

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, repo_id, folder_path, allow_patterns, **kwargs):
        FakeApi.calls.append(("upload_folder", {"repo_id": repo_id, **kwargs}))
        for path in Path(folder_path).iterdir():
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in allow_patterns):
                FakeApi.uploaded[path.name] = path.read_bytes()

        class Commit:
            commit_url = f"https://huggingface.co/{repo_id}/commit/0123abcd"

        return Commit()


@pytest.fixture
def fake_hub(monkeypatch):
    FakeApi.calls, FakeApi.uploaded = [], {}
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return FakeApi


def card_of(uploaded: dict[str, bytes], tmp_path: Path) -> ModelCard:
    path = tmp_path / "uploaded-card.md"
    path.write_bytes(uploaded["README.md"])
    return ModelCard.load(path)


def test_push_cli_uploads_checkpoint_card_and_grid(fake_hub, tmp_path, capsys):
    from genmodels.__main__ import main

    assert main(["push", "--model", "dcgan", "--repo", "me/dcgan-fashion", "--private"]) == 0
    assert "commit/0123abcd" in capsys.readouterr().out
    assert fake_hub.calls[0] == (
        "create_repo",
        {"repo_id": "me/dcgan-fashion", "repo_type": "model", "exist_ok": True, "private": True},
    )
    folder = MODELS["dcgan"].checkpoint_path
    assert set(fake_hub.uploaded) == {"config.json", "model.safetensors", "README.md", "samples.png"}
    assert fake_hub.uploaded["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    card = card_of(fake_hub.uploaded, tmp_path)
    assert card.data.library_name == "genmodels" and "fashion_mnist" in card.data.datasets
    assert "dcgan" in card.data.tags
    values = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert values["fidc"] > 0 and 0 <= values["precision"] <= 1
    assert "![samples](samples.png)" in card.text and "python -m training.train_gan" in card.text


def test_push_cli_refuses_bad_repos_and_folders(fake_hub, tmp_path, capsys):
    from genmodels.__main__ import main

    assert main(["push", "--model", "dcgan", "--repo", "../../etc"]) == 2
    assert main(["push", "--model", "dcgan", "--repo", "me/x@v1"]) == 2
    assert main(["push", "--model", "dcgan", "--repo", "me/x", "--checkpoint", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert fake_hub.calls == [], "nothing reaches the Hub"


@needs_data
def test_training_push_uploads_an_evaluated_card(fake_hub, tmp_path, monkeypatch):
    from training import train_vae

    argv = ["--dry-run", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run"), "--push-to-hub", "me/vae"]
    monkeypatch.setattr(sys, "argv", ["train_vae.py", *argv])
    train_vae.main(argv)
    assert [call for call, _ in fake_hub.calls] == ["create_repo", "upload_folder"]
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} == set(fake_hub.uploaded)
    card = card_of(fake_hub.uploaded, tmp_path)
    values = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert {"fidc", "kidc", "precision", "recall", "is", "psnr_db"} <= set(values)
    assert "python -m training.train_vae --dry-run" in card.text and "![samples](samples.png)" in card.text
    assert card.data.model_name == "run", "the model index names the run (OUT), not its checkpoint/ folder"
    shutil.rmtree(tmp_path / "run")


# --- the Space's front matter -------------------------------------------------------------------


def test_readme_front_matter_is_a_valid_space_config():
    import yaml

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line]
    pins = {name.split("[")[0]: version for name, version in (line.split("==") for line in lines)}  # gradio[mcp]
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins["gradio"]
    assert (ROOT / meta["app_file"]).is_file() and meta["python_version"] == "3.11"
    assert {"title", "emoji", "colorFrom", "colorTo", "license"} <= set(meta)
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert len(meta["short_description"]) <= 60
    for repo in meta["models"]:
        HubRepo.parse(repo)
    assert sorted(repo.split("/")[1] for repo in meta["models"]) == sorted(e.checkpoint for e in MODELS.values())
    body = text.split("---\n", 2)[2]
    assert body.lstrip().startswith("# Latent Lab") and "pip install -r requirements.txt && python app.py" in body
