#!/usr/bin/env python3
"""An independent PyTorch reference for the trainer's loss and gradients.

For each case of a JSON file written by tests/trainer/grad_reference_test.cpp
it builds the decoder of a GGUF base (llama, qwen2, qwen3, hunyuan-dense),
makes the case's trainable tensors autograd leaves (their current values come
with the case), computes the training loss of a packed batch and its
gradients with autograd, and writes them out.

Written from HF transformers' modeling code (modeling_llama.py,
modeling_qwen2.py, modeling_qwen3.py, modeling_hunyuan_v1_dense.py) and
PEFT's LoRA layer, not from yuan's C++ (trainer/*.cpp). The architecture
helpers come from tests/reference/reference_model.py (the inference
reference); the math is float64.

Semantics:
  * loss = sum over positions with target != -1 of -log_softmax(logits)[target];
  * a row packs documents (doc ids 0, 0, 1, 1, 1, ...): positions restart at
    each document and attention is causal within a document only;
  * llama q/k rows in GGUF are llama.cpp's permutation of HF's; the
    projection output (W x + scaling * B A x, both in GGUF row order, as
    yuan's adapters store B) is un-permuted before HF's rotate_half RoPE;
  * LoRA (PEFT, no dropout): y = x W^T + scaling * (x A^T) B^T with
    scaling = alpha / rank, or alpha / sqrt(rank) with use_rslora;
    A is [rank x in], B is [out x rank];
  * Q8_0 base weights are dequantized (scale * int8, blocks of 32).

Input (argv[1]), JSON:
  {"cases": [{"model": "base.gguf",
              "mode": "lora" | "partial" | "full",
              "lora": {"rank": 4, "alpha": 8, "use_rslora": false},
              "mutate": "" | "no-eps" | "rope-style" | "no-doc-mask" | "no-lora-scaling",
              "batch": {"n_rows": R, "seq_len": T, "tokens": [...],
                        "targets": [...], "doc": [...]},
              "params": [{"name": "blk.0.attn_q.weight.lora_a", "ne": [in, rank]}, ...],
              "values": "values.f32",   # every param's value, float32, in order
              "grads": "grads.f64"}]}   # written: every param's gradient, float64
Param names are GGUF names, LoRA ones "<target>.lora_a" / ".lora_b"; ne is
in ggml order (ne[0] contiguous), so the torch shape is ne reversed.
Prints {"cases": [{"loss": L, "n_targets": N}, ...]} on stdout.
--mutate (one of the names above) applies that deliberate bug to every case
on top of the case's own "mutate": negative controls for the test.
Needs torch and numpy (Debian: python3-torch, python3-numpy).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from reference_model import _Reader, llama3_inv_freq, rms_norm, rotate_half  # noqa: E402,F401

DTYPE = torch.float64
MUTATIONS = ("no-eps", "rope-style", "no-doc-mask", "no-lora-scaling")

# ---- GGUF: metadata and F32 / F16 / Q8_0 tensors ------------------------------

GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8


def dequantize_q8_0(data, offset, count):
    # block_q8_0: an f16 scale d then 32 int8 quants; x = d * q
    n_blocks = count // 32
    raw = np.frombuffer(data, dtype=np.uint8, count=n_blocks * 34, offset=offset).reshape(n_blocks, 34)
    d = raw[:, :2].copy().view(np.float16).astype(np.float64)
    q = raw[:, 2:].copy().view(np.int8).astype(np.float64)
    return (d * q).reshape(count)


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    r = _Reader(data)
    r.pos = 4
    if r.take("<I") < 2:
        raise ValueError(f"{path}: GGUF version < 2")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        ne = [r.take("<Q") for _ in range(r.take("<I"))]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        count = int(np.prod(ne))
        if ggml_type == GGML_F32:
            arr = np.frombuffer(data, dtype=np.float32, count=count, offset=base + offset).astype(np.float64)
        elif ggml_type == GGML_F16:
            arr = np.frombuffer(data, dtype=np.float16, count=count, offset=base + offset).astype(np.float64)
        elif ggml_type == GGML_Q8_0:
            arr = dequantize_q8_0(data, base + offset, count)
        else:
            raise ValueError(f"tensor {name}: ggml type {ggml_type} is not F32/F16/Q8_0")
        tensors[name] = torch.from_numpy(arr.reshape(list(reversed(ne))).copy())
    return meta, tensors


# ---- the decoder, with trainable leaves ------------------------------------------

_LORA_TARGETS = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o",
                 "ffn_gate": "gate", "ffn_up": "up", "ffn_down": "down"}


class TrainModel:
    def __init__(self, path, mutate=()):
        self.mutate = set(mutate)
        self.meta, self.base = read_gguf(path)
        m = self.meta
        self.arch = a = m["general.architecture"]
        if a not in ("llama", "qwen2", "qwen3", "hunyuan-dense"):
            raise ValueError(f"architecture {a} is not supported")
        if "rope_freqs.weight" in self.base:
            raise ValueError("llama3 rope scaling (rope_freqs.weight) is not supported here")
        self.n_embd = m[f"{a}.embedding_length"]
        self.n_layer = m[f"{a}.block_count"]
        self.n_head = m[f"{a}.attention.head_count"]
        self.n_head_kv = m.get(f"{a}.attention.head_count_kv", self.n_head)
        self.head_dim = m.get(f"{a}.attention.key_length", self.n_embd // self.n_head)
        self.eps = m.get(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
        if "no-eps" in self.mutate:
            self.eps = 0.0
        theta = m.get(f"{a}.rope.freq_base", 10000.0)
        d = self.head_dim
        alpha = m.get(f"{a}.rope.scaling.alpha", 0.0)
        if a == "hunyuan-dense" and alpha > 0:
            theta = theta * alpha ** (d / (d - 2))  # HunYuanDenseV1RotaryEmbedding (dynamic, alpha)
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=DTYPE) / d))
        if m.get(f"{a}.rope.scaling.type", "none") == "linear":
            inv_freq = inv_freq / m[f"{a}.rope.scaling.factor"]
        self.inv_freq = inv_freq
        self.tied = "output.weight" not in self.base

    def bind(self, params, lora_scaling):
        """params: {name: tensor}; trainable GGUF tensors replace the base's,
        LoRA pairs attach to their targets."""
        self.w = dict(self.base)
        self.lora = {}
        for name, t in params.items():
            if name.endswith(".lora_a") or name.endswith(".lora_b"):
                target = name[:-len(".lora_a")]
                if target not in self.base:
                    raise ValueError(f"{name}: no base weight {target}")
                self.lora.setdefault(target, {})[name[-1]] = t
            else:
                if name not in self.base:
                    raise ValueError(f"{name}: not a tensor of the base")
                if tuple(t.shape) != tuple(self.base[name].shape):
                    raise ValueError(f"{name}: shape {tuple(t.shape)} != base {tuple(self.base[name].shape)}")
                self.w[name] = t
        for target, ab in self.lora.items():
            out_f, in_f = self.base[target].shape
            a, b = ab.get("a"), ab.get("b")
            if a is None or b is None:
                raise ValueError(f"{target}: LoRA needs both lora_a and lora_b")
            r = a.shape[0]
            if tuple(a.shape) != (r, in_f) or tuple(b.shape) != (out_f, r):
                raise ValueError(f"{target}: LoRA A {tuple(a.shape)} / B {tuple(b.shape)} do not fit "
                                 f"[{out_f} x {in_f}] at rank {r}")
        self.lora_scaling = lora_scaling

    def proj(self, name, x):
        # y = x W^T (+ scaling * (x A^T) B^T), rows in GGUF order
        y = x @ self.w[name].T
        ab = self.lora.get(name)
        if ab is not None:
            y = y + self.lora_scaling * ((x @ ab["a"].T) @ ab["b"].T)
        return y

    def unpermute_cols(self, y, n_head):
        # Inverse of llama.cpp convert_hf_to_gguf.py LlamaModel.permute on the
        # output features: GGUF feature (h, i, s) is HF feature (h, s, i).
        T, rows = y.shape
        half = rows // n_head // 2
        return y.reshape(T, n_head, half, 2).transpose(2, 3).reshape(T, rows)

    def rope(self, x, pos):
        # x: (heads, T, hd); HF apply_rotary_pos_emb with rotate_half
        freqs = torch.outer(pos.to(DTYPE), self.inv_freq)
        if "rope-style" in self.mutate and self.arch != "llama":
            # wrong style: adjacent pairs (GPT-J / ggml "normal") instead of halves
            cos, sin = freqs.cos().repeat_interleave(2, -1), freqs.sin().repeat_interleave(2, -1)
            x2 = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).reshape(x.shape)
            return x * cos + x2 * sin
        emb = torch.cat((freqs, freqs), dim=-1)
        return x * emb.cos() + rotate_half(x) * emb.sin()

    def attention(self, l, x, pos, allowed):
        p = f"blk.{l}."
        T = x.shape[0]
        hd, nh, nkv = self.head_dim, self.n_head, self.n_head_kv
        q, k, v = (self.proj(p + n, x) for n in ("attn_q.weight", "attn_k.weight", "attn_v.weight"))
        if self.arch == "llama" and "rope-style" not in self.mutate:
            q, k = self.unpermute_cols(q, nh), self.unpermute_cols(k, nkv)
        if self.arch == "qwen2":  # q/k/v_proj with bias=True
            q = q + self.w[p + "attn_q.bias"]
            k = k + self.w[p + "attn_k.bias"]
            v = v + self.w[p + "attn_v.bias"]
        q = q.view(T, nh, hd).transpose(0, 1)
        k = k.view(T, nkv, hd).transpose(0, 1)
        v = v.view(T, nkv, hd).transpose(0, 1)
        if self.arch == "qwen3":  # Qwen3Attention: q_norm / k_norm before RoPE
            q = rms_norm(q, self.w[p + "attn_q_norm.weight"], self.eps)
            k = rms_norm(k, self.w[p + "attn_k_norm.weight"], self.eps)
        q, k = self.rope(q, pos), self.rope(k, pos)
        if self.arch == "hunyuan-dense":  # query/key_layernorm after RoPE
            q = rms_norm(q, self.w[p + "attn_q_norm.weight"], self.eps)
            k = rms_norm(k, self.w[p + "attn_k_norm.weight"], self.eps)
        rep = nh // nkv  # repeat_kv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        scores = (q @ k.transpose(1, 2)) * hd ** -0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        out = out.transpose(0, 1).reshape(T, nh * hd)
        return self.proj(p + "attn_output.weight", out)

    def mlp(self, l, x):
        p = f"blk.{l}."
        g = self.proj(p + "ffn_gate.weight", x)
        u = self.proj(p + "ffn_up.weight", x)
        return self.proj(p + "ffn_down.weight", torch.nn.functional.silu(g) * u)

    def row_loss(self, tokens, targets, doc):
        T = len(tokens)
        doc = torch.tensor(doc, dtype=torch.long)
        if "no-doc-mask" in self.mutate:
            doc = torch.zeros_like(doc)  # one document: positions run on, attention crosses
        idx = torch.arange(T)
        pos = [0] * T  # restarts at each document
        for i in range(1, T):
            pos[i] = 0 if doc[i] != doc[i - 1] else pos[i - 1] + 1
        pos = torch.tensor(pos)
        allowed = (idx.unsqueeze(0) <= idx.unsqueeze(1)) & (doc.unsqueeze(0) == doc.unsqueeze(1))
        x = self.w["token_embd.weight"][torch.tensor(tokens, dtype=torch.long)]
        for l in range(self.n_layer):
            p = f"blk.{l}."
            x = x + self.attention(l, rms_norm(x, self.w[p + "attn_norm.weight"], self.eps), pos, allowed)
            x = x + self.mlp(l, rms_norm(x, self.w[p + "ffn_norm.weight"], self.eps))
        x = rms_norm(x, self.w["output_norm.weight"], self.eps)
        head = self.w["token_embd.weight"] if self.tied else self.w["output.weight"]
        logp = torch.log_softmax(x @ head.T, dim=-1)
        tgt = torch.tensor(targets, dtype=torch.long)
        keep = tgt != -1
        n = int(keep.sum())
        if n == 0:
            return logp.sum() * 0.0, 0
        return -logp[keep.nonzero().squeeze(1), tgt[keep]].sum(), n


def run_case(case, extra_mutate, models):
    mutate = [m for m in (case.get("mutate", ""), extra_mutate) if m]
    for m in mutate:
        if m not in MUTATIONS:
            raise ValueError(f"unknown mutation {m}")
    key = (case["model"], tuple(mutate))
    if key not in models:
        models[key] = TrainModel(case["model"], mutate)
    model = models[key]
    values = np.fromfile(case["values"], dtype="<f4").astype(np.float64)
    params, names, off = {}, [], 0
    for p in case["params"]:
        ne = [int(n) for n in p["ne"]]
        count = int(np.prod(ne))
        if off + count > values.size:
            raise ValueError(f"{case['values']}: too short for {p['name']}")
        t = torch.from_numpy(values[off:off + count].reshape(list(reversed(ne))).copy())
        t.requires_grad_(True)
        params[p["name"]] = t
        names.append(p["name"])
        off += count
    if off != values.size:
        raise ValueError(f"{case['values']}: {values.size} values for {off} parameter elements")
    scaling = 0.0
    if case["mode"] == "lora":
        lo = case["lora"]
        r, alpha = lo["rank"], lo["alpha"]
        scaling = alpha / math.sqrt(r) if lo.get("use_rslora", False) else alpha / r
        if "no-lora-scaling" in mutate:
            scaling = 1.0
    model.bind(params, scaling)
    b = case["batch"]
    R, T = b["n_rows"], b["seq_len"]
    tokens, targets = b["tokens"], b["targets"]
    doc = b.get("doc") or [0] * (R * T)
    if len(tokens) != R * T or len(targets) != R * T or len(doc) != R * T:
        raise ValueError("batch sizes do not match n_rows * seq_len")
    loss, n_targets = torch.zeros((), dtype=DTYPE), 0
    for r in range(R):
        s = slice(r * T, (r + 1) * T)
        l, n = model.row_loss(tokens[s], targets[s], doc[s])
        loss, n_targets = loss + l, n_targets + n
    loss.backward()
    grads = [params[n].grad if params[n].grad is not None else torch.zeros_like(params[n]) for n in names]
    flat = torch.cat([g.reshape(-1) for g in grads]) if grads else torch.zeros(0, dtype=DTYPE)
    flat.numpy().astype("<f8").tofile(case["grads"])
    return {"loss": float(loss), "n_targets": n_targets}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", help="the JSON case file written by the test")
    ap.add_argument("--mutate", choices=MUTATIONS, help="a deliberate bug for every case")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(args.cases) as f:
        spec = json.load(f)
    models, results = {}, []
    for case in spec["cases"]:
        results.append(run_case(case, args.mutate, models))
    json.dump({"cases": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
