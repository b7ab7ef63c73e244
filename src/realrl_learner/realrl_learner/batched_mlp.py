"""A batched ReLU MLP (stacked weights, as TwinQ holds them) with its backward written by hand.

``relu_mlp(x, weights, biases, dtype)`` computes what this does with autograd:

    h = x.to(dtype) expanded to [n, B, in]
    for each hidden layer k: h = relu(baddbmm(biases[k].to(dtype), h, weights[k].to(dtype)))
    out = baddbmm(biases[-1], h.float(), weights[-1])            # [n, B, 1], float32

(the output layer, one column, computed as a multiply and a sum), but as one autograd node: its
backward runs the same products (weight gradients, and the input gradients only where needed)
without the per-operation bookkeeping of a dozen nodes and their casts, which costs a sizeable
part of an update at SAC's sizes on one CPU thread. Gradients are those of the autograd version
(``test_sac.py`` checks them against it).
"""
from __future__ import annotations

import torch


class _ReluMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dtype: torch.dtype, *params: torch.Tensor):
        weights, biases = params[:len(params) // 2], params[len(params) // 2:]
        h = x.to(dtype).unsqueeze(0).expand(len(weights[0]), *x.shape)
        inputs, cast_weights = [h], []
        for weight, bias in zip(weights[:-1], biases[:-1]):
            weight = weight.to(dtype)
            h = torch.baddbmm(bias.to(dtype), h, weight).relu_()
            inputs.append(h)
            cast_weights.append(weight)
        inputs[-1] = h.float()  # the output layer's input, in float32
        ctx.dtype, ctx.layers = dtype, len(weights)
        w_out = weights[-1].transpose(1, 2)  # [n, 1, hidden]
        ctx.save_for_backward(*inputs, *cast_weights, w_out)
        # the output layer (one value per row) as a multiply and a sum: several times faster
        # here than the batched product's path for a single column, forward and backward
        return (inputs[-1] * w_out).sum(dim=-1, keepdim=True) + biases[-1]

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        n = ctx.layers
        saved = ctx.saved_tensors
        inputs, cast_weights, w_out = saved[:n], saved[n:2 * n - 1], saved[-1]
        want_params = any(ctx.needs_input_grad[2:])
        grad_w: list[torch.Tensor | None] = [None] * n
        grad_b: list[torch.Tensor | None] = [None] * n
        if want_params:
            grad_w[-1] = (inputs[-1] * grad_out).sum(dim=1, keepdim=True).transpose(1, 2)
            grad_b[-1] = grad_out.sum(dim=1, keepdim=True)
        g = grad_out * w_out
        for k in reversed(range(n - 1)):
            # through the ReLU that made layer k + 1's input
            g = torch.ops.aten.threshold_backward(g, inputs[k + 1], 0).to(ctx.dtype)
            if want_params:
                grad_w[k] = torch.bmm(inputs[k].transpose(1, 2), g).float()
                grad_b[k] = g.sum(dim=1, keepdim=True).float()
            if k > 0 or ctx.needs_input_grad[0]:
                g = torch.bmm(g, cast_weights[k].transpose(1, 2))
        grad_x = g.sum(dim=0).float() if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grad_w, *grad_b)


def relu_mlp(x: torch.Tensor, weights, biases, dtype: torch.dtype) -> torch.Tensor:
    """The batched MLP's outputs [n, B, 1] for inputs x [B, in] (see the module doc); its
    last layer has one output."""
    return _ReluMLP.apply(x, dtype, *weights, *biases)
