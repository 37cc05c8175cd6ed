"""Opening a model never runs code from it or writes a file without --trust: each payload is built
inside a real archive, refused in one line (exit 2) with the marker it would write still absent,
and shown to be live by running with --trust."""

from __future__ import annotations

import json
import pickle
import zipfile

import onnx
import pytest
import torch

from paretolab.cli import main
from paretolab.core.errors import ModelLoadError
from paretolab.core.model.formats import archive_guard
from paretolab.core.model.formats.archive_guard import safe_expression
from pickled_code import WritesMarker, exported_archive, rewrite_archive  # type: ignore[import-not-found]


def _inspect(capsys, *argv: str) -> tuple[int, str]:
    code = main(["inspect", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


def _weights_pickled(marker):
    def edit(name, data):
        if name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["fc.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        if name == "data/weights/weight_0":
            return pickle.dumps(WritesMarker(marker))
        return data
    return edit


def _opaque_constant(marker):
    def edit(name, data):
        if name is None:
            return {"data/constants/opaque_obj_0": pickle.dumps(WritesMarker(marker))}
        if name == "data/constants/model_constants_config.json":
            config = json.loads(data)
            config["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                        "tensor_meta": None}
            return json.dumps(config).encode()
        return data
    return edit


def _sample_inputs(marker):
    def edit(name, data):
        return pickle.dumps(WritesMarker(marker)) if name == "data/sample_inputs/model.pt" else data
    return edit


def _guard_code(marker):
    def edit(name, data):
        if name == "models/model.json":
            doc = json.loads(data)
            doc["guards_code"] = [f"open({str(marker)!r}, 'w') is not None"]
            return json.dumps(doc).encode()
        return data
    return edit


def _symbolic_size(marker):
    def edit(name, data):
        if name == "models/model.json":
            text = data.decode()
            start = text.index('"expr_str": "') + len('"expr_str": "')
            end = text.index('"', start)
            return (text[:start] + f"open('{marker}', 'w') and Symbol('s0')" + text[end:]).encode()
        return data
    return edit


PAYLOADS = {"weight marked use_pickle": _weights_pickled, "opaque constant": _opaque_constant,
            "pickled sample inputs": _sample_inputs, "guard code": _guard_code, "symbolic size": _symbolic_size}


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("name", ["model.pt2", "model.bin"])
def test_a_pt2_that_would_run_code_is_refused_without_trust(tmp_path, capsys, payload, name):
    marker = tmp_path / "ran"
    clean = exported_archive(tmp_path / "clean.pt2")
    evil = rewrite_archive(clean, tmp_path / name, PAYLOADS[payload](marker))
    code, err = _inspect(capsys, str(evil), "--input-shape", "1x4")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert name in err and "--trust" in err
    assert not marker.exists()
    main(["inspect", str(evil), "--input-shape", "1x4", "--trust"])  # the payload is live: trusted, it runs
    capsys.readouterr()
    assert marker.exists(), f"the {payload} payload never ran even with --trust: this test proves nothing"


def test_a_clean_pt2_still_opens_whatever_its_name(tmp_path, capsys):
    clean = exported_archive(tmp_path / "clean.pt2")
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(clean.read_bytes())
    for path in (clean, renamed):
        code, err = _inspect(capsys, str(path), "--input-shape", "1x4")
        assert code == 0, err


class _WritesThroughFromFile(torch.nn.Module):
    """A TorchScript module whose __setstate__ maps a file shared and writes into it while loading."""

    def __init__(self, target: str, size: int):
        super().__init__()
        self.target = target
        self.size = size
        self.weight = torch.rand(4, 2)

    @torch.jit.export
    def __getstate__(self) -> tuple[str, int, bool, torch.Tensor]:
        return self.target, self.size, self.training, self.weight

    @torch.jit.export
    def __setstate__(self, state: tuple[str, int, bool, torch.Tensor]) -> None:
        self.target, self.size, self.training, self.weight = state
        mapped = torch.from_file(self.target, shared=True, size=self.size, dtype=torch.uint8)
        self.size = int(mapped.fill_(35).numel())  # '#' over every byte (used, so the compiler keeps it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def test_torchscript_that_writes_a_file_while_loading_is_refused(tmp_path, capsys):
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=$PATH:~/bin\n")
    original = victim.read_bytes()
    scripted = torch.jit.script(_WritesThroughFromFile(str(victim), len(original)))
    model = tmp_path / "net.pt"
    torch.jit.save(scripted, str(model))
    assert victim.read_bytes() == original
    code, err = _inspect(capsys, str(model), "--input-shape", "1x4")
    assert code == 2 and len(err.splitlines()) == 1 and "from_file" in err and "--trust" in err, err
    assert victim.read_bytes() == original
    assert main(["inspect", str(model), "--input-shape", "1x4", "--trust"]) == 0
    capsys.readouterr()
    assert victim.read_bytes() == b"#" * len(original)  # trusted, it ran: the refusal was what kept the file


def test_plain_torchscript_opens_without_trust(tmp_path, capsys):
    model = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(model))
    code, err = _inspect(capsys, str(model), "--input-shape", "1x4")
    assert code == 0, err


@pytest.mark.parametrize("kind", ["pt2", "torchscript", "pickle"])
def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path, capsys, monkeypatch, kind):
    """A small archive (64 MiB of zeros deflate to ~64 KiB) that declares more than the memory
    available: refused before reading, with the available memory patched down to 16 MiB."""
    clean = tmp_path / "clean"
    if kind == "pt2":
        exported_archive(clean)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(clean))
    else:
        torch.save({"w": torch.zeros(3)}, str(clean))
    bomb = tmp_path / f"bomb.{'pt2' if kind == 'pt2' else 'pt'}"
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        root = src.namelist()[0].split("/", 1)[0]
        dst.writestr(f"{root}/data/padding", bytes(64 * 2**20))
    assert bomb.stat().st_size < 2**20

    import psutil

    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=16 * 2**20))
    code, err = _inspect(capsys, str(bomb), "--input-shape", "1x4", "--trust")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "bomb." in err and "64.0 MiB" in err and "16.0 MiB" in err


