"""The on-disk dataset format shared by every world (DESIGN 3.4).

A dataset is a directory::

    DIR/
      manifest.json            written last, atomically; without it DIR is not a dataset
      shard-00000/NAME.npy     one array per name, leading axis = episodes of this shard
      shard-00000/checksums.json   sha256 of every file in the shard (gathered into the manifest)
      ...

Choices: every array is a plain `.npy` (memory-mappable, `allow_pickle=False`); a shard is written
to a temporary directory and renamed into place, so a killed writer leaves no half shard; the
manifest lists, per shard, the sha256 of each file, and `open_dataset` refuses a dataset whose
shard is missing, truncated or altered, naming the shard, and any array whose `.npy` header
disagrees with the manifest or declares Python objects (nothing is ever unpickled). Extra files
(item metadata) live at the top level and are checksummed the same way. A killed writer's
temporary `.shard-*` directories are removed once every shard is finished. The manifest itself
is checked before anything it names is opened: its schema, its own checksum, and that no path it
names leaves the directory (pwm/data/manifest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pwm.data import manifest as schema

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class DatasetError(ValueError):
    """A dataset or item set on disk is missing, incomplete or corrupted."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write JSON to a temp file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_shard(root: Path, index: int, arrays: dict[str, np.ndarray]) -> dict:
    """Write one shard atomically (temp dir + rename); return its record for the manifest."""
    root = Path(root)
    episodes = {len(a) for a in arrays.values()}
    if len(episodes) != 1:
        raise ValueError(f"shard {index}: arrays disagree on the number of episodes: {episodes}")
    final = root / shard_name(index)
    tmp = Path(tempfile.mkdtemp(prefix=f".{shard_name(index)}.", dir=root))
    files = {}
    for name, arr in sorted(arrays.items()):
        if arr.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; only plain dtypes can be stored")
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        files[f"{name}.npy"] = sha256_file(tmp / f"{name}.npy")
    record = {"index": index, "episodes": episodes.pop(), "files": files}
    write_json_atomic(tmp / "checksums.json", record)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return record


