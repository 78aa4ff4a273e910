"""`/api/`: the REST API v1 and osTicket's API paths."""

from csp.decorators import csp_update
from django.urls import include, path, re_path
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.routers import SimpleRouter

from . import osticket
from .exceptions import not_found
from .views import admin, kb, resources, settings, tickets

app_name = "api"


# Redoc styles itself with inline <style> tags and renders in a blob: worker; the page holds
# nothing but the schema, so only it gets these two allowances.
@method_decorator(
    csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}),
    name="dispatch",
)
class DocsView(SpectacularRedocView):
    pass


class Router(SimpleRouter):
    """Paths work with and without the trailing slash (clients differ; no redirects)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("tickets", tickets.TicketViewSet, basename="ticket")
router.register("attachments", tickets.AttachmentViewSet, basename="attachment")
router.register("customers", resources.CustomerViewSet, basename="customer")
router.register("organizations", resources.OrganizationViewSet, basename="organization")
router.register("agents", resources.AgentViewSet, basename="agent")
router.register("roles", resources.RoleViewSet, basename="role")
router.register("departments", resources.DepartmentViewSet, basename="department")
router.register("teams", resources.TeamViewSet, basename="team")
router.register("help-topics", resources.HelpTopicViewSet, basename="help-topic")
router.register("cti/categories", resources.CategoryViewSet, basename="cti-category")
router.register("cti/types", resources.CtiTypeViewSet, basename="cti-type")
router.register("cti/items", resources.CtiItemViewSet, basename="cti-item")
router.register("statuses", resources.StatusViewSet, basename="status")
router.register("priorities", resources.PriorityViewSet, basename="priority")
router.register("filters", resources.FilterViewSet, basename="filter")
router.register("filter-rules", resources.FilterRuleViewSet, basename="filter-rule")
router.register("banned-addresses", resources.BannedAddressViewSet, basename="banned-address")
router.register("mailboxes", resources.MailboxViewSet, basename="mailbox")
router.register("email-templates", resources.EmailTemplateViewSet, basename="email-template")
router.register("slas", resources.SLAPlanViewSet, basename="sla")
router.register("sla-targets", resources.PriorityTargetViewSet, basename="sla-target")
router.register("schedules", resources.ScheduleViewSet, basename="schedule")
router.register("schedule-periods", resources.PeriodViewSet, basename="schedule-period")
router.register("holidays", resources.HolidayViewSet, basename="holiday")
router.register(
    "schedule-exceptions", resources.ScheduleExceptionViewSet, basename="schedule-exception"
)
router.register("canned-responses", kb.CannedResponseViewSet, basename="canned-response")
router.register("kb/categories", kb.KbCategoryViewSet, basename="kb-category")
router.register("kb/articles", kb.KbArticleViewSet, basename="kb-article")
router.register("api-keys", admin.ApiKeyViewSet, basename="api-key")
router.register("webhooks", admin.WebhookViewSet, basename="webhook")

urlpatterns = [
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^v1/settings/?$", settings.SettingsView.as_view(), name="settings"),
    path("v1/", include(router.urls)),
    # Unknown paths and ids that are no ids get the API's JSON 404, not the HTML page.
    re_path(r"^v1/", not_found),
    # osTicket's paths, with and without its front controller in the URL.
    # Anything else outside v1/ is osTicket's "URL not supported".
    re_path(r"^(?!v1/)(?:http\.php/)?(?P<route>.*)$", osticket.dispatch, name="osticket"),
]
