#!/usr/bin/python3
# Why does a Switch model route most tokens to one expert before its first update?
# This probe initialises the model the way gpu/model/init.cc does (truncated normal,
# std 0.02 for wte/wpe, sqrt(0.1/fan_in) elsewhere; LN weights 1, biases 0; the
# draws come from torch, so the numbers match the C++ init in distribution, not bit
# for bit), runs the PyTorch oracle's forward (tests/reference/oracle.py) on real
# corpus windows, and prints per Switch layer: the mean pairwise cosine similarity of
# the router inputs (LN(x) over tokens), the share of the largest common component,
# and the router's top-1 histogram with the fraction of tokens over capacity.
#
#   /usr/bin/python3 tools/experiment/router_probe.py --data=CORPUS [--emb_std=0.02]
#
# --emb_std sets the std of wte and wpe (the candidate fix), --router_scale scales
# the router init. Runs on the CPU in a few seconds.
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import oracle  # noqa: E402


def truncated_normal(shape, std, gen):
    z = torch.randn(shape, generator=gen)
    while True:
        outside = z.abs() > 2.0
        if not outside.any():
            return z * std
        z[outside] = torch.randn(int(outside.sum()), generator=gen)


def init_params(cfg, emb_std, router_scale, gen):
    """The init of gpu/model/init.cc (in distribution), with wte/wpe std emb_std."""
    C, F_, E, T = cfg["d_model"], cfg["d_ff"], cfg["experts"], cfg["context"]
    shapes = {"wte": (oracle.V, C), "wpe": (T, C), "ln1_w": (C,), "ln1_b": (C,), "qkv_w": (C, 3 * C),
              "qkv_b": (3 * C,), "proj_w": (C, C), "proj_b": (C,), "ln2_w": (C,), "ln2_b": (C,),
              "router_w": (C, E), "expert_w_in": (E, C, F_), "expert_b_in": (E, F_),
              "expert_w_out": (E, F_, C), "expert_b_out": (E, C), "fc_w": (C, F_), "fc_b": (F_,),
              "fcproj_w": (F_, C), "fcproj_b": (C,), "lnf_w": (C,), "lnf_b": (C,)}
    P = {}
    for name in oracle.parameter_names(cfg):
        short = name.split(".")[-1]
        shape = shapes[short]
        if short in ("ln1_w", "ln2_w", "lnf_w"):
            P[name] = torch.ones(shape)
        elif short not in oracle.DECAYED:
            P[name] = torch.zeros(shape)
        elif short in ("wte", "wpe"):
            P[name] = truncated_normal(shape, emb_std, gen)
        else:
            fan_in = shape[1] if len(shape) == 3 else shape[0]
            P[name] = truncated_normal(shape, math.sqrt(0.1 / fan_in), gen)
            if short == "router_w":
                P[name] = P[name] * router_scale
    return P


def batch(data, sequences, context, gen):
    starts = torch.randint(0, len(data) - context - 1, (sequences,), generator=gen).tolist()
    rows = [list(data[s:s + context + 1]) for s in starts]
    t = torch.tensor(rows, dtype=torch.long)
    return t[:, :-1], t[:, 1:]


def router_inputs(P, cfg, tokens):
    """LN(x) entering each Switch layer's router, {layer: (N, C)} (oracle.forward's path)."""
    B, T = tokens.shape
    C = cfg["d_model"]
    x = P["wte"][tokens] + P["wpe"][:T]
    inputs = {}
    for l in range(cfg["layers"]):
        p = f"layer{l}."
        x = x + oracle.attention(F.layer_norm(x, (C,), P[p + "ln1_w"], P[p + "ln1_b"], oracle.LN_EPS), P, p, cfg)
        u = F.layer_norm(x, (C,), P[p + "ln2_w"], P[p + "ln2_b"], oracle.LN_EPS)
        if oracle.is_switch_layer(cfg, l):
            inputs[l] = u.reshape(B * T, C)
            out, _, _ = oracle.switch_ffn(inputs[l], P, p, cfg, {})
            x = x + out.reshape(B, T, C)
        else:
            hidden = F.gelu(u @ P[p + "fc_w"] + P[p + "fc_b"], approximate="tanh")
            x = x + hidden @ P[p + "fcproj_w"] + P[p + "fcproj_b"]
    return inputs


def describe(u, router_w, cfg):
    n = u.shape[0]
    unit = u / u.norm(dim=1, keepdim=True)
    mean_cos = ((unit.sum(0).norm() ** 2 - n) / (n * (n - 1))).item()  # off-diagonal mean of unit @ unit.T
    common = u.mean(0)
    common_share = (common.norm() ** 2 * n / (u.norm() ** 2)).item()  # energy of the token-mean direction
    expert = torch.argmax(u @ router_w, dim=1)
    hist = torch.bincount(expert, minlength=cfg["experts"]).tolist()
    capacity = math.ceil(cfg["capacity_factor"] * n / cfg["experts"])
    dropped = sum(max(0, h - capacity) for h in hist) / n
    return mean_cos, common_share, hist, dropped


def main():
    ap = argparse.ArgumentParser(description="init-time routing of a Switch model")
    ap.add_argument("--data", required=True, help="corpus file (bytes)")
    ap.add_argument("--emb_std", type=float, default=0.02, help="std of wte and wpe at init")
    ap.add_argument("--router_scale", type=float, default=1.0, help="factor on the router init")
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--moe_every", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=16, help="sequences per micro-batch (tokens = 128 x this)")
    ap.add_argument("--seeds", type=int, default=3, help="independent inits averaged over")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    with open(args.data, "rb") as f:
        data = f.read()
    if len(data) < 200:
        raise SystemExit(f"router_probe: {args.data} is too short")
    cfg = {"layers": 4, "d_model": 128, "heads": 4, "d_ff": 512, "context": 128, "experts": args.experts,
           "moe_every": args.moe_every, "capacity_factor": 1.25, "lb_alpha": 0.01, "z_beta": 0.001}
    print(f"emb_std={args.emb_std} router_scale={args.router_scale} experts={args.experts} "
          f"tokens={args.sequences * 128}")
    with torch.no_grad():
        for seed in range(1, args.seeds + 1):
            gen = torch.Generator().manual_seed(seed)
            P = init_params(cfg, args.emb_std, args.router_scale, gen)
            tokens, targets = batch(data, args.sequences, cfg["context"], gen)
            _, ce, _, _ = oracle.forward(P, cfg, tokens, targets, {})
            print(f"seed {seed}: cross-entropy at init {ce.item():.3f} (uniform: {math.log(oracle.V):.3f})")
            for l, u in router_inputs(P, cfg, tokens).items():
                mean_cos, common, hist, dropped = describe(u, P[f"layer{l}.router_w"], cfg)
                print(f"seed {seed} layer {l}: mean cos {mean_cos:.3f}  common share {common:.3f}  "
                      f"top-1 max {max(hist)}/{sum(hist)}  over capacity {dropped:.3f}  hist {hist}")


if __name__ == "__main__":
    main()
