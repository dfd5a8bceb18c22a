"""The CCBE patch sets (``patches/ccbe/v5.3``, ``patches/ccbe/v5.4``) and ``patches/apply --host ccbe``.

Without CCBE's source (CI, always): every patch changes exactly the file and the hunks it
claims (:data:`CLAIMS`: losing a hunk fails), the README reports each patch's line counts,
and the tool is exercised on a tree made of the patches' own pre-images (each patched file
= its hunks' context and removed lines, in order, separated by filler lines): ``--check``
passes and changes nothing, an install changes the claimed files plus the overlay and
nothing else, a second install is a no-op, ``--revert`` restores the tree byte for byte,
drift stops before any change naming the file and the hunk, the generation is detected.

With ``CCBE_SOURCE_DIR`` (a v5.3.x or v5.4.x checkout): the same against the real tree.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
APPLY = REPO / "patches" / "apply"
PATCHES = REPO / "patches" / "ccbe"
OVERLAY_LIST = PATCHES / "overlay.txt"
MANIFEST = ".onyx-r2r-overlay"
GENERATIONS = ("5.3", "5.4")

# patch -> (the file it changes, its hunks, lines every version of it must add)
Claim = tuple[str, int, tuple[str, ...]]
_BOTH: dict[str, Claim] = {
    "config_parser.patch": (
        "context_chat_backend/config_parser.py",
        2,
        (
            "from .backends import select_backend",
            "vectordb = select_backend(config.get('vectordb'))",
        ),
    ),
    "dyn_loader.patch": (
        "context_chat_backend/dyn_loader.py",
        3,
        (
            "from .backends import load_backend",
            "return load_backend(self.config)",
            "import torch  #",
        ),
    ),
    "info_xml.patch": (
        "appinfo/info.xml",
        1,
        ("<name>RAG_BACKEND</name>", "<name>R2R_BASE_URL</name>"),
    ),
    "main.patch": ("main.py", 2, ("app.add_middleware(ExAppVersionHeader)",)),
    "main_em.patch": (
        "main_em.py",
        2,
        ("if not spec_for(app_config.vectordb[0]).uses_ccbe_embedder:",),
    ),
    "pgsql_setup.patch": (
        "dockerfile_scripts/pgsql/setup.sh",
        1,
        ('if [ "${rag_backend:-r2r}" != "pgvector" ]; then',),
    ),
    "requirements.patch": (
        "requirements.txt",
        2,
        ("fastapi>=0.133,<0.145", "nc_py_api>=0.24.2,<0.31"),
    ),
}
CLAIMS: dict[str, dict[str, Claim]] = {
    "5.4": {
        **_BOTH,
        "controller.patch": (
            "context_chat_backend/controller.py",
            2,
            (
                "from .exapp.lifecycle import install_lifecycle",
                "install_lifecycle(app, enabled_handler",
            ),
        ),
        "task_fetcher.patch": (
            "context_chat_backend/task_fetcher.py",
            7,
            (
                "from .exapp.readiness import ConnectionGate",
                "backend_gate = ConnectionGate(app_config, upstream_gated=False)",
                "if not backend_gate.check_connection(ThreadType.UPDATES_PROCESSING.value):",
            ),
        ),
    },
    "5.3": {
        **_BOTH,
        "controller.patch": (
            "context_chat_backend/controller.py",
            9,
            (
                "install_lifecycle(app, enabled_handler, models_to_fetch=models_to_fetch)",
                "exec_in_proc(target=update_access_provider,",
                "if (problem := part_problem(source)) is not None:",
                "except (DbException, SafeDbException, EmbeddingException):",
                "return JSONResponse({'error': '; '.join(rejected), **answer}, 400)",
            ),
        ),
        "injest.patch": (
            "context_chat_backend/chain/ingest/injest.py",
            1,
            ("except SafeDbException:",),
        ),
        "service.patch": (
            "context_chat_backend/vectordb/service.py",
            2,
            ("except SafeDbException:",),
        ),
    },
}


@dataclass(frozen=True)
class Patch:
    name: str
    path: str
    header: str
    hunks: tuple[str, ...]

    @property
    def added(self) -> list[str]:
        return [line[1:] for h in self.hunks for line in h.splitlines()[1:] if line[:1] == "+"]

    @property
    def removed(self) -> list[str]:
        return [line[1:] for h in self.hunks for line in h.splitlines()[1:] if line[:1] == "-"]


def read_patch(path: Path) -> Patch:
    text = path.read_text(encoding="utf-8")
    header, _, body = text.partition("\n@@")
    target = re.search(r"(?m)^\+\+\+ b/(.+)$", header)
    assert target, f"{path.name} names no file (+++ b/…)"
    hunks = tuple(h for h in re.split(r"(?m)^(?=@@ )", "@@" + body) if h.strip())
    return Patch(path.name, target.group(1), header + "\n", hunks)


def patch_set(generation: str) -> dict[str, Patch]:
    return {p.name: read_patch(p) for p in sorted((PATCHES / f"v{generation}").glob("*.patch"))}


def apply(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(APPLY), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def overlay_files() -> set[str]:
    files: set[str] = set()
    for line in OVERLAY_LIST.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        # ccbe/<entry>, else backend/<entry> (the engine, onyx/r2r_sender)
        root = REPO / "ccbe" if (REPO / "ccbe" / entry).exists() else REPO / "backend"
        source = root / entry
        assert source.exists(), entry
        files |= {
            str(p.relative_to(root))
            for p in source.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        }
    return files


# ------------------------------------------------------------------ the claims
@pytest.mark.parametrize("generation", GENERATIONS)
def test_each_patch_changes_exactly_what_it_claims(generation: str) -> None:
    patches = patch_set(generation)
    assert set(patches) == set(CLAIMS[generation]), "a patch was added or removed: update CLAIMS"
    for name, patch in patches.items():
        path, hunks, markers = CLAIMS[generation][name]
        assert patch.path == path, name
        assert len(patch.hunks) == hunks, f"{name}: {len(patch.hunks)} hunks, claimed {hunks}"
        added = "\n".join(patch.added)
        for marker in markers:
            assert marker in added, f"{name} no longer adds {marker!r}"
        # one file per patch: a drift report names exactly one file
        assert patch.header.count("+++ ") == 1 and "\n+++ " not in "".join(patch.hunks), name


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_readme_reports_each_patchs_line_counts(generation: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, patch in patch_set(generation).items():
        row = re.search(
            rf"(?m)^\| `v{re.escape(generation)}/{re.escape(name)}` \| `[^`]+` \| \+(\d+) −(\d+) \|",
            readme,
        )
        assert row, (
            f"README.md has no line for v{generation}/{name} (| `v{generation}/{name}` | `file` | +N −M | …)"
        )
        assert (int(row.group(1)), int(row.group(2))) == (len(patch.added), len(patch.removed)), (
            name
        )


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_version_header_middleware_is_added_once_in_main_py(generation: str) -> None:
    added = [
        (name, line)
        for name, patch in patch_set(generation).items()
        for line in patch.added
        if "add_middleware(" in line
    ]
    assert added == [("main.patch", "\tapp.add_middleware(ExAppVersionHeader)")]
    overlay = REPO / "ccbe" / "context_chat_backend"
    for path in overlay.rglob("*.py"):
        assert "add_middleware(" not in path.read_text(), path


def test_the_ccbe_patches_touch_no_overlay_path_and_no_onyx_file() -> None:
    overlay = overlay_files()
    assert overlay, "patches/ccbe/overlay.txt installs nothing"
    for generation in GENERATIONS:
        for patch in patch_set(generation).values():
            assert patch.path not in overlay
            assert not patch.path.startswith(("backend/", "web/"))


# ------------------------------------------------------------------ the tool on pre-images
def preimage_tree(root: Path, generation: str) -> Path:
    """A tree holding, for each patched file, its hunks' pre-images in order (separated by
    filler lines), plus the file that marks a CCBE checkout."""
    root.mkdir(parents=True)
    for patch in patch_set(generation).values():
        blocks = []
        for i, hunk in enumerate(patch.hunks):
            lines = [line[1:] for line in hunk.splitlines()[1:] if line[:1] in (" ", "-")]
            if i:
                blocks.append([f"# filler between hunks {i} and {i + 1} (not upstream text)"])
            blocks.append(lines)
        target = root / patch.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(line for block in blocks for line in block) + "\n")
    marker = root / "context_chat_backend" / "vectordb" / "base.py"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("# stands in for CCBE's BaseVectorDB module\n")
    return root


@pytest.mark.parametrize("generation", GENERATIONS)
def test_apply_check_install_revert_on_the_patches_own_preimages(
    tmp_path: Path, generation: str
) -> None:
    tree = preimage_tree(tmp_path / "ccbe", generation)
    pristine = snapshot(tree)
    gen = ("--generation", generation)

    check = apply("--check", "--host", "ccbe", *gen, tree)
    assert check.returncode == 0, check.stdout + check.stderr
    assert (
        f"check passed: {len(overlay_files())} overlay files, {len(CLAIMS[generation])} patches"
        in check.stdout
    )
    assert snapshot(tree) == pristine, "--check changed the tree"

    first = apply("--host", "ccbe", *gen, tree)
    assert first.returncode == 0, first.stdout + first.stderr
    after = snapshot(tree)
    changed = {p for p in pristine if after.get(p) != pristine[p]}
    added = set(after) - set(pristine)
    assert changed == {c[0] for c in CLAIMS[generation].values()}
    assert added == overlay_files() | {MANIFEST}
    for rel in overlay_files():
        source = REPO / "ccbe" / rel
        assert after[rel] == (source if source.exists() else REPO / "backend" / rel).read_bytes()

    again = apply("--host", "ccbe", *gen, tree)
    assert again.returncode == 0 and "(0 new or changed)" in again.stdout
    assert again.stdout.count(": applied") == len(CLAIMS[generation]), again.stdout
    assert snapshot(tree) == after

    reverted = apply("--revert", "--host", "ccbe", *gen, tree)
    assert reverted.returncode == 0, reverted.stderr
    assert snapshot(tree) == pristine


@pytest.mark.parametrize("generation", GENERATIONS)
def test_drift_stops_before_any_change_naming_file_and_hunk(
    tmp_path: Path, generation: str
) -> None:
    tree = preimage_tree(tmp_path / "ccbe", generation)
    patch = patch_set(generation)["dyn_loader.patch"]
    source = tree / patch.path
    gone = next(line for line in patch.removed if "get_vector_db(" in line)
    source.write_text(source.read_text().replace(gone, gone.replace("get_vector_db", "find_db")))
    before = snapshot(tree)
    result = apply("--host", "ccbe", "--generation", generation, tree)
    assert result.returncode == 1
    assert "dyn_loader.patch does not apply to this CCBE checkout (upstream drift)" in result.stderr
    assert f"{patch.path}: hunk @@" in result.stderr and gone.strip() in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(tree) == before


def test_generation_detection_and_unknown_generations(tmp_path: Path) -> None:
    tree = preimage_tree(tmp_path / "ccbe", "5.4")
    # no <version> in this info.xml pre-image: the tree decides (task_fetcher.py: 5.4)
    detected = apply("--check", "--host", "ccbe", tree)
    assert "CCBE generation 5.4 (context_chat_backend/task_fetcher.py exists)" in detected.stdout
    info = tree / "appinfo" / "info.xml"
    info.write_text(info.read_text() + "\t<version>5.9.1</version>\n")
    unknown = apply("--check", "--host", "ccbe", tree)
    assert unknown.returncode == 1
    assert "no patch set for CCBE 5.9 (appinfo/info.xml says 5.9.1)" in unknown.stderr
    assert "v5.3 v5.4" in unknown.stderr
    not_ccbe = apply("--check", "--host", "ccbe", tmp_path)
    assert (
        not_ccbe.returncode == 1 and "does not look like a Context Chat Backend" in not_ccbe.stderr
    )
    bad_scope = apply("--check", "--host", "ccbe", "--only", "web", tree)
    assert bad_scope.returncode == 2 and "app or appinfo" in bad_scope.stderr


def test_only_app_leaves_appinfo_alone(tmp_path: Path) -> None:
    """CCBE's image holds no appinfo/: Dockerfile.ccbe runs `--only app`."""
    tree = preimage_tree(tmp_path / "ccbe", "5.4")
    shutil.rmtree(tree / "appinfo")
    result = apply("--host", "ccbe", "--generation", "5.4", "--only", "app", tree)
    assert result.returncode == 0, result.stderr
    assert "info_xml.patch" not in result.stdout
    assert not (tree / "appinfo").exists()


