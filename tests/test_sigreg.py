"""SIGReg against its formula, its Gaussian oracle, and its distributed contract (DESIGN 5.1)."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pwm.losses import SIGReg, sigreg_dense


def test_matches_dense_formula_value_and_gradient():
    sig = SIGReg(num_directions=64).double()
    z = torch.randn(3, 50, 16, dtype=torch.float64, requires_grad=True)
    fast = sig(z, step=7)
    dense = sigreg_dense(z, sig.directions(16, 7).double())
    (g_fast,) = torch.autograd.grad(fast, z)
    (g_dense,) = torch.autograd.grad(dense, z)
    assert torch.allclose(fast, dense, rtol=1e-10)
    assert torch.allclose(g_fast, g_dense, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("knots", [2, 3, 17])
def test_matches_dense_formula_across_batch_blocks(knots):
    """A batch over several blocks of the recurrence (not a multiple of the block), T = 2, the
    fewest knots the recurrences allow and the default: value and gradient equal to the dense
    formula in float64 (the stacked recurrence forward, Clenshaw's recurrence backward), to
    the float32 rounding of the module's knot weights (made in float32, then cast)."""
    from pwm.losses import sigreg as module

    sig = SIGReg(num_directions=32, num_knots=knots).double()
    gen = torch.Generator().manual_seed(knots)
    z = torch.randn(2, 2 * module._BLOCK + 37, 8, dtype=torch.float64, generator=gen)
    z.requires_grad_(True)
    fast = sig(z, step=1)
    dense = sigreg_dense(z, sig.directions(8, 1).double(), num_knots=knots)
    (g_fast,) = torch.autograd.grad(fast, z)
    (g_dense,) = torch.autograd.grad(dense, z)
    torch.testing.assert_close(fast, dense, rtol=1e-7, atol=0)
    assert (g_fast - g_dense).abs().max() <= 1e-6 * g_dense.abs().max()


def test_gaussian_oracle():
    """For Z ~ N(0, I) the mean statistic per direction is sum_k w_k (1 - exp(-t_k^2)), any N."""
    sig = SIGReg(num_directions=256)
    gen = torch.Generator().manual_seed(0)
    for n in (32, 512):
        draws = torch.stack([sig(torch.randn(1, n, 32, generator=gen), step=i) for i in range(200)])
        se = draws.std() / len(draws) ** 0.5
        assert abs(draws.mean() - sig.expected_gaussian()) < 4 * se, (n, draws.mean(), se)


def test_large_for_collapsed_and_badly_scaled():
    sig = SIGReg()
    gauss = sig(torch.randn(4, 256, 32), step=0)
    collapsed = sig(torch.ones(4, 256, 32) + 1e-3 * torch.randn(4, 256, 32), step=0)
    shrunk = sig(0.1 * torch.randn(4, 256, 32), step=0)
    inflated = sig(5 * torch.randn(4, 256, 32), step=0)
    for bad in (collapsed, shrunk, inflated):
        assert bad > 20 * gauss


def test_batch_permutation_invariance_and_2d_input():
    sig = SIGReg()
    z = torch.randn(2, 64, 8)
    perm = torch.randperm(64)
    assert torch.allclose(sig(z, step=3), sig(z[:, perm], step=3), rtol=1e-5)
    assert torch.allclose(sig(z[0], step=3), sig(z[:1], step=3))


def test_finite_gradients_even_when_collapsed():
    sig = SIGReg()
    z = torch.zeros(2, 32, 8, requires_grad=True)
    sig(z, step=0).backward()
    assert torch.isfinite(z.grad).all()


def test_directions_change_between_steps_and_counter_advances():
    sig = SIGReg(num_directions=16)
    a0, a1 = sig.directions(8, 0), sig.directions(8, 1)
    assert torch.equal(a0, sig.directions(8, 0))
    assert not torch.allclose(a0, a1)
    assert torch.allclose(a0.norm(dim=0), torch.ones(16))
    z = torch.randn(1, 32, 8)
    first, second = sig(z), sig(z)  # internal counter: steps 0 then 1
    assert first != second and int(sig.step) == 2


def test_rejects_bad_shapes_and_settings():
    with pytest.raises(ValueError, match="T, B, D"):
        SIGReg()(torch.randn(2, 3, 4, 5))
    with pytest.raises(ValueError):
        SIGReg(num_knots=1)


# ---- two processes (gloo) against one process on the concatenated batch -------------------------
def _worker(rank: int, world: int, port: int, z_full, w, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    sig = SIGReg(num_directions=128)
    local = z_full.chunk(world, dim=1)[rank]  # (T, B/world, Din)
    loss = sig(lin(local), step=5)
    loss.backward()
    grad = lin.weight.grad.clone()
    dist.all_reduce(grad)  # what DDP does: average the per-rank gradients
    grad /= world
    out[rank] = {
        "loss": loss.detach(),
        "grad": grad,
        "directions": sig.directions(w.shape[0], 5),
    }
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_equals_single_process_on_concatenated_batch():
    torch.manual_seed(0)
    z_full = torch.randn(3, 64, 12, dtype=torch.float64).float()
    w = torch.randn(10, 12) / 12**0.5
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, _free_port(), z_full, w, out), nprocs=2, join=True)

    lin = torch.nn.Linear(12, 10, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    ref = SIGReg(num_directions=128)(lin(z_full), step=5)
    ref.backward()
    for rank in (0, 1):
        assert torch.allclose(out[rank]["loss"], ref.detach(), rtol=1e-5, atol=1e-6)
        assert torch.allclose(out[rank]["grad"], lin.weight.grad, rtol=1e-5, atol=1e-6)
    assert torch.equal(out[0]["directions"], out[1]["directions"])


def test_directions_split_over_threads_give_the_one_thread_values():
    """With 2 torch threads the recurrence runs as 2 single-threaded slices of the directions
    (issue 33: no parallel region per small kernel); value and gradient equal the one-thread
    code's and the dense formula's, and torch's thread setting is left as it was."""
    before = torch.get_num_threads()
    z = torch.randn(2, 300, 24, generator=torch.Generator().manual_seed(3), requires_grad=True)
    sig = SIGReg(num_directions=256)
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            loss = sig(z, step=4)
            (grad,) = torch.autograd.grad(loss, z)
            out[n] = (loss.detach(), grad)
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out[2][0], out[1][0], rtol=1e-6, atol=0)
    torch.testing.assert_close(out[2][1], out[1][1], rtol=1e-6, atol=1e-9)
    dense = float(sigreg_dense(z.detach().double(), sig.directions(24, 4).double()))
    assert abs(float(out[2][0]) - dense) <= 1e-5 * dense


def test_threaded_split_keeps_the_callers_grad_and_inference_mode():
    """The worker threads take the caller's modes (torch keeps them per thread): under
    inference mode (Lightning's validate/test) and inside backward (grad off) the split path
    must not write into inference or grad-requiring tensors; its values equal one thread's."""
    before = torch.get_num_threads()
    z = torch.randn(2, 300, 24, generator=torch.Generator().manual_seed(5), requires_grad=True)
    sig = SIGReg(num_directions=256)
    try:
        out = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.inference_mode():
                out[n] = sig(z.detach(), step=2)
            loss = sig(z, step=2)
            loss.backward()  # backward runs the split with grad off
            assert z.grad is not None and torch.isfinite(z.grad).all()
            z.grad = None
        torch.testing.assert_close(out[2], out[1], rtol=1e-5, atol=1e-7)
    finally:
        torch.set_num_threads(before)
