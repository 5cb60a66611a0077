#!/usr/bin/env bash
# Copy the browser libraries pinned in package.json into static/vendor/.
#
# The copies are committed: nothing is loaded from the internet at run time and
# node_modules/ is not needed to serve the app. Re-run after changing a version:
#   npm ci && bash scripts/vendor_assets.sh
# Source maps are copied too because ManifestStaticFilesStorage rewrites
# sourceMappingURL comments and fails collectstatic when the map is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nm="$root/node_modules"
out="$root/static/vendor"

if [[ ! -d "$nm/marked" || ! -d "$nm/dompurify" || ! -d "$nm/@highlightjs/cdn-assets" || ! -d "$nm/uplot" ]]; then
    echo "node_modules is incomplete: run 'npm ci' first" >&2
    exit 1
fi

rm -rf "$out/marked" "$out/dompurify" "$out/highlight" "$out/uplot"
mkdir -p "$out/marked" "$out/dompurify" "$out/highlight/styles" "$out/uplot"

cp "$nm/marked/lib/marked.umd.js" "$nm/marked/lib/marked.umd.js.map" "$out/marked/"
cp "$nm/marked/LICENSE" "$out/marked/LICENSE"

cp "$nm/dompurify/dist/purify.min.js" "$nm/dompurify/dist/purify.min.js.map" "$out/dompurify/"
cp "$nm/dompurify/LICENSE" "$out/dompurify/LICENSE"

# The cdn-assets package is highlight.js's own prebuilt browser bundle (common languages).
hl="$nm/@highlightjs/cdn-assets"
cp "$hl/highlight.min.js" "$out/highlight/"
cp "$hl/styles/github.min.css" "$hl/styles/github-dark.min.css" "$out/highlight/styles/"
cp "$hl/LICENSE" "$out/highlight/LICENSE"

# uPlot: the usage dashboard's charts (no dependencies, no source map in the package).
cp "$nm/uplot/dist/uPlot.iife.min.js" "$nm/uplot/dist/uPlot.min.css" "$nm/uplot/LICENSE" "$out/uplot/"

# Record what was copied so a reviewer can see the versions without node_modules.
{
    echo "Vendored by scripts/vendor_assets.sh from the npm packages pinned in package.json."
    for pkg in marked dompurify @highlightjs/cdn-assets uplot; do
        printf '%s %s\n' "$pkg" "$(node -p "require('$nm/$pkg/package.json').version")"
    done
} > "$out/VERSIONS.txt"

echo "vendored into ${out#"$root"/}:"
(cd "$out" && find . -type f | sort)
