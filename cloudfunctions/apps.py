from __future__ import annotations

from django.apps import AppConfig


class CloudFunctionsConfig(AppConfig):
    name = "cloudfunctions"
    verbose_name = "Cloud functions"

    def ready(self) -> None:
        from cloudfunctions.cel import paths
        from cloudfunctions.step.kind import CloudFunctionKind
        from orchestration.models import Step
        from orchestration.processes import step_kinds

        step_kinds.register(Step.Kind.CLOUD_FUNCTION, CloudFunctionKind())
        step_kinds.register_value_tree(paths.value_tree)
