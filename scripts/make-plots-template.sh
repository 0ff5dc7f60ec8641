#!/usr/bin/env bash
# Regenerate .dvc/plots-template.html: the HTML page `dvc plots show` fills, with Vega,
# Vega-Lite and Vega-Embed inlined (the versions DVC's own page loads from a CDN), so the
# plots render offline (as SVG). .dvc/config points DVC at it (plots.html_template). Needs npm once.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=(vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "${VERSIONS[@]}" >/dev/null)
for f in "$work"/*.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
python3 - "$work" "${VERSIONS[@]}" <<'PY'
import sys
from pathlib import Path

work, versions = Path(sys.argv[1]), sys.argv[2:]
scripts = []
for v in versions:
    name, ver = v.split("@")
    js = (work / f"{name}-{ver}" / "package" / "build" / f"{name}.min.js").read_text("utf-8")
    if "{plot_divs}" in js or "</script" in js:
        raise SystemExit(f"{v}: cannot be inlined (contains a placeholder or </script)")
    scripts.append(f"<!-- {v} (BSD-3-Clause, https://github.com/vega) -->\n<script>{js}</script>")
# Draw SVG instead of canvas: titles and axes become DOM text (searchable, testable).
scripts.append("<script>window.vegaEmbed = (function (embed) { return function (el, spec, opt) "
               "{ return embed(el, spec, Object.assign({renderer: 'svg'}, opt)); }; })"
               "(window.vegaEmbed);</script>")
page = """<!DOCTYPE html>
<html>
<head>
{refresh_tag}
<meta charset="utf-8">
<title>DVC Plot</title>
%s
<style>
body { font-family: sans-serif; }
table { border-spacing: 15px; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
""" % "\n".join(scripts)
Path(".dvc/plots-template.html").write_text(page, "utf-8")
print(f"wrote .dvc/plots-template.html ({len(page)} bytes)")
PY
