"""The admin models page (staff only): authenticate, parse, call a service, respond."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors
from .fetch import DownloadError, UnsafeURL
from .forms import AccessForm, ContextForm, CopyForm, CreateModelForm, EndpointForm, EstimateForm, PullForm
from inference.gguf_info import InvalidGGUF
from .models import LLMModel, VllmEndpoint
from .names import InvalidModelName
from .progress import pull_payload
from .selectors import ModelNotFound
from .services import endpoints as endpoint_services
from .services import pulls as pull_services
from .services import registry as registry_services
from .services.errors import ModelError
from .readable import readable_error
from .sources import SourceError, estimate_source, parse_source

View = Callable[..., HttpResponseBase]


logger = logging.getLogger(__name__)
# Session key: what the admin typed into a pull that was refused.
_PULL_TYPED = "models_admin.pull_typed"


def staff_required(view: View) -> View:
    """Staff only. Others get the ordinary 404 page, so the admin pages do not announce themselves."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return render(request, "404.html", status=404)
        return view(request, *args, **kwargs)

    return wrapper


def _model_or_404(request: HttpRequest, model_id: int) -> LLMModel | None:
    del request  # same signature as the other fetch helpers; admins may see every model
    return LLMModel.objects.filter(pk=model_id).first()


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", status=404)


def _back(fragment: str = "") -> HttpResponse:
    return redirect(f"/admin/models/{'#' + fragment if fragment else ''}")


def _page_context() -> dict[str, Any]:
    pulls = selectors.pulls_for_page()
    return {
        "rows": selectors.models_overview(),
        "pulls": pulls,
        "pull_payloads": [pull_payload(p) for p in pulls],
        "import_files": selectors.import_dir_files(),
        "import_dir": settings.MODEL_IMPORT_DIR,
        "endpoints": selectors.endpoints_overview(),
        "engine_memory": settings.ENGINE_MEMORY_BYTES,
        "gpu_memory": settings.GPU_MEMORY_BYTES,
        "parallel": settings.EMBEDDED_PARALLEL,
        "embedded_context": settings.EMBEDDED_CONTEXT,
        "keep_alive": settings.EMBEDDED_KEEP_ALIVE,
        "max_loaded": settings.EMBEDDED_MAX_LOADED,
        "hf_endpoint": settings.HF_ENDPOINT,
    }


@staff_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    context = _page_context()
    # A refused pull comes back here with what the admin typed (kept for one page view).
    context.update(pull_form=PullForm(initial=request.session.pop(_PULL_TYPED, None)), endpoint_form=EndpointForm())
    return render(request, "models_admin/index.html", context)


@staff_required
@require_GET
def models_table(request: HttpRequest) -> HttpResponse:
    """The models table alone, for the page to refresh it when models change."""
    return render(request, "models_admin/_models_table.html", {"rows": selectors.models_overview()})


@staff_required
@require_POST
def pull_create(request: HttpRequest) -> HttpResponse:
    form = PullForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Type a model to pull."))
        return _back("pull")
    try:
        pull = pull_services.pull_start(
            actor=request.user, name=form.cleaned_data["source"], model_name=form.cleaned_data["model_name"]
        )
    except ModelError as exc:
        messages.error(request, exc.message)
        request.session[_PULL_TYPED] = {k: str(form.cleaned_data.get(k) or "")[:1000] for k in ("source", "model_name")}
        return _back("pull")
    messages.success(request, _("Pulling %(source)s as %(model)s.") % {"source": pull.source, "model": pull.model_name})
    return _back("pulls")


@staff_required
@require_POST
def pull_cancel(request: HttpRequest, pull_id: int) -> HttpResponse:
    pull = selectors.get_pull(pull_id=pull_id)
    if pull is None:
        return _not_found(request)
    try:
        pull_services.pull_cancel(actor=request.user, pull=pull)
    except ModelError as exc:
        messages.error(request, exc.message)
    return _back("pulls")


@staff_required
@require_POST
def estimate(request: HttpRequest) -> JsonResponse:
    """Does a model, or a source not pulled yet, fit in this server's memory? (JSON)"""
    form = EstimateForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": " ".join(str(e) for errors in form.errors.values() for e in errors)}, status=400)
    data = form.cleaned_data
    try:
        if data.get("model"):
            model = LLMModel.objects.filter(pk=data["model"]).first()
            report = selectors.model_fit(model, context_length=data.get("context_length"), parallel=data.get("parallel")) if model else None
            if report is None:
                return JsonResponse({"error": _("The size of this model is unknown.")}, status=400)
        else:
            source = parse_source(data["source"])
            report = estimate_source(source, context_length=data.get("context_length"), parallel=data.get("parallel"))
    except SourceError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    except (UnsafeURL, DownloadError, InvalidGGUF, InvalidModelName, ValueError, OSError) as exc:
        logger.info("estimate refused: %r", exc)
        # Download errors are already said for people (models_admin.readable, in fetch).
        return JsonResponse({"error": str(exc) if isinstance(exc, DownloadError) else readable_error(exc)}, status=400)
    return JsonResponse(report.as_json())


