"""Who may call what: permissions, what each role grants, and every route's rule in ONE table.

Deny by default: :func:`vectrion_gateway.auth.authorize` runs before every
route the app includes and refuses (403) any route that has no entry in
:data:`ROUTE_PERMISSIONS`. A new router adds its rows here, e.g.
``("POST", "/v1/chat/completions"): Permission.QUERY`` and, if it should
count against a rate-limit budget, a row in :data:`ROUTE_RATE_BUDGETS`.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

from vectrion_gateway.models import Role
from vectrion_gateway.ratelimit import Budget


class Permission(enum.StrEnum):
    DOCUMENTS_READ = "documents:read"
    DOCUMENTS_WRITE = "documents:write"  # upload, delete, reprocess
    QUERY = "query"  # search, ask, conversations
    GUARDRAILS_CHECK = "guardrails:check"
    USAGE_READ = "usage:read"
    API_KEYS_MANAGE = "api_keys:manage"  # the caller's own keys
    SESSION = "session"  # the caller's own login session (logout)
    USERS_MANAGE = "users:manage"  # own tenant's users; every tenant's for a platform admin
    TENANTS_MANAGE = "tenants:manage"
    DLQ_MANAGE = "dlq:manage"
    RECONCILE = "reconcile"  # compare and repair files, chunks, read model and vectors


_MEMBER = frozenset(
    {
        Permission.DOCUMENTS_READ,
        Permission.QUERY,
        Permission.GUARDRAILS_CHECK,
        Permission.USAGE_READ,
        Permission.API_KEYS_MANAGE,
        Permission.SESSION,
    }
)

ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.MEMBER: _MEMBER,
    Role.ADMIN: _MEMBER | {Permission.DOCUMENTS_WRITE, Permission.USERS_MANAGE},
    Role.PLATFORM_ADMIN: frozenset(Permission),
}

# A key cannot mint more keys or act as a login session, whatever its owner may do.
KEY_GRANTABLE: Final[frozenset[Permission]] = frozenset(Permission) - {Permission.API_KEYS_MANAGE, Permission.SESSION}


def role_permissions(role: Role, *, members_can_write_documents: bool = False) -> frozenset[Permission]:
    granted = ROLE_PERMISSIONS[role]
    if role is Role.MEMBER and members_can_write_documents:
        granted = granted | {Permission.DOCUMENTS_WRITE}
    return granted


PUBLIC: Final = "public"
Rule = Permission | Literal["public"]

# (method, route path as declared) -> what the caller needs.
ROUTE_PERMISSIONS: Final[dict[tuple[str, str], Rule]] = {
    # auth
    ("POST", "/v1/auth/token"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,  # the refresh token in the body is the credential
    ("POST", "/v1/auth/logout"): Permission.SESSION,
    # API keys
    ("POST", "/v1/api-keys"): Permission.API_KEYS_MANAGE,
    ("GET", "/v1/api-keys"): Permission.API_KEYS_MANAGE,
    ("DELETE", "/v1/api-keys/{key_id}"): Permission.API_KEYS_MANAGE,
    # usage
    ("GET", "/v1/usage"): Permission.USAGE_READ,
    # administration
    ("POST", "/v1/admin/tenants"): Permission.TENANTS_MANAGE,
    ("GET", "/v1/admin/tenants"): Permission.TENANTS_MANAGE,
    ("PATCH", "/v1/admin/tenants/{tenant_id}"): Permission.TENANTS_MANAGE,
    ("GET", "/v1/admin/dlq"): Permission.DLQ_MANAGE,
    ("GET", "/v1/admin/dlq/{message_id}"): Permission.DLQ_MANAGE,
    ("POST", "/v1/admin/dlq/{message_id}/replay"): Permission.DLQ_MANAGE,
    ("DELETE", "/v1/admin/dlq/{message_id}"): Permission.DLQ_MANAGE,
    ("POST", "/v1/admin/reconcile"): Permission.RECONCILE,
    ("POST", "/v1/admin/users"): Permission.USERS_MANAGE,
    ("GET", "/v1/admin/users"): Permission.USERS_MANAGE,
    ("PATCH", "/v1/admin/users/{user_id}"): Permission.USERS_MANAGE,
    # documents (ingest)
    ("POST", "/v1/documents"): Permission.DOCUMENTS_WRITE,
    ("GET", "/v1/documents"): Permission.DOCUMENTS_READ,
    ("GET", "/v1/documents/{document_id}"): Permission.DOCUMENTS_READ,
    ("DELETE", "/v1/documents/{document_id}"): Permission.DOCUMENTS_WRITE,
    ("POST", "/v1/documents/{document_id}/reprocess"): Permission.DOCUMENTS_WRITE,
    ("GET", "/v1/documents/{document_id}/{subpath:path}"): Permission.DOCUMENTS_READ,
    ("POST", "/v1/documents/{document_id}/{subpath:path}"): Permission.DOCUMENTS_WRITE,
    ("PUT", "/v1/documents/{document_id}/{subpath:path}"): Permission.DOCUMENTS_WRITE,
    ("PATCH", "/v1/documents/{document_id}/{subpath:path}"): Permission.DOCUMENTS_WRITE,
    ("DELETE", "/v1/documents/{document_id}/{subpath:path}"): Permission.DOCUMENTS_WRITE,
    # query
    ("POST", "/v1/search"): Permission.QUERY,
    ("POST", "/v1/query"): Permission.QUERY,
    ("POST", "/v1/chat/completions"): Permission.QUERY,
    ("GET", "/v1/conversations"): Permission.QUERY,
    ("GET", "/v1/conversations/{conversation_id}"): Permission.QUERY,
    ("DELETE", "/v1/conversations/{conversation_id}"): Permission.QUERY,
    ("GET", "/v1/conversations/{conversation_id}/{subpath:path}"): Permission.QUERY,
    ("POST", "/v1/conversations/{conversation_id}/{subpath:path}"): Permission.QUERY,
    ("PUT", "/v1/conversations/{conversation_id}/{subpath:path}"): Permission.QUERY,
    ("PATCH", "/v1/conversations/{conversation_id}/{subpath:path}"): Permission.QUERY,
    ("DELETE", "/v1/conversations/{conversation_id}/{subpath:path}"): Permission.QUERY,
    # guardrails
    ("POST", "/v1/guardrails/check"): Permission.GUARDRAILS_CHECK,
}


# (method, route path) -> the rate-limit budget a request counts against; routes not listed have none.
ROUTE_RATE_BUDGETS: Final[dict[tuple[str, str], Budget]] = {
    ("POST", "/v1/search"): Budget.QUERY,
    ("POST", "/v1/query"): Budget.QUERY,
    ("POST", "/v1/chat/completions"): Budget.QUERY,
    ("POST", "/v1/documents"): Budget.UPLOAD,
    ("POST", "/v1/documents/{document_id}/reprocess"): Budget.UPLOAD,
    ("DELETE", "/v1/documents/{document_id}"): Budget.UPLOAD,
}
