"""Recipes of ``benchmarks/make_benign_set.py`` for the deep-learning frameworks: torch (state dicts, checkpoints,
TorchScript, ``torch.export``, ONNX, safetensors), keras 3 and gguf. Each writes tiny models built in code; nothing
is downloaded, nothing is loaded back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from make_benign_set import SetWriter

__all__ = ["gguf_files", "keras_files", "torch_files"]


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
