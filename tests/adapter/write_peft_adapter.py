#!/usr/bin/env python3
"""Writes a PEFT LoRA adapter folder the way PEFT's save_pretrained does,
independently of yuan: adapter_config.json + adapter_model.safetensors
(hand-written safetensors: u64 LE header length, JSON header, raw data), with
PEFT's tensor names. Also writes each tensor's float32 values to
<out>/expected/<name>.f32 (raw little-endian) for the C++ test to compare.

usage: write_peft_adapter.py OUT_DIR N_EMBD N_HEAD N_HEAD_KV N_FF N_LAYER [ARCH]

ARCH (optional) is recorded as yuan's export would ("yuan.architecture" in the
safetensors __metadata__); PEFT itself writes only {"format": "pt"}.
"""
import json
import os
import struct
import sys

import torch


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, t in tensors:
        data = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype != torch.float32 \
            else t.contiguous().numpy().tobytes()
        dtype = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def llama_permute(w, n_head):
    # convert_hf_to_gguf.py, LlamaModel.permute (n_head already n_head_kv for k)
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def main():
    out = sys.argv[1]
    n_embd, n_head, n_head_kv, n_ff, n_layer = map(int, sys.argv[2:7])
    hd = n_embd // n_head
    r, alpha = 4, 8
    torch.manual_seed(7)
    shapes = {  # module -> (out, in)
        "self_attn.q_proj": (n_head * hd, n_embd),
        "self_attn.k_proj": (n_head_kv * hd, n_embd),
        "self_attn.v_proj": (n_head_kv * hd, n_embd),
        "mlp.down_proj": (n_embd, n_ff),
    }
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    tensors = []
    for layer in range(n_layer):
        for mod, (o, i) in shapes.items():
            prefix = f"base_model.model.model.layers.{layer}.{mod}"
            a = torch.randn(r, i) * 0.1
            b = torch.randn(o, r) * 0.1
            if mod == "mlp.down_proj":  # one half-precision pair, as in fp16 training
                a, b = a.half(), b.half()
            tensors.append((prefix + ".lora_A.weight", a))
            tensors.append((prefix + ".lora_B.weight", b))
    for name, t in tensors:
        t.float().numpy().tofile(os.path.join(out, "expected", name + ".f32"))
        # What llama.cpp's converters make of it for a llama base: the rows of
        # q/k (and so of their lora_B) permuted by LlamaModel.permute.
        if ".lora_B." in name and ("q_proj" in name or "k_proj" in name):
            heads = n_head if "q_proj" in name else n_head_kv
            llama_permute(t.float(), heads).numpy().tofile(
                os.path.join(out, "expected", name + ".llama.f32"))
    metadata = {"format": "pt"}
    if len(sys.argv) > 7:
        metadata.update({"yuan.architecture": sys.argv[7], "yuan.n_head": str(n_head),
                         "yuan.n_head_kv": str(n_head_kv)})
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors, metadata)
    config = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "test/tiny-llama",
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
        "layers_pattern": None, "layers_to_transform": None, "lora_alpha": alpha,
        "lora_dropout": 0.05, "modules_to_save": None, "peft_type": "LORA", "r": r,
        "rank_pattern": {}, "revision": None, "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"],
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": True,
    }
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print("ok")


if __name__ == "__main__":
    main()
