"""Path-confined, all-or-nothing file writes.

Every path is checked before anything touches the disk: relative, inside the project
after symlinks are resolved, never under ``.git/``, and (for writes) never under
``.claude/``, which holds the product's own state. Those two names are compared without
case, as a case-insensitive filesystem (macOS, Windows) would open ``.GIT/`` as ``.git/``. A path
that one of the user's ``Edit(...)`` deny rules covers is refused the same way. One call's files are staged as
temp files next to their targets, then renamed into place; if any step fails, the
files already renamed are put back as they were, so the project sees all or none.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Mapping

from mcp_server.delegation.errors import DelegationError
from mcp_server.permissions import ProjectPermissions

Purpose = Literal["read", "write"]
NEVER_TOUCHED = ".git"
PRODUCT_STATE = ".claude"  # checkpoints and the ledger: written by the product, never by GLM


class PathRejected(DelegationError):
    """A path points outside the project or into a protected folder; nothing was written."""


@dataclass(frozen=True)
class WrittenFile:
    path: str  # relative to the project, POSIX separators
    lines: int
    bytes: int
    created: bool
    deleted: bool = False


def _refuse(relative: str, why: str) -> PathRejected:
    return PathRejected(f"path {relative!r} refused: {why}")


def _check_parts(relative: str, parts: tuple[str, ...], purpose: Purpose) -> None:
    folded = [part.casefold() for part in parts]
    if NEVER_TOUCHED in folded:
        raise _refuse(relative, "nothing is read or written under .git/")
    if purpose == "write" and folded and folded[0] == PRODUCT_STATE:
        raise _refuse(relative, ".claude/ holds the product's own state and is not written by GLM")


def confine(root: Path, relative: str, *, purpose: Purpose) -> Path:
    """The absolute path for ``relative`` inside ``root``, or PathRejected saying why not."""
    if not isinstance(relative, str) or not relative.strip():
        raise _refuse(str(relative), "empty path")
    if "\x00" in relative or "\\" in relative:
        raise _refuse(relative, "NUL or backslash in the path")
    if relative.startswith(("/", "~")) or (len(relative) > 1 and relative[1] == ":"):
        raise _refuse(relative, "absolute paths are not allowed; give a path relative to the project root")
    pure = PurePosixPath(relative)
    if ".." in pure.parts:
        raise _refuse(relative, "'..' would leave the project")
    _check_parts(relative, pure.parts, purpose)
    root = Path(root).resolve()
    _check_fits(root, relative, pure)
    try:
        resolved = (root / pure).resolve()  # follows symlinks that already exist
    except OSError as error:  # a symlink loop
        raise _refuse(relative, error.strerror or str(error)) from None
    if resolved != root and root not in resolved.parents:
        raise _refuse(relative, "it resolves (through a symlink) to a place outside the project")
    if resolved == root:
        raise _refuse(relative, "it names the project root itself")
    _check_parts(relative, resolved.relative_to(root).parts, purpose)
    _check_folders(root, relative, resolved)
    return resolved


def _check_fits(root: Path, relative: str, pure: PurePosixPath) -> None:
    """Refuse what the filesystem would refuse, by name, before anything touches the disk."""
    name_max, path_max = _limit(root, "PC_NAME_MAX", 255), _limit(root, "PC_PATH_MAX", 4096)
    if any(len(part.encode("utf-8", "surrogateescape")) > name_max for part in pure.parts):
        raise _refuse(_shown(relative), f"a name in it is longer than the filesystem allows ({name_max} bytes)")
    if len(str(root / pure).encode("utf-8", "surrogateescape")) >= path_max:
        raise _refuse(_shown(relative), f"it is longer than the filesystem allows ({path_max} bytes)")


def _check_folders(root: Path, relative: str, resolved: Path) -> None:
    for parent in resolved.parents:
        if parent == root:
            return
        if parent.exists() and not parent.is_dir():
            raise _refuse(relative, f"{parent.relative_to(root).as_posix()!r} is a file, not a folder")


def _limit(root: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(root, name)
    except (OSError, ValueError):
        return default


def _shown(relative: str) -> str:
    return relative if len(relative) <= 100 else f"{relative[:100]}... ({len(relative):,} characters)"


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@dataclass
class _Staged:
    relative: str
    target: Path
    content: bytes | None  # None: delete
    original: bytes | None  # None: the file did not exist
    original_mode: int | None
    temp: Path | None = None
    committed: bool = False


def _make_parents(target: Path, root: Path, made: list[Path]) -> None:
    missing = []
    parent = target.parent
    while parent != root and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir()
        made.append(directory)


def _stage(item: _Staged) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{item.target.name}.", suffix=".hybrid-tmp", dir=item.target.parent)
    item.temp = Path(name)
    with os.fdopen(fd, "wb") as handle:
        handle.write(item.content or b"")
        handle.flush()
        os.fsync(handle.fileno())
    if item.original_mode is not None:
        os.chmod(item.temp, item.original_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(item.temp, 0o666 & ~umask)


def _restore(item: _Staged) -> None:
    if item.original is None:
        item.target.unlink(missing_ok=True)
        return
    fd, name = tempfile.mkstemp(prefix=f".{item.target.name}.", suffix=".hybrid-undo", dir=item.target.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(item.original)
    if item.original_mode is not None:
        os.chmod(name, item.original_mode)
    os.replace(name, item.target)


def write_all(
    root: Path, changes: Mapping[str, bytes | None], permissions: ProjectPermissions | None = None
) -> list[WrittenFile]:
    """Write (or delete, for ``None``) every file in ``changes``, all or none. With
    ``permissions``, a path an Edit deny rule covers is refused like a path out of the project."""
    root = Path(root).resolve()
    staged: list[_Staged] = []
    for relative, content in changes.items():
        target = confine(root, relative, purpose="write")
        refusal = permissions.edit_refusal(relative, target) if permissions else None
        if refusal:
            raise _refuse(relative, refusal)
        if target.is_dir():
            raise _refuse(relative, "it is a directory")
        exists = target.is_file()
        if content is None and not exists:
            raise _refuse(relative, "cannot delete a file that does not exist")
        staged.append(
            _Staged(
                relative=target.relative_to(root).as_posix(),
                target=target,
                content=content,
                original=target.read_bytes() if exists else None,
                original_mode=target.stat().st_mode & 0o7777 if exists else None,
            )
        )
    made_dirs: list[Path] = []
    try:
        for item in staged:
            if item.content is not None:
                _make_parents(item.target, root, made_dirs)
                _stage(item)
        for item in staged:
            if item.content is None:
                item.target.unlink()
            else:
                os.replace(item.temp, item.target)
                item.temp = None
            item.committed = True
    except BaseException:
        for item in reversed(staged):
            if item.committed:
                _restore(item)
        for item in staged:
            if item.temp is not None:
                item.temp.unlink(missing_ok=True)
        for directory in reversed(made_dirs):
            try:
                directory.rmdir()
            except OSError:
                pass
        raise
    return [
        WrittenFile(
            path=item.relative,
            lines=count_lines(item.content) if item.content is not None else 0,
            bytes=len(item.content) if item.content is not None else 0,
            created=item.original is None,
            deleted=item.content is None,
        )
        for item in staged
    ]
