#!/bin/sh
# Remove what install.sh wrote under PREFIX (default ~/.local). The bundle folder and the
# experiments you made are left alone.
set -eu
PREFIX=${PREFIX:-$HOME/.local}
ID=io.github.paretolab.ParetoLab
rm -f "$PREFIX/bin/paretolab" "$PREFIX/share/applications/$ID.desktop" "$PREFIX/share/metainfo/$ID.metainfo.xml" \
      "$PREFIX/share/mime/packages/paretolab.xml" "$PREFIX/share/icons/hicolor/scalable/apps/$ID.svg"
for dir in "$PREFIX"/share/icons/hicolor/*x*/apps; do rm -f "$dir/$ID.png"; done
if command -v update-mime-database >/dev/null 2>&1 && [ -d "$PREFIX/share/mime" ]; then
    update-mime-database "$PREFIX/share/mime" >/dev/null 2>&1 || true
fi
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database "$PREFIX/share/applications" >/dev/null 2>&1 || true; fi
echo "ParetoLab removed from $PREFIX (the bundle folder itself is untouched; delete it to finish)"
