"""Start a run of a process's live version and print its id."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orchestration.jsontext import JSONTextError, NotAnObjectError, parse_json_object
from orchestration.models import Process, Run
from orchestration.runs import services as run_services
from orchestration.validators import is_ascii_digits

INPUT_NOT_JSON = "--input is not valid JSON: {error}."
INPUT_NOT_OBJECT = "--input must be a JSON object."


class Command(BaseCommand):
    help = "Queue a run of the live version of a process; prints the run id at once."

    def add_arguments(self, parser):
        parser.add_argument("process", help="Process id or exact name.")
        parser.add_argument("--input", default="{}", help="The run's input, a JSON object.")

    def handle(self, *args, process, input, **options):
        drafts = Process.objects.filter(version_of__isnull=True)
        found = (
            drafts.filter(pk=int(process))
            if is_ascii_digits(process)
            else drafts.filter(name=process)
        )
        if found.count() != 1:
            raise CommandError(f"No single process matches {process!r}.")
        try:
            data = parse_json_object(input)
        except JSONTextError as exc:
            raise CommandError(INPUT_NOT_JSON.format(error=exc)) from None
        except NotAnObjectError:
            raise CommandError(INPUT_NOT_OBJECT) from None
        try:
            run = run_services.run_start(
                process=found.get(), trigger=Run.Trigger.COMMAND, input=data
            )
        except run_services.RunRefused as refused:
            raise CommandError(str(refused)) from refused
        if run_services.queue_refused(run):
            raise CommandError(f"Run {run.pk}: {run.error_message}")
        self.stdout.write(str(run.pk))
