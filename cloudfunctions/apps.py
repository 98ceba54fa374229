from __future__ import annotations

from django.apps import AppConfig


class CloudFunctionsConfig(AppConfig):
    name = "cloudfunctions"
    verbose_name = "Cloud functions"

    def ready(self) -> None:
        from cloudfunctions.step_kind import CloudFunctionKind
        from orchestration import step_kinds
        from orchestration.models import Step

        step_kinds.register(Step.Kind.CLOUD_FUNCTION, CloudFunctionKind())
