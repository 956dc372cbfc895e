#!/usr/bin/env python3
"""An independent PyTorch reference for yuan's decoder architectures.

Reads an F32 GGUF file (llama, qwen2, qwen3 or hunyuan-dense), runs the
forward pass as the published modeling code does, and prints JSON:

  {"logits": [[n_vocab floats] for each prompt token],
   "greedy": [n_predict ids, greedy continuation of the prompt]}

Written from HF transformers' modeling_llama.py (incl.
_compute_llama3_parameters), modeling_qwen2.py, modeling_qwen3.py and
modeling_hunyuan_v1_dense.py, not from yuan's C++. The math is float64. Two
things follow llama.cpp's storage, which yuan reproduces (docs/engine.md):

  * llama q/k weights in GGUF are permuted by llama.cpp's converter so that
    adjacent-pair RoPE equals HF's rotate_half; we undo that permutation and
    use rotate_half, as HF does on the original checkpoint.
  * unless --exact-attention, attention follows ggml's CPU flash-attention
    numerics with an f16 KV cache: q, k and v rounded to float16, one pass
    with an online softmax, the value accumulator rounded to float16 after
    each update (ggml_vec_mad_f16 / ggml_vec_scale_f16). This is storage
    precision, not model math; the softmax itself is float64.

Usage: reference_model.py MODEL.gguf --tokens 1,2,3 [--n-predict 16]
       [--llama3 FACTOR,LOW_FREQ_FACTOR,HIGH_FREQ_FACTOR,ORIGINAL_CTX]
       [--exact-attention] [--float32] [--mutate WHAT] [--peft ADAPTER_DIR]
--llama3 takes HF's rope_scaling values (the GGUF holds only llama.cpp's
precomputed rope_freqs.weight, which this reference ignores on purpose).
--mutate introduces one deliberate bug (negative controls for the test).
--peft merges a PEFT LoRA adapter folder (adapter_config.json +
adapter_model.safetensors, read here independently) into the base weights,
W + scaling * B @ A in HF's row order (after the llama q/k un-permutation),
scaling = lora_alpha / r (or / sqrt(r) with use_rslora), as PEFT's
merge_and_unload does.
Needs torch and numpy (Debian: python3-torch, python3-numpy).
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch

# ---- a tiny GGUF reader: metadata and F32 / F16 tensors ---------------------

DTYPE = torch.float64  # --float32 switches it (to measure float noise)

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, t):
        if t in _SCALARS:
            return self.take(_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            item_type, n = self.take("<I"), self.take("<Q")
            return [self.value(item_type) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {t}")


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.pos = 4
    version = r.take("<I")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        ggml_type, offset = r.take("<I"), r.take("<Q")
        infos.append((name, ne, ggml_type, offset))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        count = int(np.prod(ne))
        if ggml_type == 8:  # Q8_0: blocks of an f16 scale and 32 int8 quants, value = d * q
            blocks = np.frombuffer(data, dtype=np.dtype([("d", "<f2"), ("qs", "i1", (32,))]),
                                   count=count // 32, offset=base + offset)
            arr = (blocks["d"].astype(np.float64)[:, None] * blocks["qs"]).reshape(-1)
        else:
            dtype = {0: np.float32, 1: np.float16}.get(ggml_type)
            if dtype is None:
                raise ValueError(f"tensor {name}: ggml type {ggml_type} is not F32/F16/Q8_0")
            arr = np.frombuffer(data, dtype=dtype, count=count, offset=base + offset)
        # ggml ne[0] is the contiguous axis: numpy shape is ne reversed.
        tensors[name] = torch.from_numpy(arr.astype(np.float64 if DTYPE == torch.float64 else np.float32).reshape(list(reversed(ne))))
    return meta, tensors


# ---- PEFT LoRA adapters: safetensors reader and merged deltas ------------------

_PEFT_MODULES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start:base + end]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype=np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"tensor {name}: dtype {dt} is not supported")
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"])).to(DTYPE)
    return out


def peft_deltas(folder):
    """{GGUF weight name: scaling * B @ A} in HF's row order."""
    import os
    import re
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora", False) else alpha / r
    t = read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    deltas = {}
    for name, a in t.items():
        if not name.endswith(".lora_A.weight"):
            continue
        module = name[:-len(".lora_A.weight")]
        m = re.match(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)$", module)
        if m is None or m.group(2) not in _PEFT_MODULES:
            raise ValueError(f"unsupported PEFT module {module}")
        b = t[module + ".lora_B.weight"]
        deltas[f"blk.{m.group(1)}.{_PEFT_MODULES[m.group(2)]}.weight"] = scaling * (b @ a)
    return deltas


