#!/usr/bin/env python3
"""PyTorch's side of tests/trainer/optimizer_test.cpp.

    torch_optim_reference.py SPEC.json

SPEC: {"lr", "beta1", "beta2", "eps", "weight_decay", "max_norm", "warmup",
"total", "min_ratio", "params": [{"value": [...], "decay": bool}], "grads":
[step][param][...]}. Runs, per step, clip_grad_norm_ (when max_norm > 0) and
torch.optim.AdamW (two param groups: weight decay for the decay params, 0 for
the others) under a LambdaLR schedule written here from the definition in
trainer/optimizer.h (linear warmup lr * (s + 1) / warmup, then a cosine to
lr * min_ratio at total), all in float32.

Prints JSON: {"lrs": [lr used at each step], "norms": [norm before clipping],
"values": [step][param][...] after each step, "values_all_decay": the same
with weight decay on every param (a negative control)}.
"""
import json
import math
import sys

import torch


def schedule(spec):
    warmup, total, floor = spec["warmup"], spec["total"], spec["min_ratio"]

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def run(spec, all_decay):
    params = [torch.tensor(p["value"], dtype=torch.float32, requires_grad=True)
              for p in spec["params"]]
    decay = [p for p, s in zip(params, spec["params"]) if s["decay"] or all_decay]
    no_decay = [p for p, s in zip(params, spec["params"]) if not (s["decay"] or all_decay)]
    groups = [{"params": decay, "weight_decay": spec["weight_decay"]}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]),
                            eps=spec["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule(spec))
    lrs, norms, values = [], [], []
    for step_grads in spec["grads"]:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float32)
        if spec["max_norm"] > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, spec["max_norm"])))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        values.append([p.detach().tolist() for p in params])
    return lrs, norms, values


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(1)
    lrs, norms, values = run(spec, all_decay=False)
    _, _, values_all_decay = run(spec, all_decay=True)
    print(json.dumps({"lrs": lrs, "norms": norms, "values": values,
                      "values_all_decay": values_all_decay}))


if __name__ == "__main__":
    main()
