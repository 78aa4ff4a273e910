"""Make an API key for provisioning by script; the key is printed alone on the last line.

    python manage.py create_api_key --name n8n --user n8n@example.com \\
        --ip 10.0.0.0/8 --can-create-tickets --can-exec-cron
"""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.services import user_get_by_email


class Command(BaseCommand):
    help = "Create an API key and print it (it is stored hashed and cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--user",
            metavar="EMAIL",
            help="The user the key acts as (default: the built-in API service account).",
        )
        parser.add_argument(
            "--ip",
            action="append",
            default=[],
            metavar="ADDRESS_OR_NETWORK",
            help="Allow only this address or network (repeatable; default: any).",
        )
        parser.add_argument("--can-create-tickets", action="store_true")
        parser.add_argument("--can-exec-cron", action="store_true")
        parser.add_argument("--expires-in-days", type=int, metavar="DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["user"]:
            user = user_get_by_email(email=options["user"])
            if user is None:
                raise CommandError(f"no user with the address {options['user']}")
            if not user.is_active:
                raise CommandError(f"{user.email} is deactivated")
        expires_at = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] <= 0:
                raise CommandError("--expires-in-days must be positive")
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        try:
            new = api_key_create(
                name=options["name"],
                user=user,
                allowed_ips=options["ip"],
                can_create_tickets=options["can_create_tickets"],
                can_exec_cron=options["can_exec_cron"],
                expires_at=expires_at,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        key = new.api_key
        self.stderr.write(
            f"API key {key.name!r} (id {key.pk}) acts as {key.user.email}; "
            "store it now, it is not shown again:"
        )
        self.stdout.write(new.key)
