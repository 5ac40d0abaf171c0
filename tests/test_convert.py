"""The converter for the authors' checkpoints: complete name mapping, safe unpickling, CLI."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pytest
import torch

from tamvt.checkpoint import load_checkpoint
from tamvt.cli import main
from tamvt.config import load_preset
from tamvt.errors import InputError, TamvtError
from tamvt.models.tamvt import build_tamvt
from tamvt.official import (
    convert_official_state_dict,
    load_official_checkpoint,
    official_to_tamvt_name,
)

FIXTURES = Path(__file__).parent / "fixtures" / "official"
UNUSED = {
    "bbox_embed.layers.0.weight",
    "bbox_embed.layers.0.bias",
    "bbox_embed.layers.1.weight",
    "bbox_embed.layers.1.bias",
    "bbox_embed.layers.2.weight",
    "bbox_embed.layers.2.bias",
    "query_embed.text.weight",
}


@pytest.fixture(scope="module")
def official_entries() -> list[dict]:
    return json.loads((FIXTURES / "keys.json").read_text())["entries"]


@pytest.fixture(scope="module")
def official_weights() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    sd = load_file(FIXTURES / "tamvt_official_vectors.safetensors")
    return {k: v.float() for k, v in sd.items() if not k.startswith(("A.", "B.", "C.", "D."))}


def test_every_official_name_is_mapped_onto_the_r50_model(official_entries):
    names = [e["name"] for e in official_entries]
    assert len(names) == 446
    mapped = {n: official_to_tamvt_name(n) for n in names}
    assert {n for n, t in mapped.items() if t is None} == UNUSED
    ours = build_tamvt(load_preset("tamvt-r50").model).state_dict()
    targets = [t for t in mapped.values() if t is not None]
    assert set(targets) == set(ours)  # nothing left unmapped on either side
    # only the shared pre-LayerNorm maps two official names to one of ours
    doubles = {t for t in targets if targets.count(t) > 1}
    assert doubles == {f"matching.blocks.{i}.pre_ln.{w}" for i in (0, 1) for w in ("weight", "bias")}
    for e in official_entries:  # shapes agree up to layout ((45,1) -> (45,), (12,1,256) -> (12,256))
        t = mapped[e["name"]]
        if t is not None:
            assert ours[t].numel() == torch.Size(e["shape"]).numel(), e["name"]
            # frozen in the authors' training <=> frozen (no grad / buffer) in ours
    params = dict(build_tamvt(load_preset("tamvt-r50").model).named_parameters())
    for e in official_entries:
        t = mapped[e["name"]]
        if t is not None:
            assert (t in params and params[t].requires_grad) == e["trainable"], e["name"]


def test_unknown_and_inconsistent_names_are_errors(official_weights):
    with pytest.raises(TamvtError, match="unknown parameter name"):
        official_to_tamvt_name("transformer.encoder.something_new.weight")
    broken = dict(official_weights)
    broken["transformer.encoder.matching.0.pre_ln_k.weight"] = (
        broken["transformer.encoder.matching.0.pre_ln_q.weight"] + 1
    )
    with pytest.raises(TamvtError, match="pre_ln"):
        convert_official_state_dict(broken)


def _write_marker(path: str) -> None:
    Path(path).write_text("executed")


class EvilReduce:
    """Unpickling this calls _write_marker (what a malicious pickle would do)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (_write_marker, (self.path,))


class EvilState:
    """Unpickling this runs __setstate__, which writes a marker."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        Path(state["path"]).write_text("executed")


@pytest.fixture()
def authors_pth(tmp_path, official_weights) -> tuple[Path, Path, Path]:
    markers = tmp_path / "reduce.marker", tmp_path / "setstate.marker"
    plain = dict(official_weights)
    plain["input_proj.res5.bias"] = plain["input_proj.res5.bias"] + 1.0  # 'model' differs from 'model_ema'
    # args: the authors' files hold an OmegaConf object here (test_hardening.py builds one); an
    # argparse.Namespace is the other config object the loader keeps as an inert placeholder
    ckpt = {
        "model": plain,
        "model_ema": dict(official_weights),
        "optimizer": {"state": {}},
        "epoch": 149,
        "args": argparse.Namespace(lr=1e-4, output_dir=Path("/runs/vost")),
    }
    path = tmp_path / "tamvt_vost.pth"
    torch.save(ckpt, path)
    return path, *markers


def test_loading_executes_no_pickled_code(authors_pth, tmp_path):
    path, m1, m2 = authors_pth
    ckpt = load_official_checkpoint(path)
    assert ckpt["epoch"] == 149 and set(ckpt) == {"model", "model_ema", "optimizer", "epoch", "args"}
    # a pickle that would run code is refused, naming the global it asked for, and runs nothing
    for evil, marker, name in ((EvilReduce(str(m1)), m1, "_write_marker"), (EvilState(str(m2)), m2, "EvilState")):
        bad = tmp_path / f"{name}.pth"
        torch.save({"model_ema": {}, "args": evil}, bad)
        with pytest.raises(InputError, match=rf"refused to load `[\w.]*{name}` from the pickle"):
            load_official_checkpoint(bad)
        assert not marker.exists()
        torch.load(bad, weights_only=False)  # the marker really is armed: an unrestricted load runs it
        assert marker.exists()


def test_cli_converts_ema_weights(authors_pth, tmp_path, official_weights, capsys):
    path, m1, m2 = authors_pth
    out = tmp_path / "tamvt_vost.safetensors"
    assert main(["convert-official", str(path), str(out)]) == 0
    assert not m1.exists() and not m2.exists()
    model, cfg = load_checkpoint(out)
    assert cfg.model == load_preset("tamvt-r50").model
    expected = convert_official_state_dict(official_weights)
    got = model.state_dict()
    for name, value in expected.items():
        assert torch.equal(got[name], value.reshape(got[name].shape)), name


def test_cli_no_ema_and_bank(authors_pth, tmp_path, official_weights):
    path, _, _ = authors_pth
    out = tmp_path / "plain.safetensors"
    assert main(["convert-official", str(path), str(out), "--no-ema", "--bank", "11"]) == 0
    model, cfg = load_checkpoint(out)
    assert torch.equal(model.frame_proj.res5.bias, official_weights["input_proj.res5.bias"] + 1.0)
    assert cfg.model.bank_size == 11 and model.bank_size == 11
    theta = model.matching.rte.theta.detach()
    assert theta.shape == (66,)
    assert torch.equal(theta[:45], official_weights["transformer.encoder.rel_time_theta.weight"].reshape(-1))


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    assert main(["convert-official", str(missing), str(tmp_path / "o.safetensors")]) == 2
    assert "nope.pth" in capsys.readouterr().err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    assert main(["convert-official", str(junk), str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "junk.pth" in err and len(err.strip().splitlines()) == 1
    foreign = tmp_path / "foreign.pth"
    torch.save({"model_ema": {"encoder.weight": torch.zeros(2)}}, foreign)
    assert main(["convert-official", str(foreign), str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "foreign.pth" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.safetensors").exists()
    with open(tmp_path / "pickle.pth", "wb") as f:  # a legacy (non-zip) pickle with a bare dict
        pickle.dump({"model_ema": 1}, f)
    assert main(["convert-official", str(tmp_path / "pickle.pth"), str(tmp_path / "o.safetensors")]) == 2
