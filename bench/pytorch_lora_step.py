#!/usr/bin/env python3
"""The PyTorch side of bench/train-vs-pytorch.sh: one LoRA training step of a
plain Llama with the bench-0.3b shapes, timed on the CPU.

  /usr/bin/python3 bench/pytorch_lora_step.py [--dtype fp32|bf16] [--threads 2]
                                              [--steps 10] [--warmup 3] [--seq 256]
                                              [--rank 16] [--alpha 32]

The model is written out here rather than taken from transformers so that
nothing but torch is needed and every op is visible: RMSNorm, RoPE, grouped-
query attention (explicit softmax: Debian's torch 1.13 has no
scaled_dot_product_attention), SwiGLU, and LoRA as an extra pair of bias-free
nn.Linear on q, k, v, o, gate, up and down, as PEFT adds them. The shapes are
bench/make_bench_model.cpp's "0.3b" (246 M frozen parameters, untied output);
weights are random normal (std 0.02): speed does not depend on the values.

The step is what yuan_bench_train times: zero_grad, forward over 1 x seq
random tokens, the mean next-token cross-entropy over all seq positions,
backward, AdamW (lr 1e-4) on the LoRA parameters only. With --dtype bf16
the frozen base and the activations are bfloat16 while the LoRA matrices and
their optimizer state stay fp32 (PEFT's default for a bf16 base); norms,
softmax and the loss are computed in fp32.

Prints a llama-bench-like markdown row with the median ms per step, median
tokens/s and the peak RSS of the whole process (getrusage), then the BLAS
torch is really running on: Debian's python3-torch links the generic
libblas.so.3, which is netlib's reference BLAS (40x slower for fp32) unless
libopenblas0-openmp is installed (scripts/install-deps.sh).
YUAN_BENCH_TORCH_CONFIG=1 also prints torch.__config__.show().
"""

import argparse
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# bench/make_bench_model.cpp, size "0.3b".
N_VOCAB = 32000
N_EMBD = 1024
N_LAYER = 16
N_HEAD = 16
N_HEAD_KV = 4
N_FF = 2816
ROPE_BASE = 10000.0
RMS_EPS = 1e-5
SEED = 1234


class RMSNorm(nn.Module):
    def __init__(self, n, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, dtype=dtype), requires_grad=False)

    def forward(self, x):
        # In fp32 whatever the activations' type, as transformers' LlamaRMSNorm.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + RMS_EPS)
        return (xf * self.weight.float()).to(x.dtype)


def frozen_linear(n_in, n_out, dtype):
    lin = nn.Linear(n_in, n_out, bias=False, dtype=dtype)
    # Drawn in the target dtype: an fp32 draw converted afterwards would
    # put an fp32 copy of the base into the peak RSS of the bf16 run.
    with torch.no_grad():
        lin.weight.normal_(0.0, 0.02)
    lin.weight.requires_grad_(False)
    return lin


class LoraLinear(nn.Module):
    """y = x W^T + (alpha / r) * B(A(x)), A Kaiming-uniform, B zero (PEFT)."""

    def __init__(self, n_in, n_out, rank, alpha, dtype):
        super().__init__()
        self.base = frozen_linear(n_in, n_out, dtype)
        self.lora_a = nn.Linear(n_in, rank, bias=False, dtype=torch.float32)
        self.lora_b = nn.Linear(rank, n_out, bias=False, dtype=torch.float32)
        nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_b.weight)
        self.scaling = alpha / rank

    def forward(self, x):
        y = self.base(x)
        lora = self.lora_b(self.lora_a(x.to(torch.float32))) * self.scaling
        return y + lora.to(y.dtype)


def rope_tables(seq, head_dim):
    inv = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    ang = torch.outer(torch.arange(seq, dtype=torch.float32), inv)  # (seq, hd/2)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    # x (batch, heads, seq, hd); pairs (x[2i], x[2i+1]) rotate together
    # (GGUF llama's "normal" RoPE order).
    xf = x.float()
    x0, x1 = xf[..., 0::2], xf[..., 1::2]
    r0 = x0 * cos - x1 * sin
    r1 = x0 * sin + x1 * cos
    return torch.stack((r0, r1), dim=-1).flatten(-2).to(x.dtype)