@staff_required
@require_POST
def model_default(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if model is None:
        return _not_found(request)
    registry_services.model_set_default(model=model, actor=request.user)
    messages.success(request, _("%(model)s is now the default model for new chats.") % {"model": model.full_name})
    return _back()


@staff_required
@require_POST
def model_context(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if model is None:
        return _not_found(request)
    form = ContextForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return _back()
    try:
        registry_services.model_context_set(actor=request.user, model=model, context_length=form.cleaned_data["context_length"])
    except ModelError as exc:
        messages.error(request, exc.message)
        return _back()
    messages.success(
        request,
        _("A chat with %(model)s now holds %(tokens)d tokens.") % {"model": model.full_name, "tokens": selectors.chat_context(model)},
    )
    return _back()


@staff_required
@require_POST
def model_delete(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if model is None:
        return _not_found(request)
    try:
        registry_services.model_delete(actor=request.user, name=model.full_name)
    except ModelNotFound:
        return _not_found(request)
    messages.success(request, _("%(model)s was deleted.") % {"model": model.full_name})
    return _back()


@staff_required
@require_POST
def model_copy(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if model is None:
        return _not_found(request)
    form = CopyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the copy a name."))
        return _back()
    try:
        copy = registry_services.model_copy(actor=request.user, source=model.full_name, destination=form.cleaned_data["destination"])
    except ModelError as exc:
        messages.error(request, exc.message)
        return _back()
    messages.success(request, _("Copied %(model)s to %(copy)s.") % {"model": model.full_name, "copy": copy.full_name})
    return _back()


@staff_required
@require_http_methods(["GET", "POST"])
def model_access(request: HttpRequest, model_id: int) -> HttpResponse:
    model = _model_or_404(request, model_id)
    if model is None:
        return _not_found(request)
    if request.method == "POST":
        form = AccessForm(request.POST)
        if form.is_valid():
            registry_services.model_access_set(
                actor=request.user,
                model=model,
                access=form.cleaned_data["access"],
                user_ids=form.user_ids(),
                group_ids=form.group_ids(),
                project_ids=[p.pk for p in form.cleaned_data["projects"]],
            )
            messages.success(request, _("Access to %(model)s was saved.") % {"model": model.full_name})
            return _back()
    else:
        form = AccessForm(
            initial={
                "access": model.access,
                "users": list(model.allowed_users.order_by("username")),
                "groups": list(model.allowed_groups.order_by("name")),
                "projects": list(model.allowed_projects.all()),
            }
        )
    return render(
        request,
        "models_admin/access.html",
        {"model": model, "form": form, "selected_users": form.selected("users"), "selected_groups": form.selected("groups")},
    )


@staff_required
@require_http_methods(["GET", "POST"])
def model_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = CreateModelForm(request.POST)
        if form.is_valid():
            try:
                model = registry_services.model_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    from_=form.cleaned_data["base"],
                    system=form.cleaned_data["system"],
                    template=form.cleaned_data["template"],
                    parameters=form.parameters(),
                )
            except (ModelError, ModelNotFound) as exc:
                form.add_error(None, getattr(exc, "message", str(exc)))
            else:
                messages.success(request, _("Created %(model)s.") % {"model": model.full_name})
                return _back()
    else:
        # isdecimal, not isdigit: "²" is a digit that int() refuses (it was a 500).
        base = LLMModel.objects.filter(pk=request.GET.get("base") or 0).first() if (request.GET.get("base") or "").isdecimal() else None
        form = CreateModelForm(initial={"base": base.full_name if base else None})
    return render(request, "models_admin/create.html", {"form": form})


@staff_required
@require_POST
def endpoint_add(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the URL of the vLLM server."))
        return _back("endpoints")
    try:
        endpoint = endpoint_services.vllm_endpoint_add(
            actor=request.user, url=form.cleaned_data["url"], api_key=form.cleaned_data["api_key"]
        )
    except ModelError as exc:
        messages.error(request, exc.message)
        return _back("endpoints")
    if endpoint.healthy:
        messages.success(request, _("Added %(url)s.") % {"url": endpoint.url})
    else:
        messages.warning(request, _("Added %(url)s, but it does not answer: %(error)s") % {"url": endpoint.url, "error": endpoint.last_error})
    return _back("endpoints")


@staff_required
@require_POST
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = VllmEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return _not_found(request)
    endpoint_services.vllm_endpoint_delete(actor=request.user, endpoint=endpoint)
    messages.success(request, _("Removed %(url)s.") % {"url": endpoint.url})
    return _back("endpoints")


@staff_required
@require_POST
def endpoint_check(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = VllmEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return _not_found(request)
    endpoint_services.vllm_endpoint_check(endpoint=endpoint, register_models=True)
    return _back("endpoints")