def remove_stale_temporaries(root: Path) -> None:
    """Delete the temporary shard directories a killed writer left behind (`.shard-*`).

    Call only when every shard is finished: then no writer is still filling one.
    """
    for tmp in Path(root).glob(".shard-*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def read_shard_record(root: Path, index: int) -> dict | None:
    """The sidecar record of a finished shard, or None if the shard is not (completely) there."""
    path = Path(root) / shard_name(index) / "checksums.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def finalize(root: Path, num_shards: int, meta: dict, extra_files: list[str] = ()) -> bool:
    """Write the manifest if all `num_shards` shards are present; return whether it was written.

    `meta` holds the world, the generator config, the seed, and anything else to record. The
    shapes and dtypes of every array are read back from shard 0.
    """
    root = Path(root)
    records = [read_shard_record(root, i) for i in range(num_shards)]
    if any(r is None for r in records):
        return False
    arrays = {}
    for fname in sorted(records[0]["files"]):
        arr = np.load(root / shard_name(0) / fname, mmap_mode="r", allow_pickle=False)
        arrays[fname[:-4]] = {"shape": list(arr.shape[1:]), "dtype": str(arr.dtype)}
    from pwm import __version__

    manifest = {
        **meta,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "num_shards": num_shards,
        "num_episodes": sum(r["episodes"] for r in records),
        "arrays": arrays,
        "shards": [{"name": shard_name(i), **r} for i, r in enumerate(records)],
        "extra_files": {f: sha256_file(root / f) for f in extra_files},
    }
    if "pixels" in arrays:
        manifest["num_frames"] = manifest["num_episodes"] * arrays["pixels"]["shape"][0]
    write_json_atomic(root / MANIFEST, schema.seal(manifest))
    return True


def prepare_output_dir(out: Path, overwrite: bool, config: dict) -> Path:
    """Make `out` ready for a generation run described by `config` (JSON-able).

    An absent or empty directory is created. A finished dataset, or anything that is not an
    unfinished run of the same config, is refused unless `overwrite` (then cleared). An unfinished
    run of the same config (same `.config.json`) is kept, so re-running resumes it and several
    `--shard i --num-shards n` jobs can share one directory.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a directory")
    above = out.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise DatasetError(f"--out {out} lies under {above}, a file")
    stamp = out / ".config.json"
    if out.exists() and any(out.iterdir()):
        same = stamp.exists() and json.loads(stamp.read_text()) == config
        if overwrite:
            shutil.rmtree(out)
        elif (out / MANIFEST).exists():
            raise DatasetError(
                f"--out {out} already holds a dataset; pass --overwrite to replace it"
            )
        elif not same:
            raise DatasetError(
                f"--out {out} exists and is not empty; pass --overwrite to replace it"
            )
    out.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        write_json_atomic(stamp, config)
    return out


@dataclass
class Dataset:
    """A verified dataset: its manifest and lazily memory-mapped arrays, concatenated by episode."""

    root: Path
    manifest: dict

    @property
    def world(self) -> str:
        return self.manifest["world"]

    @property
    def num_episodes(self) -> int:
        return self.manifest["num_episodes"]

    @property
    def names(self) -> list[str]:
        return sorted(self.manifest["arrays"])

    def shape(self, name: str) -> tuple[int, ...]:
        """Per-episode shape of array `name`."""
        return tuple(self.manifest["arrays"][name]["shape"])

    def shards(self, name: str) -> list[np.ndarray]:
        """Per-shard memory maps of array `name` (leading axis: episodes of that shard)."""
        if name not in self.manifest["arrays"]:
            raise DatasetError(f"{self.root}: no array {name!r} (has {', '.join(self.names)})")
        return [
            np.load(self.root / s["name"] / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for s in self.manifest["shards"]
        ]

    def array(self, name: str) -> np.ndarray:
        """Array `name` for all episodes, loaded into memory, shape (E, *shape(name))."""
        return np.concatenate([np.asarray(a) for a in self.shards(name)], axis=0)

    def locate(self, episode: int) -> tuple[int, int]:
        """(shard index, index within the shard) of a global episode index."""
        for i, s in enumerate(self.manifest["shards"]):
            if episode < s["episodes"]:
                return i, episode
            episode -= s["episodes"]
        raise IndexError(episode)

    def read_json(self, fname: str) -> dict:
        """A checksummed extra file (item metadata) as JSON; DatasetError if it is not JSON."""
        try:
            return json.loads((self.root / fname).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise DatasetError(f"{self.root}: {fname} is not valid JSON") from None


def open_dataset(root: str | Path, verify: bool = True) -> Dataset:
    """Open and check a dataset directory; raise DatasetError naming what is wrong.

    Always: the manifest's schema, its own checksum and that every path it names stays inside
    `root` (pwm/data/manifest.py). With `verify`, also every shard file's sha256 and `.npy`
    header against the manifest, so a truncated shard or a single flipped byte is refused with
    the shard's name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory (expected a dataset made by `pwm generate`)")
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise DatasetError(
            f"{root} has no {MANIFEST}: not a dataset, or its generation did not finish"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{mpath} is not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{mpath} is not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise DatasetError(f"{mpath} is not valid JSON (nested too deeply)") from None
    try:
        schema.check(manifest, FORMAT_VERSION)
        schema.verify(manifest)
        for shard in manifest["shards"]:
            schema.confined(root, shard["name"])
            for fname in shard["files"]:
                schema.confined(root, f"{shard['name']}/{fname}")
        for fname in manifest.get("extra_files", {}):
            schema.confined(root, fname)
    except schema.ManifestError as e:
        raise DatasetError(f"{root}: {e}") from None
    if verify:
        for shard in manifest["shards"]:
            for fname, digest in shard["files"].items():
                path = root / shard["name"] / fname
                if not path.is_file():
                    raise DatasetError(f"{root}: shard {shard['name']} is missing {fname}")
                if sha256_file(path) != digest:
                    raise DatasetError(
                        f"{root}: shard {shard['name']} file {fname} fails its checksum "
                        "(truncated or altered); regenerate the dataset"
                    )
            for name, spec in manifest["arrays"].items():
                _check_header(root, shard, name, spec)
        for fname, digest in manifest.get("extra_files", {}).items():
            if not (root / fname).is_file() or sha256_file(root / fname) != digest:
                raise DatasetError(f"{root}: {fname} is missing or fails its checksum")
    return Dataset(root=root, manifest=manifest)


def _check_header(root: Path, shard: dict, name: str, spec: dict) -> None:
    """Refuse a shard array whose .npy header disagrees with the manifest or holds objects.

    The header is parsed without unpickling (numpy reads it as a Python literal), so an array
    of pickled objects is refused here, before anything could try to load it.
    """
    path = root / shard["name"] / f"{name}.npy"
    where = f"{root}: shard {shard['name']} array {name!r}"
    if f"{name}.npy" not in shard["files"]:
        raise DatasetError(f"{where} is not listed in the manifest's checksums")
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in readers:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = readers[version](f)
        except ValueError as e:
            raise DatasetError(f"{where} has no valid .npy header ({e})") from None
    if dtype.hasobject:
        raise DatasetError(
            f"{where} holds Python objects (pickle); refused, datasets never unpickle"
        )
    want = (shard["episodes"], *spec["shape"])
    if str(dtype) != spec["dtype"] or tuple(shape) != want:
        raise DatasetError(
            f"{where} is {dtype} {tuple(shape)} but the manifest says {spec['dtype']} {want}"
        )