# ---- the model ---------------------------------------------------------------


def rms_norm(x, w, eps):
    # HF LlamaRMSNorm / Qwen2RMSNorm / Qwen3RMSNorm / HunYuanDenseV1RMSNorm
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Reference:
    def __init__(self, path, llama3=None, ggml_f16=True, mutate=None, peft=None):
        self.mutate = mutate  # a deliberate bug, to show the comparison would catch it
        self.deltas = peft_deltas(peft) if peft else {}  # merged LoRA, HF row order
        self.meta, self.t = read_gguf(path)
        self.arch = a = self.meta["general.architecture"]
        if a not in ("llama", "qwen2", "qwen3", "hunyuan-dense"):
            raise ValueError(f"architecture {a} is not supported")
        m = self.meta
        self.n_embd = m[f"{a}.embedding_length"]
        self.n_layer = m[f"{a}.block_count"]
        self.n_head = m[f"{a}.attention.head_count"]
        self.n_head_kv = m.get(f"{a}.attention.head_count_kv", self.n_head)
        self.head_dim = m.get(f"{a}.attention.key_length", self.n_embd // self.n_head)
        self.eps = m.get(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
        self.ggml_f16 = ggml_f16
        theta = m.get(f"{a}.rope.freq_base", 10000.0)
        d = self.head_dim
        alpha = m.get(f"{a}.rope.scaling.alpha", 0.0)
        if a == "hunyuan-dense" and alpha > 0 and self.mutate != "no-alpha":
            # HunYuanDenseV1RotaryEmbedding, rope_type "dynamic" with alpha
            theta = theta * alpha ** (d / (d - 2))
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=DTYPE) / d))
        if llama3 is not None:
            inv_freq = llama3_inv_freq(inv_freq, *llama3)
        if m.get(f"{a}.rope.scaling.type", "none") == "linear":
            inv_freq = inv_freq / m[f"{a}.rope.scaling.factor"]
        self.inv_freq = inv_freq
        self.embd = self.t["token_embd.weight"]
        self.lm_head = self.t.get("output.weight", self.embd)  # tie_word_embeddings

    def weight(self, name):
        return self.t[name]

    def merged(self, name, w):
        # w (in HF's row order) plus the adapter's delta for that weight
        d = self.deltas.get(name)
        return w if d is None else w + d

    def unpermute(self, w, n_head):
        # Inverse of llama.cpp convert_hf_to_gguf.py's LlamaModel.permute:
        # GGUF row (h, i, s) holds HF row (h, s, i).
        rows = w.shape[0]
        half = rows // n_head // 2
        return w.reshape(n_head, half, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)

    def attention(self, l, x):
        p = f"blk.{l}."
        T = x.shape[0]
        hd, nh, nkv = self.head_dim, self.n_head, self.n_head_kv
        wq, wk, wv = (self.weight(p + n) for n in ("attn_q.weight", "attn_k.weight", "attn_v.weight"))
        if self.arch == "llama" and self.mutate != "no-unpermute":
            wq, wk = self.unpermute(wq, nh), self.unpermute(wk, nkv)
        wq, wk, wv = (self.merged(p + n, w) for n, w in
                      (("attn_q.weight", wq), ("attn_k.weight", wk), ("attn_v.weight", wv)))
        q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
        if self.arch == "qwen2" and self.mutate != "no-bias":  # q/k/v_proj have bias=True
            q = q + self.weight(p + "attn_q.bias")
            k = k + self.weight(p + "attn_k.bias")
            v = v + self.weight(p + "attn_v.bias")
        q = q.view(T, nh, hd).transpose(0, 1)  # (heads, T, hd)
        k = k.view(T, nkv, hd).transpose(0, 1)
        v = v.view(T, nkv, hd).transpose(0, 1)
        norm_before = self.arch == "qwen3"  # Qwen3Attention: q_norm / k_norm before RoPE
        norm_after = self.arch == "hunyuan-dense"  # query/key_layernorm after RoPE
        if self.mutate == "norm-order":
            norm_before, norm_after = norm_after, norm_before
        if norm_before:
            q = rms_norm(q, self.weight(p + "attn_q_norm.weight"), self.eps)
            k = rms_norm(k, self.weight(p + "attn_k_norm.weight"), self.eps)
        pos = torch.arange(T, dtype=DTYPE)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if norm_after:
            q = rms_norm(q, self.weight(p + "attn_q_norm.weight"), self.eps)
            k = rms_norm(k, self.weight(p + "attn_k_norm.weight"), self.eps)
        if self.ggml_f16:
            q, k, v = (f16(t) for t in (q, k, v))
        rep = nh // nkv  # repeat_kv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        scores = (q @ k.transpose(1, 2)) * hd ** -0.5
        if self.ggml_f16:
            out = ggml_f16_attention(scores, v)
        else:
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(mask, float("-inf"))
            out = torch.softmax(scores, dim=-1) @ v  # (heads, T, hd)
        out = out.transpose(0, 1).reshape(T, nh * hd)
        return out @ self.merged(p + "attn_output.weight", self.weight(p + "attn_output.weight")).T

    def mlp(self, l, x):
        p = f"blk.{l}."
        w = {n: self.merged(p + n, self.weight(p + n))
             for n in ("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")}
        g = x @ w["ffn_gate.weight"].T
        u = x @ w["ffn_up.weight"].T
        return (torch.nn.functional.silu(g) * u) @ w["ffn_down.weight"].T

    def logits(self, ids):
        x = self.embd[torch.tensor(ids, dtype=torch.long)]
        for l in range(self.n_layer):
            p = f"blk.{l}."
            x = x + self.attention(l, rms_norm(x, self.weight(p + "attn_norm.weight"), self.eps))
            x = x + self.mlp(l, rms_norm(x, self.weight(p + "ffn_norm.weight"), self.eps))
        x = rms_norm(x, self.weight("output_norm.weight"), self.eps)
        return x @ self.lm_head.T


