"""A dataset's manifest: its schema, its own checksum and where its files may live (DESIGN 3.4).

`manifest.json` is the one file pwm trusts to say what a dataset holds, so it is checked before
anything it names is opened:

- **Schema** (`check`): every key the readers rely on is present with the right type and range
  (world, format version, shard count, episode count, array names, shapes and dtypes, one
  record per shard with its episodes and one sha256 per array file), and the parts agree with
  each other (the shards' episodes sum to `num_episodes`, shard i is named `shard-0000i`, every
  shard lists exactly the manifest's arrays). A violation is one line naming the key; nothing
  later meets an IndexError, a KeyError or a TypeError.
- **Confinement**: array, shard and extra-file names are plain names (no `/`, no `..`, no hidden
  or reserved file), and every path they make resolves inside the dataset directory, symlinks
  included, so a manifest cannot make pwm read a file outside its dataset.
- **Checksum** (`seal`, `verify`): `content_sha256` is the sha256 of the manifest's canonical
  JSON without that key (sorted keys, no whitespace), stored inside the manifest. The canonical
  form makes it a function of the content alone: the same config and seed still give
  byte-identical manifests, and a manifest re-indented by hand keeps its checksum. A manifest
  written before this key existed (an older dataset) has none and is read without this check;
  its schema, confinement and every shard's sha256 are still checked, so nothing it names is read
  unverified. Refusing it instead would force re-generating hours of committed study data to
  gain a check that an edit can defeat anyway (it guards against accidents, not an adversary,
  like every checksum stored beside its data).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

CHECKSUM = "content_sha256"  # not provenance's manifest_sha256 (the file's bytes)
KINDS = ("dataset", "items", "consequence")  # absent: a training dataset (the toy world)
RESERVED = ("manifest.json", "provenance.json", ".config.json")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """What is wrong with a manifest, in a few words (the caller names the dataset)."""


def canonical_sha256(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON, without its own checksum key."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(manifest: dict) -> dict:
    """The manifest with its `content_sha256` (re)computed."""
    return {**manifest, CHECKSUM: canonical_sha256(manifest)}


def verify(manifest: dict) -> None:
    """ManifestError if the manifest carries a checksum that its content does not match."""
    if CHECKSUM not in manifest:
        return  # written before manifests carried one: see the module docstring
    if manifest[CHECKSUM] != canonical_sha256(manifest):
        raise ManifestError(
            "manifest.json fails its own checksum (edited or corrupted); regenerate the dataset"
        )


def _int(value, key: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"manifest key {key} must be an integer, got {_show(value)}")
    if value < least:
        raise ManifestError(f"manifest key {key} must be >= {least}, got {value}")
    return value


def _dict(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise ManifestError(f"manifest key {key} must be a mapping, got {_show(value)}")
    return value


def _name(value, key: str) -> str:
    """A plain file or array name: cannot name a directory, a parent or a hidden file."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ManifestError(f"manifest key {key} must be a plain name, got {_show(value)}")
    return value


