"""Views added to a `django-admin startproject` site (settings: site9's,
DEBUG off), walked through by the compat test under hornbeam and under
gunicorn (WSGI) and uvicorn (ASGI)."""

import hashlib
import json
import os

from django.http import (FileResponse, HttpResponse, HttpResponseRedirect, JsonResponse,
                         StreamingHttpResponse)
from django.middleware.csrf import get_token
from django.urls import path, re_path, reverse

from site9.settings import *  # noqa: F401,F403 - the project's settings, then ours

DEBUG = False
ALLOWED_HOSTS = ["compat.test", "127.0.0.1"]
ROOT_URLCONF = "djcompat"
DATA = os.path.join(os.environ["COMPAT_DIR"], "data.bin")


def upload_form(request):
    token = get_token(request)
    return HttpResponse(f'<form method="post" enctype="multipart/form-data" action="{reverse("upload")}">'
                        f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}"></form>')


def upload(request):
    files = {}
    for name, f in request.FILES.items():
        data = f.read()
        files[name] = {"name": f.name, "size": f.size, "content_type": f.content_type,
                       "sha256": hashlib.sha256(data).hexdigest()}
    post = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
    return JsonResponse({"files": files, "post": post, "method": request.method})


def stream(request):
    n = int(request.GET.get("n", "3"))
    return StreamingHttpResponse((f"row {i}\n" for i in range(n)), content_type="text/csv")


def file(request):
    return FileResponse(open(DATA, "rb"), as_attachment=True, filename="données.bin")


def meta(request):
    keys = ["SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "CONTENT_TYPE", "CONTENT_LENGTH", "SCRIPT_NAME",
            "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "SERVER_PROTOCOL"]
    return JsonResponse({
        "absolute_uri": request.build_absolute_uri(),
        "absolute_other": request.build_absolute_uri(reverse("stream")),
        "host": request.get_host(), "port": request.get_port(), "secure": request.is_secure(),
        "path": request.path, "path_info": request.path_info, "full_path": request.get_full_path(),
        "script_name": request.META.get("SCRIPT_NAME"),
        "meta": {k: request.META.get(k) for k in keys},
        "http": sorted((k, v) for k, v in request.META.items() if k.startswith("HTTP_") and k != "HTTP_COOKIE"),
        "get": sorted(request.GET.lists()),
        "body": request.body.decode("utf-8", "replace")[:200],
    })


def api(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "bad json"}, status=400)
    return JsonResponse({"got": data}, status=201)


def boom(request):
    raise RuntimeError("boom")


def slash(request):
    return HttpResponse("slash page")


def go(request):
    return HttpResponseRedirect(reverse("meta") + "?from=go")


def cookies(request):
    r = JsonResponse(sorted((k, v) for k, v in request.COOKIES.items() if k != "csrftoken"), safe=False)
    if "set" in request.GET:
        r.set_cookie("flavour", "oat", max_age=60, samesite="Lax", httponly=True)
    if "del" in request.GET:
        r.delete_cookie("flavour")
    return r


def echo(request, rest):
    return JsonResponse({"rest": rest, "path": request.path})


urlpatterns = [
    path("upload/", upload_form),
    path("upload/do", upload, name="upload"),
    path("stream", stream, name="stream"),
    path("file", file),
    path("meta", meta, name="meta"),
    path("api", api),
    path("boom", boom),
    path("slash/", slash),
    path("go", go),
    path("cookies", cookies),
    re_path(r"^echo/(?P<rest>.*)$", echo),
]
