"""`vae-encode-dataset`: many pictures encoded at once on a Ray cluster, by the serving core and no
HTTP. A folder, a glob or a Parquet table of image bytes goes in; a Parquet dataset comes out, one row
per picture: its path (or the table's key), model_id, mu and sigma, elbo, percentile, and error, the
refusal's message for a picture the picture pipeline refuses (its figures then null).

Ray Data reads the pictures (read_binary_files, read_parquet), an actor pool encodes them with the
verified model loaded once per actor (map_batches), and write_parquet writes the rows. A lost node's
work is redone by Ray (actors restart, tasks retry), and the files written are named by the task
that writes them, so a retried write replaces its file rather than adding rows. Paths go through
pyarrow's filesystems: an object store's URI (s3://, gs://, abfs://) works as a local folder does."""

import argparse
import fnmatch
import glob
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset
import pyarrow.fs

from service.core.engine import Engine
from service.core.errors import ModelError, UnknownModel
from service.core.repository import ModelRepository
from service.settings import Settings

if TYPE_CHECKING:  # Ray is the optional extra `ray`: imported when a run needs it, so that its absence is one line
    import ray.data

PICTURE_SUFFIXES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]  # what the picture pipeline decodes
GLOB_CHARACTERS = "*?["
IMAGES = "bytes"  # the column of picture files' bytes between reading and encoding
# Pictures per block of files read: blocks are what Ray spreads over the actors and redoes when a node
# is lost, and Ray's own sizing (by bytes) makes a few large ones of small pictures.
FILES_PER_BLOCK = 1024
# Ray counts CPUs per node: an encoder takes most of one, the tasks that read and write files (mostly
# waiting on storage) the rest, so that even a node of one CPU runs an encoder beside them.
ENCODER_CPUS = 0.75
FILE_TASK_CPUS = 0.25


class Refusal(Exception):
    """What stops the whole run, said in one line."""


