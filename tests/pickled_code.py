"""A pickled model whose class lives in a module of its own, as in a user's training project."""

from __future__ import annotations

import sys
import textwrap

import torch

CODE = textwrap.dedent('''
    import torch

    class PickledNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(x)
''')


def pickle_with_code(tmp_path, module: str, model_folder: str):
    """Save a model whose class lives in `module`.py under tmp/code, into tmp/`model_folder`."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / f"{module}.py").write_text(CODE)
    sys.path.insert(0, str(code))
    try:
        model = __import__(module).PickledNet()
        out = tmp_path / model_folder
        out.mkdir(exist_ok=True)
        if model_folder == "code":
            out = code
        torch.save(model, out / "net.pt")
    finally:
        sys.path.remove(str(code))
        del sys.modules[module]
    return out / "net.pt", code


class WritesMarker:
    """Unpickled, it creates the file `marker` (the proof that loading ran code from the file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def exported_archive(path):
    """A real torch.export archive of a tiny module with a free batch size, saved at `path`."""

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    program = torch.export.export(Tiny(), (torch.rand(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path))
    return path


def rewrite_archive(path, out, edit):
    """Copy the zip at `path` to `out`, entry by entry, through `edit(name, data) -> data` (None drops it);
    `edit(None, None)` may return extra entries to add as a {name: bytes} dict."""
    import zipfile

    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        root = src.namelist()[0].split("/", 1)[0]
        for info in src.infolist():
            data = edit(info.filename[len(root) + 1:], src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
        for name, data in (edit(None, None) or {}).items():
            dst.writestr(f"{root}/{name}", data)
    return out
