r"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeWM; DESIGN 5.1).

For embeddings Z of shape (T, B, D) and M random unit directions a (redrawn every step),
project h = Z a and test each 1-D marginal against N(0, 1) with the Epps–Pulley statistic

    EP(h) = N \int |phi_N(t) - e^{-t^2/2}|^2 e^{-t^2/2} dt,
    phi_N(t) = mean_n e^{i t h_n}  ->  (mean cos(t h) - e^{-t^2/2})^2 + (mean sin(t h))^2,

integrated by the trapezoid rule on K knots t_k = k dt in [0, t_max] with interior weights doubled
(the integrand is even). SIGReg = mean of EP over directions and time steps; N = global batch.

Oracle: for Z ~ N(0, I), E[EP] = sum_k w_k (1 - e^{-t_k^2}) per direction, whatever N, where
w_k = trapezoid weight x window e^{-t_k^2/2}.

Implementation choices (fast and exact, see experiments/benchmarks/sigreg.py):
- the knots are multiples of one angle dt*h, so cos(k dt h) and sin(k dt h) come from the
  Chebyshev recurrence c_{k+1} = 2 cos(dt h) c_k - c_{k-1} (two transcendental calls instead of K),
  cosine and sine stacked in one tensor (half the small kernels); the backward evaluates the
  gradient's two Fourier series with Clenshaw's recurrence, one multiply-add per knot;
- a custom autograd function keeps only h and recomputes the recurrence in backward, so memory is
  O(T B M), never the O(T B M K) of the dense formula; the batch is processed in blocks;
