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