def test_a_recorded_input_shape_too_large_is_refused_before_allocation(tmp_path, capsys):
    model = tmp_path / "wide.pt"
    spec = json.dumps({"inputs": [{"name": "x", "shape": [300000000000, 4], "dtype": "float32"}]})
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(model), _extra_files={"paretolab.json": spec})
    code, err = _inspect(capsys, str(model))
    assert code == 2 and len(err.splitlines()) == 1 and "300000000000" in err.replace(",", "").replace("x", ""), err


def test_code_folder_needs_trust(tmp_path, capsys):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "torch_payload_marker.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    clean = exported_archive(tmp_path / "clean.pt2")
    code, err = _inspect(capsys, str(clean), "--input-shape", "1x4", "--code", str(code_dir))
    assert code == 2 and len(err.splitlines()) == 1 and "--code" in err and "--trust" in err, err
    import sys
    assert str(code_dir.resolve()) not in sys.path


def _onnx_naming(tmp_path, arch: str):
    model = tmp_path / "m.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.rand(1, 4),), str(model), dynamo=False)
    proto = onnx.load(str(model))
    torch.save({}, str(tmp_path / "w.pt"))  # an Identity's weights
    for key, value in (("paretolab.arch", arch), ("paretolab.state_dict", "w.pt")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(model))
    return model


def test_onnx_metadata_never_calls_a_function(tmp_path, monkeypatch):
    from paretolab.core.model.eager import TechniqueUnavailable, eager_module
    from paretolab.core.model.handle import load_model

    called = []
    monkeypatch.setattr("paretolab.cli.main", lambda *a, **k: called.append(a))
    model = _onnx_naming(tmp_path, "paretolab.cli:main")
    for trust in (False, True):
        with pytest.raises(TechniqueUnavailable, match="paretolab.cli:main"):
            eager_module(load_model(model, trust=trust), "a test")
    assert called == []


def test_onnx_metadata_class_needs_trust_or_arch(tmp_path):
    from paretolab.core.model.eager import TechniqueUnavailable, eager_module
    from paretolab.core.model.handle import load_model

    model = _onnx_naming(tmp_path, "torch.nn:Identity")
    with pytest.raises(TechniqueUnavailable, match="--trust"):
        eager_module(load_model(model), "a test")
    assert isinstance(eager_module(load_model(model, trust=True), "a test"), torch.nn.Identity)
    assert isinstance(eager_module(load_model(model, arch="torch.nn:Identity"), "a test"), torch.nn.Identity)


@pytest.mark.parametrize("text", ["Symbol('s77', positive=True, integer=True)", "2*s0 + 1", "FloorDiv(s0, 2) <= 8",
                                  "L['x'].size()[0] <= 1024", "Eq(Mod(s1, 8), 0)"])
def test_plain_expressions_pass(text):
    assert safe_expression(text)


@pytest.mark.parametrize("text", ["__import__('os').system('x')", "open('f', 'w')", "().__class__", "eval('1')",
                                  "2**2**2**40", "lambda: 1", "[x for x in ()]", "s0.__class__"])
def test_code_in_expressions_is_caught(text):
    assert not safe_expression(text)


def test_memory_check_names_file_and_sizes(tmp_path, monkeypatch):
    import psutil

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/x", bytes(2**20))
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=2**19))
    with zipfile.ZipFile(archive) as z, pytest.raises(ModelLoadError, match=r"a\.zip .* 1\.0 MiB .*0\.5 MiB"):
        archive_guard.check_zip_memory(archive, z)


@pytest.mark.parametrize("target", ["torch.os.system", "_operator.call", "builtins.exec", "torch.ops.aten.from_file.default"])
def test_a_node_calling_anything_but_an_operator_is_refused(tmp_path, capsys, target):
    def edit(name, data):
        return data.replace(b'"torch.ops.aten.linear.default"', json.dumps(target).encode()) \
            if name == "models/model.json" else data
    evil = rewrite_archive(exported_archive(tmp_path / "clean.pt2"), tmp_path / "evil.pt2", edit)
    code, err = _inspect(capsys, str(evil), "--input-shape", "1x4")
    assert code == 2 and target in err and "--trust" in err, err
