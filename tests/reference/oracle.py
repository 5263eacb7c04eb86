#!/usr/bin/python3
# The PyTorch oracle: an independent float64 implementation of the Switchyard model
# (SHARED MODEL SPECIFICATION) that the C++ model is checked against.
#
# Run (Debian's torch is only visible to /usr/bin/python3, not a pyenv python3):
#   /usr/bin/python3 tests/reference/oracle.py IN.sytf OUT.sytf
# The C++ test reference_oracle_test writes IN and runs this live; nothing is
# stored, so there is no golden dump to regenerate. IN holds (names as below):
#   cfg.{layers,d_model,heads,d_ff,context,experts,moe_every}  i64 scalars
#   cfg.{capacity_factor,lb_alpha,z_beta}                       f32 scalars
#   param.<canonical name>                                      f32, spec shapes
#   batch.inputs, batch.targets   i32 (M, B, T): M micro-batches of B sequences
#   opt.{lr,beta1,beta2,eps,weight_decay,max_norm} f32 scalars, opt.step i64 (>= 1)
#   optional adam_m.<name>, adam_v.<name>: moments before this step (else zeros)
#   optional step_grad.<name>: a gradient (the C++ one) to take the step with too
#   optional aux_check.router_logits (N, E): also report the router losses of
#     exactly these logits (aux_check.{lb,z,expert}), for hand-computed checks.
# OUT holds, per micro-batch m: mb{m}.{logits (B,T,V), ce, lb, z, loss} and per
# Switch layer l: mb{m}.layer{l}.{router_logits (N,E), probs (N,E), expert (N) i32,
# dropped (N) i32 (1 = over capacity), assigned (E) i64 (argmax counts, before
# capacity), admitted (E) i64 (after capacity)}; then grad.<name> (gradient of the
# mean over micro-batches of loss = ce + lb + z), grad_norm (before clipping),
# and after one torch.optim.AdamW step with clip_grad_norm_ from those gradients:
# param_new.<name>, adam_m.<name>, adam_v.<name>. With step_grad.* also the same
# step taken from the given gradient: given.{grad_norm,param_new.*,adam_m.*,adam_v.*}.
# (At step 1 Adam's update is g/(|g|+eps): a gradient near eps=1e-8 turns a 1e-10
# difference in g into a visible parameter difference, so comparing the optimizer on
# identical gradients is the well-conditioned check.)
#
# Everything is computed in float64 so that the comparison measures the error of
# the float32 C++ model, not of this reference; results are written as f32.
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensor_file  # noqa: E402

V = 256  # byte vocabulary
LN_EPS = 1e-5
DECAYED = ("wte", "wpe", "qkv_w", "proj_w", "fc_w", "fcproj_w", "router_w",
           "expert_w_in", "expert_w_out")


def is_switch_layer(cfg, layer):
    every = cfg["moe_every"]
    return cfg["experts"] > 0 and every > 0 and layer % every == every - 1


def parameter_names(cfg):
    """Canonical parameter order of the spec."""
    names = ["wte", "wpe"]
    for l in range(cfg["layers"]):
        p = f"layer{l}."
        names += [p + n for n in ("ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
                                  "ln2_w", "ln2_b")]
        if is_switch_layer(cfg, l):
            names += [p + n for n in ("router_w", "expert_w_in", "expert_b_in",
                                      "expert_w_out", "expert_b_out")]
        else:
            names += [p + n for n in ("fc_w", "fc_b", "fcproj_w", "fcproj_b")]
    return names + ["lnf_w", "lnf_b"]


def router_losses(router_logits, alpha, beta):
    """Top-1 routing and the auxiliary losses of one Switch layer.

    router_logits (N, E). Returns probs, expert (N,), assigned counts (E,), lb, z.
    """
    n_tokens, n_experts = router_logits.shape
    probs = torch.softmax(router_logits, dim=-1)
    expert = torch.argmax(probs, dim=-1)  # first maximal index on ties
    assigned = torch.bincount(expert, minlength=n_experts)
    fraction = assigned.to(probs.dtype) / n_tokens  # no gradient
    lb = alpha * n_experts * torch.sum(fraction * probs.mean(dim=0))
    z = beta * torch.mean(torch.logsumexp(router_logits, dim=-1) ** 2)
    return probs, expert, assigned, lb, z


