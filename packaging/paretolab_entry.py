"""The bundle's executable: `paretolab` with every command, and `paretolab -c CODE ARGS...` as a
Python interpreter would run it (ParetoLab loads each file it writes into ONNX Runtime in a child
process started as `sys.executable -c ...`; in a bundle, sys.executable is this program)."""

import sys


def _run_code(code: str, argv: list[str]) -> int:
    sys.argv = ["-c", *argv]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own probe code
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "-c":
        sys.exit(_run_code(sys.argv[2], sys.argv[3:]))
    from paretolab.__main__ import main

    sys.exit(main())
