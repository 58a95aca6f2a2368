"""Offline slide decks (``make slides``): ``slides/NN_*.md`` -> ``build/slides/NN_*.html`` with reveal.js bundled.

nbconvert's slides point at a CDN, which fails in a room without internet. Here reveal.js (MIT) comes from the
copy shipped inside the ``sphinx-revealjs`` wheel and is copied next to the decks, so they open from file://.
Slides are Markdown separated by a line ``---`` (vertical sub-slides by ``--``); ``Note:`` starts speaker notes.
Placeholders such as ``{{metric:dice_real}}`` and ``{{figure:overlay}}`` are filled from the room's own runs
(:mod:`workshop_utils.instructor.deck_data`).
"""

from __future__ import annotations

import html
import importlib.util
import shutil
from pathlib import Path

from workshop_utils.core import paths
from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.inputs import bad_input, require_file, require_folder, require_path
from workshop_utils.instructor import deck_data

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="reveal/dist/reveal.css">
<link rel="stylesheet" href="reveal/dist/theme/white.css">
<style>
.reveal h1,.reveal h2{{text-transform:none}} .reveal table{{font-size:0.7em}}
.reveal .flow{{display:flex;align-items:center;justify-content:center;flex-wrap:wrap;gap:0.3em;font-size:0.62em}}
.reveal .flow b{{border:2px solid #76b900;border-radius:0.4em;padding:0.35em 0.6em;background:#f4faea;font-weight:600}}
.reveal .flow i{{font-style:normal;color:#555}}
.reveal .flow small{{display:block;font-size:0.75em;font-weight:400;color:#444}}
.reveal img.lab-figure{{max-height:460px;max-width:92%;border:1px solid #ddd}}
.reveal .pending{{display:inline-block;border:2px dashed #aaa;color:#777;padding:0.4em 0.8em;font-size:0.6em}}
.reveal .measured{{color:#3a6d00;font-weight:700}}
</style>
</head>
<body>
<div class="reveal"><div class="slides">
<section data-markdown data-separator="^\\n---\\n" data-separator-vertical="^\\n--\\n" data-separator-notes="^Note:">
<textarea data-template>
{markdown}
</textarea>
</section>
</div></div>
<script src="reveal/dist/reveal.js"></script>
<script src="reveal/plugin/markdown/markdown.js"></script>
<script src="reveal/plugin/notes/notes.js"></script>
<script>Reveal.initialize({{hash: true, plugins: [RevealMarkdown, RevealNotes]}});</script>
</body>
</html>
"""


def revealjs_dir() -> Path:
    """reveal.js as shipped in the installed sphinx-revealjs wheel (dist/ and plugin/)."""
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None or not spec.submodule_search_locations:
        raise MissingFileError("slides: expected reveal.js from the sphinx-revealjs package; got no such package "
                                 "installed. Run `make setup` (it installs requirements/lock.txt).")
    folder = Path(next(iter(spec.submodule_search_locations))) / "_static" / "revealjs"
    if not (folder / "dist" / "reveal.js").is_file():
        raise MissingFileError(f"slides: expected dist/reveal.js under {folder}; got none (sphinx-revealjs changed "
                                 "its layout). Pin sphinx-revealjs==3.2.1 in requirements/base.in and run `make lock`.")
    return folder


def build_deck(source: Path, out_dir: Path) -> Path:
    """Turn one Markdown deck into an HTML file in ``out_dir``."""
    source = require_file(source, "build_deck", "source", "Pass a deck from slides/, e.g. slides/01_monai_nuclei_segmentation.md.")
    if source.suffix != ".md":
        raise bad_input("build_deck", "source as a Markdown (.md) deck", str(source), "Pass a slides/NN_*.md file.")
    out_dir = require_folder(out_dir, "build_deck", "out_dir",
                             "Create it first (Path(out_dir).mkdir(parents=True)) or use build_slides(), which does.")
    markdown = deck_data.fill(source.read_text(encoding="utf-8"), source.stem, paths.results_dir(), paths.build_dir(),
                              out_dir)
    first = next((line for line in markdown.splitlines() if line.startswith("# ")), source.stem)
    # The deck sits in a <textarea>: escape only what would close it early.
    body = markdown.replace("</textarea", "&lt;/textarea")
    target = out_dir / f"{source.stem}.html"
    target.write_text(TEMPLATE.format(title=html.escape(first.lstrip("# ")), markdown=body), encoding="utf-8")
    return target


def build_slides(out_dir: Path | None = None) -> list[Path]:
    """Build every deck in ``slides/`` plus an index page; reveal.js is copied alongside."""
    fix = "Pass a folder, e.g. build_slides(Path('build/slides')), or leave it out."
    target = require_path(out_dir, "build_slides", "out_dir", fix, default=paths.build_dir() / "slides")
    if target.is_file():
        raise bad_input("build_slides", "out_dir as a folder path (or None for build/slides)", f"{target} (a file)", fix)
    target.mkdir(parents=True, exist_ok=True)
    reveal = target / "reveal"
    shutil.rmtree(reveal, ignore_errors=True)
    source = revealjs_dir()
    for part in ("dist", "plugin"):
        shutil.copytree(source / part, reveal / part)
    shutil.copy2(source / "LICENSE", reveal / "LICENSE")
    decks = [build_deck(md, target) for md in sorted((paths.repo_root() / "slides").glob("[0-9][0-9]_*.md"))]
    links = "".join(f"<li><a href='{d.name}'>{html.escape(d.stem)}</a></li>" for d in decks)
    (target / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>Workshop slides</title><h1>Workshop slides</h1><ul>{links}</ul>",
        encoding="utf-8",
    )
    return decks
