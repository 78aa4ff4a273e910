"""REST API v1: tickets. Reads start from `accounts.permissions.visible_tickets`; every
change goes through `tickets.services`, which checks the rights and records the event."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions
from accounts.api_keys import client_ip
from accounts.models import User
from tickets import search, selectors, services
from tickets.models import Collaborator, Source, Ticket

from .. import serializers as s
from ..exceptions import BodyLimitMixin
from ..idempotency import idempotent
from ..pagination import CursorPagination
from ..schema import ERRORS, IDEMPOTENCY_KEY


class TicketPagination(CursorPagination):
    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        return getattr(view, "cursor_ordering", ("-id",))


def _filters(request: Request) -> dict[str, Any]:
    for name in request.query_params:
        if len(request.query_params.getlist(name)) > 1:
            raise ValidationError({name: [_("Give this parameter once.")]})
    serializer = s.TicketFilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _apply_filters(tickets: QuerySet[Ticket], data: dict[str, Any], user: User) -> QuerySet:
    simple = {
        "status": "status_id",
        "priority": "priority_id",
        "department": "department_id",
        "help_topic": "help_topic_id",
        "cti_category": "cti_category_id",
        "cti_type": "cti_type_id",
        "cti_item": "cti_item_id",
        "team": "team_id",
        "organization": "organization_id",
        "customer": "user_id",
    }
    for name, column in simple.items():
        if name in data:
            tickets = tickets.filter(**{column: data[name]})
    if "state" in data:
        tickets = tickets.filter(status__state=data["state"])
    assignee = data.get("assignee")
    if assignee == "me":
        tickets = tickets.filter(assignee=user)
    elif assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    elif assignee:
        tickets = tickets.filter(assignee_id=int(assignee))
    if data.get("overdue") is not None:
        tickets = tickets.filter(is_overdue=data["overdue"])
    if "updated_since" in data:
        tickets = tickets.filter(updated_at__gte=data["updated_since"])
    if data.get("search"):
        tickets = search.tickets_search(tickets, data["search"])
    return tickets


def _ticket(request: Request, pk: Any) -> Ticket:
    try:
        ticket_id = int(pk)
    except (TypeError, ValueError):
        raise Http404 from None
    if ticket_id > s.MAX_ID:
        raise Http404
    return selectors.ticket_get_by_id_for_user(user=request.user, ticket_id=ticket_id)


def _valid(serializer_class: type, request: Request, **kwargs: Any) -> Any:
    serializer = serializer_class(data=request.data, context={"request": request}, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


def _ticket_response(ticket: Ticket, user: User, status: int = http.HTTP_200_OK) -> Response:
    """The ticket as it is now (the services changed it), as the user sees it."""
    fresh = selectors.ticket_list_for_user(user=user).filter(pk=ticket.pk).first()
    if fresh is None:  # e.g. transferred out of the agent's departments
        return Response(status=http.HTTP_204_NO_CONTENT)
    return Response(s.TicketSerializer(fresh).data, status=status)


@extend_schema(tags=["tickets"], responses={200: s.TicketSerializer, **ERRORS})
class TicketViewSet(BodyLimitMixin, viewsets.GenericViewSet):
    """Tickets as the key's user sees them in the staff UI (or the portal, for customers)."""

    serializer_class = s.TicketSerializer
    pagination_class = TicketPagination
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet[Ticket]:
        return selectors.ticket_list_for_user(user=self.request.user)

    def _loaded(self, pk: Any) -> Ticket:
        return _ticket(self.request, pk)

    @extend_schema(
        summary="List tickets",
        parameters=[s.TicketFilterSerializer],
        responses={200: s.TicketSerializer(many=True), **ERRORS},
    )
    def list(self, request: Request) -> Response:
        data = _filters(request)
        # Newest first by default: the primary key's index serves it at any table size.
        self.cursor_ordering = (data.get("ordering", "-id"), "-id")
        if self.cursor_ordering[0].lstrip("-") == "id":
            self.cursor_ordering = (self.cursor_ordering[0],)
        tickets = _apply_filters(self.get_queryset(), data, request.user)
        page = self.paginate_queryset(tickets)
        return self.get_paginated_response(s.TicketSerializer(page, many=True).data)

    @extend_schema(summary="Fetch a ticket by id")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.TicketSerializer(self._loaded(pk)).data)

    @extend_schema(
        summary="Fetch a ticket by number",
        parameters=[OpenApiParameter("number", str, OpenApiParameter.PATH)],
    )
    @action(detail=False, methods=["get"], url_path=r"by-number/(?P<number>[^/]+)")
    def by_number(self, request: Request, number: str) -> Response:
        ticket = selectors.ticket_get_for_user(user=request.user, number=number)
        return Response(s.TicketSerializer(ticket).data)

    @extend_schema(
        summary="Open a ticket",
        request=s.TicketCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.TicketSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        return idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        serializer = _valid(s.TicketCreateSerializer, request)
        data = serializer.validated_data
        user = request.user
        is_agent = permissions.is_agent(user)
        if not is_agent:
            sent = [name for name in s.TicketCreateSerializer.AGENT_ONLY if name in request.data]
            if sent:
                raise PermissionDenied(
                    _("Only agents set %(fields)s.") % {"fields": ", ".join(sent)}
                )
        elif not data.get("customer_email"):
            raise ValidationError({"customer_email": [_("Name the customer.")]})
        draft = services.TicketDraft(
            subject=data["subject"],
            body=data["body"],
            body_format=data["body_format"],
            user=None if is_agent else user,
            email=data.get("customer_email", ""),
            name=data.get("customer_name", ""),
            help_topic=data.get("help_topic"),
            department=data.get("department"),
            priority=data.get("priority"),
            status=data.get("status"),
            assignee=data.get("assignee"),
            team=data.get("team"),
            cti_item=data.get("cti_item"),
            source=Source.API,
            attachments=serializer.uploads(),
            collaborators=data.get("collaborators") or [],
            auto_respond=data["auto_respond"],
            alert=data["alert"],
            ip_address=client_ip(request.META),
        )
        ticket = services.ticket_open(draft=draft, by=user)
        return _ticket_response(ticket, user, http.HTTP_201_CREATED)

    @extend_schema(summary="Change a ticket", request=s.TicketUpdateSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        data = _valid(s.TicketUpdateSerializer, request).validated_data
        user = request.user
        # All or nothing: one change refused rolls back the others.
        with transaction.atomic():
            if "subject" in data and data["subject"] != ticket.subject:
                services.ticket_subject_edit(ticket=ticket, by=user, subject=data["subject"])
            if "priority" in data and data["priority"].pk != ticket.priority_id:
                services.ticket_priority_set(ticket=ticket, by=user, priority=data["priority"])
            if "help_topic" in data and data["help_topic"] != ticket.help_topic:
                services.ticket_help_topic_set(
                    ticket=ticket, by=user, help_topic=data["help_topic"]
                )
            if "cti_item" in data and data["cti_item"] != ticket.cti_item:
                services.ticket_cti_set(ticket=ticket, by=user, item=data["cti_item"])
            if "due_at" in data:
                services.ticket_due_override_set(ticket=ticket, by=user, due_at=data["due_at"])
            if "status" in data and data["status"].pk != ticket.status_id:
                services.ticket_status_set(
                    ticket=ticket, by=user, status=data["status"], comment=data["status_comment"]
                )
        return _ticket_response(ticket, request.user)

    def _entry_response(self, entry: Any) -> Response:
        return Response(s.EntrySerializer(entry).data, status=http.HTTP_201_CREATED)

    @extend_schema(
        summary="Reply to the customer",
        request=s.ReplySerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.EntrySerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str) -> Response:
        def handler() -> Response:
            ticket = self._loaded(pk)
            serializer = _valid(s.ReplySerializer, request)
            entry = services.ticket_reply(
                ticket=ticket,
                by=request.user,
                body=serializer.validated_data["body"],
                body_format=serializer.validated_data["body_format"],
                attachments=serializer.uploads(),
                status=serializer.validated_data.get("status"),
                source=Source.API,
            )
            return self._entry_response(entry)

        return idempotent(request, handler)

    @extend_schema(
        summary="Add an internal note",
        request=s.BodySerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.EntrySerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str) -> Response:
        def handler() -> Response:
            ticket = self._loaded(pk)
            serializer = _valid(s.BodySerializer, request)
            entry = services.ticket_note_add(
                ticket=ticket,
                by=request.user,
                body=serializer.validated_data["body"],
                body_format=serializer.validated_data["body_format"],
                attachments=serializer.uploads(),
                source=Source.API,
            )
            return self._entry_response(entry)

        return idempotent(request, handler)

    @extend_schema(
        summary="Write as the customer (customers' keys)",
        request=s.BodySerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.EntrySerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: str) -> Response:
        def handler() -> Response:
            ticket = self._loaded(pk)
            serializer = _valid(s.BodySerializer, request)
            entry = services.ticket_message_add(
                ticket=ticket,
                user=request.user,
                body=serializer.validated_data["body"],
                body_format=serializer.validated_data["body_format"],
                attachments=serializer.uploads(),
                source=Source.API,
            )
            return self._entry_response(entry)

        return idempotent(request, handler)

    @extend_schema(summary="Assign to an agent and/or a team", request=s.AssignSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        data = _valid(s.AssignSerializer, request).validated_data
        services.ticket_assign(
            ticket=ticket,
            by=request.user,
            agent=data.get("agent"),
            team=data.get("team"),
            comment=data["comment"],
        )
        return _ticket_response(ticket, request.user)

    @extend_schema(summary="Claim an unassigned ticket", request=None)
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        services.ticket_claim(ticket=ticket, by=request.user)
        return _ticket_response(ticket, request.user)

    @extend_schema(summary="Release the assignment", request=s.ReleaseSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        data = _valid(s.ReleaseSerializer, request).validated_data
        services.ticket_release(
            ticket=ticket,
            by=request.user,
            agent=data["agent"],
            team=data["team"],
            comment=data["comment"],
        )
        return _ticket_response(ticket, request.user)

    @extend_schema(
        summary="Transfer to another department",
        description="Answers 204 when the agent no longer sees the ticket in its new place.",
        request=s.TransferSerializer,
        responses={200: s.TicketSerializer, 204: None, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def transfer(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        data = _valid(s.TransferSerializer, request).validated_data
        services.ticket_transfer(
            ticket=ticket, by=request.user, department=data["department"], comment=data["comment"]
        )
        return _ticket_response(ticket, request.user)

    @extend_schema(
        summary="Collaborators (list, or add one by address)",
        request=s.CollaboratorAddSerializer,
        responses={
            200: s.CollaboratorSerializer(many=True),
            201: s.CollaboratorSerializer,
            **ERRORS,
        },
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def collaborators(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        if request.method == "POST":
            data = _valid(s.CollaboratorAddSerializer, request).validated_data
            collaborator = services.ticket_collaborator_add(
                ticket=ticket, by=request.user, email=data["email"], name=data["name"]
            )
            return Response(
                s.CollaboratorSerializer(collaborator).data, status=http.HTTP_201_CREATED
            )
        rows = Collaborator.objects.filter(ticket=ticket).select_related("user").order_by("pk")
        return Response(s.CollaboratorSerializer(rows, many=True).data)

    @extend_schema(
        summary="Remove a collaborator",
        parameters=[OpenApiParameter("user_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={204: None, **ERRORS},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"collaborators/(?P<user_id>[0-9]+)",
        url_name="collaborator-remove",
    )
    def collaborator_remove(self, request: Request, pk: str, user_id: str) -> Response:
        ticket = self._loaded(pk)
        collaborator = get_object_or_404(
            Collaborator.objects.select_related("user"), ticket=ticket, user_id=int(user_id)
        )
        services.ticket_collaborator_remove(ticket=ticket, by=request.user, user=collaborator.user)
        return Response(status=http.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The thread: messages, responses and (for agents) internal notes",
        responses={200: s.EntrySerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def entries(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        entries = selectors.ticket_entries_for_user(ticket=ticket, user=request.user)
        return Response(s.EntrySerializer(entries, many=True).data)

    @extend_schema(
        summary="The audit events, newest first (agents)",
        responses={200: s.EventSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request: Request, pk: str) -> Response:
        ticket = self._loaded(pk)
        if not permissions.is_agent(request.user):
            raise PermissionDenied(_("Only agents read the audit events."))
        events = selectors.ticket_events(ticket=ticket).order_by("-created_at", "-pk")
        return Response(s.EventSerializer(events, many=True).data)


@extend_schema(tags=["tickets"])
class AttachmentViewSet(BodyLimitMixin, viewsets.GenericViewSet):
    """Attachments, downloaded only after the ticket's access check."""

    serializer_class = s.AttachmentSerializer
    queryset = selectors.Attachment.objects.none()
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
        summary="An attachment's details", responses={200: s.AttachmentSerializer, **ERRORS}
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        attachment = selectors.attachment_get_for_user(user=request.user, attachment_id=int(pk))
        return Response(s.AttachmentSerializer(attachment).data)

    @extend_schema(
        summary="Download an attachment",
        responses={(200, "application/octet-stream"): bytes, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> FileResponse:
        attachment = selectors.attachment_get_for_user(user=request.user, attachment_id=int(pk))
        response = FileResponse(
            attachment.file.open("rb"), as_attachment=True, filename=attachment.name
        )
        response["Content-Type"] = "application/octet-stream"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