def _digest(value, key: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ManifestError(f"manifest key {key} must be a sha256 (64 hex digits)")
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check(manifest, format_version: int) -> None:
    """ManifestError naming the first key that breaks the schema (see the module docstring)."""
    from pwm.data.format import shard_name

    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest must be a JSON object, got {type(manifest).__name__}")
    missing = {"world", "format_version", "shards", "arrays", "num_episodes"} - set(manifest)
    if missing:
        raise ManifestError(f"manifest lacks {', '.join(sorted(missing))}")
    version = manifest["format_version"]
    if version != format_version or isinstance(version, bool):
        raise ManifestError(f"format version {_show(version)} != {format_version}")
    world = manifest["world"]
    if not isinstance(world, str) or not world:
        raise ManifestError(f"manifest key world must be a name, got {_show(world)}")
    kind = manifest.get("kind", "dataset")
    if kind not in KINDS:
        raise ManifestError(f"manifest key kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in ("config", "base_rates"):
        if key in manifest:
            _dict(manifest[key], key)
    if "world" in manifest.get("config", {}):
        _dict(manifest["config"]["world"], "config.world")  # an item set's world config
    arrays = _dict(manifest["arrays"], "arrays")
    if not arrays:
        raise ManifestError("manifest key arrays lists no array")
    for name, spec in arrays.items():
        _name(name, "arrays")
        spec = _dict(spec, f"arrays.{name}")
        shape = spec.get("shape")
        if not isinstance(shape, list) or len(shape) > 8:
            raise ManifestError(f"manifest key arrays.{name}.shape must be a list of sizes")
        for i, size in enumerate(shape):
            _int(size, f"arrays.{name}.shape[{i}]", 0)
        try:
            dtype = np.dtype(spec.get("dtype"))
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.hasobject or spec.get("dtype") != str(dtype):
            raise ManifestError(f"manifest key arrays.{name}.dtype must be a numpy dtype")
    episodes = _int(manifest["num_episodes"], "num_episodes", 1)
    shards = manifest["shards"]
    if not isinstance(shards, list) or not shards:
        raise ManifestError("manifest key shards must be a non-empty list")
    if "num_shards" in manifest and _int(manifest["num_shards"], "num_shards", 1) != len(shards):
        raise ManifestError(f"manifest lists {len(shards)} shards but num_shards is "
                            f"{manifest['num_shards']}")  # fmt: skip
    want = {f"{name}.npy" for name in arrays}
    total = 0
    for i, shard in enumerate(shards):
        where = f"shards[{i}]"
        shard = _dict(shard, where)
        if shard.get("name") != shard_name(i):
            raise ManifestError(
                f"manifest key {where}.name must be {shard_name(i)}, got {_show(shard.get('name'))}"
            )
        if "index" in shard and shard["index"] != i:
            raise ManifestError(f"manifest key {where}.index must be {i}")
        total += _int(shard.get("episodes"), f"{where}.episodes", 1)
        files = _dict(shard.get("files"), f"{where}.files")
        if set(files) != want:
            odd = sorted(set(files) ^ want)[0]
            raise ManifestError(f"manifest key {where}.files does not match arrays (at {odd})")
        for fname, digest in files.items():
            _digest(digest, f"{where}.files.{fname}")
    if total != episodes:
        raise ManifestError(f"the shards hold {total} episodes but num_episodes is {episodes}")
    if "num_frames" in manifest and "pixels" in arrays and arrays["pixels"]["shape"]:
        frames = episodes * arrays["pixels"]["shape"][0]
        if _int(manifest["num_frames"], "num_frames", 0) != frames:
            raise ManifestError(f"manifest key num_frames must be {frames}")
    for fname, digest in _dict(manifest.get("extra_files", {}), "extra_files").items():
        if _name(fname, "extra_files") in RESERVED:
            raise ManifestError(f"manifest key extra_files may not name {fname}")
        _digest(digest, f"extra_files.{fname}")
    if CHECKSUM in manifest:
        _digest(manifest[CHECKSUM], CHECKSUM)


def confined(root: Path, relative: str) -> Path:
    """root / relative, refused if it resolves (symlinks followed) outside root."""
    path = Path(root) / relative
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise ManifestError(f"{relative} resolves outside the dataset directory; refused")
    return path


def crop_objects_problem(manifest: dict, objects: int) -> str | None:
    """Why a crops model of `objects` tokens cannot read a dataset with this manifest, or None:
    its `num_objects` and `crop_size` (written by `pwm generate --crops`) must be the model's."""
    have, side = manifest.get("num_objects"), manifest.get("crop_size")
    if have is not None and have != objects:
        return (f"its crops are {have} objects' rows ({side} px crops), but model.objects is "
                f"{objects}: set model.objects={have}")  # fmt: skip
    return None