- directions come from a CPU generator seeded by (seed, step): identical on every rank when the
  caller passes the same step (the trainer's global step), different between steps;
- it always computes in float32 (float64 if given), autocast off: under bf16 mixed precision the
  recurrence and the sums over the batch would lose most of their digits;
- under torch.distributed, the per-rank sums of cos and sin are all-reduced with the
  autograd-aware `torch.distributed.nn.functional.all_reduce` before the square, so loss and
  (DDP-averaged) gradients equal the single-process value on the concatenated global batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
import torch.distributed as dist
from torch import Tensor, nn

_BLOCK = 256  # batch rows per block of the recurrence (keeps the working set in cache)
_MIN_DIRECTIONS = 64  # fewest directions per thread (fewer: one thread does all)


def _forward_part(h: Tensor, dt: float, K: int, CS: Tensor, cols: slice) -> None:
    """CS[:, :, :, cols] += the harmonic sums of directions `cols`, blocks of the batch.

    CS: (K, 2, T, M), [k, 0] the sums of cos(k theta), [k, 1] of sin(k theta). Cosine and sine
    run as one stacked tensor X_k = (cos k theta, sin k theta) through the Chebyshev recurrence
    X_{k+1} = 2 cos(theta) X_k - X_{k-1}: half the kernels of two separate recurrences."""
    rows = [CS[k, :, :, cols] for k in range(K)]  # (2, T, m) views, made once
    for start in range(0, h.shape[1], _BLOCK):
        theta = dt * h[:, start : start + _BLOCK, cols]  # (T, b, m)
        c1 = torch.cos(theta)
        two_c1 = 2 * c1
        rows[0][0] += theta.shape[1]  # cos 0 = 1 (sin 0 = 0 adds nothing)
        X, X_prev = torch.stack([c1, torch.sin(theta)]), None  # X_1, X_0 = (1, 0)
        for k in range(1, K):
            rows[k] += X.sum(2)
            if k + 1 < K:
                if X_prev is None:  # X_2 = 2 cos X_1 - (1, 0)
                    nxt = torch.mul(two_c1, X)
                    nxt[0] -= 1
                else:
                    nxt = torch.mul(two_c1, X).sub_(X_prev)
                X, X_prev = nxt, X


def _backward_part(h: Tensor, dt: float, K: int, coef: Tensor, grad: Tensor, cols: slice) -> None:
    """grad[:, :, cols] = sum_k b_k cos(k theta) + a_k sin(k theta), blocks of the batch.

    Clenshaw's recurrence evaluates both series at once, one stacked tensor, without the
    harmonics themselves: y_j = c_j + 2 cos(theta) y_{j+1} - y_{j+2}; the cosine series is
    y_0 - cos(theta) y_1 with c_j = b_j, the sine series sin(theta) y_0 with c_j = a_{j+1}
    (sin k theta = sin theta U_{k-1}(cos theta)). coef: (K, 2, T, 1, M), [j, 0] = b_j,
    [j, 1] = a_{j+1} (0 for the last j)."""
    c = [coef[j, ..., cols] for j in range(K)]  # (2, T, 1, m) views, made once
    for start in range(0, h.shape[1], _BLOCK):
        theta = dt * h[:, start : start + _BLOCK, cols]  # (T, b, m)
        c1 = torch.cos(theta)
        two_c1 = 2 * c1
        y, y_prev = c[K - 1], None  # y_{K-1} = c_{K-1} (y_K = y_{K+1} = 0)
        for j in range(K - 2, -1, -1):  # y_j, from y = y_{j+1} and y_prev = y_{j+2}
            nxt = torch.addcmul(c[j], two_c1, y)
            y, y_prev = (nxt if y_prev is None else nxt.sub_(y_prev)), y
        y0, y = y, y_prev  # y_0, y_1
        cosine = torch.addcmul(y0[0], c1, y[0], value=-1)
        torch.addcmul(cosine, torch.sin(theta), y0[1], out=grad[:, start : start + _BLOCK, cols])


def _over_directions(work, M: int, device: torch.device) -> None:
    """work(cols) over the M directions: with n > 1 torch threads, n slices of the directions,
    each in its own thread whose kernels run on that thread alone (one parallel region for the
    whole recurrence). torch's own threading would open a parallel region per small kernel of
    the recurrence (thousands per call), and one thread of the team descheduled by another
    process stalls every one of them: on a busy machine a call then took up to 30x the dense
    formula (issue 33). Each direction's sums are computed as the one-thread code does."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads <= 1 or M < 2 * _MIN_DIRECTIONS:
        work(slice(None))
        return
    n = min(threads, M // _MIN_DIRECTIONS)
    edges = [round(i * M / n) for i in range(n + 1)]

    # grad and inference mode are thread-local in torch (a new thread starts with grad on and
    # inference mode off): the workers take the caller's (grad off inside backward, inference
    # mode in Lightning's validate/test)
    grad_mode, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def part(i: int) -> None:
        torch.set_num_threads(1)  # this thread's kernels: single-threaded
        with torch.inference_mode(inference), torch.set_grad_enabled(grad_mode):
            work(slice(edges[i], edges[i + 1]))

    try:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(part, range(n)))
    finally:
        torch.set_num_threads(threads)  # the workers' setting also reached torch's default


class _HarmonicSums(torch.autograd.Function):
    """(C, S)[t, m, k] = sum_b (cos, sin)(k dt h[t, b, m]), recomputed in backward."""

    @staticmethod
    def forward(ctx, h: Tensor, dt: float, K: int):  # h: (T, B, M)
        T, B, M = h.shape
        CS = h.new_zeros(K, 2, T, M)  # (K, 2, T, M): a contiguous row per knot
        _over_directions(lambda cols: _forward_part(h, dt, K, CS, cols), M, h.device)
        ctx.save_for_backward(h)
        ctx.dt, ctx.K = dt, K
        C, S = CS.permute(1, 2, 3, 0).unbind(0)  # (T, M, K) each
        return C, S

    @staticmethod
    def backward(ctx, gC: Tensor, gS: Tensor):  # gC, gS: (T, M, K)
        (h,) = ctx.saved_tensors
        dt, K = ctx.dt, ctx.K
        kdt = dt * torch.arange(K, dtype=h.dtype, device=h.device)  # (K,)
        b = gS * kdt  # (T, M, K) coefficient of cos(k theta)
        a = -gC * kdt  # (T, M, K) coefficient of sin(k theta)
        a_next = torch.cat([a[..., 1:], torch.zeros_like(a[..., :1])], -1)  # a_{j+1}
        coef = torch.stack([b, a_next]).permute(3, 0, 1, 2).unsqueeze(3).contiguous()
        grad = torch.empty_like(h)  # (T, B, M)
        M = h.shape[-1]
        _over_directions(lambda cols: _backward_part(h, dt, K, coef, grad, cols), M, h.device)
        return grad, None, None


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SIGReg(nn.Module):
    """Epps–Pulley normality test on M random projections, averaged; input (T, B, D) or (B, D).

    Args:
        num_directions: M, random unit directions drawn per step.
        num_knots: K, trapezoid knots on [0, t_max].
        t_max: upper end of the integration range.
        seed: base seed of the direction generator (combined with the step).
    """

    def __init__(
        self, num_directions: int = 1024, num_knots: int = 17, t_max: float = 3.0, seed: int = 0
    ):
        super().__init__()
        if num_directions < 1 or num_knots < 2 or t_max <= 0:
            raise ValueError("SIGReg needs num_directions >= 1, num_knots >= 2 and t_max > 0")
        self.num_directions, self.num_knots, self.seed = num_directions, num_knots, seed
        self.dt = t_max / (num_knots - 1)
        t = torch.linspace(0, t_max, num_knots)  # (K,)
        trapezoid = torch.full((num_knots,), 2 * self.dt)
        trapezoid[[0, -1]] = self.dt
        window = torch.exp(-t.square() / 2)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", window, persistent=False)  # N(0,1) characteristic function
        self.register_buffer("weights", trapezoid * window, persistent=False)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def expected_gaussian(self) -> float:
        """E[statistic] per direction for Z ~ N(0, I), independent of N (the oracle)."""
        return float((self.weights * (1 - torch.exp(-self.t.square()))).sum())

    def directions(self, dim: int, step: int) -> Tensor:
        """(D, M) unit directions for `step`: identical on every rank, new at every step."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        A = torch.randn(dim, self.num_directions, generator=gen)  # (D, M)
        return A / A.norm(dim=0, keepdim=True)

    def forward(self, z: Tensor, step: int | None = None) -> Tensor:
        """SIGReg of z (T, B, D) or (B, D); `step` seeds the directions (default: call counter)."""
        if z.dim() == 2:
            z = z.unsqueeze(0)  # (1, B, D)
        if z.dim() != 3:
            raise ValueError(f"SIGReg expects (T, B, D) or (B, D), got shape {tuple(z.shape)}")
        if step is None:
            step = int(self.step)
            self.step += 1
        with torch.autocast(z.device.type, enabled=False):  # bf16 would spoil the recurrence
            return self._statistic(z if z.dtype == torch.float64 else z.float(), step)

    def _statistic(self, z: Tensor, step: int) -> Tensor:  # (T, B, D), float32 or float64
        A = self.directions(z.shape[-1], step).to(device=z.device, dtype=z.dtype)  # (D, M)
        h = z @ A  # (T, B, M)
        C, S = _HarmonicSums.apply(h, self.dt, self.num_knots)  # (T, M, K) each
        n = torch.tensor(float(z.shape[1]), device=z.device, dtype=z.dtype)
        if _distributed():
            from torch.distributed.nn.functional import all_reduce

            C, S = all_reduce(torch.stack([C, S])).unbind(0)  # sums over the global batch
            dist.all_reduce(n)  # N = global batch size
        err = (C / n - self.phi).square() + (S / n).square()  # (T, M, K)
        return (err @ self.weights * n).mean()


def sigreg_dense(z: Tensor, directions: Tensor, t_max: float = 3.0, num_knots: int = 17) -> Tensor:
    """Reference SIGReg, the formula written out densely over a (T, B, M, K) tensor.

    Slow and memory-hungry; kept as the test oracle and the benchmark baseline.
    """
    if z.dim() == 2:
        z = z.unsqueeze(0)
    t = torch.linspace(0, t_max, num_knots, dtype=z.dtype, device=z.device)  # (K,)
    dt = t_max / (num_knots - 1)
    trapezoid = torch.full_like(t, 2 * dt)
    trapezoid[[0, -1]] = dt
    window = torch.exp(-t.square() / 2)
    x = (z @ directions).unsqueeze(-1) * t  # (T, B, M, K)
    err = (x.cos().mean(1) - window).square() + x.sin().mean(1).square()  # (T, M, K)
    return (err @ (trapezoid * window) * z.shape[1]).mean()