def switch_ffn(u, P, prefix, cfg, record):
    """Switch FFN on u (N, C); fills record with routing facts; returns (out, lb, z)."""
    n_tokens = u.shape[0]
    n_experts = cfg["experts"]
    router_logits = u @ P[prefix + "router_w"]
    probs, expert, assigned, lb, z = router_losses(router_logits, cfg["lb_alpha"], cfg["z_beta"])
    gate = probs.gather(1, expert[:, None]).squeeze(1)
    capacity = math.ceil(cfg["capacity_factor"] * n_tokens / n_experts)
    admitted = torch.zeros(n_tokens, dtype=torch.bool)
    held = [0] * n_experts
    for n, e in enumerate(expert.tolist()):  # priority by token order
        if held[e] < capacity:
            held[e] += 1
            admitted[n] = True
    out = torch.zeros_like(u)
    for e in range(n_experts):
        rows = torch.nonzero(admitted & (expert == e)).squeeze(1)
        if rows.numel() == 0:
            continue
        hidden = F.gelu(u[rows] @ P[prefix + "expert_w_in"][e] + P[prefix + "expert_b_in"][e],
                        approximate="tanh")
        y = hidden @ P[prefix + "expert_w_out"][e] + P[prefix + "expert_b_out"][e]
        out = out.index_put((rows,), gate[rows, None] * y)
    record.update(router_logits=router_logits, probs=probs, expert=expert.to(torch.int32),
                  dropped=(~admitted).to(torch.int32), assigned=assigned,
                  admitted=torch.tensor(held, dtype=torch.int64))
    return out, lb, z


def attention(h, P, prefix, cfg):
    B, T, C = h.shape
    H = cfg["heads"]
    D = C // H
    qkv = h @ P[prefix + "qkv_w"] + P[prefix + "qkv_b"]
    q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in qkv.split(C, dim=-1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
    return y @ P[prefix + "proj_w"] + P[prefix + "proj_b"]


def forward(P, cfg, tokens, targets, records):
    """One micro-batch: tokens, targets (B, T) int64. Returns logits, ce, lb, z."""
    B, T = tokens.shape
    C = cfg["d_model"]
    x = P["wte"][tokens] + P["wpe"][:T]
    lb = z = torch.zeros((), dtype=x.dtype)
    for l in range(cfg["layers"]):
        p = f"layer{l}."
        x = x + attention(F.layer_norm(x, (C,), P[p + "ln1_w"], P[p + "ln1_b"], LN_EPS), P, p, cfg)
        u = F.layer_norm(x, (C,), P[p + "ln2_w"], P[p + "ln2_b"], LN_EPS)
        if is_switch_layer(cfg, l):
            records[l] = {}
            out, layer_lb, layer_z = switch_ffn(u.reshape(B * T, C), P, p, cfg, records[l])
            out = out.reshape(B, T, C)
            lb, z = lb + layer_lb, z + layer_z
        else:
            hidden = F.gelu(u @ P[p + "fc_w"] + P[p + "fc_b"], approximate="tanh")
            out = hidden @ P[p + "fcproj_w"] + P[p + "fcproj_b"]
        x = x + out
    x = F.layer_norm(x, (C,), P["lnf_w"], P["lnf_b"], LN_EPS)
    logits = x @ P["wte"].T
    ce = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))
    return logits, ce, lb, z


def read_config(inp):
    cfg = {k: int(inp["cfg." + k]) for k in
           ("layers", "d_model", "heads", "d_ff", "context", "experts", "moe_every")}
    cfg.update({k: float(inp["cfg." + k]) for k in ("capacity_factor", "lb_alpha", "z_beta")})
    return cfg


