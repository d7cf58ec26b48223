"""Documents as a user handles them: upload (a new file or a new version),
delete, retry, re-ingest and cancel.

Upload: the file is streamed to a temporary file while its SHA-256 is
computed; its real type and limits are checked; the row is saved and the file
moved into storage in one transaction; the ingestion task is sent on commit.
The pipeline that then parses, chunks and embeds is ``ingest.pipeline``.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import (
    IntegrityError,
    transaction,
)
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.models import AuditEvent, User
from accounts.services import audit_record
from core.tasks import enqueue_on_commit
from ingest.filetypes import RejectedFile, detect
from ingest.pipeline import ACTIVE_STATUSES
from kb.models import Collection, Document
from kb.services import collection_touch
from kb.storage import (
    delete_stored_files_on_commit,
    discard_stored_file,
    store_original,
)

INGEST_TASK = "ingest.tasks.ingest_document"


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file: ingested, a duplicate, or refused."""

    filename: str
    document: Document | None = None
    duplicate_of: Document | None = None
    rejected_reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.document is not None


def _stream_to_temp(uploaded: UploadedFile) -> tuple[Path, str, int]:
    media_root = Path(default_storage.path(""))
    temp_dir = media_root / "incoming"
    temp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(dir=temp_dir, delete=False)  # noqa: SIM115 - moved, not closed here
    try:
        with handle:
            for block in uploaded.chunks(1024 * 1024):
                size += len(block)
                if size > settings.MAX_UPLOAD_BYTES:
                    raise RejectedFile(
                        _("The file is larger than the %(limit)d MB limit.")
                        % {"limit": settings.MAX_UPLOAD_BYTES // 2**20}
                    )
                digest.update(block)
                handle.write(block)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name), digest.hexdigest(), size


def _clean_title(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip() or _("Untitled")
    return name[:500]


def document_upload(
    *,
    collection: Collection,
    uploaded: UploadedFile,
    uploader: User,
    replace: Document | None = None,
    request: HttpRequest | None = None,
) -> UploadOutcome:
    """Store one file and queue it, or say why not. ``replace`` uploads a new
    version of an existing document: same identity, chunks swapped when the
    new version is ready."""
    filename = _clean_title(uploaded.name or "")
    try:
        temp_path, sha256, size = _stream_to_temp(uploaded)
    except RejectedFile as exc:
        return UploadOutcome(filename, rejected_reason=str(exc))
    try:
        duplicate = Document.objects.filter(
            collection=collection, sha256=sha256
        ).first()
        if duplicate is not None:
            return UploadOutcome(filename, duplicate_of=duplicate)
        try:
            detected = detect(temp_path, filename)
        except RejectedFile as exc:
            return UploadOutcome(filename, rejected_reason=str(exc))
        try:
            document = _record_upload(
                collection=collection,
                temp_path=temp_path,
                filename=filename,
                sha256=sha256,
                size=size,
                mime=detected.mime,
                uploader=uploader,
                replace=replace,
                request=request,
            )
        except IntegrityError:
            # Another request stored the same content between our check and
            # our insert: the same outcome as a sequential duplicate.
            duplicate = Document.objects.filter(
                collection=collection, sha256=sha256
            ).first()
            if duplicate is None:
                raise
            return UploadOutcome(filename, duplicate_of=duplicate)
        return UploadOutcome(filename, document=document)
    finally:
        temp_path.unlink(missing_ok=True)


def _record_upload(
    *,
    collection: Collection,
    temp_path: Path,
    filename: str,
    sha256: str,
    size: int,
    mime: str,
    uploader: User,
    replace: Document | None,
    request: HttpRequest | None,
) -> Document:
    """Save the row, then move the file into storage, in one transaction. The
    row goes first so a losing race stores nothing; a file moved before a
    failed commit is removed again, so no original is left without a row."""
    storage_name = ""
    try:
        with transaction.atomic():
            if replace is None:
                document = Document(
                    collection=collection,
                    title=filename,
                    original_filename=filename,
                    uploaded_by=uploader,
                )
            else:
                document = Document.objects.select_for_update().get(pk=replace.pk)
                delete_stored_files_on_commit([document.storage_name])
                document.storage_name = Document._meta.get_field(
                    "storage_name"
                ).get_default()
                document.version += 1
                document.original_filename = filename
                document.attempts = 0
                document.failure_reason = ""
            document.sha256 = sha256
            document.size_bytes = size
            document.content_type = mime
            document.status = Document.Status.QUEUED
            document.progress = 0
            document.save()
            storage_name = document.storage_name
            store_original(temp_path, storage_name)
            audit_record(
                action=AuditEvent.Action.DOCUMENT_UPLOADED,
                actor=uploader,
                target=document,
                request=request,
                details={
                    "collection": collection.pk,
                    "sha256": sha256,
                    "version": document.version,
                },
            )
            _enqueue_on_commit(document.pk)
    except BaseException:
        if storage_name:
            discard_stored_file(storage_name)
        raise
    return document


def _enqueue_on_commit(document_id: int) -> None:
    enqueue_on_commit(INGEST_TASK, document_id)


def document_delete(
    *, document: Document, actor: User | None, request: HttpRequest | None = None
) -> None:
    """Delete the row, its chunks, its stored file, and retire cached answers
    built on its collection (the collection's version moves on)."""
    with transaction.atomic():
        audit_record(
            action=AuditEvent.Action.DOCUMENT_DELETED,
            actor=actor,
            target=document,
            request=request,
            details={"collection": document.collection_id},
        )
        delete_stored_files_on_commit([document.storage_name])
        collection_id = document.collection_id
        document.delete()
        collection_touch(collection_id=collection_id)


def _requeue(document: Document, from_statuses: list[str]) -> bool:
    """Queue the document again with a fresh attempt count, if it is in one of
    ``from_statuses``; the task is sent once the change is committed."""
    with transaction.atomic():
        updated = Document.objects.filter(
            pk=document.pk, status__in=from_statuses
        ).update(
            status=Document.Status.QUEUED, attempts=0, progress=0, failure_reason=""
        )
        if updated:
            _enqueue_on_commit(document.pk)
    return bool(updated)


def document_retry(*, document: Document) -> bool:
    """Queue a failed or cancelled document again."""
    return _requeue(document, [Document.Status.FAILED, Document.Status.CANCELLED])


def document_reingest(*, document: Document) -> bool:
    """Run a finished document through the pipeline again (e.g. after a parser
    upgrade); its current chunks stay searchable until the new ones replace them."""
    return _requeue(
        document,
        [Document.Status.READY, Document.Status.FAILED, Document.Status.CANCELLED],
    )


def document_cancel(*, document: Document) -> bool:
    """Stop a queued or running ingestion; the worker notices between batches."""
    updated = Document.objects.filter(
        pk=document.pk, status__in=[Document.Status.QUEUED, *ACTIVE_STATUSES]
    ).update(status=Document.Status.CANCELLED, failure_reason=_("Cancelled by a user."))
    return bool(updated)