def f16(t):
    return t.to(torch.float16).to(DTYPE)


def ggml_f16_attention(scores, v):
    """Causal softmax(scores) @ v as ggml's CPU flash-attention kernel
    computes it with an f16 V cache: one pass over the positions with an
    online softmax (running max M, running sum S) and the value accumulator
    rounded to float16 after every update. scores: (heads, T, T), v: (heads,
    T, hd); returns (heads, T, hd)."""
    heads, T, hd = v.shape[0], scores.shape[1], v.shape[2]
    M = torch.full((heads, T), float("-inf"), dtype=DTYPE)
    S = torch.zeros((heads, T), dtype=DTYPE)
    acc = torch.zeros((heads, T, hd), dtype=DTYPE)
    query_pos = torch.arange(T)
    for p in range(T):
        active = (query_pos >= p).unsqueeze(0).expand(heads, T)  # causal
        s = scores[:, :, p]
        grow = s > M
        ms = torch.where(grow, torch.exp(M - s), torch.ones_like(s))
        vs = torch.where(grow, torch.ones_like(s), torch.exp(s - M))
        scaled = torch.where(grow.unsqueeze(-1), f16(acc * ms.unsqueeze(-1)), acc)
        new_acc = f16(scaled + v[:, p, :].unsqueeze(1) * vs.unsqueeze(-1))
        acc = torch.where(active.unsqueeze(-1), new_acc, acc)
        S = torch.where(active, S * ms + vs, S)
        M = torch.where(active & grow, s, M)
    return acc / S.unsqueeze(-1)


def llama3_inv_freq(inv_freq, factor, low_freq_factor, high_freq_factor, old_context_len):
    # transformers modeling_rope_utils._compute_llama3_parameters
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated prompt ids")
    ap.add_argument("--n-predict", type=int, default=16)
    ap.add_argument("--llama3", help="FACTOR,LOW,HIGH,ORIGINAL_CTX (HF rope_scaling llama3)")
    ap.add_argument("--mutate", choices=["no-unpermute", "no-bias", "norm-order", "no-alpha"],
                    help="introduce a deliberate bug (negative controls for the test)")
    ap.add_argument("--float32", action="store_true", help="compute in float32, not float64")
    ap.add_argument("--exact-attention", action="store_true",
                    help="float64 softmax attention, no f16 rounding of q/k/v")
    ap.add_argument("--peft", help="a PEFT LoRA adapter folder to merge into the base weights")
    args = ap.parse_args()
    global DTYPE
    if args.float32:
        DTYPE = torch.float32
    llama3 = None
    if args.llama3:
        f, lo, hi, ctx = args.llama3.split(",")
        llama3 = (float(f), float(lo), float(hi), float(ctx))
    ref = Reference(args.model, llama3=llama3, ggml_f16=not args.exact_attention,
                    mutate=args.mutate, peft=args.peft)
    ids = [int(t) for t in args.tokens.split(",")]
    with torch.no_grad():
        prompt_logits = ref.logits(ids)
        seq = list(ids)
        greedy = []
        for _ in range(args.n_predict):
            nxt = int(torch.argmax(ref.logits(seq)[-1]))
            greedy.append(nxt)
            seq.append(nxt)
    json.dump({"logits": prompt_logits.tolist(), "greedy": greedy}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
