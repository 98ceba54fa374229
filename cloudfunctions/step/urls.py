"""Cloud-function endpoints under a step: /processes/<pk>/steps/<step_pk>/…"""

from __future__ import annotations

from django.urls import path

from cloudfunctions.step import views as step_views

urlpatterns = [
    path("check/", step_views.field_check, name="cloud-function-check"),
]