class Block(nn.Module):
    def __init__(self, rank, alpha, dtype):
        super().__init__()
        hd = N_EMBD // N_HEAD
        self.attn_norm = RMSNorm(N_EMBD, dtype)
        self.q = LoraLinear(N_EMBD, N_HEAD * hd, rank, alpha, dtype)
        self.k = LoraLinear(N_EMBD, N_HEAD_KV * hd, rank, alpha, dtype)
        self.v = LoraLinear(N_EMBD, N_HEAD_KV * hd, rank, alpha, dtype)
        self.o = LoraLinear(N_HEAD * hd, N_EMBD, rank, alpha, dtype)
        self.ffn_norm = RMSNorm(N_EMBD, dtype)
        self.gate = LoraLinear(N_EMBD, N_FF, rank, alpha, dtype)
        self.up = LoraLinear(N_EMBD, N_FF, rank, alpha, dtype)
        self.down = LoraLinear(N_FF, N_EMBD, rank, alpha, dtype)

    def forward(self, x, cos, sin, mask):
        b, s, _ = x.shape
        hd = N_EMBD // N_HEAD
        h = self.attn_norm(x)
        q = self.q(h).view(b, s, N_HEAD, hd).transpose(1, 2)
        k = self.k(h).view(b, s, N_HEAD_KV, hd).transpose(1, 2)
        v = self.v(h).view(b, s, N_HEAD_KV, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = N_HEAD // N_HEAD_KV
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(hd) + mask
        att = torch.softmax(scores, dim=-1).to(v.dtype) @ v
        x = x + self.o(att.transpose(1, 2).reshape(b, s, N_HEAD * hd))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, rank, alpha, dtype):
        super().__init__()
        self.tok_embd = nn.Embedding(N_VOCAB, N_EMBD, dtype=dtype)
        with torch.no_grad():
            self.tok_embd.weight.normal_(0.0, 0.02)
        self.tok_embd.weight.requires_grad_(False)
        self.layers = nn.ModuleList(Block(rank, alpha, dtype) for _ in range(N_LAYER))
        self.output_norm = RMSNorm(N_EMBD, dtype)
        self.output = frozen_linear(N_EMBD, N_VOCAB, dtype)

    def forward(self, tokens):
        s = tokens.shape[1]
        cos, sin = rope_tables(s, N_EMBD // N_HEAD)
        mask = torch.full((s, s), float("-inf")).triu(1)
        x = self.tok_embd(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.output(self.output_norm(x))


def loaded_blas():
    """The BLAS/LAPACK libraries mapped into this process (real paths)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and ("blas" in parts[5] or "lapack" in parts[5]):
                libs.add(parts[5])
    return sorted(libs)


def blas_name(libs):
    joined = " ".join(libs)
    if "openblas-openmp" in joined:
        return "OpenBLAS (OpenMP)"
    if "openblas-pthread" in joined:
        return "OpenBLAS (pthread)"
    if "openblas-serial" in joined:
        return "OpenBLAS (serial)"
    if "mkl" in joined:
        return "MKL"
    if "blis" in joined:
        return "BLIS"
    if "/blas/libblas" in joined:
        return "netlib reference"
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.seq < 1 or args.threads < 1 or args.rank < 1:
        ap.error("--steps, --seq, --threads and --rank must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
    model = Llama(args.rank, args.alpha, dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_base = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)

    # seq + 1 random tokens: inputs [0, seq), targets [1, seq]: every
    # position has a target, as in yuan_bench_train.
    gen = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, N_VOCAB, (1, args.seq + 1), generator=gen)
    tokens, targets = ids[:, :-1], ids[:, 1:]

    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        t0, cpu0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.float().view(-1, N_VOCAB), targets.reshape(-1))
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
            # All threads' CPU seconds: comparable across engines even on
            # a busy machine, where the wall-clock figures mean little.
            cpu_times.append(time.process_time() - cpu0)
        print(f"step {i + 1}/{args.warmup + args.steps}{' (warm-up)' if i < args.warmup else ''}: "
              f"loss {loss.item():.4f}, {dt * 1e3:.1f} ms", file=sys.stderr)

    med = statistics.median(times)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    libs = loaded_blas()
    test = f"lora r{args.rank} b1x{args.seq}"
    print("| engine | base | trainable | threads | test | ms/step | t/s | peak RSS |")
    print("| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| pytorch {torch.__version__} | {args.dtype} {n_base / 1e6:.0f} M | {n_train / 1e6:.2f} M"
          f" | {args.threads} | {test} | {med * 1e3:.1f} | {args.seq / med:.2f}"
          f" | {peak_kib / 1024:.1f} MiB |")
    print(f"BLAS: {blas_name(libs)} ({', '.join(libs) or 'none mapped'});"
          f" {args.steps} measured steps after {args.warmup} warm-up, median;"
          f" CPU time {statistics.median(cpu_times):.2f} s/step")
    if os.environ.get("YUAN_BENCH_TORCH_CONFIG"):
        print(torch.__config__.show())


if __name__ == "__main__":
    main()
