#!/bin/sh
# Put ParetoLab in the desktop's menus: run from the unpacked bundle folder (the one holding
# the `paretolab` executable). Installs for this user under PREFIX (default ~/.local): a
# `paretolab` command, the desktop entry, the icons, the AppStream metainfo and the .onnx MIME type.
# The bundle folder stays where it is; uninstall.sh removes what this wrote.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
ID=io.github.paretolab.ParetoLab
[ -x "$HERE/paretolab" ] || { echo "install.sh: $HERE/paretolab not found; run this from the unpacked ParetoLab folder" >&2; exit 2; }

mkdir -p "$PREFIX/bin" "$PREFIX/share/applications" "$PREFIX/share/metainfo" "$PREFIX/share/mime/packages" \
         "$PREFIX/share/icons/hicolor/scalable/apps"
ln -sf "$HERE/paretolab" "$PREFIX/bin/paretolab"
# the entry names the executable by its full path: ~/.local/bin is not on every desktop's PATH
sed -e "s|^Exec=paretolab |Exec=\"$HERE/paretolab\" |" -e "s|^TryExec=paretolab|TryExec=$HERE/paretolab|" \
    "$HERE/share/$ID.desktop" > "$PREFIX/share/applications/$ID.desktop"
cp "$HERE/share/$ID.metainfo.xml" "$PREFIX/share/metainfo/"
cp "$HERE/share/paretolab-mime.xml" "$PREFIX/share/mime/packages/paretolab.xml"
cp "$HERE/share/icons/paretolab.svg" "$PREFIX/share/icons/hicolor/scalable/apps/$ID.svg"
for png in "$HERE"/share/icons/paretolab-*.png; do
    size=$(basename "$png" .png | sed 's/paretolab-//')
    mkdir -p "$PREFIX/share/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$PREFIX/share/icons/hicolor/${size}x${size}/apps/$ID.png"
done
if command -v update-mime-database >/dev/null 2>&1; then update-mime-database "$PREFIX/share/mime" >/dev/null 2>&1 || true; fi
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database "$PREFIX/share/applications" >/dev/null 2>&1 || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" >/dev/null 2>&1 || true; fi
echo "ParetoLab installed under $PREFIX: run 'paretolab' or find it in your applications menu"
