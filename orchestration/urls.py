from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from orchestration.processes import views
from orchestration.runs import views as run_views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("processes/", views.process_list, name="process-list"),
    path("processes/new/", views.process_create, name="process-create"),
    path("processes/<int:pk>/", views.process_editor, name="process-editor"),
    path("processes/<int:pk>/duplicate/", views.process_duplicate, name="process-duplicate"),
    path("processes/<int:pk>/delete/", views.process_delete, name="process-delete"),
    path("processes/<int:pk>/test/", views.process_test, name="process-test"),
    path(
        "processes/<int:pk>/events/<int:event_pk>/sample/",
        views.event_sample,
        name="event-sample",
    ),
    path("processes/<int:pk>/steps/new/", views.step_create, name="step-create"),
    path("processes/<int:pk>/steps/<int:step_pk>/", views.step_editor, name="step-editor"),
    path("processes/<int:pk>/steps/<int:step_pk>/rename/", views.step_rename, name="step-rename"),
    path("processes/<int:pk>/steps/<int:step_pk>/move/", views.step_move, name="step-move"),
    path("processes/<int:pk>/steps/<int:step_pk>/start/", views.step_start, name="step-start"),
    path("processes/<int:pk>/steps/<int:step_pk>/delete/", views.step_delete, name="step-delete"),
    path("processes/<int:pk>/steps/<int:step_pk>/", include("cloudfunctions.step.urls")),
    path("processes/<int:pk>/runs/", run_views.process_runs, name="process-runs"),
    path("processes/<int:pk>/deploy/", run_views.process_deploy, name="process-deploy"),
    path(
        "processes/<int:pk>/versions/<int:version_pk>/rollback/",
        run_views.process_rollback,
        name="process-rollback",
    ),
    path("processes/<int:pk>/webhook-token/", run_views.webhook_rotate, name="webhook-rotate"),
    path("processes/<int:pk>/run/", run_views.run_now, name="run-now"),
    path("runs/<int:run_pk>/", run_views.run_detail, name="run-detail"),
    path("runs/<int:run_pk>/download/", run_views.run_download, name="run-download"),
    path("runs/<int:run_pk>/cancel/", run_views.run_cancel, name="run-cancel"),
    path("runs/<int:run_pk>/rerun/", run_views.run_rerun, name="run-rerun"),
    path("hooks/<int:pk>/", run_views.webhook, name="webhook"),
    path("connections/", include("cloudfunctions.connections.urls")),
    path("admin/", admin.site.urls),
]