def adamw_step(values, grads, names, inp):
    """One torch.optim.AdamW step (decay on matrices only) after clip_grad_norm_.

    values, grads: {name: tensor}. Returns (pre-clip grad norm, {name: (param, m, v)}).
    """
    hp = {k: float(inp["opt." + k]) for k in ("lr", "beta1", "beta2", "eps", "weight_decay",
                                              "max_norm")}
    step = int(inp["opt.step"])
    P = {n: values[n].detach().clone() for n in names}
    for n in names:
        P[n].grad = grads[n].detach().clone()
    norm = torch.nn.utils.clip_grad_norm_([P[n] for n in names], hp["max_norm"])
    decayed = [P[n] for n in names if n.split(".")[-1] in DECAYED]
    plain = [P[n] for n in names if n.split(".")[-1] not in DECAYED]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": hp["weight_decay"]},
                             {"params": plain, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    for n in names:
        m, v = inp.get("adam_m." + n), inp.get("adam_v." + n)
        opt.state[P[n]] = {
            "step": torch.tensor(float(step - 1)),
            "exp_avg": torch.zeros_like(P[n]) if m is None else torch.from_numpy(m).double(),
            "exp_avg_sq": torch.zeros_like(P[n]) if v is None else torch.from_numpy(v).double(),
        }
    opt.step()
    return norm, {n: (P[n], opt.state[P[n]]["exp_avg"], opt.state[P[n]]["exp_avg_sq"])
                  for n in names}


def write_step(out, prefix, norm, updated):
    out[prefix + "grad_norm"] = norm
    for n, (param, m, v) in updated.items():
        out.update({prefix + "param_new." + n: param, prefix + "adam_m." + n: m,
                    prefix + "adam_v." + n: v})


def main(in_path, out_path):
    torch.set_default_dtype(torch.float64)
    inp = tensor_file.read(in_path)
    cfg = read_config(inp)
    names = parameter_names(cfg)
    missing = [n for n in names if "param." + n not in inp]
    if missing:
        raise SystemExit(f"oracle: input lacks parameters {missing}")
    P = {n: torch.from_numpy(inp["param." + n]).double().requires_grad_() for n in names}
    inputs = torch.from_numpy(inp["batch.inputs"]).long()
    targets = torch.from_numpy(inp["batch.targets"]).long()
    micro_batches = inputs.shape[0]
    out = {}
    mean_loss = torch.zeros(())
    for m in range(micro_batches):
        records = {}
        logits, ce, lb, z = forward(P, cfg, inputs[m], targets[m], records)
        loss = ce + lb + z
        mean_loss = mean_loss + loss / micro_batches
        pre = f"mb{m}."
        out.update({pre + "logits": logits, pre + "ce": ce, pre + "lb": lb, pre + "z": z,
                    pre + "loss": loss})
        for l, rec in records.items():
            out.update({f"{pre}layer{l}.{k}": v for k, v in rec.items()})
    mean_loss.backward()
    grads = {n: P[n].grad for n in names}
    for n in names:
        out["grad." + n] = grads[n].clone()
    write_step(out, "", *adamw_step(P, grads, names, inp))
    if all("step_grad." + n in inp for n in names):
        given = {n: torch.from_numpy(inp["step_grad." + n]).double() for n in names}
        write_step(out, "given.", *adamw_step(P, given, names, inp))
    if "aux_check.router_logits" in inp:
        logits = torch.from_numpy(inp["aux_check.router_logits"]).double()
        _, expert, _, lb, z = router_losses(logits, cfg["lb_alpha"], cfg["z_beta"])
        out.update({"aux_check.lb": lb, "aux_check.z": z,
                    "aux_check.expert": expert.to(torch.int32)})
    tensor_file.write(out_path, {k: v.detach().numpy() if v.is_floating_point()
                                 else v.numpy() for k, v in out.items()})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: /usr/bin/python3 oracle.py IN.sytf OUT.sytf")
    main(sys.argv[1], sys.argv[2])
