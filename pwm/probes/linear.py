"""Linear probes from frozen embeddings to the world's ground truth (DESIGN 4.5), numpy only.

Targets (per frame): `positions` and `velocities` of every object (both worlds); in Polis
`trust_to_ego` (T[i, 0], each agent's trust in the ego), `trust_from_ego` (T[0, i]),
`reputation` (the mean trust of the others in each agent), `distance_to_ego`, `cues` (per agent,
whether a cooperate and whether a defect cue is drawn: what the betrayal items turn on; a latent
without them cannot find a betrayal surprising) and `disposition` (per agent, 6 classes,
constant in an episode). Regression targets use ridge regression scored
by R^2 (variance-weighted over output columns, on the held-out part's own mean); the
disposition uses multinomial logistic regression per agent, scored by accuracy (with the
majority-class rate).

Choices: fit on one part of the episodes (by group for item sets, so variants of one scene never
straddle the split), score on the rest; features are standardised with the training statistics;
the ridge penalty is chosen from a fixed grid on a further split of the training part (again by
group), then refit on the whole training part; at most `max_frames` training frames (seeded).
"""

from __future__ import annotations

import numpy as np
import torch

from data_gen.render import CUE_C, CUE_D

REGRESSION = ("positions", "velocities", "trust_to_ego", "trust_from_ego", "reputation", "cues")


