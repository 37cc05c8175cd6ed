#!/bin/sh
# Smoke-test a built bundle from a clean environment (no Python, no venv, no PYTHONPATH): the
# CLI, both runtimes' plugins, the GUI offscreen through --self-test, and the desktop install.
#     packaging/bundle_test.sh dist/ParetoLab
set -eu
BUNDLE=$(cd "${1:-dist/ParetoLab}" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
run() {  # the bundle's paretolab with only PATH, HOME and the Qt platform set
    env -i PATH=/usr/bin:/bin HOME="$WORK/home" QT_QPA_PLATFORM=offscreen "$BUNDLE/paretolab" "$@"
}
SAMPLE=$(find "$BUNDLE" -path '*paretolab/resources/sample/digits_cnn.onnx' | head -n 1)
[ -n "$SAMPLE" ] || { echo "bundle-test: the built-in sample is not in the bundle" >&2; exit 1; }
mkdir -p "$WORK/home"
start=$(date +%s)

echo "== paretolab --version";                run --version
echo "== inspect the bundled sample";          run inspect "$SAMPLE" | head -n 5
echo "== OpenVINO int8 (NNCF, OpenVINO's CPU plugin)"
run optimize "$SAMPLE" --quantize openvino-int8 --out "$WORK/out" --name ov | grep -E '^(speed-up|ov )'
echo "== ONNX Runtime int8 (candidates loaded in child processes: paretolab -c)"
run optimize "$SAMPLE" --quantize ort-int8 --out "$WORK/out" --name ort | grep -E '^(speed-up|ort )'
echo "== a user mistake is one line and exit 2"
if run inspect "$WORK/missing.onnx" 2>"$WORK/err"; then echo "bundle-test: a missing file was accepted" >&2; exit 1; fi
cat "$WORK/err"
echo "== the app, offscreen: open the sample, build a variant, chart it"
run gui --self-test
echo "== desktop install and uninstall (into a scratch PREFIX)"
PREFIX="$WORK/prefix" "$BUNDLE/install.sh"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$WORK/prefix/share/applications/io.github.paretolab.ParetoLab.desktop"
fi
[ -x "$WORK/prefix/bin/paretolab" ] && [ -f "$WORK/prefix/share/icons/hicolor/256x256/apps/io.github.paretolab.ParetoLab.png" ]
PREFIX="$WORK/prefix" "$BUNDLE/uninstall.sh"
[ ! -e "$WORK/prefix/bin/paretolab" ]
echo "bundle-test passed in $(( $(date +%s) - start )) s"
