"""Every error ingest reports to a client. One base, mapped to problem+json once
by the handler ``vectrion_common.web.create_service_app`` installs for ProblemError."""

from __future__ import annotations

from vectrion_common.problems import ProblemError


class IngestError(ProblemError):
    """Base of the ingest service's client-facing errors."""


class FileTooLarge(IngestError):
    status, type_, title = 413, "file-too-large", "File too large"


class UnsupportedFileType(IngestError):
    status, type_, title = 415, "unsupported-media-type", "Unsupported file type"


class EmptyFile(IngestError):
    status, type_, title = 422, "empty-file", "The uploaded file is empty"


class InvalidPdf(IngestError):
    status, type_, title = 422, "invalid-pdf", "The file is not a readable PDF"


class InvalidDocx(IngestError):
    status, type_, title = 422, "invalid-docx", "The file is not a readable DOCX"


class EncryptedPdf(IngestError):
    status, type_, title = 422, "encrypted-pdf", "The PDF is encrypted"


class TooManyPages(IngestError):
    status, type_, title = 422, "too-many-pages", "The document has too many pages"


class DocumentNotFound(IngestError):
    status, type_, title = 404, "not-found", "Not found"


class DuplicateDocument(IngestError):
    """The same bytes already exist in the tenant as a document the caller may not see."""

    status, type_, title = 409, "duplicate-document", "Duplicate document"


class NotAllowed(IngestError):
    status, type_, title = 403, "forbidden", "Not allowed"


class DocumentBeingDeleted(IngestError):
    status, type_, title = 409, "document-being-deleted", "The document is being deleted"


class DeletionPending(IngestError):
    """The deletion is recorded and will complete, but search could not be confirmed clean in time:
    repeat the DELETE (it is idempotent) until it answers 202."""

    status, type_, title = 503, "deletion-pending", "Deletion recorded, not yet effective"
