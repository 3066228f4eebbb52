from django.contrib import admin
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import TemplateView

from mediastore.api import api
from mediastore.metrics import API_NOT_FOUND, metrics_view
from mediastore.routing import IndexedResolver
from status.views import status_archive, status_page
from tus import views as tus_views
from tus.pages import upload_page


@csrf_exempt  # answers every method; like the API's own views, it reads no cookie
def api_not_found(request: HttpRequest, exception: Exception | None = None):
    """A URL under /api/ that no operation matches (an unknown path, or a pid no route can carry,
    such as one with a line break) answers JSON like every other API 404, not Django's HTML page.

    Routed as the last /api/ pattern, so that it answers with DEBUG on too (Django then shows its
    technical 404 page instead of calling ``handler404``)."""
    detail = f"no API operation at '{request.path[:200]}'"
    return JsonResponse({"detail": detail}, status=404, content_type="application/json; charset=utf-8")


urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    # /api/ itself: ninja's root view (there to reverse the API's prefix) only raises Http404.
    re_path(r"^api/$", api_not_found, name=API_NOT_FOUND),
    # tus 1.0 resumable uploads: plain views (HEAD, PATCH of raw bytes, OPTIONS; docs/resumable-uploads.md).
    re_path(r"^api/tus/?$", tus_views.collection, name="tus"),
    re_path(r"^api/tus/(?P<upload_id>[0-9a-f]{1,32})$", tus_views.resource, name="tus-upload"),
    IndexedResolver.replacing(path("api/", api.urls)),  # the same patterns, found faster
    re_path(r"^api/", api_not_found, name=API_NOT_FOUND),  # after the API: what no operation takes
    path("status/", status_page, name="status"),
    path("upload/", upload_page, name="upload"),
    path("status/archive", status_archive, name="status-archive"),
    path("metrics", metrics_view, name="metrics"),
]


def not_found(request: HttpRequest, exception: Exception):
    """An Http404 no view answered: JSON under /api/ (``api_not_found``), elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


handler404 = not_found


def server_error(request: HttpRequest):
    """An error no handler answers: under /api/ a JSON 500 with a message like every other API
    answer (clients parse JSON), elsewhere Django's page. The traceback is in the server's log."""
    if request.path.startswith("/api/"):
        detail = "internal server error: the server's log has the details; the request may be retried"
        return JsonResponse({"detail": detail}, status=500, content_type="application/json; charset=utf-8")
    return defaults.server_error(request)


handler500 = server_error


def bad_request(request: HttpRequest, exception: Exception):
    """A request Django refuses before any view (a ``SuspiciousOperation``: a Host header not in
    ``DJANGO_ALLOWED_HOSTS``, too many form fields): under /api/ a JSON 400 naming the reason,
    elsewhere Django's page."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        detail = "the Host header names a host this server does not answer for (DJANGO_ALLOWED_HOSTS)"
    else:
        detail = f"bad request ({type(exception).__name__})"
    return JsonResponse({"detail": detail}, status=400, content_type="application/json; charset=utf-8")


handler400 = bad_request