# ------------------------------------------------------------------ a real checkout
def real_checkout() -> tuple[Path, str]:
    source = os.environ.get("CCBE_SOURCE_DIR", "")
    if not source:
        pytest.skip("the real-CCBE patch checks need CCBE_SOURCE_DIR (a v5.3.x or v5.4.x checkout)")
    root = Path(source)
    version = re.search(r"<version>(\d+\.\d+)\.", (root / "appinfo" / "info.xml").read_text())
    assert version, "CCBE_SOURCE_DIR has no appinfo/info.xml <version>"
    return root, version.group(1)


def test_the_patch_set_fits_a_real_checkout_and_reverts_byte_for_byte(tmp_path: Path) -> None:
    source, generation = real_checkout()
    tree = tmp_path / "ccbe"
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns(".git"))
    pristine = snapshot(tree)
    check = apply("--check", "--host", "ccbe", tree)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"CCBE generation {generation} (appinfo/info.xml says" in check.stdout
    installed = apply("--host", "ccbe", tree)
    assert installed.returncode == 0, installed.stderr
    after = snapshot(tree)
    changed = {p for p in pristine if after.get(p) != pristine[p]}
    assert changed == {c[0] for c in CLAIMS[generation].values()}
    assert set(after) - set(pristine) == overlay_files() | {MANIFEST}
    assert apply("--revert", "--host", "ccbe", tree).returncode == 0
    assert snapshot(tree) == pristine
    assert filecmp.cmp(tree / "main.py", source / "main.py", shallow=False)
