"""`vae-encode-folder`: latent coordinates for a folder (or a glob) of pictures, encoded concurrently
in batches, written as CSV or JSON lines (file, mu, sigma, elbo, percentile). Re-run with the same
output file, it resumes: files already written are skipped. Files the service refuses are named
on stderr, left out of the output (so that a re-run tries them again), and make the exit status 1.
A refusal of the whole run (no service at the URL, a missing or wrong key, an unknown model) stops
it at the first answer, with one line that says what to do, and exit status 2."""

import argparse
import asyncio
import csv
import glob
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vae_client.client import DEFAULT_URL, AsyncClient
from vae_client.errors import BadRequest, ConnectionFailed, NotFound, Unauthorized, VAEError

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}
PROGRESS_EVERY_S = 0.25


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    def show(self, final: bool = False) -> None:
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        line = f"\r{self.done}/{self.total} encoded, {self.failed} refused, {rate:.0f} pictures/s"
        sys.stderr.write(line + ("\n" if final else ""))
        sys.stderr.flush()


def pictures_of(source: str) -> list[Path]:
    path = Path(source)
    candidates = (
        sorted(path.rglob("*")) if path.is_dir() else sorted(Path(p) for p in glob.glob(source, recursive=True))
    )
    return [p for p in candidates if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES]


def for_every_picture(error: BadRequest) -> bool:
    """A refusal of the key or of the model, not of one picture."""
    return isinstance(error, Unauthorized | NotFound) or error.status == 403


class Output:
    """Rows in CSV or JSON lines, appended and flushed as they come; the names already written
    (a partial last line, from an interrupted run, is cut off). The file is created by the first row,
    so that a run that encodes nothing leaves none."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind = path, kind
        self.done: set[str] = set()
        self.header_written = False
        if path.exists():
            text = path.read_text()
            if text and not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]
                path.write_text(text)
            self.done = self._names(text)
            self.header_written = bool(self.done) or (kind == "csv" and bool(text))
        self.file: io.TextIOWrapper | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def _names(self, text: str) -> set[str]:
        if self.kind == "jsonl":
            return {json.loads(line)["file"] for line in text.splitlines() if line}
        return {row["file"] for row in csv.DictReader(io.StringIO(text))}

    def write(self, name: str, mu, sigma, elbo: float, percentile: float) -> None:
        if self.file is None:
            self.file = self.path.open("a", newline="")
        if self.kind == "jsonl":
            row = {"file": name, "mu": mu.tolist(), "sigma": sigma.tolist(), "elbo": elbo, "percentile": percentile}
            self.file.write(json.dumps(row) + "\n")
        else:
            writer = csv.writer(self.file)
            if not self.header_written:
                latent = range(len(mu))
                writer.writerow(
                    ["file", *(f"mu_{k}" for k in latent), *(f"sigma_{k}" for k in latent), "elbo", "percentile"]
                )
                self.header_written = True
            writer.writerow([name, *mu.tolist(), *sigma.tolist(), elbo, percentile])
        self.file.flush()


async def encode_folder(
    files: list[Path], root: Path | None, output: Output, client: AsyncClient, concurrency: int, quiet: bool
) -> Progress:
    name_of = (lambda path: str(path.relative_to(root))) if root else str
    todo = [path for path in files if name_of(path) not in output.done]
    if output.done and not quiet:
        sys.stderr.write(f"{len(files) - len(todo)} already in {output.path}, {len(todo)} to encode\n")
    progress = Progress(len(todo))
    batches = asyncio.Queue()
    for start in range(0, len(todo), client.batch_size):
        batches.put_nowait(todo[start : start + client.batch_size])
    last_shown = 0.0
    live = not quiet and sys.stderr.isatty()  # a progress line redrawn in place; a log gets the summary

    async def encode(batch: list[Path]) -> None:
        try:
            encoding = await client.encode(batch)
        except BadRequest as error:
            if for_every_picture(error):
                raise
            for path in batch:  # one refused picture fails its batch: find it, keep the rest
                await encode_alone(path)
            return
        for index, path in enumerate(batch):
            output.write(
                name_of(path),
                encoding.mu[index],
                encoding.sigma[index],
                float(encoding.elbo[index]),
                float(encoding.percentile[index]),
            )
        progress.done += len(batch)

    async def encode_alone(path: Path) -> None:
        try:
            encoding = await client.encode(path)  # as the raw body: the refusal is this picture's alone
        except BadRequest as error:
            if for_every_picture(error):
                raise
            progress.failed += 1
            sys.stderr.write(f"\n{name_of(path)}: {error.detail}\n")
            return
        output.write(name_of(path), encoding.mu, encoding.sigma, float(encoding.elbo), float(encoding.percentile))
        progress.done += 1

    async def worker() -> None:
        nonlocal last_shown
        while not batches.empty():
            await encode(batches.get_nowait())
            if live and time.monotonic() - last_shown > PROGRESS_EVERY_S:
                last_shown = time.monotonic()
                progress.show()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if not quiet:
        progress.show(final=True)
    return progress


def what_to_do(error: VAEError, url: str) -> str:
    if isinstance(error, ConnectionFailed):
        return f"{error.detail}; start vae-serve there, or pass --url (or set VAE_URL) to name the service"
    if isinstance(error, Unauthorized) or error.status == 403:
        return f"{url} refused the API key ({error.detail}); pass --api-key or set VAE_API_KEY"
    return f"{url}: {error.detail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vae-encode-folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder (searched recursively) or a glob such as 'scans/**/*.png'")
    parser.add_argument("--out", type=Path, required=True, help="output file: .csv or .jsonl")
    url = os.environ.get("VAE_URL", DEFAULT_URL)
    parser.add_argument("--url", default=url, help=f"the service (default: $VAE_URL or {DEFAULT_URL})")
    parser.add_argument("--api-key", default=os.environ.get("VAE_API_KEY"), help="the key (default: $VAE_API_KEY)")
    parser.add_argument("--model", help="a served model's name (default: the service's default model)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: %(default)s)")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="pictures per request, at most VAE_MAX_BATCH (default: %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(argv)
    kind = {".csv": "csv", ".jsonl": "jsonl"}.get(args.out.suffix.lower())
    if kind is None:
        parser.error(f"--out {args.out}: name it .csv or .jsonl")
    if args.concurrency < 1 or args.batch_size < 1:
        parser.error("--concurrency and --batch-size must be at least 1")
    files = pictures_of(args.source)
    if not files:
        sys.exit(f"vae-encode-folder: no pictures ({', '.join(sorted(PICTURE_SUFFIXES))}) in {args.source}")
    root = Path(args.source) if Path(args.source).is_dir() else None
    output = Output(args.out, kind)

    async def run() -> Progress:
        async with AsyncClient(args.url, api_key=args.api_key, model=args.model, batch_size=args.batch_size) as client:
            return await encode_folder(files, root, output, client, args.concurrency, args.quiet)

    try:
        progress = asyncio.run(run())
    except VAEError as error:  # the service is unreachable, refuses the key or the model, or fails
        sys.stderr.write(f"vae-encode-folder: {what_to_do(error, args.url)}\n")
        sys.exit(2)
    finally:
        output.close()
    if progress.failed:
        sys.exit(f"vae-encode-folder: {progress.failed} picture(s) refused (named above); re-run to retry them")
