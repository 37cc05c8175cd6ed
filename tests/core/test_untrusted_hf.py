"""A Hugging Face folder's own Python code (an `auto_map` in config.json or tokenizer_config.json)
never runs without --trust, not even when a 'y' waits on stdin for transformers' question, and a
shard index cannot make transformers read weights from outside the folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hf_models  # type: ignore[import-not-found]
from paretolab.core.errors import ModelLoadError, UntrustedModelError
from paretolab.core.model.handle import load_model

pytest.importorskip("transformers")

PAYLOAD = """from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import BertConfig, BertModel, BertTokenizer


class EvilConfig(BertConfig):
    model_type = "evil"


class EvilModel(BertModel):
    config_class = EvilConfig


class EvilTokenizer(BertTokenizer):
    pass
"""


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return hf_models.write("bert", tmp_path_factory.mktemp("hf"))


def _with_code(bert: Path, folder: Path, config_name: str, auto_map: dict) -> Path:
    """A copy of the tiny BERT whose `config_name` names evil.py, which writes a marker when imported."""
    shutil.copytree(bert, folder)
    marker = folder.parent / f"{folder.name}.ran"
    (folder / "evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    config = json.loads((folder / config_name).read_text())
    config["auto_map"] = auto_map
    (folder / config_name).write_text(json.dumps(config))
    return marker


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """The real CLI with a 'y' on stdin: were transformers to ask its question, the 'y' would answer it."""
    env = {**os.environ, "TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "paretolab", *argv], input="y\n", stdin=None, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize("config_name, auto_map", [
    ("config.json", {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}),
    ("tokenizer_config.json", {"AutoTokenizer": ["evil.EvilTokenizer", None]}),
])
def test_auto_map_is_refused_in_one_line_and_a_y_on_stdin_runs_nothing(bert, tmp_path, config_name, auto_map):
    folder = tmp_path / "custom"
    marker = _with_code(bert, folder, config_name, auto_map)
    result = _cli("inspect", str(folder))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "auto_map" in lines[0] and "--trust" in lines[0], result.stderr
    assert next(iter(auto_map)) in lines[0]
    assert not marker.exists()
    assert "[y/N]" not in result.stdout + result.stderr


def test_trust_runs_the_folders_code(bert, tmp_path):
    folder = tmp_path / "custom"
    marker = _with_code(bert, folder, "config.json", {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    with pytest.raises(UntrustedModelError):
        load_model(folder, input_shapes={None: (1, 8)})
    assert not marker.exists()
    handle = load_model(folder, input_shapes={None: (1, 8)}, trust=True)
    assert marker.exists() and handle.trusted


def test_a_tokenizer_beside_an_onnx_model_runs_no_code(bert, tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    onnx_file = load_model(bert, input_shapes={None: (1, 16)}).to_onnx(folder / "model.onnx")
    for name in ("tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "tokenizer.json"):
        if (bert / name).exists():
            shutil.copy(bert / name, folder / name)
    marker = tmp_path / "tokenizer.ran"
    (folder / "evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    data = tmp_path / "reviews.txt"
    data.write_text("\n".join(text for text, _ in hf_models.REVIEWS) + "\n")
    result = _cli("evaluate", str(onnx_file), "--input-shape", "1x16", "--data", str(data))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and str(folder) in line and "AutoTokenizer" in line and "--trust" in line, line
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["/etc/passwd", "../outside.safetensors", "sub/../../outside.safetensors", "link"])
def test_a_shard_index_pointing_outside_the_folder_is_refused(bert, tmp_path, entry):
    folder = tmp_path / "sharded"
    shutil.copytree(bert, folder)
    outside = tmp_path / "outside.safetensors"
    shutil.copy(folder / "model.safetensors", outside)
    (folder / "link").symlink_to(outside)
    (folder / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"bert.embeddings.word_embeddings.weight": entry}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match=r"weight_map\['bert.embeddings.word_embeddings.weight'\] points outside"):
        load_model(folder, trust=True)  # --trust allows code, never reading files from elsewhere


def test_a_cache_snapshot_linking_into_its_blobs_opens(bert, tmp_path):
    """The Hugging Face cache keeps files in blobs/ and links them from snapshots/REV/: that is no escape."""
    blobs, snapshot = tmp_path / "models--tiny" / "blobs", tmp_path / "models--tiny" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in bert.iterdir():
        shutil.copy(file, blobs / file.name)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", file.name))
    index = {"metadata": {}, "weight_map": {"bert.pooler.dense.weight": "model.safetensors"}}
    (blobs / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / "model.safetensors.index.json").symlink_to(Path("..", "..", "blobs", "model.safetensors.index.json"))
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to(Path("..", "..", "blobs", "model.safetensors"))
    from paretolab.core.model.formats.hf_trust import check_shard_index

    check_shard_index(snapshot)  # no error