def filesystem_of(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem a path or URI lives on, and the path within it."""
    if "://" in location:
        try:
            return pyarrow.fs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise Refusal(f"cannot open {location}: {error}") from None
    return pyarrow.fs.LocalFileSystem(), str(Path(location).resolve())


def _matching(filesystem: pyarrow.fs.FileSystem, pattern: str) -> list[str]:
    """The files a glob names (`**` included), listed from its fixed prefix."""
    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        return sorted(path for path in glob.glob(pattern, recursive=True) if Path(path).is_file())
    fixed = pattern[: min(pattern.find(c) for c in GLOB_CHARACTERS if c in pattern)].rpartition("/")[0]
    listed = filesystem.get_file_info(pyarrow.fs.FileSelector(fixed, recursive=True))
    return sorted(info.path for info in listed if info.is_file and fnmatch.fnmatch(info.path, pattern))


@dataclass(frozen=True)
class Source:
    """Where the pictures are, checked before any cluster is joined."""

    filesystem: pyarrow.fs.FileSystem
    paths: list[str]  # picture files, or Parquet files
    parquet: bool
    key: str  # `path` for picture files; the table's own key column for Parquet
    image_column: str

    def read(self) -> "ray.data.Dataset":
        """The pictures as a Ray dataset of (key, bytes)."""
        import ray.data

        if not self.parquet:
            blocks = -(-len(self.paths) // FILES_PER_BLOCK)
            return ray.data.read_binary_files(
                self.paths,
                include_paths=True,
                filesystem=self.filesystem,
                override_num_blocks=blocks,
                num_cpus=FILE_TASK_CPUS,
            )
        # Ray Data's second reader lists the files in a task of one whole CPU, which a cluster whose
        # every node runs an encoder does not have free: the first reader needs none.
        ray.data.DataContext.get_current().use_datasource_v2 = False
        table = ray.data.read_parquet(self.paths, filesystem=self.filesystem, num_cpus=FILE_TASK_CPUS)
        table = table.select_columns([self.key, self.image_column])
        return table.map_batches(
            _image_bytes, fn_kwargs={"column": self.image_column}, batch_format="pyarrow", num_cpus=FILE_TASK_CPUS
        )


def source_of(location: str, key: str, image_column: str) -> Source:
    """The pictures of a folder, a glob or a Parquet table; a Refusal says why there are none."""
    filesystem, path = filesystem_of(location)
    if any(c in path for c in GLOB_CHARACTERS):
        files = [file for file in _matching(filesystem, path) if not file.endswith(".parquet")]
        if not files:
            raise Refusal(f"no file matches {location}")
        return Source(filesystem, files, False, "path", "")
    kind = filesystem.get_file_info(path).type
    if kind == pyarrow.fs.FileType.NotFound:
        raise Refusal(f"{location} does not exist")
    if kind == pyarrow.fs.FileType.File:
        parquet = path.endswith(".parquet")
        return (
            _table(filesystem, [path], key, image_column) if parquet else Source(filesystem, [path], False, "path", "")
        )
    listed = [info for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path, recursive=True)) if info.is_file]
    if tables := sorted(info.path for info in listed if info.extension == "parquet"):
        return _table(filesystem, tables, key, image_column)
    files = sorted(info.path for info in listed if info.extension.lower() in PICTURE_SUFFIXES)
    if not files:
        raise Refusal(f"{location} holds no picture ({', '.join(PICTURE_SUFFIXES)}) and no Parquet file")
    return Source(filesystem, files, False, "path", "")


def _table(filesystem: pyarrow.fs.FileSystem, files: list[str], key: str, image_column: str) -> Source:
    """Parquet files with those columns."""
    try:
        schema = pyarrow.dataset.dataset(files, filesystem=filesystem, format="parquet").schema
    except pa.ArrowInvalid as error:
        raise Refusal(f"cannot read {files[0]} as Parquet: {error}") from None
    missing = [name for name in (key, image_column) if name not in schema.names]
    if missing:
        where = files[0] if len(files) == 1 else f"{files[0]} (of {len(files)} Parquet files)"
        raise Refusal(
            f"{where} has no column {' or '.join(map(repr, missing))} (it has {', '.join(schema.names)}); "
            "name its key and picture columns with --key and --image-column"
        )
    return Source(filesystem, files, True, key, image_column)


def _image_bytes(batch: pa.Table, column: str) -> pa.Table:
    """A table's picture column as plain bytes: Hugging Face's image feature is a struct holding them."""
    images = batch[column]
    if pa.types.is_struct(images.type):
        images = pa.chunked_array([chunk.field("bytes") for chunk in images.chunks], images.type.field("bytes").type)
    return batch.drop_columns([column]).append_column(IMAGES, images)


class Encoder:
    """One actor of the pool: an engine started once, with its verified models, encoding batches."""

    def __init__(self, settings: Settings, model: str | None, key: str):
        self.engine = Engine(settings)
        self.engine.start()
        self.model = model
        self.model_id = self.engine.model(model).model.id
        self.key = key

    def __call__(self, batch: pa.Table) -> pa.Table:
        encodings = self.engine.encode_files(batch[IMAGES].to_pylist(), self.model)
        vectors = pa.list_(pa.float32())
        return pa.table(
            {
                self.key: batch[self.key],
                "model_id": pa.array([self.model_id] * len(encodings), pa.string()),
                "mu": pa.array([encoding.mu for encoding in encodings], vectors),
                "sigma": pa.array([encoding.sigma for encoding in encodings], vectors),
                "elbo": pa.array([encoding.elbo for encoding in encodings], pa.float64()),
                "percentile": pa.array([encoding.percentile for encoding in encodings], pa.float64()),
                "error": pa.array([encoding.error for encoding in encodings], pa.string()),
            }
        )


def encode_dataset(
    source: Source, out: str, settings: Settings, model: str | None, max_batch: int, actors: int | None = None
) -> None:
    """Encodes the pictures of `source` into the Parquet dataset `out`, on the cluster ray.init joined,
    in batches of the model's batch size."""
    import ray

    out_filesystem, out_path = filesystem_of(out)
    # an encoder per CPU: each runs onnxruntime on one thread, and decodes pictures on one more
    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    settings = settings.model_copy(update={"ort_threads": 1, "picture_threads": 1})
    encoded = source.read().map_batches(
        Encoder,
        fn_constructor_kwargs={"settings": settings, "model": model, "key": source.key},
        batch_size=max_batch,
        batch_format="pyarrow",
        concurrency=actors,  # all at once: Ray Data adds actors to a growing pool too late to share the work
        num_cpus=ENCODER_CPUS,
    )
    encoded.write_parquet(out_path, filesystem=out_filesystem, ray_remote_args={"num_cpus": FILE_TASK_CPUS})


def _summary(out: str, seconds: float) -> str:
    filesystem, path = filesystem_of(out)
    written = pyarrow.dataset.dataset(path, filesystem=filesystem, format="parquet")
    rows = written.count_rows()
    refused = written.count_rows(filter=pyarrow.dataset.field("error").is_valid())
    return f"{rows - refused} encoded, {refused} refused (see the error column), {rows / seconds:.0f} pictures/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vae-encode-dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder, a glob or a Parquet table of pictures; a path or a URI")
    parser.add_argument("--out", required=True, help="the Parquet dataset to write (a folder of files)")
    parser.add_argument("--address", help="the Ray cluster to run on (default: RAY_ADDRESS, else a local one)")
    parser.add_argument("--model", help="the model to encode with (default: the service's default model)")
    parser.add_argument("--model-repository", type=Path, help="a folder of model folders (default: the bundled)")
    parser.add_argument("--model-dir", type=Path, help="one model folder, instead")
    parser.add_argument("--key", default="path", help="a Parquet source's key column (default: path)")
    parser.add_argument("--image-column", default="image", help="a Parquet source's picture column (default: image)")
    parser.add_argument("--actors", type=int, help="most encoders at once (default: the cluster's CPUs)")
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in ("model_repository", "model_dir") if getattr(args, name)}
    try:
        import ray
    except ImportError:
        sys.exit("vae-encode-dataset: Ray is not installed: pip install 'vae-service[ray]'")
    started = time.monotonic()
    try:
        settings = Settings(**overrides)
        served = ModelRepository(settings)
        served.load_all()  # a model folder that fails its checks stops the run here, in one line
        max_batch = served.get(args.model).max_batch
        source = source_of(args.source, args.key, args.image_column)
        out_filesystem, out_path = filesystem_of(args.out)
        if out_filesystem.get_file_info(out_path).type != pyarrow.fs.FileType.NotFound:
            raise Refusal(f"{args.out} exists; choose another --out, or remove it")
        ray.init(address=args.address, log_to_driver=False, configure_logging=False)
        encode_dataset(source, args.out, settings, args.model, max_batch, args.actors)
    except (Refusal, ModelError, UnknownModel) as error:
        sys.exit(f"vae-encode-dataset: {error}")
    except ConnectionError as error:
        sys.exit(f"vae-encode-dataset: cannot join the Ray cluster at {args.address}: {error}")
    print(_summary(args.out, time.monotonic() - started), file=sys.stderr)
