"""Generate the Python code for the contracts, check it for drift, and check v1 compatibility.

protoc writes imports as ``from fleetpipe.v1 import x_pb2`` (the proto package path); the code
lives in ``fleetpipe.pb.v1``, so the imports are rewritten after generation. The drift check runs
the same generation into a temporary folder and compares byte for byte.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO / "protos"
PROTO_PACKAGE_DIR = PROTO_ROOT / "fleetpipe" / "v1"
OUTPUT_DIR = REPO / "services" / "fleetpipe" / "pb" / "v1"
RELEASED_DESCRIPTORS = PROTO_ROOT / "descriptors" / "fleetpipe.v1.binpb"

_IMPORT_RE = re.compile(r"^from fleetpipe\.v1 import ", re.MULTILINE)


def proto_files() -> list[Path]:
    return sorted(PROTO_PACKAGE_DIR.glob("*.proto"))


def _protoc(args: list[str]) -> None:
    # grpc_tools ships protoc pinned with its own version; import late so services never need it.
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def generate(target: Path) -> None:
    """Write the generated modules for every contract into ``target`` (a fleetpipe/pb/v1 folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
        _protoc([f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files])
        generated = out / "fleetpipe" / "v1"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in sorted(generated.iterdir()):
            text = _IMPORT_RE.sub("from fleetpipe.pb.v1 import ", path.read_text())
            if path.name.endswith("_pb2_grpc.py") and "Stub" not in text:
                continue  # only files that declare a service need gRPC code
            (target / path.name).write_text(text)
        (target / "__init__.py").write_text(
            '"""Generated from protos/fleetpipe/v1. Never edit."""\n'
        )


def check_drift() -> list[str]:
    """Names of generated files that differ from a fresh generation (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "v1"
        generate(fresh)
        names = {p.name for p in fresh.iterdir()} | {
            p.name for p in OUTPUT_DIR.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"}
        }
        return sorted(
            name
            for name in names
            if not (OUTPUT_DIR / name).exists()
            or not (fresh / name).exists()
            or not filecmp.cmp(OUTPUT_DIR / name, fresh / name, shallow=False)
        )


def current_descriptors() -> descriptor_pb2.FileDescriptorSet:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
        _protoc([f"--descriptor_set_out={out}", *files])
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
        return fds


def load_descriptors(path: Path) -> descriptor_pb2.FileDescriptorSet:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(path.read_bytes())
    return fds


@dataclass(frozen=True)
class _Field:
    number: int
    type: int
    type_name: str
    label: int


def _messages(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[tuple[str, dict[str, _Field]]]:
    def walk(
        prefix: str, msgs: list[descriptor_pb2.DescriptorProto]
    ) -> Iterator[tuple[str, dict[str, _Field]]]:
        for m in msgs:
            name = f"{prefix}.{m.name}"
            fields = {f.name: _Field(f.number, f.type, f.type_name, f.label) for f in m.field}
            yield name, fields
            yield from walk(name, list(m.nested_type))

    for f in fds.file:
        yield from walk(f.package, list(f.message_type))


def _enums(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, dict[str, int]]:
    return {
        f"{f.package}.{e.name}": {v.name: v.number for v in e.value}
        for f in fds.file
        for e in f.enum_type
    }


def _methods(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, tuple[str, str, bool, bool]]:
    return {
        f"{f.package}.{s.name}/{m.name}": (
            m.input_type,
            m.output_type,
            m.client_streaming,
            m.server_streaming,
        )
        for f in fds.file
        for s in f.service
        for m in s.method
    }


def compatibility_errors(
    released: descriptor_pb2.FileDescriptorSet, current: descriptor_pb2.FileDescriptorSet
) -> list[str]:
    """What ``current`` breaks of ``released``: lost, renumbered or retyped fields and the like.

    Additions are allowed; within v1 nothing may be taken away or changed in meaning.
    """
    errors: list[str] = []
    now = dict(_messages(current))
    for message, fields in _messages(released):
        if message not in now:
            errors.append(f"message {message} was removed")
            continue
        for name, old in fields.items():
            new = now[message].get(name)
            if new is None:
                errors.append(f"{message}.{name} (field {old.number}) was removed")
            elif new.number != old.number:
                errors.append(f"{message}.{name} was renumbered {old.number} -> {new.number}")
            elif (new.type, new.type_name, new.label) != (old.type, old.type_name, old.label):
                errors.append(f"{message}.{name} (field {old.number}) changed type or label")
        taken = {f.number: n for n, f in now[message].items()}
        for name, old in fields.items():
            holder = taken.get(old.number)
            if holder is not None and holder != name and name not in now[message]:
                errors.append(f"{message}: field number {old.number} reused by {holder}")
    now_enums = _enums(current)
    for enum, values in _enums(released).items():
        if enum not in now_enums:
            errors.append(f"enum {enum} was removed")
            continue
        for vname, number in values.items():
            if now_enums[enum].get(vname) != number:
                errors.append(f"enum value {enum}.{vname} was removed or renumbered")
    now_methods = _methods(current)
    for method, signature in _methods(released).items():
        if now_methods.get(method) != signature:
            errors.append(f"rpc {method} was removed or changed its signature")
    return errors


PROG = "python -m fleetpipe_dev.devtools.protogen"
app = typer.Typer(
    help="Generate the protobuf code of services/fleetpipe/pb from protos/, and check the "
    "fleetpipe.v1 contracts: no drift from the committed code, nothing broken of the release.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("generate")
def generate_command() -> None:
    """Rewrite services/fleetpipe/pb/v1 from protos/ (`make proto`)."""
    generate(OUTPUT_DIR)
    typer.echo(f"generated {len(list(OUTPUT_DIR.glob('*.py')))} modules in {OUTPUT_DIR}")


@app.command("check-drift")
def check_drift_command() -> None:
    """Fail when the committed code differs from a fresh generation."""
    drift = check_drift()
    if drift:
        typer.echo("generated code differs from protos/ (run `make proto`): " + ", ".join(drift))
        raise typer.Exit(1)
    typer.echo("generated code is in sync with protos/")


@app.command("check-compat")
def check_compat_command() -> None:
    """Fail when fleetpipe.v1 breaks the released descriptors (a removed or renumbered field…)."""
    errors = compatibility_errors(load_descriptors(RELEASED_DESCRIPTORS), current_descriptors())
    for e in errors:
        typer.echo(f"incompatible: {e}")
    if errors:
        raise typer.Exit(1)
    typer.echo("fleetpipe.v1 is compatible with the released descriptors")


@app.command("release")
def release_command() -> None:
    """Record the current descriptors as released: after a release only (`make proto-release`)."""
    RELEASED_DESCRIPTORS.parent.mkdir(parents=True, exist_ok=True)
    RELEASED_DESCRIPTORS.write_bytes(current_descriptors().SerializeToString(deterministic=True))
    typer.echo(f"wrote {RELEASED_DESCRIPTORS}")


if __name__ == "__main__":
    app(prog_name=PROG)