def targets(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ground-truth arrays (E, T, ...) -> per-frame probe targets (E, T, k) (int for classes)."""
    out = {}
    for name in ("positions", "velocities"):
        if name in arrays:
            out[name] = arrays[name].reshape(*arrays[name].shape[:2], -1).astype(np.float64)
    if "trust" in arrays:
        tr = arrays["trust"].astype(np.float64)  # (E, T, N, N), tr[i, j] = i's trust in j
        N = tr.shape[-1]
        out["trust_to_ego"] = tr[:, :, 1:, 0]  # (E, T, N-1)
        out["trust_from_ego"] = tr[:, :, 0, 1:]  # (E, T, N-1)
        off = tr * (1 - np.eye(N))  # (E, T, N, N)
        out["reputation"] = off.sum(axis=2) / (N - 1)  # (E, T, N): mean over i != j of tr[i, j]
    if "positions" in arrays and "trust" in arrays:
        pos = arrays["positions"].astype(np.float64)  # (E, T, N, 2)
        out["distance_to_ego"] = np.linalg.norm(pos[:, :, 1:] - pos[:, :, :1], axis=-1)
    if "cues" in arrays:
        c = arrays["cues"]  # (E, T, N) int codes
        out["cues"] = np.concatenate([c == CUE_C, c == CUE_D], axis=-1).astype(np.float64)
    if "dispositions" in arrays:
        d = arrays["dispositions"].astype(np.int64)  # (E, N)
        T = next(iter(out.values())).shape[1] if out else 1
        out["disposition"] = np.repeat(d[:, None], T, axis=1)  # (E, T, N)
    return out


def split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks over episodes, whole groups on one side, seeded."""
    uniq = np.unique(groups)
    perm = np.random.default_rng(seed).permutation(uniq)
    n_train = min(max(int(round(fraction * len(uniq))), 1), len(uniq) - 1)
    train = np.isin(groups, perm[:n_train])
    return train, ~train


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Variance-weighted R^2 over columns: 1 - sum SSE / sum SST (NaN without variance).

    Pooled rather than averaged per column, so a column that hardly varies in the held-out part
    (an agent that stood still) cannot dominate with a huge negative value.
    """
    sst = ((y - y.mean(0)) ** 2).sum()
    return float(1 - ((y - pred) ** 2).sum() / sst) if sst > 1e-12 else float("nan")


class Ridge:
    """Ridge regression on standardised features with penalty lam * n (per frame, so the grid
    does not depend on the data size). One eigendecomposition of X^T X serves every lambda:
    W = V diag(1 / (e + lam n)) V^T X^T (Y - mean Y)."""

    def __init__(self, X: np.ndarray, Y: np.ndarray):
        self.mx, self.sx, self.my = X.mean(0), X.std(0) + 1e-8, Y.mean(0)
        Xs = (X - self.mx) / self.sx  # (n, D)
        self.e, self.V = np.linalg.eigh(Xs.T @ Xs)  # (D,), (D, D)
        self.VtXtY = self.V.T @ (Xs.T @ (Y - self.my))  # (D, k)
        self.n = len(X)

    def fit(self, lam: float) -> Ridge:
        self.W = self.V @ (self.VtXtY / (self.e + lam * self.n)[:, None])  # (D, k)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mx) / self.sx) @ self.W + self.my


def ridge_probe(X, Y, groups, train, lambdas, seed) -> tuple[Ridge, dict]:
    """Choose lambda on a group split of the training part, refit there; R^2 on the rest."""
    Xt, Yt = X[train], Y[train]
    lam = lambdas[len(lambdas) // 2]  # kept when there is no second group to choose on
    if len(np.unique(groups[train])) >= 2:
        fit, val = split(groups[train], 0.75, seed + 1)
        path = Ridge(Xt[fit], Yt[fit])
        scores = [r2(Yt[val], path.fit(v).predict(Xt[val])) for v in lambdas]
        if np.isfinite(scores).any():
            lam = lambdas[int(np.nanargmax(scores))]
    model = Ridge(Xt, Yt).fit(lam)
    return model, {"r2": r2(Y[~train], model.predict(X[~train])), "lambda": lam}


def logistic_probe(X, y, train, classes: int, l2: float) -> dict:
    """Per-output multinomial logistic regression (L-BFGS); accuracy on the held-out part.

    X (n, D), y (n, k) int class per output column -> accuracy and majority-class rate.
    """
    mx, sx = X[train].mean(0), X[train].std(0) + 1e-8
    Xs = torch.as_tensor((X - mx) / sx, dtype=torch.float64)  # (n, D)
    Y = torch.as_tensor(y, dtype=torch.long)  # (n, k)
    n, k = Y.shape
    W = torch.zeros(Xs.shape[1], k, classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, classes, dtype=torch.float64, requires_grad=True)
    tr = torch.as_tensor(train)
    opt = torch.optim.LBFGS([W, b], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        logits = torch.einsum("nd,dkc->nkc", Xs[tr], W) + b  # (n_train, k, C)
        value = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), Y[tr].reshape(-1))
        value = value + l2 * (W**2).sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        pred = (torch.einsum("nd,dkc->nkc", Xs[~tr], W) + b).argmax(-1)  # (n_test, k)
    acc = float((pred == Y[~tr]).double().mean())
    majority = np.array([np.bincount(col, minlength=classes).argmax() for col in y[train].T])
    return {"accuracy": acc, "majority": float((y[~train] == majority).mean())}


def frame_sample(
    train_ep: np.ndarray, T: int, max_frames: int, seed: int, valid: np.ndarray | None = None
) -> np.ndarray:
    """Flat (episode, frame) indices of the training frames, at most max_frames, seeded; only
    frames marked `valid` (E * T,) when given."""
    flat = (np.flatnonzero(train_ep)[:, None] * T + np.arange(T)).ravel()
    if valid is not None:
        flat = flat[valid[flat]]
    if len(flat) > max_frames:
        flat = np.sort(np.random.default_rng(seed).choice(flat, max_frames, replace=False))
    return flat


def probe_all(emb: np.ndarray, truth: dict, groups: np.ndarray, cfg) -> tuple[dict, dict]:
    """Fit and score every target. emb (E, T, D); truth from `targets`; groups (E,). Frames
    without an embedding (NaN: a frame-skip model does not see them) are left out.

    Returns (scores per target, fitted ridge decoders per regression target).
    """
    E, T, D = emb.shape
    if len(np.unique(groups)) < 2:
        return {"skipped": "fewer than 2 groups of episodes to split"}, {}
    valid = np.isfinite(emb).all(-1).ravel()  # (E * T,)
    train_ep, _ = split(groups, cfg.probe_train_fraction, cfg.seed)
    fit_idx = frame_sample(train_ep, T, cfg.probe_max_frames, cfg.seed, valid)
    test_idx = (np.flatnonzero(~train_ep)[:, None] * T + np.arange(T)).ravel()
    test_idx = test_idx[valid[test_idx]]
    idx = np.concatenate([fit_idx, test_idx])
    train = np.arange(len(idx)) < len(fit_idx)
    X = emb.reshape(E * T, D)[idx].astype(np.float64)
    frame_groups = np.repeat(groups, T)[idx]
    scores, decoders = {}, {}
    for name, y in truth.items():
        Y = y.reshape(E * T, -1)[idx]
        if name == "disposition":
            classes = int(y.max()) + 1
            res = logistic_probe(X, Y, train, classes, cfg.logistic_l2)
            scores[name] = {"metric": "accuracy", **res}
            continue
        model, res = ridge_probe(X, Y, frame_groups, train, cfg.ridge_lambdas, cfg.seed)
        scores[name], decoders[name] = {"metric": "r2", **res}, model
    return scores, decoders
