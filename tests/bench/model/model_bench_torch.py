#!/usr/bin/python3
# model_bench's PyTorch side: the Switchyard model (byte vocabulary, learned positions,
# pre-LN blocks of causal attention and a GELU FFN, top-1 Switch FFNs with capacity,
# load-balancing and z losses, logits on the tied embedding) written the way a PyTorch
# user would, in float32 with torch.optim.AdamW and gradient clipping, trained on windows
# of --data (random bytes without it) in steps of the same shape as model_bench's
# (micro_batches micro-batches of micro_batch sequences of context tokens) on the same
# threads. Times the steps after the first (a warm-up) and prints "dropped X" (the mean
# share of routed tokens its Switch layers dropped over capacity in those steps; they
# skip the dropped tokens, so more drops is less work) and, last, the median timed
# step's tokens/s as "tokens_per_s X".
#   /usr/bin/python3 model_bench_torch.py --threads=2 --steps=6 [--data=FILE --layers=4 ...]
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256


class Attention(nn.Module):
    def __init__(self, d_model, heads, context):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.register_buffer("causal", torch.ones(context, context, dtype=torch.bool).tril())

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.heads, C // self.heads).transpose(1, 2)
                   for t in self.qkv(x).split(C, dim=-1))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        scores = scores.masked_fill(~self.causal[:T, :T], float("-inf"))
        y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class DenseFFN(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff)
        self.out = nn.Linear(d_ff, d_model)

    def forward(self, u):
        return self.out(F.gelu(self.fc(u), approximate="tanh")), 0.0


class SwitchFFN(nn.Module):
    def __init__(self, a):
        super().__init__()
        d_model, d_ff, experts = a.d_model, a.d_ff, a.experts
        self.experts = experts
        self.capacity_factor = a.capacity_factor
        self.routed = 0  # tokens routed and dropped over capacity since the counts were reset
        self.dropped = 0
        self.lb_alpha = a.lb_alpha
        self.z_beta = a.z_beta
        self.router = nn.Linear(d_model, experts, bias=False)
        self.w_in = nn.Parameter(torch.randn(experts, d_model, d_ff) / math.sqrt(d_model))
        self.b_in = nn.Parameter(torch.zeros(experts, d_ff))
        self.w_out = nn.Parameter(torch.randn(experts, d_ff, d_model) / math.sqrt(d_ff))
        self.b_out = nn.Parameter(torch.zeros(experts, d_model))

    def forward(self, u):
        shape = u.shape
        u = u.reshape(-1, shape[-1])
        n_tokens = u.shape[0]
        logits = self.router(u)
        probs = torch.softmax(logits, dim=-1)
        gate, expert = probs.max(dim=-1)
        one_hot = F.one_hot(expert, self.experts)
        capacity = math.ceil(self.capacity_factor * n_tokens / self.experts)
        position = (one_hot.cumsum(dim=0) * one_hot).sum(dim=-1) - 1  # place in its expert's bucket
        kept = position < capacity
        self.routed += n_tokens
        self.dropped += n_tokens - int(kept.sum())
        out = torch.zeros_like(u)
        for e in range(self.experts):
            rows = torch.nonzero(kept & (expert == e)).squeeze(1)
            if rows.numel() == 0:
                continue
            hidden = F.gelu(u[rows] @ self.w_in[e] + self.b_in[e], approximate="tanh")
            out = out.index_add(0, rows, gate[rows, None] * (hidden @ self.w_out[e] + self.b_out[e]))
        fraction = one_hot.float().mean(dim=0)
        aux = self.lb_alpha * self.experts * torch.sum(fraction * probs.mean(dim=0))
        aux = aux + self.z_beta * torch.mean(torch.logsumexp(logits, dim=-1) ** 2)
        return out.reshape(shape), aux


class Block(nn.Module):
    def __init__(self, a, switch):
        super().__init__()
        self.ln1 = nn.LayerNorm(a.d_model)
        self.attention = Attention(a.d_model, a.heads, a.context)
        self.ln2 = nn.LayerNorm(a.d_model)
        self.ffn = (SwitchFFN(a) if switch
                    else DenseFFN(a.d_model, a.d_ff))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        out, aux = self.ffn(self.ln2(x))
        return x + out, aux


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, a.d_model)
        self.wpe = nn.Parameter(torch.randn(a.context, a.d_model) * 0.02)
        every = a.moe_every
        self.blocks = nn.ModuleList(
            Block(a, a.experts > 0 and every > 0 and l % every == every - 1) for l in range(a.layers))
        self.lnf = nn.LayerNorm(a.d_model)

    def forward(self, tokens, targets):
        x = self.wte(tokens) + self.wpe[: tokens.shape[1]]
        aux_total = 0.0
        for block in self.blocks:
            x, aux = block(x)
            aux_total = aux_total + aux
        logits = self.lnf(x) @ self.wte.weight.T
        return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)) + aux_total


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name, default in (("layers", 4), ("d_model", 128), ("heads", 4), ("d_ff", 512), ("experts", 8),
                          ("moe_every", 2), ("context", 128), ("micro_batch", 8), ("micro_batches", 2),
                          ("threads", 2), ("steps", 6)):
        parser.add_argument("--" + name, type=int, default=default)
    for name, default in (("capacity_factor", 1.25), ("lb_alpha", 0.1), ("z_beta", 0.001)):
        parser.add_argument("--" + name, type=float, default=default)
    parser.add_argument("--data", default="", help="training text (random bytes when empty)")
    a = parser.parse_args()
    if a.steps < 2:
        parser.error("--steps must be at least 2 (the first is a warm-up)")
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    corpus = None
    if a.data:
        with open(a.data, "rb") as f:
            corpus = torch.tensor(list(f.read()), dtype=torch.long)
        if corpus.numel() <= a.context + 1:
            parser.error(f"--data {a.data}: shorter than a sequence ({a.context + 1} bytes)")
    model = Model(a)
    switches = [m for m in model.modules() if isinstance(m, SwitchFFN)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    times, dropped = [], []
    shape = (a.micro_batches, a.micro_batch)
    for step in range(a.steps):
        if corpus is None:
            data = torch.randint(0, VOCAB, shape + (a.context + 1,))
        else:
            starts = torch.randint(0, corpus.numel() - a.context - 1, shape)
            data = corpus[starts[..., None] + torch.arange(a.context + 1)]
        for switch in switches:
            switch.routed = switch.dropped = 0
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        for m in range(a.micro_batches):
            loss = model(data[m, :, :-1], data[m, :, 1:]) / a.micro_batches
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seconds = time.perf_counter() - start
        routed = sum(switch.routed for switch in switches)
        share = sum(switch.dropped for switch in switches) / routed if routed else 0.0
        if step > 0:
            times.append(seconds)
            dropped.append(share)
    print(f"pytorch {torch.__version__}: {a.steps - 1} timed steps, {a.threads} threads")
    print(f"dropped {statistics.mean(dropped):.4f}")
    print(f"tokens_per_s {a.micro_batches * a.micro_batch * a.context / statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
