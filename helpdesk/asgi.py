import os

from django.core.asgi import get_asgi_application

from helpdesk.startup import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings.base")
require_secret_key()
application = get_asgi_application()
